"""`vjgan live`: wires audio → features → latents → frames → screen and runs the show.

Threads: the audio capture thread (AudioEngine) publishes Features; the frame worker turns the
newest Features and a parameter snapshot into frames; this, the main thread, owns the window
(glfw must run there on macOS), draws the newest frame at the display's refresh, handles keys,
preset switches and the autosave. MIDI callbacks only set parameters or invoke actions.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..atomic import atomic_write
from ..config import Preset, available_presets, load_preset
from ..errors import UserError
from ..handover import LatestSlot
from ..motion.params import ParamSpec, ParamStore
from ..paths import data_dir
from .budget import BudgetPolicy
from .onsets import OnsetTimes
from .scene import Scene, SceneBuilder, build_scene, pick_device

AUTOSAVE_EVERY_S = 5.0

# Parameters that belong to the show rather than to a preset's routes.
SHOW_PARAMS = (
    ParamSpec("master", 1.0, 0.0, 1.0, 0.05, "output brightness", "output"),
    ParamSpec("blackout", 0.0, 0.0, 1.0, 0.0, "fade the output to black", "output", toggle=True),
    ParamSpec("freeze", 0.0, 0.0, 1.0, 0.0, "hold the picture", "output", toggle=True),
)


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


def autosave_path(options: LiveOptions) -> Path:
    return Path(options.state_file) if options.state_file else data_dir() / "running-state.toml"


class LiveShow:
    def __init__(self, options: LiveOptions, log: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.log = log or (lambda msg: print(f"vjgan: {msg}", file=sys.stderr, flush=True))
        self.params = ParamStore(SHOW_PARAMS)
        self.frames: LatestSlot = LatestSlot()
        self.onsets = OnsetTimes()
        self.preset: Preset = load_preset(options.preset)
        self.presets = available_presets()
        self._stop = threading.Event()
        self._last_autosave = 0.0
        self.audio = None
        self.worker = None
        self.midi = None
        self.window = None
        self.renderer = None
        self.console = None  # operator window and output HUD (vjgan/operator), if any

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        import torch

        from ..audio.capture import parse_channel
        from ..audio.engine import AudioEngine, open_source
        from ..display.window import OutputWindow, WindowConfig

        opts = self.options
        device = pick_device(opts.device)
        if device.type == "cpu":
            # Leave a core to the audio thread and the display: capture must never starve.
            torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
        # The window first: with no display there is nothing to play on, and we say so at once.
        self.window = OutputWindow(WindowConfig(monitor=opts.monitor, fullscreen=opts.fullscreen, size=opts.window_size),
                                   on_action=self._on_action)
        source = open_source(opts.audio, file=opts.file, demo=opts.demo, channel=parse_channel(opts.channel),
                             backend=opts.audio_backend, loop=opts.file is not None, monitor=opts.monitor_audio,
                             on_status=self.log)
        self.audio = AudioEngine(source, self.preset.audio.with_gain(opts.gain_db), on_features=self.onsets.update)
        self.audio.start()
        self.log(f"audio: {source.name}")
        model = Path(opts.model) if opts.model else self.preset.model_path()
        scene = build_scene(model, self.preset.motion, device, name=self.preset.name,
                            preset_folder=self.preset.path.parent if self.preset.path else None, log=self.log)
        self._register_scene_params(scene, self.preset)
        if not opts.fresh:
            self._restore_running_state()
        self.log(f"{scene.name}: {scene.G.img_resolution}² on {device.type} ({scene.backend.fast.precision}), "
                 f"ready in {scene.built_in_s:.1f} s")
        from .worker import FrameWorker

        policy = BudgetPolicy(display_hz=self.window.refresh_hz, min_fps=opts.min_fps)
        self.worker = FrameWorker(scene, self.audio.latest, self.params, self.frames, policy, log=self.log,
                                  onsets=self.onsets.latest, new_features=self.onsets.hop)
        self.worker.start()
        self._start_renderer()
        self._start_midi()
        self._start_operator()

    def _start_renderer(self) -> None:
        from ..display.flash import FlashSafetyConfig
        from ..display.renderer import Renderer, RendererConfig

        flash = FlashSafetyConfig(max_changes_per_s=self.preset.display.flash_limit_per_s)
        self.renderer = Renderer(self.window.ctx, self.window.framebuffer_size,
                                 RendererConfig(display_hz=self.window.refresh_hz, flash=flash))
        if self.renderer.flash_warning:
            self.log(self.renderer.flash_warning)

    def _start_midi(self) -> None:
        # Every input port unless --midi names some: a controller plugged in (now or later) just works.
        # The autosaved map (learned during the last show with this preset) supersedes the preset's.
        restored = getattr(self, "_restored_midi", None)
        mappings = restored if restored else list(self.preset.midi)
        from .midi_link import start_midi

        try:
            self.midi = start_midi(self, self.options.midi, mappings)
        except UserError as e:
            self.log(str(e))  # the show goes on without the controller

    def _start_operator(self) -> None:
        # --- operator window / output HUD (vjgan/operator): after the output window and MIDI ---
        if not (self.options.operator or self.options.hud):
            return
        from ..operator.console import start_console

        self.console = start_console(self, operator=self.options.operator, hud=self.options.hud)

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        """Stop every thread and save the running state; safe to call more than once."""
        if self.worker is not None:
            self.worker.stop()
            self.worker.join(timeout=5)
        if self.midi is not None:
            try:
                self.midi.stop()
            except Exception as e:  # closing a port must not keep the rest from shutting down
                self.log(f"MIDI did not close cleanly: {e}")
        if self.audio is not None:
            self.audio.stop()
        try:
            self.autosave(force=True)
        except OSError as e:
            self.log(f"could not save the running state: {e}")
        if self.console is not None:  # operator window first: it shares the output's GL objects
            self.console.close()
        if self.renderer is not None:
            self.renderer.release()
        if self.window is not None:
            self.window.close()

    # -- the main loop ---------------------------------------------------------------------------

    def run(self) -> int:
        """Start, play until quit / SIGINT / SIGTERM / --duration, shut down. Returns an exit code."""
        from ..display.inputs import DisplayInputs

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, lambda *_: self._stop.set())
            except ValueError:  # not the main thread (embedding): the caller stops us
                pass
        try:
            self.start()
            started = time.perf_counter()
            reported_error = False
            while not self._stop.is_set():
                window = self.window
                window.poll()
                if window.should_close:
                    break
                if window.framebuffer_size != self.renderer.size:
                    self.renderer.resize(window.framebuffer_size)
                self.renderer.pull(self.frames)
                now = time.perf_counter()
                inputs = DisplayInputs.from_features(self.audio.latest(), now, onset_time=self.onsets.newest)
                if self.console is not None:  # output (+ HUD), then the operator window when due
                    self.console.present(window, self.renderer, inputs, self._output_settings())
                else:
                    window.present(self.renderer, inputs, self._output_settings())
                if self.worker.error is not None and not reported_error:
                    reported_error = True  # reported once by the worker; the last frame stays up
                if now - self._last_autosave >= AUTOSAVE_EVERY_S:
                    self.autosave()
                if self.options.duration is not None and now - started >= self.options.duration:
                    break
            return 0
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _output_settings(self):
        from ..display.settings import OutputSettings

        display = self.preset.display
        if getattr(self, "_base_output", (None, None))[0] is not display:
            # Validating the effect chain is cheap but not free: once per preset, not per refresh.
            self._base_output = (display, OutputSettings.from_preset(display))
        base = self._base_output[1]
        snap = self.params.snapshot()
        return OutputSettings(fit=base.fit, effects=base.effects, master=min(snap.get("master", 1.0), display.master),
                              blackout=snap.get("blackout", 0.0) >= 0.5, freeze=snap.get("freeze", 0.0) >= 0.5)

    # -- actions (keys, MIDI notes) ----------------------------------------------------------------

    def _on_action(self, action: Any, t: float) -> None:
        name = getattr(action, "value", str(action))
        self.invoke(name)

    def invoke(self, name: str) -> None:
        """Run a named action: from the output window's keys or a MIDI note."""
        if name == "blackout":
            self.params.set("blackout", 1.0 - round(self.params.get("blackout")))
        elif name == "freeze":
            self.params.set("freeze", 1.0 - round(self.params.get("freeze")))
        elif name == "next_preset":
            self.step_preset(+1)
        elif name == "previous_preset":
            self.step_preset(-1)
        elif name == "tap_tempo":
            self.audio.tap()
        elif name == "quit_armed":
            self.log("press Q (or Esc) again within 2 s to quit")
        elif name == "quit":
            self.stop()
        elif name == "toggle_fullscreen":
            pass  # the window switches itself
        elif name.startswith("preset:"):
            self.switch_preset(name.split(":", 1)[1])
        else:
            raise UserError(f"unknown action {name!r}")

    def recall_preset(self, which: str) -> None:
        """A preset by its number in the list (1 = first, as pads are labelled) or by name."""
        if which.isdigit():
            n = int(which)
            if not 1 <= n <= len(self.presets):
                self.log(f"no preset number {n} (there are {len(self.presets)})")
                return
            which = self.presets[n - 1]
        self.switch_preset(which)

    def step_preset(self, direction: int) -> None:
        if not self.presets:
            return
        try:
            i = self.presets.index(self.preset.name)
        except ValueError:
            i = -1 if direction > 0 else 0
        self.switch_preset(self.presets[(i + direction) % len(self.presets)])

    def switch_preset(self, name: str) -> None:
        """Load a preset and build its scene in the background; the show cross-fades when ready."""
        try:
            preset = load_preset(name)
        except UserError as e:
            self.log(str(e))
            return
        old = self.preset
        self.preset = preset
        self.log(f"preset {preset.name}: preparing")
        model = Path(self.options.model) if self.options.model else preset.model_path()
        device = self.worker.scene.backend.device

        def build() -> Scene:
            scene = build_scene(model, preset.motion, device, name=preset.name,
                                preset_folder=preset.path.parent if preset.path else None)
            self._register_scene_params(scene, preset)
            self.log(f"preset {preset.name}: ready in {scene.built_in_s:.1f} s")
            return scene

        self.worker.switch_scene(SceneBuilder(build, on_error=self.log))
        if self.renderer is not None and preset.display.flash_limit_per_s != old.display.flash_limit_per_s:
            from ..display.flash import FlashSafetyConfig

            self.renderer.set_flash_safety(FlashSafetyConfig(max_changes_per_s=preset.display.flash_limit_per_s))

    def _register_scene_params(self, scene: Scene, preset: Preset) -> None:
        specs = scene.engine.param_specs()
        keep = {s.name for s in SHOW_PARAMS} | {s.name for s in specs}
        for spec in specs:
            value = preset.params.get(spec.name)
            self.params.register(spec, value)
        self.params.unregister_missing(keep)
        unknown = [n for n in preset.params if n not in keep]
        if unknown:
            self.log(f"preset {preset.name}: ignoring saved value of unknown parameter {unknown[0]!r}")

    # -- running state ---------------------------------------------------------------------------

    def running_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"preset": self.preset.name, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                 "params": {n: self.params.get(n) for n in self.params.names()}}
        if self.midi is not None:
            state["midi"] = self.midi.mappings_to_list()
        return state

    def autosave(self, force: bool = False) -> None:
        import tomli_w

        now = time.perf_counter()
        if not force and now - self._last_autosave < AUTOSAVE_EVERY_S:
            return
        self._last_autosave = now
        try:
            atomic_write(autosave_path(self.options), tomli_w.dumps(self.running_state()), make_folder=True)
        except OSError as e:
            self.log(f"could not autosave the running state: {e}")

    def _restore_running_state(self) -> None:
        from ..config import tomllib

        path = autosave_path(self.options)
        if not path.is_file():
            return
        try:
            state = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            self.log(f"ignoring the running state in {path}: {e}")
            return
        if state.get("preset") != self.preset.name:
            return
        restored = 0
        for name, value in (state.get("params") or {}).items():
            if name in self.params.names() and isinstance(value, (int, float)) and name not in ("blackout", "freeze"):
                self.params.set(name, float(value), notify=False)
                restored += 1
        self._restored_midi = [m for m in state.get("midi", []) if isinstance(m, dict)]
        self.log(f"restored {restored} parameter values from the running state ({path})")


def run_live(options: LiveOptions) -> int:
    return LiveShow(options).run()
