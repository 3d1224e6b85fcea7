"""Connects a MIDI controller to the show: its command queue, its supervisor, and MIDI clock."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from ..control.clock import ExternalClockSink
from ..control.midi import MidiController
from ..errors import UserError


def start_midi(show: Any, ports: Sequence[str], mappings: Iterable[Mapping[str, Any]]) -> MidiController | None:
    """Open the named ports (every input when none is named) and load the mappings.

    The controller's commands go to the show's one command queue (`show.post`) and its threads
    run under the show's supervisor, so a fault shows on the
    operator's alarm lines. Ports need not be there yet: a controller plugged in later is found
    and opened, and one that is unplugged mid-show is reported once and reopened when it returns.
    Where the machine has no MIDI system at all and no port was asked for, say so once and play
    without.
    """
    if not ports:
        from ..audio.capture import quiet_stderr
        from ..control.cli import list_midi_ports

        with quiet_stderr():  # ALSA prints its own complaint on every try
            available = list_midi_ports()
        if available.get("error"):
            show.log(f"MIDI unavailable ({available['error']}); playing without a controller")
            return None
    controller = MidiController(show.params, post=show.post, clock=ExternalClockSink(show.audio),
                                supervisor=show.supervisor,
                                inputs=list(ports) or ["*"], report=show.log)
    try:
        controller.load_mappings(list(mappings), where="preset midi map")
    except UserError as e:
        show.log(str(e))  # the map is not loaded (nothing half-applied); the show goes on
    controller.start(require_ports=False)
    return controller
