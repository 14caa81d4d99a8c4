"""Metrics through the real ``evaluate`` library (tlhub's bundled modules), checked against scikit-learn."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from tlhub.errors import ConfigError, DataError, TlhubError
from tlhub.engine.evaluation import EvalResult, compute_metrics, evaluate_dataloader, evaluate_model
from tlhub.engine.metrics import BUNDLED_METRICS, bundled_metrics, combine_metrics, load_metric, metric_path

LABELS7 = ["cat", "dog", "bird", "horse", "a rather long class name", "ship", "truck"]


@pytest.fixture
def no_network(monkeypatch):
    """Offline mode everywhere, and any attempt to open a connection fails the test loudly."""
    import evaluate
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network disabled in this test (tried {address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.fixture
def data():
    rng = np.random.default_rng(1234)
    refs = rng.integers(0, 7, 400)
    # mostly right, with systematic confusions so that the classes differ
    preds = np.where(rng.random(400) < 0.6, refs, rng.integers(0, 7, 400))
    return preds, refs


# --------------------------------------------------------------------------------------------
# the bundled evaluate modules
# --------------------------------------------------------------------------------------------
def test_bundled_modules_are_shipped():
    assert set(BUNDLED_METRICS) <= set(bundled_metrics())
    for name in BUNDLED_METRICS:
        path = metric_path(name)
        assert path is not None and path.name == f"{name}.py" and path.parent.name == name
    assert metric_path("evaluate-metric/f1") == metric_path("f1")
    assert metric_path("bleu") is None


def test_bundled_metrics_load_offline_and_match_sklearn(no_network, data):
    import evaluate

    preds, refs = data
    modules = {name: load_metric(name) for name in BUNDLED_METRICS}
    assert all(isinstance(m, evaluate.EvaluationModule) for m in modules.values())
    assert modules["f1"].name == "f1" and modules["confusion_matrix"].name == "confusion_matrix"

    assert modules["accuracy"].compute(predictions=preds, references=refs)["accuracy"] == pytest.approx(accuracy_score(refs, preds))
    for average in ("macro", "weighted", "micro"):
        p, r, f, _ = precision_recall_fscore_support(refs, preds, average=average, zero_division=0)
        assert modules["precision"].compute(predictions=preds, references=refs, average=average)["precision"] == pytest.approx(p)
        assert modules["recall"].compute(predictions=preds, references=refs, average=average)["recall"] == pytest.approx(r)
        assert modules["f1"].compute(predictions=preds, references=refs, average=average)["f1"] == pytest.approx(f)

    labels = list(range(8))  # class 7 never occurs
    p, r, f, _ = precision_recall_fscore_support(refs, preds, labels=labels, average=None, zero_division=0)
    per_p = modules["precision"].compute(predictions=preds, references=refs, average=None, labels=labels)["precision"]
    assert isinstance(per_p, list) and len(per_p) == 8
    np.testing.assert_allclose(per_p, p)
    np.testing.assert_allclose(modules["recall"].compute(predictions=preds, references=refs, average=None, labels=labels)["recall"], r)
    np.testing.assert_allclose(modules["f1"].compute(predictions=preds, references=refs, average=None, labels=labels)["f1"], f)
    cm = modules["confusion_matrix"].compute(predictions=preds, references=refs, labels=labels)["confusion_matrix"]
    assert cm == confusion_matrix(refs, preds, labels=labels).tolist()
    assert no_network == []  # nothing even tried to connect


def test_streaming_and_combine(no_network, data):
    preds, refs = data
    combined = combine_metrics(["precision", "recall", "f1"])
    for start in range(0, len(refs), 64):  # the way a trainer feeds batches
        combined.add_batch(predictions=preds[start : start + 64], references=refs[start : start + 64])
    result = combined.compute(average="macro")
    p, r, f, _ = precision_recall_fscore_support(refs, preds, average="macro", zero_division=0)
    assert result == pytest.approx({"precision": p, "recall": r, "f1": f})


def test_unknown_metric_offline_is_a_clear_tlhub_error(no_network):
    with pytest.raises(ConfigError) as info:
        load_metric("acuracy")
    message = str(info.value)
    assert "'acuracy'" in message and "Did you mean 'accuracy'" in message
    for name in BUNDLED_METRICS:
        assert name in message
    assert info.value.fix


def test_importing_evaluation_stays_cheap():
    code = (
        "import sys, tlhub.engine.evaluation, tlhub.engine.plots, tlhub.engine.metrics;"
        "print(sorted(m for m in ('evaluate', 'torch', 'matplotlib', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------------------------
# compute_metrics
# --------------------------------------------------------------------------------------------
def test_compute_metrics_matches_sklearn(data):
    preds, refs = data
    result = compute_metrics(preds, refs, LABELS7, split="validation", loss=0.75)

    assert result.split == "validation" and result.num_samples == 400 and result.labels == LABELS7
    assert set(result.metrics) == {"accuracy", "precision_macro", "recall_macro", "f1_macro", "balanced_accuracy", "loss"}
    assert result.metrics["accuracy"] == pytest.approx(accuracy_score(refs, preds))
    from sklearn.metrics import balanced_accuracy_score

    assert result.metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(refs, preds))
    p, r, f, _ = precision_recall_fscore_support(refs, preds, average="macro", zero_division=0)
    assert result.metrics["precision_macro"] == pytest.approx(p)
    assert result.metrics["recall_macro"] == pytest.approx(r)
    assert result.metrics["f1_macro"] == pytest.approx(f)
    assert result.metrics["loss"] == 0.75

    p, r, f, s = precision_recall_fscore_support(refs, preds, labels=range(7), average=None, zero_division=0)
    assert [row["label"] for row in result.per_class] == LABELS7
    np.testing.assert_allclose([row["precision"] for row in result.per_class], p)
    np.testing.assert_allclose([row["recall"] for row in result.per_class], r)
    np.testing.assert_allclose([row["f1"] for row in result.per_class], f)
    assert [row["support"] for row in result.per_class] == s.tolist()
    assert result.confusion_matrix == confusion_matrix(refs, preds, labels=range(7)).tolist()
    # plain JSON types all the way down
    json.dumps(result.to_dict(), allow_nan=False)
    assert "loss" not in compute_metrics(preds, refs, LABELS7).metrics


def test_confusion_matrix_orientation():
    # two "cat"s predicted as "dog", one "dog" right: rows are true classes, columns predictions
    result = compute_metrics([1, 1, 1], [0, 0, 1], ["cat", "dog"])
    assert result.confusion_matrix == [[0, 2], [0, 1]]
    assert [row["support"] for row in result.per_class] == [2, 1]
    assert result.metrics["accuracy"] == pytest.approx(1 / 3)


def test_class_absent_from_the_data():
    labels = ["a", "b", "c", "never seen"]
    preds, refs = [0, 1, 2, 2, 1, 0], [0, 1, 2, 1, 1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no UndefinedMetricWarning either
        result = compute_metrics(preds, refs, labels)
    assert len(result.confusion_matrix) == 4 and all(len(row) == 4 for row in result.confusion_matrix)
    assert result.confusion_matrix[3] == [0, 0, 0, 0] and [row[3] for row in result.confusion_matrix] == [0, 0, 0, 0]
    absent = result.per_class[3]
    assert absent == {"label": "never seen", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # macro averages cover the classes that occur (scikit-learn's default), not the absent one
    p, r, f, _ = precision_recall_fscore_support(refs, preds, average="macro", zero_division=0)
    assert result.metrics["f1_macro"] == pytest.approx(f)
    assert result.metrics["precision_macro"] == pytest.approx(p)


def test_accepts_lists_tensors_and_whole_floats():
    torch = pytest.importorskip("torch")
    a = compute_metrics(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), ["x", "y"])
    b = compute_metrics(np.array([0.0, 1.0, 1.0]), [0, 1, 0], ("x", "y"))
    assert a == b


@pytest.mark.parametrize(
    "preds, refs, labels, fragment",
    [
        ([0, 1], [0, 1, 1], ["a", "b"], "2 predictions but 3 references"),
        ([0, 3], [0, 1], ["a", "b"], "predictions holds class ids outside 0..1"),
        ([0, 1], [-1, 1], ["a", "b"], "references holds class ids outside 0..1"),
        ([0.5, 1], [0, 1], ["a", "b"], "non-integer"),
        (["a", "b"], [0, 1], ["a", "b"], "integer class ids"),
        ([[0.1, 0.9], [0.8, 0.2]], [1, 0], ["a", "b"], "looks like logits"),
        ([[0, 1]], [0], ["a", "b", "c"], "one-dimensional"),
        ([], [], ["a", "b"], "no samples"),
        ([0], [0], [], "labels is empty"),
        ([0], [0], ["a", "a"], "duplicate label names"),
        ([0], [0], "ab", "list of class names"),
    ],
)
def test_invalid_inputs_raise_data_error(preds, refs, labels, fragment):
    with pytest.raises(DataError) as info:
        compute_metrics(preds, refs, labels)
    assert fragment in str(info.value)
    assert info.value.fix
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------------------------
# EvalResult
# --------------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path, data):
    preds, refs = data
    result = compute_metrics(preds, refs, LABELS7, loss=1.25)
    path = result.save(tmp_path / "model")
    assert path == tmp_path / "model" / "eval_results.json"
    on_disk = json.loads(path.read_text())
    assert on_disk["metrics"]["f1_macro"] == pytest.approx(result.metrics["f1_macro"])
    assert on_disk["confusion_matrix"] == result.confusion_matrix
    png = tmp_path / "model" / "images" / "confusion_matrix.png"
    assert png.is_file() and png.stat().st_size > 10_000
    assert not [p for p in path.parent.rglob("*") if p.name.startswith(".")]  # no temp files left

    assert EvalResult.load(tmp_path / "model") == result
    assert EvalResult.load(path) == result
    assert EvalResult.from_dict(result.to_dict()) == result

    with pytest.raises(TlhubError, match="no evaluation results"):
        EvalResult.load(tmp_path / "elsewhere")
    with pytest.raises(TlhubError, match="missing"):
        EvalResult.from_dict({"metrics": {}})


def test_table_and_summary(data):
    preds, refs = data
    result = compute_metrics(preds, refs, LABELS7, loss=0.5)
    table = result.table()
    lines = table.splitlines()
    assert lines[0].split() == ["label", "precision", "recall", "f1", "support"]
    class_lines = lines[2 : 2 + len(LABELS7)]
    assert len({len(line) for line in class_lines + [lines[0]]}) == 1  # aligned columns
    for label, line, row in zip(LABELS7, class_lines, result.per_class):
        assert line.startswith(label) and line.endswith(str(row["support"]))
        assert f"{row['f1']:.4f}" in line
    assert any(line.startswith("macro avg") and f"{result.metrics['f1_macro']:.4f}" in line for line in lines)
    assert any(line.startswith("accuracy") for line in lines)

    summary = result.summary()
    assert "\n" not in summary
    assert summary.startswith("test:")
    assert f"accuracy {result.metrics['accuracy']:.4f}" in summary and f"macro F1 {result.metrics['f1_macro']:.4f}" in summary
    assert "loss 0.5000" in summary and "400 samples" in summary and "7 classes" in summary


# --------------------------------------------------------------------------------------------
# evaluate_model on a tiny real torch model
# --------------------------------------------------------------------------------------------
@pytest.fixture
def tiny():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    class Tiny(torch.nn.Module):
        """TransferModel-shaped: forward(batch) -> logits, with .labels."""

        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(5, 3)
            self.drop = torch.nn.Dropout(0.5)  # would make eval-mode mistakes visible
            self.labels = ["red", "green", "blue"]

        def forward(self, batch):
            return self.head(self.drop(batch["pixel_values"]))

    torch.manual_seed(0)
    x = torch.randn(10, 5)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])
    samples = [{"pixel_values": x[i], "labels": y[i]} for i in range(10)]
    loader = DataLoader(samples, batch_size=4)  # 4 + 4 + 2: an uneven last batch
    model = Tiny()
    with torch.no_grad():
        logits = model.head(x)
    expected_loss = torch.nn.functional.cross_entropy(logits, y).item()
    return model, loader, logits.argmax(-1).numpy(), y.numpy(), expected_loss


def test_evaluate_model_without_accelerator(tiny):
    model, loader, expected_preds, expected_refs, expected_loss = tiny
    model.train()
    preds, refs, loss = evaluate_model(model, loader, progress=False)
    assert preds.dtype == np.int64 and refs.dtype == np.int64
    np.testing.assert_array_equal(preds, expected_preds)
    np.testing.assert_array_equal(refs, expected_refs)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert model.training  # put back the way it was


def test_evaluate_model_with_accelerator(tiny):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    model, loader, expected_preds, expected_refs, expected_loss = tiny
    accelerator = Accelerator(cpu=True)
    try:
        prepared_model, prepared_loader = accelerator.prepare(model, loader)
        preds, refs, loss = evaluate_model(prepared_model, prepared_loader, accelerator=accelerator, progress=True)
        np.testing.assert_array_equal(preds, expected_preds)
        np.testing.assert_array_equal(refs, expected_refs)  # exactly 10: nothing duplicated
        assert loss == pytest.approx(expected_loss, rel=1e-5)

        result = evaluate_dataloader(prepared_model, prepared_loader, accelerator=accelerator, split="validation", progress=False)
        assert result.labels == ["red", "green", "blue"] and result.num_samples == 10
        assert result.metrics["loss"] == pytest.approx(expected_loss, rel=1e-5)
        assert result.metrics["accuracy"] == pytest.approx(accuracy_score(expected_refs, expected_preds))
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


def test_evaluate_model_needs_labels(tiny):
    torch = pytest.importorskip("torch")
    model = tiny[0]
    with pytest.raises(DataError, match="labels"):
        evaluate_model(model, [{"pixel_values": torch.randn(2, 5)}], progress=False)
    with pytest.raises(DataError, match="no samples"):
        evaluate_model(model, [], progress=False)


@pytest.fixture(scope="module")
def text_model(tmp_path_factory, offline_assets):
    from tests.publishing.test_card import build_text_model

    return build_text_model(tmp_path_factory.mktemp("saved") / "minilm-sentiment")


def test_max_samples_is_a_stratified_seeded_sample_not_the_first_rows(text_model, tmp_path, capsys):
    import csv

    from tests.publishing.test_card import TEXTS
    from tlhub.cli.main import build_parser
    from tlhub.engine.evaluation import evaluate

    data = tmp_path / "data"
    data.mkdir()
    rows = sorted(((text, ["negative", "positive"][y]) for text, y in TEXTS), key=lambda r: r[1])  # sorted by class
    for name, part in (("train.csv", rows[:2] + rows[-2:]), ("test.csv", rows)):
        with open(data / name, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("text", "label"), *part])
    n_negative = sum(1 for _, label in rows if label == "negative")
    assert 6 < n_negative < len(rows) - 6  # the first 6 rows would all be "negative"

    result = evaluate(str(text_model), data=str(data), max_samples=6, progress=False)
    support = {row["label"]: row["support"] for row in result.per_class}
    assert result.num_samples == 6 and support["negative"] >= 2 and support["positive"] >= 2, support
    again = evaluate(str(text_model), data=str(data), max_samples=6, progress=False)
    assert again.to_dict() == result.to_dict()  # seeded: the same rows every time

    with pytest.raises(SystemExit):  # and the help says so
        build_parser().parse_args(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--max-samples N evaluate on a stratified random sample of N rows" in help_text, help_text
