"""Preset changes on the beat: a finished scene waits for the next beat or bar before it commits.

The quantum is the show-wide setting from the `quantize` command (off, beat, bar) or, when that is
"preset" (the default), the incoming preset's own `quantize` option. The boundary comes from the
beat clock (which follows Ableton Link's session when Link drives it: a bar is then the session's
bar, beat_count % 4 == 0). Without a tempo there is nothing to wait for, and the change lands at
once; a change never waits longer than one bar.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional

from ..errors import UserError

BEATS_PER = {"beat": 1, "bar": 4}
EARLY_S = 0.005  # commit this much before the boundary: the loop's turn lands a little after


def next_boundary(now: float, beat_time: float, beat_period: float, beat_count: int, beats: int) -> Optional[float]:
    """Time of the next beat (beats=1) or bar start (beat index divisible by `beats`) after `now`;
    None without a tempo. `beat_time` is the time of beat number `beat_count`."""
    if beat_period <= 0.0 or not math.isfinite(beat_period):
        return None
    k = math.floor((now - beat_time) / beat_period) + 1
    t, count = beat_time + k * beat_period, beat_count + k
    while count % beats:
        t += beat_period
        count += 1
    return t


class Quantiser:
    def __init__(self, features: Callable[[], Any], clock: Callable[[], float] = time.perf_counter,
                 quantum: str = "preset") -> None:
        self._features = features
        self._clock = clock
        self.quantum = quantum  # "off", "beat", "bar", or "preset": each preset's own option
        self._targets: dict[int, Optional[float]] = {}

    def set_quantum(self, quantum: str) -> None:
        if quantum not in ("off", "beat", "bar", "preset"):
            raise UserError(f"quantize {quantum!r}: expected off, beat, bar or preset")
        self.quantum = quantum

    def quantum_for(self, preset: Any) -> str:
        return getattr(preset, "quantize", "off") if self.quantum == "preset" else self.quantum

    def gate(self, request: Any) -> bool:
        """May this finished build commit now? (SceneDirector.commit_gate, on the main loop.)"""
        beats = BEATS_PER.get(self.quantum_for(request.preset))
        if beats is None:
            return True
        now = self._clock()
        if request.number not in self._targets:
            f = self._features()
            self._targets = {request.number: next_boundary(now, f.beat_time, f.beat_period, f.beat_count, beats)}
        target = self._targets[request.number]
        return target is None or now >= target - EARLY_S
