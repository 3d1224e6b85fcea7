"""What the post effects react to: a handful of numbers per displayed picture.

The display knows frames, not audio: the live loop fills a `DisplayInputs` from the newest
`Features` (or from anything else — a file clock offline, constants in a test) once per
displayed picture, and the renderer turns it into shader uniforms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the display package does not need the audio engine at run time
    from ..audio.features import Features

MAX_LEVELS = 16  # length of the u_levels[] uniform array every effect can read


@dataclass(frozen=True, slots=True)
class DisplayInputs:
    # The display clock: perf_counter time at which this picture is meant to be seen (offline: the
    # file's clock). The cross-fade, the flash limiter, the blackout fade and effect animation all
    # read it, so the renderer itself never looks at the wall clock and offline renders repeat.
    time: float
    levels: tuple[float, ...] = ()  # band envelopes 0..1 in the preset's band order (first MAX_LEVELS used)
    bass: float = 0.0  # envelope of the band the preset treats as bass, 0..1
    loudness: float = 0.0  # overall level 0..1
    beat_phase: float = 0.0  # 0..1 ramp, 0 on the beat
    # Time of the most recent onset (same clock), -inf if none. A time rather than a per-hop flag:
    # analysis runs at ~100 Hz and the display at 60 Hz, so a one-hop flag is often never seen;
    # the renderer turns the time into a decaying pulse itself.
    onset_time: float = -math.inf

    def __post_init__(self) -> None:
        if not math.isfinite(self.time):
            raise ValueError("DisplayInputs.time must be finite")

    @classmethod
    def from_features(cls, features: "Features | None", time: float, *, bass_band: str = "bass",
                      onset_time: float | None = None) -> "DisplayInputs":
        """Fill from the audio engine's newest snapshot, predicting the beat phase at `time`.

        `onset_time` should come from whoever sees every hop (the audio engine or the frame worker);
        without it, an onset is noticed only if this particular snapshot carries one.
        """
        if features is None:
            return cls(time=time)
        bands = tuple(float(b) for b in features.bands)
        try:
            bass = features.band(bass_band)
        except KeyError:
            bass = bands[0] if bands else 0.0
        if onset_time is None:
            onset_time = features.adc_time if any(features.onsets) else -math.inf
        return cls(time=time, levels=bands, bass=float(bass), loudness=float(features.loudness),
                   beat_phase=float(features.phase_at(time)), onset_time=float(onset_time))

    def onset_pulse(self, decay_s: float) -> float:
        """1.0 at an onset, decaying exponentially with time constant `decay_s`; 0 with no onset yet."""
        age = self.time - self.onset_time
        if not math.isfinite(age):
            return 0.0
        return math.exp(-max(age, 0.0) / max(decay_s, 1e-6))


class OnsetLatch:
    """Remembers the time of the newest onset across snapshots (for callers that see every hop)."""

    def __init__(self) -> None:
        self.time = -math.inf

    def update(self, features: "Features | None") -> float:
        if features is not None and any(features.onsets):
            self.time = max(self.time, features.adc_time)
        return self.time
