"""Incoming MIDI to commands and the beat clock: the MIDI input thread's whole job.

`MidiRouter.handle(port, bytes, t)` runs on the MIDI input thread (see ports.py; a message
injected through `MidiController.handle_message` runs on its caller's thread, so calls may
overlap). It decodes, looks the control up in the current mapping table and turns the message
into commands for the show (vjgan.control.commands), stamped with the message's time and
posted to the command sink (the show's `CommandQueue.post`):

- an absolute knob that has taken over: `SetParam(normalized=True, origin=<the control>)`;
- a relative encoder: `NudgeParam` (ticks add up in the queue, so a burst of ticks between two
  turns of the show's loop is never computed from a stale value);
- a toggle pad: `ToggleParam`; a momentary pad: `SetParam(coalesce=False)` for press and release;
- a trigger pad: the command its action names (`action_command`), with the pad's time.

The clock goes to the tracker and the clock sink. MIDI learn happens here too: while a learn
request is pending, the next usable message becomes a mapping.

Pick-up takeover compares a knob with the parameter's applied value, which the show updates
when it applies the commands (up to one turn of its loop after the knob moved). The store's
listeners tell the router every applied change with its `origin`: a change from anywhere else
makes the knob pick up again; the knob's own move, once applied, means the knob drives the
value (see `on_param_changed`).

The router's own state (takeover, 14-bit halves, button edges, learn) sits under one lock held
for microseconds. Nothing here blocks or reports more than once per distinct problem. A bad
mapping (a parameter that is not there) is one report line; any other exception propagates to
the input thread, whose supervisor logs it, raises an alarm and restarts the thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Callable, Optional

from ..errors import UserError
from ..motion.params import ParamStore
from .apply import CommandSink
from .clock import ClockSink, ClockState, ClockTracker
from .commands import NudgeParam, SetParam, ToggleParam, action_command, check_action
from .mapping import (ABSOLUTE, ABSOLUTE14, BUTTON_KINDS, CC14_LSB_OFFSET, KINDS, MOMENTARY, RELATIVE_ENCODING,
                      RELATIVE_KINDS, TAKEOVER_MODES, TOGGLE, TRIGGER, Control, Mapping, MappingError, MappingTable,
                      stable_port_name)
from .messages import (CC14_MAX_MSB_NUMBER, Clock, Continue, ControlChange, NoteOff, NoteOn, Start, Stop, decode,
                       relative_delta)
from .takeover import absolute_move

# After learning CC n (n < 32) as a plain knob, CC n + 32 from the same port and channel within
# this time means the knob is 14-bit (controllers send MSB and LSB back to back).
LEARN_14BIT_WINDOW_S = 0.05
CLOCK_SOURCE_TIMEOUT_S = 0.5  # another port's clock is ignored until the current one is silent this long


@dataclass(frozen=True)
class LearnRequest:
    """What the next control moved will be bound to."""

    target: str
    action: bool = False
    kind: Optional[str] = None  # None: chosen from the message (knob: absolute; pad: trigger/momentary/toggle)
    step: float = 1.0 / 128.0
    takeover: str = "pickup"
    on_learned: Optional[Callable[[Mapping], None]] = None


@dataclass(frozen=True)
class MidiActivity:
    """For the operator window's MIDI activity light."""

    count: int  # messages received (clock included)
    last_time: Optional[float]  # perf_counter seconds
    last_port: Optional[str]
    last_message: tuple[int, ...]


@dataclass
class _Knob:
    position: Optional[float] = None  # last normalised position of an absolute control
    engaged: bool = False  # the control currently drives its parameter (takeover done)
    # Takeover was armed on purpose (new mappings, a bank switch): a move of the knob's that is
    # applied late must not make it drive again; only passing the value does.
    armed: bool = False
    # `scale` mode before takeover: the value last posted and not yet applied, so that several
    # moves between two turns of the show's loop add up instead of each starting from the
    # applied value.
    scaled: Optional[float] = None


MIDI = "midi"  # the commands' source


class MidiRouter:
    def __init__(self, params: ParamStore, *, post: CommandSink, clock: Optional[ClockSink] = None,
                 report: Callable[[str], None] = lambda line: None,
                 open_inputs: Callable[[], list[str]] = lambda: [],
                 on_table_changed: Callable[[], None] = lambda: None) -> None:
        self.params = params
        self.clock_sink = clock
        self.clock = ClockTracker()
        self._post = post
        self._report = report
        self._open_inputs = open_inputs
        self._on_table_changed = on_table_changed
        self._lock = threading.RLock()  # re-entered when ParamStore calls our listener from inside set()
        self._table = MappingTable()
        self._knobs: dict[Control, _Knob] = {}
        self._cc14: dict[tuple[str, Control], tuple[Optional[int], int]] = {}  # (port, control) -> (msb, lsb)
        self._pressed: dict[tuple[str, Control], bool] = {}
        self._learn: Optional[LearnRequest] = None
        self._followup: Optional[tuple[Mapping, str, float, Optional[Callable[[Mapping], None]]]] = None
        self._swallow: set[tuple[str, str, int, int]] = set()  # releases of the press that was learned
        self._reported: set[str] = set()
        self._clock_port: Optional[str] = None
        self._clock_last = -1e9
        self._activity = MidiActivity(0, None, None, ())

    # --- the table ----------------------------------------------------------------------------------

    @property
    def table(self) -> MappingTable:
        return self._table

    def set_table(self, table: MappingTable) -> None:
        """Replace every mapping (a preset recall): all absolute controls go back to pick-up."""
        with self._lock:
            self._table = table
            for knob in self._knobs.values():
                knob.engaged, knob.armed, knob.scaled = False, True, None
            self._followup = None
        self._on_table_changed()

    def add_mapping(self, mapping: Mapping) -> None:
        """Bind one control (moving it off whatever it was bound to); takeover state is kept."""
        with self._lock:
            self._table = self._table.with_mapping(mapping)
        self._on_table_changed()

    def remove_mappings(self, *, target: Optional[str] = None, control: Optional[Control] = None) -> int:
        with self._lock:
            before = len(self._table)
            self._table = self._table.without(target=target, control=control)
            removed = before - len(self._table)
        if removed:
            self._on_table_changed()
        return removed

    def arm_takeover(self, params: Optional[set[str]] = None) -> None:
        """Absolute controls (of `params`, or all) must pick their value up again."""
        with self._lock:
            for m in self._table:
                if m.is_absolute and (params is None or m.param in params):
                    knob = self._knobs.setdefault(m.control, _Knob())
                    knob.engaged, knob.armed, knob.scaled = False, True, None

    def takeover_state(self, control: Control) -> tuple[Optional[float], bool]:
        """(last normalised knob position or None, engaged) for the operator window."""
        with self._lock:
            knob = self._knobs.get(control)
            return (None, False) if knob is None else (knob.position, knob.engaged)

    # --- learn ----------------------------------------------------------------------------------------

    def learn(self, request: LearnRequest) -> None:
        with self._lock:
            self._learn = request
            self._followup = None

    def cancel_learn(self) -> None:
        with self._lock:
            self._learn = None

    @property
    def learning(self) -> Optional[LearnRequest]:
        return self._learn

    def _learn_kind(self, req: LearnRequest, message: str, number: int) -> Optional[str]:
        if req.action:
            return TRIGGER
        if req.kind is not None:
            kind = req.kind
            if message == "note" and kind not in BUTTON_KINDS:
                return None  # a relative/absolute request: wait for a knob
            if kind == ABSOLUTE14 and number > CC14_MAX_MSB_NUMBER:
                return None  # wait for the MSB half
            return kind
        try:
            toggle = self.params.spec(req.target).toggle
        except UserError:
            toggle = False
        if toggle:
            return TOGGLE
        return ABSOLUTE if message == "cc" else MOMENTARY

    def _bind(self, port: str, message: str, channel: int, number: int, value: int, t: float) -> list:
        """Make a mapping from the learn request and this message (lock held). Returns deferred calls."""
        req = self._learn
        assert req is not None
        kind = self._learn_kind(req, message, number)
        if kind is None:
            return []
        # With one input port open, "any port" survives renaming; with several, record which.
        pattern = stable_port_name(port) if len(self._open_inputs()) > 1 else None
        try:
            mapping = Mapping(Control(message, number, channel, pattern), kind,
                              param=None if req.action else req.target, action=req.target if req.action else None,
                              step=req.step, takeover=req.takeover)
        except MappingError as e:
            self._learn = None
            line = f"MIDI learn failed: {e}"  # (`e` is gone once the except block ends)
            return [lambda: self._report(line)]
        self._table = self._table.with_mapping(mapping)
        self._learn = None
        key = (port, message, channel, number)
        if message == "note" or kind in BUTTON_KINDS:
            self._swallow.add(key)  # the learning press must not fire (or set) on its release
        if kind == ABSOLUTE:
            self._knobs[mapping.control] = _Knob(position=value / 127.0, engaged=False)
            if req.kind is None and number <= CC14_MAX_MSB_NUMBER:
                self._followup = (mapping, port, t + LEARN_14BIT_WINDOW_S, req.on_learned)
        calls = [self._on_table_changed, lambda: self._report(f"MIDI learn: {mapping.describe()}")]
        if req.on_learned is not None:
            calls.append(lambda: req.on_learned(mapping))
        return calls

    def _learn_followup(self, port: str, msg: ControlChange, t: float) -> tuple[bool, list]:
        """Upgrade a just-learned knob to 14-bit if its LSB follows (lock held)."""
        mapping, fport, deadline, on_learned = self._followup  # type: ignore[misc]
        self._followup = None
        c = mapping.control
        if (port == fport and t <= deadline and msg.channel == c.channel
                and msg.number == c.number + CC14_LSB_OFFSET and mapping in self._table.mappings):
            upgraded = replace(mapping, kind=ABSOLUTE14)
            self._table = self._table.with_mapping(upgraded)
            msb = round((self._knobs.get(c, _Knob()).position or 0.0) * 127)
            self._cc14[(port, c)] = (msb, msg.value)
            self._knobs[c] = _Knob(position=((msb << 7) | msg.value) / 16383.0, engaged=False)
            calls = [self._on_table_changed, lambda: self._report(f"MIDI learn: {upgraded.describe()}")]
            if on_learned is not None:
                calls.append(lambda: on_learned(upgraded))
            return True, calls
        return False, []

    # --- the hot path -----------------------------------------------------------------------------------

    def activity(self) -> MidiActivity:
        return self._activity

    def clock_state(self, now: float) -> ClockState:
        return self.clock.state(now)

    def handle(self, port: str, data: list, t: float) -> None:
        """One complete MIDI message `data` from input `port`, received at `t` (perf_counter s)."""
        self._activity = MidiActivity(self._activity.count + 1, t, port, tuple(data))
        msg = decode(data)
        if isinstance(msg, ControlChange):
            self._on_cc(port, msg, t)
        elif isinstance(msg, NoteOn):
            self._on_note(port, msg.channel, msg.note, True, t)
        elif isinstance(msg, NoteOff):
            self._on_note(port, msg.channel, msg.note, False, t)
        elif isinstance(msg, Clock):
            self._on_clock(port, t)
        elif isinstance(msg, (Start, Stop, Continue)):
            self._on_transport(port, msg, t)

    def _run(self, calls: list) -> None:
        for call in calls:
            try:
                call()
            except Exception as e:
                self._report_once(f"callback:{e}", f"MIDI learn callback failed: {e}")

    def _on_cc(self, port: str, msg: ControlChange, t: float) -> None:
        with self._lock:
            calls = self._on_cc_locked(port, msg, t)
        self._run(calls)  # learn notifications run after the lock is released

    def _on_cc_locked(self, port: str, msg: ControlChange, t: float) -> list:
        if self._followup is not None:
            consumed, calls = self._learn_followup(port, msg, t)
            if consumed:
                return calls
        if self._learn is not None:
            calls = self._bind(port, "cc", msg.channel, msg.number, msg.value, t)
            if calls:
                return calls
        swallow_key = (port, "cc", msg.channel, msg.number)
        if swallow_key in self._swallow:
            self._swallow.discard(swallow_key)
            if msg.value < 64:
                return []
        for mapping, is_lsb in self._table.lookup("cc", msg.channel, msg.number, port):
            try:
                self._apply_cc(port, mapping, is_lsb, msg.value, t)
            except UserError as e:  # a parameter that is not there (yet): the show goes on
                self._report_once(f"target:{mapping.target}", f"MIDI mapping {mapping.describe()} ignored: {e}")
        return []

    def _on_note(self, port: str, channel: int, note: int, on: bool, t: float) -> None:
        with self._lock:
            calls = self._on_note_locked(port, channel, note, on, t)
        self._run(calls)

    def _on_note_locked(self, port: str, channel: int, note: int, on: bool, t: float) -> list:
        if self._learn is not None and on:
            calls = self._bind(port, "note", channel, note, 127, t)
            if calls:
                return calls
        key = (port, "note", channel, note)
        if key in self._swallow:
            self._swallow.discard(key)
            if not on:
                return []
        for mapping, _ in self._table.lookup("note", channel, note, port):
            try:
                self._button(mapping, on, t)
            except UserError as e:
                self._report_once(f"target:{mapping.target}", f"MIDI mapping {mapping.describe()} ignored: {e}")
        return []

    def _apply_cc(self, port: str, m: Mapping, is_lsb: bool, value: int, t: float) -> None:
        if m.kind == ABSOLUTE:
            self._absolute(m, value / 127.0, t)
        elif m.kind == ABSOLUTE14:
            key = (port, m.control)
            msb, lsb = self._cc14.get(key, (None, 0))
            if is_lsb:
                if msb is None:
                    return  # an LSB without its MSB means nothing yet
                lsb = value
            else:
                # MIDI 1.0: a new MSB resets the LSB to 0; the sender follows with the LSB if non-zero.
                msb, lsb = value, 0
            self._cc14[key] = (msb, lsb)
            self._absolute(m, ((msb << 7) | lsb) / 16383.0, t)
        elif m.kind in RELATIVE_KINDS:
            delta = relative_delta(value, RELATIVE_ENCODING[m.kind])
            if delta:
                self.params.spec(m.param)  # an unknown parameter is reported here, once, not by the show
                self._post(NudgeParam(m.param, delta * m.step, t=t, source=MIDI))
        else:
            key = (port, m.control)
            pressed = value >= 64
            was = self._pressed.get(key, False)
            self._pressed[key] = pressed
            if pressed != was:
                self._button(m, pressed, t)

    def _absolute(self, m: Mapping, position: float, t: float) -> None:
        knob = self._knobs.setdefault(m.control, _Knob())
        value = self.params.get_normalized(m.param)
        if knob.scaled is not None and not knob.engaged:
            value = knob.scaled
        result = absolute_move(m.takeover, knob.position, position, value, knob.engaged)
        knob.position = position
        knob.engaged = result.engaged
        if result.engaged:
            knob.armed, knob.scaled = False, None
        if result.value is None:
            return
        if result.engaged:
            # The knob drives the value: its own move, which the show applies with this origin.
            self._post(SetParam(m.param, result.value, normalized=True, origin=m.control, t=t, source=MIDI))
        else:
            # `scale` mode closing in on the value: the knob does not drive it yet.
            knob.scaled = result.value
            self._post(SetParam(m.param, result.value, normalized=True, t=t, source=MIDI))

    def _button(self, m: Mapping, pressed: bool, t: float) -> None:
        if m.kind == TRIGGER:
            if pressed:
                self._post(action_command(m.action, t=t, source=MIDI))
            return
        self.params.spec(m.param)
        if m.kind == MOMENTARY:
            # Press and release both count, even between two turns of the show's loop.
            self._post(SetParam(m.param, 1.0 if pressed else 0.0, normalized=True, coalesce=False, t=t, source=MIDI))
        elif m.kind == TOGGLE and pressed:
            self._post(ToggleParam(m.param, t=t, source=MIDI))

    def on_param_changed(self, name: str, value: float, origin: object = None) -> None:
        """ParamStore listener, called as changes are applied. A value moved by anything but an
        absolute control itself (a preset, the keyboard, another control) leaves that control's
        knob behind: it must pick up again. The knob's own move, applied, means knob and value
        agree: it drives the value (this matters when another change was applied in between,
        while the knob's move was still queued; without it the knob would sit on the value it
        set itself and wait to pass through it)."""
        mappings = self._table.for_param(name)
        if not mappings:
            return
        with self._lock:
            for m in mappings:
                if not m.is_absolute:
                    continue
                knob = self._knobs.get(m.control)
                if knob is None:
                    continue
                if origin == m.control:
                    if not knob.armed:
                        knob.engaged = True
                else:
                    knob.engaged, knob.scaled = False, None

    # --- clock ---------------------------------------------------------------------------------------------

    def _clock_from(self, port: str, t: float) -> bool:
        """Only one port drives the clock; another takes over when the first has gone quiet."""
        if self._clock_port != port and t - self._clock_last <= CLOCK_SOURCE_TIMEOUT_S:
            return False
        if self._clock_port != port and self._clock_port is not None:
            self._report(f"MIDI clock now from '{port}'")
        self._clock_port = port
        self._clock_last = t
        return True

    def _on_clock(self, port: str, t: float) -> None:
        if not self._clock_from(port, t):
            return
        self.clock.tick(t)
        if self.clock_sink is not None:
            try:
                self.clock_sink.clock_tick(t)
            except Exception as e:
                self._report_once(f"clock:{e}", f"MIDI clock sink failed: {e}")

    def _on_transport(self, port: str, msg: object, t: float) -> None:
        if self._clock_port not in (None, port) and t - self._clock_last <= CLOCK_SOURCE_TIMEOUT_S:
            return
        sink = self.clock_sink
        try:
            if isinstance(msg, Start):
                self.clock.start(t)
                if sink is not None:
                    sink.clock_start(t)
            elif isinstance(msg, Stop):
                self.clock.stop(t)
                if sink is not None:
                    sink.clock_stop(t)
            else:
                # Continue: the transport resumes where it stopped; the next pulses drive the clock again.
                self.clock.continue_(t)
        except Exception as e:
            self._report_once(f"clock:{e}", f"MIDI clock sink failed: {e}")

    def _report_once(self, key: str, line: str) -> None:
        if key not in self._reported:
            self._reported.add(key)
            self._report(line)


def validate_learn_request(params: ParamStore, req: LearnRequest) -> None:
    """Raise a `UserError` line if `req` could never produce a valid mapping."""
    if req.action:
        check_action(req.target)  # the show's vocabulary (vjgan.control.commands.ACTIONS)
        if req.kind not in (None, TRIGGER):
            raise MappingError(f"MIDI learn: an action is bound with kind 'trigger' (got {req.kind!r})")
    else:
        params.spec(req.target)  # UnknownParameterError names it
        if req.kind is not None and (req.kind not in KINDS or req.kind == TRIGGER):
            allowed = ", ".join(k for k in KINDS if k != TRIGGER)
            raise MappingError(f"MIDI learn: kind {req.kind!r} is not one of {allowed}")
    if isinstance(req.step, bool) or not isinstance(req.step, (int, float)) or not 0.0 < req.step <= 1.0:
        raise MappingError(f"MIDI learn: step must be a number in (0, 1] (got {req.step!r})")
    if req.takeover not in TAKEOVER_MODES:
        raise MappingError(f"MIDI learn: takeover {req.takeover!r} is not one of {', '.join(TAKEOVER_MODES)}")
