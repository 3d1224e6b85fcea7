"""Per-hop audio analysis: band levels, automatic gain, gate, envelopes, onsets, loudness.

The module has two layers. The functions at the top are pure (arrays in, arrays out) so tests
feed them synthetic signals. `Analyzer` strings them together with the state that must persist
between hops; it is single-threaded by design and lives in the capture thread (or in an offline
loop over a file), and each call to `process` returns a new immutable `Features`.

Why two FFT windows: one window cannot serve every band. 1024 points at 48 kHz (21 ms) leaves the
sub band one or two bins and leaks a 40 Hz sine into the bass band only ~8 dB down; per-band gain
control would then amplify the leak. So bands too narrow for the short window take their level
from a long window (~85 ms), while onsets and the upper bands use the short one, which reacts
within a hop.

Why time constants everywhere: every smoothing coefficient is `1 - exp(-dt / tau)` with the actual
hop duration, and flux compares against the spectrum a fixed *time* ago, so envelopes and onsets
do not change when the hop size or the device rate changes.
"""

from __future__ import annotations

import math
import time
from typing import Optional

import numpy as np

from vjgan.audio.config import AnalysisConfig, hop_samples, window_samples
from vjgan.audio.features import Features
from vjgan.audio.samples import silence_invalid
from vjgan.audio.tempo import BeatClock, TempoTracker

_TINY = 1e-12  # power floor before log10: -120 dB, far below any gate
_FLOOR_DB = -120.0


# --- pure functions ------------------------------------------------------------------------------


def smoothing_coef(dt: float, tau: float) -> float:
    """One-pole smoothing coefficient for a step of `dt` seconds with time constant `tau`.

    Applying it n times with dt equals applying it once with n*dt, which is what makes the
    followers independent of hop size and frame rate.
    """
    if tau <= 0.0:
        return 1.0
    return 1.0 - math.exp(-dt / tau)


def follow(prev: np.ndarray, target: np.ndarray, dt: float, attack_s: np.ndarray, release_s: np.ndarray) -> np.ndarray:
    """Attack/release envelope follower: rise toward `target` with tau=attack, fall with tau=release."""
    rising = target > prev
    tau = np.where(rising, attack_s, release_s)
    coef = -np.expm1(-dt / tau)  # 1 - exp(-dt/tau), accurate for small dt/tau
    return prev + (target - prev) * coef


def band_matrix(edges: np.ndarray, n_fft: int, rate: int) -> np.ndarray:
    """Weights (bands x rfft bins) = the fraction of each bin's frequency span inside each band.

    Fractional edges keep a band's level continuous when its edges move between bins (presets
    can set any edges) and partition the spectrum without double counting between neighbours.
    """
    n_bins = n_fft // 2 + 1
    df = rate / n_fft
    lo_bin = np.arange(n_bins) * df - df / 2
    hi_bin = lo_bin + df
    lo = np.asarray(edges[:, 0], dtype=np.float64)[:, None]
    hi = np.asarray(edges[:, 1], dtype=np.float64)[:, None]
    overlap = np.clip(np.minimum(hi, hi_bin[None, :]) - np.maximum(lo, lo_bin[None, :]), 0.0, None)
    w = overlap / df
    w[:, 0] = 0.0  # DC says nothing about music and carries the interface's offset
    return w


def power_scale(window: np.ndarray) -> np.ndarray:
    """Per-bin factors that turn |rfft|^2 into mean-square power (Parseval with the window).

    With these, summing a band's bins gives the band's RMS^2, so a full-scale sine reads -3 dBFS
    whichever window length measured it.
    """
    n = len(window)
    scale = np.full(n // 2 + 1, 2.0 / (n * float(np.sum(window**2))))
    scale[0] /= 2.0
    if n % 2 == 0:
        scale[-1] /= 2.0
    return scale


def power_spectrum(frame: np.ndarray, window: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """|rfft|^2 of the windowed frame as mean-square power per bin, without the frame's offset.

    Interfaces and damaged files can carry a constant offset, and the window leaks it into the
    lowest bins (the sub band at low rates): silence with an offset would light the sub band.
    Removing the frame's window-weighted mean cancels a constant exactly and changes nothing
    above the window's first bin (a Hann window's spectrum spans bins -1..1).
    """
    weighted = frame * window
    weighted -= window * (weighted.sum() / window.sum())
    spec = np.fft.rfft(weighted)
    return (spec.real**2 + spec.imag**2) * scale


def to_db(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(power + _TINY)


def mask_threshold_db(levels_db: np.ndarray, gate_db: float, mask_db: float) -> np.ndarray:
    """Per-band gate threshold: the absolute gate, raised to `mask_db` below the louder neighbour.

    A band far below its neighbour is either window leakage (a 40 Hz sine seen in the bass band)
    or masked to the ear; either way it should stay dark rather than be amplified by its AGC.
    """
    n = len(levels_db)
    neighbour = np.full(n, _FLOOR_DB)
    if n > 1:
        neighbour[1:] = levels_db[:-1]
        neighbour[:-1] = np.maximum(neighbour[:-1], levels_db[1:])
    return np.maximum(gate_db, neighbour - mask_db)


def gate_gain(levels_db: np.ndarray, threshold_db: np.ndarray, knee_db: float) -> np.ndarray:
    """0 below the threshold, 1 at threshold + knee, linear in dB between (no click when it opens)."""
    return np.clip((levels_db - threshold_db) / knee_db, 0.0, 1.0)


def peak_follow_db(peak_db: np.ndarray, levels_db: np.ndarray, dt: float, decay_s: float, floor_db: float) -> np.ndarray:
    """Slow peak follower for automatic gain: jumps up at once, decays exponentially (linear in dB).

    An amplitude decaying as exp(-t/tau) falls 20*log10(e)/tau dB per second. The floor stops the
    reference from sinking to the noise, so a quiet passage is shown quiet, not pumped to full.
    """
    decayed = peak_db - (20.0 / math.log(10.0)) * dt / decay_s
    return np.maximum(np.maximum(levels_db, decayed), floor_db)


def positive_flux(now_db: np.ndarray, before_db: np.ndarray) -> np.ndarray:
    """Spectral flux in dB: only rises count (an onset is energy arriving, not leaving)."""
    return np.maximum(now_db - before_db, 0.0)


def onset_decision(
    flux: np.ndarray,
    threshold: np.ndarray,
    was_above: np.ndarray,
    since_last: np.ndarray,
    refractory_s: np.ndarray,
    open_: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Causal peak picking: fire on the rising edge through the threshold, outside the refractory time.

    Returns (onsets, above). Waiting for the flux peak would cost a hop of latency; the rising edge
    is as precise as the hop, and the refractory time stops a kick's ringing from firing twice.
    """
    above = flux > threshold
    onsets = above & ~was_above & (since_last >= refractory_s) & open_
    return onsets, above


def log_bands(low_hz: float, high_hz: float, per_octave: float) -> np.ndarray:
    """Contiguous log-spaced band edges (n x 2) between low and high."""
    n = max(1, int(round(math.log2(high_hz / low_hz) * per_octave)))
    e = np.geomspace(low_hz, high_hz, n + 1)
    return np.stack([e[:-1], e[1:]], axis=1)


# --- the stateful analyzer -----------------------------------------------------------------------


class Analyzer:
    """Turns hops of mono audio into `Features`. Not thread-safe: one owner (the capture thread)."""

    # Flux is measured at the end of the short window, but a click is only seen once it is well
    # inside the Hann window. This fraction of the short window, subtracted from the hop's time,
    # puts the onset-strength curve (and so the beat phase) on the audible attack. Calibrated on
    # click tracks (tests check beats against clicks within one hop).
    ONSET_DELAY_FRACTION = 0.50
    # The same for the kick curve, relative to the onset curve (long window, longer flux lag).
    KICK_DELAY_FRACTION = 0.33

    def __init__(self, rate: int, config: Optional[AnalysisConfig] = None):
        self.config = cfg = config or AnalysisConfig()
        if rate < 8000:
            raise ValueError(f"sample rate {rate} Hz is too low for the analysis (need >= 8000)")
        self.rate = int(rate)
        self.hop = hop_samples(rate, cfg.hop_s)
        self.dt = self.hop / self.rate  # the actual hop duration, not the nominal one
        nyquist = rate / 2.0
        self.band_names = cfg.band_names()
        edges = np.array([[b.low_hz, min(b.high_hz, nyquist)] for b in cfg.bands], dtype=np.float64)
        nb = len(edges)

        self.n_short = window_samples(rate, cfg.short_window_s)
        self.n_long = max(self.n_short, window_samples(rate, cfg.long_window_s))
        self._win_short = np.hanning(self.n_short + 2)[1:-1].astype(np.float64)  # no zero end points
        self._win_long = np.hanning(self.n_long + 2)[1:-1].astype(np.float64)
        self._scale_short = power_scale(self._win_short)
        self._scale_long = power_scale(self._win_long)

        # A band uses the short window only where that window resolves it: at least 6 bins wide
        # and its low edge 3 bins above DC. Everything lower (sub, bass, low-mid) uses the long one.
        df_short = rate / self.n_short
        use_short = ((edges[:, 1] - edges[:, 0]) >= 6 * df_short) & (edges[:, 0] >= 3 * df_short)
        self._short_idx = np.flatnonzero(use_short)
        self._long_idx = np.flatnonzero(~use_short)
        self._w_long = band_matrix(edges[self._long_idx], self.n_long, rate)
        self._w_short = band_matrix(edges[self._short_idx], self.n_short, rate)
        # Onsets in every band come from the short window: timing matters more than separation there.
        self._w_onset = band_matrix(edges, self.n_short, rate)
        # Tempo reads a finer, band-wide onset strength: the mean flux of half-octave bands, so a
        # broadband hit (kick, snare, clap) counts more than a note in one register.
        t_edges = log_bands(40.0, min(16000.0, nyquist * 0.95), 2.0)
        self._w_tempo = band_matrix(t_edges, self.n_short, rate)
        # The kick curve: flux of 25-65 Hz measured on the long window, which (unlike the short
        # one) separates a kick's thump from a bass line's notes an octave up. Its lag is longer
        # because the long window smears the rise over more hops.
        self._w_kick = band_matrix(np.array([[25.0, 65.0]]), self.n_long, rate)
        self.kick_lag_hops = max(1, int(round(0.05 / self.dt)))
        self._kick_hist = np.full(self.kick_lag_hops, cfg.gate_db)

        self._attack = np.array([b.attack_s for b in cfg.bands])
        self._release = np.array([b.release_s for b in cfg.bands])
        self._refractory = np.array([b.refractory_s for b in cfg.bands])
        self._delta = np.array([b.onset_delta_db for b in cfg.bands])
        self._gain = 10.0 ** (cfg.input_gain_db / 20.0)

        self._buf = np.zeros(self.n_long, dtype=np.float64)
        self.lag_hops = max(1, int(round(cfg.flux_lag_s / self.dt)))
        self._onset_hist = np.full((self.lag_hops, nb), cfg.gate_db)
        self._tempo_hist = np.full((self.lag_hops, len(t_edges)), cfg.gate_db)
        self.median_hops = max(3, int(round(cfg.onset_median_s / self.dt)))
        self._flux_hist = np.zeros((self.median_hops, nb))
        self._peak_db = np.full(nb, cfg.agc_floor_db)
        self._env = np.zeros(nb)
        self._was_above = np.zeros(nb, dtype=bool)
        self._since_onset = np.full(nb, 1e9)
        self._loud_peak_db = cfg.agc_floor_db
        self._loud_env = 0.0
        self.hop_index = 0
        self.onset_delay_s = self.ONSET_DELAY_FRACTION * self.n_short / rate

        self.tempo = TempoTracker(self.dt, cfg.tempo, kick_delay_s=self.KICK_DELAY_FRACTION * self.n_long / rate)
        self.clock = BeatClock(cfg.tempo)

    # The analysis in one place, called once per hop.
    def process(self, samples: np.ndarray, adc_time: Optional[float] = None, connected: bool = True,
                bad_samples: int = 0) -> Features:
        """Analyse one hop (`self.hop` mono samples) whose newest sample reached the ADC at `adc_time`.

        Without `adc_time` (offline analysis) the file's own time base is used, so onset and beat
        times come out in seconds from the start of the file. `bad_samples` is the source's count
        of invalid samples it silenced (see `vjgan.audio.samples`), passed on to `Features` for the
        HUD. Invalid samples that reach the analyzer anyway are silenced here too: nothing a
        caller feeds in can make the analyzer's state non-finite.
        """
        cfg = self.config
        h = self.hop
        if samples.shape[0] != h:
            raise ValueError(f"expected a hop of {h} samples, got {samples.shape[0]}")
        self.hop_index += 1
        if adc_time is None:
            adc_time = self.hop_index * self.dt
        dt = self.dt
        buf = self._buf
        buf[:-h] = buf[h:]
        fresh = buf[-h:]
        fresh[:] = samples  # a copy: the caller's array is left alone
        silence_invalid(fresh)
        if self._gain != 1.0:
            fresh *= self._gain

        p_long = power_spectrum(buf, self._win_long, self._scale_long)
        p_short = power_spectrum(buf[-self.n_short:], self._win_short, self._scale_short)

        nb = len(self.band_names)
        levels = np.empty(nb)
        levels[self._long_idx] = self._w_long @ p_long
        levels[self._short_idx] = self._w_short @ p_short
        levels_db = to_db(levels)

        # --- automatic gain, gate, envelopes
        self._peak_db = peak_follow_db(self._peak_db, levels_db, dt, cfg.agc_decay_s, cfg.agc_floor_db)
        threshold = mask_threshold_db(levels_db, cfg.gate_db, cfg.mask_db)
        gate = gate_gain(levels_db, threshold, cfg.gate_knee_db)
        target = 10.0 ** ((levels_db - self._peak_db) / 20.0) * gate
        self._env = follow(self._env, target, dt, self._attack, self._release)

        # --- onsets: flux of gated log band levels against the spectrum flux_lag_s ago
        slot = self.hop_index % self.lag_hops
        onset_db = np.maximum(to_db(self._w_onset @ p_short), cfg.gate_db)
        flux = positive_flux(onset_db, self._onset_hist[slot])
        self._onset_hist[slot] = onset_db
        median = np.median(self._flux_hist, axis=0)
        self._flux_hist[self.hop_index % self.median_hops] = flux
        self._since_onset += dt
        onsets, self._was_above = onset_decision(
            flux, median + self._delta, self._was_above, self._since_onset, self._refractory, gate > 0.0
        )
        self._since_onset[onsets] = 0.0

        # --- tempo onset strength (gated so hiss cannot drive the tempo)
        tempo_db = np.maximum(to_db(self._w_tempo @ p_short), cfg.gate_db)
        strength = float(np.mean(positive_flux(tempo_db, self._tempo_hist[slot])))
        self._tempo_hist[slot] = tempo_db
        kslot = self.hop_index % self.kick_lag_hops
        kick_db = max(float(to_db(self._w_kick @ p_long)[0]), cfg.gate_db)
        kick = max(kick_db - self._kick_hist[kslot], 0.0)
        self._kick_hist[kslot] = kick_db

        # --- loudness: RMS over the short window (a fixed duration, not the hop, so it does not
        # change with the hop size), with the same gain control as the bands; without the
        # window's offset, for the reason given in power_spectrum
        recent = buf[-self.n_short:]
        offset = float(recent.mean())
        loud_db = 10.0 * math.log10(max(float(recent @ recent) / self.n_short - offset * offset, 0.0) + _TINY)
        self._loud_peak_db = max(loud_db, self._loud_peak_db - 8.685889638 * dt / cfg.agc_decay_s, cfg.agc_floor_db)
        loud_gate = min(max((loud_db - cfg.gate_db) / cfg.gate_knee_db, 0.0), 1.0)
        loud_target = 10.0 ** ((loud_db - self._loud_peak_db) / 20.0) * loud_gate
        tau = cfg.loudness_attack_s if loud_target > self._loud_env else cfg.loudness_release_s
        self._loud_env += (loud_target - self._loud_env) * smoothing_coef(dt, tau)

        # --- tempo and the beat clock, in ADC time
        estimate = self.tempo.push(strength, adc_time - self.onset_delay_s, kick)
        clock = self.clock
        if estimate is not None:
            clock.audio_estimate(estimate.period, estimate.beat_time, estimate.confidence, adc_time)
        elif self.tempo.silent:
            clock.audio_silence(adc_time)
        beat = clock.advance(adc_time)

        return Features(
            adc_time=adc_time,
            published_at=time.perf_counter(),
            hop_index=self.hop_index,
            band_names=self.band_names,
            bands=tuple(self._env.tolist()),
            levels_db=tuple(levels_db.tolist()),
            onsets=tuple(onsets.tolist()),
            onset_strength=tuple(flux.tolist()),
            loudness=self._loud_env,
            loudness_db=loud_db,
            gated=bool(loud_gate <= 0.0),
            bpm=clock.bpm,
            tempo_confidence=clock.confidence,
            tempo_source=clock.source,
            beat=beat,
            beat_phase=clock.phase(adc_time),
            beat_count=clock.beat_count,
            beat_time=clock.last_beat_time,
            beat_period=clock.period,
            connected=connected,
            bad_samples=bad_samples,
        )

    def silence(self) -> np.ndarray:
        """A hop of silence, fed while the device is gone so the envelopes decay to rest."""
        return np.zeros(self.hop, dtype=np.float32)
