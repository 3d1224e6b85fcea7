"""Run the live analyzer over a whole signal as fast as the CPU allows (`vjgan analyze FILE`).

The same `Analyzer` as the live path, fed hop by hop from a stream of samples, so what a VJ sees
in the JSON or the plot is what the show will do with that track; only the clock differs (file
time instead of ADC time). Nothing looks ahead: results are causal, as they will be live.

Memory stays bounded by the length of the result, not of the audio: samples are read a chunk at
a time, and the per-hop values are kept as compact arrays (about 25 MB per hour at the default
10 ms hop) and written to JSON a slice at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Optional, Protocol

import numpy as np

from vjgan.audio.analysis import Analyzer
from vjgan.audio.config import AnalysisConfig
from vjgan.audio.samples import silence_invalid

CHUNK_HOPS = 1024  # hops read and stored per step


class SampleStream(Protocol):
    """Mono samples in order: `read(n)` gives the next n (fewer only at the end)."""

    rate: int
    bad_samples: int

    def read(self, n: int) -> np.ndarray: ...


class ArrayStream:
    """An array as a `SampleStream`; invalid samples are silenced and counted as read."""

    def __init__(self, samples: np.ndarray, rate: int):
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError("a mono signal is needed")
        self._x = x
        self.rate = int(rate)
        self.bad_samples = 0
        self._pos = 0

    def read(self, n: int) -> np.ndarray:
        out = self._x[self._pos : self._pos + n].copy()
        self._pos += len(out)
        self.bad_samples += silence_invalid(out)
        return out


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
    bad_samples: int = 0  # invalid samples (NaN, inf) that were analysed as silence

    @property
    def final_bpm(self) -> float:
        return float(self.bpm[-1]) if len(self.bpm) else 0.0

    def write_json(self, out: BinaryIO, slice_hops: int = 4096) -> None:
        """The `vjgan analyze --json` document (see docs/audio.md), written a slice of frames at a
        time. Strict JSON: a value that is not finite raises instead of writing `NaN`."""
        dump = lambda v: json.dumps(v, separators=(",", ":"), allow_nan=False)  # noqa: E731
        r4 = lambda a: np.round(np.asarray(a, dtype=np.float64), 4).tolist()  # noqa: E731 - small, diffable JSON
        head = {
            "bpm": round(self.final_bpm, 2),
            "beats": r4(self.beats),
            "onsets": {name: r4(ts) for name, ts in self.onsets.items()},
            "bands": [{"name": n, "low_hz": lo, "high_hz": hi} for n, (lo, hi) in zip(self.band_names, self.band_edges)],
            "rate": self.rate,
            "hop_s": self.hop_s,
            "bad_samples": self.bad_samples,
        }
        out.write(dump(head)[:-1].encode() + b',"frames":[')
        for start in range(0, len(self.times), slice_hops):
            end = start + slice_hops
            frames = [
                {"time": t, "bands": row, "loudness": loud, "bpm": b}
                for t, row, loud, b in zip(r4(self.times[start:end]), r4(self.bands[start:end]),
                                           r4(self.loudness[start:end]),
                                           np.round(self.bpm[start:end].astype(np.float64), 2).tolist())
            ]
            text = dump(frames)[1:-1]
            out.write(((b"," if start else b"") + text.encode()))
        out.write(b"]}")


class _Columns:
    """Per-hop values gathered a chunk at a time (float32: ample for envelopes and dB)."""

    def __init__(self, n_bands: int):
        self.n_bands = n_bands
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in ("times", "bands", "levels", "loud", "bpm", "conf", "phase")}

    def add(self, **chunk: np.ndarray) -> None:
        for k, v in chunk.items():
            self.parts[k].append(v)

    def get(self, key: str, dtype: Any) -> np.ndarray:
        parts = self.parts[key]
        if parts:
            return np.concatenate(parts).astype(dtype, copy=False)
        return np.zeros((0, self.n_bands) if key in ("bands", "levels") else 0, dtype=dtype)


def analyze_stream(stream: SampleStream, config: Optional[AnalysisConfig] = None,
                   progress: Optional[Callable[[float], None]] = None) -> AnalysisResult:
    """Analyse a mono stream hop by hop (a trailing partial hop is dropped).

    `progress`, if given, is called after each chunk with the seconds of audio analysed so far.
    """
    rate = stream.rate
    an = Analyzer(rate, config)
    h = an.hop
    nb = len(an.band_names)
    cols = _Columns(nb)
    beats: list[float] = []
    onsets: dict[str, list[float]] = {name: [] for name in an.band_names}
    done = 0
    while True:
        x = stream.read(CHUNK_HOPS * h)
        n = len(x) // h
        if n == 0:
            break
        times = np.empty(n)
        bands = np.empty((n, nb), dtype=np.float32)
        levels = np.empty((n, nb), dtype=np.float32)
        loud, bpm, conf, phase = (np.empty(n, dtype=np.float32) for _ in range(4))
        for i in range(n):
            f = an.process(x[i * h : (i + 1) * h], adc_time=(done + i + 1) * h / rate, bad_samples=stream.bad_samples)
            times[i] = f.adc_time
            bands[i] = f.bands
            levels[i] = f.levels_db
            loud[i] = f.loudness
            bpm[i] = f.bpm
            conf[i] = f.tempo_confidence
            phase[i] = f.beat_phase
            if f.beat:
                beats.append(f.beat_time)
            if any(f.onsets):
                for name, hit in zip(an.band_names, f.onsets):
                    if hit:
                        onsets[name].append(f.adc_time)
        cols.add(times=times, bands=bands, levels=levels, loud=loud, bpm=bpm, conf=conf, phase=phase)
        done += n
        if progress is not None:
            progress(done * h / rate)
        if n < CHUNK_HOPS:
            break
    cfg = an.config
    return AnalysisResult(
        rate=rate,
        hop_s=an.dt,
        band_names=an.band_names,
        band_edges=tuple((b.low_hz, b.high_hz) for b in cfg.bands),
        times=cols.get("times", np.float64),
        bands=cols.get("bands", np.float32),
        levels_db=cols.get("levels", np.float32),
        loudness=cols.get("loud", np.float32),
        bpm=cols.get("bpm", np.float32),
        confidence=cols.get("conf", np.float32),
        beat_phase=cols.get("phase", np.float32),
        beats=beats,
        onsets=onsets,
        bad_samples=stream.bad_samples,
    )


def analyze_array(samples: np.ndarray, rate: int, config: Optional[AnalysisConfig] = None) -> AnalysisResult:
    """Analyse a mono signal held in memory (tests, short signals)."""
    return analyze_stream(ArrayStream(samples, rate), config)
