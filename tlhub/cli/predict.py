"""``tlhub predict MODEL INPUT...``: top-k labels with confidences."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("predict", help="top-k predictions for images (paths) or texts with a pretrained or fine-tuned model")
    p.add_argument("model", help="backbone with a head (e.g. an ImageNet classifier) or a fine-tuned tlhub model folder/repo")
    p.add_argument("inputs", nargs="+", help="image files; for text models, texts or text files (one text per line)")
    p.add_argument("--top-k", type=int, default=5, help="how many labels to show (default 5)")
    p.add_argument("--revision", help="branch, tag or commit")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from tlhub.cli._output import print_json
    from tlhub.errors import ConfigError
    from tlhub.core.prediction import Predictor

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}", fix="use --top-k 3, for example")
    predictor = Predictor.from_pretrained(args.model, revision=args.revision)
    if predictor.adapter.modality == "text":
        names, inputs = _texts(args.inputs)
    else:
        names, inputs = list(args.inputs), list(args.inputs)
    results = predictor(inputs, top_k=args.top_k)
    if args.json:
        print_json([{"input": x, **({"from": name} if name != x else {}), "predictions": [p.__dict__ for p in preds]}
                    for name, x, preds in zip(names, inputs, results)])
        return 0
    for name, x, preds in zip(names, inputs, results):
        print(name if name == x else f"{name}: {x}")
        for rank, p in enumerate(preds, 1):
            print(f"  {rank}. {p.label:<30} {p.score:6.1%}")
    return 0


def _texts(args: list[str]) -> tuple[list[str], list[str]]:
    """``(names, texts)`` for a text model: an argument that is an existing file is read as one
    text per non-empty line (named ``FILE:LINE``), as a Space reads ``.txt`` examples; any other
    argument is the text itself. Said on stderr, so a file is never classified as its own name."""
    import sys
    from pathlib import Path

    from tlhub.errors import DataError

    names, texts = [], []
    for arg in args:
        path = Path(arg)
        try:
            is_file, is_dir = path.is_file(), path.is_dir()
        except OSError:  # a text too long to be a path
            is_file = is_dir = False
        if is_dir:
            raise DataError(f"{arg} is a folder; a text model predicts texts, or text files of one text per line",
                            fix="give the texts, or the .txt files inside it (a labelled table: `tlhub evaluate MODEL --data FILE`)")
        if not is_file:
            names.append(arg)
            texts.append(arg)
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise DataError(f"{arg} is not a UTF-8 text file (a text model reads files as one text per line)",
                            fix="save it as UTF-8 text, or give the texts themselves") from None
        except OSError as exc:
            raise DataError(f"{arg} cannot be read: {exc.strerror or exc}", fix="check the file's permissions") from None
        found = [(f"{arg}:{n}", line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
        if not found:
            raise DataError(f"{arg} holds no text (a text model reads files as one text per line)",
                            fix="write one text per line into it, or give the texts themselves")
        print(f"{arg}: a file, read as {len(found)} text(s), one per line", file=sys.stderr)
        names += [name for name, _ in found]
        texts += [text for _, text in found]
    return names, texts
