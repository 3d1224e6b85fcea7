"""Carries out the operator's commands against the show, and keeps the status line.

Runs on the main thread (from key and mouse callbacks). Nothing here may stop the show: a
command that fails becomes a status line and a log line. The MIDI controller's learn callback
arrives on the MIDI thread and is handed over through a `LatestSlot`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from ..control.commands import action_command
from ..errors import UserError
from ..handover import LatestSlot
from .collect import ShowLike
from .presets import PresetSaver, midi_mappings
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
                 saver: Optional[PresetSaver] = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.show = show
        self._toggle_operator = toggle_operator
        self.saver = saver or PresetSaver()
        self._clock = clock
        self.status: Optional[Status] = None
        self._learned: LatestSlot[Any] = LatestSlot()
        self._learned_seen = 0
        self._saved_seen = 0

    # --- the status line ---------------------------------------------------------------------------

    def say(self, text: str, error: bool = False) -> None:
        self.status = Status(text, error, self._clock())
        try:
            self.show.log(text)
        except Exception:
            pass

    def current_status(self) -> Optional[Status]:
        s = self.status
        if s is None or self._clock() - s.at > STATUS_S:
            return None
        return s

    # --- commands --------------------------------------------------------------------------------------

    def run(self, command: Command, state: OperatorState) -> OperatorState:
        """Carry out one command; returns the state (a learn that could not start is dropped)."""
        show = self.show
        try:
            if isinstance(command, SetParam):
                show.params.set(command.name, command.value)
            elif isinstance(command, StartLearn):
                return self._start_learn(command, state)
            elif isinstance(command, CancelLearn):
                if show.midi is not None:
                    show.midi.cancel_learn()
                self.say("learn cancelled")
            elif isinstance(command, Unbind):
                self._unbind(command.target)
            elif isinstance(command, SavePreset):
                self._save()
            elif isinstance(command, RecallPreset):
                self._recall(command.number)
            elif isinstance(command, Invoke):
                show.invoke(command.action)
            elif isinstance(command, FireAction):
                self._fire(command.target)
            elif isinstance(command, ToggleFullscreen):
                show.window.toggle_fullscreen()
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

    def _save(self) -> None:
        show = self.show
        values = dict(show.params.snapshot().values)
        options = getattr(show, "options", None)
        self.saver.save(show.preset, values, midi_mappings(show.midi), getattr(options, "model", None))
        self.say("saving a new preset...")

    def _recall(self, number: int) -> None:
        presets = list(self.show.presets)
        if not 1 <= number <= len(presets):
            raise UserError(f"no preset {number} (there {'is' if len(presets) == 1 else 'are'} {len(presets)})")
        name = presets[number - 1]
        self.show.switch_preset(name)
        self.say(f"preset {number}: {name}")

    def _fire(self, target: str) -> None:
        command = action_command(target, source="operator")  # an unknown name: one UserError line
        queue = getattr(self.show, "commands", None)  # the show's CommandQueue
        post = queue.post if queue is not None else getattr(self.show.midi, "post", None)
        if post is None:
            raise UserError(f"action {target!r} cannot reach the show")
        post(command)

    # --- what happened elsewhere ---------------------------------------------------------------------------

    def poll(self, state: OperatorState) -> OperatorState:
        """Follow the MIDI controller's learn and the background saves (main thread, each redraw)."""
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
        result, seq = self.saver.results.read()
        if seq != self._saved_seen and result is not None:
            self._saved_seen = seq
            self._saved(result)
        return state

    def _saved(self, result: Any) -> None:
        if result.path is None:
            self.say(result.error, error=True)
            return
        from ..config import available_presets, load_preset

        show = self.show
        try:
            saved = load_preset(result.path)
        except UserError as e:
            self.say(str(e), error=True)
            return
        # The show now plays the saved copy: later saves number from it, the autosave names it.
        show.presets = available_presets()
        show.preset = saved
        self.say(f"saved preset {saved.name} ({result.path})")
