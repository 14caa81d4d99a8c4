"""Test-suite set-up: offline by default, nothing leaves 127.0.0.1.

The Hub is unreachable, so tests run with ``HF_HUB_OFFLINE=1`` against the offline pretrained
backbones that ``tlhub assets install`` puts in the Hugging Face cache (the setup script runs it).
Tests that talk to a Hub use the real local server from ``tests/hubserver`` (fixture
``local_hub``), which switches the client online against 127.0.0.1 only.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

pytest_plugins = ["tests.hubserver.fixture"]

LITE0 = "tlhub-offline/tf_efficientnet_lite0.in1k"
MOBILENET = "tlhub-offline/mobilenetv2_100.tv_in1k"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="session")
def offline_assets():
    """The offline backbones, installed into the user's cache (a no-op when already there)."""
    from tlhub.offline.install import install_assets

    install_assets(progress=False)
    return {"lite0": LITE0, "mobilenet": MOBILENET, "minilm": MINILM}


@pytest.fixture(scope="session")
def coffee_png(tmp_path_factory):
    """scikit-image's coffee photo (an espresso), as a PNG file."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("images") / "coffee.png"
    Image.fromarray(data.coffee()).save(path)
    return path
