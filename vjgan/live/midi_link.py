"""Connects a MIDI controller to the show: its command queue, its supervisor, and MIDI clock."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

from ..control.apply import CommandSink, apply_param_command
from ..control.clock import ExternalClockSink
from ..control.commands import Blackout, Command, Freeze, NewKeyframe, RecallPreset, StepPreset, Tap
from ..control.midi import MidiController
from ..errors import UserError
from ..supervise import Supervisor


def _interim_show_sink(show: Any) -> CommandSink:
    """For a show that does not own a CommandQueue yet: carry each command out at once, on the
    MIDI input thread, through the show's own methods (as MIDI actions were before). Goes when the
    show's main loop drains a CommandQueue (`show.commands`)."""

    def post(command: Command) -> bool:
        try:
            if apply_param_command(show.params, command):
                return True
            if isinstance(command, StepPreset):
                show.step_preset(command.direction)
            elif isinstance(command, RecallPreset):
                show.recall_preset(command.which)
            elif isinstance(command, Tap):
                show.audio.tap(command.t)  # the pad's own time, not when we got to it
            elif isinstance(command, Blackout):
                show.invoke("blackout")
            elif isinstance(command, Freeze):
                show.invoke("freeze")
            elif isinstance(command, NewKeyframe):
                show.worker.request_keyframe()
            else:
                show.log(f"MIDI: {type(command).__name__} is not available in this show")
                return False
        except UserError as e:
            show.log(f"MIDI: {e}")
            return False
        return True

    return post


def start_midi(show: Any, ports: Sequence[str], mappings: Iterable[Mapping[str, Any]], *,
               post: Optional[CommandSink] = None, supervisor: Optional[Supervisor] = None) -> MidiController | None:
    """Open the named ports (every input when none is named) and load the mappings.

    The controller's commands go to `post` (default: the show's command queue, `show.commands`)
    and its threads run under `supervisor` (default: `show.supervisor`), so a fault shows on the
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
    if post is None:
        queue = getattr(show, "commands", None)
        post = queue.post if queue is not None else _interim_show_sink(show)
    if supervisor is None:
        supervisor = getattr(show, "supervisor", None)
    controller = MidiController(show.params, post=post, clock=ExternalClockSink(show.audio), supervisor=supervisor,
                                inputs=list(ports) or ["*"], report=show.log)
    try:
        controller.load_mappings(list(mappings), where="preset midi map")
    except UserError as e:
        show.log(str(e))  # the map is not loaded (nothing half-applied); the show goes on
    controller.start(require_ports=False)
    return controller
