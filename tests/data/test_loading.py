"""tlhub.data (loading and its stages) / tlhub.data.builtin: sources, checks, labels, splits, report, data loaders."""

from __future__ import annotations

import gzip
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tlhub.errors import ConfigError, DataError

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from tlhub.data.loading import DataSpec, load_data, make_dataloader  # noqa: E402


@pytest.fixture(autouse=True)
def _tlhub_cache(tmp_path, monkeypatch):
    """Everything but the built-ins caches under tmp (built-ins: see the builtin_cache fixture)."""
    monkeypatch.setenv("TLHUB_CACHE", str(tmp_path / "tlhub-cache"))


@pytest.fixture(scope="session")
def builtin_cache():
    """Built-ins are built once per machine in the user's tlhub cache (honouring TLHUB_CACHE)."""
    from tlhub.data.builtin import cache_root

    return str(cache_root())


# -- helpers -------------------------------------------------------------------------------------


def _png(path: Path, mode: str, size=(8, 8), value=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray((np.arange(size[0] * size[1], dtype=np.uint16).reshape(size) * 700)).save(path)
    else:
        Image.new(mode, size, value if value is not None else {"RGB": (200, 10, 10), "L": 128, "RGBA": (0, 0, 255, 100), "CMYK": (0, 50, 100, 0)}[mode]).save(path)
    return path


def make_mixed_image_folder(root: Path) -> dict[str, Path]:
    """cat/: RGB PNG, L PNG, truncated JPEG, text file named .png; dog/: RGBA PNG, CMYK JPEG, 16-bit TIFF, RGB JPEG."""
    files = {
        "rgb": _png(root / "cat" / "rgb.png", "RGB"),
        "grey": _png(root / "cat" / "grey.png", "L"),
        "rgba": _png(root / "dog" / "rgba.png", "RGBA"),
        "cmyk": _png(root / "dog" / "cmyk.jpg", "CMYK"),
        "i16": _png(root / "dog" / "deep.tif", "I;16"),
        "rgb2": _png(root / "dog" / "photo.jpg", "RGB", size=(16, 12)),
    }
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "JPEG")
    (root / "cat" / "truncated.jpg").write_bytes(buf.getvalue()[:200])
    (root / "cat" / "notanimage.png").write_text("this is not a PNG")
    files["truncated"] = root / "cat" / "truncated.jpg"
    files["notimage"] = root / "cat" / "notanimage.png"
    assert Image.open(files["i16"]).mode == "I;16" and Image.open(files["cmyk"]).mode == "CMYK"
    return files


def _text_rows(n_pos: int, n_neg: int) -> list[tuple[str, str]]:
    return [(f"good film number {i}", "pos") for i in range(n_pos)] + [(f"bad film number {i}", "neg") for i in range(n_neg)]


def _write_csv(path: Path, rows, header=("text", "label")) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


# -- DataSpec ------------------------------------------------------------------------------------


def test_spec_validation():
    DataSpec("fashion-mnist")
    with pytest.raises(ConfigError, match="on_bad_input"):
        DataSpec("x", on_bad_input="ignore")
    with pytest.raises(ConfigError, match="validation_fraction"):
        DataSpec("x", validation_fraction=1.5)
    with pytest.raises(ConfigError, match="max_train_per_class"):
        DataSpec("x", max_train_per_class=0)
    with pytest.raises(ConfigError, match="training split"):
        DataSpec("x", test_split="train")
    with pytest.raises(ConfigError, match="empty"):
        DataSpec("  ")
    with pytest.raises(ConfigError, match="from_object"):
        DataSpec(42)
    with pytest.raises(ConfigError, match="did you mean"):
        DataSpec.from_dict({"source": "x", "label_colum": "y"})
    spec = DataSpec("x", max_train_per_class=5)
    assert DataSpec.from_dict(spec.to_dict()) == spec


# -- image folders -------------------------------------------------------------------------------


def test_imagefolder_mixed_modes_skip(tmp_path):
    files = make_mixed_image_folder(tmp_path / "pets")
    data = load_data(DataSpec(str(tmp_path / "pets"), validation_fraction=0.25), progress=False)
    report = data.report
    assert data.modality == "image" and data.labels == ["cat", "dog"]
    assert report.input_column == "image" and report.label_column == "label"
    # 8 files: 2 bad ones skipped, named by file, with the reason
    skipped = {Path(s["file"]).name: s["reason"] for s in report.skipped}
    assert set(skipped) == {"truncated.jpg", "notanimage.png"}
    assert {s["file"] for s in report.skipped} == {str(files["truncated"]), str(files["notimage"])}
    assert "truncated" in skipped["truncated.jpg"] and "not an image" in skipped["notanimage.png"]
    assert sum(report.counts.values()) == 6 and report.counts["validation"] >= 1
    assert set(data.splits) == {"train", "validation"} and not report.test_evaluation
    # conversions to RGB, counted by original mode over all splits
    total = Counter()
    for per in report.converted.values():
        total.update(per)
    assert total == Counter({"L": 1, "RGBA": 1, "CMYK": 1, "I;16": 1})
    text = report.summary()
    for needle in ("greyscale (L)", "CMYK", "RGBA", "16-bit", "skipped 2 rows", "truncated.jpg", "no test evaluation"):
        assert needle in text, needle
    d = report.to_dict()
    assert d["skipped_count"] == 2 and d["converted_total"]["CMYK"] == 1
    # every prepared image decodes to RGB; labels are a ClassLabel with the real names
    assert data.splits["train"].features["label"].names == ["cat", "dog"]
    for split in data.splits.values():
        for row in split:
            assert row["input"].convert("RGB").size[0] > 0
    assert set(data.fingerprints) == {"train", "validation"}


def test_imagefolder_error_policy_names_files(tmp_path):
    make_mixed_image_folder(tmp_path / "pets")
    with pytest.raises(DataError) as info:
        load_data(DataSpec(str(tmp_path / "pets"), on_bad_input="error"), progress=False)
    msg = str(info.value)
    assert "truncated.jpg" in msg and "notanimage.png" in msg and "2 bad row(s)" in msg
    assert "--on-bad-input skip" in info.value.fix


def test_imagefolder_split_folders_and_decode_hook(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        for cls, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
            for i in range(n):
                _png(tmp_path / "ds" / split / cls / f"{i}.png", "RGB", value=colour)
    seen = []

    def decode(img):
        seen.append(img.mode)
        return img

    data = load_data(DataSpec(str(tmp_path / "ds")), modality="image", decode=decode, progress=False)
    assert data.labels == ["blue", "red"]
    assert data.report.counts["test"] == 4 and data.report.counts["train"] + data.report.counts["validation"] == 8
    assert data.report.class_counts["validation"] == {"blue": 1, "red": 1}  # 10% of 4, at least one per class
    assert seen and set(seen) == {"RGB"}
    with pytest.raises(DataError, match="takes text input"):
        load_data(DataSpec(str(tmp_path / "ds")), modality="text", progress=False)


# -- text files ----------------------------------------------------------------------------------


def test_csv_non_utf8_row_is_repaired_and_named(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = _text_rows(10, 10)
    body = "text,label\n" + "".join(f"{t},{l}\n" for t, l in rows)
    raw = body.encode("utf-8").replace(b"good film number 3", b"caf\xe9 film number 3")  # a Latin-1 byte
    path.write_bytes(raw)
    data = load_data(DataSpec(str(path), validation_fraction=0.2), progress=False)
    assert data.modality == "text" and data.labels == ["neg", "pos"]
    assert sum(data.report.counts.values()) == 20 and not data.report.skipped
    rows_fixed = [r for r in data.report.repaired if "row" in r]
    assert len(rows_fixed) == 1 and rows_fixed[0]["row"] == 3 and rows_fixed[0]["file"] == str(path)
    assert any(r.get("line") == 5 for r in data.report.repaired)  # header + 4 rows before it
    assert any("not valid UTF-8" in w for w in data.report.warnings)
    texts = [t for s in data.splits.values() for t in s["input"]]
    assert "caf\ufffd film number 3" in texts
    assert "replacement" in data.report.summary()


def test_text_none_and_empty_rows_skipped(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["fine", None, "   ", "also fine", "great", "awful"], "label": ["a", "a", "b", "b", "a", "b"]})
    data = load_data(DataSpec.from_object(ds), progress=False)
    reasons = {s["row"]: s["reason"] for s in data.report.skipped}
    assert reasons == {1: "text is missing (None)", 2: "text is empty"}
    assert sum(data.report.counts.values()) == 4
    with pytest.raises(DataError, match="row 1"):
        load_data(DataSpec.from_object(ds, on_bad_input="error"), progress=False)


def test_missing_label_column_lists_columns(tmp_path):
    path = _write_csv(tmp_path / "t.csv", _text_rows(3, 3), header=("review", "stars"))
    with pytest.raises(DataError) as info:
        load_data(DataSpec(str(path), label_column="label"), progress=False)
    assert "'label'" in str(info.value) and "review" in str(info.value) and "stars" in str(info.value)
    assert "--label-column" in info.value.fix
    with pytest.raises(DataError, match="no label column found") as info:  # auto-detection fails too
        load_data(DataSpec(str(path)), progress=False)
    assert "--label-column" in info.value.fix
    data = load_data(DataSpec(str(path), label_column="stars"), progress=False)  # the fix works
    assert data.labels == ["neg", "pos"] and data.report.input_column == "review"


def test_unseen_label_in_test_skip_and_error(tmp_path):
    folder = tmp_path / "csvs"
    folder.mkdir()
    _write_csv(folder / "train.csv", _text_rows(6, 6))
    _write_csv(folder / "test.csv", [("fine", "pos"), ("meh", "neutral"), ("bad", "neg"), ("what", "neutral")])
    data = load_data(DataSpec(str(folder)), progress=False)
    assert data.labels == ["neg", "pos"] and data.report.counts["test"] == 2
    skipped = [(s["split"], s["row"], s["reason"]) for s in data.report.skipped]
    assert skipped == [("test", 1, "label 'neutral' does not occur in the training split"), ("test", 3, "label 'neutral' does not occur in the training split")]
    assert all(s["file"].endswith("test.csv") for s in data.report.skipped)
    with pytest.raises(DataError, match="neutral") as info:
        load_data(DataSpec(str(folder), on_bad_input="error"), progress=False)
    assert "test row 1" in str(info.value) and "test row 3" in str(info.value)


def test_single_example_class_stays_in_train(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(21)], "label": ["a"] * 10 + ["b"] * 10 + ["rare"]})
    data = load_data(DataSpec.from_object(ds, validation_fraction=0.2), progress=False)
    assert data.labels == ["a", "b", "rare"]
    assert data.report.class_counts["train"]["rare"] == 1 and data.report.class_counts["validation"]["rare"] == 0
    assert any("single training example" in w and "'rare'" in w for w in data.report.warnings)


def test_stratified_validation_keeps_proportions():
    import datasets

    labels = ["a"] * 600 + ["b"] * 300 + ["c"] * 100
    ds = datasets.Dataset.from_dict({"text": [f"row {i}" for i in range(1000)], "label": labels})
    data = load_data(DataSpec.from_object(ds, validation_fraction=0.2, seed=3), progress=False)
    assert data.report.class_counts["validation"] == {"a": 120, "b": 60, "c": 20}
    assert data.report.class_counts["train"] == {"a": 480, "b": 240, "c": 80}
    train_rows, val_rows = set(data.splits["train"]["input"]), set(data.splits["validation"]["input"])
    assert not train_rows & val_rows and len(train_rows | val_rows) == 1000
    again = load_data(DataSpec.from_object(ds, validation_fraction=0.2, seed=3), progress=False)
    assert again.splits["validation"]["input"] == data.splits["validation"]["input"]  # seeded
    assert again.fingerprints == data.fingerprints
    other = load_data(DataSpec.from_object(ds, validation_fraction=0.2, seed=4), progress=False)
    assert other.splits["validation"]["input"] != data.splits["validation"]["input"]


def test_datasetdict_classlabel_missing_and_empty_splits():
    import datasets

    feats = datasets.Features({"sentence": datasets.Value("string"), "y": datasets.ClassLabel(names=["zeta", "alpha"])})
    dsd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"sentence": ["a", "b", "c", "d"], "y": [0, 1, 0, 1]}, features=feats),
            "validation": datasets.Dataset.from_dict({"sentence": ["e", "f"], "y": [1, 0]}, features=feats),
            "empty": datasets.Dataset.from_dict({"sentence": [], "y": []}, features=feats),
        }
    )
    data = load_data(DataSpec.from_object(dsd, validation_split="validation"), progress=False)
    assert data.labels == ["zeta", "alpha"]  # ClassLabel order kept, not re-sorted
    assert data.report.counts == {"train": 4, "validation": 2}
    assert any("no 'test' split" in w for w in data.report.warnings)
    with pytest.raises(DataError, match="'testing' is not in the data") as info:
        load_data(DataSpec.from_object(dsd, test_split="testing"), progress=False)
    assert "'train'" in str(info.value) and "'validation'" in str(info.value)
    with pytest.raises(DataError, match="'empty' is empty"):
        load_data(DataSpec.from_object(dsd, test_split="empty"), progress=False)
    with pytest.raises(DataError, match="did you mean 'train'"):
        load_data(DataSpec.from_object(dsd, train_split="trian"), progress=False)


def test_missing_source_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_data(DataSpec(str(tmp_path / "nope.csv")), progress=False)
    with pytest.raises(DataError, match="no built-in"):
        load_data(DataSpec("builtin:fashion-mnst"), progress=False)


def test_split_names_follow_datasets_conventions():
    from tlhub.data.local import split_of

    assert split_of("train/cat/1.png") == "train"
    assert split_of("my_train.csv") == "train" and split_of("train-00000.parquet") == "train"
    assert split_of("dev.jsonl") == "validation" and split_of("valid/dog/x.jpg") == "validation"
    assert split_of("test.csv") == "test" and split_of("eval/x.png") == "test"
    assert split_of("cat/1.png") is None and split_of("contest/1.png") is None and split_of("trainers.csv") is None


def test_csv_of_image_paths(tmp_path):
    (tmp_path / "imgs").mkdir()
    lines = ["path,species"]
    for i in range(10):
        _png(tmp_path / "imgs" / f"{i}.png", "RGB" if i % 3 else "L")
        lines.append(f"imgs/{i}.png,{'ant' if i % 2 else 'bee'}")
    lines.append("imgs/gone.png,ant")
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    data = load_data(DataSpec(str(tmp_path / "table.csv"), label_column="species"), modality="image", progress=False)
    assert data.modality == "image" and data.labels == ["ant", "bee"]
    assert [(s["row"], s["reason"]) for s in data.report.skipped] == [(10, "image file not found")]
    assert data.splits["train"].features["input"].__class__.__name__ == "Image"
    assert sum(sum(v.values()) for v in data.report.converted.values()) == 4  # rows 0, 3, 6, 9 are greyscale
    assert data.splits["train"][0]["input"].size == (8, 8)


def test_max_samples_are_stratified_and_capped():
    import datasets

    ds = datasets.Dataset.from_dict({"text": [f"r{i}" for i in range(300)], "label": (["a"] * 200) + (["b"] * 100)})
    dsd = datasets.DatasetDict({"train": ds, "test": ds.select(range(0, 300, 2))})
    data = load_data(DataSpec.from_object(dsd, max_train_samples=30, max_eval_samples=12), progress=False)
    assert data.report.class_counts["train"] == {"a": 20, "b": 10}
    assert data.report.counts["test"] == 12 and data.report.class_counts["test"] == {"a": 8, "b": 4}
    assert data.report.counts["validation"] == 3  # 10% of the selection, from the unselected rows
    assert not set(data.splits["train"]["input"]) & set(data.splits["validation"]["input"])
    first = load_data(DataSpec.from_object(dsd, max_train_per_class=5), progress=False)
    assert first.splits["train"]["input"] == ["r0", "r1", "r2", "r3", "r4", "r200", "r201", "r202", "r203", "r204"]


def test_classlabel_class_without_training_rows_is_left_out():
    import datasets

    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["x", "y", "z"])})
    dsd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": list("abcdef"), "label": [0, 1, 0, 1, 0, 1]}, features=feats),
            "test": datasets.Dataset.from_dict({"text": list("ghi"), "label": [2, 0, -1]}, features=feats),
        }
    )
    data = load_data(DataSpec.from_object(dsd), progress=False)
    assert data.labels == ["x", "y"] and data.report.counts["test"] == 1
    assert [(s["row"], s["reason"]) for s in data.report.skipped] == [(0, "label 'z' does not occur in the training split"), (2, "no label (-1)")]
    assert any("'z'" in w for w in data.report.warnings)


def test_hub_dataset_offline_from_datasets_cache(tmp_path, monkeypatch):
    """A Hub name loads offline from the datasets cache (written here as a Hub download would be)."""
    import datasets
    import huggingface_hub.constants
    from datasets.arrow_writer import ArrowWriter

    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    root = tmp_path / "hf-datasets" / "someorg___tiny_reviews" / "default" / "0.0.0" / "0123456789abcdef"
    root.mkdir(parents=True)
    info = datasets.DatasetInfo(features=feats, builder_name="parquet", dataset_name="tiny_reviews", config_name="default", version="0.0.0")
    info.splits = datasets.SplitDict()
    for split, n in (("train", 20), ("test", 6)):
        table = datasets.Dataset.from_dict({"text": [f"{split} {i}" for i in range(n)], "label": [i % 2 for i in range(n)]}, features=feats).data.table
        with ArrowWriter(features=feats, path=str(root / f"tiny_reviews-{split}.arrow")) as writer:
            writer.write_table(table)
            rows, nbytes = writer.finalize()
        info.splits.add(datasets.SplitInfo(name=split, num_bytes=nbytes, num_examples=rows, dataset_name="tiny_reviews"))
    info.write_to_directory(str(root))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    data = load_data(DataSpec("someorg/tiny_reviews"), progress=False)
    assert data.source_name == "someorg/tiny_reviews" and data.labels == ["neg", "pos"]
    assert data.report.counts == {"train": 18, "validation": 2, "test": 6}
    with pytest.raises(DataError, match="someorg/absent") as info:
        load_data(DataSpec("someorg/absent"), progress=False)
    assert "HF_HUB_OFFLINE" in info.value.fix


def test_single_class_is_an_error():
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": ["only"] * 3})
    with pytest.raises(DataError, match="single class"):
        load_data(DataSpec.from_object(ds), progress=False)


# -- data loaders --------------------------------------------------------------------------------


def test_make_dataloader_deterministic_batches(tmp_path):
    import torch

    make_mixed_image_folder(tmp_path / "pets")
    data = load_data(DataSpec(str(tmp_path / "pets")), progress=False)
    from tlhub.adapters.images import load_image

    def collate(images):
        assert all(im.mode == "RGB" for im in images)
        return {"pixel_values": torch.stack([torch.as_tensor(np.array(im.resize((4, 4)))).permute(2, 0, 1) for im in images])}

    def run(seed):
        dl = make_dataloader(data.splits["train"], decode=load_image, collate=collate, batch_size=2, shuffle=True, seed=seed)
        return [b["labels"].tolist() for b in dl], [b["pixel_values"].shape for b in dl]

    (l1, shapes), (l2, _) = run(0), run(0)
    assert l1 == l2 and shapes[0] == (2, 3, 4, 4)
    assert sum(len(b) for b in l1) == data.report.counts["train"]
    batch = next(iter(make_dataloader(data.splits["train"], decode=load_image, collate=collate, batch_size=8, shuffle=False)))
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == data.splits["train"]["label"]


def test_make_dataloader_text_workers():
    import datasets
    import torch

    ds = datasets.Dataset.from_dict({"text": [f"row {i}" for i in range(40)], "label": ["x", "y"] * 20})
    data = load_data(DataSpec.from_object(ds), progress=False)

    def collate(texts):  # a closure, as adapters return: not picklable, so workers fork
        return {"lengths": torch.tensor([len(t) for t in texts])}

    dl = make_dataloader(data.splits["train"], decode=str, collate=collate, batch_size=8, shuffle=True, seed=1, num_workers=2, drop_last=True)
    batches = list(dl)
    assert len(batches) == len(data.splits["train"]) // 8 and all(b["labels"].shape == (8,) for b in batches)
    dl0 = make_dataloader(data.splits["train"], decode=str, collate=collate, batch_size=8, shuffle=True, seed=1, drop_last=True)
    assert [b["labels"].tolist() for b in dl0] == [b["labels"].tolist() for b in batches]


def test_make_dataloader_through_accelerate():
    """The trainer wraps loaders with accelerate's prepare_data_loader: same batches, same order."""
    import datasets
    import torch
    from accelerate import Accelerator

    ds = datasets.Dataset.from_dict({"text": [f"row {i}" for i in range(50)], "label": ["x", "y"] * 25})
    data = load_data(DataSpec.from_object(ds), progress=False)

    def collate(texts):
        return {"n": torch.tensor([int(t.split()[1]) for t in texts])}

    plain = [b["n"].tolist() for b in make_dataloader(data.splits["train"], decode=str, collate=collate, batch_size=16, shuffle=True, seed=5)]
    prepared = Accelerator(cpu=True).prepare_data_loader(make_dataloader(data.splits["train"], decode=str, collate=collate, batch_size=16, shuffle=True, seed=5))
    assert [b["n"].tolist() for b in prepared] == plain and len(plain) == 3


# -- built-ins -----------------------------------------------------------------------------------


def _idx_labels(path: Path) -> np.ndarray:
    raw = gzip.open(path).read()
    return np.frombuffer(raw, dtype=np.uint8, offset=8)


def test_fashion_mnist_missing_files_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TLHUB_FASHION_MNIST_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError) as info:
        load_data(DataSpec("fashion-mnist"), progress=False)
    assert "apt-get install dataset-fashion-mnist" in info.value.fix


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz").is_file(), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_builtin(builtin_cache, monkeypatch):
    monkeypatch.setenv("TLHUB_CACHE", builtin_cache)
    from tlhub.data.builtin import FASHION_MNIST_LABELS, load_builtin

    dsd, info = load_builtin("fashion-mnist", progress=False)
    assert len(dsd["train"]) == 60000 and len(dsd["test"]) == 10000
    assert dsd["train"].features["label"].names == FASHION_MNIST_LABELS == info["labels"]
    assert info["license"] == "MIT" and info["hub_id"] == "zalando-datasets/fashion_mnist"
    # pixels and labels are the IDX files' own
    labels = _idx_labels(Path("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"))
    assert dsd["train"]["label"][:50] == labels[:50].tolist()
    images = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
    first = np.frombuffer(images, dtype=np.uint8, offset=16, count=784).reshape(28, 28)
    img = dsd["test"][0]["input"]
    assert img.mode == "L" and img.size == (28, 28) and (np.asarray(img) == first).all()

    # Protocol A: the first 100 of each class in file order
    data = load_data(DataSpec("fashion-mnist", max_train_per_class=100), progress=False)
    assert data.labels == FASHION_MNIST_LABELS and data.source_name == "fashion_mnist"
    assert data.report.counts == {"train": 1000, "validation": 100, "test": 10000}
    expected = sorted(int(i) for c in range(10) for i in np.flatnonzero(labels == c)[:100])
    train = data.splits["train"]
    assert train._indices is not None
    picked = sorted(train._indices.column(0).to_pylist())
    assert picked == expected
    assert Counter(train["label"]) == {c: 100 for c in range(10)}
    val_rows = set(data.splits["validation"]._indices.column(0).to_pylist())
    assert not val_rows & set(expected) and Counter(data.splits["validation"]["label"]) == {c: 10 for c in range(10)}
    assert data.report.converted["train"] == {"L": 1000} and data.report.converted["test"] == {"L": 10000}
    assert "first 100 rows of each class in file order" in data.report.split_origin["train"]
    assert data.splits["train"][0]["input"].size == (28, 28)


def test_vader_movies_builtin(builtin_cache, monkeypatch):
    monkeypatch.setenv("TLHUB_CACHE", builtin_cache)
    from tlhub.data.builtin import load_builtin

    try:
        dsd, info = load_builtin("vader-movies", progress=False)
    except DataError as exc:  # no PyPI and no cached sdist
        pytest.skip(f"vaderSentiment sdist unavailable: {exc}")
    assert len(dsd["train"]) == 8568 and len(dsd["test"]) == 2000
    assert dsd["train"].features["label"].names == ["negative", "positive"]
    build = info["build"]
    assert build["rows_in_file"] == 10605 and len(build["dropped_zero_rating"]) == 37
    assert build["encoding"] == "utf-8" and build["sdist_sha256"].startswith("5d7c06e0")
    assert "MIT" in info["license"] and "Pang" in info["citation"]
    for split in dsd.values():  # label = sign of the mean rating
        ratings, labels = np.array(split["mean_rating"]), np.array(split["label"])
        assert ((ratings > 0) == (labels == 1)).all() and (ratings != 0).all()
    assert not set(dsd["train"]["id"]) & set(dsd["test"]["id"])

    # Protocol B, recomputed from the raw file
    import random

    from tlhub.data.builtin import _read_vader_rows, _vader_sdist

    rows, _ = _read_vader_rows(_vader_sdist(progress=False))
    kept = [r for r in rows if r[1] != 0]
    random.Random(0).shuffle(kept)
    assert dsd["test"]["id"] == [r[0] for r in kept[-2000:]]
    assert dsd["train"]["id"][:20] == [r[0] for r in kept[:20]]

    data = load_data(DataSpec("vader-movies", max_train_per_class=50), modality="text", progress=False)
    assert data.modality == "text" and data.labels == ["negative", "positive"]
    assert data.report.counts == {"train": 100, "validation": 10, "test": 2000}
    assert all(isinstance(t, str) and t for t in data.splits["test"]["input"][:50])
    assert "vader" in data.source_name.lower()
