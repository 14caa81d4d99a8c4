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
    from tlhub.plugins.kit import check_adapter
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


def test_random_crops_are_the_same_run_to_run(tmp_path):
    """Training crops come from a generator seeded by the run's seed (torch's, which the trainer
    sets): the same seed gives the same crops, another seed others."""
    import numpy as np
    import torch

    import tlhub
    from tlhub_audio.tiny import save_random_encoder

    model = tlhub.create_model(f"audio:{save_random_encoder(tmp_path / 'enc')}", labels=["a", "b"])
    model.max_seconds = 0.5
    adapter = tlhub.get_adapter("audio")
    rng = np.random.default_rng(0)
    clips = [{"array": rng.standard_normal(16000 * 3).astype("float32"), "sampling_rate": 16000} for _ in range(3)]

    def crops(seed):
        torch.manual_seed(seed)
        collate = adapter.make_collate(model, train=True, augment=True)
        return [collate(clips)["input_values"] for _ in range(2)]

    first, again, other = crops(0), crops(0), crops(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1])  # a fresh window per batch within a run
    assert not torch.equal(first[0], other[0])
    evaluation = adapter.make_collate(model)(clips)["input_values"]  # evaluation: always the first seconds
    assert torch.equal(evaluation, adapter.make_collate(model)(clips)["input_values"])
