"""Image helpers shared by image adapters: decoding into RGB, and batches built from a
:class:`~tlhub.adapters.contract.Preprocessing`.

Real image folders hold greyscale scans, RGBA screenshots, CMYK print files and 16-bit TIFFs; the
backbones want 3-channel 8-bit RGB. Every conversion here is explicit so nothing is silently
mangled, and every failure names the file.

:func:`image_collate` is what an image adapter's ``make_collate`` returns by default: resize and
crop as the preprocessing says (so a model whose ``set_input_size`` changed its preprocessing
gets batches of the new size), normalise, and for training a mild augmentation.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tlhub.errors import ConfigError, ImageLoadError

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.adapters.contract import Preprocessing


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
            if path.is_dir():
                raise ImageLoadError(f"{path} is a folder, not an image file", fix="pass the path of an image file inside it")
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
    except Image.DecompressionBombError as exc:  # not an OSError: a few KB that would decode to gigabytes
        raise ImageLoadError(f"{where or 'input'} is too large to decode safely ({exc})",
                             fix="resize the image below PIL's limit (PIL.Image.MAX_IMAGE_PIXELS pixels), or remove it") from None
    except PermissionError as exc:  # an OSError too, but the file may be fine: reading it is refused
        raise ImageLoadError(f"cannot read {where or exc.filename or 'input'}: permission denied",
                             fix="give your user read permission on the file (chmod u+r), or remove it") from None
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


def image_transform(pre: "Preprocessing", *, train: bool = False, augment: bool = False, auto_augment: str | None = None) -> Callable:
    """``transform(PIL image) -> CHW float tensor`` for ``pre`` (timm's ``create_transform``).

    Evaluation (and training without ``augment``): resize, centre crop by ``crop_pct``, normalise.
    ``train`` and ``augment``: a mild, label-preserving augmentation for fine-tuning on small data
    (random resized crops of 70-100 % of the image, horizontal flips) plus ``auto_augment``:
    ``"trivialaugment"`` or a timm policy (``"rand-m9-mstd0.5"``). timm's ImageNet defaults
    (crops down to 8 %, colour jitter, random interpolation) are built for training from scratch
    and wreck a pretrained head in the first epoch.
    """
    from timm.data import create_transform

    if not pre.input_size or len(pre.input_size) != 3:
        raise ConfigError(f"image preprocessing needs input_size=(C, H, W), got {pre.input_size!r}",
                          fix="return Preprocessing(modality='image', input_size=(3, H, W), mean=..., std=...) from Adapter.preprocessing")
    config = {"input_size": tuple(pre.input_size), "interpolation": pre.interpolation or "bilinear",
              "mean": tuple(pre.mean or (0.485, 0.456, 0.406)), "std": tuple(pre.std or (0.229, 0.224, 0.225))}
    if pre.crop_pct is not None:
        config["crop_pct"] = pre.crop_pct
    if pre.crop_mode:
        config["crop_mode"] = pre.crop_mode
    if not (train and augment):
        return create_transform(**config, is_training=False)
    policy = auto_augment
    transform = create_transform(**config, is_training=True, scale=(0.7, 1.0), ratio=(0.85, 1.18), hflip=0.5,
                                 color_jitter=0.0, auto_augment=None if policy == "trivialaugment" else policy)
    if policy == "trivialaugment":
        # TrivialAugment (Mueller & Hutter 2021): one random op at a random strength per image, no
        # policy to tune; torchvision has it, timm does not. It goes where timm puts its own
        # policies: after crop and flip, before the tensor conversion.
        from torchvision.transforms import TrivialAugmentWide

        steps = list(transform.transforms)
        steps.insert(next(i for i, t in enumerate(steps) if "ToTensor" in type(t).__name__), TrivialAugmentWide())
        transform = type(transform)(steps)
    return transform


def image_collate(pre: "Preprocessing", *, train: bool = False, augment: bool = False, auto_augment: str | None = None,
                  key: str = "pixel_values") -> Callable[[list[Any]], dict]:
    """``collate(list of images) -> {key: (N, C, H, W) tensor}`` with :func:`image_transform`.
    Each image goes through :func:`to_rgb` first (PIL images of any mode)."""
    import torch

    transform = image_transform(pre, train=train, augment=augment, auto_augment=auto_augment)

    def collate(images: list[Any]) -> dict:
        return {key: torch.stack([transform(to_rgb(image)) for image in images])}

    return collate
