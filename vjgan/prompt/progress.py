"""The search's progress on stderr: steps done, round, best score so far. On a terminal a bar
redraws in place (tqdm, which comes with open_clip); in a log (CI, a pipe) a plain line is
written every few seconds instead."""

from __future__ import annotations

import math
import sys
import time

from .search import SearchProgress


def describe(p: SearchProgress) -> str:
    """'round 2/4 optimise  score 0.284 (start 0.231)' — pure, so tests pin it."""
    if math.isnan(p.score):
        return "scoring random latents"
    if math.isnan(p.score_start):
        return f"scoring random latents  best {p.score:.3f}"
    where = "done" if p.phase == "done" else f"round {p.round}/{p.rounds} {p.phase}"
    return f"{where}  score {p.score:.3f} (start {p.score_start:.3f})"


class SearchBar:
    """Shown from the first step on (a keyframe taken from the cache shows nothing)."""

    LOG_INTERVAL_S = 5.0

    def __init__(self, prompt: str, total: int, label: str = "", enabled: bool = True) -> None:
        short = prompt if len(prompt) <= 32 else prompt[:31] + "…"
        self._title = f"{label + ' ' if label else ''}\"{short}\""
        self._total = total
        self._enabled = enabled
        self._tty = sys.stderr.isatty()
        self._bar = None
        self._last_line = time.monotonic()

    def update(self, progress: SearchProgress) -> None:
        if not self._enabled:
            return
        if not self._tty:
            now = time.monotonic()
            if now - self._last_line >= self.LOG_INTERVAL_S and progress.phase != "done":
                self._last_line = now
                print(f"{self._title}: {progress.done}/{progress.total} steps, {describe(progress)}",
                      file=sys.stderr, flush=True)
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self._total, desc=self._title, unit="step", file=sys.stderr, mininterval=0.25,
                             dynamic_ncols=True, leave=False)
        self._bar.n = progress.done
        self._bar.set_postfix_str(describe(progress), refresh=False)
        self._bar.update(0)  # redraws when its interval has passed

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
