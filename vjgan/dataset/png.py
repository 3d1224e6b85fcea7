"""A small PNG encoder (8-bit RGB or grey) on the standard library alone.

Training writes sample grids and datasets on machines where an image library may be missing; the
format is simple enough to write directly (signature, IHDR, one zlib IDAT, IEND), and zlib
releases the interpreter lock, so threads encode in parallel.
"""

from __future__ import annotations

import ctypes
import os
import struct
import tempfile
import zlib
from pathlib import Path

import torch

from ..atomic import publish


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: torch.Tensor, level: int = 6) -> bytes:
    """PNG bytes of a uint8 image [H, W, 3] or [H, W] (or [3, H, W], which is transposed)."""
    img = image.detach().to("cpu")
    if img.dtype != torch.uint8:
        raise TypeError(f"encode_png needs uint8 pixels, got {img.dtype}")
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[2] not in (1, 3):
        img = img.permute(1, 2, 0)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        color_type, channels = 0, 1
    elif img.ndim == 3 and img.shape[2] == 3:
        color_type, channels = 2, 3
    else:
        raise ValueError(f"encode_png needs [H, W], [H, W, 3] or [3, H, W], got {list(image.shape)}")
    h, w = img.shape[0], img.shape[1]
    rows = img.contiguous().reshape(h, w * channels)
    raw = torch.cat([torch.zeros(h, 1, dtype=torch.uint8), rows], dim=1)  # filter type 0 per row
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(tensor_bytes(raw), level)) + _chunk(b"IEND", b"")


def tensor_bytes(t: torch.Tensor) -> bytes:
    """The raw bytes of a uint8 CPU tensor (copied), without needing numpy."""
    t = t.detach().to("cpu", torch.uint8).contiguous()
    return ctypes.string_at(t.data_ptr(), t.numel()) if t.numel() else b""


def write_png(path: str | os.PathLike[str], image: torch.Tensor, level: int = 6) -> Path:
    """Encode `image` and write it atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    data = encode_png(image, level)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Network images in about [-1, 1] → uint8 (same shape), rounding and clipping."""
    return (images.detach().float() * 127.5 + 128.0).clamp(0, 255).to(torch.uint8)


def tile(images: torch.Tensor, cols: int, pad: int = 0) -> torch.Tensor:
    """Lay uint8 images [N, C, H, W] out in a grid `cols` wide: [C, rows·H, cols·W]."""
    n, c, h, w = images.shape
    rows = (n + cols - 1) // cols
    canvas = torch.zeros(c, rows * (h + pad) - pad, cols * (w + pad) - pad, dtype=images.dtype, device=images.device)
    for i in range(n):
        r, q = divmod(i, cols)
        canvas[:, r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = images[i]
    return canvas
