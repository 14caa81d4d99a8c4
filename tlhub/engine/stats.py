"""Uncertainty of held-out numbers: bootstrap intervals, paired differences, McNemar's test.

On the small test splits transfer learning lives with, one score is a noisy number (on 2,000
examples a one-point difference is within noise). Every function here works from the
per-example predictions and leaves the statistics to scipy:

- :func:`metric_intervals`: 95% bootstrap intervals of accuracy, macro precision/recall/F1 and
  the per-class precision/recall/F1, all from ONE ``scipy.stats.bootstrap`` call. The single
  resampled quantity is the (reference, prediction) pair of each example, so every metric of a
  resample comes from the same confusion matrix, counted for a whole batch of resamples at once
  with one ``np.bincount``.
- :func:`paired_difference`: the interval of ``accuracy(A) - accuracy(B)`` on the same examples
  (``scipy.stats.bootstrap(..., paired=True)``: one draw of example indices for both models).
- :func:`mcnemar`: McNemar's exact test of "A and B are equally accurate" on the discordant
  pairs (``scipy.stats.binomtest``).

Method: the **percentile** bootstrap, not scipy's default BCa. BCa needs a jackknife (the
statistic on each of the n leave-one-out samples); on 10,000 examples that costs about 3 s on two
CPU cores against about 1 s for a whole 9,999-resample percentile bootstrap, and it returns NaN
for a degenerate distribution (a perfect classifier on a small split). The percentile interval
stays inside [0, 1] (unlike the "basic" one) and for a proportion on a few thousand examples it
agrees with the normal approximation to the third decimal. Seeded: the same inputs and seed give
the same interval.

scipy is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from tlhub.errors import ConfigError, DataError

#: what every interval defaults to
CONFIDENCE = 0.95
#: resamples per interval. The ends of a 95% percentile interval from 4,999 resamples move by
#: about 4% of a standard error from seed to seed (invisible at 3 decimals); half of scipy's
#: default 9,999, so that 10,000 examples cost ~0.5 s on two idle CPU cores (~1.7 s on busy ones).
N_RESAMPLES = 4_999
SEED = 0
MIN_EXAMPLES = 2  # scipy's bootstrap needs two observations; one example has no spread to resample
METHOD = "bootstrap-percentile"

#: resamples per vectorised statistic call: memory is O(batch * n) int64 (250 x 10,000 = 20 MB)
_BATCH_ELEMENTS = 2_500_000

#: headline metrics in the order :func:`_confusion_statistic` returns them
HEADLINE = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "balanced_accuracy")
PER_CLASS = ("precision", "recall", "f1")


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A confidence interval ``[low, high]`` of one statistic, with how it was made."""

    low: float
    high: float
    confidence: float = CONFIDENCE
    method: str = METHOD
    n_resamples: int = N_RESAMPLES
    n: int = 0  # examples the statistic was computed on
    seed: int | None = SEED

    def __post_init__(self) -> None:
        if not (0.0 < float(self.confidence) < 1.0):
            raise ConfigError(f"confidence must be between 0 and 1, got {self.confidence}", fix="use e.g. 0.95")

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low

    def format(self, digits: int = 4) -> str:
        """``[0.8500, 0.8640]``."""
        return f"[{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": float(self.low),
            "high": float(self.high),
            "confidence": float(self.confidence),
            "method": self.method,
            "n_resamples": int(self.n_resamples),
            "n": int(self.n),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], **defaults: Any) -> "Interval":
        """Read :meth:`to_dict`'s output; keys missing from ``d`` come from ``defaults``."""
        merged = {**defaults, **d}
        seed = merged.get("seed", SEED)
        return cls(
            low=float(merged["low"]),
            high=float(merged["high"]),
            confidence=float(merged.get("confidence", CONFIDENCE)),
            method=str(merged.get("method", METHOD)),
            n_resamples=int(merged.get("n_resamples", N_RESAMPLES)),
            n=int(merged.get("n", 0)),
            seed=None if seed is None else int(seed),
        )


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's exact test on paired predictions of two models."""

    only_a: int  # examples A gets right and B gets wrong
    only_b: int  # examples B gets right and A gets wrong
    p_value: float
    method: str = "mcnemar-exact (binomial test on the discordant pairs)"

    @property
    def discordant(self) -> int:
        return self.only_a + self.only_b

    def to_dict(self) -> dict[str, Any]:
        return {"only_a": self.only_a, "only_b": self.only_b, "discordant": self.discordant, "p_value": float(self.p_value), "method": self.method}


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
def _check_settings(confidence: float, n_resamples: int) -> None:
    if not (isinstance(confidence, (int, float)) and 0.0 < float(confidence) < 1.0):
        raise ConfigError(f"confidence must be between 0 and 1, got {confidence!r}", fix="use e.g. 0.95")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 100:
        raise ConfigError(f"n_resamples must be an integer of at least 100, got {n_resamples!r}",
                          fix=f"use the default ({N_RESAMPLES}); fewer resamples make the interval's ends noisy")


def _rng(seed: int | None) -> np.random.Generator:
    # seed None: fresh entropy (not reproducible, on purpose); otherwise the same interval every time
    return np.random.default_rng(seed)


def _batch(n: int, n_resamples: int) -> int:
    return max(1, min(n_resamples, _BATCH_ELEMENTS // max(n, 1)))


# ---------------------------------------------------------------------------------------------
# Intervals of the classification metrics
# ---------------------------------------------------------------------------------------------
def _confusion_statistic(num_classes: int):
    """A vectorised statistic: pair codes ``ref * C + pred`` -> all metrics, per resample.

    Returns ``5 + 3 * C`` values per resample: accuracy, macro precision/recall/F1 (over the
    classes present in the resample's references or predictions, as ``compute_metrics`` and
    scikit-learn do), balanced accuracy (the mean recall over the classes present in the
    references, scikit-learn's ``balanced_accuracy_score``), then per-class precision, recall and
    F1 (undefined ratios count as 0).
    """
    c = num_classes

    def statistic(codes: np.ndarray, axis: int = -1) -> np.ndarray:
        codes = np.moveaxis(np.asarray(codes), axis, -1)
        lead = codes.shape[:-1]
        flat = codes.reshape(-1, codes.shape[-1])  # scipy hands the codes over as floats
        b, m = flat.shape
        # one confusion matrix per resample from one bincount: resample j counts in bins j*C*C...
        idx = np.empty(flat.shape, dtype=np.int64)
        np.add(flat, (np.arange(b, dtype=np.int64) * (c * c))[:, None], out=idx, casting="unsafe")
        cm = np.bincount(idx.ravel(), minlength=b * c * c).reshape(b, c, c)
        tp = np.diagonal(cm, axis1=1, axis2=2).astype(np.float64)
        support = cm.sum(axis=2)  # true samples per class (rows)
        predicted = cm.sum(axis=1)  # predictions per class (columns)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(predicted > 0, tp / predicted, 0.0)
            recall = np.where(support > 0, tp / support, 0.0)
            f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
        present = (support + predicted) > 0
        k = present.sum(axis=1)
        macro = [(x * present).sum(axis=1) / k for x in (precision, recall, f1)]
        has_refs = support > 0
        balanced = (recall * has_refs).sum(axis=1) / has_refs.sum(axis=1)
        out = np.column_stack([tp.sum(axis=1) / m, *macro, balanced, precision, recall, f1])
        return np.moveaxis(out.reshape(*lead, out.shape[-1]), -1, 0)

    return statistic


def metric_intervals(
    predictions: Sequence[int] | np.ndarray,
    references: Sequence[int] | np.ndarray,
    num_classes: int,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | None = SEED,
) -> tuple[dict[str, Interval], list[dict[str, Interval]]]:
    """Bootstrap intervals of the headline metrics and of each class's precision/recall/F1.

    ``predictions``/``references`` are validated class ids in ``0..num_classes-1`` (as
    :func:`tlhub.engine.evaluation.compute_metrics` passes them). Returns ``(headline,
    per_class)``: ``headline`` maps ``accuracy``, ``precision_macro``, ``recall_macro``,
    ``f1_macro``, ``balanced_accuracy`` to an :class:`Interval`; ``per_class[i]`` maps ``precision``, ``recall``, ``f1``
    of class ``i`` to one (``{}`` for a class with no references, whose recall is undefined).
    """
    from scipy import stats

    _check_settings(confidence, n_resamples)
    preds = np.asarray(predictions, dtype=np.int64)
    refs = np.asarray(references, dtype=np.int64)
    if preds.shape != refs.shape or preds.ndim != 1 or preds.size < MIN_EXAMPLES:
        raise DataError(f"need two equally long 1-D arrays of at least {MIN_EXAMPLES} class ids, got shapes {preds.shape} and {refs.shape}",
                        fix="pass one prediction per reference (a single example has no sampling distribution to bootstrap)")
    n = int(refs.size)
    codes = refs * num_classes + preds
    result = stats.bootstrap(
        (codes,),
        _confusion_statistic(num_classes),
        n_resamples=n_resamples,
        batch=_batch(n, n_resamples),
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=_rng(seed),
    )
    low = np.atleast_1d(result.confidence_interval.low)
    high = np.atleast_1d(result.confidence_interval.high)

    def interval(i: int) -> Interval:
        return Interval(low=float(low[i]), high=float(high[i]), confidence=confidence, n_resamples=n_resamples, n=n, seed=seed)

    headline = {name: interval(i) for i, name in enumerate(HEADLINE)}
    support = np.bincount(refs, minlength=num_classes)
    per_class: list[dict[str, Interval]] = []
    for cls in range(num_classes):
        if support[cls] == 0:
            per_class.append({})
            continue
        per_class.append({name: interval(len(HEADLINE) + j * num_classes + cls) for j, name in enumerate(PER_CLASS)})
    return headline, per_class


def proportion_interval(correct: Sequence[bool] | np.ndarray, **kwargs: Any) -> Interval:
    """The bootstrap interval of a proportion (e.g. accuracy from a 0/1 correctness vector)."""
    correct = np.asarray(correct).astype(np.int64)
    headline, _ = metric_intervals(correct, np.ones_like(correct), 2, **kwargs)
    return headline["accuracy"]


# ---------------------------------------------------------------------------------------------
# Two models on the same examples
# ---------------------------------------------------------------------------------------------
def _correctness(correct_a: Any, correct_b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(correct_a).astype(bool)
    b = np.asarray(correct_b).astype(bool)
    if a.shape != b.shape or a.ndim != 1 or a.size < MIN_EXAMPLES:
        raise DataError(f"paired comparison needs two equally long correctness vectors of at least {MIN_EXAMPLES} examples, got shapes {a.shape} and {b.shape}",
                        fix="evaluate both models on the same examples, in the same order")
    return a, b


def _difference_of_means(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def paired_difference(
    correct_a: Sequence[bool] | np.ndarray,
    correct_b: Sequence[bool] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | None = SEED,
) -> tuple[float, Interval]:
    """``accuracy(A) - accuracy(B)`` and its paired bootstrap interval.

    ``correct_a[i]``/``correct_b[i]``: whether model A/B got example ``i`` right. Paired: each
    resample draws one set of example indices for both models, so the interval reflects how the
    two models differ on the same examples, not two independent noises (much narrower when the
    models agree on most examples).
    """
    from scipy import stats

    _check_settings(confidence, n_resamples)
    a, b = _correctness(correct_a, correct_b)
    n = int(a.size)
    # int8 copies: scipy casts to float anyway, but index gathers on small arrays are cheaper
    result = stats.bootstrap(
        (a.astype(np.int8), b.astype(np.int8)),
        _difference_of_means,
        paired=True,
        n_resamples=n_resamples,
        batch=_batch(n, n_resamples),
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=_rng(seed),
    )
    ci = result.confidence_interval
    diff = float(a.mean() - b.mean())
    return diff, Interval(low=float(ci.low), high=float(ci.high), confidence=confidence, method="paired-bootstrap-percentile",
                          n_resamples=n_resamples, n=n, seed=seed)


def mcnemar(correct_a: Sequence[bool] | np.ndarray, correct_b: Sequence[bool] | np.ndarray) -> McNemarResult:
    """McNemar's exact test: under "equally accurate", each discordant example is a fair coin.

    Only the examples exactly one model gets right carry information; their split ``only_a`` vs
    ``only_b`` is tested against Binomial(only_a + only_b, 1/2), two-sided. No discordant pair at
    all (the models agree everywhere) gives p = 1.
    """
    from scipy import stats

    a, b = _correctness(correct_a, correct_b)
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    if only_a + only_b == 0:
        return McNemarResult(only_a=0, only_b=0, p_value=1.0)
    p = stats.binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue
    return McNemarResult(only_a=only_a, only_b=only_b, p_value=float(min(1.0, p)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of p-values (for several pairwise tests at once).

    With k pairs, the i-th smallest p-value is multiplied by (k - i) and the sequence made
    monotone, which controls the chance of any false "significant" across all pairs.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return []
    order = np.argsort(p, kind="stable")
    k = p.size
    adjusted = np.maximum.accumulate((k - np.arange(k)) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(x) for x in out]


__all__ = ["CONFIDENCE", "Interval", "McNemarResult", "N_RESAMPLES", "holm", "mcnemar", "metric_intervals", "paired_difference", "proportion_interval"]
