"""``tlhub compare``: two or more saved models on the same held-out examples, compared honestly.

Each model is evaluated once (:func:`tlhub.engine.evaluation.evaluate`, which keeps the
per-example predictions); the examples are checked to be the same ones, in the same order, for
every model. Then, for every pair:

- the accuracy difference with a **paired** bootstrap interval (both models resampled on the same
  example indices: :func:`tlhub.engine.stats.paired_difference`);
- **McNemar's exact test** on the examples exactly one of the two gets right
  (:func:`tlhub.engine.stats.mcnemar`), Holm-adjusted when there are several pairs;
- a plain verdict: significant or NOT significant at ``alpha``.

:class:`Comparison` prints as a table, saves ``compare.json`` and draws ``compare.png``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tlhub.core.saving import RECORD_FILE
from tlhub.engine.stats import CONFIDENCE, N_RESAMPLES, SEED, Interval, McNemarResult, holm, mcnemar, paired_difference, proportion_interval
from tlhub.errors import ConfigError, DataError, TlhubError
from tlhub.fileio import write_json_atomic

COMPARE_JSON = "compare.json"
COMPARE_PNG = "compare.png"
ALPHA = 0.05


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass
class ModelScore:
    """One model's evaluation in a comparison."""

    name: str  # as given on the command line (unique within the comparison)
    path: str  # the model folder (or Hub repo) that was evaluated
    accuracy: float
    interval: Interval | None  # bootstrap interval of the accuracy
    f1_macro: float
    seconds: float  # evaluation wall time

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "accuracy": self.accuracy, "interval": self.interval.to_dict() if self.interval else None,
                "f1_macro": self.f1_macro, "seconds": round(self.seconds, 3)}


@dataclass
class PairComparison:
    """Model ``a`` against model ``b`` on the same examples."""

    a: str
    b: str
    accuracy_a: float
    accuracy_b: float
    difference: float  # accuracy_a - accuracy_b
    interval: Interval  # paired bootstrap interval of the difference
    mcnemar: McNemarResult
    p_adjusted: float  # Holm-adjusted over all pairs (= the raw p-value with one pair)
    alpha: float = ALPHA

    @property
    def significant(self) -> bool:
        return self.p_adjusted < self.alpha

    def verdict(self) -> str:
        """One plain sentence."""
        pts = 100 * self.difference
        lo, hi = 100 * self.interval.low, 100 * self.interval.high
        conf = f"{self.interval.confidence:.0%}"
        p = _p(self.mcnemar.p_value) + (f", Holm-adjusted {_p(self.p_adjusted)}" if self.p_adjusted != self.mcnemar.p_value else "")
        stats_text = f"{conf} CI {lo:+.2f} to {hi:+.2f} points; McNemar {p}; {self.mcnemar.only_a} vs {self.mcnemar.only_b} discordant examples"
        if self.significant:
            better, worse = (self.a, self.b) if self.difference > 0 else (self.b, self.a)
            return f"{better} is more accurate than {worse} by {abs(pts):.2f} points ({stats_text}): a significant difference at alpha {self.alpha}."
        return (f"{self.a} vs {self.b}: the difference of {pts:+.2f} points is NOT significant ({stats_text}); "
                f"on these {self.interval.n} examples the two models cannot be told apart.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "accuracy_a": self.accuracy_a,
            "accuracy_b": self.accuracy_b,
            "difference": self.difference,
            "interval": self.interval.to_dict(),
            "mcnemar": self.mcnemar.to_dict(),
            "p_adjusted": self.p_adjusted,
            "adjustment": "holm",
            "alpha": self.alpha,
            "significant": self.significant,
            "verdict": self.verdict(),
        }


@dataclass
class Comparison:
    models: list[ModelScore]
    pairs: list[PairComparison]
    split: str
    num_samples: int
    data: str | None = None  # what --data said (None: the data the models were trained on)
    seconds: dict[str, float] = field(default_factory=dict)  # evaluation and statistics wall time

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "split": self.split,
            "num_samples": self.num_samples,
            "models": [m.to_dict() for m in self.models],
            "pairs": [p.to_dict() for p in self.pairs],
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }

    def table(self) -> str:
        """The models (accuracy with interval), then every pair (difference, interval, McNemar, verdict)."""
        name_w = max(len("model"), *(len(m.name) for m in self.models))
        conf = self.models[0].interval.confidence if self.models[0].interval else CONFIDENCE
        head = f"{'model'.ljust(name_w)}  accuracy  {f'{conf:.0%} CI':<16}  macro F1"
        lines = [head, "-" * len(head)]
        for m in self.models:
            ci = m.interval.format(4) if m.interval else ""
            lines.append(f"{m.name.ljust(name_w)}  {m.accuracy:8.4f}  {ci:<16}  {m.f1_macro:8.4f}")
        lines.append("")
        pair_names = [f"{p.a} - {p.b}" for p in self.pairs]
        pw = max(len("pair"), *(len(x) for x in pair_names)) if pair_names else len("pair")
        head = f"{'pair'.ljust(pw)}  {'diff':>7}  {'paired CI':<17}  {'only A':>6}  {'only B':>6}  {'McNemar p':>9}  {'adj. p':>9}  verdict"
        lines += [head, "-" * len(head)]
        for name, p in zip(pair_names, self.pairs):
            ci = f"[{100 * p.interval.low:+.2f}, {100 * p.interval.high:+.2f}]"
            verdict = "significant" if p.significant else "NOT significant"
            lines.append(f"{name.ljust(pw)}  {100 * p.difference:+7.2f}  {ci:<17}  {p.mcnemar.only_a:>6}  {p.mcnemar.only_b:>6}  "
                         f"{_p(p.mcnemar.p_value, bare=True):>9}  {_p(p.p_adjusted, bare=True):>9}  {verdict}")
        lines.append(f"(differences and intervals in accuracy points, on the same {self.num_samples} {self.split} examples; "
                     f"McNemar's exact test{', Holm-adjusted over the pairs' if len(self.pairs) > 1 else ''})")
        lines.append("")
        lines += [p.verdict() for p in self.pairs]
        return "\n".join(x.rstrip() for x in lines)

    def save(self, directory: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``DIRECTORY/compare.json`` (atomically) and ``DIRECTORY/compare.png``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        json_path = directory / COMPARE_JSON
        write_json_atomic(json_path, self.to_dict())
        return json_path, plot_comparison(self, directory / COMPARE_PNG)


def _p(p: float, *, bare: bool = False) -> str:
    text = f"{p:.2g}" if p < 0.001 else f"{p:.3f}"
    return text if bare else f"p = {text}"


# ---------------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------------
def resolve_model(path_or_name: str) -> str:
    """A run folder (``RUN/model/``), a model folder, or a Hub repo id -> what to load."""
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        if (path / "model" / RECORD_FILE).is_file():
            return str(path / "model")
        if (path / RECORD_FILE).is_file():
            return str(path)
        raise DataError(
            f"{path} is neither a run folder (with model/ inside) nor a saved model folder (with {RECORD_FILE})",
            fix="pass the output folder of `tlhub train`, its model/ folder, or a Hub repo id",
        )
    if path.exists():
        raise DataError(f"{path} is a file, not a model folder", fix="pass the output folder of `tlhub train` or its model/ folder")
    return path_or_name  # a Hub repo id: create_model resolves it (or says why not)


def _data_of(model: Any) -> tuple:
    config = model.training_record.config if model.training_record is not None else {}
    return tuple(config.get(k) for k in ("data", "data_config", "input_column", "label_column"))


def _display_names(given: Sequence[str]) -> list[str]:
    """Short names: a folder's name (its parent's for a ``model/`` folder); the full strings when those collide."""
    short = []
    for raw in given:
        path = Path(raw.rstrip("/\\") or raw)
        short.append(path.parent.name if path.name == "model" and path.parent.name else path.name or raw)
    names = short if len(set(short)) == len(short) else [raw.rstrip("/\\") or raw for raw in given]
    out: list[str] = []
    for name in names:  # the same model given twice: still distinct rows
        candidate, k = name, 2
        while candidate in out:
            candidate, k = f"{name}#{k}", k + 1
        out.append(candidate)
    return out


def compare_models(
    models: Sequence[str],
    *,
    data: str | None = None,
    data_config: str | None = None,
    split: str = "test",
    input_column: str | None = None,
    label_column: str | None = None,
    batch_size: int = 128,
    max_samples: int | None = None,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | None = SEED,
    alpha: float = ALPHA,
    progress: bool = True,
) -> Comparison:
    """Evaluate ``models`` (run folders, model folders or Hub repos) on the same examples and compare them pairwise.

    ``data`` defaults to the data the models were trained on, which then must be the same for all.
    Every model runs over the split exactly once.
    """
    from tlhub.core.factory import create_model
    from tlhub.engine.evaluation import evaluate

    if isinstance(models, str) or len(models) < 2:
        raise ConfigError(f"compare needs at least two models, got {[models] if isinstance(models, str) else list(models)}",
                          fix="pass two or more run folders, model folders or Hub repos")
    if not (0.0 < confidence < 1.0):
        raise ConfigError(f"confidence must be between 0 and 1, got {confidence}", fix="use e.g. 0.95")
    if not (0.0 < alpha < 1.0):
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}", fix="use e.g. 0.05")
    names = _display_names(models)
    targets = [resolve_model(m) for m in models]

    results, scores, trained_on = [], [], []
    started = time.perf_counter()
    for name, target in zip(names, targets):
        t0 = time.perf_counter()
        model = create_model(target)
        model.set_channels_last(True)  # faster image inference; our own copy (as evaluate() does for a name)
        trained_on.append(_data_of(model))
        if data is None and trained_on[0] != trained_on[-1]:
            raise DataError(
                f"{names[0]} was trained on {_describe(trained_on[0])} but {name} on {_describe(trained_on[-1])}: no common held-out examples",
                fix="pass --data (and --split) to compare them on the same data",
            )
        result = evaluate(model, data=data, data_config=data_config, split=split, input_column=input_column, label_column=label_column,
                          batch_size=batch_size, max_samples=max_samples, progress=progress)
        del model
        interval = result.intervals.get("accuracy")
        if interval is None or (interval.confidence, interval.n_resamples, interval.seed) != (confidence, n_resamples, seed):
            interval = proportion_interval(result.correct(), confidence=confidence, n_resamples=n_resamples, seed=seed)
        seconds = time.perf_counter() - t0
        results.append(result)
        scores.append(ModelScore(name=name, path=target, accuracy=result.accuracy, interval=interval, f1_macro=result.f1_macro, seconds=seconds))
    evaluated = time.perf_counter()

    # the same examples, in the same order: compare the reference *names* (models may order classes differently)
    first = results[0]
    if first.references is None:
        raise TlhubError("the evaluation returned no per-example predictions", fix="report this as a tlhub bug")
    reference_names = np.asarray(first.labels, dtype=object)[first.references]
    for name, result in zip(names[1:], results[1:]):
        if len(result.references) != len(reference_names) or not np.array_equal(np.asarray(result.labels, dtype=object)[result.references], reference_names):
            raise DataError(
                f"{names[0]} and {name} were not evaluated on the same examples ({len(reference_names)} vs {len(result.references)} rows, or a different order)",
                fix="pass the same --data, --split and --max-samples for all; a model trained on other data needs --data",
            )
    correct = [r.correct() for r in results]

    raw = []
    for i in range(len(results)):
        for j in range(i + 1, len(results)):
            diff, interval = paired_difference(correct[i], correct[j], confidence=confidence, n_resamples=n_resamples, seed=seed)
            raw.append((i, j, diff, interval, mcnemar(correct[i], correct[j])))
    adjusted = holm([m.p_value for *_, m in raw])
    pairs = [
        PairComparison(a=names[i], b=names[j], accuracy_a=results[i].accuracy, accuracy_b=results[j].accuracy, difference=diff,
                       interval=interval, mcnemar=m, p_adjusted=p_adj, alpha=alpha)
        for (i, j, diff, interval, m), p_adj in zip(raw, adjusted)
    ]
    done = time.perf_counter()
    return Comparison(models=scores, pairs=pairs, split=split, num_samples=int(len(reference_names)), data=data,
                      seconds={"evaluation": evaluated - started, "statistics": done - evaluated})


def _describe(trained_on: tuple) -> str:
    data, config, *_ = trained_on
    if data is None:
        return "no recorded data"
    return f"{data!r}" + (f" ({config})" if config else "")


# ---------------------------------------------------------------------------------------------
# The figure
# ---------------------------------------------------------------------------------------------
def plot_comparison(comparison: Comparison, path: str | os.PathLike) -> Path:
    """Left: each model's accuracy with its interval. Right: each pair's difference with its paired interval."""
    from tlhub.engine.plots import _new_figure, _save, _shorten

    models, pairs = comparison.models, comparison.pairs
    # stacked, so that long model names have the full width for their tick labels
    fig = _new_figure(8.5, 2.2 + 0.42 * (len(models) + len(pairs)))
    top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [max(len(models), 1.5), max(len(pairs), 1.5)], "hspace": 0.9})
    left, right = top, bottom

    # accuracy per model
    y = np.arange(len(models))[::-1]
    acc = np.array([m.accuracy for m in models])
    lo = np.array([m.interval.low if m.interval else m.accuracy for m in models])
    hi = np.array([m.interval.high if m.interval else m.accuracy for m in models])
    left.errorbar(acc, y, xerr=[acc - lo, hi - acc], fmt="o", color="#1f77b4", ecolor="#1f77b4", capsize=4, lw=1.5)
    for yi, a in zip(y, acc):
        left.annotate(f"{a:.4f}", (a, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    left.set_yticks(y, [_shorten(m.name) for m in models])
    left.set_ylim(-0.7, len(models) - 0.3)
    conf = models[0].interval.confidence if models[0].interval else CONFIDENCE
    left.set_xlabel(f"accuracy ({conf:.0%} bootstrap interval)")
    left.set_title(f"Accuracy on {comparison.num_samples} {comparison.split} examples", fontsize=10)
    left.grid(axis="x", alpha=0.3)

    # paired differences
    y = np.arange(len(pairs))[::-1]
    d = np.array([100 * p.difference for p in pairs])
    dlo = np.array([100 * p.interval.low for p in pairs])
    dhi = np.array([100 * p.interval.high for p in pairs])
    colors = ["#2ca02c" if p.significant else "#7f7f7f" for p in pairs]
    right.axvline(0.0, color="#d62728", lw=1, ls="--", zorder=0)
    for yi, di, l, h, c in zip(y, d, dlo, dhi, colors):
        right.errorbar([di], [yi], xerr=[[di - l], [h - di]], fmt="o", color=c, ecolor=c, capsize=4, lw=1.5)
    for yi, p, di in zip(y, pairs, d):
        tag = f"{_p(p.p_adjusted)}, {'significant' if p.significant else 'not significant'}"
        right.annotate(tag, (di, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8, color="#333333")
    right.set_yticks(y, [_shorten(f"{p.a} − {p.b}", 36) for p in pairs])
    right.set_ylim(-0.7, len(pairs) - 0.3)
    span = max(np.max(np.abs(np.concatenate([dlo, dhi]))) if len(pairs) else 1.0, 0.5)
    right.set_xlim(-1.15 * span, 1.15 * span)
    right.set_xlabel("accuracy difference, points (paired bootstrap interval)")
    adj = ", Holm-adjusted" if len(pairs) > 1 else ""
    right.set_title(f"Pairwise accuracy differences: green = significant, grey = not (McNemar exact p{adj}, alpha {pairs[0].alpha if pairs else ALPHA})",
                    fontsize=10)
    right.grid(axis="x", alpha=0.3)
    return _save(fig, path)


__all__ = ["ALPHA", "COMPARE_JSON", "COMPARE_PNG", "Comparison", "ModelScore", "PairComparison", "compare_models", "plot_comparison", "resolve_model"]
