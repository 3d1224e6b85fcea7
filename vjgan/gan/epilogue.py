"""One fused pass after each synthesis convolution: demodulation scale, noise, bias, leaky ReLU, clamp.

In eager PyTorch these are five or six element-wise kernels, each a full read and write of the
activations; in a profile of a graphed 1024² frame they were about 40% of the GPU time
(docs/architecture.md, "The generator"). On CUDA with Triton available this is a single kernel working in place; elsewhere
(CPU, MPS, no Triton, or VJGAN_NO_TRITON=1) the same maths in plain PyTorch. The leaky ReLU's
gain is expected to be folded into the inputs already (lrelu(g·x) = g·lrelu(x) for g > 0).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

try:  # Triton ships with CUDA builds of PyTorch; CPU builds and macOS have none.
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - depends on the installation
    triton = None


def triton_available(device: torch.device) -> bool:
    return triton is not None and device.type == "cuda" and os.environ.get("VJGAN_NO_TRITON") != "1"


if triton is not None:

    @triton.jit
    def _epilogue_kernel(y_ptr, bias_ptr, noise_ptr, strength_ptr, scale_ptr, total, C, HW, clamp,
                         HAS_NOISE: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_CLAMP: tl.constexpr,
                         CHANNELS_LAST: tl.constexpr, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < total
        if CHANNELS_LAST:
            c = offs % C
            pix = (offs // C) % HW
        else:
            pix = offs % HW
            c = (offs // HW) % C
        x = tl.load(y_ptr + offs, mask=mask).to(tl.float32)
        if HAS_SCALE:
            n = offs // (C * HW)
            x = x * tl.load(scale_ptr + n * C + c, mask=mask)
        if HAS_NOISE:
            x += tl.load(noise_ptr + pix, mask=mask).to(tl.float32) * tl.load(strength_ptr)
        x += tl.load(bias_ptr + c, mask=mask)
        x = tl.where(x >= 0, x, x * 0.2)
        if HAS_CLAMP:
            x = tl.minimum(tl.maximum(x, -clamp), clamp)
        tl.store(y_ptr + offs, x.to(y_ptr.dtype.element_ty), mask=mask)


def _torch_epilogue(y, bias, noise, strength, channel_scale, clamp):
    if channel_scale is not None:
        y = y * channel_scale.to(y.dtype)[:, :, None, None]
    if noise is not None:
        y = y + noise * strength.to(y.dtype)
    y = F.leaky_relu(y + bias.to(y.dtype)[None, :, None, None], 0.2)
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    return y


def fused_bias_noise_lrelu(y: torch.Tensor, bias: torch.Tensor, noise: torch.Tensor | None,
                           strength: torch.Tensor, channel_scale: torch.Tensor | None,
                           clamp: float | None) -> torch.Tensor:
    """clamp(lrelu(y·scale[n,c] + noise[h,w]·strength + bias[c])), in place where possible.

    y: [N, C, H, W] (contiguous or channels-last); noise: [1 or N, 1, H, W] or None; strength: a 0-d
    device tensor (so it can change between CUDA-graph replays); channel_scale: [N, C] or None.
    """
    if not triton_available(y.device) or (noise is not None and noise.shape[0] > 1):
        # The kernel reads one noise plane for the whole batch; per-frame planes take the slow path.
        return _torch_epilogue(y, bias, noise, strength, channel_scale, clamp)
    channels_last = y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    if not channels_last and not y.is_contiguous():
        y = y.contiguous()
    n, c, h, w = y.shape
    total = y.numel()
    block = 1024
    dummy = bias
    _epilogue_kernel[(triton.cdiv(total, block),)](
        y, bias, noise.contiguous() if noise is not None else dummy, strength,
        channel_scale.contiguous() if channel_scale is not None else dummy,
        total, c, h * w, float(clamp) if clamp is not None else 0.0,
        HAS_NOISE=noise is not None, HAS_SCALE=channel_scale is not None, HAS_CLAMP=clamp is not None,
        CHANNELS_LAST=channels_last, BLOCK=block, num_warps=4,
    )
    return y
