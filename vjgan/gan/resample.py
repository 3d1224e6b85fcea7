"""Resampling by FIR filters, and StyleGAN3's filtered leaky ReLU, as pure functions on tensors.

Written from the StyleGAN3 paper (Karras et al. 2021, "Alias-Free Generative Adversarial
Networks", section 3.2 and its appendix): a pointwise nonlinearity creates frequencies that the
current sampling rate cannot hold, so each layer raises the rate (zero insertion and a low-pass
filter), applies the leaky ReLU there, and low-pass filters and decimates back down.

Two forms of the same maths:
* `resample_reference` / `filtered_lrelu_reference`: literally as described (insert zeros, pad,
  filter, keep every n-th sample); the StyleGAN3 reference network uses them.
* `upsample_strided` / `downsample_strided` / `FilteredLReLU`: the fast path's form, which
  never multiplies an inserted zero nor computes a sample it then drops: up-sampling is a
  stride-`up` transposed convolution (each output phase reads only real samples: the polyphase
  decomposition), down-sampling a strided convolution (only kept samples are computed), each as
  depthwise 1-D passes for separable filters. Tests check the two forms against each other.

Filters are 1-D (separable: applied along both axes) or 2-D (radially symmetric, StyleGAN3-R);
`padding` is (left, right, top, bottom) in up-sampled pixels, negative values crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def width_kernel(taps: torch.Tensor, channels: int) -> torch.Tensor:
    """Depthwise conv weights [C, 1, 1, T] that apply 1-D `taps` along the width."""
    return taps.reshape(1, 1, 1, -1).repeat(channels, 1, 1, 1).contiguous()


def height_kernel(taps: torch.Tensor, channels: int) -> torch.Tensor:
    """Depthwise conv weights [C, 1, T, 1] that apply 1-D `taps` along the height."""
    return taps.reshape(1, 1, -1, 1).repeat(channels, 1, 1, 1).contiguous()


def upsample_strided(x: torch.Tensor, kernel: torch.Tensor, up: int, pad: tuple[int, int]) -> torch.Tensor:
    """Zero insertion, padding and a 1-D filter along the axis of `kernel` (width_kernel or height_kernel).

    A stride-`up` transposed convolution writes each input sample's taps into the output: zero
    insertion followed by convolution, with each output phase computed from the real samples
    only (the polyphase decomposition, done by the convolution library). The result is shifted
    and cut to the padded length. The taps carry any gain; symmetric or not, they are applied as
    a convolution, like resample_reference."""
    width = kernel.shape[-2] == 1
    dim = -1 if width else -2
    t = kernel.shape[-1] if width else kernel.shape[-2]
    length = x.shape[dim] * up + pad[0] + pad[1] - t + 1
    y = F.conv_transpose2d(x, kernel, stride=(1, up) if width else (up, 1), groups=x.shape[1])
    # y[j] = Σ_i x[i]·taps[j − i·up]; the padded, filtered signal's sample m is y[m + T − 1 − pad_before].
    return _fit(y, dim, t - 1 - pad[0], length)


def downsample_strided(x: torch.Tensor, kernels: tuple[torch.Tensor, ...], down: int) -> torch.Tensor:
    """Filter and keep every down-th sample, computing only the kept ones. `kernels`: depthwise
    correlation weights, one [C, 1, T, T] for a 2-D filter or a width and a height kernel."""
    for k in kernels:
        stride = (down, down) if k.shape[-1] == k.shape[-2] else ((1, down) if k.shape[-2] == 1 else (down, 1))
        x = F.conv2d(x, k, stride=stride, groups=x.shape[1])
    return x


@dataclass(frozen=True)
class FilteredLReLU:
    """StyleGAN3's nonlinearity prepared for one layer: depthwise kernels made once, reused per frame."""

    up_width: torch.Tensor  # [C, 1, 1, T]: taps × up × 2^¼, carrying the zero-insertion gain and √2
    up_height: torch.Tensor  # [C, 1, T, 1]
    down_kernels: tuple[torch.Tensor, ...]  # flipped down filter: one 2-D kernel or width and height
    up: int
    down: int
    padding: Padding
    clamp: float | None

    @classmethod
    def prepare(cls, up_filter: torch.Tensor, down_filter: torch.Tensor, channels: int, *, up: int, down: int,
                padding: Padding, clamp: float | None, gain: float = LRELU_GAIN,
                dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> "FilteredLReLU":
        taps = up_filter.detach().float() * (up * math.sqrt(gain))  # up² and the gain, split over two axes
        f = down_filter.detach().float()
        if f.ndim == 2:
            down_kernels = (f.flip([0, 1])[None, None].repeat(channels, 1, 1, 1).contiguous(),)
        else:
            down_kernels = (width_kernel(f.flip(0), channels), height_kernel(f.flip(0), channels))

        def put(k: torch.Tensor) -> torch.Tensor:
            return k.to(device, dtype)

        return cls(put(width_kernel(taps, channels)), put(height_kernel(taps, channels)),
                   tuple(put(k) for k in down_kernels), up, down, padding, clamp)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """filtered_lrelu_reference after its bias: up-sample per axis, leaky ReLU and clamp in
        place, then filter and decimate."""
        p = self.padding
        x = upsample_strided(x, self.up_width, self.up, (p[0], p[1]))
        x = upsample_strided(x, self.up_height, self.up, (p[2], p[3]))
        x = F.leaky_relu_(x, LRELU_SLOPE)
        if self.clamp is not None:
            x = x.clamp_(-self.clamp, self.clamp)
        return downsample_strided(x, self.down_kernels, self.down)
