"""Resampling by FIR filters, and StyleGAN3's filtered leaky ReLU, as pure functions on tensors.

Written from the StyleGAN3 paper (Karras et al. 2021, "Alias-Free Generative Adversarial
Networks", section 3.2 and its appendix): a pointwise nonlinearity creates frequencies that the
current sampling rate cannot hold, so each layer raises the rate (zero insertion and a low-pass
filter), applies the leaky ReLU there, and low-pass filters and decimates back down.

Two forms of the same maths:
* `resample_reference` / `filtered_lrelu_reference`: literally as described (insert zeros, pad,
  filter, keep every n-th sample); the StyleGAN3 reference network uses them.
* `upsample_strided` / `downsample_strided` / `filtered_lrelu_fast`: the fast path's form, which
  never multiplies an inserted zero nor computes a sample it then drops: up-sampling is a
  stride-`up` transposed convolution (each output phase reads only real samples: the polyphase
  decomposition), down-sampling a strided convolution (only kept samples are computed), each as
  depthwise 1-D passes for separable filters. Tests check the two forms against each other.

Filters are 1-D (separable: applied along both axes) or 2-D (radially symmetric, StyleGAN3-R);
`padding` is (left, right, top, bottom) in up-sampled pixels, negative values crop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)

Padding = tuple[int, int, int, int]


# ---------------------------------------------------------------------------------------------
# the reference form


def _depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Valid 2-D convolution (not correlation) of every channel with `kernel` [kh, kw]."""
    c = x.shape[1]
    k = kernel.flip([0, 1]).to(x.dtype)[None, None].expand(c, 1, -1, -1)
    return F.conv2d(x, k, groups=c)


def resample_reference(x: torch.Tensor, filt: torch.Tensor | None, *, up: int = 1, down: int = 1,
                       padding: Padding = (0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """Insert up−1 zeros after every sample, zero-pad (negative crops), filter, keep every down-th sample.

    `gain` multiplies the filter (up² keeps a zero-inserted image's brightness)."""
    n, c, h, w = x.shape
    if up > 1:
        spread = x.new_zeros(n, c, h * up, w * up)
        spread[:, :, ::up, ::up] = x
        x = spread
    x = F.pad(x, list(padding))
    if filt is not None:
        f = filt.to(torch.float32)
        if f.ndim == 1:  # separable: the same taps along both axes, half the gain each
            f = f * math.sqrt(gain)
            x = _depthwise(x, f[None, :])
            x = _depthwise(x, f[:, None])
        else:
            x = _depthwise(x, f * gain)
    elif gain != 1.0:
        x = x * gain
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def filtered_lrelu_reference(x: torch.Tensor, bias: torch.Tensor, up_filter: torch.Tensor, down_filter: torch.Tensor,
                             *, up: int, down: int, padding: Padding, gain: float = LRELU_GAIN,
                             slope: float = LRELU_SLOPE, clamp: float | None = None) -> torch.Tensor:
    """bias → up-sample by `up` with `up_filter` → leaky ReLU × gain, clamp → filter and decimate by `down`."""
    x = x + bias.to(x.dtype)[None, :, None, None]
    x = resample_reference(x, up_filter, up=up, padding=padding, gain=up * up)
    x = F.leaky_relu(x, slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return resample_reference(x, down_filter, down=down)


# ---------------------------------------------------------------------------------------------
# the fast form


def _fit(x: torch.Tensor, dim: int, start: int, length: int) -> torch.Tensor:
    """x[start : start + length] along `dim`, zero-filled where that range leaves x (a view when it does not)."""
    size = x.shape[dim]
    if start >= 0 and start + length <= size:
        return x.narrow(dim, start, length)
    before, after = -start, start + length - size
    pad = [0, 0] * (x.ndim - 1 - dim % x.ndim) + [before, after]
    return F.pad(x, pad)


def upsample_strided(x: torch.Tensor, taps: torch.Tensor, up: int, pad: tuple[int, int], dim: int) -> torch.Tensor:
    """Along one spatial axis (dim −1: width, −2: height): zero insertion, padding and a 1-D filter.

    A stride-`up` transposed convolution writes each input sample's taps into the output: zero
    insertion followed by convolution, with each output phase computed from the real samples
    only (the polyphase decomposition, done by the convolution library). The result is shifted
    and cut to the padded length. `taps` [T] already carries any gain; symmetric or not, it is
    applied as a convolution, like resample_reference."""
    c = x.shape[1]
    t = taps.numel()
    length = x.shape[dim] * up + pad[0] + pad[1] - t + 1
    shape = (1, t) if dim in (-1, 3) else (t, 1)
    stride = (1, up) if dim in (-1, 3) else (up, 1)
    k = taps.to(x.dtype).reshape(1, 1, *shape).expand(c, 1, *shape)
    y = F.conv_transpose2d(x, k, stride=stride, groups=c)
    # y[j] = Σ_i x[i]·taps[j − i·up]; the padded, filtered signal's sample m is y[m + T − 1 − pad_before].
    return _fit(y, dim, t - 1 - pad[0], length)


def downsample_strided(x: torch.Tensor, filt: torch.Tensor, down: int) -> torch.Tensor:
    """Filter and keep every down-th sample, computing only the kept ones (1-D taps on both axes, or 2-D)."""
    c = x.shape[1]
    f = filt.to(x.dtype)
    if f.ndim == 2:
        k = f.flip([0, 1])[None, None].expand(c, 1, -1, -1)
        return F.conv2d(x, k, stride=down, groups=c)
    t = f.numel()
    f = f.flip(0)
    x = F.conv2d(x, f.reshape(1, 1, 1, t).expand(c, 1, 1, t), stride=(1, down), groups=c)
    return F.conv2d(x, f.reshape(1, 1, t, 1).expand(c, 1, t, 1), stride=(down, 1), groups=c)


def filtered_lrelu_fast(x: torch.Tensor, up_taps: torch.Tensor, down_filter: torch.Tensor, *, up: int, down: int,
                        padding: Padding, clamp: float | None = None) -> torch.Tensor:
    """filtered_lrelu_reference after its bias, with every gain folded into `up_taps` (a 1-D filter
    × up × 2^¼ per axis carries up² and √2): up-sample per axis, leaky ReLU and clamp in place,
    then filter and decimate."""
    x = upsample_strided(x, up_taps, up, (padding[0], padding[1]), dim=-1)
    x = upsample_strided(x, up_taps, up, (padding[2], padding[3]), dim=-2)
    x = F.leaky_relu_(x, LRELU_SLOPE)
    if clamp is not None:
        x = x.clamp_(-clamp, clamp)
    return downsample_strided(x, down_filter, down)
