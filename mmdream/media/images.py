"""Reading and writing still images as RGB tensors ``(1, 3, H, W)`` in [0, 1]."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from mmdream.errors import MediaError
from mmdream.media.files import atomic_path
from mmdream.media.provenance import image_save_options

Image.MAX_IMAGE_PIXELS = 1 << 28  # 16k x 16k; larger inputs are refused by PIL as decompression bombs


def load_image(path: str | os.PathLike[str], size: int | None = None) -> torch.Tensor:
    """RGB pixels ``(1, 3, H, W)`` in [0, 1]; EXIF rotation applied, alpha composited on white, 16-bit grey
    scaled (not clipped) to 8 bits, an animation's first frame.

    ``size``: resize (Lanczos) so that the longer side is ``size`` pixels.
    """
    p = Path(path)
    if not p.is_file():
        raise MediaError(f"input image {p} does not exist")
    try:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):  # 16-bit grey (PNG, TIFF): 0..65535
                im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257.0 + 0.5).clip(0, 255).astype(np.uint8))
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("RGB")
            if size is not None:
                scale = size / max(im.size)
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                               Image.Resampling.LANCZOS)
            arr = np.array(im)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise MediaError(f"cannot read {p} as an image ({exc}); give a PNG, JPEG, WebP or TIFF file") from exc
    return from_uint8(arr)


def from_uint8(arr: np.ndarray) -> torch.Tensor:
    """8-bit ``(H, W, 3)`` -> float ``(1, 3, H, W)`` in [0, 1], with one full-size float copy only."""
    chw = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
    return chw.to(dtype=torch.float32, memory_format=torch.contiguous_format).div_(255.0)


def load_for_classification(path: str | os.PathLike[str], size: int) -> torch.Tensor:
    """The usual evaluation crop ``(1, 3, size, size)``: shorter side to ``size`` (bicubic), centre crop."""
    x = load_image(path)
    with Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)) as im:
        scale = size / min(im.size)
        width, height = max(size, round(im.width * scale)), max(size, round(im.height * scale))
        left, top = (width - size) // 2, (height - size) // 2
        sx, sy = width / im.width, height / im.height
        # Only the crop's own region is resized (PIL reads the filter's support around it): the same pixels as
        # resizing the whole image, without its size (a 3x2000 strip would grow to 224x149333).
        box = (left / sx, top / sy, (left + size) / sx, (top + size) / sy)
        arr = np.array(im.resize((size, size), Image.Resampling.BICUBIC, box=box))
    return from_uint8(arr)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` or ``(3, H, W)`` in [0, 1] -> 8-bit ``(H, W, 3)`` (rounded)."""
    x = image.detach().reshape(-1, *image.shape[-3:])[0]
    return np.ascontiguousarray(x.clamp(0, 1).mul_(255.0).add_(0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy())


def to_pil(image: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` in [0, 1] -> 8-bit RGB PIL image (rounded)."""
    return Image.fromarray(to_uint8(image))


def check_image_suffix(path: str | os.PathLike[str]) -> Path:
    """The path, if its suffix names an image format we write; else a MediaError."""
    p = Path(path)
    if p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"):
        raise MediaError(f"output {p} has no image suffix; use .png, .jpg, .webp or .tif")
    return p


def save_image(image: torch.Tensor, path: str | os.PathLike[str], quality: int = 95,
               provenance: str | None = None) -> Path:
    """Write ``image`` atomically; the format follows the suffix (PNG, JPEG, WebP, TIFF). ``provenance``: a record
    text to embed (:mod:`mmdream.media.provenance`)."""
    p = check_image_suffix(path)
    with atomic_path(p) as tmp:
        to_pil(image).save(tmp, quality=quality, **image_save_options(p.suffix, provenance))
    return p
