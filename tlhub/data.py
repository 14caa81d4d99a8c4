"""Training data from the ``datasets`` library, checked, labelled and split for the training engine.

:func:`load_data` turns a :class:`DataSpec` into :class:`PreparedData`: a ``DatasetDict`` whose
``train`` / ``validation`` / (optional) ``test`` splits have exactly two columns, ``input`` (an
``Image()`` or a string) and ``label`` (a ``ClassLabel`` with the real class names), plus a
:class:`DataReport` that accounts for every row: how many each split holds, every row that was
dropped and why (file or row), every image converted to RGB, every text decoded with
replacement characters, and anything else worth a warning.

Sources (``DataSpec.source``):

- a built-in name: ``fashion-mnist``, ``vader-movies`` (see :mod:`tlhub.builtin_data`; a built-in
  name wins over a folder of the same name: write ``./fashion-mnist`` for the folder);
- a local folder of images in class sub-folders (``datasets``' ``imagefolder`` builder, with
  optional ``train/`` / ``test/`` split folders), or of CSV / TSV / JSON / JSONL / Parquet files
  (splits from the file names, as ``datasets`` infers them), or a folder written by ``save_to_disk``;
- one such file;
- a Hub dataset name (``datasets.load_dataset``; offline with ``HF_HUB_OFFLINE=1`` from the
  datasets cache);
- an in-memory ``datasets.Dataset`` / ``DatasetDict`` (:meth:`DataSpec.from_object`, or
  ``load_data(spec, dataset=obj)``).

:func:`make_dataloader` feeds a prepared split to a model: rows are decoded lazily (through
``Dataset.with_transform``) with the adapter's ``decode_input`` and batched with its collate.

Nothing here imports torch (or ``datasets``) at module import time.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import io
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tlhub.errors import ConfigError, DataError, suggest

if TYPE_CHECKING:  # pragma: no cover
    import datasets
    import torch

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

#: Human names of the PIL modes converted to RGB, for the report.
MODE_NAMES = {
    "L": "greyscale (L)",
    "LA": "greyscale with alpha (LA)",
    "1": "1-bit (1)",
    "P": "palette (P)",
    "PA": "palette with alpha (PA)",
    "RGBA": "RGBA (composited on white)",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "LAB": "LAB",
    "HSV": "HSV",
    "I": "32-bit integer greyscale (I, rescaled)",
    "I;16": "16-bit greyscale (I;16, rescaled)",
    "I;16B": "16-bit greyscale (I;16B, rescaled)",
    "I;16L": "16-bit greyscale (I;16L, rescaled)",
    "I;16N": "16-bit greyscale (I;16N, rescaled)",
    "F": "32-bit float greyscale (F, rescaled)",
}


# ------------------------------------------------------------------------------------------------
# The spec
# ------------------------------------------------------------------------------------------------


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
    config_name: str | None = None  # a Hub dataset's configuration (``load_dataset(name, config_name)``)

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


# ------------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------------


@dataclass
class DataReport:
    """Everything :func:`load_data` did to the data: nothing is dropped or changed unrecorded."""

    source: str
    source_name: str = ""
    modality: str = ""
    input_column: str | None = None
    label_column: str | None = None
    labels: list[str] = field(default_factory=list)
    #: split -> rows in the prepared split
    counts: dict[str, int] = field(default_factory=dict)
    #: split -> class name -> rows
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    #: source split -> rows it had
    source_rows: dict[str, int] = field(default_factory=dict)
    #: prepared split -> where its rows come from, in words
    split_origin: dict[str, str] = field(default_factory=dict)
    #: every dropped row: {"split" (source split), "row" (0-based index in it), "file" (or None), "reason"}
    skipped: list[dict[str, Any]] = field(default_factory=list)
    #: prepared split -> original PIL mode -> images that are converted to RGB when decoded
    converted: dict[str, dict[str, int]] = field(default_factory=dict)
    #: text decoded with U+FFFD replacement characters: {"split"/"file", "row"/"line", "reason"}
    repaired: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: source split -> rows whose inputs were decoded and checked
    checked: dict[str, int] = field(default_factory=dict)
    test_evaluation: bool = False
    on_bad_input: str = "skip"
    #: where the data comes from: origin, licence, citation, Hub id, how built-ins were split
    provenance: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def skip(self, split: str, row: int, reason: str, file: str | None = None) -> None:
        self.skipped.append({"split": split, "row": int(row), "file": file, "reason": reason})

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(_reason_kind(s["reason"]) for s in self.skipped))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["skipped_count"] = len(self.skipped)
        out["skipped_by_reason"] = self.skipped_by_reason
        out["converted_total"] = dict(sum((Counter(v) for v in self.converted.values()), Counter()))
        return out

    def summary(self, max_rows: int = 5) -> str:
        """A few lines for humans: what is used, what was dropped or converted, warnings."""
        shown = ", ".join(self.labels[:10]) + (f", ... ({len(self.labels)} in all)" if len(self.labels) > 10 else "")
        lines = [f"data: {self.source_name or self.source} ({self.modality}; input column {self.input_column!r}, label column {self.label_column!r})"]
        lines.append(f"  classes ({len(self.labels)}): {shown}")
        for split, n in self.counts.items():
            origin = self.split_origin.get(split)
            lines.append(f"  {split}: {_plural(n, 'row')}" + (f" ({origin})" if origin else ""))
        if not self.test_evaluation:
            lines.append("  test: none (no test evaluation)")
        if self.checked:
            lines.append("  images decoded and checked: " + ", ".join(f"{n:,} ({k})" for k, n in self.checked.items()))
        elif self.modality == "image" and self.provenance.get("builtin"):
            lines.append("  images: built-in data, checked when it was built")
        total = Counter()
        for per in self.converted.values():
            total.update(per)
        if total:
            parts = [f"{n:,} {MODE_NAMES.get(m, m)}" for m, n in total.most_common()]
            lines.append("  converted to RGB when decoded: " + ", ".join(parts))
        if self.skipped:
            by = ", ".join(f"{n:,} {k}" for k, n in Counter(_reason_kind(s["reason"]) for s in self.skipped).most_common())
            lines.append(f"  skipped {_plural(len(self.skipped), 'row')}: {by}")
            for s in self.skipped[:max_rows]:
                lines.append(f"    - {_where(s)}: {s['reason']}")
            if len(self.skipped) > max_rows:
                lines.append(f"    ... and {len(self.skipped) - max_rows:,} more (see the data report)")
        if self.repaired:
            rows = [r for r in self.repaired if "row" in r]
            lines.append(f"  text decoded with replacement characters (invalid UTF-8): {len(rows) or len(self.repaired):,} rows")
            for r in (rows or self.repaired)[:max_rows]:
                lines.append(f"    - {_where(r)}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _where(entry: dict[str, Any]) -> str:
    parts = []
    if entry.get("file"):
        parts.append(str(entry["file"]))
    if entry.get("line") is not None:
        parts.append(f"line {entry['line']}")
    if entry.get("row") is not None:
        parts.append(f"{entry.get('split', '')} row {entry['row']}".strip())
    return ", ".join(parts) or "?"


def _reason_kind(reason: str) -> str:
    """The reason without its row-specific detail (for counts)."""
    for sep in (" (", ": "):
        if sep in reason:
            reason = reason.split(sep, 1)[0]
    return reason


# ------------------------------------------------------------------------------------------------
# The result
# ------------------------------------------------------------------------------------------------


@dataclass
class PreparedData:
    splits: "datasets.DatasetDict"  # "train", "validation", optionally "test"; columns "input" and "label"
    labels: list[str]
    modality: str  # "image" | "text" | "audio"
    report: DataReport
    fingerprints: dict[str, str]  # split -> datasets fingerprint (feature-cache key)
    source_name: str  # honest name for model cards
    info: dict[str, Any] = field(default_factory=dict)  # provenance: licence, citation, Hub id (built-ins), ...
    spec: DataSpec | None = None

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def has_test(self) -> bool:
        return "test" in self.splits

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v:,}" for k, v in self.report.counts.items())
        return f"PreparedData({self.source_name!r}, {self.modality}, {len(self.labels)} classes, {counts})"


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def load_data(
    spec: DataSpec,
    *,
    modality: str | None = None,
    decode: Callable[[Any], Any] | None = None,
    progress: bool = True,
    dataset: Any = None,
) -> PreparedData:
    """Load, check, label and split the data ``spec`` names.

    ``modality`` is what the model takes (the adapter's ``modality``): the input column is chosen
    to match it. ``decode`` (the adapter's ``decode_input``) is run on every checked image, so a
    row that passes here also decodes in training. ``dataset`` (a ``Dataset`` / ``DatasetDict``)
    replaces ``spec.source``. Raises :class:`DataError` (with a fix) when the data cannot be used.
    """
    if not isinstance(spec, DataSpec):
        raise ConfigError(f"load_data takes a DataSpec, not a {type(spec).__name__}", fix="build one: DataSpec(source=...)")
    if dataset is not None:
        spec = dataclasses.replace(spec, source=dataset)
    if modality is not None and modality not in MODALITY_NAMES:
        raise DataError(f"tlhub prepares image, text and audio data, not {modality!r}", fix="use an image, text or audio backbone")
    from tlhub.builtin_data import _progress_bars

    with _progress_bars(progress):
        return _Loader(spec, modality=modality, decode=decode, progress=progress).run()


class _Loader:
    def __init__(self, spec: DataSpec, *, modality: str | None, decode, progress: bool):
        self.spec = spec
        self.wanted_modality = modality
        self.decode = decode
        self.progress = progress
        self.report = DataReport(source=spec.source_label, on_bad_input=spec.on_bad_input)
        self.info: dict[str, Any] = {}
        self.trusted_mode: str | None = None  # built-in image data: every image has this mode, no check needed
        self.split_files: dict[str, list[str]] = {}  # source split -> its local data files
        self.repaired_splits: set[str] = set()
        self.base_dir: Path | None = None
        self.checks: dict[tuple[str, int], str | None] = {}  # (source split, row) -> reason or None
        self.modes: dict[tuple[str, int], str] = {}
        self.errors: list[dict[str, Any]] = []
        self.rng = None

    # -- driver ------------------------------------------------------------------------------
    def run(self) -> PreparedData:
        import numpy as np

        started = time.perf_counter()
        spec = self.spec
        self.rng = np.random.default_rng(spec.seed)
        raw, source_name = self._open_source()
        self.report.source_name = source_name
        roles = self._pick_splits(raw)
        train = raw[roles["train"]]
        input_col, label_col, modality = self._pick_columns(train, roles["train"])
        self.report.input_column, self.report.label_column, self.report.modality = input_col, label_col, modality

        # labels: names from the training split, codes for every row of every split
        label_names, codes, bad_labels = self._labels(raw, roles, label_col)
        self.report.labels = list(label_names)
        if len(label_names) < 2:
            raise DataError(
                f"the training data has a single class ({label_names[0] if label_names else 'none'}): a classifier needs at least two",
                fix="add rows of other classes, or check --label-column",
            )
        bad_text = {role: self._text_problems(raw[name], name, input_col) for role, name in roles.items()} if modality == "text" else {}
        for role, name in roles.items():
            for row, reason in sorted({**bad_labels.get(role, {}), **bad_text.get(role, {})}.items()):
                self._record_bad(name, row, reason)
                codes[role][row] = -1

        # rows: training selection, validation (given or carved), test
        selected = self._select(raw, roles, codes, label_names, input_col, modality)

        splits = {}
        for role, (src_name, rows) in selected.items():
            splits[role] = self._build_split(raw[src_name], src_name, rows, codes.get(role, codes["train"]), input_col, label_names, modality)
        import datasets

        dsd = datasets.DatasetDict(splits)
        self._finish_report(dsd, selected, codes, label_names, modality)
        self.report.seconds = round(time.perf_counter() - started, 3)
        return PreparedData(
            splits=dsd,
            labels=list(label_names),
            modality=modality,
            report=self.report,
            fingerprints={k: v._fingerprint for k, v in dsd.items()},
            source_name=source_name,
            info=self.info,
            spec=spec,
        )

    # -- sources -----------------------------------------------------------------------------
    def _open_source(self):
        import datasets

        src = self.spec.source
        if not isinstance(src, str):
            dsd = src if isinstance(src, datasets.DatasetDict) else datasets.DatasetDict({self.spec.train_split: src})
            name = None
            for ds in dsd.values():
                name = name or getattr(ds.info, "dataset_name", None)
            self.info = {"origin": "in-memory datasets object"}
            return self._flatten(dsd), name or "in-memory dataset"

        from tlhub.builtin_data import load_builtin, resolve_builtin

        builtin = resolve_builtin(src)
        if builtin is not None:
            dsd, info = load_builtin(builtin, progress=self.progress)
            self.info = info
            if info.get("modality") == "image":
                self.trusted_mode = info.get("image_mode")
            return dsd, info["source_name"]

        path = Path(src).expanduser()
        if path.exists():
            return self._open_local(path)
        looks_local = src.startswith((".", "/", "~", "\\")) or src.count("/") > 1 or Path(src).suffix.lower() in DATA_FILE_SUFFIXES
        if looks_local:
            raise DataError(f"data not found: {src} (no such file or folder)", fix="check the path, or name a built-in (fashion-mnist, vader-movies) or a Hub dataset")
        return self._open_hub(src)

    def _flatten(self, dsd):
        import datasets

        out = {}
        for name, ds in dsd.items():
            if not isinstance(ds, datasets.Dataset):
                raise DataError(f"split {name!r} is a {type(ds).__name__}, not a datasets.Dataset", fix="pass a map-style Dataset/DatasetDict (not streaming)")
            out[name] = ds.flatten_indices(keep_in_memory=True) if ds._indices is not None else ds
        return datasets.DatasetDict(out)

    def _open_local(self, path: Path):
        import datasets

        path = path.resolve()
        self.base_dir = path if path.is_dir() else path.parent
        self.info = {"origin": f"local {'folder' if path.is_dir() else 'file'} {path}"}
        if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
            try:
                obj = datasets.load_from_disk(str(path))
            except Exception as exc:
                raise DataError(f"cannot read the saved dataset in {path} ({_root_cause(exc)})", fix="re-save it with save_to_disk") from None
            dsd = obj if isinstance(obj, datasets.DatasetDict) else datasets.DatasetDict({self.spec.train_split: obj})
            return self._flatten(dsd), f"{path.name} (local saved dataset)"

        module, kwargs, data_files = self._infer_local(path)
        if module in ("csv", "json"):
            data_files = {split: [self._utf8_copy(f, split) for f in files] for split, files in data_files.items()}
        try:
            # explicit file lists: datasets' own pattern search globs the tree once per split keyword
            # (seconds for a few thousand images); one os.walk here finds the same files
            dsd = datasets.load_dataset(module, data_files=data_files, **kwargs)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"cannot read {path} with the {module!r} loader: {_root_cause(exc)}", fix=_local_fix(module)) from None
        return self._flatten(dsd), f"{path.name} (local {module} data)"

    def _infer_local(self, path: Path) -> tuple[str, dict[str, Any], dict[str, list[str]]]:
        """(builder, its kwargs, split -> files) for a local file or folder.

        Splits follow ``datasets``' conventions: a file or folder named with ``train``/``training``,
        ``validation``/``valid``/``val``/``dev`` or ``test``/``testing``/``eval``/``evaluation``
        (delimited by ``-._`` digits or spaces); with no such name, every file is the training split.
        """
        if path.is_file():
            module, kwargs = _module_for(path)
            if module is None or module in ("imagefolder", "audiofolder"):
                raise DataError(
                    f"tlhub cannot use {path.name} as a data file",
                    fix="pass a CSV/TSV/JSON/JSONL/Parquet file, or a folder of images in class sub-folders",
                )
            files = {self.spec.train_split: [str(path)]}
            self.split_files = files
            return module, kwargs, files

        found: list[tuple[str, Path]] = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
            for name in sorted(names):
                if not name.startswith("."):
                    full = Path(root) / name
                    found.append((full.relative_to(path).as_posix(), full))
        kinds: dict[str, list[tuple[str, Path]]] = {"image": [], "audio": [], "table": [], "metadata": [], "other": []}
        for rel, full in found:
            module, _ = _module_for(full)
            if module == "imagefolder":
                kinds["image"].append((rel, full))
            elif module == "audiofolder":
                kinds["audio"].append((rel, full))
            elif module is not None and full.stem == "metadata":
                kinds["metadata"].append((rel, full))
            elif module is not None:
                kinds["table"].append((rel, full))
            else:
                kinds["other"].append((rel, full))
        media = "image" if len(kinds["image"]) >= len(kinds["audio"]) else "audio"
        if kinds[media] and len(kinds[media]) >= len(kinds["table"]):
            module, kwargs = ("imagefolder" if media == "image" else "audiofolder"), {}
            chosen = kinds[media] + kinds["metadata"]
            if kinds["table"]:
                self.report.warn(
                    f"{len(kinds['table'])} table file(s) in {path} are not used ({', '.join(r for r, _ in kinds['table'][:3])}): "
                    f"the {media}s are labelled by their folder names; to use a table of file paths and labels, pass the file itself"
                )
        elif kinds["table"] or kinds["metadata"]:
            tables = kinds["table"] or kinds["metadata"]
            modules = Counter(_module_for(full) [0] for _, full in tables)
            if len(modules) > 1:
                raise DataError(
                    f"{path} mixes data file formats ({', '.join(sorted(modules))})",
                    fix="keep one format per folder (e.g. train.csv and test.csv), or pass one file",
                )
            module, kwargs = _module_for(tables[0][1])
            seps = {_module_for(full)[1].get("sep") for _, full in tables}
            if len(seps) > 1:
                raise DataError(f"{path} mixes CSV and TSV files", fix="keep one format per folder, or pass one file")
            chosen = tables
        else:
            raise DataError(
                f"{path} holds no data files tlhub can read" + (f" ({len(found)} other files, e.g. {found[0][0]})" if found else " (it is empty)"),
                fix="use a folder of images in class sub-folders (cat/1.png, dog/2.jpg), or CSV/TSV/JSON/JSONL/Parquet files",
            )
        ignored = [rel for rel, _ in kinds["other"]]
        if ignored and module in ("imagefolder", "audiofolder"):
            self.report.warn(f"{len(ignored)} file(s) in {path} are not {media} files and are not used: {', '.join(ignored[:5])}{' ...' if len(ignored) > 5 else ''}")

        by_split: dict[str, list[str]] = {}
        unsplit: list[str] = []
        for rel, full in chosen:
            split = _split_of(rel)
            if split is None:
                unsplit.append(str(full))
            else:
                by_split.setdefault(split, []).append(str(full))
        if not by_split:
            by_split = {self.spec.train_split: unsplit}
            tops = {rel.split("/")[0] for rel, _ in chosen if rel.count("/") >= 2}
            if module == "imagefolder" and len(tops) > 1:
                self.report.warn(
                    f"the folders {', '.join(sorted(tops)[:5])} in {path} are not named train/validation/test: all their images "
                    "form one training split, labelled by the folder that holds each image"
                )
        elif unsplit:
            meta = [f for f in unsplit if Path(f).stem == "metadata"]
            for split in by_split:
                by_split[split].extend(meta)  # a top-level metadata file describes every split
            rest = [f for f in unsplit if Path(f).stem != "metadata"]
            if rest:
                raise DataError(
                    f"{len(rest)} file(s) in {path} belong to no split ({', '.join(Path(f).relative_to(path).as_posix() for f in rest[:3])}), "
                    f"while others are in splits ({', '.join(sorted(by_split))})",
                    fix="move every file into a train/validation/test folder (or name the files so), or pass one file",
                )
        self.split_files = by_split
        return module, kwargs, by_split

    def _utf8_copy(self, file: str, split: str) -> str:
        """``file`` if it is valid UTF-8; else a copy decoded with replacement characters (recorded)."""
        path = Path(file)
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 24):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return file
        except UnicodeDecodeError:
            pass
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc}", fix="check the file's permissions") from None
        raw = path.read_bytes()
        bad_lines = []
        for lineno, line in enumerate(raw.split(b"\n"), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad_lines.append(lineno)
                self.report.repaired.append({"file": str(path), "line": lineno, "reason": f"invalid UTF-8 byte {line[exc.start:exc.start + 1]!r} replaced with U+FFFD"})
        text = raw.decode("utf-8", errors="replace")
        digest = hashlib.sha256(raw).hexdigest()[:16]
        from tlhub.builtin_data import cache_root

        out = cache_root() / "repaired" / digest / path.name
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(out.suffix + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, out)
        self.repaired_splits.add(split)
        self.report.warn(
            f"{path.name} is not valid UTF-8 ({len(bad_lines)} line(s): {', '.join(map(str, bad_lines[:10]))}{', ...' if len(bad_lines) > 10 else ''}): "
            "the bad bytes were replaced with U+FFFD; if the file is in another encoding (Latin-1, cp1252), re-save it as UTF-8"
        )
        return str(out)

    def _open_hub(self, name: str):
        import datasets

        try:
            dsd = datasets.load_dataset(name, self.spec.config_name)
        except Exception as exc:
            cause = _root_cause(exc)
            offline = _hub_offline()
            from tlhub.builtin_data import builtin_names

            close = suggest(name, builtin_names())
            fix = (
                "offline (HF_HUB_OFFLINE=1) a Hub dataset must already be in the datasets cache (HF_DATASETS_CACHE / HF_HOME): load it once online"
                if offline
                else "check the name on https://huggingface.co/datasets (and the configuration: config_name), or use a local folder/file; "
                "without network access set HF_HUB_OFFLINE=1 to use the datasets cache"
            )
            if close:
                fix = f"did you mean the built-in {close[0]!r}? otherwise {fix}"
            raise DataError(f"cannot load the dataset {name!r}: {cause}", fix=fix) from None
        if not isinstance(dsd, datasets.DatasetDict):
            dsd = datasets.DatasetDict({self.spec.train_split: dsd})
        self.info = {"origin": "Hugging Face Hub", "hub_id": name, "config_name": self.spec.config_name}
        return self._flatten(dsd), name + (f":{self.spec.config_name}" if self.spec.config_name else "")

    # -- splits ------------------------------------------------------------------------------
    def _pick_splits(self, raw) -> dict[str, str]:
        spec = self.spec
        available = list(raw.keys())
        for name in available:
            self.report.source_rows[name] = len(raw[name])
        listing = ", ".join(repr(s) for s in available) or "none"

        def missing(kind: str, name: str, option: str) -> DataError:
            close = suggest(name, available)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return DataError(f"the {kind} split {name!r} is not in the data (splits: {listing})", fix=f"{hint}pass {option} NAME with one of the splits above")

        if spec.train_split not in raw:
            raise missing("training", spec.train_split, "--train-split")
        roles = {"train": spec.train_split}
        if spec.validation_split is not None:
            if spec.validation_split not in raw:
                raise missing("validation", spec.validation_split, "--validation-split")
            roles["validation"] = spec.validation_split
        else:
            unused = [s for s in available if s.lower() in VALIDATION_SPLIT_NAMES]
            if unused:
                self.report.warn(f"the data has a {unused[0]!r} split, which is not used: validation rows are carved out of {spec.train_split!r} (pass --validation-split {unused[0]} to use it)")
        if spec.test_split is not None:
            if spec.test_split in raw:
                roles["test"] = spec.test_split
            elif spec.test_split == "test":
                self.report.warn(f"the data has no 'test' split (splits: {listing}): no test evaluation (pass --test-split NAME to evaluate on another split)")
            else:
                raise missing("test", spec.test_split, "--test-split")
        for role, name in roles.items():
            if len(raw[name]) == 0:
                raise DataError(f"the {role} split {name!r} is empty (splits: {', '.join(f'{s} ({len(raw[s]):,} rows)' for s in available)})", fix=f"add rows to it, or choose another split with --{role}-split")
        return roles

    # -- columns -----------------------------------------------------------------------------
    def _pick_columns(self, train, split_name: str) -> tuple[str, str, str]:
        import datasets

        spec = self.spec
        features = train.features
        columns = list(features)
        listing = ", ".join(f"{c} ({_feature_kind(features[c])})" for c in columns)

        # label column
        label_col = spec.label_column
        if label_col is not None:
            if label_col not in features:
                close = suggest(label_col, columns)
                raise DataError(
                    f"the label column {label_col!r} is not in the {split_name!r} split (columns: {listing})",
                    fix=(f"did you mean --label-column {close[0]}? " if close else "") + "pass --label-column NAME with one of the columns above",
                )
        else:
            class_labels = [c for c in columns if isinstance(features[c], datasets.ClassLabel) and c != spec.input_column]
            by_name = [c for name in LABEL_COLUMN_NAMES for c in columns if c.lower() == name and c != spec.input_column]
            picked = (class_labels or by_name or [None])[0]
            if picked is None:
                raise DataError(
                    f"no label column found in the {split_name!r} split (columns: {listing}); tlhub looks for a ClassLabel column or one named {', '.join(LABEL_COLUMN_NAMES[:6])}, ...",
                    fix="pass --label-column NAME (label_column=...) with the column that holds the classes",
                )
            label_col = picked
        if isinstance(features[label_col], (datasets.Image, datasets.Audio)):
            raise DataError(f"the label column {label_col!r} holds {_feature_kind(features[label_col])}s, not classes", fix="pass --label-column NAME with the column that holds the classes")

        # input column
        input_col = spec.input_column
        wanted = self.wanted_modality
        if input_col is not None:
            if input_col not in features:
                close = suggest(input_col, columns)
                raise DataError(
                    f"the input column {input_col!r} is not in the {split_name!r} split (columns: {listing})",
                    fix=(f"did you mean --input-column {close[0]}? " if close else "") + "pass --input-column NAME with one of the columns above",
                )
            if input_col == label_col:
                raise DataError(f"the input and label columns are both {input_col!r}", fix="pass --label-column / --input-column with two different columns")
        else:
            others = [c for c in columns if c != label_col]
            images = [c for c in others if isinstance(features[c], datasets.Image)]
            images.sort(key=lambda c: IMAGE_COLUMN_NAMES.index(c.lower()) if c.lower() in IMAGE_COLUMN_NAMES else len(IMAGE_COLUMN_NAMES))
            audios = [c for c in others if isinstance(features[c], datasets.Audio)]
            texts = [c for c in others if _is_text_feature(features[c])]
            ranked_texts = [c for n in TEXT_COLUMN_NAMES for c in texts if c.lower() == n] + [c for c in texts if c.lower() not in TEXT_COLUMN_NAMES]
            path_like = [c for c in texts if self._looks_like_image_paths(train, c)]
            order = {"image": images + path_like, "audio": audios, "text": ranked_texts}
            if wanted is not None:
                candidates = order[wanted]
            else:
                candidates = images or audios or ranked_texts
            if not candidates:
                if wanted is not None and any(order.values()):
                    kind = next(k for k in ("image", "audio", "text") if order[k])
                    raise DataError(
                        f"the model takes {wanted} input, but the data holds {kind} (columns: {listing})",
                        fix=f"choose {wanted} data, or a backbone that takes {kind} input; or pass --input-column NAME",
                    )
                raise DataError(f"no image, audio or text column found (columns: {listing})", fix="pass --input-column NAME with the column that holds the inputs")
            input_col = candidates[0]

        feature = features[input_col]
        if isinstance(feature, datasets.Image):
            modality = "image"
        elif isinstance(feature, datasets.Audio):
            modality = "audio"
        elif _is_text_feature(feature):
            modality = "image" if (wanted == "image" or (wanted is None and self._looks_like_image_paths(train, input_col))) else "text"
        else:
            raise DataError(
                f"the input column {input_col!r} holds {_feature_kind(feature)}, which tlhub cannot feed to a model",
                fix="pass --input-column NAME with an image, audio or text column",
            )
        if wanted is not None and modality != wanted:
            raise DataError(
                f"the model takes {wanted} input, but the input column {input_col!r} holds {modality}",
                fix=f"choose {wanted} data or a backbone that takes {modality}; or pass --input-column NAME",
            )
        if modality == "audio":
            self.report.warn("audio inputs are not decoded or checked before training")
        return input_col, label_col, modality

    def _looks_like_image_paths(self, ds, col: str) -> bool:
        if not _is_text_feature(ds.features[col]) or len(ds) == 0:
            return False
        sample = [v for v in ds[:20][col] if isinstance(v, str)]
        return bool(sample) and all(v.strip().lower().endswith(IMAGE_EXTENSIONS) for v in sample)

    # -- labels ------------------------------------------------------------------------------
    def _labels(self, raw, roles, label_col):
        """Class names from the training split; per role: codes (int64, -1 = unusable) and bad rows."""
        import datasets
        import numpy as np

        train_name = roles["train"]
        train = raw[train_name]
        feature = train.features[label_col]
        if isinstance(feature, datasets.ClassLabel):
            names = list(feature.names)
            mapping = None
            arr = train.data.column(label_col).to_numpy(zero_copy_only=False)
            arr = arr[~np.isnan(arr)].astype(np.int64) if arr.dtype.kind == "f" else arr.astype(np.int64)
            present = np.bincount(arr[arr >= 0], minlength=len(names)) > 0
            if not present.all() and present.any():
                absent = [n for n, p in zip(names, present) if not p]
                names = [n for n, p in zip(names, present) if p]
                self.report.warn(
                    f"{len(absent)} class(es) of the label feature have no rows in the training split and are left out of the "
                    f"label set: {', '.join(map(repr, absent[:10]))}{' ...' if len(absent) > 10 else ''} (their validation/test rows are skipped)"
                )
        else:
            values = self._label_values(train, label_col, train_name)
            distinct = {v for v in values if v is not None}
            if not distinct:
                raise DataError(f"the label column {label_col!r} of the {train_name!r} split has no values", fix="pass --label-column NAME with the column that holds the classes")
            ordered = sorted(distinct, key=lambda v: (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)))
            names = [_label_str(v) for v in ordered]
            mapping = {v: i for i, v in enumerate(ordered)}
        if len(set(names)) != len(names):
            dup = [n for n, k in Counter(names).items() if k > 1]
            raise DataError(f"the label column {label_col!r} has duplicate class names: {dup}", fix="give each class a distinct name")

        codes, bad = {}, {}
        for role, split in roles.items():
            ds = raw[split]
            if label_col not in ds.features:
                if role == "test":
                    self.report.warn(f"the test split {split!r} has no {label_col!r} column: no test evaluation")
                    continue
                raise DataError(
                    f"the label column {label_col!r} is not in the {split!r} split (columns: {', '.join(ds.features)})",
                    fix="pass --label-column NAME with a column present in every split, or --validation-split with a labelled split",
                )
            codes[role], bad[role] = self._codes(ds, split, label_col, names, mapping, is_train=(role == "train"))
            if role == "test" and len(ds) and (codes[role] < 0).all():
                self.report.warn(f"the test split {split!r} has no usable labels: no test evaluation")
                del codes[role], bad[role]
        for role in [r for r in roles if r not in codes]:
            del roles[role]
        return names, codes, bad

    def _label_values(self, ds, col: str, split: str) -> list:
        import pyarrow as pa

        arr = ds.data.column(col)
        typ = arr.type
        if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_struct(typ) or pa.types.is_fixed_size_list(typ):
            raise DataError(f"the label column {col!r} holds {typ} values: tlhub trains single-label classifiers", fix="pass --label-column NAME with one class per row")
        values = arr.to_pylist()
        out = []
        for v in values:
            if isinstance(v, float):
                if math.isnan(v):
                    v = None
                elif v.is_integer():
                    v = int(v)
                else:
                    raise DataError(
                        f"the label column {col!r} of the {split!r} split holds non-integer numbers (e.g. {v}): it looks like a regression target",
                        fix="tlhub trains classifiers: pass --label-column NAME with class names or integer class ids",
                    )
            elif isinstance(v, str):
                v = v.strip() or None
            elif isinstance(v, bytes):
                v = v.decode("utf-8", errors="replace").strip() or None
            out.append(v)
        return out

    def _codes(self, ds, split, col, names, mapping, *, is_train: bool):
        import datasets
        import numpy as np

        feature = ds.features[col]
        bad: dict[int, str] = {}
        if isinstance(feature, datasets.ClassLabel):
            arr = ds.data.column(col).to_numpy(zero_copy_only=False)
            arr = np.where(np.isnan(arr), -1, arr).astype(np.int64) if arr.dtype.kind == "f" else arr.astype(np.int64)
            if list(feature.names) == names:
                codes = arr
            else:  # same classes under other ids, or other classes
                index = {n: i for i, n in enumerate(names)}
                lut = np.array([index.get(n, -2) for n in feature.names] + [-1], dtype=np.int64)
                codes = lut[np.where(arr < 0, len(feature.names), arr)]
                for row in np.flatnonzero(codes == -2):
                    bad[int(row)] = f"label {feature.names[arr[row]]!r} does not occur in the training split"
                codes = np.where(codes == -2, -1, codes)
            for row in np.flatnonzero(arr < 0):
                bad[int(row)] = "no label (-1)"
        else:
            if mapping is None:  # training labels are a ClassLabel, this split's are raw values
                mapping = {n: i for i, n in enumerate(names)}
                values = [None if v is None else _label_str(v) for v in self._label_values(ds, col, split)]
            else:
                values = self._label_values(ds, col, split)
                if any(isinstance(k, (int, float)) for k in mapping):  # "3" in a CSV test file vs 3 in train
                    values = [int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v for v in values]
                elif any(isinstance(v, (int, float)) for v in values):
                    values = [_label_str(v) if v is not None else None for v in values]
            codes = np.full(len(values), -1, dtype=np.int64)
            for row, v in enumerate(values):
                if v is None:
                    bad[row] = "label is empty"
                    continue
                code = mapping.get(v)
                if code is None:
                    bad[row] = f"label {_label_str(v)!r} does not occur in the training split"
                else:
                    codes[row] = code
        return codes, bad

    # -- text --------------------------------------------------------------------------------
    def _text_problems(self, ds, split: str, col: str) -> dict[int, str]:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = ds.data.column(col)
        typ = arr.type
        bad: dict[int, str] = {}
        if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
            for row, v in enumerate(arr.to_pylist()):
                if v is None:
                    bad[row] = "text is missing (None)"
                    continue
                try:
                    text = v.decode("utf-8")
                except UnicodeDecodeError as exc:
                    text = v.decode("utf-8", errors="replace")
                    self.report.repaired.append({"split": split, "row": row, "reason": f"invalid UTF-8 byte {v[exc.start:exc.start + 1]!r} replaced with U+FFFD"})
                if not text.strip():
                    bad[row] = "text is empty"
            return bad
        if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
            return bad  # numbers etc.: converted to strings when the split is built
        nulls = pc.is_null(arr)
        empty = pc.equal(pc.utf8_trim_whitespace(arr), "")
        for row in _true_rows(nulls):
            bad[row] = "text is missing (None)"
        for row in _true_rows(empty):
            bad[row] = "text is empty"
        if split in self.repaired_splits:
            for row in _true_rows(pc.match_substring(arr, "\ufffd")):
                self.report.repaired.append({"split": split, "row": row, "file": _single(self.split_files.get(split)), "reason": "invalid UTF-8 replaced with U+FFFD"})
        return bad

    # -- selection ---------------------------------------------------------------------------
    def _select(self, raw, roles, codes, names, input_col, modality):
        """Choose each prepared split's rows (indices into its source split), checking inputs."""
        import numpy as np

        spec = self.spec
        n_classes = len(names)
        self._raw, self._input_col, self._modality = raw, input_col, modality
        train_name = roles["train"]
        train_codes = codes["train"]
        by_class = {c: np.flatnonzero(train_codes == c) for c in range(n_classes)}  # usable rows, file order
        subsampled = spec.max_train_per_class is not None or spec.max_train_samples is not None
        selected: dict[str, tuple[str, Any]] = {}
        origin = self.report.split_origin
        frac = float(spec.validation_fraction)

        if subsampled:
            available = {c: len(r) for c, r in by_class.items()}
            if spec.max_train_per_class is not None:
                quota = {c: min(n, spec.max_train_per_class) for c, n in available.items()}
                order = by_class  # the FIRST rows of each class, in file order
                how = f"the first {spec.max_train_per_class:,} rows of each class in file order"
            else:
                quota = dict(available)
                order = {c: self.rng.permutation(r) for c, r in by_class.items()}
                how = "a stratified random sample"
            if spec.max_train_samples is not None and sum(quota.values()) > spec.max_train_samples:
                quota = _allocate(quota, spec.max_train_samples)
                how += f", {spec.max_train_samples:,} rows in all, stratified" if spec.max_train_per_class is not None else f" of {spec.max_train_samples:,} rows (seed {spec.seed})"
            train_by_class = self._take(train_name, order, quota)
            origin["train"] = f"{how} of source split {train_name!r} ({len(raw[train_name]):,} rows)"
        else:
            train_by_class = self._take(train_name, by_class, None)
            origin["train"] = f"source split {train_name!r}"

        # validation
        if "validation" in roles:
            vname = roles["validation"]
            val_by_class = self._eval_rows(vname, codes["validation"], n_classes, spec.max_eval_samples)
            origin["validation"] = f"source split {vname!r}" + (f" (stratified sample of {spec.max_eval_samples:,}, seed {spec.seed})" if spec.max_eval_samples and sum(map(len, val_by_class.values())) >= spec.max_eval_samples else "")
            selected["validation"] = (vname, _concat_sorted(val_by_class))
        else:
            val_by_class = self._carve_validation(train_name, by_class, train_by_class, frac, subsampled, names)
            n_val = sum(len(v) for v in val_by_class.values())
            where = "from the training rows that were not selected" if subsampled else f"out of source split {train_name!r}"
            origin["validation"] = f"{frac:.0%} stratified {where} (seed {spec.seed})" if n_val else "none"
            if n_val == 0:
                self.report.warn("the validation split is empty: every class has too few rows to spare one for validation")
            selected["validation"] = (train_name, _concat_sorted(val_by_class))
        selected["train"] = (train_name, _concat_sorted(train_by_class))
        selected = {"train": selected["train"], "validation": selected["validation"]}

        if "test" in roles:
            tname = roles["test"]
            test_by_class = self._eval_rows(tname, codes["test"], n_classes, spec.max_eval_samples)
            origin["test"] = f"source split {tname!r}" + (f" (stratified sample of {spec.max_eval_samples:,}, seed {spec.seed})" if spec.max_eval_samples and len(raw[tname]) > spec.max_eval_samples else "")
            selected["test"] = (tname, _concat_sorted(test_by_class))

        self._raise_if_errors()  # on_bad_input="error": every bad row found, before anything else

        # class-level warnings
        counts = {c: len(train_by_class.get(c, ())) for c in range(n_classes)}
        empty = [names[c] for c, n in counts.items() if n == 0]
        if empty:
            self.report.warn(f"{len(empty)} class(es) have no training rows: {', '.join(map(repr, empty[:10]))}")
        n_train = sum(counts.values())
        if n_train == 0:
            raise DataError(
                f"no usable rows in the training split {train_name!r}: all {len(raw[train_name]):,} were skipped",
                fix="see the skipped rows in the data report (reasons per row), and fix the data",
            )
        if "validation" in roles and len(selected["validation"][1]) == 0:
            raise DataError(
                f"no usable rows in the validation split {roles['validation']!r}: all {len(raw[roles['validation']]):,} were skipped",
                fix="see the skipped rows in the data report, or leave --validation-split unset to carve validation rows out of train",
            )
        if "test" in selected and len(selected["test"][1]) == 0:
            self.report.warn(f"no test evaluation: all {len(raw[roles['test']]):,} rows of the test split {roles['test']!r} were skipped")
            del selected["test"]
        if len(names) > 20 and len(names) > 0.5 * n_train:
            self.report.warn(f"the label column has {len(names):,} classes for {n_train:,} training rows: is {self.report.label_column!r} the right column? (--label-column)")
        return selected

    def _eval_rows(self, split: str, codes, n_classes: int, cap: int | None) -> dict[int, Any]:
        import numpy as np

        by_class = {c: np.flatnonzero(codes == c) for c in range(n_classes)}
        if cap is None or sum(len(v) for v in by_class.values()) <= cap:
            return self._take(split, by_class, None)
        quota = _allocate({c: len(v) for c, v in by_class.items()}, cap)
        order = {c: self.rng.permutation(v) for c, v in by_class.items()}
        return self._take(split, order, quota)

    def _carve_validation(self, train_name, by_class, train_by_class, frac, subsampled, names):
        import numpy as np

        cap = self.spec.max_eval_samples
        val_by_class: dict[int, Any] = {}
        singles = []
        if subsampled:
            sources, quota = {}, {}
            for c, chosen in train_by_class.items():
                n_sel = len(chosen)
                if n_sel == 0:
                    continue
                want = max(1, round(frac * n_sel))
                used = set(chosen.tolist())
                leftover = np.array([r for r in by_class[c] if r not in used and self.checks.get((train_name, int(r))) is None], dtype=np.int64)
                if len(leftover):
                    sources[c] = self.rng.permutation(leftover)
                    quota[c] = min(want, len(leftover))
                elif n_sel >= 2:  # nothing left over: carve from the selected rows of this class
                    perm = self.rng.permutation(chosen)
                    k = min(want, n_sel - 1)
                    val_by_class[c] = np.sort(perm[:k])
                    train_by_class[c] = np.sort(perm[k:])
                else:
                    singles.append(names[c])
            if cap is not None:
                total = sum(quota.values()) + sum(len(v) for v in val_by_class.values())
                if total > cap:
                    quota = _allocate(quota, max(0, cap - sum(len(v) for v in val_by_class.values())))
            taken = self._take(train_name, sources, quota) if sources else {}
            for c, rows in taken.items():
                if len(rows):
                    val_by_class[c] = rows
        else:
            want = {}
            for c, rows in train_by_class.items():
                n = len(rows)
                if n == 1:
                    singles.append(names[c])
                if n >= 2:
                    want[c] = min(max(1, round(frac * n)), n - 1)
            if cap is not None and sum(want.values()) > cap:
                want = _allocate(want, cap)
            for c, k in want.items():
                if k <= 0:
                    continue
                perm = self.rng.permutation(train_by_class[c])
                val_by_class[c] = np.sort(perm[:k])
                train_by_class[c] = np.sort(perm[k:])
        if singles:
            self.report.warn(
                f"{len(singles)} class(es) have a single training example, kept in train with none in validation: {', '.join(map(repr, singles[:10]))}"
                + (" ..." if len(singles) > 10 else "")
            )
        return val_by_class

    def _take(self, split: str, order: dict[int, Any], quota: dict[int, int] | None) -> dict[int, Any]:
        """Per class, the first ``quota[c]`` rows of ``order[c]`` whose inputs pass the checks
        (all good rows when ``quota`` is None); bad rows are recorded and replaced by the next ones."""
        import numpy as np

        chosen: dict[int, list[int]] = {c: [] for c in order}
        pos = {c: 0 for c in order}
        while True:
            pending: dict[int, list[int]] = {}
            for c, rows in order.items():
                need = (len(rows) if quota is None else quota.get(c, 0)) - len(chosen[c])
                if need > 0 and pos[c] < len(rows):
                    batch = [int(r) for r in rows[pos[c] : pos[c] + need]]
                    pos[c] += len(batch)
                    pending[c] = batch
            if not pending:
                break
            self._check_inputs(split, [r for rows in pending.values() for r in rows])
            for c, rows in pending.items():
                chosen[c].extend(r for r in rows if self.checks.get((split, r)) is None)
            if self.errors and self.spec.on_bad_input == "error":
                break  # no top-up: training will not start anyway
        return {c: np.array(sorted(v), dtype=np.int64) for c, v in chosen.items()}

    # -- input checks ------------------------------------------------------------------------
    def _check_inputs(self, split: str, rows: list[int]) -> None:
        rows = [r for r in rows if (split, r) not in self.checks]
        if not rows:
            return
        if self._modality != "image":
            for r in rows:
                self.checks[(split, r)] = None
            return
        if self.trusted_mode is not None:  # built-in data: converted and checked when it was built
            for r in rows:
                self.checks[(split, r)] = None
                self.modes[(split, r)] = self.trusted_mode
            return
        self._check_images(split, rows)

    def _check_images(self, split: str, rows: list[int]) -> None:
        """Decode each image once (threads; PIL releases the GIL), recording its mode or why it fails.

        Results are cached per split fingerprint (which changes when a file changes), so loading
        the same folder again does not decode it again.
        """
        from concurrent.futures import ThreadPoolExecutor

        from tqdm.auto import tqdm

        cached = self._load_check_cache(split)
        todo = []
        for r in rows:
            hit = cached.get(str(r))
            if hit is None:
                todo.append(r)
                continue
            mode, reason, file = hit
            self.checks[(split, r)] = reason
            if reason is None:
                self.modes[(split, r)] = mode
            else:
                self._record_bad(split, r, reason, file=file)
        if todo:
            ds = self._raw[split]
            raw_col = self._raw_image_column(ds, split, self._input_col)
            decode = self.decode
            workers = max(1, min(8, os.cpu_count() or 1))
            bar = tqdm(total=len(todo), desc=f"checking images ({split})", unit="img", disable=not self.progress or len(todo) < 200, leave=False)
            try:
                with ThreadPoolExecutor(workers) as pool:
                    for start in range(0, len(todo), 512):
                        chunk = todo[start : start + 512]
                        values = raw_col(chunk)
                        for r, v, (mode, reason) in zip(chunk, values, pool.map(lambda v: _inspect_image(v, decode), values)):
                            self.checks[(split, r)] = reason
                            cached[str(r)] = [mode, reason, _image_name(v)]
                            if reason is None:
                                self.modes[(split, r)] = mode
                            else:
                                self._record_bad(split, r, reason, file=_image_name(v))
                        bar.update(len(chunk))
            finally:
                bar.close()
            self._save_check_cache(split, cached)
        self.report.checked[split] = self.report.checked.get(split, 0) + len(rows)

    def _check_cache_file(self, split: str) -> Path | None:
        ds = self._raw[split]
        if not ds.cache_files:  # in-memory data: no stable identity worth a file
            return None
        from tlhub.builtin_data import cache_root

        key = hashlib.sha256(f"v1|{ds._fingerprint}|{self._input_col}".encode()).hexdigest()[:24]
        return cache_root() / "image-checks" / f"{key}.json"

    def _load_check_cache(self, split: str) -> dict[str, list]:
        if not hasattr(self, "_check_caches"):
            self._check_caches: dict[str, dict[str, list]] = {}
        if split not in self._check_caches:
            data: dict[str, list] = {}
            path = self._check_cache_file(split)
            if path is not None and path.is_file():
                try:
                    import json

                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    data = {}
            self._check_caches[split] = data
        return self._check_caches[split]

    def _save_check_cache(self, split: str, data: dict[str, list]) -> None:
        path = self._check_cache_file(split)
        if path is None:
            return
        import json

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:  # a read-only cache only costs time
            pass

    def _raw_image_column(self, ds, split: str, col: str):
        """A function rows -> raw values ({"bytes", "path"} dicts, or path strings) of the input column."""
        import datasets

        if isinstance(ds.features[col], datasets.Image):
            raw = ds.select_columns([col]).cast_column(col, datasets.Image(decode=False))
            return lambda rows: raw[rows][col]
        paths = self._resolved_paths(ds, split, col)
        return lambda rows: [{"path": paths[r], "bytes": None} if paths[r] else None for r in rows]

    def _resolved_paths(self, ds, split: str, col: str) -> list[str | None]:
        """Image paths from a text column, relative paths resolved against the data file's folder."""
        cache = getattr(self, "_path_cache", {})
        self._path_cache = cache
        if (split, col) not in cache:
            files = self.split_files.get(split) or []
            base = Path(files[0]).parent if len(files) == 1 and Path(files[0]).is_file() else self.base_dir
            out = []
            for v in ds.data.column(col).to_pylist():
                if v is None or not str(v).strip():
                    out.append(None)
                    continue
                p = Path(str(v).strip()).expanduser()
                if not p.is_absolute() and base is not None:
                    p = base / p
                out.append(str(p))
            cache[(split, col)] = out
        return cache[(split, col)]

    def _record_bad(self, split: str, row: int, reason: str, *, file: str | None = None) -> None:
        self.checks[(split, row)] = reason
        if file is None:
            file = _single(self.split_files.get(split))
        entry = {"split": split, "row": int(row), "file": file, "reason": reason}
        self.report.skipped.append(entry)
        if self.spec.on_bad_input == "error":
            self.errors.append(entry)

    def _raise_if_errors(self) -> None:
        if not self.errors:
            return
        shown = "\n".join(f"  - {_where(e)}: {e['reason']}" for e in self.errors[:10])
        more = f"\n  ... and {len(self.errors) - 10:,} more" if len(self.errors) > 10 else ""
        kinds = ", ".join(f"{n:,} {k}" for k, n in Counter(_reason_kind(e["reason"]) for e in self.errors).most_common())
        raise DataError(
            f"{len(self.errors):,} bad row(s) in the data ({kinds}); on_bad_input='error' stops here:\n{shown}{more}",
            fix="fix or remove those rows/files, or pass --on-bad-input skip (on_bad_input='skip') to drop them (they are listed in the data report)",
        )

    # -- building ----------------------------------------------------------------------------
    def _build_split(self, ds, split: str, rows, codes, input_col: str, names: list[str], modality: str):
        import datasets
        import pyarrow as pa

        out = ds.select_columns([input_col])
        feature = out.features[input_col]
        if modality == "image" and not isinstance(feature, datasets.Image):  # a column of file paths
            paths = self._resolved_paths(ds, split, input_col)
            out = _replace_column(out, input_col, paths, datasets.Value("string")).cast_column("input", datasets.Image())
        elif modality == "text" and not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
            arr = ds.data.column(input_col)
            if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
                values = [None if v is None else v.decode("utf-8", errors="replace") for v in arr.to_pylist()]
            else:
                values = [None if v is None else str(v) for v in arr.to_pylist()]
                self.report.warn(f"the text column {input_col!r} holds {_feature_kind(feature)} values: converted to strings")
            out = _replace_column(out, input_col, values, datasets.Value("string"))
        elif input_col != "input":
            out = out.rename_column(input_col, "input")
        out = out.add_column("label", codes, feature=datasets.ClassLabel(names=list(names)))
        return out.select(rows, keep_in_memory=True)

    def _finish_report(self, dsd, selected, codes, names, modality) -> None:
        import numpy as np

        report = self.report
        for role, ds in dsd.items():
            src, rows = selected[role]
            report.counts[role] = len(ds)
            per = np.bincount(codes[role if role in codes else "train"][rows], minlength=len(names)) if len(rows) else np.zeros(len(names), dtype=int)
            report.class_counts[role] = {names[i]: int(n) for i, n in enumerate(per)}
            if modality == "image":
                modes = Counter(self.modes.get((src, int(r))) for r in rows)
                report.converted[role] = {m: n for m, n in modes.most_common() if m not in (None, "RGB")}
        report.test_evaluation = "test" in dsd
        keys = ("origin", "license", "citation", "homepage", "hub_id", "config_name", "split_note", "label_rule")
        report.provenance = {k: self.info[k] for k in keys if self.info.get(k) is not None}
        if "build" in self.info:
            report.provenance["builtin"] = self.info.get("name")
            report.provenance["cache"] = self.info.get("path")
        if self.repaired_splits and not any("row" in r for r in report.repaired):
            report.warn("invalid UTF-8 was replaced in a column other than the text input (see the repaired lines)")
        if report.skipped and self.spec.on_bad_input == "skip":
            report.warn(f"{len(report.skipped):,} row(s) skipped (listed in the data report); pass --on-bad-input error to stop on bad rows instead")


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


_SPLIT_KEYWORDS = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "testing", "eval", "evaluation"),
}
_AUDIO_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".opus", ".aiff")


def _split_of(rel: str) -> str | None:
    """The split a relative path names (first folder, then the file name), datasets-style; or None."""
    import re

    parts = rel.split("/")
    parts[-1] = parts[-1].rsplit(".", 1)[0]
    for part in parts:
        for split, words in _SPLIT_KEYWORDS.items():
            for word in words:
                if re.search(rf"(?:^|[-._ 0-9]){word}(?:[-._ 0-9]|$)", part, flags=re.IGNORECASE):
                    return split
    return None


def _module_for(path: Path) -> tuple[str | None, dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "imagefolder", {}
    if suffix in _AUDIO_EXTENSIONS:
        return "audiofolder", {}
    return {
        ".csv": ("csv", {}),
        ".tsv": ("csv", {"sep": "\t"}),
        ".json": ("json", {}),
        ".jsonl": ("json", {}),
        ".parquet": ("parquet", {}),
        ".arrow": ("arrow", {}),
    }.get(suffix, (None, {}))


def _replace_column(ds, old: str, values, feature):
    """A one-column dataset ``input`` holding ``values`` in place of ``ds``' column ``old``.

    (Built afresh: ``add_column`` + ``remove_columns`` on a one-column dataset trips a row-count
    check in ``datasets``' concatenated tables.)
    """
    import datasets

    assert len(values) == len(ds) and ds.column_names == [old]
    return datasets.Dataset.from_dict({"input": list(values)}, features=datasets.Features({"input": feature}))


def _inspect_image(value, decode) -> tuple[str | None, str | None]:
    """Decode one image fully: (original PIL mode, None) or (None, reason)."""
    from PIL import Image, UnidentifiedImageError

    from tlhub.images import to_rgb

    if value is None:
        return None, "no image (empty cell)"
    path = value.get("path") if isinstance(value, dict) else None
    data = value.get("bytes") if isinstance(value, dict) else None
    try:
        if data:
            image = Image.open(io.BytesIO(data))
        elif path:
            if not os.path.isfile(path):
                return None, "image file not found"
            image = Image.open(path)
        else:
            return None, "no image (empty cell)"
        with image:
            mode = image.mode
            image.load()
            if image.width == 0 or image.height == 0:
                return None, "image has zero size"
            converted = to_rgb(image)
            if decode is not None:
                decode(converted)
        return mode, None
    except UnidentifiedImageError:
        return None, "not an image PIL can read"
    except Image.DecompressionBombError as exc:
        return None, f"image too large ({exc})"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc) or type(exc).__name__
        if "truncated" in msg.lower() or isinstance(exc, EOFError):
            return None, f"truncated image ({msg})"
        return None, f"corrupt image ({msg})"
    except Exception as exc:  # the adapter's decode failed
        message = getattr(exc, "message", None) or str(exc)
        return None, f"cannot decode ({type(exc).__name__}: {message})"


def _image_name(value) -> str | None:
    if isinstance(value, dict):
        return value.get("path") or None
    return None


def _allocate(available: dict[int, int], total: int) -> dict[int, int]:
    """Split ``total`` over classes in proportion to ``available`` (largest remainder, capped)."""
    size = sum(available.values())
    if size <= total:
        return dict(available)
    exact = {c: total * n / size for c, n in available.items()}
    out = {c: min(available[c], int(math.floor(x))) for c, x in exact.items()}
    left = total - sum(out.values())
    for c in sorted(exact, key=lambda c: (-(exact[c] - math.floor(exact[c])), c)):
        if left <= 0:
            break
        if out[c] < available[c]:
            out[c] += 1
            left -= 1
    return out


def _concat_sorted(by_class: dict[int, Any]):
    import numpy as np

    parts = [np.asarray(v, dtype=np.int64) for v in by_class.values() if len(v)]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def _true_rows(mask) -> list[int]:
    import numpy as np

    arr = mask.to_numpy(zero_copy_only=False)
    arr = np.asarray([bool(x) if x is not None else False for x in arr]) if arr.dtype == object else arr.astype(bool)
    return [int(i) for i in np.flatnonzero(arr)]


def _single(files: list[str] | None) -> str | None:
    return files[0] if files and len(files) == 1 else None


def _label_str(v) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def _is_text_feature(feature) -> bool:
    import datasets

    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string", "binary", "large_binary")


def _feature_kind(feature) -> str:
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        return f"ClassLabel, {feature.num_classes} classes"
    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, datasets.Audio):
        return "audio"
    if isinstance(feature, datasets.Value):
        return feature.dtype
    return type(feature).__name__


def _hub_offline() -> bool:
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover
        return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _root_cause(exc: BaseException) -> str:
    seen = set()
    while True:
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(exc))
        exc = nxt
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _local_fix(module: str) -> str:
    return {
        "csv": "check the file is comma-separated with a header row (quote fields that contain commas or line breaks)",
        "json": "use JSON Lines (one object per line) or a JSON array of objects with the same keys",
        "parquet": "re-export the Parquet file",
        "imagefolder": "put the images in one sub-folder per class (cat/1.png, dog/2.jpg)",
    }.get(module, "check the files' format")


# ------------------------------------------------------------------------------------------------
# Batches for training
# ------------------------------------------------------------------------------------------------


class _DecodeInputs:
    """``with_transform`` function: raw ``input`` values -> what the adapter's collate takes."""

    def __init__(self, decode: Callable[[Any], Any], image: bool):
        self.decode = decode
        self.image = image

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        if self.image:
            from tlhub.images import load_image

            inputs = [self.decode(load_image(v, name=_image_name(v))) for v in batch["input"]]
        else:
            inputs = [self.decode(v) for v in batch["input"]]
        return {"input": inputs, "label": batch["label"]}


class _CollateWithLabels:
    def __init__(self, collate: Callable[[list], dict]):
        self.collate = collate

    def __call__(self, batch) -> dict:
        import torch

        if isinstance(batch, dict):  # columns (a ds[list_of_indices] read)
            inputs, labels = batch["input"], batch["label"]
        else:  # rows (what DataLoader's fetcher gets from Dataset.__getitems__)
            inputs, labels = [r["input"] for r in batch], [r["label"] for r in batch]
        out = dict(self.collate(inputs))
        out["labels"] = torch.as_tensor(labels, dtype=torch.long)
        return out


def make_dataloader(
    split: "datasets.Dataset",
    *,
    decode: Callable[[Any], Any],
    collate: Callable[[list], dict],
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    persistent_workers: bool | None = None,
) -> "torch.utils.data.DataLoader":
    """A ``DataLoader`` over a prepared split: batches of ``collate(decoded inputs)`` plus ``labels``.

    Rows are fetched a batch at a time (``Dataset.__getitems__``: one Arrow read per batch) and decoded lazily through
    ``split.with_transform``: images from their stored bytes/paths to RGB PIL images, then
    ``decode`` (the adapter's ``decode_input``); texts through ``decode`` as they are. Shuffling
    is deterministic: a ``torch.Generator`` seeded with ``seed`` orders every epoch (the same
    seed gives the same sequence of epochs), and worker seeds derive from it too.
    """
    import pickle

    import datasets
    import torch
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, not {batch_size!r}", fix="e.g. batch_size=32")
    if "input" not in split.column_names or "label" not in split.column_names:
        raise DataError(f"make_dataloader needs a prepared split with 'input' and 'label' columns (got {split.column_names})", fix="prepare the data with tlhub.data.load_data")
    image = isinstance(split.features["input"], datasets.Image)
    ds = split.cast_column("input", datasets.Image(decode=False)) if image else split
    ds = ds.with_transform(_DecodeInputs(decode, image))

    sampler_gen = torch.Generator().manual_seed(int(seed))
    sampler = RandomSampler(ds, generator=sampler_gen) if shuffle else SequentialSampler(ds)
    batches = BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["persistent_workers"] = bool(persistent_workers) if persistent_workers is not None else False
        kwargs["generator"] = torch.Generator().manual_seed(int(seed) + 1)
        try:  # closures (a local collate) cannot go to spawned workers: fall back to fork where there is one
            pickle.dumps((decode, collate))
        except Exception:
            import multiprocessing

            if "fork" in multiprocessing.get_all_start_methods():
                kwargs["multiprocessing_context"] = "fork"
    return DataLoader(
        ds,
        batch_sampler=batches,  # a plain batch sampler: accelerate's prepare_data_loader shards it across processes
        collate_fn=_CollateWithLabels(collate),
        num_workers=num_workers,
        pin_memory=pin_memory,
        **kwargs,
    )


__all__ = ["DataSpec", "DataReport", "PreparedData", "load_data", "make_dataloader", "BAD_INPUT_POLICIES"]
