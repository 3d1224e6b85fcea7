"""The synthesis layer traversal and the fp16 rule, shared by every architecture and both paths.

A synthesis network is described once, as a `SynthesisPlan`: the ordered steps, each saying
which module holds its weights, what it computes (`kind`), the resolution it works at, the row of
w+ it reads, the noise gain it takes, whether NVIDIA's precision policy runs it in half precision
and whether a whole picture exists after it (an exit point for the frame budget). The reference
networks (networks.py, stylegan3.py) and the fast frame path (fast.py) both walk that plan, so an
architecture's layer sequence is written in one place, and which layers run in fp16 is decided by
one rule (`step_dtype`), with one clamp rule (`activation_clamp`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

Precision = Literal["fp32", "fp16-all", "fp16-nvidia"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16-all", "fp16-nvidia")

# NVIDIA trains its mixed-precision networks with the top four resolutions in fp16 and clamps
# activations to ±256; networks trained in fp32 (TensorFlow releases, rosinality) get the same
# policy when run in half precision.
DEFAULT_FP16_RES = 4
FP16_CLAMP = 256.0


def fp16_threshold(img_resolution: int, num_fp16_res: int) -> int:
    """The lowest resolution run in fp16 when the top `num_fp16_res` resolutions are (never below 8).

    For StyleGAN3 the resolution is a layer's sampling rate; its rates are powers of two from 16
    up, so the floor never applies there."""
    if num_fp16_res <= 0:
        return img_resolution * 2
    return max(2 ** (int(math.log2(img_resolution)) + 1 - num_fp16_res), 8)


def trained_in_fp16(resolution: int, img_resolution: int, num_fp16_res: int) -> bool:
    """NVIDIA's policy for one layer: recorded fp16 resolutions, or the default top four."""
    return resolution >= fp16_threshold(img_resolution, num_fp16_res or DEFAULT_FP16_RES)


@dataclass(frozen=True)
class LayerStep:
    """One step of a synthesis network."""

    kind: str  # what the step computes; each architecture's modules name their own kinds
    module: str  # dotted path of the synthesis sub-module holding its weights ("b8.conv0", "L3_52_64")
    resolution: int  # feature-map side (StyleGAN2) or sampling rate (StyleGAN3) the step works at
    w_index: int | None = None  # the row of w+ it reads
    noise_index: int | None = None  # its per-layer noise gain, when it has noise
    fp16: bool = False  # NVIDIA's precision policy runs it in half precision
    exit: bool = False  # a whole picture at `resolution` exists after this step


@dataclass(frozen=True)
class SynthesisPlan:
    steps: tuple[LayerStep, ...]
    num_ws: int

    def __post_init__(self) -> None:
        if not self.steps or not self.steps[-1].exit:
            raise ValueError("a synthesis plan must end with an exit step (the finished picture)")

    @property
    def num_noise_layers(self) -> int:
        return sum(1 for s in self.steps if s.noise_index is not None)

    @property
    def exit_resolutions(self) -> list[int]:
        """Where a picture can be taken, smallest first; the last is the full image."""
        return [s.resolution for s in self.steps if s.exit]

    def until(self, exit_resolution: int | None = None) -> tuple[LayerStep, ...]:
        """The steps up to and including the exit point at `exit_resolution` (None: all of them)."""
        if exit_resolution is None:
            return self.steps
        for i, step in enumerate(self.steps):
            if step.exit and step.resolution == exit_resolution:
                return self.steps[: i + 1]
        raise ValueError(f"exit_resolution must be one of {self.exit_resolutions}, got {exit_resolution}")


def step_dtype(step: LayerStep, precision: Precision, device: torch.device | str, *,
               half_on_cpu: bool = False) -> torch.dtype:
    """The one fp16 rule: half precision only on CUDA, for every step ("fp16-all") or for the
    steps NVIDIA's policy runs in fp16 ("fp16-nvidia"); float32 otherwise. `half_on_cpu` lets a
    test check the half-precision maths on a machine without a GPU (slow, never for a show)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if (torch.device(device).type != "cuda" and not half_on_cpu) or precision == "fp32":
        return torch.float32
    if precision == "fp16-all" or step.fp16:
        return torch.float16
    return torch.float32


def activation_clamp(conv_clamp: float | None, dtype: torch.dtype) -> float | None:
    """The clamp a layer's activations get: the network's own, or ±256 when run in fp16 without one."""
    if conv_clamp is None and dtype == torch.float16:
        return FP16_CLAMP
    return conv_clamp
