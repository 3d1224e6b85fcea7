"""The operator console: what the live show talks to (the operator window and the output HUD).

    console = start_console(show, operator=True, hud=False, ui_scale=1.0, layout=saved)
    while playing:
        window.poll()
        stats = console.present(window, renderer, inputs, settings)   # instead of window.present
    state.layout = console.layout()                                    # with the running state
    console.close()

`present` shows the output picture (with the HUD over it if asked for), feeds the display
figures (fps, sound-to-screen latency) from every picture, and redraws the operator window at
about 30 Hz — right after the output's swap, in the time the main thread would otherwise spend
waiting for the next refresh. The console holds the operator's state (selection, learn) and
carries out what keys and widgets ask for: every change to the show is a command on its one
command path (`runner.py`); only MIDI learn, which configures the controller, is done here.

H toggles the operator window from either window: the console chains a key callback onto the
output window (the output's own keys still work), because a hidden window gets no keys.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from typing import Any, Callable, Mapping, Optional

from ..display.glfw_session import glfw_module
from ..errors import UserError
from ..logs import RateLimitedLog
from .collect import DisplayMeters, ShowLike, all_rows, collect_view
from .runner import CommandRunner
from .state import CancelLearn, KeyPress, OperatorState, Unbind, handle_key, selected_row, toggle_learn
from .view import OperatorView
from .window import OperatorConfig, OperatorWindow, WindowHandlers, imgui_module

log = logging.getLogger(__name__)

_EARLY_S = 0.004  # redraw on the output picture closest to the period, not the one after it


class OperatorConsole:
    def __init__(self, show: ShowLike, *, operator: bool = True, hud: bool = False,
                 config: Optional[OperatorConfig] = None, clock: Callable[[], float] = time.perf_counter,
                 layout: Optional[Mapping[str, Any]] = None) -> None:
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
        self.ui: Any = None
        self.hud: Any = None
        self._previous_output_keys: Any = None
        self._chained = False
        self._faults = RateLimitedLog(log, 10.0)
        layout = layout if isinstance(layout, Mapping) else {}
        try:
            imgui_module()  # one clear line if the GUI toolkit is missing
            if operator:
                from .panels import ConsoleUI

                panels = layout.get("panels")
                self.ui = ConsoleUI(set(panels) if isinstance(panels, list) else None, report=self._panel_failed)
                ini = layout.get("imgui")
                self.window = OperatorWindow(show, WindowHandlers(self.on_key, self.on_close), self.config,
                                             ini if isinstance(ini, str) else "")
                if self.window.placement is not None and self.window.placement.note:
                    show.log(self.window.placement.note)
            if hud:
                from .output_hud import OutputHud

                self.hud = OutputHud(show.window, self.config.ui_scale)
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
        view = collect_view(self.show, self.meters, now, selected=row.target if row else None, rows=rows,
                            message=status.text if status else "", message_is_error=bool(status and status.error))
        self.view = view
        if operator_shown and self.window is not None:
            window = self.window
            try:
                window.frame(lambda: self.ui.draw(view, window.preview.texture(), self))
            except Exception as e:  # a bug outside the panels: the frame is lost, the show goes on
                self._panel_failed("frame", e)
        return view

    def _panel_failed(self, panel: str, error: Exception) -> None:
        """A bug in the console: one line (and its traceback, in the log file) now and then."""
        if self._faults(panel, f"operator console, {panel}: {type(error).__name__}: {error}"):
            log.info("operator console, %s: where it failed", panel, exc_info=error)

    def _redraw_soon(self) -> None:
        # After a key, the next output picture redraws: the answer shows within a frame.
        self._last_refresh = -math.inf

    def layout(self) -> Optional[dict[str, Any]]:
        """The window layout to keep with the running state (None without an operator window)."""
        if self.window is None or self.ui is None:
            return None
        return {"imgui": self.window.layout_ini(), **self.ui.layout_extra()}

    # --- what widgets ask for (ui.Actions) ---------------------------------------------------------------

    def post(self, command: Any, status: str = "") -> None:
        self.runner.post(command, status)
        self._redraw_soon()

    def learn(self, target: str, action: bool) -> None:
        row = next((r for r in all_rows(self.show) if r.target == target), None)
        if row is not None:
            self._apply(*toggle_learn(self.state, row))

    def unbind(self, target: str) -> None:
        self._apply(self.state, (Unbind(target),))

    def select(self, target: str) -> None:
        self.state = replace(self.state, selected=target)

    # --- events (main thread, from glfw.poll_events) -------------------------------------------------------

    def on_key(self, key: KeyPress) -> None:
        before = self.state.selected
        self._apply(*handle_key(self.state, key, all_rows(self.show)))
        if self.state.selected != before and self.ui is not None:
            self.ui.params.follow(self.state.selected)  # show its page, scroll it into view

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
            self.state = OperatorState(self.state.selected, None)
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


def start_console(show: ShowLike, *, operator: bool = True, hud: bool = False, ui_scale: float = 1.0,
                  layout: Optional[Mapping[str, Any]] = None,
                  config: Optional[OperatorConfig] = None) -> Optional[OperatorConsole]:
    """The console, or None (said in one line) if it cannot open: the show plays without it."""
    if not (operator or hud):
        return None
    try:
        config = config or OperatorConfig(ui_scale=ui_scale)
    except UserError as e:
        show.log(f"operator window: {e}")
        config = OperatorConfig()
    try:
        return OperatorConsole(show, operator=operator, hud=hud, config=config, layout=layout)
    except UserError as e:
        show.log(f"operator window: {e}; the show goes on without it")
    if hud and operator:
        try:
            return OperatorConsole(show, operator=False, hud=True, config=config)
        except UserError as e:
            show.log(f"output HUD: {e}")
    return None
