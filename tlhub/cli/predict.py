"""``tlhub predict MODEL INPUT...``: top-k labels with confidences."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("predict", help="top-k predictions for images (paths) or texts with a pretrained or fine-tuned model")
    p.add_argument("model", help="backbone with a head (e.g. an ImageNet classifier) or a fine-tuned tlhub model folder/repo")
    p.add_argument("inputs", nargs="+", help="image files, or texts for text models")
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
    results = predictor(args.inputs, top_k=args.top_k)
    if args.json:
        print_json([{"input": x, "predictions": [p.__dict__ for p in preds]} for x, preds in zip(args.inputs, results)])
        return 0
    for x, preds in zip(args.inputs, results):
        print(x)
        for rank, p in enumerate(preds, 1):
            print(f"  {rank}. {p.label:<30} {p.score:6.1%}")
    return 0
