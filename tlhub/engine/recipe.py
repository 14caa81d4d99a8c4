"""A recipe from the data and a time budget (``--recipe auto --budget 10m``).

    cfg, plan = plan_recipe(cfg, adapter, model, data, elapsed_s=..., say=print)

Each choice is made from evidence on the training split (and the clock), never the test split,
and written down with its reason (``plan.decisions``: the run record and the card show them):

- **input size** (images, unless ``--image-size`` is given): the source images' size decides
  whether there is a choice at all. For images smaller than the backbone's input, every
  candidate size from 64 px up to the backbone's own is scored by the exact leave-one-out
  accuracy of a ridge probe (:func:`tlhub.engine.probe.loo_accuracy`) on the features of a
  class-balanced sample of training images; the smallest size within one standard error of the
  best wins: upscaling 28 px images to 224 px costs about ten times the compute of 64 px and, on
  small data, rarely buys accuracy the probe can see. Such images are not centre-cropped
  (``crop_pct`` 1.0): their borders are part of the object. When that size leaves the budget
  fewer than :data:`WORTH_FINETUNE_EPOCHS` fine-tuning epochs (or not even its feature passes),
  each smaller size is worth its probe score plus :data:`FINETUNE_GAIN` if that many epochs fit
  there (what a fine-tune at the smaller size made up for where it was measured), and the size
  worth most among those that fit the budget is taken.
- **max length** (text, unless ``--max-length`` is given): the 95th percentile of the training
  texts' token counts, rounded up to a multiple of 16.
- **throughput**: one real training step (forward and backward, every parameter trainable) and one
  inference pass are timed at the chosen size, so the plan is in this machine's seconds.
- **strategy and epochs**: what is left of the budget after what has been spent, the feature
  passes of the probe stage (training images twice for images: with their flips), the probe's
  solve and the final evaluation is spent on fine-tuning epochs (lp-ft); when fewer than
  :data:`MIN_FINETUNE_EPOCHS` fit, the run is a probe alone (feature extraction).
- **the pace, checked once**: the timed step is only an estimate (on 2 CPU cores the same step
  timed 0.64-0.96 s in five processes, and a 15-minute plan of 22 epochs at 34.4 s ran them
  at about 22 s: 600 s of its 887). So when the first fine-tuning epoch has run (the end of the
  learning-rate warm-up, before the cosine decay starts) its measured seconds, validation included,
  re-plan the epochs to what is left of the budget (:func:`replan_epochs`), and with them the
  augmentation and averaging their length calls for (from the second epoch on). The pace also
  drifts within a run, so it is checked again at :data:`PACE_CHECKS` of the fine-tune, from the
  epochs since the last check; those checks change the length alone, and the cosine continues
  from where it is.
- **which epoch is kept**: the last (a fixed cosine schedule, no early stopping) when the
  validation split is too small to choose between late epochs (:data:`SELECT_BY_VALIDATION_FROM`),
  else the best by validation loss, with early stopping.
- **augmentation and averaging**: from :data:`AUGMENT_FROM_EPOCHS` epochs on, TrivialAugment
  (Müller and Hutter, ICCV 2021: one policy, nothing to tune) against overfitting a long
  fine-tune; from :data:`EMA_FROM_STEPS` optimizer steps on, an exponential moving average of the
  weights over about the last tenth of the steps. Early stopping's patience grows with the epochs.

A re-run of the same command into the same output folder that resumes its checkpoints follows the
plan it made the first time (remembered under the feature cache's folder): re-measuring would give
other epochs, and the checkpoints would no longer match. Without checkpoints to resume (the folder
deleted, or --no-resume) the plan is made anew.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlhub.errors import ConfigError

#: image sizes tried below the backbone's own (px); the backbone's own size is always a candidate
CANDIDATE_SIZES = (64, 96, 128, 160)
#: training images per class in the size probe's sample, and the sample's cap
SIZE_SAMPLE_PER_CLASS = 30
SIZE_SAMPLE_MAX = 300
#: fewer fine-tuning epochs than this in the budget: a probe alone (feature extraction)
MIN_FINETUNE_EPOCHS = 2
#: fewer fine-tuning epochs than this at the probe's best input size: a smaller size that leaves
#: room for this many is worth its probe score plus FINETUNE_GAIN. Measured on Protocol A's
#: validation split (990 further training images; benchmarks/run.py derive-recipe-size, with the
#: 10-epoch figure from derive-protocol-a): the 300-image leave-one-out scores put
#: 96 px 4.7 points below 224 px (0.810 vs 0.857), yet on validation the 224 px probe reached 0.8697
#: and Lite0 fine-tuned at 96 px passed it after 5 epochs (0.8768) and 10 (0.8899); after 3 epochs
#: (0.8576, its probe kept) it had not yet. The scores rank sizes for a frozen backbone; fine-tuning
#: adapts the backbone to the smaller size, which is what the allowance stands for.
WORTH_FINETUNE_EPOCHS = 5
FINETUNE_GAIN = 0.06
MAX_FINETUNE_EPOCHS = 100
#: fewer validation examples than this: keep the last epoch (a fixed schedule) instead of the epoch
#: with the best validation loss. On Protocol A, --recipe auto --budget 3m (15 epochs at 96 px) kept
#: epoch 7 by the loss on its 100 validation images and stopped early at epoch 12; the same run
#: (same seed and training images) scored on 990 other training-split images reached 0.8778 at
#: epoch 7 and 0.8980 at its last (benchmarks/run.py derive-recipe-size). Protocol A's own recipe
#: keeps its last epoch for the same reason.
SELECT_BY_VALIDATION_FROM = 1000
#: TrivialAugment and a weight average pay only on long fine-tunes. On Protocol A's validation split
#: (benchmarks/run.py derive-recipe-size, derive-protocol-a): 15 epochs at 96 px scored 0.8960 with
#: the light default augmentation and 0.8879 with TrivialAugment and EMA 0.99 (480 steps); the
#: 30-epoch recipe with both (960 steps) 0.8980, 100 epochs 0.9030.
AUGMENT_FROM_EPOCHS = 30
EMA_FROM_STEPS = 900
#: after the first epoch's re-plan, the pace is checked again when these fractions of the fine-tune
#: have run, from the wall time of the epochs since the last check (checkpoints included). On 2 CPU
#: cores the pace drifts within a run: Protocol A at 224 px, --budget 15m, trained epochs 1-8 in
#: 24-26 s each and epochs 9-29 in 20-25 s (22 s typical), so the length the first epoch set left
#: 98 s of the budget unused (802 s of 900).
PACE_CHECKS = (1 / 3, 2 / 3)
#: a training epoch also loads, augments and collates: this much on top of the timed steps
EPOCH_OVERHEAD = 1.15
#: seconds the closed-form probe's solve takes per training example (measured on 2 CPU cores:
#: about 14 s for 2,000 x 1,280 features over 7 strengths)
PROBE_SECONDS_PER_EXAMPLE = 0.007
DEFAULT_BUDGET_S = 600.0


@dataclass
class RecipePlan:
    """What ``--recipe auto`` chose, why, and what it expected to take (the run record's ``recipe``)."""

    budget_s: float
    planned_s: float
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)  # setting -> {"value", "reason"}
    measured: dict[str, Any] = field(default_factory=dict)  # the evidence: sizes scored, step seconds...
    actual_s: float | None = None  # the whole run, filled in when it has finished

    def decide(self, name: str, value: Any, reason: str) -> None:
        self.decisions[name] = {"value": value, "reason": reason}

    def overrides(self) -> dict[str, Any]:
        return {name: d["value"] for name, d in self.decisions.items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RecipePlan":
        return cls(budget_s=float(d["budget_s"]), planned_s=float(d["planned_s"]), decisions=dict(d.get("decisions") or {}),
                   measured=dict(d.get("measured") or {}), actual_s=d.get("actual_s"))

    def summary_lines(self) -> list[str]:
        lines = [f"{name} {d['value']}: {d['reason']}" for name, d in self.decisions.items()]
        lines.append(f"planned {self.planned_s:.0f} s of a {self.budget_s:.0f} s budget"
                     + (f"; re-planned to {self.measured['replanned_s']:.0f} s at the fine-tune's measured pace"
                        if "replanned_s" in self.measured else ""))
        return lines


@dataclass
class _Fit:
    """What the budget holds at one input size."""

    epochs: int  # fine-tuning epochs that fit after the fixed costs
    epoch_s: float
    fixed_s: float  # the probe's feature passes and solve, and the final evaluation
    fits: bool  # the fixed costs alone fit the budget
    where: str  # the arithmetic, for the reasons
    measured: dict[str, Any]


def _memo_path(cfg) -> Path:
    """Where the plan of this command and output folder is remembered (for a resume)."""
    from tlhub.engine.checkpoints import _resume_key
    from tlhub.engine.features import default_cache_dir

    root = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    key = json.dumps({"out": str(Path(cfg.output_dir).resolve()), "config": _resume_key(cfg)}, sort_keys=True, default=str)
    return root.parent / "recipes" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _resumable(cfg) -> bool:
    """Whether this run will resume checkpoints in its output folder: the plan they were made by is
    followed then, and only then (a folder deleted since, or --no-resume, starts a new plan)."""
    from tlhub.engine.checkpoints import STAGING_DIR, Checkpoints

    out = Path(cfg.output_dir)
    # what RunFolder.open resumes from: the latest checkpoint of the folder, or of a run written aside
    folders = (out / "checkpoints", out / STAGING_DIR / "checkpoints")
    return bool(cfg.resume) and any(Checkpoints(folder, accelerator=None).latest() is not None for folder in folders)


def plan_recipe(cfg, adapter, model, data, *, elapsed_s: float, say=print):
    """``(cfg with the plan's settings, RecipePlan)``; ``model`` is set to the chosen input size."""
    from tlhub.engine.config import parse_budget

    budget = parse_budget(cfg.budget) if cfg.budget is not None else DEFAULT_BUDGET_S
    memo = _memo_path(cfg)
    if memo.is_file() and _resumable(cfg):
        try:
            plan = RecipePlan.from_dict(json.loads(memo.read_text(encoding="utf-8")))
            say(f"recipe    the plan this command made for {cfg.output_dir} before ({memo.name}): followed again")
            return cfg.replace(**plan.overrides()), plan
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable: plan again
    planning_started = time.perf_counter()
    plan = RecipePlan(budget_s=budget, planned_s=0.0)
    n_train, n_val = len(data.splits["train"]), len(data.splits.get("validation") or [])
    n_test = len(data.splits["test"]) if "test" in data.splits else 0
    if not n_train:
        raise ConfigError("the training split is empty, so there is nothing to plan a recipe from", fix="check --data")
    if adapter.modality == "image":
        _choose_input_size(cfg, adapter, model, data, plan)
    elif adapter.modality == "text":
        _choose_max_length(cfg, adapter, model, data, plan)
    from tlhub.engine.trainer import _apply_overrides

    def budget_at(size: int | None) -> _Fit:
        """What the budget holds at input ``size`` (None: the size the plan has so far), from timed steps."""
        resolved = cfg.replace(**{**plan.overrides(), **({"image_size": size} if size is not None else {})})
        _apply_overrides(model, resolved)
        step_s, forward_s = time_steps(adapter, model, data, resolved.batch_size)
        flips = 2 if adapter.modality == "image" and resolved.probe_hflip else 1
        fixed = (n_train * flips + n_val + n_test) * forward_s + PROBE_SECONDS_PER_EXAMPLE * n_train * flips
        epoch_s = epoch_seconds(n_train, resolved.batch_size, step_s) + n_val * forward_s
        spent = elapsed_s + (time.perf_counter() - planning_started)  # the size probe and these timings count too
        left = budget - spent - fixed
        where = (f"{budget:.0f} s budget - {spent:.0f} s spent - {fixed:.0f} s for the probe's feature passes, its solve and "
                 f"the final evaluation leaves {max(left, 0):.0f} s; one fine-tuning epoch takes about {epoch_s:.1f} s "
                 f"(a timed training step of {resolved.batch_size}: {step_s:.2f} s)")
        measured = dict(step_seconds=round(step_s, 4), forward_seconds_per_example=round(forward_s, 6),
                        fixed_seconds=round(fixed, 1), evaluation_seconds=round(n_test * forward_s, 1),
                        epoch_seconds=round(epoch_s, 2), spent_before_plan=round(spent, 1))
        return _Fit(epochs=int(max(0.0, left) // epoch_s) if epoch_s > 0 else 0, epoch_s=epoch_s, fixed_s=fixed,
                    fits=left >= 0, where=where, measured=measured)

    fit = budget_at(None)
    if adapter.modality == "image" and fit.epochs < WORTH_FINETUNE_EPOCHS and plan.measured.get("sizes") and "image_size" in plan.decisions:
        fit = _trade_size_for_epochs(plan, budget_at, fit)
    resolved = cfg.replace(**plan.overrides())
    _apply_overrides(model, resolved)
    epochs, epoch_s, fixed, where, measured = fit.epochs, fit.epoch_s, fit.fixed_s, fit.where, fit.measured
    spent = elapsed_s + (time.perf_counter() - planning_started)  # timing the other sizes took time too
    epochs = min(epochs, int(max(0.0, budget - spent - fixed) // epoch_s) if epoch_s > 0 else 0)
    plan.measured.update(measured)
    if epochs < MIN_FINETUNE_EPOCHS:
        plan.decide("strategy", "feature-extraction", f"{where}: room for {epochs} epoch(s), fewer than {MIN_FINETUNE_EPOCHS}, so a probe alone")
        plan.planned_s = spent + fixed
    else:
        epochs = min(epochs, MAX_FINETUNE_EPOCHS)
        plan.decide("strategy", "lp-ft", f"{where}: room to fine-tune after the probe")
        plan.decide("epochs", epochs, f"{where}" + (f"; capped at {MAX_FINETUNE_EPOCHS}" if epochs == MAX_FINETUNE_EPOCHS else ""))
        _decide_by_length(plan, epochs, n_train=n_train, n_val=n_val, batch_size=resolved.batch_size, modality=adapter.modality)
        plan.planned_s = spent + fixed + epochs * epoch_s
    _remember(plan, memo)
    for line in plan.summary_lines():
        say(f"recipe    {line}")
    return cfg.replace(**plan.overrides()), plan


def _decide_by_length(plan: RecipePlan, epochs: int, *, n_train: int, n_val: int, batch_size: int, modality: str) -> None:
    """The settings that follow from the fine-tune's length: augmentation, averaging, which epoch is
    kept and early stopping (a decision the length no longer calls for is withdrawn)."""
    steps = epochs * math.ceil(n_train / batch_size)
    if modality == "image" and epochs >= AUGMENT_FROM_EPOCHS:
        plan.decide("auto_augment", "trivialaugment", f"{epochs} epochs over {n_train:,} images would overfit them: TrivialAugment, "
                    "which has nothing to tune")
    else:
        plan.decisions.pop("auto_augment", None)
    if steps >= EMA_FROM_STEPS:
        decay = float(min(0.9999, max(0.99, round(1 - 10 / steps, 4))))
        plan.decide("ema_decay", decay, f"{steps:,} optimizer steps: a weight average over about the last tenth of them "
                    "generalises better than the last step on small data")
    else:
        plan.decisions.pop("ema_decay", None)
    if n_val < SELECT_BY_VALIDATION_FROM:
        half = 196 * math.sqrt(0.85 * 0.15 / max(n_val, 1))
        plan.decide("select_by", "last", f"{n_val} validation examples measure an accuracy near 0.85 to ±{half:.0f} points (95%), "
                    "more than late epochs differ by: the weights at the end of the cosine schedule are kept")
        plan.decide("early_stopping_patience", None, "the schedule runs to its end (select_by last)")
    else:
        patience = max(5, epochs // 5)
        plan.decide("early_stopping_patience", patience, f"a fifth of the {epochs} epochs (at least 5) without validation improvement")


def _remember(plan: RecipePlan, memo: Path) -> None:
    from tlhub.fileio import write_json_atomic

    try:
        # atomically (the folder made as needed): every process of a multi-process run writes the same plan here, and a resume
        # must never read half of one
        write_json_atomic(memo, plan.to_dict())
    except OSError:
        pass  # a plan that cannot be remembered is re-made by a resume; nothing else depends on it


def replan_epochs(plan: RecipePlan, cfg, data, *, epochs_done: int, epoch_s: float, elapsed_s: float, length_only: bool = False):
    """``cfg`` (the run's configuration before the plan) with the plan's settings, the fine-tune's
    epochs re-planned to what fits the budget at the pace of the epochs that ran (``epoch_s``
    seconds each, validation included), ``elapsed_s`` into the run; ``plan`` (and the plan a
    resume follows) now says so.

    Called first at the end of the fine-tune's first epoch: the learning rate has warmed up and its
    cosine decay has not started, so a new length changes no step already taken, and the settings
    that follow from the length are decided again. Calling it again there (with a corrected
    ``epoch_s``) re-plans from the same first plan. Later calls (``length_only``, at
    :data:`PACE_CHECKS`) change the length alone, never to fewer than one more epoch: the cosine
    continues from where it is over the new length, and the augmentation and averaging the first
    check chose stay (switching them mid-run is not what was measured)."""
    if "epochs" not in plan.decisions or epoch_s <= 0:
        return cfg.replace(**plan.overrides())
    # the plan before any re-planning (this may be called again with a corrected pace)
    first = plan.measured.setdefault("planned_epochs", dict(plan.decisions["epochs"]))
    planned = int(first["value"])
    evaluation_s = float(plan.measured.get("evaluation_seconds", 0.0))
    left = plan.budget_s - elapsed_s - evaluation_s
    fit = epochs_done + int(max(0.0, left) // epoch_s)
    epochs = int(min(MAX_FINETUNE_EPOCHS, max(epochs_done + 1 if length_only else epochs_done, fit)))
    capped = "; capped" if epochs == MAX_FINETUNE_EPOCHS else ""
    if length_only:
        check = {"epochs": epochs_done, "seconds_each": round(epoch_s, 2), "elapsed": round(elapsed_s, 1),
                 "epochs_before": int(plan.decisions["epochs"]["value"]), "epochs_after": epochs}
        plan.measured.setdefault("pace_checks", []).append(check)
        base = plan.decisions["epochs"]["reason"].split("; checked again")[0]  # the first check's reason, said once
        reason = (f"{base}; checked again after {epochs_done} epochs: the latest ran at {epoch_s:.1f} s each, so of the "
                  f"{max(left, 0):.0f} s left {epochs - epochs_done} more " + ("fit" if fit >= epochs else "(at least one, for the decay)")
                  + capped)
    else:
        plan.measured["first_epochs"] = {"epochs": epochs_done, "seconds_each": round(epoch_s, 2),
                                         "planned_seconds_each": plan.measured.get("epoch_seconds"), "elapsed": round(elapsed_s, 1)}
        reason = (f"{first['reason']}; re-planned after {epochs_done} epoch(s): they ran at {epoch_s:.1f} s each (validation "
                  f"included), so of the {max(left, 0):.0f} s the budget had left before the final evaluation ({evaluation_s:.0f} s), "
                  f"{epochs - epochs_done} more fit" + capped + f" ({planned} planned)")
    changed = epochs != int(plan.decisions["epochs"]["value"])
    if changed:
        plan.decide("epochs", epochs, reason)
        if not length_only:
            resolved = cfg.replace(**plan.overrides())
            _decide_by_length(plan, epochs, n_train=len(data.splits["train"]), n_val=len(data.splits.get("validation") or []),
                              batch_size=resolved.batch_size, modality=data.modality)
    if changed or "replanned_s" in plan.measured:
        # planned_s stays the plan made before training (the card's planned against actual); the
        # re-planned time follows the latest pace even when it kept the epochs (a corrected ask)
        plan.measured["replanned_s"] = round(elapsed_s + (epochs - epochs_done) * epoch_s + evaluation_s, 1)
    _remember(plan, _memo_path(cfg))
    return cfg.replace(**plan.overrides())


def _trade_size_for_epochs(plan: RecipePlan, budget_at, at_chosen: _Fit) -> _Fit:
    """The probe's best input size leaves (almost) no fine-tuning, or not even its own feature passes,
    in the budget: weigh each smaller size's probe score against what fine-tuning would add there.

    A size's worth is its leave-one-out probe score, plus :data:`FINETUNE_GAIN` where at least
    :data:`WORTH_FINETUNE_EPOCHS` fine-tuning epochs fit; sizes whose fixed costs alone overrun the
    budget are ruled out while any size fits. The best worth wins (the larger size on a tie)."""
    sizes = {int(k): v["loo_accuracy"] for k, v in plan.measured["sizes"].items()}
    chosen = int(plan.decisions["image_size"]["value"])
    fits = {chosen: at_chosen}
    for size in sorted((s for s in sizes if s < chosen), reverse=True):
        fits[size] = budget_at(size)
    worth = {s: sizes[s] + (FINETUNE_GAIN if f.epochs >= WORTH_FINETUNE_EPOCHS else 0.0) for s, f in fits.items()}
    feasible = [s for s, f in fits.items() if f.fits] or [min(fits)]
    best = max(feasible, key=lambda s: (worth[s], s))
    plan.measured["size_worth"] = {str(s): {"probe": round(sizes[s], 4), "finetune_epochs": fits[s].epochs, "fits": fits[s].fits,
                                            "worth": round(worth[s], 4)} for s in sorted(fits)}
    if best != chosen:
        f = fits[chosen]
        why = (f"its feature passes and evaluation alone ({f.fixed_s:.0f} s) overrun the budget" if not f.fits
               else f"only {f.epochs} fine-tuning epoch(s) fit there")
        table = ", ".join(f"{s} px {sizes[s]:.3f}{' + ' + format(FINETUNE_GAIN, '.2f') if worth[s] > sizes[s] else ''}"
                          + ("" if fits[s].fits else " (over budget)") for s in sorted(fits))
        plan.decide("image_size", best, f"{plan.decisions['image_size']['reason']}; but at {chosen} px {why}. Probe score, plus "
                    f"{FINETUNE_GAIN:.2f} where {WORTH_FINETUNE_EPOCHS}+ fine-tuning epochs fit (fine-tuning adapts the backbone to "
                    f"the smaller size; measured on Protocol A's validation split): {table}; {best} px scores best")
    return fits[best]


def _sample_rows(labels, per_class: int, cap: int) -> list[int]:
    seen: dict[int, int] = {}
    rows = []
    for i, y in enumerate(labels):
        if seen.get(y, 0) < per_class:
            seen[y] = seen.get(y, 0) + 1
            rows.append(i)
        if len(rows) >= cap:
            break
    return rows


def _choose_input_size(cfg, adapter, model, data, plan: RecipePlan) -> None:
    import torch

    from tlhub.engine.probe import loo_accuracy, within_one_standard_error

    native = adapter.preprocessing(model).input_size
    if cfg.image_size is not None or not native:
        return
    native_px = int(min(native[-2:]))
    train = data.splits["train"]
    labels = list(train["label"])
    rows = _sample_rows(labels, SIZE_SAMPLE_PER_CLASS, SIZE_SAMPLE_MAX)
    images = [adapter.decode_input(train[i]["input"]) for i in rows]
    source_px = int(np.median([min(getattr(im, "size", (native_px, native_px))) for im in images]))
    plan.measured["source_px"] = source_px
    if source_px >= native_px:
        plan.measured["sizes"] = {}
        return  # the images are at least the backbone's size: its own preprocessing
    y = np.asarray([labels[i] for i in rows])
    sizes = sorted({s for s in CANDIDATE_SIZES if s < native_px} | {native_px})
    scores: dict[int, float] = {}
    costs: dict[int, float] = {}
    model.eval()
    for size in sizes:
        model.set_input_size(size, 1.0)
        collate = adapter.make_collate(model, train=False)
        feats = []
        clock = time.perf_counter()
        with torch.inference_mode():
            for k in range(0, len(images), 64):
                feats.append(model.forward_features(collate(images[k : k + 64])).float().numpy())
        costs[size] = (time.perf_counter() - clock) / len(images)
        scores[size] = loo_accuracy(np.concatenate(feats), y)[0]
    chosen, best, se = within_one_standard_error(scores, len(y))
    plan.measured["sizes"] = {str(s): {"loo_accuracy": round(scores[s], 4), "ms_per_image": round(1000 * costs[s], 2)} for s in sizes}
    table = ", ".join(f"{s} px {scores[s]:.3f}" for s in sizes)
    plan.decide("image_size", chosen, f"source images {source_px} px, the backbone's {native_px} px; leave-one-out probe accuracy on "
                f"{len(y)} training images: {table}; {chosen} px is the smallest within one standard error ({se:.3f}) of the best "
                f"({best} px), at {costs[chosen] / costs[best]:.2f}x its cost per image")
    if cfg.crop_pct is None:
        plan.decide("crop_pct", 1.0, f"{source_px} px images are smaller than the input: no centre crop, their borders are part of them")


def _choose_max_length(cfg, adapter, model, data, plan: RecipePlan) -> None:
    if cfg.max_length is not None:
        return
    train = data.splits["train"]
    rows = list(range(min(len(train), 500)))
    texts = [adapter.decode_input(train[i]["input"]) for i in rows]
    batch = adapter.make_collate(model, train=False)(texts)
    mask = batch.get("attention_mask")
    if mask is None:
        return
    counts = mask.sum(1).numpy()
    limit = int(getattr(model, "max_length", 0) or counts.max())
    p95 = int(np.percentile(counts, 95))
    chosen = int(min(limit, max(16, 16 * math.ceil(p95 / 16))))
    plan.measured["token_counts"] = {"p50": int(np.median(counts)), "p95": p95, "max": int(counts.max()), "limit": limit}
    plan.decide("max_length", chosen, f"95% of {len(rows)} training texts have at most {p95} tokens (of the encoder's {limit}); "
                "rounded up to a multiple of 16")


def epoch_seconds(n_train: int, batch_size: int, step_s: float) -> float:
    """Seconds of one fine-tuning epoch over ``n_train`` examples from a timed step of ``batch_size``
    (loading, augmenting and collating on top: :data:`EPOCH_OVERHEAD`); validation not included."""
    return EPOCH_OVERHEAD * math.ceil(n_train / batch_size) * step_s


def time_steps(adapter, model, data, batch_size: int, *, examples: int | None = None, warmup: int = 2,
               timed: int = 3) -> tuple[float, float]:
    """(seconds of one training step of ``batch_size``, seconds of inference per example), measured
    on real training inputs; the model's weights, statistics and the random generators are left as they were.

    ``warmup`` untimed steps, then the median of ``timed`` ones. ``examples``: time steps of this
    many examples (default ``batch_size``) and scale to ``batch_size``: a rougher but cheaper
    estimate (``tlhub select`` uses 8: five steps of 32 sentences through all-mpnet-base-v2 took
    34 s, most of the selector's time for that candidate)."""
    import torch
    import torch.nn.functional as F

    train = data.splits["train"]
    n = min(examples or batch_size, batch_size, len(train))
    # reading, decoding and collating are part of every pass too (at 224 px they cost as much as
    # a small backbone's forward): timed once on the same examples
    clock = time.perf_counter()
    inputs = [adapter.decode_input(train[i]["input"]) for i in range(n)]
    labels = torch.as_tensor([int(train[i]["label"]) for i in range(n)])
    collate = adapter.make_collate(model, train=False)
    batch = collate(inputs)
    # on the model's device: tlhub select times a model its feature loop may have moved to a GPU
    from tlhub.engine.evaluation import _model_device, _to_device

    device = _model_device(model)
    batch, labels = _to_device(batch, device), labels.to(device)
    prepare_s = (time.perf_counter() - clock) / n
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    grads = {k: p.requires_grad for k, p in model.named_parameters()}
    was_training = model.training
    try:
        with torch.random.fork_rng():
            model.freeze_backbone("all")
            model.train()
            times = []
            # The first steps at a new input size pay for allocation and kernel set-up: at 224 px
            # on 2 cores they took 1.75, 1.33, then 0.91 s, and a median over those three planned
            # 55.6 s epochs that ran in 31 s (a 15-minute plan of 879 s ran in 581 s). So two
            # warm-up steps, then the median of three.
            for _ in range(warmup + max(1, timed)):
                clock = time.perf_counter()
                loss = F.cross_entropy(model(batch), labels)
                loss.backward()
                times.append(time.perf_counter() - clock)
                model.zero_grad(set_to_none=True)
            scale = min(batch_size, len(train)) / n  # steps of fewer examples than a batch
            step_s = (float(np.median(times[warmup:])) + prepare_s * n) * scale
            model.eval()
            with torch.inference_mode():
                model.forward_features(batch)
                clock = time.perf_counter()
                model.forward_features(batch)
                forward_s = (time.perf_counter() - clock) / n + prepare_s
    finally:
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
        for k, p in model.named_parameters():
            p.requires_grad_(grads[k])
        model.train(was_training)
    return step_s, forward_s
