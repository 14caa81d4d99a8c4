"""The data doctor on small real data (Fashion-MNIST images written as PNG files) with the real
offline EfficientNet-Lite0: each planted defect is found, ``--fix`` writes a copy and never touches
the source, ``--strict`` stops training, and ``class_weights`` reaches the loss, the record and the card."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tlhub
from tlhub.cli.main import main
from tlhub.data.builtin import FASHION_MNIST_LABELS, load_builtin
from tlhub.engine.doctor import IMBALANCE_RATIO, REPORT_FILE, cheap_checks, class_weight_plan
from tlhub.errors import ConfigError, DataError

CLASSES = {1: "Trouser", 5: "Sandal", 7: "Sneaker", 8: "Bag"}  # four distinct classes: a flip is clearly wrong
IMAGE = ["--image-size", "48", "--crop-pct", "1.0"]


def _fashion(split: str, label: int, n: int, skip: int = 0) -> list[bytes]:
    import datasets

    dsd, _ = load_builtin("fashion-mnist", progress=False)
    ds = dsd[split].cast_column("input", datasets.Image(decode=False))
    rows = [i for i, c in enumerate(ds["label"]) if c == label][skip : skip + n]
    return [ds[i]["input"]["bytes"] for i in rows]


def _write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def planted(tmp_path_factory, coffee_png):
    """An image folder (train/ and test/, 4 classes) with one of each defect planted, and where."""
    root = tmp_path_factory.mktemp("planted") / "data"
    for code, name in CLASSES.items():
        for i, png in enumerate(_fashion("train", code, 15)):
            _write(root / "train" / name, f"{i:03d}.png", png)
        for i, png in enumerate(_fashion("test", code, 6)):
            _write(root / "test" / name, f"{i:03d}.png", png)
    where = {}
    # exact duplicates: byte copies inside train
    where["exact_duplicate"] = [_write(root / "train/Sandal", "dup_of_004.png", (root / "train/Sandal/004.png").read_bytes())]
    # near-duplicates: resized and JPEG re-compressed copies
    near = []
    for name in ("Trouser", "Sneaker"):
        buf = io.BytesIO()
        Image.open(root / "train" / name / "007.png").resize((34, 34), Image.BICUBIC).save(buf, "JPEG", quality=75)
        near.append(_write(root / "train" / name, "near_of_007.jpg", buf.getvalue()))
    where["near_duplicate"] = near
    # leakage: test images copied into train
    where["leakage"] = [_write(root / "train/Bag", "leak_of_test_002.png", (root / "test/Bag/002.png").read_bytes())]
    # flipped labels: trousers and sneakers filed as bags and sandals
    flips = []
    for src, dst, i in (("Trouser", "Bag", "011"), ("Sneaker", "Trouser", "012"), ("Bag", "Sneaker", "013")):
        target = root / "train" / dst / f"flip_{src}_{i}.png"
        shutil.move(root / "train" / src / f"{i}.png", target)
        flips.append(target)
    where["label_error"] = flips
    # an outlier: a colour photo of a cup of coffee among the clothes
    where["outlier"] = [_write(root / "train/Bag", "coffee.png", Path(coffee_png).read_bytes())]
    return root, where


def _found(report: dict, kind: str) -> set[str]:
    names = set()
    for f in report["findings"]:
        if f["kind"] == kind:
            names.add(Path(f["file"]).name)
            if f.get("other") and f["other"].get("file"):
                names.add(Path(f["other"]["file"]).name)
    return names


def test_doctor_finds_each_planted_defect_and_fixes_a_copy(planted, tmp_path, offline_assets, capsys):
    root, where = planted
    before = _tree_digest(root)
    cache, out, fixed = tmp_path / "cache", tmp_path / "report", tmp_path / "fixed"
    rc = main(["doctor", str(root), *IMAGE, "--cache-dir", str(cache), "--output", str(out), "--fix", str(fixed)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    report = json.loads((out / REPORT_FILE).read_text())
    for kind, files in where.items():
        found = _found(report, kind) | (_found(report, "near_leakage") if kind == "near_duplicate" else set())
        if kind == "exact_duplicate":  # the original may have been carved into validation: then it is leakage there
            found |= _found(report, "leakage")
        missing = [p.name for p in files if p.name not in found]
        assert not missing, (kind, missing, report["counts"])
    # the leaked copy is the training one, the test image stays
    leak = next(f for f in report["findings"] if f["kind"] == "leakage" and Path(f["file"]).name == "leak_of_test_002.png")
    assert leak["split"] != "test" and leak["other"]["split"] == "test" and leak["score"] == 1.0 and leak["fix"]
    # a flipped trouser is suggested back as a trouser
    flip = next(f for f in report["findings"] if f["kind"] == "label_error" and Path(f["file"]).name == "flip_Trouser_011.png")
    assert flip["label"] == "Bag" and flip["other"]["label"] == "Trouser" and flip["score"] < 0.5
    # near-duplicates are few: no more than one false one per planted
    near = [f for f in report["findings"] if f["kind"] in ("near_duplicate", "near_leakage")]
    assert len(near) <= 2 * len(where["near_duplicate"]), near
    # every finding says where and what to do; one contact sheet per kind found
    assert all(f["fix"] for f in report["findings"])
    for kind in ("exact_duplicate", "leakage", "label_error"):
        if report["counts"].get(kind):
            assert (out / f"doctor_{kind}.png").stat().st_size > 1000
    assert "tlhub doctor" in printed and "cleaned copy" in printed

    # --fix: a copy without the duplicate and the leaked copy; the source is byte-identical
    assert _tree_digest(root) == before
    summary = json.loads((fixed / "doctor_fix.json").read_text())
    assert summary["dropped"]["leakage"] >= 1 and "label_error" not in summary["dropped"]
    copied = {p.read_bytes() for p in (fixed / "train").rglob("*.*")} | {p.read_bytes() for p in (fixed / "validation").rglob("*.*")}
    test_copy = {p.read_bytes() for p in (fixed / "test").rglob("*.*")}
    assert len(test_copy) == 24 and not (copied & test_copy), "a test image is still in train/validation of the copy"
    assert (root / "train/Bag/leak_of_test_002.png").is_file()

    # the features came from the cache train() uses: the same options give a cache hit in training
    result = tlhub.train(data=str(root), image_size=48, crop_pct=1.0, cache_dir=str(cache), strategy="feature-extraction",
                         probe_epochs=2, probe_hflip=False, output_dir=str(tmp_path / "run"))
    assert result.feature_cache["train"] and result.feature_cache["validation"] and result.feature_cache["test"]
    record = json.loads((result.model_dir / "tlhub.json").read_text())
    counts = record["data_checks"]["counts"]
    assert counts["leakage"] >= 1 and counts["exact_duplicate"] + counts["leakage"] >= 2
    from tlhub.publishing.card import build_model_card

    card = str(build_model_card(result.model_dir, "alice/doctor-test"))
    assert "## Data checks" in card and "| leakage |" in card


def test_fix_never_writes_into_the_source(planted, tmp_path, offline_assets, capsys):
    root, _ = planted
    before = _tree_digest(root)
    for target in (root / "cleaned", root):
        assert main(["doctor", str(root), "--no-features", "--output", str(tmp_path / "r"), "--fix", str(target)]) == 2
        assert "never edits data in place" in capsys.readouterr().err
    assert _tree_digest(root) == before and not (root / "cleaned").exists()
    # a cheap-checks-only copy elsewhere works, and reads back as data with the duplicates gone
    assert main(["doctor", str(root), "--no-features", "--output", str(tmp_path / "r"), "--fix", str(tmp_path / "copy")]) == 0
    assert _tree_digest(root) == before
    from tlhub.data.loading import DataSpec, load_data

    copy = load_data(DataSpec(source=str(tmp_path / "copy")), modality="image", progress=False)
    assert cheap_checks(copy).counts["leakage"] == 0 and cheap_checks(copy).counts["exact_duplicate"] == 0


def test_strict_stops_training_and_the_doctor(planted, tmp_path, offline_assets, capsys):
    root, _ = planted
    with pytest.raises(DataError, match="--strict") as info:
        tlhub.train(data=str(root), image_size=32, crop_pct=1.0, strict=True, output_dir=str(tmp_path / "run"))
    assert "leakage" in info.value.message and info.value.fix
    assert not (tmp_path / "run" / "model").exists()
    assert main(["doctor", str(root), "--no-features", "--strict", "--output", str(tmp_path / "r")]) == 2
    assert "--strict" in capsys.readouterr().err


def test_cheap_checks_imbalance_tiny_classes_and_label_variants(tmp_path, offline_assets):
    from tlhub.data.loading import DataSpec, load_data

    root = tmp_path / "data"
    for i, png in enumerate(_fashion("train", 0, 24)):
        _write(root / "train" / "T-shirt", f"{i:03d}.png", png)
    for i, png in enumerate(_fashion("train", 3, 4)):
        _write(root / "train" / "Dress", f"{i:03d}.png", png)
    for i, png in enumerate(_fashion("train", 4, 8)):
        _write(root / "train" / "t_shirt", f"{i:03d}.png", png)  # a variant of T-shirt
    data = load_data(DataSpec(source=str(root), test_split=None, validation_fraction=0.1), modality="image", progress=False)
    report = cheap_checks(data)
    counts = report.counts
    assert counts["imbalance"] == 1 and report.imbalance_ratio > IMBALANCE_RATIO
    assert counts["tiny_class"] == 1 and report.of("tiny_class")[0].label == "Dress"
    variant = report.of("label_variant")[0]
    assert sorted(variant.detail["variants"]) == ["T-shirt", "t_shirt"]
    assert counts["exact_duplicate"] == 0 and counts["leakage"] == 0
    assert any("imbalance" in line for line in report.summary_lines())


def test_class_weight_plan_as_stated():
    labels = ["a", "b", "c"]
    assert class_weight_plan("auto", [10, 10, 10], labels)["applied"] == "none"
    assert class_weight_plan("auto", [30, 10, 10], labels)["applied"] == "none"  # exactly 3:1 is not above it
    plan = class_weight_plan("auto", [100, 10, 10], labels)
    assert plan["applied"] == "balanced" and plan["imbalance_ratio"] == 10.0 and plan["threshold"] == IMBALANCE_RATIO
    assert plan["weights"] == pytest.approx({"a": 120 / 300, "b": 120 / 30, "c": 120 / 30})
    assert class_weight_plan("none", [100, 10, 10], labels)["weights"] is None
    assert class_weight_plan("balanced", [10, 10, 10], labels)["weights"] == pytest.approx({"a": 1.0, "b": 1.0, "c": 1.0})
    with pytest.raises(ConfigError, match="class_weights"):
        tlhub.TrainConfig(class_weights="inverse")


def test_class_weights_reach_the_loss_the_record_and_the_card(tmp_path, offline_assets):
    import torch
    from accelerate import Accelerator

    from tlhub.core.factory import resolve_backbone
    from tlhub.data.loading import load_data
    from tlhub.engine.config import TrainConfig
    from tlhub.engine.trainer import Loop
    from tlhub.publishing.card import build_model_card

    root = tmp_path / "skewed"
    for code, n in ((1, 40), (8, 4)):  # 10:1
        for i, png in enumerate(_fashion("train", code, n)):
            _write(root / "train" / FASHION_MNIST_LABELS[code], f"{i:03d}.png", png)
        for i, png in enumerate(_fashion("test", code, 4)):
            _write(root / "test" / FASHION_MNIST_LABELS[code], f"{i:03d}.png", png)
    common = dict(data=str(root), image_size=32, crop_pct=1.0, strategy="feature-extraction", probe_epochs=1,
                  probe_hflip=False, cache_dir=str(tmp_path / "cache"))

    cfg = TrainConfig(**common)
    source, adapter = resolve_backbone(cfg.backbone)
    data = load_data(cfg.data_spec(), modality="image", progress=False)
    counts = np.bincount(np.asarray(data.splits["train"]["label"]), minlength=2)
    model = adapter.load(source, labels=data.labels)
    for mode, expect in (("auto", "balanced"), ("balanced", "balanced"), ("none", None)):
        loop = Loop(cfg.replace(class_weights=mode), Accelerator(cpu=True), adapter, model, data)
        if expect is None:
            assert loop.criterion.weight is None and loop.class_weights["applied"] == "none"
        else:
            wanted = counts.sum() / (2 * counts)
            assert torch.allclose(loop.criterion.weight, torch.tensor(wanted, dtype=torch.float32))

    result = tlhub.train(**common, output_dir=str(tmp_path / "run"))
    record = json.loads((result.model_dir / "tlhub.json").read_text())
    weights = record["class_weights"]
    assert weights["mode"] == "auto" and weights["applied"] == "balanced" and weights["imbalance_ratio"] > IMBALANCE_RATIO
    assert weights["weights"]["Bag"] > weights["weights"]["Trouser"]
    # the closed-form probe weighs its classes too (C by CV of train, as many folds as the
    # smallest class allows: the validation split is small)
    assert record["probe"]["scored_by"].endswith("-fold cv balanced accuracy")
    assert record["data_checks"]["counts"]["imbalance"] == 1
    card = str(build_model_card(result.model_dir, "alice/skewed"))
    assert "class weights | balanced (auto" in card and "Loss weights per class" in card
