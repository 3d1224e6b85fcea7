"""Where the operator window opens: on the laptop screen, never on the projector (pure).

With two or more monitors the operator window goes to a monitor the output is not on (the
primary one if the output is elsewhere: that is the laptop's own screen). With one monitor,
the operator window takes the left side and a windowed output is moved to its right, so both
can be seen while rehearsing; a fullscreen output covers the only screen, which is said once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True, slots=True)
class Area:
    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    def overlaps(self, other: "Area") -> bool:
        return (self.x < other.right and other.x < self.right
                and self.y < other.y + other.h and other.y < self.y + self.h)


@dataclass(frozen=True, slots=True)
class Screen:
    name: str
    area: Area  # the usable area (the work area where the system says, else the whole monitor)
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Placement:
    operator: Area
    move_output_to: Optional[tuple[int, int]] = None  # new top-left of a windowed output, if it must move
    note: str = ""  # a line for the log, when the arrangement is a compromise


MARGIN = 16
MIN_SIZE = (480, 320)


def _clamp_size(wanted: tuple[int, int], room: Area) -> tuple[int, int]:
    w = min(wanted[0], max(1, room.w - 2 * MARGIN))
    h = min(wanted[1], max(1, room.h - 2 * MARGIN))
    return int(w), int(h)


def _centred(size: tuple[int, int], room: Area) -> Area:
    w, h = size
    return Area(room.x + max(0, (room.w - w) // 2), room.y + max(0, (room.h - h) // 2), w, h)


def place_operator(screens: Sequence[Screen], output_screen: Optional[str], output_fullscreen: bool,
                   output_rect: Area, wanted: tuple[int, int]) -> Placement:
    """Where the operator window goes (and where a windowed output moves to make room)."""
    if not screens:
        return Placement(Area(MARGIN, MARGIN, *wanted))
    others = [s for s in screens if s.name != output_screen]
    if others and len(screens) > 1:
        laptop = next((s for s in others if s.primary), others[0])
        return Placement(_centred(_clamp_size(wanted, laptop.area), laptop.area))
    screen = next((s for s in screens if s.name == output_screen), None) or \
        next((s for s in screens if s.primary), screens[0])
    room = screen.area
    if output_fullscreen:
        return Placement(_centred(_clamp_size(wanted, room), room),
                         note="one monitor: the fullscreen output covers the operator window "
                              "(F on the output plays it windowed beside the operator window)")
    # Side by side: the operator on the left, as wide as the output leaves room for.
    beside = room.w - output_rect.w - 3 * MARGIN
    width = min(wanted[0], max(MIN_SIZE[0], beside))
    w, h = _clamp_size((width, wanted[1]), room)
    operator = Area(room.x + MARGIN, room.y + MARGIN, w, h)
    out_x = max(operator.right + MARGIN, room.right - MARGIN - output_rect.w)
    out_x = min(out_x, room.right - output_rect.w) if output_rect.w <= room.w else room.x
    out_y = min(max(room.y + MARGIN, output_rect.y), max(room.y, room.y + room.h - output_rect.h))
    moved = Area(out_x, out_y, output_rect.w, output_rect.h)
    note = "" if not moved.overlaps(operator) else \
        "one monitor too small for both windows side by side: the output overlaps the operator window"
    move = (out_x, out_y) if (out_x, out_y) != (output_rect.x, output_rect.y) else None
    return Placement(operator, move, note)
