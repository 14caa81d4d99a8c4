"""The saved-model folder: native weights plus tlhub's training record, written atomically.

Layout (everything a model card or a Space needs, read from files, never retyped)::

    MODEL_DIR/
      config.json, model.safetensors, tokenizer files ...   # the backbone library's own layout
      tlhub.json           # training record: adapter, base model, labels, preprocessing, data,
                           # strategy and stages, seed, resolved config, package versions
      eval_results.json    # held-out evaluation: metrics, per-class table, confusion matrix
      training_log.json    # one row per epoch: stage, epoch, losses, validation metrics, lr
      images/confusion_matrix.png, images/training_curves.png
      examples/            # a few validation inputs (for Spaces)

The native files alone load without tlhub (``timm.create_model("local-dir:...")``,
``AutoModelForSequenceClassification.from_pretrained``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from tlhub.errors import TlhubError

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.model import TransferModel

RECORD_FILE = "tlhub.json"
EVAL_FILE = "eval_results.json"
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


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON so that a crash leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def swap_in(staging: Path, directory: Path) -> None:
    """Put a completely written ``staging`` folder at ``directory``, replacing what was there.

    Two renames: the old folder stays whole until the new one is complete, so an interruption
    leaves one or the other (or the old one beside it as ``.NAME.old``), never a mix.
    """
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
        os.replace(staging, directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, directory)


def save_model(
    model: "TransferModel",
    directory: str | os.PathLike,
    *,
    record: dict[str, Any],
    extra_files: dict[str, Any] | None = None,
    writers: Sequence[Callable[[Path], None]] = (),
) -> Path:
    """Save ``model`` natively plus ``record`` (and JSON ``extra_files``) into ``directory``.

    ``writers`` are called with the staging folder to add more files (evaluation, plots) that
    must land together with the weights.

    Written into a sibling temporary folder first and swapped in with a rename, so an interrupted
    save never leaves a half-written model where a good one was.
    """
    from tlhub.adapters.registry import get_adapter

    directory = Path(directory)
    adapter = get_adapter(model.adapter_name)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.saving-"))
    try:
        adapter.save_native(model, str(staging))
        full_record = {
            "tlhub_version": package_versions().get("tlhub"),
            "adapter": adapter.name,
            "library_name": adapter.library_name,
            "pipeline_tag": adapter.pipeline_tag,
            "modality": adapter.modality,
            "base_model": getattr(model, "base_model", None) or model.source,
            "base_model_revision": model.revision,
            "labels": list(model.labels),
            "preprocessing": adapter.preprocessing(model).to_dict(),
            "versions": package_versions(),
            **record,
        }
        write_json_atomic(staging / RECORD_FILE, full_record)
        for name, data in (extra_files or {}).items():
            write_json_atomic(staging / name, data)
        for write in writers:
            write(staging)
        swap_in(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def load_record(directory: str | os.PathLike) -> dict[str, Any]:
    """The training record of a saved model (``tlhub.json``)."""
    path = Path(directory) / RECORD_FILE
    if not path.is_file():
        raise TlhubError(f"{directory} is not a model saved by tlhub (no {RECORD_FILE})", fix="train one with `tlhub train`, or point at its output folder")
    return json.loads(path.read_text(encoding="utf-8"))


def load_json(directory: str | os.PathLike, name: str) -> Any:
    path = Path(directory) / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
