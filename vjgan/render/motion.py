"""The live show's latent engine stepped on the file's clock: features in, w+ and noise gains out.

It does per frame what the live frame worker does (parameter glide, then `LatentEngine.step`),
with the frame times of the video instead of the wall clock; nothing here is random except the
engine's own seeded generator, so a render repeats exactly for a given seed.
"""

from __future__ import annotations

from typing import Mapping

from ..motion.latents import LatentEngine, MotionFrame
from ..motion.params import ParamSmoother, ParamStore


class MotionDriver:
    def __init__(self, engine: LatentEngine, overrides: Mapping[str, float] | None = None) -> None:
        self.engine = engine
        self.params = ParamStore(engine.param_specs())
        known = set(self.params.names())
        # A preset's [params] may also hold values for other parts of the show (display, MIDI):
        # those are not the engine's business; values for the engine's own knobs are applied.
        values = {k: v for k, v in (overrides or {}).items() if k in known}
        self.unused = sorted(k for k in (overrides or {}) if k not in known)
        if values:
            self.params.set_many(values)
        self._smoother = ParamSmoother()
        self._last_t: float | None = None

    def step(self, t: float, features, onset_times: Mapping[str, float] | None = None) -> MotionFrame:
        """The motion for the frame shown at file time `t` (frames in order, none skipped).

        `onset_times`: band → file time of its newest onset, updated by every hop (as live)."""
        dt = 0.0 if self._last_t is None else t - self._last_t
        self._last_t = t
        values = self._smoother.step(self.params.snapshot(), self.params.spec_map(), dt)
        return self.engine.step(t, dt, features, values, onset_times)
