"""The adapter contract declares every hook tlhub calls: defaults, "not supported" errors,
preprocessing restored on reload, batch keys, lineage without local paths, plugin-resolved names.

Real backbones throughout (the offline timm and MiniLM snapshots); plugins used here are real
packages pip-installed into a throwaway folder and run in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import tlhub
from tlhub.adapters import Adapter, BackboneSource, Preprocessing, image_collate
from tlhub.adapters.contract import signature_problems
from tlhub.adapters.registry import _validate
from tlhub.adapters.source import default_weights_info
from tlhub.core.names import resolve
from tlhub.errors import ConfigError, PluginError

LITE0 = "tlhub-offline/tf_efficientnet_lite0.in1k"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _images(n=2):
    from PIL import Image
    from skimage import data

    return [Image.fromarray(data.coffee()), Image.fromarray(data.astronaut())][:n]


# -- preprocessing survives a reload ---------------------------------------------------------


def test_timm_model_set_to_64px_reloads_at_64px(offline_assets, tmp_path):
    from tlhub.core.saving import save_model

    adapter = tlhub.get_adapter("timm")
    model = tlhub.create_model(LITE0, labels=["cup", "face"])
    model.set_input_size(64, 0.95)
    assert adapter.make_collate(model, train=True, augment=True)(_images())["pixel_values"].shape[-2:] == (64, 64)
    save_model(model, tmp_path / "m")

    again = tlhub.create_model(str(tmp_path / "m"))
    pre = adapter.preprocessing(again)
    assert pre.input_size == (3, 64, 64) and pre.crop_pct == 0.95
    assert adapter.make_collate(again)(_images())["pixel_values"].shape == (2, 3, 64, 64)


def test_restore_preprocessing_reapplies_what_the_record_says(offline_assets):
    """What tlhub does on reload for every adapter, on a model whose own config says 224 px."""
    adapter = tlhub.get_adapter("timm")
    model = tlhub.create_model(LITE0)
    assert adapter.preprocessing(model).input_size == (3, 224, 224)
    saved = Preprocessing.from_dict({**adapter.preprocessing(model).to_dict(), "input_size": [3, 96, 64], "crop_pct": 1.0})
    adapter.restore_preprocessing(model, saved)
    assert adapter.preprocessing(model).input_size == (3, 96, 64) and adapter.preprocessing(model).crop_pct == 1.0
    assert adapter.make_collate(model)(_images(1))["pixel_values"].shape == (1, 3, 96, 64)


def test_transformers_max_length_is_restored_on_reload(offline_assets, tmp_path):
    from tlhub.core.saving import save_model

    adapter = tlhub.get_adapter("transformers")
    model = tlhub.create_model(MINILM, labels=["neg", "pos"])
    # above the adapter's default cap of 256: the native files alone would reload at 256
    model.set_max_length(300)
    save_model(model, tmp_path / "m")
    again = tlhub.create_model(str(tmp_path / "m"))
    assert again.max_length == 300 and adapter.preprocessing(again).max_length == 300
    batch = adapter.make_collate(again)(["word " * 400])
    assert batch["input_ids"].shape[1] == 300


# -- "not supported" is an error, never silence -------------------------------------------------


def test_unsupported_hooks_raise_a_config_error_naming_the_adapter(offline_assets):
    from tlhub.engine.config import TrainConfig
    from tlhub.engine.trainer import _apply_overrides

    text = tlhub.create_model(MINILM, labels=["neg", "pos"])
    with pytest.raises(ConfigError, match="adapter 'transformers' cannot change its input size") as info:
        _apply_overrides(text, TrainConfig(backbone=MINILM, image_size=96))
    assert "set_input_size" in info.value.fix
    with pytest.raises(ConfigError, match="no image augmentation"):
        _apply_overrides(text, TrainConfig(backbone=MINILM, auto_augment="trivialaugment"))
    image = tlhub.create_model(LITE0, labels=["a", "b"])
    with pytest.raises(ConfigError, match="adapter 'timm' cannot change its maximum sequence length"):
        _apply_overrides(image, TrainConfig(max_length=64))
    _apply_overrides(image, TrainConfig(image_size=80, auto_augment="trivialaugment"))  # supported: applied
    assert tlhub.get_adapter("timm").preprocessing(image).input_size == (3, 80, 80) and image.auto_augment == "trivialaugment"


def test_override_with_a_wrong_signature_is_reported_by_name():
    from tlhub.adapters.timm.adapter import TimmAdapter

    class WrongLoad(TimmAdapter):
        name = "wrong-load"

        def load(self, source, labels):  # no num_classes / pretrained keywords
            raise NotImplementedError

        def weights_info(self, source, token):  # a parameter tlhub never passes
            raise NotImplementedError

    with pytest.raises(PluginError) as info:
        _validate(WrongLoad, "wrong-load")
    assert "WrongLoad.load" in info.value.message and "'num_classes'" in info.value.message
    assert "WrongLoad.weights_info" in info.value.message and "'token'" in info.value.message

    class TextWithoutCollate(TimmAdapter):
        name, modality = "text-no-collate", "text"

    with pytest.raises(PluginError, match="make_collate"):
        _validate(TextWithoutCollate, "text-no-collate")

    from tlhub.adapters.timm.model import TimmTransferModel

    class BadModel(TimmTransferModel):
        def set_input_size(self, size):  # tlhub passes (size, crop_pct)
            pass

    assert any("BadModel.set_input_size" in p for p in BadModel.contract_problems())
    assert TimmTransferModel.contract_problems() == []
    assert signature_problems(TimmAdapter, Adapter, ("load", "preprocessing")) == []


# -- batch keys ------------------------------------------------------------------------------


def test_a_batch_key_other_than_pixel_values_works_with_erasing_and_hflip(offline_assets):
    from tlhub.adapters.timm.model import TimmTransferModel
    from tlhub.engine.trainer import _hflip, _RandomErasing

    class ImagesModel(TimmTransferModel):
        image_key = "images"

    base = tlhub.create_model(LITE0, labels=["a", "b"])
    model = ImagesModel(base.model, adapter_name="timm", source=LITE0, labels=["a", "b"]).eval()
    pre = tlhub.get_adapter("timm").preprocessing(model)
    collate = image_collate(pre, key=model.image_key)
    plain = collate(_images())
    erased = _RandomErasing(collate, 1.0, model.image_key, "timm")(_images())
    assert set(erased) == {"images"} and erased["images"].shape == plain["images"].shape
    assert not torch.equal(erased["images"], plain["images"])  # p=1: every image has a patch erased
    flipped = _hflip(plain, model.image_key)
    assert torch.equal(flipped["images"], plain["images"].flip(-1))
    with torch.no_grad():
        assert model(flipped).shape == (2, 2)

    with pytest.raises(ConfigError, match="the batch has no 'pixel_values'"):
        _RandomErasing(collate, 0.5, "pixel_values", "timm")(_images())
    with pytest.raises(ConfigError, match="declares none"):
        _RandomErasing(collate, 0.5, None, "text-thing")


# -- lineage -----------------------------------------------------------------------------------


def test_weights_info_of_a_hub_snapshot_has_name_commit_and_licence(offline_assets):
    source = resolve(LITE0)
    info = tlhub.get_adapter("timm").weights_info(source)
    assert (info.name, info.revision, info.license) == (LITE0, source.commit, "apache-2.0")
    assert tlhub.create_model(LITE0).base_weights == info
    minilm = tlhub.get_adapter("transformers").weights_info(resolve(MINILM))
    assert minilm.name == MINILM and minilm.license == "apache-2.0"


def test_weights_info_of_a_local_folder_never_yields_a_path(offline_assets, tmp_path):
    adapter = tlhub.get_adapter("timm")
    folder = tmp_path / "my-backbone"
    adapter.save_native(tlhub.create_model(LITE0), str(folder))
    assert adapter.weights_info(resolve(str(folder))).name is None
    assert tlhub.create_model(str(folder)).base_weights.name is None

    # a README whose base_model is a path says nothing; one that names a Hub repo is believed
    (folder / "README.md").write_text(f"---\nlicense: mit\nbase_model: {tmp_path}/elsewhere\n---\n# x\n")
    info = adapter.weights_info(resolve(str(folder)))
    assert info.name is None and info.license == "mit"
    (folder / "README.md").write_text(f"---\nlicense: apache-2.0\nbase_model: {LITE0}\n---\n# x\n")
    assert adapter.weights_info(resolve(str(folder))).name == LITE0

    # an old tlhub record holding a local path as base_model
    (folder / "README.md").unlink()
    (folder / "tlhub.json").write_text(json.dumps({"base_model": str(tmp_path / "my-backbone"), "base_model_revision": "abc"}))
    info = default_weights_info(BackboneSource(name="x", path=folder, config={}))
    assert info.name is None and info.revision is None
    for value in (info.name, info.revision, info.license):
        assert value is None or str(tmp_path) not in value


# -- plugins: their own names, broken ones ---------------------------------------------------------

_PLUGIN = '''
from tlhub.adapters.source import BackboneSource
from tlhub.adapters.timm.adapter import TimmAdapter
from tlhub.core.names import resolve


class ShortNames(TimmAdapter):
    """timm backbones under short names of its own: 'short:lite0'."""

    name = "short"
    NAMES = {"lite0": "tlhub-offline/tf_efficientnet_lite0.in1k"}

    def resolve_name(self, name, revision):
        if name not in self.NAMES:
            return None
        return resolve(self.NAMES[name], revision=revision)
'''


def _install_plugin(tmp_path) -> dict:
    pkg = tmp_path / "pkg"
    (pkg / "tlhub_short_demo").mkdir(parents=True)
    (pkg / "tlhub_short_demo" / "__init__.py").write_text(textwrap.dedent(_PLUGIN))
    (pkg / "tlhub_short_demo" / "broken.py").write_text("raise RuntimeError('the plugin is broken on purpose')\n")
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "tlhub-short-demo"
        version = "0.0.1"
        [project.entry-points."tlhub.adapters"]
        short = "tlhub_short_demo:ShortNames"
        half-broken = "tlhub_short_demo.broken:Adapter"
        """))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(pkg)],
                   check=True)
    return {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}


def test_plugin_resolves_its_own_names_and_a_broken_plugin_says_why(offline_assets, tmp_path):
    env = _install_plugin(tmp_path)
    script = textwrap.dedent("""
        import json, tlhub
        from tlhub.errors import TlhubError
        model = tlhub.create_model("short:lite0")
        out = {"adapter": model.adapter_name, "base": model.base_weights.name, "classes": model.num_classes}
        try:
            tlhub.create_model("short:not-a-short-name/x")
        except TlhubError as exc:
            out["fallback"] = type(exc).__name__
        try:
            tlhub.create_model("half-broken:org/model")
        except TlhubError as exc:
            out["broken"] = [type(exc).__name__, exc.message, exc.fix]
        print(json.dumps(out))
        """)
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["adapter"] == "short" and out["base"] == LITE0 and out["classes"] == 1000
    assert out["fallback"] == "BackboneNotFoundError"  # None from the hook: resolved as a Hub id, not found
    kind, message, fix = out["broken"]
    assert kind == "PluginError" and "installed but cannot be used" in message and "broken on purpose" in message
    assert "tlhub_short_demo" in message or "broken.py" in message
    assert "assets install" not in fix and "uninstall" in fix
