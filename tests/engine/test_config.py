"""TrainConfig is validated when created, loads from YAML, and is overridden by the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tlhub.engine.config import TrainConfig
from tlhub.errors import ConfigError


def test_defaults_are_the_builtin_job():
    cfg = TrainConfig()
    assert cfg.strategy == "lp-ft" and cfg.backbone.endswith("tf_efficientnet_lite0.in1k") and cfg.data == "fashion-mnist"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"strategy": "lpft"}, "did you mean 'lp-ft'"),
        ({"lr": 0}, "lr: must be > 0"),
        ({"batch_size": 0}, "batch_size: must be >= 1"),
        ({"layer_decay": 1.5}, "layer_decay"),
        ({"unfreeze": "some"}, "unfreeze"),
        ({"on_bad_input": "ignore"}, "on_bad_input"),
        ({"epochs": "three"}, "epochs: expected int"),
        ({"augment": "maybe"}, "not a boolean"),
        ({"random_erasing": 1.5}, "random_erasing: is a probability"),
        ({"ema_decay": 1.0}, "ema_decay: must be in"),
    ],
)
def test_invalid_values_fail_on_creation(changes, message):
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig.from_dict(changes)
    assert info.value.fix


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nlr: 1.0e-4\nstrategy: fine-tune\nunknown_key: 1\n")
    with pytest.raises(ConfigError, match="unknown option"):
        TrainConfig.from_yaml(path)
    path.write_text("epochs: 3\nlr: 1.0e-4\nstrategy: fine-tune\n")
    cfg = TrainConfig.from_yaml(path, epochs=5)
    assert (cfg.epochs, cfg.lr, cfg.strategy) == (5, 1e-4, "fine-tune")
    round_trip = tmp_path / "r.yaml"
    round_trip.write_text(cfg.to_yaml())
    assert TrainConfig.from_yaml(round_trip) == cfg
    # an override given as None means None (tlhub.train(config, test_split=None): no test split)
    path.write_text("epochs: 3\ntest_split: test\nmax_eval_samples: 50\n")
    cfg = TrainConfig.from_yaml(path, test_split=None, max_eval_samples=None)
    assert (cfg.test_split, cfg.max_eval_samples, cfg.epochs) == (None, None, 3)


def test_cli_prints_resolved_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\n")
    out = subprocess.run(
        [sys.executable, "-m", "tlhub", "train", str(path), "--epochs", "4", "--no-augment", "--print-config"],
        capture_output=True, text=True, check=True,
    )
    assert "epochs: 4" in out.stdout and "augment: false" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "tlhub", "train", "--strategy", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "fix:" in bad.stderr and "Traceback" not in bad.stderr


def test_data_config_is_an_option():
    """A Hub dataset's configuration: ``--data-config`` (``data_config`` in YAML), checked on creation."""
    out = subprocess.run(
        [sys.executable, "-m", "tlhub", "train", "--data", "someorg/bilingual", "--data-config", "fr", "--print-config"],
        capture_output=True, text=True, check=True,
    )
    assert "data_config: fr" in out.stdout
    assert TrainConfig.from_dict({"data-config": "en"}).data_config == "en" and TrainConfig().data_config is None
    with pytest.raises(ConfigError, match="data_config: is empty") as info:
        TrainConfig(data_config=" ")
    assert info.value.fix
