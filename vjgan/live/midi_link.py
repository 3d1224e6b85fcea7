"""Connects a MIDI controller to the show: parameters, the named actions, and MIDI clock."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from ..control.actions import (BLACKOUT, FREEZE, NEW_KEYFRAME, NEXT_PRESET, PREVIOUS_PRESET, RECALL_PRESET,
                               TAP_TEMPO, ActionRegistry)
from ..control.clock import ExternalClockSink
from ..control.midi import MidiController
from ..errors import UserError


def show_actions(show: Any) -> ActionRegistry:
    """The show's actions under the names MIDI mappings use (`recall-preset:3`, `tap-tempo`, ...)."""
    actions = ActionRegistry()
    actions.register(NEXT_PRESET, lambda call: show.step_preset(+1))
    actions.register(PREVIOUS_PRESET, lambda call: show.step_preset(-1))
    actions.register(RECALL_PRESET, lambda call: show.recall_preset(call.argument or ""), takes_argument=True)
    actions.register(TAP_TEMPO, lambda call: show.audio.tap(call.t))  # the pad's own time, not when we got to it
    actions.register(BLACKOUT, lambda call: show.invoke("blackout"))
    actions.register(FREEZE, lambda call: show.invoke("freeze"))
    actions.register(NEW_KEYFRAME, lambda call: show.worker.request_keyframe())
    return actions


def start_midi(show: Any, ports: Sequence[str], mappings: Iterable[Mapping[str, Any]]) -> MidiController | None:
    """Open the named ports (every input when none is named) and load the mappings.

    Ports need not be there yet: a controller plugged in later is found and opened, and one that
    is unplugged mid-show is reported once and reopened when it returns. Where the machine has no
    MIDI system at all and no port was asked for, say so once and play without.
    """
    if not ports:
        from ..audio.capture import quiet_stderr
        from ..control.cli import list_midi_ports

        with quiet_stderr():  # ALSA prints its own complaint on every try
            available = list_midi_ports()
        if available.get("error"):
            show.log(f"MIDI unavailable ({available['error']}); playing without a controller")
            return None
    controller = MidiController(show.params, show_actions(show), ExternalClockSink(show.audio),
                                inputs=list(ports) or ["*"], report=show.log)
    try:
        controller.load_mappings(list(mappings), where="preset midi map")
    except UserError as e:
        show.log(str(e))  # the map is not loaded (nothing half-applied); the show goes on
    controller.start(require_ports=False)
    return controller
