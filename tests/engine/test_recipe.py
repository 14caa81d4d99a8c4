"""--recipe auto (issue 13): a plan from the training data, the measured speed and a budget, every
choice with its reason in the record and the card, and a run that keeps to its budget."""

from __future__ import annotations

import json

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
        assert record["config"]["epochs"] == decisions["epochs"]["value"] >= 2
    assert plan["planned_s"] <= budget * 1.05 and plan["budget_s"] == budget
    assert plan["actual_s"] <= budget * 1.25, plan  # the tolerance on a small run
    card = str(build_model_card(result.model_dir, "alice/auto-recipe"))
    assert "### Recipe" in card and "`image_size`" in card and "of a 45 s budget" in card

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
