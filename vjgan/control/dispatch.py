"""Runs actions fired by MIDI on a thread of their own, off rtmidi's callback thread.

A preset recall may read a file or rebuild routes; run in the callback it would hold up every
MIDI message behind it (and, with JACK, the audio server's process cycle). The queue is bounded:
a pad hammered faster than actions complete loses its oldest presses, never grows memory.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Optional

from ..errors import UserError
from .actions import ActionRegistry


class ActionDispatcher:
    def __init__(self, registry: Optional[ActionRegistry], report: Callable[[str], None] = lambda line: None,
                 max_pending: int = 64, source: str = "midi") -> None:
        self._registry = registry
        self._report = report
        self._source = source
        self._cond = threading.Condition()
        self._queue: deque[tuple[str, float]] = deque(maxlen=max_pending)
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._reported: set[str] = set()
        self._busy = False

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="vjgan-midi-actions", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout=5.0)
        with self._cond:
            self._thread = None
            self._queue.clear()

    def post(self, name: str, t: float) -> None:
        """Queue action `name` fired at `t` (called on the MIDI thread: returns at once)."""
        with self._cond:
            if len(self._queue) == self._queue.maxlen:
                self._once("overflow", "MIDI actions arrive faster than they run; the oldest are dropped")
            self._queue.append((name, t))
            self._cond.notify()

    def idle(self) -> bool:
        """Nothing queued or running (tests and shutdown wait for this)."""
        with self._cond:
            return not self._queue and not self._busy

    def _once(self, key: str, line: str) -> None:
        if key not in self._reported:
            self._reported.add(key)
            self._report(line)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                name, t = self._queue.popleft()
                self._busy = True
            try:
                if self._registry is None:
                    self._once(f"none:{name}", f"MIDI action '{name}' ignored: no actions are available")
                else:
                    self._registry.invoke(name, t=t, source=self._source)
            except UserError as e:
                self._once(f"user:{name}", f"MIDI action '{name}': {e}")
            except Exception as e:  # an action's own bug must not stop later actions
                self._once(f"error:{name}:{type(e).__name__}", f"MIDI action '{name}' failed: {type(e).__name__}: {e}")
            finally:
                with self._cond:
                    self._busy = False
