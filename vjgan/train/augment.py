"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for training on few images.

The same random transforms are applied to real and generated images before the discriminator
sees them; every transform is differentiable, so the generator learns through it and does not
learn the augmentation itself. Written from the paper's description: colour (brightness,
saturation, contrast), translation (shift by up to 1/8 of the size, zero fill) and cutout (a
zeroed square of half the size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str | None) -> tuple[str, ...]:
    """'color,translation,cutout' → tuple; '', 'none' or None → no augmentation."""
    if not text or text.strip().lower() in ("none", "off", "no"):
        return ()
    parts = tuple(p.strip().lower() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(POLICIES)}")
    return parts


def augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """Apply `policy` to images [N, C, H, W] (random per sample, from torch's generator on x's device)."""
    for name in policy:
        if name == "color":
            x = _color(x)
        elif name == "translation":
            x = _translation(x)
        elif name == "cutout":
            x = _cutout(x)
    return x


def _rand(x: torch.Tensor) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=torch.float32)


def _color(x: torch.Tensor) -> torch.Tensor:
    x = x + (_rand(x) - 0.5).to(x.dtype)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x) * 2).to(x.dtype) + mean  # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - mean) * (_rand(x) + 0.5).to(x.dtype) + mean  # contrast
    return x


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    N, C, H, W = x.shape
    sy, sx = int(H * ratio + 0.5), int(W * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (N, 1, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (N, 1, 1), device=x.device)
    gy = torch.arange(H, device=x.device)[None, :, None] + dy  # source row for each output row
    gx = torch.arange(W, device=x.device)[None, None, :] + dx
    padded = F.pad(x, [1, 1, 1, 1])  # the zero border is where shifted-in pixels come from
    gy = (gy + 1).clamp(0, H + 1)
    gx = (gx + 1).clamp(0, W + 1)
    flat = padded.reshape(N, C, (H + 2) * (W + 2))
    index = (gy * (W + 2) + gx).reshape(N, 1, H * W).expand(N, C, H * W)
    return torch.gather(flat, 2, index).reshape(N, C, H, W)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    N, C, H, W = x.shape
    ch, cw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    oy = torch.randint(0, H + (1 - ch % 2), (N, 1, 1), device=x.device)
    ox = torch.randint(0, W + (1 - cw % 2), (N, 1, 1), device=x.device)
    ys = torch.arange(H, device=x.device)[None, :, None]
    xs = torch.arange(W, device=x.device)[None, None, :]
    top, left = oy - ch // 2, ox - cw // 2  # the square may hang over the edge
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).to(x.dtype)[:, None]
