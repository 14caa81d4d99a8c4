"""The saved-model folder: native weights plus tlhub's training record, written atomically.

Layout (everything a model card or a Space needs, read from files, never retyped)::

    MODEL_DIR/
      config.json, model.safetensors, tokenizer files ...   # the backbone library's own layout
      tlhub.json           # the TrainingRecord (tlhub.core.record): adapter, base model, labels,
                           # preprocessing, data, strategy and stages, seed, config, package versions
      eval_results.json    # held-out evaluation: metrics, per-class table, confusion matrix
      training_log.json    # one row per epoch: stage, epoch, losses, validation metrics, lr
      images/confusion_matrix.png, images/training_curves.png
      examples/            # a few validation inputs (for Spaces)
      layer_head.safetensors, layers.json   # only for a head over several layer groups (feature_layers)

The native files alone load without tlhub (``timm.create_model("local-dir:...")``,
``AutoModelForSequenceClassification.from_pretrained``). A head over several layer groups is no
part of any library's format: the native files then hold the backbone (its own classifier is not
the trained head), and only ``tlhub.create_model`` loads the model as trained.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from tlhub.adapters.contract import WeightsInfo
from tlhub.adapters.registry import get_adapter
from tlhub.adapters.source import hub_repo_id
from tlhub.core.record import LAYER_HEAD_FILE, RECORD_FILE, TrainingRecord  # RECORD_FILE: one of the folder's names below
from tlhub.fileio import swap_in, write_json_atomic

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.adapters.model import TransferModel

__all__ = ["RECORD_FILE", "LAYER_HEAD_FILE", "LAYERS_FILE", "EVAL_FILE", "LOG_FILE", "IMAGES_DIR", "EXAMPLES_DIR", "save_model", "training_record", "load_record", "load_json", "package_versions"]

EVAL_FILE = "eval_results.json"
LAYERS_FILE = "layers.json"
LOG_FILE = "training_log.json"
IMAGES_DIR = "images"
EXAMPLES_DIR = "examples"

#: Packages whose versions are recorded with every saved model.
RECORDED_PACKAGES = ("tlhub", "torch", "timm", "transformers", "datasets", "accelerate", "evaluate", "huggingface_hub", "safetensors")


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            pass
    return out


def save_model(
    model: "TransferModel",
    directory: str | os.PathLike,
    *,
    record: TrainingRecord | None = None,
    extra_files: dict[str, Any] | None = None,
    writers: Sequence[Callable[[Path], None]] = (),
) -> Path:
    """Save ``model`` natively plus ``record`` (and JSON ``extra_files``) into ``directory``.

    ``record`` is built with :func:`training_record` (the model's own facts plus the run's);
    without one, the model's own facts alone are recorded. ``writers`` are called with the
    staging folder to add more files (evaluation, plots) that must land together with the weights.

    Written into a sibling temporary folder first and swapped in with a rename, so an interrupted
    save never leaves a half-written model where a good one was.
    """
    record = record if record is not None else training_record(model)
    directory = Path(directory)
    adapter = get_adapter(model.adapter_name)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.saving-"))
    try:
        adapter.save_native(model, str(staging))
        if model.layer_head is not None:
            from safetensors.torch import save_file

            save_file({k: v.detach().cpu().contiguous() for k, v in model.layer_head.state_dict().items()}, str(staging / LAYER_HEAD_FILE))
        record.save(staging)
        for name, data in (extra_files or {}).items():
            write_json_atomic(staging / name, data)
        for write in writers:
            write(staging)
        swap_in(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def training_record(model: "TransferModel", **run: Any) -> TrainingRecord:
    """The record of ``model`` as it is now (adapter, labels, preprocessing, lineage, package
    versions), plus the ``run`` fields of :class:`TrainingRecord` (dataset, strategy, stages, seed...)."""
    adapter = get_adapter(model.adapter_name)
    weights = model.base_weights
    if weights is None:
        # An adapter that says nothing about its weights: the name it was loaded by, when that
        # is a Hub id and not a folder on this machine (lineage never shows a local path).
        name = hub_repo_id(model.source)
        weights = WeightsInfo(name=name, revision=model.revision if name else None)
    base_model = hub_repo_id(weights.name, check_disk=False)  # the adapter's word: a Hub id
    versions = package_versions()
    return TrainingRecord(
        adapter=adapter.name,
        labels=list(model.labels),
        modality=adapter.modality,
        preprocessing=adapter.preprocessing(model),
        library_name=adapter.library_name,
        pipeline_tag=adapter.pipeline_tag,
        base_model=base_model,
        base_model_revision=weights.revision if base_model else None,
        base_model_license=weights.license,
        tlhub_version=versions.get("tlhub"),
        versions=versions,
        layer_head=model.layer_head.spec() if model.layer_head is not None else None,
        **run,
    )


def load_record(directory: str | os.PathLike) -> TrainingRecord:
    """The training record of a saved model (``tlhub.json``, any version)."""
    return TrainingRecord.load(directory)


def load_json(directory: str | os.PathLike, name: str) -> Any:
    path = Path(directory) / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
