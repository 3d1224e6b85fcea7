"""Flash safety, as pure logic on arrays: strobes are capped, ordinary pictures pass untouched."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vjgan.display.flash import (FlashLimiter, FlashSafetyConfig, blend_linear_light, count_changes,
                                 mean_luminance)
from vjgan.errors import UserError

FPS = 60


def _grey(level: int) -> np.ndarray:
    frame = np.full((6, 8, 4), level, dtype=np.uint8)
    frame[..., 3] = 255
    return frame


def _present(frames: list[np.ndarray], config: FlashSafetyConfig | None = None) -> tuple[list[float], list[float]]:
    """Run pictures through the limiter exactly as the output shader does; return presented luminances."""
    limiter = FlashLimiter(config)
    previous = _grey(0)  # the screen is dark before the show
    presented, alphas = [], []
    for i, frame in enumerate(frames):
        decision = limiter.step(mean_luminance(frame), i / FPS)
        shown = blend_linear_light(previous, frame, decision.alpha)
        # The limiter's bookkeeping must agree with what is really on screen.
        assert abs(mean_luminance(shown) - decision.luminance) < 0.005
        presented.append(mean_luminance(shown))
        alphas.append(decision.alpha)
        previous = shown
    return presented, alphas


def _frame_jumps(lum: list[float], threshold: float = 0.1, ceiling: float = 0.8) -> list[int]:
    # An independent, simpler criterion: a picture-to-picture jump of a threshold or more whose
    # darker side is below the ceiling (what a viewer sees as a hard flash edge).
    prev = 0.0
    hits = []
    for i, x in enumerate(lum):
        if abs(x - prev) >= threshold and min(x, prev) < ceiling:
            hits.append(i)
        prev = x
    return hits


def _max_per_window(indices: list[int], window_frames: int = FPS) -> int:
    return max((sum(1 for j in indices if s <= j < s + window_frames) for s in range(0, max(indices, default=0) + 1)),
               default=0)


def _strobe(hz: float, seconds: float, low: int = 0, high: int = 255) -> list[np.ndarray]:
    return [_grey(high if int(i / FPS * hz * 2) % 2 == 0 else low) for i in range(int(seconds * FPS))]


def test_ten_hertz_strobe_is_capped_at_three_changes_per_second() -> None:
    frames = _strobe(10, 4)
    assert len(_frame_jumps([mean_luminance(f) for f in frames])) >= 70  # the input: 20 changes a second
    presented, alphas = _present(frames)
    assert _max_per_window(count_changes(presented, start=0.0)) <= 3
    assert _max_per_window(_frame_jumps(presented)) <= 3
    # Limited, not frozen: the allowed changes still happen, about three a second.
    assert 9 <= len(count_changes(presented, start=0.0)) <= 12
    assert min(alphas) < 1.0


def test_the_test_can_fail_a_raised_limit_lets_the_strobe_through() -> None:
    config = FlashSafetyConfig(max_changes_per_s=30)
    assert config.warning() is not None and "30" in config.warning()
    presented, _ = _present(_strobe(10, 2), config)
    assert _max_per_window(count_changes(presented, start=0.0)) >= 15


def test_a_strobe_with_soft_edges_is_still_capped() -> None:
    # white → 0.85-bright → black → ...: a detector that turns at the bright step without counting
    # must still count the fall into the dark.
    cycle = [_grey(255), _grey(240), _grey(0), _grey(0), _grey(240), _grey(255)]
    frames = (cycle * 40)[: 4 * FPS]
    presented, _ = _present(frames)
    assert _max_per_window(count_changes(presented, start=0.0)) <= 3
    assert _max_per_window(_frame_jumps(presented)) <= 3


def test_ordinary_pictures_pass_untouched() -> None:
    # One flash a second is two changes, inside the budget of three.
    slow_flash = _strobe(1, 4, low=30, high=220)
    _, alphas = _present(slow_flash)
    assert min(alphas) == 1.0
    # Mid-grey breathing at 3 Hz stays under the threshold (±8 code values ≈ ±0.03 luminance).
    breathing = [_grey(int(128 + 8 * math.sin(2 * math.pi * 3 * i / FPS))) for i in range(4 * FPS)]
    _, alphas = _present(breathing)
    assert min(alphas) == 1.0


def test_a_slow_fade_is_one_change() -> None:
    fade = [_grey(int(255 * (1 - i / (2 * FPS)))) for i in range(2 * FPS + 1)]
    presented, alphas = _present(fade)
    # Rising from the dark start to white, then one fall: two changes, nothing held back.
    assert len(count_changes(presented, start=0.0)) == 2
    assert min(alphas) == 1.0


def test_bright_flicker_is_not_a_flash() -> None:
    # WCAG counts a change only if its darker end is below 0.8 relative luminance.
    flicker = _strobe(10, 2, low=235, high=255)
    lum = [mean_luminance(f) for f in flicker]
    assert min(lum) > 0.8
    _, alphas = _present(flicker)
    assert alphas[1:] == [1.0] * (len(alphas) - 1)


def test_low_rates_allow_one_change_per_interval() -> None:
    config = FlashSafetyConfig(max_changes_per_s=0.5)
    presented, _ = _present(_strobe(5, 6), config)
    hits = count_changes(presented, start=0.0)
    assert all(b - a >= 2 * FPS - 1 for a, b in zip(hits, hits[1:]))


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, 31, None, "3"])
def test_the_limit_can_be_raised_but_not_removed(value: object) -> None:
    with pytest.raises(UserError, match="never switched off"):
        FlashSafetyConfig(max_changes_per_s=value)  # type: ignore[arg-type]


def test_default_config_has_no_warning_and_raised_ones_do() -> None:
    assert FlashSafetyConfig().warning() is None
    assert FlashSafetyConfig(max_changes_per_s=2).warning() is None
    line = FlashSafetyConfig(max_changes_per_s=6).warning()
    assert line and "\n" not in line and "photosensitive" in line


def test_mean_luminance_uses_the_srgb_curve() -> None:
    assert mean_luminance(_grey(255)) == pytest.approx(1.0)
    assert mean_luminance(_grey(0)) == 0.0
    assert mean_luminance(_grey(128)) == pytest.approx(0.2158, abs=1e-3)  # not 0.5: light is not linear in code values
    red = np.zeros((2, 2, 4), np.uint8)
    red[..., 0] = 255
    assert mean_luminance(red) == pytest.approx(0.2126)
