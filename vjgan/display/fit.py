"""Fit / fill / stretch on tensors: the offline renderer's fallback where no GL context exists.

Same geometry as the GL present shader (both take their numbers from `geometry.place`), same
sampling (bilinear at pixel centres, edges clamped), so a video rendered without OpenGL frames
the picture exactly as the live show does. Post effects need the GL path.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .geometry import place


def fit_frames(frames: torch.Tensor, out_w: int, out_h: int, mode: str = "fill",
               background: float | Sequence[float] = 0.0, layout: str = "auto") -> torch.Tensor:
    """Place a batch of frames on an out_w×out_h canvas; returns the same layout and dtype.

    frames: [N, H, W, 4] (or [N, H, W, 3]) channels-last, or [N, 3, H, W] channels-first, uint8
    or floating point. `background` is the colour of fit's bars in the tensor's own value range
    (a scalar or one value per colour channel); an alpha channel in the bars is opaque.
    """
    if frames.dim() != 4:
        raise ValueError(f"expected a 4-D batch of frames, got shape {tuple(frames.shape)}")
    if layout == "auto":
        # [N, H, W, 4] RGBA is the frame worker's format, so a last axis of 4 wins when ambiguous.
        if frames.shape[-1] == 4 or (frames.shape[-1] == 3 and frames.shape[1] not in (3, 4)):
            layout = "nhwc"
        elif frames.shape[1] in (3, 4):
            layout = "nchw"
    if layout not in ("nhwc", "nchw"):
        raise ValueError(f"cannot tell the channel axis of shape {tuple(frames.shape)}; pass layout='nhwc' or 'nchw'")
    x = frames.permute(0, 3, 1, 2) if layout == "nhwc" else frames
    n, c, src_h, src_w = x.shape
    p = place(mode, src_w, src_h, out_w, out_h)

    # Output pixel centres in normalised output coordinates, then the frame coordinate they see.
    dev = frames.device
    u = (torch.arange(out_w, device=dev, dtype=torch.float32) + 0.5) / out_w
    v = (torch.arange(out_h, device=dev, dtype=torch.float32) + 0.5) / out_h
    su = (u - 0.5) / p.scale_x + 0.5
    sv = (v - 0.5) / p.scale_y + 0.5
    grid = torch.stack(torch.broadcast_tensors(su[None, :] * 2 - 1, sv[:, None] * 2 - 1), dim=-1)
    xf = x.float()
    out = F.grid_sample(xf, grid[None].expand(n, -1, -1, -1), mode="bilinear", padding_mode="border",
                        align_corners=False)
    if mode == "fit":
        inside = ((su >= 0) & (su <= 1))[None, :] & ((sv >= 0) & (sv <= 1))[:, None]
        out = torch.where(inside[None, None], out, _background(background, c, frames.dtype, dev)[None, :, None, None])
    if frames.dtype == torch.uint8:
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    else:
        out = out.to(frames.dtype)
    if layout == "nhwc":
        out = out.permute(0, 2, 3, 1)
    return out.contiguous()


def _background(value: float | Sequence[float], channels: int, dtype: torch.dtype,
                device: torch.device) -> torch.Tensor:
    values = [float(value)] * 3 if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) not in (1, 3):
        raise ValueError(f"background must be one value or three (R, G, B), got {len(values)}")
    if len(values) == 1:
        values = values * 3
    opaque = 255.0 if dtype == torch.uint8 else 1.0
    colour = (values + [opaque])[:channels] if channels >= 3 else values[:channels]
    return torch.tensor(colour, dtype=torch.float32, device=device)
