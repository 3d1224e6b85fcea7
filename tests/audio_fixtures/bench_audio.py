"""Benchmarks for docs/benchmarks.md ("Audio analysis"): run by hand, never asserted in tests.

    python3 tests/audio_fixtures/bench_audio.py            # analysis cost per hop (offline; --hop-ms 5)
    python3 tests/audio_fixtures/bench_audio.py --latency  # click ADC time -> first Features with its onset, via JACK
    python3 tests/audio_fixtures/bench_audio.py --tempo    # vjgan's tempo tracker against aubio's (pip install aubio)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # conftest_audio
sys.path.insert(0, str(HERE.parents[1]))  # vjgan

from vjgan.audio.analysis import Analyzer  # noqa: E402
from vjgan.audio.demo import render_groove  # noqa: E402


def cost_per_hop(rate: int = 48000, seconds: float = 30.0, hop_ms: float = 10.0) -> None:
    from vjgan.audio.config import AnalysisConfig

    x = render_groove(rate, 124.0, bars=16)
    an = Analyzer(rate, AnalysisConfig(hop_s=hop_ms / 1000.0))
    h = an.hop
    n = min(len(x) // h, int(seconds / an.dt))
    costs = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        an.process(x[i * h : (i + 1) * h])
        costs[i] = time.perf_counter() - t0
    costs = costs[300:] * 1e3  # after warm-up and once the tempo tracker runs
    print(f"rate {rate} Hz, hop {h} samples ({an.dt * 1e3:.1f} ms), windows {an.n_short}/{an.n_long}, {len(costs)} hops")
    print(f"  per hop: mean {costs.mean():.3f} ms, median {np.median(costs):.3f} ms, p99 {np.percentile(costs, 99):.3f} ms, "
          f"max {costs.max():.3f} ms; tempo-update hops (every {an.tempo.every}): "
          f"{np.mean(costs[(np.arange(len(costs)) + 300 + 1) % an.tempo.every == 0]):.3f} ms")
    print(f"  CPU share of one core at {1 / an.dt:.0f} hops/s: {costs.mean() / (an.dt * 1e3) * 100:.1f}%")


def latency_through_jack(n_clicks: int = 40) -> None:
    import contextlib
    import os
    import shutil
    import subprocess
    import uuid

    import conftest_audio as ca
    from vjgan.audio.capture import DeviceSource
    from vjgan.audio.demo import click_track
    from vjgan.audio.engine import AudioEngine

    name = f"vjgan-bench-{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen([shutil.which("jackd"), "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "480"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    ca._refresh_portaudio()
    rate = 48000
    rng = np.random.default_rng(0)
    # Irregular clicks (0.4-0.6 s apart) land at every position inside the JACK period.
    times = 0.5 + np.cumsum(rng.uniform(0.4, 0.6, n_clicks))
    x = np.zeros(int((times[-1] + 1.0) * rate), dtype=np.float32)
    one, _ = click_track(rate, 60.0, 0.05, start=0.0)
    for t in times:
        a = int(round(t * rate))
        x[a : a + len(one)] += one[: len(x) - a]
    feats = []
    src = DeviceSource("system")
    eng = AudioEngine(src, on_features=feats.append)
    eng.start()
    player = ca.JackPlayer(name, x)
    try:
        player.start(player.vjgan_inputs())
        while not player.done:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        eng.stop()
        player.close()
        with contextlib.suppress(Exception):
            os.environ.pop("JACK_DEFAULT_SERVER")
            ca._refresh_portaudio()
        proc.terminate()
    truth = np.array([player.sample_adc_time(t * rate) for t in times])
    mid = feats[0].band_names.index("mid")
    hits = [f for f in feats if f.onsets[mid]]
    delays, buffer_part, detect, publish = [], [], [], []
    period = player.period / rate
    for tr in truth:
        first = next((f for f in hits if f.adc_time >= tr - 0.005), None)
        if first is None:
            continue
        delays.append(first.published_at - tr)
        detect.append(first.adc_time - tr)
        publish.append(first.published_at - first.adc_time)
        # The click waits in the device buffer until its JACK period ends and the block is delivered.
        into = ((tr - player.sample_adc_time(0)) % period)
        buffer_part.append(period - into)
    d = np.array(delays) * 1e3
    b = np.array(buffer_part) * 1e3
    print(f"JACK dummy 48 kHz, period {player.period} ({period * 1e3:.0f} ms), PortAudio block {src.block_s * 1e3:.0f} ms; "
          f"{len(d)}/{len(truth)} clicks detected")
    print(f"  click ADC -> first Features with its onset: mean {d.mean():.1f} ms, median {np.median(d):.1f}, max {d.max():.1f}")
    print(f"  of which waiting in the device buffer: mean {b.mean():.1f} ms; beyond the buffer: mean {(d - b).mean():.1f} ms, "
          f"max {(d - b).max():.1f} ms")
    print(f"  split: click ADC -> ADC time of the hop that detects it: mean {np.mean(detect) * 1e3:.1f} ms, "
          f"max {np.max(detect) * 1e3:.1f}; that hop's ADC time -> published: mean {np.mean(publish) * 1e3:.1f} ms, "
          f"max {np.max(publish) * 1e3:.1f}")
    print(f"  analysis per hop in the capture thread: mean {eng.stats.analysis_s / eng.stats.hops * 1e3:.3f} ms, "
          f"max {eng.stats.max_analysis_s * 1e3:.2f} ms")


def beat_f_measure(found: np.ndarray, truth: np.ndarray, tolerance: float = 0.07) -> float:
    """F-measure of beats against the true grid, each true beat matched at most once (±70 ms)."""
    if len(found) == 0 or len(truth) == 0:
        return 0.0
    used = np.zeros(len(truth), bool)
    hits = 0
    for b in found:
        i = int(np.argmin(np.abs(truth - b)))
        if not used[i] and abs(truth[i] - b) <= tolerance:
            used[i] = True
            hits += 1
    p, r = hits / len(found), hits / len(truth)
    return 0.0 if hits == 0 else 2 * p * r / (p + r)


def lock_time(times: np.ndarray, bpm: np.ndarray, truth: float, rel: float = 0.02) -> float:
    """From when the tempo stays within `rel` of the truth to the end (inf if it never does)."""
    ok = np.abs(bpm / truth - 1.0) <= rel
    if not ok[-1]:
        return float("inf")
    bad = np.flatnonzero(~ok)
    return float(times[bad[-1] + 1]) if len(bad) else float(times[0])


def ours(x: np.ndarray, rate: int) -> dict:
    an = Analyzer(rate)
    h = an.hop
    push = an.tempo.push
    tracker_s: list[float] = []

    def timed_push(*args, **kw):
        t0 = time.perf_counter()
        out = push(*args, **kw)
        tracker_s.append(time.perf_counter() - t0)
        return out

    an.tempo.push = timed_push  # type: ignore[method-assign]
    n = len(x) // h
    times, bpm, beats, total_s = np.empty(n), np.empty(n), [], []
    for i in range(n):
        t0 = time.perf_counter()
        f = an.process(x[i * h : (i + 1) * h], adc_time=(i + 1) * h / rate)
        total_s.append(time.perf_counter() - t0)
        times[i], bpm[i] = f.adc_time, f.bpm
        if f.beat:
            beats.append(f.beat_time)
    return {"times": times, "bpm": bpm, "beats": np.array(beats), "hop_ms": np.array(tracker_s) * 1e3,
            "analyzer_ms": np.array(total_s) * 1e3, "hop": h}


def aubios(x: np.ndarray, rate: int, hop: int) -> dict:
    import aubio

    window = 1 << (2 * hop - 1).bit_length()  # a power of two, at least two hops (1024 at 44.1 kHz)
    tracker = aubio.tempo("default", window, hop, rate)
    n = len(x) // hop
    times, bpm, beats, cost = np.empty(n), np.empty(n), [], np.empty(n)
    for i in range(n):
        block = np.ascontiguousarray(x[i * hop : (i + 1) * hop], dtype=np.float32)
        t0 = time.perf_counter()
        is_beat = tracker(block)
        cost[i] = time.perf_counter() - t0
        times[i], bpm[i] = (i + 1) * hop / rate, tracker.get_bpm()
        if is_beat[0]:
            beats.append(tracker.get_last_s())
    return {"times": times, "bpm": bpm, "beats": np.array(beats), "hop_ms": cost * 1e3}


def tempo_against_aubio() -> None:
    """Accuracy (tempo, lock time, beat F-measure after 5 s) and CPU per hop on the recordings."""
    import soundfile as sf

    cases = [("house_124bpm.ogg", 124.0), ("funk_96bpm.ogg", 96.0)]
    for name, truth_bpm in cases:
        x, rate = sf.read(HERE / name, dtype="float32")
        grid = np.arange(0.0, len(x) / rate, 60.0 / truth_bpm)  # the MIDI's beats (humanised by a few ms)
        grid = grid[grid >= 5.0]
        a = ours(x, rate)
        b = aubios(x, rate, a["hop"])
        print(f"{name} ({truth_bpm:g} BPM, {len(x) / rate:.0f} s at {rate} Hz, hop {a['hop']} samples):")
        for label, r in (("vjgan", a), ("aubio", b)):
            late = r["beats"][r["beats"] >= 5.0]
            print(f"  {label}: final {r['bpm'][-1]:6.2f} BPM, within 2% from {lock_time(r['times'], r['bpm'], truth_bpm):5.2f} s, "
                  f"beat F-measure (±70 ms, after 5 s) {beat_f_measure(late, grid):.2f}; "
                  f"tracker per hop mean {r['hop_ms'].mean():.3f} ms, p99 {np.percentile(r['hop_ms'], 99):.3f} ms")
        print(f"  (vjgan's whole analyzer, bands and onsets included: mean {a['analyzer_ms'].mean():.3f} ms per hop)")
    machine_wars = Path("/usr/share/games/asc/music/machine_wars.mp3")  # Debian's asc-music
    if machine_wars.exists() and shutil.which("ffmpeg"):
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "machine_wars.wav"
            subprocess.run(["ffmpeg", "-v", "error", "-t", "120", "-i", str(machine_wars), "-ar", "44100", "-ac", "1",
                            str(wav)], check=True)
            x, rate = sf.read(wav, dtype="float32")
        a = ours(x, rate)
        b = aubios(x, rate, a["hop"])
        print(f"machine_wars (asc-music; tempo not published: a steady kick), first 120 s at {rate} Hz via ffmpeg:")
        for label, r in (("vjgan", a), ("aubio", b)):
            settled = r["bpm"][r["times"] >= 10.0]
            print(f"  {label}: median {np.median(settled):7.2f} BPM after 10 s (range {settled.min():.2f}-{settled.max():.2f}), "
                  f"{len(r['beats'])} beats; tracker per hop mean {r['hop_ms'].mean():.3f} ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--tempo", action="store_true")
    ap.add_argument("--hop-ms", type=float, default=10.0, help="analysis hop for the cost per hop (default 10)")
    a = ap.parse_args()
    if a.latency:
        latency_through_jack()
    elif a.tempo:
        tempo_against_aubio()
    else:
        cost_per_hop(hop_ms=a.hop_ms)
