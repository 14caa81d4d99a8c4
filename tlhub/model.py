"""``TransferModel``: a pretrained backbone plus a classification head, shaped for transfer learning.

Adapters subclass it for their library. Everything the engine does (freezing, layer-wise learning
rates, feature caching, linear probing) goes through the four methods below, so the engine never
needs to know which library built the model:

- ``forward_features(batch)`` -> pooled features, ``batch x num_features`` (what the head sees)
- ``forward_head(features)`` -> logits
- ``layer_groups()`` -> backbone parameter names grouped from input to output
- ``head_parameter_names()`` -> the head's parameter names
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn


@dataclass(frozen=True)
class LayerGroup:
    name: str
    parameter_names: tuple[str, ...]


class TransferModel(nn.Module):
    #: set by subclasses
    num_features: int

    def __init__(self, *, adapter_name: str, source: str, labels: Sequence[str], revision: str | None = None):
        super().__init__()
        self.adapter_name = adapter_name
        self.source = source  # backbone name it was loaded from (lineage for cards)
        self.revision = revision
        self.labels = list(labels)
        #: keep every BatchNorm in eval mode while training (frozen statistics), not only frozen ones
        self.norm_eval = False

    # -- the contract ------------------------------------------------------------------------
    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def layer_groups(self) -> list[LayerGroup]:
        raise NotImplementedError

    def head_parameter_names(self) -> list[str]:
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.forward_head(self.forward_features(batch))

    # -- helpers built on the contract -------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def freeze_backbone(self, trainable_groups: int | str = 0) -> None:
        """Freeze the backbone except its last ``trainable_groups`` layer groups ("all" = none
        frozen). The head always trains."""
        groups = self.layer_groups()
        n = len(groups) if trainable_groups == "all" else int(trainable_groups)
        trainable = {name for g in groups[len(groups) - n :] for name in g.parameter_names} if n > 0 else set()
        trainable |= set(self.head_parameter_names())
        for name, param in self.named_parameters():
            param.requires_grad_(name in trainable)
        # re-apply train/eval so frozen BatchNorm layers switch to eval mode now
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            # A frozen normalisation layer must not keep updating its running statistics:
            # that would silently change the frozen backbone (Keras' classic BN pitfall).
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    params = list(module.parameters(recurse=False))
                    if self.norm_eval or (params and not any(p.requires_grad for p in params)):
                        module.eval()
        return self

    def init_head(self) -> None:
        """Start a new head from zero: uniform logits, so early steps learn instead of undoing a
        random init (timm's EfficientNet init, for one, is sized for 1,000 classes and gives
        logits of std ~10 for a 10-class head)."""
        params = dict(self.named_parameters())
        with torch.no_grad():
            for name in self.head_parameter_names():
                params[name].zero_()

    def set_augmentation(self, auto_augment: str | None) -> None:
        """Choose an extra training-time augmentation policy (image models; a no-op elsewhere)."""

    def set_channels_last(self, enabled: bool = True) -> None:
        """Use the channels-last memory layout (image models; a no-op elsewhere). Weights are
        written back in the default layout whenever they are saved."""

    def set_dropout(self, p: float) -> None:
        """Set every dropout probability (``nn.Dropout`` modules and timm's ``drop_rate`` attributes)."""
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = p
            elif isinstance(getattr(module, "drop_rate", None), float):
                module.drop_rate = p

    def trainable_summary(self) -> dict[str, Any]:
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"parameters": total, "trainable": trainable}
