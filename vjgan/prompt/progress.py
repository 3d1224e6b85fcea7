"""The search's progress bar on stderr: steps done, round, best score so far (tqdm, which comes
with open_clip). On a terminal it redraws in place; in a log it writes a line every few seconds."""

from __future__ import annotations

import math
import sys

from .search import SearchProgress


def describe(p: SearchProgress) -> str:
    """'round 2/4 optimise  score 0.284 (start 0.231)' — pure, so tests pin it."""
    if math.isnan(p.score):
        return "scoring random latents"
    where = "random latents" if p.round == 0 else f"round {p.round}/{p.rounds} {p.phase}"
    if p.phase == "done":
        where = "done"
    return f"{where}  score {p.score:.3f} (start {p.score_start:.3f})"


class SearchBar:
    """Shown from the first step on (a keyframe taken from the cache shows no bar)."""

    def __init__(self, prompt: str, total: int, label: str = "", enabled: bool = True) -> None:
        short = prompt if len(prompt) <= 32 else prompt[:31] + "…"
        self._title = f"{label + ' ' if label else ''}\"{short}\""
        self._total = total
        self._enabled = enabled
        self._bar = None

    def update(self, progress: SearchProgress) -> None:
        if not self._enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            tty = sys.stderr.isatty()
            self._bar = tqdm(total=self._total, desc=self._title, unit="step", file=sys.stderr,
                             mininterval=0.25 if tty else 5.0, dynamic_ncols=tty, leave=tty)
        self._bar.n = progress.done
        self._bar.set_postfix_str(describe(progress), refresh=False)
        if progress.phase == "done":
            self._bar.refresh()
        else:
            self._bar.update(0)  # redraws when its interval has passed

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
