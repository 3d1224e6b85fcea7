"""Samples as they enter vjgan: values that are not audio become silence, and are counted.

A damaged float file or a misbehaving driver can deliver NaN, infinity or absurd magnitudes.
One NaN in the analysis window makes every spectrum NaN, and the level followers keep it for
good (the show fades to black and stays there); in the soundtrack it stops the encoder. So every
source passes its samples through `silence_invalid` before anything else sees them, counts what
it replaced, and reports it through a `BadSampleReport` (one line, then at most one a while).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

# 60 dB above full scale. Float files may carry overs a few dB past 1.0, but no converter or mix
# bus produces a thousand times full scale: such a value is damaged data, not a loud sound.
MAX_SAMPLE = 1000.0


def silence_invalid(block: np.ndarray) -> int:
    """Set NaN, ±inf and |x| > MAX_SAMPLE in `block` to 0.0, in place; return how many there were."""
    ok = np.abs(block) <= MAX_SAMPLE  # False for NaN as well
    if ok.all():
        return 0
    bad = ~ok
    block[bad] = 0.0
    return int(np.count_nonzero(bad))


class BadSampleReport:
    """Rate limit for the "invalid samples" line: the first occurrence at once, then at most one
    line every `interval_s` while more arrive, each with the running total."""

    def __init__(self, what: str, interval_s: float = 10.0):
        self.what = what
        self.interval_s = interval_s
        self.total = 0
        self._last_line: Optional[float] = None

    def add(self, count: int, now: float) -> Optional[str]:
        """Count `count` more bad samples seen at time `now`; the line to log, when one is due."""
        if count <= 0:
            return None
        self.total += count
        if self._last_line is not None and now - self._last_line < self.interval_s:
            return None
        self._last_line = now
        return self.line()

    def line(self) -> str:
        return (f"{self.what}: {self.total} invalid sample(s) (NaN, infinity or beyond ±{MAX_SAMPLE:g}) "
                "so far, treated as silence")
