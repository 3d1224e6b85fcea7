"""The picture the frame worker hands to the display: one immutable value per generated frame.

The worker publishes a `Frame` into a `vjgan.handover.LatestSlot`; the display takes the newest
one when it draws and drops any it never got to (latest wins, nothing queues). The pixel buffer
is shared, not copied, so the producer must not write into it while it may still be read: a
CUDA-graph output buffer that the next replay overwrites has to be copied, or rotated through a
ring. The renderer reads a frame's pixels once, when it uploads them at its next draw, and keeps
textures (not pixels) for its cross-fade; until then the slot and the renderer can each hold one
frame while the producer writes a third, so a ring needs at least three buffers and the frame
worker's has four (vjgan.engine.synth.HOST_RING).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    pixels: Any  # numpy uint8 [H, W, 4] RGBA, top row first; or a torch uint8 tensor of that shape (CPU or CUDA)
    index: int  # frames generated since the show started (grows by one per generated frame)
    t_audio: float  # perf_counter time of the newest audio sample this frame reflects (ADC time)
    t_ready: float  # perf_counter time generation finished (the CUDA stream synchronised)
    resolution: int  # the generator's resolution for this frame (smaller when the budget stepped down)
    budget_step: int = 0  # 0 = full resolution; n = n blocks earlier (the frame budget's early exit)

    def __post_init__(self) -> None:
        shape = tuple(self.pixels.shape)
        if len(shape) != 3 or shape[2] != 4 or shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"frame pixels must be [H, W, 4] RGBA, got shape {shape}")
        if not _is_uint8(self.pixels):
            raise ValueError(f"frame pixels must be uint8, got {self.pixels.dtype}")
        if isinstance(self.pixels, np.ndarray) and not self.pixels.flags.c_contiguous:
            # The upload copies the buffer as it lies in memory; a strided view would tear.
            raise ValueError("frame pixels must be C-contiguous (use np.ascontiguousarray)")
        if not (math.isfinite(self.t_audio) and math.isfinite(self.t_ready)):
            raise ValueError("frame timestamps must be finite")

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), the order GL uses."""
        return self.width, self.height

    @property
    def on_cuda(self) -> bool:
        device = getattr(self.pixels, "device", None)
        return device is not None and getattr(device, "type", "") == "cuda"

    def host_pixels(self) -> np.ndarray:
        """The pixels as a numpy array in host memory (copies from the GPU if needed; slow path)."""
        if isinstance(self.pixels, np.ndarray):
            return self.pixels
        return self.pixels.detach().contiguous().cpu().numpy()


def _is_uint8(pixels: Any) -> bool:
    if isinstance(pixels, np.ndarray):
        return pixels.dtype == np.uint8
    # A torch tensor, checked by name so the display never imports torch just to validate.
    return str(getattr(pixels, "dtype", "")) == "torch.uint8"
