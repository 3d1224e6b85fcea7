"""`vjgan live` end to end under a real X server, and the frame worker under a frame budget."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xvfb_support import read_screen, xvfb  # noqa: F401  (xvfb is a fixture)

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "data" / "conformance" / "sg2ada_64px.pkl"


def show_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(VJGAN_DATA_DIR=str(tmp_path / "data"), VJGAN_CACHE_DIR=str(tmp_path / "cache"), PYTHONWARNINGS="ignore")
    return env


def start_show(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vjgan", "live", "--model", str(MODEL), "--window", "320x180",
                             "--fresh", *args], env=show_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)


def wait_for_moving_picture(screen: Path, proc: subprocess.Popen[str], timeout: float = 90.0) -> None:
    """Until the X screen shows a non-black picture that changes over time."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        now = read_screen(screen).astype(np.int16)
        if now.max() > 40 and previous is not None and np.abs(now - previous).mean() > 0.5:
            return
        previous = now
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"the window never showed a moving picture: {proc.communicate()[1][-2000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_live_demo_plays_and_stops_cleanly(xvfb, tmp_path: Path, stop_signal: int) -> None:  # noqa: F811
    proc = start_show(tmp_path, "--demo")
    wait_for_moving_picture(xvfb, proc)
    proc.send_signal(stop_signal)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    state = tmp_path / "data" / "running-state.toml"
    assert state.is_file() and 'preset = "default"' in state.read_text()


@pytest.mark.slow
def test_live_file_rehearsal(xvfb, tmp_path: Path) -> None:  # noqa: F811
    import soundfile

    rate = 48000
    t = np.arange(rate * 4) / rate
    kick = np.sin(2 * np.pi * 55 * t) * np.exp(-((t % 0.5) * 12))
    path = tmp_path / "kicks.wav"
    soundfile.write(path, (0.6 * kick).astype(np.float32), rate)
    proc = start_show(tmp_path, "--file", str(path))
    wait_for_moving_picture(xvfb, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "kicks.wav" in err


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--preset", "no-such-preset"], "no preset named"),
        (["--monitor", "NoSuchProjector"], "NoSuchProjector"),
        (["--demo", "--model", "missing.pkl"], "cannot load model"),
    ],
)
def test_bad_input_is_one_line(xvfb, tmp_path: Path, args: list[str], needle: str) -> None:  # noqa: F811
    proc = start_show(tmp_path, "--demo", *args) if "--demo" not in args else start_show(tmp_path, *args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    lines = [line for line in err.strip().splitlines() if line.startswith("vjgan:")]
    assert lines and needle in lines[-1], err
    assert "Traceback" not in err


def test_without_a_display_it_points_to_render(tmp_path: Path) -> None:
    env = show_env(tmp_path)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run([sys.executable, "-m", "vjgan", "live", "--demo"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "vjgan render" in proc.stderr


def test_frame_budget_steps_down_and_back_with_a_slow_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from vjgan.audio.features import rest_features
    from vjgan.config import load_preset
    from vjgan.engine.scene import build_scene
    from vjgan.handover import LatestSlot
    from vjgan.live.budget import BudgetPolicy
    from vjgan.live.worker import FrameWorker
    from vjgan.motion.params import ParamStore
    from vjgan.supervise import Supervisor

    monkeypatch.setenv("VJGAN_CACHE_DIR", str(tmp_path))
    scene = build_scene(MODEL, load_preset("default"), torch.device("cpu"))
    real_frame = scene.synth.frame
    slow = {"on": True}

    def deliberately_slow(ws, noise, resolution, transform=None):
        # Full resolution takes 80 ms while "slow" (over the 1/24 s budget), smaller exits 4 ms.
        time.sleep(0.08 if (resolution == 64 and slow["on"]) else 0.004)
        return real_frame(ws, noise, resolution, transform)

    scene.synth.frame = deliberately_slow
    params = ParamStore(scene.engine.param_specs())
    frames: LatestSlot = LatestSlot()
    policy = BudgetPolicy(display_hz=60, min_fps=24, lowest_resolution=16, step_down_after_s=0.3, climb_after_s=0.5)
    worker = FrameWorker(scene, lambda: rest_features(("bass",)), params, frames, policy)
    supervisor = Supervisor()
    task = supervisor.spawn("generator", worker.run, on_restart=worker.restart)
    try:
        deadline = time.monotonic() + 20
        while worker.budget.resolution == 64 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.budget.resolution == 32, "never stepped down"
        frame = frames.latest()
        deadline = time.monotonic() + 5
        while (frame is None or frame.resolution != 32) and time.monotonic() < deadline:
            time.sleep(0.02)
            frame = frames.latest()
        assert frame.pixels.shape == (32, 32, 4) and frame.budget_step == 1
        slow["on"] = False
        worker.budget.costs.pop(0, None)  # the machine got faster: forget the old cost up there
        deadline = time.monotonic() + 20
        while worker.budget.resolution != 64 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.budget.resolution == 64, "never climbed back"
    finally:
        supervisor.stop()
    assert task.restarts == 0


def test_the_morph_parameter_is_the_cross_fade_length(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    import torch

    from vjgan.audio.features import rest_features
    from vjgan.config import load_preset
    from vjgan.engine.scene import MotionDriver, build_scene
    from vjgan.handover import LatestSlot
    from vjgan.live.app import SHOW_PARAMS
    from vjgan.live.worker import FrameWorker
    from vjgan.motion.params import ParamStore

    monkeypatch.setenv("VJGAN_CACHE_DIR", str(tmp_path))
    scene = build_scene(MODEL, load_preset("default"), torch.device("cpu"))
    params = ParamStore(list(SHOW_PARAMS) + scene.engine.param_specs())
    clock = [100.0]
    worker = FrameWorker(scene, lambda: rest_features(("bass",)), params, LatestSlot(), clock=lambda: clock[0])
    white = np.full((64, 64, 4), 255, np.uint8)
    features = rest_features(("bass",))

    def blend_after(seconds: float, morph: float) -> np.ndarray:
        params.set("morph", morph)
        worker._outgoing = (scene, MotionDriver(scene.engine, params), clock[0])  # a scene fading out now
        clock[0] += seconds
        return worker._blend_outgoing(white, clock[0], features, 64, None)

    assert np.array_equal(blend_after(0.5, 0.0), white) and worker._outgoing is None  # 0 s: a cut
    assert np.array_equal(blend_after(1.5, 1.0), white) and worker._outgoing is None  # the fade is over
    mixed = blend_after(1.0, 4.0).astype(float)  # a quarter of the way through a 4 s morph
    assert worker._outgoing is not None and 0 < (255 - mixed).mean() < 255 * 0.8
