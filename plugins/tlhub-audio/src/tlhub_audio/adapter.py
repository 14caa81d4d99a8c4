"""The ``audio`` adapter: transformers audio encoders as audio classifiers.

Models are built as ``AutoModelForAudioClassification`` with the checkpoint's own
``AutoFeatureExtractor``, so what tlhub saves is exactly what
``pipeline("audio-classification", model=...)`` and ``from_pretrained`` load, with the real label
names in ``id2label``. Inputs are decoded to mono float32 at their own sampling rate
(:func:`tlhub_audio.audio_io.load_audio`) and resampled to the feature extractor's rate in the
collate function.

Nothing heavy is imported at module level: tlhub imports this module at discovery time.
"""

from __future__ import annotations

from typing import Any, Callable

from tlhub.adapters.contract import Adapter, Preprocessing, SpaceSpec

#: tlhub's marker in a saved model's config.json: which adapter reloads it.
MARKER = "tlhub_adapter"
#: Clips are cut to this many seconds (the first seconds; a random window when augmenting).
DEFAULT_MAX_SECONDS = 10.0
#: config.json ``model_type`` s of transformers' audio-classification architectures.
AUDIO_MODEL_TYPES = (
    "wav2vec2",
    "wav2vec2-conformer",
    "wav2vec2-bert",
    "hubert",
    "wavlm",
    "data2vec-audio",
    "unispeech",
    "unispeech-sat",
    "sew",
    "sew-d",
    "audio-spectrogram-transformer",
    "whisper",
)


class AudioAdapter(Adapter):
    name = "audio"
    modality = "audio"
    pipeline_tag = "audio-classification"
    library_name = "transformers"
    requires = ("transformers", "torch", "torchcodec", "scipy")
    allow_patterns = (
        "config.json",
        "preprocessor_config.json",
        "model.safetensors",
        "model-*.safetensors",
        "model.safetensors.index.json",
        "README.md",
    )

    def claims(self, config: dict[str, Any]) -> bool:
        # tlhub prefers its built-in transformers adapter when it also claims a config, so a raw
        # checkpoint needs the "audio:" prefix; models saved by this adapter carry the marker.
        return config.get(MARKER) == self.name or config.get("model_type") in AUDIO_MODEL_TYPES

    def load(self, source, *, num_classes=None, labels=None, pretrained=True):
        from tlhub.adapters import download_files
        from tlhub_audio.model import build_model

        source = download_files(source, self.allow_patterns)
        if labels is None and num_classes is not None:
            labels = [f"LABEL_{i}" for i in range(num_classes)]
        model = build_model(source.path, labels=labels, pretrained=pretrained, default_max_seconds=DEFAULT_MAX_SECONDS)
        model.adapter_name = self.name
        model.source = source.display_name
        model.revision = source.commit
        return model

    def preprocessing(self, model) -> Preprocessing:
        fe = model.feature_extractor
        return Preprocessing(
            modality="audio",
            sampling_rate=int(fe.sampling_rate),
            extra={
                "feature_extractor": type(fe).__name__,
                "max_seconds": model.max_seconds,
                "do_normalize": getattr(fe, "do_normalize", None),
                "return_attention_mask": getattr(fe, "return_attention_mask", None),
                "channels": "mono (mean of channels)",
            },
        )

    def make_collate(self, model, *, train=False, augment=False) -> Callable[[list[Any]], dict]:
        from tlhub_audio.model import make_collate

        return make_collate(model, random_crop=bool(train and augment))

    def decode_input(self, value: Any) -> dict:
        from tlhub_audio.audio_io import load_audio

        return load_audio(value)

    def save_native(self, model, directory: str) -> list[str]:
        from tlhub_audio.model import save_native

        return save_native(model, directory, marker={MARKER: self.name})

    def native_load_snippet(self, repo_id: str) -> str:
        return (
            "# pip install transformers torch torchcodec   (torchcodec needs FFmpeg: apt-get install ffmpeg)\n"
            "from torchcodec.decoders import AudioDecoder\n"
            "from transformers import pipeline\n"
            f'classifier = pipeline("audio-classification", model="{repo_id}", top_k=3)\n'
            "rate = classifier.feature_extractor.sampling_rate\n"
            'samples = AudioDecoder("clip.wav", sample_rate=rate, num_channels=1).get_all_samples()\n'
            'classifier({"raw": samples.data[0].numpy(), "sampling_rate": rate})'
        )

    def diagnose(self) -> list[tuple[str, str]]:
        """Optional hook used by `tlhub plugins doctor`: can torchcodec decode audio here?
        (It needs the system's FFmpeg libraries, which pip cannot install.)"""
        from tlhub.adapters.audio import wav_bytes
        from tlhub_audio.audio_io import FFMPEG_FIX

        try:
            import numpy as np
            from torchcodec.decoders import AudioDecoder

            AudioDecoder(wav_bytes(np.zeros(1600, dtype="float32"), 16000)).get_all_samples()
        except Exception as exc:
            return [(f"torchcodec cannot decode audio ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})", FFMPEG_FIX)]
        return []

    def space_spec(self) -> SpaceSpec:
        return SpaceSpec(
            "Audio",
            {"type": "filepath", "sources": ["upload", "microphone"], "label": "Audio clip"},
            "audio",
            requirements=("transformers", "torch", "torchcodec", "numpy"),
            template=_space_template(),
        )


def _space_template() -> str | None:
    """The Space template shipped with this package: transformers + torchcodec, no tlhub;
    its packages.txt asks the Space for FFmpeg."""
    from pathlib import Path

    folder = Path(__file__).with_name("space_template")
    return str(folder) if (folder / "classifier.py").is_file() else None
