"""The numerical building blocks of StyleGAN2, as pure functions on tensors.

Written from the StyleGAN2 paper (Karras et al. 2020, "Analyzing and Improving the Image Quality
of StyleGAN") and the published behaviour of the released networks. Every function here is
stateless so tests can feed it arrays and the fast path can reuse or replace it piece by piece.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # keeps the activations' second moment through a leaky ReLU


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit root-mean-square (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def bias_lrelu(x: torch.Tensor, bias: torch.Tensor, gain: float = 1.0, clamp: float | None = None) -> torch.Tensor:
    """Add a per-channel bias, apply leaky ReLU scaled by sqrt(2)*gain, clamp to ±clamp.

    The clamp keeps fp16 activations finite (networks trained in mixed precision were trained with
    it, so it is part of their function); `clamp` is already multiplied by `gain` by the caller.
    """
    shape = [1, -1] + [1] * (x.ndim - 2)
    x = F.leaky_relu(x + bias.to(x.dtype).reshape(shape), LRELU_SLOPE)
    total_gain = LRELU_GAIN * gain
    if total_gain != 1.0:
        x = x * total_gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def bias_linear(x: torch.Tensor, bias: torch.Tensor, clamp: float | None = None) -> torch.Tensor:
    """Add a per-channel bias with no activation, then clamp (used by the toRGB layers)."""
    shape = [1, -1] + [1] * (x.ndim - 2)
    x = x + bias.to(x.dtype).reshape(shape)
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def make_resample_kernel(taps: tuple[float, ...] | list[float], gain: float = 1.0) -> torch.Tensor:
    """The 2-D low-pass kernel used for up-sampling: outer product of the taps, normalised to sum `gain`."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f2 = torch.outer(f, f)
    return f2 * (gain / f2.sum())


def blur(x: torch.Tensor, kernel2d: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
    """Depthwise 2-D filter with `pad` = (before, after) zero padding on both spatial axes.

    The kernel is symmetric for every filter StyleGAN2 uses, so correlation and convolution agree.
    """
    channels = x.shape[1]
    k = kernel2d.to(device=x.device, dtype=x.dtype)[None, None].expand(channels, 1, -1, -1)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, k, groups=channels)


def upsample2x(x: torch.Tensor, kernel2d_gain4: torch.Tensor) -> torch.Tensor:
    """2x up-sampling by zero insertion and low-pass filtering (the skip images' up-sampler).

    Zero insertion followed by a 4-tap filter equals a stride-2 transposed convolution with the
    filter, cropped by one pixel on each side (the filter's delay); the kernel must sum to 4 to
    keep the image's brightness.
    """
    channels = x.shape[1]
    k = kernel2d_gain4.to(device=x.device, dtype=x.dtype)[None, None].expand(channels, 1, -1, -1)
    y = F.conv_transpose2d(x, k, stride=2, groups=channels)
    crop = (k.shape[-1] - 2) // 2
    return y[:, :, crop : y.shape[2] - crop, crop : y.shape[3] - crop]


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """1/‖w·s‖ for each sample and output channel: [N, C_out].

    ‖w·s‖² = Σ_i s_i² Σ_kk w_oikk², so it is one small matrix product instead of materialising the
    per-sample modulated weights.
    """
    w_sq = weight.square().sum(dim=[2, 3])  # [C_out, C_in]
    return (styles.square() @ w_sq.t() + eps).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool = True,
    up: bool = False,
    up_kernel2d_gain4: torch.Tensor | None = None,
    padding: int | None = None,
) -> torch.Tensor:
    """StyleGAN2's modulated convolution, computed without per-sample weights.

    Modulating the weight's input channels by `styles` equals scaling the input activations, and
    demodulation is a per-output-channel scale after the convolution; so one shared-weight conv
    serves the whole batch (fast for batches, friendly to CUDA graphs and cuDNN).

    `up=True` doubles the resolution: a stride-2 transposed convolution followed by the [1,3,3,1]
    low-pass filter, which is how the networks were trained (their stored weights assume it).
    `padding` defaults to k // 2 (same size out); StyleGAN3 pads by k − 1 (the full convolution).
    """
    dtype = x.dtype
    w = weight.to(dtype)
    s = styles.to(dtype)
    if dtype == torch.float16 and demodulate:
        # Pre-scale so that fp16 products cannot overflow; demodulation makes the result
        # independent of a per-output-channel weight scale and a per-sample style scale.
        w = w * (1.0 / math.sqrt(w[0].numel())) / w.abs().amax(dim=[1, 2, 3], keepdim=True)
        s = s / s.abs().amax(dim=1, keepdim=True)
    x = x * s[:, :, None, None]
    k = weight.shape[-1]
    if up:
        assert up_kernel2d_gain4 is not None
        x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
        # The transposed conv grows the image to 2H+k-2; the filter (length 4) trims it to 2H.
        taps = up_kernel2d_gain4.shape[-1]
        total_pad = taps - 1 - (k - 2)
        x = blur(x, up_kernel2d_gain4, (total_pad // 2, total_pad - total_pad // 2))
    else:
        x = F.conv2d(x, w, padding=k // 2 if padding is None else padding)
    if demodulate:
        d = demodulation_coefficients(w.float(), s.float()).to(dtype)
        x = x * d[:, :, None, None]
    return x
