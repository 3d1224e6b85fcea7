"""The optional HUD on the output window (`vjgan live --hud`), for single-screen rehearsal.

Off by default: the audience must never see it. It is an ImGui overlay of its own (a second
ImGui context, drawn into the output window's framebuffer, taking no input), drawn over the
finished picture after the flash limiter has measured it, and before the swap.
`OutputWindow.present` renders and swaps in one call, so `present` here is that method with the
overlay between the two steps; keep the two in step if one changes.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Optional

from ..display.glfw_session import glfw_module
from ..errors import UserError
from .view import OperatorView, hud_lines
from .window import font_file, imgui_module

_TONES = {"text": (0.92, 0.92, 0.92, 1.0), "bad": (1.0, 0.32, 0.30, 1.0), "warn": (1.0, 0.74, 0.20, 1.0),
          "learn": (0.95, 0.50, 0.10, 1.0), "dim": (0.55, 0.57, 0.62, 1.0)}


def hud_font_px(height: int, scale: float = 1.0) -> int:
    """Readable from a few metres on a rehearsal screen, small enough to leave the picture."""
    return int(min(40, max(round(13 * scale), round(height / 48))))


class OutputHud:
    """The overlay's ImGui context and its renderer in the output window's GL context."""

    def __init__(self, window: Any, scale: float = 1.0) -> None:
        imgui = self._imgui = imgui_module()
        self._scale = scale
        previous = _current_context(imgui)
        window.make_current()
        try:
            self.gui = imgui.create_context()
            io = imgui.get_io()
            io.set_ini_filename(None)
            io.config_flags |= imgui.ConfigFlags_.no_mouse.value | imgui.ConfigFlags_.no_keyboard.value
            font = font_file()
            if font is not None:
                io.fonts.add_font_from_file_ttf(font, hud_font_px(window.framebuffer_size[1], scale))
            imgui.backends.opengl3_init("#version 330")
        except Exception as e:  # a GL error here is a reason to play without the HUD, not to stop
            raise UserError(f"the output HUD cannot draw: {' '.join(str(e).split())}") from None
        finally:
            if previous is not None:
                imgui.set_current_context(previous)
        self._last = time.perf_counter()

    def present(self, window: Any, renderer: Any, inputs: Any, settings: Any, view: Optional[OperatorView]) -> Any:
        """Render the picture, draw the HUD over it, swap: returns RenderStats like window.present."""
        window.make_current()
        size = window.framebuffer_size
        visible = size[0] > 0 and size[1] > 0
        if visible:
            renderer.resize(size)
        stats = renderer.render(inputs, settings, target=window.ctx.screen if visible else None)
        if visible and view is not None:
            window.ctx.screen.use()
            self._overlay(view, size)
        glfw_module().swap_buffers(window.handle)
        return replace(stats, t_swap=time.perf_counter())

    def _overlay(self, view: OperatorView, size: tuple[int, int]) -> None:
        imgui = self._imgui
        previous = _current_context(imgui)
        imgui.set_current_context(self.gui)
        try:
            io = imgui.get_io()
            now = time.perf_counter()
            io.delta_time = max(1e-4, now - self._last)
            self._last = now
            io.display_size = imgui.ImVec2(float(size[0]), float(size[1]))
            imgui.get_style().font_size_base = hud_font_px(size[1], self._scale)
            imgui.backends.opengl3_new_frame()
            imgui.new_frame()
            try:
                self._box(view)
            finally:
                imgui.render()
            imgui.backends.opengl3_render_draw_data(imgui.get_draw_data())
        finally:
            if previous is not None:
                imgui.set_current_context(previous)

    def _box(self, view: OperatorView) -> None:
        imgui = self._imgui
        imgui.set_next_window_pos(imgui.ImVec2(8, 8))
        imgui.set_next_window_bg_alpha(0.6)
        flags = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.always_auto_resize
                 | imgui.WindowFlags_.no_inputs | imgui.WindowFlags_.no_saved_settings
                 | imgui.WindowFlags_.no_focus_on_appearing | imgui.WindowFlags_.no_nav).value
        imgui.begin("hud", None, flags)
        try:
            for text, tone in hud_lines(view):
                imgui.text_colored(imgui.ImVec4(*_TONES[tone]), text)
            if view.bands:
                line = imgui.get_text_line_height()
                draw = imgui.get_window_draw_list()
                p = imgui.get_cursor_screen_pos()
                beat = _TONES["warn"] if view.beat_flash else (0.16, 0.16, 0.19, 1.0)
                draw.add_rect_filled(p, imgui.ImVec2(p.x + line - 4, p.y + line - 4), _u32(imgui, beat))
                x = p.x + line + 2
                for band in view.bands:
                    level = min(1.0, max(0.0, band.level))
                    draw.add_rect_filled(imgui.ImVec2(x, p.y), imgui.ImVec2(x + 3 * line, p.y + line - 4),
                                         _u32(imgui, (0.16, 0.16, 0.19, 1.0)))
                    draw.add_rect_filled(imgui.ImVec2(x, p.y), imgui.ImVec2(x + 3 * line * level, p.y + line - 4),
                                         _u32(imgui, (0.30, 0.85, 0.40, 1.0)))
                    x += 3 * line + 4
                imgui.dummy(imgui.ImVec2(x - p.x, line))
        finally:
            imgui.end()

    def release(self, window: Any) -> None:
        if self.gui is None:
            return
        imgui = self._imgui
        previous = _current_context(imgui)
        if window.handle is not None:
            window.make_current()
            imgui.set_current_context(self.gui)
            imgui.backends.opengl3_shutdown()
        imgui.destroy_context(self.gui)
        if previous is not None and previous != self.gui:
            imgui.set_current_context(previous)
        self.gui = None


def _current_context(imgui: Any) -> Any:
    try:
        return imgui.get_current_context()
    except Exception:  # none yet
        return None


def _u32(imgui: Any, color: tuple[float, float, float, float]) -> int:
    return imgui.get_color_u32(imgui.ImVec4(*color))
