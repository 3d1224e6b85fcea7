"""Keyframes found while the show plays: type words (a prompt: CLIP finds the picture) or pick a
photo (a portrait: projected into the model), and the show cross-fades to it when it is ready.

Both post commands (`Prompt`, `Portrait`) on the show's one path; the search runs in the
background (vjgan/live/finder.py) and its progress is one of the console's activity lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from imgui_bundle import imgui

from ..control.commands import Portrait, Prompt
from .browse import Entry, list_folder
from .ui import DIM, Actions, Where
from .view import OperatorView

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


class KeyframeFinderPanel:
    def __init__(self) -> None:
        self.prompt_text = ""
        self.folder: Optional[Path] = None
        self.folder_text = ""
        self._listing: tuple[Optional[Path], tuple[Entry, ...], str] = (None, (), "")

    def draw(self, view: OperatorView, actions: Actions, where: Where) -> None:
        imgui.text("Words into a picture (CLIP)")
        imgui.set_next_item_width(-80)
        entered, self.prompt_text = imgui.input_text("##prompt", self.prompt_text,
                                                     imgui.InputTextFlags_.enter_returns_true.value)
        where.mark("prompt-text")
        imgui.same_line()
        clicked = imgui.button("Find##prompt")
        where.mark("prompt-find")
        if (entered or clicked) and self.prompt_text.strip():
            actions.post(Prompt(self.prompt_text.strip()), f"finding {self.prompt_text.strip()!r}...")
        if not view.prompts_available:
            imgui.text_colored(imgui.ImVec4(*DIM), "needs CLIP: start with --clip FILE --clip-arch ARCH")
        imgui.separator()
        imgui.text("A photo becomes the keyframe (the living portrait)")
        self._photos(actions, where)
        for line in view.rig:
            if line.startswith(("PORTRAIT", "PROMPT")):
                imgui.text(line)

    def _photos(self, actions: Actions, where: Where) -> None:
        if self.folder is None:
            self.open_folder(Path.home())
        if imgui.button("Up##photos"):
            self.open_folder(self.folder.parent)
        imgui.same_line()
        imgui.set_next_item_width(-imgui.FLT_MIN)
        entered, self.folder_text = imgui.input_text("##photo-folder", self.folder_text,
                                                     imgui.InputTextFlags_.enter_returns_true.value)
        where.mark("photo-folder")
        if entered:
            typed = Path(self.folder_text.strip()).expanduser()
            if typed.is_file():
                actions.post(Portrait(str(typed)), f"projecting {typed.name}...")
            else:
                self.open_folder(typed)
        if self._listing[0] != self.folder:
            entries, error = list_folder(self.folder, IMAGE_SUFFIXES)
            self._listing = (self.folder, entries, error)
        entries, error = self._listing[1], self._listing[2]
        if imgui.begin_child("photo-files", imgui.ImVec2(0, 0), imgui.ChildFlags_.borders.value):
            if error:
                imgui.text(error)
            elif not entries:
                imgui.text_colored(imgui.ImVec4(*DIM), "no pictures here")
            for entry in entries:
                label = f"[{entry.name}]" if entry.folder else entry.name
                clicked, _ = imgui.selectable(f"{label}##photo-{entry.name}", False,
                                              imgui.SelectableFlags_.allow_double_click.value)
                where.mark(f"photo:{entry.name}")
                if clicked and entry.folder:
                    self.open_folder(entry.path)
                elif clicked and imgui.is_mouse_double_clicked(0):
                    actions.post(Portrait(str(entry.path)), f"projecting {entry.name}...")
        imgui.end_child()

    def open_folder(self, folder: Path) -> None:
        self.folder = Path(folder).expanduser()
        self.folder_text = str(self.folder)
        self._listing = (None, (), "")
