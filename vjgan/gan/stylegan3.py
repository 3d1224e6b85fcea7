"""StyleGAN3 (alias-free) synthesis network, configs T and R.

Written from the StyleGAN3 paper (Karras et al. 2021, "Alias-Free Generative Adversarial
Networks") and the tensors NVIDIA's snapshots hold. The mapping network, the equalized-lr dense
layer and the modulated convolution are StyleGAN2's (networks.py, ops.py); what is new here:

* the input is a set of Fourier features in continuous coordinates — sinusoids with stored random
  frequencies and phases — turned and shifted per sample by a learned rotation + translation and
  by a user transform (the motion a VJ plays), then mixed by a learned linear layer;
* every layer is a modulated convolution (3×3 in config T, 1×1 in config R) whose leaky ReLU runs
  at a raised sampling rate between two low-pass filters (resample.py), so the network does not
  alias and stays equivariant to translation (T) and rotation (R);
* each layer's input is divided by the root of its tracked mean square (`magnitude_ema`);
* the last layer is a plain modulated 1×1 convolution to RGB, scaled by `output_scale`.

Parameter and buffer names follow NVIDIA's stylegan3 state dicts, so a snapshot's tensors load
as they are. Every filter, frequency, phase and magnitude is read from the file; the paper's
schedule of cutoffs and sampling rates (`StyleGAN3Config.from_paper`) is only used to build new
networks (benchmarks, tests), and a test checks it against the files.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import ops, resample
from .networks import NOISE_MODES, FullyConnected
from .plan import LayerStep, SynthesisPlan, activation_clamp, fp16_threshold, step_dtype, trained_in_fp16

# The paper's schedule (its appendix on hyperparameters): 14 layers plus ToRGB, the last two
# critically sampled; cutoffs from 2 cycles per unit to half the image's sampling rate, stopbands
# from 2^2.1 to 2^0.3 above the last cutoff; 10 samples of margin around each feature map;
# filters of 6 taps per sampling factor; the leaky ReLU at twice the layer's rate.
PAPER_SCHEDULE = dict(num_layers=14, num_critical=2, first_cutoff=2.0, first_stopband=2**2.1,
                      last_stopband_rel=2**0.3, margin=10, filter_size=6, lrelu_upsampling=2)


@dataclass(frozen=True)
class LayerGeometry:
    """One synthesis layer: channels, feature-map sizes (square), sampling rates, filters, padding."""

    name: str  # the state-dict name, L{index}_{out_size}_{out_channels}
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    up: int  # sampling factor up to the rate the leaky ReLU runs at
    down: int  # and back down
    up_taps: int
    down_taps: int
    down_radial: bool  # a radially symmetric 2-D down filter (config R) instead of a separable one
    padding: tuple[int, int, int, int]  # left, right, top, bottom, in up-sampled pixels (negative crops)
    conv_kernel: int
    is_torgb: bool = False

    @property
    def tmp_sampling_rate(self) -> int:
        return self.in_sampling_rate * self.up


@dataclass(frozen=True)
class StyleGAN3Config:
    """Everything needed to build a StyleGAN3 generator; stored as JSON beside the weights."""

    z_dim: int
    w_dim: int
    img_resolution: int
    layers: tuple[LayerGeometry, ...]
    input_channels: int
    input_size: int
    input_sampling_rate: float
    input_bandwidth: float
    c_dim: int = 0
    img_channels: int = 3
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01
    mapping_hidden_features: int | None = None
    embed_features: int | None = None
    conv_clamp: float | None = 256.0
    num_fp16_res: int = 0
    w_avg_beta: float = 0.998
    output_scale: float = 0.25

    def __post_init__(self) -> None:
        layers = tuple(g if isinstance(g, LayerGeometry) else LayerGeometry(**{**g, "padding": tuple(g["padding"])})
                       for g in self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers or not layers[-1].is_torgb or any(g.is_torgb for g in layers[:-1]):
            raise ValueError("a StyleGAN3 network ends with exactly one ToRGB layer")
        if (self.input_channels, self.input_size) != (layers[0].in_channels, layers[0].in_size):
            raise ValueError("the Fourier input does not match the first layer's channels and size")
        for a, b in zip(layers, layers[1:]):
            if (a.out_channels, a.out_size, a.out_sampling_rate) != (b.in_channels, b.in_size, b.in_sampling_rate):
                raise ValueError(f"layer {b.name} does not take what {a.name} gives")
        last = layers[-1]
        if (last.out_channels, last.out_size) != (self.img_channels, self.img_resolution):
            raise ValueError("the last layer does not produce the image")
        if self.z_dim == 0 and self.c_dim == 0:
            raise ValueError("a generator needs z_dim > 0 or c_dim > 0")

    @classmethod
    def from_paper(cls, config: str, *, img_resolution: int, z_dim: int = 512, w_dim: int = 512,
                   channel_base: int = 32768, channel_max: int = 512, img_channels: int = 3, **kwargs: Any) -> "StyleGAN3Config":
        """The paper's layer schedule for config "t" (3×3 convs) or "r" (1×1 convs, radial filters).

        NVIDIA's configs double channel_base and channel_max for R; pass the doubled values."""
        if config not in ("t", "r"):
            raise ValueError("StyleGAN3 config must be 't' or 'r'")
        s = PAPER_SCHEDULE
        n, crit = s["num_layers"], s["num_critical"]
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * s["last_stopband_rel"]
        exponents = np.minimum(np.arange(n + 1) / (n - crit), 1.0)
        cutoffs = s["first_cutoff"] * (last_cutoff / s["first_cutoff"]) ** exponents
        stopbands = s["first_stopband"] * (last_stopband / s["first_stopband"]) ** exponents
        # The lowest power-of-two rate that holds the stopband, capped at the image's.
        rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution)))).astype(int)
        half_widths = np.maximum(stopbands, rates / 2) - cutoffs
        sizes = rates + 2 * s["margin"]
        sizes[-2:] = img_resolution  # the critically sampled end carries no margin
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max)).astype(int)
        channels[-1] = img_channels
        kernel = 3 if config == "t" else 1
        layers = []
        for i in range(n + 1):
            prev = max(i - 1, 0)
            torgb = i == n
            tmp = max(rates[prev], rates[i]) * (1 if torgb else s["lrelu_upsampling"])
            up, down = int(tmp // rates[prev]), int(tmp // rates[i])
            up_taps = s["filter_size"] * up if up > 1 and not torgb else 1
            down_taps = s["filter_size"] * down if down > 1 and not torgb else 1
            layers.append(LayerGeometry(
                name=f"L{i}_{sizes[i]}_{channels[i]}", in_channels=int(channels[prev]), out_channels=int(channels[i]),
                in_size=int(sizes[prev]), out_size=int(sizes[i]),
                in_sampling_rate=int(rates[prev]), out_sampling_rate=int(rates[i]),
                in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[i]),
                in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[i]),
                up=up, down=down, up_taps=up_taps, down_taps=down_taps,
                down_radial=config == "r" and i < n - crit,
                padding=_centred_padding(int(sizes[prev]), int(sizes[i]), kernel if not torgb else 1, up, down, up_taps, down_taps),
                conv_kernel=kernel if not torgb else 1, is_torgb=torgb,
            ))
        return cls(z_dim=z_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                   layers=tuple(layers), input_channels=int(channels[0]), input_size=int(sizes[0]),
                   input_sampling_rate=float(rates[0]), input_bandwidth=float(cutoffs[0]), **kwargs)

    @property
    def architecture(self) -> str:
        return "stylegan3-r" if self.layers[0].conv_kernel == 1 else "stylegan3-t"

    @property
    def num_ws(self) -> int:
        return len(self.layers) + 1  # one row for the input's transform, one per layer

    @property
    def fp16_resolution(self) -> int:
        """Layers sampled at and above this rate were trained in fp16."""
        return fp16_threshold(self.img_resolution, self.num_fp16_res)

    def synthesis_plan(self) -> SynthesisPlan:
        """Fourier input (w row 0), then each layer in order (rows 1..), the last one the picture."""
        steps = [LayerStep("fourier", "input", int(self.input_sampling_rate), w_index=0)]
        for i, g in enumerate(self.layers):
            steps.append(LayerStep(
                "image" if g.is_torgb else "alias_free", g.name, g.out_sampling_rate, w_index=i + 1,
                fp16=trained_in_fp16(g.out_sampling_rate, self.img_resolution, self.num_fp16_res), exit=g.is_torgb,
            ))
        return SynthesisPlan(tuple(steps), num_ws=self.num_ws)

    def build_synthesis(self) -> "AliasFreeSynthesis":
        return AliasFreeSynthesis(self)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "StyleGAN3Config":
        d = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown generator settings {sorted(unknown)}")
        return cls(**d)


def _centred_padding(in_size: int, out_size: int, kernel: int, up: int, down: int, up_taps: int,
                     down_taps: int) -> tuple[int, int, int, int]:
    """Padding that makes the output grid land centred on the input grid (the paper treats a
    sample as the centre of its pixel, so both grids share their middle)."""
    total = (out_size - 1) * down + 1  # samples needed before decimation
    total -= (in_size + kernel - 1) * up  # samples there are after the full convolution and zero insertion
    total += up_taps + down_taps - 2  # samples the two filters consume
    before = (total + up) // 2
    return (before, total - before, before, total - before)


def design_lowpass(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> torch.Tensor | None:
    """A Kaiser-windowed low-pass filter (the paper's choice): 1-D sinc, or a 2-D jinc for radial
    symmetry. None when one tap would do (no resampling)."""
    if numtaps == 1:
        return None
    import scipy.signal
    import scipy.special

    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs), dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(x[None, :], x[:, None])
    safe_r = np.where(r > 0, r, 1.0)
    # The impulse response of an ideal circular low-pass of radius `cutoff`.
    jinc = np.where(r > 0, cutoff * scipy.special.j1(2 * np.pi * cutoff * safe_r) / safe_r, np.pi * cutoff**2)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = jinc * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


def view_transform(angle_deg: float = 0.0, translate: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The input transform that shows the picture turned by `angle_deg` and moved by `translate`
    (in image widths): the inverse of that rotation + translation, the matrix NVIDIA's visualizer
    writes into the network's input."""
    a = math.radians(angle_deg)
    view = np.array([[math.cos(a), math.sin(a), translate[0]],
                     [-math.sin(a), math.cos(a), translate[1]],
                     [0.0, 0.0, 1.0]])
    return np.linalg.inv(view).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# modules


class FourierFeatures(nn.Module):
    """The synthesis input: sinusoids in continuous coordinates, turned and shifted per sample.

    A feature is sin(2π(f·p + φ)) at picture position p (in units where the input has
    `sampling_rate` samples per unit). A learned dense layer reads w and gives a rotation
    (cos, sin) and a translation; with the user transform U they make one matrix M = R·T·U that
    maps picture coordinates to feature-plane coordinates, so f·(A p + b) + φ becomes
    (Aᵀf)·p + (f·b + φ). Frequencies that a transform pushes towards the sampling limit fade out
    rather than alias. A learned linear layer then mixes the channels.
    """

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float) -> None:
        super().__init__()
        self.channels, self.size = channels, size
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        self.affine = FullyConnected(w_dim, 4)
        with torch.no_grad():  # start as the identity: no rotation, no translation
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.register_buffer("transform", torch.eye(3))
        # New networks draw frequencies uniformly in the disc of radius `bandwidth`; loaded ones keep theirs.
        radius = bandwidth * torch.rand(channels).sqrt()
        angle = 2 * math.pi * torch.rand(channels)
        self.register_buffer("freqs", torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1))
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def forward(self, w: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        n = w.shape[0]
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)  # (cos, sin) on the unit circle; the shift scales with it
        cos, sin, tx, ty = t.unbind(dim=1)
        zero, one = torch.zeros_like(cos), torch.ones_like(cos)
        # Rotation after translation by −(tx, ty): R·T as one matrix.
        rt = torch.stack([
            torch.stack([cos, -sin, -cos * tx + sin * ty], dim=1),
            torch.stack([sin, cos, -sin * tx - cos * ty], dim=1),
            torch.stack([zero, zero, one], dim=1),
        ], dim=1)
        user = self.transform if transform is None else transform.to(w.device, torch.float32)
        m = rt @ user.expand(n, 3, 3)
        freqs = self.freqs[None] @ m[:, :2, :2]  # [N, C, 2]: Aᵀf
        phases = self.phases[None] + (self.freqs[None] @ m[:, :2, 2:]).squeeze(2)  # φ + f·b
        amplitude = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        # Sample positions: pixel centres, the picture's middle at 0.
        p = (torch.arange(self.size, device=w.device, dtype=torch.float32) + 0.5 - self.size / 2) / self.sampling_rate
        arg = (p[None, None, :, None] * freqs[:, None, None, :, 0] + p[None, :, None, None] * freqs[:, None, None, :, 1]
               + phases[:, None, None, :])  # [N, H, W, C]
        x = torch.sin(arg * (2 * math.pi)) * amplitude[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class AliasFreeLayer(nn.Module):
    """Modulated convolution → bias → up-sample, leaky ReLU, down-sample (or, for ToRGB, bias only)."""

    def __init__(self, geometry: LayerGeometry, w_dim: int, conv_clamp: float | None) -> None:
        super().__init__()
        g = self.geometry = geometry
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, g.in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(g.out_channels, g.in_channels, g.conv_kernel, g.conv_kernel))
        self.bias = nn.Parameter(torch.zeros(g.out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.register_buffer("up_filter", design_lowpass(g.up_taps, g.in_cutoff, g.in_half_width * 2, g.tmp_sampling_rate))
        self.register_buffer("down_filter", design_lowpass(g.down_taps, g.out_cutoff, g.out_half_width * 2,
                                                           g.tmp_sampling_rate, radial=g.down_radial))

    def forward(self, x: torch.Tensor, w: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        g = self.geometry
        styles = self.affine(w)
        if g.is_torgb:  # no demodulation: the equalized-lr weight gain goes into the styles
            styles = styles / math.sqrt(g.in_channels * g.conv_kernel**2)
        x = ops.modulated_conv2d(x.to(dtype), self.weight, styles, demodulate=not g.is_torgb, padding=g.conv_kernel - 1)
        # The input's tracked mean square normalises it (applied after demodulation, so it sticks).
        x = x * self.magnitude_ema.rsqrt().to(dtype)
        clamp = activation_clamp(self.conv_clamp, x.dtype)
        if g.is_torgb:
            return ops.bias_linear(x, self.bias, clamp=clamp)
        return resample.filtered_lrelu_reference(x, self.bias, self.up_filter, self.down_filter, up=g.up, down=g.down,
                                                 padding=g.padding, clamp=clamp)


class AliasFreeSynthesis(nn.Module):
    """w+ [N, num_ws, w_dim] → image [N, C, H, W] in the network's native range (about [-1, 1])."""

    def __init__(self, cfg: StyleGAN3Config) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = cfg.w_dim, cfg.img_resolution, cfg.img_channels
        self.output_scale = cfg.output_scale
        self.plan = cfg.synthesis_plan()
        self.num_ws = self.plan.num_ws
        self.input = FourierFeatures(cfg.w_dim, cfg.input_channels, cfg.input_size, cfg.input_sampling_rate,
                                     cfg.input_bandwidth)
        for g in cfg.layers:
            setattr(self, g.name, AliasFreeLayer(g, cfg.w_dim, cfg.conv_clamp))

    def conv_layers(self) -> list[nn.Module]:
        """StyleGAN3 layers have no noise input: nothing for a projection to fit or hold."""
        return []

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", *, transform: torch.Tensor | np.ndarray | None = None,
                exit_resolution: int | None = None, noise_gains: torch.Tensor | list[float] | None = None,
                use_fp16: bool = False) -> torch.Tensor:
        """Synthesise images from w+.

        transform: a 3×3 matrix (or one per sample, [N, 3, 3]) used instead of the stored input
            transform for this call only: picture coordinates → feature plane, as view_transform()
            and NVIDIA's visualizer make it.
        noise_mode, noise_gains: accepted for the common interface; StyleGAN3 has no noise inputs.
        exit_resolution: only the full image (StyleGAN3 has no earlier pictures).
        use_fp16: run the layers NVIDIA's policy runs in fp16 in half precision (CUDA only).
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_gains is not None and len(noise_gains) != 0:
            raise ValueError("a StyleGAN3 network has no noise layers")
        if transform is not None:
            if isinstance(transform, np.ndarray):
                transform = torch.from_numpy(np.array(transform, dtype=np.float32))  # a copy: the caller keeps theirs
            transform = transform.float()
            if transform.shape not in ((3, 3), (ws.shape[0], 3, 3)):
                raise ValueError(f"transform must be a 3×3 matrix or [N, 3, 3], got {list(transform.shape)}")
        steps = self.plan.until(exit_resolution)
        precision = "fp16-nvidia" if use_fp16 else "fp32"
        ws = ws.float()
        x = None
        for step in steps:
            module = getattr(self, step.module)
            w = ws[:, step.w_index]
            if step.kind == "fourier":
                x = module(w, transform)
            elif step.kind in ("alias_free", "image"):
                x = module(x, w, step_dtype(step, precision, ws.device))
            else:
                raise ValueError(f"a StyleGAN3 network has no {step.kind!r} step")
        return x.float() * self.output_scale
