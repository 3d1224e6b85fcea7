"""The one way threads meet in vjgan: a slot holding the newest immutable value.

A producer publishes a new reference; consumers read whatever is newest. Nobody waits on anybody
in the hot path and nothing queues up: an old value nobody read is simply dropped.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A single reference swapped under a lock, with a sequence number so readers can tell news."""

    def __init__(self, initial: T | None = None) -> None:
        self._lock = threading.Lock()
        self._value: T | None = initial
        self._sequence = 0 if initial is None else 1
        self._changed = threading.Condition(self._lock)

    def publish(self, value: T) -> int:
        with self._lock:
            self._value = value
            self._sequence += 1
            self._changed.notify_all()
            return self._sequence

    def read(self) -> tuple[T | None, int]:
        """(newest value, its sequence number); sequence 0 means nothing was published yet."""
        with self._lock:
            return self._value, self._sequence

    def latest(self) -> T | None:
        with self._lock:
            return self._value

    def wait_newer(self, sequence: int, timeout: float) -> tuple[T | None, int]:
        """Block up to `timeout` s for something newer than `sequence` (for idle consumers, not the hot path)."""
        with self._lock:
            if self._sequence <= sequence:
                self._changed.wait(timeout)
            return self._value, self._sequence
