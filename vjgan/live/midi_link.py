"""Connects a MIDI controller to the show: its messages become commands on the show's one path."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from ..control.actions import ActionRegistry
from ..control.clock import ExternalClockSink
from ..control.commands import ACTIONS, action_command
from ..control.midi import MidiController
from ..errors import UserError


def show_actions(show: Any) -> ActionRegistry:
    """Every action of the vocabulary, each posting its command (with the pad's own time)."""
    actions = ActionRegistry()
    for spec in ACTIONS.values():
        def post(call, name=spec.name):
            full = f"{name}:{call.argument}" if call.argument is not None else name
            show.post(action_command(full, t=call.t, source="midi"))

        actions.register(spec.name, post, takes_argument=bool(spec.argument), description=spec.description)
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
