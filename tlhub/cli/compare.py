"""``tlhub compare RUN_OR_MODEL RUN_OR_MODEL [...]``: paired comparison on the same held-out examples."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two or more trained models on the same held-out examples (paired bootstrap interval of the accuracy difference, McNemar's test)",
        description="Evaluate every model once on the same examples, then, for each pair, the accuracy difference with a paired "
        "bootstrap interval and McNemar's exact test (Holm-adjusted over the pairs). Says plainly when a difference is not significant.",
    )
    p.add_argument("models", nargs="+", metavar="RUN_OR_MODEL", help="a run folder of `tlhub train` (with model/ inside), a model folder, or a Hub repo")
    p.add_argument("--data", help="dataset (default: the one the models were trained on, which must then be the same for all)")
    p.add_argument("--data-config", help="configuration of a Hub dataset that has several")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--input-column")
    p.add_argument("--label-column")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-samples", type=int, metavar="N", help="a stratified random sample of N rows (the same rows for every model)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals (default: 0.95)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of McNemar's test (default: 0.05)")
    p.add_argument("--resamples", type=int, default=None, help="bootstrap resamples (default: 4999)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--output", metavar="DIR", default="compare", help="folder for compare.json and compare.png (default: ./compare)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from tlhub.cli._output import print_json
    from tlhub.engine.compare import compare_models
    from tlhub.engine.stats import N_RESAMPLES

    comparison = compare_models(
        args.models,
        data=args.data,
        data_config=args.data_config,
        split=args.split,
        input_column=args.input_column,
        label_column=args.label_column,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        confidence=args.confidence,
        n_resamples=args.resamples if args.resamples is not None else N_RESAMPLES,
        seed=args.seed,
        alpha=args.alpha,
    )
    written = comparison.save(args.output)
    if args.json:
        print_json(comparison.to_dict())
    else:
        print(comparison.table())
        print(f"\nwritten: {written[0]}  {written[1]}")
    return 0
