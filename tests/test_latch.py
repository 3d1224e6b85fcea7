"""Late latching (vjgan/live/latch.py): when the frame worker starts a frame, tested with numbers."""

from __future__ import annotations

import math

import pytest

from vjgan.live.latch import START_NOW, CostEstimate, LatchPolicy, Vsync, decide

P = 1.0 / 60.0  # a 60 Hz display
POLICY = LatchPolicy(margin_s=0.0015, stale_after_s=0.5, max_share=0.75)
MS = 1e-3


def test_refreshes_extrapolate_on_the_period() -> None:
    v = Vsync(at=10.0, period_s=P)
    assert v.first_after(10.0) == pytest.approx(10.0)
    assert v.first_after(10.001) == pytest.approx(10.0 + P)
    assert v.first_after(10.0 + 3 * P) == pytest.approx(10.0 + 3 * P)  # exactly on one: that one
    assert v.first_after(9.0) == pytest.approx(10.0)  # never before the one seen


def test_a_frame_starts_at_the_last_moment_that_makes_the_next_refresh() -> None:
    v = Vsync(at=0.0, period_s=P, pickup_s=2 * MS)
    cost = 4 * MS  # lead: 4 + 2 + 1.5 = 7.5 ms before the refresh
    d = decide(1 * MS, v, cost, math.nan, POLICY)
    assert not d.start and d.target == pytest.approx(P)
    assert d.wait_s == pytest.approx(P - 7.5 * MS - 1 * MS)
    # Woken at that moment, the worker starts without asking again; asked there, it would start.
    at_deadline = decide(P - 7.5 * MS, v, cost, math.nan, POLICY)
    assert at_deadline.start and at_deadline.target == pytest.approx(P)
    # Too late for the next refresh: aim at the one after, and wait for it.
    late = decide(P - 5 * MS, v, cost, math.nan, POLICY)
    assert not late.start and late.target == pytest.approx(2 * P)
    assert late.wait_s == pytest.approx(2 * P - 7.5 * MS - (P - 5 * MS))


def test_one_frame_per_refresh() -> None:
    v = Vsync(at=0.0, period_s=P)
    # The last frame was for the first refresh and came out early; the next is for the second.
    d = decide(2 * MS, v, 3 * MS, P, POLICY)
    assert not d.start and d.target == pytest.approx(2 * P)
    # A cost that shrank does not make a second frame for a refresh that has one.
    d = decide(P - 6 * MS, v, 1 * MS, P, POLICY)
    assert d.target == pytest.approx(2 * P)


def test_no_latch_without_a_fresh_refresh_or_for_a_frame_that_fills_the_period() -> None:
    assert decide(1.0, None, 4 * MS, math.nan, POLICY) == START_NOW
    old = Vsync(at=0.0, period_s=P)
    assert decide(0.6, old, 4 * MS, math.nan, POLICY) == START_NOW  # the display stalled or idles
    heavy = 0.75 * P - 1.5 * MS + 0.1 * MS  # just over the share of a period
    assert decide(0.001, old, heavy, math.nan, POLICY) == START_NOW
    assert not decide(0.001, old, heavy - 0.2 * MS, math.nan, POLICY).start


def test_cost_estimate_allows_for_the_spread_of_frame_times() -> None:
    est = CostEstimate()
    assert est.value == 0.0
    for _ in range(200):
        est.record(4 * MS)
    assert est.value == pytest.approx(4 * MS, abs=0.05 * MS)
    for i in range(400):  # alternating 3 and 5 ms: the mean is 4, the slow ones must fit
        est.record((3 if i % 2 else 5) * MS)
    assert 5 * MS < est.value < 8 * MS
