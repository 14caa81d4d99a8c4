"""What data to load and how to cut it: :class:`DataSpec` (validated when created) and the names
tlhub looks for when it picks columns and splits on its own."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from tlhub.errors import ConfigError, suggest

BAD_INPUT_POLICIES = ("skip", "error")
MODALITY_NAMES = ("image", "text", "audio")

#: Column names tried, in this order, when the label column is not given.
LABEL_COLUMN_NAMES = ("label", "labels", "class", "classes", "class_name", "category", "target", "y", "sentiment", "tag", "emotion")
#: Column names preferred for the text input, in this order.
TEXT_COLUMN_NAMES = (
    "text", "sentence", "sentences", "content", "review", "document", "input", "inputs", "tweet", "comment",
    "utterance", "body", "question", "query", "prompt", "sentence1", "title",
)  # fmt: skip
IMAGE_COLUMN_NAMES = ("image", "img", "input", "pixel_values", "picture", "photo")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".ico", ".jfif")
VALIDATION_SPLIT_NAMES = ("validation", "valid", "val", "dev")
DATA_FILE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt", ".arrow")


@dataclass(frozen=True)
class DataSpec:
    """What data to train on and how to cut it. Validated when created.

    ``source`` is a built-in name, a local folder or file, a Hub dataset name, or (through
    :meth:`from_object`) an in-memory ``Dataset`` / ``DatasetDict``.
    """

    source: Any  # str, or a datasets.Dataset / DatasetDict (see from_object)
    input_column: str | None = None  # auto-detected if None (image / text column)
    label_column: str | None = None  # auto-detected if None (ClassLabel, else "label"/"labels"/"class"/...)
    train_split: str = "train"
    validation_split: str | None = None  # None -> a stratified split carved out of train
    test_split: str | None = "test"  # None, or a missing "test" split -> no test evaluation (said in the report)
    validation_fraction: float = 0.1
    max_train_per_class: int | None = None  # the FIRST n of each class, in file order
    max_train_samples: int | None = None  # a stratified random sample (seeded)
    max_eval_samples: int | None = None  # per evaluation split, stratified random sample (seeded)
    on_bad_input: str = "skip"  # "skip" (drop, count, list in the report) or "error" (stop before training)
    seed: int = 0
    config_name: str | None = None  # a Hub dataset's configuration (``load_dataset(name, config_name)``), or a README-declared one of a local dataset folder

    def __post_init__(self):
        src = self.source
        if isinstance(src, os.PathLike):
            object.__setattr__(self, "source", os.fspath(src))
            src = self.source
        if isinstance(src, str):
            if not src.strip():
                raise ConfigError("the data source is empty", fix="name a built-in dataset (fashion-mnist, vader-movies), a folder or file, or a Hub dataset")
        elif not _is_dataset_object(src):
            raise ConfigError(
                f"the data source must be a name or path, or a datasets.Dataset/DatasetDict, not a {type(src).__name__}",
                fix="pass a string, or use DataSpec.from_object(dataset)",
            )
        for name in ("input_column", "label_column", "validation_split", "test_split", "config_name"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{name} must be a non-empty string or None, not {value!r}", fix=f"give a column/split name, or leave {name} unset")
        if not isinstance(self.train_split, str) or not self.train_split.strip():
            raise ConfigError(f"train_split must be a non-empty string, not {self.train_split!r}", fix="use the name of the training split, e.g. 'train'")
        if self.input_column is not None and self.input_column == self.label_column:
            raise ConfigError(f"the input and label columns are both {self.input_column!r}", fix="give two different columns")
        for name in ("validation_split", "test_split"):
            if getattr(self, name) == self.train_split:
                raise ConfigError(f"{name} is the training split {self.train_split!r}", fix=f"use another split for {name.split('_')[0]}, or leave it unset")
        if self.validation_split is not None and self.validation_split == self.test_split:
            raise ConfigError(f"the validation and test splits are both {self.test_split!r}", fix="evaluate on a split that is not used for model selection")
        frac = self.validation_fraction
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not (0.0 < float(frac) < 1.0):
            raise ConfigError(f"validation_fraction must be a number between 0 and 1 (exclusive), not {frac!r}", fix="e.g. validation_fraction=0.1")
        for name in ("max_train_per_class", "max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or None, not {value!r}", fix=f"e.g. {name}=100, or leave it unset for all rows")
        if self.on_bad_input not in BAD_INPUT_POLICIES:
            raise ConfigError(f"on_bad_input must be 'skip' or 'error', not {self.on_bad_input!r}", fix="use 'skip' to drop bad rows (listed in the report) or 'error' to stop")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, not {self.seed!r}", fix="e.g. seed=0")

    @classmethod
    def from_object(cls, dataset: Any, **kwargs) -> "DataSpec":
        """A spec for an in-memory ``datasets.Dataset`` (taken as the training split) or ``DatasetDict``."""
        return cls(source=dataset, **kwargs)

    @property
    def source_label(self) -> str:
        """The source as text (in-memory datasets are described, not printed)."""
        if isinstance(self.source, str):
            return self.source
        return f"<in-memory {type(self.source).__name__}>"

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["source"] = self.source_label
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            hints = [f"{u} -> {s[0]}" for u in unknown if (s := suggest(u, known))]
            raise ConfigError(f"unknown data option(s): {', '.join(unknown)}", fix=("did you mean " + ", ".join(hints)) if hints else f"known options: {', '.join(sorted(known))}")
        return cls(**data)


def _is_dataset_object(obj: Any) -> bool:
    mod = type(obj).__module__ or ""
    if not mod.startswith("datasets"):
        return False
    import datasets

    return isinstance(obj, (datasets.Dataset, datasets.DatasetDict))
