"""The training engine: one loop, top to bottom, for every transfer-learning strategy.

    train(config)
      1. resolve the backbone and its adapter     (tlhub.core.factory)
      2. load and check the data                  (tlhub.data.loading)
      3. build the model with a new head          (adapter.load)
      4. plan the stages of the strategy          (tlhub.engine.strategies)
      5. run each stage, epoch by epoch, with a checkpoint after every epoch
      6. restore the best weights, evaluate on the held-out split, save the model

Devices, mixed precision, gradient accumulation and several processes come from Accelerate:
the same code runs on this laptop and under ``accelerate launch`` / ``torchrun`` on many GPUs.
"""

from __future__ import annotations

import functools
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from tlhub.engine.allocator import keep_freed_memory
from tlhub.engine.config import TrainConfig
from tlhub.errors import ConfigError
from tlhub.core.saving import EXAMPLES_DIR, IMAGES_DIR, LAYERS_FILE, LOG_FILE, save_model
from tlhub.fileio import write_json_atomic
from tlhub.engine.checkpoints import Checkpoints, RunFolder, RunState
from tlhub.engine.strategies import Stage, plan_stages



@dataclass
class TrainResult:
    output_dir: Path
    model_dir: Path
    eval: Any  # tlhub.engine.evaluation.EvalResult
    history: list[dict]
    data_report: dict
    example: dict | None
    seconds: float
    stages: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds of each phase of this call
    feature_cache: dict[str, bool] = field(default_factory=dict)  # split -> True when read from the cache

    @property
    def metrics(self) -> dict[str, float]:
        return self.eval.metrics


def _holding_output_lock(run):
    """``train`` holds its output folder's lock from its start to its end, however it ends: a
    second run into the same folder fails at once instead of mixing its files with this one's."""
    import functools

    @functools.wraps(run)
    def locked(config=None, **overrides):
        cfg = _as_config(config, overrides)
        if int(os.environ.get("RANK", "0")) != 0:  # the other processes of the same run
            return run(cfg)
        from tlhub.fileio import lock_folder

        with lock_folder(cfg.output_dir, purpose="output folder (--output-dir)"):
            return run(cfg)

    return locked


@_holding_output_lock
def train(config: TrainConfig | dict | str | os.PathLike | None = None, **overrides: Any) -> TrainResult:
    """Run a whole transfer-learning job and return where the model went and how it scored.

    With ``repeats`` > 1, K runs of their own (tlhub.engine.repeats) and a RepeatsResult."""
    cfg = _as_config(config, overrides)
    if cfg.repeats > 1:
        # each seed's run is a call of this function into OUTPUT/repeats/seed-N, which locks that
        # folder: another lock file than OUTPUT's, held here, so nothing waits on itself
        from tlhub.engine.repeats import train_repeated

        return train_repeated(cfg)
    started = time.perf_counter()
    keep_freed_memory()  # 3x faster passes at 224 px on CPU: see tlhub.engine.allocator

    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, set_seed

    # split_batches: `batch_size` is the global batch, so one process and N processes see the
    # same batches and the result does not depend on how many processes ran it.
    # Several processes and no GPU (torchrun / accelerate launch on CPUs): Accelerate only sets up
    # gloo data parallelism when told to use the CPU; otherwise each process would train alone.
    multi_cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    accelerator = Accelerator(
        cpu=multi_cpu,
        mixed_precision=_mixed_precision(cfg),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        dataloader_config=DataLoaderConfiguration(split_batches=True, use_seedable_sampler=True, data_seed=cfg.seed),
    )
    if cfg.batch_size % accelerator.num_processes or cfg.eval_batch_size % accelerator.num_processes:
        raise ConfigError(
            f"batch_size {cfg.batch_size} / eval_batch_size {cfg.eval_batch_size} must divide by the {accelerator.num_processes} processes",
            fix=f"use a multiple of {accelerator.num_processes}",
        )
    set_seed(cfg.seed)
    say = accelerator.print
    out = Path(cfg.output_dir)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    # 1. the backbone decides the modality, and so how the data is read. `auto`: stage 1 from
    #    evidence, the backbone tlhub select ranks first on the training split (its features stay
    #    in the cache, so the probe stage below reuses the winner's)
    selection = None
    if cfg.backbone == "auto":
        from tlhub.engine.selection import select_backbone

        selection = select_backbone(cfg, progress=accelerator.is_main_process, say=say)
        cfg = cfg.replace(backbone=selection.winner.backbone)
        say(f"select    {selection.summary()}")
        lap("select")
    from tlhub.core.factory import resolve_backbone

    source, adapter = resolve_backbone(cfg.backbone, revision=cfg.revision, adapter=cfg.adapter)
    say(f"backbone  {source.display_name} ({adapter.name} adapter, {adapter.modality})")

    # 2. data: checked completely before any training starts
    from tlhub.data.loading import load_data

    spec = cfg.data_spec()
    with accelerator.main_process_first():  # the main process builds dataset caches first
        data = load_data(spec, modality=adapter.modality, decode=adapter.decode_input, progress=accelerator.is_main_process)
    say(f"data      {data.source_name}: " + ", ".join(f"{k} {len(v):,}" for k, v in data.splits.items()) + f"; {len(data.labels)} classes")
    for line in data.report.summary().splitlines():
        say(f"          {line}")
    # the data doctor's cheap checks (hashes and counts, no backbone pass); --strict stops on a finding
    from tlhub.engine.doctor import cheap_checks

    checks = cheap_checks(data)
    for line in checks.summary_lines():
        say(f"checks    {line}")
    if cfg.strict:
        checks.raise_if_findings()
    lap("data")

    # 3. the model: pretrained backbone, new head sized for our labels
    model = load_model(adapter, source, cfg, data.labels)
    model.base_weights = adapter.weights_info(source)  # the card's lineage and licence
    _apply_overrides(model, cfg)
    # --recipe auto: input size, strategy, epochs, augmentation and averaging planned from the
    # training data, this machine's measured speed and the time budget (tlhub.engine.recipe)
    recipe = None
    if cfg.recipe == "auto":
        from tlhub.engine.recipe import plan_recipe, replan_epochs

        unplanned = cfg
        cfg, recipe = plan_recipe(cfg, adapter, model, data, elapsed_s=time.perf_counter() - started, say=say)
        _apply_overrides(model, cfg)
        lap("recipe")
    groups = model.layer_groups()
    loop = Loop(cfg, accelerator, adapter, model, data)
    if recipe is not None and "epochs" in recipe.decisions:
        # the plan's epochs came from a timed step; the fine-tune's epochs measure the real pace
        loop.pace = lambda done, epoch_s, length_only: replan_epochs(recipe, unplanned, data, epochs_done=done, epoch_s=epoch_s,
                                                                     elapsed_s=time.perf_counter() - started, length_only=length_only)
    lap("model")

    # 4. stage 2's evidence, when asked for: how well each layer group's features alone separate
    #    the classes (leave-one-out on the training split), which groups the head reads, and how many
    #    groups to unfreeze. It decides the head's shape, so it comes before a resume loads weights.
    layers = None
    # (also for "last" when the backbone's embedding is not its classifier's input: see
    # TransferModel.embedding_group)
    if cfg.feature_layers != "last" or cfg.unfreeze == "auto" or model.embedding_group() != len(groups) - 1:
        layers = loop.layer_evidence()
        lap("layers")
    stages = plan_stages(cfg, len(groups), recommended_unfreeze=layers.unfreeze if layers else None)
    say(f"strategy  {cfg.strategy}: " + " -> ".join(f"{s.name} ({s.epochs} ep, lr {s.lr:g})" for s in stages))

    # 5. resume where a previous run of the same config stopped; a run that replaces another is
    #    written aside and moved in only once it has finished, so a crash loses nothing
    run_folder = RunFolder(out, accelerator)
    checkpoints, state, resumed = run_folder.open(cfg)
    work = run_folder.work
    if resumed:
        checkpoints.load_model(model)
        say(f"resuming  from {checkpoints.latest().name} (stage {state.stage_index + 1}, epoch {state.global_epoch})")
    elif work != out:
        say(f"replacing the run in {out} once this one has finished (written to {work} until then)")
    if accelerator.is_main_process:
        work.mkdir(parents=True, exist_ok=True)
        (work / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
        write_json_atomic(work / "data_report.json", data.report.to_dict())

    for index, stage in enumerate(stages):
        if index < state.stage_index:
            continue
        if index == state.stage_index and state.stage_done:
            checkpoints.load_best(model)  # resumed at this stage's end: the next starts from its best, as unbroken runs do
            continue
        if index > state.stage_index:
            state.stage_index, state.stage_epoch, state.stage_done, state.bad_epochs = index, 0, False, 0
            state.stage_best = -math.inf
        lap("resume")
        loop.run_stage(stage, state, checkpoints)
        # the next stage starts from the best weights so far (e.g. the best probe head)
        checkpoints.load_best(model)
        lap(f"stage:{stage.name}")
    if loop.cfg != cfg:  # --recipe auto re-planned the fine-tune at its measured pace
        cfg = loop.cfg
        stages = plan_stages(cfg, len(groups), recommended_unfreeze=layers.unfreeze if layers else None)

    # 6. best weights, held-out evaluation, save
    checkpoints.load_best(model)
    result = loop.final_evaluation()
    lap("evaluation")
    model_dir = out / "model"
    example = None
    if accelerator.is_main_process:
        _save(model, adapter, cfg, data, stages, state, result, work / "model", checkpoints, accelerator,
              data_checks=checks.summary_dict(), class_weights=loop.class_weights, layers=layers, probe=loop.probe_info,
              feature_precision=loop.feature_precision if loop.feature_tables else None,
              selection=selection, recipe=recipe, seconds_so_far=time.perf_counter() - started)
        example = loop.example_prediction()
        write_json_atomic(work / "metrics.json", result.to_dict())
    run_folder.finish()  # a run written aside replaces the old one now (waits for every process)
    lap("save")
    seconds = time.perf_counter() - started
    say(f"\n{result.summary()}  ({seconds:.0f} s)")
    say(result.table())
    if loop.class_weights["applied"] != "none" or (loop.class_weights["imbalance_ratio"] or 0) > loop.class_weights["threshold"]:
        say(f"balanced accuracy {result._with_interval('balanced_accuracy', 4)}: the training classes are imbalanced, so judge by it and the per-class recall")
    if example:
        say(f"\nexample   {example['input']}  (true label: {example['label']})")
        for rank, p in enumerate(example["predictions"], 1):
            say(f"  {rank}. {p['label']:<24} {p['score']:6.1%}")
    say(f"\nmodel saved to {model_dir}")
    timings.pop("resume", None)
    return TrainResult(out, model_dir, result, state.history, data.report.to_dict(), example, seconds, [s.to_dict() for s in stages], timings, loop.feature_hits)


class Loop:
    """The per-stage training loop, and the pieces of the run it needs."""

    def __init__(self, cfg: TrainConfig, accelerator, adapter, model, data):
        self.cfg, self.accelerator, self.adapter, self.model, self.data = cfg, accelerator, adapter, model, data
        # class_weights: weights from the training split's class counts (the record and card show them)
        from tlhub.engine.doctor import class_weight_plan

        counts = np.bincount(np.asarray(data.splits["train"]["label"], dtype=np.int64), minlength=len(data.labels)).tolist()
        self.class_weights = class_weight_plan(cfg.class_weights, counts, list(data.labels))
        weight = None
        if self.class_weights["weights"] is not None:
            weight = torch.tensor([self.class_weights["weights"][label] for label in data.labels], dtype=torch.float32, device=accelerator.device)
            accelerator.print(f"loss      class_weights {cfg.class_weights} -> balanced (train imbalance {self.class_weights['imbalance_ratio']:g}:1, "
                              f"auto's threshold {self.class_weights['threshold']:g}:1)")
        self.criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
        self.class_weight_by_index = (None if weight is None else dict(enumerate(weight.tolist())))
        self.eval_collate = adapter.make_collate(model, train=False)
        self.feature_tables: dict[str, Any] = {}
        self.feature_hits: dict[str, bool] = {}
        self.probe_info: dict[str, Any] | None = None  # how the closed-form probe chose its regularisation (the record)
        self.layer_tables: list[int] | None = None  # the layer groups cached per split once layer_evidence ran (all of them)
        self.ema = None  # the weight average of the current stage (cfg.ema_decay)
        # --recipe auto: (epochs done, seconds each, length only) -> the configuration re-planned at that pace
        self.pace: Callable[[int, float, bool], TrainConfig] | None = None
        #: the frozen feature pass's precision and why (the cache key and the record carry it)
        self.feature_precision, self.feature_precision_reason = feature_precision(cfg, accelerator.mixed_precision, accelerator.device.type,
                                                                                  adapter.modality)

    # -- data ---------------------------------------------------------------------------------
    def loader(self, split: str, *, train: bool, rows=None):
        """``rows``: feed only these rows of the split, in this order (the feature pass's length order)."""
        from tlhub.data.loading import make_dataloader

        collate = self.adapter.make_collate(self.model, train=True, augment=self.cfg.augment) if train else self.eval_collate
        if train and self.cfg.random_erasing and self.adapter.modality == "image":
            collate = _RandomErasing(collate, self.cfg.random_erasing, self.model.image_key, self.adapter.name)
        dataset = self.data.splits[split]
        loader = make_dataloader(
            dataset if rows is None else dataset.select(rows),
            decode=self.adapter.decode_input,
            collate=collate,
            batch_size=self.cfg.batch_size if train else self.cfg.eval_batch_size,
            shuffle=train,
            seed=self.cfg.seed,
            num_workers=self.cfg.num_workers,
        )
        return self.accelerator.prepare_data_loader(loader)

    def features(self, split: str, view: str = "", layers: list[int] | None = None):
        """Cached frozen features of a split (computed on first use, reused by later runs).

        ``view="hflip"`` gives the features of the horizontally flipped images: a second view
        of every training image for the probe, at the cost of one more pass of the backbone.
        ``layers``: the pooled output of each of these layer groups (columns ``layer_i``, one
        pass of the backbone for all of them) instead of the last layer's features.
        """
        name = (f"{split}:{view}" if view else split) + (f"[{len(layers)} layers]" if layers is not None else "")
        if name not in self.feature_tables:
            from tlhub.engine.features import cache_key, cached_features

            # Texts go through the backbone shortest first: a batch is padded to its longest text,
            # so batching texts of like length wastes little compute on padding (1,000 VADER
            # sentences, every layer, batches of 128 on 2 cores: MiniLM 9.7 s in file order, 6.3 s
            # sorted; all-mpnet-base-v2 62 s and 41 s). The cache stores the rows in the split's
            # own order all the same.
            order = _length_order(self.data.splits[split]) if self.adapter.modality == "text" else None

            def loader():
                base = self.loader(split, train=False, rows=order)
                if not view:
                    return base
                image_key = _image_key(self.model.image_key, self.adapter.name, "probe_hflip")
                return (_hflip(batch, image_key) for batch in base)

            fingerprint = self.data.fingerprints[split] + (f":{view}" if view else "")
            key = cache_key(self.model, self.adapter.preprocessing(self.model).fingerprint(), fingerprint, layers=layers,
                            precision=self.feature_precision)
            table, hit = cached_features(
                self.model, loader, key=key, cache_dir=self.cfg.cache_dir, accelerator=self.accelerator, desc=f"features {name}", layers=layers,
                order=order, precision=self.feature_precision,
            )
            width = self.model.num_features if layers is None else sum(table.features[f"layer_{i}"].length for i in layers)
            precision = "" if self.feature_precision == "fp32" else f", {self.feature_precision}: {self.feature_precision_reason}"
            self.accelerator.print(f"features  {name}: {'cache hit' if hit else 'computed and cached'} ({len(table):,} x {width}{precision})")
            self.feature_tables[name] = table
            self.feature_hits[name] = hit
        return self.feature_tables[name]

    def embedding_features(self, split: str) -> tuple[np.ndarray, np.ndarray, bool]:
        """``(x, y, cache hit)`` as numpy: the features a last-layer probe reads (the model's
        ``embedding_group``): the native classifier's input, or for a sentence encoder its
        mean-pooled last layer (not its untrained pooler), from the all-groups pass the trainer
        caches for it. What ``tlhub select`` scores and the data doctor searches."""
        from tlhub.engine.features import as_layer_arrays, as_tensors

        groups, embedding = len(self.model.layer_groups()), self.model.embedding_group()
        if embedding == groups - 1:
            x, y = as_tensors(self.features(split))
            return x.numpy(), y.numpy(), bool(self.feature_hits.get(split))
        every = list(range(groups))
        arrays, y = as_layer_arrays(self.features(split, layers=every), every)
        return arrays[embedding], np.asarray(y), bool(self.feature_hits.get(f"{split}[{groups} layers]"))

    def cached_inputs(self, split: str, view: str = ""):
        """``(x, y)`` tensors of what the head reads, from the feature cache: the last layer's
        features, or the concatenated features of the layer head's groups."""
        head = self.model.layer_head
        if head is None:
            return _tensors(self.features(split, view), self.accelerator.device)
        from tlhub.engine.features import as_layer_arrays

        arrays, y = as_layer_arrays(self.features(split, view, layers=self.layer_tables), head.layers)
        x = np.concatenate([arrays[i] for i in head.layers], axis=1)
        return torch.from_numpy(x).to(self.accelerator.device), torch.from_numpy(y).to(self.accelerator.device)

    def head_logits(self, x):
        """The head alone on cached inputs (:meth:`cached_inputs`)."""
        head = self.model.layer_head
        return head.linear(x) if head is not None else self.model.forward_head(x)

    def layer_evidence(self):
        """Score every layer group alone, choose the groups the head reads, recommend how many to
        unfreeze (:mod:`tlhub.engine.layers`); attach a head over several groups when the choice
        is more than the last group. Reads the training split only (leave-one-out): the validation
        split stays held out for the probe's regularisation and the epochs, the test split for
        the end."""
        from tlhub.engine.features import as_layer_arrays
        from tlhub.engine.layers import gather_layer_evidence

        groups = self.model.layer_groups()
        self.layer_tables = list(range(len(groups)))
        arrays, y = as_layer_arrays(self.features("train", layers=self.layer_tables), self.layer_tables)
        evidence = gather_layer_evidence(self.cfg, [g.name for g in groups], arrays, y, progress=self.accelerator.is_local_main_process,
                                         last=self.model.embedding_group())
        for line in evidence.summary_lines():
            self.accelerator.print(f"layers    {line}")
        if evidence.chosen != [len(groups) - 1]:
            from tlhub.adapters.model import LayerHead

            head = LayerHead(evidence.chosen, [arrays[i].shape[1] for i in evidence.chosen], len(self.data.labels), grid=self.model.layer_grid)
            self.model.set_layer_head(head.to(self.accelerator.device))
        return evidence

    # -- one stage ----------------------------------------------------------------------------
    def run_stage(self, stage: Stage, state: RunState, checkpoints: "Checkpoints") -> None:
        """Run ``stage`` from ``state`` to its end (or an early stop), checkpointing as it goes."""
        self.model.freeze_backbone(stage.trainable_groups)
        # Accelerate keeps every prepared object referenced: the previous stage's optimizer (its Adam
        # state is as large as the weights it trained), scheduler and DDP wrapper are done with.
        self.accelerator.free_memory()
        if stage.head_only and stage.use_feature_cache:
            self._probe_stage(stage, state, checkpoints)
        else:
            self._backbone_stage(stage, state, checkpoints)

    def _probe_stage(self, stage: Stage, state: RunState, checkpoints: "Checkpoints") -> None:
        """The head alone on cached frozen features: no backbone pass, milliseconds an epoch.

        It is checkpointed once, at its end, with its best head kept in memory meanwhile (epoch
        checkpoints would cost more than the training). A run killed inside it re-runs the stage
        from its start, to the same result. Early stopping would save nothing here, so the
        schedule runs out (the best epoch is still chosen).
        """
        cfg, accelerator, model = self.cfg, self.accelerator, self.model
        train_x, train_y = self.cached_inputs("train")
        originals = len(train_y)
        if cfg.probe_hflip and self.adapter.modality == "image":
            flip_x, flip_y = self.cached_inputs("train", view="hflip")
            train_x, train_y = torch.cat([train_x, flip_x]), torch.cat([train_y, flip_y])
        val_x, val_y = self.cached_inputs("validation")
        model.to(accelerator.device)  # every process trains the same head on the same cache
        if cfg.probe_solver != "adamw" and _linear_head(model) is not None:  # "lbfgs": the closed form's older name
            self._closed_form_probe(stage, state, checkpoints, train_x, train_y, val_x, val_y, originals)
            return
        optimizer, scheduler = self._optimizer(stage, steps_per_epoch=math.ceil(len(train_y) / cfg.batch_size))
        if state.stage_epoch:
            checkpoints.load_optimizer(optimizer, scheduler)
        self.ema = None
        self._announce(stage, ", on cached features")
        head, best_head = set(model.all_head_parameter_names()), None
        while state.stage_epoch < stage.epochs:
            started = time.perf_counter()
            model.train()
            train_loss, seen = self._epoch_on_cache(train_x, train_y, optimizer, scheduler, state)
            train_seconds = time.perf_counter() - started
            val_loss, val_acc = self._validate_on_cache(val_x, val_y)
            improved, _ = self._end_epoch(stage, state, optimizer, started, train_seconds, train_loss, seen, val_loss, val_acc, patience=None)
            if improved:
                best_head = {n: p.detach().clone() for n, p in model.named_parameters() if n in head}
            if state.stage_done:
                if best_head is not None:
                    checkpoints.save_best(model, replace=best_head)  # before the checkpoint that ends the stage
                checkpoints.save(model, optimizer, scheduler, state, cfg, best=False)

    def _closed_form_probe(self, stage: Stage, state: RunState, checkpoints: "Checkpoints", train_x, train_y, val_x, val_y,
                           originals: int) -> None:
        """The probe as a convex problem solved to convergence (:func:`tlhub.engine.probe.fit_probe`):
        standardised features, the L2 strength chosen on the validation split, or by k-fold
        cross-validation of the training split when validation is too small to choose by
        (``CV_BELOW_VALIDATION``); the validation split stays held out either way (the head is
        fit on train only). The weights go into the model's own linear head, the standardisation
        folded in. One row of history: there are no epochs to choose from."""
        from tlhub.engine.probe import CV_BELOW_VALIDATION, PROBE_SOLVER, fit_probe

        cfg, model = self.cfg, self.model
        started = time.perf_counter()
        by_cv = len(val_y) < CV_BELOW_VALIDATION
        self._announce(stage, ", on cached features (logistic regression, C chosen by "
                              + (f"cross-validation of train: validation has {len(val_y):,} < {CV_BELOW_VALIDATION:,} examples" if by_cv else "validation")
                              + (", balanced class weights)" if self.class_weight_by_index else ")"), solved=True)
        layer_head = model.layer_head
        # ``originals``: the flipped copies follow the first ``originals`` rows of train_x, and
        # cross-validation reads the originals alone (an image and its mirror in different folds would leak)
        probe = fit_probe(train_x.cpu().numpy(), train_y.cpu().numpy(), val_x.cpu().numpy(), val_y.cpu().numpy(),
                          select_x=train_x[:originals].cpu().numpy() if by_cv else None,
                          select_y=train_y[:originals].cpu().numpy() if by_cv else None,
                          seed=cfg.seed, num_classes=len(self.data.labels),
                          groups=layer_head.widths if layer_head is not None else None,  # equal say per layer group
                          # the validation split stays held out: it scores this head, and later stages
                          # (lp-ft's fine-tune, --repeats) choose by it
                          refit_on_validation=False,
                          # class_weights: the probe's loss weights its classes as the trained head's would
                          class_weight=self.class_weight_by_index)
        weight, bias = _linear_head(model)
        with torch.no_grad():
            weight.copy_(torch.as_tensor(probe.weight, dtype=weight.dtype))
            bias.copy_(torch.as_tensor(probe.bias, dtype=bias.dtype))
        train_seconds = time.perf_counter() - started
        model.eval()
        with torch.inference_mode():
            train_loss = nn.functional.cross_entropy(self.head_logits(train_x), train_y).item()
        val_loss, val_acc = self._validate_on_cache(val_x, val_y)
        self.probe_info = {"solver": PROBE_SOLVER, **probe.to_dict()}
        accelerator = self.accelerator
        accelerator.print(f"probe     C={probe.C:g} chosen by {probe.scored_by} {probe.score:.4f} "
                          f"(tried {', '.join(f'{c:g}: {s:.3f}' for c, s in probe.scores.items())})")
        optimizer, scheduler = self._optimizer(stage, steps_per_epoch=1)  # the checkpoint's format; never stepped
        state.stage_epoch = stage.epochs - 1  # one solve stands for the whole stage
        improved, _ = self._end_epoch(stage, state, optimizer, started, train_seconds, train_loss, len(train_y), val_loss, val_acc, patience=None)
        if improved:
            head = set(model.all_head_parameter_names())
            checkpoints.save_best(model, replace={n: p.detach().clone() for n, p in model.named_parameters() if n in head})
        checkpoints.save(model, optimizer, scheduler, state, cfg, best=False)

    def _backbone_stage(self, stage: Stage, state: RunState, checkpoints: "Checkpoints") -> None:
        """A stage that runs the backbone: data loaders, Accelerate, a checkpoint every epoch."""
        cfg, accelerator, model = self.cfg, self.accelerator, self.model
        train_loader, val_loader = self.loader("train", train=True), self.loader("validation", train=False)
        net = accelerator.prepare_model(model)  # a fresh DDP wrapper: the trainable set changed
        # one optimizer step per accumulation window (the last window of an epoch may be short)
        optimizer, scheduler = self._optimizer(stage, steps_per_epoch=math.ceil(len(train_loader) / cfg.gradient_accumulation_steps))
        # Accelerate's wrappers are what make gradient accumulation real: the optimizer steps (and
        # unscales fp16 gradients) only on the last micro-batch of each accumulation window, and
        # the scheduler steps only when the optimizer did (not on a skipped fp16 overflow step).
        optimizer, scheduler = accelerator.prepare(optimizer, scheduler)
        # An average of the weights over the last few hundred steps generalises better than the
        # last step on small data; it is what gets validated, kept as best, and saved.
        self.ema = self._weight_average(cfg)
        if state.stage_epoch:
            checkpoints.load_optimizer(optimizer, scheduler)
            if self.ema is not None:
                checkpoints.load_ema(self.ema.module)
        averaged = self.ema.module if self.ema is not None else None  # what is validated and kept
        self._announce(stage, "")
        # --recipe auto: where the last pace check was, and how many of the later ones were taken
        # (a resume counts those it passed as taken)
        paced_at, paced_epoch = time.perf_counter(), state.stage_epoch
        next_check = self._pace_checks_passed(stage, state)
        while state.stage_epoch < stage.epochs:
            started = time.perf_counter()
            model.train()
            train_loader.set_epoch(state.global_epoch)
            train_loss, seen, grad_norms = self._epoch(net, train_loader, optimizer, scheduler, stage, state)
            train_seconds = time.perf_counter() - started
            val_loss, val_acc = self._validate(val_loader, averaged if averaged is not None else model)
            improved, stop = self._end_epoch(
                stage, state, optimizer, started, train_seconds, train_loss, seen, val_loss, val_acc, patience=cfg.early_stopping_patience,
                grad_norms=grad_norms,
            )
            checked = self.pace is not None and not stage.head_only and not stop and self._pace_check_due(stage, state, next_check)
            if checked:
                # before the checkpoint: a resume from it must find the new length in its
                # configuration and its schedule. The first epoch sets the pace alone; later
                # checks take every epoch since the last one, their checkpoints included.
                first = state.stage_epoch == 1
                epoch_s = (time.perf_counter() - (started if first else paced_at)) / (1 if first else state.stage_epoch - paced_epoch)
                stage = self._follow_pace(stage, state, scheduler, epoch_s, length_only=not first)
                if self.cfg.auto_augment != cfg.auto_augment:
                    model.set_augmentation(self.cfg.auto_augment)
                    train_loader = self.loader("train", train=True)  # its collate applies the policy
                if self.cfg.ema_decay != cfg.ema_decay:
                    self.ema = self._weight_average(self.cfg)  # from these weights on
                    averaged = self.ema.module if self.ema is not None else None
                cfg = self.cfg
            checkpoints.save(model, optimizer, scheduler, state, cfg, best=improved, ema=averaged)
            if checked:  # the next check's pace starts here
                next_check += state.stage_epoch > 1  # the first epoch's check is none of the later ones
                paced_at, paced_epoch = time.perf_counter(), state.stage_epoch
            if stop:
                accelerator.print(f"early stop: no validation improvement for {cfg.early_stopping_patience} epochs")
                break

    @staticmethod
    def _pace_check_points(stage: Stage) -> list[int]:
        """The epochs after which --recipe auto checks the fine-tune's pace again: when
        :data:`tlhub.engine.recipe.PACE_CHECKS` of it have run."""
        from tlhub.engine.recipe import PACE_CHECKS

        return [max(2, round(f * stage.epochs)) for f in PACE_CHECKS]

    @classmethod
    def _pace_checks_passed(cls, stage: Stage, state: RunState) -> int:
        """How many of the later pace checks lie at or before the epochs done."""
        return sum(point <= state.stage_epoch for point in cls._pace_check_points(stage))

    @classmethod
    def _pace_check_due(cls, stage: Stage, state: RunState, next_check: int) -> bool:
        """After the fine-tune's first epoch, and once for each later check point reached (a check
        that moves the length moves the points: each is still taken once); never after the last
        epoch. ``next_check``: the later checks taken so far."""
        done, points = state.stage_epoch, cls._pace_check_points(stage)
        return done < stage.epochs and (done == 1 or (next_check < len(points) and done >= points[next_check]))

    def _follow_pace(self, stage: Stage, state: RunState, scheduler, epoch_s: float, *, length_only: bool = False) -> Stage:
        """The stage re-planned from its epochs' measured seconds (--recipe auto); ``self.cfg``
        becomes the re-planned configuration. ``length_only``: a later check, which changes the
        number of epochs alone."""
        import dataclasses

        from accelerate.utils import broadcast_object_list

        paced = self.pace(state.stage_epoch, epoch_s, length_only)
        if paced.auto_augment != self.cfg.auto_augment:
            # the epoch that set the pace ran under the other policy: add what the new one costs
            batches = math.ceil(len(self.data.splits["train"]) / self.cfg.batch_size)
            extra = batches * (self._collate_seconds(paced.auto_augment) - self._collate_seconds(self.cfg.auto_augment))
            paced = self.pace(state.stage_epoch, epoch_s + extra, length_only)
        # every process must run the same epochs: the main process's pace decides
        paced = broadcast_object_list([paced])[0]
        if paced == self.cfg:
            return stage
        changed = ", ".join(f"{k} {getattr(paced, k)}" for k in ("epochs", "auto_augment", "ema_decay", "early_stopping_patience")
                            if getattr(paced, k) != getattr(self.cfg, k))
        pace = f"epoch 1 took {epoch_s:.1f} s" if not length_only else f"{state.stage_epoch} epochs in, the latest took {epoch_s:.1f} s each"
        self.accelerator.print(f"recipe    {pace}: re-planned to the budget: {changed}")
        # Accelerate's wrapper holds the LambdaLR; its param groups may share one factor object,
        # so the new length is computed once and set once per object (never scaled in place)
        factors = {id(f): f for f in getattr(scheduler, "scheduler", scheduler).lr_lambdas}.values()
        per_epoch = next(iter(factors)).total_steps // stage.epochs
        for factor in factors:
            factor.stretch(at_step=per_epoch * state.stage_epoch, total_steps=per_epoch * paced.epochs)
        self.cfg = paced
        state.stage_done = state.stage_epoch >= paced.epochs
        return dataclasses.replace(stage, epochs=paced.epochs)

    def _collate_seconds(self, auto_augment: str | None) -> float:
        """Seconds the training collate takes for one batch of decoded images under ``auto_augment``."""
        train = self.data.splits["train"]
        images = [self.adapter.decode_input(train[i]["input"]) for i in range(min(self.cfg.batch_size, len(train)))]
        kept, draws = self.model.auto_augment, random.getstate()
        times = []
        try:
            with torch.random.fork_rng():  # the run's random stream stays as it was
                self.model.set_augmentation(auto_augment)
                collate = self.adapter.make_collate(self.model, train=True, augment=self.cfg.augment)
                for _ in range(3):
                    clock = time.perf_counter()
                    collate(images)
                    times.append(time.perf_counter() - clock)
        finally:
            self.model.set_augmentation(kept)
            random.setstate(draws)
        return float(np.median(times))

    def _weight_average(self, cfg: TrainConfig):
        """cfg.ema_decay's moving average of the model's weights (None without one)."""
        if not cfg.ema_decay:
            return None
        from timm.utils.model_ema import ModelEmaV3

        return ModelEmaV3(self.model, decay=cfg.ema_decay, use_warmup=True)

    # -- what both kinds of stage share ---------------------------------------------------------
    def _optimizer(self, stage: Stage, *, steps_per_epoch: int):
        optimizer = torch.optim.AdamW(param_groups(self.model, stage), lr=stage.lr)
        return optimizer, warmup_cosine(optimizer, steps_per_epoch * stage.epochs, int(steps_per_epoch * stage.warmup_epochs))

    def _announce(self, stage: Stage, where: str, *, solved: bool = False) -> None:
        """The stage's header; ``solved``: a closed-form solve, which runs no epochs."""
        summary = self.model.trainable_summary()
        length = "solved to convergence" if solved else f"{stage.epochs} epochs"
        self.accelerator.print(
            f"\n== {stage.name}: {length}, {summary['trainable']:,} of {summary['parameters']:,} parameters trainable{where}"
        )

    def _end_epoch(self, stage, state: RunState, optimizer, started, train_seconds, train_loss, seen, val_loss, val_acc, *, patience,
                   grad_norms: dict[str, float] | None = None) -> tuple[bool, bool]:
        """Log the epoch, decide whether it is the best so far and whether to stop early."""
        cfg = self.cfg
        state.stage_epoch += 1
        state.global_epoch += 1
        row = {
            "stage": stage.name,
            "epoch": state.global_epoch,
            "stage_epoch": state.stage_epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "lr": optimizer.param_groups[-1]["lr"],
            "seconds": time.perf_counter() - started,
            "train_seconds": train_seconds,
            "samples_per_second": seen / train_seconds,
            **(grad_norms or {}),
        }
        state.history.append(row)
        score = val_acc if cfg.select_by == "val_accuracy" else -val_loss
        # "last": the schedule decides (e.g. cosine to zero, with a weight average); a validation
        # set of a hundred images is too noisy to pick an epoch by
        improved = score > state.best_metric or cfg.select_by == "last"
        if improved:
            state.best_metric, state.best_epoch = score, state.global_epoch
        # Early stopping asks whether this stage still improves, against its own best: lp-ft's
        # fine-tune starts below its probe (the first steps shake the features) and would be cut
        # off before it recovers if it had to beat the probe within `patience` epochs. Which
        # weights are kept is still decided over every stage (best_metric above).
        if score > state.stage_best:
            state.stage_best, state.bad_epochs = score, 0
        else:
            state.bad_epochs += 1
        stop = patience is not None and state.bad_epochs >= patience
        state.stage_done = state.stage_epoch >= stage.epochs or stop
        self.accelerator.print(
            f"[{stage.name} {state.stage_epoch}/{stage.epochs}] train loss {train_loss:.4f}  val loss {val_loss:.4f}  "
            f"val acc {val_acc:.4f}{' *' if improved else ''}  lr {row['lr']:.2e}  {row['samples_per_second']:.0f} samples/s"
        )
        return improved, stop

    def _epoch(self, net, loader, optimizer, scheduler, stage: Stage, state: RunState) -> tuple[float, int, dict[str, float]]:
        """(mean training loss, examples seen, the gradient norms: the epoch's largest and median,
        and the fraction of its steps cfg.clip_grad clipped) over one pass of ``loader``."""
        from tqdm.auto import tqdm

        accelerator = self.accelerator
        total, count = torch.zeros((), device=accelerator.device), 0
        # the largest gradient norm of the epoch is logged whether or not it is clipped: a step
        # that blows the fine-tune up shows there (clipping at infinity measures and changes nothing)
        limit = self.cfg.clip_grad or math.inf
        norms: list[torch.Tensor] = []
        bar = tqdm(
            loader,
            desc=f"{stage.name} epoch {state.stage_epoch + 1}/{stage.epochs}",
            unit="batch",
            disable=not accelerator.is_local_main_process,
            leave=False,
        )
        for batch in bar:
            # Inside accumulate(), backward() divides the loss by the accumulation steps (and scales
            # it for fp16), and the prepared optimizer's step()/zero_grad() do nothing until the last
            # micro-batch of the window, when gradients are synced (and unscaled) across processes.
            with accelerator.accumulate(net):
                loss = self.criterion(net(batch), batch["labels"])
                accelerator.backward(loss)
                if accelerator.sync_gradients:  # the window's last micro-batch: its gradients are complete
                    norm = accelerator.clip_grad_norm_(net.parameters(), limit)
                    if norm is not None:  # DeepSpeed clips by its own config and may not say
                        # an fp16 overflow step (skipped by the scaler) has no norm worth logging
                        norms.append(torch.nan_to_num(norm.detach().float(), nan=0.0, posinf=0.0))
                optimizer.step()
                if accelerator.sync_gradients:  # an optimizer step happened: one scheduler step
                    scheduler.step()
                    if self.ema is not None:  # the scheduler's step count survives a resume
                        self.ema.update(self.model, step=scheduler.scheduler.last_epoch)
                optimizer.zero_grad(set_to_none=True)
            n = batch["labels"].shape[0]
            total += loss.detach() * n
            count += n
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        # mean over every sample of every process
        total = accelerator.reduce(total, reduction="sum")
        count_all = int(accelerator.reduce(torch.tensor(count, device=accelerator.device), reduction="sum"))
        logged: dict[str, float] = {}
        if norms:  # this process's steps (gradients are synced, so every process saw the same norms)
            norm = torch.stack(norms).cpu()
            logged = {"grad_norm_max": float(norm.max()), "grad_norm_median": float(norm.median())}
            if self.cfg.clip_grad:
                logged["clipped_fraction"] = float((norm > limit).float().mean())
        return float(total) / max(count_all, 1), count_all, logged

    def _validate(self, loader, model) -> tuple[float, float]:
        from tlhub.engine.evaluation import evaluate_model

        with self.accelerator.autocast():
            preds, refs, loss = evaluate_model(model, loader, accelerator=self.accelerator, progress=False)
        return float(loss), float((preds == refs).mean()) if len(refs) else 0.0

    def _epoch_on_cache(self, x, y, optimizer, scheduler, state: RunState) -> tuple[float, int]:
        # The head alone, on precomputed features: no backbone, no images, milliseconds per epoch.
        generator = torch.Generator().manual_seed(self.cfg.seed * 100_003 + state.global_epoch)
        order = torch.randperm(len(y), generator=generator).to(x.device)
        total = 0.0
        for start in range(0, len(y), self.cfg.batch_size):
            idx = order[start : start + self.cfg.batch_size]
            loss = self.criterion(self.head_logits(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item() * len(idx)
        return total / len(y), len(y)

    def _validate_on_cache(self, x, y) -> tuple[float, float]:
        self.model.eval()
        with torch.inference_mode():
            logits = self.head_logits(x)
            return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(-1) == y).float().mean().item()

    # -- the end ------------------------------------------------------------------------------
    def final_evaluation(self):
        """Evaluate the best weights on the test split (the validation split if there is none)."""
        from tlhub.engine.evaluation import compute_metrics, evaluate_model

        split = "test" if "test" in self.data.splits else "validation"
        if split != "test":
            self.accelerator.print("no test split: the final evaluation uses the validation split, which also chose the best epoch")
        self.model.eval()
        if self.cfg.strategy == "feature-extraction" and self.cfg.feature_cache:
            x, y = self.cached_inputs(split)
            with torch.inference_mode():
                logits = self.head_logits(x)
                loss = nn.functional.cross_entropy(logits, y).item()
            preds, refs = logits.argmax(-1).cpu().numpy(), y.cpu().numpy()
        else:
            with self.accelerator.autocast():
                preds, refs, loss = evaluate_model(self.model.to(self.accelerator.device), self.loader(split, train=False), accelerator=self.accelerator)
        return compute_metrics(preds, refs, self.data.labels, split=split, loss=float(loss))

    def example_prediction(self) -> dict | None:
        """A top-k prediction on one held-out example, as the README's demo shows."""
        from tlhub.core.prediction import Predictor

        split = "test" if "test" in self.data.splits else "validation"
        row = self.data.splits[split][0]
        predictor = Predictor(self.model, device=str(self.accelerator.device))
        preds = predictor([row["input"]], top_k=self.cfg.example_top_k)[0]
        shown = row["input"] if isinstance(row["input"], str) else f"{split}[0]"
        return {"input": shown, "label": self.data.labels[row["label"]], "predictions": [p.__dict__ for p in preds]}


# -- optimisation -----------------------------------------------------------------------------
def param_groups(model, stage: Stage) -> list[dict]:
    """AdamW parameter groups: layer-wise lr decay towards the input, no weight decay on
    biases and norms (1-D tensors), only trainable parameters."""
    params = dict(model.named_parameters())
    groups = model.layer_groups()
    # head and the last group train at stage.lr; each group closer to the input at layer_decay x
    scales = {name: stage.layer_decay ** (len(groups) - 1 - i) for i, g in enumerate(groups) for name in g.parameter_names}
    buckets: dict[tuple[float, float], list] = {}
    for name, p in params.items():
        if not p.requires_grad:
            continue
        lr = stage.lr * scales.get(name, 1.0)
        wd = 0.0 if p.ndim <= 1 else stage.weight_decay
        buckets.setdefault((lr, wd), []).append(p)
    # ordered by lr so that param_groups[-1] is the head's (used for logging)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in sorted(buckets.items(), key=lambda kv: kv[0][0])]


class WarmupCosine:
    """Linear warm-up, then cosine decay to zero, per optimizer step: LambdaLR's factor.

    An object rather than a closure: LambdaLR's state_dict keeps an object's attributes, so a
    checkpoint carries ``total_steps`` (and the anchor) when --recipe auto re-plans the length
    mid-run (:meth:`stretch`)."""

    def __init__(self, total_steps: int, warmup_steps: int):
        self.total_steps, self.warmup_steps = int(total_steps), int(warmup_steps)
        # the decay runs from (anchor_step, anchor_progress) to total_steps; a re-plan mid-decay
        # moves the anchor to where it happens, so the learning rate goes on from its value there
        self.anchor_step, self.anchor_progress = self.warmup_steps, 0.0

    def progress(self, step: int) -> float:
        """How much of the cosine decay is done at ``step`` (0 to 1)."""
        span = max(1, self.total_steps - self.anchor_step)
        return min(1.0, self.anchor_progress + (step - self.anchor_step) / span * (1.0 - self.anchor_progress))

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        return 0.5 * (1.0 + math.cos(math.pi * self.progress(step)))

    def stretch(self, at_step: int, total_steps: int) -> None:
        """Decay over a new length from ``at_step`` on, continuing from the factor at ``at_step``."""
        if at_step > self.anchor_step:
            self.anchor_progress, self.anchor_step = self.progress(at_step), int(at_step)
        self.total_steps = int(total_steps)


def warmup_cosine(optimizer, total_steps: int, warmup_steps: int):
    """Linear warm-up, then cosine decay to zero, per optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(total_steps, warmup_steps))


# -- helpers --------------------------------------------------------------------------------------
def _as_config(config, overrides) -> TrainConfig:
    if config is None:
        return TrainConfig.from_dict(overrides)
    if isinstance(config, TrainConfig):
        return config.replace(**overrides) if overrides else config
    if isinstance(config, dict):
        return TrainConfig.from_dict({**config, **overrides})
    return TrainConfig.from_yaml(config, **overrides)


def load_model(adapter, source, cfg: TrainConfig, labels):
    """The backbone as every command builds it: pretrained weights, a new head from zero.

    Whatever the checkpoint lacks and the library initialises at random (MPNet's and RoBERTa's
    ``classifier.dense``, everything with ``pretrained: false``) is drawn from ``cfg.seed`` in a
    generator of its own. The feature cache's key hashes the backbone's weights, so ``tlhub
    select``'s pass and the following ``tlhub train`` must build the same ones: before, the
    draws followed whatever the process had drawn so far, and all-mpnet-base-v2's features were
    computed again by the train that followed its selection. Loading draws nothing from the
    global generators either (they are put back)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = adapter.load(source, labels=labels, pretrained=cfg.pretrained)
    model.init_head()
    return model


def feature_loop(cfg: TrainConfig, source, adapter, data) -> "Loop":
    """A :class:`Loop` over the model as ``train()`` builds it (pretrained backbone, new head, the
    config's input size / crop / max length), for reading and filling the feature cache under the
    key ``train()`` uses with the same options: what ``tlhub doctor`` and ``tlhub select`` read."""
    from accelerate import Accelerator

    keep_freed_memory()
    model = load_model(adapter, source, cfg, data.labels)
    _apply_overrides(model, cfg)  # image size / crop / max length: part of the cache key
    return Loop(cfg, Accelerator(mixed_precision=_mixed_precision(cfg)), adapter, model, data)


def _mixed_precision(cfg: TrainConfig) -> str:
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def feature_precision(cfg: TrainConfig, mixed_precision: str, device_type: str, modality: str) -> tuple[str, str]:
    """``(precision, reason)`` of the frozen feature pass: "fp32", "bf16" or "fp16".

    ``auto``: a GPU run's mixed precision; on a CPU with native bf16 (AVX512-BF16 or AMX), bf16
    for text backbones, fp32 otherwise. Measured on 2 CPU cores with AVX512-BF16 (held-out
    training rows, 2026-12-07): the pass took half the time (MiniLM, 3,000 VADER sentences: 32.5 s
    -> 15.8 s; Lite0, 1,990 Fashion-MNIST images: 7.0 s -> 3.5 s); a probe on MiniLM's bf16
    features scored as on fp32 ones (0.7400 / 0.7405, cosine 0.99999), but Lite0's last layer
    lost a point (0.7646 / 0.7747, cosine 0.998), so images stay in fp32.
    """
    if cfg.feature_precision != "auto":
        return cfg.feature_precision, "as configured"
    if mixed_precision != "no":
        return mixed_precision, f"auto: the run's mixed precision ({mixed_precision})"
    if device_type == "cpu" and modality == "text" and _cpu_has_bf16():
        return "bf16", "auto: a text backbone on a CPU with native bf16 (twice as fast, the same probe accuracy)"
    return "fp32", "auto"


@functools.cache
def _cpu_has_bf16() -> bool:
    """Native bf16 arithmetic (AVX512-BF16 or AMX), read from the CPU's flags. oneDNN also runs
    bf16 on plain AVX-512 by emulation, which was not measured here, so it counts as no. Elsewhere
    than Linux (no /proc/cpuinfo): False."""
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except (AttributeError, RuntimeError, OSError):  # a build without oneDNN, or no /proc
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _apply_overrides(model, cfg: TrainConfig) -> None:
    # Each hook is declared on TransferModel; a model that cannot honour a setting raises a
    # ConfigError naming its adapter, so no override is ever silently ignored.
    if cfg.image_size is not None or cfg.crop_pct is not None:
        model.set_input_size(cfg.image_size, cfg.crop_pct)
    if cfg.max_length is not None:
        model.set_max_length(cfg.max_length)
    if cfg.drop_rate is not None:
        model.set_dropout(cfg.drop_rate)
    model.set_augmentation(cfg.auto_augment)
    model.set_channels_last(cfg.channels_last)
    model.norm_eval = cfg.norm_eval
    model.layer_grid = cfg.layer_grid


class _RandomErasing:
    """Random erasing (Zhong et al. 2017) on a collated image batch: each image, with probability
    ``p``, gets a random patch set to the normalised mean (timm's ``RandomErasing``, mode const).
    Applied after the adapter's collate, so every image adapter gets it without code of its own."""

    def __init__(self, collate, p: float, key: str | None, adapter_name: str):
        from timm.data.random_erasing import RandomErasing

        self.key = _image_key(key, adapter_name, "random_erasing")
        self.collate, self.erase = collate, RandomErasing(probability=p, mode="const", device="cpu")

    def __call__(self, items):
        batch = self.collate(items)
        return {**batch, self.key: self.erase(_image_tensor(batch, self.key))}


def _length_order(split) -> np.ndarray:
    """The split's row indices ordered by the length of their text (characters: a close enough
    stand-in for tokens), ties in row order."""
    return np.argsort(np.fromiter((len(str(t)) for t in split["input"]), dtype=np.int64, count=len(split)), kind="stable")


def _hflip(batch: dict, key: str) -> dict:
    """The batch with its images (``batch[key]``, the model's ``image_key``) flipped left-right."""
    return {**batch, key: _image_tensor(batch, key).flip(-1)}


def _image_key(key: str | None, adapter_name: str, what: str) -> str:
    if key is None:
        raise ConfigError(f"{what} needs an image tensor in the batch, but adapter {adapter_name!r}'s model declares none (image_key = None)",
                          fix=f"turn {what} off, or set TransferModel.image_key to the batch key of the model's images")
    return key


def _image_tensor(batch: dict, key: str):
    if key not in batch:
        raise ConfigError(f"the batch has no {key!r} (the model's image_key); its keys: {', '.join(map(str, batch))}",
                          fix="set TransferModel.image_key to the key the adapter's collate puts the images under")
    return batch[key]


def _linear_head(model):
    """``(weight, bias)`` when the model's head is one linear layer (what a linear probe can fill), else ``None``."""
    if model.layer_head is not None:
        return model.layer_head.linear.weight, model.layer_head.linear.bias
    params = dict(model.named_parameters())
    head = [params[n] for n in model.head_parameter_names()]
    weights = [p for p in head if p.ndim == 2]
    biases = [p for p in head if p.ndim == 1]
    if len(head) == 2 and len(weights) == 1 and len(biases) == 1 and weights[0].shape == (model.num_classes, model.num_features):
        return weights[0], biases[0]
    return None


def _tensors(table, device):
    from tlhub.engine.features import as_tensors

    x, y = as_tensors(table)
    return x.to(device), y.to(device)


def _save(model, adapter, cfg, data, stages, state, result, model_dir: Path, checkpoints, accelerator,
          *, data_checks: dict | None = None, class_weights: dict | None = None, layers=None, probe: dict | None = None,
          feature_precision: str | None = None,
          selection=None, recipe=None, seconds_so_far: float | None = None) -> None:
    """The saved model: native weights + record + evaluation + curves + a few examples."""
    from tlhub.engine.plots import plot_training_curves

    def write_extras(staging: Path) -> None:
        result.save(staging)  # eval_results.json + images/confusion_matrix.png
        if state.history:
            plot_training_curves(state.history, staging / IMAGES_DIR / "training_curves.png", title=f"{cfg.strategy} on {data.source_name}")
        _write_examples(data, adapter, staging / EXAMPLES_DIR)
        if layers is not None:
            from tlhub.engine.plots import plot_layer_scores

            write_json_atomic(staging / LAYERS_FILE, layers.to_dict())
            plot_layer_scores(layers, staging / IMAGES_DIR / "layer_scores.png", title=f"each layer group alone, {data.source_name}")
        if selection is not None:
            selection.save(staging, images=staging / IMAGES_DIR)

    from tlhub.core.record import DatasetInfo
    from tlhub.core.saving import training_record

    best_row = state.history[state.best_epoch - 1] if state.best_epoch > 0 else {}
    record = training_record(
        model,
        dataset=DatasetInfo(name=data.source_name, splits={k: len(v) for k, v in data.splits.items()}, report=data.report.to_dict()),
        strategy=cfg.strategy,
        stages=[s.to_dict() for s in stages],
        epochs_run=state.global_epoch,
        best_epoch=state.best_epoch if state.best_epoch > 0 else None,  # -1: no epoch was selected
        selected_by=cfg.select_by,
        best_validation_accuracy=best_row.get("val_accuracy"),
        best_validation_loss=best_row.get("val_loss"),
        seed=cfg.seed,
        config=cfg.to_dict(),
        num_processes=accelerator.num_processes,
        mixed_precision=accelerator.mixed_precision,
        feature_precision=feature_precision,
        data_checks=data_checks or {},
        class_weights=class_weights,
        layers=layers.to_dict() if layers is not None else None,
        probe=probe,
        selection={"summary": selection.summary(), **selection.to_dict()} if selection is not None else None,
        recipe={**recipe.to_dict(), "actual_s": round(seconds_so_far, 1) if seconds_so_far is not None else None} if recipe is not None else None,
    )
    save_model(model, model_dir, record=record, extra_files={LOG_FILE: state.history}, writers=[write_extras])


def _write_examples(data, adapter, folder: Path, per_class: int = 1, limit: int = 6) -> None:
    """A few validation inputs, one per class, for Space examples (written by the adapter)."""
    folder.mkdir(parents=True, exist_ok=True)
    split = data.splits["validation"]
    seen: dict[int, int] = {}
    texts = []
    for i in range(len(split)):
        label = int(split[i]["label"])
        if seen.get(label, 0) >= per_class:
            continue
        seen[label] = seen.get(label, 0) + 1
        value = adapter.decode_input(split[i]["input"])
        name = data.labels[label]
        safe = "".join(c if c.isalnum() else "_" for c in name)
        if adapter.save_example(value, folder, f"{len(seen):02d}_{safe}") is None and isinstance(value, str):
            texts.append({"text": value, "label": name})
        if sum(seen.values()) >= limit:
            break
    if texts:
        write_json_atomic(folder / "examples.json", texts)
