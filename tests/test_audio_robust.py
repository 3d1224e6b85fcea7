"""No sound can break the analysis: property tests over random signals, rates and block sizes, and
real music at the rates people's files come in.

Hypothesis draws the parameters (kind of signal, level, rate, hop, where NaN and infinity land,
block sizes); numpy makes the samples from them, so each example is fast. Every snapshot must be
finite and in range, whatever came in. The real music is the project's recordings and Debian's
`asc-music` (machine_wars: a steady kick that crashed the tempo tracker at 44.1 kHz), resampled
with ffmpeg as a user would.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from vjgan.audio.analysis import Analyzer  # noqa: E402
from vjgan.audio.config import AnalysisConfig, TempoConfig  # noqa: E402
from vjgan.audio.features import Features  # noqa: E402
from vjgan.audio.files import MonoStream, open_audio, to_mono  # noqa: E402
from vjgan.audio.offline import analyze_array, analyze_stream  # noqa: E402
from vjgan.audio.samples import MAX_SAMPLE, BadSampleReport, silence_invalid  # noqa: E402
from vjgan.audio.tempo import TempoTracker, consensus, refine_period  # noqa: E402

FIXTURES = Path(__file__).parent / "audio_fixtures"
MACHINE_WARS = Path("/usr/share/games/asc/music/machine_wars.mp3")
KINDS = ("silence", "dc", "noise", "sine", "clipped", "clicks", "square", "impulse")
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_signal(kind: str, rate: int, seconds: float, level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = max(1, int(rate * seconds))
    t = np.arange(n) / rate
    freq = float(rng.uniform(20.0, 0.45 * rate))
    if kind == "silence":
        x = np.zeros(n)
    elif kind == "dc":
        x = np.full(n, level)
    elif kind == "noise":
        x = level * rng.standard_normal(n)
    elif kind == "sine":
        x = level * np.sin(2 * np.pi * freq * t)
    elif kind == "clipped":  # a sine driven 20 dB into the converter's rails
        x = np.clip(10 * level * np.sin(2 * np.pi * freq * t), -level, level)
    elif kind == "clicks":
        x = np.zeros(n)
        period = max(1, int(rate * rng.uniform(0.2, 1.2)))
        x[::period] = level
    elif kind == "square":
        x = level * np.sign(np.sin(2 * np.pi * rng.uniform(1.0, 200.0) * t))
    else:
        x = np.zeros(n)
        x[rng.integers(0, n)] = level
    return x.astype(np.float32)


def spoil(x: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """Put NaN, +inf, -inf and absurd values at random places (bursts and single samples)."""
    rng = np.random.default_rng(seed + 1)
    y = x.copy()
    count = int(len(y) * fraction)
    if count:
        where = rng.integers(0, len(y), count)
        y[where] = rng.choice(np.array([np.nan, np.inf, -np.inf, 3e38, -1e6], dtype=np.float32), count)
        start = int(rng.integers(0, len(y)))
        y[start : start + 100] = np.nan  # a burst, as in a damaged float file
    return y


def assert_sane(f: Features, config: AnalysisConfig) -> None:
    numbers = [f.adc_time, f.loudness, f.loudness_db, f.bpm, f.tempo_confidence, f.beat_phase, f.beat_time,
               f.beat_period, *f.bands, *f.levels_db, *f.onset_strength]
    assert all(math.isfinite(v) for v in numbers), f
    assert all(0.0 <= b <= 1.0 for b in f.bands), f.bands
    assert 0.0 <= f.loudness <= 1.0 and 0.0 <= f.tempo_confidence <= 1.0
    assert 0.0 <= f.beat_phase < 1.0
    assert f.bpm == 0.0 or config.tempo.bpm_min - 1e-6 <= f.bpm <= config.tempo.bpm_max + 1e-6, f.bpm


@PROPERTY
@given(kind=st.sampled_from(KINDS), rate=st.integers(8000, 192000), seconds=st.floats(0.0005, 1.0),
       level=st.sampled_from([1e-6, 1e-3, 0.1, 1.0, 4.0, 900.0]), hop_s=st.floats(0.002, 0.05),
       bad_fraction=st.sampled_from([0.0, 0.0, 0.001, 0.05]), seed=st.integers(0, 2**31))
def test_any_signal_at_any_rate_and_hop_gives_finite_snapshots_in_range(kind, rate, seconds, level, hop_s,
                                                                        bad_fraction, seed):
    config = AnalysisConfig(hop_s=hop_s)
    x = spoil(make_signal(kind, rate, seconds, level, seed), seed, bad_fraction)
    an = Analyzer(rate, config)
    for i in range(len(x) // an.hop):
        assert_sane(an.process(x[i * an.hop : (i + 1) * an.hop]), config)
    for _ in range(3):  # and it comes back to rest from whatever state that left
        assert_sane(an.process(an.silence(), connected=False), config)


@PROPERTY
@given(kind=st.sampled_from(["noise", "clicks", "square"]), seed=st.integers(0, 2**31),
       rate=st.sampled_from([8000, 11025, 22050, 44100, 48000, 96000, 192000]))
def test_invalid_samples_read_as_silence_and_leave_no_trace(kind, seed, rate):
    """After the damage has left the analysis window, the state is what clean input gives."""
    clean = make_signal(kind, rate, 1.5, 0.5, seed)
    damaged = clean.copy()
    damaged[int(0.2 * rate) : int(0.2 * rate) + 100] = np.nan
    damaged[int(0.4 * rate) : int(0.4 * rate) + 100] = np.inf
    silenced = clean.copy()
    silenced[int(0.2 * rate) : int(0.2 * rate) + 100] = 0.0
    silenced[int(0.4 * rate) : int(0.4 * rate) + 100] = 0.0
    a, b = analyze_array(damaged, rate), analyze_array(silenced, rate)
    assert np.array_equal(a.bands, b.bands) and np.array_equal(a.loudness, b.loudness)
    assert a.bad_samples == 200 and b.bad_samples == 0


@PROPERTY
@given(period_s=st.floats(0.2, 1.2), jitter=st.floats(0.0, 0.3), spikes=st.floats(0.0, 1e6),
       floor=st.sampled_from([0.0, 0.5, 3.0]), hop_s=st.sampled_from([0.0025, 0.01, 0.0227, 0.05]),
       seed=st.integers(0, 2**31), poison=st.booleans())
def test_tempo_tracker_never_fails_on_any_onset_curve(period_s, jitter, spikes, floor, hop_s, seed, poison):
    rng = np.random.default_rng(seed)
    cfg = TempoConfig()
    tracker = TempoTracker(hop_s, cfg, kick_delay_s=0.03)
    n = int(12.0 / hop_s)
    t = np.arange(n) * hop_s
    pulses = (np.abs(((t / period_s) + 0.5) % 1.0 - 0.5) < hop_s / period_s).astype(float)
    curve = floor + 6.0 * pulses + jitter * 6.0 * rng.random(n)
    curve[rng.integers(0, n, 5)] += spikes
    if poison:
        curve[rng.integers(0, n, 5)] = np.nan
    for i in range(n):
        est = tracker.push(float(curve[i]), float(t[i]), kick=float(curve[i] * rng.random()))
        if est is not None:
            assert 60.0 / cfg.bpm_max - 1e-9 <= est.period <= 60.0 / cfg.bpm_min + 1e-9, est
            assert math.isfinite(est.beat_time) and est.beat_time <= t[i] + 1e-9
            assert 0.0 <= est.confidence <= 1.0


@PROPERTY
@given(values=st.lists(st.floats(0.01, 1e4), min_size=1, max_size=12))
def test_the_period_fit_always_keeps_a_group(values):
    v = np.asarray(values)
    keep = consensus(v, 0.015)
    assert keep.any()
    assert np.all(np.abs(v[keep] / v[keep][0] - 1.0) <= 0.0301)  # all within the tolerance of one centre


@PROPERTY
@given(seed=st.integers(0, 2**31), lag=st.floats(30.0, 100.0))
def test_refine_period_is_finite_for_any_correlation(seed, lag):
    r = np.random.default_rng(seed).uniform(-1.0, 1.0, 800)
    period = refine_period(r, lag, 533.0)
    assert math.isfinite(period) and period > 0


@PROPERTY
@given(block=st.lists(st.sampled_from([0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 2e3, -5e4]), min_size=1,
                      max_size=64))
def test_silence_invalid_counts_and_zeroes_exactly_the_bad_values(block):
    x = np.asarray(block, dtype=np.float32)
    bad = ~(np.abs(x) <= MAX_SAMPLE)
    y = x.copy()
    assert silence_invalid(y) == int(bad.sum())
    assert np.all(y[bad] == 0.0) and np.array_equal(y[~bad], x[~bad])


def test_bad_sample_lines_are_rate_limited_with_the_running_total():
    report = BadSampleReport("audio input 'x'", interval_s=10.0)
    assert report.add(0, 0.0) is None
    first = report.add(100, 1.0)
    assert first is not None and "100 invalid sample(s)" in first
    assert report.add(100, 5.0) is None  # within the interval: counted, not said
    later = report.add(7, 11.5)
    assert later is not None and "207 invalid sample(s)" in later


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(rate=st.sampled_from([8000, 22050, 44100, 96000, 192000]), channels=st.integers(1, 8),
       block_frames=st.integers(1, 70000), reads=st.lists(st.integers(1, 9000), min_size=1, max_size=5),
       seed=st.integers(0, 2**31))
def test_streamed_analysis_is_the_same_whatever_the_block_sizes(tmp_path, rate, channels, block_frames, reads, seed):
    rng = np.random.default_rng(seed)
    frames = rng.uniform(-0.5, 0.5, (int(rate * 0.6), channels)).astype(np.float32)
    frames[int(rate * 0.3), :] = np.nan
    path = tmp_path / f"multi-{seed}-{channels}-{rate}.wav"
    sf.write(path, frames, rate, subtype="FLOAT")
    reference = analyze_array(to_mono(np.nan_to_num(frames, nan=0.0)), rate)

    class Uneven(MonoStream):
        """Reads in the drawn sizes, whatever the analysis asks for."""

        def read(self, n: int) -> np.ndarray:
            parts, got = [], 0
            while got < n:
                piece = super().read(min(n - got, reads[len(parts) % len(reads)]))
                if len(piece) == 0:
                    break
                parts.append(piece)
                got += len(piece)
            return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    with open_audio(path, block_frames=block_frames) as reader:
        assert (reader.rate, reader.channels, reader.frames) == (rate, channels, len(frames))
        streamed = analyze_stream(Uneven(reader))
    assert np.array_equal(streamed.bands, reference.bands) and np.array_equal(streamed.times, reference.times)
    assert streamed.bad_samples == channels


def test_a_file_shorter_than_a_hop_analyses_to_nothing_without_error(tmp_path):
    path = tmp_path / "blip.wav"
    sf.write(path, np.full(7, 0.3, np.float32), 44100)
    with open_audio(path) as reader:
        res = analyze_stream(MonoStream(reader))
    assert len(res.times) == 0 and res.final_bpm == 0.0
    out = tmp_path / "blip.json"
    with open(out, "wb") as f:
        res.write_json(f)
    assert json.loads(out.read_text())["frames"] == []


# --- real music at the rates files come in ------------------------------------------------------------


def resample_with_ffmpeg(src: Path, rate: int, out: Path, seconds: float) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed (.ci/run installs it)")
    subprocess.run([ffmpeg, "-v", "error", "-y", "-t", str(seconds), "-i", str(src), "-ar", str(rate), str(out)],
                   check=True, timeout=120)
    return out


@pytest.mark.parametrize("rate", [22050, 44100, 48000, 96000])
@pytest.mark.parametrize("name, bpm", [("house_124bpm.ogg", 124.0), ("funk_96bpm.ogg", 96.0)])
def test_the_recordings_keep_their_tempo_at_every_rate(tmp_path, name, bpm, rate):
    path = resample_with_ffmpeg(FIXTURES / name, rate, tmp_path / f"{name}-{rate}.wav", seconds=10.0)
    with open_audio(path) as reader:
        assert reader.rate == rate
        res = analyze_stream(MonoStream(reader))
    assert res.final_bpm == pytest.approx(bpm, rel=0.02), (name, rate, res.final_bpm)
    assert np.all(np.isfinite(res.bands)) and res.bad_samples == 0


@pytest.mark.parametrize("rate", [22050, 44100, 48000, 96000])
def test_machine_wars_analyses_at_every_rate(tmp_path, rate):
    """Debian's asc-music, machine_wars: at 44.1 kHz it crashed the tempo tracker within 5 s."""
    if not MACHINE_WARS.exists():
        pytest.skip("Debian's asc-music package is not installed (.ci/run installs it)")
    path = resample_with_ffmpeg(MACHINE_WARS, rate, tmp_path / f"machine_wars-{rate}.wav", seconds=20.0)
    with open_audio(path) as reader:
        res = analyze_stream(MonoStream(reader))
    assert len(res.times) >= int(19.9 / res.hop_s)
    assert np.all(np.isfinite(res.bands)) and np.all(np.isfinite(res.bpm))
    # A steady kick near 120 BPM: the tracker settles on it (or its double/half).
    assert min(abs(res.final_bpm / b - 1.0) for b in (60.0, 120.0, 240.0)) < 0.03, res.final_bpm
