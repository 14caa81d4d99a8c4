"""The classic demo: a pretrained ImageNet network classifies a photo, offline."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import tlhub
from tlhub.errors import ImageLoadError, TlhubError


def test_espresso_top1(offline_assets, coffee_png):
    [preds] = tlhub.predict(offline_assets["lite0"], [str(coffee_png)], top_k=3)
    assert len(preds) == 3
    assert preds[0].label == "espresso" and preds[0].score > 0.9
    assert preds[0].score >= preds[1].score >= preds[2].score


def test_mobilenet_also_knows_coffee(offline_assets, coffee_png):
    [preds] = tlhub.predict(offline_assets["mobilenet"], [str(coffee_png)], top_k=5)
    assert "espresso" in [p.label for p in preds]


def test_cli_predict_prints_top_k(offline_assets, coffee_png):
    out = subprocess.run(
        [sys.executable, "-m", "tlhub", "predict", offline_assets["lite0"], str(coffee_png), "--top-k", "3"],
        capture_output=True, text=True, check=True,
    )
    lines = out.stdout.strip().splitlines()
    assert lines[1].split()[1] == "espresso" and len(lines) == 4


def test_cli_errors_are_one_clear_message(offline_assets, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = subprocess.run([sys.executable, "-m", "tlhub", "predict", offline_assets["lite0"], str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "broken.jpg" in out.stderr and "fix:" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "tlhub", "describe", "tlhub-offline/tf_efficientnet_lite0.in1"], capture_output=True, text=True)
    assert out.returncode == 2 and "did you mean" in out.stderr and "Traceback" not in out.stderr


def test_headless_text_backbone_cannot_predict(offline_assets):
    with pytest.raises(TlhubError, match="no classification head"):
        tlhub.predict(offline_assets["minilm"], ["hello"])


def test_unreadable_image_raises(offline_assets, tmp_path):
    with pytest.raises(ImageLoadError):
        tlhub.predict(offline_assets["lite0"], [str(tmp_path / "missing.png")])


def test_help_and_listing_do_not_import_torch():
    code = (
        "import sys, time; t=time.perf_counter(); from tlhub.cli.main import main; "
        "import contextlib, io; buf=io.StringIO()\n"
        "with contextlib.redirect_stdout(buf): main(['plugins', 'list'])\n"
        "assert 'torch' not in sys.modules, 'torch imported'; print(time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout.strip()) < 2.0
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tlhub", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - start < 3.0  # well under a second here; generous for loaded CI
