"""Named actions a pad, a key or the operator window can fire: preset recall, tap tempo, blackout...

The live show registers a callable per name; controls refer to actions by name only, so mappings
stay plain data (stored in presets) and survive the show being rebuilt around them. An action
may take one argument written after a colon: `recall-preset:3`.

Callables receive an `ActionCall` carrying the time of the event that fired it (for tap tempo the
time the pad was hit, not the time the call ran). The MIDI controller invokes actions on its own
dispatch thread, never on the MIDI callback thread, so a slow action (a preset load) cannot hold
up incoming MIDI; an action that touches state owned by another thread must hand it over.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import UserError


class UnknownActionError(UserError):
    """An action name no registered action carries, or an argument the action does not take."""


# The actions the live show is expected to provide (names are the contract with mappings).
RECALL_PRESET = "recall-preset"  # takes the preset number or name: recall-preset:3
NEXT_PRESET = "next-preset"
PREVIOUS_PRESET = "previous-preset"
TAP_TEMPO = "tap-tempo"
NEW_KEYFRAME = "new-keyframe"
BLACKOUT = "blackout"
FREEZE = "freeze"

STANDARD_ACTIONS: dict[str, str] = {
    RECALL_PRESET: "recall the preset given after the colon (recall-preset:3)",
    NEXT_PRESET: "recall the next preset",
    PREVIOUS_PRESET: "recall the previous preset",
    TAP_TEMPO: "tap the beat (two or more taps set the tempo)",
    NEW_KEYFRAME: "snap to a new keyframe latent",
    BLACKOUT: "black out the output (toggle)",
    FREEZE: "freeze the picture (toggle)",
}

_BASE = r"[a-z0-9][a-z0-9._\-]*"
_NAME = re.compile(rf"^({_BASE})(?::([A-Za-z0-9][A-Za-z0-9._\-]*))?$")
_BASE_ONLY = re.compile(rf"^{_BASE}$")


def parse_action_name(name: str) -> tuple[str, Optional[str]]:
    """`"recall-preset:3"` → `("recall-preset", "3")`; `"blackout"` → `("blackout", None)`."""
    if not isinstance(name, str):
        raise UnknownActionError(f"action name must be a string, got {type(name).__name__}")
    m = _NAME.match(name)
    if m is None:
        raise UnknownActionError(f"{name!r} is not an action name (lower-case letters, digits, '-', '.', '_', "
                                 "and an optional ':argument')")
    return m.group(1), m.group(2)


@dataclass(frozen=True)
class ActionCall:
    """One invocation: which action, its argument, when the event happened and where it came from."""

    name: str
    argument: Optional[str]
    t: float  # time.perf_counter() seconds of the triggering event
    source: str = ""  # "midi", "keyboard", "operator", ...


ActionFn = Callable[[ActionCall], None]


@dataclass(frozen=True)
class ActionInfo:
    name: str
    takes_argument: bool
    description: str


class ActionRegistry:
    """Thread-safe map from action names to callables."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._actions: dict[str, tuple[ActionFn, ActionInfo]] = {}

    def register(self, name: str, fn: ActionFn, *, takes_argument: bool = False, description: str = "") -> None:
        """Add or replace an action. `name` has no argument part; `takes_argument` says whether
        invocations must carry one (`recall-preset:3`) or must not (`blackout`)."""
        if not isinstance(name, str) or not _BASE_ONLY.match(name):
            raise ValueError(f"{name!r} is not an action name (lower-case letters, digits, '-', '.', '_')")
        if not callable(fn):
            raise TypeError(f"action {name!r}: {fn!r} is not callable")
        info = ActionInfo(name, takes_argument, description or STANDARD_ACTIONS.get(name, ""))
        with self._lock:
            self._actions[name] = (fn, info)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._actions.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._actions)

    def infos(self) -> list[ActionInfo]:
        with self._lock:
            return sorted((info for _, info in self._actions.values()), key=lambda i: i.name)

    def _resolve(self, name: str) -> tuple[ActionFn, str, Optional[str]]:
        base, arg = parse_action_name(name)
        with self._lock:
            entry = self._actions.get(base)
            known = sorted(self._actions)
        if entry is None:
            listing = ", ".join(known) if known else "none registered"
            raise UnknownActionError(f"no action named {base!r} (known: {listing})")
        fn, info = entry
        if info.takes_argument and arg is None:
            raise UnknownActionError(f"action {base!r} needs an argument, e.g. '{base}:1'")
        if not info.takes_argument and arg is not None:
            raise UnknownActionError(f"action {base!r} takes no argument (got {name!r})")
        return fn, base, arg

    def check(self, name: str) -> None:
        """Raise `UnknownActionError` unless `name` would invoke a registered action."""
        self._resolve(name)

    def has(self, name: str) -> bool:
        try:
            self._resolve(name)
        except UserError:
            return False
        return True

    def invoke(self, name: str, *, t: Optional[float] = None, source: str = "") -> None:
        """Call the action `name` (with its `:argument`, if any) on the calling thread.

        Unknown names raise `UnknownActionError`; whatever the action raises propagates.
        """
        fn, base, arg = self._resolve(name)
        fn(ActionCall(base, arg, time.perf_counter() if t is None else t, source))
