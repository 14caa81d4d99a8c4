"""The confusion-matrix and training-curve figures: real PNGs, checked with PIL."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tlhub.errors import DataError
from tlhub.engine.plots import plot_confusion_matrix, plot_training_curves


def _check_png(path, min_w=500, min_h=400, coloured=0.01):
    assert path.is_file() and path.stat().st_size > 5_000
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert w >= min_w and h >= min_h
        pixels = np.asarray(im.convert("RGB"), dtype=np.int16)
    # something was drawn: not a blank canvas, and some coloured (non-grey) pixels
    assert pixels.std() > 10
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 60).mean() > coloured
    return w, h


@pytest.fixture
def history():
    rows, e = [], 0
    for stage, epochs, lr in [("linear-probe", 2, 1e-3), ("fine-tune-top", 2, 3e-4), ("fine-tune-all", 3, 1e-4)]:
        for k in range(1, epochs + 1):
            e += 1
            rows.append({
                "stage": stage, "epoch": k, "lr": lr / k,
                "train_loss": 1.8 / e, "val_loss": 1.9 / e + (0.1 if e == 7 else 0),
                "val_accuracy": 1 - 0.6 / e - (0.05 if e == 7 else 0),
            })
    return rows


def test_confusion_matrix_many_classes_long_names(tmp_path):
    rng = np.random.default_rng(0)
    labels = [f"class {i}" for i in range(10)] + ["an extremely long class name that would never fit on an axis", "empty class"]
    refs = rng.integers(0, 11, 2000)
    preds = np.where(rng.random(2000) < 0.7, refs, rng.integers(0, 11, 2000))
    cm = np.zeros((12, 12), dtype=int)
    np.add.at(cm, (refs, preds), 1)
    out = plot_confusion_matrix(cm, labels, tmp_path / "sub" / "cm.png", title="Confusion matrix: test")
    assert out == tmp_path / "sub" / "cm.png"
    w, h = _check_png(out, 900, 900)
    assert 0.7 < w / h < 1.5  # roughly square, not squashed by the labels
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_confusion_matrix_small_and_raw_counts(tmp_path):
    out = plot_confusion_matrix([[5, 1], [0, 7]], ["no", "yes"], tmp_path / "cm.png", normalize=False)
    _check_png(out, 300, 300)


def test_confusion_matrix_rejects_bad_shapes(tmp_path):
    with pytest.raises(DataError, match="square"):
        plot_confusion_matrix([[1, 2, 3]], ["a"], tmp_path / "x.png")
    with pytest.raises(DataError, match="3 labels"):
        plot_confusion_matrix([[1, 0], [0, 1]], ["a", "b", "c"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_training_curves_across_stages(tmp_path, history):
    out = plot_training_curves(history, tmp_path / "curves.png", title="Training curves")
    w, h = _check_png(out, 800, 800, coloured=0.003)
    assert h > w * 0.8  # stacked panels


def test_training_curves_show_gradient_norms_when_logged(tmp_path, history):
    # fine-tuning epochs log their largest gradient norm: one more panel, and a spike stays visible
    _, plain = _check_png(plot_training_curves(history, tmp_path / "plain.png"), 800, 800, coloured=0.003)
    rows = [dict(r, grad_norm_max=(None if r["stage"] == "linear-probe" else 3.0 + (200.0 if i == 5 else 0.0)),
                 grad_norm_median=(None if r["stage"] == "linear-probe" else 1.5)) for i, r in enumerate(history)]
    _, with_norms = _check_png(plot_training_curves(rows, tmp_path / "norms.png"), 800, 800, coloured=0.003)
    assert with_norms > plain


def test_training_curves_partial_histories(tmp_path, history):
    # one epoch only
    _check_png(plot_training_curves(history[:1], tmp_path / "one.png"), 600, 400, coloured=0.0005)
    # losses only, no stage, no validation: still a figure
    rows = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.6}, {"epoch": 3, "train_loss": None}]
    _check_png(plot_training_curves(rows, tmp_path / "loss.png"), 600, 300, coloured=0.0005)
    with pytest.raises(DataError, match="no training history"):
        plot_training_curves([], tmp_path / "empty.png")
