"""Turns the operator's keys and widgets into the show's commands, and keeps the status line.

Runs on the main thread (key callbacks, ImGui frames). Everything that steers the show is posted
to its one command queue, as keys, MIDI and OSC do (the show carries it out on its next turn);
only MIDI learn, which configures the controller rather than the show, is done here. Nothing here
may stop the show: a command that fails becomes a status line and a log line. The MIDI
controller's learn callback arrives on the MIDI thread and is handed over through a `LatestSlot`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from ..control import commands as show_commands
from ..errors import UserError
from ..handover import LatestSlot
from ..logs import LOG_TAIL
from .collect import ShowLike
from .state import (CancelLearn, Command, FireAction, Invoke, OperatorState, RecallPreset, SavePreset, SetParam,
                    StartLearn, ToggleFullscreen, ToggleOperator, Unbind, learn_finished)
from .view import mapping_text

STATUS_S = 8.0  # how long a status line stays up


@dataclass(frozen=True)
class Status:
    text: str
    error: bool
    at: float


class CommandRunner:
    def __init__(self, show: ShowLike, *, toggle_operator: Callable[[], None],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.show = show
        self._toggle_operator = toggle_operator
        self._clock = clock
        self.status: Optional[Status] = None
        self._learned: LatestSlot[Any] = LatestSlot()
        self._learned_seen = 0
        self._tail_seen = LOG_TAIL.snapshot()[1]

    # --- the status line ---------------------------------------------------------------------------

    def say(self, text: str, error: bool = False) -> None:
        self.status = Status(text, error, self._clock())
        try:
            self.show.log(text)
        except Exception:
            pass
        self._tail_seen = LOG_TAIL.snapshot()[1]  # our own line, already shown

    def current_status(self) -> Optional[Status]:
        """The newest line for the operator: what a key or click here answered, or what the show
        last said (a preset that could not load, a save that finished), whichever is newer."""
        s = self.status
        lines, seq = LOG_TAIL.snapshot()
        if lines and seq != self._tail_seen:
            self._tail_seen = seq
            newest = lines[-1]
            if s is None or newest.text != s.text:
                s = self.status = Status(newest.text, newest.level >= logging.WARNING, self._clock())
        if s is None or self._clock() - s.at > STATUS_S:
            return None
        return s

    # --- commands --------------------------------------------------------------------------------------

    def post(self, command: show_commands.Command, status: str = "") -> None:
        """A widget's command, on the show's one command path (stamped as the operator's)."""
        self.show.post(replace(command, source="operator"))
        if status:
            self.say(status)

    def run(self, command: Command, state: OperatorState) -> OperatorState:
        """Carry out one command; returns the state (a learn that could not start is dropped)."""
        show = self.show
        try:
            if isinstance(command, SetParam):
                show.post(show_commands.SetParam(command.name, command.value, source="operator"))
            elif isinstance(command, StartLearn):
                return self._start_learn(command, state)
            elif isinstance(command, CancelLearn):
                if show.midi is not None:
                    show.midi.cancel_learn()
                self.say("learn cancelled")
            elif isinstance(command, Unbind):
                self._unbind(command.target)
            elif isinstance(command, SavePreset):
                show.post(show_commands.SavePreset(source="operator"))
                self.say("saving a new preset...")
            elif isinstance(command, RecallPreset):
                self._recall(command.number)
            elif isinstance(command, (Invoke, FireAction)):
                name = command.action if isinstance(command, Invoke) else command.target
                show.post(show_commands.action_command(name, source="operator"))
            elif isinstance(command, ToggleFullscreen):
                show.post(show_commands.ToggleFullscreen(source="operator"))
            elif isinstance(command, ToggleOperator):
                self._toggle_operator()
        except UserError as e:
            self.say(str(e), error=True)
        return state

    def _start_learn(self, command: StartLearn, state: OperatorState) -> OperatorState:
        midi = self.show.midi
        if midi is None:
            self.say("MIDI learn needs MIDI, which is not running (the log says why)", error=True)
            return replace(state, learning=None)
        try:
            midi.learn(command.target, action=command.action, on_learned=self._learned.publish)
        except UserError as e:
            self.say(f"cannot learn {command.target}: {e}", error=True)
            return replace(state, learning=None)
        self.say(f"learn {command.target}: move a control")
        return state

    def _unbind(self, target: str) -> None:
        midi = self.show.midi
        if midi is None:
            raise UserError("no MIDI controller is running")
        removed = midi.remove_mappings(target=target)
        self.say(f"{target}: {removed} MIDI control{'s' if removed != 1 else ''} unbound" if removed
                 else f"{target} has no MIDI control")

    def _recall(self, number: int) -> None:
        presets = list(self.show.presets)
        if not 1 <= number <= len(presets):
            raise UserError(f"no preset {number} (there {'is' if len(presets) == 1 else 'are'} {len(presets)})")
        self.show.post(show_commands.RecallPreset(str(number), source="operator"))
        self.say(f"preset {number}: {presets[number - 1]}")

    # --- what happened elsewhere ---------------------------------------------------------------------------

    def poll(self, state: OperatorState) -> OperatorState:
        """Follow the MIDI controller's learn (main thread, each redraw)."""
        midi = self.show.midi
        pending = getattr(getattr(midi, "learning", None), "target", None) if midi is not None else None
        learned, seq = self._learned.read()
        if seq != self._learned_seen:
            self._learned_seen = seq
            if learned is not None:
                self.say(f"learned: {mapping_text([learned])} -> {learned.target}")
        state, ended = learn_finished(state, pending)
        if ended and (self.status is None or not self.status.text.startswith("learned")):
            self.say("learn ended")
        return state
