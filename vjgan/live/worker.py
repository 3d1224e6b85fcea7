"""The frame worker: newest features + parameters → w+ → frame, published latest-wins.

It meets the other threads only at hand-over points: it reads the newest Features and a
parameter snapshot, publishes the newest Frame and its stats, and picks up a new scene from a
slot the show's main loop fills when it commits a preset (`adopt`). It never waits on the display.

It runs as a supervised task (`run(stop)`): a fault in the generator propagates to the supervisor,
which logs it, raises "GENERATOR RESTARTED (n)" and runs it again after a backoff; `restart()`
drops the state the fault may have left half-made (the glide, a cross-fade in progress). Meanwhile
the display keeps the newest frame, so the projector holds a still picture, never a black one.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

import numpy as np
import torch

from ..display.frame import Frame
from ..engine.scene import MotionDriver, Scene
from ..handover import LatestSlot
from ..motion.params import ParamStore
from .budget import BudgetPolicy, FrameBudget
from .latch import CostEstimate, LatchPolicy, Vsync, decide

TRANSITION_S = 1.0  # cross-fade length when a new scene arrives, unless the "morph" parameter says otherwise


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


class FrameWorker:
    def __init__(self, scene: Scene, features: Callable[[], object], params: ParamStore, frames: LatestSlot,
                 policy: BudgetPolicy | None = None, clock: Callable[[], float] = time.perf_counter,
                 log: Callable[[str], None] = lambda s: None, max_fps: float | None = None,
                 onsets: Callable[[], Mapping[str, float]] | None = None,
                 on_frame: Callable[[Frame, WorkerStats], None] | None = None,
                 new_features: threading.Event | None = None, wake: Callable[[], None] | None = None,
                 vsync: LatestSlot[Vsync] | None = None, latch: LatchPolicy = LatchPolicy()) -> None:
        self._features = features
        self._onsets = onsets
        self._on_frame = on_frame  # recorders (benchmarks, tests); called in this thread
        self._wake = wake  # tells the display a frame is waiting (ends its idle wait)
        self._params = params
        self.frames = frames
        self.stats = LatestSlot[WorkerStats]()
        self._policy = policy or BudgetPolicy()
        self._clock = clock
        self._log = log
        self._incoming: LatestSlot[Scene] = LatestSlot()
        self._incoming_seen = 0
        self._outgoing: Optional[tuple[Scene, MotionDriver, float]] = None  # fading out, since when
        self._keyframe_requested = threading.Event()
        self._index = 0
        self.last_frame_at: Optional[float] = None  # for the watchdog
        # A fast generator makes a frame as soon as a new analysis hop arrives (`new_features`,
        # set by the capture thread), so the newest sound is waiting when the vsync comes: that
        # cut the sound-to-screen latency measured in docs/benchmarks.md. Never faster than
        # `max_fps` (default: twice the display rate when there is no hop signal, else the hop rate).
        self._new_features = new_features
        self._min_period = 1.0 / (max_fps or (200.0 if new_features is not None else 2.0 * self._policy.display_hz))
        self._idle_wait = 1.0 / self._policy.display_hz
        # Late latching (latch.py): with the display's refresh times published in `vsync`, each
        # frame starts at the last moment that still makes the next refresh, from the newest hop.
        self._vsync = vsync
        self._latch = latch
        self._cost = CostEstimate()  # start of a frame → published, for the latch
        self._target = math.nan  # the refresh the last frame was for (nan: not latched)
        self._set_scene(scene, MotionDriver(scene.engine, params))

    def _set_scene(self, scene: Scene, driver: MotionDriver) -> None:
        self._scene = scene
        self._driver = driver
        self.budget = FrameBudget(scene.levels, self._policy)

    @property
    def scene(self) -> Scene:
        return self._scene

    # --- from other threads ------------------------------------------------------------------------

    def adopt(self, scene: Scene) -> None:
        """Play `scene` from the next frame on, cross-fading from the current one (any thread)."""
        self._incoming.publish(scene)

    def request_keyframe(self) -> None:
        """Keep the current picture as a keyframe (done by the worker, who owns the engine)."""
        self._keyframe_requested.set()

    def frame_age(self) -> Optional[float]:
        """Seconds since the last frame, for the watchdog; None while none is expected (frozen)."""
        if self._params.snapshot().get("freeze", 0.0) >= 0.5 or self.last_frame_at is None:
            return None
        return self._clock() - self.last_frame_at

    # --- the supervised task ---------------------------------------------------------------------------

    def restart(self) -> None:
        """After a fault: drop what it may have left half-made; keep the scene and the frame count."""
        self._outgoing = None
        self._target = math.nan
        self._driver = MotionDriver(self._scene.engine, self._params)
        self.budget = FrameBudget(self._scene.levels, self._policy)
        if self._scene.synth.device.type == "cuda":
            torch.cuda.empty_cache()

    def run(self, stop: threading.Event) -> None:
        """Make frames until `stop` is set; a fault propagates (the supervisor restarts us)."""
        last_publish = self._clock()
        fps = 0.0
        self.last_frame_at = self._clock()
        while not stop.is_set():
            self._adopt_incoming()
            if self._keyframe_requested.is_set():
                self._keyframe_requested.clear()
                self._scene.engine.capture_keyframe()
            if self._params.snapshot().get("freeze", 0.0) >= 0.5:
                stop.wait(self._min_period)
                self._driver.glide(self._clock())  # knobs keep gliding, so unfreezing does not jump
                continue
            if self._vsync is not None:
                decision = decide(self._clock(), self._vsync.latest(), self._cost.value, self._target, self._latch)
                if not decision.start and stop.wait(decision.wait_s):
                    break
                self._target = decision.target
            t = self._clock()
            if self._new_features is not None:
                self._new_features.clear()  # before reading: a hop that lands later wakes the next frame
            features = self._features()
            onset_times = self._onsets() if self._onsets is not None else None
            t0 = self._clock()
            motion = self._driver.step(t, features, onset_times)
            t1 = self._clock()
            resolution = self.budget.resolution
            try:
                pixels = self._scene.synth.frame(motion.ws, motion.noise_gains, resolution, motion.transform)
                pixels = self._blend_outgoing(pixels, t, features, resolution, onset_times)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if self.budget.out_of_memory():
                    self._log(f"GPU out of memory: stepping down to {self.budget.resolution}² frames")
                    continue
                raise
            t2 = self._clock()
            self.budget.record(t2 - t0, t2)
            self._index += 1
            adc = getattr(features, "adc_time", t) if features is not None else t
            frame = Frame(pixels=pixels, index=self._index, t_audio=adc, t_ready=t2, resolution=resolution,
                          budget_step=self.budget.step)
            self.frames.publish(frame)
            if self._wake is not None:
                self._wake()
            self.last_frame_at = t2
            period = t2 - last_publish
            last_publish = t2
            fps = (1.0 / period) if fps == 0.0 and period > 0 else (0.9 * fps + 0.1 / max(period, 1e-6))
            stats = WorkerStats(self._index, (t2 - t1) * 1000, (t1 - t0) * 1000, resolution, self.budget.step, fps,
                                self._scene.name)
            self.stats.publish(stats)
            if self._on_frame is not None:
                self._on_frame(frame, stats)
            self._cost.record(self._clock() - t)
            spare = self._min_period - (self._clock() - t)
            if spare > 0:
                stop.wait(spare)
            if self._new_features is not None and math.isnan(self._target):
                # Not latched: sleep until the next hop (or a display period, if the sound stopped coming).
                self._new_features.wait(self._idle_wait)

    def _adopt_incoming(self) -> None:
        scene, seq = self._incoming.read()
        if scene is None or seq == self._incoming_seen:
            return
        self._incoming_seen = seq
        if scene is self._scene:
            return
        self._outgoing = (self._scene, self._driver, self._clock())
        # The knobs' glide carries over: a scene change never makes a parameter jump.
        self._set_scene(scene, MotionDriver(scene.engine, self._params, self._driver.carry_over()))

    def _blend_outgoing(self, pixels: np.ndarray, t: float, features, resolution: int, onset_times) -> np.ndarray:
        if self._outgoing is None:
            return pixels
        old, driver, since = self._outgoing
        # The operator's morph time (a show parameter: a slider, a knob, OSC), read each frame so
        # shortening it mid-fade finishes the fade sooner.
        length = float(self._params.snapshot().get("morph", TRANSITION_S))
        mix = (self._clock() - since) / length if length > 0 else 1.0
        if mix >= 1.0:
            self._outgoing = None
            return pixels
        # The outgoing scene's largest exit point that fits (a StyleGAN3 network has only its full size).
        old_res = max((r for r in old.levels if r <= resolution), default=old.levels[-1])
        motion = driver.step(t, features, onset_times)
        previous = old.synth.frame(motion.ws, motion.noise_gains, old_res, motion.transform)
        if previous.shape != pixels.shape:
            previous = _resize_nearest(previous, pixels.shape[0])
        return (previous.astype(np.float32) * (1.0 - mix) + pixels.astype(np.float32) * mix).astype(np.uint8)


def _resize_nearest(pixels: np.ndarray, size: int) -> np.ndarray:
    idx = (np.arange(size) * pixels.shape[0] // size).astype(np.int64)
    return pixels[idx][:, idx]
