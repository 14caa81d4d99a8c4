"""tlhub.data: the data-side defects of issue 11 (layouts, rowless files, label variants, classes
without usable rows, single-split evaluation data, unreadable image paths)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tlhub.data.loading import DataSpec, load_data, load_split
from tlhub.data.local import folder_layout_problem
from tlhub.errors import DataError


@pytest.fixture(autouse=True)
def _tlhub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLHUB_CACHE", str(tmp_path / "tlhub-cache"))


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
    return path


@pytest.mark.parametrize("rels,words", [
    (["1.png", "2.png"], "no class folders"),
    (["train/1.png", "test/2.png"], "no class folders"),
    (["cat/1.png", "cat/2.png"], "single class folder"),
    (["a/cat/sub/1.png", "a/dog/sub/2.png"], "too deep"),
    (["cat/1.png", "dog/x/2.png"], "different folder depths"),
    (["cat/1.png", "dog/2.png", "3.png"], "not in any class folder"),
])
def test_layout_problems_are_named(rels, words):
    message, fix = folder_layout_problem(Path("/data"), rels)
    assert words in message and "one folder per class" in fix


@pytest.mark.parametrize("rels", [["cat/1.png", "dog/2.png"], ["train/cat/1.png", "test/dog/2.png"], ["x/train/cat/1.png", "x/train/dog/1.png"]])
def test_good_layouts_pass(rels):
    assert folder_layout_problem(Path("/data"), rels) is None


def test_a_class_whose_every_image_is_unusable_is_dropped(tmp_path):
    root = tmp_path / "data"
    for c in ("cat", "dog"):
        for i in range(4):
            _png(root / "train" / c / f"{i}.png")
        for i in range(2):
            _png(root / "test" / c / f"{i}.png")
    for i in range(4):
        (root / "train" / "bird").mkdir(parents=True, exist_ok=True)
        (root / "train" / "bird" / f"{i}.png").write_text("not a png")
    for i in range(2):
        _png(root / "test" / "bird" / f"{i}.png")
    data = load_data(DataSpec(str(root)), progress=False)
    assert data.labels == ["cat", "dog"] and data.splits["train"].features["label"].names == ["cat", "dog"]
    assert data.report.counts["test"] == 4 and set(data.splits["test"]["label"]) == {0, 1}
    assert any("'bird'" in w and "left out of the label set" in w for w in data.report.warnings)
    assert sum("no usable training rows" in s["reason"] for s in data.report.skipped) == 2


def test_label_variants_warn_with_how_to_merge(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{lab}\n" for i, lab in enumerate(["pos", "Pos", "neg", "neg", "pos", "neg"])))
    data = load_data(DataSpec(str(path)), progress=False)
    (warning,) = [w for w in data.report.warnings if "differ only in case" in w]
    assert "'Pos' and 'pos'" in warning and "one spelling" in warning


def test_header_only_csv_is_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\n")
    with pytest.raises(DataError, match="header row .* but no data rows"):
        load_data(DataSpec(str(path)), progress=False)


def test_image_path_that_is_a_folder_or_unreadable(tmp_path):
    import os

    for i in range(3):
        _png(tmp_path / f"a{i}.png")
        _png(tmp_path / f"b{i}.png")
    (tmp_path / "folder.png").mkdir()
    locked = _png(tmp_path / "locked.png")
    locked.chmod(0)
    rows = [f"a{i}.png,a" for i in range(3)] + [f"b{i}.png,b" for i in range(3)] + ["folder.png,a", "locked.png,b"]
    (tmp_path / "t.csv").write_text("image,label\n" + "\n".join(rows) + "\n")
    data = load_data(DataSpec(str(tmp_path / "t.csv")), modality="image", progress=False)
    reasons = {Path(s["file"]).name: s["reason"] for s in data.report.skipped}
    assert reasons["folder.png"] == "is a folder, not an image file"
    if os.geteuid() != 0:  # root reads it anyway
        assert "permission denied" in reasons["locked.png"]


def test_load_split_scores_a_single_split_or_all(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{'pos' if i % 2 else 'neg'}\n" for i in range(6)))
    data, split = load_split(DataSpec(str(path)), None, labels=["neg", "pos", "other"], modality="text", progress=False)
    assert split == "train" and len(data.splits["evaluation"]) == 6
    assert data.splits["evaluation"].features["label"].names == ["neg", "pos", "other"]
    with pytest.raises(DataError, match="'test' is not in the data") as info:
        load_split(DataSpec(str(path)), "test", labels=["neg", "pos"], progress=False)
    assert "--split" in info.value.fix
    with pytest.raises(DataError, match="not trained on: 'pos'"):
        load_split(DataSpec(str(path)), "train", labels=["neg"], progress=False)
    folder = tmp_path / "f"
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            _png(folder / split / c / "1.png")
    data, split = load_split(DataSpec(str(folder)), "all", labels=["cat", "dog"], modality="image", progress=False)
    assert split == "all" and len(data.splits["evaluation"]) == 4
