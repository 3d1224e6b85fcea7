"""Keys on the output window and the named actions they stand for (pure logic, no glfw).

The names are the show's action vocabulary (`vjgan.control.commands.ACTIONS`): the show turns a
key's action into the same command a MIDI pad or an OSC message with that name gives. Quitting is
the window's own business (it asks for a second press), so it is not an action.

Bindings (layout-aware: the key that *prints* the letter counts, so Q is Q on AZERTY too):

    F or F11          fullscreen on/off
    B                 blackout on/off
    Space             freeze the picture on/off
    Right, Page Down  next preset
    Left, Page Up     previous preset
    T                 tap tempo
    A                 acknowledge the alarm lines (the operator window shows them too)
    Q or Escape       quit — press twice within 2 s (the first press arms and is reported, so
                      the HUD can say "press Q again to quit"); the window's close button too

Quitting needs a second press because one stray key must never end a concert.
"""

from __future__ import annotations

from enum import Enum
from typing import Mapping


class Action(str, Enum):
    TOGGLE_FULLSCREEN = "fullscreen"
    BLACKOUT = "blackout"
    FREEZE = "freeze"
    NEXT_PRESET = "next-preset"
    PREVIOUS_PRESET = "previous-preset"
    TAP_TEMPO = "tap-tempo"
    ACKNOWLEDGE = "acknowledge"
    QUIT_ARMED = "quit-armed"  # first quit press: nothing happens yet (not a show action)
    QUIT = "quit"  # confirmed (not a show action: the window closes)

    @property
    def is_show_action(self) -> bool:
        return self not in (Action.QUIT_ARMED, Action.QUIT)


KEY_BINDINGS: Mapping[str, Action] = {
    "f": Action.TOGGLE_FULLSCREEN,
    "f11": Action.TOGGLE_FULLSCREEN,
    "b": Action.BLACKOUT,
    "space": Action.FREEZE,
    "right": Action.NEXT_PRESET,
    "page_down": Action.NEXT_PRESET,
    "left": Action.PREVIOUS_PRESET,
    "page_up": Action.PREVIOUS_PRESET,
    "t": Action.TAP_TEMPO,
    "a": Action.ACKNOWLEDGE,
    "q": Action.QUIT,
    "escape": Action.QUIT,
}

QUIT_CONFIRM_S = 2.0


class KeyActions:
    """Turns key presses (by name, with their time) into actions, with the quit confirmation."""

    def __init__(self, bindings: Mapping[str, Action] = KEY_BINDINGS, quit_confirm_s: float = QUIT_CONFIRM_S) -> None:
        self.bindings = dict(bindings)
        self.quit_confirm_s = quit_confirm_s
        self._armed_at: float | None = None

    def press(self, key: str, t: float) -> Action | None:
        """The action for a key press at time `t` (seconds), or None for an unbound key."""
        action = self.bindings.get(key.lower())
        if action is Action.QUIT:
            return self.quit_pressed(t)
        return action

    def quit_pressed(self, t: float) -> Action:
        """A quit key or the window's close button: arms, or confirms within quit_confirm_s."""
        if self._armed_at is not None and 0.0 <= t - self._armed_at <= self.quit_confirm_s:
            self._armed_at = None
            return Action.QUIT
        self._armed_at = t
        return Action.QUIT_ARMED

    def quit_armed(self, t: float) -> bool:
        """True while a first quit press is waiting for its confirmation (for the HUD)."""
        return self._armed_at is not None and t - self._armed_at <= self.quit_confirm_s
