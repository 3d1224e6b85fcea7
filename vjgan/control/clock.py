"""MIDI clock in: pulse times to a steady tempo, transport state, and the sink that drives the beat clock.

MIDI clock is 24 pulses per quarter note with no tempo in it: the tempo is the pulse rate, and
every pulse arrives with jitter (USB polling, the sender's own timer, JACK's period, Python's
interpreter lock). `ClockTracker` fits a straight line through the pulse times of the last few
beats (least squares, then again without outliers), which averages jitter away; pulses are
numbered by their spacing, so a dropped pulse does not shift the fit by a beat.

`TimestampMapper` gives each message the time the MIDI backend received it rather than the time
the Python callback got the interpreter lock, which can be several milliseconds later.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Optional, Protocol, runtime_checkable

from .messages import CLOCK_PPQ


@runtime_checkable
class ClockSink(Protocol):
    """Where MIDI clock goes: the beat clock of the audio engine (or anything else that follows it).

    Called on the MIDI input thread with `time.perf_counter()` seconds; an implementation must
    return at once and hand the event over to the thread that owns its clock. For vjgan's
    `BeatClock` (single-threaded, owned by the capture thread) the three calls correspond to
    `external_tick(t)`, `external_start()` and `external_stop()`.
    """

    def clock_tick(self, t: float) -> None: ...

    def clock_start(self, t: float) -> None: ...

    def clock_stop(self, t: float) -> None: ...


class ExternalClockSink:
    """A `ClockSink` for a beat clock with the `external_tick(t)`, `external_start()`,
    `external_stop()` methods: `vjgan.audio.engine.AudioEngine` (which queues them for its
    capture thread, so any thread may call it) or, single-threaded, `vjgan.audio.tempo.BeatClock`."""

    def __init__(self, target: object) -> None:
        for method in ("external_tick", "external_start", "external_stop"):
            if not callable(getattr(target, method, None)):
                raise TypeError(f"{type(target).__name__} has no {method}() for the MIDI clock")
        self.target = target

    def clock_tick(self, t: float) -> None:
        self.target.external_tick(t)  # type: ignore[attr-defined]

    def clock_start(self, t: float) -> None:
        self.target.external_start()  # type: ignore[attr-defined]

    def clock_stop(self, t: float) -> None:
        self.target.external_stop()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ClockState:
    bpm: Optional[float]  # None until enough pulses have arrived
    receiving: bool  # pulses arrived within the timeout
    running: bool  # transport: Start or Continue received and no Stop since
    pulses: int  # pulses since the last Start (24 per beat)

    @property
    def beats(self) -> float:
        return self.pulses / CLOCK_PPQ


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of ys against xs (at least two distinct xs)."""
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    slope = sxy / sxx
    return slope, my - slope * mx


def robust_period(indices: list[float], times: list[float]) -> float:
    """Seconds per pulse: a line fit, then a refit without the pulses far off the first line
    (more than 3.5 robust standard deviations, and at least 2 ms: a pulse held up by a busy
    USB bus or a descheduled sender should not bend the tempo)."""
    slope, icpt = fit_line(indices, times)
    residuals = [t - (icpt + slope * i) for i, t in zip(indices, times)]
    med = sorted(abs(r) for r in residuals)[len(residuals) // 2]
    limit = max(3.5 * 1.4826 * med, 0.002)
    keep = [(i, t) for (i, t), r in zip(zip(indices, times), residuals) if abs(r) <= limit]
    if len(keep) >= max(3, len(indices) // 2) and len({i for i, _ in keep}) >= 2:
        slope, _ = fit_line([i for i, _ in keep], [t for _, t in keep])
    return slope


def number_pulses(times: list[float], period: float) -> list[float]:
    """Pulse numbers for `times`: consecutive, except that an isolated gap of about two or more
    periods between normal ones counts as pulses lost (USB hiccups drop the odd pulse; counting
    the gap as one would put every later pulse a 24th of a beat off the line). A tempo that
    really halves makes every gap long, not one, and is left to the tempo-change rule.
    Jitter up to 3/4 of a period (JACK's 10 ms period with pulses 21 ms apart) is not a loss."""
    idx = [0.0]
    n = len(times)
    for k in range(1, n):
        gap = times[k] - times[k - 1]
        steps = 1
        if period > 0 and gap > 1.75 * period:
            before = times[k - 1] - times[k - 2] if k >= 2 else period
            after = times[k + 1] - times[k] if k + 1 < n else period
            if before < 1.4 * period and after < 1.4 * period:
                steps = round(gap / period)
        idx.append(idx[-1] + steps)
    return idx


class ClockTracker:
    """Tempo and transport from MIDI clock. `tick` is cheap (the MIDI thread calls it 48 times a
    second at 120 BPM); the fit runs when someone reads `state()`."""

    def __init__(self, *, window: int = 4 * CLOCK_PPQ, min_pulses: int = 12, timeout_s: float = 0.5,
                 min_bpm: float = 20.0, max_bpm: float = 400.0) -> None:
        self.window = window
        self.min_pulses = min_pulses
        self.timeout_s = timeout_s
        self._min_period = 60.0 / (max_bpm * CLOCK_PPQ)
        self._max_period = 60.0 / (min_bpm * CLOCK_PPQ)
        self._lock = threading.Lock()
        self._t: deque[float] = deque(maxlen=window)
        self._last: Optional[float] = None
        self._pulses = 0
        self._running = False
        self._count = 0  # pulses ever received: the cache key
        self._cache: tuple[int, Optional[float]] = (-1, None)

    # --- the MIDI thread ------------------------------------------------------------------------

    def tick(self, t: float) -> None:
        with self._lock:
            if self._last is not None and t - self._last > self.timeout_s:
                self._t.clear()  # the clock stopped and started again: its tempo may be new
            if self._last is not None and t < self._last:
                t = self._last  # out of order by a hair (two ports' clocks): keep time monotonic
            self._t.append(t)
            self._last = t
            self._pulses += 1
            self._count += 1

    def start(self, t: float) -> None:
        with self._lock:
            self._running = True
            self._pulses = 0

    def stop(self, t: float) -> None:
        with self._lock:
            self._running = False

    def continue_(self, t: float) -> None:
        with self._lock:
            self._running = True

    # --- readers ---------------------------------------------------------------------------------

    def state(self, now: float) -> ClockState:
        with self._lock:
            receiving = self._last is not None and now - self._last <= self.timeout_s
            bpm = self._bpm_locked() if receiving else None
            return ClockState(bpm=bpm, receiving=receiving, running=self._running, pulses=self._pulses)

    def _fit(self) -> tuple[list[float], float]:
        ts = list(self._t)
        first = robust_period([float(i) for i in range(len(ts))], ts)
        idx = number_pulses(ts, first)
        return idx, robust_period(idx, ts) if idx[-1] != len(ts) - 1 else first

    def _bpm_locked(self) -> Optional[float]:
        if self._cache[0] == self._count:
            return self._cache[1]
        bpm = None
        if len(self._t) >= self.min_pulses:
            idx, period = self._fit()
            ts = self._t
            # A tempo change: the last beat's pulses disagree with the window by more than 6%.
            # Then keep only that beat, so the estimate follows within one beat instead of four.
            if len(ts) > 2 * CLOCK_PPQ and period > 0:
                short = (ts[-1] - ts[-CLOCK_PPQ - 1]) / (idx[-1] - idx[-CLOCK_PPQ - 1])
                if abs(short / period - 1.0) > 0.06:
                    for _ in range(len(ts) - CLOCK_PPQ - 1):
                        ts.popleft()
                    idx, period = self._fit()
            if math.isfinite(period) and self._min_period <= period <= self._max_period:
                bpm = 60.0 / (period * CLOCK_PPQ)
        self._cache = (self._count, bpm)
        return bpm


class TimestampMapper:
    """Backend message times on the `time.perf_counter()` clock.

    rtmidi gives each message the time since the previous one, measured by the backend when the
    message arrived. Summed, they form a timeline without the delay of waiting for Python's lock;
    its offset to perf_counter is the smallest (perf_counter at the callback − backend time) seen,
    i.e. the least delayed message, allowed to creep up slowly so that drift between the two
    clocks is followed.
    """

    def __init__(self, drift_per_s: float = 1e-3) -> None:
        self.drift_per_s = drift_per_s
        self._backend = 0.0
        self._offset: Optional[float] = None
        self._last_now = 0.0

    def map(self, delta: float, now: float) -> float:
        if self._offset is not None and delta > 0:
            self._backend += delta
        candidate = now - self._backend
        if self._offset is None:
            self._offset = candidate
        else:
            relaxed = self._offset + self.drift_per_s * max(0.0, now - self._last_now)
            self._offset = min(candidate, relaxed)
        self._last_now = now
        return min(self._backend + self._offset, now)
