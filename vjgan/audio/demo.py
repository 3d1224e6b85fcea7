"""Signals vjgan synthesises itself: the demo groove and click tracks.

The demo source plays `render_groove` in a loop on machines with no input (and when a show is
started without a sound card), so the visuals still have something musical to follow. The same
functions make deterministic test signals with a known tempo and known beat times.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def click_track(rate: int, bpm: float, seconds: float, start: float = 0.0, click_s: float = 0.004,
                freq: float = 1500.0, amplitude: float = 0.8, accent_every: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Short sine-burst clicks on every beat. Returns (mono float32 signal, click times in s)."""
    n = int(round(seconds * rate))
    out = np.zeros(n, dtype=np.float32)
    period = 60.0 / bpm
    times = np.arange(start, seconds - click_s, period)
    m = int(round(click_s * rate))
    t = np.arange(m) / rate
    burst = np.sin(2 * np.pi * freq * t) * np.exp(-t / (click_s / 4))
    for i, c in enumerate(times):
        a = int(round(c * rate))
        gain = 1.0 if not accent_every or i % accent_every == 0 else 0.6
        out[a : a + m] += (amplitude * gain * burst[: n - a]).astype(np.float32)
    return out, times


def _kick(rate: int, amp: float = 0.9) -> np.ndarray:
    t = np.arange(int(0.35 * rate)) / rate
    freq = 48.0 + 110.0 * np.exp(-t / 0.03)  # pitch sweep from ~160 Hz down to ~50 Hz
    phase = 2 * np.pi * np.cumsum(freq) / rate
    env = np.exp(-t / 0.12)
    click = np.exp(-t / 0.002) * 0.3
    return (amp * (np.sin(phase) * env + click * np.sin(2 * np.pi * 2500 * t))).astype(np.float32)


def _noise_burst(rate: int, seconds: float, tau: float, rng: np.random.Generator, highpass: float) -> np.ndarray:
    n = int(seconds * rate)
    noise = rng.standard_normal(n)
    # One-pole high-pass: keeps the hat bright, the snare's body comes from a separate tone.
    a = np.exp(-2 * np.pi * highpass / rate)
    hp = lfilter([1.0, -1.0], [1.0, -a], noise)
    t = np.arange(n) / rate
    return hp * np.exp(-t / tau)


def render_groove(rate: int, bpm: float = 124.0, bars: int = 4, seed: int = 7) -> np.ndarray:
    """A four-on-the-floor loop: kick, snare on 2 and 4, 8th-note hats, a bass line and a pad.

    Deterministic for a given seed; returns mono float32 peaking around -3 dBFS. Beat k of the
    loop starts at sample round(k * 60 / bpm * rate).
    """
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    n = int(round(bars * 4 * beat * rate))
    out = np.zeros(n + rate, dtype=np.float64)  # a tail to cut off at the end
    kick = _kick(rate)
    snare = 0.45 * _noise_burst(rate, 0.25, 0.06, rng, 1200.0)
    snare[: int(0.1 * rate)] += 0.3 * np.sin(2 * np.pi * 185 * np.arange(int(0.1 * rate)) / rate) * np.exp(
        -np.arange(int(0.1 * rate)) / rate / 0.03
    )
    hat = 0.12 * _noise_burst(rate, 0.06, 0.012, rng, 7000.0)

    def put(sound: np.ndarray, at: float, gain: float = 1.0) -> None:
        a = int(round(at * rate))
        out[a : a + len(sound)] += gain * sound[: len(out) - a]

    roots = [55.0, 55.0, 43.65, 49.0]  # A1 A1 F1 G1: one chord per bar
    for b in range(bars):
        bar_t = b * 4 * beat
        for q in range(4):
            put(kick, bar_t + q * beat)
            if q in (1, 3):
                put(snare, bar_t + q * beat)
            for e in range(2):
                put(hat, bar_t + q * beat + e * beat / 2, 1.0 if e else 0.6)
        # Off-beat bass notes (a classic house line), ducked under the kick by placement.
        root = roots[b % len(roots)]
        for q in range(4):
            start = bar_t + q * beat + beat / 2
            m = int(0.8 * beat / 2 * rate)
            t = np.arange(m) / rate
            tone = np.sin(2 * np.pi * root * 2 * t) + 0.3 * np.sin(2 * np.pi * root * 4 * t)
            put(0.25 * tone * np.exp(-t / 0.15) * np.minimum(1.0, t / 0.005), start)
        # A soft pad: root, fifth and tenth, fading in and out over the bar.
        m = int(4 * beat * rate)
        t = np.arange(m) / rate
        pad = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) for f in (root * 8, root * 12, root * 20))
        put(0.04 * pad * np.sin(np.pi * t / (4 * beat)), bar_t)
    out = out[:n]
    out *= 0.7 / max(1e-9, float(np.max(np.abs(out))))
    return out.astype(np.float32)
