"""``tlhub evaluate MODEL --data DATA``: metrics of a trained model on held-out data."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained model on a dataset split (accuracy, macro P/R/F1, per-class, confusion matrix)")
    p.add_argument("model", help="a model folder saved by `tlhub train` (or its Hub repo)")
    p.add_argument("--data", help="dataset (default: the one the model was trained on)")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--input-column")
    p.add_argument("--label-column")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-samples", type=int, help="evaluate on the first N rows only")
    p.add_argument("--output", help="write the results (eval_results.json + confusion matrix PNG) into this folder")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from tlhub.commands._output import print_json
    from tlhub.evaluation_runner import evaluate

    result = evaluate(
        args.model,
        data=args.data,
        split=args.split,
        input_column=args.input_column,
        label_column=args.label_column,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
    )
    if args.output:
        result.save(args.output)
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"{result.split} {result.summary()}")
        print(result.table())
    return 0
