"""Projection: find the W+ latent whose picture matches a photo (the StyleGAN2 paper's projector, extended to W+).

The recipe (Karras et al. 2020, section 5 and appendix): start from w_avg; Adam on the latent with
a learning rate ramped up over the first 5% of the steps and down along a cosine over the last
25%; Gaussian noise added to the latent, σ = 0.05·σ_w·(1 − t/0.75)² (σ_w the spread of mapped w),
so the early steps explore and the late ones settle. Here a first phase optimises one w (every
row of W+ alike: a face the model can draw), and a second phase frees every row (W+: the details
the single w cannot reach), each phase with its own ramps; the latent noise belongs to the w phase
only (in W+ it cost 3 dB on the default model: docs/portrait.md). With `optimise_noise`, the noise maps
are fitted too, held to unit variance after each step and kept from carrying the picture by the
paper's regulariser (the squared autocorrelation of each map and its 2× reductions, weight 1e5).
The show plays the keyframe with the model's own noise, so by default the noise stays fixed and
what the preview shows is what the projector sees.

`--joint` fits several pictures of one subject together: the coarse rows (pose and face shape)
are shared in the W+ phase, the others stay each picture's own.

`ProjectionJob` runs on any device, reports each step through a callback, can be cancelled
between steps from another thread, and returns the keyframes. On CUDA the blocks the model was
trained in fp16 run in fp16 when that stays within tolerance of fp32 on this model.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from ..gan.networks import Generator
from ..motion.config import layer_rows
from ..motion.directions import sample_w
from .losses import PixelStructureLoss, psnr, ssim

FP16_TOLERANCE = 0.01  # mean |fp16 − fp32| of the picture ([-1, 1] range) that still counts as accurate
W_SAMPLES = 10_000


@dataclass(frozen=True)
class ProjectionSettings:
    steps: int = 500
    w_share: float = 0.25  # share of the steps spent on one w before every row is freed
    lr: float = 0.1  # peak learning rate of the w phase
    lr_wplus: float = 0.03  # peak learning rate of the W+ phase (0.01–0.1 measured: docs/portrait.md)
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    latent_noise: float = 0.05  # × σ_w at the start of the w phase
    latent_noise_ramp: float = 0.75
    optimise_noise: bool = False
    noise_regularize: float = 1e5
    joint: bool = False  # several pictures of one subject: share the coarse rows
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 100_000:
            raise UserError(f"--steps {self.steps}: must be between 1 and 100000")
        if not 0 <= self.w_share <= 1:
            raise UserError("the share of w steps must be in [0, 1]")
        if self.lr <= 0 or self.lr_wplus <= 0:
            raise UserError("learning rates must be positive")


@dataclass(frozen=True)
class ProjectionProgress:
    step: int  # 1-based, over both phases
    steps: int
    loss: float  # the objective (perceptual distance, plus noise regularisation when fitting noise)
    phase: str  # "w" or "w+"


@dataclass
class ProjectionResult:
    ws: np.ndarray  # [N, num_ws, w_dim] float32
    images: torch.Tensor  # [N, 3, R, R] on the CPU: the keyframes as the show plays them (model's noise)
    psnr: list[float]  # per picture, dB, of `images` against the targets
    ssim: list[float]
    loss_name: str
    loss: float
    seconds: float
    steps: int
    precision: str  # "fp32" or "fp16"
    noise: dict[str, np.ndarray] = field(default_factory=dict)  # the fitted noise maps, if fitted


class ProjectionCancelled(Exception):
    """The job was cancelled between two steps."""


Progress = Callable[[ProjectionProgress], None]


def learning_rate(t: float, peak: float, rampup: float, rampdown: float) -> float:
    """Linear ramp up over the first `rampup` of the phase, cosine ramp down over the last `rampdown`."""
    ramp = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / rampup) if rampup > 0 else 1.0
    return peak * ramp


def latent_noise_scale(t: float, start: float, ramp: float) -> float:
    """σ of the noise added to the latent: `start` (0.05·σ_w) decaying to 0 at `ramp` of the phase."""
    return start * max(0.0, 1.0 - t / ramp) ** 2


def noise_regularisation(maps: list[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation of each noise map at 1-pixel shifts, over its 2× reductions down to 8²."""
    total = maps[0].new_zeros(())
    for n in maps:
        x = n[None, None]
        while True:
            total = total + (x * torch.roll(x, 1, dims=3)).mean() ** 2 + (x * torch.roll(x, 1, dims=2)).mean() ** 2
            if x.shape[2] <= 8:
                break
            x = nn.functional.avg_pool2d(x, 2)
    return total


def fp16_is_accurate(G: Generator, device: torch.device, w: torch.Tensor) -> bool:
    """Whether the fp16 blocks reproduce fp32 on this model closely enough to fit against."""
    if device.type != "cuda" or G.config.num_fp16_res <= 0:
        return False
    with torch.no_grad():
        full = G.synthesis(w, noise_mode="const")
        half = G.synthesis(w, noise_mode="const", use_fp16=True)
    return bool(torch.isfinite(half).all()) and float((half - full).abs().mean()) <= FP16_TOLERANCE


class ProjectionJob:
    """Fit W+ latents to target pictures on one device; `run()` in any thread, `cancel()` from another."""

    def __init__(self, G: Generator, targets: torch.Tensor, settings: ProjectionSettings = ProjectionSettings(),
                 device: str | torch.device = "cpu", loss: nn.Module | None = None,
                 on_progress: Progress | None = None) -> None:
        res = G.img_resolution
        if targets.ndim != 4 or tuple(targets.shape[1:]) != (G.img_channels, res, res):
            raise ValueError(f"targets must be [N, {G.img_channels}, {res}, {res}], got {list(targets.shape)}")
        self.device = torch.device(device)
        # A private copy: the show may be drawing with G meanwhile, and fitted noise replaces buffers.
        self.G = copy.deepcopy(G).to(self.device).eval().requires_grad_(False)
        self.targets = targets.float().to(self.device)
        self.settings = settings
        self.loss = (loss or PixelStructureLoss()).to(self.device)
        self.on_progress = on_progress
        self.use_fp16 = False  # decided at the start of run(), on the device
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    # -----------------------------------------------------------------------------------------

    def run(self) -> ProjectionResult:
        s, G, dev = self.settings, self.G, self.device
        started = time.perf_counter()
        n, num_ws = self.targets.shape[0], G.num_ws
        w_samples = torch.from_numpy(sample_w(G, W_SAMPLES, seed=s.seed)).to(dev)
        w_avg = G.w_avg.detach().float().to(dev)
        sigma_w = float((w_samples - w_avg).square().sum(dim=1).mean().sqrt())
        self.use_fp16 = fp16_is_accurate(G, dev, w_avg.reshape(1, 1, -1).expand(1, num_ws, -1))
        gen = torch.Generator().manual_seed(s.seed)
        layers = G.synthesis.conv_layers()
        noise_maps: list[torch.Tensor] = []
        model_noise = [layer.noise_const for layer in layers]
        if s.optimise_noise:
            for layer in layers:
                n_map = torch.randn(layer.noise_const.shape, generator=gen).to(dev).requires_grad_(True)
                layer._buffers["noise_const"] = n_map  # this copy's noise is now the fitted one
                noise_maps.append(n_map)
        steps_w = int(round(s.steps * s.w_share))
        steps_plus = s.steps - steps_w
        loss_value = float("nan")

        # Phase 1: one w per picture, on every row.
        w = w_avg.reshape(1, 1, -1).repeat(n, 1, 1).requires_grad_(True)
        if steps_w:
            loss_value = self._phase("w", [w], lambda: w.expand(-1, num_ws, -1), steps_w, 0, s.lr,
                                     sigma_w * s.latent_noise, noise_maps, gen)
        # Phase 2: every row free; with --joint the coarse rows shared by all pictures.
        w_found = w.detach()
        if steps_plus:
            if s.joint and n > 1:
                coarse = len(layer_rows("coarse", num_ws))
                shared = w_found.mean(dim=0, keepdim=True).expand(1, coarse, -1).clone().requires_grad_(True)
                own = w_found.expand(-1, num_ws - coarse, -1).clone().requires_grad_(True)
                params = [shared, own]

                def assemble() -> torch.Tensor:
                    return torch.cat([shared.expand(n, -1, -1), own], dim=1)
            else:
                wplus = w_found.expand(-1, num_ws, -1).clone().requires_grad_(True)
                params = [wplus]

                def assemble() -> torch.Tensor:
                    return wplus
            loss_value = self._phase("w+", params, assemble, steps_plus, steps_w, s.lr_wplus, 0.0, noise_maps, gen)
            ws = assemble().detach()
        else:
            ws = w_found.expand(-1, num_ws, -1)
        fitted_noise = {}
        if noise_maps:
            fitted_noise = {f"noise_{i}": m.detach().cpu().numpy() for i, m in enumerate(noise_maps)}
            for layer, original in zip(layers, model_noise):
                layer._buffers["noise_const"] = original
        with torch.no_grad():
            images = G.synthesis(ws, noise_mode="const").float()  # as the show plays it
            quality_psnr = psnr(images, self.targets).tolist()
            quality_ssim = ssim(images, self.targets).tolist()
        return ProjectionResult(
            ws=ws.float().cpu().numpy().astype(np.float32), images=images.cpu(), psnr=quality_psnr, ssim=quality_ssim,
            loss_name=getattr(self.loss, "name", type(self.loss).__name__), loss=loss_value,
            seconds=time.perf_counter() - started, steps=s.steps, precision="fp16" if self.use_fp16 else "fp32",
            noise=fitted_noise)

    def _phase(self, phase: str, params: list[torch.Tensor], assemble: Callable[[], torch.Tensor], steps: int,
               done_before: int, peak_lr: float, latent_noise: float, noise_maps: list[torch.Tensor],
               gen: torch.Generator) -> float:
        s, G = self.settings, self.G
        optimiser = torch.optim.Adam(params + noise_maps, lr=peak_lr, betas=(0.9, 0.999))
        loss_value = float("nan")
        for i in range(steps):
            if self._cancelled.is_set():
                raise ProjectionCancelled()
            t = i / steps
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(t, peak_lr, s.lr_rampup, s.lr_rampdown)
            ws = assemble()
            scale = latent_noise_scale(t, latent_noise, s.latent_noise_ramp)
            if scale > 0:
                ws = ws + torch.randn(ws.shape, generator=gen).to(ws.device) * scale
            images = G.synthesis(ws, noise_mode="const", use_fp16=self.use_fp16).float()
            loss = self.loss(images, self.targets).sum()
            if noise_maps:
                loss = loss + s.noise_regularize * noise_regularisation(noise_maps)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if noise_maps:
                with torch.no_grad():
                    for m in noise_maps:
                        m.sub_(m.mean()).div_(m.square().mean().sqrt().clamp_min(1e-8))
            loss_value = float(loss.detach())
            if self.on_progress is not None:
                self.on_progress(ProjectionProgress(done_before + i + 1, s.steps, loss_value, phase))
        return loss_value

