"""Faults injected into a running `vjgan live` (real window under Xvfb, the demo groove, the real
generator): each thread restarts, the operator is told, and the show goes on."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path

import pytest
from waiting import wait_until
from xvfb_support import xvfb  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "data" / "conformance" / "sg2ada_64px.pkl"


wait_until = functools.partial(wait_until, timeout=60.0, interval=0.05)  # a show starts in seconds, not milliseconds


@pytest.mark.slow
def test_generator_and_analyzer_faults_are_survived_shown_and_acknowledged(xvfb, tmp_path, monkeypatch) -> None:  # noqa: F811
    from vjgan.audio import analysis
    from vjgan.control.commands import AcknowledgeAlarm
    from vjgan.engine.synth import Synthesizer
    from vjgan.live.app import LiveOptions, LiveShow

    monkeypatch.setenv("VJGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path / "data"))
    counts = {"frames": 0, "hops": 0}
    real_frame, real_process = Synthesizer.frame, analysis.Analyzer.process

    def frame_failing_once(self, ws, gains, resolution, transform=None):
        counts["frames"] += 1
        if counts["frames"] == 20:
            raise RuntimeError("injected generator fault")
        return real_frame(self, ws, gains, resolution, transform)

    def process_failing_once(self, *args, **kwargs):
        counts["hops"] += 1
        if counts["hops"] == 150:
            raise ValueError("injected analysis fault")
        return real_process(self, *args, **kwargs)

    monkeypatch.setattr(Synthesizer, "frame", frame_failing_once)
    monkeypatch.setattr(analysis.Analyzer, "process", process_failing_once)
    show = LiveShow(LiveOptions(model=str(MODEL), demo=True, duration=90, window_size=(320, 180), fresh=True,
                                midi=("no-such-controller",)))
    seen: dict[str, object] = {}

    def play() -> None:
        try:
            wait_until(lambda: show.worker is not None and counts["frames"] > 20 and counts["hops"] > 150,
                       what="both faults")
            wait_until(lambda: {a.text for a in show.alarms.shown()} >= {"GENERATOR RESTARTED (1)",
                                                                         "AUDIO ANALYSIS RESTARTED (1)"},
                       what="the alarm lines")
            frames_then, hops_then = show.frames.latest().index, show.audio.latest().hop_index
            wait_until(lambda: show.frames.latest().index > frames_then + 5, what="new frames after the fault")
            wait_until(lambda: show.audio.latest().hop_index > hops_then + 50, what="new hops after the fault")
            console = show.console
            wait_until(lambda: console.view is not None and any("RESTARTED" in a.text for a in console.view.alarms),
                       what="the operator window's alarm lines")
            seen["operator"] = [a.text for a in console.view.alarms]
            show.post(AcknowledgeAlarm(source="test"))
            wait_until(lambda: not show.alarms.shown(), what="the acknowledge")
            seen["after"] = show.alarms.shown()
        finally:
            show.stop()

    player = threading.Thread(target=play, daemon=True)
    player.start()
    assert show.run() == 0
    player.join(10)
    assert set(seen["operator"]) >= {"GENERATOR RESTARTED (1)", "AUDIO ANALYSIS RESTARTED (1)"}
    assert seen["after"] == ()


@pytest.mark.slow
def test_rapid_preset_recalls_build_only_what_is_needed_and_play_the_last(xvfb, tmp_path, monkeypatch) -> None:  # noqa: F811
    """21 recalls within a few seconds: superseded builds are cancelled (not 21 scenes in memory),
    and the show ends up playing the preset asked for last; a recall that fails leaves it in place."""
    import resource

    from vjgan.control.commands import RecallPreset
    from vjgan.engine.synth import Synthesizer
    from vjgan.live.app import LiveOptions, LiveShow

    monkeypatch.setenv("VJGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path / "data"))
    built = []
    real_init = Synthesizer.__init__

    def counting_init(self, *args, **kwargs):
        built.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Synthesizer, "__init__", counting_init)
    show = LiveShow(LiveOptions(model=str(MODEL), demo=True, duration=90, window_size=(320, 180), fresh=True,
                                operator=False, midi=("no-such-controller",)))
    seen: dict[str, object] = {}

    def play() -> None:
        try:
            wait_until(lambda: show.worker is not None and show.frames.latest() is not None, what="the first frame")
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            names = ["living-portrait", "default", "drop"] * 7
            for name in names:
                show.post(RecallPreset(name, source="test"))
                time.sleep(0.05)
            wait_until(lambda: show.preset.name == names[-1] and show.worker.scene.preset.name == names[-1]
                       and show.director.building is None, what="the last recall")
            seen["builds"] = len(built) - 1  # the first scene was built at start
            seen["rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
            show.post(RecallPreset("no-such-preset", source="test"))
            time.sleep(1.0)
            seen["after_bad"] = show.preset.name
        finally:
            show.stop()

    player = threading.Thread(target=play, daemon=True)
    player.start()
    assert show.run() == 0
    player.join(10)
    assert 1 <= seen["builds"] <= 6, seen  # not 21
    assert seen["rss_growth_mb"] < 400, seen
    assert seen["after_bad"] == "drop"
