"""RGB → Y′CbCr 4:2:0 (BT.709, limited range) on the device that made the picture.

Converting here rather than in the encoder's swscale keeps the CPU free for the encoder, makes
the colour maths explicit (the stream is tagged BT.709 / limited range, and the pixels agree),
and batches the work with the generation on the GPU.

Chroma is sited as H.264 assumes by default ("left": co-sited with the even columns, between
the two rows): a [1, 2, 1]/4 filter across, the mean of the two rows down.
"""

from __future__ import annotations

import torch

# BT.709 luma weights; Cb and Cr scale (B − Y) and (R − Y) into ±0.5.
KR, KB = 0.2126, 0.0722
KG = 1.0 - KR - KB
Y_SCALE, Y_OFFSET = 219.0 / 255.0, 16.0  # 8-bit limited ("TV") range: Y 16–235, C 16–240
C_SCALE, C_OFFSET = 224.0 / 255.0, 128.0


def rgb_to_yuv420p(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W, 3 or 4] (alpha ignored) → uint8 [N, H·3/2, W]: the Y plane, then U, then V.

    That is the memory layout of an FFmpeg yuv420p picture (PyAV's `VideoFrame.from_ndarray`
    format "yuv420p"). H and W must be even.
    """
    n, h, w = frames.shape[:3]
    if h % 2 or w % 2:
        raise ValueError(f"4:2:0 needs an even width and height, got {w}x{h}")
    rgb = frames[..., :3].permute(0, 3, 1, 2).float()  # [N, 3, H, W], 0–255
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = KR * r + KG * g + KB * b
    cb = (b - y) / (2.0 * (1.0 - KB))
    cr = (r - y) / (2.0 * (1.0 - KR))
    y_plane = y * Y_SCALE + Y_OFFSET
    chroma = torch.stack([cb, cr], dim=1)  # [N, 2, H, W]
    # Down: mean of each row pair. Across: [1, 2, 1]/4 centred on the even columns, edge repeated.
    chroma = 0.5 * (chroma[:, :, 0::2] + chroma[:, :, 1::2])
    padded = torch.cat([chroma[..., :1], chroma], dim=-1)  # column −1 = column 0
    chroma = 0.25 * padded[..., 0:-1:2] + 0.5 * padded[..., 1::2] + 0.25 * padded[..., 2::2]
    chroma = chroma * C_SCALE + C_OFFSET  # [N, 2, H/2, W/2]
    out = torch.empty(n, h * 3 // 2, w, dtype=torch.uint8, device=frames.device)
    out[:, :h] = y_plane.round_().clamp_(0, 255).to(torch.uint8)
    # U then V, each (H/2)·(W/2) bytes, packed into the remaining H/2 rows of width W.
    out[:, h:] = chroma.round_().clamp_(0, 255).to(torch.uint8).reshape(n, h // 2, w)
    return out


def yuv420p_to_rgb(yuv: torch.Tensor) -> torch.Tensor:
    """The inverse (nearest chroma), for tests and previews: uint8 [N, H·3/2, W] → uint8 [N, H, W, 3]."""
    n, rows, w = yuv.shape
    h = rows * 2 // 3
    y = (yuv[:, :h].float() - Y_OFFSET) / Y_SCALE
    c = ((yuv[:, h:].reshape(n, 2, h // 2, w // 2).float() - C_OFFSET) / C_SCALE)
    c = c.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    cb, cr = c[:, 0], c[:, 1]
    r = y + 2.0 * (1.0 - KR) * cr
    b = y + 2.0 * (1.0 - KB) * cb
    g = (y - KR * r - KB * b) / KG
    return torch.stack([r, g, b], dim=-1).round_().clamp_(0, 255).to(torch.uint8)
