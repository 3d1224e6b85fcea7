"""The fast path's StyleGAN3 steps: each layer prepared once, then lean per-frame maths.

FastSynthesis (fast.py) walks the network's synthesis plan and hands the StyleGAN3 steps here:

* the Fourier input keeps its frequencies, phases and sample positions on the device; the
  transform comes from a device buffer, so it changes between CUDA-graph replays;
* an alias-free layer folds the style, demodulation and input gain into the convolution weights
  at batch 1 (or into one per-channel scale for batches) and its bias into the convolution, and
  runs its nonlinearity as resample.FilteredLReLU: depthwise kernels made once, the up-sampling
  gain and the leaky ReLU's √2 folded into them, no multiplication by an inserted zero and no
  computed sample thrown away;
* the ToRGB layer carries the output scale in its weights, bias and clamp.

The CPU runs the same prepared maths in fp32; tests hold it to the reference network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .plan import LayerStep, activation_clamp
from .resample import FilteredLReLU
from .stylegan3 import AliasFreeLayer, FourierFeatures


@dataclass
class FourierStep:
    step: LayerStep
    dtype: torch.dtype
    affine_weight: torch.Tensor  # [4, w_dim], gain folded
    affine_bias: torch.Tensor  # [4]
    freqs: torch.Tensor  # [C, 2]
    phases: torch.Tensor  # [C]
    positions: torch.Tensor  # [S]: sample positions along each axis
    mix: torch.Tensor  # [C, C]: the channel-mixing layer, transposed and scaled
    bandwidth: float
    sampling_rate: float


@dataclass
class AliasFreeStep:
    step: LayerStep
    dtype: torch.dtype
    affine_weight: torch.Tensor  # [C_in, w_dim], gain folded
    affine_bias: torch.Tensor
    weight: torch.Tensor  # [C_out, C_in, k, k] compute dtype
    weight_sq: torch.Tensor  # [C_out, C_in] fp32, Σ over the kernel of weight², for demodulation
    bias: torch.Tensor  # [C_out] compute dtype
    input_gain: float  # 1/√(tracked mean square of the input)
    nonlinearity: FilteredLReLU  # its kernels carry the zero-insertion gain and the √2
    conv_padding: int
    modulate_weights: bool  # batch 1: fold styles into the (smaller) weights


@dataclass
class ImageStep:
    step: LayerStep
    affine_weight: torch.Tensor  # weight gain, input gain and output scale folded
    affine_bias: torch.Tensor
    weight: torch.Tensor  # [C_img, C_in, 1, 1] fp32
    bias: torch.Tensor  # × output scale
    clamp: float | None  # × output scale


def _affine(layer, device: torch.device, gain: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    fc = layer.affine
    return ((fc.weight.detach().float() * fc.weight_gain * gain).to(device),
            (fc.bias.detach().float() * fc.bias_gain * gain).to(device))


def prepare_fourier(step: LayerStep, module: FourierFeatures, dtype: torch.dtype, device: torch.device) -> FourierStep:
    affine_weight, affine_bias = _affine(module, device)
    positions = (torch.arange(module.size, dtype=torch.float32) + 0.5 - module.size / 2) / module.sampling_rate
    return FourierStep(
        step=step, dtype=dtype, affine_weight=affine_weight, affine_bias=affine_bias,
        freqs=module.freqs.detach().float().to(device), phases=module.phases.detach().float().to(device),
        positions=positions.to(device), mix=(module.weight.detach().float() / math.sqrt(module.channels)).t().contiguous().to(device),
        bandwidth=module.bandwidth, sampling_rate=module.sampling_rate,
    )


def prepare_alias_free(step: LayerStep, module: AliasFreeLayer, dtype: torch.dtype, device: torch.device,
                       memory_format: torch.memory_format) -> AliasFreeStep:
    g = module.geometry
    weight = module.weight.detach().float()
    affine_weight, affine_bias = _affine(module, device)
    in_size = g.in_size
    return AliasFreeStep(
        step=step, dtype=dtype, affine_weight=affine_weight, affine_bias=affine_bias,
        weight=weight.to(device, dtype).contiguous(memory_format=memory_format),
        weight_sq=weight.square().sum(dim=[2, 3]).to(device),
        bias=module.bias.detach().to(device, dtype),
        input_gain=float(module.magnitude_ema.detach().float().rsqrt()),
        nonlinearity=FilteredLReLU.prepare(module.up_filter, module.down_filter, g.out_channels, up=g.up, down=g.down,
                                           padding=g.padding, clamp=activation_clamp(module.conv_clamp, dtype),
                                           dtype=dtype, device=device),
        conv_padding=g.conv_kernel - 1,
        modulate_weights=weight.numel() <= g.in_channels * in_size * in_size,
    )


def prepare_image(step: LayerStep, module: AliasFreeLayer, output_scale: float, dtype: torch.dtype,
                  device: torch.device) -> ImageStep:
    g = module.geometry
    gain = float(module.magnitude_ema.detach().float().rsqrt()) / math.sqrt(g.in_channels * g.conv_kernel**2)
    affine_weight, affine_bias = _affine(module, device, gain * output_scale)
    # clamp(y)·scale = clamp(y·scale) at ±clamp·scale, for a positive scale.
    clamp = activation_clamp(module.conv_clamp, dtype)
    return ImageStep(step=step, affine_weight=affine_weight, affine_bias=affine_bias,
                     weight=module.weight.detach().float().to(device), bias=(module.bias.detach().float() * output_scale).to(device),
                     clamp=None if clamp is None else clamp * output_scale)


# ---------------------------------------------------------------------------------------------
# per frame


def _styles(ws: torch.Tensor, layer: FourierStep | AliasFreeStep | ImageStep) -> torch.Tensor:
    return torch.addmm(layer.affine_bias, ws[:, layer.step.w_index], layer.affine_weight.t())


def fourier_features(layer: FourierStep, ws: torch.Tensor, transform: torch.Tensor,
                     memory_format: torch.memory_format) -> torch.Tensor:
    """The input features [N, C, S, S] for w row 0 and a transform [3, 3] or [N, 3, 3] (fp32 maths)."""
    n = ws.shape[0]
    t = _styles(ws, layer)
    t = t / t[:, :2].norm(dim=1, keepdim=True)
    cos, sin, tx, ty = t.unbind(dim=1)
    zero, one = torch.zeros_like(cos), torch.ones_like(cos)
    rt = torch.stack([torch.stack([cos, -sin, -cos * tx + sin * ty], dim=1),
                      torch.stack([sin, cos, -sin * tx - cos * ty], dim=1),
                      torch.stack([zero, zero, one], dim=1)], dim=1)
    m = rt @ transform.expand(n, 3, 3)
    freqs = layer.freqs @ m[:, :2, :2]  # [N, C, 2]
    phases = layer.phases + (layer.freqs @ m[:, :2, 2:]).squeeze(2)
    amplitude = (1 - (freqs.norm(dim=2) - layer.bandwidth) / (layer.sampling_rate / 2 - layer.bandwidth)).clamp(0, 1)
    p = layer.positions
    arg = p[None, None, :, None] * freqs[:, None, None, :, 0] + p[None, :, None, None] * freqs[:, None, None, :, 1]
    x = torch.sin((arg + phases[:, None, None, :]) * (2 * math.pi)) * amplitude[:, None, None, :]
    x = (x @ layer.mix).permute(0, 3, 1, 2)  # [N, C, S, S], laid out channels-last
    return x.to(layer.dtype).contiguous(memory_format=memory_format)


def alias_free_layer(layer: AliasFreeStep, x: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
    dtype = layer.dtype
    x = x.to(dtype)
    s = _styles(ws, layer)  # [N, C_in] fp32
    d = (s.square() @ layer.weight_sq.t() + 1e-8).rsqrt() * layer.input_gain  # [N, C_out]
    if x.shape[0] == 1 and layer.modulate_weights:
        w = (layer.weight.float() * s[0][None, :, None, None] * d[0][:, None, None, None]).to(dtype)
        y = F.conv2d(x, w, layer.bias, padding=layer.conv_padding)
    else:
        if dtype == torch.float16:
            # Keep fp16 products in range; demodulation undoes a per-sample style scale.
            s_max = s.abs().amax(dim=1, keepdim=True)
            s, d = s / s_max, d * s_max
        y = F.conv2d(x * s.to(dtype)[:, :, None, None], layer.weight, padding=layer.conv_padding)
        y = torch.addcmul(layer.bias[None, :, None, None], y, d.to(dtype)[:, :, None, None])
    return layer.nonlinearity(y)


def image_layer(layer: ImageStep, x: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
    """The picture [N, C, H, W] in float32, output scale applied."""
    s = _styles(ws, layer)
    if x.shape[0] == 1:
        y = F.conv2d(x, (layer.weight * s[0][None, :, None, None]).to(x.dtype))
    else:
        y = F.conv2d(x * s.to(x.dtype)[:, :, None, None], layer.weight.to(x.dtype))
    y = y.float() + layer.bias[None, :, None, None]
    return y if layer.clamp is None else y.clamp(-layer.clamp, layer.clamp)
