"""The model picker: browse folders for model files, read the chosen one's `vjgan info` summary
(in the background), then load it: `SwitchModel`, built in the background and committed whole.

The browser is drawn with ImGui widgets, so it works wherever the console does (a system file
dialog would need zenity or kdialog on Linux, and ImGui's file-dialog add-on needs a texture
callback its Python binding does not offer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from imgui_bundle import imgui

from ..control.commands import SwitchModel
from .browse import Entry, ModelSummaries, list_folder
from .ui import BAD, DIM, Actions, Where
from .view import OperatorView


class ModelPicker:
    def __init__(self, summaries: Optional[ModelSummaries] = None) -> None:
        self.summaries = summaries or ModelSummaries()
        self.folder: Optional[Path] = None
        self.folder_text = ""
        self.chosen: Optional[Path] = None
        self._listing: tuple[Optional[Path], tuple[Entry, ...], str] = (None, (), "")

    def open_folder(self, folder: Path) -> None:
        self.folder = Path(folder).expanduser()
        self.folder_text = str(self.folder)
        self._listing = (None, (), "")

    def _entries(self) -> tuple[tuple[Entry, ...], str]:
        # Listed when the folder changes (or on Refresh), not 30 times a second.
        if self._listing[0] != self.folder and self.folder is not None:
            entries, error = list_folder(self.folder)
            self._listing = (self.folder, entries, error)
        return self._listing[1], self._listing[2]

    def choose(self, path: Path) -> None:
        self.chosen = path
        self.summaries.request(str(path))

    def draw(self, view: OperatorView, actions: Actions, where: Where) -> None:
        if self.folder is None:
            self.open_folder(Path(view.model).parent if view.model else Path.home())
        imgui.text(f"playing: {view.model or '-'}")
        if imgui.button("Up"):
            self.open_folder(self.folder.parent)
        imgui.same_line()
        if imgui.button("Refresh"):
            self._listing = (None, (), "")
        imgui.same_line()
        imgui.set_next_item_width(-imgui.FLT_MIN)
        entered, self.folder_text = imgui.input_text("##folder", self.folder_text,
                                                     imgui.InputTextFlags_.enter_returns_true.value)
        where.mark("model-folder")
        if entered:
            typed = Path(self.folder_text.strip()).expanduser()
            if typed.is_file():
                self.open_folder(typed.parent)
                self.choose(typed)
            else:
                self.open_folder(typed)
        entries, error = self._entries()
        line = imgui.get_frame_height_with_spacing()
        list_h = max(3 * line, imgui.get_content_region_avail().y * 0.5)
        if imgui.begin_child("model-files", imgui.ImVec2(0, list_h), imgui.ChildFlags_.borders.value):
            if error:
                imgui.text_colored(imgui.ImVec4(*BAD), error)
            elif not entries:
                imgui.text_colored(imgui.ImVec4(*DIM), "no model files here (.pkl, .pt, .pth, .safetensors)")
            for entry in entries:
                label = f"[{entry.name}]" if entry.folder else entry.name
                clicked, _ = imgui.selectable(f"{label}##file-{entry.name}", entry.path == self.chosen,
                                              imgui.SelectableFlags_.allow_double_click.value)
                where.mark(f"file:{entry.name}")
                if clicked:
                    if entry.folder:
                        self.open_folder(entry.path)
                    else:
                        self.choose(entry.path)
        imgui.end_child()
        self._summary(actions, where)

    def _summary(self, actions: Actions, where: Where) -> None:
        if self.chosen is None:
            imgui.text_colored(imgui.ImVec4(*DIM), "choose a model file to see what it is before loading it")
            return
        summary = self.summaries.latest()
        if summary is None:
            imgui.text(f"reading {self.chosen.name}...")
            return
        if summary.error:
            imgui.text_colored(imgui.ImVec4(*BAD), summary.error)
            return
        if imgui.button(f"Load {self.chosen.name}"):
            actions.post(SwitchModel(str(self.chosen)), f"loading model {self.chosen.name}...")
        where.mark("model-load")
        if imgui.begin_table("model-info", 2, imgui.TableFlags_.sizing_fixed_fit.value):
            for key, value in summary.rows:
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text_colored(imgui.ImVec4(*DIM), key)
                imgui.table_next_column()
                imgui.text(value)
            imgui.end_table()
