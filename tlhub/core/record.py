"""``TrainingRecord``: the typed, versioned record of what a run saved (``tlhub.json``).

One dataclass, written by the trainer (through :func:`tlhub.core.saving.save_model`) and read by
``create_model``, evaluation, model cards and Spaces, so that nobody guesses key names.

Versions of the file:

- **1** (no ``schema_version`` key): the untyped dict tlhub wrote before this module. Its keys
  are the same as version 2's; ``base_model`` could be a local folder path or an ``hf-hub:``
  name, and there was no ``base_model_license``. :meth:`TrainingRecord.from_dict` reads it.
- **2**: this dataclass. Keys tlhub does not know (a newer field, or one a plugin added) are kept
  in ``extra`` and written back, never dropped.
- **3**: adds ``layer_head`` (a head over several layer groups, its weights in
  ``layer_head.safetensors``), ``layers`` (the per-layer evidence) and ``probe`` (how the linear
  probe chose its regularisation). A version-2 reader would load such a model without its head,
  so it is told to upgrade instead. ``selection`` (``--backbone auto``: how the backbone was
  chosen) and ``recipe`` (``--recipe auto``: the plan and its reasons) came later within version
  3: an older version-3 reader keeps them in ``extra``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tlhub.adapters.contract import MODALITIES, Preprocessing
from tlhub.adapters.source import HUB_REPO_ID_RE, hub_repo_id
from tlhub.errors import ConfigError, TlhubError
from tlhub.fileio import write_json_atomic

RECORD_FILE = "tlhub.json"
#: the weights of a head over several layer groups (``TrainingRecord.layer_head``), beside the native files
LAYER_HEAD_FILE = "layer_head.safetensors"
#: The version this code writes. Bump it when a field changes meaning, and teach ``from_dict``
#: to read the previous one.
SCHEMA_VERSION = 3

#: A Hub repo id, ``ORG/NAME`` (what the Hub accepts as a card's ``base_model``).

_FIX_RETRAIN = "train again with `tlhub train`, or restore the folder from where it was pushed"


@dataclass
class DatasetInfo:
    """The data a model was trained on: its name, the size of each split, the data report."""

    name: str | None = None
    splits: dict[str, int] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split, size in self.splits.items():
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ConfigError(f"dataset split {split!r} has size {size!r}, not a count", fix="record split sizes as whole numbers >= 0")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "DatasetInfo":
        d = d or {}
        splits = d.get("splits") or {}
        return cls(name=d.get("name"), splits={str(k): int(v) for k, v in splits.items()}, report=dict(d.get("report") or {}))


@dataclass
class TrainingRecord:
    """Everything a saved model's card, Space and reload need to know about how it was made."""

    adapter: str
    labels: list[str]
    modality: str
    preprocessing: Preprocessing
    library_name: str | None = None
    pipeline_tag: str | None = None
    #: lineage: a Hub repo id, never a local path (``None`` when the weights' origin is unknown)
    base_model: str | None = None
    base_model_revision: str | None = None
    base_model_license: str | None = None
    dataset: DatasetInfo = field(default_factory=DatasetInfo)
    strategy: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    epochs_run: int | None = None
    best_epoch: int | None = None
    selected_by: str | None = None
    best_validation_accuracy: float | None = None
    best_validation_loss: float | None = None
    seed: int | None = None
    #: the resolved ``TrainConfig`` as a dict (what ``tlhub train`` ran with)
    config: dict[str, Any] = field(default_factory=dict)
    num_processes: int = 1
    mixed_precision: str | None = None
    #: the frozen feature pass's precision ("fp32", "bf16", "fp16"); ``None`` when no features were cached
    feature_precision: str | None = None
    #: the data pre-flight's counts (``tlhub.engine.doctor``): finding kind -> count, checks run, imbalance ratio
    data_checks: dict[str, Any] = field(default_factory=dict)
    #: the loss's class weights: mode asked, what was applied, imbalance ratio and threshold, weight per label
    class_weights: dict[str, Any] | None = None
    #: repeated runs (``--repeats K``, tlhub.engine.repeats): every seed's scores, mean ± sd, which was kept and why
    repeats: dict[str, Any] | None = None
    #: a head over several layer groups: ``{"layers", "widths", "num_classes"}`` (weights in LAYER_HEAD_FILE);
    #: ``None`` when the native classifier is the head
    layer_head: dict[str, Any] | None = None
    #: stage 2's evidence (``tlhub.engine.layers.LayerEvidence.to_dict``): per-layer scores, the chosen groups and why, unfreeze
    layers: dict[str, Any] | None = None
    #: the linear probe's fit: solver, the L2 strength chosen and the scores it was chosen by
    probe: dict[str, Any] | None = None
    #: ``--backbone auto``: tlhub select's ranking (``tlhub.engine.selection.Selection.to_dict``) and its one-line summary
    selection: dict[str, Any] | None = None
    #: ``--recipe auto``: every setting it chose with the reason, the evidence, the budget, planned and actual seconds
    recipe: dict[str, Any] | None = None
    tlhub_version: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    #: keys of the file this version does not know, kept so that nothing is lost on rewrite
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.labels = [str(label) for label in self.labels]
        if not self.adapter:
            raise ConfigError("a training record needs the adapter's name", fix="save models with tlhub.core.saving.save_model")
        if not self.labels:
            raise ConfigError("a training record needs the model's labels (none given)", fix="give the model its class labels before saving it")
        if self.modality not in MODALITIES:
            raise ConfigError(f"unknown modality {self.modality!r}", fix=f"use one of {', '.join(MODALITIES)}")
        if not isinstance(self.preprocessing, Preprocessing):
            raise ConfigError("preprocessing must be a tlhub.adapters.contract.Preprocessing", fix="pass adapter.preprocessing(model)")
        if self.base_model is not None and not HUB_REPO_ID_RE.match(self.base_model):
            raise ConfigError(f"base_model {self.base_model!r} is not a Hub repo id (ORG/NAME)",
                              fix="record the Hub id the weights came from, or None when they came from a local folder")
        for name in ("epochs_run", "best_epoch", "seed"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or (name != "seed" and value < 0)):
                raise ConfigError(f"{name} must be a whole number >= 0, not {value!r}", fix=f"record {name} as an int")
        if not isinstance(self.num_processes, int) or self.num_processes < 1:
            raise ConfigError(f"num_processes must be >= 1, not {self.num_processes!r}", fix="record accelerator.num_processes")
        if not isinstance(self.schema_version, int) or self.schema_version < 1:
            raise ConfigError(f"schema_version must be a positive int, not {self.schema_version!r}", fix=_FIX_RETRAIN)
        clash = set(self.extra) & _FIELD_NAMES
        if clash:
            raise ConfigError(f"extra keys {sorted(clash)} shadow record fields", fix="set those fields directly")

    # -- dict / JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict written to ``tlhub.json`` (top-level keys as in version 1)."""
        out: dict[str, Any] = {"schema_version": self.schema_version}
        for f in fields(self):
            if f.name in ("schema_version", "extra"):
                continue
            value = getattr(self, f.name)
            if f.name == "preprocessing":
                value = value.to_dict()
            elif f.name == "dataset":
                value = asdict(value)
            out[f.name] = value
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "the training record") -> "TrainingRecord":
        """Read a record of any known version (1 = the unversioned dict of older tlhub releases)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where} is not a JSON object", fix=_FIX_RETRAIN)
        data = dict(data)
        version = data.pop("schema_version", 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ConfigError(f"{where} has schema_version {version!r}, not a number", fix=_FIX_RETRAIN)
        if version > SCHEMA_VERSION:
            raise ConfigError(f"{where} is version {version}; this tlhub reads versions up to {SCHEMA_VERSION}",
                              fix="upgrade tlhub (`pip install -U tlhub`)")
        extra = dict(data.pop("extra", None) or {}) if version >= 2 else {}
        if version == 1:
            # Version 1 stored whatever the model was loaded from: a local folder path, or an
            # ``hf-hub:`` name. Only a Hub id survives as lineage.
            data["base_model"] = hub_repo_id(data.get("base_model"))
            if data["base_model"] is None:
                data["base_model_revision"] = None
        known = {k: data.pop(k) for k in list(data) if k in _FIELD_NAMES}
        extra.update(data)  # whatever is left is unknown to this version: keep it
        try:
            modality = known.get("modality") or (known.get("preprocessing") or {}).get("modality")
            return cls(
                adapter=known.get("adapter"),
                labels=list(known.get("labels") or []),
                modality=modality,
                preprocessing=_preprocessing(known.get("preprocessing"), modality),
                library_name=known.get("library_name"),
                pipeline_tag=known.get("pipeline_tag"),
                base_model=known.get("base_model"),
                base_model_revision=known.get("base_model_revision"),
                base_model_license=known.get("base_model_license"),
                dataset=DatasetInfo.from_dict(known.get("dataset")),
                strategy=known.get("strategy"),
                stages=[dict(s) for s in known.get("stages") or []],
                epochs_run=known.get("epochs_run"),
                best_epoch=known.get("best_epoch"),
                selected_by=known.get("selected_by"),
                best_validation_accuracy=known.get("best_validation_accuracy"),
                best_validation_loss=known.get("best_validation_loss"),
                seed=known.get("seed"),
                config=dict(known.get("config") or {}),
                num_processes=known.get("num_processes") or 1,
                mixed_precision=known.get("mixed_precision"),
                feature_precision=known.get("feature_precision"),  # absent in older records
                data_checks=dict(known.get("data_checks") or {}),
                class_weights=dict(known["class_weights"]) if known.get("class_weights") else None,
                repeats=dict(known["repeats"]) if known.get("repeats") else None,  # absent in older records
                layer_head=dict(known["layer_head"]) if known.get("layer_head") else None,  # version 3
                layers=dict(known["layers"]) if known.get("layers") else None,
                probe=dict(known["probe"]) if known.get("probe") else None,
                selection=dict(known["selection"]) if known.get("selection") else None,  # version 3, --backbone auto
                recipe=dict(known["recipe"]) if known.get("recipe") else None,  # version 3, --recipe auto
                tlhub_version=known.get("tlhub_version"),
                versions=dict(known.get("versions") or {}),
                extra=extra,
            )
        except ConfigError as exc:
            raise ConfigError(f"{where} is invalid: {exc.message}", fix=_FIX_RETRAIN) from None
        except (TypeError, ValueError, AttributeError) as exc:  # a field of the wrong shape
            raise ConfigError(f"{where} is invalid: {exc}", fix=_FIX_RETRAIN) from None

    # -- the file ------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``DIRECTORY/tlhub.json`` atomically (the old file or the new one, never half)."""
        path = Path(directory) / RECORD_FILE
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "TrainingRecord":
        """Read ``DIRECTORY/tlhub.json``, of any known version."""
        path = Path(directory) / RECORD_FILE
        if not path.is_file():
            raise TlhubError(f"{directory} is not a model saved by tlhub (no {RECORD_FILE})",
                             fix="train one with `tlhub train`, or point at its output folder")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is corrupt (not JSON: {exc})", fix=_FIX_RETRAIN) from None
        return cls.from_dict(data, where=str(path))


def _preprocessing(data: dict[str, Any] | None, modality: str | None) -> Preprocessing:
    """A ``Preprocessing`` from its JSON form: lists back to tuples, unknown keys into ``extra``."""
    data = dict(data or {})
    data.setdefault("modality", modality)
    names = {f.name for f in fields(Preprocessing)}
    extra = dict(data.pop("extra", None) or {})
    extra.update({k: data.pop(k) for k in list(data) if k not in names})
    for key in ("input_size", "mean", "std"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return Preprocessing(**data, extra=extra)


_FIELD_NAMES = frozenset(f.name for f in fields(TrainingRecord))
