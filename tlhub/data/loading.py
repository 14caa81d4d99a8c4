"""Training data from the ``datasets`` library, checked, labelled and split for the training engine.

:func:`load_data` turns a :class:`DataSpec` into :class:`PreparedData`: a ``DatasetDict`` whose
``train`` / ``validation`` / (optional) ``test`` splits have exactly two columns, ``input`` (an
``Image()`` or a string) and ``label`` (a ``ClassLabel`` with the real class names), plus a
:class:`DataReport` that accounts for every row: how many each split holds, every row that was
dropped and why (file or row), every image converted to RGB, every text decoded with
replacement characters, and anything else worth a warning.

Sources (``DataSpec.source``):

- a built-in name: ``fashion-mnist``, ``vader-movies`` (see :mod:`tlhub.data.builtin`; a built-in
  name wins over a folder of the same name: write ``./fashion-mnist`` for the folder);
- a local folder of images in class sub-folders (``datasets``' ``imagefolder`` builder, with
  optional ``train/`` / ``test/`` split folders), or of CSV / TSV / JSON / JSONL / Parquet files
  (splits from the file names, as ``datasets`` infers them), or a folder written by ``save_to_disk``;
- one such file;
- a Hub dataset name (``datasets.load_dataset``, with ``DataSpec.config_name`` for a dataset
  that has several configurations; offline with ``HF_HUB_OFFLINE=1`` from the datasets cache),
  or a local copy of a Hub dataset repository (a folder whose ``README.md`` declares ``configs:``);
- an in-memory ``datasets.Dataset`` / ``DatasetDict`` (:meth:`DataSpec.from_object`, or
  ``load_data(spec, dataset=obj)``).

The stages, in order (each a module of its own, passing small dataclasses):

1. :mod:`tlhub.data.sources` opens the source (:class:`~tlhub.data.sources.RawSource`) and picks
   the split that plays each role;
2. :mod:`tlhub.data.columns` picks the input and label columns
   (:class:`~tlhub.data.columns.Columns`), reads the class names and codes
   (:class:`~tlhub.data.columns.Labels`) and finds unusable texts;
3. :mod:`tlhub.data.selection` chooses each prepared split's rows
   (:class:`~tlhub.data.selection.Selection`), checking their inputs through
   :mod:`tlhub.data.checks` (which also keeps the ledger of bad rows);
4. this module builds the prepared splits and completes the :class:`DataReport`.

:func:`make_dataloader` (:mod:`tlhub.data.loaders`) feeds a prepared split to a model: rows are
decoded lazily (through ``Dataset.with_transform``) with the adapter's ``decode_input`` and
batched with its collate.

Nothing here imports torch (or ``datasets``) at module import time.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from tlhub.data.checks import InputChecks
from tlhub.data.columns import Columns, Labels, feature_kind, pick_columns, read_labels, text_problems
from tlhub.data.context import LoadContext
from tlhub.data.loaders import make_dataloader
from tlhub.data.report import DataReport
from tlhub.data.selection import Selection, select_rows
from tlhub.data.sources import RawSource, open_source, pick_splits
from tlhub.data.spec import BAD_INPUT_POLICIES, MODALITY_NAMES, DataSpec
from tlhub.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    import datasets


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
    from tlhub.data.builtin import _progress_bars

    with _progress_bars(progress):
        return _run(LoadContext.create(spec, modality=modality, decode=decode, progress=progress))


def _run(ctx: LoadContext) -> PreparedData:
    import datasets

    started = time.perf_counter()
    report = ctx.report
    source = open_source(ctx)
    report.source_name = source.name
    roles = pick_splits(ctx, source)
    columns = pick_columns(ctx, source.splits[roles["train"]], roles["train"])
    report.input_column, report.label_column, report.modality = columns.input, columns.label, columns.modality

    # labels: names from the training split, codes for every row of every split
    labels = read_labels(ctx, source, roles, columns.label)
    report.labels = list(labels.names)
    if len(labels.names) < 2:
        raise DataError(
            f"the training data has a single class ({labels.names[0] if labels.names else 'none'}): a classifier needs at least two",
            fix="add rows of other classes, or check --label-column",
        )
    checks = InputChecks(ctx, source, columns)
    for role, name in labels.roles.items():
        bad_text = text_problems(ctx, source, name, columns.input) if columns.modality == "text" else {}
        for row, reason in sorted({**labels.bad.get(role, {}), **bad_text}.items()):
            checks.record_bad(name, row, reason)
            labels.codes[role][row] = -1

    # rows: training selection, validation (given or carved), test
    selection = select_rows(ctx, source, labels, checks)
    labels, selection = _drop_classes_without_training_rows(ctx, checks, labels, selection)
    report.labels = list(labels.names)
    dsd = datasets.DatasetDict(
        {role: _build_split(ctx, source, checks, columns, labels, role, split, rows) for role, (split, rows) in selection.rows.items()}
    )
    _finish_report(ctx, source, checks, columns, labels, selection, dsd)
    report.seconds = round(time.perf_counter() - started, 3)
    return PreparedData(
        splits=dsd,
        labels=list(labels.names),
        modality=columns.modality,
        report=report,
        fingerprints={k: v._fingerprint for k, v in dsd.items()},
        source_name=source.name,
        info=source.info,
        spec=ctx.spec,
    )


def load_split(
    spec: DataSpec,
    split: str | None,
    *,
    labels: list[str],
    modality: str | None = None,
    decode: Callable[[Any], Any] | None = None,
    progress: bool = True,
) -> tuple[PreparedData, str]:
    """One split of labelled data, to score a trained model on: ``(prepared data, split name)``.

    Unlike :func:`load_data` nothing is carved out or needs two classes: every usable row of
    ``split`` (or a stratified sample of ``spec.max_eval_samples``), labelled with the model's
    ``labels``. ``split`` None: ``test`` if there is one, else the only split (a folder without
    split folders, a single file); ``"all"``: every split together (a whole folder). A split that
    is not there, or a class the model does not know, is a :class:`DataError` that lists them.
    """
    import datasets
    import numpy as np

    from tlhub.data.builtin import _progress_bars
    from tlhub.data.columns import _codes, _label_values, label_str
    from tlhub.data.selection import _eval_rows, concat_sorted

    with _progress_bars(progress):
        ctx = LoadContext.create(spec, modality=modality, decode=decode, progress=progress)
        source = open_source(ctx)
        available = list(source.splits)
        listing = ", ".join(f"{s!r} ({len(source.splits[s]):,} rows)" for s in available) or "none"
        if split is None:
            split = "test" if "test" in available else available[0] if len(available) == 1 else None
            if split is None:
                raise DataError(f"the data has several splits and none is named 'test' (splits: {listing})",
                                fix="pass --split NAME with one of them, or --split all to score every row")
        names = available if split == "all" else [split]
        if split != "all" and split not in source.splits:
            from tlhub.errors import suggest

            close = suggest(split, available)
            single = " (a folder without split folders, or a single file, is one split)" if len(available) == 1 else ""
            raise DataError(f"the split {split!r} is not in the data (splits: {listing}){single}",
                            fix=(f"did you mean --split {close[0]}? " if close else "") + f"pass --split with one of the splits above, or --split all")
        columns = pick_columns(ctx, source.splits[names[0]], names[0])
        ctx.report.input_column, ctx.report.label_column, ctx.report.modality = columns.input, columns.label, columns.modality
        ctx.report.labels = list(labels)
        checks = InputChecks(ctx, source, columns)
        parts, codes_of = [], {}
        for name in names:
            ds = source.splits[name]
            if columns.label not in ds.features:
                raise DataError(f"the split {name!r} has no label column {columns.label!r} (columns: {', '.join(ds.features)})",
                                fix="evaluate labelled data: pass --label-column NAME, or another --split")
            feature = ds.features[columns.label]
            values = feature.names if isinstance(feature, datasets.ClassLabel) else {label_str(v) for v in _label_values(ds, columns.label, name) if v is not None}
            unknown = sorted(set(values) - set(labels))
            if unknown and isinstance(feature, datasets.ClassLabel):  # a declared class may have no rows
                present = set(np.asarray(ds[columns.label])[np.asarray(ds[columns.label]) >= 0].tolist())
                unknown = sorted(n for i, n in enumerate(feature.names) if i in present and n not in labels)
            if unknown:
                raise DataError(
                    f"the data has classes the model was not trained on: {', '.join(map(repr, unknown[:10]))}",
                    fix=f"evaluate on data with the model's classes ({', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''}) or fine-tune on these classes",
                )
            codes, bad = _codes(ds, name, columns.label, list(labels), None)
            for row, reason in sorted(bad.items()):
                checks.record_bad(name, row, reason)
                codes[row] = -1
            codes_of[name] = codes
            by_class = _eval_rows(ctx, checks, name, codes, len(labels), spec.max_eval_samples)
            rows = concat_sorted(by_class)
            ctx.report.split_origin[name] = f"source split {name!r}"
            parts.append((name, rows))
        checks.raise_if_errors()
        table = Labels(list(labels), codes_of, {}, {n: n for n in names})
        built = [_build_split(ctx, source, checks, columns, table, name, name, rows) for name, rows in parts if len(rows)]
        if not built:
            raise DataError(f"no usable labelled rows in the split {split!r}", fix="see the skipped rows in the data report, or choose another --split")
        ds = built[0] if len(built) == 1 else datasets.concatenate_datasets(built)
        for name, rows in parts:
            ctx.report.counts[name] = len(rows)
        key = "evaluation"
        return PreparedData(
            splits=datasets.DatasetDict({key: ds}),
            labels=list(labels),
            modality=columns.modality,
            report=ctx.report,
            fingerprints={key: ds._fingerprint},
            source_name=source.name,
            info=source.info,
            spec=spec,
        ), split


def _drop_classes_without_training_rows(ctx: LoadContext, checks: InputChecks, labels: Labels, selection: Selection) -> tuple[Labels, Selection]:
    """Leave out of the label set every class with no usable training row (e.g. all its images are
    corrupt): a head with an output no example ever trained is a class the model cannot predict,
    yet it would be saved, scored and served as one. Its validation/test rows are skipped (and
    listed); the run goes on with a warning, as for a ClassLabel class absent from the training
    split. Fewer than two classes left is an error."""
    import numpy as np

    names = labels.names
    train_split, train_rows = selection.rows["train"]
    present = np.bincount(labels.codes["train"][train_rows], minlength=len(names)) > 0
    if present.all():
        return labels, selection
    dropped = [n for n, p in zip(names, present) if not p]
    kept = [n for n, p in zip(names, present) if p]
    if len(kept) < 2:
        raise DataError(
            f"only {len(kept)} class(es) have usable training rows ({', '.join(map(repr, kept)) or 'none'}); every row of "
            f"{', '.join(map(repr, dropped[:10]))} was skipped: a classifier needs at least two classes",
            fix="see the skipped rows in the data report (a reason per row) and fix or replace those files",
        )
    ctx.report.warn(
        f"{len(dropped)} class(es) are left out of the label set because every one of their training rows was skipped: "
        f"{', '.join(map(repr, dropped[:10]))}{' ...' if len(dropped) > 10 else ''} (the model does not predict them; "
        "their validation/test rows are skipped too). Fix those rows (see the skipped rows) to keep the class"
    )
    lut = np.full(len(names) + 1, -1, dtype=np.int64)  # old code -> new code; lut[-1] = -1 keeps "unusable"
    lut[np.flatnonzero(present)] = np.arange(len(kept))
    codes = {role: lut[c] for role, c in labels.codes.items()}
    rows = {}
    for role, (split, chosen) in selection.rows.items():
        old = labels.codes.get(role, labels.codes["train"])[chosen]  # carved validation rows: codes of train
        for row, code in zip(chosen, old):
            if lut[code] < 0:
                checks.record_bad(split, int(row), f"class {names[code]!r} has no usable training rows")
        rows[role] = (split, chosen[lut[old] >= 0])
    if "test" in rows and len(rows["test"][1]) == 0:
        ctx.report.warn(f"no test evaluation: no row of the test split {rows['test'][0]!r} is of a class left in the label set")
        del rows["test"]
    if len(rows["validation"][1]) == 0 and len(selection.rows["validation"][1]):
        raise DataError(
            f"no validation rows are left once the classes {', '.join(map(repr, dropped[:10]))} are dropped",
            fix="fix the skipped training rows of those classes (see the data report), or use another --validation-split",
        )
    return Labels(kept, codes, labels.bad, labels.roles), Selection(rows)


def _build_split(ctx: LoadContext, source: RawSource, checks: InputChecks, columns: Columns, labels: Labels, role: str, split: str, rows):
    """The prepared split ``role``: rows ``rows`` of source split ``split``, as ``input`` and ``label``."""
    import datasets
    import pyarrow as pa

    ds, input_col = source.splits[split], columns.input
    codes = labels.codes[role] if role in labels.codes else labels.codes["train"]  # carved validation rows: codes of train
    out = ds.select_columns([input_col])
    feature = out.features[input_col]
    if columns.modality == "image" and not isinstance(feature, datasets.Image):  # a column of file paths
        paths = checks.image_paths(split)
        out = _replace_column(out, input_col, paths, datasets.Value("string")).cast_column("input", datasets.Image())
    elif columns.modality == "text" and not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
        arr = ds.data.column(input_col)
        if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
            values = [None if v is None else v.decode("utf-8", errors="replace") for v in arr.to_pylist()]
        else:
            values = [None if v is None else str(v) for v in arr.to_pylist()]
            ctx.report.warn(f"the text column {input_col!r} holds {feature_kind(feature)} values: converted to strings")
        out = _replace_column(out, input_col, values, datasets.Value("string"))
    elif input_col != "input":
        out = out.rename_column(input_col, "input")
    out = out.add_column("label", codes, feature=datasets.ClassLabel(names=list(labels.names)))
    return out.select(rows, keep_in_memory=True)


def _finish_report(ctx: LoadContext, source: RawSource, checks: InputChecks, columns: Columns, labels: Labels, selection: Selection, dsd) -> None:
    import numpy as np

    report, names, codes, info = ctx.report, labels.names, labels.codes, source.info
    for role, ds in dsd.items():
        src, rows = selection.rows[role]
        report.counts[role] = len(ds)
        per = np.bincount(codes[role if role in codes else "train"][rows], minlength=len(names)) if len(rows) else np.zeros(len(names), dtype=int)
        report.class_counts[role] = {names[i]: int(n) for i, n in enumerate(per)}
        if columns.modality == "image":
            modes = Counter(checks.modes.get((src, int(r))) for r in rows)
            report.converted[role] = {m: n for m, n in modes.most_common() if m not in (None, "RGB")}
    report.test_evaluation = "test" in dsd
    keys = ("origin", "license", "citation", "homepage", "hub_id", "config_name", "split_note", "label_rule")
    report.provenance = {k: info[k] for k in keys if info.get(k) is not None}
    if "build" in info:
        report.provenance["builtin"] = info.get("name")
        report.provenance["cache"] = info.get("path")
    if source.repaired_splits and not any("row" in r for r in report.repaired):
        report.warn("invalid UTF-8 was replaced in a column other than the text input (see the repaired lines)")
    if report.skipped and ctx.spec.on_bad_input == "skip":
        report.warn(f"{len(report.skipped):,} row(s) skipped (listed in the data report); pass --on-bad-input error to stop on bad rows instead")


def _replace_column(ds, old: str, values, feature):
    """A one-column dataset ``input`` holding ``values`` in place of ``ds``' column ``old``.

    (Built afresh: ``add_column`` + ``remove_columns`` on a one-column dataset trips a row-count
    check in ``datasets``' concatenated tables.)
    """
    import datasets

    assert len(values) == len(ds) and ds.column_names == [old]
    return datasets.Dataset.from_dict({"input": list(values)}, features=datasets.Features({"input": feature}))


__all__ = ["DataSpec", "DataReport", "PreparedData", "load_data", "load_split", "make_dataloader", "BAD_INPUT_POLICIES"]
