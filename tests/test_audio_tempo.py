"""Tempo, beat phase and the beat clock's performer controls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vjgan.audio.config import TempoConfig
from vjgan.audio.demo import click_track, render_groove
from vjgan.audio.features import Features
from vjgan.audio.offline import analyze_array
from vjgan.audio.tempo import MIDI_CLOCK_PPQ, BeatClock, autocorrelation, refine_period

FIXTURES = Path(__file__).parent / "audio_fixtures"
RATE = 48000


def locked_from(result, bpm: float, rel: float) -> float:
    """First time from which the tempo stays within `rel` of `bpm` to the end (inf if never)."""
    ok = np.abs(result.bpm / bpm - 1.0) <= rel
    if not ok[-1]:
        return float("inf")
    bad = np.flatnonzero(~ok)
    return float(result.times[bad[-1] + 1]) if len(bad) else float(result.times[0])


@pytest.mark.parametrize("bpm", [60.0, 90.0, 123.4, 128.0, 140.0, 174.0, 200.0])
def test_click_track_gives_its_bpm_and_beats_within_a_hop(bpm):
    x, clicks = click_track(RATE, bpm, 10.0, start=0.2371)
    res = analyze_array(x, RATE)
    assert res.final_bpm == pytest.approx(bpm, rel=0.01)
    assert locked_from(res, bpm, 0.01) <= 4.0
    late = np.array([b for b in res.beats if b > 4.0])
    assert len(late) >= int((10.0 - 4.0) * bpm / 60.0) - 1
    err = np.array([np.min(np.abs(clicks - b)) for b in late])
    assert np.all(err <= res.hop_s), err
    assert res.confidence[-1] > 0.8


@pytest.mark.parametrize("bpm", [90.0, 128.0, 140.0, 174.0])
def test_groove_locks_within_4_s_at_the_right_octave(bpm):
    x = render_groove(RATE, bpm=bpm, bars=6)
    res = analyze_array(x, RATE)
    assert locked_from(res, bpm, 0.01) <= 4.0, (res.final_bpm, bpm)
    # Beats on the kicks (the groove's beat k starts at k * 60 / bpm).
    grid = np.arange(0, len(x) / RATE, 60.0 / bpm)
    late = np.array([b for b in res.beats if b > 4.0])
    err = np.array([np.min(np.abs(grid - b)) for b in late])
    assert np.all(err < 0.015), err


@pytest.mark.parametrize("name, bpm", [("house_124bpm.ogg", 124.0), ("funk_96bpm.ogg", 96.0)])
def test_recorded_music_gives_its_tempo_within_2_percent(name, bpm):
    x, rate = sf.read(FIXTURES / name, dtype="float32")
    res = analyze_array(x, rate)
    assert res.final_bpm == pytest.approx(bpm, rel=0.02)
    assert locked_from(res, bpm, 0.02) <= 4.0
    # The beats fall on the kicks: within 25 ms of the written beat (the players are humanised).
    grid = np.arange(0, len(x) / rate + 1, 60.0 / bpm)
    late = np.array([b for b in res.beats if b > 5.0])
    err = np.array([np.min(np.abs(grid - b)) for b in late])
    assert np.median(err) < 0.015 and np.all(err < 0.025), err


def test_silence_after_music_keeps_the_beat_running_and_lowers_confidence():
    x, _ = click_track(RATE, 120.0, 6.0, start=0.1)
    x = np.concatenate([x, np.zeros(RATE * 6, dtype=np.float32)])
    res = analyze_array(x, RATE)
    t = res.times
    assert res.bpm[t > 11.5].min() == pytest.approx(120.0, rel=0.01)  # tempo held through the break
    assert res.confidence[t > 11.5].max() < 0.3 * res.confidence[(t > 5) & (t < 6)].min()
    # The phase ramp keeps turning: beats go on in the silence, still on the 120 BPM grid.
    quiet_beats = np.array([b for b in res.beats if b > 7.0])
    assert len(quiet_beats) >= 8
    assert np.allclose(np.diff(quiet_beats), 0.5, atol=0.002)


def test_autocorrelation_and_period_refinement():
    period = 37.3  # hops, not a whole number
    n = 800
    o = np.zeros(n)
    for k in np.arange(5.0, n, period):
        i = int(k)
        frac = k - i
        o[i] += 1 - frac
        if i + 1 < n:
            o[i + 1] += frac
    r = autocorrelation(np.convolve(o, [0.25, 0.5, 0.25], mode="same") - o.mean())
    assert r[0] == pytest.approx(1.0)
    assert refine_period(r, 37.0, n * 2 / 3) == pytest.approx(period, abs=0.05)


# --- the beat clock ------------------------------------------------------------------------------------


def run_clock(clock: BeatClock, start: float, stop: float, dt: float = 0.01) -> list[tuple[float, bool, float]]:
    out = []
    t = start
    while t < stop - 1e-9:
        t += dt
        beat = clock.advance(t)
        out.append((t, beat, clock.phase(t)))
    return out


def test_tap_tempo_sets_bpm_and_phase():
    clock = BeatClock(TempoConfig())
    taps = [10.0 + i * 0.6 for i in range(5)]  # 100 BPM
    run_clock(clock, 9.0, 10.0)
    for tap in taps:
        run_clock(clock, clock._last_now or 9.0, tap)
        clock.tap(tap)
    assert clock.source == "tap"
    assert clock.bpm == pytest.approx(100.0, rel=1e-6)
    assert clock.confidence == 1.0
    ticks = run_clock(clock, taps[-1], taps[-1] + 3.0)
    beats = [t for t, b, _ in ticks if b]
    assert beats[0] == pytest.approx(taps[-1], abs=0.0101)  # the tap is on the beat
    assert np.allclose(np.diff(beats), 0.6, atol=0.011)
    # The ramp: 0 on the beat, 0.5 half way.
    assert clock.phase(clock.last_beat_time + 0.3) == pytest.approx(0.5)


def test_a_pause_starts_a_new_tap_sequence():
    clock = BeatClock(TempoConfig(tap_timeout_s=2.0))
    for t in (0.0, 0.5, 1.0):
        clock.tap(t)
    assert clock.bpm == pytest.approx(120.0)
    for t in (5.0, 5.4, 5.8):  # after a pause: 150 BPM, not a blend
        clock.tap(t)
    assert clock.bpm == pytest.approx(150.0)


def test_double_halve_and_follow_audio():
    clock = BeatClock(TempoConfig())
    clock.audio_estimate(0.5, 0.0, 0.9, 0.1)
    assert clock.bpm == pytest.approx(120.0) and clock.source == "audio"
    clock.double()
    assert clock.bpm == pytest.approx(240.0)
    # A new audio estimate keeps the x2 (the performer asked for it).
    clock.audio_estimate(0.5, 1.0, 0.9, 1.1)
    assert clock.bpm == pytest.approx(240.0)
    clock.halve()
    clock.halve()
    assert clock.bpm == pytest.approx(60.0)
    ticks = run_clock(clock, 1.1, 6.1)
    beats = [t for t, b, _ in ticks if b]
    assert np.allclose(np.diff(beats[1:]), 1.0, atol=0.011)  # (the first interval is the change-over)
    clock.follow_audio()
    assert clock.bpm == pytest.approx(120.0)


def test_resync_makes_now_the_downbeat():
    clock = BeatClock(TempoConfig())
    clock.set_bpm(128.0)
    assert clock.source == "manual"
    run_clock(clock, 0.0, 3.0)
    clock.resync(3.123)
    assert clock.beat_count == 0
    assert clock.advance(3.125) is True  # the resync itself is a beat
    assert clock.phase(3.123 + 60 / 128 / 4) == pytest.approx(0.25)
    ticks = run_clock(clock, 3.125, 6.0)
    beats = [t for t, b, _ in ticks if b]
    assert abs(beats[0] - (3.123 + 60 / 128)) <= 0.0101
    assert clock.beat_count == len(beats)


def test_external_clock_overrides_and_falls_back():
    cfg = TempoConfig(external_timeout_s=0.5)
    clock = BeatClock(cfg)
    clock.audio_estimate(0.5, 0.0, 0.8, 0.05)  # audio says 120
    rng = np.random.default_rng(5)
    bpm = 131.0
    tick = 60.0 / bpm / MIDI_CLOCK_PPQ
    t0 = 1.0
    clock.external_start()
    ticks = t0 + np.arange(24 * 8) * tick + rng.normal(0, 0.0005, 24 * 8)  # 0.5 ms USB jitter
    beats, now = [], 0.05
    for tt in ticks:
        while now + 0.01 <= tt:
            now += 0.01
            if clock.advance(now) and now > t0:
                beats.append(clock.last_beat_time)
        clock.external_tick(float(tt))
    assert clock.source == "external"
    assert clock.confidence == 1.0
    assert clock.bpm == pytest.approx(bpm, rel=0.005)
    # MIDI Start: the first pulse is the downbeat; a beat every 24 pulses after it.
    assert beats[0] == pytest.approx(ticks[0], abs=0.002)
    expected = ticks[::24]
    assert len(beats) >= len(expected) - 1
    assert np.all(np.abs(np.array(beats[: len(expected)]) - expected[: len(beats)]) < 0.01)
    # Audio estimates do not move an external clock.
    clock.audio_estimate(0.5, ticks[-1], 0.9, ticks[-1])
    assert clock.bpm == pytest.approx(bpm, rel=0.005)
    # The clock stops: after the timeout the audio tempo is back.
    clock.advance(ticks[-1] + 0.6)
    assert clock.source == "audio"
    assert clock.bpm == pytest.approx(120.0)


def test_external_stop_returns_to_tap_tempo():
    clock = BeatClock(TempoConfig())
    for t in (0.0, 0.5, 1.0):
        clock.tap(t)
    for i in range(48):
        clock.external_tick(2.0 + i * 60 / 100 / 24)
    assert clock.source == "external" and clock.bpm == pytest.approx(100.0, rel=0.01)
    clock.external_stop()
    assert clock.source == "tap"


def test_features_phase_at_extrapolates_the_ramp():
    f = Features(adc_time=10.0, published_at=10.001, hop_index=1, band_names=("a",), bands=(0.0,), levels_db=(-90.0,),
                 onsets=(False,), onset_strength=(0.0,), loudness=0.0, loudness_db=-90.0, gated=True, bpm=120.0,
                 tempo_confidence=1.0, tempo_source="manual", beat=False, beat_phase=0.2, beat_count=3,
                 beat_time=9.9, beat_period=0.5)
    assert f.phase_at(10.0) == pytest.approx(0.2)
    assert f.phase_at(10.15) == pytest.approx(0.5)
    assert f.phase_at(10.4) == pytest.approx(0.0, abs=1e-9)
    assert f.band("a") == 0.0
    with pytest.raises(KeyError):
        f.band("nope")
