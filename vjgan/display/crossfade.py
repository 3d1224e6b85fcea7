"""The display side of the frame budget: how much of the newest frame to show at a display time.

Generation and display run at their own rates. While the generator keeps up (a new frame at
least every display refresh, with some slack for jitter), the newest frame is shown as it is.
When it falls behind, the display fades from the older to the newer of the two newest frames
over one generation interval, starting when the newer one was ready: motion stays fluid instead
of stepping, and the fade reaches the newest frame about when the next one arrives. Only the two
newest frames are ever involved, so nothing stale is shown late; if the generator stalls, the
newest frame simply stays.
"""

from __future__ import annotations

# Generation counts as "keeping up" below this multiple of the display period (absorbs jitter).
KEEPING_UP_SLACK = 1.25


def crossfade_mix(a_ready: float | None, a_index: int | None, b_ready: float, b_index: int, now: float,
                  display_period: float, max_fade_s: float = 0.5) -> float:
    """Weight of the newer frame B (0 = only A, 1 = only B) in the picture shown at `now`.

    a_ready/b_ready: the frames' t_ready; a_index/b_index: their generation indices (frames the
    display never drew still count toward the interval, so skipped frames do not slow the fade).
    """
    if a_ready is None or a_index is None or b_index <= a_index:
        return 1.0
    interval = (b_ready - a_ready) / (b_index - a_index)  # seconds per generated frame
    if interval <= display_period * KEEPING_UP_SLACK:
        return 1.0
    fade = min(interval, max_fade_s)  # after a long stall, catch up quickly instead of crawling
    return min(1.0, max(0.0, (now - b_ready) / fade))
