"""The operator window: a second glfw window on the laptop screen, redrawn without vsync.

It shares OpenGL objects with the output window, so the preview samples the output's own
presented texture (what the audience sees, effects, blackout and flash limiting included) with
no copy and no read-back. Where the driver refuses a shared context the window opens unshared
and the preview shows the newest generated frame instead, uploaded into its own texture.

Its swap interval is 0: a swap never waits for the monitor, so drawing the operator window never
delays the output window's vsynced swap (both are drawn by the main thread, glfw's thread).
The window makes its context current only while it draws and hands the output's back after.

Events arrive from `glfw.poll_events()` — the live loop polls once per output picture — and are
passed on as plain values: `KeyPress`es, clicks in framebuffer pixels, wheel notches, close.
Closing the window only hides it; the show goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

import moderngl

from ..display.glfw_session import glfw_module, last_error
from ..errors import UserError
from .gldraw import Painter
from .hud import Layout, layout_operator
from .placement import Area, Placement, Screen, place_operator
from .state import KeyPress
from .text import build_atlas
from .view import OperatorView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperatorConfig:
    size: tuple[int, int] = (960, 600)  # wanted size in screen coordinates (shrunk to fit the screen)
    redraw_hz: float = 30.0  # enough to read meters; the output keeps the GPU's attention
    font_px: int = 14  # at 100% scale; multiplied by the monitor's content scale (HiDPI)
    title: str = "vjgan operator"

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 1:
            raise UserError(f"operator window size {self.size!r} must be two positive numbers")
        if not 1.0 <= self.redraw_hz <= 240.0:
            raise UserError(f"operator redraw rate {self.redraw_hz!r} Hz must be in 1..240")
        if not 6 <= self.font_px <= 72:
            raise UserError(f"operator font size {self.font_px!r} px must be in 6..72")


@dataclass
class WindowHandlers:
    on_key: Callable[[KeyPress], None]
    on_click: Callable[[float, float], None]  # framebuffer pixels, origin top left
    on_scroll: Callable[[float], None]  # wheel notches, positive = up
    on_close: Callable[[], None]


def _special_keys(glfw: Any) -> dict[int, str]:
    keys = {glfw.KEY_UP: "up", glfw.KEY_DOWN: "down", glfw.KEY_LEFT: "left", glfw.KEY_RIGHT: "right",
            glfw.KEY_PAGE_UP: "page_up", glfw.KEY_PAGE_DOWN: "page_down", glfw.KEY_HOME: "home",
            glfw.KEY_END: "end", glfw.KEY_ENTER: "enter", glfw.KEY_KP_ENTER: "enter", glfw.KEY_ESCAPE: "escape",
            glfw.KEY_DELETE: "delete", glfw.KEY_BACKSPACE: "backspace", glfw.KEY_SPACE: "space",
            glfw.KEY_TAB: "tab"}
    # Digits by position (the top row and the keypad): on AZERTY the top row prints "&é\"..."
    # without Shift, but a preset number is a position, not a character.
    for n in range(1, 10):
        keys[getattr(glfw, f"KEY_{n}")] = str(n)
        keys[getattr(glfw, f"KEY_KP_{n}")] = str(n)
    return keys


class PreviewSource:
    """The texture the preview shows, in the operator window's context."""

    def __init__(self, ctx: moderngl.Context, shared: bool, renderer: Callable[[], Any], frames: Any) -> None:
        self.ctx = ctx
        self.shared = shared
        self._renderer = renderer
        self._frames = frames
        self._wrapped: Optional[tuple[tuple[int, tuple[int, int]], moderngl.Texture]] = None
        self._uploads: Any = None
        self._frame_index = -1
        self._frame_texture: Optional[moderngl.Texture] = None

    def texture(self) -> Optional[moderngl.Texture]:
        if self.shared:
            renderer = self._renderer()
            if renderer is not None:
                return self._shared_texture(renderer.output_texture)
        return self._newest_frame()

    def _shared_texture(self, texture: moderngl.Texture) -> moderngl.Texture:
        # The renderer alternates between two presented textures and reallocates them when the
        # output is resized: wrap whichever GL name is current (wrapping allocates nothing).
        key = (texture.glo, tuple(texture.size))
        if self._wrapped is None or self._wrapped[0] != key:
            wrapped = self.ctx.external_texture(texture.glo, tuple(texture.size), texture.components,
                                                texture.samples, texture.dtype)
            self._wrapped = (key, wrapped)
        return self._wrapped[1]

    def _newest_frame(self) -> Optional[moderngl.Texture]:
        frame = self._frames.latest() if self._frames is not None else None
        if frame is None:
            return self._frame_texture
        if frame.index != self._frame_index:
            from ..display.textures import FrameTextures

            if self._uploads is None:
                self._uploads = FrameTextures(self.ctx)
            self._frame_texture = self._uploads.upload(frame, keep=None)
            self._frame_index = frame.index
        return self._frame_texture

    def release(self) -> None:
        # Wrapped textures belong to the output's renderer: only our own uploads are freed.
        self._wrapped = None
        if self._uploads is not None:
            self._uploads.release()
            self._uploads = None


def screens_from_monitors(glfw: Any) -> list[Screen]:
    """Every monitor with its usable area (the work area, without task bars, where glfw says)."""
    from ..display.monitors import monitor_info

    out = []
    primary = glfw.get_primary_monitor()
    for i, handle in enumerate(glfw.get_monitors() or []):
        info = monitor_info(handle, i, primary)
        area = Area(info.x, info.y, info.width, info.height)
        try:
            x, y, w, h = glfw.get_monitor_workarea(handle)
            if w > 0 and h > 0:
                area = Area(int(x), int(y), int(w), int(h))
        except Exception:  # glfw before 3.3 has no work area
            pass
        out.append(Screen(info.name, area, info.primary))
    return out


class OperatorWindow:
    """The window itself: opening, placing, events, and drawing a view."""

    def __init__(self, show: Any, handlers: WindowHandlers, config: Optional[OperatorConfig] = None) -> None:
        self.config = config or OperatorConfig()
        self.handlers = handlers
        self.show = show
        glfw = self._glfw = glfw_module()
        output = show.window
        self._output_handle = getattr(output, "handle", None)
        glfw.default_window_hints()
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        glfw.window_hint(glfw.VISIBLE, False)  # placed first, then shown
        glfw.window_hint(glfw.SCALE_TO_MONITOR, True)  # Windows/X11 HiDPI: the size is in 100% units
        w, h = self.config.size
        handle = glfw.create_window(w, h, self.config.title, None, self._output_handle)
        self.shared = bool(handle) and self._output_handle is not None
        if not handle and self._output_handle is not None:
            self._say(f"the operator window cannot share the output's GL objects "
                      f"({last_error() or 'unknown reason'}); its preview shows the generated frames")
            handle = glfw.create_window(w, h, self.config.title, None, None)
        if not handle:
            self._restore_output_context()
            raise UserError(f"cannot open the operator window: {last_error() or 'unknown reason'}")
        self.handle = handle
        self.placement: Optional[Placement] = None
        try:
            self.placement = self._place(output)
            glfw.make_context_current(handle)
            self.ctx = moderngl.create_context(require=330)
            glfw.swap_interval(0)  # never wait for the monitor here: the output's swap waits
            scale = float(glfw.get_window_content_scale(handle)[0] or 1.0)
            self.atlas = build_atlas(max(8, round(self.config.font_px * scale)))
            self.painter = Painter(self.ctx, self.atlas)
            self.preview = PreviewSource(self.ctx, self.shared, lambda: getattr(show, "renderer", None),
                                         getattr(show, "frames", None))
        except Exception as e:
            glfw.destroy_window(handle)
            self.handle = None
            self._restore_output_context()
            raise UserError(f"the operator window cannot draw: {' '.join(str(e).split())}") from None
        self._special = _special_keys(glfw)
        glfw.set_key_callback(handle, self._on_key)
        glfw.set_mouse_button_callback(handle, self._on_mouse)
        glfw.set_scroll_callback(handle, self._on_scroll)
        glfw.set_window_close_callback(handle, self._on_close)
        glfw.show_window(handle)
        glfw.focus_window(handle)
        self._restore_output_context()
        self.last_layout: Optional[Layout] = None
        self.redraws = 0

    # --- placement ------------------------------------------------------------------------------

    def _place(self, output: Any) -> Placement:
        glfw = self._glfw
        screens = screens_from_monitors(glfw)
        out_rect = Area(0, 0, 0, 0)
        fullscreen = False
        if self._output_handle is not None:
            x, y = glfw.get_window_pos(self._output_handle)
            w, h = glfw.get_window_size(self._output_handle)
            out_rect = Area(int(x), int(y), int(w), int(h))
            fullscreen = bool(glfw.get_window_monitor(self._output_handle))
        monitor = getattr(output, "monitor", None)
        placement = place_operator(screens, getattr(monitor, "name", None), fullscreen, out_rect, self.config.size)
        a = placement.operator
        glfw.set_window_size(self.handle, a.w, a.h)
        glfw.set_window_pos(self.handle, a.x, a.y)
        if placement.move_output_to is not None and self._output_handle is not None:
            glfw.set_window_pos(self._output_handle, *placement.move_output_to)
        if placement.note:
            log.info("%s", placement.note)
        return placement

    # --- state ------------------------------------------------------------------------------------

    @property
    def visible(self) -> bool:
        return self.handle is not None and bool(self._glfw.get_window_attrib(self.handle, self._glfw.VISIBLE))

    @property
    def framebuffer_size(self) -> tuple[int, int]:
        if self.handle is None:
            return (0, 0)
        w, h = self._glfw.get_framebuffer_size(self.handle)
        return int(w), int(h)

    def show_window(self) -> None:
        if self.handle is not None:
            self._glfw.show_window(self.handle)
            self._glfw.focus_window(self.handle)

    def hide_window(self) -> None:
        if self.handle is not None:
            self._glfw.hide_window(self.handle)

    # --- events -------------------------------------------------------------------------------------

    def key_name(self, key: int, scancode: int) -> str:
        special = self._special.get(key)
        if special:
            return special
        name = self._glfw.get_key_name(key, scancode)  # layout-aware: the letter the key prints
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return (name or "").lower()

    def _on_key(self, _handle: Any, key: int, scancode: int, action: int, mods: int) -> None:
        glfw = self._glfw
        if action not in (glfw.PRESS, glfw.REPEAT):
            return
        name = self.key_name(key, scancode)
        if not name:
            return
        ctrl = bool(mods & (glfw.MOD_CONTROL | glfw.MOD_SUPER))  # Cmd+S on macOS
        self._guard(self.handlers.on_key, KeyPress(name, ctrl, bool(mods & glfw.MOD_SHIFT), action == glfw.REPEAT))

    def _on_mouse(self, _handle: Any, button: int, action: int, _mods: int) -> None:
        glfw = self._glfw
        if button != glfw.MOUSE_BUTTON_LEFT or action != glfw.PRESS:
            return
        x, y = glfw.get_cursor_pos(self.handle)
        # The cursor is in screen coordinates; the layout in framebuffer pixels (differs on HiDPI).
        ww, wh = glfw.get_window_size(self.handle)
        fw, fh = self.framebuffer_size
        sx = fw / ww if ww else 1.0
        sy = fh / wh if wh else 1.0
        self._guard(self.handlers.on_click, x * sx, y * sy)

    def _on_scroll(self, _handle: Any, _dx: float, dy: float) -> None:
        self._guard(self.handlers.on_scroll, dy)

    def _on_close(self, _handle: Any) -> None:
        # Closing the operator window hides it: the show goes on, and H brings it back.
        self._glfw.set_window_should_close(self.handle, False)
        self._guard(self.handlers.on_close)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        # An exception escaping a glfw callback would surface in poll_events, inside the live loop:
        # it becomes one line in the log and the show goes on.
        try:
            fn(*args)
        except Exception as e:
            log.debug("operator window event failed", exc_info=True)
            self._say(f"operator window: {type(e).__name__}: {e}")

    def _say(self, line: str) -> None:
        say = getattr(self.show, "log", None)
        if callable(say):
            say(line)
        else:
            log.warning("%s", line)

    # --- drawing ---------------------------------------------------------------------------------------

    def draw(self, view: OperatorView, scroll: int = 0) -> Optional[Layout]:
        """Lay out and draw `view`, swap without waiting; None when hidden or minimised."""
        if self.handle is None or not self.visible:
            return None
        size = self.framebuffer_size
        if size[0] <= 0 or size[1] <= 0:
            return None
        glfw = self._glfw
        glfw.make_context_current(self.handle)
        try:
            layout = layout_operator(view, size, self.atlas, scroll)
            texture = self.preview.texture() if layout.preview is not None else None
            self.painter.draw(layout, self.ctx.screen, texture)
            glfw.swap_buffers(self.handle)
        finally:
            self._restore_output_context()
        self.last_layout = layout
        self.redraws += 1
        return layout

    def _restore_output_context(self) -> None:
        # The output's renderer issues GL calls assuming its context is current.
        self._glfw.make_context_current(self._output_handle)

    def close(self) -> None:
        if self.handle is None:
            return
        glfw = self._glfw
        glfw.make_context_current(self.handle)
        try:
            self.preview.release()
            self.painter.release()
            self.ctx.release()
        finally:
            glfw.make_context_current(None)
            glfw.destroy_window(self.handle)
            self.handle = None
            self._restore_output_context()
