"""The parameter pages: one tab per group (output, drift, motion, routes, actions).

Each parameter row: its name (a click selects the row for the keys), its value as a bar dragged
with the mouse (Shift: ten times faster; Alt: a hundred times finer; double-click or Ctrl+click
to type a value), reset to default, the MIDI learn button showing what is bound (right-click:
unbind), and the OSC address that sets it. Each action row fires the action and learns a pad.
Every change is a command on the show's command path; the values shown are the show's own.
"""

from __future__ import annotations

from typing import Optional

from imgui_bundle import imgui

from ..control.commands import ResetParam, SetParam, action_command
from .ui import ACCENT, DIM, LEARN, SELECTED_ROW, VALUE_FILL, WARN, Actions, Where, coloured_button, u32
from .view import ACTION, OperatorView, Row, format_value, osc_address

PAGE_ORDER = ("output", "drift", "motion", "routes", "mapping", "actions")
DRAG_PIXELS = 300.0  # a drag this long sweeps a parameter's whole range (Shift and Alt change that)


def pages_of(rows: tuple[Row, ...]) -> dict[str, list[Row]]:
    """Rows by page: the known groups in a fixed order, any other group after them."""
    pages: dict[str, list[Row]] = {}
    for row in rows:
        pages.setdefault(row.group or "other", []).append(row)
    known = [g for g in PAGE_ORDER if g in pages]
    return {g: pages[g] for g in known + [g for g in pages if g not in known]}


def value_format(row: Row) -> str:
    """printf format with the decimals one 1% step needs (format_value's rule)."""
    text = format_value(row.value, row.minimum, row.maximum)
    decimals = len(text.split(".")[1]) if "." in text else 0
    return f"%.{decimals}f"


class ParamPages:
    def __init__(self) -> None:
        self._follow: Optional[str] = None  # a row the keys moved to: show its page and scroll to it

    def follow(self, target: Optional[str]) -> None:
        self._follow = target

    def draw(self, view: OperatorView, actions: Actions, where: Where) -> None:
        pages = pages_of(view.rows)
        follow_page = next((g for g, rows in pages.items() if any(r.target == self._follow for r in rows)), None)
        if not imgui.begin_tab_bar("pages"):
            return
        try:
            for group, rows in pages.items():
                flags = imgui.TabItemFlags_.set_selected.value if group == follow_page else 0
                opened, _ = imgui.begin_tab_item(group, None, flags)
                where.mark(f"page:{group}")
                if opened:
                    try:
                        self._table(group, rows, view, actions, where)
                    finally:
                        imgui.end_tab_item()
        finally:
            imgui.end_tab_bar()
        if follow_page is not None:
            self._follow = None

    def _table(self, group: str, rows: list[Row], view: OperatorView, actions: Actions, where: Where) -> None:
        flags = (imgui.TableFlags_.resizable | imgui.TableFlags_.hideable | imgui.TableFlags_.row_bg
                 | imgui.TableFlags_.scroll_y | imgui.TableFlags_.sizing_stretch_prop).value
        if not imgui.begin_table(f"rows-{group}", 5, flags):
            return
        try:
            stretch = imgui.TableColumnFlags_.width_stretch.value
            imgui.table_setup_scroll_freeze(0, 1)
            imgui.table_setup_column("parameter" if group != "actions" else "action", stretch, 0.30)
            imgui.table_setup_column("value", stretch, 0.30)
            imgui.table_setup_column("", imgui.TableColumnFlags_.width_fixed.value)
            imgui.table_setup_column("MIDI", stretch, 0.20)
            imgui.table_setup_column("OSC", stretch, 0.20)
            imgui.table_headers_row()
            for row in rows:
                self._row(row, view, actions, where)
        finally:
            imgui.end_table()

    def _row(self, row: Row, view: OperatorView, actions: Actions, where: Where) -> None:
        target = row.target
        selected = target == view.selected
        imgui.table_next_row()
        if selected:
            imgui.table_set_bg_color(imgui.TableBgTarget_.row_bg1.value, u32(SELECTED_ROW))
        imgui.table_next_column()
        clicked, _ = imgui.selectable(f"{row.title}##select-{target}", selected)
        where.mark(f"name:{target}")
        if clicked:
            actions.select(target)
        tip = row.description + ("\n" if row.description else "")
        imgui.set_item_tooltip(tip + (f"OSC {osc_address(target)}" if row.kind != ACTION else "a pad can fire it"))
        if self._follow == target:
            imgui.set_scroll_here_y(0.5)

        imgui.table_next_column()
        imgui.set_next_item_width(-imgui.FLT_MIN)
        if row.kind == ACTION:
            if imgui.small_button(f"fire##fire-{target}"):
                actions.post(action_command(target))
            where.mark(f"fire:{target}")
        elif row.toggle:
            changed, on = imgui.checkbox(f"##value-{target}", row.normalized >= 0.5)
            where.mark(f"param:{target}")
            if changed:
                actions.post(SetParam(target, row.maximum if on else row.minimum))
        else:
            value = self._slider(row, where)
            if value is not None:
                actions.post(SetParam(target, value))

        imgui.table_next_column()
        if row.kind != ACTION:
            if imgui.small_button(f"reset##reset-{target}"):
                actions.post(ResetParam(target))
            where.mark(f"reset:{target}")
            imgui.set_item_tooltip(f"back to {format_value(row.default, row.minimum, row.maximum, row.toggle)}")

        imgui.table_next_column()
        learning = view.midi.learning == target
        label = "cancel" if learning else (row.mapping or "learn")
        if coloured_button(f"{label}##learn-{target}", LEARN if learning else None, width=-imgui.FLT_MIN):
            actions.learn(target, row.kind == ACTION)
        where.mark(f"learn:{target}")
        imgui.set_item_tooltip("learn: move a knob, fader or pad to bind it (right-click: unbind)"
                               if view.midi.enabled else "MIDI is not running (see the log)")
        if imgui.begin_popup_context_item(f"midi-menu-{target}"):
            if imgui.menu_item_simple("unbind its MIDI controls"):
                actions.unbind(target)
            imgui.end_popup()

        imgui.table_next_column()
        if row.kind != ACTION:
            imgui.text_colored(imgui.ImVec4(*DIM), osc_address(target))

    @staticmethod
    def _slider(row: Row, where: Where) -> Optional[float]:
        """The value as a bar: drag to move it, double-click to type it. The new value, if moved."""
        span = row.maximum - row.minimum
        # Not rounded to the shown decimals: a fine (Alt) drag moves by less than the last digit.
        flags = (imgui.SliderFlags_.always_clamp | imgui.SliderFlags_.no_round_to_format).value
        changed, value = imgui.drag_float(f"##value-{row.target}", row.value, span / DRAG_PIXELS if span > 0 else 0.01,
                                          row.minimum, row.maximum, value_format(row), flags)
        where.mark(f"param:{row.target}")
        lo, hi = imgui.get_item_rect_min(), imgui.get_item_rect_max()
        draw = imgui.get_window_draw_list()
        draw.add_rect_filled(lo, imgui.ImVec2(lo.x + (hi.x - lo.x) * row.normalized, hi.y), u32(VALUE_FILL))
        if row.pickup is not None:  # where a bound knob stands until it passes through the value
            x = lo.x + (hi.x - lo.x - 2) * min(1.0, max(0.0, row.pickup))
            draw.add_rect_filled(imgui.ImVec2(x, lo.y), imgui.ImVec2(x + 2, hi.y), u32(WARN))
        if imgui.is_item_active():
            draw.add_rect(lo, hi, u32(ACCENT))
        return float(value) if changed and value != row.value else None
