"""``tlhub doctor DATA [--backbone B] [--strict] [--fix OUT] [--output DIR]``: check data before training.

Finds exact and near-duplicates (within each split and across train/validation/test: leakage),
likely label errors, class imbalance, empty or tiny classes, outliers and label-name variants;
writes ``DIR/doctor.json`` and, for images, one contact sheet per finding kind. The data options
are ``tlhub train``'s, so the backbone features it computes are the ones ``tlhub train`` reads from
the cache with the same options (and the other way round).
"""

from __future__ import annotations

#: the TrainConfig fields that decide which rows are checked and what features they get
DATA_OPTIONS = ("backbone", "revision", "adapter", "data_config", "input_column", "label_column", "train_split",
                "validation_split", "test_split", "validation_fraction", "max_train_per_class", "max_train_samples",
                "max_eval_samples", "on_bad_input", "image_size", "crop_pct", "max_length", "eval_batch_size",
                "num_workers", "mixed_precision", "feature_precision", "seed", "cache_dir", "strict", "pretrained")


def register(sub) -> None:
    from tlhub.cli._options import add_config_options

    p = sub.add_parser(
        "doctor",
        help="check data before training: duplicates, train/test leakage, likely label errors, imbalance, outliers",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else None,
    )
    p.add_argument("data", help="the data, as `tlhub train --data` takes it (built-in name, folder, file, Hub dataset)")
    p.add_argument("--output", default="doctor", help="folder for doctor.json and the contact sheets (default: ./doctor)")
    p.add_argument("--fix", metavar="OUT", help="write a cleaned copy into the new folder OUT (exact duplicates and leaked copies dropped); the data itself is never changed")
    p.add_argument("--drop-label-errors", action="store_true", help="with --fix: also drop the likely label errors")
    p.add_argument("--drop-near-duplicates", action="store_true", help="with --fix: also drop near-duplicates and near-leaked copies")
    p.add_argument("--near-threshold", type=float, default=None, help="text: cosine similarity of features at which two inputs are near-duplicates (default: 0.95); "
                   "images are judged by their thumbnails (see tlhub.engine.doctor.NEAR_PIXEL_CORRELATION)")
    p.add_argument("--no-features", action="store_true", help="only the checks that need no backbone pass (hashes, counts, label names)")
    p.add_argument("--json", action="store_true", help="print doctor.json instead of the tables")
    add_config_options(p, only=DATA_OPTIONS, title="data and backbone options (as in `tlhub train`)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from tlhub.cli._options import config_overrides
    from pathlib import Path

    from tlhub.cli._output import print_json, print_table
    from tlhub.engine.config import TrainConfig
    from tlhub.engine.doctor import IMBALANCE_RATIO, NEAR_DUPLICATE_COSINE, contact_sheets, diagnose, write_fixed_copy
    from tlhub.errors import ConfigError

    if (args.drop_label_errors or args.drop_near_duplicates) and not args.fix:
        raise ConfigError("--drop-label-errors / --drop-near-duplicates choose what --fix drops", fix="add --fix OUT (a new folder)")
    overrides = config_overrides(args, DATA_OPTIONS)
    cfg = TrainConfig.from_dict({"data": args.data, **overrides})
    say = (lambda *a, **k: None) if args.json else print
    diagnosis = diagnose(cfg, near_threshold=args.near_threshold or NEAR_DUPLICATE_COSINE, features=not args.no_features, say=say)
    report = diagnosis.report
    output = Path(args.output)
    path = report.save(output)
    sheets = contact_sheets(diagnosis, output)
    fixed = write_fixed_copy(diagnosis, args.fix, drop_label_errors=args.drop_label_errors,
                             drop_near_duplicates=args.drop_near_duplicates) if args.fix else None
    if args.json:
        print_json(report.to_dict())
    else:
        print_table(["finding", "count"], [[k.replace("_", " "), n] for k, n in report.counts.items()],
                    title=f"tlhub doctor: {report.source_name} (" + ", ".join(f"{k} {n:,}" for k, n in report.splits.items()) + ")")
        for line in report.summary_lines():
            print(f"  {line}")
        ratio = report.imbalance_ratio
        if ratio is not None and ratio > IMBALANCE_RATIO:
            print("  imbalanced: compare models by balanced accuracy (macro recall) and per-class recall, not accuracy")
        if report.findings:
            columns, rows = report.table(limit=20)
            print_table(columns, rows, title=f"findings (first {min(20, len(rows))} of {len(report.findings):,}; all in {path})")
        if report.label_error_method:
            print(f"label errors by {report.label_error_method}")
        if report.feature_cache:
            print("features  " + ", ".join(f"{k} {'cache hit' if hit else 'computed and cached'}" for k, hit in report.feature_cache.items()))
        print(f"report    {path}" + (f"; contact sheets: {', '.join(s.name for s in sheets)}" if sheets else ""))
        if fixed:
            dropped = ", ".join(f"{n:,} {k}" for k, n in fixed["dropped"].items()) or "nothing"
            print(f"fixed     cleaned copy in {fixed['output']} (dropped {dropped}); the data itself is unchanged")
        print(f"({report.seconds:.1f} s)")
    if cfg.strict:
        report.raise_if_findings()
    return 0
