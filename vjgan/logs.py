"""The one logging path: every module logs through `logging`; this sets where it goes.

    setup_logging()                 # once, in the command line's main()
    log = logging.getLogger(__name__)
    log.info("audio: %s", name)     # the operator sees "vjgan: audio: ..." on stderr

Three places, one stream of records:
- stderr, one line per event ("vjgan: ..."), for the person at the terminal;
- a log file in the user's data folder (`logs/vjgan.log`, rotated), with time, thread and
  tracebacks: the file an operator can send after a show;
- a bounded tail in memory (`LOG_TAIL`), which the operator console shows.

`RateLimitedLog` keeps a flood (a MIDI storm, a stream of bad OSC messages, samples that keep
arriving as NaN) to one line per interval with a count of what it held back.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .paths import data_dir

ROOT = "vjgan"
LOG_FILE_NAME = "vjgan.log"
LOG_FILE_BYTES = 2 * 1024 * 1024
LOG_FILE_BACKUPS = 3
TAIL_LINES = 500


@dataclass(frozen=True)
class LogLine:
    at: float  # time.time()
    level: int
    text: str


class LogTail(logging.Handler):
    """The newest log lines, for the operator's log pane (bounded; reading never blocks long)."""

    def __init__(self, lines: int = TAIL_LINES) -> None:
        super().__init__(logging.INFO)
        self._lines: deque[LogLine] = deque(maxlen=lines)
        self._sequence = 0
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            text = str(record.msg)
        with self._guard:
            self._lines.append(LogLine(record.created, record.levelno, text))
            self._sequence += 1

    def snapshot(self) -> tuple[tuple[LogLine, ...], int]:
        with self._guard:
            return tuple(self._lines), self._sequence


LOG_TAIL = LogTail()
# Attached at import, so the operator's log pane has the lines of any show, however it was started.
logging.getLogger(ROOT).addHandler(LOG_TAIL)


class _Stderr(logging.StreamHandler):
    """stderr as it is when a line is written (an embedding or a test may swap sys.stderr)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def log_file_path() -> Path:
    return data_dir() / "logs" / LOG_FILE_NAME


def setup_logging(*, verbose: bool = False, log_file: bool = True) -> Optional[Path]:
    """Route vjgan's records to stderr, the log file and the tail. Returns the log file's path
    (None when it could not be opened: a read-only home must not stop the show)."""
    root = logging.getLogger(ROOT)
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    console = _Stderr()
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(logging.Formatter("vjgan: %(message)s"))
    root.addHandler(console)
    root.addHandler(LOG_TAIL)
    path: Optional[Path] = None
    if log_file:
        try:
            path = log_file_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            to_file = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_FILE_BYTES,
                                                           backupCount=LOG_FILE_BACKUPS, encoding="utf-8")
            to_file.setLevel(logging.DEBUG)
            to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"))
            root.addHandler(to_file)
        except OSError as e:
            path = None
            root.warning("no log file (%s); logging to the terminal only", e)
    # Libraries that log under their own names (PyAV, python-osc...) stay quiet unless they warn.
    logging.getLogger().setLevel(logging.WARNING)
    return path


class RateLimitedLog:
    """At most one line per `interval_s` per key; the next line says how many were held back."""

    def __init__(self, logger: logging.Logger, interval_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._interval = interval_s
        self._clock = clock
        self._guard = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def __call__(self, key: str, message: str, *, level: int = logging.WARNING) -> bool:
        """Log `message` unless `key` logged within the interval; True when it was logged."""
        now = self._clock()
        with self._guard:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            held = self._held.pop(key, 0)
            self._last[key] = now
        suffix = f" ({held} more like this since the last report)" if held else ""
        self._logger.log(level, "%s%s", message, suffix)
        return True

    def held(self, key: str) -> int:
        with self._guard:
            return self._held.get(key, 0)
