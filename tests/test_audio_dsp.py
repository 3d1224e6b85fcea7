"""Pure DSP on synthetic signals: bands, gain control, gate, envelopes, onsets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vjgan.audio.analysis import (
    Analyzer,
    band_matrix,
    follow,
    gate_gain,
    mask_threshold_db,
    onset_decision,
    peak_follow_db,
    power_scale,
    power_spectrum,
    smoothing_coef,
)
from vjgan.audio.config import DEFAULT_BANDS, AnalysisConfig, Band, TempoConfig
from vjgan.audio.demo import click_track
from vjgan.audio.errors import AudioConfigError
from vjgan.audio.offline import analyze_array

RATE = 48000


def sine(freq: float, seconds: float, amp: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def run(x: np.ndarray, rate: int = RATE, config: AnalysisConfig | None = None):
    return analyze_array(x, rate, config)


# --- building blocks ---------------------------------------------------------------------------------


def test_smoothing_coefficient_composes_over_steps():
    # n steps of dt must equal one step of n*dt: that is what makes followers hop-independent.
    one = smoothing_coef(0.01, 0.1)
    assert one == pytest.approx(1 - math.exp(-0.1))
    remaining = (1 - smoothing_coef(0.005, 0.1)) ** 2
    assert 1 - remaining == pytest.approx(one)
    assert smoothing_coef(0.01, 0.0) == 1.0


def test_follow_rises_with_attack_and_falls_with_release():
    prev = np.array([0.0, 1.0])
    target = np.array([1.0, 0.0])
    out = follow(prev, target, 0.01, np.array([0.01, 0.01]), np.array([0.1, 0.1]))
    assert out[0] == pytest.approx(1 - math.exp(-1))  # attack tau = dt
    assert out[1] == pytest.approx(math.exp(-0.1))  # release tau = 10 dt


def test_band_matrix_partitions_the_spectrum():
    edges = np.array([[20, 60], [60, 250], [250, 500]], dtype=float)
    w = band_matrix(edges, 4096, RATE)
    df = RATE / 4096
    # Every bin inside 20..500 Hz is shared out completely, none counted twice.
    inside = (np.arange(w.shape[1]) * df > 20 + df) & (np.arange(w.shape[1]) * df < 500 - df)
    assert np.allclose(w.sum(axis=0)[inside], 1.0)
    assert np.all(w.sum(axis=0) <= 1.0 + 1e-12)


def test_power_spectrum_reads_a_full_scale_sine_at_minus_3_dbfs():
    n = 4096
    win = np.hanning(n + 2)[1:-1]
    x = np.sin(2 * np.pi * 1000.0 * np.arange(n) / RATE)
    p = power_spectrum(x, win, power_scale(win))
    assert 10 * np.log10(p.sum()) == pytest.approx(-3.01, abs=0.1)


def test_peak_follower_jumps_up_and_decays_in_db_per_second():
    peak = np.array([-20.0])
    up = peak_follow_db(peak, np.array([-6.0]), 0.01, 4.0, -40.0)
    assert up[0] == -6.0
    down = peak_follow_db(up, np.array([-80.0]), 1.0, 4.0, -40.0)
    assert down[0] == pytest.approx(-6.0 - 20 / math.log(10) / 4.0)  # amplitude * exp(-1/4)
    floor = peak_follow_db(np.array([-39.0]), np.array([-90.0]), 10.0, 4.0, -40.0)
    assert floor[0] == -40.0


def test_gate_and_masking_threshold():
    levels = np.array([-10.0, -45.0, -70.0])
    thr = mask_threshold_db(levels, gate_db=-60.0, mask_db=24.0)
    assert thr.tolist() == [-60.0, -10.0 - 24, max(-60.0, -45.0 - 24)]
    g = gate_gain(levels, thr, 6.0)
    assert g[0] == 1.0 and g[1] == 0.0 and g[2] == 0.0


def test_onset_decision_needs_a_rising_edge_and_the_refractory_time():
    flux = np.array([5.0, 5.0, 5.0])
    thr = np.array([1.0, 1.0, 1.0])
    was_above = np.array([False, True, False])
    since = np.array([1.0, 1.0, 0.05])
    refractory = np.array([0.1, 0.1, 0.1])
    onsets, above = onset_decision(flux, thr, was_above, since, refractory, np.array([True, True, True]))
    assert onsets.tolist() == [True, False, False]
    assert above.all()


# --- bands -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("band_index", range(len(DEFAULT_BANDS)))
def test_a_sine_at_a_band_centre_dominates_its_neighbours_by_12_db(band_index):
    band = DEFAULT_BANDS[band_index]
    res = run(sine(band.centre_hz, 1.5))
    levels = res.levels_db[-20:].mean(axis=0)
    env = res.bands[-20:].mean(axis=0)
    for j in (band_index - 1, band_index + 1):
        if 0 <= j < len(DEFAULT_BANDS):
            assert levels[band_index] - levels[j] >= 12.0, (band.name, DEFAULT_BANDS[j].name, levels)
            # After automatic gain too: the neighbour is not pumped up to match (leakage stays dark).
            assert env[j] <= env[band_index] * 10 ** (-12 / 20), (band.name, DEFAULT_BANDS[j].name, env)
    assert env[band_index] > 0.8


def test_a_40_hz_sine_goes_to_sub_and_nowhere_else():
    res = run(sine(40.0, 2.0))
    env = res.bands[-20:].mean(axis=0)
    names = list(res.band_names)
    assert env[names.index("sub")] > 0.8
    others = [v for n, v in zip(names, env) if n != "sub"]
    assert max(others) < 0.1, dict(zip(names, env))


@pytest.mark.parametrize("rate", [44100, 48000, 96000])
def test_bands_work_at_any_native_rate(rate):
    res = run(sine(100.0, 1.0, rate=rate), rate=rate)
    env = res.bands[-10:].mean(axis=0)
    assert int(np.argmax(env)) == list(res.band_names).index("bass")
    assert res.hop_s == pytest.approx(round(rate * 0.01) / rate)


def test_silence_stays_below_the_gate():
    res = run(np.zeros(RATE * 2, dtype=np.float32))
    assert np.all(res.bands == 0.0)
    assert np.all(res.loudness == 0.0)
    assert all(len(v) == 0 for v in res.onsets.values())


def test_hiss_between_songs_stays_dark():
    rng = np.random.default_rng(0)
    hiss = (10 ** (-70 / 20) * rng.standard_normal(RATE * 3)).astype(np.float32)  # -70 dBFS noise
    res = run(hiss)
    assert res.bands[50:].max() < 0.05
    assert res.loudness[50:].max() < 0.05
    assert all(len(v) == 0 for v in res.onsets.values())
    assert res.final_bpm == 0.0


def test_manual_gain_lifts_a_quiet_input_over_the_gate():
    quiet = sine(1000.0, 1.0, amp=10 ** (-66 / 20))  # a band level of about -69 dBFS
    mid = DEFAULT_BANDS.index(next(b for b in DEFAULT_BANDS if b.name == "mid"))
    assert run(quiet).bands[-10:, mid].max() == 0.0
    lifted = run(quiet, config=AnalysisConfig().with_gain(30.0))
    assert lifted.bands[-10:, mid].mean() > 0.3


def test_automatic_gain_brings_a_quiet_song_up_after_a_loud_one():
    loud = sine(1000.0, 2.0, amp=0.8)
    quiet = sine(1000.0, 12.0, amp=0.05)  # 24 dB down, well above the gate
    res = run(np.concatenate([loud, quiet]))
    mid = list(res.band_names).index("mid")
    t = res.times
    just_after = res.bands[(t > 2.7) & (t < 2.9), mid].mean()  # once the loud song's release is over
    later = res.bands[t > 12.0, mid].mean()
    assert just_after < 0.15  # the loud song set the reference
    assert later > 0.8  # the follower decayed (tau 4 s) and the quiet song fills the range again


def test_envelope_attack_and_release_follow_their_time_constants():
    x = np.concatenate([np.zeros(RATE), sine(1000.0, 1.0), np.zeros(RATE)])
    res = run(x)
    mid = list(res.band_names).index("mid")
    band = next(b for b in DEFAULT_BANDS if b.name == "mid")
    t, e = res.times, res.bands[:, mid]
    on = t[np.argmax(e > 0.5)]
    assert 1.0 < on < 1.0 + 0.03  # up within a short window and a few attack constants
    # Release: from ~1 it falls as exp(-t/release) once the window has left the tone.
    after = (t > 2.0 + 0.05) & (t < 2.0 + 0.05 + 2 * band.release_s)
    ts, es = t[after], e[after]
    slope = np.polyfit(ts, np.log(es), 1)[0]
    assert slope == pytest.approx(-1 / band.release_s, rel=0.15)


def test_envelopes_do_not_depend_on_the_hop_size():
    # Music-like level changes in every band (tone bursts with 50 ms fades over a -45 dBFS noise
    # floor, a tremolo on a high tone). The follower coefficients come from dt, so 5 ms and 10 ms
    # hops agree; only the few hops where a level crosses the gate within a hop differ a little.
    rng = np.random.default_rng(3)
    t = np.arange(RATE * 3) / RATE
    x = 10 ** (-45 / 20) * np.random.default_rng(9).standard_normal(len(t))
    for start in np.arange(0.2, 2.8, 0.37):
        f = rng.choice([45.0, 150.0, 400.0, 1200.0, 3500.0])
        ramp = np.clip(np.minimum(t - start, start + 0.25 - t) / 0.05, 0.0, 1.0)
        x += 0.4 * np.sin(np.pi / 2 * ramp) ** 2 * np.sin(2 * np.pi * f * t)
    x += 0.2 * (0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t)) * np.sin(2 * np.pi * 8000.0 * t)
    x = x.astype(np.float32)
    r10 = run(x, config=AnalysisConfig(hop_s=0.010))
    r5 = run(x, config=AnalysisConfig(hop_s=0.005))
    assert r5.hop_s == pytest.approx(r10.hop_s / 2)
    # Compare at the 10 ms hop times (every second 5 ms hop ends at the same sample).
    diff = np.abs(r5.bands[1::2][: len(r10.bands)] - r10.bands)
    assert diff.mean() < 0.01
    assert np.percentile(diff, 99) < 0.05
    assert np.abs(r5.loudness[1::2][: len(r10.loudness)] - r10.loudness).mean() < 0.01
    # A follower that ignored dt (same coefficient per hop = half the time constants at 5 ms)
    # is ten times further off: the check above can tell.
    wrong = AnalysisConfig(hop_s=0.005, bands=tuple(
        Band(b.name, b.low_hz, b.high_hz, attack_s=b.attack_s / 2, release_s=b.release_s / 2) for b in DEFAULT_BANDS))
    assert np.abs(run(x, config=wrong).bands[1::2][: len(r10.bands)] - r10.bands).mean() > 0.03


def test_onsets_do_not_depend_on_the_hop_size():
    x, clicks = click_track(RATE, 140.0, 4.0, start=0.2)
    r10 = run(x, config=AnalysisConfig(hop_s=0.010))
    r5 = run(x, config=AnalysisConfig(hop_s=0.005))
    for name in ("mid", "highmid"):
        a, b = np.array(r10.onsets[name]), np.array(r5.onsets[name])
        assert len(a) == len(b) == len(clicks), name
        assert np.abs(a - b).max() <= 0.0101, name


def test_tempo_locks_the_same_at_5_ms_hops():
    """`vjgan live --hop-ms 5` (the low-latency option): the tempo tracker's lags are in hops, so
    it must find the same tempo from an onset envelope sampled twice as often."""
    x, _ = click_track(RATE, 124.0, 10.0, start=0.2)
    r10 = run(x, config=AnalysisConfig(hop_s=0.010))
    r5 = run(x, config=AnalysisConfig(hop_s=0.005))
    assert r10.final_bpm == pytest.approx(124.0, abs=1.0)
    assert r5.final_bpm == pytest.approx(124.0, abs=1.0)


# --- onsets ------------------------------------------------------------------------------------------


def test_onsets_land_on_the_clicks_within_a_hop_and_window():
    x, clicks = click_track(RATE, 100.0, 6.0, start=0.3)
    res = run(x)
    ons = np.array(res.onsets["mid"])
    assert len(ons) == len(clicks)
    delay = ons - clicks
    assert np.all(delay >= 0.0) and np.all(delay <= 0.021), delay


def test_refractory_time_merges_a_flam_but_keeps_16th_notes():
    # A flam (two hits 20 ms apart) is one onset; 16th notes at 150 BPM (100 ms) are all kept.
    flam = np.zeros(RATE * 2, dtype=np.float32)
    for start in (0.5, 0.52, 1.2, 1.22):
        a, b = click_track(RATE, 60, 0.2, start=0.0)[0], int(start * RATE)
        flam[b : b + len(a)] += a[: len(flam) - b]
    assert len(run(flam).onsets["mid"]) == 2
    sixteenths, clicks = click_track(RATE, 600.0, 3.0, start=0.2)  # one click per 100 ms
    assert len(run(sixteenths).onsets["high"]) >= len(clicks) - 1


def test_per_band_onsets_separate_kick_from_hat():
    from vjgan.audio.demo import _kick

    x = np.zeros(RATE * 3, dtype=np.float32)
    k = _kick(RATE)
    kicks = [0.5, 1.5, 2.5]
    for s in kicks:
        a = int(s * RATE)
        x[a : a + len(k)] += k[: len(x) - a]
    rng = np.random.default_rng(1)
    hats = [1.0, 2.0]
    for s in hats:
        a = int(s * RATE)
        burst = rng.standard_normal(960) * np.exp(-np.arange(960) / 100)
        hp = np.diff(np.concatenate([[0], burst]))  # bright
        x[a : a + 960] += (0.3 * hp).astype(np.float32)
    res = run(x)
    sub = np.array(res.onsets["sub"])
    high = np.array(res.onsets["high"])
    assert [round(v) for v in sub - 0.01] == [round(v) for v in kicks] or len(sub) == len(kicks)
    assert all(np.min(np.abs(sub - s)) < 0.03 for s in kicks)
    assert all(np.min(np.abs(sub - s)) > 0.2 for s in hats)
    assert all(np.min(np.abs(high - s)) < 0.03 for s in hats)


# --- configuration -----------------------------------------------------------------------------


def test_config_round_trips_through_plain_tables():
    cfg = AnalysisConfig(bands=(Band("low", 30, 120), Band("top", 4000, 12000, refractory_s=0.04)),
                         tempo=TempoConfig(bpm_min=70, bpm_max=180, prior_bpm=120))
    again = AnalysisConfig.from_dict(cfg.to_dict())
    assert again == cfg


@pytest.mark.parametrize(
    "data, message",
    [
        ({"bands": [{"name": "x", "low_hz": 200, "high_hz": 100}]}, "low_hz < high_hz"),
        ({"bands": [{"name": "a", "low_hz": 20, "high_hz": 60}, {"name": "a", "low_hz": 60, "high_hz": 90}]}, "unique"),
        ({"hop_s": 1.0}, "hop_s"),
        ({"gate_db": "loud"}, "gate_db must be a number"),
        ({"tempo": {"bpm_min": 150, "bpm_max": 160}}, "octave"),
        ({"colour": 3}, "unknown audio setting"),
        ({"bands": [{"low_hz": 20, "high_hz": 60}]}, "needs a name"),
    ],
)
def test_bad_settings_name_the_field(data, message):
    with pytest.raises(AudioConfigError, match=message):
        AnalysisConfig.from_dict(data)


def test_custom_bands_from_a_preset_are_analysed():
    cfg = AnalysisConfig(bands=(Band("kick", 30, 100), Band("snare", 150, 400), Band("air", 8000, 20000)))
    res = run(sine(250.0, 1.0), config=cfg)
    assert res.band_names == ("kick", "snare", "air")
    assert int(np.argmax(res.bands[-10:].mean(axis=0))) == 1


def test_analyzer_rejects_wrong_hop_length():
    an = Analyzer(RATE)
    with pytest.raises(ValueError, match="hop"):
        an.process(np.zeros(an.hop + 1, dtype=np.float32))


# --- the analyzer runs with every value the preset rules admit (vjgan.validation) ---------------


def _admitted_limits():
    import dataclasses

    from vjgan.validation import NUMBER

    for cls, where in ((AnalysisConfig, "audio"), (TempoConfig, "tempo"), (Band, "band")):
        for f in dataclasses.fields(cls):
            rule = f.metadata.get(NUMBER)
            if rule is None:
                continue
            if rule.low is not None:
                yield where, f.name, math.nextafter(rule.low, math.inf) if rule.low_open else rule.low
            if rule.high is not None:
                yield where, f.name, math.nextafter(rule.high, -math.inf) if rule.high_open else rule.high


@pytest.mark.parametrize("where,name,value", list(_admitted_limits()))
def test_analyzer_runs_at_every_admitted_limit(where: str, name: str, value: float) -> None:
    try:
        if where == "audio":
            cfg = AnalysisConfig.from_dict({name: value})
        elif where == "tempo":
            cfg = AnalysisConfig.from_dict({"tempo": {name: value}})
        else:
            band = {"name": "wide", "low_hz": 40.0, "high_hz": 12000.0, name: value}
            cfg = AnalysisConfig.from_dict({"bands": [band, {"name": "low", "low_hz": 20.0, "high_hz": 200.0}]})
    except AudioConfigError:
        pytest.skip("refused with the other fields' defaults (a check between fields): not admitted")
    clicks, _ = click_track(RATE, 120.0, 2.0)
    noise = np.random.default_rng(0).standard_normal(len(clicks)).astype(np.float32) * 0.01
    res = run(clicks + noise, config=cfg)
    for values in (res.bands, res.levels_db, res.loudness, res.bpm, res.confidence, res.beat_phase):
        assert np.all(np.isfinite(values))
