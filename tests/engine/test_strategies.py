"""Each strategy is a plan of stages; layer-wise learning rates decay towards the input."""

from __future__ import annotations

import pytest

from tlhub.engine.config import TrainConfig
from tlhub.engine.strategies import plan_stages


def test_feature_extraction_is_one_cached_head_stage():
    [stage] = plan_stages(TrainConfig(strategy="feature-extraction", probe_epochs=7), 8)
    assert stage.head_only and stage.use_feature_cache and stage.epochs == 7


def test_lp_ft_probes_then_fine_tunes_at_a_lower_lr():
    probe, ft = plan_stages(TrainConfig(strategy="lp-ft", probe_lr=3e-3, lr=1e-3, unfreeze="2"), 8)
    assert probe.head_only and not ft.head_only and ft.trainable_groups == 2 and ft.lr < probe.lr


def test_fine_tune_unfreezes_all():
    [stage] = plan_stages(TrainConfig(strategy="fine-tune", epochs=3), 8)
    assert stage.trainable_groups == 8 and not stage.use_feature_cache


def test_gradual_unfreeze_schedule():
    stages = plan_stages(TrainConfig(strategy="gradual-unfreeze", probe_epochs=2, epochs=5, unfreeze="3", unfreeze_every=1), 8)
    assert [(s.trainable_groups, s.epochs) for s in stages] == [(0, 2), (1, 1), (2, 1), (3, 3)]


@pytest.mark.parametrize("decay", [1.0, 0.5])
def test_layer_wise_lr_decay(decay, offline_assets):
    import tlhub
    from tlhub.engine.trainer import param_groups

    model = tlhub.create_model(offline_assets["lite0"], labels=["a", "b"])
    model.freeze_backbone("all")
    [stage] = plan_stages(TrainConfig(strategy="fine-tune", epochs=1, lr=1e-3, layer_decay=decay), len(model.layer_groups()))
    groups = param_groups(model, stage)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    params = dict(model.named_parameters())
    layer_lrs = [lr_of[id(params[g.parameter_names[0]])] for g in model.layer_groups()]
    assert layer_lrs == sorted(layer_lrs)  # input side slowest
    assert layer_lrs[-1] == pytest.approx(1e-3)
    assert layer_lrs[0] == pytest.approx(1e-3 * decay ** (len(layer_lrs) - 1))
    head = model.head_parameter_names()
    assert lr_of[id(params[head[0]])] == pytest.approx(1e-3)
    # no weight decay on biases and norm weights
    assert all(g["weight_decay"] == 0 for g in groups if all(p.ndim <= 1 for p in g["params"]))
