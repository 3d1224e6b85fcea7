"""Pictures in and out: read a photo (or say in one line why not), convert to and from the networks' range."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..atomic import atomic_write
from ..errors import UserError

MAX_PIXELS = 100_000_000  # a 10k × 10k photo; beyond that a file is more likely a decompression bomb


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """An RGB uint8 array [H, W, 3], upright (the camera's EXIF orientation applied)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"image {path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise UserError(f"image {path}: {im.width}x{im.height} is too large (at most {MAX_PIXELS:,} pixels)")
                im = ImageOps.exif_transpose(im)
                rgb = np.asarray(im.convert("RGB"))
    except UserError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"image {path}: too large to read safely") from None
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds; the user needs one line
        raise UserError(f"image {path}: not a picture vjgan can read ({type(e).__name__})") from None
    if min(rgb.shape[:2]) < 16:
        raise UserError(f"image {path}: {rgb.shape[1]}x{rgb.shape[0]} is too small to project")
    return rgb


def fill_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square, resized to size × size (no face alignment)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(rgb[top : top + side, left : left + side])
    return np.asarray(square.resize((size, size), Image.LANCZOS))


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] → float [3, H, W] in [-1, 1] (the networks' range)."""
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in about [-1, 1] → uint8 [N, H, W, 3]."""
    x = (images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def side_by_side(targets: np.ndarray, projections: np.ndarray, gap: int = 4) -> np.ndarray:
    """One row per picture: target | projection ([N, H, W, 3] each) → one uint8 image."""
    n, h, w, _ = targets.shape
    sheet = np.full((n * h + (n - 1) * gap, 2 * w + gap, 3), 255, dtype=np.uint8)
    for i in range(n):
        y = i * (h + gap)
        sheet[y : y + h, :w] = targets[i]
        sheet[y : y + h, w + gap :] = projections[i]
    return sheet


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return atomic_write(path, buffer.getvalue())
