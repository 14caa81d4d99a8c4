"""``AudioTransferModel``: a transformers audio classifier as a tlhub ``TransferModel``.

For the wav2vec2 family (wav2vec2, HuBERT, WavLM, data2vec-audio, UniSpeech, SEW) the
classification head is ``projector`` (hidden -> 256) then mean pooling over the valid frames then
``classifier``. Projection and mean pooling are both linear, so they commute: this model pools
the encoder's hidden states first (the features, ``hidden_size`` wide) and treats
``projector`` + ``classifier`` as the head. The logits are those of the transformers model (the
tests check it), and a linear probe trains the whole new head instead of leaving a randomly
initialised projector frozen in the "backbone".

Other architectures (AST, Whisper...) fall back to what the built-in text adapter does: the
features are whatever the final classifier layer receives.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from tlhub.errors import TlhubError
from tlhub.model import LayerGroup, TransferModel

_LAYER_INDEX = re.compile(r"\.(?:layer|layers|block|blocks)\.(\d+)\.")
#: below this many samples the convolutional feature encoders have nothing to convolve
MIN_SAMPLES = 1600
#: front-end parameter names (input side), in execution order
_FRONT = (
    ("feature_encoder", ("feature_extractor.", "feature_encoder.", "embeddings.", "conv1.", "conv2.", "embed_positions.")),
    ("feature_projection", ("feature_projection.", "masked_spec_embed", "encoder.pos_conv_embed.")),
)


class AudioTransferModel(TransferModel):
    def __init__(self, hf_model: nn.Module, feature_extractor, *, max_seconds: float, **kwargs):
        super().__init__(**kwargs)
        self.hf_model = hf_model
        self.feature_extractor = feature_extractor
        self.max_seconds = float(max_seconds)
        self.pool_first = _poolable(hf_model)
        self._captured: torch.Tensor | None = None
        if self.pool_first:
            self.num_features = int(hf_model.config.hidden_size)
        else:
            self._head = _final_linear(hf_model)
            self._head.register_forward_pre_hook(self._capture)
            self.num_features = int(self._head.in_features)

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    def _capture(self, module, args):
        self._captured = args[0]

    def _inputs(self, batch):
        return {k: v for k, v in batch.items() if k != "labels"}

    def forward(self, batch):
        if self.pool_first:
            return self.forward_head(self.forward_features(batch))
        return self.hf_model(**self._inputs(batch)).logits

    def forward_features(self, batch):
        if not self.pool_first:
            self.hf_model(**self._inputs(batch))
            features, self._captured = self._captured, None
            return features
        model = self.hf_model
        inputs = self._inputs(batch)
        mask = inputs.get("attention_mask")
        base = getattr(model, model.base_model_prefix)
        hidden = base(**inputs, return_dict=True).last_hidden_state
        if mask is None:
            return hidden.mean(dim=1)
        frames = model._get_feature_vector_attention_mask(hidden.shape[1], mask).to(hidden.dtype)
        return (hidden * frames.unsqueeze(-1)).sum(dim=1) / frames.sum(dim=1, keepdim=True).clamp(min=1.0)

    def forward_head(self, features):
        if not self.labels:
            raise TlhubError("this audio backbone has no classification head yet", fix="fine-tune it first (tlhub train)")
        if self.pool_first:
            return self.hf_model.classifier(self.hf_model.projector(features))
        return self._head(features)

    def init_head(self) -> None:
        """Uniform logits at the start (what tlhub's trainer asks for): zero the final classifier
        only. Zeroing the projector too would leave both layers without gradients for ever."""
        final = self.hf_model.classifier if self.pool_first else self._head
        with torch.no_grad():
            final.weight.zero_()
            if final.bias is not None:
                final.bias.zero_()

    def head_modules(self) -> list[nn.Module]:
        return [self.hf_model.projector, self.hf_model.classifier] if self.pool_first else [self._head]

    def head_parameter_names(self) -> list[str]:
        ids = {id(p) for m in self.head_modules() for p in m.parameters()}
        return [n for n, p in self.named_parameters() if id(p) in ids]

    def layer_groups(self) -> list[LayerGroup]:
        """feature encoder (convolutions) -> feature projection -> transformer layers 0..N-1 ->
        what follows them; the head (projector + classifier) is left out."""
        head = set(self.head_parameter_names())
        prefix = f"hf_model.{self.hf_model.base_model_prefix}."
        stable_norm = bool(getattr(self.hf_model.config, "do_stable_layer_norm", True))
        front: dict[str, list[str]] = {name: [] for name, _ in _FRONT}
        layers: dict[int, list[str]] = {}
        rest: list[str] = []
        for name, _ in self.named_parameters():
            if name in head:
                continue
            short = name[len(prefix):] if name.startswith(prefix) else name
            match = _LAYER_INDEX.search("." + short)
            group = next((g for g, starts in _FRONT if short.startswith(starts)), None)
            if group is None and short.startswith("encoder.layer_norm.") and not stable_norm:
                group = "feature_projection"  # post-norm wav2vec2 normalises before the layers
            if group:
                front[group].append(name)
            elif match:
                layers.setdefault(int(match.group(1)), []).append(name)
            else:
                rest.append(name)
        groups = [LayerGroup(g, tuple(names)) for g, names in front.items() if names]
        groups += [LayerGroup(f"layer.{i}", tuple(names)) for i, names in sorted(layers.items())]
        if rest:
            groups.append(LayerGroup("encoder.final", tuple(rest)))
        return groups

    def reset_head(self, labels: Sequence[str]) -> None:
        for module in self.head_modules():
            module.reset_parameters()
        if len(labels) != self.hf_model.classifier.out_features:
            old = self.hf_model.classifier
            self.hf_model.classifier = nn.Linear(old.in_features, len(labels))
            if not self.pool_first:
                self._head = _final_linear(self.hf_model)
                self._head.register_forward_pre_hook(self._capture)
        self.hf_model.config.num_labels = len(labels)
        self.labels = list(labels)


def _poolable(model: nn.Module) -> bool:
    """True for the wav2vec2 family's head: projector -> masked mean -> classifier."""
    return (
        isinstance(getattr(model, "projector", None), nn.Linear)
        and isinstance(getattr(model, "classifier", None), nn.Linear)
        and hasattr(model, "_get_feature_vector_attention_mask")
        and not getattr(model.config, "use_weighted_layer_sum", False)
    )


def _final_linear(model: nn.Module) -> nn.Linear:
    for attr in ("classifier", "score", "head"):
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear):
            return head
        if isinstance(head, nn.Module):
            linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
            if linears:
                return linears[-1]
    raise TlhubError(f"cannot find the classification head of {type(model).__name__}",
                     fix="use an architecture that AutoModelForAudioClassification supports")


# ------------------------------------------------------------------------------------------
# loading and saving


def build_model(path: Path, *, labels: Sequence[str] | None, pretrained: bool, default_max_seconds: float) -> AudioTransferModel:
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification
    from transformers.utils import logging as hf_logging

    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    has_head = any(a.endswith(("ForAudioClassification", "ForSequenceClassification")) for a in (config.architectures or []))
    if labels is None:
        labels = [config.id2label[i] for i in range(config.num_labels)] if has_head else []
    labels = [str(label) for label in labels]
    kwargs: dict[str, Any] = dict(num_labels=max(len(labels), 1), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    if labels and has_head and len(labels) != config.num_labels:
        kwargs["ignore_mismatched_sizes"] = True
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized classifier" is the point of transfer learning
    try:
        if pretrained:
            model = AutoModelForAudioClassification.from_pretrained(path, trust_remote_code=False, **kwargs)
        else:
            model = AutoModelForAudioClassification.from_config(AutoConfig.from_pretrained(path, **{k: v for k, v in kwargs.items() if k != "ignore_mismatched_sizes"}))
    finally:
        hf_logging.set_verbosity(verbosity)
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise TlhubError(f"{path} has no usable feature extractor (preprocessor_config.json): {exc}",
                         fix="save the checkpoint's feature extractor next to it (feature_extractor.save_pretrained(folder))") from None
    max_seconds = getattr(feature_extractor, "tlhub_max_seconds", None) or default_max_seconds
    return AudioTransferModel(model, feature_extractor, max_seconds=float(max_seconds),
                              adapter_name="audio", source=str(path), labels=labels)


def save_native(model: AudioTransferModel, directory: str, *, marker: dict[str, str]) -> list[str]:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = model.hf_model.config
    for key, value in marker.items():
        setattr(config, key, value)
    config.id2label = dict(enumerate(model.labels))
    config.label2id = {label: i for i, label in enumerate(model.labels)}
    model.hf_model.save_pretrained(out)
    # the clip length used in training travels with the preprocessing config
    model.feature_extractor.tlhub_max_seconds = model.max_seconds
    model.feature_extractor.save_pretrained(out)
    return sorted(p.name for p in out.iterdir() if p.is_file())


# ------------------------------------------------------------------------------------------
# batches


def make_collate(model: AudioTransferModel, *, random_crop: bool):
    import numpy as np

    from tlhub_audio.audio_io import load_audio, resample

    fe = model.feature_extractor
    rate = int(fe.sampling_rate)
    max_samples = max(int(model.max_seconds * rate), MIN_SAMPLES)
    rng = np.random.default_rng()

    def prepare(item) -> Any:
        clip = item if isinstance(item, dict) and "array" in item else load_audio(item)
        array = resample(clip["array"], clip.get("sampling_rate"), rate)
        if len(array) > max_samples:
            start = int(rng.integers(0, len(array) - max_samples + 1)) if random_crop else 0
            array = array[start : start + max_samples]
        if len(array) < MIN_SAMPLES:
            array = np.pad(array, (0, MIN_SAMPLES - len(array)))
        return array

    def collate(items: list[Any]) -> dict:
        arrays = [prepare(item) for item in items]
        batch = fe(arrays, sampling_rate=rate, padding=True, return_tensors="pt")
        return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}

    return collate
