"""``TimmTransferModel``: a timm model seen through tlhub's :class:`~tlhub.adapters.model.TransferModel`.

Kept apart from the adapter module so that discovering the adapter never imports torch.
"""

from __future__ import annotations

import os
import torch
from timm.data import resolve_data_config
from timm.models._manipulate import group_parameters

from tlhub.adapters.model import LayerGroup, TransferModel


class TimmTransferModel(TransferModel):
    image_key = "pixel_values"

    def __init__(self, model: torch.nn.Module, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        # the width of what the classifier sees (timm models with a pre-logits MLP differ)
        self.num_features = getattr(model, "head_hidden_size", None) or model.num_features
        self.data_config = resolve_data_config({}, model=model)
        self.memory_format = torch.contiguous_format

    def set_input_size(self, size: int | tuple[int, int] | None = None, crop_pct: float | None = None) -> None:
        """Override the preprocessing's input size (e.g. 96 px for small images): the collate,
        ``preprocessing()`` and the saved ``pretrained_cfg`` all follow ``data_config``."""
        if size is not None:
            h, w = (size, size) if isinstance(size, int) else size
            self.data_config["input_size"] = (self.data_config["input_size"][0], int(h), int(w))
        if crop_pct is not None:
            self.data_config["crop_pct"] = float(crop_pct)

    def set_channels_last(self, enabled: bool = True) -> None:
        # As timm's train.py --channels-last: convolutions run faster on NHWC tensors (oneDNN on
        # CPU, tensor cores on GPU). Inputs are converted in forward, so callers need not care.
        self.memory_format = torch.channels_last if enabled else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)

    def _pixels(self, batch) -> torch.Tensor:
        return batch[self.image_key].contiguous(memory_format=self.memory_format)

    def forward(self, batch):
        # the model's own forward keeps timm's head dropout in training
        return self.model(self._pixels(batch))

    def forward_features(self, batch):
        return self.model.forward_head(self.model.forward_features(self._pixels(batch)), pre_logits=True)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.get_classifier()(features)

    def head_parameter_names(self) -> list[str]:
        head_ids = {id(p) for p in self.model.get_classifier().parameters()}
        return [n for n, p in self.named_parameters() if id(p) in head_ids]

    def layer_groups(self) -> list[LayerGroup]:
        # timm's coarse group matcher: stem, then one group per stage, input -> output
        head = set(self.head_parameter_names())
        groups = group_parameters(self.model, self.model.group_matcher(coarse=True))
        out = []
        for _, names in sorted(groups.items()):
            names = [f"model.{n}" for n in names if f"model.{n}" not in head]
            if names:
                out.append(LayerGroup(_group_name(names), tuple(names)))
        return out


def _group_name(names: list[str]) -> str:
    """A readable name for a group of parameters: 'blocks.3', or 'conv_stem' for the stem."""
    stripped = [n.split(".", 1)[1] for n in names]
    prefix = os.path.commonprefix(stripped)
    parts = [p for p in prefix.split(".") if p]
    if len(parts) >= 2 and parts[1].isdigit():
        return ".".join(parts[:2])
    if len(names) == 1 or not parts:
        return "stem" if stripped[0].startswith(("conv_stem", "stem", "conv1", "patch_embed")) else stripped[0].rsplit(".", 1)[0]
    return parts[0]
