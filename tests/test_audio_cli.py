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
