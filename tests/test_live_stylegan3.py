"""A StyleGAN3 model in the live show: its view parameters, the transform flowing from the latent
engine through the frame worker to the generator, and a one-level frame budget."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vjgan.audio.features import rest_features
from vjgan.config import load_preset
from vjgan.handover import LatestSlot
from vjgan.live.budget import BudgetPolicy
from vjgan.engine.scene import build_scene
from vjgan.supervise import Supervisor
from vjgan.live.worker import FrameWorker
from vjgan.motion.params import ParamStore

MODEL = Path(__file__).parent / "data" / "conformance" / "sg3t_64px.pkl"
BANDS = ("sub", "bass", "lowmid", "mid", "highmid", "high")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    mp = pytest.MonkeyPatch()
    mp.setenv("VJGAN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    try:
        yield build_scene(MODEL, load_preset("stylegan3"), torch.device("cpu"))
    finally:
        mp.undo()


def test_stylegan3_preset_turns_on_the_beat_and_glides_with_the_bass() -> None:
    preset = load_preset("stylegan3")
    routes = {(r.source, r.target) for r in preset.motion.routes}
    assert ("beat", "spin") in routes and ("band.bass", "glide") in routes
    assert {"glide.speed", "glide.direction"} <= set(preset.params)


def test_scene_offers_the_view_parameters_and_one_level(scene) -> None:
    assert scene.synth.has_transform and scene.engine.transformable
    assert scene.synth.levels == [64] and scene.synth.num_layers == 0
    names = {s.name for s in scene.engine.param_specs()}
    assert {"rotation", "rotation.speed", "translation.x", "translation.y", "glide.speed", "glide.direction"} <= names
    assert {"gain.beat_turn", "gain.bass_glide"} <= names


def test_frame_worker_passes_the_engines_transform_to_the_generator(scene) -> None:
    params = ParamStore(scene.engine.param_specs())
    # Hold everything but the view still: no drift, no wander, no sound; a quarter turn.
    params.set_many({"drift.speed": 0.0, "drift.wander": 0.0, "rotation": 90.0, "glide.speed": 0.0})
    values = params.snapshot().values
    probe = scene.engine.step(0.0, 0.0, rest_features(BANDS), values)
    assert probe.transform is not None and probe.transform.shape == (3, 3)
    turned = scene.synth.frame(probe.ws, probe.noise_gains, 64, probe.transform)
    plain = scene.synth.frame(probe.ws, probe.noise_gains, 64)
    assert np.abs(turned.astype(int) - plain.astype(int)).mean() > 5  # the turn shows
    scene.engine.reset()

    frames: LatestSlot = LatestSlot()
    worker = FrameWorker(scene, lambda: rest_features(BANDS), params, frames, BudgetPolicy(display_hz=60, min_fps=24),
                         max_fps=10)
    assert worker.budget.levels == [64]
    supervisor = Supervisor()
    task = supervisor.spawn("generator", worker.run, on_restart=worker.restart)
    try:
        deadline = time.monotonic() + 60
        while (frames.latest() is None or frames.latest().index < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        supervisor.stop(timeout=10)
    assert task.restarts == 0
    frame = frames.latest()
    assert frame is not None and frame.resolution == 64 and frame.budget_step == 0
    assert np.abs(frame.pixels.astype(int) - turned.astype(int)).max() <= 1
