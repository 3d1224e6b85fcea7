"""The presented picture, read back for the senders, on the GL thread, as cheaply as GL allows.

The main loop owns the GL context, so the read-back happens there, once per drawn picture and only
while some output wants pictures: `grab()` right after the picture is presented starts an
asynchronous copy of the presented texture into one of two pixel-buffer objects (on a GPU driver
this returns at once; the copy runs while the loop goes on), and `collect()` at the start of the
next turn maps it into a fresh array and hands it over. So a picture reaches the senders one turn
of the loop after it was shown, and the loop never waits for the GPU to finish the copy it has
just asked for. Outputs carry the presented picture's size: the output's resolution, except on
software OpenGL, where the chain is drawn smaller (640×360 at most) and scaling it up on the CPU
would cost the loop ~18 ms a picture at 720p. Measured costs: docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class Picture:
    """One presented picture: uint8 RGBA rows bottom first (GL's order), never written after hand-over."""

    pixels: np.ndarray  # [H, W, 4]
    t: float  # perf_counter when it was presented
    index: int  # counts read-backs: a sender can tell how many it missed

    @property
    def size(self) -> tuple[int, int]:
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    def rows_top_first(self) -> np.ndarray:
        """The picture as senders and encoders want it: top row first, contiguous (a copy)."""
        return np.ascontiguousarray(self.pixels[::-1])


class PictureGrabber:
    """Two pixel-buffer objects in turn; at most `max_fps` read-backs a second."""

    def __init__(self, ctx: Any, max_fps: float = 60.0) -> None:
        self.ctx = ctx
        self.min_interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self._pbos: list[Any] = []
        self._pbo_size: tuple[int, int] = (0, 0)
        self._turn = 0
        self._pending: Optional[tuple[int, float, tuple[int, int]]] = None  # (pbo, presented at, size)
        self._last = -1e9
        self.grabs = 0

    def grab(self, renderer: Any, presented_at: float) -> bool:
        """Start reading back the picture just presented (main thread, output context current)."""
        if presented_at - self._last < self.min_interval:
            return False
        self._pending = None  # never collected (no turn in between): the newer picture wins
        self._last = presented_at
        size = (int(renderer.internal_size[0]), int(renderer.internal_size[1]))
        texture = renderer.output_texture
        self._ensure_buffers(size)
        self._turn ^= 1
        texture.read_into(self._pbos[self._turn], alignment=1)
        self._pending = (self._turn, presented_at, size)
        return True

    def collect(self) -> Optional[Picture]:
        """The picture started by the last `grab`, if any (main thread)."""
        if self._pending is None:
            return None
        turn, presented_at, (w, h) = self._pending
        self._pending = None
        pixels = np.empty((h, w, 4), dtype=np.uint8)
        self._pbos[turn].read_into(pixels)
        self.grabs += 1
        return Picture(pixels, presented_at, self.grabs)

    def _ensure_buffers(self, size: tuple[int, int]) -> None:
        if size == self._pbo_size and self._pbos:
            return
        for b in self._pbos:
            b.release()
        nbytes = size[0] * size[1] * 4
        self._pbos = [self.ctx.buffer(reserve=nbytes, dynamic=True) for _ in range(2)]
        self._pbo_size = size

    def release(self) -> None:
        for b in self._pbos:
            b.release()
        self._pbos = []
