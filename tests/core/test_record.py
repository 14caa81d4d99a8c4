"""``TrainingRecord``: typed, versioned, and old (version-1) saved folders still load.

The folders here are real: the offline EfficientNet-Lite0 saved natively by its adapter with
``tlhub.core.saving.save_model``, reloaded with ``tlhub.create_model``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tlhub.adapters.contract import Preprocessing
from tlhub.adapters.source import hub_repo_id
from tlhub.core.record import RECORD_FILE, SCHEMA_VERSION, DatasetInfo, TrainingRecord
from tlhub.errors import ConfigError, TlhubError

LITE0 = "tlhub-offline/tf_efficientnet_lite0.in1k"
LABELS = ["cat", "dog", "bird"]


def _record(**changes) -> TrainingRecord:
    fields = dict(
        adapter="timm",
        labels=LABELS,
        modality="image",
        preprocessing=Preprocessing(modality="image", input_size=(3, 64, 64), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                                    interpolation="bicubic", crop_pct=0.875, crop_mode="center"),
        library_name="timm",
        pipeline_tag="image-classification",
        base_model=LITE0,
        base_model_revision="18878c380a30aa4a2fd6d6ac1e0a7ba0d9d52b8e",
        base_model_license="apache-2.0",
        dataset=DatasetInfo(name="fashion-mnist", splits={"train": 80, "validation": 20, "test": 60}, report={"skipped": 0}),
        strategy="lp-ft",
        stages=[{"name": "probe", "epochs": 3, "lr": 0.003}, {"name": "fine-tune", "epochs": 2, "lr": 0.001}],
        epochs_run=5,
        best_epoch=4,
        selected_by="val_loss",
        best_validation_accuracy=0.75,
        best_validation_loss=0.61,
        seed=7,
        config={"backbone": LITE0, "data": "fashion-mnist", "image_size": 64},
        num_processes=1,
        mixed_precision="no",
        tlhub_version="0.1.0",
        versions={"tlhub": "0.1.0", "torch": "2.0"},
    )
    fields.update(changes)
    return TrainingRecord(**fields)


def test_round_trip_through_the_file_keeps_every_field(tmp_path):
    record = _record(extra={"plugin_note": {"kept": True}})
    path = record.save(tmp_path)
    assert path == tmp_path / RECORD_FILE
    on_disk = json.loads(path.read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION == 3
    assert on_disk["extra"] == {"plugin_note": {"kept": True}}
    loaded = TrainingRecord.load(tmp_path)
    assert loaded == record
    assert loaded.preprocessing.input_size == (3, 64, 64)  # JSON lists come back as the tuples they were
    assert TrainingRecord.from_dict(record.to_dict()) == record
    assert not list(tmp_path.glob(".*tmp"))  # written atomically: no temporary file left behind


def _v1_dict(base_model: str) -> dict:
    """A ``tlhub.json`` exactly as tlhub wrote it before records were versioned (no
    ``schema_version``, no ``base_model_license``; ``base_model`` whatever the model was loaded by)."""
    return {
        "tlhub_version": "0.1.0",
        "adapter": "timm",
        "library_name": "timm",
        "pipeline_tag": "image-classification",
        "modality": "image",
        "base_model": base_model,
        "base_model_revision": "18878c380a30aa4a2fd6d6ac1e0a7ba0d9d52b8e",
        "labels": LABELS,
        "preprocessing": {"modality": "image", "input_size": [3, 64, 64], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                          "interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": "center"},
        "versions": {"tlhub": "0.1.0", "torch": "2.5.1", "timm": "1.0.11"},
        "dataset": {"name": "fashion-mnist", "splits": {"train": 9, "validation": 3, "test": 6},
                    "report": {"train": {"rows": 9, "skipped": 0}}},
        "strategy": "feature-extraction",
        "stages": [{"name": "probe", "epochs": 2, "trainable_groups": 0, "lr": 0.003, "weight_decay": 0.0001}],
        "epochs_run": 2,
        "best_epoch": 2,
        "selected_by": "val_loss",
        "best_validation_accuracy": 0.6666666865348816,
        "best_validation_loss": 0.9,
        "seed": 0,
        "config": {"backbone": base_model, "data": "fashion-mnist", "image_size": 64, "output_dir": "/home/me/runs/x"},
        "num_processes": 1,
        "mixed_precision": "no",
        "written_by_a_plugin": [1, 2],  # a key this version does not know
    }


def test_version_1_record_loads_and_keeps_unknown_keys(tmp_path):
    (tmp_path / RECORD_FILE).write_text(json.dumps(_v1_dict(LITE0), indent=2))
    record = TrainingRecord.load(tmp_path)
    assert record.schema_version == 3  # read into the current type
    assert record.base_model == LITE0 and record.base_model_license is None
    assert record.labels == LABELS and record.preprocessing.input_size == (3, 64, 64)
    assert record.dataset == DatasetInfo("fashion-mnist", {"train": 9, "validation": 3, "test": 6}, {"train": {"rows": 9, "skipped": 0}})
    assert record.best_epoch == 2 and record.stages[0]["lr"] == 0.003 and record.config["image_size"] == 64
    assert record.extra == {"written_by_a_plugin": [1, 2]}
    # rewritten as version 2, the unknown key survives
    record.save(tmp_path / "again")
    assert TrainingRecord.load(tmp_path / "again").extra == {"written_by_a_plugin": [1, 2]}
    # an ``hf-hub:`` name is the Hub id it names
    assert TrainingRecord.from_dict(_v1_dict(f"hf-hub:{LITE0}")).base_model == LITE0


def test_a_local_path_never_becomes_base_model(tmp_path, monkeypatch):
    for local in (str(tmp_path / "my-backbone"), "/home/me/lite0", "./lite0", "~/models/lite0"):
        record = TrainingRecord.from_dict(_v1_dict(local))
        assert record.base_model is None and record.base_model_revision is None, local
    # ORG/NAME-shaped, but a folder on this machine: the folder wins
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acme" / "backbone").mkdir(parents=True)
    assert hub_repo_id("acme/backbone") is None
    assert TrainingRecord.from_dict(_v1_dict("acme/backbone")).base_model is None
    assert hub_repo_id("acme/other") == "acme/other"
    # and a new record refuses one outright
    with pytest.raises(ConfigError, match="not a Hub repo id") as err:
        _record(base_model="/home/me/lite0")
    assert err.value.fix


def test_missing_corrupt_and_invalid_files_say_which_file_and_how_to_fix(tmp_path):
    with pytest.raises(TlhubError, match="no tlhub.json") as err:
        TrainingRecord.load(tmp_path)
    assert err.value.fix
    path = tmp_path / RECORD_FILE
    path.write_text('{"adapter": "timm", "labels": [')  # cut off mid-write by an old, non-atomic copy
    with pytest.raises(ConfigError, match="tlhub.json is corrupt") as err:
        TrainingRecord.load(tmp_path)
    assert err.value.fix
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ConfigError, match="tlhub.json is corrupt"):
        TrainingRecord.load(tmp_path)
    path.write_text("[1, 2, 3]")
    with pytest.raises(ConfigError, match="tlhub.json is not a JSON object"):
        TrainingRecord.load(tmp_path)
    path.write_text(json.dumps({**_v1_dict(LITE0), "labels": []}))
    with pytest.raises(ConfigError, match="tlhub.json is invalid: .*labels"):
        TrainingRecord.load(tmp_path)
    path.write_text(json.dumps({**_v1_dict(LITE0), "epochs_run": "two"}))
    with pytest.raises(ConfigError, match="epochs_run"):
        TrainingRecord.load(tmp_path)
    path.write_text(json.dumps({**_record().to_dict(), "schema_version": 99}))
    with pytest.raises(ConfigError, match="version 99") as err:
        TrainingRecord.load(tmp_path)
    assert "upgrade tlhub" in err.value.fix


def test_validated_on_creation():
    with pytest.raises(ConfigError, match="labels"):
        _record(labels=[])
    with pytest.raises(ConfigError, match="modality"):
        _record(modality="smell")
    with pytest.raises(ConfigError, match="best_epoch"):
        _record(best_epoch=-1)
    with pytest.raises(ConfigError, match="split 'train'"):
        DatasetInfo("x", {"train": -3})
    with pytest.raises(ConfigError, match="shadow"):
        _record(extra={"labels": ["x"]})
    with pytest.raises(ConfigError, match="Preprocessing"):
        _record(preprocessing={"modality": "image"})


@pytest.fixture(scope="module")
def saved_lite0(tmp_path_factory, offline_assets) -> Path:
    """Lite0 with a 3-class head at 64 px, saved by tlhub (native timm files + a version-2 record)."""
    import tlhub
    from tlhub.core.saving import save_model, training_record

    model = tlhub.create_model(LITE0, labels=LABELS)
    model.set_input_size(64)
    folder = tmp_path_factory.mktemp("record") / "lite0-64"
    save_model(model, folder, record=training_record(model, strategy="feature-extraction", seed=0,
                                                      dataset=DatasetInfo("fashion-mnist", {"train": 9}),
                                                      config={"data": "fashion-mnist", "image_size": 64}))
    return folder


def test_saved_record_has_lineage_and_reloads_typed_with_its_preprocessing(saved_lite0, tmp_path):
    import tlhub
    from tlhub.core.saving import load_record

    record = load_record(saved_lite0)
    assert isinstance(record, TrainingRecord)
    assert record.base_model == LITE0 and record.base_model_revision  # the offline snapshot's commit
    assert record.preprocessing.input_size == (3, 64, 64)
    model = tlhub.create_model(str(saved_lite0))
    assert model.training_record == record
    assert model.labels == LABELS
    # trained at 64 px, reloaded at 64 px (not the backbone's own 224)
    from tlhub.adapters.registry import get_adapter

    assert get_adapter("timm").preprocessing(model).input_size == (3, 64, 64)
    # saved again from the reloaded folder, the lineage is still the Hub backbone, not the folder
    from tlhub.core.saving import training_record

    assert training_record(model).base_model == LITE0


def test_old_version_1_folder_still_loads(saved_lite0, tmp_path):
    """A folder written by the previous tlhub: same native files, the unversioned dict record,
    with ``base_model`` the local path it was trained from."""
    import tlhub
    from tlhub.publishing.card import build_model_card, validate_card

    old = tmp_path / "old"
    shutil.copytree(saved_lite0, old)
    v1 = _v1_dict(str(tmp_path / "lite0-checkout"))
    v1["preprocessing"]["input_size"] = [3, 80, 80]  # differs from the native config's 64: the record wins
    (old / RECORD_FILE).write_text(json.dumps(v1, indent=2))
    model = tlhub.create_model(str(old))
    assert isinstance(model.training_record, TrainingRecord)
    assert model.training_record.extra == {"written_by_a_plugin": [1, 2]}
    assert model.labels == LABELS
    from tlhub.adapters.registry import get_adapter

    assert get_adapter("timm").preprocessing(model).input_size == (3, 80, 80)
    card = str(build_model_card(old, "alice/old-lite0"))
    assert validate_card(card, model_dir=old) == []
    assert str(tmp_path) not in card.split("Resolved training config")[0]  # lineage never shows the path
    assert "base_model:" not in card.split("\n---\n", 1)[0]


def test_model_from_a_local_folder_has_no_base_model(offline_assets, tmp_path):
    """Weights copied into a plain folder (no record, no README naming an origin): unknown lineage."""
    from huggingface_hub import snapshot_download

    import tlhub
    from tlhub.core.saving import training_record

    snapshot = Path(snapshot_download(LITE0))
    local = tmp_path / "my-backbone"
    shutil.copytree(snapshot, local, ignore=shutil.ignore_patterns("README.md"))
    model = tlhub.create_model(str(local), labels=LABELS)
    record = training_record(model)
    assert record.base_model is None and record.base_model_revision is None
