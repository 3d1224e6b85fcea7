"""StyleGAN2 generator: mapping network and skip-architecture synthesis network.

Written from the architecture described in the StyleGAN2 paper (docs/architecture.md sums up
what matters). Parameter and buffer names follow the layout of stylegan2-ada-pytorch state dicts,
the de-facto interchange layout for StyleGAN2 weights, so that every loader converts into one
well-known naming.

`Generator` is the whole network for either architecture: this module's mapping network and the
synthesis network its config builds (StyleGAN2's here, StyleGAN3's in stylegan3.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from . import ops
from .plan import LayerStep, SynthesisPlan, activation_clamp, fp16_threshold, step_dtype, trained_in_fp16

if TYPE_CHECKING:
    from .stylegan3 import StyleGAN3Config

NOISE_MODES = ("const", "random", "none")


def config_to_json(cfg: object) -> str:
    """A config dataclass with a `channels` {resolution: count} dict as JSON (keys must be text)."""
    d = dataclasses.asdict(cfg)
    d["channels"] = {str(k): v for k, v in d["channels"].items()}
    return json.dumps(d, sort_keys=True)


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to build a generator; stored as JSON beside the weights."""

    z_dim: int
    w_dim: int
    img_resolution: int
    channels: dict[int, int]  # feature maps per block resolution, 4 .. img_resolution
    c_dim: int = 0
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    mapping_hidden_features: int | None = None  # width of the hidden mapping layers (default w_dim)
    embed_features: int | None = None  # width of the label embedding (default w_dim)
    conv_clamp: float | None = None  # clamp activations to ±this (× the layer gain)
    num_fp16_res: int = 0  # how many of the highest resolutions were trained in fp16
    w_avg_beta: float = 0.995
    resample_taps: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)

    def __post_init__(self) -> None:
        res = self.img_resolution
        if res < 4 or res & (res - 1):
            raise ValueError(f"img_resolution must be a power of two ≥ 4, got {res}")
        object.__setattr__(self, "channels", {int(k): int(v) for k, v in sorted(self.channels.items(), key=lambda kv: int(kv[0]))})
        missing = [r for r in self.block_resolutions if r not in self.channels]
        if missing:
            raise ValueError(f"channels has no entry for resolutions {missing}")
        if self.mapping_layers < 1:
            raise ValueError("mapping_layers must be ≥ 1")
        if self.z_dim == 0 and self.c_dim == 0:
            raise ValueError("a generator needs z_dim > 0 or c_dim > 0")
        object.__setattr__(self, "resample_taps", tuple(float(t) for t in self.resample_taps))

    @classmethod
    def from_channel_base(cls, *, channel_base: int = 32768, channel_max: int = 512, **kwargs: Any) -> "GeneratorConfig":
        """The usual rule: channels = min(channel_base / resolution, channel_max)."""
        res = kwargs["img_resolution"]
        resolutions = [2**i for i in range(2, int(math.log2(res)) + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in resolutions}
        return cls(channels=channels, **kwargs)

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    @property
    def num_ws(self) -> int:
        # One w per convolution, plus the last block's toRGB (each other toRGB shares the next
        # block's first w): 2·log2(res) − 2.
        return 2 * len(self.block_resolutions)

    @property
    def fp16_resolution(self) -> int:
        """Blocks at and above this resolution were trained in fp16 (NVIDIA's mixed-precision policy)."""
        return fp16_threshold(self.img_resolution, self.num_fp16_res)

    def synthesis_plan(self) -> SynthesisPlan:
        """The layer sequence: per block (learned constant | up-conv) → conv → toRGB, an exit after
        each toRGB. Each conv reads the next row of w+ and has its own noise; a toRGB shares the
        next block's first row."""
        steps: list[LayerStep] = []
        w_index = 0
        for res in self.block_resolutions:
            fp16 = trained_in_fp16(res, self.img_resolution, self.num_fp16_res)
            convs = ["conv1"] if res == 4 else ["conv0", "conv1"]
            if res == 4:
                steps.append(LayerStep("const", f"b{res}", res, fp16=fp16))
            for name in convs:
                steps.append(LayerStep("conv", f"b{res}.{name}", res, w_index=w_index, noise_index=w_index, fp16=fp16))
                w_index += 1
            steps.append(LayerStep("torgb", f"b{res}.torgb", res, w_index=w_index, fp16=fp16, exit=True))
        return SynthesisPlan(tuple(steps), num_ws=w_index + 1)

    @property
    def architecture(self) -> str:
        return "stylegan2"

    def build_synthesis(self) -> "SynthesisNetwork":
        return SynthesisNetwork(self)

    def to_json(self) -> str:
        return config_to_json(self)

    @classmethod
    def from_json(cls, text: str) -> "GeneratorConfig":
        d = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown generator settings {sorted(unknown)}")
        d["channels"] = {int(k): int(v) for k, v in d["channels"].items()}
        d["resample_taps"] = tuple(d.get("resample_taps", (1, 3, 3, 1)))
        return cls(**d)


class FullyConnected(nn.Module):
    """Dense layer with equalized learning rate: weights stored at unit variance / lr_multiplier,
    scaled at run time, so Adam's effective step is the same for every layer."""

    def __init__(self, in_features: int, out_features: int, *, lr_multiplier: float = 1.0,
                 bias_init: float = 0.0, activation: str = "linear", bias: bool = True) -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        if self.activation == "linear":
            if self.bias is None:
                return x @ w.t()
            return torch.addmm((self.bias.to(x.dtype) * self.bias_gain).unsqueeze(0), x, w.t())
        bias = self.bias * self.bias_gain if self.bias is not None else torch.zeros(w.shape[0], device=x.device)
        return ops.bias_lrelu(x @ w.t(), bias)


class MappingNetwork(nn.Module):
    """z (and an optional class label c) → w, with the tracked mean w_avg for truncation (the same
    network for StyleGAN2 and StyleGAN3)."""

    def __init__(self, cfg: GeneratorConfig | StyleGAN3Config) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.num_layers = cfg.mapping_layers
        self.num_ws = cfg.num_ws
        self.w_avg_beta = cfg.w_avg_beta
        embed = (cfg.embed_features or cfg.w_dim) if cfg.c_dim else 0
        hidden = cfg.mapping_hidden_features or cfg.w_dim
        if cfg.c_dim:
            self.embed = FullyConnected(cfg.c_dim, embed)
        widths = [cfg.z_dim + embed] + [hidden] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        for i in range(cfg.mapping_layers):
            layer = FullyConnected(widths[i], widths[i + 1], activation="lrelu", lr_multiplier=cfg.mapping_lr_multiplier)
            setattr(self, f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros([cfg.w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> torch.Tensor:
        """Map latents to w+ [N, num_ws, w_dim]; ψ < 1 pulls the first `truncation_cutoff` rows toward w_avg."""
        num_ws = self.num_ws
        parts = []
        if self.z_dim:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must have shape [N, {self.z_dim}], got {None if z is None else list(z.shape)}")
            parts.append(ops.normalize_2nd_moment(z.float()))
        if self.c_dim:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"this is a conditional network: c must have shape [N, {self.c_dim}]")
            parts.append(ops.normalize_2nd_moment(self.embed(c.float())))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_emas:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, num_ws, 1)
        if truncation_psi != 1:
            cutoff = num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated 3×3 convolution + noise + bias + leaky ReLU (optionally doubling the resolution)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, up: bool,
                 conv_clamp: float | None, resample_taps: tuple[float, ...]) -> None:
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("up_kernel", ops.make_resample_kernel(resample_taps, gain=4.0), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", noise_gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w)
        x = ops.modulated_conv2d(x, self.weight, styles, up=self.up, up_kernel2d_gain4=self.up_kernel)
        if noise_mode != "none" and noise_gain != 0:
            strength = self.noise_strength * noise_gain
            if noise_mode == "random":
                noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device, dtype=x.dtype)
            else:
                noise = self.noise_const
            x = x + (noise * strength).to(x.dtype)
        return ops.bias_lrelu(x, self.bias, clamp=activation_clamp(self.conv_clamp, x.dtype))


class ToRGB(nn.Module):
    """Modulated 1×1 convolution to RGB, without demodulation (the image's scale is learned)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = ops.modulated_conv2d(x, self.weight, styles, demodulate=False)
        return ops.bias_linear(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """The weights of one resolution: (learned constant | 2× up-conv), conv, toRGB.

    The order they run in is the config's synthesis plan; the block only holds them, under the
    names of the common state-dict layout."""

    def __init__(self, cfg: GeneratorConfig, resolution: int, in_channels: int) -> None:
        super().__init__()
        out_channels = cfg.channels[resolution]
        self.resolution = resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, cfg.w_dim, resolution, up=True,
                                        conv_clamp=cfg.conv_clamp, resample_taps=cfg.resample_taps)
        self.conv1 = SynthesisLayer(out_channels, out_channels, cfg.w_dim, resolution, up=False,
                                    conv_clamp=cfg.conv_clamp, resample_taps=cfg.resample_taps)
        self.torgb = ToRGB(out_channels, cfg.img_channels, cfg.w_dim, cfg.conv_clamp)


class SynthesisNetwork(nn.Module):
    """w+ [N, num_ws, w_dim] → image [N, C, H, W] in the network's native range (about [-1, 1])."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = cfg.w_dim, cfg.img_resolution, cfg.img_channels
        self.block_resolutions = cfg.block_resolutions
        self.plan = cfg.synthesis_plan()
        self.num_ws = self.plan.num_ws
        in_channels = 0
        for res in self.block_resolutions:
            setattr(self, f"b{res}", SynthesisBlock(cfg, res, in_channels))
            in_channels = cfg.channels[res]
        self.register_buffer("up_kernel", ops.make_resample_kernel(cfg.resample_taps, gain=4.0), persistent=False)

    def conv_layers(self) -> list[SynthesisLayer]:
        """The modulated conv layers with noise, in the plan's order: layer i has noise gain i."""
        convs = sorted((s for s in self.plan.steps if s.noise_index is not None), key=lambda s: s.noise_index)
        return [self.get_submodule(s.module) for s in convs]

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", *, exit_resolution: int | None = None,
                noise_gains: torch.Tensor | list[float] | None = None, use_fp16: bool = False) -> torch.Tensor:
        """Synthesise images from w+.

        exit_resolution: stop after that block and return its skip image (smaller, without the
            finer layers' detail) — the frame budget's step-down lever.
        noise_gains: one multiplier per conv layer on its learned noise strength.
        use_fp16: run the layers NVIDIA's policy runs in fp16 in half precision (CUDA only).
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        steps = self.plan.until(exit_resolution)
        gains = [float(g) for g in noise_gains] if noise_gains is not None else None
        precision = "fp16-nvidia" if use_fp16 else "fp32"
        ws = ws.float()
        x = img = None
        for step in steps:
            module = self.get_submodule(step.module)
            dtype = step_dtype(step, precision, ws.device)
            if step.kind == "const":
                x = module.const.to(dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            elif step.kind == "conv":
                gain = gains[step.noise_index] if gains is not None else 1.0
                x = module(x.to(dtype), ws[:, step.w_index], noise_mode, gain)
            elif step.kind == "torgb":
                rgb = module(x, ws[:, step.w_index]).float()
                img = rgb if img is None else ops.upsample2x(img, self.up_kernel) + rgb
            else:
                raise ValueError(f"a StyleGAN2 network has no {step.kind!r} step")
        return img


class Generator(nn.Module):
    """The whole generator (StyleGAN2 or StyleGAN3, as its config says), with the attributes and
    calls StyleGAN users know."""

    def __init__(self, cfg: GeneratorConfig | StyleGAN3Config) -> None:
        super().__init__()
        self.config = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.synthesis = cfg.build_synthesis()
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def planned_state_shapes(cfg: Any) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor `Generator(cfg)` holds, without allocating it: StyleGAN2 from its
    config directly; StyleGAN3 by building the module on the meta device (shapes, no memory), after
    the caller has checked the config's sizes against the limits."""
    if isinstance(cfg, GeneratorConfig):
        return state_shapes(cfg)
    with torch.device("meta"):
        G = Generator(cfg)
    return {k: tuple(v.shape) for k, v in G.state_dict().items()}


def state_shapes(cfg: GeneratorConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in `Generator(cfg).state_dict()`, without building it.

    Loaders compare a file's tensors with these before allocating a network, so that a config
    cannot make vjgan allocate more than the file holds (tests check it against the modules)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def dense(prefix: str, fan_in: int, fan_out: int) -> None:
        shapes[f"{prefix}.weight"], shapes[f"{prefix}.bias"] = (fan_out, fan_in), (fan_out,)

    def conv(prefix: str, fan_in: int, fan_out: int, resolution: int) -> None:
        dense(f"{prefix}.affine", cfg.w_dim, fan_in)
        shapes[f"{prefix}.weight"], shapes[f"{prefix}.bias"] = (fan_out, fan_in, 3, 3), (fan_out,)
        shapes[f"{prefix}.noise_strength"], shapes[f"{prefix}.noise_const"] = (), (resolution, resolution)

    fan_in = 0
    for res in cfg.block_resolutions:
        out = cfg.channels[res]
        if fan_in == 0:
            shapes[f"synthesis.b{res}.const"] = (out, res, res)
        else:
            conv(f"synthesis.b{res}.conv0", fan_in, out, res)
        conv(f"synthesis.b{res}.conv1", out, out, res)
        dense(f"synthesis.b{res}.torgb.affine", cfg.w_dim, out)
        shapes[f"synthesis.b{res}.torgb.weight"] = (cfg.img_channels, out, 1, 1)
        shapes[f"synthesis.b{res}.torgb.bias"] = (cfg.img_channels,)
        fan_in = out
    embed = (cfg.embed_features or cfg.w_dim) if cfg.c_dim else 0
    if cfg.c_dim:
        dense("mapping.embed", cfg.c_dim, embed)
    widths = [cfg.z_dim + embed] + [cfg.mapping_hidden_features or cfg.w_dim] * (cfg.mapping_layers - 1) + [cfg.w_dim]
    for i in range(cfg.mapping_layers):
        dense(f"mapping.fc{i}", widths[i], widths[i + 1])
    shapes["mapping.w_avg"] = (cfg.w_dim,)
    return shapes
