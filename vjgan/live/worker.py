"""The frame worker thread: newest features + parameters → w+ → frame, published latest-wins.

It meets the other threads only at hand-over points: it reads the newest Features and a
parameter snapshot, and publishes the newest Frame; it never waits on the display. A scene
switch (model or preset) is built elsewhere and swapped in here with a short cross-fade.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch

from ..display.frame import Frame
from ..handover import LatestSlot
from ..motion.params import ParamSmoother, ParamStore
from .budget import BudgetPolicy, FrameBudget
from .scene import Scene, SceneBuilder

TRANSITION_S = 1.0  # cross-fade length when a new scene arrives


@dataclass(frozen=True)
class WorkerStats:
    """What the HUD and the benchmark read about generation (immutable, published per frame)."""

    frame_index: int
    generation_ms: float
    latent_ms: float
    resolution: int
    budget_step: int
    fps: float
    scene: str


class FrameWorker(threading.Thread):
    def __init__(self, scene: Scene, features: Callable[[], object], params: ParamStore, frames: LatestSlot,
                 policy: BudgetPolicy | None = None, clock: Callable[[], float] = time.perf_counter,
                 log: Callable[[str], None] = print, max_fps: float | None = None,
                 onsets: Callable[[], Mapping[str, float]] | None = None,
                 on_frame: Callable[[Frame, WorkerStats], None] | None = None,
                 new_features: threading.Event | None = None) -> None:
        super().__init__(name="vjgan-frame-worker", daemon=True)
        self._scene = scene
        self._features = features
        self._onsets = onsets
        self._on_frame = on_frame  # recorders (benchmarks, tests); called in this thread
        self._params = params
        self.frames = frames
        self.stats = LatestSlot[WorkerStats]()
        self._policy = policy or BudgetPolicy()
        self.budget = FrameBudget(scene.backend.levels, self._policy)
        self._clock = clock
        self._log = log
        self._halt = threading.Event()
        self._pending: SceneBuilder | None = None
        self._outgoing: tuple[Scene, float] | None = None  # scene fading out, and when the fade began
        self._smoother = ParamSmoother()
        # A fast generator makes a frame as soon as a new analysis hop arrives (`new_features`,
        # set by the capture thread), so the newest sound is waiting when the vsync comes: that
        # cut the sound-to-screen latency measured in docs/benchmarks.md. Never faster than
        # `max_fps` (default: twice the display rate when there is no hop signal, else the hop rate).
        self._new_features = new_features
        self._min_period = 1.0 / (max_fps or (200.0 if new_features is not None else 2.0 * self._policy.display_hz))
        self._idle_wait = 1.0 / self._policy.display_hz
        self.frozen = False
        self.error: BaseException | None = None
        self._keyframe_requested = threading.Event()

    @property
    def scene(self) -> Scene:
        return self._scene

    def switch_scene(self, builder: SceneBuilder) -> None:
        """Hand over a scene being built; it replaces the current one when ready."""
        self._pending = builder

    def stop(self) -> None:
        self._halt.set()

    def request_keyframe(self) -> None:
        """Keep the current picture as a keyframe (any thread; done by the worker, who owns the engine)."""
        self._keyframe_requested.set()

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # reported by the app; the display keeps the last frame
            self.error = e
            self._log(f"frame worker stopped: {type(e).__name__}: {e}")

    def _loop(self) -> None:
        index = 0
        last_t = self._clock()
        last_publish = last_t
        fps = 0.0
        while not self._halt.is_set():
            self._adopt_pending_scene()
            if self._keyframe_requested.is_set():
                self._keyframe_requested.clear()
                self._scene.engine.capture_keyframe()
            t = self._clock()
            dt = t - last_t
            last_t = t
            if self._new_features is not None:
                self._new_features.clear()  # before reading: a hop that lands later wakes the next frame
            features = self._features()
            values = self._smoother.step(self._params.snapshot(), self._params.spec_map(), dt)
            if self.frozen or values.get("freeze", 0.0) >= 0.5:
                self._halt.wait(self._min_period)
                continue
            t0 = self._clock()
            onset_times = self._onsets() if self._onsets is not None else None
            motion = self._scene.engine.step(t, dt, features, values, onset_times)
            t1 = self._clock()
            resolution = self.budget.resolution
            try:
                pixels = self._scene.backend.frame(motion.ws, motion.noise_gains, resolution, motion.transform)
                pixels = self._blend_outgoing(pixels, t, dt, features, values, resolution, onset_times)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if self.budget.out_of_memory():
                    self._log(f"GPU out of memory: stepping down to {self.budget.resolution}² frames")
                    continue
                raise
            t2 = self._clock()
            self.budget.record(t2 - t0, t2)
            index += 1
            adc = getattr(features, "adc_time", t) if features is not None else t
            frame = Frame(pixels=pixels, index=index, t_audio=adc, t_ready=t2, resolution=resolution,
                          budget_step=self.budget.step)
            self.frames.publish(frame)
            period = t2 - last_publish
            last_publish = t2
            fps = (1.0 / period) if fps == 0.0 and period > 0 else (0.9 * fps + 0.1 / max(period, 1e-6))
            stats = WorkerStats(index, (t2 - t1) * 1000, (t1 - t0) * 1000, resolution, self.budget.step, fps,
                                self._scene.name)
            self.stats.publish(stats)
            if self._on_frame is not None:
                self._on_frame(frame, stats)
            spare = self._min_period - (self._clock() - t)
            if spare > 0:
                self._halt.wait(spare)
            if self._new_features is not None:
                # Sleep until the next hop (or a display period, if the sound stopped coming).
                self._new_features.wait(self._idle_wait)

    def _adopt_pending_scene(self) -> None:
        builder = self._pending
        if builder is None or not builder.ready():
            return
        self._pending = None
        scene = builder.result()
        if scene is None:
            return  # the builder reported why; the current scene keeps playing
        self._outgoing = (self._scene, self._clock())
        self._scene = scene
        self.budget = FrameBudget(scene.backend.levels, self._policy)
        self._smoother = ParamSmoother(dict(self._smoother.values))

    def _blend_outgoing(self, pixels: np.ndarray, t: float, dt: float, features, values, resolution: int,
                        onset_times) -> np.ndarray:
        if self._outgoing is None:
            return pixels
        old, since = self._outgoing
        mix = (self._clock() - since) / TRANSITION_S
        if mix >= 1.0:
            self._outgoing = None
            return pixels
        # The outgoing scene's largest exit point that fits (a StyleGAN3 network has only its full size).
        old_res = max((r for r in old.backend.levels if r <= resolution), default=old.backend.levels[-1])
        motion = old.engine.step(t, dt, features, values, onset_times)
        previous = old.backend.frame(motion.ws, motion.noise_gains, old_res, motion.transform)
        if previous.shape != pixels.shape:
            previous = _resize_nearest(previous, pixels.shape[0])
        return (previous.astype(np.float32) * (1.0 - mix) + pixels.astype(np.float32) * mix).astype(np.uint8)


def _resize_nearest(pixels: np.ndarray, size: int) -> np.ndarray:
    idx = (np.arange(size) * pixels.shape[0] // size).astype(np.int64)
    return pixels[idx][:, idx]
