"""tlhub: transfer learning from Hugging Face Hub backbones, in minutes.

The top-level names are imported lazily, so ``import tlhub`` (and ``tlhub --help``) never pays
for torch, timm or transformers until a model is actually built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "create_model": "tlhub.core.factory",
    "describe": "tlhub.core.factory",
    "predict": "tlhub.core.prediction",
    "Predictor": "tlhub.core.prediction",
    "Prediction": "tlhub.core.prediction",
    "list_adapters": "tlhub.adapters.registry",
    "get_adapter": "tlhub.adapters.registry",
    "Adapter": "tlhub.adapters.contract",
    "TrainConfig": "tlhub.engine.config",
    "train": "tlhub.engine.trainer",
    "evaluate": "tlhub.engine.evaluation",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.adapters.contract import Adapter
    from tlhub.adapters.registry import get_adapter, list_adapters
    from tlhub.engine.config import TrainConfig
    from tlhub.engine.evaluation import evaluate
    from tlhub.engine.trainer import train
    from tlhub.core.factory import create_model, describe
    from tlhub.core.prediction import Prediction, Predictor, predict


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tlhub' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
