"""The one layer traversal and the one fp16 rule that the reference networks and the fast path share."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vjgan.gan.fast import FastSynthesis
from vjgan.gan.load import load_generator
from vjgan.gan.networks import GeneratorConfig
from vjgan.gan.plan import FP16_CLAMP, LayerStep, SynthesisPlan, activation_clamp, step_dtype, trained_in_fp16

CONFORMANCE = Path(__file__).parent / "data" / "conformance"


def test_stylegan2_plan_names_every_layer_its_w_row_noise_and_exit() -> None:
    cfg = GeneratorConfig.from_channel_base(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=8,
                                            num_fp16_res=1)
    plan = cfg.synthesis_plan()
    got = [(s.kind, s.module, s.resolution, s.w_index, s.noise_index, s.fp16, s.exit) for s in plan.steps]
    assert got == [
        ("const", "b4", 4, None, None, False, False),
        ("conv", "b4.conv1", 4, 0, 0, False, False),
        ("torgb", "b4.torgb", 4, 1, None, False, True),
        ("conv", "b8.conv0", 8, 1, 1, False, False),
        ("conv", "b8.conv1", 8, 2, 2, False, False),
        ("torgb", "b8.torgb", 8, 3, None, False, True),
        ("conv", "b16.conv0", 16, 3, 3, True, False),
        ("conv", "b16.conv1", 16, 4, 4, True, False),
        ("torgb", "b16.torgb", 16, 5, None, True, True),
    ]
    assert plan.num_ws == cfg.num_ws == 6 and plan.num_noise_layers == 5
    assert plan.exit_resolutions == [4, 8, 16]
    assert [s.module for s in plan.until(8)][-1] == "b8.torgb"
    with pytest.raises(ValueError, match="exit_resolution must be one of"):
        plan.until(12)


def test_both_paths_walk_the_same_plan() -> None:
    G = load_generator(CONFORMANCE / "sg2ada_64px.pkl")
    fast = FastSynthesis(G, "cpu")
    assert fast.plan is G.synthesis.plan
    assert [layer.step for layer in fast.layers] == list(G.synthesis.plan.steps)
    assert fast.num_layers == G.synthesis.plan.num_noise_layers == 9


def test_one_fp16_rule() -> None:
    # NVIDIA's threshold: the top num_fp16_res resolutions, the top four for networks that record none.
    assert [r for r in (4, 8, 16, 32, 64) if trained_in_fp16(r, 64, 2)] == [32, 64]
    assert [r for r in (4, 8, 16, 32, 64) if trained_in_fp16(r, 64, 0)] == [8, 16, 32, 64]
    low, high = LayerStep("conv", "a", 8), LayerStep("conv", "b", 64, fp16=True)
    for device in ("cpu", "mps"):
        assert {step_dtype(s, p, device) for s in (low, high) for p in ("fp32", "fp16-all", "fp16-nvidia")} == {torch.float32}
    assert step_dtype(low, "fp16-all", "cuda") == torch.float16
    assert step_dtype(low, "fp16-nvidia", "cuda") == torch.float32
    assert step_dtype(high, "fp16-nvidia", "cuda") == torch.float16
    assert step_dtype(high, "fp32", "cuda") == torch.float32
    with pytest.raises(ValueError, match="precision"):
        step_dtype(high, "fp8", "cuda")
    assert step_dtype(low, "fp16-all", "cpu", half_on_cpu=True) == torch.float16  # tests only
    assert step_dtype(low, "fp16-nvidia", "cpu", half_on_cpu=True) == torch.float32
    assert activation_clamp(None, torch.float16) == FP16_CLAMP
    assert activation_clamp(None, torch.float32) is None
    assert activation_clamp(100.0, torch.float16) == 100.0


def test_a_plan_must_end_with_the_picture() -> None:
    with pytest.raises(ValueError, match="exit"):
        SynthesisPlan((LayerStep("conv", "a", 4, w_index=0),), num_ws=1)
