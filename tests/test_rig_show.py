"""The issue's "done when", with real peers: `vjgan live --demo --osc-in 9000 --osc-out
127.0.0.1:9001 --ndi vjgan --record show.mp4` plays, takes OSC, sends features, is received over
NDI and leaves a playable recording with sound. The show and its peers run in a network namespace
with only loopback (NDI announces itself by multicast: nothing may leave the machine), which
needs root (CI runs as root); tests/rig_peers.py plays the peers there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_live import MODEL, show_env
from xvfb_support import xvfb  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.slow
def test_the_rig_command_plays_takes_osc_sends_features_is_received_over_ndi_and_records(xvfb, tmp_path: Path) -> None:  # noqa: F811
    pytest.importorskip("pythonosc", reason="the osc extra")
    pytest.importorskip("NDIlib", reason="the ndi extra")
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ffprobe") is None:
        pytest.skip("needs root for a network namespace (unshare -n), and ffprobe")
    work = tmp_path / "show"
    work.mkdir()
    (work / "show.mp4").write_bytes(b"an earlier take")  # must survive: the take goes to show-2.mp4
    report = tmp_path / "peers.json"
    proc = subprocess.run(["unshare", "-n", sys.executable, str(ROOT / "tests" / "rig_peers.py"), str(report),
                           str(work), str(MODEL)], env=show_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert report.is_file(), proc.stderr[-3000:]
    r = json.loads(report.read_text())
    err = r["stderr"]
    assert r["returncode"] == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]

    # OSC in: parameters set and echoed, queries answered, actions fired, a timed bundle held.
    assert all(r["steps"].values()), (r["steps"], err[-2000:])
    assert r["params"][0] == "/vjgan/params" and {"master", "blackout", "freeze"} <= set(r["params"][1:])
    assert r["master_query"][0] == "/vjgan/param/master" and r["master_query"][1] == pytest.approx(0.25)
    echoes = r["master_echoes"]
    assert echoes.index(0.5) < echoes.index(0.75), echoes  # the plain message landed before the timed one
    # The flood: the show answered after it, and said so in a few lines, not two hundred.
    assert r["after_flood"] == ["/vjgan/preset", "default"]
    refusals = [line for line in err.splitlines() if "/vjgan/nowhere" in line or "/vjgan/param/master" in line]
    assert 1 <= len(refusals) <= 4, refusals

    # OSC out: the feature stream, every hop (a gap now and then on a loaded machine, not a pattern).
    hops = r["hops"]
    assert len(hops) > 10
    gaps = [b - a for a, b in zip(hops, hops[1:])]
    assert sorted(gaps)[len(gaps) // 2] == 1 and min(gaps) >= 1, gaps
    assert {"/vjgan/band/bass", "/vjgan/beat", "/vjgan/bpm", "/vjgan/loudness", "/vjgan/clock"} <= set(r["addresses"])
    assert r["beats"] and all(len(b) == 2 and 0.0 <= b[1] < 1.0 for b in r["beats"])

    # NDI: pictures at the output's size, not black, and the demo's sound on two channels.
    ndi = r["ndi"]
    assert ndi["video"] >= 10 and ndi["audio"] >= 10, ndi
    assert {tuple(s) for s in ndi["sizes"]} == {(320, 180)}
    assert max(ndi["video_means"]) > 10
    assert ndi["audio_format"] == [48000, 2] and max(ndi["audio_rms"]) > 0.01

    # The recording: next to the earlier take, never over it; video and sound, each as long as the take.
    assert (work / "show.mp4").read_bytes() == b"an earlier take"
    take = work / "show-2.mp4"
    assert take.is_file(), sorted(p.name for p in work.iterdir())
    said = re.search(r"recorded ([0-9.]+) s \((\d+) pictures, (\d+) dropped\) to .*show-2\.mp4", err)
    assert said, err[-2000:]
    seconds = float(said.group(1))
    assert seconds >= 9.0  # at least the ten seconds of show, less the first picture's wait
    probe = ffprobe(take)
    video = [s for s in probe["streams"] if s["codec_type"] == "video"]
    audio = [s for s in probe["streams"] if s["codec_type"] == "audio"]
    assert len(video) == 1 and len(audio) == 1
    assert video[0]["codec_name"] == "h264" and audio[0]["codec_name"] == "aac"
    frame = 1.0 / 30
    assert float(probe["format"]["duration"]) == pytest.approx(seconds, abs=frame)
    assert float(audio[0]["duration"]) == pytest.approx(float(video[0]["duration"]), abs=frame)
    assert not list(work.glob(".show*partial*"))  # finished and renamed, nothing left half-made
