"""When to draw the output again: on a new frame, while something on screen moves, and otherwise
rarely (pure policy: tests feed it numbers).

Redrawing a picture that has not changed costs as much as drawing a new one. On a GPU that is
nothing, but on a software renderer (Mesa's llvmpipe on a laptop without drivers, a loaded
machine) every redraw takes the cores the sound analysis and the generator need: measured on 2
cores, 586 of 709 display ticks redrew an unchanged frame (docs/benchmarks.md). So the loop draws
when a new frame arrived, when an effect, a cross-fade or a blackout fade is moving (at
`animation_hz`), and else only `idle_hz` times a second, to keep the HUD's figures fresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "software rasterizer", "swiftshader", "gdi generic",
                      "microsoft basic render")
SOFTWARE_MAX_PIXELS = 640 * 360  # a software renderer draws the effects at no more than this many pixels
SOFTWARE_ANIMATION_HZ = 30.0


@dataclass(frozen=True)
class RedrawPolicy:
    animation_hz: float = 60.0  # redraws per second while the picture moves without new frames
    idle_hz: float = 2.0  # redraws per second of a still picture

    def due(self, *, new_frame: bool, animated: bool, since_last_s: float) -> bool:
        if new_frame:
            return True
        return since_last_s >= self.period(animated) - 1e-4

    def period(self, animated: bool) -> float:
        return 1.0 / (self.animation_hz if animated else self.idle_hz)

    def wait_s(self, *, animated: bool, since_last_s: float) -> float:
        """How long the loop may sleep (woken earlier by a new frame or a command) before a redraw is due."""
        return max(0.0, self.period(animated) - since_last_s)


def is_software_renderer(gl_renderer: str) -> bool:
    """GL_RENDERER of a CPU rasteriser (Mesa llvmpipe/softpipe, SwiftShader, Windows' fallback)."""
    name = gl_renderer.lower()
    return any(s in name for s in SOFTWARE_RENDERERS)


def internal_scale(size: tuple[int, int], software: bool, max_pixels: int = SOFTWARE_MAX_PIXELS) -> float:
    """The scale the effect chain is drawn at inside an output of `size`: 1 on a GPU; on a software
    renderer small enough that the chain touches at most `max_pixels` pixels."""
    w, h = size
    if not software or w * h <= max_pixels:
        return 1.0
    return math.sqrt(max_pixels / (w * h))


def policy_for(display_hz: float, software: bool) -> RedrawPolicy:
    return RedrawPolicy(animation_hz=min(display_hz, SOFTWARE_ANIMATION_HZ) if software else display_hz)
