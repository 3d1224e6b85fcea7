"""Parameter commands carried out on a ParamStore, and the sink for places without a show.

In the live show every input posts its commands to the show's `CommandQueue` and the main loop
applies them (`apply_param_command` is how a parameter command is applied). Where there is no
show — a test of the MIDI controller alone, a tool that only moves parameters — `ApplyToParams`
stands in for the queue: it applies parameter commands to a `ParamStore` at once, on the
poster's thread, and hands every other command (actions: blackout, preset recall, tap...) to
`other`, if given.

    params = ParamStore([...])
    midi = MidiController(params, post=ApplyToParams(params, other=actions.append))
"""

from __future__ import annotations

from typing import Callable, Optional

from ..motion.params import ParamStore
from .commands import Command, NudgeParam, ResetParam, SetParam, ToggleParam

CommandSink = Callable[[Command], object]  # CommandQueue.post, ApplyToParams, ...


def apply_param_command(params: ParamStore, command: Command) -> bool:
    """Carry out a parameter command (set, nudge, toggle, reset) on `params`.

    Returns False, doing nothing, for any other command. An unknown parameter raises
    `UnknownParameterError` (one line naming it). `SetParam.origin` travels to the store's
    listeners, so MIDI pick-up can tell a knob's own moves from everybody else's.
    """
    if isinstance(command, SetParam):
        if command.normalized:
            params.set_normalized(command.name, command.value, origin=command.origin)
        else:
            params.set(command.name, command.value, origin=command.origin)
    elif isinstance(command, NudgeParam):
        params.nudge_normalized(command.name, command.delta)
    elif isinstance(command, ToggleParam):
        params.toggle(command.name)
    elif isinstance(command, ResetParam):
        params.reset(command.name)
    else:
        return False
    return True


class ApplyToParams:
    """The no-show command sink: parameter commands go straight into `params`, the rest to `other`.

    Not for the live show, which applies every command on its main loop in order; this one
    applies on whichever thread posts (the MIDI input thread), as soon as it is posted.
    """

    def __init__(self, params: ParamStore, other: Optional[CommandSink] = None) -> None:
        self.params = params
        self.other = other

    def __call__(self, command: Command) -> bool:
        if apply_param_command(self.params, command):
            return True
        if self.other is not None:
            self.other(command)
            return True
        return False
