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

    def __init__(self, hf_model: nn.Module, tokenizer, *, max_length: int, pooling: str = "cls", **kwargs):
        super().__init__(**kwargs)
        self.hf_model = hf_model
        #: how a hidden layer's tokens become one vector (forward_layer_features): "mean" over the
        #: attention mask for sentence-transformers encoders (their 1_Pooling config says so),
        #: "cls" (the first token) otherwise, which is what BERT-style classifiers pool
        self.pooling = pooling
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
        if self.layer_head is not None:  # a head over several layer groups replaces the classifier
            return super().forward(batch)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self.hf_model(**inputs).logits

    def forward_layer_features(self, batch, layers):
        """One forward pass with ``output_hidden_states=True``: group ``embeddings`` is hidden
        state 0, group ``layer.N`` hidden state N+1, each pooled by ``self.pooling``; the last
        group is the classifier's input (exactly ``forward_features``)."""
        groups = self.layer_groups()
        wanted = [int(i) for i in layers]
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        out = self.hf_model(**inputs, output_hidden_states=True)
        final = self._features.take()
        states = out.hidden_states
        mask = inputs.get("attention_mask")
        result = []
        for i in wanted:
            if i == len(groups) - 1:
                result.append(final)
                continue
            name = groups[i].name
            index = 0 if name == "embeddings" else int(name.split(".")[1]) + 1 if name.startswith("layer.") else None
            if index is None or index >= len(states):
                raise ConfigError(f"layer group {i} ({name}) of {self.source} has no hidden state to pool",
                                  fix=f"choose feature_layers among the embeddings, layer.N groups and the last group ({len(groups) - 1})")
            result.append(_pool_tokens(states[index], mask, self.pooling))
        return result

    def forward_features(self, batch):
        # the model's own forward (not self.forward: with a layer head that reads other layers)
        # runs the classifier, whose input is captured
        self.hf_model(**{k: v for k, v in batch.items() if k != "labels"})
        return self._features.take()

    def forward_head(self, features):
        if not self.labels:
            raise TlhubError("this text backbone has no classification head yet", fix="fine-tune it first (tlhub train), or load a fine-tuned model")
        return self.head(features)

    def head_parameter_names(self) -> list[str]:
        ids = {id(p) for p in self.head.parameters()}
        return [n for n, p in self.named_parameters() if id(p) in ids]

    def embedding_group(self) -> int:
        """A sentence-transformers encoder's embedding is the mean of its last layer's tokens; its
        BERT pooler (a tanh layer on the first token, the native classifier's input) was never
        trained by sentence-transformers, and a probe on it scores far lower (0.66 against 0.74 on
        Protocol B with MiniLM). For such checkpoints ``feature_layers: last`` reads the last
        encoder layer, mean-pooled."""
        groups = self.layer_groups()
        last = len(groups) - 1
        if self.pooling == "mean" and last > 0 and groups[last].name == "pooler" and groups[last - 1].name.startswith("layer."):
            return last - 1
        return last

    def layer_groups(self) -> list[LayerGroup]:
        """embeddings, encoder layer 0..N-1, then whatever sits between the encoder and the head
        (pooler, final norm, RoBERTa's classifier.dense)."""
        head = set(self.head_parameter_names())
        return layer_index_groups(n for n, _ in self.named_parameters() if n not in head)


def _pool_tokens(hidden, mask, pooling: str):
    if pooling == "mean" and mask is not None:
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return ((hidden * m).sum(1) / m.sum(1).clamp(min=1)).float()
    if pooling == "mean":
        return hidden.mean(1).float()
    return hidden[:, 0].float()
