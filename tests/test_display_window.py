"""The output window under a real X server (Xvfb): monitors, fullscreen, pictures on screen, keys.

What the window shows is read from the X server's own framebuffer (Xvfb -fbdir keeps it in an
XWD file), so a test passes only if the picture really reached the screen after the swap. Keys
are typed through the XTEST extension, so they travel X server → glfw → the window's callback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from vjgan.display.frame import Frame
from vjgan.display.inputs import DisplayInputs
from vjgan.display.keys import Action
from vjgan.display.monitors import list_monitors
from vjgan.display.renderer import Renderer
from vjgan.display.settings import OutputSettings, RendererConfig
from vjgan.display.window import OutputWindow, WindowConfig
from vjgan.errors import UserError
from xvfb_support import SCREEN, XInput, quadrants, read_screen, xvfb  # noqa: F401  (xvfb is a fixture)

ROOT = Path(__file__).resolve().parent.parent


def wait_for(check: Callable[[], bool], window: OutputWindow | None = None, timeout: float = 3.0,
             redraw: Callable[[], object] | None = None) -> bool:
    """Poll events (and redraw, as the live loop does every refresh) until `check` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if window is not None:
            window.poll()
        if redraw is not None:
            redraw()
        if check():
            return True
        time.sleep(0.02)
    return check()


def renderer_for(window: OutputWindow) -> Renderer:
    return Renderer(window.ctx, window.framebuffer_size, RendererConfig(display_hz=window.refresh_hz, upload="pbo"))


# --- monitors ------------------------------------------------------------------------------------

def test_monitors_are_listed(xvfb: Path) -> None:
    monitors = list_monitors()
    assert len(monitors) == 1
    m = monitors[0]
    assert m.name and (m.width, m.height) == SCREEN and m.primary and m.index == 0
    assert m.refresh_hz is None or m.refresh_hz > 0
    assert f"0: {m.name} 640x360" in m.describe()


def test_a_missing_monitor_is_one_line_listing_the_others(xvfb: Path) -> None:
    name = list_monitors()[0].name
    for spec, message in (("HDMI-9", "no monitor matches 'HDMI-9'"), (3, "no monitor number 3")):
        with pytest.raises(UserError) as err:
            OutputWindow(WindowConfig(monitor=spec, fullscreen=True))
        text = str(err.value)
        assert message in text and f"0: {name} 640x360" in text and "\n" not in text


# --- pictures on the screen ------------------------------------------------------------------------

def test_fullscreen_output_shows_the_frame(xvfb: Path) -> None:
    name = list_monitors()[0].name
    with OutputWindow(WindowConfig(monitor=name[:3], fullscreen=True, title="vjgan test")) as window:
        assert window.fullscreen and window.framebuffer_size == SCREEN
        renderer = renderer_for(window)
        renderer.submit(Frame(quadrants(), 1, 0.0, 0.0, 64))

        # fill: the square frame covers the 16:9 screen, cropped top and bottom. The picture is
        # presented every time round, as the live loop does: the first swap after a window
        # changes size can be dropped by the driver while the new drawable is set up.
        def present(fit: str, t: float) -> None:
            stats = window.present(renderer, DisplayInputs(time=t), OutputSettings(fit=fit))
            assert stats.frame_index == 1 and stats.t_swap is not None and stats.output_size == SCREEN

        def shows(expected: dict[tuple[int, int], tuple[int, int, int]]) -> bool:
            screen = read_screen(xvfb)
            return all(tuple(int(c) for c in screen[y, x]) == rgb for (y, x), rgb in expected.items())

        expected_fill = {(10, 10): (255, 0, 0), (10, 630): (0, 255, 0), (350, 10): (0, 0, 255),
                         (350, 630): (255, 255, 255)}
        assert wait_for(lambda: shows(expected_fill), window, redraw=lambda: present("fill", 0.0)), \
            f"screen shows {read_screen(xvfb)[::90, ::160].tolist()}"

        # fit: the whole frame, 360 px square in the middle, black bars left and right.
        expected_fit = {(10, 100): (0, 0, 0), (10, 540): (0, 0, 0), (10, 150): (255, 0, 0),
                        (10, 490): (0, 255, 0), (350, 150): (0, 0, 255), (350, 490): (255, 255, 255)}
        assert wait_for(lambda: shows(expected_fit), window, redraw=lambda: present("fit", 2.0))
        screen = read_screen(xvfb)
        bars = screen[:, :SCREEN[0] // 2 - 180].sum() + screen[:, SCREEN[0] // 2 + 180:].sum()
        assert bars == 0
        inside = screen[:, SCREEN[0] // 2 - 180: SCREEN[0] // 2 + 180]
        assert (inside.reshape(-1, 3).max(axis=1) > 0).all()  # the frame fills its square, no gaps
        renderer.release()


def test_windowed_output_follows_a_resize(xvfb: Path) -> None:
    with OutputWindow(WindowConfig(size=(320, 200))) as window:
        assert not window.fullscreen and window.framebuffer_size == (320, 200)
        renderer = renderer_for(window)
        px = np.zeros((16, 16, 4), np.uint8)
        px[...] = (10, 200, 30, 255)
        renderer.submit(Frame(px, 1, 0.0, 0.0, 16))
        window.present(renderer, DisplayInputs(time=0.0))
        import glfw

        glfw.set_window_size(window.handle, 200, 120)
        assert wait_for(lambda: window.framebuffer_size == (200, 120), window)
        x, y = glfw.get_window_pos(window.handle)
        assert wait_for(lambda: tuple(int(c) for c in read_screen(xvfb)[y + 60, x + 100]) == (10, 200, 30), window,
                        redraw=lambda: window.present(renderer, DisplayInputs(time=1.0)))
        assert renderer.size == (200, 120) and renderer.target_allocations == 2
        assert tuple(int(c) for c in read_screen(xvfb)[y + 160, x + 280]) == (0, 0, 0)  # the window shrank
        renderer.release()


# --- keys ------------------------------------------------------------------------------------------

def test_keys_on_the_output_window_become_actions(xvfb: Path) -> None:
    import glfw

    keyboard = XInput()
    actions: list[Action] = []
    windows: list[OutputWindow] = []

    def on_action(action: Action, t: float) -> None:
        actions.append(action)
        if action is Action.TOGGLE_FULLSCREEN:  # what the show's command path does with it
            windows[0].toggle_fullscreen()

    try:
        with OutputWindow(WindowConfig(size=(320, 200)), on_action=on_action) as window:
            windows.append(window)
            glfw.focus_window(window.handle)
            window.poll()
            expected = [("b", Action.BLACKOUT), ("space", Action.FREEZE), ("t", Action.TAP_TEMPO),
                        ("Right", Action.NEXT_PRESET), ("Next", Action.NEXT_PRESET), ("Left", Action.PREVIOUS_PRESET),
                        ("Prior", Action.PREVIOUS_PRESET), ("x", None), ("F11", Action.TOGGLE_FULLSCREEN)]
            for keysym, action in expected:
                keyboard.press(keysym)
                if action is not None:
                    assert wait_for(lambda: len(actions) and actions[-1] is action, window), f"{keysym}: {actions}"
            assert actions == [a for _, a in expected if a is not None]  # x is unbound: nothing
            assert wait_for(lambda: window.fullscreen and window.framebuffer_size == SCREEN, window)

            keyboard.press("f")  # back to windowed
            assert wait_for(lambda: not window.fullscreen and window.framebuffer_size == (320, 200), window)

            keyboard.press("q")
            assert wait_for(lambda: actions[-1] is Action.QUIT_ARMED, window)
            assert window.quit_armed() and not window.should_close
            keyboard.press("Escape")
            assert wait_for(lambda: actions[-1] is Action.QUIT, window) and window.should_close
            assert all(a.is_show_action for a in actions[:-2]) and not actions[-1].is_show_action
    finally:
        keyboard.close()


def test_quit_confirmation_expires_and_close_button_needs_it_too(xvfb: Path) -> None:
    import glfw

    keyboard = XInput()
    actions: list[Action] = []
    try:
        config = WindowConfig(size=(320, 200), quit_confirm_s=0.3)
        with OutputWindow(config, on_action=lambda a, t: actions.append(a)) as window:
            glfw.focus_window(window.handle)
            window.poll()
            keyboard.press("q")
            assert wait_for(lambda: actions == [Action.QUIT_ARMED], window)
            time.sleep(0.4)
            keyboard.press("q")  # too late: arms again
            assert wait_for(lambda: actions == [Action.QUIT_ARMED] * 2, window)
            time.sleep(0.4)
            xid = glfw.get_x11_window(window.handle)
            keyboard.close_window(xid)  # the close button: a quit press, not an exit
            assert wait_for(lambda: len(actions) == 3, window)
            assert actions[-1] is Action.QUIT_ARMED and not window.should_close
            assert not glfw.window_should_close(window.handle)
            keyboard.close_window(xid)
            assert wait_for(lambda: actions[-1] is Action.QUIT, window) and window.should_close
    finally:
        keyboard.close()


# --- no display ----------------------------------------------------------------------------------

def test_without_a_display_the_error_points_to_render() -> None:
    script = (
        "from vjgan.display import NoDisplayError, list_monitors\n"
        "try:\n    list_monitors()\nexcept NoDisplayError as e:\n    print('ERROR', e)\n"
        "else:\n    print('NO ERROR')\n"
    )
    missing = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    dead = dict(missing, DISPLAY=":987")  # set, but no X server there: glfw itself fails
    for env, reason in ((missing, "neither DISPLAY nor WAYLAND_DISPLAY"), (dead, "glfw cannot start")):
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                              cwd=ROOT, timeout=60)
        out = proc.stdout.strip()
        assert out.startswith("ERROR no display"), proc.stdout + proc.stderr
        assert reason in out and "vjgan render" in out and "\n" not in out
