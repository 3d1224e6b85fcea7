"""Value feedback to the controller's LEDs (rings, button lights, motor faders), rate-limited.

A value can change a thousand times a second (an automation, a drag in the operator window);
a USB MIDI controller takes a few thousand messages a second in all and chokes long before. So
each control holds at most one pending update, the latest value wins, and a control is sent at
most `rate_hz` times a second. A sender thread does the sending: the code that changes a
parameter (the show's loop applying commands, the frame worker) only records the new value.

The sender runs as a supervised task. The send function deals with the ports' own failures (a
port unplugged mid-send, see ports.py); anything it raises is a fault: the batch that was being
sent goes back to pending (unless a newer value came meanwhile), the supervisor logs it, raises
an alarm and restarts the thread, and the LEDs catch up.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional

from ..supervise import Supervisor, Task
from .mapping import ABSOLUTE14, Control, Mapping, TRIGGER
from .messages import control_change, control_change_14bit, note_on

Messages = tuple[tuple[int, ...], ...]


def feedback_messages(mapping: Mapping, normalized: float) -> Messages:
    """What to send so `mapping`'s control shows `normalized` (0..1); () for triggers, which
    have no state to show.

    Knobs and encoders get their CC with the value (LED rings take the absolute value on the
    encoder's CC), 14-bit controls their MSB and LSB pair, buttons a note-on or CC with 127 for
    on and 0 for off (note-on velocity 0 turns pad lights off on every controller; some ignore
    note-off).
    """
    if mapping.kind == TRIGGER:
        return ()
    x = min(1.0, max(0.0, normalized))
    c = mapping.control
    if mapping.is_button:
        level = 127 if x >= 0.5 else 0
        if c.message == "note":
            return (note_on(c.channel, c.number, level),)
        return (control_change(c.channel, c.number, level),)
    if mapping.kind == ABSOLUTE14:
        return control_change_14bit(c.channel, c.number, round(x * 16383))
    return (control_change(c.channel, c.number, round(x * 127)),)


SendFn = Callable[[Optional[str], Messages], None]  # (port pattern or None, messages)


class FeedbackSender:
    """Per-control latest-value-wins queue and a thread that sends it at a bounded rate."""

    def __init__(self, send: SendFn, rate_hz: float = 50.0, supervisor: Optional[Supervisor] = None) -> None:
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        self._send = send
        self._interval = 1.0 / rate_hz
        self._supervisor = supervisor if supervisor is not None else Supervisor()
        self._cond = threading.Condition()
        self._pending: dict[Control, Messages] = {}
        self._shown: dict[Control, Messages] = {}  # what the control shows now (sent or set by hand)
        self._last_sent: dict[Control, float] = {}
        self._task: Optional[Task] = None
        self.sent_count = 0

    def start(self) -> None:
        with self._cond:
            if self._task is not None:
                return
            self._task = self._supervisor.spawn("midi-feedback", self._run, label="MIDI LED FEEDBACK")

    def stop(self) -> None:
        with self._cond:
            task, self._task = self._task, None
        if task is not None:
            task.stop()
            with self._cond:
                self._cond.notify_all()
            task.join(timeout=2.0)
        with self._cond:
            self._pending.clear()

    def update(self, control: Control, messages: Messages) -> None:
        """Show `messages` on `control` soon (replacing anything still pending for it)."""
        if not messages:
            return
        with self._cond:
            if self._shown.get(control) == messages:
                self._pending.pop(control, None)
                return
            self._pending[control] = messages
            self._cond.notify()

    def shown_by_hand(self, control: Control, messages: Messages) -> None:
        """The control itself already shows this (a knob the user is turning): do not echo it back,
        which would make motor faders fight the hand."""
        with self._cond:
            self._shown[control] = messages
            self._pending.pop(control, None)

    def forget(self) -> None:
        """The device may have lost its LED state (it was replugged): the next updates go out even
        if equal to what was sent before."""
        with self._cond:
            self._shown.clear()

    def _next_batch(self, stop: threading.Event) -> Optional[list[tuple[Control, Messages]]]:
        """Wait for updates that are due; None when asked to stop."""
        with self._cond:
            while True:
                if stop.is_set():
                    return None
                now = time.monotonic()
                due = [c for c in self._pending if now - self._last_sent.get(c, -1e9) >= self._interval]
                if due:
                    batch = [(c, self._pending.pop(c)) for c in due]
                    for c, msgs in batch:
                        self._last_sent[c] = now
                        self._shown[c] = msgs
                    return batch
                if self._pending:
                    wait = min(self._last_sent[c] + self._interval for c in self._pending) - now
                    self._cond.wait(max(wait, 0.0005))
                else:
                    self._cond.wait(0.25)  # (stop() notifies; the timeout is a second line of defence)

    def _run(self, stop: threading.Event) -> None:
        while True:
            batch = self._next_batch(stop)
            if batch is None:
                return
            for i, (control, msgs) in enumerate(batch):
                try:
                    self._send(control.port, msgs)
                except BaseException:
                    self._give_back(batch[i:])
                    raise
                self.sent_count += 1

    def _give_back(self, unsent: list[tuple[Control, Messages]]) -> None:
        """A send failed: what was not sent is pending again, unless a newer value is already."""
        with self._cond:
            for control, msgs in unsent:
                if self._shown.get(control) == msgs:
                    del self._shown[control]
                self._pending.setdefault(control, msgs)
