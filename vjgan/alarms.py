"""Alarm lines for the operator: what went wrong, shown until somebody has seen it.

A thread that failed and restarted, an audio input that is gone, a generator that stalled:
each raises an alarm under a key ("generator", "audio-lost"...). The HUD and the operator window
show the board's snapshot; an alarm stays up until it is acknowledged (a key, a click, a MIDI pad
or an OSC message: the `acknowledge` command), so a problem that came and went during a loud
passage is still there when the operator looks.

    board.raise_alarm("audio-lost", "AUDIO LOST — reconnecting")   # condition started
    board.clear("audio-lost")                                       # condition over: "(recovered)"
    board.acknowledge()                                             # seen: recovered lines go away

An acknowledged alarm whose condition still holds stays hidden until it clears and comes back.
The board is one immutable tuple swapped under a lock (`handover.LatestSlot`), so readers never
wait on writers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

from .handover import LatestSlot

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Alarm:
    key: str
    text: str
    level: str = ERROR
    raised_at: float = 0.0  # time.monotonic() of the first raise since the last acknowledge
    count: int = 1  # how many times it was raised since then
    active: bool = True  # the condition still holds
    acknowledged: bool = False

    @property
    def shown(self) -> bool:
        return not self.acknowledged

    def line(self) -> str:
        text = self.text if self.active else f"{self.text} (recovered)"
        return text if self.count <= 1 or str(self.count) in self.text else f"{text} ×{self.count}"


class AlarmBoard:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._guard = threading.Lock()
        self._alarms: dict[str, Alarm] = {}
        self.slot: LatestSlot[tuple[Alarm, ...]] = LatestSlot(())

    def _publish_locked(self) -> None:
        self.slot.publish(tuple(self._alarms.values()))

    def raise_alarm(self, key: str, text: str, level: str = ERROR) -> None:
        with self._guard:
            old = self._alarms.get(key)
            if old is None or (old.acknowledged and not old.active):
                alarm = Alarm(key, text, level, self._clock())
            elif old.acknowledged:  # still the same ongoing condition the operator has seen
                alarm = replace(old, text=text, level=level)
            else:
                alarm = replace(old, text=text, level=level, count=old.count + (0 if old.active else 1), active=True)
            if alarm == old:
                return
            self._alarms[key] = alarm
            self._publish_locked()

    def count(self, key: str) -> None:
        """Raise `key` once more (a repeated event, not an ongoing condition)."""
        with self._guard:
            old = self._alarms.get(key)
            if old is not None and not old.acknowledged:
                self._alarms[key] = replace(old, count=old.count + 1)
                self._publish_locked()

    def clear(self, key: str) -> None:
        """The condition behind `key` is over; the line stays (marked recovered) until acknowledged."""
        with self._guard:
            old = self._alarms.get(key)
            if old is None or not old.active:
                return
            if old.acknowledged:
                del self._alarms[key]
            else:
                self._alarms[key] = replace(old, active=False)
            self._publish_locked()

    def acknowledge(self, key: Optional[str] = None) -> int:
        """Mark one alarm (or all) as seen; returns how many lines that took off the screen."""
        with self._guard:
            hidden = 0
            for k in [key] if key is not None else list(self._alarms):
                alarm = self._alarms.get(k)
                if alarm is None or alarm.acknowledged:
                    continue
                hidden += 1
                if alarm.active:
                    self._alarms[k] = replace(alarm, acknowledged=True)
                else:
                    del self._alarms[k]
            if hidden:
                self._publish_locked()
            return hidden

    def shown(self) -> tuple[Alarm, ...]:
        """The lines to show, oldest first."""
        alarms = self.slot.latest() or ()
        return tuple(sorted((a for a in alarms if a.shown), key=lambda a: a.raised_at))

    def get(self, key: str) -> Optional[Alarm]:
        with self._guard:
            return self._alarms.get(key)
