"""Ableton Link with a real peer: vjgan's beat clock follows the session's tempo and phase (and
bar), vjgan's taps and typed tempo change the session, the latency offset shifts the clock, and
when the peer leaves the clock goes back to its own sources. Link discovers peers by multicast, so
both peers run in a network namespace with only loopback (root, as in CI): tests/link_peers.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def phase_gap(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def test_two_link_peers_agree_on_tempo_phase_and_bar(tmp_path: Path) -> None:
    pytest.importorskip("link", reason="the link extra (LinkPython-extern, GPL)")
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root for a network namespace (unshare -n)")
    out = tmp_path / "link.json"
    proc = subprocess.run(["unshare", "-n", sys.executable, str(ROOT / "tests" / "link_peers.py"), str(out)],
                          capture_output=True, text=True, timeout=180)
    assert out.is_file(), proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["joined"], r
    assert r["session_tempo_adopted"] == pytest.approx(r["dj_tempo_at_join"])  # one session, one tempo
    for key in ("agree", "after_dj_change"):
        c = r[key]
        assert c["source"] == "link"
        assert c["bpm"] == pytest.approx(c["dj_bpm"], abs=1e-3)
        assert phase_gap(c["phase"], c["dj_phase"]) < 0.03, c  # well inside a hop at these tempi
        if min(c["phase"], c["dj_phase"]) > 0.05:  # not straddling a beat: the same beat of the bar
            assert c["count_in_bar"] == c["dj_count_in_bar"], c
    assert r["followed"] and r["after_dj_change"]["bpm"] == pytest.approx(140.0, abs=1e-3)
    assert r["dj_after_taps"] and r["dj_after_set"]
    lead = r["with_latency"]
    expected = 0.150 * lead["dj_bpm"] / 60.0  # beats the clock runs ahead
    assert phase_gap(lead["phase"], (lead["dj_phase"] + expected) % 1.0) < 0.03, lead
    assert r["left"] and r["source_after"] in ("audio", "tap", "manual", "none")
