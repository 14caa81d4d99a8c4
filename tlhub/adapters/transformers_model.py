"""``TransformersTransferModel``: a transformers sequence classifier as a :class:`~tlhub.model.TransferModel`.

Kept apart from ``transformers_adapter`` so that discovering the adapter never imports torch.
"""

from __future__ import annotations

import re
from typing import Sequence

import torch
from torch import nn

from tlhub.errors import TlhubError
from tlhub.model import LayerGroup, TransferModel

_LAYER_INDEX = re.compile(r"\.(?:layer|layers|block|blocks|h)\.(\d+)\.")


class TransformersTransferModel(TransferModel):
    def __init__(self, hf_model: nn.Module, tokenizer, *, max_length: int, **kwargs):
        super().__init__(**kwargs)
        self.hf_model = hf_model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.head = _final_linear(hf_model)
        self.num_features = self.head.in_features
        self._captured: torch.Tensor | None = None
        # The features are the classifier's input, whatever pooling the architecture uses.
        self.head.register_forward_pre_hook(self._capture)

    def _capture(self, module, args):
        self._captured = args[0]

    def forward(self, batch):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self.hf_model(**inputs).logits

    def forward_features(self, batch):
        self.forward(batch)
        features, self._captured = self._captured, None
        return features

    def forward_head(self, features):
        if not self.labels:
            raise TlhubError("this text backbone has no classification head yet", fix="fine-tune it first (tlhub train), or load a fine-tuned model")
        return self.head(features)

    def head_parameter_names(self) -> list[str]:
        ids = {id(p) for p in self.head.parameters()}
        return [n for n, p in self.named_parameters() if id(p) in ids]

    def layer_groups(self) -> list[LayerGroup]:
        """embeddings, encoder layer 0..N-1, then whatever sits between the encoder and the head."""
        head = set(self.head_parameter_names())
        embeddings, layers, rest = [], {}, []
        for name, _ in self.named_parameters():
            if name in head:
                continue
            match = _LAYER_INDEX.search(name)
            if match:
                layers.setdefault(int(match.group(1)), []).append(name)
            elif ".embeddings." in name or ".embed_" in name or ".wte." in name or ".wpe." in name:
                embeddings.append(name)
            else:
                rest.append(name)  # pooler, final norm, RoBERTa's classifier.dense
        groups = [LayerGroup("embeddings", tuple(embeddings))] if embeddings else []
        groups += [LayerGroup(f"layer.{i}", tuple(names)) for i, names in sorted(layers.items())]
        if rest:
            groups.append(LayerGroup("pooler", tuple(rest)))
        return groups

    def reset_head(self, labels: Sequence[str]) -> None:
        new = nn.Linear(self.head.in_features, len(labels))
        self.hf_model._init_weights(new) if hasattr(self.hf_model, "_init_weights") else None
        _replace_module(self.hf_model, self.head, new)
        self.head = new
        self.head.register_forward_pre_hook(self._capture)
        self.hf_model.config.num_labels = len(labels)
        self.labels = list(labels)


def _final_linear(model: nn.Module) -> nn.Linear:
    """The last Linear of the classification head (``classifier``, ``classifier.out_proj``, ``score``)."""
    for attr in ("classifier", "score", "logits_proj", "head"):
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear):
            return head
        if isinstance(head, nn.Module):
            linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
            if linears:
                return linears[-1]
    raise TlhubError(f"cannot find the classification head of {type(model).__name__}",
                     fix="this architecture needs its own adapter plugin; see docs/writing-a-plugin.md")


def _replace_module(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    for name, module in root.named_modules():
        for child_name, child in module.named_children():
            if child is old:
                setattr(module, child_name, new)
                return
