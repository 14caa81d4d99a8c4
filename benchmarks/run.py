"""tlhub's quality and speed benchmarks, printed as one table.

    python benchmarks/run.py                    # everything (several hours on 2 CPU cores)
    python benchmarks/run.py epoch-cost probe-cache
    python benchmarks/run.py gpu                # GPU throughput against shared/ANCHORS.md

Sections:
  quality-lpft   Protocol A (Fashion-MNIST, 100 images per class, 10k test, 96 px): the lp-ft recipe
  quality-probe  Protocol A, feature extraction (linear probe on cached features)
  baseline-random  Protocol A, the same lp-ft recipe from random initialisation (same budget)
  quality-text   Protocol B (VADER movie snippets, 1,000 training sentences, 2,000 test): MiniLM
  epoch-cost     one fine-tuning epoch through tlhub vs a plain PyTorch/timm loop, same model,
                 data, batch size and threads, alternating, median of N
  probe-cache    a 10-epoch linear probe: backbone recomputed every epoch vs feature cache
                 (cold, then warm)
  gpu            training/inference throughput on data already on the GPU (needs CUDA)
  doctor         the data doctor on Fashion-MNIST (100 per class + the 10k test images) with planted
                 defects: precision/recall per detector, wall time against one feature pass
  imbalance      a 10:1 skewed Fashion-MNIST subset: balanced accuracy, class_weights auto vs none
  layers         features from several layers: Protocol A and B probes on the last layer vs the
                 layers chosen on the training split; cost against the default lp-ft fine-tune;
                 the all-layer feature pass against the last-layer one; per-layer PNGs
  layers-text    the Protocol B half of layers
  layers-unfreeze  Protocol A lp-ft with unfreeze auto (the per-layer evidence) against fixed choices
  derive-protocol-a  Protocol A's recipe chosen on validation only (990 training-split images; the
                 test split not loaded): the candidates of DERIVE_A, one table
  derive-protocol-b  the same for Protocol B's learning rate and epochs (DERIVE_B)
  derive-recipe-size  a probe alone at 96/160/224 px against short fine-tunes at 96 px, on
                 validation: the evidence for --recipe auto's size-for-epochs trade (DERIVE_SIZE)
  derive-recipe-long  what a 15-minute budget holds at 224 px against 96 px, on validation (DERIVE_LONG)
  stats-cost     what honest numbers cost: the bootstrap on 10,000 examples; `compare` of two
                 models against evaluating each
  norm-eval      BatchNorm statistics frozen while fine-tuning vs updated (digits; MobileNetV2),
                 on validation: the evidence for the default
  select         tlhub select against fine-tuning every candidate (Kendall tau, top pick, cost)
  select-image   its Protocol A half alone (select.json keeps the text half's last figures)
  select-text    its Protocol B half alone (about 20 minutes: it fine-tunes all-mpnet-base-v2)
  recipe         --recipe auto on Protocol A (3m), B (5m) and sklearn digits (5m)
  recipe-long    --recipe auto --budget 15m on Protocol A
  recipe-default-digits  the fixed default on the digits

Quality rows (quality-*, baseline-random) run TLHUB_BENCH_SEEDS seeds (default 3) through tlhub's
own --repeats and report mean ± sd, every seed, and one run's 95% bootstrap interval.

TLHUB_BENCH_QUICK=1 runs the doctor and imbalance sections on a tiny subset (a check that they run).

Results go to benchmarks/results/<section>.json and the table is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROWS: list[tuple[str, str, str, str]] = []  # (section, what, value, target)


def row(section: str, what: str, value: str, target: str = "") -> None:
    ROWS.append((section, what, value, target))
    print(f"  {what}: {value}" + (f"  (target {target})" if target else ""), flush=True)


def save(section: str, data: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{section}.json").write_text(json.dumps(data, indent=2, default=str))


# -- quality --------------------------------------------------------------------------------------
#: seeds per quality row (issue 14: one score on small data is a noisy number). Each seed is a whole
#: run (`repeats`): its own validation draw, initialisation and batch order; the training rows are
#: fixed by the protocol.
SEEDS = int(os.environ.get("TLHUB_BENCH_SEEDS", "3"))


def quality_lpft(work: Path) -> None:
    _repeated(work, "quality-lpft", "Fashion-MNIST, Protocol A", "lp-ft (configs/fmnist-protocol-a.yaml)",
              HERE / "configs" / "fmnist-protocol-a.yaml", {}, ">= 0.88")


def quality_probe(work: Path) -> None:
    _repeated(work, "quality-probe", "Fashion-MNIST, Protocol A", "feature-extraction (last-layer probe)",
              HERE / "configs" / "fmnist-protocol-a.yaml", dict(strategy="feature-extraction"), ">= 0.84")


def baseline_random(work: Path) -> None:
    _repeated(work, "baseline-random", "Fashion-MNIST, Protocol A", "the same lp-ft recipe from random initialisation",
              HERE / "configs" / "fmnist-protocol-a.yaml", dict(pretrained=False), "far below")


def quality_text(work: Path) -> None:
    _repeated(work, "quality-text", "VADER movies, Protocol B", "MiniLM lp-ft (configs/vader-protocol-b.yaml)",
              HERE / "configs" / "vader-protocol-b.yaml", {}, ">= 0.78")


def _repeated(work: Path, section: str, label: str, what: str, config: Path, overrides: dict, target: str) -> None:
    """``SEEDS`` runs of one config (tlhub's own ``repeats``): mean ± sd of the test accuracy over
    the seeds, every seed's figure, and the 95% bootstrap interval of the first seed's run."""
    import tlhub

    r = tlhub.train(config, output_dir=str(work / section), repeats=SEEDS, **overrides)
    runs = r.runs if SEEDS > 1 else [{"seed": 0, "test": {"metrics": r.metrics, "intervals": {k: v.to_dict() for k, v in r.eval.intervals.items()}}}]
    accs = [x["test"]["metrics"]["accuracy"] for x in runs]
    first = runs[0]["test"]["intervals"]["accuracy"]
    sd = statistics.stdev(accs) if len(accs) > 1 else float("nan")
    per_seed = r.seconds / len(runs)
    save(section, {"what": what, "seeds": [x["seed"] for x in runs], "accuracy": accs, "mean": statistics.fmean(accs), "sd": sd,
                   "first_seed_interval": [first["low"], first["high"]], "seconds_per_seed": per_seed,
                   "validation_accuracy": [x.get("best_validation_accuracy") for x in runs]})
    row(label, f"{what}: test accuracy, mean ± sd over {len(runs)} seeds (each seed) [95% bootstrap CI of seed {runs[0]['seed']}]",
        f"{statistics.fmean(accs):.4f} ± {sd:.4f} ({', '.join(f'{a:.4f}' for a in accs)}) [{first['low']:.4f}, {first['high']:.4f}], "
        f"{per_seed:.0f} s per seed", target)


# -- what honest numbers cost (issue 14) -------------------------------------------------------------
def stats_cost(work: Path, repeats: int = 2) -> None:
    """The bootstrap's share of an evaluation of 10,000 examples, and ``compare`` of two saved
    models on the 10,000 Fashion-MNIST test images against evaluating each of them (alternating,
    median of ``repeats``)."""
    import numpy as np

    import tlhub
    from tlhub.engine.compare import compare_models
    from tlhub.engine.stats import metric_intervals

    label = "Honest numbers: cost"
    rng = np.random.default_rng(0)
    refs = rng.integers(0, 10, 10_000)
    preds = np.where(rng.random(10_000) < 0.85, refs, rng.integers(0, 10, 10_000))  # an 85%-accurate classifier
    boot = []
    for _ in range(5):
        t = time.perf_counter()
        metric_intervals(preds, refs, 10)
        boot.append(time.perf_counter() - t)
    row(label, "bootstrap intervals of every metric, 10,000 examples (median of 5)", f"{statistics.median(boot):.2f} s", "<= 2 s")

    # two real models (Protocol A probes on the last layer and on all layers); their training never reads the test split
    models = []
    for name, layers in (("probe-last", "last"), ("probe-all", "all")):
        r = tlhub.train(**PROTOCOL_A, strategy="feature-extraction", feature_layers=layers, test_split=None, output_dir=str(work / f"stats-{name}"))
        models.append(str(r.model_dir))
    times: dict[str, list[float]] = {"evaluate both": [], "compare": []}
    for _ in range(repeats):
        t = time.perf_counter()
        for m in models:
            tlhub.evaluate(m, split="test", progress=False)
        times["evaluate both"].append(time.perf_counter() - t)
        t = time.perf_counter()
        comparison = compare_models(models, split="test", progress=False)
        times["compare"].append(time.perf_counter() - t)
    ev, cmp = statistics.median(times["evaluate both"]), statistics.median(times["compare"])
    row(label, f"tlhub compare of 2 models on 10,000 test images / evaluating each (median of {repeats})",
        f"{cmp / ev:.2f}x ({cmp:.1f} s / {ev:.1f} s)", "<= 1.2x")
    save("stats-cost", {"bootstrap_s": boot, "evaluate_both_s": times["evaluate both"], "compare_s": times["compare"],
                        "ratio": cmp / ev, "comparison": comparison.to_dict()})
    print(comparison.table())


# -- choosing the Protocol A recipe on validation (issue 14) ------------------------------------------
#: The candidates. Each is trained on Protocol A's 1,000 training images with seed 0 and scored on
#: 990 further training-split images (99 per class, validation_fraction 0.99); the test split is
#: not loaded at all (test_split None). The winner goes into configs/fmnist-protocol-a.yaml.
#: Candidates without norm_eval name norm_eval=False: they were measured when it was the default,
#: and the config they override now sets it.
#: tlhub's light default fine-tune, on top of the Protocol A config (which sets the small-data recipe)
_LIGHT = dict(auto_augment=None, random_erasing=0.0, ema_decay=None, select_by="val_loss", early_stopping_patience=5)
DERIVE_A = {
    "lp-ft default (10 epochs, light augmentation, best epoch by val loss)": dict(epochs=10, **_LIGHT, norm_eval=False),
    "lp-ft default + norm_eval (BatchNorm statistics frozen)": dict(epochs=10, **_LIGHT, norm_eval=True),
    "small-data recipe, 30 epochs (TrivialAugment, erasing 0.25, EMA 0.999, last epoch)": dict(epochs=30, norm_eval=False),
    "small-data recipe, 30 epochs + norm_eval": dict(epochs=30, norm_eval=True),
    "small-data recipe, 100 epochs + norm_eval": dict(epochs=100, norm_eval=True),
}


#: Protocol B's candidates: the fine-tuning learning rate and length, the values a BERT-style
#: encoder is usually fine-tuned with (Devlin et al. 2019 searched lr 2e-5..5e-5 and 2-4 epochs;
#: a small encoder on 1,000 sentences may want more), scored like DERIVE_A on 990 validation sentences.
DERIVE_B = {
    "lr 1e-4, 4 epochs (the earlier config)": dict(lr=1e-4, epochs=4),
    "lr 3e-5, 4 epochs": dict(lr=3e-5, epochs=4),
    "lr 3e-4, 4 epochs": dict(lr=3e-4, epochs=4),
    "lr 1e-4, 8 epochs": dict(lr=1e-4, epochs=8),
}


def derive_protocol_b(work: Path) -> None:
    """Protocol B's fine-tuning lr and epochs chosen on validation only (DERIVE_B)."""
    _derive(work, "derive-protocol-b", HERE / "configs" / "vader-protocol-b.yaml", DERIVE_B, "VADER movies, Protocol B")


def norm_eval(work: Path) -> None:
    """BatchNorm statistics frozen while fine-tuning (``norm_eval``) against updated, with tlhub's
    default lp-ft recipe, on data and a backbone other than Protocol A's Lite0 (which
    derive-protocol-a covers): the evidence for the default. Scored on validation; the test splits
    are not loaded."""
    import tlhub

    label = "norm_eval (default lp-ft, validation only)"
    digits = str(_digits_folder(work / "digits"))
    setups = {
        "sklearn digits, Lite0 at 96 px (628 train / 270 validation)": dict(data=digits, image_size=96, crop_pct=1.0, validation_fraction=0.3),
        "Protocol A data, MobileNetV2 (1,000 train / 990 validation)": dict(PROTOCOL_A, backbone="tlhub-offline/mobilenetv2_100.tv_in1k",
                                                                             validation_fraction=0.99),
    }
    out: dict = {}
    for i, (name, kw) in enumerate(setups.items()):
        for frozen in (False, True):
            r = tlhub.train(**{**kw, "seed": 0}, strategy="lp-ft", norm_eval=frozen, test_split=None, output_dir=str(work / f"norm-eval-{i}-{frozen}"))
            if r.eval.split != "validation":
                raise RuntimeError(f"{name}: evaluated on {r.eval.split!r}, expected the validation split")
            ci = r.eval.intervals["accuracy"]
            out[f"{name}, norm_eval {frozen}"] = {"validation_accuracy": r.metrics["accuracy"], "interval": [ci.low, ci.high], "seconds": r.seconds,
                                                  "history": r.history}
            save("norm-eval", out)
            row(label, f"{name}, norm_eval {str(frozen).lower()}: validation accuracy [95% CI]",
                f"{r.metrics['accuracy']:.4f} [{ci.low:.4f}, {ci.high:.4f}] ({r.seconds:.0f} s)")


#: The evidence for --recipe auto's size-for-epochs trade (tlhub.engine.recipe.FINETUNE_GAIN):
#: on Protocol A's validation split, a probe alone at each input size against short lp-ft
#: fine-tunes at 96 px (the default light recipe, BatchNorm statistics frozen).
_LIGHT_NE = dict(_LIGHT, norm_eval=True)
DERIVE_SIZE = {
    "probe alone at 96 px": dict(strategy="feature-extraction", image_size=96),
    "probe alone at 160 px": dict(strategy="feature-extraction", image_size=160),
    "probe alone at 224 px": dict(strategy="feature-extraction", image_size=224),
    "lp-ft at 96 px, 3 epochs": dict(image_size=96, epochs=3, **_LIGHT_NE),
    "lp-ft at 96 px, 5 epochs": dict(image_size=96, epochs=5, **_LIGHT_NE),
    "lp-ft at 96 px, 10 epochs": dict(image_size=96, epochs=10, **_LIGHT_NE),
    "lp-ft at 160 px, 3 epochs": dict(image_size=160, epochs=3, **_LIGHT_NE),
    # and whether 15 epochs (what a 3-minute budget leaves at 96 px) want TrivialAugment and EMA
    # (tlhub.engine.recipe.AUGMENT_FROM_EPOCHS): the light recipe against the one it planned
    "lp-ft at 96 px, 15 epochs": dict(image_size=96, epochs=15, **_LIGHT_NE),
    "lp-ft at 96 px, 15 epochs, TrivialAugment, EMA 0.99": dict(image_size=96, epochs=15, **{**_LIGHT_NE, "auto_augment": "trivialaugment",
                                                                                             "ema_decay": 0.99}),
}


#: What a 15-minute budget holds on Protocol A at the probe's best size and at a small one, each with
#: the settings --recipe auto gives that length (crop 1.0, the last epoch; TrivialAugment from 30
#: epochs, EMA over the last tenth of the steps from 900), scored on 990 validation images. The
#: epochs are what the budget holds at the pace `recipe-long` ran at on this machine (224 px: 22
#: epochs planned at 34.4 s each ran at about 22 s, so 770 s hold 32-35; 96 px: about 10 s an
#: epoch in the 3-minute runs, so 85-90). Measured 2026-12-07, seed 0: 224 px 0.9020 [0.8828, 0.9192]
#: (934 s), 96 px 0.8949 [0.8747, 0.9131] (623 s): the probe's choice of 224 px stands, and what the
#: 15-minute row lacked was epochs (its plan of 22 ran in 600 s of 887: tlhub.engine.recipe.replan_epochs).
_AUTO_LONG = dict(crop_pct=1.0, random_erasing=0.0, select_by="last", early_stopping_patience=None, norm_eval=True,
                  auto_augment="trivialaugment")
DERIVE_LONG = {
    "lp-ft at 224 px, 32 epochs, TrivialAugment, EMA 0.9902 (the probe's best size)": dict(image_size=224, epochs=32, ema_decay=0.9902,
                                                                                            **_AUTO_LONG),
    "lp-ft at 96 px, 85 epochs, TrivialAugment, EMA 0.9963": dict(image_size=96, epochs=85, ema_decay=0.9963, **_AUTO_LONG),
}


#: The fine-tune's peak learning rate for a long run at 224 px, on the same validation split as
#: DERIVE_LONG (whose first candidate, lr 1e-3, is the reference). Why it was asked: the three
#: recipe-long runs (2026-12-07) each lost the probe's validation accuracy in the first fine-tuning
#: epoch at lr 1e-3 (0.88 -> 0.72, 0.82 -> 0.65, 0.84 -> 0.86 on their 100 validation images), and
#: seed 0's training loss jumped from 1.36 to 2.28 at epoch 5 (validation 0.86 -> 0.32), which
#: its remaining 30 epochs did not make up for. Measured 2026-12-07, seed 0, against derive-recipe-long's
#: lr 1e-3 with one warm-up epoch (0.9020 [0.8828, 0.9192], 934 s): lr 3e-4 0.8889 [0.8687, 0.9071]
#: (856 s); lr 1e-3 warmed up over 3 epochs 0.8990 [0.8798, 0.9172] (882 s). Neither beats the
#: reference, so --recipe auto keeps lr 1e-3 and one warm-up epoch (TrainConfig's defaults).
DERIVE_LR = {
    "lp-ft at 224 px, 32 epochs, TrivialAugment, EMA 0.9902, lr 3e-4": dict(image_size=224, epochs=32, ema_decay=0.9902, lr=3e-4,
                                                                            **_AUTO_LONG),
    "lp-ft at 224 px, 32 epochs, TrivialAugment, EMA 0.9902, lr 1e-3, warm-up 3 epochs": dict(image_size=224, epochs=32, ema_decay=0.9902,
                                                                                              warmup_epochs=3.0, **_AUTO_LONG),
}


def derive_recipe_lr(work: Path) -> None:
    """The long fine-tune's peak learning rate (validation only)."""
    _derive(work, "derive-recipe-lr", HERE / "configs" / "fmnist-protocol-a.yaml", DERIVE_LR, "Fashion-MNIST, Protocol A, 15 minutes, lr",
            reference=("derive-recipe-long", next(iter(DERIVE_LONG))))


def derive_recipe_long(work: Path) -> None:
    """Input size against epochs when the budget holds many epochs (validation only)."""
    _derive(work, "derive-recipe-long", HERE / "configs" / "fmnist-protocol-a.yaml", DERIVE_LONG, "Fashion-MNIST, Protocol A, 15 minutes")


def derive_recipe_size(work: Path) -> None:
    """What a probe at a larger input size is worth against fine-tuning at a smaller one (validation only)."""
    _derive(work, "derive-recipe-size", HERE / "configs" / "fmnist-protocol-a.yaml", DERIVE_SIZE, "Fashion-MNIST, Protocol A sizes")


def derive_protocol_a(work: Path) -> None:
    """Protocol A's recipe chosen on validation only: every candidate of DERIVE_A, one table."""
    _derive(work, "derive-protocol-a", HERE / "configs" / "fmnist-protocol-a.yaml", DERIVE_A, "Fashion-MNIST, Protocol A")


def _derive(work: Path, section: str, config: Path, candidates: dict, label: str, reference: tuple[str, str] | None = None) -> None:
    """Each candidate trained and scored on validation; the highest wins. ``reference``: (section,
    candidate) measured by another derive section on the same validation split, in the choice too."""
    import tlhub

    saved = RESULTS / f"{section}.json"
    done = json.loads(saved.read_text()) if saved.is_file() else {}
    out = {}
    if reference is not None:
        other, name = reference
        ref = json.loads((RESULTS / f"{other}.json").read_text())[name]
        out[f"{name} (reference, from {other})"] = ref
        row(label, f"{name} (reference, from {other}): VALIDATION accuracy [95% CI] ({ref['validation_examples']} examples), wall",
            f"{ref['validation_accuracy']:.4f} [{ref['interval'][0]:.4f}, {ref['interval'][1]:.4f}], {ref['seconds']:.0f} s")
    for i, (name, overrides) in enumerate(candidates.items()):
        if done.get(name, {}).get("overrides") == overrides:  # measured by an earlier, interrupted run of the section
            out[name] = done[name]
            row(label, f"{name}: VALIDATION accuracy [95% CI] ({out[name]['validation_examples']} examples), wall (earlier run)",
                f"{out[name]['validation_accuracy']:.4f} [{out[name]['interval'][0]:.4f}, {out[name]['interval'][1]:.4f}], {out[name]['seconds']:.0f} s")
            continue
        r = tlhub.train(config, output_dir=str(work / f"{section}-{i}"), test_split=None, validation_fraction=0.99, **overrides)
        if r.eval.split != "validation":  # the test split must not have been read
            raise RuntimeError(f"{name}: evaluated on {r.eval.split!r}, expected the validation split")
        ci = r.eval.intervals["accuracy"]
        out[name] = {"overrides": overrides, "validation_accuracy": r.metrics["accuracy"], "interval": [ci.low, ci.high],
                     "validation_examples": r.eval.num_samples, "seconds": r.seconds}
        save(section, out)  # after every candidate: a long study killed half-way keeps what it measured
        row(label, f"{name}: VALIDATION accuracy [95% CI] ({r.eval.num_samples} examples), wall",
            f"{r.metrics['accuracy']:.4f} [{ci.low:.4f}, {ci.high:.4f}], {r.seconds:.0f} s")
    best = max(out, key=lambda k: out[k]["validation_accuracy"])
    row(label, "chosen on validation", best)


# -- speed: one fine-tuning epoch --------------------------------------------------------------------
EPOCH = dict(
    backbone="tlhub-offline/tf_efficientnet_lite0.in1k",
    data="fashion-mnist",
    max_train_per_class=50,
    max_eval_samples=50,
    test_split=None,
    image_size=96,
    crop_pct=1.0,
    batch_size=32,
    augment=False,
    label_smoothing=0.0,
    layer_decay=1.0,
    warmup_epochs=0.0,
    drop_rate=0.0,
)


def plain_epoch(data, channels_last: bool = False) -> float:
    """The loop people write by hand: timm model, timm transforms, a DataLoader, AdamW.

    ``channels_last`` as timm's train.py ``--channels-last`` (tlhub's default for images)."""
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config

    from tlhub.core.names import resolve

    source = resolve(EPOCH["backbone"])
    model = timm.create_model(f"local-dir:{source.path}", pretrained=True, num_classes=len(data.labels), drop_rate=0.0)
    cfg = resolve_data_config({}, model=model)
    cfg.update(input_size=(3, EPOCH["image_size"], EPOCH["image_size"]), crop_pct=EPOCH["crop_pct"])
    transform = create_transform(**cfg, is_training=False)

    def to_tensors(batch):
        return {"pixel_values": [transform(img.convert("RGB")) for img in batch["input"]], "labels": batch["label"]}

    train = data.splits["train"].with_transform(to_tensors)
    loader = torch.utils.data.DataLoader(train, batch_size=EPOCH["batch_size"], shuffle=True, generator=torch.Generator().manual_seed(0))
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    for batch in loader:
        loss = criterion(model(batch["pixel_values"].contiguous(memory_format=layout)), batch["labels"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def tlhub_epoch(work: Path, i: int) -> float:
    import tlhub

    result = tlhub.train(**EPOCH, strategy="fine-tune", epochs=1, output_dir=str(work / f"epoch-{i}"), early_stopping_patience=None)
    return result.history[0]["train_seconds"]


def epoch_cost(work: Path, repeats: int = 3) -> None:
    import torch

    from tlhub.data.loading import DataSpec, load_data

    data = load_data(DataSpec(source="fashion-mnist", max_train_per_class=50, max_eval_samples=50, test_split=None), progress=False)
    plain_epoch(data)  # warm-up: first-touch costs (allocator, lazy imports) paid by neither side
    plain, plain_cl, ours = [], [], []
    for i in range(repeats):  # alternate, so drifting machine load hits all sides alike
        plain.append(plain_epoch(data))
        plain_cl.append(plain_epoch(data, channels_last=True))
        ours.append(tlhub_epoch(work, i))
    med = {name: statistics.median(v) for name, v in (("plain", plain), ("plain_cl", plain_cl), ("tlhub", ours))}
    save("epoch-cost", {"plain_seconds": plain, "plain_channels_last_seconds": plain_cl, "tlhub_seconds": ours, "medians": med, "threads": torch.get_num_threads()})
    section = "Fine-tuning epoch (500 images, 96 px, batch 32)"
    row(section, "plain PyTorch/timm loop, median", f"{med['plain']:.1f} s  {[round(x, 1) for x in plain]}")
    row(section, "plain loop with channels_last, median", f"{med['plain_cl']:.1f} s  {[round(x, 1) for x in plain_cl]}")
    row(section, "tlhub (channels_last by default), median", f"{med['tlhub']:.1f} s  {[round(x, 1) for x in ours]}")
    row(section, "tlhub / plain loop, same layout (channels_last)", f"{med['tlhub'] / med['plain_cl']:.3f}x", "<= 1.05x")
    row(section, "tlhub / plain loop as usually written", f"{med['tlhub'] / med['plain']:.3f}x", "<= 1.05x")


# -- speed: linear probe with and without the feature cache -------------------------------------------
PROBE = dict(
    backbone="tlhub-offline/tf_efficientnet_lite0.in1k",
    data="fashion-mnist",
    max_train_per_class=100,
    max_eval_samples=100,
    test_split=None,
    image_size=96,
    crop_pct=1.0,
    strategy="feature-extraction",
    probe_epochs=10,
    probe_hflip=False,  # like for like: the usual way has no flipped second view either
    early_stopping_patience=None,
)


def probe_cache(work: Path) -> None:
    import tlhub

    cache = tempfile.mkdtemp(prefix="tlhub-bench-cache-")
    usual = tlhub.train(**PROBE, feature_cache=False, output_dir=str(work / "probe-usual"))
    cold = tlhub.train(**PROBE, cache_dir=cache, output_dir=str(work / "probe-cold"))
    warm = tlhub.train(**PROBE, cache_dir=cache, output_dir=str(work / "probe-warm"))
    assert warm.feature_cache["train"], "the warm run did not hit the cache"
    t = {name: r.timings["stage:linear-probe"] for name, r in (("usual", usual), ("cold", cold), ("warm", warm))}
    acc = {name: r.metrics["accuracy"] for name, r in (("usual", usual), ("cold", cold), ("warm", warm))}
    save("probe-cache", {"seconds": t, "validation_accuracy": acc})
    section = "10-epoch linear probe (1,000 images, 96 px)"
    row(section, "backbone every epoch (usual way)", f"{t['usual']:.1f} s")
    row(section, "feature cache, cold (features computed once)", f"{t['cold']:.1f} s, {t['usual'] / t['cold']:.1f}x faster", ">= 6x")
    row(section, "feature cache, warm (second run)", f"{t['warm']:.2f} s, {t['usual'] / t['warm']:.0f}x faster", ">= 50x")


# -- GPU throughput ---------------------------------------------------------------------------------
def gpu(work: Path) -> None:
    """Images per second of tlhub's training step vs a raw loop, data already on the GPU."""
    import torch

    import tlhub
    from tlhub.engine.trainer import param_groups
    from tlhub.engine.strategies import Stage

    if not torch.cuda.is_available():
        row("GPU", "skipped", "no CUDA device")
        return
    from accelerate import Accelerator

    results = {}
    for name in ("tlhub-offline/tf_efficientnet_lite0.in1k",):
        accelerator = Accelerator(mixed_precision="bf16")
        model = tlhub.create_model(name, labels=[str(i) for i in range(1000)])
        model.freeze_backbone("all")
        model = model.to(memory_format=torch.channels_last)
        stage = Stage("fine-tune", 1, "all", 1e-3, 0.05, 1.0)
        optimizer = torch.optim.AdamW(param_groups(model, stage), lr=1e-3)
        net, optimizer = accelerator.prepare(model, optimizer)
        x = torch.randn(256, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (256,), device="cuda")
        criterion = torch.nn.CrossEntropyLoss()

        def step():
            loss = criterion(net({"pixel_values": x}), y)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for _ in range(10):
            step()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(30):
            step()
        torch.cuda.synchronize()
        results[name] = 256 * 30 / (time.perf_counter() - start)
        row("GPU (bf16, batch 256, 224 px)", f"{name} train all layers", f"{results[name]:.0f} img/s", ">= 90% of 6,187 (ANCHORS, H200)")
    save("gpu", results)


# -- the data doctor: planted defects -------------------------------------------------------------------
def _quick() -> bool:
    return os.environ.get("TLHUB_BENCH_QUICK") == "1"


def _fmnist_bytes():
    import datasets

    from tlhub.data.builtin import load_builtin

    dsd, _ = load_builtin("fashion-mnist", progress=False)
    return {k: v.cast_column("input", datasets.Image(decode=False)) for k, v in dsd.items()}


def _write_image_folder(root: Path, split: str, items) -> list[Path]:
    """``items``: (label name, file name, bytes) -> root/split/label/file (label '/' made '_')."""
    out = []
    for label, name, data in items:
        path = root / split / label.replace("/", "_") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(path)
    return out


def _planted_fmnist(root: Path, per_class: int, n_test: int, n_plant: int, flip_fraction: float, seed: int = 0,
                    start: int = 0) -> dict:
    """Fashion-MNIST as an image folder with planted defects; returns the ground truth by file name.
    ``start``: skip that many training (and test) images first (a disjoint set to tune the detectors on)."""
    import io
    import random
    import shutil

    from PIL import Image

    from tlhub.data.builtin import FASHION_MNIST_LABELS as names

    src = _fmnist_bytes()
    seen: dict[int, int] = {}
    train = []
    for i, code in enumerate(src["train"]["label"]):  # the first N of each class, in file order (Protocol A)
        if i < start:
            continue
        if seen.get(code, 0) < per_class:
            seen[code] = seen.get(code, 0) + 1
            train.append((names[code], f"{i:05d}.png", src["train"][i]["input"]["bytes"]))
        if len(train) == per_class * len(names):
            break
    test = [(names[c], f"{i:05d}.png", src["test"][i]["input"]["bytes"]) for i, c in enumerate(src["test"]["label"]) if start // 6 <= i < start // 6 + n_test]
    files = _write_image_folder(root, "train", train)
    test_files = _write_image_folder(root, "test", test)
    rng = random.Random(seed)
    n_flip = max(1, round(flip_fraction * len(files)))
    picked = rng.sample(files, n_flip + 2 * n_plant)
    flips, dups, nears = picked[:n_flip], picked[n_flip : n_flip + n_plant], picked[n_flip + n_plant :]
    truth = {"exact": {}, "near": {}, "leak": {}, "flip": set()}
    for p in dups:
        copy = p.with_name("dup_" + p.name)
        shutil.copy(p, copy)
        truth["exact"][copy.name] = p.name
    for p in nears:  # resized and re-compressed
        buf = io.BytesIO()
        Image.open(p).convert("L").resize((36, 36), Image.BICUBIC).save(buf, "JPEG", quality=75)
        copy = p.with_name("near_" + p.stem + ".jpg")
        copy.write_bytes(buf.getvalue())
        truth["near"][copy.name] = p.name
    for p in rng.sample(test_files, n_plant):  # test images copied into train
        copy = root / "train" / p.parent.name / ("leak_" + p.name)
        shutil.copy(p, copy)
        truth["leak"][copy.name] = p.name
    for p in flips:  # moved into another class's folder: the file keeps its name
        other = rng.choice([d for d in (root / "train").iterdir() if d.name != p.parent.name])
        shutil.move(p, other / p.name)
        truth["flip"].add(p.name)
    return truth


def _score(report, truth: dict) -> dict:
    def pair(f):
        return Path(f.file).name if f.file else None, Path(f.other["file"]).name if f.other and f.other.get("file") else None

    def planted_pair(f, table):
        a, b = pair(f)
        return (a in table and table[a] == b) or (b in table and table[b] == a)

    out = {}
    for detector, kinds, table in (("exact duplicates", ("exact_duplicate", "leakage"), truth["exact"]),
                                   ("leakage (test copies in train)", ("leakage",), truth["leak"]),
                                   ("near-duplicates", ("near_duplicate", "near_leakage"), truth["near"])):
        found = [f for f in report.findings if f.kind in kinds]
        if detector == "exact duplicates":  # the train<->test pairs are the leakage detector's
            found = [f for f in found if "test" not in (f.split, f.other.get("split"))]
        elif detector == "leakage (test copies in train)":
            found = [f for f in found if "test" in (f.split, f.other.get("split"))]
        hits = {k for f in found for k in pair(f) if k in table and planted_pair(f, table)}
        tp = sum(planted_pair(f, table) for f in found)
        out[detector] = {"found": len(found), "true": tp, "planted": len(table),
                         "precision": tp / len(found) if found else None, "recall": len(hits) / len(table) if table else None}
    # flipped labels: the ground truth is known in train/validation only (test findings are left out)
    found = [f for f in report.of("label_error") if f.split in ("train", "validation")]
    tp = sum(Path(f.file).name in truth["flip"] for f in found)
    out["flipped labels"] = {"found": len(found), "true": tp, "planted": len(truth["flip"]),
                             "precision": tp / len(found) if found else None, "recall": tp / len(truth["flip"])}
    return out


def doctor(work: Path) -> None:
    from tlhub.core.factory import resolve_backbone
    from tlhub.data.loading import load_data
    from tlhub.engine.config import TrainConfig
    from tlhub.engine.doctor import DoctorReport, _features, diagnose

    quick = _quick()
    per_class, n_test, n_plant = (10, 200, 2) if quick else (100, 10_000, 20)
    root = work / "doctor-data"
    truth = _planted_fmnist(root, per_class, n_test, n_plant, 0.05)
    opts = dict(data=str(root), image_size=96, crop_pct=1.0)
    # warm the process up first (imports, the backbone's first call), so that neither the doctor
    # nor the feature pass it is compared with pays for it; both then start from a cold feature cache
    import torch

    import tlhub

    warm = tlhub.create_model("tlhub-offline/tf_efficientnet_lite0.in1k", labels=["a", "b"]).eval()
    with torch.inference_mode():
        warm({"pixel_values": torch.zeros(8, 3, 96, 96)})
    # and datasets' own cache of the image folder (both sides load the data; whichever ran first
    # would otherwise pay for building it)
    _, warm_adapter = resolve_backbone("tlhub-offline/tf_efficientnet_lite0.in1k")
    load_data(TrainConfig(**opts).data_spec(), modality="image", decode=warm_adapter.decode_input, progress=False)

    def feature_pass() -> float:
        """One feature pass over the same images into a cold cache: data, model and backbone pass."""
        cfg = TrainConfig(**opts, cache_dir=tempfile.mkdtemp(prefix="tlhub-bench-pass-"))
        start = time.perf_counter()
        source, adapter = resolve_backbone(cfg.backbone)
        data = load_data(cfg.data_spec(), modality=adapter.modality, decode=adapter.decode_input, progress=False)
        _features(cfg, source, adapter, data, DoctorReport("", "", {}, []))
        return time.perf_counter() - start

    # a pass before and a pass after the doctor (whatever still warms up in the process favours
    # neither side), the doctor on a cold feature cache in between
    before = feature_pass()
    cache = tempfile.mkdtemp(prefix="tlhub-bench-doctor-")
    start = time.perf_counter()
    cold = diagnose(TrainConfig(**opts, cache_dir=cache), progress=False)
    cold_s = time.perf_counter() - start
    after = feature_pass()
    one_pass = (before + after) / 2
    start = time.perf_counter()
    warm = diagnose(TrainConfig(**opts, cache_dir=cache), progress=False)
    warm_s = time.perf_counter() - start
    scores = _score(cold.report, truth)
    _unplanted_near_duplicates(cold.report, truth)
    save("doctor", {"quick": quick, "scores": scores, "seconds": {"one_feature_pass": one_pass, "passes": [before, after], "doctor_cold": cold_s, "doctor_warm": warm_s},
                    "timings": cold.report.timings, "counts": cold.report.counts, "label_error_method": cold.report.label_error_method})
    section = f"data doctor, Fashion-MNIST {per_class * 10:,} train + {n_test:,} test, planted" + (" (QUICK subset)" if quick else "")
    targets = {"exact duplicates": "R >= 0.95 at P >= 0.9", "leakage (test copies in train)": "R >= 0.95 at P >= 0.9",
               "near-duplicates": "R >= 0.95 at P >= 0.9", "flipped labels": "R >= 0.6 at P >= 0.6"}
    for name, r in scores.items():
        p = "n/a" if r["precision"] is None else f"{r['precision']:.2f}"
        row(section, f"{name}: precision / recall", f"{p} / {r['recall']:.2f} ({r['true']} true of {r['found']} found, {r['planted']} planted)", targets[name])
    row(section, "doctor wall, cold cache / one feature pass (mean of one before, one after)",
        f"{cold_s:.0f} s / {one_pass:.0f} s ({before:.0f}, {after:.0f}) = {cold_s / one_pass:.2f}x", "<= 1.5x")
    row(section, "doctor wall, warm cache", f"{warm_s:.1f} s")


def _unplanted_near_duplicates(report, truth: dict) -> None:
    """Fashion-MNIST holds near-duplicates of its own: the near-duplicate findings that are not
    planted pairs, side by side in one PNG (results/doctor-unplanted-near-duplicates.png), to judge by eye."""
    from PIL import Image

    planted = set(truth["near"].items())
    pairs = [(f.file, f.other["file"]) for f in report.findings if f.kind in ("near_duplicate", "near_leakage")
             and (Path(f.file).name, Path(f.other["file"]).name) not in planted and (Path(f.other["file"]).name, Path(f.file).name) not in planted]
    if not pairs:
        return
    side = 112
    sheet = Image.new("L", (len(pairs) * (2 * side + 24), side), 255)
    for i, (a, b) in enumerate(pairs):
        for j, path in enumerate((a, b)):
            sheet.paste(Image.open(path).convert("L").resize((side, side), Image.NEAREST), (i * (2 * side + 24) + j * side, 0))
    RESULTS.mkdir(exist_ok=True)
    sheet.save(RESULTS / "doctor-unplanted-near-duplicates.png")
    row("data doctor, near-duplicates found that were not planted", f"{len(pairs)} pairs",
        "; ".join(f"{Path(a).parent.parent.name}/{Path(a).name} ~ {Path(b).parent.parent.name}/{Path(b).name}" for a, b in pairs))


def imbalance(work: Path) -> None:
    """Train on a 10:1 skewed subset; balanced accuracy with class_weights auto against none."""
    import tlhub
    from tlhub.data.builtin import FASHION_MNIST_LABELS as names

    quick = _quick()
    big, small, n_test = (30, 3, 200) if quick else (200, 20, 10_000)
    src = _fmnist_bytes()
    root = work / "imbalance-data"
    seen: dict[int, int] = {}
    items = []
    for i, code in enumerate(src["train"]["label"]):
        limit = big if code < 5 else small  # classes 0-4 ten times larger than 5-9
        if seen.get(code, 0) < limit:
            seen[code] = seen.get(code, 0) + 1
            items.append((names[code], f"{i:05d}.png", src["train"][i]["input"]["bytes"]))
        if sum(seen.values()) == 5 * (big + small):
            break
    _write_image_folder(root, "train", items)
    _write_image_folder(root, "test", [(names[c], f"{i:05d}.png", src["test"][i]["input"]["bytes"]) for i, c in enumerate(src["test"]["label"][:n_test])])
    cache = tempfile.mkdtemp(prefix="tlhub-bench-imbalance-")
    out = {}
    for mode in ("none", "auto"):
        result = tlhub.train(data=str(root), image_size=96, crop_pct=1.0, strategy="feature-extraction", class_weights=mode,
                             cache_dir=cache, output_dir=str(work / f"imbalance-{mode}"), **({"probe_epochs": 3} if quick else {}))
        out[mode] = {"balanced_accuracy": result.metrics["balanced_accuracy"], "accuracy": result.metrics["accuracy"], "seconds": result.seconds}
    save("imbalance", {"quick": quick, "per_class": {"large": big, "small": small}, "results": out})
    section = f"imbalance 10:1 ({big}/{small} per class, feature extraction, {n_test:,} test)" + (" (QUICK subset)" if quick else "")
    for mode, r in out.items():
        row(section, f"class_weights {mode}: balanced accuracy (accuracy)", f"{r['balanced_accuracy']:.4f} ({r['accuracy']:.4f})",
            "auto > none" if mode == "auto" else "")


# -- which layers transfer (issue 12) ----------------------------------------------------------------
# Protocol A as in configs/fmnist-protocol-a.yaml, but the fixed default recipe for lp-ft (the
# reference in shared/ANCHORS.md: `tlhub train --data fashion-mnist --max-train-per-class 100
# --image-size 96 --crop-pct 1.0`). How each value was chosen: the protocol's values are fixed by
# it; feature_layers "all" with greedy selection and every probe setting are tlhub's defaults
# (layers chosen by leave-one-out accuracy on the training split; C by 5-fold CV of the training
# split, the validation split having 100 < 1,000 examples). Two defaults were CHOSEN ON HELD-OUT
# TRAINING-SPLIT DATA, never the test split (2026-12-06, ad-hoc scripts described in that day's closing note):
# layer_grid 2 (a head over Lite0's groups 4-7 on 990 further Fashion-MNIST training images:
# 0.8515 with global averages, 0.8667 with 2 x 2 cells) and CV_BELOW_VALIDATION 1,000 (MiniLM on
# 990 further VADER training sentences: C from a 100-sentence validation split 0.7354 +- 0.0317
# over 3 carvings, from 5-fold CV 0.7751 +- 0.0033).
PROTOCOL_A = dict(backbone="tlhub-offline/tf_efficientnet_lite0.in1k", data="fashion-mnist", max_train_per_class=100,
                  image_size=96, crop_pct=1.0, seed=0)


def layers(work: Path) -> None:
    import shutil

    import tlhub

    RESULTS.mkdir(exist_ok=True)
    out: dict = {}
    section = "Protocol A, layers (Lite0, 1,000 images, 10k test)"
    runs = {}
    for name, kw in (("last-layer probe", dict(feature_layers="last")), ("multi-layer probe", dict(feature_layers="all"))):
        cache = tempfile.mkdtemp(prefix="tlhub-bench-cache-")  # cold: the feature pass is part of the cost
        r = tlhub.train(**PROTOCOL_A, strategy="feature-extraction", **kw, cache_dir=cache, output_dir=str(work / name.replace(" ", "_")))
        runs[name] = r
        ci = r.eval.intervals["accuracy"]
        out[name] = {"accuracy": r.metrics["accuracy"], "interval": [ci.low, ci.high], "seconds": r.seconds, "timings": r.timings}
    shutil.copy(runs["multi-layer probe"].model_dir / "images" / "layer_scores.png", RESULTS / "layers-lite0-protocol-a.png")
    lpft = tlhub.train(**PROTOCOL_A, strategy="lp-ft", cache_dir=tempfile.mkdtemp(prefix="tlhub-bench-cache-"), output_dir=str(work / "lpft-default"))
    fine_tune = lpft.timings.get("stage:fine-tune", lpft.seconds)
    out["lp-ft default"] = {"accuracy": lpft.metrics["accuracy"], "seconds": lpft.seconds, "timings": lpft.timings}
    from tlhub.core.record import TrainingRecord

    chosen = TrainingRecord.load(runs["multi-layer probe"].model_dir).layers
    for name, r in runs.items():
        ci = r.eval.intervals["accuracy"]
        row(section, f"{name}: test accuracy [95% bootstrap]", f"{r.metrics['accuracy']:.4f} [{ci.low:.4f}, {ci.high:.4f}] ({r.seconds:.0f} s, feature pass included)",
            ">= 0.86" if name.startswith("multi") else "")
    row(section, "layer groups chosen on the training split", f"{chosen['chosen']} ({chosen['selection']})")
    row(section, "default lp-ft: test accuracy", f"{lpft.metrics['accuracy']:.4f} (fine-tune stage {fine_tune:.0f} s, run {lpft.seconds:.0f} s)")
    # Side by side, each run's own training: its wall time less its test evaluation (the same
    # 10,000 images for both, and no part of either method). The probe's includes its feature
    # passes (a cold cache) and the layer search; lp-ft's includes its own probe stage.
    probe_s = runs["multi-layer probe"].seconds - runs["multi-layer probe"].timings.get("evaluation", 0.0)
    lpft_s = lpft.seconds - lpft.timings.get("evaluation", 0.0)
    ratio = probe_s / lpft_s
    row(section, "multi-layer probe / default lp-ft, training wall time (test evaluation excluded from both)",
        f"{ratio:.2f} ({probe_s:.1f} s / {lpft_s:.1f} s)", "<= 0.20")
    row(section, "the same against lp-ft's fine-tune stage alone", f"{probe_s / fine_tune:.2f} ({probe_s:.1f} s / {fine_tune:.1f} s)")
    out["probe_over_finetune"] = ratio
    out["probe_over_finetune_stage"] = probe_s / fine_tune
    out.update(_layer_pass_cost())
    row(section, "feature pass, all 8 groups / last layer (1,000 images, median of 3)", f"{out['pass_ratio']:.2f}x "
        f"({out['pass_all_s']:.1f} s / {out['pass_last_s']:.1f} s)", "<= 1.3x")

    _layers_text(work, out)
    save("layers", out)


#: Protocol A, lp-ft's fine-tune with the groups ``unfreeze: auto`` recommends against fixed
#: choices; everything else is tlhub's default recipe (10 fine-tuning epochs), so only the groups differ.
UNFREEZE_CHOICES = ("auto", "all", "1", "3")


def layers_unfreeze(work: Path) -> None:
    """Does following the per-layer evidence (``unfreeze: auto``) beat ``all`` and other fixed choices?"""
    import tlhub
    from tlhub.core.record import TrainingRecord

    section = "Protocol A, which groups to fine-tune (Lite0, default lp-ft)"
    out = {}
    for choice in UNFREEZE_CHOICES:
        r = tlhub.train(**PROTOCOL_A, strategy="lp-ft", unfreeze=choice, output_dir=str(work / f"unfreeze-{choice}"))
        record = TrainingRecord.load(r.model_dir)
        ci = r.eval.intervals["accuracy"]
        how = (record.layers or {}).get("unfreeze_reason", "") if choice == "auto" else ""
        out[choice] = {"accuracy": r.metrics["accuracy"], "interval": [ci.low, ci.high], "validation_accuracy": record.best_validation_accuracy,
                       "seconds": r.seconds, "reason": how}
        save("layers-unfreeze", out)
        row(section, f"unfreeze {choice}: validation / test accuracy [95% CI], wall",
            f"{record.best_validation_accuracy:.4f} / {r.metrics['accuracy']:.4f} [{ci.low:.4f}, {ci.high:.4f}], {r.seconds:.0f} s"
            + (f" ({how})" if how else ""))


def layers_text(work: Path) -> None:
    """Protocol B alone (the text half of ``layers``)."""
    out: dict = {}
    _layers_text(work, out)
    save("layers-text", out)


#: Protocol B's training draws: five seeds (each draws its own 1,000 sentences, validation rows
#: and CV folds), the median is the figure. How chosen: five, as in the quality-text section,
#: fixed before these runs; the change from seed 0 alone was made after seeing (2026-12-06) that
#: plain logistic regression on MiniLM's features scores 0.722-0.748 on the test split across
#: four random 1,000-sentence draws: one draw's figure says more about the draw than the method.
PROTOCOL_B_SEEDS = (0, 1, 2, 3, 4)


def _layers_text(work: Path, out: dict) -> None:
    import shutil

    import tlhub
    from tlhub.core.record import TrainingRecord

    section = "Protocol B, layers (MiniLM, 1,000 sentences, 2k test)"
    for name, kw in (("last-layer probe", dict(feature_layers="last")), ("multi-layer probe", dict(feature_layers="all"))):
        runs = []
        for seed in PROTOCOL_B_SEEDS:
            r = tlhub.train(HERE / "configs" / "vader-protocol-b.yaml", strategy="feature-extraction", seed=seed, **kw,
                            cache_dir=tempfile.mkdtemp(prefix="tlhub-bench-cache-"),
                            output_dir=str(work / f"vader-{name.replace(' ', '_')}-seed{seed}"))
            record = TrainingRecord.load(r.model_dir)
            runs.append({"seed": seed, "accuracy": r.metrics["accuracy"], "seconds": r.seconds,
                         "chosen": (record.layers or {}).get("chosen"), "feature_precision": record.feature_precision})
            if name.startswith("multi") and seed == PROTOCOL_B_SEEDS[0]:
                shutil.copy(r.model_dir / "images" / "layer_scores.png", RESULTS / "layers-minilm-protocol-b.png")
        accs = [x["accuracy"] for x in runs]
        median = statistics.median(accs)
        out[f"text {name}"] = {"accuracy": median, "runs": runs, "seconds": statistics.median(x["seconds"] for x in runs)}
        row(section, f"{name}: test accuracy, median of {len(runs)} seeds (min-max)",
            f"{median:.4f} ({min(accs):.4f}-{max(accs):.4f}; seed 0: {accs[0]:.4f}; {runs[0]['feature_precision']} features)",
            ">= 0.76" if name.startswith("multi") else ">= 0.74")
        row(section, f"{name}: each seed", ", ".join(f"{x['seed']}: {x['accuracy']:.4f}" for x in runs)
            + (" (groups " + "; ".join(str(x["chosen"]) for x in runs) + ")" if name.startswith("multi") else ""))


def _layer_pass_cost(repeats: int = 3) -> dict:
    """Seconds of one pass over the 1,000 Protocol A training images: the last layer's features
    against every layer group's (hooks on one forward), alternating, median of ``repeats``."""
    import torch

    import tlhub
    from tlhub.core.factory import resolve_backbone
    from tlhub.data.builtin import load_builtin

    model = tlhub.create_model(PROTOCOL_A["backbone"], labels=[str(i) for i in range(10)]).eval()
    model.set_input_size(96, 1.0)
    model.set_channels_last(True)
    _, adapter = resolve_backbone(PROTOCOL_A["backbone"])
    collate = adapter.make_collate(model)
    data, _ = load_builtin("fashion-mnist", progress=False)
    train = data["train"]
    labels = train["label"][:3000]
    picked = [i for c in range(10) for i in [j for j, y in enumerate(labels) if y == c][:100]]
    batches = [collate([adapter.decode_input(train[i]["input"]) for i in picked[k : k + 128]]) for k in range(0, len(picked), 128)]
    groups = list(range(len(model.layer_groups())))
    times: dict[str, list[float]] = {"last": [], "all": []}
    with torch.inference_mode():
        for _ in range(repeats):
            for kind in ("last", "all"):
                t = time.perf_counter()
                for b in batches:
                    model.forward_features(b) if kind == "last" else model.forward_layer_features(b, groups)
                times[kind].append(time.perf_counter() - t)
    last, every = statistics.median(times["last"]), statistics.median(times["all"])
    return {"pass_last_s": last, "pass_all_s": every, "pass_ratio": every / last}


# -- which backbone (issue 13): the selector against fine-tuning every candidate -------------------
# How each value was chosen: the protocols' values are fixed by them; the candidates are every
# installed offline backbone of the modality; the fine-tuning recipe is tlhub's fixed default
# (lp-ft) for images and configs/vader-protocol-b.yaml for text, the same for every candidate;
# the selector's settings (5 folds, the ridge strength chosen by leave-one-out inside each training
# fold, the fine-tune estimate from one timed step of 8 examples) are its defaults, not tuned on this data.
def select(work: Path, modalities: tuple[str, ...] = ("image", "text")) -> None:
    from scipy.stats import kendalltau

    import tlhub
    from tlhub.engine.config import TrainConfig
    from tlhub.engine.selection import available_backbones, select_backbone

    out: dict = {}
    setups = (("Protocol A (Fashion-MNIST, 1,000 images, 10k test, 96 px)", "image",
               dict(data="fashion-mnist", max_train_per_class=100, image_size=96, crop_pct=1.0, seed=0), None),
              ("Protocol B (VADER movies, 1,000 sentences, 2k test)", "text", None, HERE / "configs" / "vader-protocol-b.yaml"))
    saved = RESULTS / "select.json"
    if saved.is_file():
        out.update(json.loads(saved.read_text()))  # a half not run this time keeps its last figures
    for section, modality, options, config in setups:
        if modality not in modalities:
            continue
        candidates = available_backbones(modality)
        if len(candidates) < 2:
            row(section, "selector", f"only {len(candidates)} {modality} backbone installed", "install the extra set: tlhub assets install --extra")
            continue
        cache = tempfile.mkdtemp(prefix="tlhub-bench-select-")  # cold: the feature passes are part of the cost
        cfg = TrainConfig.from_yaml(config) if config else TrainConfig(**options)
        cfg = cfg.replace(cache_dir=cache)
        start = time.perf_counter()
        selection = select_backbone(cfg, candidates, progress=False)
        select_s = time.perf_counter() - start
        selection.save(RESULTS / f"select-{modality}")
        runs = {}
        for c in selection.candidates:
            r = tlhub.train(cfg.replace(backbone=c.backbone, output_dir=str(work / f"select-{modality}-{c.backbone.split('/')[-1]}")))
            runs[c.backbone] = {"accuracy": r.metrics["accuracy"], "seconds": r.seconds,
                                "test_evaluation_s": r.timings.get("evaluation", 0.0), "cv_accuracy": c.cv_accuracy,
                                "cv_sd": c.cv_sd, "logme": c.logme, "rank": c.rank}
        names = list(runs)
        tau_cv = kendalltau([runs[n]["cv_accuracy"] for n in names], [runs[n]["accuracy"] for n in names]).statistic
        tau_logme = kendalltau([runs[n]["logme"] for n in names], [runs[n]["accuracy"] for n in names]).statistic
        best = max(names, key=lambda n: runs[n]["accuracy"])
        pick = selection.winner.backbone
        finetune_s = sum(r["seconds"] for r in runs.values())
        out[modality] = {"runs": runs, "select_s": select_s, "finetune_all_s": finetune_s, "tau_cv": tau_cv, "tau_logme": tau_logme,
                         "pick": pick, "best": best}
        for n in names:
            r = runs[n]
            row(section, f"{n.split('/')[-1]}: selector rank {r['rank']}, cv {r['cv_accuracy']:.4f} ± {r['cv_sd']:.4f}, LogME {r['logme']:.3f}",
                f"test accuracy after fine-tuning {r['accuracy']:.4f} ({r['seconds']:.0f} s)")
        row(section, "Kendall tau, selector (cv accuracy) vs test accuracy", f"{tau_cv:.2f} (LogME alone: {tau_logme:.2f})")
        row(section, "top pick vs best candidate", f"{pick.split('/')[-1]} {runs[pick]['accuracy']:.4f} vs {best.split('/')[-1]} {runs[best]['accuracy']:.4f}",
            "within 0.01")
        row(section, "selector wall / fine-tuning every candidate", f"{select_s:.0f} s / {finetune_s:.0f} s = {finetune_s / select_s:.1f}x cheaper", ">= 20x")
        # the same without the runs' test evaluations: choosing by fine-tuning would score each
        # candidate on validation (inside its run already), never on the test split
        training_s = finetune_s - sum(r["test_evaluation_s"] for r in runs.values())
        out[modality]["finetune_all_without_test_s"] = training_s
        row(section, "the same, the runs' test evaluations left out", f"{select_s:.0f} s / {training_s:.0f} s = {training_s / select_s:.1f}x cheaper")
    save("select", out)


def select_image(work: Path) -> None:
    """The Protocol A half of ``select`` (the text half fine-tunes mpnet: about 17 minutes on 2 CPU cores)."""
    select(work, ("image",))


def select_text(work: Path) -> None:
    """The Protocol B half of ``select`` (select.json keeps the image half's last figures)."""
    select(work, ("text",))


# -- the auto recipe (issue 13): time to accuracy within a budget ------------------------------------
# How each value was chosen: the protocols' data options are fixed by them; the budgets are the
# issue's; everything else is what --recipe auto plans (on the training split and the clock).
def _digits_folder(root: Path) -> Path:
    """scikit-learn's digits (1,797 real 8 x 8 scans of handwritten digits) as an image folder,
    split half and half, stratified, seed 0: data the recipe was not tuned on."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    index = np.arange(len(digits.target))
    train, test = train_test_split(index, test_size=0.5, stratify=digits.target, random_state=0)
    for split, rows in (("train", train), ("test", test)):
        for i in rows:
            path = root / split / str(digits.target[i]) / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray((digits.images[i] * 255 / 16).astype("uint8"), mode="L").save(path)
    return root


def _recipe_runs(work: Path, runs: dict, name: str) -> None:
    import tlhub
    from tlhub.core.record import TrainingRecord

    out = {}
    for (section, what), (kwargs, target) in runs.items():
        r = tlhub.train(**kwargs, output_dir=str(work / f"{name}-{len(out)}"), cache_dir=tempfile.mkdtemp(prefix="tlhub-bench-recipe-"))
        plan = TrainingRecord.load(r.model_dir).recipe
        ci = r.eval.intervals["accuracy"]
        out[f"{section}: {what}"] = {"accuracy": r.metrics["accuracy"], "interval": [ci.low, ci.high], "seconds": r.seconds,
                                     "planned_s": plan and plan["planned_s"], "decisions": plan and {k: d["value"] for k, d in plan["decisions"].items()}}
        chosen = "" if not plan else " (" + ", ".join(f"{k} {d['value']}" for k, d in plan["decisions"].items()) + f"; planned {plan['planned_s']:.0f} s)"
        row(section, f"{what}: test accuracy [95% CI], wall", f"{r.metrics['accuracy']:.4f} [{ci.low:.4f}, {ci.high:.4f}], {r.seconds:.0f} s{chosen}", target)
    save(name, out)
    return out


RECIPE_A = {("Protocol A (Lite0, 1,000 images, 10k test)", "--recipe auto --budget 3m"):
            (dict(data="fashion-mnist", max_train_per_class=100, seed=0, recipe="auto", budget="3m"), ">= 0.86")}


def recipe_protocol_a(work: Path) -> None:
    """The Protocol A row of ``recipe`` alone."""
    _recipe_runs(work, RECIPE_A, "recipe-protocol-a")


def recipe(work: Path) -> None:
    digits = str(_digits_folder(work / "digits"))
    _recipe_runs(work, {
        **RECIPE_A,
        ("Protocol B (MiniLM, 1,000 sentences, 2k test)", "--recipe auto --budget 5m"):
            (dict(backbone="sentence-transformers/all-MiniLM-L6-v2", data="vader-movies", max_train_samples=1000, seed=0, recipe="auto", budget="5m"), ">= 0.78"),
        ("digits (sklearn, 8 x 8 px, 898 train / 899 test)", "--recipe auto --budget 5m"): (dict(data=digits, seed=0, recipe="auto", budget="5m"), ""),
    }, "recipe")


def recipe_default_digits(work: Path) -> None:
    """The fixed default on the digits (Lite0 at its own 224 px: long on 2 CPU cores), the
    reference for --recipe auto there."""
    _recipe_runs(work, {("digits (sklearn, 8 x 8 px, 898 train / 899 test)", "fixed default"):
                        (dict(data=str(_digits_folder(work / "digits")), seed=0), "")}, "recipe-default-digits")


#: The 15-minute row over three seeds (they draw the validation rows, the data order and the
#: augmentation; the 1,000 training images are the same). One run of it landed within a quarter
#: of a point of its target (0.8787 against 0.88), less than seeds move a figure on this protocol,
#: so the target is read against the median.
RECIPE_LONG_SEEDS = (0, 1, 2)


def recipe_long(work: Path) -> None:
    import numpy as np

    section = "Protocol A (Lite0, 1,000 images, 10k test)"
    out = _recipe_runs(work, {(section, f"--recipe auto --budget 15m, seed {seed}"):
                              (dict(data="fashion-mnist", max_train_per_class=100, seed=seed, recipe="auto", budget="15m"), "")
                              for seed in RECIPE_LONG_SEEDS}, "recipe-long")
    accuracy = [run["accuracy"] for run in out.values()]
    seconds = [run["seconds"] for run in out.values()]
    out["median"] = {"accuracy": float(np.median(accuracy)), "min": min(accuracy), "max": max(accuracy), "seeds": list(RECIPE_LONG_SEEDS),
                     "median_seconds": float(np.median(seconds))}
    row(section, f"--recipe auto --budget 15m: test accuracy, median of {len(accuracy)} seeds (min-max), median wall",
        f"{np.median(accuracy):.4f} ({min(accuracy):.4f}-{max(accuracy):.4f}), {np.median(seconds):.0f} s", ">= 0.88")
    save("recipe-long", out)


SECTIONS = {
    "quality-lpft": quality_lpft,
    "quality-probe": quality_probe,
    "baseline-random": baseline_random,
    "quality-text": quality_text,
    "derive-protocol-a": derive_protocol_a,
    "derive-protocol-b": derive_protocol_b,
    "derive-recipe-size": derive_recipe_size,
    "derive-recipe-long": derive_recipe_long,
    "derive-recipe-lr": derive_recipe_lr,
    "stats-cost": stats_cost,
    "norm-eval": norm_eval,
    "epoch-cost": epoch_cost,
    "probe-cache": probe_cache,
    "gpu": gpu,
    "doctor": doctor,
    "imbalance": imbalance,
    "layers": layers,
    "layers-text": layers_text,
    "layers-unfreeze": layers_unfreeze,
    "select": select,
    "select-image": select_image,
    "select-text": select_text,
    "recipe": recipe,
    "recipe-protocol-a": recipe_protocol_a,
    "recipe-long": recipe_long,
    "recipe-default-digits": recipe_default_digits,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=f"any of: {', '.join(SECTIONS)} (default: all but gpu)")
    parser.add_argument("--work-dir", default=None, help="where runs go (default: a temporary folder)")
    args = parser.parse_args()
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    sections = args.sections or [s for s in SECTIONS if s != "gpu"]
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="tlhub-bench-"))
    import torch

    print(f"tlhub benchmarks: {', '.join(sections)}; torch {torch.__version__}, {torch.get_num_threads()} threads; runs in {work}")
    for name in sections:
        print(f"\n### {name}", flush=True)
        SECTIONS[name](work)
    print("\n| section | measurement | result | target |\n|---|---|---|---|")
    for section, what, value, target in ROWS:
        print(f"| {section} | {what} | {value} | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
