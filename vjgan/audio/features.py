"""The immutable snapshot the capture thread hands to everyone else.

The capture thread builds one `Features` per hop and publishes it with a single reference swap;
readers (the frame worker, the HUD, the CLI meters) take whatever is newest and never wait. A
frozen dataclass of tuples and floats cannot be changed after the swap, so no lock is needed to
read it. All times are on the `time.perf_counter()` clock ("ADC time": when the sound reached the
converter), so every stage after capture can measure its own delay against `adc_time`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Features:
    adc_time: float  # ADC time of the newest sample analysed (perf_counter clock, seconds)
    published_at: float  # perf_counter when this snapshot was built (adc_time → published_at = capture + analysis delay)
    hop_index: int  # hops analysed since the source started
    band_names: tuple[str, ...]
    bands: tuple[float, ...]  # per-band envelopes, 0..1 after automatic gain, noise gate and attack/release
    levels_db: tuple[float, ...]  # per-band level in dBFS before automatic gain (for meters)
    onsets: tuple[bool, ...]  # an onset was detected in this hop, per band
    onset_strength: tuple[float, ...]  # positive spectral flux per band (dB), what the onset detector saw
    loudness: float  # overall level 0..1 after automatic gain and the gate, smoothed
    loudness_db: float  # RMS of the last ~21 ms in dBFS, after the manual input gain
    gated: bool  # the whole input is below the gate (silence, hiss between songs)
    bpm: float  # current tempo (0.0 until there is one)
    tempo_confidence: float  # 0..1: how sure the tracker is (1 for tap, manual and external clock)
    tempo_source: str  # "none", "audio", "tap", "manual", "external" (MIDI clock) or "link" (Ableton Link)
    beat: bool  # a beat fell inside this hop
    beat_phase: float  # 0..1 ramp, 0 on the beat, at adc_time
    beat_count: int  # beats since start (or since the last resync)
    beat_time: float  # ADC time of the most recent beat (perf_counter clock)
    beat_period: float  # seconds per beat (0.0 until there is a tempo)
    connected: bool = True  # False while the input device is gone or the file has ended: values decay to rest
    bad_samples: int = 0  # invalid input samples (NaN, inf, absurd values) the source played as silence so far

    def band(self, name: str) -> float:
        """Envelope of the band called `name` (KeyError if the preset has no such band)."""
        try:
            return self.bands[self.band_names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def onset(self, name: str) -> bool:
        try:
            return self.onsets[self.band_names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def phase_at(self, t: float) -> float:
        """Beat phase predicted at time `t` (same clock as adc_time), e.g. the display time of a frame.

        The ramp is extrapolated from the last beat at the current period, so a consumer running at
        60 fps gets a smooth phase between 100 Hz snapshots and can compensate its own latency.
        """
        if self.beat_period <= 0.0:
            return 0.0
        return ((t - self.beat_time) / self.beat_period) % 1.0

    @property
    def age_published(self) -> float:
        """Seconds from the newest sample's ADC time to publication (capture + analysis delay)."""
        return self.published_at - self.adc_time


def rest_features(band_names: tuple[str, ...], adc_time: float = 0.0, connected: bool = True) -> Features:
    """The snapshot readers see before the first hop: everything at rest."""
    n = len(band_names)
    return Features(
        adc_time=adc_time,
        published_at=adc_time,
        hop_index=0,
        band_names=band_names,
        bands=(0.0,) * n,
        levels_db=(-120.0,) * n,
        onsets=(False,) * n,
        onset_strength=(0.0,) * n,
        loudness=0.0,
        loudness_db=-120.0,
        gated=True,
        bpm=0.0,
        tempo_confidence=0.0,
        tempo_source="none",
        beat=False,
        beat_phase=0.0,
        beat_count=0,
        beat_time=adc_time,
        beat_period=0.0,
        connected=connected,
    )
