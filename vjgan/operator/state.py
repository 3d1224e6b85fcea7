"""The operator console's selection and learn state, and what each key asks for (pure).

`handle_key(state, key, rows)` returns the next state and the commands to carry out; the
window (`window.py`) turns glfw key events into `KeyPress`es (only while no text field has the
keyboard) and `runner.py` carries the commands out against the show. Nothing here touches the
show, so every key can be tested with plain data. The mouse is the widgets' business
(`panels.py`); a click on a parameter's name selects its row here too.

Keys (letters by what the key prints, digits by position, so AZERTY works too):

    Up / Down            select a row (Page Up / Page Down: ten rows; Home / End)
    Left / Right         nudge the selected parameter by 1% of its range (Shift: 10%);
                         a switch goes off / on
    Enter                flip a switch; fire a selected action
    L                    learn: the next MIDI control moved is bound to the selected row
                         (L again or Escape cancels)
    Delete / Backspace   unbind the selected row's MIDI controls
    Ctrl+S (Cmd+S)       save the current values and MIDI map as a new user preset
    1 ... 9              recall the preset with that number
    T                    tap tempo
    A                    acknowledge the alarm lines
    B                    blackout on/off
    Space                freeze on/off
    F                    output fullscreen on/off
    H                    hide the operator window (H on the output window shows it again)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence, Union

from .view import ACTION, PARAM, Row

NUDGE_STEPS = 100  # Left/Right move a parameter by 1/NUDGE_STEPS of its range
COARSE = 10  # with Shift, ten steps at once
PAGE_ROWS = 10


@dataclass(frozen=True, slots=True)
class KeyPress:
    key: str  # "up", "down", "left", "right", "enter", "escape", "delete", "backspace", "space",
    #           "page_up", "page_down", "home", "end", digits "1".."9", letters "a".."z"
    ctrl: bool = False  # Ctrl, or Cmd on macOS
    shift: bool = False
    repeat: bool = False  # auto-repeat of a held key


@dataclass(frozen=True, slots=True)
class OperatorState:
    selected: Optional[str] = None  # target of the selected row (by name: survives the list changing)
    learning: Optional[str] = None  # target waiting for a MIDI control


# --- commands ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SetParam:
    name: str
    value: float


@dataclass(frozen=True, slots=True)
class StartLearn:
    target: str
    action: bool = False  # the target is an action (a pad fires it)


@dataclass(frozen=True, slots=True)
class CancelLearn:
    pass


@dataclass(frozen=True, slots=True)
class Unbind:
    target: str


@dataclass(frozen=True, slots=True)
class SavePreset:
    pass


@dataclass(frozen=True, slots=True)
class RecallPreset:
    number: int  # 1-based position in the show's preset list


@dataclass(frozen=True, slots=True)
class Invoke:
    action: str  # a name of the show's action vocabulary: "tap-tempo", "blackout", "freeze"


@dataclass(frozen=True, slots=True)
class FireAction:
    target: str  # an action row's name, as MIDI mappings store it ("recall-preset:2")


@dataclass(frozen=True, slots=True)
class ToggleFullscreen:
    pass


@dataclass(frozen=True, slots=True)
class ToggleOperator:
    pass


Command = Union[SetParam, StartLearn, CancelLearn, Unbind, SavePreset, RecallPreset, Invoke, FireAction,
                ToggleFullscreen, ToggleOperator]

# Keys that do one thing per press; auto-repeat of a held key must not tap the tempo ten times.
_SHOW_KEYS = {"t": Invoke("tap-tempo"), "b": Invoke("blackout"), "space": Invoke("freeze"), "a": Invoke("acknowledge"),
              "f": ToggleFullscreen(), "h": ToggleOperator()}


# --- selection ------------------------------------------------------------------------------------------

def selected_index(state: OperatorState, rows: Sequence[Row]) -> Optional[int]:
    """Index of the selected row; the first row when nothing (or something gone) is selected."""
    if not rows:
        return None
    for i, row in enumerate(rows):
        if row.target == state.selected:
            return i
    return 0


def select(state: OperatorState, rows: Sequence[Row], delta: int) -> OperatorState:
    """Move the selection by `delta` rows, stopping at either end."""
    i = selected_index(state, rows)
    if i is None:
        return replace(state, selected=None)
    if state.selected not in {r.target for r in rows}:
        delta = 0  # the first key press just lands on the first row
    i = min(len(rows) - 1, max(0, i + delta))
    return replace(state, selected=rows[i].target)


def selected_row(state: OperatorState, rows: Sequence[Row]) -> Optional[Row]:
    i = selected_index(state, rows)
    return None if i is None else rows[i]


def nudge(row: Row, direction: int, coarse: bool = False) -> float:
    """The value one Left (-1) / Right (+1) press gives `row`, on a grid of 1/100 of its range.

    Values snap to the grid, so repeated nudges land on round numbers whatever a knob left
    behind. A switch goes to its minimum or maximum.
    """
    if row.toggle:
        return row.maximum if direction > 0 else row.minimum
    span = row.maximum - row.minimum
    if span <= 0:
        return row.value
    step = span / NUDGE_STEPS
    steps = (row.value - row.minimum) / step
    # From between two grid points, one press goes to the next point in that direction.
    here = round(steps) if abs(steps - round(steps)) < 1e-6 else (int(steps) if direction > 0 else int(steps) + 1)
    target = here + direction * (COARSE if coarse else 1)
    return min(row.maximum, max(row.minimum, row.minimum + target * step))


# --- events -----------------------------------------------------------------------------------------------

def handle_key(state: OperatorState, key: KeyPress, rows: Sequence[Row]) -> tuple[OperatorState, tuple[Command, ...]]:
    """The next state and the commands for one key press on the operator window."""
    k = key.key
    moves = {"up": -1, "down": 1, "page_up": -PAGE_ROWS, "page_down": PAGE_ROWS,
             "home": -len(rows), "end": len(rows)}
    if k in moves:
        return select(state, rows, moves[k]), ()
    row = selected_row(state, rows)
    if k in ("left", "right"):
        if row is None or row.kind != PARAM:
            return state, ()
        state = replace(state, selected=row.target)
        value = nudge(row, 1 if k == "right" else -1, coarse=key.shift)
        return state, (SetParam(row.target, value),) if value != row.value else ()
    if key.repeat:
        return state, ()
    if key.ctrl:
        return (state, (SavePreset(),)) if k == "s" else (state, ())
    if k in _SHOW_KEYS:
        return state, (_SHOW_KEYS[k],)
    if len(k) == 1 and "1" <= k <= "9":
        return state, (RecallPreset(int(k)),)
    if k == "escape":
        return (replace(state, learning=None), (CancelLearn(),)) if state.learning else (state, ())
    if row is None:
        return state, ()
    state = replace(state, selected=row.target)
    if k == "l":
        return toggle_learn(state, row)
    if k in ("delete", "backspace"):
        return state, (Unbind(row.target),)
    if k == "enter":
        if row.kind == ACTION:
            return state, (FireAction(row.target),)
        if row.toggle:
            return state, (SetParam(row.target, row.minimum if row.normalized >= 0.5 else row.maximum),)
    return state, ()


def toggle_learn(state: OperatorState, row: Row) -> tuple[OperatorState, tuple[Command, ...]]:
    """Learn `row`, or stop learning it if it is the one waiting already."""
    if state.learning == row.target:
        return replace(state, learning=None), (CancelLearn(),)
    return replace(state, selected=row.target, learning=row.target), (StartLearn(row.target, row.kind == ACTION),)


def learn_finished(state: OperatorState, pending: Optional[str]) -> tuple[OperatorState, bool]:
    """Follow the MIDI controller: `pending` is the target it still waits for (None: none).

    Returns the new state and whether the learn we were showing has just ended (bound to a
    control, or cancelled elsewhere)."""
    if state.learning is not None and pending != state.learning:
        return replace(state, learning=None), True
    return state, False

