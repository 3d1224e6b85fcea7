"""The operator console: what the live show talks to (the operator window and the output HUD).

    console = start_console(show, operator=True, hud=False)   # after the output window exists
    while playing:
        window.poll()
        stats = console.present(window, renderer, inputs, settings)   # instead of window.present
    console.close()

`present` shows the output picture (with the HUD over it if asked for), feeds the display
figures (fps, sound-to-screen latency) from every picture, and redraws the operator window at
about 30 Hz — right after the output's swap, in the time the main thread would otherwise spend
waiting for the next refresh. The console holds the operator's state (selection, learn) and
runs the commands keys and clicks produce.

H toggles the operator window from either window: the console chains a key callback onto the
output window (the output's own keys still work), because a hidden window gets no keys.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Optional

from ..display.glfw_session import glfw_module
from ..errors import UserError
from .collect import DisplayMeters, ShowLike, all_rows, collect_view
from .output_hud import OutputHud
from .runner import CommandRunner
from .state import (CancelLearn, KeyPress, OperatorState, handle_click, handle_key, handle_scroll, selected_row,
                    with_scroll)
from .view import OperatorView
from .window import OperatorConfig, OperatorWindow, WindowHandlers

log = logging.getLogger(__name__)

_EARLY_S = 0.004  # redraw on the output picture closest to the period, not the one after it


class OperatorConsole:
    def __init__(self, show: ShowLike, *, operator: bool = True, hud: bool = False,
                 config: Optional[OperatorConfig] = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.show = show
        self.config = config or OperatorConfig()
        self._clock = clock
        self.state = OperatorState()
        self.meters = DisplayMeters()
        self.runner = CommandRunner(show, toggle_operator=self.toggle_operator, clock=clock)
        self.view: Optional[OperatorView] = None
        self._period = 1.0 / self.config.redraw_hz
        self._last_refresh = -math.inf
        self.window: Optional[OperatorWindow] = None
        self.hud: Optional[OutputHud] = None
        self._previous_output_keys: Any = None
        self._chained = False
        try:
            if operator:
                handlers = WindowHandlers(self.on_key, self.on_click, self.on_scroll, self.on_close)
                self.window = OperatorWindow(show, handlers, self.config)
                if self.window.placement is not None and self.window.placement.note:
                    show.log(self.window.placement.note)
            if hud:
                self.hud = OutputHud(show.window)
            self._chain_output_keys()
        except BaseException:
            self.close()
            raise

    # --- drawing ----------------------------------------------------------------------------------------

    def present(self, window: Any, renderer: Any, inputs: Any, settings: Any) -> Any:
        """Show one output picture (and the HUD); redraw the operator window when it is due."""
        if self.hud is not None:
            stats = self.hud.present(window, renderer, inputs, settings, self.view)
        else:
            stats = window.present(renderer, inputs, settings)
        self.meters.update(stats)
        self.refresh_if_due()
        return stats

    def refresh_if_due(self) -> None:
        """Redraw the operator window if its period is up (also while the output is not redrawn)."""
        now = self._clock()
        if now - self._last_refresh >= self._period - _EARLY_S:
            self._last_refresh = now
            self.refresh(now)

    def due_in(self) -> float:
        """Seconds until the operator window wants its next redraw."""
        return max(0.0, self._period - (self._clock() - self._last_refresh))

    def refresh(self, now: Optional[float] = None) -> Optional[OperatorView]:
        """Read the show and redraw the operator window (if it is shown) now."""
        now = self._clock() if now is None else now
        self.state = self.runner.poll(self.state)
        operator_shown = self.window is not None and self.window.visible
        if not operator_shown and self.hud is None:
            return None
        rows = all_rows(self.show)
        row = selected_row(self.state, rows)
        status = self.runner.current_status()
        self.view = collect_view(self.show, self.meters, now, selected=row.target if row else None, rows=rows,
                                 message=status.text if status else "",
                                 message_is_error=bool(status and status.error))
        if operator_shown and self.window is not None:
            layout = self.window.draw(self.view, self.state.scroll)
            if layout is not None:
                self.state = with_scroll(self.state, layout.first_row)
        return self.view

    def _redraw_soon(self) -> None:
        # After a key or click, the next output picture redraws: the answer shows within a frame.
        self._last_refresh = -math.inf

    # --- events (main thread, from glfw.poll_events) -------------------------------------------------------

    def on_key(self, key: KeyPress) -> None:
        self._apply(*handle_key(self.state, key, all_rows(self.show)))

    def on_click(self, x: float, y: float) -> None:
        layout = self.window.last_layout if self.window is not None else None
        hit = layout.hit(x, y) if layout is not None else None
        if hit is not None:
            self._apply(*handle_click(self.state, hit.kind, hit.target, all_rows(self.show)))

    def on_scroll(self, dy: float) -> None:
        self.state = handle_scroll(self.state, dy, all_rows(self.show))
        self._redraw_soon()

    def on_close(self) -> None:
        self.set_operator_visible(False)
        self.show.log("operator window hidden; press H on the output window to show it again")

    def _apply(self, state: OperatorState, commands: tuple) -> None:
        self.state = state
        for command in commands:
            self.state = self.runner.run(command, self.state)
        self._redraw_soon()

    # --- showing and hiding ----------------------------------------------------------------------------------

    def toggle_operator(self) -> None:
        if self.window is not None:
            self.set_operator_visible(not self.window.visible)

    def set_operator_visible(self, visible: bool) -> None:
        if self.window is None:
            return
        if visible:
            self.window.show_window()
            self._redraw_soon()
            return
        if self.state.learning is not None:
            # Nobody would see what the next control gets bound to.
            self.state = self.runner.run(CancelLearn(), self.state)
            self.state = OperatorState(self.state.selected, None, self.state.scroll)
        self.window.hide_window()

    def _chain_output_keys(self) -> None:
        output = getattr(self.show, "window", None)
        if self.window is None or output is None or getattr(output, "handle", None) is None:
            return
        glfw = glfw_module()
        self._previous_output_keys = glfw.set_key_callback(output.handle, self._on_output_key)
        self._chained = True

    def _on_output_key(self, handle: Any, key: int, scancode: int, action: int, mods: int) -> None:
        previous = self._previous_output_keys
        if previous is not None:
            previous(handle, key, scancode, action, mods)
        glfw = glfw_module()
        if action == glfw.PRESS and self.show.window.key_name(key, scancode) == "h":
            try:
                self.toggle_operator()
            except Exception as e:  # a key press must never stop the show
                log.debug("operator window toggle failed", exc_info=True)
                self.show.log(f"operator window: {type(e).__name__}: {e}")

    # --- teardown ------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the operator window and the HUD (the output window stays); safe to call twice."""
        output = getattr(self.show, "window", None)
        if self._chained and output is not None and getattr(output, "handle", None) is not None:
            glfw_module().set_key_callback(output.handle, self._previous_output_keys)
        self._chained = False
        if self.window is not None:
            self.window.close()
            self.window = None
        if self.hud is not None and output is not None:
            self.hud.release(output)
            self.hud = None


def start_console(show: ShowLike, *, operator: bool = True, hud: bool = False,
                  config: Optional[OperatorConfig] = None) -> Optional[OperatorConsole]:
    """The console, or None (said in one line) if it cannot open: the show plays without it."""
    if not (operator or hud):
        return None
    try:
        return OperatorConsole(show, operator=operator, hud=hud, config=config)
    except UserError as e:
        show.log(f"operator window: {e}; the show goes on without it")
    if hud and operator:
        try:
            return OperatorConsole(show, operator=False, hud=True, config=config)
        except UserError as e:
            show.log(f"output HUD: {e}")
    return None
