"""`vjgan bench live`: the whole pipeline offscreen, sound-to-screen latency and missed frames.

A click track with known click times plays through the real analyzer at real-time pace (an
array source stamps each hop with the time its newest sample "reaches the ADC"); the real frame
worker generates; an offscreen EGL renderer draws on a virtual 60 Hz display clock. For every
click we find the first analysis hop that reports it, the first frame generated from that hop
or a later one, and the first display tick whose finished picture shows that frame; the
differences are the per-stage latencies. A display tick that shows no new frame while the
generator should have produced one counts as missed.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..handover import LatestSlot


@dataclass
class ClickResult:
    click: float  # ADC time of the click
    detected: float  # analysis: Features published with its onset
    frame_start: float  # the worker read features that contain it
    frame_ready: float  # generation done
    shown: float  # the display tick's picture that first shows it is ready for the swap
    latent_ms: float
    generation_ms: float


@dataclass
class LiveBenchResult:
    clicks: list[ClickResult]
    ticks: int
    missed: int  # ticks after warm-up with no new frame to show
    overruns: int  # ticks whose picture was not ready before the next vsync
    fps: float
    resolution: int
    output: tuple[int, int]
    budget_steps: list[int] = field(default_factory=list)
    skipped: int = 0  # ticks not redrawn (nothing changed: the live show's redraw policy)
    analysis_ms: tuple[float, float] = (math.nan, math.nan)  # per-hop analysis cost, mean and max
    hop_ms: float = 10.0
    latched: bool = False  # frames timed to the display's refresh (vjgan/live/latch.py)

    def stage_ms(self) -> dict[str, tuple[float, float]]:
        def p(values: list[float]) -> tuple[float, float]:
            if not values:
                return (math.nan, math.nan)
            arr = np.array(values) * 1000
            return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))

        c = self.clicks
        return {
            "analysis (click → Features)": p([x.detected - x.click for x in c]),
            "wait for the worker": p([x.frame_start - x.detected for x in c]),
            "latent": p([x.latent_ms / 1000 for x in c]),
            "generation": p([x.generation_ms / 1000 for x in c]),
            "upload + draw + wait for vsync": p([x.shown - x.frame_ready for x in c]),
            "total (click → picture ready to swap)": p([x.shown - x.click for x in c]),
        }


def click_track(seconds: float, rate: int, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Broadband clicks over a low thump at irregular intervals (so nothing locks to a grid)."""
    rng = np.random.default_rng(seed)
    track = np.zeros(int(seconds * rate), dtype=np.float32)
    times = []
    t = 1.0
    burst = int(0.004 * rate)
    thump_t = np.arange(int(0.08 * rate)) / rate
    thump = (np.sin(2 * np.pi * 60 * thump_t) * np.exp(-thump_t * 40)).astype(np.float32)
    while t < seconds - 0.5:
        i = int(t * rate)
        track[i : i + burst] += rng.uniform(-0.8, 0.8, burst).astype(np.float32)
        track[i : i + len(thump)] += 0.7 * thump
        times.append(i / rate)
        t += rng.uniform(0.45, 0.75)
    return track, times


def _analysis_ms(audio) -> tuple[float, float]:
    st = audio.stats
    return (st.analysis_s / max(1, st.hops) * 1000.0, st.max_analysis_s * 1000.0)


def run_live_bench(model, device, seconds: float = 20.0, output: tuple[int, int] = (640, 360),
                   display_hz: float = 60.0, min_fps: float = 24.0, log=print, redraw: str = "live",
                   hop_s: float = 0.010, latch: bool = True) -> LiveBenchResult:
    from ..audio.config import AnalysisConfig
    from ..audio.engine import AudioEngine
    from ..audio.sources import ArraySource
    from ..config import load_preset
    from ..display.inputs import DisplayInputs
    from ..display.redraw import SOFTWARE_MAX_PIXELS, is_software_renderer, policy_for
    from ..display.renderer import Renderer
    from ..display.settings import OutputSettings, RendererConfig
    from ..motion.params import ParamStore
    from ..engine.scene import build_scene
    from ..supervise import Supervisor
    from .budget import BudgetPolicy
    from .latch import Vsync
    from .onsets import OnsetTimes
    from .worker import FrameWorker

    preset = load_preset("default")
    scene = build_scene(model, preset, device)
    log(f"scene ready: {scene.G.img_resolution}² on {device} ({scene.synth.precision}) in {scene.built_in_s:.1f} s")
    rate = 48000
    track, click_times = click_track(seconds, rate)
    source = ArraySource(track, rate, "click track")
    detections: list[tuple[float, float]] = []  # (hop adc_time, published_at) of hops with an onset
    onsets = OnsetTimes()

    def on_features(f) -> None:
        onsets.update(f)
        if any(f.onsets):
            detections.append((f.adc_time, f.published_at))

    audio = AudioEngine(source, AnalysisConfig(hop_s=hop_s), on_features=on_features)
    params = ParamStore(scene.engine.param_specs())
    frames: LatestSlot = LatestSlot()
    frame_log: list[tuple[int, float, float, float, float, int]] = []  # index, t_audio, t_ready, latent, gen, res
    lock = threading.Lock()

    def on_frame(frame, stats) -> None:
        with lock:
            frame_log.append((frame.index, frame.t_audio, frame.t_ready, stats.latent_ms, stats.generation_ms,
                              frame.resolution))

    policy = BudgetPolicy(display_hz=display_hz, min_fps=min_fps)
    # The virtual display's refresh times, for the worker's latch. The display picks a frame up at
    # the tick itself (its draw is measured after that, in "upload + draw + wait for vsync").
    vsync: LatestSlot = LatestSlot()
    worker = FrameWorker(scene, audio.latest, params, frames, policy, log=log, onsets=onsets.latest, on_frame=on_frame,
                         new_features=onsets.hop, vsync=vsync if latch else None)
    renderer = Renderer.offscreen(output, RendererConfig(display_hz=display_hz))
    gl = str(renderer.ctx.info.get("GL_RENDERER", ""))
    software = is_software_renderer(gl)
    if redraw == "live" and software:  # as the live show does on this renderer
        renderer.release()
        renderer = Renderer.offscreen(output, RendererConfig(display_hz=display_hz, max_internal_pixels=SOFTWARE_MAX_PIXELS))
    redraw_policy = policy_for(display_hz, software) if redraw == "live" else None
    settings = OutputSettings.from_preset(preset.display)  # the default preset's effect chain, as played live
    log(f"display: {gl}, effects at {renderer.internal_size[0]}x{renderer.internal_size[1]}, redraw "
        f"{'as the live show does' if redraw_policy else 'every tick'}; upload path: {renderer.upload_path}"
        + (f" ({renderer.upload_path_reason})" if getattr(renderer, "upload_path_reason", "") else ""))
    shown: list[tuple[int, float]] = []  # (frame index on screen, time the picture was ready)
    supervisor = Supervisor()
    audio.start(supervisor)
    t_audio0 = source._t0  # the array source's clock origin: sample i reaches the "ADC" at t0 + i / rate
    supervisor.spawn("generator", worker.run, label="GENERATOR", on_restart=worker.restart)
    period = 1.0 / display_hz
    ticks = overruns = missed = skipped = 0
    last_index = -1
    last_draw = -1e9
    warmup_ticks = int(display_hz * 1.0)
    try:
        start = time.perf_counter()
        next_tick = start + period
        while time.perf_counter() - start < seconds and not audio.ended.is_set():
            now = time.perf_counter()
            if now < next_tick:
                time.sleep(next_tick - now)
            tick = next_tick
            next_tick += period
            vsync.publish(Vsync(tick, period))
            renderer.pull(frames)
            ticks += 1
            if redraw_policy is not None and not redraw_policy.due(new_frame=renderer.has_new_frame, animated=renderer.animating,
                                                                   since_last_s=tick - last_draw):
                skipped += 1
                continue
            last_draw = tick
            stats = renderer.render(DisplayInputs.from_features(audio.latest(), tick, onset_time=onsets.newest), settings)
            renderer.ctx.finish()  # the picture is ready for the swap only when the GPU is done
            done = time.perf_counter()
            if done > tick + period:
                overruns += 1
                next_tick = max(next_tick, done)  # a late picture takes the next vsync; don't pile up
            if stats.frame_index >= 0:
                shown.append((stats.frame_index, done))
                if ticks > warmup_ticks and stats.frame_index == last_index:
                    missed += 1
                last_index = stats.frame_index
    finally:
        audio.stop()
        supervisor.stop(timeout=10)
        renderer.release()
    clicks = []
    abs_clicks = [t_audio0 + c for c in click_times]
    for c in abs_clicks:
        det = next(((adc, pub) for adc, pub in detections if 0 <= adc - c < 0.05), None)
        if det is None:
            continue
        frame = next((f for f in frame_log if f[1] >= det[0]), None)
        if frame is None:
            continue
        show = next((t for idx, t in shown if idx >= frame[0]), None)
        if show is None:
            continue
        start_t = frame[2] - (frame[3] + frame[4]) / 1000
        clicks.append(ClickResult(c, det[1], start_t, frame[2], show, frame[3], frame[4]))
    elapsed = max(1e-6, (frame_log[-1][2] - frame_log[0][2])) if len(frame_log) > 1 else 1.0
    fps = (len(frame_log) - 1) / elapsed if len(frame_log) > 1 else 0.0
    log(f"{len(clicks)} of {len(abs_clicks)} clicks traced through to the screen")
    return LiveBenchResult(clicks, ticks, missed, overruns, fps, scene.G.img_resolution, output,
                           sorted({f[5] for f in frame_log}), skipped=skipped,
                           analysis_ms=_analysis_ms(audio), hop_ms=hop_s * 1000.0, latched=latch)


def print_live_bench(result: LiveBenchResult, log=print) -> None:
    log(f"generator {result.resolution}², output {result.output[0]}x{result.output[1]}: "
        f"{result.fps:.1f} generated fps, {result.ticks} display ticks at 60 Hz, "
        f"{result.missed} drawn without a new frame, {result.skipped} not redrawn, {result.overruns} late pictures; "
        f"frame sizes used {result.budget_steps}; {result.hop_ms:g} ms hops, analysis {result.analysis_ms[0]:.2f} ms "
        f"per hop (max {result.analysis_ms[1]:.1f} ms); frames "
        + ("timed to the refresh (latched)" if result.latched else "started on every hop"))
    for stage, (p50, p95) in result.stage_ms().items():
        log(f"  {stage:<40} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
