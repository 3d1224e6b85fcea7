"""The song's beat grid: one tempo and phase for the whole file, so scene changes land on bar lines.

The live analyzer is causal: its beat clock locks on after a few seconds and then predicts each
beat. A film is planned before it is rendered, so here it may look at the whole song: the beats
the live clock predicted over the file are fitted with one straight line (beat time = first
beat + k × period, least squares over the beat numbers), which extends the grid back to the top
of the file and evens out the clock's small corrections. Bars are `beats_per_bar` beats from the
first beat; which beat of a bar the song counts as "one" is not detected, so the first beat is.

A song without a steady beat gets a nominal grid (120 BPM from the top) and says so: scenes
given in seconds then keep their lengths to within half a bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..audio.config import AnalysisConfig
from ..audio.offline import analyze_array

NOMINAL_BPM = 120.0
MIN_BEATS = 8  # fewer predicted beats than this is no steady tempo


@dataclass(frozen=True)
class BeatGrid:
    period: float  # seconds per beat
    first_beat: float  # the first beat at or after 0 (s)
    beats_per_bar: int = 4
    measured: bool = True  # False: the nominal grid of a song without a steady beat

    @property
    def bpm(self) -> float:
        return 60.0 / self.period

    @property
    def bar(self) -> float:
        return self.period * self.beats_per_bar

    def bar_line(self, n: int) -> float:
        """Time of bar line n (bar line 0 is the first beat)."""
        return self.first_beat + n * self.bar


def fit_grid(beats: Sequence[float], beats_per_bar: int = 4) -> BeatGrid | None:
    """One tempo and phase through predicted beat times (seconds), or None if there are too few."""
    b = np.asarray(sorted(beats), dtype=np.float64)
    if len(b) < MIN_BEATS:
        return None
    gaps = np.diff(b)
    rough = float(np.median(gaps))
    if not rough > 0:
        return None
    # Number the beats (a missed or doubled prediction shifts the count, not the fit), then fit
    # time = t0 + k·period by least squares.
    k = np.round((b - b[0]) / rough)
    period, t0 = np.polyfit(k, b, 1)
    if not period > 0:
        return None
    first = t0 - math.floor(t0 / period) * period  # back to the first beat at or after 0
    return BeatGrid(float(period), float(first), beats_per_bar)


def song_grid(mono: np.ndarray, rate: int, config: AnalysisConfig | None = None,
              beats_per_bar: int = 4) -> BeatGrid:
    """The whole song's grid from the live analyzer's beats; the nominal grid if it finds none."""
    grid = fit_grid(analyze_array(mono, rate, config).beats, beats_per_bar)
    if grid is None:
        return BeatGrid(60.0 / NOMINAL_BPM, 0.0, beats_per_bar, measured=False)
    return grid
