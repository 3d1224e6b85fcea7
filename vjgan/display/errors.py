"""Errors of the display package, each a one-line `UserError` the CLI prints without a traceback."""

from __future__ import annotations

from ..errors import UserError


class NoDisplayError(UserError):
    """There is no screen to open a window on (no DISPLAY, no Wayland, glfw cannot start)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"no display to open the output window on ({reason}); "
                         f"to make a video without a screen, use `vjgan render`")
        self.reason = reason


class NoGLError(UserError):
    """No OpenGL 3.3 context could be created (not even an offscreen one)."""
