"""Tempo and beat phase: a causal tempo tracker and the beat clock the visuals read.

`TempoTracker` looks at the onset-strength curve (one value per hop) over a window that grows
from `min_history_s` to `max_history_s` and estimates the beat period by autocorrelation, scored
with a comb over the period's multiples, and the beat phase by a comb over the recent past.
Offline tools normalise over the whole song; everything here only uses audio already heard.

`BeatClock` turns those estimates into a phase ramp predicted forward in time, so a beat lands on
the hop where it falls even between tempo updates, and lets a performer override it: tap tempo,
x2 / /2, resync, a fixed BPM, or an external clock (MIDI clock, 24 pulses per quarter note).
Both classes are single-threaded; the engine forwards commands from other threads to the
capture thread (see `vjgan.audio.engine`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

from vjgan.audio.config import TempoConfig

MIDI_CLOCK_PPQ = 24  # MIDI clock pulses per quarter note

# A small Gaussian (sigma = 1 hop): onset peaks are a few hops wide, and a smoothed curve makes
# the peaks of the autocorrelation smooth enough to interpolate between lags.
_SMOOTH = np.array([0.054, 0.242, 0.399, 0.242, 0.054])
_SMOOTH = _SMOOTH / _SMOOTH.sum()
# The kick curve comes from a long window that smears it over several hops: a wider kernel.
_KICK_SMOOTH = np.hanning(11)[1:-1] / np.hanning(11)[1:-1].sum()


@dataclass(frozen=True)
class TempoEstimate:
    period: float  # seconds per beat
    beat_time: float  # time of the most recent beat found (same clock as the pushed times)
    confidence: float  # 0..1

    @property
    def bpm(self) -> float:
        return 60.0 / self.period


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Unbiased, normalised autocorrelation (r[0] = 1) of a zero-mean signal, via the FFT."""
    n = len(x)
    nfft = 1 << (2 * n - 1).bit_length()
    spec = np.fft.rfft(x, nfft)
    r = np.fft.irfft(spec.real**2 + spec.imag**2, nfft)[:n]
    r /= np.arange(n, 0, -1)  # unbiased: each lag averaged over its own overlap
    if r[0] <= 0.0:
        return np.zeros(n)
    return r / r[0]


def comb_scores(r: np.ndarray, lags: np.ndarray, max_lag: float, harmonics: int = 4) -> np.ndarray:
    """Mean autocorrelation at each candidate lag and its multiples (up to `max_lag`).

    A steady beat correlates at every multiple of its period; averaging over them rewards the
    true period over isolated peaks. Note that a period and its double score alike on a pure
    pulse train: the octave is decided afterwards (see `choose_octave`).
    """
    grid = np.arange(len(r))
    total = np.zeros(len(lags))
    count = np.zeros(len(lags))
    for k in range(1, harmonics + 1):
        pts = k * lags
        ok = pts <= max_lag
        total += np.where(ok, np.interp(pts, grid, r), 0.0)
        count += ok
    return total / np.maximum(count, 1)


def tempo_prior(bpm: np.ndarray, centre_bpm: float, octaves: float) -> np.ndarray:
    """Log-normal preference for tempi near `centre_bpm` (listeners tap near 120-130 BPM).

    It only decides between candidates the audio cannot tell apart: a pulse train at P scores the
    same at 2P, and a funk groove's 8th notes correlate as well as its beats.
    """
    return np.exp(-0.5 * (np.log2(bpm / centre_bpm) / octaves) ** 2)


def choose_octave(lags: np.ndarray, scores: np.ndarray, rs: list[np.ndarray], prior: np.ndarray,
                  tolerance: float, purity: float = 0.9) -> int:
    """Index of the chosen candidate period.

    The best comb score weighted by the tempo prior wins. Then, if a half or a third of that
    period is itself an almost perfect pulse train in any of the curves `rs` (autocorrelations:
    the broadband one, the kick one) and scores within `tolerance` of it, the faster period is
    taken: when every event is alike and evenly spaced, or a kick falls on every one of them,
    each is a beat. (A 174 BPM groove with a kick on every beat is 174, although its kick-snare
    pattern repeats every two beats and so correlates best at 87.)
    """
    best = int(np.argmax(scores * prior))
    tolerance = min(tolerance, 1.0)
    improved = True
    while improved:
        improved = False
        for div in (2.0, 3.0):
            frac = lags[best] / div
            if frac < lags[0] - 0.5:
                continue
            j = int(np.argmin(np.abs(lags - frac)))
            lo, hi = max(0, j - 2), min(len(lags), j + 3)  # the fraction's peak may sit a step off
            j = lo + int(np.argmax(scores[lo:hi]))
            pure = any(np.interp(lags[j], np.arange(len(r)), r) >= purity for r in rs)
            if pure and scores[j] >= tolerance * scores[best]:
                best = j
                improved = True
                break
    return best


def refine_period(r: np.ndarray, lag: float, max_lag: float, harmonics: int = 8) -> float:
    """Sub-hop period from the peaks of `r` near each multiple of `lag` (least squares through 0).

    At 10 ms hops neighbouring lags near 135 BPM are 2% apart; the k-th multiple's peak locates the
    period k times more precisely, and parabolic interpolation refines each peak.
    """
    ks, peaks = [], []
    for k in range(1, harmonics + 1):
        centre = k * lag
        if centre + 2 > max_lag:
            break
        # Wide enough for a tempo a few percent off the candidate, never reaching the half-beat peak.
        half_width = min(max(1.5, 0.03 * centre), 0.2 * lag)
        lo = max(1, int(math.floor(centre - half_width)))
        hi = min(len(r) - 2, int(math.ceil(centre + half_width)))
        if hi <= lo:
            break
        i = lo + int(np.argmax(r[lo : hi + 1]))
        if i in (lo, hi) or r[i] <= 0.0:
            continue  # no peak inside the search range
        a, b, c = r[i - 1], r[i], r[i + 1]
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom < 0 else 0.0
        ks.append(k)
        peaks.append(i + offset)
    if not ks:
        return lag
    k = np.asarray(ks, dtype=np.float64)
    p = np.asarray(peaks)
    # A multiple whose peak was pulled off by a fill or a neighbouring accent disagrees with the
    # others: fit only the largest group that agrees within 1.5%. The group is centred on one of
    # the measured periods, never on their median: with an even count the median can fall
    # between two groups and agree with none of them, which left nothing to fit (0/0).
    keep = consensus(p / k, 0.015)
    k, p = k[keep], p[keep]
    return float(np.dot(k, p) / np.dot(k, k))


def consensus(values: np.ndarray, tolerance: float) -> np.ndarray:
    """Mask of the largest group of `values` within `tolerance` (relative) of one of them.

    Never empty for a non-empty input (each value agrees with itself). Ties go to the earliest
    value: in `refine_period` that is the lowest multiple, measured with the most overlap.
    """
    ratio = np.abs(values[None, :] / values[:, None] - 1.0) <= tolerance
    return ratio[int(np.argmax(ratio.sum(axis=1)))]


def phase_comb(o: np.ndarray, period: float, phis: np.ndarray, horizon: int, decay: float = 0.85) -> np.ndarray:
    """For each phase `phi` (hops back from the newest sample), the decayed sum of `o` at beats
    phi, phi + period, phi + 2*period, ... into the past (recent beats weigh more, so the phase
    follows a drifting tempo)."""
    n = len(o)
    grid = np.arange(n)
    beats = int(max(1, min(horizon, n - 1) // period))
    score = np.zeros(len(phis))
    for j in range(beats):
        pos = (n - 1) - phis - j * period
        ok = pos >= 0
        score += (decay**j) * np.where(ok, np.interp(pos, grid, o), 0.0)
    return score


def beat_offset(o: np.ndarray, period: float, horizon: int, decay: float = 0.85) -> float:
    """Hops back from the newest sample to the most recent beat: argmax of `phase_comb`."""
    phis = np.arange(0.0, period, 0.5)
    score = phase_comb(o, period, phis, horizon, decay)
    i = int(np.argmax(score))
    # Parabolic refinement on the (circular) phase grid.
    a, b, c = score[i - 1], score[i], score[(i + 1) % len(score)]
    denom = a - 2 * b + c
    offset = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float((phis[i] + 0.5 * offset) % period)


class TempoTracker:
    """Causal tempo estimation from the onset-strength curve, one value per hop.

    Alongside the broadband onset strength it takes a "kick" curve (flux of the lowest band):
    the comb over the broadband curve finds the beat grid, but where the off-beats are as strong
    as the beats (house: open hats and bass notes between the kicks) it cannot tell the beat
    from the off-beat. The kick curve settles that half-beat question.
    """

    def __init__(self, dt: float, config: Optional[TempoConfig] = None, kick_delay_s: float = 0.0):
        self.config = cfg = config or TempoConfig()
        self.dt = dt
        self.max_len = int(round(cfg.max_history_s / dt))
        self.min_len = int(round(cfg.min_history_s / dt))
        self.every = max(1, int(round(cfg.update_s / dt)))
        self.kick_delay = kick_delay_s / dt  # the kick curve lags the onset curve by this many hops
        self._hist = np.zeros(self.max_len)
        self._kick = np.zeros(self.max_len)
        self._n = 0
        lag_min = 60.0 / cfg.bpm_max / dt
        lag_max = 60.0 / cfg.bpm_min / dt
        self._lags = np.arange(lag_min, lag_max + 1e-9, 0.25)
        self._prior = tempo_prior(60.0 / (self._lags * dt), cfg.prior_bpm, cfg.prior_octaves)
        self._period: Optional[float] = None  # hops
        self._pending: Optional[float] = None
        self._beat_ref: Optional[float] = None  # hop index of the last estimated beat
        self._flip_votes = 0
        self.silent = True
        self.last: Optional[TempoEstimate] = None

    def reset(self) -> None:
        self._hist[:] = 0.0
        self._kick[:] = 0.0
        self._n = 0
        self._period = None
        self._pending = None
        self._beat_ref = None
        self._flip_votes = 0
        self.silent = True
        self.last = None

    def push(self, value: float, t: float, kick: float = 0.0) -> Optional[TempoEstimate]:
        """Add one onset-strength value (and kick-band flux) measured at time `t`.

        Every `update_s` it returns a new estimate (None before `min_history_s` or in silence).
        A value that is not finite counts as no onset, so the history stays finite.
        """
        value = value if math.isfinite(value) else 0.0
        kick = kick if math.isfinite(kick) else 0.0
        h = self._hist
        h[:-1] = h[1:]
        h[-1] = value
        k = self._kick
        k[:-1] = k[1:]
        k[-1] = kick
        self._n += 1
        if self._n % self.every or self._n < self.min_len:
            return None
        est = self._estimate(t)
        self.last = est
        return est

    def _estimate(self, t_now: float) -> Optional[TempoEstimate]:
        cfg = self.config
        n = min(self._n, self.max_len)
        o = self._hist[-n:]
        # Silence (or a gated input) leaves nothing to correlate: say so and keep the old tempo.
        if float(o[-int(2.0 / self.dt):].max(initial=0.0)) < 0.5:
            self.silent = True
            return None
        self.silent = False
        o_s = np.convolve(o, _SMOOTH, mode="same")
        r = autocorrelation(o_s - o_s.mean())
        max_lag = n * 2.0 / 3.0  # beyond this too little overlap is left to trust the lag
        scores = comb_scores(r, self._lags, max_lag)
        k_s = np.convolve(self._kick[-n:], _KICK_SMOOTH, mode="same")
        rs = [r]
        if float(k_s.max(initial=0.0)) > 0.5:
            # Compressed first: the first kick after silence rises from the gate and would
            # otherwise outweigh every later one in the correlation.
            k_c = np.log1p(k_s)
            rs.append(autocorrelation(k_c - k_c.mean()))
        pick = choose_octave(self._lags, scores, rs, self._prior, cfg.octave_tolerance)
        best_score = float(scores[pick])
        if best_score <= 0.05:
            return None
        lag = refine_period(r, float(self._lags[pick]), max_lag)
        lag = float(np.clip(lag, self._lags[0], self._lags[-1]))

        # Hysteresis: keep the current period while the new one is within 4% of it (then follow
        # it), and switch to a different one only when two updates in a row agree on it, so one
        # odd bar (a fill, a break) does not throw the clock off.
        if self._period is not None and abs(lag / self._period - 1.0) > 0.04:
            if self._pending is not None and abs(lag / self._pending - 1.0) <= 0.04:
                self._period = lag
                self._pending = None
            else:
                self._pending = lag
                lag = self._period
        else:
            self._period = lag if self._period is None else 0.5 * (self._period + lag)
            self._pending = None
            lag = self._period

        horizon = int(round(4.0 / self.dt))
        phase_hops = beat_offset(o_s, lag, horizon)
        phase_hops = self._beat_side(o_s, k_s, phase_hops, lag, horizon)
        confidence = float(np.clip((best_score - 0.1) / 0.4, 0.0, 1.0))
        return TempoEstimate(period=lag * self.dt, beat_time=t_now - phase_hops * self.dt, confidence=confidence)

    def _beat_side(self, o_s: np.ndarray, k_s: np.ndarray, phase_hops: float, lag: float, horizon: int) -> float:
        """Beat or off-beat? Pick between the comb's phase and the one half a beat away.

        The broadband comb alone locks onto the 8th-note grid; which half is the beat is decided by
        a salience that adds the kick curve's share to the broadband curve's share at each
        candidate. The current side is kept unless the other one wins clearly twice in a row, so
        the beat never flips between the kick and the off-beat from one update to the next.
        """
        cands = np.array([phase_hops, (phase_hops + lag / 2.0) % lag])
        broad = phase_comb(o_s, lag, cands, horizon)
        sal = broad / max(float(broad.sum()), 1e-9)
        kc = phase_comb(k_s, lag, cands - self.kick_delay, horizon)
        if float(kc.sum()) > 1.0:  # some kick-band activity at all
            sal = sal + kc / float(kc.sum())
        pick = int(np.argmax(sal))
        if self._beat_ref is not None:
            # Which candidate continues the grid of the previous estimate?
            t_hops = (self._n - 1) - cands  # absolute hop index of each candidate's beat
            dist = np.abs(((t_hops - self._beat_ref) / lag + 0.5) % 1.0 - 0.5)
            keep = int(np.argmin(dist))
            if pick != keep and sal[pick] < sal[keep] * 1.25:
                pick = keep  # not a clear win: stay on the current side
            elif pick != keep:
                self._flip_votes += 1
                if self._flip_votes < 2:
                    pick = keep
            if pick == keep:
                self._flip_votes = 0
        self._beat_ref = (self._n - 1) - cands[pick]
        return float(cands[pick])


class TapTempo:
    """Tap times → seconds per beat: a least-squares line through the last `keep` taps (one tap
    early or late moves the tempo little); a pause longer than `timeout_s` starts afresh."""

    def __init__(self, timeout_s: float = 2.0, keep: int = 8) -> None:
        self.timeout_s = timeout_s
        self._taps: deque[float] = deque(maxlen=keep)

    def add(self, t: float) -> bool:
        """Take one tap; False if it is out of order or a duplicate (ignored)."""
        if self._taps and t - self._taps[-1] > self.timeout_s:
            self._taps.clear()
        if self._taps and t <= self._taps[-1]:
            return False
        self._taps.append(t)
        return True

    def period(self) -> Optional[float]:
        """Seconds per beat, once two or more taps are in; else None."""
        if len(self._taps) < 2:
            return None
        idx = np.arange(len(self._taps), dtype=np.float64)
        return float(np.polyfit(idx, np.asarray(self._taps), 1)[0])

    def clear(self) -> None:
        self._taps.clear()


class BeatClock:
    """A predicted beat-phase ramp, fed by the tracker and overridable by the performer.

    Times are seconds on one clock (the ADC / perf_counter clock live, file time offline). The
    clock keeps the time of the most recent beat (`last_beat_time`) and the period; between
    updates the phase is extrapolated, so it keeps running through breaks and device loss.
    """

    def __init__(self, config: Optional[TempoConfig] = None):
        self.config = config or TempoConfig()
        self.period = 0.0  # effective seconds per beat (after x2 / /2)
        self.last_beat_time = 0.0
        self.beat_count = 0
        self._mode = "audio"  # "audio", "tap" or "manual" (the external clock overrides any of them)
        self._mult = 1.0  # x2 / /2 applied on top of the audio tempo
        self._audio_period = 0.0
        self._audio_conf = 0.0
        self._last_audio_t: Optional[float] = None
        self._taps = TapTempo(self.config.tap_timeout_s)
        self._held_period = 0.0  # the tap or typed tempo, kept while Link or MIDI clock drives
        self._link: Optional[tuple[float, float, float]] = None  # (perf time, session beat there, period)
        self._link_seen: Optional[float] = None  # when the newest Link update arrived
        self._link_top = 0  # the highest Link beat already reported as a beat
        self._ext_ticks: deque[float] = deque(maxlen=2 * MIDI_CLOCK_PPQ)
        self._ext_count = 0
        self._ext_last: Optional[float] = None
        self._ext_period = 0.0
        self._ext_start = False
        self._pending_beat = False
        self._last_now: Optional[float] = None

    # --- reading ---------------------------------------------------------------------------------

    @property
    def bpm(self) -> float:
        return 60.0 / self.period if self.period > 0 else 0.0

    @property
    def source(self) -> str:
        if self._link_active():
            return "link"
        if self._external_active():
            return "external"
        if self._mode in ("tap", "manual"):
            return self._mode
        return "audio" if self.period > 0 else "none"

    @property
    def confidence(self) -> float:
        return 1.0 if self.source in ("link", "external", "tap", "manual") else self._audio_conf

    def phase(self, t: float) -> float:
        if self.period <= 0.0 or t <= self.last_beat_time:
            return 0.0
        return ((t - self.last_beat_time) / self.period) % 1.0

    # --- running ---------------------------------------------------------------------------------

    def advance(self, now: float) -> bool:
        """Move the ramp to `now`; True if a beat fell in (previous now, now]."""
        self._last_now = now
        if self._link_seen is not None and now - self._link_seen > self.config.external_timeout_s:
            self.link_lost()
        if self._ext_last is not None and now - self._ext_last > self.config.external_timeout_s:
            self._external_lost()
        beat = self._pending_beat
        self._pending_beat = False
        if self._link is not None:
            return self._advance_link(now) or beat
        if self.period <= 0.0:
            return beat
        nxt = self.last_beat_time + self.period
        if now - nxt > 8 * self.period:  # a long jump (first lock, a gap): restart the ramp near now
            self.last_beat_time += math.floor((now - self.last_beat_time) / self.period) * self.period
            nxt = self.last_beat_time + self.period
        while nxt <= now:
            self.last_beat_time = nxt
            self.beat_count += 1
            beat = True
            nxt += self.period
        return beat

    def _place_beat(self, t: float, count_as_new: bool = True) -> None:
        """Put a beat at `t`: nudge the current beat if `t` is near it, else start a new beat there."""
        if self.period > 0 and abs(t - self.last_beat_time) <= 0.5 * self.period:
            self.last_beat_time = t
            return
        self.last_beat_time = t
        if count_as_new:
            self.beat_count += 1
            self._pending_beat = True

    # --- the audio tracker -------------------------------------------------------------------------

    def audio_estimate(self, period: float, beat_time: float, confidence: float, now: float) -> None:
        """A new estimate from the tracker: follow it in audio mode, remember it otherwise."""
        first = self._audio_period <= 0.0
        dt = 0.0 if self._last_audio_t is None else now - self._last_audio_t
        self._last_audio_t = now
        self._audio_period = period
        # Confidence is smoothed (tau 1 s) so the HUD does not flicker between estimates.
        k = 1.0 if first else 1.0 - math.exp(-dt / 1.0)
        self._audio_conf += (confidence - self._audio_conf) * k
        if self._mode != "audio" or self._external_active() or self._link_active():
            return
        new_period = period / self._mult
        if first or self.period <= 0.0:
            self.period = new_period
            self.last_beat_time = beat_time  # the tracker's beat is in the past: advance() takes it from there
            return
        relock = abs(new_period / self.period - 1.0) > 0.04
        self.period = new_period
        # Phase error against the audio beat, wrapped to the audio period (with x2 or /2 the
        # audio beats are every other clock beat, or the clock beats every other audio beat).
        err = beat_time - self.last_beat_time
        err = (err + 0.5 * period) % period - 0.5 * period
        if relock:
            # A new tempo: take the measured phase outright, keeping the beat count continuous.
            target = self.last_beat_time + err
            while target > now:
                target -= period
            self.last_beat_time = target
        else:
            self.last_beat_time += self.config.phase_gain * err

    def audio_silence(self, now: float) -> None:
        """No music: keep the tempo (the next song often has it) but let confidence fade (tau 2 s)."""
        dt = 0.0 if self._last_audio_t is None else now - self._last_audio_t
        self._last_audio_t = now
        self._audio_conf *= math.exp(-dt / 2.0)

    # --- performer overrides -------------------------------------------------------------------

    def _clamp_period(self, period: float) -> float:
        lo = 60.0 / (2.0 * self.config.bpm_max)
        hi = 60.0 / (0.5 * self.config.bpm_min)
        return min(max(period, lo), hi)

    def tap(self, t: float) -> None:
        """A tap on the beat. Two or more taps set the tempo (least squares over the last 8)."""
        if not self._taps.add(t):
            return  # out-of-order or duplicate event
        period = self._taps.period()
        if period is not None:
            self._mode = "tap"
            self._mult = 1.0
            self._held_period = self._clamp_period(period)
            if not self._link_active():  # Link keeps the session's tempo (a tap changes it there)
                self.period = self._held_period
        if self.period > 0 and not self._link_active():
            self._place_beat(t)

    def set_bpm(self, bpm: float) -> None:
        """A fixed tempo (typed in, or from a preset); the phase keeps running."""
        if not (1.0 <= bpm <= 1000.0):
            raise ValueError(f"bpm must be in [1, 1000] (got {bpm})")
        self._mode = "manual"
        self._mult = 1.0
        self._held_period = self._clamp_period(60.0 / bpm)
        if not self._link_active():
            self.period = self._held_period

    def follow_audio(self) -> None:
        """Back to the audio tracker (drops tap / manual tempo and x2 / /2)."""
        self._mode = "audio"
        self._mult = 1.0
        self._taps.clear()
        if self._audio_period > 0 and not self._external_active() and not self._link_active():
            self.period = self._audio_period

    def double(self) -> None:
        """Twice as fast (x2)."""
        self._scale(2.0)

    def halve(self) -> None:
        """Half as fast (/2)."""
        self._scale(0.5)

    def _scale(self, factor: float) -> None:
        if self.period <= 0.0 or self._link_active():
            return
        new_period = self._clamp_period(self.period / factor)
        actual = self.period / new_period
        if self._mode == "audio" and not self._external_active():
            self._mult *= actual
        self.period = new_period

    def resync(self, t: float) -> None:
        """`t` is the downbeat: phase 0 there and the beat count restarts."""
        self.last_beat_time = t
        self.beat_count = 0
        self._pending_beat = True

    # --- external clock (MIDI clock, 24 ppq) ----------------------------------------------------------

    def external_tick(self, t: float) -> None:
        """One MIDI clock pulse received at `t`. While pulses arrive they set tempo and phase."""
        if self._ext_last is not None and t - self._ext_last > self.config.external_timeout_s:
            self._external_lost()
        if self._ext_last is not None and t <= self._ext_last:
            return
        if self._ext_start:
            self._ext_ticks.clear()  # the tempo may have changed while stopped
        self._ext_ticks.append(t)
        self._ext_last = t
        self._ext_count += 1
        if self._link_active():
            return  # Link drives; the pulses are kept so MIDI clock takes over if Link goes
        if len(self._ext_ticks) >= 2:
            ticks = np.asarray(self._ext_ticks)
            idx = np.arange(len(ticks), dtype=np.float64)
            slope, intercept = np.polyfit(idx, ticks, 1)
            self._ext_period = float(slope) * MIDI_CLOCK_PPQ
            self.period = self._clamp_period(self._ext_period)
            fitted = float(intercept + slope * idx[-1])  # this tick, with the jitter smoothed out
        else:
            fitted = t
        if self._ext_start:
            self._ext_start = False
            self.resync(fitted)
        elif (self._ext_count - 1) % MIDI_CLOCK_PPQ == 0:
            self._place_beat(fitted)

    def external_start(self) -> None:
        """MIDI Start: the next clock pulse is the downbeat."""
        self._ext_count = 0
        self._ext_start = True

    def external_stop(self) -> None:
        """MIDI Stop (or the clock went away): back to the previous tempo source."""
        self._external_lost()

    def _external_active(self) -> bool:
        return self._ext_last is not None

    def _external_lost(self) -> None:
        self._ext_last = None
        self._ext_ticks.clear()
        self._ext_count = 0
        if not self._link_active():
            self._fall_back()

    def _fall_back(self) -> None:
        """Link or MIDI clock stopped driving: back to the tap / typed tempo, or the audio's."""
        if self._mode == "audio" and self._audio_period > 0:
            self.period = self._audio_period / self._mult
        elif self._mode in ("tap", "manual") and self._held_period > 0:
            self.period = self._held_period

    # --- Ableton Link (the session's timeline; first in priority) --------------------------------------

    def link_timeline(self, t: float, beat: float, bpm: float) -> None:
        """The Link session's `beat` at time `t` (already shifted by the latency offset), at `bpm`.
        While updates arrive (within `external_timeout_s`), Link sets tempo, phase and the beat
        count: beat_count % 4 == 0 on the session's bar."""
        if not (bpm > 0.0 and math.isfinite(beat) and math.isfinite(t)):
            return
        first = self._link is None
        self._link = (t, beat, 60.0 / bpm)
        self._link_seen = t
        self.period = 60.0 / bpm
        if first:
            self._link_top = math.floor(beat)

    def link_lost(self) -> None:
        if self._link is None:
            return
        self._link = None
        self._link_seen = None
        if self._external_active() and self._ext_period > 0:
            self.period = self._clamp_period(self._ext_period)
        else:
            self._fall_back()

    def _link_active(self) -> bool:
        return self._link is not None

    def _advance_link(self, now: float) -> bool:
        t_ref, beat_ref, period = self._link  # type: ignore[misc]
        beat = beat_ref + (now - t_ref) / period
        count = math.floor(beat)
        self.beat_count = count
        self.last_beat_time = t_ref + (count - beat_ref) * period
        if count > self._link_top:
            self._link_top = count
            return True
        return False
