"""`analyze` and `devices` from the command line, run as a user would (a subprocess)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vjgan.audio.cli import add_analyze_parser, format_meters, short_names
from vjgan.audio.features import rest_features

FIXTURES = Path(__file__).parent / "audio_fixtures"
ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "vjgan", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=str(ROOT))


def assert_one_clear_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("vjgan: ")
    for n in needles:
        assert n in lines[0], lines[0]


def test_analyze_writes_the_json_document(tmp_path):
    out = tmp_path / "house.json"
    r = cli("analyze", str(FIXTURES / "house_124bpm.ogg"), "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "124." in r.stdout
    doc = json.loads(out.read_text())
    assert isinstance(doc["bpm"], float) and doc["bpm"] == pytest.approx(124.0, rel=0.02)
    assert [b["name"] for b in doc["bands"]] == ["sub", "bass", "lowmid", "mid", "highmid", "high"]
    assert doc["bands"][0]["low_hz"] == 20.0 and doc["bands"][0]["high_hz"] == 60.0
    beats = np.array(doc["beats"])
    assert len(beats) > 30 and np.all(np.diff(beats) > 0)
    assert np.median(np.diff(beats)) == pytest.approx(60 / 124, rel=0.01)
    assert set(doc["onsets"]) == {b["name"] for b in doc["bands"]}
    assert len(doc["onsets"]["sub"]) >= 40  # a kick on every beat
    frames = doc["frames"]
    assert len(frames) == int(22.0 / 0.01)
    f = frames[500]
    assert set(f) >= {"time", "bands", "loudness", "bpm"}
    assert f["time"] == pytest.approx(5.01, abs=0.011) and len(f["bands"]) == 6
    assert frames[0]["bpm"] == 0 and frames[-1]["bpm"] == pytest.approx(doc["bpm"])


def test_analyze_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "funk.png"
    r = cli("analyze", str(FIXTURES / "funk_96bpm.ogg"), "--plot", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".funk.png*"))  # the temp file was renamed, not left behind


def test_analyze_mp3_and_channel(tmp_path):
    x, rate = sf.read(FIXTURES / "funk_96bpm.ogg", dtype="float32")
    stereo = np.stack([np.zeros_like(x), x], axis=1)  # the music only on the right channel
    path = tmp_path / "funk.mp3"
    sf.write(path, stereo, rate, format="MP3")
    r = cli("analyze", str(path), "--channel", "2")
    assert r.returncode == 0, r.stderr
    assert "tempo: 96." in r.stdout or "tempo: 95.9" in r.stdout, r.stdout
    r = cli("analyze", str(path), "--channel", "1")
    assert "no steady beat found" in r.stdout


@pytest.mark.parametrize(
    "args, needles",
    [
        (["analyze", "/no/such/track.flac"], ["does not exist"]),
        (["analyze", "__JUNK__"], ["not a supported or intact audio file"]),
        (["analyze", "__OK__", "--json", "/no/such/folder/out.json"], ["does not exist"]),
        (["analyze", "__OK__", "--channel", "3"], ["channel 3"]),
        (["analyze", "--audio", "no-such-interface-xyz", "--duration", "1"], ["no-such-interface-xyz"]),
        (["analyze", "--audio-backend", "pyaudio", "--audio", "no-such-interface-xyz", "--duration", "1"], ["no-such-interface-xyz"]),
        (["analyze", "--demo", "--json", "x.json"], ["--json"]),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, needles):
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\xff\xfb" + os.urandom(4000))
    ok = tmp_path / "ok.wav"
    sf.write(ok, np.zeros(48000, dtype=np.float32), 48000)
    args = [str(junk) if a == "__JUNK__" else str(ok) if a == "__OK__" else a for a in args]
    r = cli(*args)
    if "pyaudio" in args and "not installed" in r.stderr:
        needles = ["pip install"]
    assert_one_clear_error(r, *needles)


def test_devices_lists_audio_inputs():
    r = cli("devices")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "Audio inputs:"
    assert not r.stderr.strip(), r.stderr  # no raw ALSA, JACK or PortAudio lines


def damaged_groove(path: Path) -> Path:
    """A float WAV of the demo groove with 100 NaN samples at 2 s and 100 infinite ones at 5 s."""
    from vjgan.audio.demo import render_groove

    x = render_groove(48000, 124.0, bars=4)
    x[2 * 48000 : 2 * 48000 + 100] = np.nan
    x[5 * 48000 : 5 * 48000 + 100] = np.inf
    sf.write(path, x, 48000, subtype="FLOAT")
    return path


def strict_json(text: str):
    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_analyze_writes_strict_json_for_a_file_with_nan_and_inf(tmp_path):
    out = tmp_path / "damaged.json"
    r = cli("analyze", str(damaged_groove(tmp_path / "damaged.wav")), "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "damaged.wav: 200 invalid sample(s) (NaN, infinity or beyond ±1000) so far, treated as silence" in r.stdout
    doc = strict_json(out.read_text())
    assert doc["bad_samples"] == 200
    assert doc["bpm"] == pytest.approx(124.0, rel=0.02)  # the tempo survives the damage
    assert all(0.0 <= v <= 1.0 for f in doc["frames"] for v in f["bands"])


def test_plot_without_matplotlib_writes_the_json_then_says_so(tmp_path):
    out, png = tmp_path / "funk.json", tmp_path / "funk.png"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # matplotlib made unimportable, as on an install without the `plot` extra.
    code = "import sys; sys.modules['matplotlib'] = None; from vjgan.cli import main; sys.exit(main(sys.argv[1:]))"
    r = subprocess.run([sys.executable, "-c", code, "analyze", str(FIXTURES / "funk_96bpm.ogg"), "--json", str(out),
                        "--plot", str(png), "-q"], capture_output=True, text=True, timeout=120, env=env, cwd=str(ROOT))
    assert_one_clear_error(r, "--plot needs matplotlib: pip install 'vjgan[plot]' (the JSON was written)")
    assert strict_json(out.read_text())["bpm"] == pytest.approx(96.0, rel=0.02)
    assert not png.exists()


def test_analyze_progress_line():
    from vjgan.audio.cli import format_analyze_progress

    line = format_analyze_progress(3600.0, 10800.0, 60.0)
    assert line == "analyse [########----------------]  1:00:00 of 3:00:00 (33%)  60x real time, 2:00 left"
    assert "#" not in format_analyze_progress(0.0, 10.0, 0.0, bar=False)
    # A container whose declared length is short never shows more than 100%.
    assert "(100%)" in format_analyze_progress(12.0, 10.0, 1.0)


@pytest.mark.slow
def test_a_three_hour_recording_is_analysed_in_bounded_memory(tmp_path):
    """3 hours at 8 kHz, written a block at a time; `vjgan analyze --json` must stay under 500 MB."""
    from vjgan.audio.demo import render_groove

    path = tmp_path / "set.wav"
    block = (0.5 * render_groove(8000, 124.0, bars=16)).astype(np.float32)  # ~31 s of groove
    total = 3 * 3600 * 8000
    with sf.SoundFile(path, "w", 8000, 1, subtype="PCM_16") as f:
        written = 0
        while written < total:
            piece = block[: total - written]
            f.write(piece)
            written += len(piece)
    out = tmp_path / "set.json"
    # Measured by a parent of its own, so only this command's peak counts.
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "vjgan", "analyze", str(path), "--json",
                        str(out)], capture_output=True, text=True, timeout=3600, env=env, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr
    peak_mb = int(r.stdout.splitlines()[-1]) / 1024  # Linux reports kilobytes
    assert peak_mb < 500, f"peak resident memory {peak_mb:.0f} MB"
    assert "tempo: 124." in r.stdout or "tempo: 123.9" in r.stdout, r.stdout
    assert "of 3:00:00" in r.stderr  # the progress line (a plain line every few seconds in a log)
    with open(out, "rb") as f:
        assert f.read(8) == b'{"bpm":1'
        f.seek(-200, os.SEEK_END)
        tail = f.read().decode()
    assert tail.endswith("]}") and '"time":10800.0' in tail


def test_no_input_device_plays_the_demo_after_one_line():
    # A machine with no sound card and no audio server (CI): hide any servers of this session.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JACK_", "PULSE_"))}
    env.update(JACK_NO_START_SERVER="1", PULSE_SERVER="unix:/nonexistent/vjgan-no-pulse")
    probe = cli("devices", env=env)
    if "(none found" not in probe.stdout:
        pytest.skip("this machine has audio inputs, so the no-device path cannot be shown here")
    r = cli("analyze", "--duration", "1.5", env=env)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines == ["vjgan: no audio input device found; playing the demo groove instead"]
    assert "listening to demo groove" in r.stdout
    meters = [line for line in r.stdout.splitlines() if "BPM" in line]
    assert meters and "loud" in meters[-1]


def test_live_file_playback_prints_meters(tmp_path):
    from vjgan.audio.demo import render_groove

    path = tmp_path / "groove.wav"
    sf.write(path, render_groove(48000, 124.0, bars=3), 48000)
    r = cli("analyze", str(path), "--live", "--duration", "4.5")
    assert r.returncode == 0, r.stderr
    meters = [line for line in r.stdout.splitlines() if "BPM" in line]
    assert len(meters) >= 6  # a line every 0.5 s when not on a terminal
    assert "124." in meters[-1] or "123.9" in meters[-1]


def test_parsers_plug_into_any_cli():
    parser = argparse.ArgumentParser(prog="vjgan")
    sub = parser.add_subparsers(dest="command", required=True)
    add_analyze_parser(sub)
    args = parser.parse_args(["analyze", "song.wav", "--json", "o.json", "--channel", "2", "--gain", "6"])
    assert args.func.__name__ == "run_analyze" and args.file == "song.wav" and args.gain == 6.0


def test_meter_line():
    names = ("sub", "bass", "lowmid", "mid", "highmid", "high")
    assert short_names(names) == ["sub ", "bass", "lowm", "mid ", "hmid", "high"]
    line = format_meters(rest_features(names))
    assert "--- BPM" in line and "hmid" in line
