"""``tlhub select --data DATA [--candidates B1 B2 ...] [--budget 5m]``: rank backbones for the data.

For each candidate one pass of the frozen backbone over the training split (through the feature
cache ``tlhub train`` reads with the same options, so the winner's probe stage reuses it), then
k-fold cross-validated linear-probe accuracy and LogME on those features: the validation and
test splits are not read. Prints a ranked table and the command to train the winner; writes
``select.json`` and ``select.png`` into ``--output``. Default candidates: every installed offline
backbone (`tlhub assets install`) of the data's modality.
"""

from __future__ import annotations

#: the TrainConfig fields that decide which rows are scored and what features they get
DATA_OPTIONS = ("revision", "adapter", "data_config", "input_column", "label_column", "train_split",
                "validation_split", "test_split", "validation_fraction", "max_train_per_class", "max_train_samples",
                "on_bad_input", "image_size", "crop_pct", "max_length", "eval_batch_size", "num_workers",
                "mixed_precision", "feature_precision", "seed", "cache_dir", "pretrained")


def register(sub) -> None:
    from tlhub.cli._options import add_config_options

    p = sub.add_parser(
        "select",
        help="rank pretrained backbones for your data (cross-validated probe accuracy and LogME, training split only)",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else None,
    )
    p.add_argument("--data", required=True, help="the data, as `tlhub train --data` takes it (built-in name, folder, file, Hub dataset)")
    p.add_argument("--candidates", nargs="+", metavar="BACKBONE", help="backbones to rank (default: every installed offline backbone of the data's modality)")
    p.add_argument("--budget", default=None, help="stop starting new candidates after this long, e.g. 90s, 5m (default: no limit)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: 5)")
    p.add_argument("--output", default="select", help="folder for select.json and select.png (default: ./select)")
    p.add_argument("--json", action="store_true", help="print select.json instead of the table")
    add_config_options(p, only=DATA_OPTIONS, title="data options (as in `tlhub train`: the same options give the same cached features)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from tlhub.cli._options import config_overrides
    from tlhub.cli._output import print_json, print_table
    from tlhub.engine.config import TrainConfig
    from tlhub.engine.config import parse_budget
    from tlhub.engine.selection import select_backbone

    overrides = config_overrides(args, DATA_OPTIONS)
    cfg = TrainConfig.from_dict({"data": args.data, **overrides})
    say = (lambda *a, **k: None) if args.json else print
    selection = select_backbone(cfg, args.candidates, budget_s=parse_budget(args.budget), folds=args.folds, progress=not args.json, say=say)
    path = selection.save(args.output)
    if args.json:
        print_json(selection.to_dict())
        return 0
    headers, rows = selection.table()
    print_table(headers, rows, title=f"tlhub select: {selection.data} ({selection.num_train:,} training examples, {selection.num_classes} classes)")
    print(f"ranked by {selection.ranked_by}")
    winner = selection.winner
    print(f"chosen    {winner.backbone}")
    print(f"report    {path} and {path.with_name('select.png').name} ({selection.seconds:.0f} s)")
    print(f"next      {selection.train_command(cfg)}")
    return 0
