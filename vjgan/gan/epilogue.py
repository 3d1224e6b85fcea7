"""Fused passes of the fast frame path: one kernel where eager PyTorch would run five or ten.

* `fused_epilogue`, after each synthesis convolution: the demodulation scale, the noise (the
  stored constant plane and a random one, mixed by the live noise mode, times the layer's
  strength per frame), the bias, the leaky ReLU and the clamp; for an up-sampling convolution it
  also does the pixel shuffle of the four output phases, reading the phases where they lie.
* `fused_torgb`, a ToRGB layer and the skip image: the 1×1 modulated convolution, its bias and
  clamp, plus the previous image up-sampled by the [1, 3, 3, 1] filter (polyphase, three taps
  per axis and phase); the last one writes the finished uint8 RGBA frame directly.

In eager PyTorch the element-wise parts were about 40% of a graphed 1024² frame's GPU time
(docs/architecture.md, "The generator"), and at low resolutions the cost is per kernel, not arithmetic. On CUDA with Triton
these are single kernels; elsewhere (CPU, MPS, no Triton, or VJGAN_NO_TRITON=1) the same maths
in plain PyTorch. Triton's interpreter (TRITON_INTERPRET=1) runs the kernels on CPU tensors, so
the tests hold them to the PyTorch maths without a GPU. The leaky ReLU's gain is expected to be
folded into the inputs already (lrelu(g·x) = g·lrelu(x) for g > 0).
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


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def triton_available(device: torch.device) -> bool:
    if triton is None or os.environ.get("VJGAN_NO_TRITON") == "1":
        return False
    return device.type == "cuda" or (_interpreting() and device.type == "cpu")


if triton is not None:

    @triton.jit
    def _epilogue_kernel(y_ptr, out_ptr, bias_ptr, scale_ptr, scale_stride, const_ptr, random_ptr, mix_ptr,
                         strength_ptr, strength_stride, total, C, H, W, clamp,
                         HAS_CONST: tl.constexpr, HAS_RANDOM: tl.constexpr, HAS_CLAMP: tl.constexpr,
                         CHANNELS_LAST: tl.constexpr, SHUFFLE: tl.constexpr, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < total
        # The output element (n, c, h, w) this lane writes, in the output's layout.
        if CHANNELS_LAST:
            c = offs % C
            w = (offs // C) % W
            h = (offs // (C * W)) % H
            n = offs // (C * W * H)
        else:
            w = offs % W
            h = (offs // W) % H
            c = (offs // (W * H)) % C
            n = offs // (W * H * C)
        if SHUFFLE:
            # pixel_shuffle(y, 2): out[n, c, 2i + a, 2j + b] = y[n, 4c + 2a + b, i, j]
            hs = h // 2
            ws = w // 2
            cs = c * 4 + (h % 2) * 2 + (w % 2)
            if CHANNELS_LAST:
                src = ((n * (H // 2) + hs) * (W // 2) + ws) * (4 * C) + cs
            else:
                src = ((n * (4 * C) + cs) * (H // 2) + hs) * (W // 2) + ws
        else:
            src = offs
        x = tl.load(y_ptr + src, mask=mask).to(tl.float32)
        x = x * tl.load(scale_ptr + n * scale_stride + c, mask=mask)
        if HAS_CONST or HAS_RANDOM:
            pix = h * W + w
            noise = tl.zeros_like(x)
            if HAS_CONST:
                noise += tl.load(const_ptr + pix, mask=mask).to(tl.float32) * tl.load(mix_ptr)
            if HAS_RANDOM:
                noise += tl.load(random_ptr + pix, mask=mask).to(tl.float32) * tl.load(mix_ptr + 1)
            x += noise * tl.load(strength_ptr + n * strength_stride, mask=mask)
        x += tl.load(bias_ptr + c, mask=mask)
        x = tl.where(x >= 0, x, x * 0.2)
        if HAS_CLAMP:
            x = tl.minimum(tl.maximum(x, -clamp), clamp)
        tl.store(out_ptr + offs, x.to(out_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _skip_tap(acc0, acc1, acc2, prev_ptr, n, yy, xx, hp, wp, tap, pmask, IMG_C: tl.constexpr):
        ok = pmask & (yy >= 0) & (yy < hp) & (xx >= 0) & (xx < wp)
        base = prev_ptr + (n * IMG_C * hp + yy) * wp + xx
        acc0 += tap * tl.load(base, mask=ok, other=0.0)
        if IMG_C == 3:
            acc1 += tap * tl.load(base + hp * wp, mask=ok, other=0.0)
            acc2 += tap * tl.load(base + 2 * hp * wp, mask=ok, other=0.0)
        return acc0, acc1, acc2

    @triton.jit
    def _torgb_kernel(x_ptr, wt_ptr, s_ptr, s_stride, bias_ptr, prev_ptr, out_ptr, total, C, H, W, clamp,
                      r00, r01, r02, r10, r11, r12,
                      IMG_C: tl.constexpr, HAS_PREV: tl.constexpr, HAS_CLAMP: tl.constexpr,
                      CHANNELS_LAST: tl.constexpr, RGBA: tl.constexpr,
                      BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
        pid = tl.program_id(0)
        p = pid.to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)  # pixels over N·H·W
        pmask = p < total
        n = p // (H * W)
        hw = p % (H * W)
        h = hw // W
        w = hw % W
        acc0 = tl.zeros([BLOCK_P], dtype=tl.float32)
        acc1 = tl.zeros([BLOCK_P], dtype=tl.float32)
        acc2 = tl.zeros([BLOCK_P], dtype=tl.float32)
        for c0 in range(0, C, BLOCK_C):
            cc = c0 + tl.arange(0, BLOCK_C)
            cmask = cc < C
            m2 = pmask[:, None] & cmask[None, :]
            if CHANNELS_LAST:
                xp = x_ptr + p[:, None] * C + cc[None, :]
            else:
                xp = x_ptr + (n[:, None] * C + cc[None, :]) * (H * W) + hw[:, None]
            xs = tl.load(xp, mask=m2, other=0.0).to(tl.float32)
            xs = xs * tl.load(s_ptr + n[:, None] * s_stride + cc[None, :], mask=m2, other=0.0)
            acc0 += tl.sum(xs * tl.load(wt_ptr + cc, mask=cmask, other=0.0)[None, :], axis=1)
            if IMG_C == 3:
                acc1 += tl.sum(xs * tl.load(wt_ptr + C + cc, mask=cmask, other=0.0)[None, :], axis=1)
                acc2 += tl.sum(xs * tl.load(wt_ptr + 2 * C + cc, mask=cmask, other=0.0)[None, :], axis=1)
        acc0 += tl.load(bias_ptr)
        if IMG_C == 3:
            acc1 += tl.load(bias_ptr + 1)
            acc2 += tl.load(bias_ptr + 2)
        if HAS_CLAMP:
            acc0 = tl.minimum(tl.maximum(acc0, -clamp), clamp)
            acc1 = tl.minimum(tl.maximum(acc1, -clamp), clamp)
            acc2 = tl.minimum(tl.maximum(acc2, -clamp), clamp)
        if HAS_PREV:
            # The previous image [N, IMG_C, H/2, W/2], up-sampled: output row 2m + a reads rows
            # m − 1, m, m + 1 with phase a's three taps (zero outside), and the same across.
            m = h // 2
            k = w // 2
            odd_h = (h % 2) == 1
            odd_w = (w % 2) == 1
            ty0 = tl.where(odd_h, r10, r00)
            ty1 = tl.where(odd_h, r11, r01)
            ty2 = tl.where(odd_h, r12, r02)
            tx0 = tl.where(odd_w, r10, r00)
            tx1 = tl.where(odd_w, r11, r01)
            tx2 = tl.where(odd_w, r12, r02)
            hp = H // 2
            wp = W // 2
            acc0, acc1, acc2 = _skip_tap(acc0, acc1, acc2, prev_ptr, n, m - 1, k - 1, hp, wp, ty0 * tx0, pmask, IMG_C)
            acc0, acc1, acc2 = _skip_tap(acc0, acc1, acc2, prev_ptr, n, m - 1, k, hp, wp, ty0 * tx1, pmask, IMG_C)
            acc0, acc1, acc2 = _skip_tap(acc0, acc1, acc2, prev_ptr, n, m - 1, k + 1, hp, wp, ty0 * tx2, pmask, IMG_C)
            acc0, acc1, acc2 = _skip_tap(acc0, acc1, acc2, prev_ptr, n, m, k - 1, hp, wp, ty1 * tx0, pmask, IMG_C)
            acc0, acc1, acc2 = _skip_tap(acc0, acc1, acc2, prev_ptr, n, m, k, hp, wp, ty1 * tx1, pmask, IMG_C)
            acc0, acc1, acc2 = _skip_tap(acc0, acc1, acc2, prev_ptr, n, m, k + 1, hp, wp, ty1 * tx2, pmask, IMG_C)
            acc0, acc1, acc2 = _skip_tap(acc0, acc1, acc2, prev_ptr, n, m + 1, k - 1, hp, wp, ty2 * tx0, pmask, IMG_C)
            acc0, acc1, acc2 = _skip_tap(acc0, acc1, acc2, prev_ptr, n, m + 1, k, hp, wp, ty2 * tx1, pmask, IMG_C)
            acc0, acc1, acc2 = _skip_tap(acc0, acc1, acc2, prev_ptr, n, m + 1, k + 1, hp, wp, ty2 * tx2, pmask, IMG_C)
        if RGBA:
            # Native range [−1, 1] → uint8, as FastSynthesis.to_rgba_u8 (truncation, as .to(uint8)).
            v0 = tl.minimum(tl.maximum(tl.minimum(tl.maximum(acc0, -1.0), 1.0) * 127.5 + 128.0, 0.0), 255.0)
            if IMG_C == 3:
                v1 = tl.minimum(tl.maximum(tl.minimum(tl.maximum(acc1, -1.0), 1.0) * 127.5 + 128.0, 0.0), 255.0)
                v2 = tl.minimum(tl.maximum(tl.minimum(tl.maximum(acc2, -1.0), 1.0) * 127.5 + 128.0, 0.0), 255.0)
            else:
                v1 = v0
                v2 = v0
            o = out_ptr + p * 4
            tl.store(o, v0.to(tl.uint8), mask=pmask)
            tl.store(o + 1, v1.to(tl.uint8), mask=pmask)
            tl.store(o + 2, v2.to(tl.uint8), mask=pmask)
            tl.store(o + 3, tl.full([BLOCK_P], 255, tl.uint8), mask=pmask)
        else:
            o = out_ptr + (n * IMG_C * H + h) * W + w
            tl.store(o, acc0, mask=pmask)
            if IMG_C == 3:
                tl.store(o + H * W, acc1, mask=pmask)
                tl.store(o + 2 * H * W, acc2, mask=pmask)


# ---------------------------------------------------------------------------------------------
# after a convolution


def torch_epilogue(y: torch.Tensor, bias: torch.Tensor, channel_scale: torch.Tensor, noise_const: torch.Tensor | None,
                   noise_random: torch.Tensor | None, noise_mix: torch.Tensor, strength: torch.Tensor,
                   clamp: float | None, shuffle: bool) -> torch.Tensor:
    """The epilogue's maths in plain PyTorch (see `fused_epilogue`)."""
    if shuffle:
        y = F.pixel_shuffle(y, 2)
    y = y * channel_scale.to(y.dtype)[:, :, None, None]
    noise = None
    if noise_const is not None:
        noise = noise_const.to(y.dtype) * noise_mix[0].to(y.dtype)
    if noise_random is not None:
        random = noise_random.to(y.dtype) * noise_mix[1].to(y.dtype)
        noise = random if noise is None else noise + random
    if noise is not None:
        y = y + noise[None, None] * strength.to(y.dtype).reshape(-1, 1, 1, 1)
    y = F.leaky_relu(y + bias.to(y.dtype)[None, :, None, None], 0.2)
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    return y


def fused_epilogue(y: torch.Tensor, bias: torch.Tensor, channel_scale: torch.Tensor, noise_const: torch.Tensor | None,
                   noise_random: torch.Tensor | None, noise_mix: torch.Tensor, strength: torch.Tensor,
                   clamp: float | None, shuffle: bool = False) -> torch.Tensor:
    """clamp(lrelu(y·scale[n,c] + (const·mix[0] + random·mix[1])·strength[n] + bias[c])).

    y: [N, C, H, W], or [N, 4·C, H/2, W/2] with `shuffle` (an up-sampling convolution's four
    phases, pixel-shuffled on the way); contiguous or channels-last. channel_scale: [N, C] fp32;
    noise_const, noise_random: [H, W] planes or None; noise_mix: 2 device floats (the noise
    mode's weights); strength: [N] or [1] device floats (a view with any stride). In place
    without `shuffle` where Triton runs; a new tensor in y's layout otherwise.
    """
    if not triton_available(y.device):
        return torch_epilogue(y, bias, channel_scale, noise_const, noise_random, noise_mix, strength, clamp, shuffle)
    channels_last = y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    if not channels_last and not y.is_contiguous():
        y = y.contiguous()
    n, c, h, w = y.shape
    if shuffle:
        c, h, w = c // 4, h * 2, w * 2
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        out = torch.empty((n, c, h, w), dtype=y.dtype, device=y.device, memory_format=fmt)
    else:
        out = y
    total = out.numel()
    block = 1024
    stride = strength.stride(0) if strength.shape[0] > 1 else 0
    dummy = bias
    if channel_scale.stride(1) != 1:
        channel_scale = channel_scale.contiguous()
    _epilogue_kernel[(triton.cdiv(total, block),)](
        y, out, bias, channel_scale, channel_scale.stride(0),
        noise_const if noise_const is not None else dummy, noise_random if noise_random is not None else dummy,
        noise_mix, strength, stride, total, c, h, w, float(clamp) if clamp is not None else 0.0,
        HAS_CONST=noise_const is not None, HAS_RANDOM=noise_random is not None, HAS_CLAMP=clamp is not None,
        CHANNELS_LAST=channels_last, SHUFFLE=shuffle, BLOCK=block, num_warps=4,
    )
    return out


# ---------------------------------------------------------------------------------------------
# ToRGB and the skip image


def polyphase_rows(taps: tuple[float, ...]) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The skip image's 2× up-sampler per axis: for output phase p (row 2m + p), the weights of
    input rows m − 1, m, m + 1 (zero insertion, then the gain-2 filter, padding (2, 1))."""
    f = torch.as_tensor(taps, dtype=torch.float64)
    f = f * (2.0 / f.sum())
    rows = []
    for p in range(2):
        row = [0.0, 0.0, 0.0]
        for a, j in enumerate((-1, 0, 1)):
            idx = p + 1 - 2 * j
            if 0 <= idx < len(f):
                row[a] = float(f[idx])
        rows.append(tuple(row))
    return rows[0], rows[1]


def fused_torgb(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, bias: torch.Tensor,
                previous: torch.Tensor | None, rows: tuple[tuple[float, float, float], tuple[float, float, float]],
                clamp: float | None, rgba_out: torch.Tensor | None = None) -> torch.Tensor | None:
    """One Triton kernel: Σ_c x[c]·styles[n, c]·weight[o, c] + bias[o], clamped, plus the previous
    image up-sampled (`rows`: `polyphase_rows`), as float32 [N, C_img, H, W]; or, with
    `rgba_out` (uint8 [N, H, W, 4]), the finished pixels written there (returns None).
    x: [N, C, H, W] contiguous or channels-last; weight: [C_img, C] fp32; styles: [N, C] fp32
    (any row stride); previous: float32 [N, C_img, H/2, W/2] or None. CUDA (or the interpreter) only."""
    n, c, h, w = x.shape
    img_c = weight.shape[0]
    if img_c not in (1, 3):
        raise ValueError("the fused ToRGB writes one or three channels")
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if not channels_last and not x.is_contiguous():
        x = x.contiguous()
    out = rgba_out if rgba_out is not None else torch.empty((n, img_c, h, w), dtype=torch.float32, device=x.device)
    total = n * h * w
    block_p, block_c = 64, 32
    (r00, r01, r02), (r10, r11, r12) = rows
    if styles.stride(1) != 1:
        styles = styles.contiguous()
    _torgb_kernel[(triton.cdiv(total, block_p),)](
        x, weight.contiguous(), styles, styles.stride(0), bias, previous.contiguous() if previous is not None else bias, out,
        total, c, h, w, float(clamp) if clamp is not None else 0.0, r00, r01, r02, r10, r11, r12,
        IMG_C=img_c, HAS_PREV=previous is not None, HAS_CLAMP=clamp is not None, CHANNELS_LAST=channels_last,
        RGBA=rgba_out is not None, BLOCK_P=block_p, BLOCK_C=block_c, num_warps=4,
    )
    return None if rgba_out is not None else out
