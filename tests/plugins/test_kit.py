"""The adapter conformance kit (tlhub.plugins.kit) on the built-in adapters, and what it reports when
an adapter breaks the contract. The plugins' own runs are in tests/plugins/test_plugins.py.

Each broken adapter below is a built-in adapter (real weights) with exactly one thing broken, the
way a plugin written from the docs broke it; the kit must catch it and name the method to fix.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from tlhub.plugins.kit import CHECKS, ENTRY_POINT_SKIP, ConformanceError, check_adapter

LITE0 = "tlhub-offline/tf_efficientnet_lite0.in1k"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = ["A gripping, beautifully acted film.", "Dull and far too long.", "Charming, funny and moving.", "A tedious mess."]
LABELS = ["espresso", "astronaut", "rocket"]


@pytest.fixture(scope="module")
def photos():
    from PIL import Image
    from skimage import data

    return [Image.fromarray(data.coffee()), Image.fromarray(data.astronaut()), Image.fromarray(data.rocket()), Image.fromarray(data.chelsea())]


def test_timm_adapter_conforms(offline_assets, photos, tmp_path):
    report = check_adapter("timm", LITE0, photos, LABELS, tmp_dir=tmp_path)
    assert [r.name for r in report.results] == list(CHECKS) and report.ok
    assert report.summary().endswith(f"{len(CHECKS)} passed")
    assert "49 frozen BatchNorm layers keep their statistics" in report["freeze"].detail
    assert "its own head (1000 classes)" in report["load"].detail
    assert "auto-detected the adapter" in report["save_reload"].detail
    assert "input_size (3, 224, 224) -> (3, 64, 64)" in report["size_override"].detail
    assert "eval (4, 3, 64, 64), train (4, 3, 64, 64)" in report["collate_size"].detail
    assert "random erasing and horizontal flip run on it" in report["trainer_batch"].detail
    assert "input_size=(3, 64, 64)" in report["saved_preprocessing"].detail
    # Lite0's 8 groups; the 2 x 2 grid widens every spatial map, never the last group
    assert report["layer_features"].detail.startswith("8 groups, widths [")
    assert "layer_grid 2 widens groups [0, 1, 2, 3, 4, 5, 6]" in report["layer_features"].detail


def test_transformers_adapter_conforms(offline_assets, tmp_path):
    report = check_adapter("transformers", MINILM, TEXTS, ["negative", "positive"], tmp_dir=tmp_path)
    assert report.ok and len(report.results) == len(CHECKS)
    assert report["features"].detail.startswith("features (4, 384)")
    assert "max_length 256 -> 8" in report["size_override"].detail
    assert "eval 8 tokens, train 8 tokens" in report["collate_size"].detail
    # token sequences are not spatial: the grid changes nothing; the embedding is the mean-pooled last layer
    assert report["layer_features"].detail == ("8 groups, widths [384, 384, 384, 384, 384, 384, 384, 384]; embedding group 6; "
                                               "layer_grid 2 widens no group (outputs not spatial)")
    assert "max_length=8" in report["saved_preprocessing"].detail


def test_kit_accepts_file_paths_and_an_adapter_instance(offline_assets, coffee_png, tmp_path):
    from tlhub.adapters.timm.adapter import TimmAdapter

    report = check_adapter(TimmAdapter(), LITE0, [coffee_png, str(coffee_png)], ["a", "b"], checks=["entry_point", "features", "predict"],
                           tmp_dir=tmp_path)
    assert [r.name for r in report.results] == ["entry_point", "features", "predict"] and report.ok


# --------------------------------------------------------------------------------------------
# one thing broken at a time, on the real timm adapter and Lite0


def _timm_breaker(name: str, *, model_overrides: dict | None = None, **adapter_overrides):
    """A TimmAdapter subclass (unregistered) with the given methods replaced; ``model_overrides``
    replace methods of the TimmTransferModel it returns (a subclass of it, so nothing else moves)."""
    from tlhub.adapters.timm.adapter import TimmAdapter
    from tlhub.adapters.timm.model import TimmTransferModel

    model_cls = type(f"{name}Model", (TimmTransferModel,), dict(model_overrides or {}))

    def load(self, source, **kwargs):
        model = TimmAdapter.load(self, source, **kwargs)
        model.__class__ = model_cls  # the same object, with the one broken method
        return model

    return type(name, (TimmAdapter,), {"name": "kit-" + name.lower(), "load": load, **adapter_overrides})()


def _run(adapter, photos, tmp_path, checks):
    # 3 training steps: the real adapters need 1-2 (see above), and a broken one runs them all
    return check_adapter(adapter, LITE0, photos, LABELS, checks=checks, tmp_dir=tmp_path, require_entry_point=False,
                         raise_on_failure=False, max_train_steps=3)


def test_an_ignored_input_size_override_names_set_input_size(offline_assets, photos, tmp_path):
    def set_input_size(self, size=None, crop_pct=None):
        """Accepted, and silently ignored (what --image-size met in the torchvision plugin)."""

    adapter = _timm_breaker("IgnoresOverride", model_overrides={"set_input_size": set_input_size})
    report = _run(adapter, photos, tmp_path, ["size_override", "features"])
    assert report["size_override"].status == "failed"
    assert report["size_override"].detail.startswith("TransferModel.set_input_size ignores the override: after model.set_input_size(64")
    assert "input_size is (3, 224, 224)" in report["size_override"].detail
    assert report["features"].passed


def test_a_collate_that_ignores_the_input_size_names_make_collate(offline_assets, photos, tmp_path):
    def make_collate(self, model, *, train=False, augment=False):
        """The checkpoint's own transform, whatever the model's input size now is."""
        import torch
        from timm.data import create_transform, resolve_data_config

        transform = create_transform(**resolve_data_config({}, model=model.model), is_training=False)
        return lambda images: {"pixel_values": torch.stack([transform(img.convert("RGB")) for img in images])}

    report = _run(_timm_breaker("IgnoresSize", make_collate=make_collate), photos, tmp_path, ["size_override", "collate_size", "features"])
    assert report["size_override"].passed and report["features"].passed
    detail = report["collate_size"].detail
    assert report["collate_size"].status == "failed"
    assert detail.startswith("Adapter.make_collate(model, train=False) ignores the model's input size: after model.set_input_size(64")
    assert "the batch is 224x224 px, not 64x64" in detail and "adapter.preprocessing(model)" in detail


def test_a_batch_key_the_trainer_cannot_find_names_image_key(offline_assets, photos, tmp_path):
    from tlhub.adapters.timm.adapter import TimmAdapter

    def make_collate(self, model, *, train=False, augment=False):
        collate = TimmAdapter.make_collate(self, model, train=train, augment=augment)
        return lambda images: {"images": collate(images)["pixel_values"]}

    def pixels(self, batch):  # the model reads its own key; image_key still says "pixel_values"
        return batch["images"]

    adapter = _timm_breaker("OwnKey", make_collate=make_collate, model_overrides={"_pixels": pixels})
    report = _run(adapter, photos, tmp_path, ["features", "trainer_batch"])
    assert report["features"].passed  # the model itself runs on its batch
    assert report["trainer_batch"].status == "failed"
    assert report["trainer_batch"].detail.startswith("TransferModel.image_key is 'pixel_values', but the batch of "
                                                     "Adapter.make_collate(model, train=True, augment=True) has the keys ['images']")


def test_a_training_batch_the_trainer_cannot_read_names_make_collate(offline_assets, photos, tmp_path):
    import torch

    from tlhub.adapters.timm.adapter import TimmAdapter

    def make_collate(self, model, *, train=False, augment=False):
        collate = TimmAdapter.make_collate(self, model, train=train, augment=augment)
        if not train:
            return collate
        # the training collate brings targets of its own, under the key the data loader writes
        return lambda images: {**collate(images), "labels": torch.zeros(len(images), dtype=torch.long)}

    report = _run(_timm_breaker("Labels", make_collate=make_collate), photos, tmp_path, ["trainer_batch"])
    assert report["trainer_batch"].status == "failed"
    assert report["trainer_batch"].detail.startswith("Adapter.make_collate(model, train=True, augment=True) returns a 'labels' key: "
                                                     "the data loader adds the targets under that name")


def test_near_constant_features_name_forward_features(offline_assets, photos, tmp_path):
    from tlhub.adapters.timm.model import TimmTransferModel

    def forward_features(self, batch):  # pooled over the batch instead of over positions
        features = TimmTransferModel.forward_features(self, batch)
        return features.mean(0, keepdim=True).expand_as(features)

    report = _run(_timm_breaker("BatchPooled", model_overrides={"forward_features": forward_features}), photos, tmp_path,
                  ["features", "feature_spread"])
    assert report["feature_spread"].status == "failed"
    assert report["feature_spread"].detail.startswith("TransferModel.forward_features gives near-identical features for different examples")


def test_a_collate_that_loses_the_input_names_make_collate(offline_assets, photos, tmp_path):
    from tlhub.adapters.timm.adapter import TimmAdapter

    def make_collate(self, model, *, train=False, augment=False):
        collate = TimmAdapter.make_collate(self, model, train=train, augment=augment)
        return lambda images: {"pixel_values": collate(images)["pixel_values"].zero_()}  # a blank tensor for every image

    report = _run(_timm_breaker("Blank", make_collate=make_collate), photos, tmp_path, ["feature_spread"])
    assert report["feature_spread"].status == "failed"
    assert report["feature_spread"].detail.startswith("Adapter.make_collate gives the same tensor for every example")


def test_a_loss_that_does_not_move_is_caught(offline_assets, photos, tmp_path):
    from tlhub.adapters.timm.model import TimmTransferModel

    def forward_features(self, batch):  # a pooling bug: features a million times too small
        return TimmTransferModel.forward_features(self, batch) * 1e-6

    def forward(self, batch):
        return self.forward_head(self.forward_features(batch))

    adapter = _timm_breaker("Tiny", model_overrides={"forward_features": forward_features, "forward": forward})
    report = _run(adapter, photos, tmp_path, ["feature_spread", "train_step"])
    assert report["feature_spread"].passed  # the features vary: only their scale is wrong
    detail = report["train_step"].detail
    assert report["train_step"].status == "failed" and detail.startswith("the loss does not move: 3 AdamW steps on the 4 examples")
    assert "the labels' entropy 1.0397" in detail and "TransferModel.forward_head must use the features" in detail


# --------------------------------------------------------------------------------------------
# plugins installed for real (an entry point in a dist-info folder on sys.path, as pip writes it)

PLUGIN_SOURCE = '''
"""Adapters for the kit's tests: the timm adapter with one thing broken."""
import json
from pathlib import Path

from tlhub.adapters.timm.adapter import TimmAdapter


class NoRestoreAdapter(TimmAdapter):
    """Saves the weights with the checkpoint's own preprocessing (as a torchvision-style plugin
    does), and overrides restore_preprocessing for a field of its own, forgetting the rest."""

    name = "kit-no-restore"

    def save_native(self, model, directory):
        written = super().save_native(model, directory)
        path = Path(directory) / "config.json"
        config = json.loads(path.read_text())
        for key in ("input_size", "crop_pct"):
            config["pretrained_cfg"][key] = model.model.pretrained_cfg[key]
        config["tlhub_adapter"] = self.name
        path.write_text(json.dumps(config))
        return written

    def restore_preprocessing(self, model, saved):
        pass
'''


@pytest.fixture(scope="module")
def installed_breakers(tmp_path_factory):
    """``tlhub-kit-breakers``: one working-but-wrong adapter and one whose module cannot be imported."""
    from tlhub.adapters.registry import discover

    site = tmp_path_factory.mktemp("kit-site")
    package = site / "tlhub_kit_breakers"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    (package / "missing_dep.py").write_text("import tlhub_kit_breakers_missing_dependency  # not installed: the plugin forgot it\n")
    info = site / "tlhub_kit_breakers-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tlhub-kit-breakers\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text('[tlhub.adapters]\nkit-no-restore = tlhub_kit_breakers:NoRestoreAdapter\n'
                                           'kit-broken-import = tlhub_kit_breakers.missing_dep:Adapter\n')
    sys.path.insert(0, str(site))
    discover(refresh=True)
    yield site
    sys.path.remove(str(site))
    for module in [m for m in sys.modules if m.startswith("tlhub_kit_breakers")]:
        del sys.modules[module]
    discover(refresh=True)


def test_preprocessing_not_restored_on_reload_names_restore_preprocessing(offline_assets, installed_breakers, photos, tmp_path):
    report = check_adapter("kit-no-restore", LITE0, photos, LABELS, checks=["entry_point", "save_reload", "saved_preprocessing"],
                           tmp_dir=tmp_path, raise_on_failure=False)
    assert report["entry_point"].passed and report["save_reload"].passed  # at its default size it reloads fine
    detail = report["saved_preprocessing"].detail
    assert report["saved_preprocessing"].status == "failed"
    assert detail.startswith("the preprocessing is not restored on reload: after tlhub.core.saving.save_model and tlhub.create_model(folder)")
    assert "input_size=(3, 224, 224) (saved (3, 64, 64))" in detail and "implement Adapter.restore_preprocessing(model, saved)" in detail


def test_an_entry_point_failure_is_reported_once(offline_assets, installed_breakers, photos, tmp_path, capsys):
    report = check_adapter("kit-broken-import", LITE0, photos, LABELS, tmp_dir=tmp_path, raise_on_failure=False)
    assert [r.status for r in report.results] == ["failed"] + ["skipped"] * (len(CHECKS) - 1)
    failure = report.failures[0]
    assert failure.name == "entry_point"
    assert "entry point 'kit-broken-import' (tlhub_kit_breakers.missing_dep:Adapter from tlhub-kit-breakers 1.0)" in failure.detail
    assert "No module named 'tlhub_kit_breakers_missing_dependency'" in failure.detail
    assert all(r.detail == ENTRY_POINT_SKIP for r in report.results[1:])
    text = str(report)
    assert text.count("FAIL") == 1 and len([line for line in text.splitlines() if "tlhub_kit_breakers_missing_dependency" in line]) == 1
    assert f"skip  {len(CHECKS) - 1} checks" in text and "skipped: entry point failed: light_import, load" in text
    with pytest.raises(ConformanceError) as raised:
        report.raise_for_failures()
    assert "failed 1 conformance check(s)" in str(raised.value)

    from tlhub.cli.main import main

    assert main(["plugins", "check", "kit-broken-import", LITE0, "--examples", "a.png", "b.png", "--labels", "a", "b"]) == 1
    out = capsys.readouterr().out
    assert out.count("FAIL") == 1 and len([line for line in out.splitlines() if "missing_dependency" in line]) == 1
    assert "skipped: entry point failed" in out


# --------------------------------------------------------------------------------------------
# several broken rules at once, and the kit's own arguments


def _buggy_adapter():
    """The built-in transformers adapter with three contract bugs, unregistered."""
    from tlhub.adapters.contract import Preprocessing
    from tlhub.adapters.model import LayerGroup
    from tlhub.adapters.transformers.adapter import TransformersAdapter

    class Buggy(TransformersAdapter):
        name = "buggy-text"

        def load(self, source, **kwargs):
            model = super().load(source, **kwargs)
            groups = model.layer_groups

            def layer_groups():  # bug 1: the head inside the layer groups
                return groups() + [LayerGroup("head", tuple(model.head_parameter_names()))]

            model.layer_groups = layer_groups
            # bug 2: the head sees detached features, so fine-tuning never reaches the backbone
            model.head.register_forward_pre_hook(lambda module, args: (args[0].detach(),))
            return model

        def preprocessing(self, model):  # bug 3: the wrong modality
            return Preprocessing(modality="image")

    return Buggy()


def test_layer_features_that_disagree_with_forward_features_name_forward_layer_features(offline_assets, photos, tmp_path):
    from tlhub.adapters.timm.adapter import TimmAdapter

    class Shuffled(TimmAdapter):
        name = "shuffled-layers"

        def load(self, source, **kwargs):
            model = super().load(source, **kwargs)
            own = model.forward_layer_features

            def forward_layer_features(batch, layers):  # the bug: the groups come back in reverse order
                return own(batch, layers)[::-1]

            model.forward_layer_features = forward_layer_features
            return model

    report = check_adapter(Shuffled(), LITE0, photos, LABELS, tmp_dir=tmp_path, require_entry_point=False, raise_on_failure=False,
                           checks=["load", "layer_features"])
    assert report["layer_features"].status == "failed"
    assert "must be pooled to (batch, width)" in report["layer_features"].detail or "differ from forward_features" in report["layer_features"].detail


def test_an_adapter_with_its_last_layer_only_passes_and_says_so(offline_assets, tmp_path):
    from tlhub.adapters.model import TransferModel
    from tlhub.adapters.transformers.adapter import TransformersAdapter

    class LastOnly(TransformersAdapter):
        name = "last-only-text"

        def load(self, source, **kwargs):
            model = super().load(source, **kwargs)
            # the contract's default: refused with the clear error
            model.forward_layer_features = TransferModel.forward_layer_features.__get__(model)
            return model

    report = check_adapter(LastOnly(), MINILM, TEXTS, ["negative", "positive"], tmp_dir=tmp_path, require_entry_point=False,
                           raise_on_failure=False, checks=["load", "layer_features"])
    assert report["layer_features"].status == "passed", report["layer_features"].detail
    assert report["layer_features"].detail.startswith("last layer only")


def test_kit_reports_each_broken_rule_with_what_to_fix(offline_assets, tmp_path):
    report = check_adapter(_buggy_adapter(), MINILM, TEXTS, ["negative", "positive"], tmp_dir=tmp_path, require_entry_point=False,
                           raise_on_failure=False)
    status = {r.name: r.status for r in report.results}
    assert status["entry_point"] == "skipped" and "pip install" in report["entry_point"].detail
    assert status["preprocessing"] == "failed" and "modality is 'image'" in report["preprocessing"].detail
    assert status["size_override"] == "failed" and "max_length is None" in report["size_override"].detail
    assert status["layer_groups"] == "failed" and "holds the head parameter" in report["layer_groups"].detail
    assert status["train_step"] == "failed" and "must not detach" in report["train_step"].detail
    assert status["features"] == "passed" and status["feature_spread"] == "passed" and status["trainer_batch"] == "passed"
    assert status["predict"] == "skipped" and status["saved_preprocessing"] == "skipped"
    assert status["load"] == "passed" and status["save_reload"] == "passed"
    assert not report.ok

    with pytest.raises(ConformanceError) as raised:
        report.raise_for_failures()
    assert isinstance(raised.value, AssertionError)  # pytest shows it as a test failure
    message = str(raised.value)
    assert "adapter 'buggy-text' failed" in message and "- layer_groups: layer group 'head' holds the head parameter" in message


def test_kit_raises_by_default_and_validates_its_arguments(offline_assets, tmp_path):
    from tlhub.errors import ConfigError

    with pytest.raises(ConformanceError, match="no adapter named 'not-installed'") as raised:
        check_adapter("not-installed", MINILM, TEXTS, ["a", "b"], checks=["entry_point", "load"], tmp_dir=tmp_path)
    assert [(r.name, r.status) for r in raised.value.report.results] == [("entry_point", "failed"), ("load", "skipped")]
    with pytest.raises(ConfigError, match="unknown check"):
        check_adapter("timm", LITE0, TEXTS, ["a", "b"], checks=["nope"])
    with pytest.raises(ConfigError, match="at least two labels"):
        check_adapter("timm", LITE0, TEXTS, ["a"])


def test_plugins_check_command_prints_the_report(offline_assets, tmp_path, capsys):
    from tlhub.cli.main import main

    assert main(["plugins", "check", "transformers", MINILM, "--examples", *TEXTS[:2], "--labels", "neg", "pos",
                 "--skip", "space", "light_import"]) == 0
    out = capsys.readouterr().out
    assert "tlhub adapter conformance: transformers on" in out and "FAIL" not in out
    for name in ("save_reload", "size_override", "collate_size", "feature_spread", "trainer_batch", "saved_preprocessing"):
        assert f"PASS  {name} " in out
    assert main(["plugins", "check", "transformers", MINILM, "--examples", *TEXTS[:2], "--labels", "neg", "pos",
                 "--checks", "size_override", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and [r["name"] for r in result["results"]] == ["size_override"]
    assert main(["plugins", "check", "transformers", MINILM, "--examples", "x", "y", "--labels", "a", "b", "--checks", "nope"]) == 2
    assert "unknown check(s) ['nope']" in capsys.readouterr().err
