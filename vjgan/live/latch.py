"""Late latching: start each frame just in time for the next vsync, from the newest sound.

A frame that is ready early waits for the vsync with old sound in it; a generator that makes a
frame on every analysis hop (100 or 200 a second) spends most of them on pictures no refresh
shows, and they contend with the display for the GPU. So the frame worker times each frame's
start against the display's refresh, which the main loop publishes after each buffer swap
(`Vsync`, through a hand-over slot): of the hops that arrive before a refresh, the frame is made
from the last one that still leaves time to generate and draw before it. One frame per refresh,
from sound as new as the cost allows.

In expectation this does not shorten the way from a click to the screen compared with a
generator that is idle when the hop comes (either way the click waits up to one refresh period,
before the frame starts or after it is ready); it makes the same latency with one frame per
refresh instead of one per hop, which is what lets 5 ms hops (200 a second) and a 1024² frame
share a GPU with the display, and it keeps a frame in progress from delaying the next hop's.

Where the timing cannot help, frames start at once, as without latching: no refresh published
(or an old one: the display stalled or idles), or a frame that costs most of a refresh period
(waiting for a refresh would then lower the frame rate).

Pure logic driven by times and measured costs: tests feed it numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


# How long before a refresh the live display needs a frame: the upload and the effect chain on a
# GPU's OpenGL take about a millisecond each at 1080p; a software rasteriser takes a whole
# refresh, and so does a slow generator, and then the policy does not latch (max_share).
DISPLAY_PICKUP_S = 0.003


@dataclass(frozen=True)
class Vsync:
    """The display's refresh as the main loop last saw it."""

    at: float  # perf_counter time of one refresh (the buffer swap returned then)
    period_s: float  # 1 / refresh rate
    pickup_s: float = 0.0  # how long before a refresh the display must have the frame (upload and draw)

    def first_after(self, t: float) -> float:
        """The first refresh at or after `t`, extrapolated on the period."""
        k = math.ceil((t - self.at) / self.period_s - 1e-9)
        return self.at + max(k, 0) * self.period_s


@dataclass(frozen=True)
class LatchPolicy:
    margin_s: float = 0.0015  # slack for jitter in the cost and in waking up
    stale_after_s: float = 0.5  # a refresh time older than this is not trusted
    max_share: float = 0.75  # latch only while a frame (generation, pickup, margin) fits this share of a period


@dataclass(frozen=True)
class LatchDecision:
    start: bool  # start a frame now
    wait_s: float  # otherwise: wait at most this long, or until a new hop arrives, then decide again
    target: float  # the refresh the frame is for (nan when not latched: as soon as it is ready)


START_NOW = LatchDecision(True, 0.0, math.nan)


def decide(now: float, vsync: Vsync | None, cost_s: float, last_target: float,
           policy: LatchPolicy = LatchPolicy()) -> LatchDecision:
    """When to start the next frame: at the latest moment that still makes the next refresh
    without a frame (the worker sleeps until then and starts without deciding again, reading
    the newest hop then).

    cost_s: the expected time from starting a frame to having it published (a cautious estimate,
        `CostEstimate.value`); last_target: the refresh the previous frame was for (nan if none).
    """
    if vsync is None or now - vsync.at > policy.stale_after_s or vsync.period_s <= 0:
        return START_NOW
    lead = cost_s + vsync.pickup_s + policy.margin_s
    if lead > policy.max_share * vsync.period_s:
        return START_NOW
    target = vsync.first_after(now + lead)
    if not math.isnan(last_target) and target < last_target + 0.5 * vsync.period_s:
        target = last_target + vsync.period_s  # that refresh has its frame: aim at the one after
    deadline = target - lead
    if deadline > now:
        return LatchDecision(False, deadline - now, target)
    return LatchDecision(True, 0.0, target)


@dataclass
class CostEstimate:
    """A cautious running estimate of a frame's cost: the mean plus a few mean deviations, so
    an occasional slow frame raises it at once and the estimate falls back slowly."""

    smoothing: float = 0.1
    deviations: float = 3.0
    mean: float = math.nan
    deviation: float = 0.0

    def record(self, seconds: float) -> None:
        if math.isnan(self.mean):
            self.mean, self.deviation = seconds, seconds * 0.25
            return
        a = self.smoothing
        self.deviation += a * (abs(seconds - self.mean) - self.deviation)
        self.mean += a * (seconds - self.mean)

    @property
    def value(self) -> float:
        """Seconds to allow for the next frame (0 before the first one is measured)."""
        return 0.0 if math.isnan(self.mean) else self.mean + self.deviations * self.deviation
