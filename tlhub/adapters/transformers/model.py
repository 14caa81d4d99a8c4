"""``TransformersTransferModel``: a transformers sequence classifier as a :class:`~tlhub.adapters.model.TransferModel`.

Kept apart from the adapter module so that discovering the adapter never imports torch.
"""

from __future__ import annotations

from torch import nn

from tlhub.adapters.hf import InputCapture, find_classifier, layer_index_groups
from tlhub.adapters.model import LayerGroup, TransferModel
from tlhub.errors import ConfigError, TlhubError


class TransformersTransferModel(TransferModel):
    image_key = None  # text: no image tensor in the batch

    def __init__(self, hf_model: nn.Module, tokenizer, *, max_length: int, **kwargs):
        super().__init__(**kwargs)
        self.hf_model = hf_model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.head = find_classifier(hf_model)
        self.num_features = self.head.in_features
        # The features are the classifier's input, whatever pooling the architecture uses.
        self._features = InputCapture(self.head)

    def set_max_length(self, n: int | None = None) -> None:
        if n is None:
            return
        limit = getattr(self.hf_model.config, "max_position_embeddings", None)
        if int(n) < 1 or (isinstance(limit, int) and int(n) > limit):
            raise ConfigError(f"max_length={n} is outside what {self.source} can take (1 to {limit})", fix=f"use a max_length of at most {limit}")
        self.max_length = int(n)

    def forward(self, batch):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self.hf_model(**inputs).logits

    def forward_features(self, batch):
        self.forward(batch)
        return self._features.take()

    def forward_head(self, features):
        if not self.labels:
            raise TlhubError("this text backbone has no classification head yet", fix="fine-tune it first (tlhub train), or load a fine-tuned model")
        return self.head(features)

    def head_parameter_names(self) -> list[str]:
        ids = {id(p) for p in self.head.parameters()}
        return [n for n, p in self.named_parameters() if id(p) in ids]

    def layer_groups(self) -> list[LayerGroup]:
        """embeddings, encoder layer 0..N-1, then whatever sits between the encoder and the head
        (pooler, final norm, RoBERTa's classifier.dense)."""
        head = set(self.head_parameter_names())
        return layer_index_groups(n for n, _ in self.named_parameters() if n not in head)
