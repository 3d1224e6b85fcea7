"""Flash safety: large full-frame luminance changes are limited to a few per second.

Photosensitive viewers can have seizures from flashing light. WCAG 2's "three flashes" guideline
is the reference for the idea: a flash is a pair of opposing changes in relative luminance of at
least 10% of the maximum, where the darker state is below 0.8, and no more than three may occur
in any one second. vjgan counts each *change* (half a flash), so its default of 3 changes per
second is stricter than WCAG's 3 flashes: a beat-synced white flash at 128 BPM (two changes per
beat, 4.3 per second) is held back, not passed.

How a change is recognised: the presented mean luminance moves in swings. A swing starts at a
turning point (the brightest or darkest point of the previous swing) and is recognised once the
luminance has moved `threshold` away from it (hysteresis, so flicker inside the threshold never
counts). A swing counts once, when its size reaches `threshold` while its darker end is below
`dark_ceiling`. A slow fade from white to black is therefore one change, like a cut; a strobe
is one change per edge, whatever its waveform.

How the limit acts: when showing the next picture would complete a change and the budget of the
last second is spent, the renderer shows a blend of the previous presented picture and the new
one, mixed in linear light so the blend's mean luminance is exactly the mix of the two means.
The limiter picks the strongest blend that still does not complete a change, so the output
glides and stays just inside the threshold until the budget allows the next change.

Everything here is pure logic on numbers (and numpy arrays for the offline path); the renderer
measures the mean luminance on the GPU from a small grid, not a full read-back.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from ..errors import UserError

DEFAULT_MAX_CHANGES_PER_S = 3.0
MAX_CHANGES_PER_S_LIMIT = 30.0  # at 60 Hz: a change every other picture; the most the limit can be raised to
WCAG_THRESHOLD = 0.1  # 10% of the maximum relative luminance
WCAG_DARK_CEILING = 0.8
# The limiter aims inside the threshold by this fraction, so 8-bit rounding and measurement noise
# of the blended picture cannot tip a held change over the edge.
_MARGIN = 0.1


@dataclass(frozen=True, slots=True)
class FlashSafetyConfig:
    max_changes_per_s: float = DEFAULT_MAX_CHANGES_PER_S
    threshold: float = WCAG_THRESHOLD  # change in mean relative luminance (0..1) that counts as large
    dark_ceiling: float = WCAG_DARK_CEILING  # a change counts only if its darker end is below this

    def __post_init__(self) -> None:
        rate = self.max_changes_per_s
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) \
                or not 0 < rate <= MAX_CHANGES_PER_S_LIMIT:
            raise UserError(f"flash limit {rate!r} must be a number of large luminance changes per second in "
                            f"(0, {MAX_CHANGES_PER_S_LIMIT:g}]; it can be raised, never switched off")
        if not 0.02 <= self.threshold <= 0.5:
            raise UserError(f"flash threshold {self.threshold!r} must be in 0.02..0.5 (WCAG uses 0.1)")
        if not 0.5 <= self.dark_ceiling <= 1.0:
            raise UserError(f"flash dark ceiling {self.dark_ceiling!r} must be in 0.5..1 (WCAG uses 0.8)")

    @property
    def burst(self) -> int:
        """Changes allowed inside one window."""
        return max(1, int(self.max_changes_per_s))

    @property
    def window_s(self) -> float:
        # 3/s → 3 changes in any 1 s; 0.5/s → 1 change in any 2 s; 2.5/s → 2 changes in any 0.8 s.
        return self.burst / self.max_changes_per_s

    def warning(self) -> str | None:
        """One line to show when the limit was raised above the default (None otherwise)."""
        if self.max_changes_per_s <= DEFAULT_MAX_CHANGES_PER_S and self.threshold <= WCAG_THRESHOLD \
                and self.dark_ceiling <= WCAG_DARK_CEILING:
            return None
        return (f"flash limit raised to {self.max_changes_per_s:g} large luminance changes per second "
                f"(threshold {self.threshold:g}; the default, after WCAG's three-flash guideline, is "
                f"{DEFAULT_MAX_CHANGES_PER_S:g} at {WCAG_THRESHOLD:g}): photosensitive viewers may be at risk")


# --- recognising changes ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SwingState:
    """Where the luminance is in its current swing (immutable; `advance` returns a new one)."""

    direction: int  # +1 rising, -1 falling, 0 not moved by a threshold yet
    origin: float  # the turning point the swing started from
    extreme: float  # the furthest point reached in the swing's direction
    counted: bool  # this swing has already been counted as a change
    low: float  # direction 0 only: lowest and highest point seen so far
    high: float

    @classmethod
    def start(cls, luminance: float) -> "SwingState":
        return cls(0, luminance, luminance, False, luminance, luminance)


def advance(state: SwingState, luminance: float, threshold: float, dark_ceiling: float) -> tuple[SwingState, bool]:
    """Feed the next presented luminance; returns the new state and whether a change completed."""
    L = luminance
    if state.direction == 0:
        low, high = min(state.low, L), max(state.high, L)
        if L - low >= threshold:  # risen a threshold above the lowest point: a rising swing from there
            counts = low < dark_ceiling
            return SwingState(+1, low, L, counts, low, high), counts
        if high - L >= threshold:
            counts = L < dark_ceiling
            return SwingState(-1, high, L, counts, low, high), counts
        return replace(state, low=low, high=high), False
    if state.direction > 0:
        if L >= state.extreme:  # still rising: the darker end (origin) is fixed, so nothing new to count
            return replace(state, extreme=L), False
        if state.extreme - L >= threshold:  # turned: a falling swing from the peak
            counts = L < dark_ceiling
            return SwingState(-1, state.extreme, L, counts, state.low, state.high), counts
        return state, False
    if L <= state.extreme:  # still falling: counts once it has fallen far enough into the dark
        counts = not state.counted and state.origin - L >= threshold and L < dark_ceiling
        return replace(state, extreme=L, counted=state.counted or counts), counts
    if L - state.extreme >= threshold:  # turned: a rising swing from the trough
        counts = state.extreme < dark_ceiling
        return SwingState(+1, state.extreme, L, counts, state.low, state.high), counts
    return state, False


def count_changes(luminances: "np.ndarray | list[float]", threshold: float = WCAG_THRESHOLD,
                  dark_ceiling: float = WCAG_DARK_CEILING, start: float | None = None) -> list[int]:
    """Indices at which a large change completes in a luminance sequence (for analysis and tests)."""
    values = [float(x) for x in luminances]
    if not values:
        return []
    state = SwingState.start(values[0] if start is None else start)
    hits = []
    for i, L in enumerate(values):
        state, counted = advance(state, L, threshold, dark_ceiling)
        if counted:
            hits.append(i)
    return hits


# --- limiting --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FlashDecision:
    alpha: float  # 1 = show the new picture; less = blend toward the previous presented picture (linear light)
    luminance: float  # mean relative luminance that will be presented
    limited: bool  # the limiter held a change back
    changes_in_window: int  # changes counted in the current window, this one included


class FlashLimiter:
    """Decides, picture by picture, how much of the new picture may be shown."""

    def __init__(self, config: FlashSafetyConfig | None = None, initial_luminance: float = 0.0) -> None:
        # The screen is dark before the show starts, so the first picture's rise is a change too.
        self.config = config or FlashSafetyConfig()
        self.presented = float(initial_luminance)
        self._state = SwingState.start(self.presented)
        self._events: deque[float] = deque()
        self.limited_count = 0  # pictures held back since the start (for the HUD)

    def step(self, candidate: float, t: float) -> FlashDecision:
        """`candidate`: mean relative luminance of the next picture; `t`: when it will be shown (s)."""
        cfg = self.config
        candidate = min(1.0, max(0.0, float(candidate))) if math.isfinite(candidate) else self.presented
        while self._events and self._events[0] < t - cfg.window_s:
            self._events.popleft()  # older than the window: any window holding it and t is longer than window_s
        _, would_count = advance(self._state, candidate, cfg.threshold, cfg.dark_ceiling)
        alpha = 1.0
        if would_count and len(self._events) >= cfg.burst:
            alpha = self._largest_safe_alpha(candidate)
        luminance = self.presented + alpha * (candidate - self.presented)
        self._state, counted = advance(self._state, luminance, cfg.threshold, cfg.dark_ceiling)
        if counted:
            self._events.append(t)
        limited = alpha < 1.0
        self.limited_count += limited
        self.presented = luminance
        return FlashDecision(alpha, luminance, limited, len(self._events))

    def _largest_safe_alpha(self, candidate: float) -> float:
        # Counting grows monotonically with how far the blend moves toward the candidate, so a
        # bisection finds the boundary. It is tested with a tighter threshold and a higher dark
        # ceiling than the real ones, so the chosen blend stays clearly inside.
        cfg = self.config
        strict_threshold = cfg.threshold * (1.0 - _MARGIN)
        strict_ceiling = cfg.dark_ceiling + _MARGIN * cfg.threshold
        lo, hi = 0.0, 1.0
        for _ in range(24):
            mid = 0.5 * (lo + hi)
            L = self.presented + mid * (candidate - self.presented)
            if advance(self._state, L, strict_threshold, strict_ceiling)[1]:
                hi = mid
            else:
                lo = mid
        return lo

    def reset(self, luminance: float = 0.0) -> None:
        self.presented = float(luminance)
        self._state = SwingState.start(self.presented)
        self._events.clear()


# --- numpy helpers (offline path and tests) --------------------------------------------------

def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)


_LUMA = np.array([0.2126, 0.7152, 0.0722])


def mean_luminance(pixels: np.ndarray) -> float:
    """Mean relative luminance (0..1) of an sRGB picture, uint8 [H, W, 3 or 4]."""
    rgb = srgb_to_linear(pixels[..., :3] / 255.0)
    return float((rgb @ _LUMA).mean())


def blend_linear_light(previous: np.ndarray, current: np.ndarray, alpha: float) -> np.ndarray:
    """What the output shader presents for a limiter decision (uint8 pictures of one shape)."""
    if alpha >= 1.0:
        return current.copy()
    mixed = (1.0 - alpha) * srgb_to_linear(previous[..., :3] / 255.0) + alpha * srgb_to_linear(current[..., :3] / 255.0)
    out = current.copy()
    out[..., :3] = np.round(linear_to_srgb(mixed) * 255.0).astype(np.uint8)
    return out
