"""Model cards for saved tlhub models, built with huggingface_hub's ``ModelCard``/``ModelCardData``.

Everything in a card is read from the saved-model folder (see :mod:`tlhub.core.saving`), never retyped:

- metadata (YAML front matter): ``base_model``, ``datasets``, ``library_name``, ``pipeline_tag``,
  ``license``, ``tags``, ``metrics`` and the evaluation results as ``model-index`` (through
  ``ModelCardData(eval_results=[EvalResult(...)])``), so the Hub shows them as structured data;
- body (the Jinja template ``templates/modelcard.md``, rendered by ``ModelCard.from_template``):
  what was trained and how (strategy, stages, epochs, learning rates, seed from the
  :class:`~tlhub.core.record.TrainingRecord` in ``tlhub.json``), the held-out metrics and per-class table (``eval_results.json``), the training
  log (``training_log.json``), the confusion matrix and training curves as images in the repo
  (``images/*.png``), limitations derived from the numbers, and copy-paste loading snippets
  (the adapter's ``native_load_snippet`` and tlhub's own).

``ModelCard.validate`` asks the Hub; :func:`validate_card` checks the same things locally.
Nothing heavy (torch, timm, transformers, gradio) is imported here.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlhub.core.record import RECORD_FILE, TrainingRecord
from tlhub.core.saving import EVAL_FILE, EXAMPLES_DIR, IMAGES_DIR, LAYER_HEAD_FILE, LOG_FILE, load_json
from tlhub.errors import PublishError, TlhubError

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import EvalResult, ModelCard

#: ``repo_id`` shape accepted by the Hub (``user/name``).
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
#: a Hub dataset / model id (``name`` or ``org/name``), as opposed to a local path
HUB_ID_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")

#: Licence ids the Hub accepts in ``license:`` (the common ones; see hub-docs repositories-licenses).
KNOWN_LICENSES = frozenset(
    """apache-2.0 mit openrail openrail++ bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc
    cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0
    cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0
    cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0
    eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research
    lppl-1.3c ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl openmdw-1.0 openrail-m osl-3.0 postgresql
    ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license fair-noncommercial-research-license
    llama2 llama3 llama3.1 llama3.2 llama3.3 llama4 gemma unknown other""".split()
)

#: Pipeline tags tlhub's adapters produce (plus the other classification tasks plugins may use).
KNOWN_PIPELINE_TAGS = frozenset(
    {
        "image-classification",
        "text-classification",
        "audio-classification",
        "video-classification",
        "tabular-classification",
        "zero-shot-classification",
        "token-classification",
        "image-feature-extraction",
        "feature-extraction",
        "sentence-similarity",
    }
)

#: eval_results.json metric key -> (model-index metric type, pretty name, metric args)
_METRICS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "accuracy": ("accuracy", "Accuracy", None),
    "top1": ("accuracy", "Top-1 accuracy", None),
    "top1_accuracy": ("accuracy", "Top-1 accuracy", None),
    "top5": ("accuracy", "Top-5 accuracy", {"top_k": 5}),
    "top5_accuracy": ("accuracy", "Top-5 accuracy", {"top_k": 5}),
    "top_5_accuracy": ("accuracy", "Top-5 accuracy", {"top_k": 5}),
    "balanced_accuracy": ("balanced_accuracy", "Balanced accuracy", None),
    "f1": ("f1", "F1", None),
    "f1_macro": ("f1", "Macro F1", {"average": "macro"}),
    "macro_f1": ("f1", "Macro F1", {"average": "macro"}),
    "f1_weighted": ("f1", "Weighted F1", {"average": "weighted"}),
    "weighted_f1": ("f1", "Weighted F1", {"average": "weighted"}),
    "f1_micro": ("f1", "Micro F1", {"average": "micro"}),
    "precision_macro": ("precision", "Macro precision", {"average": "macro"}),
    "macro_precision": ("precision", "Macro precision", {"average": "macro"}),
    "recall_macro": ("recall", "Macro recall", {"average": "macro"}),
    "macro_recall": ("recall", "Macro recall", {"average": "macro"}),
    "precision": ("precision", "Precision", None),
    "recall": ("recall", "Recall", None),
    "loss": ("loss", "Cross-entropy loss", None),
    "log_loss": ("loss", "Cross-entropy loss", None),
    "ece": ("ece", "Expected calibration error", None),
}
#: keys of ``metrics`` that are counts or timings, not metrics
_NOT_METRICS = {"num_examples", "n", "support", "samples", "num_samples", "seconds", "runtime", "duration_s", "samples_per_second"}

#: the card's body: a Jinja template rendered by ``ModelCard.from_template`` (package data)
MODELCARD_TEMPLATE = Path(__file__).parent / "templates" / "modelcard.md"
#: rows of the training log shown in the card (all of them are in training_log.json)
LOG_ROWS = 12
#: captions for the images tlhub writes
IMAGE_CAPTIONS = {
    "confusion_matrix.png": "Confusion matrix on the held-out split",
    "training_curves.png": "Training curves (loss and validation metrics per epoch)",
    "layer_scores.png": "Linear-probe accuracy of each layer group alone (training split, leave-one-out); dark: the groups the head reads",
    "select.png": "tlhub select: cross-validated probe accuracy of each candidate backbone on the training split; dark: the one chosen",
}


def metric_spec(key: str) -> tuple[str, str, dict[str, Any] | None]:
    """``(metric_type, pretty_name, metric_args)`` for an ``eval_results.json`` metric key."""
    spec = _METRICS.get(key.lower())
    if spec:
        return spec
    return key.lower(), key.replace("_", " ").capitalize(), None


# --------------------------------------------------------------------------------------------
# reading a saved model


#: what a card says instead of a local folder path when the weights' origin was not recorded
UNKNOWN_BASE = "a local backbone (origin not recorded)"


@dataclass
class SavedModel:
    """A saved tlhub model folder, read once: the record, the evaluation, the log, the images."""

    path: Path
    record: TrainingRecord
    evaluation: dict[str, Any] | None = None
    log: list[dict[str, Any]] | None = None
    images: list[str] = field(default_factory=list)  # repo-relative posix paths
    examples: list[str] = field(default_factory=list)

    # -- the record ---------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return self.record.labels

    @property
    def library_name(self) -> str | None:
        return self.record.library_name

    @property
    def pipeline_tag(self) -> str | None:
        return self.record.pipeline_tag

    @property
    def adapter_name(self) -> str:
        return self.record.adapter

    @property
    def modality(self) -> str:
        return self.record.modality

    @property
    def base_model(self) -> str | None:
        """The Hub backbone it was fine-tuned from; ``None`` for an unrecorded local folder."""
        return self.record.base_model

    @property
    def base_model_display(self) -> str:
        return self.record.base_model or UNKNOWN_BASE

    @property
    def short_name(self) -> str:
        """``tf_efficientnet_lite0.in1k`` for ``tlhub-offline/tf_efficientnet_lite0.in1k``."""
        return self.record.base_model.split("/")[-1] if self.record.base_model else "a local backbone"

    @property
    def split_sizes(self) -> dict[str, int]:
        return self.record.dataset.splits

    @property
    def datasets(self) -> list[str]:
        """Hub dataset ids the model was trained on (local folders and bare names are left out)."""
        found: list[str] = []
        for value in (self.record.dataset.name, self.record.config.get("data")):
            if not isinstance(value, str):
                continue
            builtin = _builtin_info(value)
            if builtin is not None:
                value = builtin.get("hub_id") or ""
            for prefix in ("hf://datasets/", "hf:", "hub:"):
                if value.startswith(prefix):
                    value = value[len(prefix) :]
            # only ORG/NAME counts: a bare name is a tlhub builtin or a folder, not a Hub dataset
            if "/" in value and _looks_like_hub_id(value) and value not in found:
                found.append(value)
        return found

    @property
    def dataset_name(self) -> str:
        """A human name for the data (``Fashion-MNIST``): never a full local path."""
        for value in (self.record.dataset.name, self.record.config.get("data")):
            if isinstance(value, str) and value:
                builtin = _builtin_info(value)
                if builtin is not None:
                    return str(builtin.get("pretty_name") or builtin.get("name") or value)
                return value if _looks_like_hub_id(value) else Path(value).name
        return "held-out data"

    @property
    def stages(self) -> list[dict[str, Any]]:
        return self.record.stages

    @property
    def license(self) -> str | None:
        return _license_for(self)

    # -- the evaluation (eval_results.json, tlhub.engine.evaluation.EvalResult.to_dict) --------
    @property
    def eval_split(self) -> str | None:
        split = (self.evaluation or {}).get("split")
        return str(split) if split else None

    @property
    def metrics(self) -> dict[str, float]:
        """Numeric held-out metrics from ``eval_results.json``, exactly as saved."""
        raw = (self.evaluation or {}).get("metrics")
        out = {}
        for key, value in (raw if isinstance(raw, dict) else {}).items():
            if key in _NOT_METRICS or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                out[key] = value
        return out

    @property
    def intervals(self) -> dict[str, dict[str, Any]]:
        """Confidence intervals of the held-out metrics (``eval_results.json`` ``intervals``), or ``{}``
        for results saved before tlhub computed them."""
        raw = (self.evaluation or {}).get("intervals")
        out = {}
        for key, iv in (raw if isinstance(raw, dict) else {}).items():
            if isinstance(iv, dict) and all(isinstance(iv.get(k), (int, float)) for k in ("low", "high")):
                out[key] = iv
        return out

    def interval_note(self) -> str | None:
        """How the intervals were made, with the test-set size: the card says it once."""
        iv = self.intervals.get("accuracy") or next(iter(self.intervals.values()), None)
        if iv is None:
            return None
        method = str(iv.get("method", "bootstrap")).removeprefix("bootstrap-")
        return (f"{iv.get('confidence', 0.95):.0%} confidence intervals: bootstrap ({method}, {iv.get('n_resamples', '?')} resamples "
                f"of the {iv.get('n', self.num_eval_examples or '?'):,} held-out examples, seed {iv.get('seed', 0)})")

    @property
    def num_eval_examples(self) -> int | None:
        n = (self.evaluation or {}).get("num_samples")
        if isinstance(n, int) and not isinstance(n, bool):
            return n
        cm = self.confusion_matrix
        return int(sum(sum(row) for row in cm)) if cm else None

    @property
    def headline(self) -> tuple[str, float] | None:
        """The metric a one-line summary quotes: accuracy when there is one."""
        metrics = self.metrics
        for key in ("accuracy", "top1_accuracy", "top1", "f1_macro", "macro_f1", "f1"):
            if key in metrics:
                return key, metrics[key]
        return next(iter(metrics.items()), None)

    @property
    def per_class(self) -> list[dict[str, Any]]:
        """Rows ``{"label", "precision", "recall", "f1", "support", ...}``, one per class."""
        raw = (self.evaluation or {}).get("per_class")
        rows = [dict(row) for row in raw if isinstance(row, dict)] if isinstance(raw, list) else []
        for i, row in enumerate(rows):
            row.setdefault("label", self.labels[i] if i < len(self.labels) else str(i))
        return rows

    @property
    def confusion_matrix(self) -> list[list[int]] | None:
        cm = (self.evaluation or {}).get("confusion_matrix")
        if isinstance(cm, list) and cm and all(isinstance(r, list) for r in cm):
            return cm
        return None

    @property
    def cm_labels(self) -> list[str]:
        return [str(x) for x in (self.evaluation or {}).get("labels") or self.labels]


def _builtin_info(name: Any) -> dict[str, Any] | None:
    """tlhub's description of a built-in dataset (its Hub twin, pretty name), if ``name`` is one."""
    if not isinstance(name, str):
        return None
    try:
        from tlhub.data.builtin import BUILTIN_INFO, resolve_builtin

        canonical = resolve_builtin(name)
    except Exception:
        return None
    return BUILTIN_INFO.get(canonical) if canonical else None


def _looks_like_hub_id(value: str) -> bool:
    return bool(HUB_ID_RE.match(value)) and not value.startswith((".", "~")) and not Path(value).expanduser().exists()


def read_saved_model(model_dir: str | Path) -> SavedModel:
    """Read ``model_dir`` (a folder written by :func:`tlhub.core.saving.save_model`)."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise PublishError(f"model folder {path} does not exist", fix="give the output folder of `tlhub train`")
    try:
        record = TrainingRecord.load(path)
    except TlhubError as exc:  # missing, corrupt or invalid: its own message and fix
        raise PublishError(exc.message, fix=exc.fix) from None
    # a folder pushed or served as a Space must hold its weights, whole; a snapshot in the Hub cache
    # holds only the files fetched so far (a Space of a pushed model reads its record alone)
    from tlhub.adapters.source import weights_problem

    problem = weights_problem(path, require=not _in_hub_cache(path), ignore=(LAYER_HEAD_FILE,))
    if problem is not None:
        raise PublishError(problem.message, fix=problem.fix)
    try:
        evaluation = load_json(path, EVAL_FILE)
        log = load_json(path, LOG_FILE)
    except json.JSONDecodeError as exc:
        raise PublishError(f"{path} holds a corrupt JSON file: {exc}", fix="re-run `tlhub evaluate` (or the training) to rewrite it") from None
    images = sorted(p.relative_to(path).as_posix() for p in (path / IMAGES_DIR).glob("*") if p.is_file() and not p.name.startswith("."))
    examples = sorted(p.relative_to(path).as_posix() for p in (path / EXAMPLES_DIR).rglob("*") if p.is_file() and not p.name.startswith("."))
    return SavedModel(path=path, record=record, evaluation=evaluation if isinstance(evaluation, dict) else None,
                      log=log if isinstance(log, list) else None, images=images, examples=examples)


def _in_hub_cache(path: Path) -> bool:
    from huggingface_hub import constants

    try:
        path.resolve().relative_to(Path(constants.HF_HUB_CACHE).resolve())
    except (ValueError, OSError):
        return False
    return True


def _license_for(saved: SavedModel) -> str | None:
    """The licence: the record's (the weights' own), else the backbone's config, offline asset or
    cached card (version-1 records did not store it)."""
    if saved.record.base_model_license:
        return saved.record.base_model_license.lower()
    config = load_json(saved.path, "config.json") or {}
    pcfg = config.get("pretrained_cfg") if isinstance(config, dict) else None
    if isinstance(pcfg, dict) and pcfg.get("license"):
        return str(pcfg["license"]).lower()
    base = saved.base_model
    if base:
        try:
            from tlhub.offline.catalogue import get_asset

            asset = get_asset(base)
            if asset is not None and asset.licence:
                return str(asset.licence).lower()
        except Exception:  # not an offline asset (or assets unavailable): look in the Hub cache
            pass
        try:
            from huggingface_hub import try_to_load_from_cache
            from huggingface_hub.repocard import metadata_load

            cached = try_to_load_from_cache(base, "README.md")
            if isinstance(cached, str):
                meta = metadata_load(cached) or {}
                if meta.get("license"):
                    return str(meta["license"]).lower()
        except Exception:
            pass
    return None


# --------------------------------------------------------------------------------------------
# building the card


def eval_results(saved: SavedModel) -> list["EvalResult"]:
    """One ``EvalResult`` per held-out metric in ``eval_results.json`` (values exactly as saved)."""
    from huggingface_hub import EvalResult

    task = saved.pipeline_tag or "image-classification"
    datasets = saved.datasets
    dataset_type = datasets[0] if datasets else _slug(saved.dataset_name)
    split = saved.eval_split
    results = []
    for key, value in saved.metrics.items():
        metric_type, pretty, args = metric_spec(key)
        results.append(
            EvalResult(
                task_type=task,
                task_name=task.replace("-", " ").capitalize(),
                dataset_type=dataset_type,
                dataset_name=saved.dataset_name,
                dataset_split=split,
                metric_type=metric_type,
                metric_name=f"{pretty} ({split})" if split else pretty,
                metric_value=value,
                # model-index has no interval field: the point estimate stays the value, and the
                # interval goes into the free-form metric arguments (not metric_config, which
                # would make it another metric)
                metric_args=_with_interval(args, saved.intervals.get(key)),
            )
        )
    return results


def _with_interval(args: dict[str, Any] | None, iv: dict[str, Any] | None) -> dict[str, Any] | None:
    if not iv:
        return args
    return {**(args or {}), "confidence_interval": [iv["low"], iv["high"]], "confidence_level": iv.get("confidence", 0.95),
            "interval_method": iv.get("method"), "n_resamples": iv.get("n_resamples"), "n_examples": iv.get("n")}


def _interval_text(iv: dict[str, Any] | None) -> str:
    return f"{_fmt(iv['low'])} – {_fmt(iv['high'])}" if iv else ""


def card_data(saved: SavedModel, repo_id: str, *, license: str | None = None, tags: list[str] | None = None):
    """The card's metadata as a ``ModelCardData``."""
    from huggingface_hub import ModelCardData

    results = eval_results(saved)
    metric_ids: list[str] = []
    for r in results:
        # `metrics:` names evaluation metrics (hf.co/metrics); the loss stays in model-index only
        if r.metric_type not in metric_ids and r.metric_type not in ("loss", "ece"):
            metric_ids.append(r.metric_type)
    all_tags = ["tlhub", "transfer-learning", saved.library_name, saved.pipeline_tag, *(tags or [])]
    if saved.record.strategy:
        all_tags.append(f"tlhub-{_slug(saved.record.strategy)}")
    return ModelCardData(
        base_model=saved.base_model,
        datasets=saved.datasets or None,
        library_name=saved.library_name,
        pipeline_tag=saved.pipeline_tag,
        license=(license or saved.license or "unknown").lower(),
        tags=[t for t in all_tags if t],
        metrics=metric_ids or None,
        model_name=repo_id.split("/")[-1],
        eval_results=results or None,
    )


def build_model_card(
    model_dir: str | Path | SavedModel,
    repo_id: str,
    *,
    space_id: str | None = None,
    endpoint: str | None = None,
    license: str | None = None,
    tags: list[str] | None = None,
) -> "ModelCard":
    """The model card (``README.md``) for ``model_dir`` published as ``repo_id``.

    The metadata is a ``ModelCardData``; the body is ``templates/modelcard.md`` rendered by
    ``ModelCard.from_template`` with the values of :func:`card_values`.
    """
    from huggingface_hub import ModelCard

    saved = model_dir if isinstance(model_dir, SavedModel) else read_saved_model(model_dir)
    if not REPO_ID_RE.match(repo_id):
        raise PublishError(f"{repo_id!r} is not a Hub repo id", fix="use USER/NAME, e.g. alice/lite0-fashion")
    data = card_data(saved, repo_id, license=license, tags=tags)
    values = card_values(saved, repo_id, space_id=space_id, endpoint=endpoint)
    return ModelCard.from_template(data, template_path=str(MODELCARD_TEMPLATE), **values)


def write_model_card(model_dir: str | Path, repo_id: str, **kwargs) -> Path:
    """Write the card as ``model_dir/README.md`` (what ``tlhub push`` uploads) and return its path."""
    card = build_model_card(model_dir, repo_id, **kwargs)
    problems = validate_card(str(card), model_dir=model_dir)
    if problems:
        raise PublishError("the generated model card is invalid: " + "; ".join(problems), fix="report this as a tlhub bug")
    path = Path(model_dir) / "README.md"
    card.save(path)
    return path


# -- body ------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) < 1e-3 or abs(value) >= 1e5:
            return f"{value:.3g}"
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.2f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def _cell(value: Any) -> str:
    return _fmt(value).replace("|", "\\|").replace("\n", " ")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "custom"


def _space_url(space_id: str, endpoint: str | None) -> str:
    base = (endpoint or "https://huggingface.co").rstrip("/")
    return f"{base}/spaces/{space_id}"


def _table(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """A table for the template: its header and its rows, every cell already formatted."""
    return {"columns": [_cell(c) for c in columns], "rows": [[_cell(v) for v in row] for row in rows]}


def card_values(saved: SavedModel, repo_id: str, *, space_id: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
    """What ``templates/modelcard.md`` shows, computed from the saved files (numbers as saved)."""
    from tlhub.adapters.registry import get_adapter

    record = saved.record
    labels = saved.labels
    hub = (endpoint or "https://huggingface.co").rstrip("/")
    kind = {"image-classification": "image classifier", "text-classification": "text classifier",
            "audio-classification": "audio classifier"}.get(saved.pipeline_tag or "", "classifier")
    n_eval = saved.num_eval_examples
    head = saved.headline
    headline = None
    if head:
        key, value = head
        iv = saved.intervals.get(key)
        headline = {"name": metric_spec(key)[1].lower(), "value": _fmt(value) + (f" (95% CI {_interval_text(iv)})" if iv else ""),
                    "where": f"{saved.dataset_name} {saved.eval_split}" if saved.eval_split else saved.dataset_name}

    # -- evaluation
    if saved.intervals:
        level = f"{next(iter(saved.intervals.values())).get('confidence', 0.95):.0%} CI"
        metrics = _table(["metric", "value", level], [[metric_spec(k)[1], v, _interval_text(saved.intervals.get(k))] for k, v in saved.metrics.items()])
    else:
        metrics = _table(["metric", "value"], [[metric_spec(k)[1], v] for k, v in saved.metrics.items()]) if saved.metrics else None
    per_class = saved.per_class
    per_class_table = None
    if per_class:
        preferred = ["precision", "recall", "f1", "support"]
        extra = [k for k in per_class[0] if k not in preferred and k != "label"]
        columns = [c for c in preferred if any(c in r for r in per_class)] + extra
        per_class_table = _table(["class", *columns], [[r.get("label"), *[r.get(c, "") for c in columns]] for r in per_class])
    images = [{"path": image, "caption": IMAGE_CAPTIONS.get(Path(image).name, Path(image).stem.replace("_", " ").capitalize())}
              for image in saved.images]

    # -- training
    config = record.config
    facts: list[list[Any]] = []
    for label, value in (
        ("strategy", record.strategy),
        ("epochs run", record.epochs_run),
        ("batch size", config.get("batch_size")),
        ("gradient accumulation steps", config.get("gradient_accumulation_steps") if config.get("gradient_accumulation_steps", 1) != 1 else None),
        ("label smoothing", config.get("label_smoothing")),
        ("gradient clipping (max norm)", config.get("clip_grad")),
        ("seed", record.seed),
        ("mixed precision", record.mixed_precision),
        ("frozen feature pass precision", record.feature_precision),
        ("processes", record.num_processes),
        ("best epoch", record.best_epoch),
        ("selected by", record.selected_by),
        ("best validation accuracy", record.best_validation_accuracy),
        ("best validation loss", record.best_validation_loss),
    ):
        if value is not None and value != "":
            facts.append([label, value])
    weights = record.class_weights
    if weights:
        why = f"auto: train imbalance {_fmt(weights.get('imbalance_ratio'))}:1, threshold {_fmt(weights.get('threshold'))}:1" if weights.get("mode") == "auto" else "as configured"
        facts.append(["class weights", f"{weights.get('applied')} ({why})"])
    revision = f" @ `{record.base_model_revision[:12]}`" if record.base_model and record.base_model_revision else ""
    facts.append(["base model", saved.base_model_display + revision])
    facts.append(["classes", len(labels)])
    facts.append(["data", saved.dataset_name])
    for split, size in saved.split_sizes.items():
        facts.append([f"{split} examples", f"{size:,}"])
    stages = None
    if saved.stages:
        columns = []
        for stage in saved.stages:
            for k, v in stage.items():
                if k not in columns and not isinstance(v, dict):
                    columns.append(k)
        stages = _table(columns, [[s.get(c, "") for c in columns] for s in saved.stages])
    preprocessing = []
    for k, v in record.preprocessing.to_dict().items():
        if k in ("modality", "extra") or (isinstance(v, str) and Path(v).is_absolute()):
            continue  # a tokenizer's local folder is not for the card: it is saved with the model
        preprocessing.append(f"{k} ({_fmt(v)})" if isinstance(v, (list, tuple)) else f"{k} {_fmt(v)}")
    log = saved.log or []
    log_table = None
    if log:
        columns = []
        for row in log:
            for k, v in row.items():
                if k not in columns and k not in ("stage_epoch", "samples_per_second") and isinstance(v, (int, float, str)) and len(columns) < 9:
                    columns.append(k)
        log_table = _table(columns, [[row.get(c, "") for c in columns] for row in log[-LOG_ROWS:]])

    # -- data checks (the pre-flight's counts): readers see that leakage was looked for
    data_checks = None
    checks = record.data_checks or {}
    if checks.get("counts") is not None:
        rows = [[kind.replace("_", " "), count] for kind, count in checks["counts"].items()]
        if weights and weights.get("weights"):
            weight_table = _table(["class", "loss weight"], [[label, w] for label, w in weights["weights"].items()])
        else:
            weight_table = None
        data_checks = {"table": _table(["finding", "count"], rows), "checks": ", ".join(c.replace("_", " ") for c in checks.get("checks", [])),
                       "imbalance": _fmt(checks["imbalance_ratio"]) if checks.get("imbalance_ratio") is not None else None,
                       "threshold": _fmt(checks.get("imbalance_threshold")), "weights_table": weight_table}

    # -- limitations, derived from the numbers
    n_train = saved.split_sizes.get("train")
    weakest = None
    if per_class:
        key = "recall" if "recall" in per_class[0] else ("f1" if "f1" in per_class[0] else None)
        if key:
            worst = sorted((r for r in per_class if isinstance(r.get(key), (int, float))), key=lambda r: r[key])[:2]
            if worst:
                weakest = {"by": key, "classes": ", ".join(f"`{r['label']}` ({_fmt(r[key])})" for r in worst)}
    confusion = None
    cm, cm_labels = saved.confusion_matrix, saved.cm_labels
    if cm:
        best = None
        for i, row in enumerate(cm):
            for j, count in enumerate(row):
                if i != j and count and (best is None or count > best[0]):
                    best = (count, i, j)
        if best and best[1] < len(cm_labels) and best[2] < len(cm_labels):
            confusion = {"true": cm_labels[best[1]], "predicted": cm_labels[best[2]], "count": best[0]}

    # -- usage
    try:
        snippet = get_adapter(saved.adapter_name).native_load_snippet(repo_id)
    except Exception:  # the adapter's plugin is not installed here: the tlhub snippet still works
        snippet = None
    example = "photo.jpg" if saved.modality == "image" else "Some text to classify."

    # -- repeated runs (--repeats K): every seed's result, so one lucky seed is not the whole story
    repeats = None
    rep = record.repeats
    if rep and rep.get("runs"):
        split = rep["runs"][0].get("test", {}).get("split", "test")
        rows = [[r.get("seed"), r.get("best_validation_accuracy"), (r.get("test") or {}).get("metrics", {}).get("accuracy"),
                 "kept" if r.get("seed") == rep.get("kept_seed") else ""] for r in rep["runs"]]
        acc = (rep.get("summary") or {}).get("accuracy") or {}
        mean_sd = (f"{split} accuracy mean {acc['mean']:.3f} ± {acc['sd']:.3f} (sample sd) over {len(rows)} seeds"
                   if isinstance(acc.get("mean"), (int, float)) and isinstance(acc.get("sd"), (int, float)) else None)
        repeats = {"table": _table(["seed", "validation accuracy", f"{split} accuracy", ""], rows), "mean_sd": mean_sd,
                   "k": len(rows), "kept_seed": rep.get("kept_seed"), "why": rep.get("kept_because")}

    # -- stage 2's evidence: which layers the head reads, and what loads where
    layers = None
    ev = record.layers
    if ev and ev.get("groups"):
        rows = [[g["index"], f"`{g['name']}`", g.get("width"), _fmt(g["cv_accuracy"]) if g.get("cv_accuracy") is not None else "",
                 "read by the head" if g["index"] in (ev.get("chosen") or []) else ""] for g in ev["groups"]]
        layers = {"table": _table(["group", "name", "width", f"accuracy alone ({ev.get('scored_by', '')})", ""], rows),
                  "selection": ev.get("selection"), "unfreeze": ev.get("unfreeze_reason") or None,
                  "chosen": ", ".join(f"{i} (`{n}`)" for i, n in zip(ev.get("chosen") or [], ev.get("chosen_names") or []))}
    layer_head = None
    if record.layer_head:
        layer_head = {"layers": ", ".join(map(str, record.layer_head.get("layers") or [])), "library": saved.library_name or "its library"}

    # -- stage 1's evidence (--backbone auto): the candidates tlhub select ranked
    selection = None
    sel = record.selection
    if sel and sel.get("candidates"):
        rows = []
        for c in sorted(sel["candidates"], key=lambda c: (c.get("rank") is None, c.get("rank") or 0)):
            if c.get("cv_accuracy") is None:
                rows.append(["", f"`{c['backbone']}`", f"skipped: {c.get('skipped')}", "", ""])
            else:
                rows.append([c["rank"], f"`{c['backbone']}`", f"{c['cv_accuracy']:.4f} ± {c['cv_sd']:.4f}", f"{c['logme']:.4f}", c.get("feature_dim")])
        selection = {"summary": sel.get("summary"), "table": _table(["rank", "backbone", f"{sel.get('folds')}-fold probe accuracy", "LogME", "features"], rows)}

    # -- --recipe auto: every setting it chose, and why
    recipe = None
    rec = record.recipe
    if rec and rec.get("decisions"):
        rows = [[f"`{name}`", f"`{d.get('value')}`", d.get("reason", "")] for name, d in rec["decisions"].items()]
        timing = f"planned {rec.get('planned_s', 0):.0f} s of a {rec.get('budget_s', 0):.0f} s budget"
        replanned = (rec.get("measured") or {}).get("replanned_s")
        if replanned is not None:
            timing += f", re-planned to {replanned:.0f} s at the fine-tune's measured pace"
        if rec.get("actual_s") is not None:
            timing += f"; training and evaluation took {rec['actual_s']:.0f} s"
        recipe = {"table": _table(["setting", "value", "why"], rows), "timing": timing}

    resolved_config = None
    if config:
        import yaml

        resolved_config = yaml.safe_dump(config, sort_keys=False).strip()
    return {
        "title": repo_id.split("/")[-1],
        "article": "An" if kind[0] in "aeiou" else "A",
        "kind": kind,
        "num_classes": len(labels),
        "base_link": f"[`{saved.base_model}`]({hub}/{saved.base_model})" if saved.base_model else saved.base_model_display,
        "dataset_name": saved.dataset_name,
        "library": saved.library_name,
        "headline": headline,
        "num_eval_examples": f"{n_eval:,}" if n_eval else None,
        "space": {"id": space_id, "url": _space_url(space_id, endpoint)} if space_id else None,
        "eval_where": f"the `{saved.eval_split}` split of {saved.dataset_name}" if saved.eval_split else saved.dataset_name,
        "metrics_table": metrics,
        "interval_note": saved.interval_note(),
        "per_class_table": per_class_table,
        "images": images,
        "facts_table": _table(["", ""], facts),
        "stages_table": stages,
        "preprocessing": ", ".join(preprocessing),
        "log_table": log_table,
        "data_checks": data_checks,
        "log_rows": len(log),
        "log_shown": LOG_ROWS if len(log) > LOG_ROWS else None,
        "class_list": ", ".join(f"`{label}`" for label in labels[:30]),
        "more_classes": len(labels) - 30 if len(labels) > 30 else 0,
        "n_train": f"{n_train:,}" if n_train else None,
        "per_class_avg": f"{n_train / max(len(labels), 1):,.0f}" if n_train else None,
        "weakest": weakest,
        "confusion": confusion,
        "native_snippet": snippet,
        "repo_id": repo_id,
        "repo_literal": repr(repo_id),  # Python literals for the snippet
        "example_literal": repr(example),
        "cli_example": example if example.endswith(".jpg") else repr(example),
        "files": {"record": RECORD_FILE, "eval": EVAL_FILE if saved.evaluation else None, "log": LOG_FILE if saved.log else None,
                  "images": IMAGES_DIR if saved.images else None, "examples": EXAMPLES_DIR if saved.examples else None},
        "versions": ", ".join(f"{k} {v}" for k, v in record.versions.items()),
        "resolved_config": resolved_config,
        "repeats": repeats,
        "layers": layers,
        "layer_head": layer_head,
        "selection": selection,
        "recipe": recipe,
    }


# --------------------------------------------------------------------------------------------
# local validation (ModelCard.validate needs the Hub)


def validate_card(text: str, *, model_dir: str | Path | None = None, repo_type: str = "model") -> list[str]:
    """Problems with a card's front matter and links, checked offline. Empty list = valid.

    Checks what the Hub's validator checks for tlhub's cards: the YAML block parses to a mapping,
    ``license``/``pipeline_tag``/``library_name`` are well-formed, ``model-index`` has the
    structure the Hub expects (name, results with task/dataset/metrics, numeric values) and
    round-trips through ``ModelCardData``; with ``model_dir`` also that every image link points
    at a file that will be pushed.
    """
    import yaml
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    problems: list[str] = []
    match = REGEX_YAML_BLOCK.search(text)
    if not match:
        return ["no YAML front matter (--- ... ---) at the top"]
    try:
        meta = yaml.safe_load(match.group(2))
    except yaml.YAMLError as exc:
        return [f"front matter is not valid YAML: {exc}"]
    if not isinstance(meta, dict):
        return ["front matter is not a mapping"]
    if repo_type == "space":
        for key in ("title", "sdk", "app_file"):
            if not meta.get(key):
                problems.append(f"Space front matter lacks {key!r}")
        if meta.get("sdk") not in (None, "gradio", "streamlit", "docker", "static"):
            problems.append(f"unknown sdk {meta.get('sdk')!r}")
        if meta.get("short_description") and len(str(meta["short_description"])) > 60:
            problems.append("short_description is longer than 60 characters")
        for color in ("colorFrom", "colorTo"):
            if meta.get(color) and meta[color] not in ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"):
                problems.append(f"{color} must be one of red, yellow, green, blue, indigo, purple, pink, gray")
        for repo in meta.get("models") or []:
            if not REPO_ID_RE.match(str(repo)):
                problems.append(f"models: {repo!r} is not a repo id")
    license = meta.get("license")
    if license is not None and str(license) not in KNOWN_LICENSES:
        problems.append(f"license {license!r} is not a Hub licence id")
    if repo_type == "model":
        if meta.get("pipeline_tag") and meta["pipeline_tag"] not in KNOWN_PIPELINE_TAGS:
            problems.append(f"pipeline_tag {meta['pipeline_tag']!r} is not a known classification task")
        if meta.get("library_name") is not None and not re.match(r"^[a-z0-9][a-z0-9_.-]*$", str(meta["library_name"])):
            problems.append(f"library_name {meta['library_name']!r} is malformed")
        bases = meta.get("base_model")
        for base in bases if isinstance(bases, list) else ([bases] if bases else []):
            if not REPO_ID_RE.match(str(base)):
                problems.append(f"base_model {base!r} is not a Hub model id")
        for ds in meta.get("datasets") or []:
            if not HUB_ID_RE.match(str(ds)):
                problems.append(f"datasets: {ds!r} is not a Hub dataset id")
        tags = meta.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            problems.append("tags must be a list of strings")
        index = meta.get("model-index")
        if index is not None:
            problems.extend(_check_model_index(index))
            if not problems:
                from huggingface_hub import ModelCardData

                try:
                    ModelCardData(**meta)
                except (ValueError, TypeError) as exc:
                    problems.append(f"model-index does not parse: {exc}")
    if model_dir is not None:
        root = Path(model_dir)
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text[match.end() :]):
            if "://" not in target and not (root / target).is_file():
                problems.append(f"image link {target} points at no file in {root}")
    return problems


def _check_model_index(index: Any) -> list[str]:
    problems = []
    if not isinstance(index, list) or not index:
        return ["model-index must be a non-empty list"]
    for entry in index:
        if not isinstance(entry, dict) or not entry.get("name"):
            problems.append("each model-index entry needs a name")
            continue
        for result in entry.get("results") or []:
            task = result.get("task") or {}
            dataset = result.get("dataset") or {}
            if not task.get("type"):
                problems.append("a model-index result lacks task.type")
            if not dataset.get("type") or not dataset.get("name"):
                problems.append("a model-index result lacks dataset.type or dataset.name")
            metrics = result.get("metrics")
            if not isinstance(metrics, list) or not metrics:
                problems.append("a model-index result has no metrics")
                continue
            for metric in metrics:
                if not metric.get("type"):
                    problems.append("a model-index metric lacks its type")
                if not isinstance(metric.get("value"), (int, float)) or isinstance(metric.get("value"), bool):
                    problems.append(f"metric {metric.get('type')!r} has a non-numeric value {metric.get('value')!r}")
    return problems
