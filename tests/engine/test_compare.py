"""``tlhub compare`` end to end: two real tiny models (Lite0 probes on Fashion-MNIST), the same test examples."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tlhub
from tlhub.cli.main import main
from tlhub.engine.compare import compare_models, resolve_model
from tlhub.engine.evaluation import evaluate
from tlhub.engine.stats import mcnemar
from tlhub.errors import ConfigError, DataError

# seconds per model on two CPU cores: 32 px images, a linear probe on cached Lite0 features
TINY = dict(
    data="fashion-mnist",
    strategy="feature-extraction",
    max_eval_samples=40,
    image_size=32,
    crop_pct=1.0,
    batch_size=16,
    eval_batch_size=40,
    epochs=1,
    augment=False,
    early_stopping_patience=None,
)
N = 150  # test examples compared (a stratified sample, the same for every model)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, offline_assets):
    root = tmp_path_factory.mktemp("compare")
    cache = str(root / "features")
    # a stronger and a weaker probe: more images and epochs, another seed
    strong = tlhub.train(**TINY, max_train_per_class=10, probe_epochs=4, seed=0, output_dir=str(root / "strong"), cache_dir=cache)
    weak = tlhub.train(**TINY, max_train_per_class=2, probe_epochs=1, seed=1, output_dir=str(root / "weak"), cache_dir=cache)
    return root / "strong", weak.model_dir  # a run folder, and a model folder


def test_compare_cli_end_to_end(runs, tmp_path, capsys):
    strong_run, weak_model = runs
    out = tmp_path / "report"
    assert main(["compare", str(strong_run), str(weak_model), "--split", "test", "--max-samples", str(N), "--output", str(out)]) == 0
    printed = capsys.readouterr().out

    report = json.loads((out / "compare.json").read_text())
    assert report["split"] == "test" and report["num_samples"] == N
    assert [m["name"] for m in report["models"]] == ["strong", "weak"]  # the run folder's name, the model folder's parent's
    assert report["models"][0]["path"] == str(strong_run / "model")
    [pair] = report["pairs"]
    assert (pair["a"], pair["b"]) == ("strong", "weak")
    assert pair["difference"] == pytest.approx(pair["accuracy_a"] - pair["accuracy_b"])
    assert pair["interval"]["low"] <= pair["difference"] <= pair["interval"]["high"]
    assert pair["interval"]["method"] == "paired-bootstrap-percentile" and pair["interval"]["n"] == N
    assert pair["significant"] == (pair["mcnemar"]["p_value"] < 0.05)
    for m in report["models"]:
        assert m["interval"]["low"] <= m["accuracy"] <= m["interval"]["high"]

    # the numbers are those of evaluating each model on its own (tlhub evaluate's path) on the same rows
    a = evaluate(str(strong_run / "model"), split="test", max_samples=N, progress=False)
    b = evaluate(str(weak_model), split="test", max_samples=N, progress=False)
    assert np.array_equal(a.references, b.references)
    assert (pair["accuracy_a"], pair["accuracy_b"]) == pytest.approx((a.accuracy, b.accuracy))
    expected = mcnemar(a.correct(), b.correct())
    assert (pair["mcnemar"]["only_a"], pair["mcnemar"]["only_b"]) == (expected.only_a, expected.only_b)
    assert pair["mcnemar"]["p_value"] == pytest.approx(expected.p_value)

    # the table: both models with intervals, the pair, and a plain verdict
    assert "strong" in printed and "weak" in printed and "McNemar" in printed
    assert f"[{a.intervals['accuracy'].low:.4f}, {a.intervals['accuracy'].high:.4f}]" in printed
    verdict = "a significant difference" if pair["significant"] else "is NOT significant"
    assert verdict in printed and pair["verdict"] in printed

    from PIL import Image

    with Image.open(out / "compare.png") as png:
        assert png.format == "PNG" and png.width > 600 and png.height > 250


def test_a_model_against_itself_is_not_significant(runs, capsys):
    strong_run, _ = runs
    comparison = compare_models([str(strong_run), str(strong_run / "model")], split="test", max_samples=60, progress=False)
    [pair] = comparison.pairs
    assert pair.difference == 0.0 and (pair.interval.low, pair.interval.high) == (0.0, 0.0)
    assert pair.mcnemar.discordant == 0 and pair.mcnemar.p_value == 1.0 and not pair.significant
    assert "NOT significant" in pair.verdict() and "cannot be told apart" in pair.verdict()
    assert [m.name for m in comparison.models] == [str(strong_run), str(strong_run / "model")]  # "strong" twice: full paths
    assert "NOT significant" in comparison.table()


def test_bad_inputs(runs, tmp_path):
    strong_run, _ = runs
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither a run folder"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="at least two"):
        compare_models([str(strong_run)])
    assert main(["compare", str(strong_run), str(tmp_path / "empty")]) == 2  # a clean error, not a traceback
