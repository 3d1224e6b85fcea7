"""The frame budget's policy, fed measured durations."""

from __future__ import annotations

from vjgan.live.budget import BudgetPolicy, FrameBudget


def run(budget: FrameBudget, cost_of, seconds: float, start: float = 0.0, fps: float = 30.0) -> float:
    t = start
    while t < start + seconds:
        budget.record(cost_of(budget.resolution), t)
        t += 1 / fps
    return t


def test_steps_down_when_slow_and_climbs_back_with_headroom() -> None:
    budget = FrameBudget([1024, 512, 256, 128, 64, 32], BudgetPolicy(min_fps=24))
    assert budget.levels == [1024, 512, 256, 128, 64]
    slow = {1024: 0.080, 512: 0.060, 256: 0.045, 128: 0.015, 64: 0.01}
    t = run(budget, slow.get, 5.0)
    assert budget.resolution == 128  # the first level under 1/24 s
    fast = {1024: 0.020, 512: 0.012, 256: 0.008, 128: 0.005, 64: 0.004}
    # The machine got faster (another app quit): costs measured at each level are lower now.
    budget.costs.clear()
    run(budget, fast.get, 20.0, start=t)
    assert budget.resolution == 1024


def test_single_slow_frame_does_not_step_down() -> None:
    budget = FrameBudget([256, 128, 64], BudgetPolicy(min_fps=24))
    costs = iter([0.01] * 30 + [0.5] + [0.01] * 30)
    run(budget, lambda r: next(costs), 2.0)
    assert budget.resolution == 256


def test_does_not_oscillate_at_a_level_that_barely_fits() -> None:
    budget = FrameBudget([256, 128, 64], BudgetPolicy(min_fps=24))
    costs = {256: 0.05, 128: 0.035, 64: 0.01}
    run(budget, costs.get, 30.0)
    assert budget.resolution == 128


def test_out_of_memory_steps_down_and_never_returns() -> None:
    budget = FrameBudget([256, 128, 64], BudgetPolicy(min_fps=24))
    assert budget.out_of_memory()
    assert budget.resolution == 128
    run(budget, lambda r: 0.001, 10.0)
    assert budget.resolution == 128
    assert budget.out_of_memory() and not budget.out_of_memory()


def test_a_network_without_early_exits_has_one_level_and_never_steps() -> None:
    # StyleGAN3: only the full picture exists; the display cross-fades instead.
    budget = FrameBudget([1024], BudgetPolicy(min_fps=24))
    run(budget, lambda r: 0.2, 5.0)
    assert budget.levels == [1024] and budget.resolution == 1024 and budget.step == 0
    assert budget.costs[0] > BudgetPolicy().budget_s  # measured, shown on the HUD
    assert not budget.out_of_memory()
