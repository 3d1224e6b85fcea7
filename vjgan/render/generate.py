"""Frames in batches: w+ and noise gains for N frames → N uint8 RGBA pictures on the device.

The fast path's batched mode (`FastSynthesis.frames`) runs N frames through each layer at once,
which amortises the per-layer overhead that dominates a single eager frame; every frame keeps its
own noise gains (a noise route shimmering with the hats). A batch of one on CUDA uses the
captured graph of the live path, which is faster than an eager batch of one and gives the same
picture.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..gan.fast import FastSynthesis, choose_precision
from ..gan.networks import Generator


class FrameGenerator:
    """A generator prepared once for the device; `generate()` is called from one thread."""

    def __init__(self, G: Generator, device: torch.device, log: Callable[[str], None] = lambda s: None) -> None:
        self.device = device
        G = G.eval().to(device)
        if device.type == "cuda":
            # Same measured choice as the live show (fp16 where it stays within tolerance), so a
            # render looks like the show; graphs for the single-frame runs.
            self.fast, reports = choose_precision(G, device, use_graphs=True)
            for r in reports:
                log(f"precision {r.precision}: mean error {r.mean_abs:.4f}, p99.9 {r.p999_abs:.4f}"
                    f"{' (used)' if r.precision == self.fast.precision else ''}")
        else:
            self.fast = FastSynthesis(G, device, "fp32", use_graphs=False)
        # Constant noise: the texture holds still unless a route moves its strength, and the
        # picture depends on nothing but the latents (renders repeat exactly).
        self.fast.set_noise_mode("const")
        self.resolution = G.img_resolution
        self.num_layers = self.fast.num_layers
        self.batches = 0

    @torch.no_grad()
    def generate(self, ws: np.ndarray, noise_gains: np.ndarray) -> torch.Tensor:
        """ws [N, num_ws, w_dim], noise_gains [N, num_layers] → uint8 RGBA [N, R, R, 4] on the device."""
        if len(ws) != len(noise_gains):
            raise ValueError("one row of noise gains per frame")
        w_all = torch.from_numpy(np.ascontiguousarray(ws, dtype=np.float32)).to(self.device, non_blocking=True)
        out = torch.empty(len(ws), self.resolution, self.resolution, 4, dtype=torch.uint8, device=self.device)
        gains = torch.from_numpy(np.ascontiguousarray(noise_gains, dtype=np.float32))
        if len(ws) == 1 and self.fast.use_graphs:
            self.fast.set_noise_gains(gains[0])
            out[0].copy_(self.fast.frame(w_all))  # the graph's buffer is reused: copy now
        else:
            out[:] = self.fast.frames(w_all, noise_gains=gains)
        self.batches += 1
        return out
