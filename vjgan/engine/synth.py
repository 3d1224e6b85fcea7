"""The generator wrapper live and render share: w+ and noise gains in, uint8 RGBA pictures out.

`frame()` makes one picture in host memory at a chosen exit point (the live show's frame budget
steps down to an earlier block's image); `frames()` makes a batch on the device (render). On CUDA
the precision is chosen by measurement (fp16 where it stays within tolerance) and the live exit
points are captured as CUDA graphs up front, so stepping down never hitches. Noise is the stored
constant noise: the texture holds still unless a route moves its strength, and a render repeats
exactly.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..gan.fast import AccuracyReport, FastSynthesis, choose_precision
from ..gan.networks import Generator

MIN_LIVE_EXIT = 32  # exit points below this are not worth showing on a projector
# Host buffers per exit point that live frames rotate through. A published frame's buffer must
# not be written again while anyone may still read it: the hand-over slot holds the newest, the
# display holds one more it has pulled but not yet uploaded (it uploads when it draws, and keeps
# only textures after that), and the worker writes a third; the fourth is slack for a display
# that pulled a frame and has not drawn it when two newer ones are made.
HOST_RING = 4


class Synthesizer:
    def __init__(self, G: Generator, device: torch.device, *, live: bool = True,
                 cancelled: Callable[[], bool] = lambda: False, log: Callable[[str], None] = lambda s: None) -> None:
        self.device = device
        G = G.eval().to(device)
        self.accuracy: list[AccuracyReport] = []
        if device.type == "cuda":
            self.fast, self.accuracy = choose_precision(G, device)
            for r in self.accuracy:
                log(f"precision {r.precision}: mean error {r.mean_abs:.4f}, p99.9 {r.p999_abs:.4f}"
                    f"{' (used)' if r.precision == self.fast.precision else ''}")
            if live:
                for r in self.fast.exit_resolutions():
                    if cancelled():
                        return  # the scene builder notices and drops this scene
                    if r >= MIN_LIVE_EXIT:
                        self.fast.capture(r)
        else:
            self.fast = FastSynthesis(G, device, "fp32")
        self.fast.set_noise_mode("const")
        self.resolution = G.img_resolution
        # Exit points, full resolution first. StyleGAN3 has only its full image: the frame budget
        # never steps down there, and the display cross-fades instead (docs/stylegan3.md).
        self.levels = [r for r in reversed(self.fast.exit_resolutions())]
        self.num_layers = self.fast.num_layers
        self.has_transform = self.fast.has_transform  # StyleGAN3: the input's rotation and translation
        self._host: dict[int, list[torch.Tensor]] = {}  # per exit point, HOST_RING buffers (pinned on CUDA)
        self._host_next: dict[int, int] = {}

    @property
    def precision(self) -> str:
        return self.fast.precision

    @torch.no_grad()
    def frame(self, ws: np.ndarray, noise_gains: np.ndarray, exit_resolution: int,
              transform: np.ndarray | None = None) -> np.ndarray:
        """One picture: ws [num_ws, w_dim] (and a StyleGAN3 input transform, 3×3) → uint8 RGBA
        [R, R, 4] in host memory.

        Off the CPU the picture lies in one of HOST_RING buffers (pinned on CUDA, so the copy is
        one DMA and nothing else), reused HOST_RING frames later at the same exit point: the
        caller may publish it and forget it, but must not keep it longer than that."""
        self.fast.set_noise_gains(torch.from_numpy(np.ascontiguousarray(noise_gains, dtype=np.float32)))
        w = torch.from_numpy(np.ascontiguousarray(ws, dtype=np.float32))[None].to(self.device, non_blocking=True)
        m = torch.from_numpy(np.ascontiguousarray(transform, dtype=np.float32)) if transform is not None else None
        pixels = self.fast.frame(w, exit_resolution=exit_resolution, transform=m)
        if self.device.type == "cpu":
            return pixels.numpy()
        ring = self._host.get(exit_resolution)
        if ring is None:
            ring = [torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=self.device.type == "cuda")
                    for _ in range(HOST_RING)]
            self._host[exit_resolution] = ring
        i = self._host_next.get(exit_resolution, 0)
        self._host_next[exit_resolution] = (i + 1) % HOST_RING
        host = ring[i]
        host.copy_(pixels)  # synchronous: the graph's output is reused by the next frame
        return host.numpy()

    @torch.no_grad()
    def frames(self, ws: np.ndarray, noise_gains: np.ndarray) -> torch.Tensor:
        """A batch: ws [N, num_ws, w_dim], noise_gains [N, num_layers] → uint8 RGBA [N, R, R, 4] on the device.

        A batch of one on CUDA replays the full frame's graph where it was captured (live), which is
        faster than an eager batch of one and gives the same picture; larger batches run each layer
        once for all N frames. A render never captures here: it generates on its own thread while
        another uses the GPU, and a capture must have the device to itself."""
        if len(ws) != len(noise_gains):
            raise ValueError("one row of noise gains per frame")
        w_all = torch.from_numpy(np.ascontiguousarray(ws, dtype=np.float32)).to(self.device, non_blocking=True)
        gains = torch.from_numpy(np.ascontiguousarray(noise_gains, dtype=np.float32))
        if len(ws) == 1 and self.fast.captured():
            self.fast.set_noise_gains(gains[0])
            return self.fast.frame(w_all).clone()[None]  # the graph's buffer is reused: copy now
        return self.fast.frames(w_all, noise_gains=gains)

    def describe(self) -> str:
        if self.device.type == "cuda":
            return f"{torch.cuda.get_device_name(self.device)} ({self.precision})"
        return f"{self.device.type} ({torch.get_num_threads()} threads, {self.precision})"
