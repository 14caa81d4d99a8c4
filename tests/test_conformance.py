"""The adapter conformance kit (tlhub.testing) on the built-in adapters, and what it reports when
an adapter breaks the contract. The plugins' own runs are in tests/test_plugins.py."""

from __future__ import annotations

import pytest

from tlhub.testing import CHECKS, ConformanceError, check_adapter

LITE0 = "tlhub-offline/tf_efficientnet_lite0.in1k"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = ["A gripping, beautifully acted film.", "Dull and far too long.", "Charming, funny and moving.", "A tedious mess."]


@pytest.fixture(scope="module")
def photos():
    from PIL import Image
    from skimage import data

    return [Image.fromarray(data.coffee()), Image.fromarray(data.astronaut()), Image.fromarray(data.rocket()), Image.fromarray(data.chelsea())]


def test_timm_adapter_conforms(offline_assets, photos, tmp_path):
    report = check_adapter("timm", LITE0, photos, ["espresso", "astronaut", "rocket"], tmp_dir=tmp_path)
    assert [r.name for r in report.results] == list(CHECKS) and report.ok
    assert "49 frozen BatchNorm layers keep their statistics" in report["freeze"].detail
    assert "its own head (1000 classes)" in report["load"].detail
    assert "auto-detected the adapter" in report["save_reload"].detail


def test_transformers_adapter_conforms(offline_assets, tmp_path):
    report = check_adapter("transformers", MINILM, TEXTS, ["negative", "positive"], tmp_dir=tmp_path)
    assert report.ok
    assert report["features"].detail.startswith("features (4, 384)")


def test_kit_accepts_file_paths_and_an_adapter_instance(offline_assets, coffee_png, tmp_path):
    from tlhub.adapters.timm_adapter import TimmAdapter

    report = check_adapter(TimmAdapter(), LITE0, [coffee_png, str(coffee_png)], ["a", "b"], checks=["entry_point", "features", "predict"],
                           tmp_dir=tmp_path)
    assert [r.name for r in report.results] == ["entry_point", "features", "predict"] and report.ok


def _buggy_adapter():
    """The built-in transformers adapter with three contract bugs, unregistered."""
    from tlhub.adapters.base import Preprocessing
    from tlhub.adapters.transformers_adapter import TransformersAdapter
    from tlhub.model import LayerGroup

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


def test_kit_reports_each_broken_rule_with_what_to_fix(offline_assets, tmp_path):
    report = check_adapter(_buggy_adapter(), MINILM, TEXTS, ["negative", "positive"], tmp_dir=tmp_path, require_entry_point=False,
                           raise_on_failure=False)
    status = {r.name: r.status for r in report.results}
    assert status["entry_point"] == "skipped" and "pip install" in report["entry_point"].detail
    assert status["preprocessing"] == "failed" and "modality is 'image'" in report["preprocessing"].detail
    assert status["layer_groups"] == "failed" and "holds the head parameter" in report["layer_groups"].detail
    assert status["train_step"] == "failed" and "must not detach" in report["train_step"].detail
    assert status["features"] == "passed"
    assert status["predict"] == "skipped"
    assert status["load"] == "passed" and status["save_reload"] == "passed"
    assert not report.ok

    with pytest.raises(ConformanceError) as raised:
        report.raise_for_failures()
    assert isinstance(raised.value, AssertionError)  # pytest shows it as a test failure
    message = str(raised.value)
    assert "adapter 'buggy-text' failed" in message and "- layer_groups: layer group 'head' holds the head parameter" in message


def test_kit_raises_by_default_and_validates_its_arguments(offline_assets, tmp_path):
    with pytest.raises(ConformanceError, match="no adapter named 'not-installed'"):
        check_adapter("not-installed", MINILM, TEXTS, ["a", "b"], checks=["entry_point", "load"], tmp_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown check"):
        check_adapter("timm", LITE0, TEXTS, ["a", "b"], checks=["nope"])
    with pytest.raises(ValueError, match="at least two labels"):
        check_adapter("timm", LITE0, TEXTS, ["a"])


def test_plugins_check_command_prints_the_report(offline_assets, tmp_path, capsys):
    from tlhub.cli import main

    assert main(["plugins", "check", "transformers", MINILM, "--examples", *TEXTS[:2], "--labels", "neg", "pos",
                 "--skip", "space", "light_import"]) == 0
    out = capsys.readouterr().out
    assert "tlhub adapter conformance: transformers on" in out and "PASS  save_reload" in out and "FAIL" not in out
