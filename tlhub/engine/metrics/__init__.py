"""Classification metrics through the ``evaluate`` library, bundled so they work offline.

``evaluate.load("accuracy")`` downloads the metric script from the Hugging Face Hub, which fails
without a network (and in ``HF_HUB_OFFLINE`` mode). tlhub ships its own metric modules, one
``NAME/NAME.py`` file per metric, each an ``evaluate.Metric`` subclass backed by scikit-learn, and
loads them with ``evaluate.load(<path>)``: the same ``EvaluationModule`` objects (``add_batch``,
``compute``, ``evaluate.combine``), no network needed.

    >>> from tlhub.engine.metrics import load_metric
    >>> f1 = load_metric("f1")
    >>> f1.compute(predictions=[0, 1, 2], references=[0, 1, 1], average="macro")

A name that is not bundled is looked up on the Hub (``evaluate.load(name)``) as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from tlhub.errors import ConfigError, suggest

if TYPE_CHECKING:  # pragma: no cover
    import evaluate

METRICS_DIR = Path(__file__).resolve().parent

#: The metrics shipped with tlhub (loadable offline).
BUNDLED_METRICS = ("accuracy", "precision", "recall", "f1", "confusion_matrix")


def bundled_metrics() -> list[str]:
    """Names of the metric modules shipped with tlhub, as found on disk."""
    return sorted(p.parent.name for p in METRICS_DIR.glob("*/*.py") if p.stem == p.parent.name)


def metric_path(name: str) -> Path | None:
    """The bundled module file for ``name`` (``.../metrics/NAME/NAME.py``), or None if not bundled."""
    key = name.strip().lower()
    if key.startswith("evaluate-metric/"):  # the Hub's canonical namespace
        key = key.split("/", 1)[1]
    key = key.replace("-", "_")
    if "/" in key or "\\" in key or key.startswith("."):
        return None
    path = METRICS_DIR / key / f"{key}.py"
    return path if path.is_file() else None


def load_metric(name: str, **kwargs: Any) -> "evaluate.EvaluationModule":
    """Load a metric as an ``evaluate.EvaluationModule``, from tlhub's bundled copy when there is one.

    ``kwargs`` go to ``evaluate.load`` (``config_name``, ``num_process``, ``process_id``,
    ``experiment_id``, ...). Single-process metrics are kept in memory (no cache files on disk)
    unless ``keep_in_memory=False`` is passed. Each call returns a fresh instance, so metrics that
    accumulate ``add_batch`` calls never share state.
    """
    import evaluate

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a metric name must be a non-empty string, got {name!r}", fix=f"use one of the bundled metrics: {', '.join(bundled_metrics())}")
    kwargs.setdefault("keep_in_memory", int(kwargs.get("num_process", 1)) == 1)
    path = metric_path(name)
    if path is not None:
        return evaluate.load(str(path), **kwargs)
    try:
        return evaluate.load(name, **kwargs)
    except Exception as e:  # noqa: BLE001 - evaluate raises FileNotFoundError, ConnectionError, OSError, ImportError...
        bundled = bundled_metrics()
        close = suggest(name, bundled)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(
            f"metric {name!r} is not bundled with tlhub and could not be loaded with evaluate.load({name!r}) "
            f"({type(e).__name__}: {e}).{hint} Bundled metrics (work offline): {', '.join(bundled)}",
            fix=(
                "use a bundled metric, connect to the Hugging Face Hub (unset HF_HUB_OFFLINE / HF_EVALUATE_OFFLINE), "
                "or pass the path of a local metric module (a folder NAME/ holding NAME.py)"
            ),
        ) from e


def combine_metrics(names: Iterable[str], *, force_prefix: bool = False, **kwargs: Any) -> "evaluate.CombinedEvaluations":
    """``evaluate.combine`` over :func:`load_metric` modules (so the bundled ones stay offline)."""
    import evaluate

    return evaluate.combine([load_metric(n, **kwargs) for n in names], force_prefix=force_prefix)


__all__ = ["BUNDLED_METRICS", "METRICS_DIR", "bundled_metrics", "combine_metrics", "load_metric", "metric_path"]
