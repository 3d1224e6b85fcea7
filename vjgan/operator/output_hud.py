"""The optional text HUD on the output window (`vjgan live --hud`), for single-screen rehearsal.

Off by default: the audience must never see it. It is drawn over the finished picture, after
the flash limiter has measured it, and before the swap. `OutputWindow.present` renders and
swaps in one call, so `present_with_hud` is that method with the overlay between the two steps;
keep the two in step if one changes.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Optional

from ..display.glfw_session import glfw_module
from ..errors import UserError
from .gldraw import Painter
from .hud import layout_output_hud
from .text import build_atlas
from .view import OperatorView


def hud_font_px(height: int, scale: float = 1.0) -> int:
    """Readable from a few metres on a rehearsal screen, small enough to leave the picture."""
    return int(min(40, max(round(13 * scale), round(height / 48))))


class OutputHud:
    """The overlay's GL objects in the output window's context."""

    def __init__(self, window: Any) -> None:
        window.make_current()
        self._font_px = hud_font_px(window.framebuffer_size[1])
        try:
            self.painter = Painter(window.ctx, build_atlas(self._font_px))
        except Exception as e:  # a GL error here is a reason to play without the HUD, not to stop
            raise UserError(f"the output HUD cannot draw: {' '.join(str(e).split())}") from None

    def present(self, window: Any, renderer: Any, inputs: Any, settings: Any, view: Optional[OperatorView]) -> Any:
        """Render the picture, draw the HUD over it, swap: returns RenderStats like window.present."""
        window.make_current()
        size = window.framebuffer_size
        visible = size[0] > 0 and size[1] > 0
        if visible:
            renderer.resize(size)
        stats = renderer.render(inputs, settings, target=window.ctx.screen if visible else None)
        if visible and view is not None:
            px = hud_font_px(size[1])
            if abs(px - self._font_px) > 1:  # the output went fullscreen or was resized
                self._font_px = px
                self.painter.set_atlas(build_atlas(px))
            layout = layout_output_hud(view, size, self.painter.atlas)
            self.painter.draw(layout, window.ctx.screen, clear=False)
        glfw_module().swap_buffers(window.handle)
        return replace(stats, t_swap=time.perf_counter())

    def release(self, window: Any) -> None:
        if window.handle is not None:
            window.make_current()
        self.painter.release()
