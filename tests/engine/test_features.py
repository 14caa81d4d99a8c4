"""tlhub.engine.features: the frozen-feature cache. A run's result must not depend on whether the
cache was warm (issue 11, item 6): computing features must leave every random generator as it
found it, so what follows (head dropout, augmentation, shuffling) draws the same numbers."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import tlhub

# 30 training images at 32 px, a head with dropout (which draws from torch's global generator)
SMALL = dict(
    data="fashion-mnist",
    max_train_per_class=3,
    max_eval_samples=20,
    image_size=32,
    crop_pct=1.0,
    batch_size=16,
    eval_batch_size=20,
    probe_epochs=3,
    drop_rate=0.5,
    augment=False,
    early_stopping_patience=None,
    select_by="last",
)


def _weights(result) -> dict[str, torch.Tensor]:
    return load_file(str(result.model_dir / "model.safetensors"))


def test_cold_and_warm_cache_give_identical_weights(tmp_path, offline_assets):
    # lp-ft: the probe on the cache, then a fine-tuning epoch whose augmentation and dropout draw
    # from the global generators, which the cold run's feature pass must not have moved
    cfg = dict(SMALL, strategy="lp-ft", epochs=1, augment=True, unfreeze="1", cache_dir=str(tmp_path / "features"))
    cold = tlhub.train(**cfg, output_dir=str(tmp_path / "cold"))
    warm = tlhub.train(**cfg, output_dir=str(tmp_path / "warm"))
    assert not any(cold.feature_cache.values()), cold.feature_cache
    assert warm.feature_cache and all(warm.feature_cache.values()), warm.feature_cache
    a, b = _weights(cold), _weights(warm)
    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"{len(different)} tensors differ between the cold and the warm run, e.g. {different[:3]}"
    assert warm.metrics == cold.metrics
    assert [r["train_loss"] for r in warm.history] == [r["train_loss"] for r in cold.history]


def test_computing_features_leaves_the_random_generators_alone(tmp_path, offline_assets):
    """The mechanism itself: a cold cache pass (a DataLoader, the backbone) draws nothing."""
    from tlhub.core.factory import create_model
    from tlhub.engine.features import cached_features

    model = create_model(offline_assets["lite0"], labels=["a", "b"])

    def loader():
        # a DataLoader draws its base seed from torch's global generator when it is iterated
        images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        data = [{"pixel_values": images[i], "labels": torch.tensor(i % 2)} for i in range(6)]
        return torch.utils.data.DataLoader(data, batch_size=3)

    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    table, hit = cached_features(model, loader, key="k", cache_dir=tmp_path)
    assert not hit and len(table) == 6 and table.features["features"].length == model.num_features
    after = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(after[0], expected[0]) and after[1:] == expected[1:]


def test_text_features_are_computed_by_length_and_stored_in_row_order(tmp_path, offline_assets):
    """Texts go through the backbone shortest first (a batch pads to its longest text); the
    cache must still hold each row's own features, in the split's order, with its label."""
    import datasets
    from accelerate import Accelerator

    from tlhub.core.factory import resolve_backbone
    from tlhub.data.loading import load_data
    from tlhub.data.spec import DataSpec
    from tlhub.engine.config import TrainConfig
    from tlhub.engine.features import as_layer_arrays
    from tlhub.engine.trainer import Loop, _length_order

    words = "the film was a quiet triumph of craft and feeling though its pacing dragged badly".split()
    # lengths that are far from sorted, labels that follow no pattern of length
    texts = [" ".join(words[: 1 + (7 * i) % len(words)]) for i in range(24)]
    table = datasets.Dataset.from_dict({"text": texts, "label": [("bad", "good")[(i * 5) % 3 % 2] for i in range(24)]})
    # fp32: the rows are compared with an unpadded fp32 pass to 2e-5 (bf16 passes: the next test)
    cfg = TrainConfig(backbone=offline_assets["minilm"], data="in-memory", eval_batch_size=8, cache_dir=str(tmp_path / "cache"),
                      feature_precision="fp32")
    data = load_data(DataSpec.from_object(table, validation_fraction=0.25, seed=0), modality="text", progress=False)
    source, adapter = resolve_backbone(cfg.backbone)
    model = adapter.load(source, labels=data.labels).eval()
    loop = Loop(cfg, Accelerator(cpu=True), adapter, model, data)

    split = data.splits["train"]
    order = _length_order(split)
    lengths = [len(t) for t in split["input"]]
    assert [lengths[i] for i in order] == sorted(lengths) and list(order) != list(range(len(split)))

    groups = list(range(len(model.layer_groups())))
    arrays, labels = as_layer_arrays(loop.features("train", layers=groups), groups)
    assert labels.tolist() == list(split["label"])
    collate = adapter.make_collate(model)
    with torch.inference_mode():
        for i in (0, 3, len(split) - 1):
            alone = model.forward_layer_features(collate([split[i]["input"]]), groups)  # no padding at all
            for g in groups:
                np.testing.assert_allclose(arrays[g][i], alone[g][0].float().numpy(), atol=2e-5)


def test_feature_precision_auto_and_the_bf16_pass(tmp_path, offline_assets):
    """``feature_precision: auto``: a GPU run's mixed precision; bf16 for a text backbone on a CPU
    with native bf16; fp32 for images. A bf16 pass is its own cache entry, close to the fp32 one."""
    import datasets
    from accelerate import Accelerator

    from tlhub.core.factory import resolve_backbone
    from tlhub.data.loading import load_data
    from tlhub.data.spec import DataSpec
    from tlhub.engine.config import TrainConfig
    from tlhub.engine.features import as_tensors
    from tlhub.engine.trainer import Loop, _cpu_has_bf16, feature_precision
    from tlhub.errors import ConfigError

    text = TrainConfig(backbone=offline_assets["minilm"], data="x")
    native = _cpu_has_bf16()
    assert feature_precision(text, "no", "cpu", "text")[0] == ("bf16" if native else "fp32")
    assert feature_precision(text, "no", "cpu", "image") == ("fp32", "auto")
    assert feature_precision(text, "no", "cuda", "text") == ("fp32", "auto")  # a GPU without bf16: no mixed precision
    assert feature_precision(text, "bf16", "cuda", "image")[0] == "bf16"  # a GPU run's auto mixed precision
    assert feature_precision(text.replace(feature_precision="fp32"), "bf16", "cuda", "text") == ("fp32", "as configured")
    assert feature_precision(text.replace(feature_precision="bf16"), "no", "cpu", "image") == ("bf16", "as configured")
    with pytest.raises(ConfigError, match="feature_precision"):
        TrainConfig(backbone="x", data="y", feature_precision="half")

    words = "a slow and tender portrait that earns every one of its quiet moments".split()
    table = datasets.Dataset.from_dict({"text": [" ".join(words[: 2 + i % 11]) for i in range(16)], "label": ["a", "b"] * 8})
    data = load_data(DataSpec.from_object(table, validation_fraction=0.25, seed=0), modality="text", progress=False)
    source, adapter = resolve_backbone(offline_assets["minilm"])
    model = adapter.load(source, labels=data.labels).eval()
    out = {}
    for precision in ("fp32", "bf16"):
        cfg = text.replace(data="in-memory", eval_batch_size=4, cache_dir=str(tmp_path / "cache"), feature_precision=precision)
        loop = Loop(cfg, Accelerator(cpu=True), adapter, model, data)
        assert loop.feature_precision == precision
        out[precision], _ = as_tensors(loop.features("train"))
        assert loop.feature_hits["train"] is False  # its own key: the other precision's table is not served
    assert len(list((tmp_path / "cache").iterdir())) == 2
    a, b = out["fp32"], out["bf16"]
    assert not torch.equal(a, b)  # the autocast ran
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1)
    assert cosine.min() > 0.999, cosine


def test_every_command_builds_the_same_weights_so_the_cache_key_holds(tmp_path, offline_assets):
    """Layers the checkpoint lacks are initialised at random (all-mpnet-base-v2's
    classifier.dense; here, with pretrained=False, every layer of the real MiniLM architecture):
    they come from the config's seed, not from what the process drew before, so `tlhub select`
    and the `tlhub train` after it compute the same cache key."""
    from tlhub.core.factory import resolve_backbone
    from tlhub.engine.config import TrainConfig
    from tlhub.engine.features import backbone_fingerprint
    from tlhub.engine.trainer import load_model

    cfg = TrainConfig(backbone=offline_assets["minilm"], data="vader-movies", pretrained=False)
    source, adapter = resolve_backbone(cfg.backbone)
    torch.manual_seed(1)
    first = load_model(adapter, source, cfg, ["negative", "positive"])
    after = torch.rand(3)
    torch.manual_seed(1)
    torch.rand(5)  # another history of draws before the load
    second = load_model(adapter, source, cfg, ["negative", "positive"])
    assert backbone_fingerprint(first) == backbone_fingerprint(second)
    other = load_model(adapter, source, cfg.replace(seed=1), ["negative", "positive"])
    assert backbone_fingerprint(other) != backbone_fingerprint(first)  # the seed does decide them
    torch.manual_seed(1)
    assert torch.equal(torch.rand(3), after)  # loading drew nothing from the global generator
