"""The one way to steer the show: typed commands into one queue, which the show's main loop owns.

Keys on either window, the operator's widgets, MIDI, OSC and Ableton Link all turn what they
receive into these commands and `post` them; the main loop drains the queue once per turn and
carries each out (`vjgan.live.director`). No input reaches into the show by another way, so a new
input is only a translator, and every command is applied on one thread in the order it came.

Each command carries the time its event happened (`t`, perf_counter seconds: a tap pad's own
time, not when the loop got to it) and where it came from (`source`: "key", "operator", "midi",
"osc", "link", ...).

Named actions are the vocabulary mappings, key bindings and OSC addresses use: one table
(`ACTIONS`) from a name such as "blackout" or "recall-preset:3" to the command it stands for.
`docs/commands.md` lists it (`vjgan commands` prints it).

The queue is bounded and never loses a press: parameter moves are coalesced (a knob swept
through 200 positions between two turns of the loop arrives as its last position; encoder ticks
are summed), while discrete commands (pads, taps, recalls) are kept in order, every one.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable, Hashable, Optional, Union

from ..errors import UserError
from ..logs import RateLimitedLog

log = logging.getLogger(__name__)


class UnknownActionError(UserError):
    """An action name the vocabulary does not have, or an argument it does not take."""


@dataclass(frozen=True, kw_only=True)
class Command:
    t: float = field(default_factory=time.perf_counter)  # when the event happened
    source: str = ""  # "key", "operator", "midi", "osc", "link", "cli", ...


# --- parameters ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SetParam(Command):
    """Set a named parameter: `value` in its own units, or 0–1 across its range if `normalized`.
    `origin` names the control that made the move (a MIDI knob), so pick-up takeover can tell its
    own writes from everybody else's. `coalesce=False` keeps every such move (a momentary pad's
    press and release, which must both arrive even between two turns of the loop)."""

    name: str
    value: float
    normalized: bool = False
    origin: Optional[Hashable] = None
    coalesce: bool = True


@dataclass(frozen=True)
class NudgeParam(Command):
    """Move a parameter by `delta` of its range (a relative encoder's ticks, an arrow key)."""

    name: str
    delta: float


@dataclass(frozen=True)
class ToggleParam(Command):
    """Flip a switch parameter (a toggle pad): applied in order, never coalesced."""

    name: str


@dataclass(frozen=True)
class ResetParam(Command):
    name: str


# --- the show ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tap(Command):
    """Tap tempo at `t`."""


@dataclass(frozen=True)
class RecallPreset(Command):
    which: str  # a name, or a 1-based number in the preset list ("3")


@dataclass(frozen=True)
class StepPreset(Command):
    direction: int  # +1 next, -1 previous


@dataclass(frozen=True)
class SavePreset(Command):
    name: Optional[str] = None  # None: a new, numbered name; a preset is never overwritten


@dataclass(frozen=True)
class RenamePreset(Command):
    """Give one of the user's presets another name (vjgan's own presets are never renamed)."""

    old: str
    new: str


@dataclass(frozen=True)
class EditRoute(Command):
    """Change one route of the playing preset, or add it if the preset has no route of that name.

    `changes` are (field, value) pairs of a route (`source`, `target`, `layers`, `direction`,
    `gain`, `gain_max`, `release_s`, `smoothing_s`); a new route needs at least a source and a
    target. A route change is a preset change: the edited preset is built in the background and
    committed whole, keeping the running parameter values."""

    name: str
    changes: tuple[tuple[str, Union[str, int, float]], ...] = ()


@dataclass(frozen=True)
class RemoveRoute(Command):
    name: str


@dataclass(frozen=True)
class SwitchModel(Command):
    path: str


@dataclass(frozen=True)
class Blackout(Command):
    on: Optional[bool] = None  # None toggles


@dataclass(frozen=True)
class Freeze(Command):
    on: Optional[bool] = None  # None toggles


@dataclass(frozen=True)
class NewKeyframe(Command):
    """Keep the current picture as a keyframe the motion returns to."""


@dataclass(frozen=True)
class Portrait(Command):
    """Project a photo into the model playing (in the background), then play it: the living portrait."""

    path: str


@dataclass(frozen=True)
class Prompt(Command):
    """Find the picture CLIP matches to these words (in the background), then play it."""

    text: str


@dataclass(frozen=True)
class PlayKeyframe(Command):
    """Play the running preset around this keyframe file (what a portrait or a prompt found)."""

    path: str
    label: str = ""


@dataclass(frozen=True)
class AcknowledgeAlarm(Command):
    key: Optional[str] = None  # None: every alarm line shown


@dataclass(frozen=True)
class ToggleFullscreen(Command):
    pass


@dataclass(frozen=True)
class ToggleRecording(Command):
    """Start or stop recording the output with the show's sound (a new file each take)."""

    on: Optional[bool] = None  # None toggles


@dataclass(frozen=True)
class SetTempo(Command):
    """A typed tempo: the beat clock's (and, with Ableton Link, the session's)."""

    bpm: float


@dataclass(frozen=True)
class NudgeTempo(Command):
    """Move the tempo by `delta_bpm` (with Ableton Link, the session's tempo)."""

    delta_bpm: float


QUANTA = ("off", "beat", "bar", "preset")  # "preset": each preset's own `quantize` option


def check_quantum(quantum: Optional[str]) -> str:
    if quantum not in QUANTA:
        raise UnknownActionError(f"quantize {quantum!r}: expected one of {', '.join(QUANTA)}")
    return quantum


@dataclass(frozen=True)
class SetQuantize(Command):
    """Preset changes land on the next beat or bar ("off": as soon as ready; "preset": each preset's
    own option)."""

    quantum: str


@dataclass(frozen=True)
class Quit(Command):
    """End the show (keys ask twice before they post this; nothing else posts it)."""


# --- the vocabulary of named actions ------------------------------------------------------------------------

@dataclass(frozen=True)
class ActionSpec:
    name: str
    description: str
    make: Callable[[Optional[str]], Command]  # argument → command (t and source are filled in after)
    argument: str = ""  # what the ":argument" is, if the action takes one


def _no_arg(make: Callable[[], Command]) -> Callable[[Optional[str]], Command]:
    return lambda argument: make()


ACTIONS: dict[str, ActionSpec] = {spec.name: spec for spec in (
    ActionSpec("blackout", "black out the output (toggle)", _no_arg(Blackout)),
    ActionSpec("freeze", "hold the picture (toggle)", _no_arg(Freeze)),
    ActionSpec("next-preset", "recall the next preset", _no_arg(lambda: StepPreset(+1))),
    ActionSpec("previous-preset", "recall the previous preset", _no_arg(lambda: StepPreset(-1))),
    ActionSpec("recall-preset", "recall the preset given after the colon", lambda a: RecallPreset(a or ""),
               argument="a preset's number in the list (from 1) or its name: recall-preset:3"),
    ActionSpec("save-preset", "save the running values and MIDI map as a new preset", _no_arg(SavePreset)),
    ActionSpec("tap-tempo", "tap the beat (two or more taps set the tempo)", _no_arg(Tap)),
    ActionSpec("new-keyframe", "keep the current picture as a keyframe", _no_arg(NewKeyframe)),
    ActionSpec("acknowledge", "acknowledge the alarm lines (they leave the screen once seen)",
               _no_arg(AcknowledgeAlarm)),
    ActionSpec("fullscreen", "output window fullscreen on/off", _no_arg(ToggleFullscreen)),
    ActionSpec("record", "start / stop recording the output with the show's sound (a new file each take)",
               _no_arg(ToggleRecording)),
    ActionSpec("tempo-up", "tempo one BPM faster (with Ableton Link: the session's)", _no_arg(lambda: NudgeTempo(+1.0))),
    ActionSpec("tempo-down", "tempo one BPM slower (with Ableton Link: the session's)",
               _no_arg(lambda: NudgeTempo(-1.0))),
    ActionSpec("quantize", "preset changes land on the next beat or bar", lambda a: SetQuantize(check_quantum(a)),
               argument="off, beat, bar, or preset (each preset's own option): quantize:bar"),
)}

_BASE = r"[a-z0-9][a-z0-9._\-]*"
_NAME = re.compile(rf"^({_BASE})(?::([A-Za-z0-9][A-Za-z0-9 ._\-]*))?$")


def register_action(spec: ActionSpec) -> None:
    """Add an action to the vocabulary (an input that brings commands of its own: recording, Link...)."""
    if not re.fullmatch(_BASE, spec.name):
        raise ValueError(f"{spec.name!r} is not an action name (lower-case letters, digits, '-', '.', '_')")
    ACTIONS[spec.name] = spec


def parse_action(name: str) -> tuple[ActionSpec, Optional[str]]:
    """`"recall-preset:3"` → (its spec, "3"); an unknown name or a missing/extra argument raises."""
    if not isinstance(name, str):
        raise UnknownActionError(f"an action name must be text, got {type(name).__name__}")
    m = _NAME.match(name)
    if m is None:
        raise UnknownActionError(f"{name!r} is not an action name (lower-case letters, digits, '-', '.', '_', "
                                 "and an optional ':argument')")
    base, argument = m.group(1), m.group(2)
    spec = ACTIONS.get(base)
    if spec is None:
        raise UnknownActionError(f"no action named {base!r} (known: {', '.join(sorted(ACTIONS))})")
    if spec.argument and argument is None:
        raise UnknownActionError(f"action {base!r} needs an argument: {spec.argument}")
    if not spec.argument and argument is not None:
        raise UnknownActionError(f"action {base!r} takes no argument (got {name!r})")
    return spec, argument


def action_command(name: str, *, t: Optional[float] = None, source: str = "") -> Command:
    """The command a named action stands for, stamped with its event time and source."""
    spec, argument = parse_action(name)
    command = spec.make(argument)
    return replace(command, t=time.perf_counter() if t is None else t, source=source)


def check_action(name: str) -> None:
    parse_action(name)


def describe_actions() -> list[str]:
    """One line per action, for `vjgan commands` and docs/commands.md."""
    lines = []
    for spec in sorted(ACTIONS.values(), key=lambda s: s.name):
        label = f"{spec.name}:ARG" if spec.argument else spec.name
        lines.append(f"{label:<22} {spec.description}" + (f" — ARG: {spec.argument}" if spec.argument else ""))
    return lines


# --- the queue ------------------------------------------------------------------------------------------------

Coalescible = Union[SetParam, NudgeParam]


class CommandQueue:
    """Thread-safe, bounded, order-keeping; parameter moves coalesce, discrete commands never drop."""

    def __init__(self, max_pending: int = 65536) -> None:
        self._guard = threading.Lock()
        self._entries: deque[list[Optional[Command]]] = deque()
        self._pending_param: dict[str, list[Optional[Command]]] = {}
        self._live = 0
        self._max = max_pending
        self._wakers: list[Callable[[], None]] = []
        self.posted = threading.Event()  # set by post, cleared by drain: wakes an idle consumer
        self.coalesced = 0  # how many moves were folded into a later one (for the HUD and tests)
        self.refused = 0
        self._say = RateLimitedLog(log, 5.0)

    def add_waker(self, wake: Callable[[], None]) -> None:
        """Call `wake()` after each post (e.g. glfw.post_empty_event, to end the loop's wait)."""
        self._wakers.append(wake)

    def post(self, command: Command) -> bool:
        """Queue one command (any thread, returns at once). False if the queue was full."""
        if not isinstance(command, Command):
            raise TypeError(f"not a command: {command!r}")
        coalescible = isinstance(command, NudgeParam) or (isinstance(command, SetParam) and command.coalesce)
        with self._guard:
            if coalescible:
                command = self._coalesce_locked(command)
            full = self._live >= self._max
            if full:
                self.refused += 1
            else:
                entry: list[Optional[Command]] = [command]
                self._entries.append(entry)
                self._live += 1
                if coalescible:
                    self._pending_param[command.name] = entry
        if full:
            self._say("full", f"commands arrive faster than the show can take them; dropped a {type(command).__name__}")
            return False
        if self.posted.is_set():
            return True  # the consumer was woken already and will drain this too (a flood wakes it once)
        self.posted.set()
        for wake in self._wakers:
            try:
                wake()
            except Exception:  # a waker is a courtesy; the loop drains on its own turn anyway
                pass
        return True

    def _coalesce_locked(self, command: Coalescible) -> Coalescible:
        pending = self._pending_param.get(command.name)
        if pending is None or pending[0] is None:
            return command
        old = pending[0]
        if isinstance(command, SetParam):
            merged: Coalescible = command  # an absolute move makes any earlier move moot
        elif isinstance(old, NudgeParam):
            merged = replace(command, delta=old.delta + command.delta)
        else:  # a nudge after a pending absolute move: both are needed, in order
            return command
        pending[0] = None  # the old entry stays in place, empty: order is kept without a search
        self._live -= 1
        self.coalesced += 1
        return merged

    def drain(self) -> list[Command]:
        """Everything posted so far, in order (the main loop calls this once per turn)."""
        with self._guard:
            entries = self._entries
            self._entries = deque()
            self._pending_param.clear()
            self._live = 0
            self.posted.clear()
        return [e[0] for e in entries if e[0] is not None]

    def __len__(self) -> int:
        with self._guard:
            return self._live
