"""The live frame path: w+ in, a uint8 RGBA frame out, as fast as the device allows.

At batch 1 an eager StyleGAN2 frame is bound by Python and kernel launches, not by the GPU
(docs/architecture.md, "The generator"). This module prepares a generator once for a device and precision and then runs a
lean, allocation-free frame function:

* every layer's weights are pre-arranged: the up-sampling convolution and its [1,3,3,1] blur
  become one 3×3 convolution with four output phases and a pixel shuffle (no depthwise blur),
  the leaky ReLU's √2 gain is folded into weights, noise and bias;
* modulation goes into the weights where they are smaller than the activations (low
  resolutions use the activations, high resolutions the weights), so no layer pays a full extra
  pass for it;
* bias, noise, leaky ReLU and clamp run as one fused epilogue (a Triton kernel on CUDA, plain
  PyTorch elsewhere);
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
from .epilogue import fused_bias_noise_lrelu
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
    padding (2, 1), four taps). Returns [4·channels, 1, 3, 3] for groups=channels.
    """
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = f * (2.0 / f.sum())
    per_phase = []
    for p in range(2):
        row = torch.zeros(3)
        for a, j in enumerate((-1, 0, 1)):
            idx = p + 1 - 2 * j
            if 0 <= idx < len(f):
                row[a] = f[idx]
        per_phase.append(row)
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
    affine_weight: torch.Tensor  # [C_in, w_dim], gains folded
    affine_bias: torch.Tensor  # [C_in]
    weight: torch.Tensor  # [C_out(·4), C_in, 3, 3] compute dtype, × √2
    weight_sq: torch.Tensor  # [C_out, C_in] fp32, Σ over the 3×3 of the original weight², for demodulation
    bias: torch.Tensor  # [C_out] × √2
    noise_const: torch.Tensor  # [1, 1, H, W]
    noise_strength: float  # × √2
    clamp: float | None
    modulate_weights: bool  # batch 1: fold styles into the (smaller) weights


@dataclass
class _RGBLayer:
    step: LayerStep
    affine_weight: torch.Tensor
    affine_bias: torch.Tensor  # weight gain folded into both affine tensors
    weight: torch.Tensor  # [C_img, C_in, 1, 1]
    bias: torch.Tensor
    clamp: float | None


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
        self.layers = self._prepare(G)  # one prepared layer per step of the plan
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
        self._upsample = {}

    # -- preparation ---------------------------------------------------------------------------

    def _prepare(self, G: Generator) -> list:
        prepared = []
        dev = self.device
        for step in self.plan.steps:
            module = G.synthesis.get_submodule(step.module)
            dtype = step_dtype(step, self.precision, dev, half_on_cpu=self.half_on_cpu)
            if step.kind == "const":
                prepared.append(_Const(step, module.const.detach().to(dev, dtype)[None]))
            elif step.kind == "conv":
                prepared.append(self._prepare_conv(step, module, dtype))
            elif step.kind == "torgb":
                prepared.append(self._prepare_torgb(step, module))
            elif step.kind == "fourier":
                prepared.append(alias_free.prepare_fourier(step, module, dtype, dev))
            elif step.kind == "alias_free":
                prepared.append(alias_free.prepare_alias_free(step, module, dtype, dev, self.memory_format))
            elif step.kind == "image":
                prepared.append(alias_free.prepare_image(step, module, G.synthesis.output_scale, dtype, dev))
            else:
                raise ValueError(f"the fast path has no {step.kind!r} step")
        return prepared

    def _prepare_conv(self, step: LayerStep, layer, dtype: torch.dtype) -> _ConvLayer:
        dev, gain = self.device, ops.LRELU_GAIN
        weight = layer.weight.detach().float()
        c_in = weight.shape[1]
        arranged = polyphase_up_weight(weight, self.cfg.resample_taps) if layer.up else weight
        in_res = step.resolution // 2 if layer.up else step.resolution
        return _ConvLayer(
            step=step, dtype=dtype, up=layer.up,
            affine_weight=(layer.affine.weight.detach().float() * layer.affine.weight_gain).to(dev),
            affine_bias=(layer.affine.bias.detach().float() * layer.affine.bias_gain).to(dev),
            weight=(arranged * gain).to(dev, dtype).contiguous(memory_format=self.memory_format),
            weight_sq=weight.square().sum(dim=[2, 3]).to(dev),
            bias=(layer.bias.detach().float() * gain).to(dev),
            noise_const=layer.noise_const.detach().float().reshape(1, 1, *layer.noise_const.shape).to(dev, dtype),
            noise_strength=float(layer.noise_strength.detach()) * gain,
            clamp=activation_clamp(self.cfg.conv_clamp, dtype),
            modulate_weights=arranged.numel() <= c_in * in_res * in_res,
        )

    def _prepare_torgb(self, step: LayerStep, rgb) -> _RGBLayer:
        dev = self.device
        return _RGBLayer(
            step=step,
            affine_weight=(rgb.affine.weight.detach().float() * rgb.affine.weight_gain * rgb.weight_gain).to(dev),
            affine_bias=(rgb.affine.bias.detach().float() * rgb.affine.bias_gain * rgb.weight_gain).to(dev),
            weight=rgb.weight.detach().float().to(dev),
            bias=rgb.bias.detach().float().to(dev),
            clamp=self.cfg.conv_clamp,
        )

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

    def _styles(self, ws: torch.Tensor, layer: _ConvLayer | _RGBLayer) -> torch.Tensor:
        return torch.addmm(layer.affine_bias, ws[:, layer.step.w_index], layer.affine_weight.t())

    def _conv(self, x: torch.Tensor, ws: torch.Tensor, layer: _ConvLayer,
              frame_gains: torch.Tensor | None = None) -> torch.Tensor:
        dtype, layer_index = layer.dtype, layer.step.noise_index
        x = x.to(dtype)
        n = x.shape[0]
        s = self._styles(ws, layer)  # [N, C_in] fp32
        d = (s.square() @ layer.weight_sq.t() + 1e-8).rsqrt()  # [N, C_out]
        phases = 4 if layer.up else 1
        if n == 1 and layer.modulate_weights:
            scale_out = d[0].repeat_interleave(phases) if phases > 1 else d[0]
            w = (layer.weight.float() * s[0][None, :, None, None] * scale_out[:, None, None, None]).to(dtype)
            y = F.conv2d(x, w, padding=1)
            channel_scale = None
        else:
            if dtype == torch.float16:
                # Keep fp16 products in range; demodulation undoes a per-sample style scale.
                s_max = s.abs().amax(dim=1, keepdim=True)
                s, d = s / s_max, d * s_max
            y = F.conv2d(x * s.to(dtype)[:, :, None, None], layer.weight, padding=1)
            channel_scale = d
        if layer.up:
            y = F.pixel_shuffle(y, 2)
        if frame_gains is None:
            strength = layer.noise_strength * self.noise_gains[layer_index]
        else:  # one gain per frame of a batch: fold it into a per-frame noise plane
            strength = torch.ones((), device=y.device)
        noise = None
        if layer.noise_strength != 0.0 and (self.use_graphs or self.noise_mode != "none"):
            noise = layer.noise_const * self.noise_mix[0].to(y.dtype)
            # A graph must hold every branch (the mode changes between replays); eager frames
            # draw random noise only when it is used.
            if self.use_graphs or self.noise_mode == "random":
                random = torch.randn(1, 1, *y.shape[2:], device=y.device, dtype=y.dtype)
                noise = noise + random * self.noise_mix[1].to(y.dtype)
            if frame_gains is not None:
                noise = noise * (layer.noise_strength * frame_gains[:, layer_index]).to(y.dtype)[:, None, None, None]
        return fused_bias_noise_lrelu(y, layer.bias, noise, strength, channel_scale, layer.clamp)

    def _torgb(self, x: torch.Tensor, ws: torch.Tensor, layer: _RGBLayer) -> torch.Tensor:
        s = self._styles(ws, layer)  # [N, C_in], weight gain folded
        n = x.shape[0]
        if n == 1:
            w = (layer.weight * s[0][None, :, None, None]).to(x.dtype)
            y = F.conv2d(x, w)
        else:
            y = F.conv2d(x * s.to(x.dtype)[:, :, None, None], layer.weight.to(x.dtype))
        y = y.float() + layer.bias[None, :, None, None]
        if layer.clamp is not None:
            y = y.clamp(-layer.clamp, layer.clamp)
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
        if noise_gains is not None:
            noise_gains = torch.as_tensor(noise_gains, dtype=torch.float32, device=self.device)
            if noise_gains.shape != (ws.shape[0], self.num_layers):
                raise ValueError(f"noise_gains must have shape [{ws.shape[0]}, {self.num_layers}]")
        transform = self._transform_for(transform, ws.shape[0])
        return self._synthesize(ws, exit_resolution, noise_gains, None if transform is None else transform.to(self.device))

    def _synthesize(self, ws: torch.Tensor, exit_resolution: int | None, noise_gains: torch.Tensor | None,
                    transform: torch.Tensor | None) -> torch.Tensor:
        n = ws.shape[0]
        x = img = None
        for layer in self.layers[: len(self.plan.until(exit_resolution))]:
            if isinstance(layer, _Const):
                x = layer.const.expand(n, -1, -1, -1).contiguous(memory_format=self.memory_format)
            elif isinstance(layer, _ConvLayer):
                x = self._conv(x, ws, layer, noise_gains)
            elif isinstance(layer, _RGBLayer):
                rgb = self._torgb(x, ws, layer)
                img = rgb if img is None else self._upsample_image(img) + rgb
            elif isinstance(layer, alias_free.FourierStep):
                x = alias_free.fourier_features(layer, ws, transform, self.memory_format)
            elif isinstance(layer, alias_free.AliasFreeStep):
                x = alias_free.alias_free_layer(layer, x, ws)
            else:
                img = alias_free.image_layer(layer, x, ws)
        return img

    @staticmethod
    def to_rgba_u8(img: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Native range [−1, 1] → uint8 RGBA [H, W, 4] written into `out` (alpha set by the caller)."""
        rgb = (img[0, :3].clamp(-1, 1) * 127.5 + 128.0).clamp(0, 255).to(torch.uint8)
        if img.shape[1] == 1:
            rgb = rgb.expand(3, -1, -1)
        out[:, :, :3].copy_(rgb.permute(1, 2, 0))
        return out

    # -- frames --------------------------------------------------------------------------------

    def _new_frame_buffer(self, resolution: int) -> torch.Tensor:
        buf = torch.empty(resolution, resolution, 4, dtype=torch.uint8, device=self.device)
        buf[:, :, 3] = 255
        return buf

    def _frame_into(self, out: torch.Tensor, exit_resolution: int) -> None:
        img = self._synthesize(self._ws_static, exit_resolution, None, self._transform_static)
        self.to_rgba_u8(img, out)

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
        img = self.synthesize(ws, exit_resolution, noise_gains, transform)
        rgb = (img[:, :3].clamp(-1, 1) * 127.5 + 128.0).clamp(0, 255).to(torch.uint8)
        alpha = torch.full_like(rgb[:, :1], 255)
        return torch.cat([rgb, alpha], dim=1).permute(0, 2, 3, 1).contiguous()


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
