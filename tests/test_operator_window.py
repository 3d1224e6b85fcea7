"""The operator window under a real X server (Xvfb): preview, keys, learn, clicks, save, hide, HUD.

What the windows show is read from the X server's framebuffer (Xvfb -fbdir), so a check passes
only if the picture reached the screen. Keys and clicks are typed through XTEST and travel
X server → glfw → the window's callbacks. MIDI learn is driven through a real `MidiController`
fed decoded messages (the port layer is tested through JACK in test_midi_jack.py). The last test
runs `vjgan live --demo` itself and closes its operator window.

Only windows (GLX) are opened in this process, never an EGL context (see docs/display.md).
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
from typing import Callable, Iterator

import numpy as np
import pytest

from vjgan.audio.features import Features, rest_features
from vjgan.config import load_preset, user_presets_dir
from vjgan.control.commands import Blackout
from vjgan.control.midi import MidiController
from vjgan.display.frame import Frame
from vjgan.display.inputs import DisplayInputs
from vjgan.display.renderer import Renderer
from vjgan.display.settings import RendererConfig
from vjgan.display.window import OutputWindow, WindowConfig
from vjgan.live.app import LiveOptions, LiveShow
from vjgan.motion.params import ParamSpec
from vjgan.operator.console import OperatorConsole, start_console
from vjgan.operator.hud import Rect
from vjgan.operator.state import KeyPress
from vjgan.operator.window import OperatorConfig
from vjgan.resources import data_dir
from xvfb_support import IS_VIEWABLE, SCREEN, XInput, XWindowAttributes, quadrants, read_screen, xvfb  # noqa: F401  (xvfb is a fixture)

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "data" / "conformance" / "sg2ada_64px.pkl"
OPERATOR = OperatorConfig(size=(420, 330), font_px=11)  # fits beside a small output on the 640x360 screen


# --- X input and window queries --------------------------------------------------------------------

@pytest.fixture
def x_input(xvfb: Path) -> Iterator[XInput]:  # noqa: F811
    x = XInput()
    try:
        yield x
    finally:
        x.close()


# --- a show made of the real parts, without the generator --------------------------------------------

class FixedAudio:
    """The audio engine's two calls, with fixed levels (the analysis is tested in test_audio_*)."""

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


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class Stage:
    """A LiveShow with its output window, renderer and MIDI controller set up by hand."""

    def __init__(self, output_size: tuple[int, int] = (160, 90)) -> None:
        self.lines: list[str] = []
        self._log = _ListHandler(self.lines)
        logging.getLogger("vjgan").addHandler(self._log)
        logging.getLogger("vjgan").setLevel(logging.INFO)  # as `vjgan live` logs
        self.show = show = LiveShow(LiveOptions(preset="default"))
        for name, default, maximum in (("gain.bass", 0.9, 2.0), ("gain.sub", 1.0, 3.0), ("drift.speed", 1.0, 4.0)):
            show.params.register(ParamSpec(name, default, 0.0, maximum, 0.1, "", "routes"))
        show.audio = FixedAudio()
        show.window = OutputWindow(WindowConfig(size=output_size, title="vjgan output"))
        show.renderer = Renderer(show.window.ctx, show.window.framebuffer_size,
                                 RendererConfig(display_hz=show.window.refresh_hz, upload="pbo"))
        show.midi = MidiController(show.params, post=show.post, supervisor=show.supervisor, inputs=(),
                                   report=self.lines.append)
        # Switching presets builds a scene on the generator, which this stage has not got: the
        # request is recorded here and carried out for real in the `vjgan live` tests.
        self.switched: list[str] = []
        show.request_preset = lambda preset: self.switched.append(preset.name)  # type: ignore[method-assign]
        self.frame_index = 0
        self.console: OperatorConsole | None = None

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

    def until(self, check: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            if check():
                return True
            time.sleep(0.01)
        return check()

    def close(self) -> None:
        logging.getLogger("vjgan").removeHandler(self._log)
        if self.console is not None:
            self.console.close()
        self.show.renderer.release()
        self.show.window.close()


@pytest.fixture
def stage(xvfb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:  # noqa: F811
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path / "data"))  # only the shipped presets exist
    s = Stage()
    try:
        yield s
    finally:
        s.close()


def open_console(stage: Stage, **kw: object) -> OperatorConsole:
    stage.console = OperatorConsole(stage.show, config=OPERATOR, **kw)
    return stage.console


def window_origin(handle: object) -> tuple[int, int]:
    import glfw

    x, y = glfw.get_window_pos(handle)
    return int(x), int(y)


def near(pixel: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(rgb)) <= tol))


def bright_pixels(screen: np.ndarray, box: Rect) -> int:
    region = screen[int(box.y):int(box.bottom), int(box.x):int(box.right)]
    return int((region.max(axis=2) > 150).sum())


# --- the preview -------------------------------------------------------------------------------------

def test_the_preview_shows_the_output_picture(stage: Stage, xvfb: Path) -> None:  # noqa: F811
    stage.submit(quadrants())
    console = open_console(stage)
    op = console.window
    assert op is not None and op.shared and op.visible
    ox, oy = window_origin(op.handle)
    # One monitor: the operator on the left, the windowed output moved beside it, no overlap.
    out_x, _ = window_origin(stage.show.window.handle)
    assert ox < out_x and ox + op.framebuffer_size[0] <= out_x

    def shows_quadrants() -> bool:
        layout = op.last_layout
        if layout is None or layout.preview is None:
            return False
        p = layout.preview
        screen = read_screen(xvfb)
        at = lambda fx, fy: screen[oy + int(p.y + p.h * fy), ox + int(p.x + p.w * fx)]  # noqa: E731
        # The output crops the square frame to 16:9 (fill): the preview shows the same picture.
        return (near(at(0.25, 0.25), (255, 0, 0)) and near(at(0.75, 0.25), (0, 255, 0))
                and near(at(0.25, 0.75), (0, 0, 255)) and near(at(0.75, 0.75), (255, 255, 255)))

    assert stage.until(shows_quadrants), "the preview never showed the output's picture"
    p = op.last_layout.preview
    assert p.w / p.h == pytest.approx(16 / 9, rel=0.05)
    # The output's own window shows the same quadrants.
    screen = read_screen(xvfb)
    oxo, oyo = window_origin(stage.show.window.handle)
    assert near(screen[oyo + 20, oxo + 40], (255, 0, 0)) and near(screen[oyo + 70, oxo + 120], (255, 255, 255))
    # The output resized: the renderer reallocates its textures, the preview follows (and its aspect).
    import glfw

    glfw.set_window_size(stage.show.window.handle, 120, 90)
    assert stage.until(lambda: stage.show.renderer.size == (120, 90) and op.last_layout.preview is not None
                       and op.last_layout.preview.w / op.last_layout.preview.h == pytest.approx(4 / 3, rel=0.05)
                       and shows_quadrants())
    # Blackout reaches the preview too: it samples what the audience sees.
    stage.show.post(Blackout(source="test"))
    assert stage.until(lambda: read_screen(xvfb)[oy + int(p.y + p.h / 4), ox + int(p.x + p.w / 4)].max() < 10)
    # The redraw runs at the operator's rate without vsync; it never asked for the output's swap rate.
    assert op.redraws > 0


# --- keys -----------------------------------------------------------------------------------------------

def test_keys_select_nudge_and_drive_the_show(stage: Stage, x_input: XInput) -> None:
    console = open_console(stage)
    stage.step()
    params = stage.show.params
    names = [spec.name for spec in params.specs()]
    assert names[:4] == ["master", "blackout", "freeze", "gain.bass"]
    for _ in range(4):  # the first press lands on the first row, three more reach gain.bass
        x_input.press("Down")
    assert stage.until(lambda: console.state.selected == "gain.bass"), console.state
    x_input.press("Right")
    assert stage.until(lambda: params.get("gain.bass") == pytest.approx(0.92))
    x_input.press("Right", "Shift_L")
    assert stage.until(lambda: params.get("gain.bass") == pytest.approx(1.12))
    x_input.press("Left")
    assert stage.until(lambda: params.get("gain.bass") == pytest.approx(1.10))
    x_input.press("Up")
    assert stage.until(lambda: console.state.selected == "freeze")
    # The value shown in the list follows.
    row = dict(console.window.last_layout.row_rects)["gain.bass"]
    assert stage.until(lambda: "1.10" in [lb.text for lb in console.window.last_layout.labels_in(row)])

    x_input.press("b")
    assert stage.until(lambda: params.get("blackout") == 1.0)
    assert stage.until(lambda: console.view is not None and console.view.blackout and "BLACKOUT" in
                       console.window.last_layout.text())
    x_input.press("t")
    assert stage.until(lambda: len(stage.show.audio.taps) == 1)
    output = stage.show.window
    x_input.press("f")  # the output's fullscreen, from the laptop's keyboard
    assert stage.until(lambda: output.fullscreen and output.framebuffer_size == SCREEN)
    x_input.press("f")
    assert stage.until(lambda: not output.fullscreen and output.framebuffer_size == (160, 90))
    x_input.press("3")  # presets in order: default, drop, living-portrait
    assert stage.until(lambda: stage.switched == ["living-portrait"])
    x_input.press("9")
    assert stage.until(lambda: "no preset 9 (there are 3)" in console.view.message)
    assert stage.switched == ["living-portrait"]
    # The output's quit key means nothing here: one stray Q on the laptop must not arm quitting.
    x_input.press("q")
    for _ in range(3):
        stage.step()
    assert not stage.show.window.quit_armed() and not stage.show.window.should_close


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


def test_learn_binds_the_next_control_and_shows_it(stage: Stage, x_input: XInput, xvfb: Path) -> None:  # noqa: F811
    console = open_console(stage)
    op = console.window
    midi = stage.show.midi
    for _ in range(4):
        x_input.press("Down")
    assert stage.until(lambda: console.state.selected == "gain.bass")
    stage.until(lambda: op.last_layout is not None and "gain.bass" in dict(op.last_layout.row_rects))
    row = dict(op.last_layout.row_rects)["gain.bass"]
    dash = next(lb for lb in op.last_layout.labels_in(row) if lb.text == "-")
    ox, oy = window_origin(op.handle)
    cell = Rect(ox + dash.x, oy + dash.y, 90, op.atlas.line_height)
    before = bright_pixels(read_screen(xvfb), cell)

    x_input.press("l")
    assert stage.until(lambda: midi.learning is not None and midi.learning.target == "gain.bass")
    assert stage.until(lambda: "move a control..." in [lb.text for lb in op.last_layout.labels_in(row)])
    assert "LEARN gain.bass" in op.last_layout.text()

    # The controller: a knob on channel 1, CC 21 (as python-rtmidi delivers it, decoded by the router).
    midi.handle_message("nanoKONTROL2 SLIDER/KNOB", [0xB0, 21, 90])
    assert stage.until(lambda: [m.control.number for m in midi.mappings_for("gain.bass")] == [21])
    assert stage.until(lambda: "ch 1 CC 21" in [lb.text for lb in op.last_layout.labels_in(row)])
    assert console.state.learning is None and midi.learning is None
    assert console.runner.current_status().text == "learned: ch 1 CC 21 -> gain.bass"
    # And it is on the screen: the mapping cell now holds the control's name, not a dash.
    assert stage.until(lambda: bright_pixels(read_screen(xvfb), cell) > before + 30)
    # The learned knob drives its parameter (pick-up: it takes over once it meets the value).
    for value in (70, 57, 64):
        midi.handle_message("nanoKONTROL2 SLIDER/KNOB", [0xB0, 21, value])
    # (through the command path: applied on the show's next turn)
    assert stage.until(lambda: stage.show.params.get("gain.bass") == pytest.approx(2.0 * 64 / 127))

    # Delete unbinds it again.
    x_input.press("Delete")
    assert stage.until(lambda: midi.mappings_for("gain.bass") == ())
    # Escape cancels a learn nobody finished.
    x_input.press("l")
    assert stage.until(lambda: midi.learning is not None)
    x_input.press("Escape")
    assert stage.until(lambda: midi.learning is None and console.state.learning is None)


def test_learn_buttons_are_clickable(stage: Stage, x_input: XInput) -> None:
    console = open_console(stage)
    op = console.window
    midi = stage.show.midi
    stage.until(lambda: op.last_layout is not None and op.last_layout.hits)
    button = next(h for h in op.last_layout.hits if h.kind == "learn" and h.target == "master")
    ox, oy = window_origin(op.handle)
    cx, cy = ox + button.rect.x + button.rect.w / 2, oy + button.rect.y + button.rect.h / 2
    x_input.click(cx, cy)
    assert stage.until(lambda: midi.learning is not None and midi.learning.target == "master")
    assert console.state.selected == "master"
    x_input.click(cx, cy)  # "cancel" now
    assert stage.until(lambda: midi.learning is None and console.state.learning is None)


# --- Ctrl+S -----------------------------------------------------------------------------------------------

def test_ctrl_s_saves_a_new_user_preset(stage: Stage, x_input: XInput, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path))
    shipped = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data_dir("presets").glob("*")}
    console = open_console(stage)
    midi = stage.show.midi
    stage.show.params.set("gain.bass", 1.5)
    stage.show.params.set("blackout", 1.0)
    midi.learn("gain.sub")
    midi.handle_message("nano", [0xB0, 7, 10])
    x_input.press("s", "Control_L")
    target = user_presets_dir() / "default-2.toml"
    assert stage.until(lambda: target.is_file() and console.runner.current_status() is not None
                       and console.runner.current_status().text.startswith("saved preset default-2"))
    saved = load_preset(target)
    assert saved.params["gain.bass"] == 1.5 and "blackout" not in saved.params
    assert list(saved.midi) == [{"channel": 1, "cc": 7, "kind": "absolute", "param": "gain.sub", "takeover": "pickup"}]
    assert stage.show.preset.name == "default-2" and "default-2" in stage.show.presets
    # Again: another new file; nothing shipped was touched and no temporary file is left.
    x_input.press("s", "Control_L")
    assert stage.until(lambda: (user_presets_dir() / "default-3.toml").is_file())
    stage.show.saver.wait()
    assert sorted(p.name for p in user_presets_dir().iterdir()) == ["default-2.toml", "default-3.toml"]
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data_dir("presets").glob("*")} == shipped


# --- hiding and closing ---------------------------------------------------------------------------------------

def test_hiding_and_closing_the_operator_leaves_the_show_running(stage: Stage, x_input: XInput,
                                                                 xvfb: Path) -> None:  # noqa: F811
    import glfw

    console = open_console(stage)
    op = console.window
    output = stage.show.window
    stage.until(lambda: op.redraws > 0)
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
    assert stage.until(lambda: near(read_screen(xvfb)[y + 45, x + 80], (0, 200, 0)))
    redraws = op.redraws
    for _ in range(5):
        stage.step()
    assert op.redraws == redraws  # hidden: not drawn at all


# --- the output HUD -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hud", [False, True], ids=["default-off", "--hud"])
def test_the_output_hud_is_off_unless_asked_for(xvfb: Path, hud: bool) -> None:  # noqa: F811
    stage = Stage(output_size=(320, 180))
    try:
        stage.submit(np.zeros((32, 32, 4), np.uint8) + np.array([0, 0, 0, 255], np.uint8))
        stage.console = start_console(stage.show, operator=False, hud=hud)
        assert (stage.console is not None) == hud
        x, y = window_origin(stage.show.window.handle)
        corner = Rect(x, y, 200, 60)
        for _ in range(6):
            stage.step()
        count = bright_pixels(read_screen(xvfb), corner)
        if hud:
            assert count > 100, "no HUD text on the output"
            assert stage.console.window is None
        else:
            assert count == 0, "the output shows something over a black picture"
    finally:
        stage.close()


# --- the real thing ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_vjgan_live_opens_an_operator_window_that_can_be_closed(xvfb: Path, x_input: XInput,  # noqa: F811
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

        def region(a: XWindowAttributes) -> np.ndarray:
            return read_screen(xvfb)[a.y:a.y + a.height, a.x:a.x + a.width].astype(np.int16)

        # The operator window draws (text, meters, the preview) and keeps redrawing as the picture moves.
        deadline = time.monotonic() + 60
        first = region(attrs)
        while time.monotonic() < deadline:
            now = region(attrs)
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
        before = region(output)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and np.abs(region(output) - before).mean() <= 0.5:
            time.sleep(0.3)
        assert np.abs(region(output) - before).mean() > 0.5, "the output stopped moving"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, "".join(err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    text = "".join(err)
    assert "operator window hidden" in text and "Traceback" not in text
