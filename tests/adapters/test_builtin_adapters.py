"""The adapter contract, checked on every installed adapter with real pretrained weights."""

from __future__ import annotations

import pytest
import torch

import tlhub
from tlhub.adapters import discover
from tlhub.adapters.contract import Preprocessing

# a real backbone per built-in adapter (plugins are checked by their own conformance tests)
BACKBONES = {"timm": "tlhub-offline/tf_efficientnet_lite0.in1k", "transformers": "sentence-transformers/all-MiniLM-L6-v2"}


def _examples(modality):
    if modality == "image":
        from PIL import Image
        from skimage import data

        return [Image.fromarray(data.coffee()), Image.fromarray(data.astronaut())]
    return ["A gripping, beautifully acted film.", "Dull and far too long."]


@pytest.fixture(scope="module", params=[i.name for i in discover(refresh=True) if i.status == "ok" and i.name in BACKBONES])
def loaded(request, offline_assets):
    model = tlhub.create_model(BACKBONES[request.param], labels=["a", "b", "c"])
    return tlhub.get_adapter(request.param), model


def test_features_and_head_shapes(loaded):
    adapter, model = loaded
    batch = adapter.make_collate(model)([adapter.decode_input(x) for x in _examples(adapter.modality)])
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(batch)
        logits = model.forward_head(feats)
        full = model(batch)
    assert feats.shape == (2, model.num_features)
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits, full)


def test_preprocessing_comes_from_the_backbone_config(loaded):
    adapter, model = loaded
    pre = adapter.preprocessing(model)
    assert isinstance(pre, Preprocessing) and pre.modality == adapter.modality
    if adapter.modality == "image":
        # timm's own pretrained cfg for tf_efficientnet_lite0: mean = std = 0.5, 224 px, bicubic
        assert pre.input_size == (3, 224, 224) and pre.mean == (0.5, 0.5, 0.5) and pre.interpolation == "bicubic"
    else:
        assert pre.max_length == 256 and pre.tokenizer


def test_layer_groups_ordered_disjoint_and_exclude_head(loaded):
    _, model = loaded
    groups = model.layer_groups()
    head = set(model.head_parameter_names())
    names = [n for g in groups for n in g.parameter_names]
    assert len(groups) >= 4 and len(names) == len(set(names))
    assert head and not head & set(names)
    assert set(names) | head == {n for n, _ in model.named_parameters()}
    assert groups[0].name in ("stem", "conv_stem", "embeddings")


def test_freezing_keeps_frozen_batchnorm_in_eval(loaded):
    _, model = loaded
    model.freeze_backbone(1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    last = set(model.layer_groups()[-1].parameter_names) | set(model.head_parameter_names())
    assert trainable == last
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            frozen = not any(p.requires_grad for p in module.parameters())
            assert module.training is not frozen
    model.freeze_backbone("all")
    assert all(p.requires_grad for p in model.parameters())
