"""The preset list: recall (double-click, or the button), save as a new name, rename one of yours,
and the morph time (how long a recalled preset cross-fades in: the `morph` parameter).

The numbers are the 1-9 keys' numbers. Saving never replaces a preset; vjgan's own presets keep
their names. Each button is a command on the show's command path.
"""

from __future__ import annotations

from typing import Optional

from imgui_bundle import imgui

from ..control.commands import RecallPreset, RenamePreset, SavePreset, SetParam, StepPreset
from .ui import ACCENT, DIM, Actions, Where
from .view import OperatorView

MORPH = "morph"


class PresetList:
    def __init__(self) -> None:
        self.chosen: Optional[str] = None  # the list's selection (not necessarily the one playing)
        self.save_name = ""
        self.new_name = ""

    def draw(self, view: OperatorView, actions: Actions, where: Where) -> None:
        if self.chosen not in view.presets:
            self.chosen = view.preset if view.preset in view.presets else None
        line = imgui.get_frame_height_with_spacing()
        list_h = max(3 * line, imgui.get_content_region_avail().y - 5 * line)
        if imgui.begin_child("preset-list", imgui.ImVec2(0, list_h), imgui.ChildFlags_.borders.value):
            for i, name in enumerate(view.presets, start=1):
                playing = name == view.preset
                label = f"{i if i <= 9 else ' '}  {name}{'  (yours)' if name in view.user_presets else ''}"
                if playing:
                    imgui.push_style_color(imgui.Col_.text.value, imgui.ImVec4(*ACCENT))
                clicked, _ = imgui.selectable(f"{label}##preset-{name}", name == self.chosen,
                                              imgui.SelectableFlags_.allow_double_click.value)
                if playing:
                    imgui.pop_style_color()
                where.mark(f"preset:{name}")
                if clicked:
                    self.chosen = name
                    self.new_name = name
                    if imgui.is_mouse_double_clicked(imgui.MouseButton_.left.value):
                        actions.post(RecallPreset(name), f"recalling preset {name}")
        imgui.end_child()

        imgui.begin_disabled(self.chosen is None)
        if imgui.button("Recall"):
            actions.post(RecallPreset(self.chosen or ""), f"recalling preset {self.chosen}")
        where.mark("preset-recall")
        imgui.end_disabled()
        imgui.same_line()
        if imgui.button("< Previous"):
            actions.post(StepPreset(-1))
        imgui.same_line()
        if imgui.button("Next >"):
            actions.post(StepPreset(+1))
        self._morph(view, actions, where)

        imgui.set_next_item_width(imgui.get_content_region_avail().x * 0.5)
        _, self.save_name = imgui.input_text_with_hint("##save-name", "name (empty: numbered)", self.save_name)
        where.mark("preset-save-name")
        imgui.same_line()
        if imgui.button("Save as"):
            name = self.save_name.strip() or None
            actions.post(SavePreset(name), f"saving preset {name}..." if name else "saving a new preset...")
            self.save_name = ""
        where.mark("preset-save")
        imgui.set_item_tooltip("the running values and MIDI map as a new preset of yours (Ctrl+S: a numbered name)")

        mine = self.chosen in view.user_presets
        imgui.begin_disabled(not mine)
        imgui.set_next_item_width(imgui.get_content_region_avail().x * 0.5)
        _, self.new_name = imgui.input_text("##new-name", self.new_name)
        where.mark("preset-new-name")
        imgui.same_line()
        if imgui.button("Rename") and self.chosen and self.new_name.strip() and self.new_name.strip() != self.chosen:
            actions.post(RenamePreset(self.chosen, self.new_name.strip()), f"renaming {self.chosen}...")
        where.mark("preset-rename")
        imgui.end_disabled()
        if not mine and self.chosen:
            imgui.same_line()
            imgui.text_colored(imgui.ImVec4(*DIM), "vjgan's own: save a copy to rename")

    @staticmethod
    def _morph(view: OperatorView, actions: Actions, where: Where) -> None:
        row = next((r for r in view.rows if r.target == MORPH), None)
        if row is None:
            return
        imgui.same_line()
        imgui.set_next_item_width(max(60.0, imgui.get_content_region_avail().x - imgui.calc_text_size("morph").x - 8))
        changed, seconds = imgui.drag_float("morph##morph", row.value, (row.maximum - row.minimum) / 300, row.minimum,
                                            row.maximum, "%.1f s", imgui.SliderFlags_.always_clamp.value)
        where.mark("preset-morph")
        imgui.set_item_tooltip("cross-fade length when a preset or model changes (the morph parameter)")
        if changed and seconds != row.value:
            actions.post(SetParam(MORPH, float(seconds)))
