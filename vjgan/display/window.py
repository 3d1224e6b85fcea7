"""The output window: fullscreen on the chosen monitor (or windowed), vsync, keys → named actions.

    window = OutputWindow(WindowConfig(monitor="HDMI", fullscreen=True), on_action=handle)
    renderer = Renderer(window.ctx, window.framebuffer_size, RendererConfig(display_hz=window.refresh_hz))
    while not window.should_close:
        window.poll()                      # key callbacks run here
        renderer.pull(frames)
        stats = window.present(renderer, inputs, settings)   # render + swap (blocks on vsync)

Every key's action goes to `on_action(action, t)` with the time of the key press; the live show
turns it into a command on its one command path, and carries it out on this (the main) thread,
fullscreen included (`toggle_fullscreen`). Quitting needs a second press within
`quit_confirm_s` (see `keys.py`); the window's close button counts as a press, and a confirmed
quit sets `should_close`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import moderngl

from ..errors import UserError
from .context import release_egl_thread
from .glfw_session import glfw_module, last_error
from .inputs import DisplayInputs
from .keys import Action, KeyActions
from .monitors import MonitorInfo, find_monitor, glfw_monitors, list_monitors, monitor_info
from .renderer import Renderer, RenderStats
from .settings import OutputSettings

log = logging.getLogger(__name__)

ActionCallback = Callable[[Action, float], None]
DEFAULT_REFRESH_HZ = 60.0  # when the monitor does not report its rate


@dataclass(frozen=True)
class WindowConfig:
    monitor: str | int | None = None  # name (substring) or index; None = the primary monitor
    fullscreen: bool = False
    size: tuple[int, int] = (1280, 720)  # windowed size in screen coordinates
    title: str = "vjgan"
    vsync: bool = True  # swap on the monitor's refresh: no tearing on the projector
    quit_confirm_s: float = 2.0
    hide_cursor: bool = True  # in fullscreen, so no pointer sits on the projection

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 1:
            raise UserError(f"window size {self.size!r} must be two positive numbers")
        if self.quit_confirm_s <= 0:
            raise UserError("quit_confirm_s must be positive")


def _special_keys(glfw: Any) -> dict[int, str]:
    return {glfw.KEY_SPACE: "space", glfw.KEY_ESCAPE: "escape", glfw.KEY_F11: "f11",
            glfw.KEY_LEFT: "left", glfw.KEY_RIGHT: "right", glfw.KEY_PAGE_UP: "page_up",
            glfw.KEY_PAGE_DOWN: "page_down", glfw.KEY_ENTER: "enter", glfw.KEY_TAB: "tab"}


class OutputWindow:
    def __init__(self, config: WindowConfig | None = None, on_action: ActionCallback | None = None,
                 share: "OutputWindow | None" = None) -> None:
        self.config = config or WindowConfig()
        self.on_action = on_action
        # An offscreen EGL context released earlier on this thread would make GLX fail (see
        # release_egl_thread); this must happen before glfw creates the window's context.
        release_egl_thread()
        glfw = self._glfw = glfw_module()
        monitors = list_monitors()
        # Resolve the monitor before opening anything, so a wrong name fails with the list.
        self.monitor: MonitorInfo | None = find_monitor(self.config.monitor, monitors) if monitors else None
        if self.monitor is None and (self.config.fullscreen or self.config.monitor is not None):
            raise UserError("no monitors are connected, so the output cannot go fullscreen")

        glfw.default_window_hints()
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)  # required for a core context on macOS
        # A fullscreen output must stay up when the operator clicks into the laptop screen.
        glfw.window_hint(glfw.AUTO_ICONIFY, False)
        glfw.window_hint(glfw.VISIBLE, False)  # placed on its monitor first, then shown
        w, h = self.config.size
        handle = glfw.create_window(w, h, self.config.title, None, share.handle if share else None)
        if not handle:
            raise UserError(f"cannot open an OpenGL 3.3 window: {last_error() or 'unknown reason'}")
        self.handle = handle
        if self.monitor is not None:
            m = self.monitor
            glfw.set_window_pos(handle, m.x + max(0, (m.width - w) // 2), m.y + max(0, (m.height - h) // 2))
        glfw.show_window(handle)
        glfw.make_context_current(handle)
        try:
            self.ctx = moderngl.create_context(require=330)
        except Exception as e:
            glfw.destroy_window(handle)
            raise UserError(f"the window's OpenGL context is below 3.3: {' '.join(str(e).split())}") from None
        glfw.swap_interval(1 if self.config.vsync else 0)

        self._keys = KeyActions(quit_confirm_s=self.config.quit_confirm_s)
        self._special = _special_keys(glfw)
        self.quit_requested = False
        self._windowed_rect = (*glfw.get_window_pos(handle), w, h)
        glfw.set_key_callback(handle, self._on_key)
        glfw.set_window_close_callback(handle, self._on_close)
        if self.config.fullscreen:
            self.set_fullscreen(True)

    # --- state ------------------------------------------------------------------------------

    @property
    def framebuffer_size(self) -> tuple[int, int]:
        """Drawable size in pixels (differs from the window size on HiDPI screens)."""
        w, h = self._glfw.get_framebuffer_size(self.handle)
        return int(w), int(h)

    @property
    def refresh_hz(self) -> float:
        current = self._current_monitor_info()
        rate = current.refresh_hz if current is not None else None
        return rate or DEFAULT_REFRESH_HZ

    @property
    def fullscreen(self) -> bool:
        # Asked of glfw, not cached: unplugging the projector returns the window to windowed mode.
        return bool(self._glfw.get_window_monitor(self.handle))

    @property
    def should_close(self) -> bool:
        return self.quit_requested

    def quit_armed(self) -> bool:
        """True while a first quit press waits for its confirmation (show it in the HUD)."""
        return self._keys.quit_armed(time.perf_counter())

    # --- fullscreen -------------------------------------------------------------------------

    def set_fullscreen(self, on: bool) -> None:
        glfw = self._glfw
        if on == self.fullscreen:
            return
        if on:
            handle, info = self._monitor_handle()
            x, y = glfw.get_window_pos(self.handle)
            w, h = glfw.get_window_size(self.handle)
            self._windowed_rect = (x, y, w, h)
            mode = glfw.get_video_mode(handle)
            # The monitor's current mode: no mode switch, so a projector never re-syncs mid-show.
            glfw.set_window_monitor(self.handle, handle, 0, 0, mode.size.width, mode.size.height, mode.refresh_rate)
            if self.config.hide_cursor:
                glfw.set_input_mode(self.handle, glfw.CURSOR, glfw.CURSOR_HIDDEN)
            self.monitor = info
        else:
            x, y, w, h = self._windowed_rect
            glfw.set_window_monitor(self.handle, None, x, y, w, h, 0)
            glfw.set_input_mode(self.handle, glfw.CURSOR, glfw.CURSOR_NORMAL)
        # A swap interval belongs to the context and some platforms reset it on a mode change.
        glfw.make_context_current(self.handle)
        glfw.swap_interval(1 if self.config.vsync else 0)

    def toggle_fullscreen(self) -> None:
        self.set_fullscreen(not self.fullscreen)

    def _monitor_handle(self) -> tuple[Any, MonitorInfo]:
        handles = glfw_monitors()
        if not handles:
            raise UserError("no monitors are connected, so the output cannot go fullscreen")
        primary = self._glfw.get_primary_monitor()
        infos = [monitor_info(h, i, primary) for i, h in enumerate(handles)]
        # Monitors can be plugged and unplugged during a show: find ours again by name.
        if self.monitor is not None:
            for h, info in zip(handles, infos):
                if info.name == self.monitor.name:
                    return h, info
            log.warning("monitor %s is gone; going fullscreen on the primary one", self.monitor.name)
        info = find_monitor(None, infos)
        return handles[info.index], info

    def _current_monitor_info(self) -> MonitorInfo | None:
        handle = self._glfw.get_window_monitor(self.handle)
        if handle:
            return monitor_info(handle, self.monitor.index if self.monitor else 0)
        return self.monitor

    # --- events -----------------------------------------------------------------------------

    def poll(self) -> None:
        """Handle pending window events (keys, resize, close) without waiting."""
        self._glfw.poll_events()

    def wait(self, timeout: float) -> None:
        """Sleep until a window event, a `wake()` from another thread, or `timeout` seconds."""
        if timeout > 0:
            self._glfw.wait_events_timeout(timeout)

    def wake(self) -> None:
        """End a `wait` early (any thread: a new frame, a command)."""
        self._glfw.post_empty_event()

    def key_name(self, key: int, scancode: int) -> str:
        """Layout-aware key name: the letter a key prints (Q on AZERTY too), else a fixed name."""
        special = self._special.get(key)
        if special:
            return special
        name = self._glfw.get_key_name(key, scancode)
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return (name or "").lower()

    def _on_key(self, _handle: Any, key: int, scancode: int, action: int, _mods: int) -> None:
        if action != self._glfw.PRESS:  # no auto-repeat: a held key must not tap the tempo
            return
        t = time.perf_counter()
        result = self._keys.press(self.key_name(key, scancode), t)
        if result is not None:
            self._dispatch(result, t)

    def _on_close(self, _handle: Any) -> None:
        # The close button is a quit press like Q: it must be confirmed.
        self._glfw.set_window_should_close(self.handle, False)
        t = time.perf_counter()
        self._dispatch(self._keys.quit_pressed(t), t)

    def _dispatch(self, action: Action, t: float) -> None:
        if action is Action.QUIT:
            self.quit_requested = True
        if self.on_action is not None:
            self.on_action(action, t)

    # --- drawing ----------------------------------------------------------------------------

    def make_current(self) -> None:
        self._glfw.make_context_current(self.handle)

    def present(self, renderer: Renderer, inputs: DisplayInputs, settings: OutputSettings | None = None) -> RenderStats:
        """Render one picture into the window and swap (blocks until the refresh with vsync)."""
        self.make_current()
        size = self.framebuffer_size
        visible = size[0] > 0 and size[1] > 0  # 0x0 while minimised: render, but nothing to show
        if visible:
            renderer.resize(size)
        stats = renderer.render(inputs, settings, target=self.ctx.screen if visible else None)
        self._glfw.swap_buffers(self.handle)
        return replace(stats, t_swap=time.perf_counter())

    def close(self) -> None:
        if self.handle is not None:
            self._glfw.destroy_window(self.handle)
            self.handle = None

    def __enter__(self) -> "OutputWindow":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
