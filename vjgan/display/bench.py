"""Time the display path offscreen: frame upload and the shader chain, per picture.

For `vjgan bench` and docs/benchmarks.md; nothing here asserts a timing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .effects import EffectConfig
from .frame import Frame
from .inputs import DisplayInputs
from .renderer import Renderer
from .settings import OutputSettings, RendererConfig


@dataclass(frozen=True)
class DisplayBench:
    output_size: tuple[int, int]
    frame_resolution: int
    effects: tuple[str, ...]
    upload_path: str
    renderer: str  # the GL renderer string (e.g. "llvmpipe ..." or the GPU's name)
    upload_ms_p50: float  # CPU time handing a new frame to GL
    picture_ms_p50: float  # one whole picture: upload + chain + luminance read + output, GPU finished
    picture_ms_p95: float

    def describe(self) -> str:
        chain = ", ".join(self.effects) or "no effects"
        w, h = self.output_size
        return (f"{self.frame_resolution}² → {w}x{h} ({chain}; {self.upload_path}; {self.renderer}): "
                f"upload {self.upload_ms_p50:.2f} ms, picture {self.picture_ms_p50:.2f} ms p50 / "
                f"{self.picture_ms_p95:.2f} ms p95")


def bench_display(output_size: tuple[int, int] = (1920, 1080), frame_resolution: int = 1024,
                  effects: tuple[str, ...] = ("trails", "beat_zoom", "rgb_shift"), pictures: int = 60,
                  warmup: int = 5) -> DisplayBench:
    """Render `pictures` pictures offscreen, each with a new frame, and report the timings."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (frame_resolution, frame_resolution, 4), dtype=np.uint8) for _ in range(4)]
    settings = OutputSettings(fit="fill", effects=tuple(EffectConfig(n) for n in effects))
    uploads, totals = [], []
    with Renderer.offscreen(output_size, RendererConfig()) as renderer:
        for i in range(warmup + pictures):
            t = i / 60.0
            renderer.submit(Frame(frames[i % len(frames)], i + 1, t, t, frame_resolution))
            t0 = time.perf_counter()
            stats = renderer.render(DisplayInputs(time=t, bass=0.5, loudness=0.5, beat_phase=(t * 2) % 1.0), settings)
            renderer.ctx.finish()
            if i >= warmup:
                totals.append((time.perf_counter() - t0) * 1000.0)
                uploads.append(stats.upload_ms)
        name = str(renderer.ctx.info.get("GL_RENDERER", "?"))
        path = renderer.upload_path
    return DisplayBench(output_size, frame_resolution, tuple(effects), path, name,
                        float(np.percentile(uploads, 50)), float(np.percentile(totals, 50)),
                        float(np.percentile(totals, 95)))
