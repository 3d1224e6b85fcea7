"""Absolute knobs after the value moved without them: pick-up, jump or value scaling. Pure functions.

After a preset change or a bank switch, a knob's physical position and the value it controls no
longer agree. Letting the first touch set the value makes the picture jump, so by default the
knob does nothing until it passes through the stored value ("pick-up", also called soft
takeover). "jump" sets the value at once. "scale" moves the value proportionally as the knob
moves, so that knob and value reach the end of travel together and the knob takes over there
(or earlier, where they meet).

All positions and values are normalised to 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .mapping import JUMP, PICKUP, SCALE

# A 7-bit knob moves in steps of 1/127: within one step of the value counts as "at the value".
PICKUP_TOLERANCE = 1.0 / 127.0


@dataclass(frozen=True)
class TakeoverResult:
    value: Optional[float]  # the new normalised value, or None to leave the value alone
    engaged: bool  # the knob now controls the value directly


def _side(x: float) -> int:
    return (x > 0) - (x < 0)


def absolute_move(mode: str, previous: Optional[float], position: float, value: float, engaged: bool,
                  tolerance: float = PICKUP_TOLERANCE) -> TakeoverResult:
    """A knob moved from `previous` (None: unknown) to `position` while the value is `value`.

    `engaged` is whether the knob controlled the value before this move.
    """
    if engaged or mode == JUMP:
        return TakeoverResult(position, True)
    if abs(position - value) <= tolerance:
        return TakeoverResult(position, True)
    if previous is None:
        return TakeoverResult(None, False)
    if _side(previous - value) * _side(position - value) < 0:
        return TakeoverResult(position, True)  # the knob passed through the value
    if mode == PICKUP:
        return TakeoverResult(None, False)
    if mode == SCALE:
        if position > previous and previous < 1.0:
            new = value + (position - previous) * (1.0 - value) / (1.0 - previous)
        elif position < previous and previous > 0.0:
            new = value - (previous - position) * value / previous
        else:
            return TakeoverResult(None, False)
        new = min(1.0, max(0.0, new))
        # Knob and value meet (or cross, by rounding) here: the knob has taken over.
        if abs(new - position) <= tolerance or _side(previous - value) * _side(position - new) < 0:
            return TakeoverResult(position, True)
        return TakeoverResult(new, False)
    raise ValueError(f"unknown takeover mode {mode!r}")
