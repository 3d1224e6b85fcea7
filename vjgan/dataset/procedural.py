"""vjgan's own training images: abstract light, fluid and fractal pictures drawn by code.

Every image is a pure function of (seed, index, resolution): its parameters come from a random
generator seeded by a hash of the seed and its index, so any slice of a dataset can be rebuilt
anywhere, in any batch size, without the rest. The drawing itself is vectorised torch and runs
on the CPU or a GPU. Splats are summed in fixed-point integers, so their order (which atomics on
a GPU do not keep) cannot change a pixel; the same device and torch build give the same bytes.
Different devices may differ by rounding of a transcendental function: at most one grey level
in rare pixels.

Seven kinds, chosen to look good on a projector (luminous colour on black, smooth structure a
small StyleGAN2 can learn and interpolate):

- ``marble``: domain-warped noise through a cosine palette (ink, smoke, marbled fluid),
  sometimes folded into kaleidoscopic symmetry;
- ``flow``: luminous streamlines traced through a divergence-free (curl-noise) flow field;
- ``streaks``: long-exposure light painting: ribbons of glowing strands along Lissajous curves;
- ``blobs``: organic metaball forms with glossy 3-D shading and a glowing rim;
- ``cells``: organic cellular tissue (warped Worley noise) with glowing veins;
- ``julia``: Julia sets near the Mandelbrot boundary, smooth-coloured, with orbit-trap glow;
- ``flame``: fractal flames (iterated function systems with non-linear variations), log-density
  tone mapping as in Electric Sheep.

Colours come from cosine palettes (a + b·cos 2π(c·t + d)), curated and random.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

PROCEDURAL_VERSION = 1  # bump whenever a change alters any image for a given seed

KIND_WEIGHTS: dict[str, float] = {
    "marble": 0.20,
    "flow": 0.16,
    "streaks": 0.14,
    "blobs": 0.12,
    "cells": 0.10,
    "julia": 0.12,
    "flame": 0.16,
}
KINDS = tuple(KIND_WEIGHTS)

_FIXED_SCALE = 4096.0  # fixed-point scale of the splat accumulators

# ---------------------------------------------------------------------------------------------
# randomness: one small CPU generator per image


def image_seed(seed: int, index: int) -> int:
    """The 63-bit seed of image `index` in the dataset of `seed` (independent of batching)."""
    digest = hashlib.blake2b(f"vjgan-procedural-v{PROCEDURAL_VERSION}:{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class _Rand:
    """Parameter draws for one image.

    Python's Mersenne Twister `random()` is guaranteed to give the same sequence for the same
    integer seed on every platform and Python version, and is cheap to call, so every draw is
    built from it (never from `randint`/`choice`, whose algorithms may change).
    """

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def u(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * self.r.random()

    def uniform(self, lo: float = 0.0, hi: float = 1.0, *shape: int) -> torch.Tensor:
        n = math.prod(shape)
        rnd = self.r.random
        return torch.tensor([lo + (hi - lo) * rnd() for _ in range(n)], dtype=torch.float32).reshape(shape)

    def integer(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return min(hi, lo + int(self.r.random() * (hi - lo + 1)))

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def choice(self, items: Sequence, weights: Sequence[float] | None = None):
        if weights is None:
            return items[self.integer(0, len(items) - 1)]
        x = self.r.random() * sum(weights)
        acc = 0.0
        for item, w in zip(items, weights):
            acc += w
            if x < acc:
                return item
        return items[-1]

    def seed32(self) -> int:
        return int(self.r.random() * 4294967296.0) & 0xFFFFFFFF


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash on int64 tensors (values < 2^32; products stay below 2^63, so the
    result is the same on every device)."""
    x = x & 0xFFFFFFFF
    x = ((x >> 16) ^ x) * 0x45D9F3B & 0xFFFFFFFF
    x = ((x >> 16) ^ x) * 0x45D9F3B & 0xFFFFFFFF
    return (x >> 16) ^ x


def _hash_uniform(seed: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """Uniform floats in [0, 1) from (per-image seed, counter), computed on the counter's device."""
    h = _hash32(_hash32(counter) ^ seed)
    return (h >> 8).float() * (1.0 / 16777216.0)


# ---------------------------------------------------------------------------------------------
# colour

# Curated cosine palettes (a, b, c, d): col(t) = a + b cos(2π (c t + d)).
_PALETTES = [
    ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), (0.00, 0.33, 0.67)),  # spectrum
    ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), (0.00, 0.10, 0.20)),  # ember
    ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), (0.30, 0.20, 0.20)),  # dusk
    ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (1.0, 1.0, 0.5), (0.80, 0.90, 0.30)),  # acid
    ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (1.0, 0.7, 0.4), (0.00, 0.15, 0.20)),  # coral
    ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (2.0, 1.0, 0.0), (0.50, 0.20, 0.25)),  # magenta-teal
    ((0.8, 0.5, 0.4), (0.2, 0.4, 0.2), (2.0, 1.0, 1.0), (0.00, 0.25, 0.25)),  # fire
    ((0.2, 0.5, 0.7), (0.3, 0.4, 0.3), (1.0, 1.0, 1.0), (0.55, 0.60, 0.65)),  # ice
    ((0.5, 0.3, 0.6), (0.5, 0.3, 0.4), (1.0, 1.0, 1.0), (0.75, 0.95, 0.40)),  # violet
    ((0.4, 0.6, 0.4), (0.4, 0.4, 0.4), (1.0, 1.0, 1.0), (0.25, 0.45, 0.65)),  # aurora
]


def _sample_palette(rng: _Rand) -> torch.Tensor:
    """A palette as a [4, 3] tensor (rows a, b, c, d)."""
    if rng.chance(0.65):
        a, b, c, d = (torch.tensor(v) for v in rng.choice(_PALETTES))
        d = d + rng.u(0.0, 1.0) + rng.uniform(-0.06, 0.06, 3)  # phase (hue) shift, per-channel jitter
        c = c * rng.u(0.7, 1.3)
    else:
        a = rng.uniform(0.35, 0.65, 3)
        b = rng.uniform(0.30, 0.55, 3)
        c = torch.full((3,), rng.u(0.5, 1.5)) if rng.chance(0.5) else rng.uniform(0.4, 1.6, 3)
        d = rng.uniform(0.0, 1.0, 3)
    return torch.stack([a.float(), b.float(), c.float(), d.float()])


def _palette(t: torch.Tensor, pal: torch.Tensor) -> torch.Tensor:
    """Colour [B, 3, *S] of values t [B, *S] through palettes pal [B, 4, 3]."""
    shape = [pal.shape[0], 3] + [1] * (t.ndim - 1)
    a, b, c, d = (pal[:, i].reshape(shape) for i in range(4))
    return (a + b * torch.cos(2 * math.pi * (c * t.unsqueeze(1) + d))).clamp_(0, 1)


def _smoothstep(e0: torch.Tensor | float, e1: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _bshape(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """Reshape a per-image [B] tensor to broadcast over a [B, ...] tensor of `ndim` dims."""
    return v.reshape([-1] + [1] * (ndim - 1))


# ---------------------------------------------------------------------------------------------
# geometry helpers


def _grid(batch: int, size: int, device: torch.device) -> torch.Tensor:
    """Pixel centres in [-1, 1]², y down: [B, size*size, 2] (x, y)."""
    lin = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([xx, yy], dim=-1).reshape(1, -1, 2).expand(batch, -1, -1)


def _transform(p: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Rotate, scale and shift points p [B, N, 2] per image."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # [B, 2, 2]
    return torch.bmm(p, rot.transpose(1, 2)) * scale[:, None, None] + offset[:, None, :]


def _kaleido(p: torch.Tensor, folds: torch.Tensor) -> torch.Tensor:
    """Fold points into a mirrored wedge of angle 2π/folds (folds ≤ 1 leaves them unchanged)."""
    r = p.norm(dim=-1)
    theta = torch.atan2(p[..., 1], p[..., 0])
    n = folds.clamp(min=1).float()[:, None]
    wedge = 2 * math.pi / n
    t = torch.remainder(theta, wedge) - wedge / 2
    t = t.abs()
    folded = torch.stack([r * torch.cos(t), r * torch.sin(t)], -1)
    return torch.where((folds > 1)[:, None, None], folded, p)


@dataclass
class _WaveSpec:
    """The raw draws of one image's random field; turned into waves on the render device."""

    draws: torch.Tensor  # [3, octaves * per_octave] uniforms: angle, frequency jitter, phase
    octaves: int
    per_octave: int
    freq: float
    lacunarity: float
    gain: float


@dataclass
class _Waves:
    """A sum of sinusoids: a smooth random field Σ amp·sin(k·p + phase) (random Fourier features),
    batched over images: k [B, K, 2], phase [B, K], amp [B, K]."""

    k: torch.Tensor
    phase: torch.Tensor
    amp: torch.Tensor

    @staticmethod
    def sample(rng: _Rand, octaves: int, per_octave: int, freq: float, lacunarity: float = 2.0, gain: float = 0.5) -> _WaveSpec:
        return _WaveSpec(rng.uniform(0.0, 1.0, 3, octaves * per_octave), octaves, per_octave, freq, lacunarity, gain)

    @staticmethod
    def stack(specs: Sequence[_WaveSpec], device: torch.device) -> "_Waves":
        first = specs[0]
        draws = torch.stack([s.draws for s in specs]).to(device)  # [B, 3, K]
        per_image = torch.tensor([[s.freq, s.lacunarity, s.gain] for s in specs], device=device)
        freq, lac, gain = (per_image[:, i : i + 1] for i in range(3))
        octave = torch.arange(first.octaves, device=device, dtype=torch.float32).repeat_interleave(first.per_octave)[None]
        angles = draws[:, 0] * (2 * math.pi)
        f = freq * lac**octave * (0.8 + 0.45 * draws[:, 1])
        k = torch.stack([torch.cos(angles), torch.sin(angles)], -1) * (math.pi * f)[..., None]
        amp = gain**octave
        amp = amp / torch.sqrt((amp**2).sum(1, keepdim=True) / 2)  # unit variance
        return _Waves(k, draws[:, 2] * (2 * math.pi), amp)


def _field(p: torch.Tensor, w: _Waves) -> torch.Tensor:
    """Evaluate batched waves (k [B,K,2]) at points p [B, N, 2] → [B, N]."""
    arg = torch.baddbmm(w.phase[:, None, :], p, w.k.transpose(1, 2))
    return torch.bmm(arg.sin_(), w.amp[:, :, None]).squeeze(-1)


def _field_grad(p: torch.Tensor, w: _Waves) -> torch.Tensor:
    """Gradient of the field at p: [B, N, 2]."""
    arg = torch.baddbmm(w.phase[:, None, :], p, w.k.transpose(1, 2))
    return torch.bmm(arg.cos_() * w.amp[:, None, :], w.k)


def _splat(points: torch.Tensor, colors: torch.Tensor, size: int, bilinear: bool = True) -> torch.Tensor:
    """Add coloured points p [B, N, 2] (in [-1, 1]²) with colours [B, N, C] into images [B, C, size, size].

    Sums in fixed-point int64, so the result does not depend on the order of the additions.
    Points outside the picture are dropped (by weight, not by indexing, so a GPU never waits).
    """
    B, N, _ = points.shape
    C = colors.shape[-1]
    device = points.device
    xy = torch.nan_to_num((points + 1.0) * (size / 2.0) - 0.5, nan=-10.0, posinf=-10.0, neginf=-10.0).clamp_(-10.0, size + 10.0)
    acc = torch.zeros(B * size * size, C, dtype=torch.int64, device=device)
    base = (torch.arange(B, device=device) * (size * size))[:, None]
    if bilinear:
        x0f = torch.floor(xy)
        frac = xy - x0f
        corners = ((0, 0), (1, 0), (0, 1), (1, 1))
    else:
        x0f = torch.floor(xy + 0.5)
        frac = None
        corners = ((0, 0),)
    x0 = x0f.long()
    for dx, dy in corners:
        xi, yi = x0[..., 0] + dx, x0[..., 1] + dy
        ok = ((xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)).float()
        if frac is not None:
            wx = frac[..., 0] if dx else 1 - frac[..., 0]
            wy = frac[..., 1] if dy else 1 - frac[..., 1]
            wgt = wx * wy * ok
        else:
            wgt = ok
        val = torch.round(colors * (wgt * _FIXED_SCALE)[..., None]).long()
        idx = base + yi.clamp(0, size - 1) * size + xi.clamp(0, size - 1)
        acc.index_add_(0, idx.reshape(-1), val.reshape(-1, C))
    return (acc.float() / _FIXED_SCALE).reshape(B, size, size, C).permute(0, 3, 1, 2).contiguous()


def _rotate_sum(img: torch.Tensor, folds: torch.Tensor) -> torch.Tensor:
    """Σ_k img rotated by 2πk/folds about the centre (rotational symmetry), for folds ≥ 1 per image."""
    n_max = int(folds.max().item()) if folds.device.type == "cpu" else _FLAME_MAX_SYMMETRY
    out = img.clone()
    for k in range(1, n_max):
        ang = 2 * math.pi * k / folds.clamp(min=1)
        cos, sin = torch.cos(ang), torch.sin(ang)
        theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], -1),
                             torch.stack([sin, cos, torch.zeros_like(cos)], -1)], -2)
        grid = F.affine_grid(theta, list(img.shape), align_corners=False)
        rot = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out = out + rot * _bshape((k < folds).float(), 4)
    return out


def _gauss_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B, C, H, W] with zero padding (light falls off the edge)."""
    if sigma <= 0:
        return img
    B, C, H, W = img.shape
    k = _gauss_kernel(sigma, img.device)
    r = (k.numel() - 1) // 2
    x = img.reshape(B * C, 1, H, W)
    x = F.conv2d(x, k.reshape(1, 1, 1, -1), padding=(0, r))
    x = F.conv2d(x, k.reshape(1, 1, -1, 1), padding=(r, 0))
    return x.reshape(B, C, H, W)


def _tonemap(light: torch.Tensor, exposure: torch.Tensor) -> torch.Tensor:
    """Filmic-ish 1 − exp(−e·x) with a per-image exposure, then display gamma."""
    x = 1.0 - torch.exp(-light * _bshape(exposure, light.ndim))
    return x.clamp_(0, 1).pow_(1 / 2.2)


def _auto_exposure(light: torch.Tensor, target: torch.Tensor, q: float = 0.995) -> torch.Tensor:
    """Exposure that maps the q-quantile of each image's brightest channel to `target` (in 1−exp units)."""
    B = light.shape[0]
    lum = light.amax(dim=1).reshape(B, -1)
    step = max(1, lum.shape[1] // 16384)
    sub = lum[:, ::step]
    k = max(1, min(sub.shape[1], int(round(q * sub.shape[1]))))
    level = sub.kthvalue(k, dim=1).values.clamp(min=1e-6)
    return -torch.log1p(-target.clamp(max=0.999)) / level


def _vignette(img: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    B, _, H, W = img.shape
    p = _grid(1, H, img.device).reshape(1, H, W, 2)
    r2 = (p**2).sum(-1)[None]  # [1, 1, H, W]
    return img * (1 - _bshape(strength, 4) * (r2 / 2).clamp(max=1) ** 1.5)


def _stack(params: list[dict], key: str, device: torch.device) -> torch.Tensor:
    return torch.stack([torch.as_tensor(p[key]).float() for p in params]).to(device)


# ---------------------------------------------------------------------------------------------
# marble: domain-warped noise


def _sample_marble(rng: _Rand) -> dict:
    freq = rng.u(0.5, 1.3)
    p = {
        "waves": [_Waves.sample(rng, 4, 6, freq * rng.u(0.8, 1.25), rng.u(1.8, 2.2), rng.u(0.35, 0.5)) for _ in range(5)],
        "angle": rng.u(0, 2 * math.pi),
        "scale": rng.u(0.7, 1.3),
        "offset": rng.uniform(-3, 3, 2),
        "w1": rng.u(0.15, 0.6),
        "w2": rng.u(0.15, 0.6),
        "tscale": rng.u(0.25, 0.7),
        "toffset": rng.u(0, 1),
        "qmix": rng.u(0.0, 0.5),
        "sharp": rng.u(1.5, 5.0),
        "bias": rng.u(-0.6, 0.4),
        "floor": rng.u(0.0, 0.12),
        "bands": rng.u(2.0, 7.0) if rng.chance(0.35) else 0.0,
        "band_depth": rng.u(0.3, 0.8),
        "sheen": rng.u(0.0, 0.6),
        "folds": rng.choice([0, 3, 4, 5, 6, 8]) if rng.chance(0.25) else 0,
        "vignette": rng.u(0.0, 0.6),
        "pal": _sample_palette(rng),
        "pal2": _sample_palette(rng),
    }
    return p


def _render_marble(params: list[dict], size: int, device: torch.device) -> torch.Tensor:
    B = len(params)
    waves = [_Waves.stack([p["waves"][i] for p in params], device) for i in range(5)]
    g = _grid(B, size, device)
    folds = torch.tensor([p["folds"] for p in params], device=device)
    g = _kaleido(g, folds)
    pt = _transform(g, _stack(params, "angle", device), _stack(params, "scale", device), _stack(params, "offset", device))
    w1 = _stack(params, "w1", device)[:, None, None]
    w2 = _stack(params, "w2", device)[:, None, None]
    q = torch.stack([_field(pt, waves[0]), _field(pt, waves[1])], -1)
    pq = pt + w1 * q
    r = torch.stack([_field(pq, waves[2]), _field(pq, waves[3])], -1)
    v = _field(pt + w2 * r, waves[4])  # [B, N]
    qn = q.norm(dim=-1)
    rn = r.norm(dim=-1)

    def per(key: str) -> torch.Tensor:
        return _stack(params, key, device)[:, None]

    t = per("tscale") * v + per("qmix") * qn + per("toffset")
    col = _palette(t, _stack(params, "pal", device))  # [B, 3, N]
    lum = torch.sigmoid(per("sharp") * (v + 0.6 * r[..., 0] - per("bias")))
    lum = per("floor") + (1 - per("floor")) * lum
    bands = per("bands")
    band = 1 - per("band_depth") * (0.5 + 0.5 * torch.cos(2 * math.pi * bands * (0.5 * r[..., 1] + 0.25 * v))) ** 6
    lum = lum * torch.where(bands > 0, band, torch.ones_like(band))
    col = col * lum[:, None]
    sheen = _palette(0.3 * rn + per("toffset"), _stack(params, "pal2", device))
    col = col + (per("sheen") * _smoothstep(1.2, 2.4, rn) * lum)[:, None] * sheen
    img = col.reshape(B, 3, size, size).clamp(0, 1)
    return _vignette(img, _stack(params, "vignette", device))


# ---------------------------------------------------------------------------------------------
# flow: streamlines of a curl-noise field


_FLOW_STEPS = 96


def _sample_flow(rng: _Rand, particles: int) -> dict:
    return {
        "potential": _Waves.sample(rng, 3, 5, rng.u(0.8, 1.8), 2.0, rng.u(0.35, 0.55)),
        "color_field": _Waves.sample(rng, 2, 4, rng.u(0.4, 1.0)),
        "particles": particles,
        "hash": rng.seed32(),
        "length": rng.u(0.5, 1.0),
        "swirl": rng.u(-0.6, 0.6),
        "cspread": rng.u(0.2, 0.6),
        "coffset": rng.u(0, 1),
        "target": rng.u(0.8, 0.97),
        "glow": rng.u(0.4, 1.2),
        "bg": rng.u(0.0, 0.06),
        "pal": _sample_palette(rng),
    }


def _render_flow(params: list[dict], size: int, device: torch.device) -> torch.Tensor:
    B = len(params)
    pot = _Waves.stack([p["potential"] for p in params], device)
    cf = _Waves.stack([p["color_field"] for p in params], device)
    P = params[0]["particles"]
    seeds = torch.tensor([p["hash"] for p in params], dtype=torch.int64, device=device)[:, None]
    lane = torch.arange(P, device=device, dtype=torch.int64)[None, :] * 4
    pos = torch.stack([_hash_uniform(seeds, lane), _hash_uniform(seeds, lane + 1)], -1) * 2.3 - 1.15  # [B, P, 2]
    bright = (0.15 + 0.85 * _hash_uniform(seeds, lane + 2)) ** 2
    phase = _hash_uniform(seeds, lane + 3)
    h = 0.9 * 2.0 / size  # about one pixel per step: continuous lines
    swirl = _stack(params, "swirl", device)[:, None, None]
    length = _stack(params, "length", device)
    trail = []
    for _ in range(_FLOW_STEPS):
        trail.append(pos)
        mid = pos + 0.5 * h * _curl(pos, pot, swirl)
        pos = pos + h * _curl(mid, pot, swirl)
    pts = torch.stack(trail, 2)  # [B, P, S, 2]
    s = (torch.arange(_FLOW_STEPS, device=device, dtype=torch.float32) + 0.5) / _FLOW_STEPS  # [S]
    # Each particle lights a window of its trail (its own phase), fading in and out.
    ph = phase[:, :, None]
    span = length[:, None, None]
    u = (s[None, None, :] - ph * (1 - span)) / span
    env = torch.where((u > 0) & (u < 1), torch.sin(math.pi * u.clamp(0, 1)) ** 0.8, torch.zeros_like(u))
    env = env * bright[:, :, None]
    start_t = _field(pts[:, :, 0], cf)  # [B, P]
    t = _stack(params, "cspread", device)[:, None, None] * start_t[:, :, None] + 0.15 * s[None, None, :]
    t = t + _stack(params, "coffset", device)[:, None, None]
    col = _palette(t.reshape(B, -1), _stack(params, "pal", device))  # [B, 3, P*S]
    col = col.transpose(1, 2) * env.reshape(B, -1, 1)
    light = _splat(pts.reshape(B, P * _FLOW_STEPS, 2), col, size)
    glow = _stack(params, "glow", device)
    out = light + _bshape(glow, 4) * (0.6 * _blur(light, 0.006 * size) + 0.4 * _blur(light, 0.03 * size))
    exposure = _auto_exposure(out, _stack(params, "target", device))
    img = _tonemap(out, exposure)
    bg = _palette(torch.zeros(B, 1, 1, device=device) + 0.5, _stack(params, "pal", device)) * _bshape(_stack(params, "bg", device), 4)
    return (img + bg).clamp(0, 1)


def _curl(p: torch.Tensor, pot: _Waves, swirl: torch.Tensor) -> torch.Tensor:
    """Unit-speed direction of the curl of the potential at p, with a little rotation about the centre."""
    gr = _field_grad(p, pot)
    v = torch.stack([gr[..., 1], -gr[..., 0]], -1)
    v = v + swirl * torch.stack([-p[..., 1], p[..., 0]], -1)
    return v / (v.norm(dim=-1, keepdim=True) + 1e-6)


# ---------------------------------------------------------------------------------------------
# streaks: long-exposure light painting


_STREAK_CURVES = 3
_STREAK_STRANDS = 9
_STREAK_HARMONICS = 3


def _sample_streaks(rng: _Rand) -> dict:
    C, S, J = _STREAK_CURVES, _STREAK_STRANDS, _STREAK_HARMONICS
    n_curves = rng.integer(1, C)
    freqs = torch.tensor([[[rng.integer(1, 4), rng.integer(1, 4)] for _ in range(J)] for _ in range(C)], dtype=torch.float32)
    amps = rng.uniform(0.15, 0.75, C, J, 2) * (0.55 ** torch.arange(J, dtype=torch.float32))[None, :, None]
    strands = torch.tensor([float(rng.integer(1, S)) if c < n_curves else 0.0 for c in range(C)])
    return {
        "center": rng.uniform(-0.25, 0.25, C, 2),
        "freqs": freqs,
        "amps": amps,
        "phases": rng.uniform(0, 2 * math.pi, C, J, 2),
        "start": rng.uniform(0, 1, C),
        "span": rng.uniform(0.35, 1.0, C),
        "strands": strands,
        "spacing": rng.uniform(0.006, 0.03, C),
        "twist": rng.uniform(-3.0, 3.0, C),
        "flicker": rng.uniform(0.0, 0.7, C),
        "flicker_f": rng.uniform(2.0, 14.0, C),
        "coffset": rng.uniform(0, 1, C),
        "cgrad": rng.uniform(-0.5, 0.5, C),
        "target": rng.u(0.85, 0.98),
        "glow": rng.u(0.5, 1.5),
        "bg": rng.u(0.0, 0.08),
        "angle": rng.u(0, 2 * math.pi),
        "pal": _sample_palette(rng),
    }


def _render_streaks(params: list[dict], size: int, device: torch.device) -> torch.Tensor:
    B, C, S = len(params), _STREAK_CURVES, _STREAK_STRANDS
    N = 4 * size  # samples along each strand
    t = torch.linspace(0, 1, N, device=device)
    start = _stack(params, "start", device)[..., None]  # [B, C, 1]
    span = _stack(params, "span", device)[..., None]
    tau = 2 * math.pi * (start + span * t)  # [B, C, N]
    freqs = _stack(params, "freqs", device)  # [B, C, J, 2]
    amps = _stack(params, "amps", device)
    phases = _stack(params, "phases", device)
    arg = freqs[..., None, :] * tau[:, :, None, :, None] + phases[..., None, :]  # [B, C, J, N, 2]
    x = (amps[..., None, 0] * torch.cos(arg[..., 0])).sum(2)
    y = (amps[..., None, 1] * torch.sin(arg[..., 1])).sum(2)
    curve = torch.stack([x, y], -1) + _stack(params, "center", device)[:, :, None, :]  # [B, C, N, 2]
    ang = _stack(params, "angle", device)
    curve = _transform(curve.reshape(B, C * N, 2), ang, torch.ones(B, device=device), torch.zeros(B, 2, device=device)).reshape(B, C, N, 2)
    tangent = torch.gradient(curve, dim=2)[0]
    ds = tangent.norm(dim=-1)  # arc length per sample
    normal = torch.stack([-tangent[..., 1], tangent[..., 0]], -1) / (ds[..., None] + 1e-8)
    k = torch.arange(S, device=device, dtype=torch.float32)
    n_strands = _stack(params, "strands", device)  # [B, C]
    offs = (k[None, None, :] - (n_strands[..., None] - 1) / 2) * _stack(params, "spacing", device)[..., None]  # [B, C, S]
    twist = torch.cos(_stack(params, "twist", device)[..., None, None] * tau[:, :, None, :])  # [B, C, 1, N]
    pts = curve[:, :, None] + normal[:, :, None] * (offs[..., None] * (0.4 + 0.6 * twist))[..., None]  # [B, C, S, N, 2]
    alive = (k[None, None, :] < n_strands[..., None]).float()  # [B, C, S]
    fade = torch.sin(math.pi * t).clamp(min=0) ** 0.6  # [N]
    fl = _stack(params, "flicker", device)[..., None]
    flicker = 1 - fl * (0.5 + 0.5 * torch.sin(2 * math.pi * _stack(params, "flicker_f", device)[..., None] * t))  # [B, C, N]
    step = 2.0 / size
    weight = (ds / step).clamp(max=8.0) * fade * flicker  # [B, C, N]
    weight = weight[:, :, None, :] * alive[..., None] / n_strands.clamp(min=1)[..., None, None].sqrt()
    ct = _stack(params, "coffset", device)[..., None, None] + _stack(params, "cgrad", device)[..., None, None] * t + 0.04 * k[None, None, :, None]
    col = _palette(ct.reshape(B, -1), _stack(params, "pal", device)).transpose(1, 2)  # [B, C*S*N, 3]
    col = col * weight.reshape(B, -1, 1)
    light = _splat(pts.reshape(B, -1, 2), col, size)
    glow = _stack(params, "glow", device)
    out = light + _bshape(glow, 4) * (0.7 * _blur(light, 0.008 * size) + 0.5 * _blur(light, 0.04 * size))
    img = _tonemap(out, _auto_exposure(out, _stack(params, "target", device), q=0.998))
    bgt = _grid(B, size, device)[..., 1].reshape(B, 1, size, size)
    bg = _palette(0.2 * bgt[:, 0] + 0.5, _stack(params, "pal", device)) * _bshape(_stack(params, "bg", device), 4) * (1 - bgt.abs())
    return (img + bg).clamp(0, 1)


# ---------------------------------------------------------------------------------------------
# blobs: glossy metaballs


_BLOBS = 10


def _sample_blobs(rng: _Rand) -> dict:
    n = rng.integer(3, _BLOBS)
    strength = torch.zeros(_BLOBS)
    strength[:n] = rng.uniform(0.7, 1.3, n)
    return {
        "centers": rng.uniform(-0.65, 0.65, _BLOBS, 2),
        "radii": rng.uniform(0.10, 0.32, _BLOBS),
        "strength": strength,
        "warp": _Waves.sample(rng, 2, 4, rng.u(0.6, 1.4)),
        "warp2": _Waves.sample(rng, 2, 4, rng.u(0.6, 1.4)),
        "warp_amt": rng.u(0.0, 0.25),
        "threshold": rng.u(0.35, 0.65),
        "light": rng.uniform(-1, 1, 2),
        "tscale": rng.u(0.3, 1.2),
        "toffset": rng.u(0, 1),
        "rim": rng.u(0.3, 1.2),
        "halo": rng.u(0.1, 0.6),
        "spec": rng.u(0.2, 0.9),
        "bg": rng.u(0.0, 0.1),
        "pal": _sample_palette(rng),
        "pal2": _sample_palette(rng),
    }


def _warped_grid(params: list[dict], size: int, device: torch.device) -> torch.Tensor:
    """The pixel grid pushed around by two wave fields ("warp", "warp2"), by "warp_amt":
    the organic wobble that blobs and cells share."""
    g = _grid(len(params), size, device)
    amt = _stack(params, "warp_amt", device)[:, None, None]
    warp = torch.stack([_field(g, _Waves.stack([p["warp"] for p in params], device)),
                        _field(g, _Waves.stack([p["warp2"] for p in params], device))], -1)
    return g + amt * warp


def _render_blobs(params: list[dict], size: int, device: torch.device) -> torch.Tensor:
    B = len(params)
    pw = _warped_grid(params, size, device)
    centers = _stack(params, "centers", device)  # [B, K, 2]
    radii = _stack(params, "radii", device)
    strength = _stack(params, "strength", device)
    d2 = torch.cdist(pw, centers).square()  # [B, N, K]
    field = (strength[:, None, :] * torch.exp(-d2 / (2 * radii[:, None, :] ** 2))).sum(-1)
    field = field.reshape(B, size, size)
    thr = _bshape(_stack(params, "threshold", device), 3)
    px = 2.0 / size
    inside = _smoothstep(thr - 0.015, thr + 0.015, field)
    height = (field - thr).clamp(min=0).sqrt()
    dy, dx = torch.gradient(height, dim=(1, 2))
    normal = torch.stack([-dx / px * 0.12, -dy / px * 0.12, torch.ones_like(dx)], 1)
    normal = normal / normal.norm(dim=1, keepdim=True)
    lxy = _stack(params, "light", device)
    light = torch.cat([lxy, torch.ones(B, 1, device=device) * 1.2], 1)
    light = light / light.norm(dim=1, keepdim=True)
    diffuse = (normal * light[:, :, None, None]).sum(1).clamp(min=0)
    half = light + torch.tensor([0.0, 0.0, 1.0], device=device)[None]
    half = half / half.norm(dim=1, keepdim=True)
    spec = (normal * half[:, :, None, None]).sum(1).clamp(min=0) ** 40
    fresnel = (1 - normal[:, 2]).clamp(0, 1) ** 2
    pal, pal2 = _stack(params, "pal", device), _stack(params, "pal2", device)
    t = _bshape(_stack(params, "tscale", device), 3) * field + _bshape(_stack(params, "toffset", device), 3)
    base = _palette(t, pal)
    rimcol = _palette(t + 0.5, pal2)
    surf = base * (0.15 + 0.85 * diffuse)[:, None] + _bshape(_stack(params, "spec", device), 4) * spec[:, None]
    surf = surf + _bshape(_stack(params, "rim", device), 4) * fresnel[:, None] * rimcol
    halo = torch.exp(-((thr - field).clamp(min=0)) / 0.08) * (1 - inside)
    outside = rimcol * (_bshape(_stack(params, "halo", device), 4) * halo[:, None]) + _palette(0.3 * field, pal2) * _bshape(_stack(params, "bg", device), 4)
    img = surf * inside[:, None] + outside
    return img.clamp(0, 1)


# ---------------------------------------------------------------------------------------------
# cells: warped Worley noise


_CELLS = 36


def _sample_cells(rng: _Rand) -> dict:
    n = rng.integer(10, _CELLS)
    pts = rng.uniform(-1.3, 1.3, _CELLS, 2)
    pts[n:] = 50.0  # unused seeds, far away
    return {
        "points": pts,
        "hue": rng.uniform(0, 1, _CELLS),
        "warp": _Waves.sample(rng, 3, 4, rng.u(0.6, 1.6)),
        "warp2": _Waves.sample(rng, 3, 4, rng.u(0.6, 1.6)),
        "warp_amt": rng.u(0.03, 0.2),
        "vein": rng.u(0.008, 0.035),
        "style": float(rng.chance(0.5)),  # 1: glowing veins on dark cells; 0: lit cells, dark seams
        "hue_spread": rng.u(0.05, 0.4),
        "toffset": rng.u(0, 1),
        "falloff": rng.u(0.2, 0.6),
        "target": rng.u(0.8, 0.95),
        "pal": _sample_palette(rng),
        "pal2": _sample_palette(rng),
    }


def _render_cells(params: list[dict], size: int, device: torch.device) -> torch.Tensor:
    B = len(params)
    pw = _warped_grid(params, size, device)
    d = torch.cdist(pw, _stack(params, "points", device))  # [B, N, K]
    two = d.topk(2, dim=-1, largest=False)
    f1, f2 = two.values[..., 0], two.values[..., 1]
    cell_hue = torch.gather(_stack(params, "hue", device), 1, two.indices[..., 0])
    edge = f2 - f1

    def per(key: str) -> torch.Tensor:
        return _stack(params, key, device)[:, None]

    vein = torch.exp(-edge / per("vein"))
    t = per("toffset") + per("hue_spread") * cell_hue + 0.3 * f1
    cell = _palette(t, _stack(params, "pal", device))  # [B, 3, N]
    veincol = _palette(per("toffset") + 0.5 * edge, _stack(params, "pal2", device))
    glow = torch.exp(-f1 / per("falloff"))
    style = per("style")
    veins_on_dark = cell * (0.06 + 0.25 * glow)[:, None] + veincol * (vein * 1.2 + 0.25 * torch.exp(-edge / (4 * per("vein"))))[:, None]
    lit_cells = cell * (0.25 + 0.9 * glow)[:, None] * (1 - vein)[:, None] ** 2 + 0.15 * veincol * vein[:, None]
    img = style[:, None] * veins_on_dark + (1 - style[:, None]) * lit_cells
    return img.reshape(B, 3, size, size).clamp(0, 1)


# ---------------------------------------------------------------------------------------------
# julia: Julia sets with smooth colouring and orbit traps


_JULIA_ITERS = 96


def _sample_julia(rng: _Rand) -> dict:
    theta = rng.u(0, 2 * math.pi)
    # On the main cardioid's boundary c = e^{iθ}/2 − e^{2iθ}/4, pushed slightly in or out.
    c = complex(math.cos(theta) / 2 - math.cos(2 * theta) / 4, math.sin(theta) / 2 - math.sin(2 * theta) / 4)
    c *= rng.u(0.97, 1.03)
    return {
        "c": torch.tensor([c.real, c.imag]),
        "angle": rng.u(0, 2 * math.pi),
        "scale": rng.u(0.9, 1.7),
        "offset": rng.uniform(-0.25, 0.25, 2),
        "trap": rng.uniform(-0.6, 0.6, 2),
        "trap_w": rng.u(0.03, 0.2),
        "trap_amt": rng.u(0.0, 1.0),
        "cscale": rng.u(0.02, 0.09),
        "toffset": rng.u(0, 1),
        "gamma": rng.u(0.6, 1.3),
        "pal": _sample_palette(rng),
        "pal2": _sample_palette(rng),
    }


def _render_julia(params: list[dict], size: int, device: torch.device) -> torch.Tensor:
    B = len(params)
    g = _grid(B, size, device)
    z = _transform(g, _stack(params, "angle", device), _stack(params, "scale", device), _stack(params, "offset", device))
    zr, zi = z[..., 0].clone(), z[..., 1].clone()
    c = _stack(params, "c", device)
    cr, ci = c[:, 0:1], c[:, 1:2]
    trap = _stack(params, "trap", device)
    tr, ti = trap[:, 0:1], trap[:, 1:2]
    escaped_at = torch.full_like(zr, float(_JULIA_ITERS))
    mag_at = torch.zeros_like(zr)
    trap_d = torch.full_like(zr, 1e3)
    alive = torch.ones_like(zr, dtype=torch.bool)
    for n in range(_JULIA_ITERS):
        zr, zi = zr * zr - zi * zi + cr, 2 * zr * zi + ci
        m2 = zr * zr + zi * zi
        d = torch.sqrt((zr - tr) ** 2 + (zi - ti) ** 2)
        trap_d = torch.where(alive, torch.minimum(trap_d, d), trap_d)
        esc = alive & (m2 > 256.0)
        escaped_at = torch.where(esc, torch.full_like(zr, float(n)), escaped_at)
        mag_at = torch.where(esc, m2, mag_at)
        alive = alive & ~esc
        # Freeze escaped points so they cannot overflow.
        zr = torch.where(alive, zr, torch.zeros_like(zr))
        zi = torch.where(alive, zi, torch.zeros_like(zi))
    smooth = escaped_at + 1 - torch.log2(0.5 * torch.log(mag_at.clamp(min=1.0 + 1e-6)).clamp(min=1e-6))
    smooth = torch.where(alive, torch.full_like(smooth, float(_JULIA_ITERS)), smooth).clamp(min=0)

    def per(key: str) -> torch.Tensor:
        return _stack(params, key, device)[:, None]

    pal, pal2 = _stack(params, "pal", device), _stack(params, "pal2", device)
    outside = _palette(per("cscale") * smooth + per("toffset"), pal)
    bright = (1.8 * (smooth / _JULIA_ITERS).clamp(0, 1) ** per("gamma")).clamp(max=1)
    trapglow = torch.exp(-trap_d / per("trap_w")) * per("trap_amt")
    inside_col = _palette(0.5 * trap_d + per("toffset") + 0.5, pal2) * (0.15 + 0.85 * torch.exp(-trap_d / (3 * per("trap_w"))))[:, None]
    out_col = outside * bright[:, None] + _palette(per("toffset") + trap_d, pal2) * trapglow[:, None] * (1 - bright)[:, None]
    img = torch.where(alive[:, None], inside_col, out_col)
    return img.reshape(B, 3, size, size).clamp(0, 1)


# ---------------------------------------------------------------------------------------------
# flame: fractal flames (IFS with non-linear variations)


_FLAME_MAPS = 4
_FLAME_VARIATIONS = ("linear", "sinusoidal", "spherical", "swirl", "horseshoe", "polar", "handkerchief", "heart", "disc", "spiral")
_FLAME_POINTS = 2048
_FLAME_WARMUP = 12
_FLAME_ITERS = 64
_FLAME_MAX_SYMMETRY = 6


def _sample_flame(rng: _Rand) -> dict:
    M, V = _FLAME_MAPS, len(_FLAME_VARIATIONS)
    n = rng.integer(2, M)
    affine, var, prob = [], [], []
    for m in range(M):
        ang = rng.u(0, 2 * math.pi)
        sx, sy = rng.u(0.35, 0.95), rng.u(0.35, 0.95)
        shear = rng.u(-0.3, 0.3)
        cos, sin = math.cos(ang), math.sin(ang)
        # rotation @ [[sx, shear], [0, sy]], then a translation
        affine.append([cos * sx, cos * shear - sin * sy, rng.u(-0.9, 0.9), sin * sx, sin * shear + cos * sy, rng.u(-0.9, 0.9)])
        weights = [0.0] * V
        for _ in range(rng.integer(1, 2)):
            weights[rng.integer(0, V - 1)] += rng.u(0.3, 1.0)
        total = sum(weights)
        var.append([w / total for w in weights])
        prob.append(rng.u(0.2, 1.0) if m < n else 0.0)
    affine = torch.tensor(affine).reshape(M, 2, 3)
    var = torch.tensor(var)
    prob = torch.tensor(prob)
    return {
        "affine": affine,
        "var": var,
        "prob": prob / prob.sum(),
        "cmap": rng.uniform(0, 1, M),
        "hash": rng.seed32(),
        "symmetry": float(rng.choice([1, 2, 3, 4, 5, 6], [4, 1, 1, 1, 1, 1])),
        "target": rng.u(0.85, 0.97),
        "gamma": rng.u(0.45, 0.8),
        "glow": rng.u(0.2, 0.8),
        "pal": _sample_palette(rng),
    }


def _variations(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, used: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted sum of the flame variations `used` of (x, y); w [B, P, V] weights per point."""
    r2 = x * x + y * y + 1e-6
    r = r2.sqrt()
    th = torch.atan2(x, y)
    ox = torch.zeros_like(x)
    oy = torch.zeros_like(y)
    for i in used:
        name = _FLAME_VARIATIONS[i]
        if name == "linear":
            vx, vy = x, y
        elif name == "sinusoidal":
            vx, vy = torch.sin(x), torch.sin(y)
        elif name == "spherical":
            vx, vy = x / r2, y / r2
        elif name == "swirl":
            s, c = torch.sin(r2), torch.cos(r2)
            vx, vy = x * s - y * c, x * c + y * s
        elif name == "horseshoe":
            vx, vy = (x - y) * (x + y) / r, 2 * x * y / r
        elif name == "polar":
            vx, vy = th / math.pi, r - 1
        elif name == "handkerchief":
            vx, vy = r * torch.sin(th + r), r * torch.cos(th - r)
        elif name == "heart":
            vx, vy = r * torch.sin(th * r), -r * torch.cos(th * r)
        elif name == "disc":
            vx, vy = th / math.pi * torch.sin(math.pi * r), th / math.pi * torch.cos(math.pi * r)
        else:  # spiral
            vx, vy = (torch.cos(th) + torch.sin(r)) / r, (torch.sin(th) - torch.cos(r)) / r
        ox = ox + w[..., i] * vx
        oy = oy + w[..., i] * vy
    return ox, oy


def _render_flame(params: list[dict], size: int, device: torch.device) -> torch.Tensor:
    # 2048 points at a 256² canvas (128² images, 2× supersampled); as many per pixel elsewhere.
    B, P, M = len(params), max(256, int(_FLAME_POINTS * (size / 256) ** 2)), _FLAME_MAPS
    affine = _stack(params, "affine", device).reshape(B, M, 6)
    var_cpu = torch.stack([p["var"] for p in params])
    used = [i for i in range(len(_FLAME_VARIATIONS)) if bool((var_cpu[..., i] > 0).any())]
    var = var_cpu.to(device)
    cum = _stack(params, "prob", device).cumsum(1)
    cum[:, -1] = 2.0  # a uniform draw always lands in some map
    cmap = _stack(params, "cmap", device)
    seeds = torch.tensor([p["hash"] for p in params], dtype=torch.int64, device=device)[:, None]
    point = torch.arange(P, device=device, dtype=torch.int64)[None, :]
    T = _FLAME_WARMUP + _FLAME_ITERS

    def uniform(it: int, lane: int) -> torch.Tensor:
        return _hash_uniform(seeds, (point * T + it) * 4 + lane)

    pos = torch.stack([uniform(T, 0), uniform(T, 1)], -1) * 2 - 1
    color = torch.full((B, P), 0.5, device=device)
    age = torch.zeros(B, P, device=device)  # iterations since the point (re)started
    rec_p, rec_c, rec_w = [], [], []
    for it in range(T):
        m = torch.searchsorted(cum, uniform(it, 0).contiguous()).clamp_(max=M - 1)  # [B, P]
        A = torch.gather(affine, 1, m[..., None].expand(-1, -1, 6))
        x = A[..., 0] * pos[..., 0] + A[..., 1] * pos[..., 1] + A[..., 2]
        y = A[..., 3] * pos[..., 0] + A[..., 4] * pos[..., 1] + A[..., 5]
        w = torch.gather(var, 1, m[..., None].expand(-1, -1, var.shape[-1]))
        x, y = _variations(x, y, w, used)
        new = torch.stack([x, y], -1)
        bad = ~torch.isfinite(new).all(-1) | (new.abs() > 1e3).any(-1)
        restart = torch.stack([uniform(it, 1), uniform(it, 2)], -1) * 2 - 1
        pos = torch.where(bad[..., None], restart, new)
        age = torch.where(bad, torch.zeros_like(age), age + 1)
        color = 0.5 * (color + torch.gather(cmap, 1, m))
        if it >= _FLAME_WARMUP:
            rec_p.append(pos)
            rec_c.append(color)
            rec_w.append((age >= _FLAME_WARMUP).float())
    pts = torch.stack(rec_p, 2).reshape(B, -1, 2)
    cols = torch.stack(rec_c, 2).reshape(B, -1)
    live = torch.stack(rec_w, 2).reshape(B, -1, 1)
    # Frame the attractor: centre on its median, scale its 96% extent to the picture.
    sub = pts[:, :: max(1, pts.shape[1] // 8192)]
    center = sub.median(dim=1).values
    spread = (sub - center[:, None]).abs().amax(-1)
    k = max(1, int(0.96 * spread.shape[1]))
    extent = spread.kthvalue(k, dim=1).values.clamp(min=1e-3)
    pts = (pts - center[:, None]) / (extent[:, None, None] * 1.1)
    col = _palette(cols, _stack(params, "pal", device)).transpose(1, 2)  # [B, N, 3]
    acc = _splat(pts, torch.cat([col, torch.ones_like(col[..., :1])], -1) * live, size)  # colour sums + count
    acc = _rotate_sum(acc, _stack(params, "symmetry", device))
    dens, count = acc[:, :3], acc[:, 3:]
    mean_col = dens / count.clamp(min=1e-6)
    peak = count.reshape(B, -1).amax(1).clamp(min=1e-6)
    alpha = (torch.log1p(count) / torch.log1p(_bshape(peak, 4))).clamp(0, 1) ** _bshape(_stack(params, "gamma", device), 4)
    light = mean_col * alpha
    light = light + _bshape(_stack(params, "glow", device), 4) * _blur(light, 0.01 * size)
    exposure = _auto_exposure(light, _stack(params, "target", device), q=0.998)
    return (1 - torch.exp(-light * _bshape(exposure, 4))).clamp(0, 1)


# ---------------------------------------------------------------------------------------------
# the dataset


def _flow_particles(res: int) -> int:
    return int(900 * (res / 128) ** 1.5)


_SAMPLERS: dict[str, Callable[[_Rand, int], dict]] = {
    "marble": lambda rng, res: _sample_marble(rng),
    "flow": lambda rng, res: _sample_flow(rng, _flow_particles(res)),
    "streaks": lambda rng, res: _sample_streaks(rng),
    "blobs": lambda rng, res: _sample_blobs(rng),
    "cells": lambda rng, res: _sample_cells(rng),
    "julia": lambda rng, res: _sample_julia(rng),
    "flame": lambda rng, res: _sample_flame(rng),
}
_RENDERERS: dict[str, Callable[[list[dict], int, torch.device], torch.Tensor]] = {
    "marble": _render_marble,
    "flow": _render_flow,
    "streaks": _render_streaks,
    "blobs": _render_blobs,
    "cells": _render_cells,
    "julia": _render_julia,
    "flame": _render_flame,
}
# Supersampling factor per kind (anti-aliasing of thin lines and fractal edges).
_SUPERSAMPLE = {"marble": 1, "flow": 2, "streaks": 2, "blobs": 2, "cells": 2, "julia": 2, "flame": 2}
# Images per render call (bounded memory: ~pixels × waves or points per image).
_CHUNK = {"marble": 16, "flow": 16, "streaks": 8, "blobs": 16, "cells": 8, "julia": 16, "flame": 8}


def parse_kinds(text: str | None) -> dict[str, float]:
    """'marble,flow' or 'marble=2,flow=1' → weights; None or '' → the default mix."""
    if not text:
        return dict(KIND_WEIGHTS)
    weights: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, w = part.partition("=")
        name = name.strip()
        if name not in KIND_WEIGHTS:
            raise ValueError(f"unknown procedural kind {name!r}; choose from {', '.join(KINDS)}")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise ValueError(f"weight of {name!r} must be a number, got {w!r}") from None
        if not (weight >= 0 and math.isfinite(weight)):
            raise ValueError(f"weight of {name!r} must be ≥ 0")
        weights[name] = weight
    if not weights or sum(weights.values()) <= 0:
        raise ValueError("no procedural kind with a positive weight")
    return weights


def image_kind(seed: int, index: int, kinds: dict[str, float] | None = None) -> str:
    """Which kind image `index` of dataset `seed` is (cheap: draws only the first number)."""
    kinds = kinds or KIND_WEIGHTS
    names = list(kinds)
    return _Rand(image_seed(seed, index)).choice(names, [kinds[n] for n in names])


def render(seed: int, indices: Sequence[int], res: int, device: str | torch.device = "cpu",
           kinds: dict[str, float] | None = None) -> torch.Tensor:
    """Images `indices` of the dataset `seed`: uint8 [len(indices), 3, res, res] on `device`."""
    if res < 8 or res & (res - 1):
        raise ValueError(f"resolution must be a power of two ≥ 8, got {res}")
    device = torch.device(device)
    kinds = kinds or KIND_WEIGHTS
    names = list(kinds)
    weights = [kinds[n] for n in names]
    groups: dict[str, list[tuple[int, dict]]] = {}
    for slot, index in enumerate(indices):
        rng = _Rand(image_seed(seed, int(index)))
        kind = rng.choice(names, weights)
        groups.setdefault(kind, []).append((slot, _SAMPLERS[kind](rng, res)))
    out = torch.empty(len(indices), 3, res, res, dtype=torch.uint8, device=device)
    with torch.no_grad():
        for kind, items in groups.items():
            ss = _SUPERSAMPLE[kind]
            chunk = _CHUNK[kind] * (16 if device.type == "cuda" else 1)
            for start in range(0, len(items), chunk):
                part = items[start : start + chunk]
                img = _RENDERERS[kind]([p for _, p in part], res * ss, device)
                if ss > 1:
                    img = F.avg_pool2d(img, ss)
                img = torch.nan_to_num(img, nan=0.0).clamp_(0, 1)
                slots = torch.tensor([s for s, _ in part], device=device)
                out[slots] = (img * 255.0 + 0.5).floor_().clamp_(0, 255).to(torch.uint8)
    return out


def iter_batches(seed: int, count: int, res: int, device: str | torch.device = "cpu", batch: int = 256,
                 kinds: dict[str, float] | None = None, start: int = 0) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first index, uint8 images) for images start .. count-1 of dataset `seed`, `batch` at a time."""
    for first in range(start, count, batch):
        idx = list(range(first, min(first + batch, count)))
        yield first, render(seed, idx, res, device, kinds)


def generate(seed: int, count: int, res: int, device: str | torch.device = "cpu", batch: int = 256,
             kinds: dict[str, float] | None = None, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """The whole dataset as one uint8 tensor [count, 3, res, res] on `device`."""
    out = torch.empty(count, 3, res, res, dtype=torch.uint8, device=device)
    for first, imgs in iter_batches(seed, count, res, device, batch, kinds):
        out[first : first + imgs.shape[0]] = imgs
        if progress is not None:
            progress(first + imgs.shape[0], count)
    return out
