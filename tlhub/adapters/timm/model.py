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
        if self.layer_head is not None:  # a head over several layer groups replaces the classifier
            return super().forward(batch)
        # the model's own forward keeps timm's head dropout in training
        return self.model(self._pixels(batch))

    def forward_layer_features(self, batch, layers):
        """One forward pass; the output of each requested layer group, average-pooled over a
        ``layer_grid`` x ``layer_grid`` grid (global average at 1).

        Why a grid: a linear head on a middle layer cannot tell where in the image a pattern
        fired once its map is averaged to one vector, and on small, centred images (Fashion-MNIST)
        that is what the middle layers know best. On Protocol A's validation images (990, never
        the test split) a head over Lite0's groups 4-7 scored 0.8515 with global averages and
        0.8667 with 2 x 2 cells; the last group alone is the same either way (it is the model's
        own pooled features). Head2Toe (Evci et al. 2022) pools intermediate maps the same way.

        The groups are timm's coarse parameter groups (``layer_groups``: stem, one per stage,
        then the head convolution with the last stage), which are also what ``unfreeze`` counts,
        so a layer's score maps straight onto a number of groups to retrain. timm's
        ``forward_intermediates`` indexes its ``feature_info`` stages instead (5 for EfficientNet,
        against 8 groups), so the outputs are taken with forward hooks on each group's module:
        the deepest module holding all of the group's parameters (``blocks.3``: the block's
        output, skip connection included), or the module of its last parameter when the group
        spans several (the stem's ``bn1``). The last group is the pooled pre-logits features,
        exactly ``forward_features``. Hooks work for every timm model, with or without
        ``forward_intermediates``."""
        groups = self.layer_groups()
        wanted = [int(i) for i in layers]
        last = len(groups) - 1
        captured: dict[int, torch.Tensor] = {}
        handles = []
        try:
            for i in sorted(set(wanted)):
                if i == last:
                    continue
                module = self._group_output_module(groups[i])
                handles.append(module.register_forward_hook(lambda m, a, out, i=i: captured.__setitem__(i, _pool(out, self.layer_grid))))
            if last in wanted:
                final = self.forward_features(batch)
            else:
                self.model.forward_features(self._pixels(batch))
                final = None
        finally:
            for h in handles:
                h.remove()
        return [final if i == last else captured[i] for i in wanted]

    def _group_output_module(self, group: LayerGroup) -> torch.nn.Module:
        paths = [n.split(".")[1:-1] for n in group.parameter_names]  # "model.blocks.3.0.conv.weight" -> blocks,3,0,conv
        common = []
        for parts in zip(*paths):
            if len(set(parts)) != 1:
                break
            common.append(parts[0])
        path = common or paths[-1]
        return self.model.get_submodule(".".join(path))

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


def _pool(out, grid: int = 1) -> torch.Tensor:
    """A layer's output as one vector per image: NCHW maps averaged over each cell of a
    ``grid`` x ``grid`` grid (channel-major: C x grid^2 values), token sequences (N, L, C: ViT
    blocks) over tokens; NHWC maps of channels-last convnets are NCHW tensors too."""
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.ndim == 4:
        if grid > 1:
            return torch.nn.functional.adaptive_avg_pool2d(out.float(), grid).flatten(1)
        return out.float().mean((2, 3))
    if out.ndim == 3:
        return out.float().mean(1)
    return out.float()


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
