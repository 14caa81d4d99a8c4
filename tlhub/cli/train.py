"""``tlhub train [CONFIG.yaml] [--option value ...]``: fine-tune a backbone on a dataset.

Every field of :class:`tlhub.engine.config.TrainConfig` is an option; values on the command line
override the YAML file, which overrides the defaults.
"""

from __future__ import annotations

from tlhub.cli._options import add_config_options


def config_from_args(args) -> "TrainConfig":
    from dataclasses import fields

    from tlhub.engine.config import TrainConfig

    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    if getattr(args, "config", None):
        return TrainConfig.from_yaml(args.config, **overrides)
    return TrainConfig.from_dict(overrides)


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune a pretrained backbone on your data (strategies: feature-extraction, fine-tune, lp-ft, gradual-unfreeze)",
        description="Fine-tune a pretrained backbone. Run under `accelerate launch` or `torchrun` for several processes.",
    )
    p.add_argument("config", nargs="?", help="YAML file with training options (command-line options override it)")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    add_config_options(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    cfg = config_from_args(args)
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    from tlhub.engine.trainer import train

    train(cfg)
    return 0
