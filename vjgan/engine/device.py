"""Which device plays the show, and how many CPU threads torch may take there."""

from __future__ import annotations

import os

import torch

from ..errors import UserError


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA where present, Apple's MPS next, the CPU otherwise (or what the user asked for)."""
    if requested:
        try:
            dev = torch.device(requested)
        except RuntimeError:
            raise UserError(f"--device {requested!r} is not a device (cuda, cuda:1, mps or cpu)") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU")
        if dev.type == "mps" and not mps_available():
            raise UserError("--device mps asked for, but this PyTorch has no MPS support here")
        if dev.type not in ("cuda", "mps", "cpu"):
            raise UserError(f"--device {requested!r}: vjgan plays on cuda, mps or cpu")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def live_cpu_threads(device: torch.device) -> int | None:
    """Torch's threads for a live show on the CPU: all cores but one, so the audio thread and the
    display are never starved (None: leave torch alone, the GPU does the work)."""
    if device.type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, (os.cpu_count() or 2) - 1)


def render_cpu_threads(device: torch.device, requested: int | None = None) -> int | None:
    """Torch's threads for a render on the CPU (None: leave torch's setting alone).

    Torch's workers share the cores with the encoder's. Measured on 2 cores (docs/benchmarks.md):
    with both cores for torch, its threads stall waiting for each other whenever the encoder
    takes a core, and generation ran 2–25× slower than with one. So by default torch gets half
    the cores, unless the user said otherwise (--threads, or OMP_NUM_THREADS).
    """
    if requested:
        return requested
    if device.type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, (os.cpu_count() or 2) // 2)
