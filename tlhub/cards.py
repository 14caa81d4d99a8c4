"""Model cards for saved tlhub models, built with huggingface_hub's ``ModelCard``/``ModelCardData``.

Everything in a card is read from the saved-model folder (see :mod:`tlhub.saving`), never retyped:

- metadata (YAML front matter): ``base_model``, ``datasets``, ``library_name``, ``pipeline_tag``,
  ``license``, ``tags``, ``metrics`` and the evaluation results as ``model-index`` (through
  ``ModelCardData(eval_results=[EvalResult(...)])``), so the Hub shows them as structured data;
- body: what was trained and how (strategy, stages, epochs, learning rates, seed from
  ``tlhub.json``), the held-out metrics and per-class table (``eval_results.json``), the training
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

from tlhub.errors import PublishError
from tlhub.saving import EVAL_FILE, EXAMPLES_DIR, IMAGES_DIR, LOG_FILE, RECORD_FILE, load_json, load_record

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

#: rows of the training log shown in the card (all of them are in training_log.json)
LOG_ROWS = 12
#: captions for the images tlhub writes
IMAGE_CAPTIONS = {
    "confusion_matrix.png": "Confusion matrix on the held-out split",
    "training_curves.png": "Training curves (loss and validation metrics per epoch)",
}


def metric_spec(key: str) -> tuple[str, str, dict[str, Any] | None]:
    """``(metric_type, pretty_name, metric_args)`` for an ``eval_results.json`` metric key."""
    spec = _METRICS.get(key.lower())
    if spec:
        return spec
    return key.lower(), key.replace("_", " ").capitalize(), None


# --------------------------------------------------------------------------------------------
# reading a saved model


@dataclass
class SavedModel:
    """A saved tlhub model folder, read once: the record, the evaluation, the log, the images."""

    path: Path
    record: dict[str, Any]
    evaluation: dict[str, Any] | None = None
    log: list[dict[str, Any]] | None = None
    images: list[str] = field(default_factory=list)  # repo-relative posix paths
    examples: list[str] = field(default_factory=list)

    # -- plain fields of the record ---------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return [str(x) for x in self.record.get("labels") or []]

    @property
    def library_name(self) -> str | None:
        return self.record.get("library_name")

    @property
    def pipeline_tag(self) -> str | None:
        return self.record.get("pipeline_tag")

    @property
    def adapter_name(self) -> str | None:
        return self.record.get("adapter")

    @property
    def base_model(self) -> str | None:
        """The backbone it was fine-tuned from, when that is a Hub id (not a local folder)."""
        base = self.record.get("base_model")
        if isinstance(base, str) and base.startswith("hf-hub:"):
            base = base[len("hf-hub:") :]
        if isinstance(base, str) and REPO_ID_RE.match(base) and not Path(base).expanduser().exists():
            return base
        return None

    @property
    def base_model_display(self) -> str:
        base = self.record.get("base_model") or "an unknown backbone"
        return str(base)

    @property
    def short_name(self) -> str:
        """``tf_efficientnet_lite0.in1k`` for ``tlhub-offline/tf_efficientnet_lite0.in1k``."""
        return self.base_model_display.rstrip("/").split("/")[-1]

    # -- data -------------------------------------------------------------------------------
    @property
    def data(self) -> dict[str, Any]:
        """The record's description of the data (``{"name", "splits": {split: size}, ...}``)."""
        for key in ("dataset", "data"):
            data = self.record.get(key)
            if isinstance(data, dict):
                return data
        return {}

    @property
    def split_sizes(self) -> dict[str, int]:
        splits = self.data.get("splits")
        if isinstance(splits, dict):
            return {str(k): int(v) for k, v in splits.items() if isinstance(v, int) and not isinstance(v, bool)}
        return {}

    @property
    def datasets(self) -> list[str]:
        """Hub dataset ids the model was trained/evaluated on (local folders are left out)."""
        found: list[str] = []
        candidates: list[Any] = []
        for source in (self.record, self.data):
            for key in ("datasets", "dataset", "dataset_id", "hub_id"):
                value = source.get(key)
                candidates.extend(value if isinstance(value, (list, tuple)) else [value])
        for part in ("train", "validation", "test"):
            value = self.data.get(part)
            if isinstance(value, dict):
                candidates.extend(value.get(k) for k in ("dataset", "dataset_id", "hub_id"))
        if self.evaluation:
            candidates.extend(self.evaluation.get(k) for k in ("dataset_id", "dataset"))
        config = self.record.get("config")
        if isinstance(config, dict):
            candidates.append(config.get("data"))
        for value in candidates:
            if isinstance(value, dict):
                value = value.get("id") or value.get("name")
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
        """A human name for the evaluation data (``fashion-mnist``), from the saved files."""
        ev = self.evaluation or {}
        config = self.record.get("config") if isinstance(self.record.get("config"), dict) else {}
        for source, keys in ((ev, ("dataset_name", "dataset")), (self.data, ("dataset_name", "dataset", "name", "source")),
                             (self.record, ("dataset_name", "dataset")), (config, ("data",))):
            for key in keys:
                value = source.get(key)
                if isinstance(value, dict):
                    value = value.get("name") or value.get("id")
                if isinstance(value, str) and value:
                    builtin = _builtin_info(value)
                    if builtin is not None:
                        return str(builtin.get("pretty_name") or builtin.get("name") or value)
                    return Path(value).name if not _looks_like_hub_id(value) else value
        if self.datasets:
            return self.datasets[0]
        return "held-out data"

    @property
    def eval_split(self) -> str | None:
        ev = self.evaluation or {}
        split = ev.get("split") or self.data.get("eval_split") or self.data.get("test_split")
        return str(split) if split else None

    # -- evaluation -------------------------------------------------------------------------
    @property
    def metrics(self) -> dict[str, float]:
        """Numeric held-out metrics from ``eval_results.json``, exactly as saved."""
        ev = self.evaluation or {}
        raw = ev.get("metrics")
        if not isinstance(raw, dict):
            raw = {k: v for k, v in ev.items() if k not in ("per_class", "confusion_matrix", "labels")}
        out = {}
        for key, value in raw.items():
            if key in _NOT_METRICS or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                out[key] = value
        return out

    @property
    def num_eval_examples(self) -> int | None:
        ev = self.evaluation or {}
        for source in (ev, ev.get("metrics") if isinstance(ev.get("metrics"), dict) else {}):
            for key in ("num_examples", "n", "num_samples", "samples"):
                if isinstance(source.get(key), int):
                    return source[key]
        cm = self.confusion_matrix
        if cm:
            return int(sum(sum(row) for row in cm))
        return None

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
        rows: list[dict[str, Any]] = []
        if isinstance(raw, dict):
            for label, stats in raw.items():
                rows.append({"label": label, **(stats if isinstance(stats, dict) else {"value": stats})})
        elif isinstance(raw, list):
            for i, stats in enumerate(raw):
                if isinstance(stats, dict):
                    row = dict(stats)
                    row.setdefault("label", row.pop("class", None) or (self.labels[i] if i < len(self.labels) else str(i)))
                    rows.append(row)
        for row in rows:
            if "f1" not in row and "f1-score" in row:
                row["f1"] = row.pop("f1-score")
        return rows

    @property
    def confusion_matrix(self) -> list[list[int]] | None:
        cm = (self.evaluation or {}).get("confusion_matrix")
        if isinstance(cm, dict):  # {"labels": [...], "matrix": [[...]]}
            cm = cm.get("matrix") or cm.get("values")
        if isinstance(cm, list) and cm and all(isinstance(r, list) for r in cm):
            return cm
        return None

    @property
    def cm_labels(self) -> list[str]:
        ev = self.evaluation or {}
        cm = ev.get("confusion_matrix")
        if isinstance(cm, dict) and cm.get("labels"):
            return [str(x) for x in cm["labels"]]
        return [str(x) for x in ev.get("labels") or self.labels]

    # -- training ---------------------------------------------------------------------------
    @property
    def stages(self) -> list[dict[str, Any]]:
        for source in (self.record, self.record.get("training") or {}, self.record.get("config") or {}):
            stages = source.get("stages") if isinstance(source, dict) else None
            if isinstance(stages, list) and stages:
                return [s if isinstance(s, dict) else {"stage": s} for s in stages]
        return []

    def training_value(self, *keys: str) -> Any:
        """First of ``keys`` found in the record, its ``training`` section or its resolved config."""
        for source in (self.record, self.record.get("training") or {}, self.record.get("config") or {}):
            if not isinstance(source, dict):
                continue
            for key in keys:
                if source.get(key) not in (None, "", [], {}):
                    return source[key]
        return None

    @property
    def license(self) -> str | None:
        return _license_for(self)


def _builtin_info(name: Any) -> dict[str, Any] | None:
    """tlhub's description of a built-in dataset (its Hub twin, pretty name), if ``name`` is one."""
    if not isinstance(name, str):
        return None
    try:
        from tlhub.builtin_data import BUILTIN_INFO, resolve_builtin

        canonical = resolve_builtin(name)
    except Exception:
        return None
    return BUILTIN_INFO.get(canonical) if canonical else None


def _looks_like_hub_id(value: str) -> bool:
    return bool(HUB_ID_RE.match(value)) and not value.startswith((".", "~")) and not Path(value).expanduser().exists()


def read_saved_model(model_dir: str | Path) -> SavedModel:
    """Read ``model_dir`` (a folder written by :func:`tlhub.saving.save_model`)."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise PublishError(f"model folder {path} does not exist", fix="give the output folder of `tlhub train`")
    try:
        record = load_record(path)
    except Exception as exc:  # TlhubError with its own fix
        raise PublishError(getattr(exc, "message", str(exc)), fix=getattr(exc, "fix", None)) from None
    try:
        evaluation = load_json(path, EVAL_FILE)
        log = load_json(path, LOG_FILE)
    except json.JSONDecodeError as exc:
        raise PublishError(f"{path} holds a corrupt JSON file: {exc}", fix="re-run `tlhub evaluate` (or the training) to rewrite it") from None
    if isinstance(log, dict):  # {"epochs": [...]} or {"rows": [...]}
        log = log.get("epochs") or log.get("rows") or log.get("history")
    images = sorted(p.relative_to(path).as_posix() for p in (path / IMAGES_DIR).glob("*") if p.is_file() and not p.name.startswith("."))
    examples = sorted(p.relative_to(path).as_posix() for p in (path / EXAMPLES_DIR).rglob("*") if p.is_file() and not p.name.startswith("."))
    return SavedModel(path=path, record=record, evaluation=evaluation if isinstance(evaluation, dict) else None,
                      log=log if isinstance(log, list) else None, images=images, examples=examples)


def _license_for(saved: SavedModel) -> str | None:
    """The licence: the record's, else the backbone's (its config, the offline asset, its cached card)."""
    config = saved.record.get("config")
    lic = saved.record.get("license") or (config.get("license") if isinstance(config, dict) else None)
    if lic:
        return str(lic).lower()
    config = load_json(saved.path, "config.json") or {}
    pcfg = config.get("pretrained_cfg") if isinstance(config, dict) else None
    if isinstance(pcfg, dict) and pcfg.get("license"):
        return str(pcfg["license"]).lower()
    base = saved.base_model
    if base:
        try:
            from tlhub.assets import get_asset

            asset = get_asset(base)
            if asset is not None and getattr(asset, "licence", None):
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
                metric_args=args,
            )
        )
    return results


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
    strategy = saved.training_value("strategy")
    if isinstance(strategy, str):
        all_tags.append(f"tlhub-{_slug(strategy)}")
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
    """The model card (``README.md``) for ``model_dir`` published as ``repo_id``."""
    from huggingface_hub import ModelCard

    saved = model_dir if isinstance(model_dir, SavedModel) else read_saved_model(model_dir)
    if not REPO_ID_RE.match(repo_id):
        raise PublishError(f"{repo_id!r} is not a Hub repo id", fix="use USER/NAME, e.g. alice/lite0-fashion")
    data = card_data(saved, repo_id, license=license, tags=tags)
    body = _body(saved, repo_id, space_id=space_id, endpoint=endpoint)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
    return card


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


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "|".join("---" for _ in columns) + "|\n"
    return head + "".join("| " + " | ".join(_cell(v) for v in row) + " |\n" for row in rows)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "custom"


def _space_url(space_id: str, endpoint: str | None) -> str:
    base = (endpoint or "https://huggingface.co").rstrip("/")
    return f"{base}/spaces/{space_id}"


def _body(saved: SavedModel, repo_id: str, *, space_id: str | None, endpoint: str | None) -> str:
    from tlhub.adapters.registry import get_adapter

    labels = saved.labels
    out: list[str] = []
    name = repo_id.split("/")[-1]
    out.append(f"\n# {name}\n")
    hub = (endpoint or "https://huggingface.co").rstrip("/")
    base_link = f"[`{saved.base_model}`]({hub}/{saved.base_model})" if saved.base_model else f"`{saved.base_model_display}`"
    kind = {"image-classification": "image classifier", "text-classification": "text classifier",
            "audio-classification": "audio classifier"}.get(saved.pipeline_tag or "", "classifier")
    article = "An" if kind[0] in "aeiou" else "A"
    out.append(
        f"{article} {kind} for {len(labels)} classes, fine-tuned from {base_link} on **{saved.dataset_name}** "
        f"with [tlhub](https://github.com/tlhub/tlhub) (`{saved.library_name}` backbone)."
    )
    head = saved.headline
    if head:
        key, value = head
        where = f"{saved.dataset_name} {saved.eval_split}".strip() if saved.eval_split else saved.dataset_name
        n = saved.num_eval_examples
        out.append(f"It reaches **{metric_spec(key)[1].lower()} {_fmt(value)}** on {where}" + (f" ({n:,} examples)." if n else "."))
    out.append("")
    if space_id:
        out.append(f"Try it in the demo Space: [{space_id}]({_space_url(space_id, endpoint)}).\n")

    # -- results
    metrics = saved.metrics
    if metrics:
        out.append("## Evaluation\n")
        where = f"the `{saved.eval_split}` split of {saved.dataset_name}" if saved.eval_split else saved.dataset_name
        n = saved.num_eval_examples
        out.append(f"Measured on {where}" + (f", {n:,} examples" if n else "") + f", never seen during training (from `{EVAL_FILE}`).\n")
        out.append(_table(["metric", "value"], [[metric_spec(k)[1], v] for k, v in metrics.items()]))
    per_class = saved.per_class
    if per_class:
        preferred = ["precision", "recall", "f1", "support"]
        extra = [k for k in per_class[0] if k not in preferred and k != "label"]
        columns = [c for c in preferred if any(c in r for r in per_class)] + extra
        out.append("### Per class\n")
        out.append(_table(["class", *columns], [[r.get("label"), *[r.get(c, "") for c in columns]] for r in per_class]))
    for image in saved.images:
        caption = IMAGE_CAPTIONS.get(Path(image).name, Path(image).stem.replace("_", " ").capitalize())
        out.append(f"![{caption}]({image})\n")

    # -- training
    out.append("## Training\n")
    facts: list[list[Any]] = []
    for label, keys in (
        ("strategy", ("strategy",)),
        ("epochs run", ("epochs_run", "epochs", "num_epochs", "total_epochs")),
        ("batch size", ("batch_size",)),
        ("optimizer", ("optimizer",)),
        ("label smoothing", ("label_smoothing",)),
        ("scheduler", ("scheduler", "lr_scheduler")),
        ("seed", ("seed",)),
        ("mixed precision", ("mixed_precision",)),
        ("processes", ("num_processes",)),
        ("best epoch", ("best_epoch",)),
        ("best validation accuracy", ("best_validation_accuracy",)),
        ("training time (s)", ("duration_s", "train_seconds", "wall_s")),
    ):
        value = saved.training_value(*keys)
        scalar_list = isinstance(value, list) and bool(value) and not any(isinstance(v, (dict, list)) for v in value)
        if value is not None and (not isinstance(value, (dict, list)) or scalar_list):
            facts.append([label, value])
    facts.append(["base model", saved.base_model_display + (f" @ `{saved.record['base_model_revision'][:12]}`" if saved.record.get("base_model_revision") else "")])
    facts.append(["classes", len(labels)])
    facts.append(["data", saved.dataset_name])
    for split, size in saved.split_sizes.items():
        facts.append([f"{split} examples", f"{size:,}"])
    out.append(_table(["", ""], facts))
    stages = saved.stages
    if stages:
        columns: list[str] = []
        for stage in stages:
            for k, v in stage.items():
                if k not in columns and not isinstance(v, dict):
                    columns.append(k)
        out.append("Stages, in order:\n")
        out.append(_table(columns, [[s.get(c, "") for c in columns] for s in stages]))
    prep = saved.record.get("preprocessing") or {}
    if prep:
        shown = [f"{k} ({_fmt(v)})" if isinstance(v, (list, tuple)) else f"{k} {_fmt(v)}" for k, v in prep.items() if k not in ("modality", "extra")]
        out.append("Preprocessing (from the backbone's own config, as used in training): " + ", ".join(shown) + ".\n")
    log = saved.log or []
    if log:
        columns = []
        for row in log:
            for k, v in row.items():
                if k not in columns and k not in ("stage_epoch", "samples_per_second") and isinstance(v, (int, float, str)) and len(columns) < 9:
                    columns.append(k)
        shown = log[-LOG_ROWS:]
        out.append(f"### Training log\n\n{len(log)} epoch rows in `{LOG_FILE}`" + (f" (the last {LOG_ROWS} shown)" if len(log) > LOG_ROWS else "") + ":\n")
        out.append(_table(columns, [[row.get(c, "") for c in columns] for row in shown]))

    # -- limitations
    out.append("## Limitations\n")
    lim: list[str] = []
    n_train = saved.split_sizes.get("train") or _first_int(saved.data, ("train_size", "num_train", "train_examples", "n_train", "train"))
    lim.append(
        f"- Trained to tell apart only these {len(labels)} classes: {', '.join(f'`{l}`' for l in labels[:30])}"
        + (f" and {len(labels) - 30} more" if len(labels) > 30 else "")
        + ". Anything else is forced into one of them."
    )
    if n_train:
        lim.append(f"- Trained on {n_train:,} examples ({n_train / max(len(labels), 1):,.0f} per class on average); a small training set limits how well it generalises.")
    n = saved.num_eval_examples
    if n:
        lim.append(f"- Evaluated on {n:,} examples of {saved.dataset_name}; expect lower scores on data from other sources.")
    if per_class:
        key = "recall" if "recall" in per_class[0] else ("f1" if "f1" in per_class[0] else None)
        if key:
            worst = sorted((r for r in per_class if isinstance(r.get(key), (int, float))), key=lambda r: r[key])[:2]
            if worst:
                lim.append("- Weakest classes by " + key + ": " + ", ".join(f"`{r['label']}` ({_fmt(r[key])})" for r in worst) + ".")
    cm = saved.confusion_matrix
    if cm:
        cm_labels = saved.cm_labels
        best = None
        for i, row in enumerate(cm):
            for j, count in enumerate(row):
                if i != j and count and (best is None or count > best[0]):
                    best = (count, i, j)
        if best and best[1] < len(cm_labels) and best[2] < len(cm_labels):
            lim.append(f"- Most frequent confusion: `{cm_labels[best[1]]}` predicted as `{cm_labels[best[2]]}` ({best[0]} times).")
    out.extend(lim)
    out.append("")

    # -- usage
    out.append("## How to use\n")
    try:
        snippet = get_adapter(saved.adapter_name).native_load_snippet(repo_id) if saved.adapter_name else None
    except Exception:
        snippet = None
    if snippet:
        out.append(f"With {saved.library_name} alone (no tlhub needed):\n\n```python\n{snippet}\n```\n")
    example = "photo.jpg" if (saved.record.get("modality") or "") == "image" else "Some text to classify."
    out.append(
        "With tlhub:\n\n```python\nimport tlhub\n"
        f"predictor = tlhub.Predictor.from_pretrained({repo_id!r})\n"
        f"print(predictor([{example!r}], top_k=3))\n```\n\n"
        f"```bash\ntlhub predict {repo_id} {example if example.endswith('.jpg') else repr(example)} --top-k 3\n```\n"
    )

    # -- provenance
    out.append("## Files and reproducibility\n")
    files = [f"- `{RECORD_FILE}`: the training record (backbone and revision, labels, preprocessing, data, strategy, stages, seed, resolved config, package versions)"]
    if saved.evaluation:
        files.append(f"- `{EVAL_FILE}`: the held-out metrics, per-class table and confusion matrix shown above")
    if saved.log:
        files.append(f"- `{LOG_FILE}`: one row per epoch")
    if saved.images:
        files.append(f"- `{IMAGES_DIR}/`: the plots above")
    if saved.examples:
        files.append(f"- `{EXAMPLES_DIR}/`: a few validation inputs")
    out.append("\n".join(files) + "\n")
    versions = saved.record.get("versions") or {}
    if versions:
        out.append("Trained with " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".\n")
    config = saved.record.get("config")
    if isinstance(config, dict) and config:
        import yaml

        out.append("<details><summary>Resolved training config</summary>\n\n```yaml\n" + yaml.safe_dump(config, sort_keys=False).strip() + "\n```\n\n</details>\n")
    return "\n".join(out)


def _first_int(source: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = source.get(key)
        if isinstance(value, dict):
            value = value.get("size") or value.get("num_examples")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


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
