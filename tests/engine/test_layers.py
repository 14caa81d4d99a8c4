"""Features from several layers and the evidence for which layers to retrain (issue 12), end to end:
real EfficientNet-Lite0 weights on real Fashion-MNIST images, through ``tlhub.train``, the saved
folder, ``tlhub.create_model``, the card and a generated Space."""

from __future__ import annotations

import json
import runpy

import numpy as np
import pytest
import torch

import tlhub
from tests.engine.test_trainer import TINY
from tlhub.core.record import LAYER_HEAD_FILE, TrainingRecord
from tlhub.errors import TlhubError

LITE0 = "tlhub-offline/tf_efficientnet_lite0.in1k"


@pytest.fixture(scope="module")
def layer_run(tmp_path_factory, offline_assets):
    """A feature-extraction run whose head reads the layer groups chosen on the training split."""
    root = tmp_path_factory.mktemp("layers")
    result = tlhub.train(**dict(TINY, max_train_per_class=20), strategy="feature-extraction", feature_layers="all",
                         output_dir=str(root / "run"), cache_dir=str(root / "cache"))
    return result


def test_layers_are_scored_chosen_and_recorded(layer_run):
    model_dir = layer_run.model_dir
    record = TrainingRecord.load(model_dir)
    evidence = json.loads((model_dir / "layers.json").read_text())
    assert record.layers == evidence
    groups = evidence["groups"]
    assert [g["index"] for g in groups] == list(range(8))
    # layer_grid 2 (the default): each intermediate map pooled over 2 x 2 cells, the last group is the model's own features
    assert [g["width"] for g in groups] == [4 * 32, 4 * 16, 4 * 24, 4 * 40, 4 * 80, 4 * 112, 4 * 192, 1280]
    assert all(0.0 <= g["cv_accuracy"] <= 1.0 for g in groups)
    assert evidence["scored_by"] == "leave-one-out ridge"
    # greedy selection starts from the best single group and only adds what helps
    best = max(groups, key=lambda g: (g["cv_accuracy"], g["index"]))
    assert evidence["steps"][0]["added"] == best["index"]
    assert evidence["chosen_cv_accuracy"] >= best["cv_accuracy"]
    assert "greedy forward selection" in evidence["selection"] and "training split" in evidence["selection"]
    if evidence["chosen"] != [7]:  # more than the backbone's own features: a head over those groups
        assert record.layer_head["layers"] == evidence["chosen"]
        assert record.layer_head["widths"] == [groups[i]["width"] for i in evidence["chosen"]]
        assert record.layer_head["grid"] == 2
        assert (model_dir / LAYER_HEAD_FILE).is_file()
    assert (model_dir / "images" / "layer_scores.png").stat().st_size > 5_000
    # a validation split of a few examples is too few to choose C by: 5-fold CV of train chose it
    assert record.probe["solver"] == "newton-cg" and record.probe["scored_by"] == "5-fold cv accuracy"


def test_a_multi_layer_head_reloads_with_identical_logits(tmp_path, offline_assets):
    from tlhub.adapters.model import LayerHead
    from tlhub.core.saving import save_model

    model = tlhub.create_model(LITE0, labels=[str(i) for i in range(4)]).eval()
    model.set_input_size(32, 1.0)
    model.layer_grid = 2  # the saved head says how its features were pooled, and the reload follows it
    head = LayerHead([3, 5, 7], [4 * 40, 4 * 112, 1280], 4, grid=2)
    torch.nn.init.normal_(head.linear.weight, std=0.05)
    model.set_layer_head(head)
    # the layer head alone trains on a frozen backbone: the native classifier takes no part in forward
    model.freeze_backbone(0)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"layer_head_module.linear.weight", "layer_head_module.linear.bias"}
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        before = model({"pixel_values": images})
        own = model.forward_head(model.forward_features({"pixel_values": images}))
    assert not torch.allclose(before, own)  # the layer head, not the native classifier, decides
    save_model(model, tmp_path / "m")
    again = tlhub.create_model(str(tmp_path / "m")).eval()
    assert again.layer_head.spec() == head.spec() and again.layer_grid == 2
    assert again.training_record.preprocessing.input_size == (3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again({"pixel_values": images}), before, rtol=0, atol=0)
    # a model saved before heads recorded their grid pooled globally, and still loads that way
    spec = json.loads((tmp_path / "m" / "tlhub.json").read_text())
    assert spec["layer_head"].pop("grid") == 2
    (tmp_path / "m" / "tlhub.json").write_text(json.dumps(spec))
    assert tlhub.create_model(str(tmp_path / "m")).layer_grid == 1
    # the head lives beside the native weights: without its file the model says so, never falls back
    (tmp_path / "m" / LAYER_HEAD_FILE).unlink()
    with pytest.raises(TlhubError, match="layer_head.safetensors is missing"):
        tlhub.create_model(str(tmp_path / "m"))


def test_saved_multi_layer_model_predicts_as_the_training_run_scored(layer_run):
    """The reloaded folder (backbone + layer head, from images) predicts the run's test rows as the
    run's own final evaluation did (the layer head on cached features)."""
    from tlhub.core.factory import resolve_backbone
    from tlhub.core.prediction import Predictor
    from tlhub.data.loading import load_data
    from tlhub.engine.config import TrainConfig

    record = TrainingRecord.load(layer_run.model_dir)
    _, adapter = resolve_backbone(LITE0)
    data = load_data(TrainConfig.from_dict(record.config).data_spec(), modality="image", decode=adapter.decode_input, progress=False)
    test = data.splits["test"]
    predictor = Predictor.from_pretrained(str(layer_run.model_dir))
    predicted = [p[0].label for p in predictor([row["input"] for row in test], top_k=1)]
    accuracy = np.mean([label == data.labels[row["label"]] for label, row in zip(predicted, test)])
    assert accuracy == pytest.approx(layer_run.metrics["accuracy"], abs=1e-9)


def test_lp_ft_follows_the_unfreeze_recommendation(tmp_path, offline_assets):
    result = tlhub.train(**TINY, strategy="lp-ft", feature_layers="all", unfreeze="auto",
                         output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    record = TrainingRecord.load(result.model_dir)
    n = record.layers["unfreeze"]
    assert 1 <= n <= 7 and f"unfreeze the last {n} group" in record.layers["unfreeze_reason"]
    assert [s["trainable_groups"] for s in record.stages] == [0, n]
    # the fine-tune started from (and kept) the head over the chosen groups
    assert (record.layer_head or {}).get("layers", [7]) == record.layers["chosen"] or record.layers["chosen"] == [7]


def test_card_and_space_of_a_multi_layer_model(layer_run, tmp_path, monkeypatch):
    from tlhub.core.prediction import predict
    from tlhub.publishing.card import build_model_card
    from tlhub.publishing.spaces import build_space

    record = TrainingRecord.load(layer_run.model_dir)
    if record.layer_head is None:
        pytest.skip("the selection kept the last layer alone on this data")
    card = str(build_model_card(layer_run.model_dir, "alice/lite0-layers"))
    assert "### Layers" in card and "images/layer_scores.png" in card
    assert "layer_head.safetensors" in card and "**not** the trained head" in card
    assert "timm.create_model(" not in card  # no native snippet that would silently use the wrong head
    build = build_space(layer_run.model_dir, tmp_path / "space", model_id="alice/lite0-layers")
    assert build.template.name == "tlhub"  # timm's own template would load the native classifier
    assert (build.path / "model" / LAYER_HEAD_FILE).is_file()
    monkeypatch.chdir(build.path)
    app = runpy.run_path(str(build.path / "app.py"), run_name="space_app")
    example = sorted((layer_run.model_dir / "examples").glob("*.png"))[0]
    from PIL import Image

    image = Image.open(example)
    scores = app["classify"](image)
    expected = predict(str(layer_run.model_dir), [image], top_k=len(scores))[0]
    assert list(scores) == [p.label for p in expected]
    assert np.allclose([scores[p.label] for p in expected], [p.score for p in expected], atol=1e-5)


def test_an_adapter_without_intermediate_layers_is_refused_clearly(tmp_path, offline_assets):
    pytest.importorskip("tlhub_sentence_transformers")
    with pytest.raises(TlhubError, match="only offers its last layer") as info:
        tlhub.train(backbone="sentence-transformers:sentence-transformers/all-MiniLM-L6-v2", data="vader-movies",
                    max_train_samples=40, max_eval_samples=20, strategy="feature-extraction", feature_layers="all",
                    output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    assert "feature_layers: last" in info.value.fix
