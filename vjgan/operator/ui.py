"""What every panel of the console shares: the colours, what a widget may do, and where widgets are.

A widget never changes the show: it calls `Actions` (post a command, learn, unbind, select a
row), which the console carries out through the show's one command path. `Where` keeps the
rectangle of each widget a test or a keyboard move needs to find (window pixels), refreshed by
every frame that draws it.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

from imgui_bundle import imgui

RGBA = tuple[float, float, float, float]

TEXT: RGBA = (0.92, 0.92, 0.92, 1.0)
DIM: RGBA = (0.55, 0.57, 0.62, 1.0)
ACCENT: RGBA = (0.30, 0.62, 0.95, 1.0)
GOOD: RGBA = (0.30, 0.85, 0.40, 1.0)
WARN: RGBA = (1.00, 0.74, 0.20, 1.0)
BAD: RGBA = (1.00, 0.32, 0.30, 1.0)
LEARN: RGBA = (0.95, 0.50, 0.10, 1.0)
WELL: RGBA = (0.16, 0.16, 0.19, 1.0)
SELECTED_ROW: RGBA = (0.16, 0.28, 0.45, 0.9)
VALUE_FILL: RGBA = (0.30, 0.55, 0.85, 0.35)


class Actions(Protocol):
    """What widgets may ask for; the console carries each out on the show's command path."""

    def post(self, command: Any, status: str = "") -> None: ...

    def learn(self, target: str, action: bool) -> None: ...  # learn, or cancel the learn of `target`

    def unbind(self, target: str) -> None: ...

    def select(self, target: str) -> None: ...


class Where:
    """Widget rectangles in window pixels, by a stable name ("param:gain.bass", "preset:drop")."""

    def __init__(self) -> None:
        self.rects: dict[str, tuple[float, float, float, float]] = {}

    def mark(self, name: str) -> None:
        """Remember the rectangle of the widget just submitted under `name`."""
        lo, hi = imgui.get_item_rect_min(), imgui.get_item_rect_max()
        self.rects[name] = (lo.x, lo.y, hi.x, hi.y)

    def centre(self, name: str) -> Optional[tuple[float, float]]:
        r = self.rects.get(name)
        return None if r is None else ((r[0] + r[2]) / 2, (r[1] + r[3]) / 2)


def u32(color: RGBA) -> int:
    return imgui.get_color_u32(imgui.ImVec4(*color))


def light(on: bool, color: RGBA = GOOD) -> None:
    """A square lamp the height of a line (MIDI activity, the beat)."""
    size = imgui.get_text_line_height()
    p = imgui.get_cursor_screen_pos()
    imgui.get_window_draw_list().add_rect_filled(imgui.ImVec2(p.x, p.y + 2),
                                                 imgui.ImVec2(p.x + size - 4, p.y + size - 2),
                                                 u32(color if on else WELL), 2.0)
    imgui.dummy(imgui.ImVec2(size - 2, size))


def badge(text: str, color: RGBA) -> None:
    """A word on a coloured ground (BLACKOUT, FREEZE...)."""
    imgui.push_style_color(imgui.Col_.button.value, imgui.ImVec4(*color))
    imgui.push_style_color(imgui.Col_.button_hovered.value, imgui.ImVec4(*color))
    imgui.push_style_color(imgui.Col_.button_active.value, imgui.ImVec4(*color))
    imgui.push_style_color(imgui.Col_.text.value, imgui.ImVec4(0, 0, 0, 1))
    imgui.small_button(text)
    imgui.pop_style_color(4)


def coloured_button(label: str, color: Optional[RGBA], width: float = 0.0) -> bool:
    """A button, filled with `color` when given (a learn in progress, a lit state)."""
    size = imgui.ImVec2(width, 0)
    if color is None:
        return imgui.button(label, size)
    imgui.push_style_color(imgui.Col_.button.value, imgui.ImVec4(*color))
    imgui.push_style_color(imgui.Col_.text.value, imgui.ImVec4(0, 0, 0, 1))
    try:
        return imgui.button(label, size)
    finally:
        imgui.pop_style_color(2)
