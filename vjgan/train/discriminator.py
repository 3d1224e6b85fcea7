"""StyleGAN2's residual discriminator, written from the paper's description.

From the top resolution down: a 1×1 fromRGB, then one residual block per resolution (3×3 conv,
3×3 conv with 2× down-sampling, plus a 1×1 down-sampled skip; the sum scaled by √½), and at
4×4 an epilogue: minibatch standard deviation, a 3×3 conv, a dense layer and the logit. Every
layer uses equalized learning rate (weights drawn from N(0, 1) and scaled by 1/√fan-in when
used), leaky ReLU ×√2, and blur-before-subsample with the [1, 3, 3, 1] filter. As in NVIDIA's
mixed-precision recipe, the highest `num_fp16_res` resolutions can run in half precision on CUDA
with activations clamped to ±conv_clamp.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..gan import ops
from ..gan.networks import config_to_json, fp16_threshold


@dataclass(frozen=True)
class DiscriminatorConfig:
    img_resolution: int
    channels: dict[int, int]  # feature maps per resolution, 4 .. img_resolution
    img_channels: int = 3
    mbstd_group: int = 4
    mbstd_channels: int = 1
    conv_clamp: float | None = 256.0
    num_fp16_res: int = 0
    resample_taps: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)

    def __post_init__(self) -> None:
        res = self.img_resolution
        if res < 8 or res & (res - 1):
            raise ValueError(f"img_resolution must be a power of two ≥ 8, got {res}")
        object.__setattr__(self, "channels", {int(k): int(v) for k, v in self.channels.items()})
        missing = [r for r in self.resolutions if r not in self.channels]
        if missing:
            raise ValueError(f"channels has no entry for resolutions {missing}")
        object.__setattr__(self, "resample_taps", tuple(float(t) for t in self.resample_taps))

    @property
    def resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    @property
    def fp16_resolution(self) -> int:
        return fp16_threshold(self.img_resolution, self.num_fp16_res)

    def to_json(self) -> str:
        return config_to_json(self)

    @classmethod
    def from_json(cls, text: str) -> "DiscriminatorConfig":
        d = json.loads(text)
        d["channels"] = {int(k): int(v) for k, v in d["channels"].items()}
        d["resample_taps"] = tuple(d.get("resample_taps", (1, 3, 3, 1)))
        return cls(**d)


class EqualConv2d(nn.Module):
    """Conv with equalized learning rate, optional 2× down-sampling (blur, then stride 2), bias and lrelu."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, *, activation: str = "lrelu",
                 bias: bool = True, down: bool = False, conv_clamp: float | None = None,
                 resample_taps: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)) -> None:
        super().__init__()
        self.activation, self.down, self.conv_clamp, self.kernel = activation, down, conv_clamp, kernel
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.register_buffer("down_kernel", ops.make_resample_kernel(resample_taps, gain=1.0), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        if self.down:
            # A 4-tap low-pass then a stride-2 conv: pad so that H → H/2 exactly
            # (H + 2p − 3 − (k − 1)) / 2 + 1 = H / 2  ⇒  p = (k + 1) / 2 for k = 3, p = 1 for k = 1.
            taps = self.down_kernel.shape[-1]
            pad = (taps - 2 + self.kernel - 1) // 2
            x = ops.blur(x, self.down_kernel, (pad, pad))
            x = F.conv2d(x, w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.kernel // 2)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if self.activation == "lrelu":
            bias = self.bias if self.bias is not None else torch.zeros(x.shape[1], device=x.device, dtype=x.dtype)
            return ops.bias_lrelu(x, bias, gain=gain, clamp=clamp)
        if self.bias is not None:
            x = x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        if gain != 1.0:
            x = x * gain
        return x.clamp(-clamp, clamp) if clamp is not None else x


class EqualLinear(nn.Module):
    """Dense layer with equalized learning rate and optional lrelu."""

    def __init__(self, in_features: int, out_features: int, *, activation: str = "linear") -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_gain = 1.0 / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain)
        if self.activation == "lrelu":
            return ops.bias_lrelu(x, self.bias)
        return x + self.bias


class DiscriminatorBlock(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig, resolution: int, first: bool) -> None:
        super().__init__()
        cin, cout = cfg.channels[resolution], cfg.channels[resolution // 2]
        self.resolution, self.first = resolution, first
        self.use_fp16 = resolution >= cfg.fp16_resolution
        kw = dict(conv_clamp=cfg.conv_clamp, resample_taps=cfg.resample_taps)
        if first:
            self.fromrgb = EqualConv2d(cfg.img_channels, cin, 1, **kw)
        self.conv0 = EqualConv2d(cin, cin, 3, **kw)
        self.conv1 = EqualConv2d(cin, cout, 3, down=True, **kw)
        self.skip = EqualConv2d(cin, cout, 1, activation="linear", bias=False, down=True, resample_taps=cfg.resample_taps)

    def forward(self, x: torch.Tensor, dtype: torch.dtype, channels_last: bool) -> torch.Tensor:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        x = x.to(dtype=dtype, memory_format=fmt)
        if self.first:
            x = self.fromrgb(x)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, gain=math.sqrt(0.5))
        return y.add_(x)


def minibatch_stddev(x: torch.Tensor, group_size: int, num_channels: int) -> torch.Tensor:
    """Append the standard deviation across groups of samples as extra feature maps (fights mode collapse)."""
    N, C, H, W = x.shape
    G = math.gcd(min(group_size, N), N)
    c = num_channels
    y = x.float().reshape(G, -1, c, C // c, H, W)
    y = y - y.mean(dim=0)
    y = y.square().mean(dim=0)
    y = (y + 1e-8).sqrt()
    y = y.mean(dim=[2, 3, 4])  # [N/G, c]
    y = y.reshape(-1, c, 1, 1).repeat(G, 1, H, W)
    return torch.cat([x, y.to(x.dtype)], dim=1)


class Discriminator(nn.Module):
    """Image [N, 3, R, R] in about [-1, 1] → realness logit [N, 1]."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = cfg
        self.block_resolutions = [r for r in reversed(cfg.resolutions) if r > 4]
        for i, res in enumerate(self.block_resolutions):
            setattr(self, f"b{res}", DiscriminatorBlock(cfg, res, first=(i == 0)))
        c4 = cfg.channels[4]
        if c4 % cfg.mbstd_channels:
            raise ValueError("channels at 4x4 must be a multiple of mbstd_channels")
        self.conv = EqualConv2d(c4 + cfg.mbstd_channels, c4, 3, conv_clamp=cfg.conv_clamp)
        self.fc = EqualLinear(c4 * 16, c4, activation="lrelu")
        self.out = EqualLinear(c4, 1)

    def forward(self, img: torch.Tensor, use_fp16: bool = False, channels_last: bool = False) -> torch.Tensor:
        x = img
        cuda = img.device.type == "cuda"
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            half = use_fp16 and cuda and block.use_fp16
            x = block(x, torch.float16 if half else torch.float32, channels_last and half)
        x = x.float().contiguous()
        x = minibatch_stddev(x, self.config.mbstd_group, self.config.mbstd_channels)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        return self.out(x)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
