"""``tlhub evaluate MODEL --data DATA``: metrics of a trained model on held-out data."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained model on a dataset split (accuracy, macro P/R/F1, per-class, confusion matrix)")
    p.add_argument("model", help="a model folder saved by `tlhub train` (or its Hub repo)")
    p.add_argument("--data", help="dataset (default: the one the model was trained on)")
    p.add_argument("--data-config", help="configuration of a Hub dataset that has several (default: the one the model was trained on, with --data unset)")
    p.add_argument("--split", default=None, help="split to evaluate, or 'all' for every row (default: test, or the only split of a folder without split folders or of a single file)")
    p.add_argument("--input-column")
    p.add_argument("--label-column")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--max-samples",
        type=int,
        metavar="N",
        help="evaluate on a stratified random sample of N rows: every class in its share of the split, and the same "
        "rows on every run (seed 0); not the first N rows, which in a file sorted by class would all be one class",
    )
    p.add_argument("--output", help="write the results (eval_results.json + confusion matrix PNG) into this folder")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def _check_output(output: str) -> None:
    """``--output`` names a folder that is there or can be made: checked before the evaluation runs."""
    import os
    from pathlib import Path

    from tlhub.errors import ConfigError

    path = Path(output)
    fix = "give a folder for eval_results.json and the confusion matrix (it is created when missing), e.g. --output eval/"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--output {path} is an existing file, not a folder", fix=fix)
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"--output {path} cannot be made: {parent} is a file", fix=fix)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--output {path} cannot be written: no permission to write in {parent}", fix="choose a folder you can write to")


def run(args) -> int:
    from tlhub.cli._output import print_json
    from tlhub.engine.evaluation import evaluate
    from tlhub.errors import ConfigError

    if args.output:
        _check_output(args.output)
    result = evaluate(
        args.model,
        data=args.data,
        data_config=args.data_config,
        split=args.split,
        input_column=args.input_column,
        label_column=args.label_column,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
    )
    if args.output:
        try:
            result.save(args.output)
        except OSError as exc:  # disk full, or the folder changed since it was checked
            raise ConfigError(f"cannot write the results into {args.output}: {exc.strerror or exc}",
                              fix="free some space or choose another --output folder, then run it again") from None
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
        print(result.table())
    return 0
