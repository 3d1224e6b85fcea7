"""Route editing: source × gain → target, on a group of layers (docs/routes.md).

The gain is a live parameter (dragged like any other, `SetParam`). Source, target, layers and
direction change the preset itself: each edit is an `EditRoute` (or `RemoveRoute`) command, and
the edited preset is built in the background and committed whole, as a recalled one is, keeping
the running values. Saving it (Ctrl+S, Save as) keeps the edit.
"""

from __future__ import annotations

from imgui_bundle import imgui

from ..control.commands import EditRoute, RemoveRoute, SetParam
from ..motion.config import GROUPS, TARGETS
from .ui import DIM, Actions, Where
from .view import OperatorView, RouteView

LAYER_CHOICES = GROUPS + ("coarse+middle", "middle+fine")


def combo(label: str, current: str, choices: tuple[str, ...]) -> tuple[bool, str]:
    """A drop-down over `choices` (the current value listed first if it is not among them)."""
    items = list(choices) if current in choices else [current, *choices]
    changed, index = imgui.combo(label, items.index(current), items)
    return changed and items[index] != current, items[index]


class RouteEditor:
    def __init__(self) -> None:
        self.new_name = ""

    def draw(self, view: OperatorView, actions: Actions, where: Where) -> None:
        rows = {r.target: r for r in view.rows}
        flags = (imgui.TableFlags_.resizable | imgui.TableFlags_.row_bg | imgui.TableFlags_.sizing_stretch_prop).value
        if imgui.begin_table("routes", 7, flags):
            try:
                stretch = imgui.TableColumnFlags_.width_stretch.value
                for title, weight in (("route", 0.20), ("source", 0.22), ("gain", 0.14), ("target", 0.20),
                                      ("layers", 0.16), ("direction", 0.08)):
                    imgui.table_setup_column(title, stretch, weight)
                imgui.table_setup_column("", imgui.TableColumnFlags_.width_fixed.value)
                imgui.table_headers_row()
                for route in view.routes:
                    self._route(route, view, rows.get(route.gain_param), actions, where)
            finally:
                imgui.end_table()
        imgui.set_next_item_width(imgui.get_content_region_avail().x * 0.4)
        _, self.new_name = imgui.input_text_with_hint("##route-name", "new route's name", self.new_name)
        where.mark("route-new-name")
        imgui.same_line()
        name = self.new_name.strip()
        imgui.begin_disabled(not name or not view.route_sources)
        if imgui.button("Add route"):
            source = view.route_sources[0]
            actions.post(EditRoute(name, (("source", source), ("target", "noise"), ("layers", "fine"))),
                         f"adding route {name} (the preset is rebuilt)")
            self.new_name = ""
        where.mark("route-add")
        imgui.end_disabled()

    @staticmethod
    def _route(route: RouteView, view: OperatorView, gain, actions: Actions, where: Where) -> None:
        name = route.name
        imgui.table_next_row()
        imgui.table_next_column()
        imgui.text(name)

        def edit(field: str, value: object) -> None:
            actions.post(EditRoute(name, ((field, value),)), f"route {name}: {field} {value} (the preset is rebuilt)")

        imgui.table_next_column()
        imgui.set_next_item_width(-imgui.FLT_MIN)
        changed, source = combo(f"##source-{name}", route.source, view.route_sources)
        where.mark(f"route-source:{name}")
        if changed:
            edit("source", source)

        imgui.table_next_column()
        imgui.set_next_item_width(-imgui.FLT_MIN)
        if gain is not None:
            span = gain.maximum - gain.minimum
            moved, value = imgui.drag_float(f"##gain-{name}", gain.value, span / 300 if span > 0 else 0.01,
                                            gain.minimum, gain.maximum, "%.2f", imgui.SliderFlags_.always_clamp.value)
            where.mark(f"route-gain:{name}")
            if moved and value != gain.value:
                actions.post(SetParam(gain.target, float(value)))
        else:
            imgui.text_colored(imgui.ImVec4(*DIM), "-")

        imgui.table_next_column()
        imgui.set_next_item_width(-imgui.FLT_MIN)
        changed, target = combo(f"##target-{name}", route.target, TARGETS)
        if changed:
            edit("target", target)

        imgui.table_next_column()
        imgui.set_next_item_width(-imgui.FLT_MIN)
        changed, layers = combo(f"##layers-{name}", route.layers, LAYER_CHOICES)
        if changed:
            edit("layers", layers)

        imgui.table_next_column()
        if route.target == "direction":
            imgui.set_next_item_width(-imgui.FLT_MIN)
            _, direction = imgui.input_int(f"##direction-{name}", route.direction, 0)
            if imgui.is_item_deactivated_after_edit() and direction != route.direction:
                edit("direction", max(0, int(direction)))

        imgui.table_next_column()
        if imgui.small_button(f"remove##remove-{name}"):
            actions.post(RemoveRoute(name), f"removing route {name} (the preset is rebuilt)")
        where.mark(f"route-remove:{name}")
