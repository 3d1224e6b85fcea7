"""Where the generated frame lands on the output: fit, fill or stretch.

One pure function decides the geometry; the GL present shader and the torch fallback
(`vjgan.display.fit`) both use its numbers, so a live show and an offline render frame the
picture identically. Coordinates are normalised to the output (0..1 across, 0..1 down) and
sampled at pixel centres, which is also the convention of GL textures and of
`torch.nn.functional.grid_sample(align_corners=False)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import UserError

FitMode = Literal["fit", "fill", "stretch"]
FIT_MODES: tuple[str, ...] = ("fit", "fill", "stretch")


def check_fit_mode(mode: str) -> FitMode:
    if mode not in FIT_MODES:
        raise UserError(f"fit mode {mode!r} is not one of {', '.join(FIT_MODES)}")
    return mode  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Placement:
    """The frame's size on the output as a fraction of the output's width and height.

    The frame is always centred. A fraction above 1 means that axis is cropped (fill); below 1,
    bars of background colour show on both sides (fit).
    """

    scale_x: float
    scale_y: float

    def source_uv(self, u: float, v: float) -> tuple[float, float]:
        """The frame coordinate (0..1) seen at output coordinate (u, v); outside 0..1 = background."""
        return (u - 0.5) / self.scale_x + 0.5, (v - 0.5) / self.scale_y + 0.5


def place(mode: str, src_w: int, src_h: int, dst_w: int, dst_h: int) -> Placement:
    """Placement of a src_w×src_h frame on a dst_w×dst_h output (sizes in pixels)."""
    check_fit_mode(mode)
    if min(src_w, src_h, dst_w, dst_h) <= 0:
        raise ValueError(f"sizes must be positive: frame {src_w}x{src_h}, output {dst_w}x{dst_h}")
    if mode == "stretch":
        return Placement(1.0, 1.0)
    sx, sy = dst_w / src_w, dst_h / src_h
    # fit: the whole frame shows (the smaller zoom); fill: the output is covered (the larger).
    s = min(sx, sy) if mode == "fit" else max(sx, sy)
    return Placement(src_w * s / dst_w, src_h * s / dst_h)
