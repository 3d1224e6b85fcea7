"""`vjgan live`: wires audio → features → latents → frames → screen and runs the show.

Threads, all long-lived ones under one supervisor (`vjgan.supervise`): the audio capture thread
publishes Features; the frame worker turns the newest Features and a parameter snapshot into
frames; the scene builder prepares the next preset's scene; MIDI reads its ports; the autosave
writes the running state. A fault in any of them is logged, shown as an alarm line on the HUD and
the operator window, and the thread restarts; a watchdog reports stalls that raise nothing.

This, the main thread, owns the window and its GL context (glfw must run here on macOS), the one
command queue (every key, click, MIDI message and OSC message arrives there as a typed command),
and scene changes (the director commits a finished build whole). Per turn: events, commands,
scene commits, then the newest frame drawn at the display's refresh.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..alarms import AlarmBoard
from ..config import Preset, available_presets, load_preset
from ..control.commands import CommandQueue, Portrait, Prompt, action_command
from ..engine.device import live_cpu_threads, pick_device
from ..engine.scene import Scene, build_scene, model_path_for
from ..errors import UserError
from ..handover import LatestSlot
from ..motion.params import ParamSpec, ParamStore
from ..paths import data_dir
from ..supervise import Supervisor
from .autosave import Autosaver, RunningState, read_running_state
from .budget import BudgetPolicy
from .director import SceneDirector, SceneRequest
from .finder import KeyframeFinder, PortraitSettings
from .onsets import OnsetTimes
from .saving import TRANSIENT_PARAMS, PresetSaver, midi_mappings
from .steer import Steering

if TYPE_CHECKING:
    from ..rig.rig import RigOptions
    from .report import ShowReport

log = logging.getLogger(__name__)

# Parameters that belong to the show rather than to a preset's routes.
SHOW_PARAMS = (
    ParamSpec("master", 1.0, 0.0, 1.0, 0.05, "output brightness", "output"),
    ParamSpec("blackout", 0.0, 0.0, 1.0, 0.0, "fade the output to black", "output", toggle=True),
    ParamSpec("freeze", 0.0, 0.0, 1.0, 0.0, "hold the picture", "output", toggle=True),
    ParamSpec("morph", 1.0, 0.0, 10.0, 0.0, "cross-fade length when a preset or model changes (s)", "output"),
)

AUDIO_STALL_S = 0.5  # no analysis hop for this long while the input runs: a stall
FRAME_STALL_S = 2.0  # no new frame for this long (not frozen): a stall


@dataclass(frozen=True)
class LiveOptions:
    preset: str = "default"
    model: str | None = None
    audio: str | None = None
    file: str | None = None
    demo: bool = False
    audio_backend: str = "sounddevice"
    channel: str | None = None
    gain_db: float = 0.0
    monitor_audio: bool = False  # also play a file or the demo to the speakers
    monitor: str | None = None  # output monitor (name substring or index)
    fullscreen: bool = False
    window_size: tuple[int, int] = (1280, 720)
    midi: tuple[str, ...] = ()
    device: str | None = None
    min_fps: float = 24.0
    duration: float | None = None  # stop after this many seconds (rehearsal scripts, tests)
    fresh: bool = False  # ignore the autosaved running state
    state_file: str | None = None  # default: the user's data folder
    operator: bool = True  # the operator window on the laptop screen (vjgan/operator)
    hud: bool = False  # text HUD over the output picture, for single-screen rehearsal
    ui_scale: float = 1.0  # the operator console's size, times the monitor's content scale
    rig: Optional["RigOptions"] = None  # OSC, Link, video outputs, recording (vjgan/rig); None: none of them
    portrait: str | None = None  # a photo to project and play once the show runs (the living portrait)
    portrait_steps: int = 300
    portrait_align: str = "face"
    clip: str | None = None  # CLIP weights and architecture, for prompts (vjgan[prompt]; docs/prompts.md)
    clip_arch: str | None = None
    prompts: tuple[str, ...] = ()  # words to find a picture for once the show runs
    hop_s: float | None = None  # analysis hop (--hop-ms); None: the preset's
    latch: bool = True  # time each frame's start to the next vsync (vjgan/live/latch.py); --no-latch: every hop


def autosave_path(options: LiveOptions) -> Path:
    return Path(options.state_file) if options.state_file else data_dir() / "running-state.toml"


class LiveShow:
    def __init__(self, options: LiveOptions) -> None:
        self.options = options
        self.alarms = AlarmBoard()
        self.supervisor = Supervisor(self.alarms)
        self.commands = CommandQueue()
        self.steering = Steering(self)
        self.params = ParamStore(SHOW_PARAMS)
        self.frames: LatestSlot = LatestSlot()
        self.vsync: LatestSlot = LatestSlot()  # the display's refresh times, for the frame worker's latch
        self.onsets = OnsetTimes()
        self.preset: Preset = load_preset(options.preset)
        self.target_preset_name = self.preset.name  # the newest preset asked for (→ steps from here)
        self.model_override: Optional[str] = options.model
        self.presets = available_presets()
        self.autosaver = Autosaver(autosave_path(options))
        self.finder = KeyframeFinder(self.post, portrait=PortraitSettings(options.portrait_steps, options.portrait_align),
                                     clip_file=options.clip, clip_arch=options.clip_arch)
        self.saver = PresetSaver()
        self._saves_seen = 0
        self._restored: Optional[RunningState] = None
        self._restored_layout = None  # the console's window layout from the last show, whatever it played
        self._stop = threading.Event()
        self._last_offer = 0.0
        self._last_draw = -1e9
        self._redraws = 0
        self.redraw = None  # RedrawPolicy, chosen when the renderer knows its GL
        self.audio = None
        self.worker = None
        self.director: Optional[SceneDirector] = None
        self.midi = None
        self.window = None
        self.renderer = None
        self.console = None  # operator window and output HUD (vjgan/operator), if any
        self.rig = None  # OSC, Link, video outputs, recording (vjgan/rig)
        self._output_base: tuple[Any, Any] = (None, None)

    def log(self, message: str) -> None:
        log.info("%s", message)

    def post(self, command) -> None:
        """The one way in: any thread, any input."""
        self.commands.post(command)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        import torch

        from ..audio.capture import parse_channel
        from ..audio.engine import AudioEngine, open_source
        from ..display.window import OutputWindow, WindowConfig
        from .worker import FrameWorker

        opts = self.options
        device = pick_device(opts.device)
        threads = live_cpu_threads(device)
        if threads:
            torch.set_num_threads(threads)  # leave a core to the audio thread and the display
        self.finder.load_clip()  # a CLIP that cannot load is one line now, not at the first prompt
        # The window first: with no display there is nothing to play on, and we say so at once.
        self.window = OutputWindow(WindowConfig(monitor=opts.monitor, fullscreen=opts.fullscreen, size=opts.window_size),
                                   on_action=self._on_key_action)
        source = open_source(opts.audio, file=opts.file, demo=opts.demo, channel=parse_channel(opts.channel),
                             backend=opts.audio_backend, loop=opts.file is not None, monitor=opts.monitor_audio,
                             on_status=self.log)
        self.audio = AudioEngine(source, self.preset.audio.with_gain(opts.gain_db).with_hop(opts.hop_s),
                                 on_features=self.onsets.update)
        self.audio.start(self.supervisor)
        self.log(f"audio: {source.name}")
        # The first scene is built here, before anything plays: without it there is no show, and a
        # model that cannot load ends the start with its one line.
        scene = build_scene(model_path_for(self.preset, self.model_override), self.preset, device,
                            prompts=self.finder.prompt_resolver(), log=self.log)
        self._register_scene_params(scene.engine.param_specs(), self.preset)
        if not opts.fresh:
            self._restore_running_state()
        self.log(f"{scene.name}: {scene.G.img_resolution}² on {device.type} ({scene.synth.precision}), "
                 f"ready in {scene.built_in_s:.1f} s")
        policy = BudgetPolicy(display_hz=self.window.refresh_hz, min_fps=opts.min_fps)
        self.worker = FrameWorker(scene, self.audio.latest, self.params, self.frames, policy, log=self.log,
                                  onsets=self.onsets.latest, new_features=self.onsets.hop, wake=self.window.wake,
                                  vsync=self.vsync if opts.latch else None)
        self.commands.add_waker(self.window.wake)
        self.supervisor.spawn("generator", self.worker.run, label="GENERATOR", failing="holding the last picture",
                              on_restart=self.worker.restart)
        self.director = SceneDirector(device, on_commit=self._commit_scene)
        self.director.prompts = self.finder.prompt_resolver()
        self.supervisor.spawn("scene-builder", self.director.run, label="SCENE BUILDER")
        self.supervisor.spawn("finder", self.finder.run, label="KEYFRAME FINDER")
        if opts.portrait:
            self.post(Portrait(opts.portrait, source="cli"))
        for text in opts.prompts:
            self.post(Prompt(text, source="cli"))
        self.supervisor.spawn("autosave", self.autosaver.run, label="AUTOSAVE")
        self._watch()
        self._start_renderer()
        self._start_midi()
        self._start_rig()
        self._start_operator()

    def _watch(self) -> None:
        audio, worker = self.audio, self.worker
        self.supervisor.watch("audio-stalled", "NO AUDIO ANALYSIS for {age:.1f} s", AUDIO_STALL_S, audio.hop_age)
        lost = _LostSince(lambda: audio.latest().connected and not audio.ended.is_set())
        if audio.source.kind == "device":
            self.supervisor.watch("audio-lost", "AUDIO LOST — reconnecting", 0.0, lost.age)
        self.supervisor.watch("frames-stalled", "NO NEW FRAME for {age:.1f} s", FRAME_STALL_S, worker.frame_age)

    def _start_renderer(self) -> None:
        from ..display.flash import FlashSafetyConfig
        from ..display.redraw import SOFTWARE_MAX_PIXELS, is_software_renderer, policy_for
        from ..display.renderer import Renderer, RendererConfig

        flash = FlashSafetyConfig(max_changes_per_s=self.preset.display.flash_limit_per_s)
        gl = str(self.window.ctx.info.get("GL_RENDERER", ""))
        software = is_software_renderer(gl)
        hz = self.window.refresh_hz
        self.renderer = Renderer(self.window.ctx, self.window.framebuffer_size,
                                 RendererConfig(display_hz=hz, flash=flash,
                                                max_internal_pixels=SOFTWARE_MAX_PIXELS if software else None))
        self.redraw = policy_for(hz, software)
        if software:
            w, h = self.renderer.internal_size
            self.log(f"software OpenGL ({gl}): effects are drawn at up to {w}x{h} and redrawn at most "
                     f"{self.redraw.animation_hz:g} times a second between frames, so the sound analysis keeps "
                     "its cores; a GPU driver lifts this")
        if self.renderer.flash_warning:
            self.log(self.renderer.flash_warning)

    def _start_midi(self) -> None:
        # Every input port unless --midi names some: a controller plugged in (now or later) just works.
        # The autosaved map (learned during the last show with this preset) supersedes the preset's.
        restored = list(self._restored.midi) if self._restored and self._restored.midi else None
        mappings = restored if restored else list(self.preset.midi)
        from .midi_link import start_midi

        try:
            self.midi = start_midi(self, self.options.midi, mappings)
        except UserError as e:
            self.log(str(e))  # the show goes on without the controller

    def _start_rig(self) -> None:
        # Always: the record, tempo and quantize commands are carried out there, even with no rig options.
        from ..rig.rig import Rig, RigOptions

        self.rig = Rig(self, self.options.rig or RigOptions())
        self.rig.start()

    def _start_operator(self) -> None:
        if not (self.options.operator or self.options.hud):
            return
        from ..operator.console import start_console

        self.console = start_console(self, operator=self.options.operator, hud=self.options.hud,
                                     ui_scale=self.options.ui_scale, layout=self._restored_layout)

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        """Stop every thread and save the running state; safe to call more than once."""
        if self.midi is not None:
            try:
                self.midi.stop()
            except Exception as e:  # closing a port must not keep the rest from shutting down
                self.log(f"MIDI did not close cleanly: {e}")
        if self.rig is not None:  # first: a recording is finished while everything still runs
            self.rig.shutdown()
        if self.audio is not None:
            self.audio.stop()
        self.supervisor.stop()
        if self.worker is not None:
            self.autosaver.offer(self.running_state())
            self.autosaver.write_pending()
        self.saver.wait()
        if self.console is not None:  # operator window first: it shares the output's GL objects
            self.console.close()
        if self.renderer is not None:
            self.renderer.release()
        if self.window is not None:
            self.window.close()

    # -- the main loop ---------------------------------------------------------------------------

    def run(self) -> int:
        """Start, play until quit / SIGINT / SIGTERM / --duration, shut down. Returns an exit code."""
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, lambda *_: self._stop.set())
            except ValueError:  # not the main thread (embedding): the caller stops us
                pass
        try:
            self.start()
            started = time.perf_counter()
            while not self._stop.is_set():
                self.turn()
                if self.window.should_close:
                    break
                if self.options.duration is not None and time.perf_counter() - started >= self.options.duration:
                    break
            self.log(self.report(time.perf_counter() - started).line())
            return 0
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def report(self, seconds: float) -> "ShowReport":
        from .report import ShowReport

        stats = self.worker.stats.latest() if self.worker is not None else None
        hops = self.audio.stats if self.audio is not None else None
        return ShowReport(
            seconds=seconds, frames=stats.frame_index if stats is not None else 0, redraws=self._redraws,
            generation_ms=stats.generation_ms if stats is not None else None,
            analysis_ms_mean=hops.analysis_s / hops.hops * 1000 if hops is not None and hops.hops else None,
            analysis_ms_max=hops.max_analysis_s * 1000 if hops is not None and hops.hops else None,
            alarms=tuple(a.line() for a in self.alarms.shown()))

    def turn(self) -> None:
        """One turn of the main loop: events, commands, scene commits, saves, then the picture, if
        it needs drawing (a new frame, something moving); otherwise a sleep until one of those or
        a command arrives."""
        from ..display.inputs import DisplayInputs

        window, renderer = self.window, self.renderer
        if self.rig is not None:
            self.rig.collect()  # the picture read back last turn, to the outputs and the recorder
        window.poll()
        self.take_commands()
        if window.framebuffer_size != renderer.size:
            renderer.resize(window.framebuffer_size)
        renderer.pull(self.frames)
        settings = self._output_settings()
        now = time.perf_counter()
        since = now - self._last_draw
        new_frame = renderer.has_new_frame and not settings.freeze
        if self.redraw.due(new_frame=new_frame, animated=renderer.animating, since_last_s=since):
            self._last_draw = now
            self._redraws += 1
            inputs = DisplayInputs.from_features(self.audio.latest(), now, onset_time=self.onsets.newest)
            if self.console is not None:  # output (+ HUD), then the operator window when due
                self.console.present(window, renderer, inputs, settings)
            else:
                window.present(renderer, inputs, settings)
            from .latch import DISPLAY_PICKUP_S, Vsync  # the swap returned: a refresh just happened

            self.vsync.publish(Vsync(time.perf_counter(), 1.0 / window.refresh_hz, DISPLAY_PICKUP_S))
            if self.rig is not None:
                self.rig.after_present(renderer, time.perf_counter())
        else:
            wait = self.redraw.wait_s(animated=renderer.animating, since_last_s=since)
            if self.console is not None:
                self.console.refresh_if_due()
                wait = min(wait, self.console.due_in())
            window.wait(wait)
        if now - self._last_offer >= self.autosaver.every_s:
            self._last_offer = now
            self.autosaver.offer(self.running_state())

    def take_commands(self) -> None:
        """Carry out what arrived on the command path, commit a finished scene, follow saves."""
        for command in self.commands.drain():
            self.steering.apply(command)
        if self.director is not None:
            self.director.poll()
        self._follow_saves()

    def _output_settings(self):
        from ..display.settings import OutputSettings

        display = self.preset.display
        if self._output_base[0] is not display:
            # Validating the effect chain is cheap but not free: once per preset, not per refresh.
            self._output_base = (display, OutputSettings.from_preset(display))
        base = self._output_base[1]
        snap = self.params.snapshot()
        return OutputSettings(fit=base.fit, effects=base.effects, master=min(snap.get("master", 1.0), display.master),
                              blackout=snap.get("blackout", 0.0) >= 0.5, freeze=snap.get("freeze", 0.0) >= 0.5)

    # -- inputs ------------------------------------------------------------------------------------

    def _on_key_action(self, action: Any, t: float) -> None:
        """A key on the output window (main thread): its action becomes a command like any other."""
        if not action.is_show_action:
            if action.value == "quit-armed":
                self.log("press Q (or Esc) again within 2 s to quit")
            return
        self.post(action_command(action.value, t=t, source="key"))

    # -- scene changes (main loop) -------------------------------------------------------------------

    def request_preset(self, preset: Preset, reason: str = "") -> None:
        self.target_preset_name = preset.name
        self.director.request(preset, self.model_override, reason=reason)

    def request_model(self, path: str) -> None:
        self.director.request(self.preset, path, reason=f"model {Path(path).name}")

    def _commit_scene(self, request: SceneRequest, scene: Scene) -> None:
        """The new scene and its preset, all at once: name, parameters, shader chain, flash limits,
        and the frame worker's scene (it cross-fades from its next frame)."""
        preset = request.preset
        self._register_scene_params(scene.engine.param_specs(), preset)
        self.params.set("freeze", 0.0)  # a recalled preset never comes up frozen
        self.preset = preset
        self.target_preset_name = preset.name
        self.model_override = request.model
        if self.renderer is not None:
            from ..display.flash import FlashSafetyConfig

            self.renderer.set_flash_safety(FlashSafetyConfig(max_changes_per_s=preset.display.flash_limit_per_s))
        self.worker.adopt(scene)
        self.autosaver.offer(self.running_state(), now=True)

    def _register_scene_params(self, specs: list[ParamSpec], preset: Preset) -> None:
        keep = {s.name for s in SHOW_PARAMS} | {s.name for s in specs}
        for spec in specs:
            self.params.register(spec, preset.params.get(spec.name))
        self.params.unregister_missing(keep)
        unknown = [n for n in preset.params if n not in keep]
        if unknown:
            self.log(f"preset {preset.name}: ignoring saved value of unknown parameter {unknown[0]!r}")

    # -- saving ------------------------------------------------------------------------------------

    def save_preset(self, name: Optional[str] = None) -> None:
        """Save the running values and MIDI map as a new user preset (in the background)."""
        values = dict(self.params.snapshot().values)
        self.saver.save(self.preset, values, midi_mappings(self.midi), self.model_override, name=name)
        self.log(f"saving preset {name}..." if name else "saving a new preset...")

    def _follow_saves(self) -> None:
        result, seq = self.saver.results.read()
        if result is None or seq == self._saves_seen:
            return
        self._saves_seen = seq
        if result.path is None:
            self.log(result.error)
            return
        if result.renamed_from is not None:
            self.presets = available_presets()
            if result.renamed_from == self.preset.name:  # the one playing: same settings, new name
                self.preset = dataclasses.replace(self.preset, name=result.path.stem, path=result.path)
                self.target_preset_name = self.preset.name
            self.log(f"renamed preset {result.renamed_from} to {result.path.stem}")
            return
        try:
            saved = load_preset(result.path)
        except UserError as e:
            self.log(str(e))
            return
        # The show now plays the saved copy: later saves number from it, the autosave names it.
        self.presets = available_presets()
        self.preset = saved
        self.target_preset_name = saved.name
        self.log(f"saved preset {saved.name} ({result.path})")

    # -- running state ---------------------------------------------------------------------------

    def running_state(self) -> RunningState:
        midi = tuple(self.midi.mappings_to_list()) if self.midi is not None else ()
        values = {n: v for n, v in self.params.snapshot().values.items()}
        layout = self.console.layout() if self.console is not None else None
        return RunningState(self.preset.name, values, midi, layout or self._restored_layout)

    def _restore_running_state(self) -> None:
        state = read_running_state(autosave_path(self.options))
        if state is None:
            return
        self._restored_layout = state.layout
        if state.preset != self.preset.name:
            return
        restored = 0
        names = set(self.params.names())
        for name, value in state.params.items():
            if name in names and name not in TRANSIENT_PARAMS:
                self.params.set(name, value, notify=False)
                restored += 1
        self._restored = state
        if restored:
            self.log(f"restored {restored} parameter value{'s' if restored != 1 else ''} from the last show "
                     f"({autosave_path(self.options)})")


class _LostSince:
    """How long a condition has been false (for the "audio lost" watch): None while it holds."""

    def __init__(self, ok: Callable[[], bool], clock: Callable[[], float] = time.monotonic) -> None:
        self._ok = ok
        self._clock = clock
        self._since: Optional[float] = None

    def age(self) -> Optional[float]:
        if self._ok():
            self._since = None
            return None
        if self._since is None:
            self._since = self._clock()
        return self._clock() - self._since


def run_live(options: LiveOptions) -> int:
    return LiveShow(options).run()
