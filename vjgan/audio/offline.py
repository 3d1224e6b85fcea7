"""Run the live analyzer over a whole signal as fast as the CPU allows (`vjgan analyze FILE`).

The same `Analyzer` as the live path, fed hop by hop from an array, so what a VJ sees in the JSON
or the plot is what the show will do with that track; only the clock differs (file time instead
of ADC time). Nothing looks ahead: results are causal, as they will be live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from vjgan.audio.analysis import Analyzer
from vjgan.audio.config import AnalysisConfig


@dataclass
class AnalysisResult:
    rate: int
    hop_s: float
    band_names: tuple[str, ...]
    band_edges: tuple[tuple[float, float], ...]
    times: np.ndarray  # time of the newest sample of each hop (s)
    bands: np.ndarray  # hops x bands envelopes
    levels_db: np.ndarray  # hops x bands
    loudness: np.ndarray
    bpm: np.ndarray  # tempo so far, per hop (0 before the first estimate)
    confidence: np.ndarray
    beat_phase: np.ndarray
    beats: list[float] = field(default_factory=list)  # predicted beat times (s)
    onsets: dict[str, list[float]] = field(default_factory=dict)  # per band, detection times (s)

    @property
    def final_bpm(self) -> float:
        return float(self.bpm[-1]) if len(self.bpm) else 0.0

    def to_json(self) -> dict[str, Any]:
        """The `vjgan analyze --json` document (see docs/audio.md)."""
        r3 = lambda v: round(float(v), 4)  # noqa: E731 - keeps the JSON small and diffable
        frames = [
            {
                "time": r3(t),
                "bands": [r3(v) for v in row],
                "loudness": r3(loud),
                "bpm": round(float(b), 2),
            }
            for t, row, loud, b in zip(self.times, self.bands, self.loudness, self.bpm)
        ]
        return {
            "bpm": round(self.final_bpm, 2),
            "beats": [r3(t) for t in self.beats],
            "onsets": {name: [r3(t) for t in ts] for name, ts in self.onsets.items()},
            "bands": [{"name": n, "low_hz": lo, "high_hz": hi} for n, (lo, hi) in zip(self.band_names, self.band_edges)],
            "rate": self.rate,
            "hop_s": self.hop_s,
            "frames": frames,
        }


def analyze_array(samples: np.ndarray, rate: int, config: Optional[AnalysisConfig] = None) -> AnalysisResult:
    """Analyse a mono signal hop by hop (a trailing partial hop is dropped)."""
    an = Analyzer(rate, config)
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError("analyze_array takes a mono signal")
    n_hops = len(x) // an.hop
    nb = len(an.band_names)
    times = np.empty(n_hops)
    bands = np.empty((n_hops, nb))
    levels = np.empty((n_hops, nb))
    loud = np.empty(n_hops)
    bpm = np.empty(n_hops)
    conf = np.empty(n_hops)
    phase = np.empty(n_hops)
    beats: list[float] = []
    onsets: dict[str, list[float]] = {name: [] for name in an.band_names}
    h = an.hop
    for i in range(n_hops):
        f = an.process(x[i * h : (i + 1) * h], adc_time=(i + 1) * h / rate)
        times[i] = f.adc_time
        bands[i] = f.bands
        levels[i] = f.levels_db
        loud[i] = f.loudness
        bpm[i] = f.bpm
        conf[i] = f.tempo_confidence
        phase[i] = f.beat_phase
        if f.beat:
            beats.append(f.beat_time)
        for name, hit in zip(an.band_names, f.onsets):
            if hit:
                onsets[name].append(f.adc_time)
    cfg = an.config
    return AnalysisResult(
        rate=rate,
        hop_s=an.dt,
        band_names=an.band_names,
        band_edges=tuple((b.low_hz, b.high_hz) for b in cfg.bands),
        times=times,
        bands=bands,
        levels_db=levels,
        loudness=loud,
        bpm=bpm,
        confidence=conf,
        beat_phase=phase,
        beats=beats,
        onsets=onsets,
    )
