"""The live frame path: w+ in, a uint8 RGBA frame out, as fast as the device allows.

At batch 1 an eager StyleGAN2 frame is bound by Python and kernel launches, not by the GPU
(docs/architecture.md, "The generator"). This module prepares a generator once for a device and precision and then runs a
lean, allocation-free frame function:

* every layer's weights are pre-arranged: the up-sampling convolution and its [1,3,3,1] blur
  become one 3×3 convolution with four output phases and a pixel shuffle (no depthwise blur),
  the leaky ReLU's √2 gain is folded into weights, noise and bias;
* the cost at batch 1 is per kernel, so a frame runs few of them: every layer's style affine is
  one batched GEMM per frame and every demodulation another (`_StyleTable`); each conv's styles
  are divided by their largest magnitude and its weights per output channel by theirs, the
  demodulation putting both back after the convolution, so fp16 products stay in range;
* the (normalised) style goes into the weights where they are smaller than the activations (low
  resolutions use the activations, high resolutions the weights), so no layer pays a full extra
  pass for it;
* demodulation, noise (both planes, mixed by the noise mode), bias, leaky ReLU, clamp and an
  up-sampling conv's pixel shuffle run as one fused epilogue, and ToRGB with the skip image's
  up-sampling (and, last, the uint8 RGBA write) as one more (epilogue.py: Triton kernels on
  CUDA, plain PyTorch elsewhere);
* on CUDA each exit point is captured once as a CUDA graph over static buffers and replayed per
  frame; per-layer noise strength and noise mode live in device buffers, so they change
  between replays without recapture.

StyleGAN3 networks walk the same plan; their steps are prepared and run by fast_alias_free.py
(the input transform, like the noise controls, lives in a device buffer).

The CPU path runs the same prepared maths in fp32 without graphs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import ops
from . import fast_alias_free as alias_free
from .epilogue import fused_epilogue, fused_torgb, polyphase_rows, triton_available
from .networks import Generator, NOISE_MODES
from .plan import LayerStep, Precision, activation_clamp, step_dtype


# ---------------------------------------------------------------------------------------------
# weight re-arrangement (pure functions, tested on the CPU against vjgan.gan.ops)


def polyphase_up_weight(weight: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
    """3×3 weights of an up-sampling conv (stride-2 transposed conv + low-pass) as four 3×3 phases.

    Transposed conv followed by the filter is one linear stride-2 operator with a 6×6 kernel
    (the weight correlated with the filter); output pixel (2m+py, 2n+px) sees a 3×3 window of
    the input around (m, n), so the operator is a plain 3×3 conv with 4·C_out outputs followed
    by pixel_shuffle(2). Returns [4·C_out, C_in, 3, 3] in pixel_shuffle's channel order.
    """
    c_out, c_in, k, _ = weight.shape
    if k != 3 or len(taps) != 4:
        raise ValueError("polyphase up-sampling is derived for 3×3 kernels and 4-tap filters")
    f2 = ops.make_resample_kernel(taps, gain=4.0).to(weight)
    w = F.pad(weight.reshape(c_out * c_in, 1, 3, 3), [3, 3, 3, 3])
    full = F.conv2d(w, f2[None, None]).reshape(c_out, c_in, 6, 6)  # index u = t + 2, t ∈ [-2, 3]
    phases = []
    for py in range(2):
        rows = [4 + py, 2 + py, py]
        for px in range(2):
            cols = [4 + px, 2 + px, px]
            phases.append(full[:, :, rows][:, :, :, cols])
    return torch.stack(phases, dim=1).reshape(c_out * 4, c_in, 3, 3)


def polyphase_upsample_kernel(taps: tuple[float, ...], channels: int) -> torch.Tensor:
    """The skip image's 2× up-sampler as a grouped 3×3 conv to 4 phases per channel.

    Per axis, output 2m+p = Σ_j x[m+j]·f[p+1−2j] with f the gain-2 filter (zero insertion,
    padding (2, 1), four taps): `polyphase_rows`. Returns [4·channels, 1, 3, 3] for groups=channels.
    """
    per_phase = [torch.tensor(row, dtype=torch.float32) for row in polyphase_rows(taps)]
    kernels = [torch.outer(per_phase[py], per_phase[px]) for py in range(2) for px in range(2)]
    k = torch.stack(kernels)[:, None]  # [4, 1, 3, 3]
    return k.repeat(channels, 1, 1, 1)


# ---------------------------------------------------------------------------------------------
# prepared layers


@dataclass
class _Const:
    step: LayerStep
    const: torch.Tensor  # [1, C, 4, 4] compute dtype


@dataclass
class _ConvLayer:
    step: LayerStep
    dtype: torch.dtype
    up: bool
    slot: int  # its row in the frame's style table (vjgan.gan.fast._StyleTable)
    c_in: int
    c_out: int
    # [C_out(·4), C_in, 3, 3] compute dtype: × √2, each output channel (all four phases of an
    # up-sampling one) divided by its largest magnitude, which the demodulation puts back
    # (fp16 products stay small whatever the network's weights).
    weight: torch.Tensor
    modulated: torch.Tensor | None  # batch 1: the weight times this frame's styles (a buffer, no allocation)
    bias: torch.Tensor  # [C_out] × √2
    noise_const: torch.Tensor | None  # [H, W] compute dtype; None: the layer has no noise (strength 0)
    noise_random: torch.Tensor | None  # [H, W] fp32, a view of the frame's random noise
    clamp: float | None
    modulate_weights: bool  # batch 1: fold styles into the (smaller) weights


@dataclass
class _RGBLayer:
    step: LayerStep
    slot: int
    c_in: int
    weight: torch.Tensor  # [C_img, C_in, 1, 1] fp32 (the affine's style carries the weight gain)
    bias: torch.Tensor
    clamp: float | None


@dataclass
class _StyleTable:
    """Every StyleGAN2 layer's style affine as one batched GEMM, and every conv's demodulation as
    another: per frame a handful of kernels for all layers instead of several per layer. Rows are
    the conv layers in plan order, then the ToRGB layers; columns padded with zeros to the widest."""

    w_rows: torch.Tensor  # [L] long: the row of w+ each layer reads
    weight: torch.Tensor  # [L, w_dim, C] fp32: affine weights, transposed, gains folded
    bias: torch.Tensor  # [L, 1, C]
    convs: int  # the first `convs` rows are conv layers (their noise index is their row)
    weight_sq: torch.Tensor  # [convs, C, C_out] fp32: Σ over the kernel of weight², / max|weight|², transposed
    eps: torch.Tensor  # [convs, 1, C_out]: demodulation's ε, / max|weight|² (1 in the padding)
    noise_strength: torch.Tensor  # [convs] × √2


@dataclass
class _FrameStyles:
    """One frame's (or batch's) styles, computed once before the layers run."""

    s: torch.Tensor  # [L, N, C] fp32: conv rows divided by their largest magnitude, ToRGB rows as they are
    s_half: torch.Tensor | None  # the same in fp16, for layers run in half precision
    d: torch.Tensor  # [convs, N, C_out] fp32: demodulation × that largest style × max|weight|
    strength: torch.Tensor  # [1 or N, convs] fp32: each conv's noise strength times its gain


@dataclass
class AccuracyReport:
    """fp16 path against fp32, images clamped to [−1, 1] (the issue's acceptance measure)."""

    precision: str
    mean_abs: float
    p999_abs: float
    max_abs: float
    samples: int

    @property
    def ok(self) -> bool:
        return self.mean_abs <= 0.01 and self.p999_abs <= 0.1


@dataclass
class _Graph:
    graph: "torch.cuda.CUDAGraph"
    output: torch.Tensor  # static uint8 [H, W, 4] written by the graph


# ---------------------------------------------------------------------------------------------


class FastSynthesis:
    """A generator prepared for one device and precision, producing uint8 RGBA frames.

    The generator's synthesis plan (vjgan.gan.plan) says which layers run, in which order, at
    which precision; this class prepares each step once and walks the same plan per frame.

    precision: "fp32", "fp16-all" (every layer in half precision with activations clamped), or
        "fp16-nvidia" (only the layers NVIDIA's policy trains in fp16 — the top four resolutions
        when the network records none). choose_precision() picks by measurement.
    """

    def __init__(self, G: Generator, device: str | torch.device = "cuda", precision: Precision = "fp16-all",
                 use_graphs: bool | None = None, channels_last: bool = True, half_on_cpu: bool = False) -> None:
        self.device = torch.device(device)
        self.half_on_cpu = half_on_cpu  # tests check the fp16 maths without a GPU; shows never do
        if self.device.type != "cuda" and precision != "fp32" and not half_on_cpu:
            precision = "fp32"  # half precision convolutions are slow or missing off CUDA
        self.precision: Precision = precision
        self.cfg = G.config
        self.plan = G.synthesis.plan
        self.num_ws, self.w_dim = G.num_ws, G.w_dim
        self.use_graphs = (self.device.type == "cuda") if use_graphs is None else use_graphs
        self.memory_format = torch.channels_last if (channels_last and self.device.type == "cuda") else torch.contiguous_format
        # The fused ToRGB (epilogues decide per call) writes one or three image channels.
        self.fused = triton_available(self.device) and getattr(self.cfg, "img_channels", 3) in (1, 3)
        self._noise_random: torch.Tensor | None = None  # every conv's random noise plane, drawn per frame
        self.layers = self._prepare(G)  # one prepared layer per step of the plan
        self._table = self._style_table(G)  # StyleGAN2 only (None for StyleGAN3)
        self._any_half = any(getattr(layer, "dtype", None) == torch.float16 for layer in self.layers
                             if isinstance(layer, _ConvLayer))
        self._rows = polyphase_rows(self.cfg.resample_taps) if self._table is not None else None
        self.num_layers = self.plan.num_noise_layers
        # StyleGAN3's input transform: the stored one unless a frame brings its own.
        self.has_transform = self.plan.steps[0].kind == "fourier"
        self._default_transform = (G.synthesis.input.transform.detach().float().to(self.device)
                                   if self.has_transform else None)
        self._transform_static = torch.eye(3, device=self.device)
        # Live controls, read by the frame function from device memory (graph-safe).
        self.noise_gains = torch.ones(self.num_layers, device=self.device)
        self.noise_mix = torch.zeros(2, device=self.device)  # weights of (constant, random) noise
        self.set_noise_mode("const")
        self._ws_static = torch.zeros(1, self.num_ws, self.w_dim, device=self.device)
        self._graphs: dict[int, _Graph] = {}
        self._upsample: dict[int, torch.Tensor] = {}

    # -- preparation ---------------------------------------------------------------------------

    def _prepare(self, G: Generator) -> list:
        prepared = []
        dev = self.device
        convs = [step for step in self.plan.steps if step.kind == "conv"]
        noise_sizes = {}
        for step in convs:
            module = G.synthesis.get_submodule(step.module)
            if float(module.noise_strength.detach()) != 0.0:
                noise_sizes[step.module] = step.resolution * step.resolution
        if noise_sizes:
            self._noise_random = torch.zeros(sum(noise_sizes.values()), device=dev)
        offset = 0
        slot = {"conv": 0, "torgb": len(convs)}
        for step in self.plan.steps:
            module = G.synthesis.get_submodule(step.module)
            dtype = step_dtype(step, self.precision, dev, half_on_cpu=self.half_on_cpu)
            if step.kind == "const":
                prepared.append(_Const(step, module.const.detach().to(dev, dtype)[None]))
            elif step.kind == "conv":
                random = None
                if step.module in noise_sizes:
                    size = noise_sizes[step.module]
                    random = self._noise_random[offset : offset + size].view(step.resolution, step.resolution)
                    offset += size
                if step.noise_index != slot["conv"]:
                    raise ValueError("the fast path expects a conv's noise index to be its place among the convs")
                prepared.append(self._prepare_conv(step, module, dtype, slot["conv"], random))
                slot["conv"] += 1
            elif step.kind == "torgb":
                prepared.append(self._prepare_torgb(step, module, slot["torgb"]))
                slot["torgb"] += 1
            elif step.kind == "fourier":
                prepared.append(alias_free.prepare_fourier(step, module, dtype, dev))
            elif step.kind == "alias_free":
                prepared.append(alias_free.prepare_alias_free(step, module, dtype, dev, self.memory_format))
            elif step.kind == "image":
                prepared.append(alias_free.prepare_image(step, module, G.synthesis.output_scale, dtype, dev))
            else:
                raise ValueError(f"the fast path has no {step.kind!r} step")
        return prepared

    def _prepare_conv(self, step: LayerStep, layer, dtype: torch.dtype, slot: int,
                      noise_random: torch.Tensor | None) -> _ConvLayer:
        dev, gain = self.device, ops.LRELU_GAIN
        weight = layer.weight.detach().float()
        c_out, c_in = weight.shape[:2]
        arranged, _ = self._arranged(weight, layer.up)
        in_res = step.resolution // 2 if layer.up else step.resolution
        stored = arranged.to(dev, dtype).contiguous(memory_format=self.memory_format)
        modulate_weights = arranged.numel() <= c_in * in_res * in_res
        has_noise = noise_random is not None
        return _ConvLayer(
            step=step, dtype=dtype, up=layer.up, slot=slot, c_in=c_in, c_out=c_out,
            weight=stored, modulated=torch.empty_like(stored) if modulate_weights else None,
            bias=(layer.bias.detach().float() * gain).to(dev),
            noise_const=layer.noise_const.detach().to(dev, dtype).contiguous() if has_noise else None,
            noise_random=noise_random,
            clamp=activation_clamp(self.cfg.conv_clamp, dtype),
            modulate_weights=modulate_weights,
        )

    def _arranged(self, weight: torch.Tensor, up: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """A conv's weight as the fast path stores it (polyphase when up-sampling, × √2, each
        output channel over its largest magnitude) and those magnitudes [C_out]."""
        arranged = polyphase_up_weight(weight, self.cfg.resample_taps) if up else weight
        scaled = arranged * ops.LRELU_GAIN
        c_out = weight.shape[0]
        largest = scaled.reshape(c_out, -1).abs().amax(dim=1).clamp_min(1e-12)  # all phases of a channel
        phases = 4 if up else 1
        return scaled / largest.repeat_interleave(phases)[:, None, None, None], largest

    def _prepare_torgb(self, step: LayerStep, rgb, slot: int) -> _RGBLayer:
        return _RGBLayer(step=step, slot=slot, c_in=rgb.weight.shape[1], weight=rgb.weight.detach().float().to(self.device),
                         bias=rgb.bias.detach().float().to(self.device), clamp=self.cfg.conv_clamp)

    def _style_table(self, G: Generator) -> _StyleTable | None:
        convs = [(s, G.synthesis.get_submodule(s.module)) for s in self.plan.steps if s.kind == "conv"]
        rgbs = [(s, G.synthesis.get_submodule(s.module)) for s in self.plan.steps if s.kind == "torgb"]
        if not convs and not rgbs:
            return None
        layers = convs + rgbs
        width = max(m.affine.weight.shape[0] for _, m in layers)
        out_width = max((m.weight.shape[0] for _, m in convs), default=1)
        weight = torch.zeros(len(layers), self.w_dim, width)
        bias = torch.zeros(len(layers), 1, width)
        for i, (_, m) in enumerate(layers):
            extra = m.weight_gain if i >= len(convs) else 1.0  # ToRGB: its weight gain rides on the style
            a = m.affine
            weight[i, :, : a.weight.shape[0]] = (a.weight.detach().float() * a.weight_gain * extra).t()
            bias[i, 0, : a.weight.shape[0]] = a.bias.detach().float() * a.bias_gain * extra
        weight_sq = torch.zeros(len(convs), width, out_width)
        eps = torch.ones(len(convs), 1, out_width)
        strength = torch.zeros(len(convs))
        for i, (_, m) in enumerate(convs):
            w = m.weight.detach().float()
            c_out, c_in = w.shape[:2]
            _, top = self._arranged(w, m.up)
            weight_sq[i, :c_in, :c_out] = (w.square().sum(dim=[2, 3]) / top[:, None].square()).t()
            eps[i, 0, :c_out] = 1e-8 / top.square()
            strength[i] = float(m.noise_strength.detach()) * ops.LRELU_GAIN
        rows = torch.tensor([s.w_index for s, _ in layers], dtype=torch.long)
        dev = self.device
        return _StyleTable(rows.to(dev), weight.to(dev), bias.to(dev), len(convs), weight_sq.to(dev), eps.to(dev),
                           strength.to(dev))

    # -- live controls -------------------------------------------------------------------------

    def set_noise_mode(self, mode: str) -> None:
        if mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {mode!r}")
        mix = {"const": (1.0, 0.0), "random": (0.0, 1.0), "none": (0.0, 0.0)}[mode]
        self.noise_mix.copy_(torch.tensor(mix))
        self.noise_mode = mode

    def set_noise_gains(self, gains: torch.Tensor | list[float]) -> None:
        """One multiplier per conv layer on its learned noise strength (0 silences that layer)."""
        g = torch.as_tensor(gains, dtype=torch.float32)
        if g.shape != (self.num_layers,):
            raise ValueError(f"expected {self.num_layers} noise gains, got shape {list(g.shape)}")
        self.noise_gains.copy_(g)

    def exit_resolutions(self) -> list[int]:
        return self.plan.exit_resolutions

    # -- the maths -----------------------------------------------------------------------------

    def _frame_styles(self, ws: torch.Tensor, noise_gains: torch.Tensor | None) -> _FrameStyles:
        """Every layer's style, every conv's demodulation and noise strength, for ws [N, num_ws, w_dim]."""
        t = self._table
        styles = torch.baddbmm(t.bias, ws.index_select(1, t.w_rows).transpose(0, 1), t.weight)  # [L, N, C]
        conv = styles[: t.convs]
        d = torch.baddbmm(t.eps, conv.square(), t.weight_sq).rsqrt_()
        # Each conv's styles over their largest magnitude: fp16 products stay in range, and the
        # demodulation (a per-frame, per-channel scale after the convolution) puts it back.
        largest = torch.linalg.vector_norm(conv, ord=float("inf"), dim=2, keepdim=True).clamp_min_(1e-8)
        conv.div_(largest)
        d.mul_(largest)
        gains = self.noise_gains[None] if noise_gains is None else noise_gains
        strength = t.noise_strength[None] * gains
        if self._noise_random is not None and (self.use_graphs or self.noise_mode == "random"):
            # A graph must hold every branch (the mode changes between replays); eager frames
            # draw random noise only when it is used.
            self._noise_random.normal_()
        return _FrameStyles(styles, styles.half() if self._any_half else None, d, strength)

    def _conv(self, x: torch.Tensor, layer: _ConvLayer, fs: _FrameStyles) -> torch.Tensor:
        dtype, i = layer.dtype, layer.slot
        x = x.to(dtype)
        if x.shape[0] == 1 and layer.modulate_weights:
            s = fs.s[i, :, : layer.c_in]  # [1, C_in]
            w = torch.mul(layer.weight, s.reshape(1, -1, 1, 1), out=layer.modulated)
            y = F.conv2d(x, w, padding=1)
        else:
            s = (fs.s_half if dtype == torch.float16 else fs.s)[i, :, : layer.c_in]
            y = F.conv2d(x * s[:, :, None, None], layer.weight, padding=1)
        const = layer.noise_const if (self.use_graphs or self.noise_mode == "const") else None
        random = layer.noise_random if (self.use_graphs or self.noise_mode == "random") else None
        return fused_epilogue(y, layer.bias, fs.d[i, :, : layer.c_out], const, random, self.noise_mix,
                              fs.strength[:, i], layer.clamp, shuffle=layer.up)

    def _torgb(self, x: torch.Tensor, layer: _RGBLayer, fs: _FrameStyles, img: torch.Tensor | None,
               rgba_out: torch.Tensor | None) -> torch.Tensor | None:
        """This block's picture added to the previous one up-sampled; float32 [N, C_img, H, W], or
        (fused path, `rgba_out` given) the finished uint8 pixels written there."""
        s = fs.s[layer.slot, :, : layer.c_in]  # [N, C_in], weight gain folded
        if self.fused:
            return fused_torgb(x, layer.weight[:, :, 0, 0], s, layer.bias, img, self._rows, layer.clamp, rgba_out)
        if x.shape[0] == 1:
            y = F.conv2d(x, (layer.weight * s[0][None, :, None, None]).to(x.dtype))
        else:
            y = F.conv2d(x * s.to(x.dtype)[:, :, None, None], layer.weight.to(x.dtype))
        y = y.float() + layer.bias[None, :, None, None]
        if layer.clamp is not None:
            y = y.clamp(-layer.clamp, layer.clamp)
        y = y if img is None else self._upsample_image(img) + y
        if rgba_out is not None:
            self.to_rgba_u8(y, rgba_out)
            return None
        return y

    def _upsample_image(self, img: torch.Tensor) -> torch.Tensor:
        channels = img.shape[1]
        k = self._upsample.get(channels)
        if k is None:
            k = polyphase_upsample_kernel(self.cfg.resample_taps, channels).to(img.device)
            self._upsample[channels] = k
        return F.pixel_shuffle(F.conv2d(img, k, padding=1, groups=channels), 2)

    def _transform_for(self, transform: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """The transform to use (the stored one when None), checked; on whatever device it came."""
        if transform is None:
            return self._default_transform
        if not self.has_transform:
            raise ValueError("this network has no input transform (only StyleGAN3 networks turn and glide)")
        t = torch.as_tensor(transform, dtype=torch.float32)
        if t.shape not in ((3, 3), (n, 3, 3)):
            raise ValueError(f"transform must be a 3×3 matrix or [{n}, 3, 3], got {list(t.shape)}")
        return t

    def synthesize(self, ws: torch.Tensor, exit_resolution: int | None = None,
                   noise_gains: torch.Tensor | None = None, transform: torch.Tensor | None = None) -> torch.Tensor:
        """w+ [N, num_ws, w_dim] → float32 image [N, C, H, W] in the network's range (no graph).

        noise_gains: optional [N, num_layers], one row per frame (instead of the live controls).
        transform: StyleGAN3's input transform, [3, 3] or one per frame [N, 3, 3] (default: the
            network's stored one)."""
        ws = ws.to(self.device, torch.float32)
        gains = None if noise_gains is None else self._check_gains(noise_gains, ws.shape[0])
        transform = self._transform_for(transform, ws.shape[0])
        return self._synthesize(ws, exit_resolution, gains, None if transform is None else transform.to(self.device))

    def _check_gains(self, noise_gains: torch.Tensor, n: int) -> torch.Tensor:
        gains = torch.as_tensor(noise_gains, dtype=torch.float32, device=self.device)
        if gains.shape != (n, self.num_layers):
            raise ValueError(f"noise_gains must have shape [{n}, {self.num_layers}]")
        return gains

    def _synthesize(self, ws: torch.Tensor, exit_resolution: int | None, noise_gains: torch.Tensor | None,
                    transform: torch.Tensor | None, rgba_out: torch.Tensor | None = None) -> torch.Tensor | None:
        """The float32 picture [N, C, H, W]; or, given `rgba_out` (uint8 [N, H, W, 4]), the
        finished pixels written there (alpha included) and None returned."""
        n = ws.shape[0]
        layers = self.layers[: len(self.plan.until(exit_resolution))]
        fs = self._frame_styles(ws, noise_gains) if self._table is not None else None
        x = img = None
        for j, layer in enumerate(layers):
            if isinstance(layer, _Const):
                x = layer.const.expand(n, -1, -1, -1).contiguous(memory_format=self.memory_format)
            elif isinstance(layer, _ConvLayer):
                x = self._conv(x, layer, fs)
            elif isinstance(layer, _RGBLayer):
                img = self._torgb(x, layer, fs, img, rgba_out if j == len(layers) - 1 else None)
                if img is None:
                    return None  # the last ToRGB wrote the pixels
            elif isinstance(layer, alias_free.FourierStep):
                x = alias_free.fourier_features(layer, ws, transform, self.memory_format)
            elif isinstance(layer, alias_free.AliasFreeStep):
                x = alias_free.alias_free_layer(layer, x, ws)
            else:
                img = alias_free.image_layer(layer, x, ws)
        if rgba_out is not None:
            self.to_rgba_u8(img, rgba_out)
            return None
        return img

    @staticmethod
    def to_rgba_u8(img: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Native range [−1, 1] → uint8 RGBA [N, H, W, 4] written into `out`."""
        rgb = (img[:, :3].clamp(-1, 1) * 127.5 + 128.0).clamp(0, 255).to(torch.uint8)
        if img.shape[1] == 1:
            rgb = rgb.expand(-1, 3, -1, -1)
        out[..., :3].copy_(rgb.permute(0, 2, 3, 1))
        out[..., 3] = 255
        return out

    # -- frames --------------------------------------------------------------------------------

    def _new_frame_buffer(self, resolution: int) -> torch.Tensor:
        buf = torch.empty(resolution, resolution, 4, dtype=torch.uint8, device=self.device)
        buf[:, :, 3] = 255
        return buf

    def _frame_into(self, out: torch.Tensor, exit_resolution: int) -> None:
        self._synthesize(self._ws_static, exit_resolution, None, self._transform_static, rgba_out=out[None])

    def capture(self, exit_resolution: int | None = None) -> None:
        """Capture the frame function for one exit point as a CUDA graph (done once per point)."""
        res = exit_resolution or self.plan.exit_resolutions[-1]
        if not self.use_graphs or res in self._graphs:
            return
        out = self._new_frame_buffer(res)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(3):  # warm up: cuDNN picks algorithms and Triton compiles outside capture
                self._frame_into(out, res)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.no_grad():
            self._frame_into(out, res)
        self._graphs[res] = _Graph(graph, out)

    def captured(self, exit_resolution: int | None = None) -> bool:
        """Whether the frame function for this exit point (default: the full image) is a CUDA graph already."""
        return (exit_resolution or self.plan.exit_resolutions[-1]) in self._graphs

    @torch.no_grad()
    def frame(self, ws: torch.Tensor, exit_resolution: int | None = None,
              transform: torch.Tensor | None = None) -> torch.Tensor:
        """w+ [1, num_ws, w_dim] → uint8 RGBA [H, W, 4] on the device.

        transform: StyleGAN3's input transform for this frame (default: the stored one).
        With graphs the returned tensor is the graph's static output: it is overwritten by the
        next frame() at the same exit point, so copy it (texture upload, host copy) first.
        """
        res = exit_resolution or self.plan.exit_resolutions[-1]
        self.plan.until(res)  # validates the exit point
        if ws.shape != (1, self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [1, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        self._ws_static.copy_(ws, non_blocking=True)
        chosen = self._transform_for(transform, 1)  # refuses one for a network without a transform
        if chosen is not None:
            self._transform_static.copy_(chosen.reshape(3, 3))  # into the graph's buffer, no device allocation
        if self.use_graphs:
            if res not in self._graphs:
                self.capture(res)
            g = self._graphs[res]
            g.graph.replay()
            return g.output
        out = self._new_frame_buffer(res)
        self._frame_into(out, res)
        return out

    @torch.no_grad()
    def frames(self, ws: torch.Tensor, exit_resolution: int | None = None,
               noise_gains: torch.Tensor | None = None, transform: torch.Tensor | None = None) -> torch.Tensor:
        """Batched path for offline rendering: w+ [N, ...] → uint8 RGBA [N, H, W, 4].

        noise_gains: optional [N, num_layers] per-frame noise gains (default: the live controls).
        transform: StyleGAN3 only, [3, 3] or [N, 3, 3] per-frame input transforms."""
        ws = ws.to(self.device, torch.float32)
        gains = None if noise_gains is None else self._check_gains(noise_gains, ws.shape[0])
        transform = self._transform_for(transform, ws.shape[0])
        side = exit_resolution or self.plan.exit_resolutions[-1]
        out = torch.empty(ws.shape[0], side, side, 4, dtype=torch.uint8, device=self.device)
        self._synthesize(ws, exit_resolution, gains, None if transform is None else transform.to(self.device), rgba_out=out)
        return out


# ---------------------------------------------------------------------------------------------
# precision by measurement


@torch.no_grad()
def measure_accuracy(G: Generator, fast: FastSynthesis, samples: int = 16, seed: int = 0,
                     truncation_psi: float = 1.0) -> AccuracyReport:
    """Compare the fast path with vjgan's fp32 reference on the same latents (const noise)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, G.z_dim, generator=gen) if G.z_dim else None
    c = None
    if G.c_dim:
        c = F.one_hot(torch.randint(0, G.c_dim, (samples,), generator=gen), G.c_dim).float()
    device = fast.device
    ref_G = G.to(device)
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        errors = []
        saved_mode = fast.noise_mode
        fast.set_noise_mode("const")
        for i in range(samples):
            zi = z[i : i + 1].to(device) if z is not None else None
            ci = c[i : i + 1].to(device) if c is not None else None
            ws = ref_G.mapping(zi, ci, truncation_psi=truncation_psi)
            ref = ref_G.synthesis(ws, noise_mode="const").clamp(-1, 1)
            got = fast.synthesize(ws).clamp(-1, 1)
            errors.append((got - ref).abs().flatten().float().cpu())
        fast.set_noise_mode(saved_mode)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    err = torch.cat(errors)
    k = max(1, int(math.ceil(0.999 * err.numel())))
    return AccuracyReport(
        precision=fast.precision, mean_abs=float(err.mean()), p999_abs=float(err.kthvalue(k).values),
        max_abs=float(err.max()), samples=samples,
    )


def choose_precision(G: Generator, device: str | torch.device = "cuda", samples: int = 8,
                     **kwargs) -> tuple[FastSynthesis, list[AccuracyReport]]:
    """Prepare G with the fastest precision that stays within tolerance of fp32 on this model.

    Tries every block in fp16, then NVIDIA's top-blocks-only policy, then fp32.
    """
    reports = []
    if torch.device(device).type != "cuda":
        return FastSynthesis(G, device, "fp32", **kwargs), reports
    for precision in ("fp16-all", "fp16-nvidia"):
        fast = FastSynthesis(G, device, precision, **kwargs)
        report = measure_accuracy(G, fast, samples=samples)
        reports.append(report)
        if report.ok:
            return fast, reports
    return FastSynthesis(G, device, "fp32", **kwargs), reports
