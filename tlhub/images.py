"""Decoding images into RGB, whatever they arrive as.

Real image folders hold greyscale scans, RGBA screenshots, CMYK print files and 16-bit TIFFs; the
backbones want 3-channel 8-bit RGB. Every conversion here is explicit so nothing is silently
mangled, and every failure names the file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from tlhub.errors import ImageLoadError


def load_image(value: Any, *, name: str | None = None):
    """Open ``value`` (a path, bytes, a ``datasets`` image dict, a numpy array or a PIL image) as RGB."""
    from PIL import Image, UnidentifiedImageError

    where = name
    try:
        if isinstance(value, Image.Image):
            image = value
        elif isinstance(value, (str, Path)):
            where = where or str(value)
            path = Path(value).expanduser()
            if not path.is_file():
                raise ImageLoadError(f"image file not found: {path}", fix="check the path")
            image = Image.open(path)
        elif isinstance(value, (bytes, bytearray)):
            image = Image.open(io.BytesIO(value))
        elif isinstance(value, dict) and ("bytes" in value or "path" in value):  # datasets' raw Image value
            where = where or value.get("path")
            image = Image.open(io.BytesIO(value["bytes"])) if value.get("bytes") else Image.open(value["path"])
        elif hasattr(value, "__array__"):
            import numpy as np

            image = Image.fromarray(np.asarray(value))
        else:
            raise ImageLoadError(f"cannot read an image from a {type(value).__name__}", fix="pass a file path, bytes or a PIL image")
        image.load()  # decode now, so a truncated file fails here with its name
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(f"{where or 'input'} is not an image PIL can read", fix="remove the file or convert it to PNG/JPEG") from None
    except OSError as exc:  # truncated or corrupt data
        raise ImageLoadError(f"{where or 'input'} is corrupt or truncated ({exc})", fix="re-export or remove the file") from None
    return to_rgb(image)


def to_rgb(image):
    """Convert any PIL mode to 8-bit RGB without surprises."""
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # composite on white: dropping alpha would show whatever colour the transparent pixels hold
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16-bit / float greyscale: PIL's convert("L") clips at 255, so rescale by the data's range
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L").convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV
