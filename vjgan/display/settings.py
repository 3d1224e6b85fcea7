"""Settings of the output: what the operator changes during the show, and how the renderer runs.

`OutputSettings` is an immutable snapshot the live loop passes with every picture (a knob, a
key or a preset recall makes a new one); `RendererConfig` is fixed when the renderer starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..errors import UserError
from .effects import EffectConfig, validate_effect_chain
from .flash import FlashSafetyConfig
from .geometry import check_fit_mode

UPLOAD_PATHS = ("auto", "pbo", "cuda-gl-interop")


@dataclass(frozen=True)
class OutputSettings:
    fit: str = "fill"  # fit (letterbox), fill (crop) or stretch
    effects: tuple[EffectConfig, ...] = ()  # applied in order; validated when the renderer first sees them
    master: float = 1.0  # 0..1, scales the picture
    blackout: bool = False  # fades to black (RendererConfig.blackout_fade_s), through the flash limiter
    freeze: bool = False  # hold the current frames; effects keep moving
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)  # fit's bars, 0..1 sRGB

    def __post_init__(self) -> None:
        check_fit_mode(self.fit)
        if not (isinstance(self.master, (int, float)) and 0.0 <= self.master <= 1.0):
            raise UserError(f"master intensity {self.master!r} must be in 0..1")
        if len(self.background) != 3 or not all(0.0 <= c <= 1.0 for c in self.background):
            raise UserError(f"background {self.background!r} must be three values in 0..1")
        object.__setattr__(self, "effects", tuple(self.effects))

    @classmethod
    def from_preset(cls, display: Any) -> "OutputSettings":
        """From a preset's display table (vjgan.config.DisplayConfig, or a mapping with its keys)."""
        get = display.get if isinstance(display, Mapping) else (lambda k, d=None: getattr(display, k, d))
        effects: Iterable[Any] = get("effects", ()) or ()
        return cls(fit=get("fit", "fill"), effects=validate_effect_chain(effects), master=float(get("master", 1.0)))


@dataclass(frozen=True)
class RendererConfig:
    display_hz: float = 60.0  # refresh rate of the output (the window sets its monitor's)
    crossfade: bool = True  # fade between the two newest frames when generation falls behind
    max_crossfade_s: float = 0.5  # a fade never takes longer than this, even after a stall
    blackout_fade_s: float = 0.15  # 0 = cut
    onset_decay_s: float = 0.15  # time constant of the onset pulse effects see
    flash: FlashSafetyConfig = field(default_factory=FlashSafetyConfig)
    upload: str = "auto"  # "auto" (interop where it works, else PBO), "pbo" or "cuda-gl-interop" (required)
    measure_grid: int = 32  # the flash limiter's luminance grid (cells per side)
    max_internal_pixels: int | None = None  # draw the chain at most this big inside the output (software GL)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.display_hz) and 1.0 <= self.display_hz <= 1000.0):
            raise UserError(f"display rate {self.display_hz!r} Hz must be in 1..1000")
        if self.upload not in UPLOAD_PATHS:
            raise UserError(f"upload path {self.upload!r} is not one of {', '.join(UPLOAD_PATHS)}")
        if not 0.0 <= self.blackout_fade_s <= 10.0 or not 0.0 < self.max_crossfade_s <= 5.0:
            raise UserError("blackout_fade_s must be in 0..10 s and max_crossfade_s in (0, 5] s")
        if not 4 <= self.measure_grid <= 256:
            raise UserError("measure_grid must be in 4..256")
        if self.max_internal_pixels is not None and self.max_internal_pixels < 32 * 32:
            raise UserError("max_internal_pixels must be at least 32x32")
