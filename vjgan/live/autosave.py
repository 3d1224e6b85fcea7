"""The running state (knob positions, learned MIDI map, the preset playing), saved every few
seconds on a thread of its own, and read back at the next start.

Writing is durable (fsync of the file and its folder), and a slow disk can take seconds for
that: on the main thread it froze both windows for as long. Here the main loop only hands over
the newest state (`offer`, a reference swap) and the autosave task writes it.

A disk that fills up is said once, and once more when saving works again, not every 5 s. A
damaged state file (bad bytes, wrong types) is set aside under another name with one line, and the
show starts fresh; what a killed process left half-written (`.running-state.toml.*.tmp`) is
removed at start.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import tomli_w

from ..atomic import atomic_write, remove_stale_temporaries
from ..config import tomllib
from ..handover import LatestSlot

log = logging.getLogger(__name__)

AUTOSAVE_EVERY_S = 5.0


@dataclass(frozen=True)
class RunningState:
    preset: str
    params: Mapping[str, float]
    midi: tuple[Mapping[str, Any], ...] = ()
    layout: Mapping[str, Any] | None = None  # the operator console's window layout

    def to_toml(self) -> str:
        doc: dict[str, Any] = {"preset": self.preset, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                               "params": dict(self.params), "midi": [dict(m) for m in self.midi]}
        if self.layout:
            doc["layout"] = dict(self.layout)
        return tomli_w.dumps(doc)


def read_running_state(path: Path) -> Optional[RunningState]:
    """The state saved by the last show, or None (missing, or damaged: set aside with one line)."""
    removed = remove_stale_temporaries(path.parent, path.name)
    if removed:
        log.info("removed %d half-written autosave file%s a stopped show left behind", removed, "s" * (removed > 1))
    if not path.is_file():
        return None
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        return _state_from(doc)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, TypeError) as e:
        aside = path.with_name(f"{path.stem}.damaged-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
        try:
            path.replace(aside)
            where = f"set aside as {aside.name}"
        except OSError:
            where = "left in place"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        log.warning("the running state in %s is damaged (%s); %s, starting fresh", path, reason, where)
        return None


def _state_from(doc: Any) -> RunningState:
    if not isinstance(doc, dict):
        raise ValueError("not a table")
    preset = doc.get("preset")
    if not isinstance(preset, str):
        raise ValueError("'preset' must be text")
    params = doc.get("params", {})
    if not isinstance(params, dict):
        raise ValueError("'params' must be a table")
    values = {}
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"params.{name} must be a finite number")
        values[str(name)] = float(value)
    midi = doc.get("midi", [])
    if not isinstance(midi, list) or not all(isinstance(m, dict) for m in midi):
        raise ValueError("'midi' must be a list of tables")
    layout = doc.get("layout")
    if layout is not None and not isinstance(layout, dict):
        raise ValueError("'layout' must be a table")
    return RunningState(preset, values, tuple(midi), layout)


class Autosaver:
    """Writes the newest offered state; runs as the supervised "autosave" task."""

    def __init__(self, path: Path, every_s: float = AUTOSAVE_EVERY_S) -> None:
        self.path = path
        self.every_s = every_s
        self._pending: LatestSlot[RunningState] = LatestSlot()
        self._written = 0
        self._wake = threading.Event()
        self._failing = False
        self._guard = threading.Lock()  # the final save at shutdown and the task never write at once
        self.saves = 0

    def offer(self, state: RunningState, now: bool = False) -> None:
        """Hand over the newest state (main loop). `now`: write it at once rather than at the next period."""
        self._pending.publish(state)
        if now:
            self._wake.set()

    def run(self, stop: threading.Event) -> None:
        # The main loop offers a state every period (and at once after a scene change, with `now`);
        # waking a few times a second keeps stopping prompt without writing more often.
        while not stop.is_set():
            if self._wake.wait(0.25):
                self._wake.clear()
            self.write_pending()

    def write_pending(self) -> bool:
        """Write the newest offered state if it was not written yet; True when it is on disk."""
        with self._guard:
            state, seq = self._pending.read()
            if state is None or seq == self._written:
                return True
            try:
                atomic_write(self.path, state.to_toml(), make_folder=True)
            except OSError as e:
                if not self._failing:
                    self._failing = True
                    log.warning("could not autosave the running state to %s: %s (said once; retrying)",
                                self.path, e.strerror or e)
                return False
            self._written = seq
            self.saves += 1
            if self._failing:
                self._failing = False
                log.info("autosave works again (%s)", self.path)
            return True
