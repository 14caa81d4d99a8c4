"""``--repeats K``: K real runs with their own seeds, the best on validation kept, mean ± sd reported."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

import tlhub
from tlhub.core.record import TrainingRecord
from tlhub.engine.repeats import RepeatsResult
from tlhub.errors import CheckpointError, ConfigError

from tests.engine.test_trainer import TINY

# higher probe lr: the three seeds' heads (and validation draws) differ visibly in 3 epochs
CFG = dict(TINY, strategy="feature-extraction", probe_lr=0.05, repeats=3, seed=5)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="module")
def repeated(tmp_path_factory, offline_assets, cache_dir):
    out = tmp_path_factory.mktemp("repeats") / "run"
    started = time.perf_counter()
    result = tlhub.train(**CFG, output_dir=str(out), cache_dir=cache_dir)
    return out, result, time.perf_counter() - started


def test_k_runs_with_distinct_seeds_and_the_best_on_validation_kept(repeated):
    out, result, _ = repeated
    assert isinstance(result, RepeatsResult)
    seeds = [5, 6, 7]
    records = {s: TrainingRecord.load(out / "repeats" / f"seed-{s}" / "model") for s in seeds}
    assert [records[s].seed for s in seeds] == seeds
    assert all(records[s].config["repeats"] == 1 for s in seeds)
    # the seed draws the validation split too: its origin names the seed, and its images (the
    # examples/ folder holds one validation image per class) differ between seeds
    for s in seeds:
        assert f"seed {s}" in records[s].dataset.report["split_origin"]["validation"]
    images = {s: sorted(p.read_bytes() for p in (out / "repeats" / f"seed-{s}" / "model" / "examples").glob("*.png")) for s in seeds}
    assert images[5] and images[5] != images[6] and images[6] != images[7]

    # kept = argmax of validation accuracy (ties: lowest validation loss), from the files
    best = max(seeds, key=lambda s: (records[s].best_validation_accuracy, -records[s].best_validation_loss))
    report = json.loads((out / "repeats.json").read_text())
    assert report["kept_seed"] == best == result.kept_seed
    assert report["seeds"] == seeds
    kept = TrainingRecord.load(out / "model")
    assert kept.seed == best
    assert kept.repeats["kept_seed"] == best and len(kept.repeats["runs"]) == 3
    assert (out / "model" / "model.safetensors").read_bytes() == (out / "repeats" / f"seed-{best}" / "model" / "model.safetensors").read_bytes()

    # each run's held-out metrics and interval are those of its eval_results.json
    for run in report["runs"]:
        saved = json.loads((out / "repeats" / f"seed-{run['seed']}" / "model" / "eval_results.json").read_text())
        assert run["test"]["metrics"] == saved["metrics"]
        assert run["test"]["intervals"]["accuracy"]["low"] == saved["intervals"]["accuracy"]["low"]
        assert run["best_validation_accuracy"] == records[run["seed"]].best_validation_accuracy


def test_mean_and_sd_are_numpys(repeated):
    out, _, _ = repeated
    report = json.loads((out / "repeats.json").read_text())
    accs = np.array([run["test"]["metrics"]["accuracy"] for run in report["runs"]])
    assert report["summary"]["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert report["summary"]["accuracy"]["sd"] == pytest.approx(np.std(accs, ddof=1))
    f1 = np.array([run["test"]["metrics"]["f1_macro"] for run in report["runs"]])
    assert report["summary"]["f1_macro"]["sd"] == pytest.approx(np.std(f1, ddof=1))


def test_output_prints_table_and_mean_sd(tmp_path, offline_assets, cache_dir, capsys):
    result = tlhub.train(**dict(CFG, repeats=2), output_dir=str(tmp_path / "two"), cache_dir=cache_dir)
    text = capsys.readouterr().out
    accs = [r["test"]["metrics"]["accuracy"] for r in result.runs]
    assert f"accuracy mean {np.mean(accs):.3f} ± {np.std(accs, ddof=1):.3f} over 2 seeds" in text
    assert "val acc" in text and "kept" in text


def test_card_shows_every_run(repeated):
    from tlhub.publishing.card import build_model_card, validate_card

    out, _, _ = repeated
    report = json.loads((out / "repeats.json").read_text())
    card = str(build_model_card(out / "model", "someone/fmnist-repeats"))
    assert validate_card(card, model_dir=out / "model") == []
    assert "### Repeated runs" in card
    section = card.split("### Repeated runs", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0].isdigit():
            rows[int(cells[0])] = cells
    assert sorted(rows) == report["seeds"]
    for run in report["runs"]:
        seed, val, test, kept = rows[run["seed"]]
        assert float(val) == pytest.approx(run["best_validation_accuracy"], abs=1e-4)
        assert float(test) == pytest.approx(run["test"]["metrics"]["accuracy"], abs=1e-4)
        assert (kept == "kept") == (run["seed"] == report["kept_seed"])
    acc = report["summary"]["accuracy"]
    assert f"test accuracy mean {acc['mean']:.3f} ± {acc['sd']:.3f} (sample sd) over 3 seeds" in section
    assert f"this model is seed {report['kept_seed']}" in section


def test_second_call_reuses_finished_seeds(repeated, cache_dir):
    out, first, first_seconds = repeated
    before = {s: (out / "repeats" / f"seed-{s}" / "model" / "model.safetensors").stat().st_mtime_ns for s in (5, 6, 7)}
    started = time.perf_counter()
    again = tlhub.train(**CFG, output_dir=str(out), cache_dir=cache_dir)
    seconds = time.perf_counter() - started
    assert again.reused_seeds == [5, 6, 7]
    assert again.kept_seed == first.kept_seed and again.summary == first.summary and again.runs == first.runs
    assert {s: (out / "repeats" / f"seed-{s}" / "model" / "model.safetensors").stat().st_mtime_ns for s in (5, 6, 7)} == before
    assert seconds < first_seconds / 2


def test_unfinished_seed_is_trained_and_finished_ones_reused(repeated, tmp_path, cache_dir):
    import shutil

    out, first, _ = repeated
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "repeats" / "seed-7" / "model")  # as if killed before seed 7 saved its model
    result = tlhub.train(**CFG, output_dir=str(copy), cache_dir=cache_dir)
    assert result.reused_seeds == [5, 6]
    assert (copy / "repeats" / "seed-7" / "model" / "eval_results.json").is_file()
    assert result.kept_seed == first.kept_seed  # the same config and seed: the same run


def test_a_single_runs_model_is_not_replaced_without_overwrite(tmp_path, offline_assets, cache_dir):
    out = str(tmp_path / "single")
    tlhub.train(**dict(CFG, repeats=1), output_dir=out, cache_dir=cache_dir)
    with pytest.raises(CheckpointError, match="--overwrite"):
        tlhub.train(**CFG, output_dir=out, cache_dir=cache_dir)


def test_repeats_must_be_positive():
    with pytest.raises(ConfigError, match="repeats"):
        tlhub.TrainConfig(repeats=0)
