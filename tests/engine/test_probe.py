"""The probe that works for every backbone, the per-layer features, and the layer evidence (issue 12).

Real backbones and real data: MiniLM on VADER movie sentences, EfficientNet-Lite0 on Fashion-MNIST.
"""

import json
import os

import numpy as np
import pytest
import torch

import tlhub
from tlhub.engine.config import TrainConfig, feature_layer_indices
from tlhub.engine.probe import cv_accuracy, fit_probe, layer_scores, select_layers, unfreeze_recommendation
from tlhub.engine.strategies import plan_stages
from tlhub.errors import ConfigError

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
LITE0 = "tlhub-offline/tf_efficientnet_lite0.in1k"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("features"))


def test_minilm_probe_learns_instead_of_predicting_the_majority(tmp_path, offline_assets, cache_dir):
    # the repro: the AdamW probe on MiniLM's unit-scale features stayed at the majority class
    result = tlhub.train(backbone=MINILM, data="vader-movies", strategy="feature-extraction", max_train_samples=300,
                         max_eval_samples=400, output_dir=str(tmp_path / "run"), cache_dir=cache_dir, example_top_k=2)
    confusion = np.asarray(json.loads((result.model_dir / "eval_results.json").read_text())["confusion_matrix"])
    predicted = confusion.sum(0) / confusion.sum()
    assert predicted.max() < 0.75, predicted  # both classes predicted, not 99% one of them
    assert result.metrics["accuracy"] > 0.6 and result.metrics["f1_macro"] > 0.6, result.metrics
    assert [row["stage"] for row in result.history] == ["linear-probe"]
    # "last" is MiniLM's own embedding, the mean of layer.5's tokens, not the untrained BERT pooler
    # that feeds the native classifier: a head over that group, saved beside the native weights
    record = json.loads((result.model_dir / "tlhub.json").read_text())
    assert record["layer_head"]["layers"] == [6] and record["layers"]["chosen_names"] == ["layer.5"]
    # the frozen pass's precision (auto: bf16 for text where the CPU has it) is in the record and the card
    from tlhub.engine.trainer import _cpu_has_bf16
    from tlhub.publishing.card import build_model_card

    assert record["feature_precision"] == ("bf16" if _cpu_has_bf16() else "fp32")
    assert f"| frozen feature pass precision | {record['feature_precision']} |" in str(build_model_card(result.model_dir, "alice/minilm-probe"))
    model = tlhub.create_model(MINILM, labels=["neg", "pos"])
    assert model.embedding_group() == 6 and model.layer_groups()[7].name == "pooler"
    reloaded = tlhub.create_model(str(result.model_dir)).eval()
    texts = ["A wonderful, moving film.", "Awful and boring."]
    from tlhub.core.factory import resolve_backbone

    _, adapter = resolve_backbone(str(result.model_dir))
    batch = adapter.make_collate(reloaded)(texts)
    with torch.no_grad():
        logits = reloaded(batch)
        direct = reloaded.layer_head([reloaded.forward_layer_features(batch, [6])[0]])
    torch.testing.assert_close(logits, direct)


def test_lite0_probe_on_fashion_mnist(tmp_path, offline_assets, cache_dir):
    result = tlhub.train(data="fashion-mnist", max_train_per_class=10, max_eval_samples=200, image_size=32, crop_pct=1.0,
                         strategy="feature-extraction", output_dir=str(tmp_path / "run"), cache_dir=cache_dir)
    assert result.metrics["accuracy"] > 0.45, result.metrics  # chance is 0.1
    # the probe went into the model's own linear head: the saved model reloads natively with the same logits
    model = tlhub.create_model(str(result.model_dir)).eval()
    import timm

    native = timm.create_model(f"local-dir:{result.model_dir}", pretrained=True).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model({"pixel_values": x}), native(x))


def test_fit_probe_is_invariant_to_feature_scale():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    a = fit_probe(x[:200], y[:200], x[200:250], y[200:250], seed=0)
    b = fit_probe(x[:200] * 1e-3, y[:200], x[200:250] * 1e-3, y[200:250], seed=0)  # unit-norm-like tiny features
    assert a.C == b.C
    np.testing.assert_allclose(a.logits(x[250:]), b.logits(x[250:] * 1e-3), rtol=1e-4, atol=1e-4)
    assert a.accuracy(x[250:], y[250:]) >= 0.85  # 50 held-out points
    assert cv_accuracy(x, y, folds=3, seed=0) > 0.9
    # without a validation split C is chosen by stratified cross-validation of train
    assert fit_probe(x, y, seed=0).scored_by == "5-fold cv accuracy"


def test_class_weights_reach_the_probe():
    """``class_weights: balanced`` weights the probe's loss as it weights a trained head's: on a
    10:1 skew with overlapping classes the minority's recall rises, and C is chosen by balanced accuracy."""
    rng = np.random.default_rng(1)

    def draw(n_major, n_minor):
        x = np.concatenate([rng.normal(0, 1, (n_major, 5)), rng.normal(0.8, 1, (n_minor, 5))])
        return x, np.concatenate([np.zeros(n_major, np.int64), np.ones(n_minor, np.int64)])

    x, y = draw(400, 40)
    vx, vy = draw(200, 20)
    tx, ty = draw(1000, 1000)
    plain = fit_probe(x, y, vx, vy, seed=0)
    weights = {0: len(y) / (2 * 400), 1: len(y) / (2 * 40)}
    weighted = fit_probe(x, y, vx, vy, seed=0, class_weight=weights)
    assert weighted.scored_by == "validation balanced accuracy"
    recall = lambda p: (p.predict(tx)[ty == 1] == 1).mean()  # noqa: E731
    assert recall(weighted) > recall(plain) + 0.2, (recall(plain), recall(weighted))


def _layer_features(model, images, layers):
    with torch.no_grad():
        return [f.numpy() for f in model.forward_layer_features({"pixel_values": images}, layers)]


@pytest.fixture(scope="module")
def lite0_layers(offline_assets):
    from tlhub.data.builtin import load_builtin

    model = tlhub.create_model(LITE0, labels=[str(i) for i in range(10)]).eval()
    model.set_input_size(32, 1.0)
    from tlhub.core.factory import resolve_backbone

    _, adapter = resolve_backbone(LITE0)
    collate = adapter.make_collate(model)
    data, _ = load_builtin("fashion-mnist", progress=False)
    train = data["train"]
    picked = [i for c in range(10) for i in np.flatnonzero(np.asarray(train["label"][:2000]) == c)[:20]]
    images = [adapter.decode_input(train[int(i)]["input"]) for i in picked]
    labels = np.asarray([train[int(i)]["label"] for i in picked])
    batch = collate(images)
    groups = len(model.layer_groups())
    feats = _layer_features(model, batch["pixel_values"], list(range(groups)))
    return model, {i: f for i, f in enumerate(feats)}, labels


def test_layer_features_and_selection_on_lite0(lite0_layers):
    model, layers, y = lite0_layers
    assert len(layers) == len(model.layer_groups()) == 8
    assert [layers[i].shape[1] for i in range(8)] == [32, 16, 24, 40, 80, 112, 192, 1280]
    scores = layer_scores(layers, y, seed=0)
    assert set(scores) == set(range(8)) and all(0 <= s["score"] <= 1 for s in scores.values())
    chosen = select_layers(layers, y, seed=0, single=scores, max_layers=2)
    best_single = max(s["score"] for s in scores.values())
    assert chosen.score >= best_single and 1 <= len(chosen.layers) <= 2
    assert chosen.steps[0]["score"] == best_single and "greedy forward selection" in chosen.reason
    n, sentence = unfreeze_recommendation({i: s["score"] for i, s in scores.items()}, 8, examples=len(y))
    assert 1 <= n <= 7 and f"unfreeze the last {n}" in sentence


def test_unfreeze_recommendation_starts_where_the_features_stop_improving():
    scores = {0: 0.50, 1: 0.70, 2: 0.86, 3: 0.87, 4: 0.85}
    # 1,000 examples: one standard error of 0.87 is 0.0106, so group 2 (0.86) is as good as the peak
    n, sentence = unfreeze_recommendation(scores, 5, examples=1000)
    assert n == 2 and "group 3 of 5" in sentence and "peak 0.8700 at group 4" in sentence
    # with many more examples the peak is resolved: only the group after it is retrained
    assert unfreeze_recommendation(scores, 5, examples=100_000)[0] == 1
    # a curve that peaks at the last group still retrains one
    assert unfreeze_recommendation({0: 0.5, 1: 0.6, 2: 0.9}, 3, examples=1000)[0] == 1


def test_loo_accuracy_is_the_leave_one_out_of_a_ridge_classifier():
    """The closed-form leave-one-out score equals refitting without each example in turn."""
    from sklearn.linear_model import RidgeClassifier

    from tlhub.engine.probe import Standardizer, loo_accuracy

    rng = np.random.default_rng(0)
    for k in (2, 3):  # binary problems too (scikit-learn's own binary RidgeClassifierCV scores 1.0 on noise)
        x = rng.normal(size=(60, 5)) + np.repeat(np.eye(k, 5) * 1.5, 60 // k, axis=0)
        y = np.repeat(np.arange(k), 60 // k)
        score, alpha = loo_accuracy(x, y, alphas=(0.5,))
        z = Standardizer.fit(x)(x)
        hits = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            hits.append(RidgeClassifier(alpha=0.5 * 5).fit(z[keep], y[keep]).predict(z[i : i + 1])[0] == y[i])
        assert alpha == 0.5 and score == pytest.approx(np.mean(hits))
        # random labels score near chance
        assert loo_accuracy(rng.normal(size=(300, 20)), rng.integers(0, k, 300))[0] < 1 / k + 0.1


def test_minilm_hidden_layers_are_mean_pooled(offline_assets):
    from tlhub.core.factory import resolve_backbone

    model = tlhub.create_model(MINILM, labels=["neg", "pos"]).eval()
    _, adapter = resolve_backbone(MINILM)
    batch = adapter.make_collate(model)(["a fine film", "a dull, lifeless and very long movie"])
    assert model.pooling == "mean"  # its 1_Pooling/config.json says so
    with torch.no_grad():
        feats = model.forward_layer_features(batch, [0, 6, 7])
        out = model.hf_model(**batch, output_hidden_states=True)
        model.forward_features(batch)  # the classifier's input is the last group's features
    mask = batch["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(feats[1], (out.hidden_states[6] * mask).sum(1) / mask.sum(1))
    assert [f.shape for f in feats] == [(2, 384)] * 3


def test_cache_key_grows_by_the_layer_set(offline_assets):
    from tlhub.engine.features import cache_key

    model = tlhub.create_model(LITE0, labels=["a", "b"])
    last = cache_key(model, "p", "d")
    assert last == cache_key(model, "p", "d", None)
    assert len({last, cache_key(model, "p", "d", [7]), cache_key(model, "p", "d", [3, 7]), cache_key(model, "p", "d", [0, 3, 7])}) == 4
    # the pooling of the intermediate maps is part of a layer table's key, not of a last-layer one
    globally = cache_key(model, "p", "d", [3, 7])
    model.layer_grid = 2
    assert cache_key(model, "p", "d", [3, 7]) != globally and cache_key(model, "p", "d") == last


def test_intermediate_maps_are_pooled_over_a_grid(offline_assets):
    model = tlhub.create_model(LITE0, labels=["a", "b"]).eval()
    x = torch.randn(2, 3, 64, 64)
    captured = {}
    handle = model.model.blocks[3].register_forward_hook(lambda m, a, out: captured.setdefault("map", out))
    with torch.no_grad():
        single = model.forward_layer_features({"pixel_values": x}, [4, 7])
        model.layer_grid = 2
        grid = model.forward_layer_features({"pixel_values": x}, [4, 7])
        own = model.forward_features({"pixel_values": x})
    handle.remove()
    fmap = captured["map"]  # (2, 80, 4, 4): blocks.3 is group 4
    assert single[0].shape == (2, 80) and grid[0].shape == (2, 4 * 80)
    cells = grid[0].reshape(2, 80, 2, 2)
    torch.testing.assert_close(cells[:, :, 0, 1], fmap[:, :, :2, 2:].mean((2, 3)))  # top-right cell
    torch.testing.assert_close(cells.mean((2, 3)), single[0])  # equal cells: their mean is the global average
    torch.testing.assert_close(grid[1], own)  # the last group is always the model's own pooled features
    with pytest.raises(ConfigError, match="layer_grid"):
        TrainConfig(backbone=LITE0, data="x", layer_grid=0)


def test_probe_solved_in_the_span_of_its_examples_is_the_same_probe():
    """Wider than its examples, the probe is solved in a basis of their span: the same weights."""
    from tlhub.engine.probe import _Path

    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 400))
    y = (z[:, :3].sum(1) > 0).astype(np.int64) + (z[:, 3] > 1)
    reduced = _Path(z, y, 0, 3)
    assert reduced.basis is not None and reduced.z.shape == (60, 60)
    full = _Path(z, y, 0, 3)
    full.basis, full.z = None, z.astype(np.float32)
    for path in (reduced, full):  # the same optimum, so both solved well past the default tolerance
        path.model.set_params(tol=1e-7)
    for C in (0.01, 0.1):
        (a, ab), (b, bb) = reduced.at(C), full.at(C)
        np.testing.assert_allclose(z @ a.T + ab, z @ b.T + bb, atol=2e-3)


def test_the_regularisation_path_stops_once_it_is_past_its_best():
    from tlhub.engine.probe import PATH_PATIENCE

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 50))
    y = (x[:, 0] > 0).astype(np.int64)  # past some C, weaker regularisation no longer raises the CV score
    Cs = tuple(float(c) for c in np.logspace(-3, 3, 13))
    probe = fit_probe(x, y, seed=0, Cs=Cs)
    tried = list(probe.scores)
    assert tried == sorted(tried) and tried == list(Cs[: len(tried)])
    best = tried.index(max(probe.scores, key=lambda c: (probe.scores[c], -c)))
    assert len(tried) < len(Cs) and len(tried) - 1 - best == PATH_PATIENCE  # the weakest Cs were never solved
    assert probe.C in tried and probe.score == max(probe.scores.values())


def test_adapter_without_intermediate_layers_says_so(offline_assets):
    # the sentence-transformers plugin declares only its last layer (the contract's default)
    model = tlhub.create_model(f"sentence-transformers:{MINILM}", labels=["a", "b"])
    with pytest.raises(ConfigError, match="only offers its last layer") as info:
        model.forward_layer_features({}, [0, 1])
    assert "feature_layers: last" in info.value.fix


def test_feature_layers_is_validated_on_creation():
    assert TrainConfig(feature_layers="7, 3").feature_layers == "3,7"
    assert TrainConfig(feature_layers=[5, 2]).feature_layers == "2,5"
    assert feature_layer_indices(TrainConfig(feature_layers="all"), 4) == [0, 1, 2, 3]
    assert feature_layer_indices(TrainConfig(), 4) == [3]
    for bad in ("some", "1,1", "-1", ""):
        with pytest.raises(ConfigError, match="feature_layers"):
            TrainConfig(feature_layers=bad)
    with pytest.raises(ConfigError, match="groups 0 to 3"):
        feature_layer_indices(TrainConfig(feature_layers="2,9"), 4)
    with pytest.raises(ConfigError, match="probe_solver"):
        TrainConfig(probe_solver="sgd")


def test_unfreeze_auto_follows_the_recommendation():
    cfg = TrainConfig(strategy="lp-ft", unfreeze="auto")
    stages = plan_stages(cfg, 8, recommended_unfreeze=2)
    assert [s.trainable_groups for s in stages] == [0, 2]
    with pytest.raises(ConfigError, match="auto"):
        plan_stages(cfg, 8)
    with pytest.raises(ConfigError, match="auto"):
        TrainConfig(strategy="feature-extraction", unfreeze="auto")
