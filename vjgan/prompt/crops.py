"""Augmented crops: one generated picture → several views at CLIP's input size.

A score taken on one fixed view can be raised by changing a few pixels that mean nothing to a
person (an adversarial picture). Averaged over crops of several sizes and positions, some
mirrored, the cheap way up disappears: only a change that reads as the text from every view
raises the mean. The search optimises over fresh random crops each step and reports its score on
one fixed set, so scores taken at different times compare.

Pure functions on tensors; the crops are drawn from a seeded `torch.Generator` on the CPU, so a
search repeats exactly for its seed on any device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Crops:
    """K views of a square picture, in the normalised coordinates of `F.affine_grid` (−1…1)."""

    scales: torch.Tensor  # [K] side of the view as a fraction of the picture's side
    offsets: torch.Tensor  # [K, 2] centre of the view (x, y)
    mirror: torch.Tensor  # [K] 1 or −1 (flipped left–right)

    def __len__(self) -> int:
        return int(self.scales.shape[0])


def random_crops(count: int, generator: torch.Generator, min_scale: float, whole_first: bool = False) -> Crops:
    """`count` views with sides uniform in [min_scale, 1], anywhere inside the picture, half mirrored.

    `whole_first`: the first view is the whole picture, unmirrored (a score set always sees it)."""
    if count < 1 or not 0 < min_scale <= 1:
        raise ValueError("need at least one crop and 0 < min_scale <= 1")
    scales = min_scale + (1.0 - min_scale) * torch.rand(count, generator=generator)
    room = (1.0 - scales).unsqueeze(1)  # the centre may move this far from the middle
    offsets = (torch.rand(count, 2, generator=generator) * 2.0 - 1.0) * room
    mirror = torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
    if whole_first:
        scales[0], offsets[0], mirror[0] = 1.0, 0.0, 1.0
    return Crops(scales, offsets, mirror)


def to_rgb(pictures: torch.Tensor) -> torch.Tensor:
    """Generator output with any channel count → 3 channels (grey repeated, extra channels dropped)."""
    channels = pictures.shape[1]
    if channels == 3:
        return pictures
    if channels == 1:
        return pictures.expand(-1, 3, -1, -1)
    if channels > 3:
        return pictures[:, :3]
    return torch.cat([pictures, pictures[:, -1:].expand(-1, 3 - channels, -1, -1)], dim=1)


def crop_views(pictures: torch.Tensor, crops: Crops, size: tuple[int, int]) -> torch.Tensor:
    """Pictures [N, C, H, W] in the generator's range (about −1…1) → views [N·K, 3, h, w] in 0…1.

    Views are ordered picture-major (all K views of picture 0 first). Differentiable. A picture
    much larger than the views is first shrunk with an anti-aliasing filter, so a 1024² picture
    seen at 224² is seen whole, not as a sparse sample of its pixels.
    """
    n, k = pictures.shape[0], len(crops)
    x = to_rgb(pictures.float())
    min_scale = float(crops.scales.min())
    needed = math.ceil(max(size) / min_scale)  # the smallest view still gets a pixel per output pixel
    if min(x.shape[-2:]) > needed:
        x = F.interpolate(x, size=(needed, needed), mode="bilinear", antialias=True, align_corners=False)
    device = x.device
    scales = crops.scales.to(device)
    theta = torch.zeros(k, 2, 3, device=device)
    theta[:, 0, 0] = scales * crops.mirror.to(device)
    theta[:, 1, 1] = scales
    theta[:, :, 2] = crops.offsets.to(device)
    theta = theta.repeat(n, 1, 1)
    grid = F.affine_grid(theta, [n * k, 3, size[0], size[1]], align_corners=False)
    views = F.grid_sample(x.repeat_interleave(k, dim=0), grid, mode="bilinear", padding_mode="reflection",
                          align_corners=False)
    return ((views + 1.0) * 0.5).clamp(0.0, 1.0)
