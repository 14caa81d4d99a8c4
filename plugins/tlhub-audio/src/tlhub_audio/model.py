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

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from tlhub.adapters.hf import InputCapture, find_classifier, layer_index_groups, load_classifier, write_labels
from tlhub.adapters.model import LayerGroup, TransferModel
from tlhub.errors import TlhubError
#: below this many samples the convolutional feature encoders have nothing to convolve
MIN_SAMPLES = 1600
#: front-end parameter names (input side), in execution order
_FRONT = (
    ("feature_encoder", ("feature_extractor.", "feature_encoder.", "embeddings.", "conv1.", "conv2.", "embed_positions.")),
    ("feature_projection", ("feature_projection.", "masked_spec_embed", "encoder.pos_conv_embed.")),
)


class AudioTransferModel(TransferModel):
    image_key = None  # audio: no image tensor in the batch

    def __init__(self, hf_model: nn.Module, feature_extractor, *, max_seconds: float, **kwargs):
        super().__init__(**kwargs)
        self.hf_model = hf_model
        self.feature_extractor = feature_extractor
        self.max_seconds = float(max_seconds)
        self.pool_first = _poolable(hf_model)
        if self.pool_first:
            self.num_features = int(hf_model.config.hidden_size)
        else:
            self._head = find_classifier(hf_model, ("classifier", "score", "head"))
            self._features = InputCapture(self._head)
            self.num_features = int(self._head.in_features)

    def _inputs(self, batch):
        return {k: v for k, v in batch.items() if k != "labels"}

    def forward(self, batch):
        if self.pool_first:
            return self.forward_head(self.forward_features(batch))
        return self.hf_model(**self._inputs(batch)).logits

    def forward_features(self, batch):
        if not self.pool_first:
            self.hf_model(**self._inputs(batch))
            return self._features.take()
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

        def short(name: str) -> str:
            return name[len(prefix):] if name.startswith(prefix) else name

        def front(starts: tuple[str, ...], post_norm: bool = False):
            # post-norm wav2vec2 normalises before the layers: that norm belongs to the front end
            return lambda n: short(n).startswith(starts) or (post_norm and not stable_norm and short(n).startswith("encoder.layer_norm."))

        first = [(group, front(starts, group == "feature_projection")) for group, starts in _FRONT]
        return layer_index_groups((n for n, _ in self.named_parameters() if n not in head), first=first, rest="encoder.final")


def _poolable(model: nn.Module) -> bool:
    """True for the wav2vec2 family's head: projector -> masked mean -> classifier."""
    return (
        isinstance(getattr(model, "projector", None), nn.Linear)
        and isinstance(getattr(model, "classifier", None), nn.Linear)
        and hasattr(model, "_get_feature_vector_attention_mask")
        and not getattr(model.config, "use_weighted_layer_sum", False)
    )


# ------------------------------------------------------------------------------------------
# loading and saving


def build_model(path: Path, *, labels: Sequence[str] | None, pretrained: bool, default_max_seconds: float) -> AudioTransferModel:
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    model, labels = load_classifier(AutoModelForAudioClassification, path, labels=labels, pretrained=pretrained,
                                    head_suffixes=("ForAudioClassification", "ForSequenceClassification"))
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
    write_labels(model.hf_model.config, model.labels, marker)
    model.hf_model.save_pretrained(out)
    # the clip length used in training travels with the preprocessing config
    model.feature_extractor.tlhub_max_seconds = model.max_seconds
    model.feature_extractor.save_pretrained(out)
    return sorted(p.name for p in out.iterdir() if p.is_file())


# ------------------------------------------------------------------------------------------
# batches


def make_collate(model: AudioTransferModel, *, random_crop: bool):
    """Resample to the feature extractor's rate, cut to ``max_seconds`` (a random window, seeded
    from the run's seed, when ``random_crop``), pad very short clips, extract the features."""
    import numpy as np

    from tlhub.adapters.audio import CropRandom, crop
    from tlhub_audio.audio_io import load_audio, resample

    fe = model.feature_extractor
    rate = int(fe.sampling_rate)
    max_samples = max(int(model.max_seconds * rate), MIN_SAMPLES)
    rng = CropRandom() if random_crop else None

    def prepare(item) -> Any:
        clip = item if isinstance(item, dict) and "array" in item else load_audio(item)
        array = crop(resample(clip["array"], clip.get("sampling_rate"), rate), max_samples, rng() if rng else None)
        if len(array) < MIN_SAMPLES:
            array = np.pad(array, (0, MIN_SAMPLES - len(array)))
        return array

    def collate(items: list[Any]) -> dict:
        arrays = [prepare(item) for item in items]
        batch = fe(arrays, sampling_rate=rate, padding=True, return_tensors="pt")
        return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}

    return collate
