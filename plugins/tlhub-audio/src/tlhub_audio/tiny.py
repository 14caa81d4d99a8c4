"""Small, *randomly initialised* audio encoders saved to a folder, for tests and demos.

No pretrained audio weights can be downloaded here (the Hub is unreachable and no package
registry carries them), so the tests and the offline demo build a tiny wav2vec2 or HuBERT with
random weights. They show that the whole pipeline works (decode -> features -> train -> save ->
reload -> Space); they say nothing about how well a *pretrained* audio encoder transfers.

    python -m tlhub_audio.tiny ./tiny-wav2vec2 --arch wav2vec2
    tlhub train --backbone audio:./tiny-wav2vec2 --data ./spoken-words
"""

from __future__ import annotations

import argparse
from pathlib import Path

ARCHES = ("wav2vec2", "hubert")


def save_random_encoder(directory: str | Path, *, arch: str = "wav2vec2", hidden_size: int = 48, layers: int = 2,
                        sampling_rate: int = 16000, seed: int = 0) -> Path:
    """Write a small random ``arch`` encoder (config.json, model.safetensors, preprocessor_config.json)."""
    import torch
    from transformers import AutoModel, HubertConfig, Wav2Vec2Config, Wav2Vec2FeatureExtractor

    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {ARCHES}, got {arch!r}")
    common = dict(
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden_size * 2,
        # the standard 7-layer convolutional feature encoder (20 ms frames at 16 kHz), narrow
        conv_dim=(32,) * 7,
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        classifier_proj_size=32,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        vocab_size=8,
    )
    config = Wav2Vec2Config(**common) if arch == "wav2vec2" else HubertConfig(**common)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=sampling_rate, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--arch", choices=ARCHES, default="wav2vec2")
    parser.add_argument("--hidden-size", type=int, default=48)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = save_random_encoder(args.directory, arch=args.arch, hidden_size=args.hidden_size, layers=args.layers, seed=args.seed)
    print(f"random {args.arch} encoder written to {path} (NOT pretrained: for pipeline tests and demos)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
