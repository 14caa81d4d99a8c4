"""Bootstrap intervals, paired differences and McNemar's test (tlhub.engine.stats), and their place in EvalResult."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from tlhub.engine.evaluation import EvalResult, compute_metrics
from tlhub.engine.stats import Interval, holm, mcnemar, metric_intervals, paired_difference, proportion_interval
from tlhub.errors import ConfigError, DataError

LABELS = ["cat", "dog", "bird", "fish"]


def _predictions(n: int, accuracy: float, num_classes: int = 4, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """References with unequal class sizes; a prediction right with probability ``accuracy``, else a random class."""
    rng = np.random.default_rng(seed)
    refs = rng.choice(num_classes, size=n, p=np.linspace(1, 2, num_classes) / np.linspace(1, 2, num_classes).sum())
    wrong = (refs + rng.integers(1, num_classes, size=n)) % num_classes
    preds = np.where(rng.random(n) < accuracy, refs, wrong)
    return preds, refs


def test_intervals_contain_the_point_estimates():
    preds, refs = _predictions(1_000, 0.8)
    result = compute_metrics(preds, refs, LABELS)
    assert set(result.intervals) == {"accuracy", "precision_macro", "recall_macro", "f1_macro", "balanced_accuracy"}
    for key, interval in result.intervals.items():
        assert interval.low < result.metrics[key] < interval.high, (key, interval)
        assert 0.0 <= interval.low and interval.high <= 1.0
        assert (interval.confidence, interval.method, interval.n) == (0.95, "bootstrap-percentile", 1_000)
    assert len(result.per_class_intervals) == len(LABELS)
    for row, intervals in zip(result.per_class, result.per_class_intervals):
        for key in ("precision", "recall", "f1"):
            assert intervals[key].low < row[key] < intervals[key].high, (row["label"], key)


def test_intervals_shrink_with_n_like_one_over_root_n():
    small = compute_metrics(*_predictions(400, 0.8), LABELS).intervals
    large = compute_metrics(*_predictions(4_000, 0.8), LABELS).intervals
    for key in small:
        ratio = small[key].width / large[key].width
        assert 2.4 < ratio < 4.2, (key, ratio)  # sqrt(10) = 3.16


def test_intervals_are_reproducible_with_a_seed():
    preds, refs = _predictions(500, 0.7)
    a = compute_metrics(preds, refs, LABELS, seed=3)
    b = compute_metrics(preds, refs, LABELS, seed=3)
    c = compute_metrics(preds, refs, LABELS, seed=4)
    assert a.intervals == b.intervals and a.per_class_intervals == b.per_class_intervals
    assert a.intervals["f1_macro"] != c.intervals["f1_macro"]  # another seed: other resamples...
    assert abs(a.intervals["accuracy"].low - c.intervals["accuracy"].low) < 0.01  # ...and nearly the same interval


def test_accuracy_interval_matches_the_normal_approximation():
    n, p = 2_000, 0.85
    correct = np.zeros(n, dtype=bool)
    correct[: int(p * n)] = True
    half = 1.96 * math.sqrt(p * (1 - p) / n)  # 0.0156
    interval = proportion_interval(correct)
    assert interval.low == pytest.approx(p - half, abs=0.0015)
    assert interval.high == pytest.approx(p + half, abs=0.0015)
    # the same through compute_metrics: accuracy is the proportion of correct predictions
    refs = np.zeros(n, dtype=int)
    preds = np.where(correct, 0, 1)
    acc = compute_metrics(preds, refs, ["a", "b"]).intervals["accuracy"]
    assert (acc.low, acc.high) == pytest.approx((interval.low, interval.high))


def test_macro_metrics_follow_compute_metrics_semantics():
    # a class present in neither references nor predictions is not averaged in, resample or not
    preds, refs = _predictions(600, 0.9, num_classes=3)
    labels = ["a", "b", "c", "never seen"]
    result = compute_metrics(preds, refs, labels)
    assert result.intervals["recall_macro"].contains(result.metrics["recall_macro"])
    assert result.per_class_intervals[3] == {}  # no references: recall undefined, no interval


def test_balanced_accuracy_is_sklearns_with_an_interval():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(3)
    refs = np.concatenate([np.zeros(500, dtype=np.int64), np.ones(50, dtype=np.int64), np.full(20, 2)])
    preds = np.where(rng.random(refs.size) < 0.8, refs, rng.integers(0, 4, refs.size))  # class 3: predicted, never true
    result = compute_metrics(preds, refs, ["a", "b", "c", "d"])
    assert result.metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(refs, preds))
    assert result.metrics["balanced_accuracy"] != pytest.approx(result.metrics["recall_macro"])  # class 3 counts 0 there
    assert result.intervals["balanced_accuracy"].contains(result.metrics["balanced_accuracy"])
    assert "balanced accuracy" in result.table()


def test_degenerate_cases():
    perfect = compute_metrics([0, 1, 2, 1], [0, 1, 2, 1], ["a", "b", "c"])
    assert (perfect.intervals["accuracy"].low, perfect.intervals["accuracy"].high) == (1.0, 1.0)
    assert compute_metrics([1], [1], ["a", "b"]).intervals == {}  # one example: nothing to resample
    with pytest.raises(DataError, match="at least 2"):
        metric_intervals([1], [1], 2)
    with pytest.raises(ConfigError, match="n_resamples"):
        metric_intervals([0, 1], [0, 1], 2, n_resamples=10)
    with pytest.raises(ConfigError, match="confidence"):
        metric_intervals([0, 1], [0, 1], 2, confidence=95)
    with pytest.raises(DataError):
        paired_difference([1, 0, 1], [1, 0])


def test_intervals_can_be_turned_off_and_old_results_still_load(tmp_path):
    preds, refs = _predictions(300, 0.8)
    plain = compute_metrics(preds, refs, LABELS, intervals=False)
    assert plain.intervals == {} and plain.per_class_intervals == []
    old = plain.to_dict()
    assert "intervals" not in old and "per_class_intervals" not in old  # exactly the old format
    (tmp_path / "eval_results.json").write_text(json.dumps(old))
    loaded = EvalResult.load(tmp_path)
    assert loaded == plain and "[" not in loaded.summary() and "bootstrap" not in loaded.table()


def test_saved_intervals_round_trip(tmp_path):
    preds, refs = _predictions(500, 0.75)
    result = compute_metrics(preds, refs, LABELS, loss=0.6)
    result.save(tmp_path, plot=False)
    on_disk = json.loads((tmp_path / "eval_results.json").read_text())
    acc = on_disk["intervals"]["accuracy"]
    assert acc == {"low": acc["low"], "high": acc["high"], "confidence": 0.95, "method": "bootstrap-percentile",
                   "n_resamples": 4999, "n": 500, "seed": 0}
    assert [row["label"] for row in on_disk["per_class_intervals"]] == LABELS
    assert set(on_disk["per_class_intervals"][0]) == {"label", "precision", "recall", "f1"}
    loaded = EvalResult.load(tmp_path)
    assert loaded == result
    assert loaded.per_class_intervals[2]["recall"].n == 500  # settings filled in from the headline intervals
    assert loaded.predictions is None  # per-example predictions stay in memory only
    assert np.array_equal(result.correct(), preds == refs)


def test_summary_and_table_print_the_intervals():
    preds, refs = _predictions(800, 0.85)
    result = compute_metrics(preds, refs, LABELS, loss=0.5)
    acc = result.intervals["accuracy"]
    summary = result.summary()
    assert f"accuracy {result.accuracy:.4f} [{acc.low:.4f}, {acc.high:.4f}]" in summary
    assert "95% bootstrap intervals" in summary and "\n" not in summary
    table = result.table()
    assert "95% bootstrap intervals (percentile, 4999 resamples of 800 examples, seed 0):" in table
    f1 = result.intervals["f1_macro"]
    assert any(line.split()[:2] == ["macro", "F1"] and line.endswith(f"[{f1.low:.4f}, {f1.high:.4f}]") for line in table.splitlines())


def test_bootstrap_cost_on_ten_thousand_examples():
    preds, refs = _predictions(10_000, 0.86, num_classes=10)
    labels = [f"class {i}" for i in range(10)]
    compute_metrics(preds[:100], refs[:100], labels)  # imports out of the way
    start = time.perf_counter()
    compute_metrics(preds, refs, labels, intervals=False)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    compute_metrics(preds, refs, labels)
    added = time.perf_counter() - start - plain
    # ~0.5 s on two idle cores; a loose bound, as the CI machine is shared (BCa would be ~3 s idle)
    assert added < 6.0, added


# --------------------------------------------------------------------------------------------
# two models on the same examples
# --------------------------------------------------------------------------------------------
def _pair(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([1] * both + [1] * only_a + [0] * only_b + [0] * neither, dtype=bool)
    b = np.array([1] * both + [0] * only_a + [1] * only_b + [0] * neither, dtype=bool)
    return a, b


def test_mcnemar_matches_the_exact_binomial_p_value():
    a, b = _pair(both=70, only_a=12, only_b=3, neither=15)
    result = mcnemar(a, b)
    assert (result.only_a, result.only_b, result.discordant) == (12, 3, 15)
    # two-sided exact: 2 * P(X <= 3), X ~ Binomial(15, 1/2)
    expected = 2 * sum(math.comb(15, k) for k in range(4)) / 2**15
    assert result.p_value == pytest.approx(expected)  # 0.0352
    assert mcnemar(b, a).p_value == pytest.approx(expected)
    assert mcnemar(*_pair(50, 5, 5, 10)).p_value == pytest.approx(1.0)
    assert mcnemar(*_pair(50, 0, 0, 10)).p_value == 1.0  # the models agree everywhere


def test_paired_difference():
    a, b = _pair(both=700, only_a=60, only_b=30, neither=210)
    diff, interval = paired_difference(a, b, seed=0)
    assert diff == pytest.approx(0.03)
    assert interval.low < diff < interval.high and interval.low > 0  # 60 vs 30 discordant: A is better
    assert interval.method == "paired-bootstrap-percentile" and interval.n == 1_000
    # paired: the sd of the difference is sqrt(discordant share - diff^2) / sqrt(n), far below the unpaired one
    sd = math.sqrt((0.09 - 0.03**2) / 1_000)
    assert interval.width == pytest.approx(2 * 1.96 * sd, rel=0.1)
    unpaired = 2 * 1.96 * math.sqrt((0.76 * 0.24 + 0.73 * 0.27) / 1_000)
    assert interval.width < 0.6 * unpaired
    assert paired_difference(a, b, seed=0) == (diff, interval)
    same, iv = paired_difference(a, a)
    assert same == 0.0 and (iv.low, iv.high) == (0.0, 0.0)


def test_holm():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5] and holm([]) == []
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # 2 x 0.8, capped at 1, then monotone


def test_interval_dict_round_trip():
    iv = Interval(low=0.1, high=0.2, n=10, n_resamples=999, seed=None)
    assert Interval.from_dict(iv.to_dict()) == iv
    assert Interval.from_dict({"low": 0.1, "high": 0.2}, n=7).n == 7
    with pytest.raises(ConfigError):
        Interval(low=0, high=1, confidence=1.5)
