"""Images of every mode come out as 8-bit RGB; unreadable files name themselves."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tlhub.errors import ImageLoadError
from tlhub.adapters.images import load_image


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "1", "I;16", "LA"])
def test_modes_become_rgb(tmp_path, mode):
    rgb = Image.fromarray((np.arange(64 * 64 * 3) % 251).astype(np.uint8).reshape(64, 64, 3))
    image = rgb.convert("L").convert(mode) if mode in ("I;16", "1", "LA") else rgb.convert(mode)
    path = tmp_path / f"x.{'tiff' if mode in ('CMYK', 'I;16') else 'png'}"
    image.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (64, 64)


def test_16_bit_range_is_rescaled_not_clipped(tmp_path):
    arr = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    path = tmp_path / "deep.tiff"
    Image.fromarray(arr).save(path)
    out = np.asarray(load_image(path))
    assert out.min() == 0 and out.max() == 255  # clipping would have made most pixels 255


def test_transparent_pixels_composite_on_white():
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert load_image(image).getpixel((0, 0)) == (255, 255, 255)


def test_bad_files_name_themselves(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(missing)
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    with pytest.raises(ImageLoadError, match="fake.png is not an image"):
        load_image(fake)
    good = tmp_path / "good.jpg"
    Image.new("RGB", (256, 256), (10, 200, 30)).save(good, quality=95)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ImageLoadError, match="truncated.jpg"):
        load_image(truncated)
