"""The console's frame: the alarm lines and the status line on top, the panels docked below.

    +------------------------------------------------------------------+
    | View menu                                                        |
    | GENERATOR RESTARTED (2)                    [acknowledge] [all (A)]|
    | learned: ch 1 CC 21 -> gain.bass                                  |
    +-------------------------+----------------------------------------+
    | Preview                 | Parameters | Presets | Routes | Model … |
    |                         |                                        |
    +-------------------------+                                        |
    | Show: figures, tempo,   |                                        |
    | meters, MIDI            +----------------------------------------+
    |                         | Log                                    |
    +-------------------------+----------------------------------------+

The panels dock where the operator drags them; the arrangement, the sizes and which panels are
open are kept with the running state (`layout()`), so the next show opens as this one was left.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from imgui_bundle import imgui

from ..control.commands import AcknowledgeAlarm
from .figures import log_pane, preview, show_figures
from .keyframes_panel import KeyframeFinderPanel
from .model_panel import ModelPicker
from .params_panel import ParamPages
from .presets_panel import PresetList
from .routes_panel import RouteEditor
from .ui import BAD, LEARN, WARN, Actions, Where, coloured_button
from .view import OperatorView

PANELS = ("Preview", "Show", "Parameters", "Presets", "Routes", "Model", "Keyframes", "Log")
DOCKSPACE = "vjgan-dockspace"
FOCUS_FRAMES = 3


class ConsoleUI:
    """Everything one frame draws, and the panels' own state (open or not, text being typed...)."""

    def __init__(self, open_panels: Optional[set[str]] = None,
                 report: Callable[[str, Exception], None] = lambda panel, error: None) -> None:
        self.open = {name: (open_panels is None or name in open_panels) for name in PANELS}
        self._report = report
        self.where = Where()
        self.params = ParamPages()
        self.presets = PresetList()
        self.routes = RouteEditor()
        self.model = ModelPicker()
        self.keyframes = KeyframeFinderPanel()
        self._log_state: dict = {}
        self._focus: Optional[tuple[str, int]] = None
        self._draw: dict[str, Callable[[OperatorView, Any, Actions], None]] = {
            "Preview": lambda v, tex, a: preview(v, tex, self.where),
            "Show": lambda v, tex, a: show_figures(v, a, self.where),
            "Parameters": lambda v, tex, a: self.params.draw(v, a, self.where),
            "Presets": lambda v, tex, a: self.presets.draw(v, a, self.where),
            "Routes": lambda v, tex, a: self.routes.draw(v, a, self.where),
            "Model": lambda v, tex, a: self.model.draw(v, a, self.where),
            "Keyframes": lambda v, tex, a: self.keyframes.draw(v, a, self.where),
            "Log": lambda v, tex, a: log_pane(v, self._log_state),
        }

    def focus_panel(self, name: str) -> None:
        """Open `name` and bring it to the front of its dock at the next frame."""
        self.open[name] = True
        self._focus = (name, FOCUS_FRAMES)

    def layout_extra(self) -> Mapping[str, Any]:
        """What the running state keeps besides ImGui's own text: which panels are open."""
        return {"panels": [name for name in PANELS if self.open[name]]}

    # --- one frame ---------------------------------------------------------------------------------------

    def draw(self, view: OperatorView, texture: Optional[tuple[int, bool]], actions: Actions) -> None:
        self.where.rects.clear()  # only what this frame shows can be found
        viewport = imgui.get_main_viewport()
        imgui.set_next_window_pos(viewport.work_pos)
        imgui.set_next_window_size(viewport.work_size)
        host_flags = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_docking
                      | imgui.WindowFlags_.no_bring_to_front_on_focus | imgui.WindowFlags_.no_nav_focus
                      | imgui.WindowFlags_.menu_bar | imgui.WindowFlags_.no_saved_settings).value
        imgui.push_style_var(imgui.StyleVar_.window_rounding.value, 0.0)
        imgui.begin("vjgan console", None, host_flags)
        imgui.pop_style_var()
        try:
            self._menu()
            self._alarms(view, actions)
            self._status(view)
            dock_id = imgui.get_id(DOCKSPACE)
            if imgui.internal.dock_builder_get_node(dock_id) is None:
                self._default_layout(dock_id, imgui.get_content_region_avail())
            imgui.dock_space(dock_id, imgui.ImVec2(0, 0))
        finally:
            imgui.end()
        for name in PANELS:
            if not self.open[name]:
                continue
            if self._focus is not None and name == self._focus[0]:
                imgui.set_next_window_focus()
                # Asked again for a few frames: on the first frames docking places the windows
                # after they ask, and the dock's first tab would win.
                self._focus = (name, self._focus[1] - 1) if self._focus[1] > 1 else None
            before = imgui.internal.ErrorRecoveryState()
            imgui.internal.error_recovery_store_state(before)
            shown, still_open = imgui.begin(name, True)
            try:
                if shown:
                    self._draw[name](view, texture, actions)
            except Exception as e:  # a panel's bug: the others keep working, the fault is reported
                imgui.internal.error_recovery_try_to_recover_state(before)  # closes what it left open
                self._report(name, e)
            else:
                imgui.end()
            self.open[name] = bool(still_open)

    def _menu(self) -> None:
        if not imgui.begin_menu_bar():
            return
        try:
            opened = imgui.begin_menu("View")
            self.where.mark("menu:View")
            if opened:
                for name in PANELS:
                    clicked, _ = imgui.menu_item(name, "", self.open[name])
                    self.where.mark(f"view:{name}")
                    if clicked:
                        self.open[name] = not self.open[name]
                imgui.end_menu()
        finally:
            imgui.end_menu_bar()

    def _alarms(self, view: OperatorView, actions: Actions) -> None:
        """What went wrong and was not seen yet, each with its acknowledge button (A: all of them)."""
        for alarm in view.alarms:
            imgui.text_colored(imgui.ImVec4(*BAD), alarm.text)
            imgui.same_line()
            if imgui.small_button(f"acknowledge##ack-{alarm.key}"):
                actions.post(AcknowledgeAlarm(alarm.key))
            self.where.mark(f"ack:{alarm.key}")
        if len(view.alarms) > 1:
            if imgui.small_button("acknowledge all (A)"):
                actions.post(AcknowledgeAlarm())
            self.where.mark("ack-all")

    @staticmethod
    def _status(view: OperatorView) -> None:
        """The learn prompt, or the newest message: what the operator's last move answered."""
        if view.midi.learning:
            coloured_button(f"LEARN {view.midi.learning}: move a control (L or Esc cancels)", LEARN)
        elif view.message:
            imgui.text_colored(imgui.ImVec4(*(BAD if view.message_is_error else WARN)), view.message)
        else:
            imgui.text("")

    @staticmethod
    def _default_layout(dock_id: int, size: Any) -> None:
        internal = imgui.internal
        internal.dock_builder_add_node(dock_id, internal.DockNodeFlagsPrivate_.dock_space.value)
        internal.dock_builder_set_node_size(dock_id, imgui.ImVec2(max(1.0, size.x), max(1.0, size.y)))
        left, _, right = internal.dock_builder_split_node_py(dock_id, imgui.Dir.left, 0.45)
        top_left, _, bottom_left = internal.dock_builder_split_node_py(left, imgui.Dir.up, 0.5)
        bottom_right, _, top_right = internal.dock_builder_split_node_py(right, imgui.Dir.down, 0.25)
        internal.dock_builder_dock_window("Preview", top_left)
        internal.dock_builder_dock_window("Show", bottom_left)
        for name in ("Parameters", "Presets", "Routes", "Model", "Keyframes"):
            internal.dock_builder_dock_window(name, top_right)
        internal.dock_builder_dock_window("Log", bottom_right)
        internal.dock_builder_finish(dock_id)
