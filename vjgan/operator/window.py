"""The operator window: a second glfw window on the laptop screen, drawn by Dear ImGui, without vsync.

Dear ImGui (the `imgui-bundle` binding) draws the widgets through its own GLFW and OpenGL 3
backends, compiled into the binding; this module opens the window, feeds ImGui the window's
events, runs one ImGui frame when asked (`frame(draw)`), and keeps the window's layout text.

It shares OpenGL objects with the output window, so the preview shows the output's own presented
texture (what the audience sees, effects, blackout and flash limiting included) with no copy and
no read-back. Where the driver refuses a shared context the window opens unshared and the
preview shows the newest generated frame instead, uploaded into its own texture.

Its swap interval is 0: a swap never waits for the monitor, so drawing the operator window never
delays the output window's vsynced swap (both are drawn by the main thread, glfw's thread).
The window makes its context current only while it draws and hands the output's back after.

Events arrive from `glfw.poll_events()` (the live loop polls once per output picture). Each one
goes to ImGui first; a key then goes on to the show as a `KeyPress` unless a text field has the
keyboard, so typing a preset's name never blacks out the projector, and the show's keys work
whenever no field is being edited. Closing the window only hides it; the show goes on.
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

import moderngl

from ..display.glfw_session import glfw_module, last_error
from ..errors import UserError
from .placement import Area, Placement, Screen, place_operator
from .state import KeyPress

log = logging.getLogger(__name__)

FONT_FILE = ("assets", "fonts", "DroidSans.ttf")  # shipped inside imgui-bundle's wheel


@dataclass(frozen=True)
class OperatorConfig:
    size: tuple[int, int] = (960, 600)  # wanted size in screen coordinates (shrunk to fit the screen)
    redraw_hz: float = 30.0  # enough to read meters and drag a slider; the output keeps the GPU's attention
    font_px: int = 15  # at 100% scale
    ui_scale: float = 1.0  # --ui-scale, times the monitor's content scale
    title: str = "vjgan operator"

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 1:
            raise UserError(f"operator window size {self.size!r} must be two positive numbers")
        if not 1.0 <= self.redraw_hz <= 240.0:
            raise UserError(f"operator redraw rate {self.redraw_hz!r} Hz must be in 1..240")
        if not 6 <= self.font_px <= 72:
            raise UserError(f"operator font size {self.font_px!r} px must be in 6..72")
        if not 0.5 <= self.ui_scale <= 4.0:
            raise UserError(f"operator UI scale {self.ui_scale!r} must be in 0.5..4")


@dataclass
class WindowHandlers:
    on_key: Callable[[KeyPress], None]  # a key meant for the show (no text field has the keyboard)
    on_close: Callable[[], None]


def imgui_module() -> Any:
    """Dear ImGui, or a UserError saying how to get it (the show then plays without the console)."""
    try:
        from imgui_bundle import imgui
    except ImportError as e:
        raise UserError(f"the operator console needs imgui-bundle ({e}); pip install imgui-bundle") from None
    return imgui


def font_file() -> Optional[str]:
    """A clear sans-serif font that travels with imgui-bundle (else ImGui's built-in bitmap font)."""
    import imgui_bundle

    path = os.path.join(os.path.dirname(imgui_bundle.__file__), *FONT_FILE)
    return path if os.path.isfile(path) else None


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
    """The texture the preview shows: (GL name, upside down?) in the operator window's context."""

    def __init__(self, ctx: moderngl.Context, shared: bool, renderer: Callable[[], Any], frames: Any) -> None:
        self.ctx = ctx
        self.shared = shared
        self._renderer = renderer
        self._frames = frames
        self._uploads: Any = None
        self._frame_index = -1
        self._frame_texture: Optional[moderngl.Texture] = None

    def texture(self) -> Optional[tuple[int, bool]]:
        if self.shared:
            renderer = self._renderer()
            if renderer is not None:
                # A shared context sees the renderer's texture under the same name. The renderer
                # alternates between two presented textures and reallocates them on a resize:
                # the name is read again for every redraw. It was drawn by OpenGL, bottom row first.
                return int(renderer.output_texture.glo), True
        texture = self._newest_frame()
        return (int(texture.glo), False) if texture is not None else None

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
        # The renderer's textures belong to the output: only our own uploads are freed.
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


def window_address(handle: Any) -> int:
    """The GLFWwindow pointer ImGui's backend takes, from the glfw package's handle."""
    return int(ctypes.cast(handle, ctypes.c_void_p).value or 0)


class OperatorWindow:
    """The window itself: opening, placing, events, ImGui frames."""

    def __init__(self, show: Any, handlers: WindowHandlers, config: Optional[OperatorConfig] = None,
                 layout_ini: str = "") -> None:
        self.config = config or OperatorConfig()
        self.handlers = handlers
        self.show = show
        imgui = self._imgui = imgui_module()
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
        self._address = window_address(handle)
        self.placement: Optional[Placement] = None
        self.gui: Any = None
        try:
            self.placement = self._place(output)
            glfw.make_context_current(handle)
            self.ctx = moderngl.create_context(require=330)
            glfw.swap_interval(0)  # never wait for the monitor here: the output's swap waits
            self.scale = self.config.ui_scale * self._content_scale()
            self.gui = imgui.create_context()
            self._setup_imgui(layout_ini)
            self.preview = PreviewSource(self.ctx, self.shared, lambda: getattr(show, "renderer", None),
                                         getattr(show, "frames", None))
        except Exception as e:
            self._teardown_imgui()
            glfw.destroy_window(handle)
            self.handle = None
            self._restore_output_context()
            raise UserError(f"the operator window cannot draw: {' '.join(str(e).split())}") from None
        self._special = _special_keys(glfw)
        # Our callbacks, each handing the event to ImGui's backend first (it was initialised
        # without installing its own, so which events reach the show stays decided here).
        self._callbacks = (
            glfw.set_key_callback(handle, self._on_key), glfw.set_char_callback(handle, self._on_char),
            glfw.set_mouse_button_callback(handle, self._on_mouse_button),
            glfw.set_cursor_pos_callback(handle, self._on_cursor_pos),
            glfw.set_cursor_enter_callback(handle, self._on_cursor_enter),
            glfw.set_scroll_callback(handle, self._on_scroll),
            glfw.set_window_focus_callback(handle, self._on_focus),
            glfw.set_window_close_callback(handle, self._on_close))
        glfw.show_window(handle)
        glfw.focus_window(handle)
        self._restore_output_context()
        self.redraws = 0
        self._ini = layout_ini

    # --- ImGui --------------------------------------------------------------------------------------

    def _content_scale(self) -> float:
        try:
            sx, sy = self._glfw.get_window_content_scale(self.handle)
            scale = float(max(sx, sy))
        except Exception:
            return 1.0
        # Where the framebuffer is already larger than the window (macOS Retina), ImGui works in
        # window units and the backend scales the drawing: only the remainder is ours to apply.
        fw, _ = self._glfw.get_framebuffer_size(self.handle)
        ww, _ = self._glfw.get_window_size(self.handle)
        density = fw / ww if ww else 1.0
        return max(0.25, scale / max(1.0, density))

    def _setup_imgui(self, layout_ini: str) -> None:
        imgui = self._imgui
        io = imgui.get_io()
        io.set_ini_filename(None)  # the layout travels with the running state, not in a file in the cwd
        io.config_flags |= imgui.ConfigFlags_.docking_enable.value
        io.config_windows_move_from_title_bar_only = True  # a drag on a panel's body is a widget's drag
        # A panel that fails half-way (a bug) must not take the show down: ImGui closes what the
        # panel left open when the frame ends, instead of asserting; the console logs the fault.
        io.config_error_recovery = True
        io.config_error_recovery_enable_assert = False
        io.config_error_recovery_enable_tooltip = False
        font = font_file()
        size = round(self.config.font_px * self.scale)
        if font is not None:
            io.fonts.add_font_from_file_ttf(font, size)
        style = imgui.get_style()
        style.font_size_base = size
        style.scale_all_sizes(self.scale)
        self.font_px = size
        if layout_ini:
            imgui.load_ini_settings_from_memory(layout_ini)
        imgui.backends.glfw_init_for_opengl(self._address, False)
        imgui.backends.opengl3_init("#version 330")

    def _teardown_imgui(self) -> None:
        if self.gui is None:
            return
        imgui = self._imgui
        imgui.set_current_context(self.gui)
        try:
            imgui.backends.opengl3_shutdown()
            imgui.backends.glfw_shutdown()
        except Exception:  # half set up: the context is destroyed below all the same
            log.debug("ImGui backends did not shut down cleanly", exc_info=True)
        imgui.destroy_context(self.gui)
        self.gui = None

    def layout_ini(self) -> str:
        """ImGui's layout text (panel sizes, docking, table columns), as of the last frame."""
        if self.gui is not None and self.redraws:
            self._imgui.set_current_context(self.gui)
            self._ini = self._imgui.save_ini_settings_to_memory()
        return self._ini

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

    def _to_imgui(self, forward: Callable[..., None], *args: Any) -> None:
        if self.gui is None:
            return
        self._imgui.set_current_context(self.gui)
        forward(self._address, *args)

    def _on_key(self, _handle: Any, key: int, scancode: int, action: int, mods: int) -> None:
        glfw = self._glfw
        self._guard(self._to_imgui, self._imgui.backends.glfw_key_callback, key, scancode, action, mods)
        if action not in (glfw.PRESS, glfw.REPEAT) or self.typing:
            return
        name = self.key_name(key, scancode)
        if not name:
            return
        ctrl = bool(mods & (glfw.MOD_CONTROL | glfw.MOD_SUPER))  # Cmd+S on macOS
        self._guard(self.handlers.on_key, KeyPress(name, ctrl, bool(mods & glfw.MOD_SHIFT), action == glfw.REPEAT))

    @property
    def typing(self) -> bool:
        """A text field (or a value being typed into a slider) has the keyboard."""
        if self.gui is None:
            return False
        self._imgui.set_current_context(self.gui)
        return bool(self._imgui.get_io().want_text_input)

    def _on_char(self, _handle: Any, codepoint: int) -> None:
        self._guard(self._to_imgui, self._imgui.backends.glfw_char_callback, codepoint)

    def _on_mouse_button(self, _handle: Any, button: int, action: int, mods: int) -> None:
        self._guard(self._to_imgui, self._imgui.backends.glfw_mouse_button_callback, button, action, mods)

    def _on_cursor_pos(self, _handle: Any, x: float, y: float) -> None:
        self._guard(self._to_imgui, self._imgui.backends.glfw_cursor_pos_callback, x, y)

    def _on_cursor_enter(self, _handle: Any, entered: int) -> None:
        self._guard(self._to_imgui, self._imgui.backends.glfw_cursor_enter_callback, int(entered))

    def _on_scroll(self, _handle: Any, dx: float, dy: float) -> None:
        self._guard(self._to_imgui, self._imgui.backends.glfw_scroll_callback, dx, dy)

    def _on_focus(self, _handle: Any, focused: int) -> None:
        self._guard(self._to_imgui, self._imgui.backends.glfw_window_focus_callback, int(focused))

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

    def frame(self, draw: Callable[[], None]) -> bool:
        """One ImGui frame: `draw()` submits the widgets, then render and swap without waiting.
        False when hidden or minimised (nothing is drawn)."""
        if self.handle is None or self.gui is None or not self.visible:
            return False
        w, h = self.framebuffer_size
        if w <= 0 or h <= 0:
            return False
        imgui, glfw = self._imgui, self._glfw
        glfw.make_context_current(self.handle)
        try:
            imgui.set_current_context(self.gui)
            imgui.backends.opengl3_new_frame()
            imgui.backends.glfw_new_frame()
            imgui.new_frame()
            try:
                draw()
            finally:
                imgui.render()  # ends the frame even if a panel failed, so the next one can begin
            self.ctx.screen.use()
            self.ctx.clear(0.06, 0.06, 0.07, 1.0)
            imgui.backends.opengl3_render_draw_data(imgui.get_draw_data())
            glfw.swap_buffers(self.handle)
        finally:
            self._restore_output_context()
        self.redraws += 1
        return True

    def _restore_output_context(self) -> None:
        # The output's renderer issues GL calls assuming its context is current.
        self._glfw.make_context_current(self._output_handle)

    def close(self) -> None:
        if self.handle is None:
            return
        glfw = self._glfw
        glfw.make_context_current(self.handle)
        try:
            if self.gui is not None:
                self._imgui.set_current_context(self.gui)
                self._ini = self._imgui.save_ini_settings_to_memory()
            self._teardown_imgui()
            self.preview.release()
            self.ctx.release()
        finally:
            glfw.make_context_current(None)
            glfw.destroy_window(self.handle)
            self.handle = None
            self._restore_output_context()
