"""Held-out evaluation: run a model over a split, compute metrics with ``evaluate``, save the result.

- :func:`evaluate_model` runs a ``TransferModel`` over a dataloader (optionally through an
  ``accelerate.Accelerator``, gathering across processes) and returns predictions, references and
  the mean loss.
- :func:`compute_metrics` turns class ids into an :class:`EvalResult`: accuracy, macro
  precision/recall/F1, a per-class table and the confusion matrix, every number computed by an
  ``evaluate`` metric module (tlhub's bundled copies, so it works offline).
- :class:`EvalResult` is what lands in a saved model's ``eval_results.json`` (and
  ``images/confusion_matrix.png``) and what model cards and the CLI read back.

Heavy libraries (evaluate, torch, matplotlib) are imported only by the functions that need them,
so reading a saved ``eval_results.json`` stays cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from tlhub.errors import DataError, TlhubError
from tlhub.saving import EVAL_FILE, IMAGES_DIR, write_json_atomic

if TYPE_CHECKING:  # pragma: no cover
    import torch

CONFUSION_MATRIX_PNG = "confusion_matrix.png"

#: The headline metrics, in display order.
METRIC_NAMES = ("accuracy", "precision_macro", "recall_macro", "f1_macro")

_ADD_BATCH_SIZE = 65_536  # samples per evaluate add_batch call


# ---------------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------------
@dataclass
class EvalResult:
    """Metrics of one evaluation run over a split."""

    metrics: dict[str, float]  # accuracy, precision_macro, recall_macro, f1_macro (+ loss if given)
    per_class: list[dict]  # {label, precision, recall, f1, support}, in label order
    confusion_matrix: list[list[int]]  # rows = true class, columns = predicted class
    labels: list[str]
    num_samples: int
    split: str = "test"

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "num_samples": int(self.num_samples),
            "labels": list(self.labels),
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "per_class": [dict(row) for row in self.per_class],
            "confusion_matrix": [[int(v) for v in row] for row in self.confusion_matrix],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalResult":
        required = ("metrics", "per_class", "confusion_matrix", "labels", "num_samples")
        missing = [k for k in required if k not in d] if isinstance(d, dict) else list(required)
        if missing:
            raise TlhubError(
                f"not an evaluation result: missing {', '.join(missing)}",
                fix=f"regenerate {EVAL_FILE} with `tlhub evaluate`",
            )
        return cls(
            metrics={k: float(v) for k, v in d["metrics"].items()},
            per_class=[dict(row) for row in d["per_class"]],
            confusion_matrix=[[int(v) for v in row] for row in d["confusion_matrix"]],
            labels=[str(x) for x in d["labels"]],
            num_samples=int(d["num_samples"]),
            split=str(d.get("split", "test")),
        )

    def save(self, directory: str | os.PathLike, *, plot: bool = True) -> Path:
        """Write ``DIRECTORY/eval_results.json`` (atomically) and ``DIRECTORY/images/confusion_matrix.png``.

        Returns the path of the JSON file.
        """
        directory = Path(directory)
        path = directory / EVAL_FILE
        write_json_atomic(path, self.to_dict())
        if plot:
            from tlhub.plots import plot_confusion_matrix

            plot_confusion_matrix(
                self.confusion_matrix,
                self.labels,
                directory / IMAGES_DIR / CONFUSION_MATRIX_PNG,
                title=f"Confusion matrix: {self.split} split ({self.num_samples} samples)",
            )
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "EvalResult":
        """Read ``eval_results.json`` from a saved-model folder (or the JSON file itself)."""
        path = Path(directory)
        if path.is_dir():
            path = path / EVAL_FILE
        if not path.is_file():
            raise TlhubError(
                f"no evaluation results at {path}",
                fix="evaluate the model first (`tlhub evaluate MODEL_DIR`), or point at a model folder trained with a test split",
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise TlhubError(f"{path} is not valid JSON ({e})", fix=f"regenerate it with `tlhub evaluate`") from e
        return cls.from_dict(data)

    # -- display -----------------------------------------------------------------------------
    @property
    def accuracy(self) -> float:
        return float(self.metrics["accuracy"])

    @property
    def f1_macro(self) -> float:
        return float(self.metrics["f1_macro"])

    def table(self, *, digits: int = 4, max_label_width: int = 40) -> str:
        """The per-class table as aligned plain text, with macro-average and accuracy rows."""
        names = [_shorten(str(row["label"]), max_label_width) for row in self.per_class]
        width = max([len("macro avg"), len("label"), *map(len, names)])
        num_w = max(digits + 2, len("precision"))
        sup_w = max(len("support"), len(str(self.num_samples)))

        def line(name: str, p: Any, r: Any, f: Any, s: Any) -> str:
            cells = [_fmt(v, digits).rjust(num_w) for v in (p, r, f)]
            return f"{name.ljust(width)}  {'  '.join(cells)}  {str(s).rjust(sup_w)}"

        header = f"{'label'.ljust(width)}  {'precision'.rjust(num_w)}  {'recall'.rjust(num_w)}  {'f1'.rjust(num_w)}  {'support'.rjust(sup_w)}"
        lines = [header, "-" * len(header)]
        for name, row in zip(names, self.per_class):
            lines.append(line(name, row["precision"], row["recall"], row["f1"], row["support"]))
        lines.append("-" * len(header))
        m = self.metrics
        lines.append(line("macro avg", m.get("precision_macro"), m.get("recall_macro"), m.get("f1_macro"), self.num_samples))
        lines.append(line("accuracy", "", "", m.get("accuracy"), self.num_samples))
        return "\n".join(x.rstrip() for x in lines)

    def summary(self) -> str:
        """One line: split, accuracy, macro F1 (and loss), sample and class counts."""
        parts = [f"accuracy {self.metrics['accuracy']:.4f}", f"macro F1 {self.metrics['f1_macro']:.4f}"]
        if "loss" in self.metrics:
            parts.append(f"loss {self.metrics['loss']:.4f}")
        return f"{self.split}: {', '.join(parts)} ({self.num_samples} samples, {len(self.labels)} classes)"

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.summary()


def _fmt(value: Any, digits: int) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, (int, float, np.floating, np.integer)):
        return f"{float(value):.{digits}f}"
    return str(value)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------
def _as_class_ids(values: Any, what: str, num_classes: int) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor, possibly on an accelerator
        values = values.detach().cpu().numpy()
    try:
        arr = np.asarray(values)
    except Exception as e:  # noqa: BLE001 - ragged or exotic input
        raise DataError(f"{what} must be a sequence of class ids, got {type(values).__name__} ({e})", fix="pass a list or 1-D array of ints") from e
    if arr.ndim == 2 and arr.shape[1] == num_classes and arr.shape[1] > 1:
        raise DataError(
            f"{what} has shape {arr.shape}: that looks like logits or probabilities, not class ids",
            fix=f"pass {what}.argmax(-1)",
        )
    if arr.ndim != 1:
        raise DataError(f"{what} must be one-dimensional (one class id per sample), got shape {arr.shape}", fix="flatten it, or pass argmax(-1) of the logits")
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating):
            raise DataError(f"{what} must hold integer class ids, got dtype {arr.dtype} (e.g. {arr[0]!r})", fix="map label names to ids first (label -> index in labels)")
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))][:5]
            raise DataError(f"{what} must hold integer class ids, got non-integer values {bad.tolist()}", fix="pass class ids, not scores")
    arr = arr.astype(np.int64, copy=False)
    out_of_range = (arr < 0) | (arr >= num_classes)
    if out_of_range.any():
        bad = np.unique(arr[out_of_range])[:5].tolist()
        raise DataError(
            f"{what} holds class ids outside 0..{num_classes - 1} (there are {num_classes} labels): {bad}",
            fix="check that the labels list matches the model's classes and their order",
        )
    return arr


def _validate(predictions: Any, references: Any, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if isinstance(labels, str) or labels is None:
        raise DataError(f"labels must be a list of class names, got {labels!r}", fix="pass model.labels")
    labels = [str(x) for x in labels]
    if not labels:
        raise DataError("labels is empty", fix="pass the class names, in class-id order (model.labels)")
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise DataError(f"duplicate label names: {dupes}", fix="give every class a distinct name")
    preds = _as_class_ids(predictions, "predictions", len(labels))
    refs = _as_class_ids(references, "references", len(labels))
    if len(preds) != len(refs):
        raise DataError(
            f"{len(preds)} predictions but {len(refs)} references",
            fix="pass one prediction per reference (with an Accelerator, gather both with gather_for_metrics)",
        )
    if len(refs) == 0:
        raise DataError("no samples to evaluate (predictions and references are empty)", fix="check that the evaluation split is not empty")
    return preds, refs, labels


def _run(module: Any, preds: np.ndarray, refs: np.ndarray, **kwargs: Any) -> dict[str, Any]:
    """Feed an evaluate module in batches, then compute (the streaming path a trainer uses)."""
    for start in range(0, len(refs), _ADD_BATCH_SIZE):
        module.add_batch(predictions=preds[start : start + _ADD_BATCH_SIZE], references=refs[start : start + _ADD_BATCH_SIZE])
    return module.compute(**kwargs)


def compute_metrics(
    predictions: Any,
    references: Any,
    labels: Sequence[str],
    *,
    split: str = "test",
    loss: float | None = None,
) -> EvalResult:
    """Accuracy, macro precision/recall/F1, per-class scores and the confusion matrix.

    ``predictions`` and ``references`` are class ids (lists, numpy arrays or tensors) indexing
    ``labels``. Every number comes from an ``evaluate`` metric module (tlhub's bundled copies).

    Macro averages run over the classes present in the references or the predictions (as
    scikit-learn's default does), so a class missing from a small test split does not count as a
    zero. The per-class table lists every class; one absent from both has support 0 and scores 0.
    Undefined ratios (a class never predicted) count as 0.
    """
    import evaluate

    from tlhub.metrics import load_metric

    preds, refs, labels = _validate(predictions, references, labels)
    class_ids = list(range(len(labels)))

    accuracy = _run(load_metric("accuracy"), preds, refs)["accuracy"]
    prf = evaluate.combine([load_metric("precision"), load_metric("recall"), load_metric("f1")])
    macro = _run(prf, preds, refs, average="macro", zero_division=0)
    per = _run(prf, preds, refs, average=None, labels=class_ids, zero_division=0)
    cm = _run(load_metric("confusion_matrix"), preds, refs, labels=class_ids)["confusion_matrix"]
    support = [int(sum(row)) for row in cm]  # row sums of the confusion matrix = true samples per class

    metrics = {
        "accuracy": float(accuracy),
        "precision_macro": float(macro["precision"]),
        "recall_macro": float(macro["recall"]),
        "f1_macro": float(macro["f1"]),
    }
    if loss is not None:
        metrics["loss"] = float(loss)
    per_class = [
        {"label": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": s}
        for name, p, r, f, s in zip(labels, per["precision"], per["recall"], per["f1"], support)
    ]
    return EvalResult(
        metrics=metrics,
        per_class=per_class,
        confusion_matrix=[[int(v) for v in row] for row in cm],
        labels=labels,
        num_samples=int(len(refs)),
        split=split,
    )


# ---------------------------------------------------------------------------------------------
# Running a model
# ---------------------------------------------------------------------------------------------
def _to_device(batch: Any, device: "torch.device") -> Any:
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True) if batch.device != device else batch
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _model_device(model: Any) -> "torch.device":
    import torch

    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def evaluate_model(model: Any, dataloader: Any, *, accelerator: Any = None, progress: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """Run ``model`` over ``dataloader``; return ``(predictions, references, mean loss)``.

    ``model(batch)`` must return logits (``batch x num_classes``) and every batch must hold
    ``batch["labels"]``. The model runs in eval mode under ``torch.inference_mode`` and is put
    back in its previous mode afterwards. With an ``accelerate.Accelerator``, predictions, labels
    and per-sample losses are gathered from every process with ``gather_for_metrics`` (which drops
    the samples duplicated to even out the last batch of a prepared dataloader), so every process
    returns the metrics of the whole split. The progress bar shows on the main process only.
    The loss is the mean cross-entropy over the samples.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    is_main = accelerator is None or accelerator.is_main_process
    device = accelerator.device if accelerator is not None else _model_device(model)
    try:
        total = len(dataloader)
    except TypeError:
        total = None

    was_training = model.training
    model.eval()
    all_preds: list[torch.Tensor] = []
    all_refs: list[torch.Tensor] = []
    all_losses: list[torch.Tensor] = []
    try:
        with torch.inference_mode():
            for batch in tqdm(dataloader, total=total, desc="evaluating", unit="batch", leave=False, disable=not (progress and is_main)):
                if not isinstance(batch, Mapping) or "labels" not in batch:
                    keys = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
                    raise DataError(
                        f"evaluation batches must be dicts holding 'labels', got {keys}",
                        fix="build the dataloader with tlhub's collate function (it adds 'labels')",
                    )
                batch = _to_device(batch, device)
                logits = model(batch)
                if hasattr(logits, "logits"):  # a transformers ModelOutput
                    logits = logits.logits
                labels = batch["labels"].long()
                if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
                    raise DataError(
                        f"the model returned logits of shape {tuple(logits.shape)} for a batch of {labels.shape[0]} labels",
                        fix="model(batch) must return one row of class scores per sample",
                    )
                losses = F.cross_entropy(logits.float(), labels, reduction="none")
                preds = logits.argmax(dim=-1)
                if accelerator is not None:
                    preds, labels, losses = accelerator.gather_for_metrics((preds, labels, losses))
                all_preds.append(preds.cpu())
                all_refs.append(labels.cpu())
                all_losses.append(losses.float().cpu())
    finally:
        model.train(was_training)

    if not all_refs or sum(len(r) for r in all_refs) == 0:
        raise DataError("the evaluation dataloader produced no samples", fix="check that the evaluation split is not empty")
    preds_np = torch.cat(all_preds).numpy().astype(np.int64)
    refs_np = torch.cat(all_refs).numpy().astype(np.int64)
    loss = float(torch.cat(all_losses).double().mean().item())
    return preds_np, refs_np, loss


def evaluate(
    model: Any,
    dataloader: Any,
    *,
    labels: Sequence[str] | None = None,
    split: str = "test",
    accelerator: Any = None,
    progress: bool = True,
) -> EvalResult:
    """Run ``model`` over ``dataloader`` and compute its :class:`EvalResult` (``labels`` default to ``model.labels``)."""
    preds, refs, loss = evaluate_model(model, dataloader, accelerator=accelerator, progress=progress)
    if labels is None:
        labels = getattr(model, "labels", None)
        if labels is None and accelerator is not None:
            labels = getattr(accelerator.unwrap_model(model), "labels", None)
    if labels is None:
        raise DataError("no class names to report: the model has no .labels", fix="pass labels=[...] in class-id order")
    return compute_metrics(preds, refs, labels, split=split, loss=loss)


__all__ = ["EvalResult", "METRIC_NAMES", "compute_metrics", "evaluate", "evaluate_model"]
