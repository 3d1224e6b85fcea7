"""The operator console under a real X server (Xvfb): widgets, preview, keys, learn, presets, alarms.

What the windows show is read from the X server's framebuffer (Xvfb -fbdir), so a check passes
only if the picture reached the screen. Keys, clicks and drags are typed through XTEST and travel
X server → glfw → Dear ImGui → the console's widgets. Widgets are found by the rectangles the
console's panels record as they draw them (`ConsoleUI.where`), so the tests follow the layout
rather than fixed coordinates. MIDI learn goes through a real JACK MIDI port. The last test
runs `vjgan live --demo` itself and closes its operator window.

Only windows (GLX) are opened in this process, never an EGL context (see docs/display.md).
Every wait is on a condition, never on a time: a loaded two-core machine only makes them slower.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from jack_midi_fixtures import VirtualController, jack, jack_server  # noqa: F401  (fixtures)
from vjgan.audio.features import Features, rest_features
from vjgan.config import load_preset, user_presets_dir
from vjgan.control.commands import Blackout, Command, EditRoute, RemoveRoute, SetParam, SwitchModel
from vjgan.control.midi import MidiController
from vjgan.display.frame import Frame
from vjgan.display.inputs import DisplayInputs
from vjgan.display.renderer import Renderer
from vjgan.display.settings import RendererConfig
from vjgan.display.window import OutputWindow, WindowConfig
from vjgan.live.app import LiveOptions, LiveShow
from vjgan.motion.params import ParamSpec
from vjgan.operator.console import OperatorConsole, start_console
from vjgan.operator.state import KeyPress
from vjgan.operator.window import OperatorConfig
from vjgan.resources import data_dir
from xvfb_support import (IS_VIEWABLE, WIDE_SCREEN, XInput, XWindowAttributes, quadrants,  # noqa: F401
                          read_screen, xvfb_wide)

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "data" / "conformance"
MODEL = MODELS / "sg2ada_64px.pkl"
OPERATOR = OperatorConfig(size=(900, 620))  # beside a small output on the 1280x720 screen


@pytest.fixture
def x_input(xvfb_wide: Path) -> Iterator[XInput]:  # noqa: F811
    x = XInput()
    try:
        yield x
    finally:
        x.close()


# --- a show made of the real parts, without the generator --------------------------------------------

class FixedAudio:
    """The audio engine's calls, with fixed levels (the analysis is tested in test_audio_*)."""

    def __init__(self) -> None:
        now = time.perf_counter()
        rest = rest_features(("sub", "bass", "mid", "high"), now)
        self.features: Features = replace(rest, bands=(0.2, 0.9, 0.4, 0.1), bpm=128.0, tempo_source="audio",
                                          beat_period=60 / 128, beat_time=now, loudness=0.6, gated=False)
        self.taps: list[float] = []

    def latest(self) -> Features:
        return self.features

    def tap(self, t: float | None = None) -> None:
        self.taps.append(time.perf_counter() if t is None else t)

    def external_tick(self, t: float) -> None:  # MIDI clock: not under test here
        pass

    def external_start(self) -> None:
        pass

    def external_stop(self) -> None:
        pass


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class Stage:
    """A LiveShow with its output window, renderer and MIDI controller set up by hand."""

    def __init__(self, output_size: tuple[int, int] = (160, 90), midi_ports: tuple[str, ...] = ()) -> None:
        self.lines: list[str] = []
        self._log = _ListHandler(self.lines)
        logging.getLogger("vjgan").addHandler(self._log)
        logging.getLogger("vjgan").setLevel(logging.INFO)  # as `vjgan live` logs
        self.show = show = LiveShow(LiveOptions(preset="default"))
        for name, default, maximum in (("gain.bass", 0.9, 2.0), ("gain.sub", 1.0, 3.0), ("drift.speed", 1.0, 4.0)):
            group = "routes" if name.startswith("gain.") else "drift"
            show.params.register(ParamSpec(name, default, 0.0, maximum, 0.1, "", group))
        show.audio = FixedAudio()
        show.window = OutputWindow(WindowConfig(size=output_size, title="vjgan output"))
        show.renderer = Renderer(show.window.ctx, show.window.framebuffer_size,
                                 RendererConfig(display_hz=show.window.refresh_hz, upload="pbo"))
        show.midi = MidiController(show.params, post=show.post, supervisor=show.supervisor, inputs=list(midi_ports),
                                   report=self.lines.append)
        if midi_ports:
            show.midi.start(require_ports=False)
        # Scene changes build on the generator, which this stage has not got: the requests are
        # recorded here and carried out for real in the `vjgan live` tests.
        self.switched: list[str] = []
        self.requested: list[Any] = []
        self.models: list[str] = []
        show.request_preset = self._request_preset  # type: ignore[method-assign]
        show.request_model = self.models.append  # type: ignore[method-assign]
        # Every command on the show's one command path, in order, as the main loop took it.
        self.commands: list[Command] = []
        apply = show.steering.apply
        show.steering.apply = lambda c: (self.commands.append(c), apply(c))[1]  # type: ignore[method-assign]
        self.frame_index = 0
        self.console: OperatorConsole | None = None

    def _request_preset(self, preset: Any) -> None:
        self.switched.append(preset.name)
        self.requested.append(preset)

    def submit(self, pixels: np.ndarray) -> None:
        self.frame_index += 1
        now = time.perf_counter()
        self.show.renderer.submit(Frame(pixels, self.frame_index, now - 0.03, now, pixels.shape[0]))

    def step(self) -> None:
        """One turn of the live loop: events, commands, then the output picture and the operator's redraw."""
        show = self.show
        show.window.poll()
        show.take_commands()
        # The live loop's settings (master, blackout, freeze) without the preset's effect chain:
        # colours are compared exactly here (effects are tested in test_display_render.py).
        settings = replace(show._output_settings(), effects=())
        inputs = DisplayInputs(time=time.perf_counter())
        if self.console is not None:
            self.console.present(show.window, show.renderer, inputs, settings)
        else:
            show.window.present(show.renderer, inputs, settings)

    def until(self, check: Callable[[], Any], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            if check():
                return True
            time.sleep(0.01)
        return bool(check())

    def frames(self, n: int = 3) -> None:
        """Let the console draw `n` more frames (ImGui takes in queued input one step per frame)."""
        op = self.console.window
        target = op.redraws + n
        assert self.until(lambda: op.redraws >= target)

    def close(self) -> None:
        logging.getLogger("vjgan").removeHandler(self._log)
        if self.console is not None:
            self.console.close()
        if self.show.midi is not None:
            self.show.midi.stop()
        self.show.renderer.release()
        self.show.window.close()


@pytest.fixture
def stage(xvfb_wide: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:  # noqa: F811
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path / "data"))  # only the shipped presets exist
    s = Stage()
    try:
        yield s
    finally:
        s.close()


def open_console(stage: Stage, **kw: Any) -> OperatorConsole:
    stage.console = OperatorConsole(stage.show, config=kw.pop("config", OPERATOR), **kw)
    return stage.console


def window_origin(handle: object) -> tuple[int, int]:
    import glfw

    x, y = glfw.get_window_pos(handle)
    return int(x), int(y)


def widget(stage: Stage, name: str) -> tuple[float, float]:
    """Where a widget the console drew is on the screen (its centre), once it has been drawn."""
    console = stage.console
    seen: list[Any] = []

    def settled() -> bool:  # drawn at the same place twice (a new layout takes a frame or two to settle)
        op = console.window
        if op.redraws != (seen[-1][0] if seen else None):
            seen.append((op.redraws, console.ui.where.centre(name)))
        return len(seen) >= 2 and seen[-1][1] is not None and seen[-1][1] == seen[-2][1]

    assert stage.until(settled), f"no widget {name!r} was drawn (or it keeps moving)"
    cx, cy = console.ui.where.centre(name)
    ox, oy = window_origin(console.window.handle)
    return ox + cx, oy + cy


def click(stage: Stage, x_input: XInput, name: str, double: bool = False) -> None:
    x, y = widget(stage, name)
    x_input.move(x, y)
    stage.frames(2)  # ImGui sees the pointer over the widget before the button goes down
    for _ in range(2 if double else 1):
        x_input.button(True)
        x_input.button(False)
    stage.frames(3)


def near(pixel: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(rgb)) <= tol))


def region(screen: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return screen[int(y0):int(y1), int(x0):int(x1)]


# --- the screenshot: widgets and the preview --------------------------------------------------------------

def test_a_screenshot_shows_the_widgets_and_the_output_picture(stage: Stage, xvfb_wide: Path) -> None:  # noqa: F811
    stage.submit(quadrants())
    console = open_console(stage)
    op = console.window
    assert op is not None and op.shared and op.visible
    ox, oy = window_origin(op.handle)
    out_x, _ = window_origin(stage.show.window.handle)
    assert ox + op.framebuffer_size[0] <= out_x  # one monitor: side by side, no overlap

    def preview_rect() -> tuple[float, float, float, float] | None:
        r = console.ui.where.rects.get("preview")
        return None if r is None else (ox + r[0], oy + r[1], ox + r[2], oy + r[3])

    def shows_quadrants() -> bool:
        r = preview_rect()
        if r is None:
            return False
        x0, y0, x1, y1 = r
        screen = read_screen(xvfb_wide)
        at = lambda fx, fy: screen[int(y0 + (y1 - y0) * fy), int(x0 + (x1 - x0) * fx)]  # noqa: E731
        # The output crops the square frame to 16:9 (fill): the preview shows the same picture, upright.
        return (near(at(0.25, 0.25), (255, 0, 0)) and near(at(0.75, 0.25), (0, 255, 0))
                and near(at(0.25, 0.75), (0, 0, 255)) and near(at(0.75, 0.75), (255, 255, 255)))

    assert stage.until(shows_quadrants), "the preview never showed the output's picture"
    x0, y0, x1, y1 = preview_rect()
    assert (x1 - x0) / (y1 - y0) == pytest.approx(16 / 9, rel=0.05)
    screen = read_screen(xvfb_wide)
    # Every panel drew its widgets, and they are on the screen: text and frames, not a blank window.
    for name in ("param:master", "learn:master", "reset:master", "action:blackout", "page:routes", "menu:View"):
        assert name in console.ui.where.rects, name

    def shows_text(name: str) -> bool:
        r = console.ui.where.rects.get(name)
        if r is None:
            return False
        pixels = region(read_screen(xvfb_wide), ox + r[0], oy + r[1], ox + r[2], oy + r[3])
        return pixels.size > 0 and (pixels.max(axis=2) > 150).sum() > 20

    for name in ("action:blackout", "learn:master", "name:master"):
        assert shows_text(name), f"{name} shows no text"
    window = region(screen, ox, oy, ox + op.framebuffer_size[0], oy + op.framebuffer_size[1])
    assert len(np.unique(window.reshape(-1, 3) // 16, axis=0)) > 20  # many colours: panels, text, picture
    # The panels behind the front tabs draw when brought forward.
    for panel, name in (("Presets", "preset:default"), ("Model", "model-folder"), ("Routes", "route-add")):
        console.ui.focus_panel(panel)
        assert stage.until(lambda: shows_text(name)), f"{panel}: {name} shows no text"
    # Blackout reaches the preview too: it samples what the audience sees.
    stage.show.post(Blackout(source="test"))
    assert stage.until(lambda: read_screen(xvfb_wide)[int(y0 + (y1 - y0) / 4), int(x0 + (x1 - x0) / 4)].max() < 10)


# --- keys -----------------------------------------------------------------------------------------------

def test_keys_select_nudge_and_drive_the_show(stage: Stage, x_input: XInput) -> None:
    console = open_console(stage)
    stage.frames(2)
    params = stage.show.params
    names = [spec.name for spec in params.specs()]
    assert names[:5] == ["master", "blackout", "freeze", "morph", "gain.bass"]
    for _ in range(5):  # the first press lands on the first row, four more reach gain.bass
        x_input.press("Down")
    assert stage.until(lambda: console.state.selected == "gain.bass"), console.state
    x_input.press("Right")
    assert stage.until(lambda: params.get("gain.bass") == pytest.approx(0.92))
    x_input.press("Right", "Shift_L")
    assert stage.until(lambda: params.get("gain.bass") == pytest.approx(1.12))
    x_input.press("Left")
    assert stage.until(lambda: params.get("gain.bass") == pytest.approx(1.10))
    assert stage.until(lambda: console.view.selected == "gain.bass"
                       and next(r for r in console.view.rows if r.target == "gain.bass").value == pytest.approx(1.1))
    x_input.press("b")
    assert stage.until(lambda: params.get("blackout") == 1.0 and console.view.blackout)
    x_input.press("space")
    assert stage.until(lambda: params.get("freeze") == 1.0)
    x_input.press("t")
    assert stage.until(lambda: len(stage.show.audio.taps) == 1)
    stage.show.alarms.raise_alarm("test", "TEST ALARM")
    x_input.press("a")
    assert stage.until(lambda: stage.show.alarms.shown() == ())
    output = stage.show.window
    x_input.press("f")  # the output's fullscreen, from the laptop's keyboard
    assert stage.until(lambda: output.fullscreen and output.framebuffer_size == WIDE_SCREEN)
    x_input.press("f")
    assert stage.until(lambda: not output.fullscreen and output.framebuffer_size == (160, 90))
    x_input.press("3")  # presets in order: default, drop, living-portrait, stylegan3
    assert stage.until(lambda: stage.switched == ["living-portrait"])
    x_input.press("9")
    assert stage.until(lambda: "no preset 9 (there are 4)" in console.view.message)
    assert stage.switched == ["living-portrait"]
    # The output's quit key means nothing here: one stray Q on the laptop must not arm quitting.
    x_input.press("q")
    stage.frames(2)
    assert not stage.show.window.quit_armed() and not stage.show.window.should_close


def test_a_text_field_takes_the_keys_only_while_it_is_being_edited(stage: Stage, x_input: XInput) -> None:
    console = open_console(stage)
    params = stage.show.params
    console.ui.focus_panel("Presets")
    click(stage, x_input, "preset-save-name")
    assert stage.until(lambda: console.window.typing)
    for key in ("b", "t", "a", "f"):
        x_input.press(key)
    assert stage.until(lambda: console.ui.presets.save_name == "btaf")  # ImGui takes a key per frame
    assert params.get("blackout") == 0.0 and stage.show.audio.taps == [] and not stage.show.window.fullscreen
    # Clicking elsewhere leaves the field: the same keys steer the show again.
    click(stage, x_input, "preview")
    assert stage.until(lambda: not console.window.typing)
    x_input.press("b")
    assert stage.until(lambda: params.get("blackout") == 1.0)
    assert console.ui.presets.save_name == "btaf"


def test_the_operator_redraws_at_its_own_rate(stage: Stage) -> None:
    clock = [100.0]
    stage.console = OperatorConsole(stage.show, config=OPERATOR, clock=lambda: clock[0])
    op = stage.console.window
    for _ in range(120):  # two seconds of a 60 Hz output
        clock[0] += 1 / 60
        stage.step()
    assert op.redraws == 60  # every other output picture: 30 Hz
    stage.console.on_key(KeyPress("down"))  # a key is answered on the next output picture
    clock[0] += 1 / 60
    stage.step()
    assert op.redraws == 61


# --- the mouse: sliders -----------------------------------------------------------------------------------------

def test_dragging_a_slider_moves_the_parameter_through_the_command_path(stage: Stage, x_input: XInput) -> None:
    console = open_console(stage)
    params = stage.show.params
    click(stage, x_input, "page:routes")

    def drag(dx: float, *hold: str) -> None:
        # A press on the spot of the last press within ImGui's double-click time (0.3 s) is a
        # double-click, which starts typing instead of dragging: wait it out, as a hand does.
        time.sleep(0.4)
        x, y = widget(stage, "param:gain.bass")
        x_input.move(x, y)
        stage.frames(2)
        for key in hold:
            x_input.key(key, True)
        x_input.button(True)
        stage.frames(2)
        for i in range(1, 5):
            x_input.move(x + dx * i / 4, y)
            stage.frames(1)
        x_input.button(False)
        for key in hold:
            x_input.key(key, False)
        stage.frames(2)

    before = params.get("gain.bass")
    stage.commands.clear()
    drag(60)
    moved = params.get("gain.bass") - before
    # 300 px sweep the range (0..2): 60 px are about 0.4, give or take the pixels the drag needs to start.
    assert 0.2 < moved < 0.5, moved
    sets = [c for c in stage.commands if isinstance(c, SetParam) and c.name == "gain.bass"]
    assert sets and all(c.source == "operator" for c in sets)
    assert sets[-1].value == pytest.approx(params.get("gain.bass"))  # the show holds what the slider posted
    # Alt: fine adjustment, a hundredth of the speed.
    before = params.get("gain.bass")
    drag(60, "Alt_L")
    fine = params.get("gain.bass") - before
    assert 0 < fine < moved / 20, (fine, moved)
    # Double-click: type a value.
    click(stage, x_input, "param:gain.bass", double=True)
    assert stage.until(lambda: console.window.typing)
    x_input.press("Right")  # the field is selected whole: type over it
    for key in ("BackSpace",) * 8:
        x_input.press(key)
    for key in ("1", "period", "5", "Return"):
        x_input.press(key)
    assert stage.until(lambda: params.get("gain.bass") == pytest.approx(1.5))
    # Reset: the default.
    click(stage, x_input, "reset:gain.bass")
    assert stage.until(lambda: params.get("gain.bass") == pytest.approx(0.9))


# --- MIDI learn, through JACK --------------------------------------------------------------------------------

def test_learn_a_midi_cc_through_jack_from_the_console(xvfb_wide: Path, jack, x_input: XInput,  # noqa: F811
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jack_midi_fixtures import wait_until

    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path / "data"))
    ctl = VirtualController()
    stage = Stage(midi_ports=(ctl.name,))
    try:
        console = open_console(stage)
        midi = stage.show.midi
        wait_until(lambda: midi.connected_ports()["inputs"], timeout=30, what="the console's MIDI input")
        click(stage, x_input, "page:routes")
        click(stage, x_input, "learn:gain.bass")
        assert stage.until(lambda: midi.learning is not None and midi.learning.target == "gain.bass")
        assert stage.until(lambda: console.view.midi.learning == "gain.bass")
        ctl.send([0xB0, 21, 90])  # a knob on channel 1, CC 21
        assert stage.until(lambda: [m.control.number for m in midi.mappings_for("gain.bass")] == [21], timeout=20)
        assert stage.until(lambda: next(r for r in console.view.rows if r.target == "gain.bass").mapping == "ch 1 CC 21")
        assert console.state.learning is None and midi.learning is None
        # The learned knob drives its parameter (pick-up: it takes over once it meets the value).
        for value in (70, 57, 64):
            ctl.send([0xB0, 21, value])
        assert stage.until(lambda: stage.show.params.get("gain.bass") == pytest.approx(2.0 * 64 / 127), timeout=20)
        # Learn again and cancel with the same button.
        click(stage, x_input, "learn:gain.sub")
        assert stage.until(lambda: midi.learning is not None and midi.learning.target == "gain.sub")
        click(stage, x_input, "learn:gain.sub")
        assert stage.until(lambda: midi.learning is None and console.state.learning is None)
    finally:
        stage.close()
        ctl.close()


# --- presets ------------------------------------------------------------------------------------------------

def test_recall_save_and_rename_presets_from_the_list(stage: Stage, x_input: XInput) -> None:
    console = open_console(stage)
    console.ui.focus_panel("Presets")
    click(stage, x_input, "preset:drop", double=True)
    assert stage.until(lambda: stage.switched == ["drop"])
    click(stage, x_input, "preset:living-portrait")
    assert console.ui.presets.chosen == "living-portrait" and stage.switched == ["drop"]  # one click only chooses
    click(stage, x_input, "preset-recall")
    assert stage.until(lambda: stage.switched == ["drop", "living-portrait"])

    # Save as a name of your own; the list shows it, marked as yours.
    click(stage, x_input, "preset-save-name")
    for key in ("g", "i", "g", "minus", "o", "n", "e", "Return"):
        x_input.press(key)
    click(stage, x_input, "preset-save")
    assert stage.until(lambda: (user_presets_dir() / "gig-one.toml").is_file()
                       and "gig-one" in console.view.user_presets)
    assert stage.show.preset.name == "gig-one"
    # Rename it: the new file replaces the old, the show plays it under its new name.
    click(stage, x_input, "preset:gig-one")
    click(stage, x_input, "preset-new-name")
    x_input.press("End")
    for key in ("minus", "b"):
        x_input.press(key)
    click(stage, x_input, "preset-rename")
    assert stage.until(lambda: (user_presets_dir() / "gig-one-b.toml").is_file()
                       and not (user_presets_dir() / "gig-one.toml").exists())
    assert stage.until(lambda: stage.show.preset.name == "gig-one-b" and "gig-one-b" in console.view.presets)
    assert load_preset(user_presets_dir() / "gig-one-b.toml").name == "gig-one-b"
    # The morph time is the show's `morph` parameter.
    x, y = widget(stage, "preset-morph")
    x_input.move(x, y)
    stage.frames(2)
    x_input.button(True)
    stage.frames(2)
    for i in range(1, 4):
        x_input.move(x + 20 * i, y)
        stage.frames(1)
    x_input.button(False)
    assert stage.until(lambda: stage.show.params.get("morph") > 1.5)


def test_ctrl_s_saves_a_new_user_preset(stage: Stage, x_input: XInput) -> None:
    shipped = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data_dir("presets").glob("*")}
    console = open_console(stage)
    midi = stage.show.midi
    stage.show.params.set("gain.bass", 1.5)
    stage.show.params.set("blackout", 1.0)
    midi.learn("gain.sub")
    midi.handle_message("nano", [0xB0, 7, 10])
    stage.frames(2)
    x_input.press("s", "Control_L")
    target = user_presets_dir() / "default-2.toml"
    assert stage.until(lambda: target.is_file() and console.runner.current_status() is not None
                       and console.runner.current_status().text.startswith("saved preset default-2"))
    saved = load_preset(target)
    assert saved.params["gain.bass"] == 1.5 and "blackout" not in saved.params
    assert list(saved.midi) == [{"channel": 1, "cc": 7, "kind": "absolute", "param": "gain.sub", "takeover": "pickup"}]
    assert stage.show.preset.name == "default-2" and "default-2" in stage.show.presets
    x_input.press("s", "Control_L")
    assert stage.until(lambda: (user_presets_dir() / "default-3.toml").is_file())
    stage.show.saver.wait()
    assert sorted(p.name for p in user_presets_dir().iterdir()) == ["default-2.toml", "default-3.toml"]
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data_dir("presets").glob("*")} == shipped


# --- alarms ------------------------------------------------------------------------------------------------------

def test_acknowledge_an_alarm(stage: Stage, x_input: XInput, xvfb_wide: Path) -> None:  # noqa: F811
    console = open_console(stage)
    alarms = stage.show.alarms
    alarms.raise_alarm("generator", "GENERATOR RESTARTED (2)")
    alarms.raise_alarm("audio-lost", "AUDIO LOST - reconnecting")
    ox, oy = window_origin(console.window.handle)
    x, y = widget(stage, "ack:generator")
    # The line is on the screen in the alarm colour, left of its button.
    screen = read_screen(xvfb_wide)
    r = console.ui.where.rects["ack:generator"]
    line = region(screen, ox, oy + r[1], ox + r[0], oy + r[3])
    assert ((line[..., 0] > 200) & (line[..., 1] < 120)).sum() > 30, "no red alarm text"
    click(stage, x_input, "ack:generator")
    assert stage.until(lambda: [a.key for a in alarms.shown()] == ["audio-lost"])
    assert stage.until(lambda: [a.key for a in console.view.alarms] == ["audio-lost"])
    stage.frames(2)
    assert "ack:generator" not in console.ui.where.rects and "ack:audio-lost" in console.ui.where.rects
    x_input.press("a")  # A: every line shown
    assert stage.until(lambda: alarms.shown() == ())


# --- the model picker and routes ---------------------------------------------------------------------------------

def test_pick_a_model_see_what_it_is_then_load_it(stage: Stage, x_input: XInput) -> None:
    console = open_console(stage)
    console.ui.model.open_folder(MODELS)
    console.ui.focus_panel("Model")  # its tab is behind Parameters at first
    click(stage, x_input, "file:sg2ada_64px.pkl")
    assert stage.until(lambda: console.ui.model.summaries.latest() is not None, timeout=60)
    summary = console.ui.model.summaries.latest()
    assert not summary.error and dict(summary.rows)["resolution"].startswith("64x64")
    assert stage.models == []  # nothing is loaded before the operator asks
    click(stage, x_input, "model-load")
    assert stage.until(lambda: stage.models == [str(MODEL)])
    assert any(isinstance(c, SwitchModel) and c.source == "operator" for c in stage.commands)


def test_route_edits_are_preset_changes(stage: Stage, x_input: XInput) -> None:
    console = open_console(stage)
    stage.show.preset = load_preset("default")
    stage.console.ui.focus_panel("Routes")
    assert stage.until(lambda: "route-new-name" in console.ui.where.rects)
    click(stage, x_input, "route-new-name")
    for key in ("h", "a", "t", "s"):
        x_input.press(key)
    click(stage, x_input, "route-add")
    assert stage.until(lambda: stage.requested)
    edited = stage.requested[-1]
    assert edited.name == "default" and edited.motion.routes[-1].name == "hats"
    assert [c for c in stage.commands if isinstance(c, EditRoute)][0].name == "hats"
    click(stage, x_input, "route-remove:kick_snap")
    assert stage.until(lambda: any(isinstance(c, RemoveRoute) for c in stage.commands))
    assert "kick_snap" not in [r.name for r in stage.requested[-1].motion.routes]


# --- layout and scale ---------------------------------------------------------------------------------------------

def test_the_layout_is_kept_and_restored(stage: Stage, x_input: XInput) -> None:
    console = open_console(stage)
    click(stage, x_input, "menu:View")
    click(stage, x_input, "view:Log")
    assert stage.until(lambda: not console.ui.open["Log"])
    stage.frames(3)
    layout = console.layout()
    assert "Log" not in layout["panels"] and "[Docking]" in layout["imgui"]
    preview = console.ui.where.rects["preview"]
    console.close()
    # Through the running state's file, as the autosave writes it.
    from vjgan.live.autosave import RunningState, _state_from
    from vjgan.config import tomllib

    restored = _state_from(tomllib.loads(RunningState("default", {}, (), layout).to_toml())).layout
    again = open_console(stage, layout=restored)
    assert again.ui.open["Log"] is False
    assert stage.until(lambda: again.ui.where.rects.get("preview") == preview)


def test_text_is_twice_as_large_at_ui_scale_2(stage: Stage) -> None:
    small = open_console(stage)
    small.ui.focus_panel("Presets")
    widget(stage, "preset-recall")
    one, font_px = small.ui.where.rects["preset-recall"], small.window.font_px
    small.close()
    big = open_console(stage, config=replace(OPERATOR, ui_scale=2.0))
    assert big.window.font_px == 2 * font_px
    big.ui.focus_panel("Presets")
    widget(stage, "preset-recall")
    two = big.ui.where.rects["preset-recall"]
    assert (two[3] - two[1]) / (one[3] - one[1]) == pytest.approx(2.0, rel=0.15)


def test_a_failing_panel_is_a_log_line_and_the_console_goes_on(stage: Stage) -> None:
    console = open_console(stage)
    stage.frames(2)

    def broken(view: Any, texture: Any, actions: Any) -> None:
        from imgui_bundle import imgui

        imgui.begin_child("half-drawn")  # left open: ImGui closes it when the frame ends
        raise RuntimeError("a bug in a panel")

    console.ui._draw["Log"] = broken
    stage.frames(5)  # the other panels go on drawing
    assert sum("operator console, Log: RuntimeError: a bug in a panel" in line for line in stage.lines) == 1
    assert "param:master" in console.ui.where.rects and "preview" in console.ui.where.rects
    stage.show.params.set("blackout", 1.0)
    assert stage.until(lambda: console.view.blackout)  # the view and the frames go on
    console.ui._draw["Log"] = lambda view, texture, actions: None
    redraws = console.window.redraws
    stage.frames(3)
    assert console.window.redraws >= redraws + 3 and "param:master" in console.ui.where.rects


# --- hiding and closing ---------------------------------------------------------------------------------------

def test_hiding_and_closing_the_operator_leaves_the_show_running(stage: Stage, x_input: XInput,
                                                                 xvfb_wide: Path) -> None:  # noqa: F811
    import glfw

    console = open_console(stage)
    op = console.window
    output = stage.show.window
    stage.frames(2)
    x_input.press("Down")
    x_input.press("l")  # a learn left open when the window goes away is cancelled
    assert stage.until(lambda: stage.show.midi.learning is not None)
    x_input.press("h")
    assert stage.until(lambda: not op.visible)
    assert stage.show.midi.learning is None
    # H on the output window brings it back.
    glfw.focus_window(output.handle)
    stage.step()
    x_input.press("h")
    assert stage.until(lambda: op.visible)

    # The close button: the operator window hides; the output keeps playing new frames.
    x_input.close_window(glfw.get_x11_window(op.handle))
    assert stage.until(lambda: not op.visible)
    assert not output.should_close and any("operator window hidden" in line for line in stage.lines)
    green = np.zeros((32, 32, 4), np.uint8)
    green[...] = (0, 200, 0, 255)
    stage.submit(green)
    x, y = window_origin(output.handle)
    assert stage.until(lambda: near(read_screen(xvfb_wide)[y + 45, x + 80], (0, 200, 0)))
    redraws = op.redraws
    for _ in range(5):
        stage.step()
    assert op.redraws == redraws  # hidden: not drawn at all


# --- the output HUD -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hud", [False, True], ids=["default-off", "--hud"])
def test_the_output_hud_is_off_unless_asked_for(xvfb_wide: Path, hud: bool) -> None:  # noqa: F811
    stage = Stage(output_size=(320, 180))
    try:
        stage.submit(np.zeros((32, 32, 4), np.uint8) + np.array([0, 0, 0, 255], np.uint8))
        stage.console = start_console(stage.show, operator=False, hud=hud)
        assert (stage.console is not None) == hud
        x, y = window_origin(stage.show.window.handle)
        for _ in range(6):
            stage.step()
        corner = region(read_screen(xvfb_wide), x, y, x + 200, y + 60)
        count = int((corner.max(axis=2) > 150).sum())
        if hud:
            assert count > 100, "no HUD text on the output"
            assert stage.console.window is None
        else:
            assert count == 0, "the output shows something over a black picture"
    finally:
        stage.close()


# --- the real thing ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_vjgan_live_opens_an_operator_window_that_can_be_closed(xvfb_wide: Path, x_input: XInput,  # noqa: F811
                                                                tmp_path: Path) -> None:
    env = dict(os.environ, VJGAN_DATA_DIR=str(tmp_path / "data"), VJGAN_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "vjgan", "live", "--model", str(MODEL), "--window", "200x112",
                             "--fresh", "--demo"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        operator = None
        while time.monotonic() < deadline and operator is None:
            assert proc.poll() is None, "".join(err)
            operator = x_input.windows().get("vjgan operator")
            time.sleep(0.2)
        assert operator is not None, "no operator window: " + "".join(err)
        attrs = x_input.attributes(operator)
        assert attrs.map_state == IS_VIEWABLE

        def pixels(a: XWindowAttributes) -> np.ndarray:
            return read_screen(xvfb_wide)[a.y:a.y + a.height, a.x:a.x + a.width].astype(np.int16)

        # The operator window draws (panels, meters, the preview) and keeps redrawing as the picture moves.
        deadline = time.monotonic() + 60
        first = pixels(attrs)
        while time.monotonic() < deadline:
            now = pixels(attrs)
            if now.std() > 20 and np.abs(now - first).mean() > 0.2:
                break
            time.sleep(0.3)
        else:
            pytest.fail("the operator window never showed a moving preview: " + "".join(err)[-2000:])

        # Number keys recall presets through the show itself (the operator window has the focus).
        def recalled() -> bool:
            return all(line in "".join(err) for line in ("preset drop: preparing", "preset 2: drop"))

        x_input.press("2")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not recalled():
            time.sleep(0.1)
        assert recalled(), "".join(err)

        x_input.close_window(operator)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and x_input.attributes(operator).map_state == IS_VIEWABLE:
            time.sleep(0.1)
        assert x_input.attributes(operator).map_state != IS_VIEWABLE, "the close button did not hide it"
        time.sleep(2.0)
        assert proc.poll() is None, "closing the operator window stopped the show: " + "".join(err)
        output = x_input.attributes(x_input.windows()["vjgan"])
        before = pixels(output)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and np.abs(pixels(output) - before).mean() <= 0.5:
            time.sleep(0.3)
        assert np.abs(pixels(output) - before).mean() > 0.5, "the output stopped moving"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, "".join(err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    text = "".join(err)
    assert "operator window hidden" in text and "Traceback" not in text
    # The layout went into the running state with the rest.
    state = (tmp_path / "data" / "running-state.toml").read_text()
    assert "[layout]" in state and "Docking" in state
