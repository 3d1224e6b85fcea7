"""Monitors: list them (`vjgan devices`) and pick one for the output by name or index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import UserError
from .glfw_session import glfw_module


@dataclass(frozen=True, slots=True)
class MonitorInfo:
    index: int  # position in glfw's list (the primary monitor first)
    name: str  # as the system names it (X11: the output, e.g. "HDMI-1"; macOS/Windows: the model)
    width: int  # current video mode, in pixels
    height: int
    refresh_hz: float | None  # None where the system does not say (e.g. Xvfb)
    x: int  # position on the virtual desktop
    y: int
    primary: bool
    physical_mm: tuple[int, int] = (0, 0)

    def describe(self) -> str:
        rate = f" @ {self.refresh_hz:g} Hz" if self.refresh_hz else ""
        primary = " (primary)" if self.primary else ""
        return f"{self.index}: {self.name} {self.width}x{self.height}{rate} at ({self.x}, {self.y}){primary}"


def _decode(name: Any) -> str:
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")


def glfw_monitors() -> list[Any]:
    return list(glfw_module().get_monitors() or [])


def monitor_info(handle: Any, index: int, primary: Any = None) -> MonitorInfo:
    glfw = glfw_module()
    mode = glfw.get_video_mode(handle)
    x, y = glfw.get_monitor_pos(handle)
    mm = glfw.get_monitor_physical_size(handle)
    rate = float(mode.refresh_rate) if mode.refresh_rate else None
    is_primary = primary is not None and _same(handle, primary)
    return MonitorInfo(index, _decode(glfw.get_monitor_name(handle)), int(mode.size.width), int(mode.size.height),
                       rate, int(x), int(y), is_primary, (int(mm[0]), int(mm[1])))


def _same(a: Any, b: Any) -> bool:
    import ctypes

    return ctypes.addressof(a.contents) == ctypes.addressof(b.contents)


def list_monitors() -> list[MonitorInfo]:
    """Every connected monitor; NoDisplayError (a UserError) when there is no display at all."""
    glfw = glfw_module()
    primary = glfw.get_primary_monitor()
    return [monitor_info(h, i, primary) for i, h in enumerate(glfw_monitors())]


def find_monitor(spec: str | int | None, monitors: Sequence[MonitorInfo]) -> MonitorInfo:
    """The monitor `spec` names: an index ("1"), an exact name, or a unique name substring.

    None means the primary monitor. A name matching nothing, or several monitors, is one line
    listing the available ones.
    """
    if not monitors:
        raise UserError("no monitors are connected")
    available = "; ".join(m.describe() for m in monitors)
    if spec is None:
        return next((m for m in monitors if m.primary), monitors[0])
    text = str(spec).strip()
    if isinstance(spec, int) or text.isdigit():
        index = int(text)
        if 0 <= index < len(monitors):
            return monitors[index]
        raise UserError(f"no monitor number {index} (available: {available})")
    exact = [m for m in monitors if m.name.lower() == text.lower()]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [m for m in monitors if text.lower() in m.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(f"no monitor matches {text!r} (available: {available})")
    raise UserError(f"{text!r} matches {len(matches)} monitors; give its number instead (available: {available})")
