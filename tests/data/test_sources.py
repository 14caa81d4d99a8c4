"""tlhub.data.sources: datasets with several configurations (a Hub dataset's config name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlhub.data import DataSpec, load_data
from tlhub.errors import DataError


@pytest.fixture(autouse=True)
def _tlhub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLHUB_CACHE", str(tmp_path / "tlhub-cache"))


def _rows(config: str, split: str, n: int) -> dict[str, list]:
    return {"text": [f"{config} {split} review {i}" for i in range(n)], "label": ["neg", "pos"] * (n // 2)}


def make_config_folder(root: Path) -> Path:
    """A local copy of a Hub dataset repository: Parquet files, two configurations in README.md."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for config, splits in (("en", (("train", 20), ("test", 6))), ("fr", (("train", 10),))):
        for split, n in splits:
            (root / config).mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table(_rows(config, split, n)), root / config / f"{split}.parquet")
    (root / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: en\n  data_files:\n  - split: train\n    path: en/train.parquet\n  - split: test\n    path: en/test.parquet\n"
        "- config_name: fr\n  data_files:\n  - split: train\n    path: fr/train.parquet\n"
        "---\n# Reviews in two languages\n",
        encoding="utf-8",
    )
    return root


def test_local_dataset_folder_needs_its_configuration(tmp_path):
    folder = make_config_folder(tmp_path / "reviews")
    with pytest.raises(DataError) as info:
        load_data(DataSpec(str(folder)), progress=False)
    assert "2 configurations and none was chosen: en, fr" in info.value.message
    assert "--data-config" in info.value.fix

    data = load_data(DataSpec(str(folder), config_name="fr"), progress=False)
    assert data.labels == ["neg", "pos"] and data.modality == "text"
    assert sum(data.report.counts.values()) == 10 and not data.has_test  # fr has no test split
    assert all(t.startswith("fr train") for s in data.splits.values() for t in s["input"])
    assert data.source_name == "reviews:fr (local dataset folder)" and data.report.provenance["config_name"] == "fr"

    en = load_data(DataSpec(str(folder), config_name="en"), progress=False)
    assert en.report.counts["test"] == 6 and all(t.startswith("en test") for t in en.splits["test"]["input"])

    with pytest.raises(DataError, match="has no configuration 'frr'") as info:
        load_data(DataSpec(str(folder), config_name="frr"), progress=False)
    assert "en, fr" in info.value.message and "did you mean --data-config fr" in info.value.fix


def _cache_hub_dataset(cache: Path, name: str, configs: dict[str, dict[str, int]]) -> None:
    """Write ``name`` into a datasets cache as a Hub download of each configuration would."""
    import datasets
    from datasets.arrow_writer import ArrowWriter

    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    short = name.split("/")[-1]
    for config, splits in configs.items():
        root = cache / name.replace("/", "___") / config / "0.0.0" / "0123456789abcdef"
        root.mkdir(parents=True)
        info = datasets.DatasetInfo(features=feats, builder_name="parquet", dataset_name=short, config_name=config, version="0.0.0")
        info.splits = datasets.SplitDict()
        for split, n in splits.items():
            table = datasets.Dataset.from_dict({"text": [f"{config} {split} {i}" for i in range(n)], "label": [i % 2 for i in range(n)]}, features=feats).data.table
            with ArrowWriter(features=feats, path=str(root / f"{short}-{split}.arrow")) as writer:
                writer.write_table(table)
                rows, nbytes = writer.finalize()
            info.splits.add(datasets.SplitInfo(name=split, num_bytes=nbytes, num_examples=rows, dataset_name=short))
        info.write_to_directory(str(root))


def test_hub_dataset_configuration_offline(tmp_path, monkeypatch):
    import datasets
    import huggingface_hub.constants

    _cache_hub_dataset(tmp_path / "hf-datasets", "someorg/bilingual", {"en": {"train": 20, "test": 6}, "fr": {"train": 12, "test": 4}})
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    with pytest.raises(DataError) as info:
        load_data(DataSpec("someorg/bilingual"), progress=False)
    assert "'someorg/bilingual' has 2 configurations and none was chosen: en, fr" in info.value.message
    assert "--data-config NAME" in info.value.fix and "--data-config en" in info.value.fix

    data = load_data(DataSpec("someorg/bilingual", config_name="fr"), progress=False)
    assert data.source_name == "someorg/bilingual:fr" and data.report.counts == {"train": 10, "validation": 2, "test": 4}
    assert all(t.startswith("fr ") for s in data.splits.values() for t in s["input"])
    assert data.report.provenance == {"origin": "Hugging Face Hub", "hub_id": "someorg/bilingual", "config_name": "fr"}

    with pytest.raises(DataError, match="has no configuration 'de' \\(configurations: en, fr\\)"):
        load_data(DataSpec("someorg/bilingual", config_name="de"), progress=False)


def test_configuration_of_a_source_without_configurations(tmp_path):
    import datasets

    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "train.csv").write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(10)), encoding="utf-8")
    ds = datasets.Dataset.from_dict({"text": ["a", "b", "c", "d"], "label": ["x", "y", "x", "y"]})
    for spec in (DataSpec(str(folder), config_name="en"), DataSpec.from_object(ds, config_name="en"), DataSpec("vader-movies", config_name="en")):
        with pytest.raises(DataError, match="has no configurations, but the configuration 'en' was asked for") as info:
            load_data(spec, progress=False)
        assert "leave --data-config unset" in info.value.fix
    assert load_data(DataSpec(str(folder)), progress=False).labels == ["a", "b"]  # without one it loads


def test_evaluate_takes_the_data_config(tmp_path):
    """``tlhub evaluate --data-config`` reaches the data: a real text backbone on the 'en' test split."""
    from tlhub.core.factory import create_model
    from tlhub.engine.evaluation import evaluate

    folder = make_config_folder(tmp_path / "reviews")
    model = create_model("sentence-transformers/all-MiniLM-L6-v2", labels=["neg", "pos"])
    result = evaluate(model, data=str(folder), data_config="en", split="test", progress=False)
    assert result.split == "test" and sum(map(sum, result.confusion_matrix)) == 6
    with pytest.raises(DataError, match="none was chosen: en, fr"):
        evaluate(model, data=str(folder), split="test", progress=False)
