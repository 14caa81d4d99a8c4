"""--recipe auto (issue 13): a plan from the training data, the measured speed and a budget, every
choice with its reason in the record and the card, and a run that keeps to its budget."""

from __future__ import annotations

import json
import math

import pytest

import tlhub
from tlhub.engine.config import TrainConfig
from tlhub.errors import ConfigError

SMALL = dict(data="fashion-mnist", max_train_per_class=8, max_eval_samples=40, batch_size=16, eval_batch_size=40)


def test_recipe_and_budget_are_validated():
    with pytest.raises(ConfigError, match="needs --recipe auto"):
        TrainConfig(budget="5m")
    with pytest.raises(ConfigError, match="recipe"):
        TrainConfig(recipe="fast")
    with pytest.raises(ConfigError, match="not a duration"):
        TrainConfig(recipe="auto", budget="soon")
    assert TrainConfig(recipe="auto", budget="90s").budget == "90s"


def test_auto_recipe_plans_from_the_data_and_keeps_to_its_budget(tmp_path, offline_assets):
    from tlhub.publishing.card import build_model_card

    budget = 45
    result = tlhub.train(**SMALL, recipe="auto", budget=f"{budget}s", output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    record = json.loads((result.model_dir / "tlhub.json").read_text())
    plan = record["recipe"]
    decisions = plan["decisions"]
    # 28 px Fashion-MNIST against Lite0's 224 px: the size was chosen by the probe, not left at 224
    sizes = plan["measured"]["sizes"]
    assert plan["measured"]["source_px"] == 28 and set(sizes) == {"64", "96", "128", "160", "224"}
    chosen = decisions["image_size"]["value"]
    assert str(chosen) in sizes and "leave-one-out probe accuracy" in decisions["image_size"]["reason"]
    best = max(v["loo_accuracy"] for v in sizes.values())
    assert sizes[str(chosen)]["loo_accuracy"] >= best - 0.1 and decisions["crop_pct"]["value"] == 1.0
    assert record["config"]["image_size"] == chosen and record["preprocessing"]["input_size"][-1] == chosen
    assert decisions["strategy"]["value"] in ("lp-ft", "feature-extraction") and decisions["strategy"]["reason"]
    if decisions["strategy"]["value"] == "lp-ft":
        # the epochs the run trained are the plan's, re-planned at the first epoch's measured pace
        assert record["config"]["epochs"] == decisions["epochs"]["value"] >= 1
        assert sum(row["stage"] == "fine-tune" for row in result.history) == decisions["epochs"]["value"]
        first = plan["measured"]["first_epochs"]
        assert first["epochs"] == 1 and first["seconds_each"] > 0
        # and checked again a third and two thirds of the way, each check taking over the length the last one left
        checks = plan["measured"].get("pace_checks", [])
        if decisions["epochs"]["value"] >= 3:
            assert checks and all(c["seconds_each"] > 0 and 1 < c["epochs"] < c["epochs_after"] for c in checks)
            assert [c["epochs_after"] for c in checks[:-1]] == [c["epochs_before"] for c in checks[1:]]
            assert checks[-1]["epochs_after"] == decisions["epochs"]["value"]
    assert plan["planned_s"] <= budget * 1.05 and plan["budget_s"] == budget
    assert plan["actual_s"] <= budget * 1.25, plan  # the tolerance on a small run
    card = str(build_model_card(result.model_dir, "alice/auto-recipe"))
    assert "### Recipe" in card and "`image_size`" in card and "of a 45 s budget" in card
    if "replanned_s" in plan["measured"]:
        assert f"re-planned to {plan['measured']['replanned_s']:.0f} s at the fine-tune's measured pace" in card

    # the same command into the same folder (what a resume is) follows the same plan
    from tlhub.core.factory import resolve_backbone
    from tlhub.data.loading import load_data
    from tlhub.engine.recipe import plan_recipe

    cfg = TrainConfig(**SMALL, recipe="auto", budget=f"{budget}s", output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    source, adapter = resolve_backbone(cfg.backbone)
    data = load_data(cfg.data_spec(), modality="image", decode=adapter.decode_input, progress=False)
    model = adapter.load(source, labels=data.labels)
    said = []
    again, plan2 = plan_recipe(cfg, adapter, model, data, elapsed_s=0.0, say=said.append)
    assert plan2.decisions == decisions and "followed again" in said[0]
    assert again.image_size == chosen
    # ...only while there are checkpoints to resume: the folder deleted (or --no-resume), the plan is made anew
    from tlhub.engine.recipe import _resumable

    assert _resumable(cfg) and not _resumable(cfg.replace(resume=False))
    import shutil

    shutil.rmtree(tmp_path / "run")
    assert not _resumable(cfg)
    (tmp_path / "run" / "checkpoints" / "epoch-0001").mkdir(parents=True)  # a checkpoint never linked in: nothing to resume
    assert not _resumable(cfg)
    said.clear()
    plan_recipe(cfg, adapter, model, data, elapsed_s=0.0, say=said.append)
    assert not any("followed again" in line for line in said) and any(line.startswith("recipe    planned") for line in said)


def test_a_size_whose_fixed_costs_overrun_the_budget_gives_way_to_one_that_leaves_fine_tuning():
    """The rule ``--recipe auto --budget 3m`` met on Protocol A: the probe's best size (224 px) cannot
    even run its feature passes in the budget, 160 px leaves one epoch, 96 px leaves eleven."""
    from tlhub.engine.recipe import FINETUNE_GAIN, RecipePlan, _Fit, _trade_size_for_epochs

    probe = {64: 0.787, 96: 0.810, 128: 0.783, 160: 0.833, 224: 0.857}
    epochs = {64: 20, 96: 11, 128: 6, 160: 1}
    plan = RecipePlan(budget_s=180, planned_s=0)
    plan.measured["sizes"] = {str(s): {"loo_accuracy": v} for s, v in probe.items()}
    plan.decide("image_size", 224, "the probe's best")

    def fit(size, fits=True):
        return _Fit(epochs=epochs.get(size, 0), epoch_s=10.0, fixed_s=50.0, fits=fits, where="", measured={"size": size})

    timed = []
    chosen = _trade_size_for_epochs(plan, lambda s: timed.append(s) or fit(s), fit(224, fits=False))
    assert timed == [160, 128, 96, 64]  # every smaller size was timed, none larger
    assert chosen.measured == {"size": 96} and plan.decisions["image_size"]["value"] == 96
    assert probe[96] + FINETUNE_GAIN > max(probe[160], probe[64] + FINETUNE_GAIN)
    reason = plan.decisions["image_size"]["reason"]
    assert "overrun the budget" in reason and "224 px 0.857 (over budget)" in reason and "96 px 0.810 + 0.06" in reason
    assert plan.measured["size_worth"]["224"]["fits"] is False

    # a probe alone at the best size still wins over fine-tuning at sizes that score far lower
    far = RecipePlan(budget_s=180, planned_s=0)
    far.measured["sizes"] = {"64": {"loo_accuracy": 0.70}, "96": {"loo_accuracy": 0.75}, "224": {"loo_accuracy": 0.857}}
    far.decide("image_size", 224, "the probe's best")
    assert _trade_size_for_epochs(far, fit, fit(224)).measured == {"size": 224}  # 0.857 > 0.75 + 0.06
    assert far.decisions["image_size"]["reason"] == "the probe's best"


def _timed_plan(tmp_path, *, budget_s, planned_s, epoch_seconds, evaluation_seconds, epochs):
    """(data, cfg, plan): a plan of ``epochs`` on 1,000 training images (100 validation) from a timed
    step, as plan_recipe leaves it."""
    from types import SimpleNamespace

    from tlhub.engine.recipe import RecipePlan, _decide_by_length

    data = SimpleNamespace(splits={"train": range(1000), "validation": range(100)}, modality="image")
    cfg = TrainConfig(recipe="auto", budget=f"{budget_s}s", output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    plan = RecipePlan(budget_s=budget_s, planned_s=planned_s)
    plan.measured.update(epoch_seconds=epoch_seconds, evaluation_seconds=evaluation_seconds)
    plan.decide("epochs", epochs, "the timed step")
    _decide_by_length(plan, epochs, n_train=1000, n_val=100, batch_size=32, modality="image")
    return data, cfg, plan


def test_the_first_epoch_re_plans_the_length_and_a_resume_follows_it(tmp_path):
    """A 15-minute plan on Protocol A timed 34.4 s epochs that ran in about 22 s: the first epoch's
    measured pace re-plans what is left, with the settings that follow from the new length, and the
    plan a resume follows says so."""
    from tlhub.engine.recipe import RecipePlan, _memo_path, replan_epochs

    data, cfg, plan = _timed_plan(tmp_path, budget_s=1000, planned_s=990, epoch_seconds=34.4, evaluation_seconds=10.0, epochs=22)
    assert "auto_augment" not in plan.decisions and "ema_decay" not in plan.decisions  # 22 epochs, 704 steps
    # 40 s in, the first epoch took 10 s: (1000 - 40 - 10) // 10 = 95 more, so 96 in all
    paced = replan_epochs(plan, cfg, data, epochs_done=1, epoch_s=10.0, elapsed_s=40.0)
    assert paced.epochs == 96 and plan.decisions["epochs"]["value"] == 96
    reason = plan.decisions["epochs"]["reason"]
    assert reason.startswith("the timed step") and "re-planned after 1 epoch(s)" in reason and "95 more fit" in reason
    # the length now calls for TrivialAugment (30+ epochs) and a weight average (900+ steps: 96 x 32)
    assert paced.auto_augment == "trivialaugment" and paced.ema_decay == 0.9967 and paced.select_by == "last"
    assert plan.planned_s == 990 and plan.measured["replanned_s"] == pytest.approx(1000.0)  # the first plan stays on record
    assert plan.summary_lines()[-1] == "planned 990 s of a 1000 s budget; re-planned to 1000 s at the fine-tune's measured pace"
    assert plan.measured["first_epochs"] == {"epochs": 1, "seconds_each": 10.0, "planned_seconds_each": 34.4, "elapsed": 40.0}
    remembered = json.loads(_memo_path(cfg).read_text())
    assert remembered["decisions"]["epochs"]["value"] == 96 and remembered["decisions"]["auto_augment"]["value"] == "trivialaugment"
    # slower than planned: fewer epochs (never fewer than the one that ran), and what they no longer call for is withdrawn
    slow = replan_epochs(plan, cfg, data, epochs_done=1, epoch_s=100.0, elapsed_s=40.0)
    assert slow.epochs == 10 and slow.auto_augment is None and slow.ema_decay is None
    assert "auto_augment" not in plan.decisions and "ema_decay" not in plan.decisions
    # each call re-plans from the first plan, so its reason is said once
    assert plan.decisions["epochs"]["reason"].count("re-planned") == 1 and plan.measured["planned_epochs"]["value"] == 22
    assert replan_epochs(plan, cfg, data, epochs_done=1, epoch_s=2000.0, elapsed_s=40.0).epochs == 1
    # a plan without fine-tuning epochs (a probe alone) has nothing to re-plan
    probe_only = RecipePlan(budget_s=100, planned_s=40)
    probe_only.decide("strategy", "feature-extraction", "no room")
    alone = replan_epochs(probe_only, cfg, data, epochs_done=1, epoch_s=5.0, elapsed_s=10.0)
    assert alone.strategy == "feature-extraction" and "epochs" not in probe_only.decisions


def test_later_pace_checks_change_the_length_alone(tmp_path):
    """The pace drifts within a run (epochs 1-8 at about 25 s, 9-29 at about 22 s in a 15-minute
    run): a later check re-plans the length from the latest epochs, keeps what the first check
    chose, says so once in the reason, and never ends the fine-tune before its decay."""
    from tlhub.engine.recipe import _memo_path, replan_epochs

    data, cfg, plan = _timed_plan(tmp_path, budget_s=900, planned_s=880, epoch_seconds=29.0, evaluation_seconds=60.0, epochs=26)
    # the first epoch: 27 s, 110 s in -> (900 - 110 - 60) // 27 = 27 more, 28 in all (896 steps: no average yet)
    assert replan_epochs(plan, cfg, data, epochs_done=1, epoch_s=27.0, elapsed_s=110.0).epochs == 28
    assert "ema_decay" not in plan.decisions and "auto_augment" not in plan.decisions
    # 10 epochs in, the latest ran at 23 s: (900 - 340 - 60) // 23 = 21 more, 31 in all
    later = replan_epochs(plan, cfg, data, epochs_done=10, epoch_s=23.0, elapsed_s=340.0, length_only=True)
    assert later.epochs == 31 and plan.decisions["epochs"]["value"] == 31
    # the length alone: 31 epochs would call for TrivialAugment and a weight average at the first check
    assert later.auto_augment is None and later.ema_decay is None and "auto_augment" not in plan.decisions
    reason = plan.decisions["epochs"]["reason"]
    assert reason.count("re-planned after 1 epoch(s)") == 1 and reason.endswith("checked again after 10 epochs: the latest ran at 23.0 s each, "
                                                                                 "so of the 500 s left 21 more fit")
    assert plan.measured["pace_checks"] == [{"epochs": 10, "seconds_each": 23.0, "elapsed": 340.0, "epochs_before": 28, "epochs_after": 31}]
    assert plan.measured["replanned_s"] == pytest.approx(340 + 21 * 23 + 60)
    # a second later check replaces the first one's clause in the reason, and the memo a resume follows says so
    replan_epochs(plan, cfg, data, epochs_done=20, epoch_s=22.0, elapsed_s=570.0, length_only=True)
    assert plan.decisions["epochs"]["value"] == 20 + 270 // 22 == 32
    assert plan.decisions["epochs"]["reason"].count("checked again") == 1 and len(plan.measured["pace_checks"]) == 2
    assert json.loads(_memo_path(cfg).read_text())["decisions"]["epochs"]["value"] == 32
    # far slower than planned: at least one more epoch, for the cosine to decay over
    slow = replan_epochs(plan, cfg, data, epochs_done=25, epoch_s=400.0, elapsed_s=800.0, length_only=True)
    assert slow.epochs == 26 and "at least one, for the decay" in plan.decisions["epochs"]["reason"]


def test_the_re_planned_time_follows_the_latest_pace_even_when_the_epochs_stay(tmp_path):
    """The first check asks again with the augmentation's cost added; an answer of the same epochs
    must still say the time that pace gives, not the first ask's."""
    from tlhub.engine.recipe import replan_epochs

    data, cfg, plan = _timed_plan(tmp_path, budget_s=900, planned_s=880, epoch_seconds=29.0, evaluation_seconds=60.0, epochs=26)
    # 110 s in at 27 s an epoch: (900 - 110 - 60) // 27 = 27 more, 28 in all
    assert replan_epochs(plan, cfg, data, epochs_done=1, epoch_s=27.0, elapsed_s=110.0).epochs == 28
    assert plan.measured["replanned_s"] == pytest.approx(110 + 27 * 27 + 60)
    # asked again at 26.5 s: still 27 more, but they end sooner
    assert replan_epochs(plan, cfg, data, epochs_done=1, epoch_s=26.5, elapsed_s=110.0).epochs == 28
    assert plan.measured["replanned_s"] == pytest.approx(110 + 27 * 26.5 + 60)
    # a plan the pace never moved has no re-planned time to report
    data, cfg, kept = _timed_plan(tmp_path / "kept", budget_s=900, planned_s=880, epoch_seconds=29.0, evaluation_seconds=60.0, epochs=26)
    replan_epochs(kept, cfg, data, epochs_done=1, epoch_s=29.0, elapsed_s=110.0)
    assert kept.decisions["epochs"]["value"] == 26 and "replanned_s" not in kept.measured


def test_a_schedule_stretched_mid_decay_goes_on_from_where_it_is():
    import torch

    from tlhub.engine.trainer import WarmupCosine, warmup_cosine

    factor = WarmupCosine(total_steps=100, warmup_steps=10)
    before = [factor(s) for s in range(41)]
    factor.stretch(at_step=10, total_steps=130)  # at the end of the warm-up: the plain cosine over the new length
    assert factor(70) == pytest.approx(0.5) and factor(130) == 0.0 and [factor(s) for s in range(11)] == before[:11]
    factor = WarmupCosine(total_steps=100, warmup_steps=10)
    factor.stretch(at_step=40, total_steps=160)  # a third into the decay: no jump, then the rest over 120 steps
    assert factor(40) == pytest.approx(before[40]) and factor(41) < factor(40)
    assert factor(100) == pytest.approx(0.5 * (1 + math.cos(math.pi * (1 / 3 + 60 / 120 * 2 / 3))))
    assert factor(160) == pytest.approx(0.0, abs=1e-12)
    shorter = WarmupCosine(total_steps=100, warmup_steps=10)
    shorter.stretch(at_step=40, total_steps=50)  # shortened: the same value at the check, zero at the new end
    assert shorter(40) == pytest.approx(before[40]) and shorter(50) == pytest.approx(0.0, abs=1e-12) and shorter(45) < shorter(40)
    # the anchor travels with a checkpoint (LambdaLR keeps the factor's attributes)
    scheduler = warmup_cosine(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0), total_steps=100, warmup_steps=10)
    scheduler.lr_lambdas[0].stretch(at_step=40, total_steps=160)
    resumed = warmup_cosine(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0), total_steps=100, warmup_steps=10)
    resumed.load_state_dict(scheduler.state_dict())
    assert resumed.lr_lambdas[0](100) == pytest.approx(factor(100))


def test_the_pace_is_checked_after_the_first_epoch_and_at_a_third_and_two_thirds():
    from tlhub.engine.checkpoints import RunState
    from tlhub.engine.strategies import Stage
    from tlhub.engine.trainer import Loop

    def stage(epochs):
        return Stage("fine-tune", epochs=epochs, trainable_groups="all", lr=1e-3, weight_decay=0.05, warmup_epochs=1.0)

    def due(epochs, lengths=None):
        """The epochs after which the pace is checked when the checks set these lengths in turn."""
        lengths, taken, checked, done = list(lengths or []), 0, [], 0
        while done < epochs:
            done += 1
            if Loop._pace_check_due(stage(epochs), RunState(stage_epoch=done), taken):
                checked.append(done)
                taken += done > 1
                epochs = lengths.pop(0) if lengths else epochs
        return checked

    assert due(30) == [1, 10, 20] and due(29) == [1, 10, 19] and due(3) == [1, 2] and due(1) == []
    # checks that move the length move the points, yet each is taken once (the digits run of
    # --budget 5m: 48 epochs, then 45 after epoch 16, 51 after epoch 30 would have checked at 34 too)
    assert due(48, [48, 45, 51]) == [1, 16, 30]
    assert due(30, [30, 12]) == [1, 10, 11]  # shortened past its two-thirds point: checked once more, at the next epoch
    # a resume counts the checks it passed as taken
    assert Loop._pace_checks_passed(stage(30), RunState(stage_epoch=15)) == 1
    assert Loop._pace_checks_passed(stage(30), RunState(stage_epoch=0)) == 0


def test_a_lengthened_schedule_survives_a_checkpoint(tmp_path):
    """The warm-up ends where it did; the cosine decays over the new length; a resumed scheduler
    gets that length back from the checkpoint."""
    import torch

    from tlhub.engine.checkpoints import _load_tree, _save_tree
    from tlhub.engine.trainer import warmup_cosine

    param = torch.nn.Parameter(torch.zeros(1))
    scheduler = warmup_cosine(torch.optim.AdamW([param], lr=1.0), total_steps=40, warmup_steps=10)
    factor = scheduler.lr_lambdas[0]
    before = [factor(s) for s in range(11)]
    factor.total_steps = 110  # what _follow_pace does at the end of the warm-up epoch
    assert [factor(s) for s in range(11)] == before and factor(60) == pytest.approx(0.5) and factor(110) == 0.0
    _save_tree(tmp_path / "sched.safetensors", {"scheduler": scheduler.state_dict()})
    resumed = warmup_cosine(torch.optim.AdamW([param], lr=1.0), total_steps=40, warmup_steps=10)
    resumed.load_state_dict(_load_tree(tmp_path / "sched.safetensors")["scheduler"])
    assert resumed.lr_lambdas[0].total_steps == 110


def test_a_re_plan_that_turns_on_augmentation_pays_for_it_from_the_second_epoch(offline_assets):
    """The first epoch ran without TrivialAugment; when the re-planned length calls for it, the pace
    is re-planned once more with what the policy costs a batch (measured on real images, the run's
    random stream untouched), the schedule stretches to the new length, and the stage says so."""
    import random
    from dataclasses import replace

    import torch
    from accelerate import Accelerator

    from tlhub.core.factory import resolve_backbone
    from tlhub.data.loading import load_data
    from tlhub.engine.checkpoints import RunState
    from tlhub.engine.strategies import Stage
    from tlhub.engine.trainer import Loop, _apply_overrides, load_model, warmup_cosine

    cfg = TrainConfig(**SMALL, image_size=96, crop_pct=1.0, epochs=4)
    source, adapter = resolve_backbone(cfg.backbone)
    data = load_data(cfg.data_spec(), modality="image", decode=adapter.decode_input, progress=False)
    model = load_model(adapter, source, cfg, data.labels)
    _apply_overrides(model, cfg)
    loop = Loop(cfg, Accelerator(), adapter, model, data)

    python_draws, torch_draws = random.getstate(), torch.get_rng_state()
    plain, augmented = loop._collate_seconds(None), loop._collate_seconds("trivialaugment")
    assert plain > 0 and augmented > 0 and model.auto_augment is None
    assert random.getstate() == python_draws and torch.equal(torch.get_rng_state(), torch_draws)

    paces = []

    def pace(done, epoch_s, length_only):  # stands for replan_epochs: 40 epochs, which call for TrivialAugment
        paces.append((epoch_s, length_only))
        return replace(loop.cfg, epochs=40, auto_augment="trivialaugment")

    loop.pace = pace
    stage = Stage("fine-tune", epochs=4, trainable_groups="all", lr=1e-3, weight_decay=0.05, warmup_epochs=1.0)
    # several param groups (layer decay gives one per group): LambdaLR shares one factor among them
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in (0.25, 0.5, 1.0)]
    scheduler = warmup_cosine(torch.optim.AdamW(groups), total_steps=4 * 5, warmup_steps=5)
    state = RunState(stage_epoch=1)
    longer = loop._follow_pace(stage, state, scheduler, 3.0)
    assert longer.epochs == 40 and loop.cfg.epochs == 40 and loop.cfg.auto_augment == "trivialaugment"
    assert [f.total_steps for f in scheduler.lr_lambdas] == [40 * 5] * 3 and not state.stage_done
    # the cosine reaches zero at the new end: every group's learning rate, step by step
    for _ in range(40 * 5 - 1):
        scheduler.optimizer.step()  # no gradients: nothing moves, only the order PyTorch expects
        scheduler.step()
    assert all(g["lr"] < 1e-3 * g["initial_lr"] for g in scheduler.optimizer.param_groups)
    # asked twice: with the first epoch's pace, then with the policy's cost per epoch added (5 batches)
    assert paces[0] == (3.0, False) and len(paces) == 2 and paces[1][0] != 3.0 and paces[1][1] is False
