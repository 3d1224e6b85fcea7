"""vjgan's own model format: one .safetensors file, the generator's JSON config in its metadata.

No pickle anywhere, so opening a model can never run code; safetensors also maps the file
lazily, which keeps loading fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from ..atomic import atomic_write

from .networks import Generator, GeneratorConfig

FORMAT_TAG = "vjgan-stylegan2"
FORMAT_VERSION = "1"


def save_generator(G: Generator, path: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> Path:
    """Write G to `path` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    meta = {"format": FORMAT_TAG, "format_version": FORMAT_VERSION, "config": G.config.to_json()}
    for key, value in (metadata or {}).items():
        if key in meta:
            raise ValueError(f"metadata key {key!r} is reserved")
        meta[key] = str(value)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in G.state_dict().items()}
    return atomic_write(path, save(tensors, metadata=meta))


def read_own_format(path: str | os.PathLike[str]) -> tuple[GeneratorConfig, dict[str, torch.Tensor], dict[str, str]]:
    """Return (config, state dict, metadata) of a vjgan .safetensors model."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = dict(f.metadata() or {})
        if meta.get("format") != FORMAT_TAG:
            raise ValueError("a safetensors file, but not a vjgan model (its metadata has no vjgan config)")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"written by a newer vjgan (model format version {meta.get('format_version')})")
        cfg = GeneratorConfig.from_json(meta["config"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    return cfg, state, meta
