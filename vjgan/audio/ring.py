"""The hand-over between the PortAudio callback and the capture thread.

One producer (the audio callback) and one consumer (the capture thread). The callback does one
copy into a preallocated ring and records when its block reached the ADC; it never allocates,
never blocks on a lock the consumer holds, and never analyses: under Python's interpreter lock
every microsecond spent there is stolen from the thread that must keep up. The counters are plain
integers that only one side writes, and CPython assigns them atomically, so no lock is needed.
"""

from __future__ import annotations

import threading
from typing import Optional

import numpy as np


class RingBuffer:
    def __init__(self, capacity: int, channels: int, rate: int):
        if capacity <= 0 or channels <= 0:
            raise ValueError("capacity and channels must be positive")
        self.capacity = int(capacity)
        self.channels = int(channels)
        self.rate = int(rate)
        self._buf = np.zeros((self.capacity, self.channels), dtype=np.float32)
        self._written = 0  # frames ever written (producer only)
        self._read = 0  # frames ever consumed (consumer only)
        # (index of the first frame of the newest block, its ADC time): one tuple, swapped whole,
        # so the consumer never sees an index from one block with the time of another.
        self._stamp: tuple[int, float] = (0, 0.0)
        self._ready = threading.Event()
        self.overruns = 0  # consumer fell a whole ring behind (frames were lost)

    # --- producer (audio callback) ---------------------------------------------------------------

    def write(self, block: np.ndarray, adc_time: float) -> None:
        """Copy `block` (frames x channels, or frames for mono) in; `adc_time` is its first frame's."""
        n = block.shape[0]
        w = self._written
        if n > self.capacity:  # cannot happen with sane block sizes; keep the newest
            block = block[-self.capacity :]
            adc_time += (n - self.capacity) / self.rate
            w += n - self.capacity
            n = self.capacity
        i = w % self.capacity
        end = i + n
        data = block.reshape(n, -1) if block.ndim == 1 else block
        if end <= self.capacity:
            self._buf[i:end] = data
        else:
            k = self.capacity - i
            self._buf[i:] = data[:k]
            self._buf[: n - k] = data[k:]
        self._stamp = (w, adc_time)
        self._written = w + n
        self._ready.set()

    # --- consumer (capture thread) ---------------------------------------------------------------

    @property
    def written(self) -> int:
        return self._written

    def available(self) -> int:
        return self._written - self._read

    def wait(self, timeout: float) -> bool:
        """Sleep until the producer writes something (or `timeout`); True if it did."""
        ok = self._ready.wait(timeout)
        self._ready.clear()
        return ok

    def read(self, n: int, max_behind: Optional[int] = None) -> Optional[tuple[np.ndarray, float]]:
        """The next `n` frames and the ADC time of the last one, or None if fewer are buffered.

        If more than `max_behind` frames are waiting (the consumer was starved), the oldest are
        skipped so the analysis stays live: a late hop is worth less than a current one.
        """
        w = self._written
        behind = w - self._read
        # Frames older than this may be overwritten by the block being written while we copy.
        safe = self.capacity - self.capacity // 4
        limit = safe if max_behind is None else min(max_behind, safe)
        if behind > limit:
            self.overruns += 1
            self._read = w - limit
            behind = limit
        if behind < n:
            return None
        start = self._read
        i = start % self.capacity
        end = i + n
        if end <= self.capacity:
            out = self._buf[i:end].copy()
        else:
            out = np.concatenate((self._buf[i:], self._buf[: end - self.capacity]))
        self._read = start + n
        s_index, s_time = self._stamp
        last_adc = s_time + (start + n - 1 - s_index) / self.rate
        return out, last_adc

    def reset(self) -> None:
        """Forget buffered frames (after a reconnect the old ones are stale)."""
        self._read = self._written
