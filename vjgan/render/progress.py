"""The progress line on stderr: frames done, speed, multiple of real time, time left.

On a terminal one line is rewritten in place a few times a second; in a log (stderr not a
terminal: CI, a pipe, a cluster job) a plain line is appended every few seconds instead, so the
log stays readable.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, TextIO

BAR_WIDTH = 24


def format_clock(seconds: float) -> str:
    """1:05, 1:02:03 — the way a VJ reads a track length."""
    if seconds != seconds or seconds == float("inf"):
        return "--:--"
    s = int(round(max(0.0, seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_progress(done: int, total: int, elapsed_s: float, video_fps: float, bar: bool = True) -> str:
    """One status line; pure, so tests pin its content."""
    total = max(total, 1)
    fraction = min(1.0, done / total)
    rate = done / elapsed_s if elapsed_s > 0 and done > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else float("inf")
    parts = []
    if bar:
        filled = int(round(fraction * BAR_WIDTH))
        parts.append("[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]")
    parts.append(f"{done}/{total} frames ({fraction * 100:.0f}%)")
    parts.append(f"{rate:.1f} fps" if rate else "-- fps")
    parts.append(f"{rate / video_fps:.2f}x real time" if rate else "--x real time")
    parts.append(f"ETA {format_clock(eta)}")
    return "render " + "  ".join(parts)


class Progress:
    """Call update() as often as you like (any thread); it prints at its own pace."""

    def __init__(self, total: int, video_fps: float, stream: TextIO | None = None, enabled: bool = True,
                 clock: Callable[[], float] = time.perf_counter, interval_s: float | None = None) -> None:
        self.total = total
        self.video_fps = video_fps
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.clock = clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = interval_s if interval_s is not None else (0.25 if self.tty else 5.0)
        self.started = clock()
        self._last = -float("inf")
        self._width = 0
        self._lock = threading.Lock()  # the encoder thread updates, the main thread writes messages

    def restart(self) -> None:
        """Count speed and time left from now (after a catch-up that rendered nothing)."""
        self.started = self.clock()

    def update(self, done: int, force: bool = False) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._update(done, force)

    def _update(self, done: int, force: bool) -> None:
        now = self.clock()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        line = format_progress(done, self.total, now - self.started, self.video_fps, bar=self.tty)
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (the progress line is redrawn below it on the next update)."""
        with self._lock:
            self._message(text)

    def _message(self, text: str) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
            self._last = -float("inf")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self, done: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._update(done, True)
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()
            self._width = 0
