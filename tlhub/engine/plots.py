"""Figures for model cards and Spaces: the confusion matrix, the training curves, the per-layer scores.

matplotlib is imported only when a figure is drawn, and figures are rendered on their own Agg
canvas (never through pyplot), so plotting works headless, in threads, and leaves pyplot's global
backend alone.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tlhub.errors import DataError

MAX_LABEL_CHARS = 28  # longer class names are shortened with an ellipsis on the axes
MAX_ANNOTATED_CLASSES = 40  # above this, cells are coloured but their counts are not printed
DPI = 120

# light fills for the stage spans of the training curves
_STAGE_COLORS = ("#dbe9f6", "#fde7d3", "#dcefdc", "#ece2f3", "#f7e1e7", "#f3efd6")


def _shorten(text: str, width: int = MAX_LABEL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", pad_inches=0.15, facecolor="white")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------------------------------------
# Confusion matrix
# ---------------------------------------------------------------------------------------------
def plot_confusion_matrix(
    cm: Any,
    labels: Sequence[str],
    path: str | os.PathLike,
    *,
    normalize: bool = True,
    title: str | None = None,
) -> Path:
    """Draw a confusion matrix (rows = true class, columns = predicted class) to a PNG.

    Cells show the counts; with ``normalize`` (the default) their colour is the fraction of the
    true class's samples (row-normalised), so rare and frequent classes read on the same scale.
    The figure grows with the number of classes; long class names are shortened and the
    predicted-class names are slanted so they never overlap. Counts are printed for up to
    ``MAX_ANNOTATED_CLASSES`` classes; beyond that the cells are too small and only colours remain.
    """
    from matplotlib.colors import Normalize

    matrix = np.asarray(cm, dtype=float)
    labels = [str(x) for x in labels]
    n = len(labels)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise DataError(f"a confusion matrix must be square, got shape {matrix.shape}", fix="pass the n x n matrix (rows = true, columns = predicted)")
    if matrix.shape[0] != n or n == 0:
        raise DataError(f"the confusion matrix is {matrix.shape[0]} x {matrix.shape[1]} but there are {n} labels", fix="pass one label per row/column, in class-id order")

    row_sums = matrix.sum(axis=1, keepdims=True)
    if normalize:
        colours = np.divide(matrix, row_sums, out=np.zeros_like(matrix), where=row_sums > 0)
        vmax = 1.0
    else:
        colours = matrix
        vmax = max(float(matrix.max()), 1.0)

    names = [_shorten(x) for x in labels]
    # size: ~0.55 in per class, at least 4.5 in, at most 22 in for the matrix itself
    side = float(np.clip(0.55 * n, 4.5, 22.0))
    cell_pt = side * 72.0 / n  # cell edge in points
    tick_fs = float(np.clip(cell_pt * 0.6, 5.0, 10.0))

    integral = bool(np.all(matrix == np.round(matrix)))
    texts = [[(f"{int(v)}" if integral else f"{v:.2g}") for v in row] for row in matrix]
    longest = max(len(t) for row in texts for t in row)
    # the count must fit the cell width (digit ~0.6 em) and height
    count_fs = min(11.0, cell_pt * 0.85 / max(0.62 * longest + 0.6, 1.6))
    annotate = count_fs >= 4.5 and n <= MAX_ANNOTATED_CLASSES

    fig = _new_figure(side, side)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    image = ax.imshow(colours, cmap="Blues", norm=Normalize(vmin=0.0, vmax=vmax), interpolation="nearest", aspect="equal")

    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=45, ha="right", rotation_mode="anchor", fontsize=tick_fs)
    ax.set_yticklabels(names, fontsize=tick_fs)
    ax.set_xlabel("Predicted label", fontsize=11, labelpad=8)
    ax.set_ylabel("True label", fontsize=11, labelpad=8)
    ax.tick_params(length=0)
    # thin white grid between cells
    ax.set_xticks(np.arange(-0.5, n, 1.0), minor=True)
    ax.set_yticks(np.arange(-0.5, n, 1.0), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0 if n <= 40 else 0.4)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)

    if annotate:
        for i in range(n):
            for j in range(n):
                value = colours[i, j] / vmax
                text = ax.text(
                    j, i, texts[i][j], ha="center", va="center", fontsize=count_fs,
                    color="white" if value > 0.55 else ("#1f1f1f" if matrix[i, j] else "#9a9a9a"),
                    fontweight="bold" if i == j and matrix[i, j] else "normal",
                )
                text.set_in_layout(False)  # inside the axes: keeps the tight-bbox pass cheap

    cax = fig.add_axes((1.03, 0.0, 0.035 if side < 8 else 0.02, 1.0))
    bar = fig.colorbar(image, cax=cax)
    bar.set_label("fraction of the true class (row-normalised)" if normalize else "samples", fontsize=10)
    bar.ax.tick_params(labelsize=9)

    total = int(matrix.sum()) if integral else float(matrix.sum())
    correct = float(np.trace(matrix))
    heading = title or "Confusion matrix"
    if matrix.sum() > 0:
        heading += f"\naccuracy {correct / matrix.sum():.1%} of {total} samples"
        heading += "; cells show counts" if annotate else "; too many classes to print counts"
    ax.set_title(heading, fontsize=12, pad=10)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------
def _series(rows: list[dict], key: str) -> np.ndarray:
    out = []
    for row in rows:
        v = row.get(key)
        try:
            out.append(float(v) if v is not None else math.nan)
        except (TypeError, ValueError):
            out.append(math.nan)
    return np.asarray(out, dtype=float)


def _has(values: np.ndarray) -> bool:
    return bool(np.isfinite(values).any())


def _log_scale_if_wide(ax: Any, values: np.ndarray) -> None:
    """A log y axis when the positive values span more than a factor of 20."""
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size and positive.max() / positive.min() > 20:
        ax.set_yscale("log")


def _stage_spans(stages: list[str], x: np.ndarray) -> list[tuple[str, float, float, int]]:
    spans: list[tuple[str, float, float, int]] = []
    start = 0
    for i in range(1, len(stages) + 1):
        if i == len(stages) or stages[i] != stages[start]:
            spans.append((stages[start], float(x[start]) - 0.5, float(x[i - 1]) + 0.5, i - start))
            start = i
    return spans


def plot_training_curves(history: Sequence[dict], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Draw losses, accuracy (and learning rate, and the largest and median gradient norm) per epoch to a PNG.

    ``history`` rows look like ``{"stage": "linear-probe", "epoch": 1, "train_loss": ..,
    "val_loss": .., "val_accuracy": .., "lr": ..}``, one per epoch in training order. All stages
    share one x axis (global epoch: a row's ``global_epoch`` if given, else its position); each
    stage is shaded and labelled, and the best epoch (highest ``val_accuracy``, else lowest
    ``val_loss``) is marked on every panel. Missing values are simply not drawn.
    """
    from matplotlib.ticker import MaxNLocator

    rows = [dict(r) for r in (history or [])]
    if not rows:
        raise DataError("no training history to plot", fix="train for at least one epoch (training_log.json is empty)")

    x = np.asarray(
        [float(r["global_epoch"]) if r.get("global_epoch") is not None else float(i + 1) for i, r in enumerate(rows)]
    )
    stages = [str(r.get("stage") or "training") for r in rows]
    stage_epoch = [r.get("epoch") for r in rows]

    train_loss, val_loss = _series(rows, "train_loss"), _series(rows, "val_loss")
    train_acc, val_acc = _series(rows, "train_accuracy"), _series(rows, "val_accuracy")
    val_f1 = _series(rows, "val_f1_macro")
    lr = _series(rows, "lr")
    grad_norm, grad_median = _series(rows, "grad_norm_max"), _series(rows, "grad_norm_median")

    panels = ["loss"]
    if _has(train_acc) or _has(val_acc) or _has(val_f1):
        panels.append("accuracy")
    if _has(lr):
        panels.append("lr")
    if _has(grad_norm):  # fine-tuning epochs: a step that blew the weights up stands out here
        panels.append("grad")
    ratios = {"loss": 3.0, "accuracy": 3.0, "lr": 1.4, "grad": 1.4}
    height = 1.2 + sum(1.1 * ratios[p] for p in panels)
    fig = _new_figure(9.0, height)
    grid = fig.add_gridspec(len(panels), 1, height_ratios=[ratios[p] for p in panels], hspace=0.12)
    axes: dict[str, Any] = {}
    for k, name in enumerate(panels):
        axes[name] = fig.add_subplot(grid[k], sharex=axes.get("loss"))

    # best epoch
    if _has(val_acc):
        best, best_text = int(np.nanargmax(val_acc)), f"val accuracy {np.nanmax(val_acc):.4f}"
    elif _has(val_loss):
        best, best_text = int(np.nanargmin(val_loss)), f"val loss {np.nanmin(val_loss):.4f}"
    else:
        best, best_text = None, ""

    spans = _stage_spans(stages, x)
    colour_of: dict[str, str] = {}
    for name, _, _, _ in spans:
        colour_of.setdefault(name, _STAGE_COLORS[len(colour_of) % len(_STAGE_COLORS)])
    for ax in axes.values():
        for k, (name, lo, hi, _) in enumerate(spans):
            ax.axvspan(lo, hi, color=colour_of[name], alpha=0.75, linewidth=0, zorder=0)
            if k > 0:
                ax.axvline(lo, color="#7f7f7f", linewidth=0.9, linestyle="--", zorder=1)
        ax.grid(True, color="#d0d0d0", linewidth=0.6, alpha=0.8, zorder=1)
        ax.set_axisbelow(True)
        if best is not None:
            ax.axvline(x[best], color="#d62728", linewidth=1.2, linestyle=":", zorder=2)

    style = dict(marker="o", markersize=4, linewidth=1.8, zorder=3)
    ax = axes["loss"]
    if _has(train_loss):
        ax.plot(x, train_loss, color="#1f77b4", label="train loss", **style)
    if _has(val_loss):
        ax.plot(x, val_loss, color="#ff7f0e", label="validation loss", **style)
        if best is not None and np.isfinite(val_loss[best]):
            ax.plot([x[best]], [val_loss[best]], marker="*", markersize=15, color="#d62728", markeredgecolor="white", zorder=5, linestyle="none")
    ax.set_ylabel("loss")

    if "accuracy" in axes:
        ax = axes["accuracy"]
        if _has(train_acc):
            ax.plot(x, train_acc, color="#1f77b4", label="train accuracy", **style)
        if _has(val_acc):
            ax.plot(x, val_acc, color="#2ca02c", label="validation accuracy", **style)
        if _has(val_f1):
            ax.plot(x, val_f1, color="#9467bd", label="validation macro F1", linestyle="--", marker="s", markersize=3.5, linewidth=1.4, zorder=3)
        if best is not None and _has(val_acc):
            ax.plot([x[best]], [val_acc[best]], marker="*", markersize=15, color="#d62728", markeredgecolor="white", zorder=5, linestyle="none")
        ax.set_ylabel("accuracy")
        lo = np.nanmin(np.concatenate([v[np.isfinite(v)] for v in (train_acc, val_acc, val_f1) if _has(v)]))
        ax.set_ylim(max(0.0, min(lo - 0.05, 0.95)), 1.0 + 0.02)

    if "lr" in axes:
        ax = axes["lr"]
        ax.plot(x, lr, color="#7f7f7f", marker=".", markersize=4, linewidth=1.4, drawstyle="steps-mid", zorder=3)
        _log_scale_if_wide(ax, lr)
        ax.set_ylabel("learning rate")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3)) if ax.get_yscale() == "linear" else None

    if "grad" in axes:
        ax = axes["grad"]
        ax.plot(x, grad_norm, color="#8c564b", marker=".", markersize=5, linewidth=1.4, zorder=3, label="largest step")
        if _has(grad_median):
            ax.plot(x, grad_median, color="#8c564b", marker=".", markersize=4, linewidth=1.0, linestyle="--", zorder=3, label="median step")
            ax.legend(loc="best", fontsize=8, framealpha=0.9)
        _log_scale_if_wide(ax, np.concatenate([grad_norm, grad_median]))
        ax.set_ylabel("gradient norm")

    # legends: curves + the best-epoch marker
    from matplotlib.lines import Line2D

    best_handle = None
    if best is not None:
        epoch_in_stage = f", {stages[best]} epoch {stage_epoch[best]}" if stage_epoch[best] is not None else f", {stages[best]}"
        best_handle = Line2D([], [], color="#d62728", linestyle=":", marker="*", markersize=11, markeredgecolor="white",
                             label=f"best: epoch {x[best]:g}{epoch_in_stage} ({best_text})")
    for name in ("loss", "accuracy"):
        if name not in axes:
            continue
        handles, _ = axes[name].get_legend_handles_labels()
        if name == panels[0] and best_handle is not None:
            handles = [*handles, best_handle]
        if handles:
            axes[name].legend(handles=handles, loc="best", fontsize=8.5, framealpha=0.9)

    # stage names above the top panel
    top = axes[panels[0]]
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(top.transData, top.transAxes)
    for name, lo, hi, count in spans:
        top.text((lo + hi) / 2, 1.01, _shorten(name, 24) + f" ({count} ep)", transform=trans, ha="center", va="bottom",
                 fontsize=9, color="#333333", clip_on=False)

    bottom = axes[panels[-1]]
    bottom.set_xlabel("epoch (counted across stages)")
    if len(x) <= 25:
        bottom.set_xticks(x)
        bottom.set_xticklabels([f"{v:g}" for v in x])
    else:
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_xlim(float(x.min()) - 0.5, float(x.max()) + 0.5)
    for name in panels[:-1]:
        axes[name].tick_params(labelbottom=False)
    fig.suptitle(title or "Training curves", fontsize=13, y=0.995 if len(panels) > 2 else 1.0)
    fig.subplots_adjust(top=1 - 0.75 / height)
    return _save(fig, path)



# ---------------------------------------------------------------------------------------------
# Which layers transfer
# ---------------------------------------------------------------------------------------------
def plot_layer_scores(evidence: Any, path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Draw the probe accuracy of each layer group alone (``evidence``: a
    :class:`tlhub.engine.layers.LayerEvidence` or its dict) as bars from input to output, the
    groups the head reads highlighted, the chosen set's score as a line and the unfreeze
    recommendation as a shaded span."""
    from tlhub.engine.layers import LayerEvidence

    ev = evidence if isinstance(evidence, LayerEvidence) else LayerEvidence.from_dict(evidence)
    if not ev.scores:
        raise DataError("no per-layer scores to plot", fix="train with feature_layers: all (or unfreeze: auto) to score the layers")
    n = len(ev.group_names)
    x = np.arange(n)
    scores = np.asarray([ev.scores.get(i, np.nan) for i in range(n)], dtype=float)
    fig = _new_figure(max(6.0, 0.55 * n + 2.5), 4.2)
    ax = fig.add_subplot(1, 1, 1)
    if ev.unfreeze:
        ax.axvspan(n - ev.unfreeze - 0.5, n - 0.5, color="#fde7d3", zorder=0, label=f"recommended to unfreeze ({ev.unfreeze})")
    colours = ["#1f77b4" if i in ev.chosen else "#aec7e8" for i in range(n)]
    bars = ax.bar(x, scores, color=colours, edgecolor="#4d4d4d", linewidth=0.6, zorder=2)
    for bar, value in zip(bars, scores):
        if np.isfinite(value):
            ax.annotate(f"{value:.3f}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=7,
                        xytext=(0, 2), textcoords="offset points")
    if ev.chosen_score is not None:
        ax.axhline(ev.chosen_score, color="#d62728", linestyle="--", linewidth=1.2, zorder=3,
                   label=f"head on groups {', '.join(map(str, ev.chosen))}: {ev.chosen_score:.3f}")
    finite = scores[np.isfinite(scores)]
    low = float(min(finite.min(), ev.chosen_score if ev.chosen_score is not None else 1.0))
    ax.set_ylim(max(0.0, low - 0.1), min(1.0, max(float(finite.max()), ev.chosen_score or 0.0) + 0.06))
    ax.set_xticks(x)
    ax.set_xticklabels([f"{i}\n{_shorten(name, 14)}" for i, name in enumerate(ev.group_names)], fontsize=7)
    ax.set_xlabel("layer group (input → output); dark: read by the head")
    ax.set_ylabel(f"probe accuracy ({ev.scored_by})")
    ax.grid(True, axis="y", color="#d0d0d0", linewidth=0.6, zorder=1)
    ax.set_axisbelow(True)
    if ev.chosen_score is not None or ev.unfreeze:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.set_title(title or "Linear-probe accuracy of each layer group alone", fontsize=10)
    return _save(fig, path)


def plot_selection(selection: Any, path: str | os.PathLike) -> Path:
    """Draw ``tlhub select``'s ranking (a :class:`tlhub.engine.selection.Selection`): one bar per
    scored candidate, its cross-validated probe accuracy with the fold sd as an error bar, LogME
    and the estimated fine-tune seconds per epoch written beside it, the winner highlighted."""
    ranked = selection.ranked
    if not ranked:
        raise DataError("no scored candidates to plot", fix="run `tlhub select` with candidates of the data's modality")
    n = len(ranked)
    fig = _new_figure(9.0, 1.2 + 0.55 * n)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(n)[::-1]
    acc = np.asarray([c.cv_accuracy for c in ranked])
    sd = np.asarray([c.cv_sd or 0.0 for c in ranked])
    colours = ["#1f77b4" if i == 0 else "#aec7e8" for i in range(n)]
    ax.barh(y, acc, xerr=sd, color=colours, edgecolor="#4d4d4d", linewidth=0.6, capsize=3, zorder=2)
    for yi, c in zip(y, ranked):
        note = f"{c.cv_accuracy:.3f} ± {c.cv_sd:.3f}   LogME {c.logme:.3f}"
        if c.epoch_seconds is not None:
            note += f"   ~{c.epoch_seconds:.0f} s/epoch"
        ax.annotate(note, (c.cv_accuracy + (c.cv_sd or 0.0), yi), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels([_shorten(c.backbone, 48) for c in ranked], fontsize=8)
    low = float(max(0.0, (acc - sd).min() - 0.1))
    ax.set_xlim(low, min(1.0, float((acc + sd).max()) + 0.25))
    ax.set_xlabel(f"{selection.folds}-fold cross-validated linear-probe accuracy on the training split")
    ax.grid(True, axis="x", color="#d0d0d0", linewidth=0.6, zorder=1)
    ax.set_axisbelow(True)
    ax.set_title(f"tlhub select: {n} candidate{'s' if n != 1 else ''} for {_shorten(str(selection.data), 40)} (dark: chosen)", fontsize=10)
    return _save(fig, path)


__all__ = ["plot_confusion_matrix", "plot_training_curves", "plot_layer_scores", "plot_selection"]
