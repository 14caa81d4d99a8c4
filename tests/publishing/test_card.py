"""Model cards: metadata and body generated from a real saved model's files.

The saved models used here (and by test_publish / test_spaces, which import the builders) are
built with real components: the offline EfficientNet-Lite0 / MiniLM backbones, a linear head
trained on their features of real Fashion-MNIST images / real sentences, evaluated with
``tlhub.engine.evaluation.compute_metrics`` on held-out examples, saved with ``tlhub.core.saving.save_model``.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

LITE0 = "tlhub-offline/tf_efficientnet_lite0.in1k"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# Real sentences (movie-review style), labelled by hand.
TEXTS = [
    ("A gripping, beautifully acted film that stays with you.", 1),
    ("The worst movie I have seen in years, dull and far too long.", 0),
    ("Charming, funny and surprisingly moving.", 1),
    ("A tedious mess with wooden dialogue.", 0),
    ("One of the most delightful comedies of the decade.", 1),
    ("I walked out halfway through; it was unbearable.", 0),
    ("Smart writing and a terrific lead performance.", 1),
    ("Lifeless, predictable and badly edited.", 0),
    ("An absolute joy from start to finish.", 1),
    ("The plot makes no sense and the jokes fall flat.", 0),
    ("Warm, generous and wonderfully shot.", 1),
    ("A boring, pretentious waste of two hours.", 0),
    ("Thrilling action and a clever, satisfying ending.", 1),
    ("Poorly acted and painfully slow.", 0),
    ("A heartfelt story told with real skill.", 1),
    ("Cheap, ugly and instantly forgettable.", 0),
    ("The cast is superb and the music is lovely.", 1),
    ("An embarrassing failure on every level.", 0),
    ("Fresh, inventive and often hilarious.", 1),
    ("Dreary and depressing without any purpose.", 0),
    ("A masterpiece of quiet, careful storytelling.", 1),
    ("Clumsy, loud and utterly pointless.", 0),
    ("I loved every minute of it.", 1),
    ("I hated every minute of it.", 0),
]
N_TEXT_TRAIN = 16
IMAGE_SIZE = 96


def _idx(name: str) -> np.ndarray:
    with gzip.open(FASHION_DIR / name, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _fashion(split: str, per_class: int, skip: int = 0):
    """The first ``per_class`` images of each class (after ``skip`` of them), in file order."""
    from PIL import Image

    prefix = "train" if split == "train" else "t10k"
    images, labels = _idx(f"{prefix}-images-idx3-ubyte.gz"), _idx(f"{prefix}-labels-idx1-ubyte.gz")
    out, seen = [], {}
    for img, label in zip(images, labels):
        label = int(label)
        seen[label] = seen.get(label, 0) + 1
        if skip < seen[label] <= skip + per_class:
            out.append((Image.fromarray(img, mode="L"), label))
        if len(out) == per_class * 10:
            break
    return out


def _train_head(model, x_train, y_train, x_val, y_val, *, epochs: int, lr: float, stage: str):
    """Train the head on cached features; one log row per epoch (real losses and accuracies)."""
    import torch

    torch.manual_seed(0)
    head_params = [p for n, p in model.named_parameters() if n in set(model.head_parameter_names())]
    opt = torch.optim.AdamW(head_params, lr=lr, weight_decay=1e-4)
    history = []
    for epoch in range(1, epochs + 1):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model.forward_head(x_train), y_train)
        loss.backward()
        opt.step()
        with torch.no_grad():
            val_logits = model.forward_head(x_val)
            val_loss = torch.nn.functional.cross_entropy(val_logits, y_val).item()
            val_acc = (val_logits.argmax(-1) == y_val).float().mean().item()
        history.append({"stage": stage, "epoch": epoch, "stage_epoch": epoch, "train_loss": loss.item(), "val_loss": val_loss,
                        "val_accuracy": val_acc, "lr": lr, "seconds": 0.01, "samples_per_second": len(y_train) / 0.01})
    return history


def _features(model, adapter, inputs, batch_size: int = 32):
    import torch

    collate = adapter.make_collate(model, train=False)
    out = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(inputs), batch_size):
            out.append(model.forward_features(collate(inputs[i : i + batch_size])))
    return torch.cat(out).clone()


def _save(model, directory: Path, *, run: dict, history: list, result, examples) -> Path:
    """Save as the trainer does: a TrainingRecord of the model plus the ``run`` fields."""
    from tlhub.engine.plots import plot_training_curves
    from tlhub.core.saving import EXAMPLES_DIR, IMAGES_DIR, LOG_FILE, save_model, training_record
    from tlhub.fileio import write_json_atomic

    record = training_record(model, **run)

    def writers(staging: Path) -> None:
        result.save(staging)  # eval_results.json + images/confusion_matrix.png
        plot_training_curves(history, staging / IMAGES_DIR / "training_curves.png", title=record.strategy)
        folder = staging / EXAMPLES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        texts = []
        for i, (value, label) in enumerate(examples):
            if isinstance(value, str):
                texts.append({"text": value, "label": label})
            else:
                value.save(folder / f"{i:02d}_{re.sub(r'[^A-Za-z0-9]', '_', label)}.png")
        if texts:
            write_json_atomic(folder / "examples.json", texts)

    return save_model(model, directory, record=record, extra_files={LOG_FILE: history}, writers=[writers])


def build_image_model(directory: Path) -> Path:
    """Lite0 (96 px) + a 10-class head trained on 80 Fashion-MNIST images, evaluated on 60 test images."""
    if (directory / "tlhub.json").is_file():
        return directory
    import torch

    import tlhub
    from tlhub.adapters.registry import get_adapter
    from tlhub.core.record import DatasetInfo
    from tlhub.engine.evaluation import compute_metrics

    model = tlhub.create_model(LITE0, labels=FASHION_LABELS)
    model.set_input_size(IMAGE_SIZE)  # 28 px images: 96 px input, as the trainer's image_size does
    adapter = get_adapter(model.adapter_name)
    train, val, test = _fashion("train", 8), _fashion("train", 2, skip=8), _fashion("test", 6)
    xs = [_features(model, adapter, [img for img, _ in part]) for part in (train, val, test)]
    ys = [torch.tensor([y for _, y in part]) for part in (train, val, test)]
    history = _train_head(model, xs[0], ys[0], xs[1], ys[1], epochs=30, lr=3e-3, stage="probe")
    with torch.no_grad():
        logits = model.forward_head(xs[2])
        loss = torch.nn.functional.cross_entropy(logits, ys[2]).item()
    result = compute_metrics(logits.argmax(-1), ys[2], FASHION_LABELS, split="test", loss=loss)
    run = {
        "dataset": DatasetInfo(name="fashion-mnist", splits={"train": len(train), "validation": len(val), "test": len(test)}),
        "strategy": "feature-extraction",
        "stages": [{"name": "probe", "epochs": 30, "trainable_groups": 0, "lr": 3e-3, "weight_decay": 1e-4, "layer_decay": 1.0,
                    "use_feature_cache": True, "warmup_epochs": 0.0}],
        "epochs_run": 30,
        "best_epoch": int(np.argmax([h["val_accuracy"] for h in history]) + 1),
        "best_validation_accuracy": max(h["val_accuracy"] for h in history),
        "seed": 0,
        "config": {"backbone": LITE0, "data": "fashion-mnist", "strategy": "feature-extraction", "probe_epochs": 30,
                   "probe_lr": 3e-3, "batch_size": 32, "seed": 0, "image_size": IMAGE_SIZE, "output_dir": str(directory)},
        "num_processes": 1,
        "mixed_precision": "no",
    }
    examples = [(val[i][0], FASHION_LABELS[val[i][1]]) for i in (0, 3, 6)]
    return _save(model, directory, run=run, history=history, result=result, examples=examples)


def build_text_model(directory: Path) -> Path:
    """MiniLM + a negative/positive head trained on 16 sentences, evaluated on 8 others."""
    if (directory / "tlhub.json").is_file():
        return directory
    import torch

    import tlhub
    from tlhub.adapters.registry import get_adapter
    from tlhub.core.record import DatasetInfo
    from tlhub.engine.evaluation import compute_metrics

    labels = ["negative", "positive"]
    model = tlhub.create_model(MINILM, labels=labels)
    adapter = get_adapter(model.adapter_name)
    train, test = TEXTS[:N_TEXT_TRAIN], TEXTS[N_TEXT_TRAIN:]
    x_train, x_test = _features(model, adapter, [t for t, _ in train]), _features(model, adapter, [t for t, _ in test])
    y_train, y_test = torch.tensor([y for _, y in train]), torch.tensor([y for _, y in test])
    history = _train_head(model, x_train, y_train, x_train[-4:], y_train[-4:], epochs=40, lr=1e-2, stage="probe")
    with torch.no_grad():
        logits = model.forward_head(x_test)
    result = compute_metrics(logits.argmax(-1), y_test, labels, split="test")
    run = {
        "dataset": DatasetInfo(name="movie-sentences", splits={"train": len(train), "test": len(test)}),
        "strategy": "feature-extraction",
        "stages": [{"name": "probe", "epochs": 40, "trainable_groups": 0, "lr": 1e-2}],
        "epochs_run": 40,
        "seed": 0,
        "config": {"backbone": MINILM, "data": "movie-sentences", "strategy": "feature-extraction", "seed": 0},
    }
    examples = [(t, labels[y]) for t, y in test[:3]]
    return _save(model, directory, run=run, history=history, result=result, examples=examples)


@pytest.fixture(scope="session")
def image_model(tmp_path_factory, offline_assets) -> Path:
    return build_image_model(tmp_path_factory.getbasetemp() / "saved" / "lite0-fashion")


@pytest.fixture(scope="session")
def text_model(tmp_path_factory, offline_assets) -> Path:
    return build_text_model(tmp_path_factory.getbasetemp() / "saved" / "minilm-sentiment")


def _front_matter(text: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "card has no front matter"
    return yaml.safe_load(match.group(1))


# --------------------------------------------------------------------------------------------


def test_card_metadata_is_structured_and_read_from_files(image_model):
    from huggingface_hub import ModelCard

    from tlhub.publishing.card import build_model_card, metric_spec, validate_card

    evals = json.loads((image_model / "eval_results.json").read_text())
    record = json.loads((image_model / "tlhub.json").read_text())
    card = build_model_card(image_model, "alice/lite0-fashion", space_id="alice/lite0-fashion-demo")
    text = str(card)
    assert validate_card(text, model_dir=image_model) == []
    meta = _front_matter(text)
    assert meta["base_model"] == LITE0
    assert meta["library_name"] == "timm"
    assert meta["pipeline_tag"] == "image-classification"
    assert meta["license"] == "apache-2.0"  # from the backbone's config (timm's pretrained_cfg)
    assert {"tlhub", "timm", "image-classification", "transfer-learning", "tlhub-feature-extraction"} <= set(meta["tags"])
    assert "accuracy" in meta["metrics"] and "f1" in meta["metrics"]
    # model-index: one metric per eval_results.json metric, values identical (not retyped or rounded)
    (entry,) = meta["model-index"]
    assert entry["name"] == "lite0-fashion"
    (result,) = entry["results"]
    assert result["task"]["type"] == "image-classification"
    # the built-in fashion-mnist is the Hub's zalando-datasets/fashion_mnist (tlhub.data.builtin says so)
    assert meta["datasets"] == ["zalando-datasets/fashion_mnist"]
    assert result["dataset"] == {"name": "Fashion-MNIST", "type": "zalando-datasets/fashion_mnist", "split": "test"}
    interval_args = ("confidence_interval", "confidence_level", "interval_method", "n_resamples", "n_examples")
    values, intervals = {}, {}
    for m in result["metrics"]:
        args = {k: v for k, v in (m.get("args") or {}).items() if k not in interval_args} or None
        values[(m["type"], json.dumps(args, sort_keys=True))] = m["value"]
        intervals[(m["type"], json.dumps(args, sort_keys=True))] = (m.get("args") or {}).get("confidence_interval")
    assert len(values) == len(evals["metrics"])
    for key, value in evals["metrics"].items():
        metric_type, _, args = metric_spec(key)
        assert values[(metric_type, json.dumps(args, sort_keys=True))] == value
        saved = evals["intervals"].get(key)
        assert intervals[(metric_type, json.dumps(args, sort_keys=True))] == ([saved["low"], saved["high"]] if saved else None)
    # round trip through huggingface_hub's own parser
    parsed = ModelCard(text)
    assert parsed.data.base_model == LITE0
    assert {r.metric_type for r in parsed.data.eval_results} >= {"accuracy", "f1"}
    assert any(r.metric_value == evals["metrics"]["accuracy"] for r in parsed.data.eval_results)
    assert record["labels"] == FASHION_LABELS


def test_card_body_has_training_results_images_limitations_and_snippets(image_model):
    from tlhub.publishing.card import build_model_card

    evals = json.loads((image_model / "eval_results.json").read_text())
    text = str(build_model_card(image_model, "alice/lite0-fashion", space_id="alice/lite0-fashion-demo"))
    body = text.split("\n---\n", 1)[1]
    # training: strategy, stage table with its lr, seed, split sizes
    assert "feature-extraction" in body and "| probe | 30 | 0 | 0.003 |" in body
    assert "| seed | 0 |" in body and "| train examples | 80 |" in body
    # per-class table: every class with its recall, from the file
    for row in evals["per_class"]:
        assert f"| {row['label']} |" in body
    assert "![Confusion matrix on the held-out split](images/confusion_matrix.png)" in body
    assert "(images/training_curves.png)" in body
    # numbers in prose are the saved ones
    acc = evals["metrics"]["accuracy"]
    assert f"accuracy {acc:.4f}".rstrip("0").rstrip(".") in body
    assert f"({evals['num_samples']} examples)" in body
    # the interval of every headline metric, its method and the test-set size; model-index keeps
    # the point value and carries the interval in the metric's free-form arguments
    iv = evals["intervals"]["accuracy"]
    assert f"{iv['low']:.4f}".rstrip("0") in body and f"{iv['high']:.4f}".rstrip("0") in body
    assert "| metric | value | 95% CI |" in body
    assert f"bootstrap (percentile, {iv['n_resamples']} resamples of the {iv['n']:,} held-out examples" in body
    results = _front_matter(text)["model-index"][0]["results"]
    accuracy = next(r for r in results if r["metrics"][0]["type"] == "accuracy")["metrics"][0]
    assert accuracy["value"] == evals["metrics"]["accuracy"] and accuracy["args"]["confidence_interval"] == [iv["low"], iv["high"]]
    # limitations derived from the data
    assert "## Limitations" in body and "Trained on 80 examples (8 per class" in body
    # loading snippets: timm natively, and tlhub
    assert 'timm.create_model("hf-hub:alice/lite0-fashion", pretrained=True)' in body
    assert "tlhub.Predictor.from_pretrained('alice/lite0-fashion')" in body
    assert "https://huggingface.co/spaces/alice/lite0-fashion-demo" in body
    assert "training_log.json" in body and "Resolved training config" in body


def test_text_card_uses_transformers_snippet(text_model):
    from tlhub.publishing.card import build_model_card, validate_card

    text = str(build_model_card(text_model, "alice/minilm-sentiment"))
    assert validate_card(text, model_dir=text_model) == []
    meta = _front_matter(text)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-classification"
    assert meta["base_model"] == MINILM
    assert meta["license"] == "apache-2.0"  # the offline asset's licence
    assert 'pipeline("text-classification", model="alice/minilm-sentiment"' in text
    assert "`negative`" in text and "`positive`" in text


def test_validate_card_catches_bad_metadata(image_model, tmp_path):
    from tlhub.publishing.card import build_model_card, validate_card

    good = str(build_model_card(image_model, "alice/lite0-fashion"))
    assert validate_card(good, model_dir=image_model) == []
    assert validate_card("no front matter") == ["no YAML front matter (--- ... ---) at the top"]
    assert any("not valid YAML" in p for p in validate_card("---\nlicense: [\n---\nbody"))
    bad_value = good.replace("value: ", "value: not-a-number # ", 1)
    assert any("non-numeric" in p for p in validate_card(bad_value))
    assert any("license" in p for p in validate_card(good.replace("license: apache-2.0", "license: apache")))
    assert any("base_model" in p for p in validate_card(good.replace(f"base_model: {LITE0}", "base_model: /home/me/lite0")))
    # an image link to a file that is not in the folder
    empty = tmp_path / "empty"
    empty.mkdir()
    assert any("images/confusion_matrix.png" in p for p in validate_card(good, model_dir=empty))


def test_card_without_evaluation_or_hub_base(image_model, tmp_path):
    """A model trained from a local folder, not yet evaluated: no model-index, no base_model, still valid."""
    from tlhub.publishing.card import build_model_card, validate_card

    copy = tmp_path / "copy"
    shutil.copytree(image_model, copy)
    (copy / "eval_results.json").unlink()
    shutil.rmtree(copy / "images")
    record = json.loads((copy / "tlhub.json").read_text())
    record["base_model"] = record["base_model_revision"] = None  # what save_model records for a local folder
    (copy / "tlhub.json").write_text(json.dumps(record))
    text = str(build_model_card(copy, "alice/x", license="mit"))
    assert validate_card(text, model_dir=copy) == []
    meta = _front_matter(text)
    assert "model-index" not in meta and "base_model" not in meta
    assert meta["license"] == "mit"
    assert "fine-tuned from a local backbone (origin not recorded)" in text


def test_card_of_a_version_1_record_with_a_local_base_path(image_model, tmp_path):
    """An old folder: unversioned record whose base_model is the local folder it was trained from.
    The card loads it, and no local path appears as lineage (front matter or prose)."""
    from tlhub.publishing.card import build_model_card, read_saved_model, validate_card

    copy = tmp_path / "old"
    shutil.copytree(image_model, copy)
    record = json.loads((copy / "tlhub.json").read_text())
    for key in ("schema_version", "base_model_license", "extra"):
        record.pop(key, None)
    local = str(tmp_path / "checkouts" / "lite0")
    record["base_model"] = local
    record["config"]["output_dir"] = "runs/old"
    (copy / "tlhub.json").write_text(json.dumps(record))
    saved = read_saved_model(copy)
    assert saved.base_model is None and saved.record.strategy == "feature-extraction"
    text = str(build_model_card(saved, "alice/old", license="apache-2.0"))
    assert validate_card(text, model_dir=copy) == []
    assert "base_model" not in _front_matter(text)
    assert local not in text and str(tmp_path) not in text
    assert "| seed | 0 |" in text  # the rest of the record is read as before


def test_bad_repo_id_and_missing_record(tmp_path, image_model):
    from tlhub.publishing.card import build_model_card
    from tlhub.errors import PublishError

    with pytest.raises(PublishError, match="not a Hub repo id"):
        build_model_card(image_model, "no-slash")
    with pytest.raises(PublishError) as err:
        build_model_card(tmp_path, "alice/x")
    assert err.value.fix
