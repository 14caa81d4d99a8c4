"""``tlhub demo``: the main job on the built-in default, offline.

EfficientNet-Lite0 (real ImageNet weights) fine-tuned with LP-FT on Fashion-MNIST (Debian's
``dataset-fashion-mnist``), evaluated on the official test split, saved, and asked for a top-3
prediction on a test image.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "engine" / "configs" / "fashion-mnist-lite0.yaml"


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the built-in default: Lite0 (ImageNet) + LP-FT on Fashion-MNIST, offline")
    p.add_argument("--output-dir", default="runs/demo", help="where the run and the model go (default: runs/demo)")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="the demo's config file")
    p.set_defaults(handler=run)


def run(args) -> int:
    import os

    # The built-in default needs no network: everything comes from the offline cache.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tlhub.engine.trainer import train

    print(f"tlhub demo: {args.config}")
    train(args.config, output_dir=args.output_dir)
    return 0
