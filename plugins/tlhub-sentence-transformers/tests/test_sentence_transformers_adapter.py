"""The plugin against tlhub's conformance kit, and its embeddings against sentence-transformers.

Needs the plugin pip-installed (``pip install -e plugins/tlhub-sentence-transformers``) and the
offline snapshot of all-MiniLM-L6-v2 (``tlhub assets install``).
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = ["A gripping, beautifully acted film.", "Dull and far too long.", "Charming, funny and moving.", "A tedious mess."]


@pytest.fixture(scope="module", autouse=True)
def backbone():
    from tlhub.core.names import cached_models

    if MINILM not in cached_models():
        from tlhub.offline.install import install_assets

        install_assets([MINILM], progress=False)
    return MINILM


def test_conformance(tmp_path):
    from tlhub.plugins.kit import check_adapter

    report = check_adapter("sentence-transformers", MINILM, TEXTS, ["negative", "positive"], tmp_dir=tmp_path)
    print(report)


def test_embeddings_equal_the_librarys():
    import torch

    import tlhub

    st = pytest.importorskip("sentence_transformers", reason="pip install sentence-transformers")
    model = tlhub.create_model(f"sentence-transformers:{MINILM}").eval()
    batch = tlhub.get_adapter("sentence-transformers").make_collate(model)(TEXTS)
    with torch.no_grad():
        ours = model.forward_features(batch)
    theirs = st.SentenceTransformer(MINILM, device="cpu").encode(TEXTS, convert_to_tensor=True).cpu()
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_saved_folder_loads_in_sentence_transformers(tmp_path):
    import torch

    import tlhub

    st = pytest.importorskip("sentence_transformers", reason="pip install sentence-transformers")
    adapter = tlhub.get_adapter("sentence-transformers")
    model = tlhub.create_model(f"sentence-transformers:{MINILM}", labels=["negative", "positive"]).eval()
    adapter.save_native(model, str(tmp_path))
    with torch.no_grad():
        logits = model(adapter.make_collate(model)(TEXTS))
    native = st.SentenceTransformer(str(tmp_path), device="cpu").encode(TEXTS, convert_to_tensor=True).cpu()
    assert torch.allclose(native, logits, atol=1e-5)
    assert tlhub.create_model(str(tmp_path)).adapter_name == "sentence-transformers"


def test_pooling_modes_follow_the_config(tmp_path):
    """cls / max / mean-sqrt-len and concatenations, as sentence-transformers computes them."""
    import torch

    from tlhub_sentence_transformers.model import Pooling, _pooling_modes

    tokens = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert _pooling_modes({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}) == ["cls", "mean"]
    assert _pooling_modes({"pooling_mode": "lasttoken"}) == ["lasttoken"]
    assert _pooling_modes({}) == ["mean"]
    out = Pooling(4, ["cls", "max", "mean", "mean_sqrt_len_tokens", "lasttoken"])(tokens, mask)
    assert out.shape == (2, 20)
    assert torch.allclose(out[0, :4], tokens[0, 0])
    assert torch.allclose(out[0, 4:8], tokens[0, :3].max(dim=0).values)
    assert torch.allclose(out[0, 8:12], tokens[0, :3].mean(dim=0))
    assert torch.allclose(out[0, 12:16], tokens[0, :3].sum(dim=0) / 3**0.5)
    assert torch.allclose(out[0, 16:], tokens[0, 2]) and torch.allclose(out[1, 16:], tokens[1, 4])
