"""The show-safe core: a generator that fails is restarted and shown, scene changes are requests that
commit whole (newest wins, failures change nothing), commands steer the show, the autosave survives
bad disks and bad files."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vjgan.alarms import AlarmBoard
from vjgan.audio.features import rest_features
from vjgan.config import load_preset
from vjgan.engine.scene import BuildCancelled, build_scene
from vjgan.handover import LatestSlot
from vjgan.live.autosave import Autosaver, RunningState, read_running_state
from vjgan.live.budget import BudgetPolicy
from vjgan.live.director import SceneDirector
from vjgan.live.worker import FrameWorker
from vjgan.motion.params import ParamSpec, ParamStore
from vjgan.supervise import RestartPolicy, Supervisor

from disk_support import fill, small_disk  # noqa: F401  (small_disk is a fixture)

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "data" / "conformance" / "sg2ada_64px.pkl"


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    os.environ.setdefault("VJGAN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return build_scene(MODEL, load_preset("default"), torch.device("cpu"))


def make_worker(scene, params=None):
    params = params or ParamStore([ParamSpec("freeze", 0.0, toggle=True), *scene.engine.param_specs()])
    frames: LatestSlot = LatestSlot()
    worker = FrameWorker(scene, lambda: rest_features(("bass",)), params, frames,
                         BudgetPolicy(display_hz=60, min_fps=1, lowest_resolution=64), max_fps=200)
    return worker, frames, params


# --- the frame worker under the supervisor ------------------------------------------------------------

def test_a_generator_that_raises_on_its_nth_frame_is_restarted_and_shown(scene, caplog) -> None:
    worker, frames, _ = make_worker(scene)
    real = scene.synth.frame
    calls = {"n": 0}

    def flaky(ws, gains, resolution, transform=None):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("injected: CUDA error: an illegal memory access")
        return real(ws, gains, resolution, transform)

    board = AlarmBoard()
    supervisor = Supervisor(board)
    scene.synth.frame = flaky
    try:
        with caplog.at_level(logging.ERROR, logger="vjgan"):
            task = supervisor.spawn("generator", worker.run, label="GENERATOR", failing="holding the last picture",
                                    policy=RestartPolicy(first_delay_s=0.01), on_restart=worker.restart)
            assert wait_until(lambda: (frames.latest() is not None and frames.latest().index >= 10))
    finally:
        supervisor.stop()
        del scene.synth.frame
    assert task.restarts == 1
    assert [a.line() for a in board.shown()] == ["GENERATOR RESTARTED (1)"]
    assert "injected: CUDA error" in caplog.text and "Traceback" in caplog.text


def test_a_latched_worker_makes_one_frame_per_refresh_just_before_it(scene) -> None:
    """With the display's refreshes published (here a 10 Hz one, so a CPU frame fits), frames are
    ready shortly before each refresh, one per refresh, instead of as fast as they can be made."""
    from vjgan.live.latch import Vsync

    period = 0.1
    vsync: LatestSlot = LatestSlot()
    ready: list[float] = []
    params = ParamStore([ParamSpec("freeze", 0.0, toggle=True), *scene.engine.param_specs()])
    worker = FrameWorker(scene, lambda: rest_features(("bass",)), params, LatestSlot(),
                         BudgetPolicy(display_hz=10, min_fps=1, lowest_resolution=64), max_fps=200,
                         on_frame=lambda frame, stats: ready.append(frame.t_ready), vsync=vsync)
    supervisor = Supervisor()
    t0 = time.perf_counter() + 0.05
    supervisor.spawn("generator", worker.run)
    try:
        refreshes = 0
        while time.perf_counter() < t0 + 2.5:  # the display: a refresh every 100 ms
            at = t0 + refreshes * period
            time.sleep(max(0.0, at - time.perf_counter()))
            vsync.publish(Vsync(at, period))
            refreshes += 1
    finally:
        supervisor.stop()
    settled = [t for t in ready if t > t0 + 0.5]  # after the cost estimate has settled
    assert 15 <= len(settled) <= 21, len(settled)  # ~20 refreshes in those 2 s: one frame each
    phase = [((t - t0) % period) / period for t in settled]  # 0: just after a refresh, 1: just before
    assert sum(p > 0.5 for p in phase) >= 0.8 * len(phase), phase


def test_a_generator_that_keeps_failing_holds_the_last_picture_and_says_so(scene) -> None:
    worker, frames, _ = make_worker(scene)
    real = scene.synth.frame
    calls = {"n": 0}

    def broken_after_three(ws, gains, resolution, transform=None):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("injected: the device is gone")
        return real(ws, gains, resolution, transform)

    board = AlarmBoard()
    supervisor = Supervisor(board)
    scene.synth.frame = broken_after_three
    try:
        supervisor.spawn("generator", worker.run, label="GENERATOR", failing="holding the last picture",
                         policy=RestartPolicy(first_delay_s=0.005, max_delay_s=0.02, failing_after=3),
                         on_restart=worker.restart)
        assert wait_until(lambda: calls["n"] > 8)
        held = frames.latest()
    finally:
        supervisor.stop()
        del scene.synth.frame
    assert held is not None and held.index == 3  # the last good picture stays up: a still, never black
    assert board.shown()[0].text.endswith("— holding the last picture")
    assert "FAILING" in board.shown()[0].text


def test_watchdog_sees_a_generator_stuck_in_a_driver_call(scene) -> None:
    worker, frames, params = make_worker(scene)
    release = threading.Event()
    real = scene.synth.frame
    calls = {"n": 0}

    def hangs_on_the_third(ws, gains, resolution, transform=None):
        calls["n"] += 1
        if calls["n"] == 3:
            release.wait(30)  # a driver call that never returns: nothing is raised
        return real(ws, gains, resolution, transform)

    board = AlarmBoard()
    supervisor = Supervisor(board)
    scene.synth.frame = hangs_on_the_third
    try:
        supervisor.spawn("generator", worker.run, on_restart=worker.restart)
        supervisor.watch("frames-stalled", "NO NEW FRAME for {age:.1f} s", 0.3, worker.frame_age)
        assert wait_until(lambda: any(a.key == "frames-stalled" for a in board.shown()), timeout=10)
        release.set()
        assert wait_until(lambda: not board.get("frames-stalled").active, timeout=10)
        # Frozen on purpose: no frame is expected, so no alarm.
        params.set("freeze", 1.0)
        time.sleep(0.5)
        supervisor.check_watches()
        assert not board.get("frames-stalled").active
    finally:
        release.set()
        supervisor.stop()
        del scene.synth.frame
    assert board.shown()[0].line().startswith("NO NEW FRAME for") and board.shown()[0].line().endswith("(recovered)")


# --- scene changes ---------------------------------------------------------------------------------------

class Builds:
    """build_scene with a gate, to see which requests got built and which were cancelled."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.gate = threading.Event()

    def __call__(self, model, preset, device, *, cancelled, log):
        self.started.append(preset.name)
        if preset.name == "broken":
            from vjgan.errors import UserError

            raise UserError("cannot load model broken.pkl: not a StyleGAN checkpoint")
        while not self.gate.wait(0.01):
            if cancelled():
                self.cancelled.append(preset.name)
                raise BuildCancelled()
        return self.scene


def test_newest_request_wins_older_builds_are_cancelled_and_a_failure_changes_nothing(scene, caplog) -> None:
    import dataclasses

    builds = Builds(scene)
    committed = []
    director = SceneDirector(torch.device("cpu"), on_commit=lambda req, sc: committed.append(req.preset.name),
                             build=builds)
    supervisor = Supervisor()
    supervisor.spawn("scene-builder", director.run)
    base = load_preset("default")
    try:
        for name in ("one", "two", "three", "four", "five"):  # → pressed five times
            director.request(dataclasses.replace(base, name=name))
        assert wait_until(lambda: builds.started and builds.started[-1] == "five")
        builds.gate.set()
        assert wait_until(lambda: director.poll() is not None)
        assert committed == ["five"]
        assert len(builds.started) <= 2 and set(builds.cancelled) <= {"one"}
        # A failed build: the running preset stays, one line says why.
        with caplog.at_level(logging.WARNING, logger="vjgan"):
            director.request(dataclasses.replace(base, name="broken"))
            assert wait_until(lambda: director.poll() is None and "broken" in caplog.text)
        assert committed == ["five"]
        assert "not a StyleGAN checkpoint; the running scene keeps playing" in caplog.text
    finally:
        supervisor.stop()


# --- the running state -----------------------------------------------------------------------------------

def test_autosave_on_a_full_disk_is_said_once_and_again_on_recovery(small_disk: Path, caplog) -> None:  # noqa: F811
    saver = Autosaver(small_disk / "running-state.toml")
    state = RunningState("default", {"master": 0.5}, ())
    saver.offer(state)
    assert saver.write_pending() and read_running_state(saver.path) == state
    filler = fill(small_disk)
    with caplog.at_level(logging.INFO, logger="vjgan"):
        for i in range(5):  # five periods of a full disk
            saver.offer(RunningState("default", {"master": 0.1 * i, "gain.bass": 1.0}, ()))
            assert not saver.write_pending()
        assert read_running_state(saver.path) == state  # the old state is intact
        filler.unlink()
        assert saver.write_pending()
    assert caplog.text.count("could not autosave") == 1 and caplog.text.count("autosave works again") == 1
    assert read_running_state(saver.path).params["gain.bass"] == 1.0


def test_damaged_running_state_is_set_aside_and_stale_temporaries_removed(tmp_path: Path, caplog) -> None:
    path = tmp_path / "running-state.toml"
    (tmp_path / ".running-state.toml.x1y2.tmp").write_text("half")
    for damage in (b"\xff\xfe not text", b'preset = 3\n', b'preset = "default"\nparams = {master = "loud"}\n',
                   b'preset = "default"\nparams = {master = nan}\n'):
        path.write_bytes(damage)
        with caplog.at_level(logging.WARNING, logger="vjgan"):
            assert read_running_state(path) is None
        assert not path.exists() and len(list(tmp_path.glob("running-state.damaged-*.toml"))) >= 1
        for aside in tmp_path.glob("running-state.damaged-*.toml"):
            aside.unlink()
    assert not list(tmp_path.glob(".running-state.toml.*.tmp"))
    assert caplog.text.count("is damaged") == 4


def test_a_killed_save_leaves_the_old_state_readable(tmp_path: Path) -> None:
    path = tmp_path / "running-state.toml"
    saver = Autosaver(path)
    saver.offer(RunningState("drop", {"master": 0.25}, ({"control": "cc 1 7", "target": "master"},)))
    saver.write_pending()
    (tmp_path / ".running-state.toml.killed.tmp").write_bytes(b"preset = \"dr")  # a kill -9 mid-write
    state = read_running_state(path)
    assert state is not None and state.preset == "drop" and state.params == {"master": 0.25}
    assert np.isclose(state.params["master"], 0.25)
