"""The frame budget: which block the generator stops at, so the show keeps its frame rate.

Generation and display run at their own rates. Down to half the display rate the display hides
the gap by cross-fading between the two newest frames; below the acceptable rate the worker
steps down to an earlier block's skip image (half the resolution, without the finest layers'
texture) and climbs back once the higher level fits with headroom. Costs are remembered per
level, so climbing back is decided on measured times, not guesses.

A network without early exits (StyleGAN3: every layer works on the whole picture's band, none
has an image to show) gives one level: the budget only measures, and the display's cross-fade
between the two newest frames carries the show when generation is slower than the display.

Pure logic driven by measured durations: tests feed it numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BudgetPolicy:
    display_hz: float = 60.0
    min_fps: float = 24.0  # below this the picture steps down a level
    lowest_resolution: int = 64  # never step below this exit point
    step_down_after_s: float = 0.5  # sustained overload before stepping down (one slow frame is not a trend)
    climb_after_s: float = 3.0  # sustained headroom before climbing back
    headroom: float = 0.7  # climb only when the level above is expected within this fraction of the budget
    smoothing: float = 0.2  # weight of the newest duration in the running average

    @property
    def budget_s(self) -> float:
        return 1.0 / self.min_fps


@dataclass
class FrameBudget:
    """Tracks generation cost per exit level and picks the level for the next frame."""

    levels: list[int]  # exit resolutions, full resolution first
    policy: BudgetPolicy = field(default_factory=BudgetPolicy)
    step: int = 0  # index into levels: 0 = full resolution
    costs: dict[int, float] = field(default_factory=dict)  # running mean seconds per level
    _over_since: float | None = None
    _under_since: float | None = None

    def __post_init__(self) -> None:
        self.levels = [r for r in self.levels if r >= self.policy.lowest_resolution] or self.levels[:1]

    @property
    def resolution(self) -> int:
        return self.levels[self.step]

    def record(self, seconds: float, now: float) -> None:
        """Feed the duration of the frame just generated at the current level."""
        level = self.step
        prev = self.costs.get(level)
        a = self.policy.smoothing
        self.costs[level] = seconds if prev is None else prev + a * (seconds - prev)
        cost = self.costs[level]
        budget = self.policy.budget_s
        if cost > budget and self.step < len(self.levels) - 1:
            self._under_since = None
            if self._over_since is None:
                self._over_since = now
            elif now - self._over_since >= self.policy.step_down_after_s:
                self._move(+1)
            return
        self._over_since = None
        if self.step == 0:
            return
        above = self.costs.get(self.step - 1)
        # Unknown cost above: assume each level up doubles it (a cautious guess from docs/architecture.md's ~20% per block is
        # too optimistic on CPUs, where memory traffic grows with the pixels).
        expected = above if above is not None else cost * 2.0
        if expected <= budget * self.policy.headroom:
            if self._under_since is None:
                self._under_since = now
            elif now - self._under_since >= self.policy.climb_after_s:
                self._move(-1)
        else:
            self._under_since = None

    def out_of_memory(self) -> bool:
        """A CUDA out-of-memory error: step down at once. False if already at the lowest level."""
        if self.step >= len(self.levels) - 1:
            return False
        self.costs[self.step] = float("inf")  # never climb back into it this session
        self._move(+1)
        return True

    def _move(self, direction: int) -> None:
        self.step = min(len(self.levels) - 1, max(0, self.step + direction))
        self._over_since = self._under_since = None
