"""Two Ableton Link peers in one process, inside a network namespace with only loopback.

    unshare -n python3 tests/link_peers.py OUT.json

One peer stands for the DJ's software (LinkPython's own Link object); the other is vjgan's
LinkSession driving a real audio engine's beat clock (the demo groove as input). Writes what each
saw to OUT.json for tests/test_rig_link.py to judge. Link's discovery stays on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path


def main(out: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    import link

    from vjgan.audio.engine import AudioEngine
    from vjgan.audio.sources import DemoSource
    from vjgan.rig.link import LinkSession
    from vjgan.supervise import Supervisor

    dj = link.Link(128.0)
    dj.enabled = True
    supervisor = Supervisor()
    engine = AudioEngine(DemoSource())
    engine.start(supervisor)
    session = LinkSession(engine, latency_ms=0.0, bpm=90.0)
    stop = threading.Event()
    reader = threading.Thread(target=session.run, args=(stop,))
    reader.start()
    result: dict = {}

    def dj_beat_at(t_perf: float) -> float:
        a = time.perf_counter()
        micros = dj.clock().micros()
        b = time.perf_counter()
        at = micros + int((t_perf - 0.5 * (a + b)) * 1e6)
        return dj.captureAppSessionState().beatAtTime(at, 4)

    def wait_for(condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.01)
        return False

    def compare() -> dict:
        f = engine.latest()
        beat = dj_beat_at(f.adc_time)
        return {"source": f.tempo_source, "bpm": f.bpm, "dj_bpm": dj.captureAppSessionState().tempo(),
                "phase": f.beat_phase, "dj_phase": beat % 1.0, "count_in_bar": f.beat_count % 4,
                "dj_count_in_bar": int(beat // 1) % 4}

    try:
        result["joined"] = wait_for(lambda: engine.latest().tempo_source == "link", 15)
        # The two sessions merge into one (Link decides which timeline wins): both then agree.
        wait_for(lambda: abs(session.tempo() - dj.captureAppSessionState().tempo()) < 1e-3, 5)
        result["session_tempo_adopted"] = session.tempo()
        result["dj_tempo_at_join"] = dj.captureAppSessionState().tempo()
        time.sleep(0.3)
        result["agree"] = compare()
        # The DJ changes tempo: vjgan's beat clock follows.
        state = dj.captureAppSessionState()
        state.setTempo(140.0, dj.clock().micros())
        dj.commitAppSessionState(state)
        result["followed"] = wait_for(lambda: abs(engine.latest().bpm - 140.0) < 0.01, 5)
        result["after_dj_change"] = compare()
        # vjgan's tap (two taps 0.5 s apart) and a typed tempo change the session's tempo.
        now = time.perf_counter()
        session.tap(now - 0.5)
        session.tap(now)
        result["dj_after_taps"] = wait_for(lambda: abs(dj.captureAppSessionState().tempo() - 120.0) < 0.5, 5)
        session.set_tempo(100.0)
        result["dj_after_set"] = wait_for(lambda: abs(dj.captureAppSessionState().tempo() - 100.0) < 0.01, 5)
        wait_for(lambda: abs(engine.latest().bpm - 100.0) < 0.01, 5)
        # A latency offset: vjgan's clock runs that much ahead of the session's.
        session.latency_s = 0.150
        time.sleep(0.3)
        result["with_latency"] = compare()
        # The DJ leaves: the clock goes back to its own sources.
        dj.enabled = False
        result["left"] = wait_for(lambda: engine.latest().tempo_source != "link", 10)
        result["source_after"] = engine.latest().tempo_source
    finally:
        stop.set()
        reader.join(5)
        session.close()
        engine.stop()
        supervisor.stop()
        out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
