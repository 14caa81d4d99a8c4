"""Choosing the columns and reading the labels: which column holds the inputs and which the
classes (given, or found by type and name), the class names and every row's class code, and the
text inputs that cannot be used (missing, empty) or were repaired."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tlhub.data.context import LoadContext
from tlhub.data.sources import RawSource
from tlhub.data.spec import IMAGE_COLUMN_NAMES, IMAGE_EXTENSIONS, LABEL_COLUMN_NAMES, TEXT_COLUMN_NAMES
from tlhub.errors import DataError, suggest

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


@dataclass(frozen=True)
class Columns:
    input: str
    label: str
    modality: str  # "image" | "text" | "audio"


@dataclass(frozen=True)
class Labels:
    names: list[str]  # class names, in class-id order (a ClassLabel's own order, else sorted)
    #: role -> class code of every row of its source split (int64; -1: unusable)
    codes: dict[str, "np.ndarray"]
    #: role -> row -> why its label cannot be used
    bad: dict[str, dict[int, str]]
    #: the roles still evaluated (a test split without usable labels is dropped)
    roles: dict[str, str]


def pick_columns(ctx: LoadContext, train, split_name: str) -> Columns:
    """The input and label columns of the training split, and the modality of the input."""
    import datasets

    spec = ctx.spec
    features = train.features
    columns = list(features)
    listing = ", ".join(f"{c} ({feature_kind(features[c])})" for c in columns)
    label_col = _label_column(spec.label_column, spec.input_column, features, split_name, listing)

    # input column
    input_col = spec.input_column
    wanted = ctx.modality
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
        texts = [c for c in others if is_text_feature(features[c])]
        ranked_texts = [c for n in TEXT_COLUMN_NAMES for c in texts if c.lower() == n] + [c for c in texts if c.lower() not in TEXT_COLUMN_NAMES]
        path_like = [c for c in texts if _looks_like_image_paths(train, c)]
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
    elif is_text_feature(feature):
        modality = "image" if (wanted == "image" or (wanted is None and _looks_like_image_paths(train, input_col))) else "text"
    else:
        raise DataError(
            f"the input column {input_col!r} holds {feature_kind(feature)}, which tlhub cannot feed to a model",
            fix="pass --input-column NAME with an image, audio or text column",
        )
    if wanted is not None and modality != wanted:
        raise DataError(
            f"the model takes {wanted} input, but the input column {input_col!r} holds {modality}",
            fix=f"choose {wanted} data or a backbone that takes {modality}; or pass --input-column NAME",
        )
    if modality == "audio":
        ctx.report.warn("audio inputs are not decoded or checked before training")
    return Columns(input_col, label_col, modality)


def _label_column(label_col: str | None, input_col: str | None, features, split_name: str, listing: str) -> str:
    """The label column: the one given (checked), else a ClassLabel column, else one with a usual name."""
    import datasets

    columns = list(features)
    if label_col is not None:
        if label_col not in features:
            close = suggest(label_col, columns)
            raise DataError(
                f"the label column {label_col!r} is not in the {split_name!r} split (columns: {listing})",
                fix=(f"did you mean --label-column {close[0]}? " if close else "") + "pass --label-column NAME with one of the columns above",
            )
    else:
        class_labels = [c for c in columns if isinstance(features[c], datasets.ClassLabel) and c != input_col]
        by_name = [c for name in LABEL_COLUMN_NAMES for c in columns if c.lower() == name and c != input_col]
        picked = (class_labels or by_name or [None])[0]
        if picked is None:
            raise DataError(
                f"no label column found in the {split_name!r} split (columns: {listing}); tlhub looks for a ClassLabel column or one named {', '.join(LABEL_COLUMN_NAMES[:6])}, ...",
                fix="pass --label-column NAME (label_column=...) with the column that holds the classes",
            )
        label_col = picked
    if isinstance(features[label_col], (datasets.Image, datasets.Audio)):
        raise DataError(f"the label column {label_col!r} holds {feature_kind(features[label_col])}s, not classes", fix="pass --label-column NAME with the column that holds the classes")
    return label_col


def _looks_like_image_paths(ds, col: str) -> bool:
    if not is_text_feature(ds.features[col]) or len(ds) == 0:
        return False
    sample = [v for v in ds[:20][col] if isinstance(v, str)]
    return bool(sample) and all(v.strip().lower().endswith(IMAGE_EXTENSIONS) for v in sample)


def read_labels(ctx: LoadContext, source: RawSource, roles: dict[str, str], label_col: str) -> Labels:
    """Class names from the training split; per role: codes (int64, -1 = unusable) and bad rows."""
    import datasets
    import numpy as np

    raw = source.splits
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
            ctx.report.warn(
                f"{len(absent)} class(es) of the label feature have no rows in the training split and are left out of the "
                f"label set: {', '.join(map(repr, absent[:10]))}{' ...' if len(absent) > 10 else ''} (their validation/test rows are skipped)"
            )
    else:
        values = _label_values(train, label_col, train_name)
        distinct = {v for v in values if v is not None}
        if not distinct:
            raise DataError(f"the label column {label_col!r} of the {train_name!r} split has no values", fix="pass --label-column NAME with the column that holds the classes")
        ordered = sorted(distinct, key=lambda v: (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)))
        names = [label_str(v) for v in ordered]
        mapping = {v: i for i, v in enumerate(ordered)}
    if len(set(names)) != len(names):
        dup = [n for n, k in Counter(names).items() if k > 1]
        raise DataError(f"the label column {label_col!r} has duplicate class names: {dup}", fix="give each class a distinct name")
    _warn_label_variants(ctx, names, label_col)

    codes, bad = {}, {}
    for role, split in roles.items():
        ds = raw[split]
        if label_col not in ds.features:
            if role == "test":
                ctx.report.warn(f"the test split {split!r} has no {label_col!r} column: no test evaluation")
                continue
            raise DataError(
                f"the label column {label_col!r} is not in the {split!r} split (columns: {', '.join(ds.features)})",
                fix="pass --label-column NAME with a column present in every split, or --validation-split with a labelled split",
            )
        codes[role], bad[role] = _codes(ds, split, label_col, names, mapping)
        if role == "test" and len(ds) and (codes[role] < 0).all():
            ctx.report.warn(f"the test split {split!r} has no usable labels: no test evaluation")
            del codes[role], bad[role]
    return Labels(names, codes, bad, {role: split for role, split in roles.items() if role in codes})


def label_key(name: str) -> str:
    """A class name without case, spacing or -/_ differences: 'Pos', ' pos', 'POS' -> 'pos'."""
    import re

    return " ".join(re.sub(r"[-_]+", " ", str(name)).split()).casefold()


def _warn_label_variants(ctx: LoadContext, names: list[str], label_col: str) -> None:
    """Warn about class names that differ only in case or spacing ('pos' / 'Pos'): they are kept
    as distinct classes (tlhub does not guess that a typo is one), with how to merge them."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(label_key(name), []).append(name)
    for variants in groups.values():
        if len(variants) > 1:
            ctx.report.warn(
                f"the classes {' and '.join(map(repr, variants))} differ only in case or spacing and are trained as "
                f"{len(variants)} separate classes; to merge them, give them one spelling in the data (rename the folders, "
                f"or rewrite the {label_col!r} column, e.g. lower-cased), or pass --strict to stop on this"
            )


def _label_values(ds, col: str, split: str) -> list:
    """The label column's values, normalised (stripped strings, whole floats as ints, NaN/empty as None)."""
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


def _codes(ds, split, col, names, mapping) -> tuple["np.ndarray", dict[int, str]]:
    """One split's class codes under the training split's ``names`` (-1: unusable) and its bad rows."""
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
            values = [None if v is None else label_str(v) for v in _label_values(ds, col, split)]
        else:
            values = _label_values(ds, col, split)
            if any(isinstance(k, (int, float)) for k in mapping):  # "3" in a CSV test file vs 3 in train
                values = [int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v for v in values]
            elif any(isinstance(v, (int, float)) for v in values):
                values = [label_str(v) if v is not None else None for v in values]
        codes = np.full(len(values), -1, dtype=np.int64)
        for row, v in enumerate(values):
            if v is None:
                bad[row] = "label is empty"
                continue
            code = mapping.get(v)
            if code is None:
                bad[row] = f"label {label_str(v)!r} does not occur in the training split"
            else:
                codes[row] = code
    return codes, bad


def text_problems(ctx: LoadContext, source: RawSource, split: str, col: str) -> dict[int, str]:
    """Row -> why its text cannot be used (missing, empty); repaired rows go to the report."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = source.splits[split].data.column(col)
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
                ctx.report.repaired.append({"split": split, "row": row, "reason": f"invalid UTF-8 byte {v[exc.start:exc.start + 1]!r} replaced with U+FFFD"})
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
    if split in source.repaired_splits:
        for row in _true_rows(pc.match_substring(arr, "\ufffd")):
            ctx.report.repaired.append({"split": split, "row": row, "file": source.file_of(split), "reason": "invalid UTF-8 replaced with U+FFFD"})
    return bad


def _true_rows(mask) -> list[int]:
    import numpy as np

    arr = mask.to_numpy(zero_copy_only=False)
    arr = np.asarray([bool(x) if x is not None else False for x in arr]) if arr.dtype == object else arr.astype(bool)
    return [int(i) for i in np.flatnonzero(arr)]


def label_str(v) -> str:
    """A label value as a class name (3.0 -> "3")."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def is_text_feature(feature) -> bool:
    import datasets

    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string", "binary", "large_binary")


def feature_kind(feature) -> str:
    """A column's type in words, for messages."""
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
