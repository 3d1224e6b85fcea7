"""`vjgan render`: an audio file becomes a video with its soundtrack, using the live show's engine.

    prepare()  every check that can fail on the user's input, before any work: codec, output
               path, audio file, preset, model, encoder start-up (one line each, as UserError)
    run()      the file's clock drives the same analyzer and latent engine as the live show;
               frames are generated in batches on their own thread, placed and post-processed
               with the live look and converted to 4:2:0 on another, and encoded on a third
               (stages.py: bounded queues between them; --serial runs the first three in turn)

A render stopped with Ctrl-C (or SIGTERM) keeps what it rendered: the frames already handed to
the encoder are encoded, the soundtrack is cut at the last frame, and the file is finished.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .. import __version__
from ..atomic import atomic_write
from ..audio.config import hop_samples
from ..audio.files import MonoStream, count_frames, open_audio, read_mono
from ..config import Preset, load_preset
from ..display.inputs import DisplayInputs
from ..engine.device import pick_device, render_cpu_threads
from ..engine.scene import MotionDriver, Scene, build_scene, model_path_for
from ..engine.synth import Synthesizer
from ..errors import UserError
from ..gan.load import load_generator
from ..gan.networks import Generator
from ..motion.config import with_keyframe_files
from ..motion.latent_files import ResolvedLatents, resolve_latents
from ..motion.latents import LatentEngine
from .codecs import (AudioSettings, ContainerSpec, VideoSettings, audio_settings, container_for,
                     hardware_first, resolve_video_codec)
from .colour import rgb_to_yuv420p
from .encode import EncoderStartError, EncoderThread, VideoFile, check_output_path
from .feed import FeatureFeed
from .options import RenderOptions
from .post import Post, make_post
from .progress import Progress, format_clock
from .stages import Failure, Stage
from .scenes import StoryFilm, StoryMotion, prepare_story, scene_motion
from .soundtrack import Soundtrack
from .story import captions_srt, read_story
from .timeline import Timeline, plan_timeline

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Timings:
    """Where the time went (seconds). Each stage's own working time; overlapped (the default),
    the wall time is set by the slowest stage, not by their sum."""

    startup: float = 0.0  # model, latent statistics, precision choice, encoder start (not in the speed)
    catch_up: float = 0.0  # analysis and motion before --start
    motion: float = 0.0  # analysis and latent engine for the rendered frames
    generate: float = 0.0  # synthesis (the device synchronised)
    post: float = 0.0  # fit/fill, effects, flash limiter
    convert: float = 0.0  # RGB → 4:2:0 and the copy to host memory
    encode: float = 0.0  # encoder thread: frames → codec → container
    loop: float = 0.0  # wall time from the first frame to the finished file
    frames: int = 0
    video_s: float = 0.0

    def lines(self, encoder: str, batch: int, device: str, post: str, overlapped: bool = True) -> list[str]:
        def row(name: str, seconds: float, extra: str = "", speed: bool = True) -> str:
            per = ""
            if speed and seconds > 0 and self.frames:
                per = f"{self.frames / seconds:8.1f} fps  {self.video_s / seconds:6.2f}x real time"
            return f"  {name:<22}{seconds:8.2f} s  {per}{extra}"

        mode = "stages overlapped, each on its own thread" if overlapped else "stages one after another"
        out = [f"timings: {self.frames} frames, {self.video_s:.2f} s of video; {device}, batch {batch}; {mode}",
               row("startup (not counted)", self.startup, speed=False)]
        if self.catch_up:
            out.append(row("catch-up to --start", self.catch_up, speed=False))
        out += [row("analysis + motion", self.motion), row("generation", self.generate),
                row(f"post ({post})", self.post), row("4:2:0 + download", self.convert),
                row("encoding", self.encode, f"  [{encoder}]"),
                row("total (wall)", self.loop)]
        return out


@dataclass
class RenderResult:
    out: Path
    frames: int  # frames in the file
    duration_s: float
    interrupted: bool
    timings: Timings = field(default_factory=Timings)
    encoder: str = ""  # e.g. "libx264, preset medium, crf 18"
    post: str = ""  # "gl" or "tensor"
    device: str = ""  # e.g. "NVIDIA H100 80GB HBM3 (fp16-all)"
    most_ahead: int = 0  # most frames generated but not yet encoded at any moment (bounded by the queues)
    queue_depths: tuple[int, int] = (0, 0)  # most batches ever waiting for the generator, and for the post stage


@dataclass
class Job:
    """Everything prepared and checked; holds the open output file until run() finishes it."""

    options: RenderOptions
    preset: Preset
    G: Generator
    latents: ResolvedLatents
    device: torch.device
    timeline: Timeline
    analysis: MonoStream  # the file's mono mix, read as the analysis advances
    rate: int
    size: tuple[int, int]
    video: VideoSettings
    audio: AudioSettings
    soundtrack: Soundtrack
    file: VideoFile
    started: float
    log: Log
    story: StoryFilm | None = None

    def abort(self) -> None:
        self.file.abort()
        self.close_audio()

    def close_audio(self) -> None:
        """Close the two readers of the audio file (analysis and soundtrack)."""
        self.analysis.reader.close()
        self.soundtrack.close()


# ---------------------------------------------------------------------------------------------
# preparation: every user-input check, before any work


def prepare(options: RenderOptions, log: Log = _stderr) -> Job:
    started = time.perf_counter()
    check_output_path(options.out, options.audio, options.force)
    container: ContainerSpec = container_for(options.out)
    codec = resolve_video_codec(options.codec, container)
    with ExitStack() as cleanup:  # closes what was opened if a later check fails
        # The audio file is read twice, in step with the frames: by the analysis, and by the
        # soundtrack (on the encoder's thread). A three-hour set is never held in memory.
        reader = cleanup.enter_context(open_audio(options.audio))  # AudioFileError (one line) if unreadable
        rate, channels = reader.rate, reader.channels
        scenes = read_story(options.story) if options.story is not None else None
        total = reader.frames or count_frames(options.audio)  # (a stream that declares no length)
        preset = load_preset(options.preset)
        preset = dataclasses.replace(preset, motion=with_keyframe_files(preset.motion, options.keyframes))
        model_path = model_path_for(preset, options.model)
        G = load_generator(model_path)
        # Keyframe and direction files are read now: a file made for another model is one line
        # before anything is written.
        prompts = None
        if preset.motion.keyframes.prompts and options.clip and options.clip_arch:
            from ..prompt.cache import PromptKeyframes
            from ..prompt.clip import load_clip

            prompts = PromptKeyframes(load_clip(options.clip, options.clip_arch), options.search, log=log)
        latents = resolve_latents(G, preset.motion, preset.path.parent if preset.path is not None else None, prompts)
        device = pick_device(options.device)
        size = options.size or (G.img_resolution, G.img_resolution)
        hop = hop_samples(rate, preset.audio.hop_s)
        timeline = plan_timeline(options.fps, rate, hop, total, options.start, options.duration)
        video = VideoSettings(codec, size[0], size[1], options.fps, options.quality, options.encoder_preset)
        video.check()
        if options.captions and options.out.with_suffix(".srt").exists() and not options.force:
            raise UserError(f"{options.out.with_suffix('.srt')} exists (the captions); pass --force to replace it")
        story = None
        if scenes is not None:
            # A story is laid over the whole song (its bar grid is fitted to all of it), so a section
            # (--start, --duration) is that part of the film. A song, not a night's set: read whole.
            with open_audio(options.audio) as whole:
                mono = read_mono(whole)
            story = prepare_story(scenes, options.clip, options.clip_arch, mono, rate, preset.audio, len(mono) / rate,
                                  options.fade_beats, options.search, device)
            del mono
        audio = audio_settings(container.audio_codec, rate, channels)
        soundtrack = Soundtrack(cleanup.enter_context(open_audio(options.audio)), audio.rate, audio.channels, timeline)
        metadata = {"comment": f"vjgan {__version__} render: preset {preset.name}, model {model_path.name}, "
                               f"seed {_seed(options, preset)}, start frame {timeline.first_frame} at {timeline.fps} fps"}
        # The encoder starts (or says why not): NVENC first on an NVIDIA GPU, unless asked otherwise.
        file, video = open_video(options, container, video, soundtrack, audio, metadata, device.type == "cuda", log)
        cleanup.pop_all()  # the job owns the readers from here
    log(f"{options.audio.name}: {format_clock(total / rate)} at {rate} Hz, {channels} channel(s) → {options.out.name}: "
        f"{size[0]}x{size[1]} at {float(options.fps):g} fps, {timeline.frames} frames "
        f"({format_clock(timeline.duration_s)} from {format_clock(timeline.time(timeline.first_frame))}); "
        f"{video.describe()} + {audio.codec} {audio.rate} Hz")
    for line in story.describe() if story else []:
        log(line)
    return Job(options, preset, G, latents, device, timeline, MonoStream(reader), rate, size, video, audio, soundtrack, file,
               started, log, story)


def open_video(options: RenderOptions, container: ContainerSpec, video: VideoSettings, soundtrack: Soundtrack | None,
               audio: AudioSettings | None, metadata: dict[str, str], gpu: bool, log: Log) -> tuple[VideoFile, VideoSettings]:
    """The output file with its encoder started, and the settings it runs with.

    When nothing about the encoder was asked for (no --codec, --encoder-preset or --quality) and
    the render runs on an NVIDIA GPU, hardware H.264 (NVENC) is tried first: it takes the
    encoding off the CPU. A GPU without the encoder block (an H100, an H200) refuses to open it,
    and the container's default (libx264) runs instead; the log says which and why."""
    auto = options.codec is None and options.encoder_preset is None and options.quality is None
    hardware = hardware_first(container, gpu) if auto else None
    if hardware is not None:
        nvenc = dataclasses.replace(video, codec=hardware)
        try:
            return VideoFile(options.out, container, nvenc, soundtrack, audio, metadata), nvenc
        except EncoderStartError as e:
            log(f"encoder: {hardware} does not start on this GPU ({e.reason}); {video.codec} instead")
    return VideoFile(options.out, container, video, soundtrack, audio, metadata), video


def _seed(options: RenderOptions, preset: Preset) -> int:
    return preset.motion.seed if options.seed is None else options.seed


# ---------------------------------------------------------------------------------------------
# the render


@contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM stops a render like Ctrl-C does (the file is finished), while this block runs."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def stop(signum, frame):  # noqa: ARG001 - the signal module's signature
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _finishing(log: Log) -> Iterator[None]:
    """While the file is being finished, a further Ctrl-C only says to wait (it takes a moment)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def wait(signum, frame):  # noqa: ARG001
        log("finishing the video file; one moment")

    previous_int = signal.signal(signal.SIGINT, wait)
    previous_term = signal.signal(signal.SIGTERM, wait) if hasattr(signal, "SIGTERM") else None
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_int)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class _MotionBatch:
    """What the generator needs for a run of frames, and what the post stage needs beside it."""

    ws: np.ndarray  # [N, num_ws, w_dim]
    noise_gains: np.ndarray  # [N, num_layers]
    inputs: list[DisplayInputs]


@dataclass
class _FrameBatch:
    frames: torch.Tensor  # uint8 RGBA [N, R, R, 4] on the generator's device
    inputs: list[DisplayInputs]


@dataclass
class _Pipeline:
    """The per-frame machinery of one render, built after every input check has passed.

    Three steps per batch: `motion` (analysis and the latent engine, on the calling thread),
    `generate` (synthesis, on its own CUDA stream when threaded on a GPU) and `finish` (post,
    4:2:0 and the download); vjgan.render.stages runs them overlapped, or one after another."""

    synth: Synthesizer
    driver: MotionDriver | StoryMotion
    feed: FeatureFeed
    timeline: Timeline
    device: torch.device
    timings: Timings
    stream: "torch.cuda.Stream | None" = None
    generated: int = 0  # frames generated so far (read by the encoder's progress callback)

    def catch_up(self) -> None:
        """Analysis and motion from the top of the file to the first rendered frame, so a section
        render is exactly that part of a full render (same tempo lock, same drift position)."""
        tl = self.timeline
        for k in range(tl.first_frame):
            features = self.feed.features_until(tl.hops_before(k))
            self.driver.step(tl.time(k), features, self.feed.onsets.latest())

    def motion(self, ks: range) -> _MotionBatch:
        """Frames `ks` (indices from the start of the file): their w+, noise gains and display inputs."""
        tl, feed = self.timeline, self.feed
        t0 = time.perf_counter()
        ws, gains, inputs = [], [], []
        for k in ks:
            now = tl.time(k)
            features = feed.features_until(tl.hops_before(k))  # the newest hop at or before this frame
            m = self.driver.step(now, features, feed.onsets.latest())
            ws.append(m.ws)
            gains.append(m.noise_gains)
            inputs.append(DisplayInputs.from_features(features, now, onset_time=feed.onsets.newest))
        batch = _MotionBatch(np.stack(ws), np.stack(gains), inputs)
        self.timings.motion += time.perf_counter() - t0
        return batch

    def generate(self, _state: object, batch: _MotionBatch) -> _FrameBatch:
        t0 = time.perf_counter()
        if self.stream is not None:
            with torch.cuda.stream(self.stream):
                frames = self.synth.frames(batch.ws, batch.noise_gains)
            self.stream.synchronize()  # finished before the post stage reads it (and timed honestly)
        else:
            frames = self.synth.frames(batch.ws, batch.noise_gains)
            _sync(self.device)
        self.timings.generate += time.perf_counter() - t0
        self.generated += len(frames)
        return _FrameBatch(frames, batch.inputs)

    def finish(self, post: Post, batch: _FrameBatch) -> np.ndarray:
        """Post-process, convert to 4:2:0 and download: uint8 yuv420p [N, H·3/2, W] in host memory."""
        frames = batch.frames
        if frames.is_cuda and self.stream is not None:
            # Made on the generator's stream, used and freed on this thread's: the allocator must
            # not hand the memory back to the generator before this stream is done with it.
            frames.record_stream(torch.cuda.current_stream(frames.device))
        t0 = time.perf_counter()
        pictures = post.process(frames, batch.inputs)
        _sync(self.device)
        t1 = time.perf_counter()
        yuv = rgb_to_yuv420p(pictures.to(self.device)).cpu().numpy()
        self.timings.post += t1 - t0
        self.timings.convert += time.perf_counter() - t1
        return yuv


def _motion(job: Job, scene: Scene, seed: int) -> MotionDriver | StoryMotion:
    """What the render steps: the preset's engine, or a story's scenes (one engine each, with the
    preset's routes and the scene's keyframes found by CLIP)."""
    preset, G = job.preset, job.G
    if job.story is None:
        return MotionDriver.for_render(scene.engine, preset.params)
    plan = job.story.plan
    keyframes = job.story.keyframes(G, scene.space, job.log, job.options.progress)

    def scene_driver(i: int) -> MotionDriver:
        config = scene_motion(preset.motion, plan.scenes[i], len(keyframes[i]), plan.grid.period, seed + i)
        engine = LatentEngine(scene.space, keyframes[i], G.num_ws, scene.synth.num_layers, config,
                              transformable=scene.synth.has_transform)
        return MotionDriver.for_render(engine, preset.params)

    return StoryMotion(plan, scene_driver)


def _build(job: Job, seed: int, timings: Timings) -> _Pipeline:
    preset, device = job.preset, job.device
    scene: Scene = build_scene(job.G, preset, device, seed=seed, live=False, latents=job.latents, log=job.log)
    driver = _motion(job, scene, seed)
    feed = FeatureFeed(job.analysis, preset.audio)
    stream = torch.cuda.Stream(device) if overlapped(job) else None
    return _Pipeline(scene.synth, driver, feed, job.timeline, device, timings, stream)


def overlapped(job: Job) -> bool:
    """Generation and post on threads of their own: on CUDA only. On a CPU the two stages share
    the cores and torch's thread pool, which buys no speed (docs/benchmarks.md) and, under load,
    made two renders with one seed differ by a few levels in some frames (torch CPU ops from two
    threads at once); one after another, a CPU render is the same for a seed."""
    return job.options.pipeline and job.device.type == "cuda"


def _make_post(job: Job) -> Post:
    return make_post(job.size, job.preset.display, float(job.timeline.fps), job.options.use_gl, job.log,
                     frames_on_gpu=job.device.type == "cuda")


def _close_post(post: Post | None) -> None:
    if post is not None:
        post.close()


def _end_stages(stages: list[Stage | None], stop: bool) -> None:
    """Finish the stages in order; on a stop, the first drops what it has not started (so the
    video is an unbroken run of frames) and the others finish what they hold."""
    for i, stage in enumerate(stages):
        if stage is None:
            continue
        if stop and i == 0:
            stage.drop_waiting()
        stage.finish()


def run(job: Job) -> RenderResult:
    opts, tl, log = job.options, job.timeline, job.log
    t = Timings()
    seed = _seed(opts, job.preset)
    failure = Failure()
    post: Stage | None = None
    try:
        pipe = _build(job, seed, t)
        # Made on its own thread when threaded: a GL context belongs to the thread that made it.
        post = Stage("post", pipe.finish, lambda yuv: encoder.put(yuv), failure, threaded=overlapped(job),
                     setup=lambda: _make_post(job), teardown=_close_post)
        failure.raise_if_set()
    except BaseException:
        if post is not None:
            post.finish()
        job.abort()
        raise
    log(f"model {job.G.img_resolution}x{job.G.img_resolution} on {job.device.type} "
        f"({pipe.synth.precision}), batch {opts.batch}, seed {seed}; "
        + ("generation, post and encoding overlapped" if overlapped(job) else "stages one after another"))
    t.startup = time.perf_counter() - job.started

    progress = Progress(tl.frames, float(tl.fps), enabled=opts.progress)
    encoder: EncoderThread | None = None
    generator: Stage | None = None
    most_ahead = 0

    def on_frame(written: int) -> None:  # the encoder's thread, after each frame
        nonlocal most_ahead
        most_ahead = max(most_ahead, pipe.generated - written)
        progress.update(written)

    interrupted = False
    loop_start = time.perf_counter()
    try:
        with _stop_signals():
            if tl.first_frame > 0:
                log(f"catching up to {format_clock(tl.time(tl.first_frame))} (analysis and motion only)")
                t0 = time.perf_counter()
                pipe.catch_up()
                t.catch_up = time.perf_counter() - t0
            encoder = EncoderThread(job.file, depth=2, on_frame=on_frame)
            generator = Stage("generator", pipe.generate, post.put, failure, threaded=overlapped(job))
            progress.restart()
            progress.update(0, force=True)
            for k0 in range(tl.first_frame, tl.end_frame, opts.batch):
                generator.put(pipe.motion(range(k0, min(k0 + opts.batch, tl.end_frame))))
    except KeyboardInterrupt:
        interrupted = True  # keep what was rendered: finished below
    except BaseException:
        _end_stages([generator, post], stop=True)
        if encoder is not None:
            encoder.abort()
        else:
            job.abort()
        progress.close(encoder.frames_written if encoder else 0)
        raise
    with _finishing(log):
        if interrupted:
            progress.message("stopping: finishing the video with the frames rendered so far")
        try:
            _end_stages([generator, post], stop=interrupted)
            failure.raise_if_set()
        except BaseException:
            if encoder is not None:
                encoder.abort()
            else:
                job.abort()
            progress.close(encoder.frames_written if encoder else 0)
            raise
        if encoder is None or encoder.drain() == 0:
            # Nothing was rendered: an empty video would not play, so there is no file at all.
            job.abort()
            progress.close(0)
            log(f"stopped before the first frame; {opts.out} was not written")
            raise KeyboardInterrupt
        out = encoder.close()
    frames = encoder.frames_written
    progress.close(frames)
    t.loop = time.perf_counter() - loop_start
    t.encode = encoder.encode_s
    t.frames = frames
    t.video_s = frames / float(tl.fps)
    size_mb = out.stat().st_size / 1e6
    for note in job.analysis.reader.notes():
        log(note)
    if interrupted:
        log(f"stopped: {out} holds the first {frames} frames ({format_clock(t.video_s)}), {size_mb:.1f} MB")
    else:
        log(f"wrote {out}: {frames} frames, {format_clock(t.video_s)}, {size_mb:.1f} MB in "
            f"{format_clock(t.loop)} ({t.video_s / max(t.loop, 1e-9):.2f}x real time)")
    if opts.captions and job.story is not None:
        captions = atomic_write(out.with_suffix(".srt"), captions_srt(job.story.plan, tl.time(tl.first_frame),
                                                                      tl.time(tl.first_frame) + t.video_s))
        log(f"wrote {captions}: the story's {len(job.story.plan.scenes)} scenes as captions")
    device = pipe.synth.describe()
    post_kind = post.state.kind
    if opts.timings:
        for line in t.lines(job.video.describe(), opts.batch, device, post_kind, overlapped(job)):
            log(line)
    return RenderResult(out, frames, t.video_s, interrupted, t, job.video.describe(), post_kind, device,
                        most_ahead=most_ahead, queue_depths=(generator.high_water if generator else 0, post.high_water))


@contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """Set torch's CPU threads for a render and put the previous count back after it."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count:
            torch.set_num_threads(previous)


def render(options: RenderOptions, log: Log = _stderr) -> RenderResult:
    """Check everything, then render; a stopped render still returns (interrupted=True)."""
    job = prepare(options, log)
    try:
        with _torch_threads(render_cpu_threads(job.device, options.threads)):
            return run(job)
    finally:
        job.close_audio()
