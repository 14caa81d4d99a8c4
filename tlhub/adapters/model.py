"""``TransferModel``: a pretrained backbone plus a classification head, shaped for transfer learning.

Adapters subclass it for their library. Everything the engine does (freezing, layer-wise learning
rates, feature caching, linear probing) goes through the four methods below, so the engine never
needs to know which library built the model:

- ``forward_features(batch)`` -> pooled features, ``batch x num_features`` (what the head sees)
- ``forward_head(features)`` -> logits
- ``layer_groups()`` -> backbone parameter names grouped from input to output
- ``head_parameter_names()`` -> the head's parameter names

The trainer's other hooks (``set_input_size``, ``set_max_length``, ``set_augmentation``,
``set_channels_last``, ``set_dropout``, ``image_key``) are declared here too, each with a default
that either works for every model or refuses with a :class:`~tlhub.errors.ConfigError` naming
the adapter: a setting the model cannot honour is never silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
from torch import nn

from tlhub.adapters.contract import WeightsInfo, signature_problems
from tlhub.errors import ConfigError

#: What the default ``forward_layer_features`` says (the plugin kit tells this refusal apart from a broken override).
LAST_LAYER_ONLY = "only offers its last layer's features"


class LayerHead(nn.Module):
    """A linear head on the concatenated pooled features of several layer groups (``layers``,
    indices into ``layer_groups()``): one ordinary ``nn.Linear`` on the raw features (the probe's
    standardisation is folded into its weights)."""

    def __init__(self, layers: Sequence[int], widths: Sequence[int], num_classes: int, grid: int = 1):
        super().__init__()
        self.layers = [int(i) for i in layers]
        self.grid = int(grid)  # the model's layer_grid its features were pooled with
        self.widths = [int(w) for w in widths]
        self.linear = nn.Linear(sum(self.widths), num_classes)
        # starts from zero, as every new head (TransferModel.init_head): uniform logits
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.zero_()

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.linear(torch.cat([f.to(self.linear.weight.dtype) for f in features], dim=-1))

    def spec(self) -> dict[str, Any]:
        return {"layers": self.layers, "widths": self.widths, "num_classes": self.linear.out_features, "grid": self.grid}


@dataclass(frozen=True)
class LayerGroup:
    name: str
    parameter_names: tuple[str, ...]


class TransferModel(nn.Module):
    #: set by subclasses
    num_features: int
    #: The batch key of the image tensor ``(N, C, H, W)`` that tlhub's batch-level image
    #: augmentations (random erasing, the flipped view of linear probing) act on. ``None`` for
    #: models without one (text, audio): those augmentations are then refused, not guessed.
    image_key: ClassVar[str | None] = "pixel_values"

    def __init__(self, *, adapter_name: str, source: str, labels: Sequence[str], revision: str | None = None):
        super().__init__()
        self.adapter_name = adapter_name
        self.source = source  # backbone name it was loaded from (lineage for cards)
        self.revision = revision
        self.labels = list(labels)
        #: keep every BatchNorm in eval mode while training (frozen statistics), not only frozen ones
        self.norm_eval = False
        #: lineage of the pretrained weights (set by tlhub after loading, from ``Adapter.weights_info``)
        self.base_weights: WeightsInfo | None = None
        #: the run record (a ``tlhub.core.record.TrainingRecord``) when loaded from a tlhub folder
        self.training_record: Any = None
        #: the extra training augmentation policy (``set_augmentation``), read by tlhub's image collate
        self.auto_augment: str | None = None
        #: ``forward_layer_features``: an intermediate group whose output is a spatial map is
        #: average-pooled over a ``layer_grid`` x ``layer_grid`` grid of cells (1 = one global
        #: average). Adapters whose hidden outputs are not spatial (token sequences) ignore it.
        self.layer_grid = 1

    # -- the contract ------------------------------------------------------------------------
    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def layer_groups(self) -> list[LayerGroup]:
        raise NotImplementedError

    def head_parameter_names(self) -> list[str]:
        raise NotImplementedError

    def forward_layer_features(self, batch: dict[str, torch.Tensor], layers: Sequence[int]) -> list[torch.Tensor]:
        """Pooled features ``(batch, width_i)`` of each requested layer group (indices into
        :meth:`layer_groups`, input -> output), from one forward pass: what a head over several
        layers reads, and what the per-layer probe scores. The last group's must equal
        :meth:`forward_features`; spatial maps of the others are pooled over ``self.layer_grid``. Default: refused, the adapter only offers its last layer."""
        raise ConfigError(
            f"adapter {self.adapter_name!r} {LAST_LAYER_ONLY} (asked for layer groups {list(layers)})",
            fix="use feature_layers: last, or implement TransferModel.forward_layer_features in the adapter's model "
                "(see docs/writing-a-plugin.md)",
        )

    def embedding_group(self) -> int:
        """The layer group whose pooled output is the backbone's own embedding: what
        ``feature_layers: last`` reads. Default: the last group, the native classifier's input.
        Override when the classifier's input is not the embedding the backbone was trained to
        give; the head then reads this group through a layer head (saved beside the native weights)."""
        return len(self.layer_groups()) - 1

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.layer_head is not None:
            return self.layer_head(self.forward_layer_features(batch, self.layer_head.layers))
        return self.forward_head(self.forward_features(batch))

    # -- a head over several layer groups ------------------------------------------------------
    @property
    def layer_head(self) -> "LayerHead | None":
        """The head over several layer groups, when the model has one (it then replaces the
        model's own classifier in ``forward``: an adapter that overrides ``forward`` must call
        ``TransferModel.forward`` when this is set)."""
        return self._modules.get("layer_head_module")

    def set_layer_head(self, head: "LayerHead | None") -> None:
        """Attach (or with ``None`` remove) a head over several layer groups. Its parameters are
        ``layer_head_module.*`` in ``state_dict()``; tlhub saves them apart from the native files."""
        self.register_module("layer_head_module", head)

    def all_head_parameter_names(self) -> list[str]:
        """The head's parameters, the layer head's included: what trains when the backbone is frozen."""
        names = list(self.head_parameter_names())
        if self.layer_head is not None:
            names += [f"layer_head_module.{n}" for n, _ in self.layer_head.named_parameters()]
        return names

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
        # the head always trains: with a layer head, that head alone (the native classifier then
        # takes no part in forward, and a trainable parameter that gets no gradient breaks DDP)
        head = self.all_head_parameter_names()
        if self.layer_head is not None:
            head = [n for n in head if n.startswith("layer_head_module.")]
        trainable |= set(head)
        for name, param in self.named_parameters():
            param.requires_grad_(name in trainable)
        # re-apply train/eval so frozen BatchNorm layers switch to eval mode now
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            # A frozen normalisation layer must not keep updating its running statistics:
            # that would silently change the frozen backbone (Keras' classic BN pitfall).
            # norm_eval (the trainer's default) keeps every BatchNorm on its pretrained
            # statistics while the rest fine-tunes. Why: lp-ft's probe was fitted on features
            # normalised by those statistics; switching to the statistics of 32-image batches
            # of data unlike ImageNet moved the features so far that the first fine-tuning
            # epoch undid the probe (Protocol A, Lite0: train loss 0.09 -> 3.4, validation
            # accuracy 0.86 -> 0.50) and ten epochs did not recover (0.83 < the probe's 0.86;
            # with norm_eval 0.89, on 990 validation images: benchmarks/run.py derive-protocol-a).
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

    def set_input_size(self, size: int | tuple[int, int] | None = None, crop_pct: float | None = None) -> None:
        """Change the input size (``image_size``: an int for square inputs, or ``(H, W)``) and/or
        the centre-crop fraction, for training and for everything after it: the adapter's
        ``preprocessing(model)`` and collate must follow. Default: refused when a value is given."""
        if size is not None or crop_pct is not None:
            raise ConfigError(
                f"adapter {self.adapter_name!r} cannot change its input size (asked for image_size={size}, crop_pct={crop_pct})",
                fix="drop image_size/crop_pct from the configuration, or implement TransferModel.set_input_size in the "
                    "adapter's model (see docs/writing-a-plugin.md)",
            )

    def set_max_length(self, n: int | None = None) -> None:
        """Change the maximum sequence length (text models); the collate and ``preprocessing``
        must follow. Default: refused when a value is given."""
        if n is not None:
            raise ConfigError(
                f"adapter {self.adapter_name!r} cannot change its maximum sequence length (asked for max_length={n})",
                fix="drop max_length from the configuration, or implement TransferModel.set_max_length in the adapter's model",
            )

    def set_augmentation(self, auto_augment: str | None = None) -> None:
        """Choose an extra training-time augmentation policy (``"trivialaugment"``, a timm policy).

        Default: stored in ``self.auto_augment``, which tlhub's image collate
        (:func:`tlhub.adapters.images.image_collate`, the default ``make_collate`` of image adapters)
        applies; refused for models without an ``image_key``. An image adapter with a collate of
        its own must apply ``model.auto_augment`` itself, or override this to refuse it."""
        if auto_augment is not None and self.image_key is None:
            raise ConfigError(
                f"adapter {self.adapter_name!r} has no image augmentation policies (asked for auto_augment={auto_augment!r})",
                fix="drop auto_augment from the configuration (it is for image models)",
            )
        self.auto_augment = auto_augment

    def set_channels_last(self, enabled: bool = True) -> None:
        """Use the channels-last memory layout, a speed hint for convolutions (image models).
        Default: a no-op, which changes no result. Weights must be written back in the default
        layout whenever they are saved."""

    def set_dropout(self, p: float) -> None:
        """Set every dropout probability (``nn.Dropout`` modules and timm's ``drop_rate`` attributes)."""
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = p
            elif isinstance(getattr(module, "drop_rate", None), float):
                module.drop_rate = p

    @classmethod
    def contract_problems(cls) -> list[str]:
        """Overrides of :data:`MODEL_HOOKS` whose signature tlhub cannot call (see
        :func:`tlhub.adapters.contract.signature_problems`); checked by ``tlhub.create_model``."""
        return signature_problems(cls, TransferModel, MODEL_HOOKS)

    def trainable_summary(self) -> dict[str, Any]:
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"parameters": total, "trainable": trainable}


#: The methods of :class:`TransferModel` tlhub calls and a model may override.
MODEL_HOOKS = (
    "forward_features", "forward_head", "forward_layer_features", "layer_groups", "head_parameter_names", "init_head", "freeze_backbone",
    "set_input_size", "set_max_length", "set_augmentation", "set_channels_last", "set_dropout",
)
