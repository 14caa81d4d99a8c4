"""Held-out evaluation: run a model over a split, compute metrics with ``evaluate``, save the result.

- :func:`evaluate_model` runs a ``TransferModel`` over a dataloader (optionally through an
  ``accelerate.Accelerator``, gathering across processes) and returns predictions, references and
  the mean loss.
- :func:`compute_metrics` turns class ids into an :class:`EvalResult`: accuracy, macro
  precision/recall/F1, a per-class table and the confusion matrix, every number computed by an
  ``evaluate`` metric module (tlhub's bundled copies, so it works offline), plus 95% bootstrap
  intervals of every metric from the per-example predictions (:mod:`tlhub.engine.stats`).
- :class:`EvalResult` is what lands in a saved model's ``eval_results.json`` (and
  ``images/confusion_matrix.png``) and what model cards and the CLI read back.

Heavy libraries (evaluate, torch, matplotlib) are imported only by the functions that need them,
so reading a saved ``eval_results.json`` stays cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from tlhub.errors import DataError, TlhubError
from tlhub.core.saving import EVAL_FILE, IMAGES_DIR
from tlhub.fileio import write_json_atomic
from tlhub.engine.stats import CONFIDENCE, N_RESAMPLES, SEED, Interval

if TYPE_CHECKING:  # pragma: no cover
    import torch

CONFUSION_MATRIX_PNG = "confusion_matrix.png"

#: The headline metrics, in display order.
METRIC_NAMES = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "balanced_accuracy")

_ADD_BATCH_SIZE = 65_536  # samples per evaluate add_batch call


# ---------------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------------
@dataclass
class EvalResult:
    """Metrics of one evaluation run over a split, with bootstrap intervals.

    ``intervals`` maps each headline metric (accuracy, precision_macro, recall_macro, f1_macro) to
    its :class:`~tlhub.engine.stats.Interval`; ``per_class_intervals[i]`` maps ``precision``,
    ``recall``, ``f1`` of class ``i`` to one (``{}`` for a class without references). Both are
    empty for results saved before intervals existed. ``predictions``/``references`` are the
    per-example class ids the numbers came from (what ``tlhub compare`` pairs up); they stay in
    memory and are not written to ``eval_results.json``.
    """

    metrics: dict[str, float]  # accuracy, precision_macro, recall_macro, f1_macro, balanced_accuracy (+ loss if given)
    per_class: list[dict]  # {label, precision, recall, f1, support}, in label order
    confusion_matrix: list[list[int]]  # rows = true class, columns = predicted class
    labels: list[str]
    num_samples: int
    split: str = "test"
    intervals: dict[str, Interval] = field(default_factory=dict)
    per_class_intervals: list[dict[str, Interval]] = field(default_factory=list)
    predictions: np.ndarray | None = field(default=None, compare=False, repr=False)
    references: np.ndarray | None = field(default=None, compare=False, repr=False)

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "split": self.split,
            "num_samples": int(self.num_samples),
            "labels": list(self.labels),
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "per_class": [dict(row) for row in self.per_class],
            "confusion_matrix": [[int(v) for v in row] for row in self.confusion_matrix],
        }
        if self.intervals:
            out["intervals"] = {k: v.to_dict() for k, v in self.intervals.items()}
        if self.per_class_intervals:
            # compact: the settings (confidence, method, resamples, n, seed) are those of "intervals"
            out["per_class_intervals"] = [
                {"label": label, **{k: {"low": float(v.low), "high": float(v.high)} for k, v in row.items()}}
                for label, row in zip(self.labels, self.per_class_intervals)
            ]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalResult":
        required = ("metrics", "per_class", "confusion_matrix", "labels", "num_samples")
        missing = [k for k in required if k not in d] if isinstance(d, dict) else list(required)
        if missing:
            raise TlhubError(
                f"not an evaluation result: missing {', '.join(missing)}",
                fix=f"regenerate {EVAL_FILE} with `tlhub evaluate`",
            )
        try:
            intervals = {str(k): Interval.from_dict(v) for k, v in (d.get("intervals") or {}).items()}
            settings = next(iter(intervals.values())).to_dict() if intervals else {"n": int(d["num_samples"])}
            settings = {k: v for k, v in settings.items() if k not in ("low", "high")}
            per_class_intervals = [
                {k: Interval.from_dict(v, **settings) for k, v in row.items() if k != "label"} for row in d.get("per_class_intervals") or []
            ]
        except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as e:
            raise TlhubError(f"the intervals in this evaluation result are malformed ({e})", fix=f"regenerate {EVAL_FILE} with `tlhub evaluate`") from e
        return cls(
            metrics={k: float(v) for k, v in d["metrics"].items()},
            per_class=[dict(row) for row in d["per_class"]],
            confusion_matrix=[[int(v) for v in row] for row in d["confusion_matrix"]],
            labels=[str(x) for x in d["labels"]],
            num_samples=int(d["num_samples"]),
            split=str(d.get("split", "test")),
            intervals=intervals,
            per_class_intervals=per_class_intervals,
        )

    def save(self, directory: str | os.PathLike, *, plot: bool = True) -> Path:
        """Write ``DIRECTORY/eval_results.json`` (atomically) and ``DIRECTORY/images/confusion_matrix.png``.

        Returns the path of the JSON file.
        """
        directory = Path(directory)
        path = directory / EVAL_FILE
        write_json_atomic(path, self.to_dict())
        if plot:
            from tlhub.engine.plots import plot_confusion_matrix

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

    def correct(self) -> np.ndarray:
        """Per example, whether the prediction was right (needs the in-memory predictions)."""
        if self.predictions is None or self.references is None:
            raise TlhubError(
                "this evaluation result holds no per-example predictions (results read from eval_results.json do not)",
                fix="evaluate the model again (`tlhub.engine.evaluation.evaluate`) to get them",
            )
        return np.asarray(self.predictions) == np.asarray(self.references)

    def _with_interval(self, key: str, digits: int) -> str:
        text = f"{self.metrics[key]:.{digits}f}"
        interval = self.intervals.get(key)
        return f"{text} {interval.format(digits)}" if interval is not None else text

    def interval_note(self) -> str:
        """How the intervals were made, e.g. ``95% bootstrap intervals (percentile, 9999 resamples of 400 examples, seed 0)``."""
        if not self.intervals:
            return ""
        iv = self.intervals.get("accuracy") or next(iter(self.intervals.values()))
        method = iv.method.removeprefix("bootstrap-")
        return f"{iv.confidence:.0%} bootstrap intervals ({method}, {iv.n_resamples} resamples of {iv.n} examples, seed {iv.seed})"

    def table(self, *, digits: int = 4, max_label_width: int = 40) -> str:
        """The per-class table as aligned plain text, with macro-average and accuracy rows.

        When the result has intervals, the headline metrics follow with theirs.
        """
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
        if "balanced_accuracy" in m:
            lines.append(line("balanced accuracy", "", "", m.get("balanced_accuracy"), self.num_samples))
        if self.intervals:
            lines += ["", self.interval_note() + ":"]
            pretty = {"accuracy": "accuracy", "precision_macro": "macro precision", "recall_macro": "macro recall", "f1_macro": "macro F1",
                      "balanced_accuracy": "balanced accuracy"}
            w = max(len(v) for v in pretty.values())
            for key, name in pretty.items():
                if key in self.intervals and key in m:
                    lines.append(f"  {name.ljust(w)}  {self._with_interval(key, digits)}")
        return "\n".join(x.rstrip() for x in lines)

    def summary(self) -> str:
        """One line: split, accuracy and macro F1 with their intervals (and loss), sample and class counts."""
        parts = [f"accuracy {self._with_interval('accuracy', 4)}", f"macro F1 {self._with_interval('f1_macro', 4)}"]
        if "loss" in self.metrics:
            parts.append(f"loss {self.metrics['loss']:.4f}")
        tail = f"{self.num_samples} samples, {len(self.labels)} classes"
        if "accuracy" in self.intervals:
            tail += f"; {self.intervals['accuracy'].confidence:.0%} bootstrap intervals"
        return f"{self.split}: {', '.join(parts)} ({tail})"

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
    intervals: bool = True,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | None = SEED,
) -> EvalResult:
    """Accuracy, macro precision/recall/F1, per-class scores and the confusion matrix, with intervals.

    ``predictions`` and ``references`` are class ids (lists, numpy arrays or tensors) indexing
    ``labels``. Every number comes from an ``evaluate`` metric module (tlhub's bundled copies).

    Macro averages run over the classes present in the references or the predictions (as
    scikit-learn's default does), so a class missing from a small test split does not count as a
    zero. The per-class table lists every class; one absent from both has support 0 and scores 0.
    Undefined ratios (a class never predicted) count as 0.

    With ``intervals`` (the default), every headline metric and each class's precision, recall
    and F1 get a ``confidence`` bootstrap interval from the per-example predictions
    (:func:`tlhub.engine.stats.metric_intervals`: percentile method, ``n_resamples`` resamples,
    ``seed`` for reproducibility; about 1 s on 10,000 examples). The result also keeps the
    per-example ``predictions`` and ``references`` in memory.
    """
    import evaluate

    from tlhub.engine.metrics import load_metric

    preds, refs, labels = _validate(predictions, references, labels)
    class_ids = list(range(len(labels)))

    accuracy = _run(load_metric("accuracy"), preds, refs)["accuracy"]
    prf = evaluate.combine([load_metric("precision"), load_metric("recall"), load_metric("f1")])
    macro = _run(prf, preds, refs, average="macro", zero_division=0)
    per = _run(prf, preds, refs, average=None, labels=class_ids, zero_division=0)
    cm = _run(load_metric("confusion_matrix"), preds, refs, labels=class_ids)["confusion_matrix"]
    support = [int(sum(row)) for row in cm]  # row sums of the confusion matrix = true samples per class
    # balanced accuracy: the mean recall over the classes in the references (scikit-learn's
    # balanced_accuracy_score); unlike recall_macro it ignores classes that are only predicted
    balanced = float(np.mean([r for r, s in zip(per["recall"], support) if s > 0])) if any(support) else 0.0

    metrics = {
        "accuracy": float(accuracy),
        "precision_macro": float(macro["precision"]),
        "recall_macro": float(macro["recall"]),
        "f1_macro": float(macro["f1"]),
        "balanced_accuracy": balanced,
    }
    if loss is not None:
        metrics["loss"] = float(loss)
    per_class = [
        {"label": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": s}
        for name, p, r, f, s in zip(labels, per["precision"], per["recall"], per["f1"], support)
    ]
    headline: dict[str, Interval] = {}
    per_class_intervals: list[dict[str, Interval]] = []
    if intervals and len(refs) >= 2:  # one example has no sampling spread to bootstrap: no interval rather than [x, x]
        from tlhub.engine.stats import metric_intervals

        headline, per_class_intervals = metric_intervals(preds, refs, len(labels), confidence=confidence, n_resamples=n_resamples, seed=seed)
    return EvalResult(
        metrics=metrics,
        per_class=per_class,
        confusion_matrix=[[int(v) for v in row] for row in cm],
        labels=labels,
        num_samples=int(len(refs)),
        split=split,
        intervals=headline,
        per_class_intervals=per_class_intervals,
        predictions=preds,
        references=refs,
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


def evaluate_dataloader(
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


# ---------------------------------------------------------------------------------------------
# A saved model on a data set: what ``tlhub evaluate`` runs
# ---------------------------------------------------------------------------------------------
def evaluate(
    model: Any,
    *,
    data: Any = None,
    data_config: str | None = None,
    split: str | None = None,
    input_column: str | None = None,
    label_column: str | None = None,
    batch_size: int = 128,
    max_samples: int | None = None,
    progress: bool = True,
) -> "EvalResult":
    """Metrics of ``model`` (a TransferModel, or a saved model's folder or repo) on ``data[split]``.

    ``data`` defaults to the dataset the model was trained on (from its training record), and
    with it its configuration; ``data_config`` names the configuration of a Hub dataset that has
    several. ``max_samples`` scores a stratified random sample of that many rows of the split
    (each class in its share, seeded: the same rows every time), not its first rows, which in a
    file sorted by class would all be one class.
    """
    import numpy as np

    from tlhub.adapters.registry import get_adapter
    from tlhub.data.loading import DataSpec, load_split, make_dataloader
    from tlhub.core.factory import create_model

    if isinstance(model, str):
        model = create_model(model)
        model.set_channels_last(True)  # faster image inference; our own copy, so nobody else sees it
    # a model loaded from a tlhub folder knows what it was trained on; a bare backbone does not
    trained = model.training_record.config if model.training_record is not None else {}
    if data is None:
        data = trained.get("data")
        if data is None:
            raise DataError("no data given and the model records none", fix="pass --data (a built-in name, folder, file or Hub dataset)")
        data_config = data_config or trained.get("data_config")
        input_column = input_column or trained.get("input_column")
        label_column = label_column or trained.get("label_column")
    adapter = get_adapter(model.adapter_name)
    spec = DataSpec(
        source=data,
        config_name=data_config,
        input_column=input_column,
        label_column=label_column,
        max_eval_samples=max_samples,  # a seeded stratified sample (DataSpec.seed), see the docstring
    )
    # any split (None: test, or the only one), or "all": labelled with the model's own classes
    prepared, split = load_split(spec, split, labels=list(model.labels), modality=adapter.modality, decode=adapter.decode_input, progress=progress)
    mapping = np.arange(len(model.labels))  # the data is coded in the model's class ids already
    loader = make_dataloader(
        prepared.splits["evaluation"],
        decode=adapter.decode_input,
        collate=adapter.make_collate(model, train=False),
        batch_size=batch_size,
        shuffle=False,
    )
    preds, refs, loss = evaluate_model(model, _remap(loader, mapping), progress=progress)
    return compute_metrics(preds, refs, model.labels, split=split, loss=loss)


def _remap(loader, mapping):
    import torch

    table = torch.as_tensor(mapping)
    for batch in loader:
        batch["labels"] = table[batch["labels"]]
        yield batch


__all__ = ["EvalResult", "METRIC_NAMES", "compute_metrics", "evaluate", "evaluate_dataloader", "evaluate_model"]
