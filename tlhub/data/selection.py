"""Choosing each prepared split's rows: the training rows (all, the first N per class, or a
stratified sample), validation rows (a given split, or carved out of train, stratified) and test
rows (optionally a stratified sample). Rows whose inputs fail their checks are replaced by the
next ones of the same class, so caps are met with usable rows.

All random draws use the run's one generator (:attr:`LoadContext.rng`), in a fixed order, so a
seed gives the same selection every time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tlhub.data.checks import InputChecks
from tlhub.data.columns import Labels
from tlhub.data.context import LoadContext
from tlhub.data.sources import RawSource
from tlhub.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


@dataclass(frozen=True)
class Selection:
    #: prepared split ("train", "validation", "test") -> (source split, sorted row indices into it)
    rows: dict[str, tuple[str, "np.ndarray"]]


def select_rows(ctx: LoadContext, source: RawSource, labels: Labels, checks: InputChecks) -> Selection:
    """Choose each prepared split's rows (indices into its source split), checking their inputs."""
    import numpy as np

    spec = ctx.spec
    raw, roles, codes, names = source.splits, labels.roles, labels.codes, labels.names
    n_classes = len(names)
    train_name = roles["train"]
    train_codes = codes["train"]
    by_class = {c: np.flatnonzero(train_codes == c) for c in range(n_classes)}  # usable rows, file order
    subsampled = spec.max_train_per_class is not None or spec.max_train_samples is not None
    selected: dict[str, tuple[str, Any]] = {}
    origin = ctx.report.split_origin
    frac = float(spec.validation_fraction)

    if subsampled:
        available = {c: len(r) for c, r in by_class.items()}
        if spec.max_train_per_class is not None:
            quota = {c: min(n, spec.max_train_per_class) for c, n in available.items()}
            order = by_class  # the FIRST rows of each class, in file order
            how = f"the first {spec.max_train_per_class:,} rows of each class in file order"
        else:
            quota = dict(available)
            order = {c: ctx.rng.permutation(r) for c, r in by_class.items()}
            how = "a stratified random sample"
        if spec.max_train_samples is not None and sum(quota.values()) > spec.max_train_samples:
            quota = allocate(quota, spec.max_train_samples)
            how += f", {spec.max_train_samples:,} rows in all, stratified" if spec.max_train_per_class is not None else f" of {spec.max_train_samples:,} rows (seed {spec.seed})"
        train_by_class = _take(ctx, checks, train_name, order, quota)
        origin["train"] = f"{how} of source split {train_name!r} ({len(raw[train_name]):,} rows)"
    else:
        train_by_class = _take(ctx, checks, train_name, by_class, None)
        origin["train"] = f"source split {train_name!r}"

    # validation
    if "validation" in roles:
        vname = roles["validation"]
        val_by_class = _eval_rows(ctx, checks, vname, codes["validation"], n_classes, spec.max_eval_samples)
        origin["validation"] = f"source split {vname!r}" + (f" (stratified sample of {spec.max_eval_samples:,}, seed {spec.seed})" if spec.max_eval_samples and sum(map(len, val_by_class.values())) >= spec.max_eval_samples else "")
        selected["validation"] = (vname, concat_sorted(val_by_class))
    else:
        val_by_class = _carve_validation(ctx, checks, train_name, by_class, train_by_class, frac, subsampled, names)
        n_val = sum(len(v) for v in val_by_class.values())
        where = "from the training rows that were not selected" if subsampled else f"out of source split {train_name!r}"
        origin["validation"] = f"{frac:.0%} stratified {where} (seed {spec.seed})" if n_val else "none"
        if n_val == 0:
            ctx.report.warn("the validation split is empty: every class has too few rows to spare one for validation")
        selected["validation"] = (train_name, concat_sorted(val_by_class))
    selected["train"] = (train_name, concat_sorted(train_by_class))
    selected = {"train": selected["train"], "validation": selected["validation"]}

    if "test" in roles:
        tname = roles["test"]
        test_by_class = _eval_rows(ctx, checks, tname, codes["test"], n_classes, spec.max_eval_samples)
        origin["test"] = f"source split {tname!r}" + (f" (stratified sample of {spec.max_eval_samples:,}, seed {spec.seed})" if spec.max_eval_samples and len(raw[tname]) > spec.max_eval_samples else "")
        selected["test"] = (tname, concat_sorted(test_by_class))

    checks.raise_if_errors()  # on_bad_input="error": every bad row found, before anything else

    # class-level warnings
    # (a class left without training rows is dropped from the label set by load_data, with a warning)
    counts = {c: len(train_by_class.get(c, ())) for c in range(n_classes)}
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
        ctx.report.warn(f"no test evaluation: all {len(raw[roles['test']]):,} rows of the test split {roles['test']!r} were skipped")
        del selected["test"]
    if len(names) > 20 and len(names) > 0.5 * n_train:
        ctx.report.warn(f"the label column has {len(names):,} classes for {n_train:,} training rows: is {ctx.report.label_column!r} the right column? (--label-column)")
    return Selection(selected)


def _eval_rows(ctx: LoadContext, checks: InputChecks, split: str, codes, n_classes: int, cap: int | None) -> dict[int, Any]:
    """An evaluation split's usable rows per class: all of them, or a stratified sample of ``cap``."""
    import numpy as np

    by_class = {c: np.flatnonzero(codes == c) for c in range(n_classes)}
    if cap is None or sum(len(v) for v in by_class.values()) <= cap:
        return _take(ctx, checks, split, by_class, None)
    quota = allocate({c: len(v) for c, v in by_class.items()}, cap)
    order = {c: ctx.rng.permutation(v) for c, v in by_class.items()}
    return _take(ctx, checks, split, order, quota)


def _carve_validation(ctx: LoadContext, checks: InputChecks, train_name, by_class, train_by_class, frac, subsampled, names):
    """Validation rows per class out of the training split (taking them out of ``train_by_class``)."""
    import numpy as np

    cap = ctx.spec.max_eval_samples
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
            leftover = np.array([r for r in by_class[c] if r not in used and not checks.is_bad(train_name, r)], dtype=np.int64)
            if len(leftover):
                sources[c] = ctx.rng.permutation(leftover)
                quota[c] = min(want, len(leftover))
            elif n_sel >= 2:  # nothing left over: carve from the selected rows of this class
                perm = ctx.rng.permutation(chosen)
                k = min(want, n_sel - 1)
                val_by_class[c] = np.sort(perm[:k])
                train_by_class[c] = np.sort(perm[k:])
            else:
                singles.append(names[c])
        if cap is not None:
            total = sum(quota.values()) + sum(len(v) for v in val_by_class.values())
            if total > cap:
                quota = allocate(quota, max(0, cap - sum(len(v) for v in val_by_class.values())))
        taken = _take(ctx, checks, train_name, sources, quota) if sources else {}
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
            want = allocate(want, cap)
        for c, k in want.items():
            if k <= 0:
                continue
            perm = ctx.rng.permutation(train_by_class[c])
            val_by_class[c] = np.sort(perm[:k])
            train_by_class[c] = np.sort(perm[k:])
    if singles:
        ctx.report.warn(
            f"{len(singles)} class(es) have a single training example, kept in train with none in validation: {', '.join(map(repr, singles[:10]))}"
            + (" ..." if len(singles) > 10 else "")
        )
    return val_by_class


def _take(ctx: LoadContext, checks: InputChecks, split: str, order: dict[int, Any], quota: dict[int, int] | None) -> dict[int, Any]:
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
        checks.check(split, [r for rows in pending.values() for r in rows])
        for c, rows in pending.items():
            chosen[c].extend(r for r in rows if not checks.is_bad(split, r))
        if checks.errors and ctx.spec.on_bad_input == "error":
            break  # no top-up: training will not start anyway
    return {c: np.array(sorted(v), dtype=np.int64) for c, v in chosen.items()}


def allocate(available: dict[int, int], total: int) -> dict[int, int]:
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


def concat_sorted(by_class: dict[int, Any]):
    """Every class's rows as one sorted array."""
    import numpy as np

    parts = [np.asarray(v, dtype=np.int64) for v in by_class.values() if len(v)]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

