"""What the latent engine needs to know about a model's W space, computed once and cached.

GANSpace (Härkönen et al. 2020) found that the principal components of sampled `w` are
meaningful edit directions; the 95th percentile of ‖w − w_avg‖ bounds the region where the
generator makes good pictures. Both come from one batch of mapped samples, cached per model
(keyed by a hash of the model's tensors) in the user's cache folder as a plain .npz (no pickle).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_output
from ..gan.networks import Generator
from ..paths import cache_dir
from .config import PRINCIPAL_DIRECTIONS

CACHE_VERSION = 1


@dataclass(frozen=True)
class LatentSpace:
    """Statistics of a model's W space."""

    w_avg: np.ndarray  # [w_dim]
    components: np.ndarray  # [k, w_dim] orthonormal directions, strongest first
    stdevs: np.ndarray  # [k] spread of sampled w along each direction
    radius: float  # 95th percentile of ‖w − w_avg‖ over samples
    source: str  # "pca" or "random" (the fallback)

    @property
    def w_dim(self) -> int:
        return int(self.w_avg.shape[0])


def model_hash(G: Generator) -> str:
    """A stable digest of the model's config and tensors (same weights → same cache entry)."""
    h = hashlib.sha256(G.config.to_json().encode())
    for name, tensor in sorted(G.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def random_orthonormal(k: int, dim: int, seed: int = 0) -> np.ndarray:
    """k orthonormal directions (QR of a Gaussian matrix): the fallback when PCA is unusable."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, k)))
    return q.T.astype(np.float32)


def principal_directions(w: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k principal directions of samples w [N, dim] and the standard deviation along each."""
    centred = w - w.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    stdevs = s[:k] / np.sqrt(max(1, w.shape[0] - 1))
    return vt[:k].astype(np.float32), stdevs.astype(np.float32)


@torch.no_grad()
def sample_w(G: Generator, count: int, seed: int = 0, batch: int = 2048) -> np.ndarray:
    """Map `count` seeded latents (random labels for conditional nets) to W."""
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    out = []
    for start in range(0, count, batch):
        n = min(batch, count - start)
        z = torch.randn(n, G.z_dim, generator=gen).to(device) if G.z_dim else None
        c = None
        if G.c_dim:
            c = torch.nn.functional.one_hot(torch.randint(0, G.c_dim, (n,), generator=gen), G.c_dim).float().to(device)
        out.append(G.mapping(z, c)[:, 0].float().cpu().numpy())
    return np.concatenate(out)


def compute_latent_space(G: Generator, samples: int = 10_000, components: int = PRINCIPAL_DIRECTIONS,
                         seed: int = 0) -> LatentSpace:
    w = sample_w(G, samples, seed)
    w_avg = G.w_avg.detach().float().cpu().numpy()
    radius = float(np.percentile(np.linalg.norm(w - w_avg, axis=1), 95))
    k = min(components, w.shape[1])
    try:
        dirs, stdevs = principal_directions(w, k)
        source = "pca"
        if not np.all(np.isfinite(dirs)) or not np.all(stdevs > 0):
            raise np.linalg.LinAlgError("degenerate samples")
    except np.linalg.LinAlgError:
        dirs = random_orthonormal(k, w.shape[1], seed)
        stdevs = np.full(k, float(np.std(w - w_avg)) or 1.0, dtype=np.float32)
        source = "random"
    return LatentSpace(w_avg.astype(np.float32), dirs, stdevs, radius, source)


def load_or_compute(G: Generator, samples: int = 10_000, components: int = PRINCIPAL_DIRECTIONS,
                    folder: Path | None = None) -> LatentSpace:
    """The cached LatentSpace for G, computing (and caching, atomically) on a miss or a bad file."""
    folder = folder or (cache_dir() / "latent-space")
    path = folder / f"{model_hash(G)}-v{CACHE_VERSION}-{samples}-{components}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return LatentSpace(data["w_avg"], data["components"], data["stdevs"], float(data["radius"]),
                                   str(data["source"]))
        except Exception:
            path.unlink(missing_ok=True)  # a damaged cache entry is recomputed, never trusted
    space = compute_latent_space(G, samples, components)
    try:
        with atomic_output(path, make_folder=True) as f:
            np.savez(f, w_avg=space.w_avg, components=space.components, stdevs=space.stdevs,
                     radius=np.float64(space.radius), source=np.str_(space.source))
    except OSError:
        pass  # a read-only cache only costs recomputation next time
    return space
