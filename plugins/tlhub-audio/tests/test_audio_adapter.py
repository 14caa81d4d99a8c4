"""The plugin against tlhub's conformance kit, on small RANDOM encoders and real espeak-ng speech.

Needs the plugin pip-installed (``pip install -e plugins/tlhub-audio``), torchcodec with the
FFmpeg libraries, and espeak-ng (``apt-get install -y espeak-ng``). A random encoder shows that the
pipeline works, not that accuracy is good (no pretrained audio weights are available offline).
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

WORDS = ["down", "no", "up", "yes"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from tlhub_audio.adapter import AudioAdapter
    from tlhub_audio.speech import espeak_binary, make_spoken_words

    problems = AudioAdapter().diagnose()
    if problems:
        pytest.skip(f"{problems[0][0]}; fix: {problems[0][1]}")
    if espeak_binary() is None:
        pytest.skip("espeak-ng is not installed: apt-get install -y espeak-ng")
    folder = tmp_path_factory.mktemp("words")
    make_spoken_words(folder, words=WORDS, voices=("en-us", "en-gb"), speeds=(150,), pitches=(50,))
    return [str(folder / word / "en-us-150-50.wav") for word in WORDS]


@pytest.mark.parametrize("arch", ["wav2vec2", "hubert"])
def test_conformance(clips, tmp_path, arch):
    from tlhub.testing import check_adapter
    from tlhub_audio.tiny import save_random_encoder

    encoder = save_random_encoder(tmp_path / arch, arch=arch)
    report = check_adapter("audio", str(encoder), clips, WORDS, tmp_dir=tmp_path)
    print(report)


def test_logits_are_the_transformers_models(clips, tmp_path):
    import torch

    import tlhub
    from tlhub_audio.tiny import save_random_encoder

    model = tlhub.create_model(f"audio:{save_random_encoder(tmp_path / 'enc')}", labels=WORDS).eval()
    adapter = tlhub.get_adapter("audio")
    batch = adapter.make_collate(model)([adapter.decode_input(c) for c in clips])
    with torch.no_grad():
        assert torch.allclose(model(batch), model.hf_model(**batch).logits, atol=1e-5)
