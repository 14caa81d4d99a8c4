"""Stage 1 from evidence (issue 13): ``tlhub select`` ranks real offline backbones on the training
split, writes select.json + select.png, and ``--backbone auto`` trains the winner from the same
cached features, saying in the record and card how it was chosen."""

from __future__ import annotations

import json

import pytest

import tlhub
from tlhub.engine.config import parse_budget
from tlhub.engine.selection import Selection, select_backbone
from tlhub.errors import ConfigError
from tests.conftest import LITE0, MINILM, MOBILENET

SMALL = dict(data="fashion-mnist", max_train_per_class=8, max_eval_samples=40, image_size=32, crop_pct=1.0, probe_epochs=1)


def test_select_ranks_candidates_and_the_winner_trains_from_the_cache(tmp_path, capsys, offline_assets):
    from tlhub.cli.main import main

    cache = str(tmp_path / "cache")
    out = tmp_path / "select"
    argv = ["select", "--data", "fashion-mnist", "--max-train-per-class", "8", "--image-size", "32", "--crop-pct", "1.0",
            "--candidates", LITE0, MOBILENET, MINILM, "--cache-dir", cache, "--output", str(out), "--folds", "3"]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    saved = json.loads((out / "select.json").read_text())
    assert (out / "select.png").stat().st_size > 0
    ranked = sorted((c for c in saved["candidates"] if c["rank"]), key=lambda c: c["rank"])
    assert [c["backbone"] for c in ranked] and {c["backbone"] for c in ranked} == {LITE0, MOBILENET}
    minilm = next(c for c in saved["candidates"] if c["backbone"] == MINILM)
    assert minilm["skipped"] == "a text backbone; the data is image" and minilm["rank"] is None
    for c in ranked:
        assert 0.1 < c["cv_accuracy"] <= 1 and len(c["cv_folds"]) == 3 and c["cv_sd"] >= 0
        assert c["feature_dim"] > 0 and c["parameters"] > 1e6 and c["epoch_seconds"] > 0 and isinstance(c["logme"], float)
    assert ranked[0]["cv_accuracy"] >= ranked[1]["cv_accuracy"]
    assert saved["winner"] == ranked[0]["backbone"] and saved["num_train"] == 80  # 8 per class; validation comes from other rows
    assert f"tlhub train --data fashion-mnist --backbone {saved['winner']}" in stdout

    # the winner's training features were cached by select: its probe stage reads them back
    result = tlhub.train(**SMALL, backbone=saved["winner"], strategy="feature-extraction", cache_dir=cache, output_dir=str(tmp_path / "run"))
    assert result.feature_cache["train"] is True


def test_backbone_auto_records_the_choice_in_the_record_and_card(tmp_path, offline_assets, monkeypatch):
    from tlhub.engine import selection
    from tlhub.publishing.card import build_model_card

    # two candidates keep it quick; the default is every installed backbone of the data's modality
    monkeypatch.setattr(selection, "available_backbones", lambda modality: [LITE0, MOBILENET] if modality == "image" else [])
    result = tlhub.train(**SMALL, backbone="auto", strategy="feature-extraction", cache_dir=str(tmp_path / "cache"),
                         output_dir=str(tmp_path / "run"))
    record = json.loads((result.model_dir / "tlhub.json").read_text())
    chosen = record["selection"]["winner"]
    assert chosen in (LITE0, MOBILENET) and record["config"]["backbone"] == chosen
    assert record["selection"]["summary"].startswith("chosen by `tlhub select` over 2 candidates")
    assert (result.model_dir / "select.json").is_file() and (result.model_dir / "images" / "select.png").is_file()
    assert result.feature_cache["train"] is True  # the selection's feature pass, reused
    card = str(build_model_card(result.model_dir, "alice/auto"))
    assert "### Backbone" in card and "chosen by `tlhub select` over 2 candidates" in card and "select.png" in card


def test_budget_and_its_parsing(tmp_path, offline_assets):
    assert parse_budget("90s") == 90 and parse_budget("5m") == 300 and parse_budget("1h") == 3600 and parse_budget(None) is None
    for bad in ("soon", "-1m", "0"):
        with pytest.raises(ConfigError):
            parse_budget(bad)
    from tlhub.engine.config import TrainConfig

    cfg = TrainConfig(**{k: v for k, v in SMALL.items() if k != "probe_epochs"}, cache_dir=str(tmp_path / "cache"))
    sel = select_backbone(cfg, [LITE0, MOBILENET], budget_s=1e-6, folds=3, progress=False, say=lambda *a: None)
    assert sel.candidates[0].scored and "budget" in sel.candidates[1].skipped  # the first always runs
    again = Selection.from_dict(json.loads(json.dumps(sel.to_dict())))
    assert again.winner.backbone == LITE0 and again.to_dict() == sel.to_dict()
