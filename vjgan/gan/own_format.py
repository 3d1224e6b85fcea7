"""vjgan's own model format: one .safetensors file, the generator's JSON config in its metadata.

The format tag says which architecture the config describes (StyleGAN2 or StyleGAN3).

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
from .stylegan3 import StyleGAN3Config

FORMAT_TAG = "vjgan-stylegan2"
FORMAT_TAG_STYLEGAN3 = "vjgan-stylegan3"
FORMAT_VERSION = "1"
CONFIG_CLASSES: dict[str, type[GeneratorConfig] | type[StyleGAN3Config]] = {
    FORMAT_TAG: GeneratorConfig, FORMAT_TAG_STYLEGAN3: StyleGAN3Config,
}


def save_generator(G: Generator, path: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> Path:
    """Write G to `path` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    tag = FORMAT_TAG_STYLEGAN3 if isinstance(G.config, StyleGAN3Config) else FORMAT_TAG
    meta = {"format": tag, "format_version": FORMAT_VERSION, "config": G.config.to_json()}
    for key, value in (metadata or {}).items():
        if key in meta:
            raise ValueError(f"metadata key {key!r} is reserved")
        meta[key] = str(value)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in G.state_dict().items()}
    return atomic_write(path, save(tensors, metadata=meta))


def read_own_format(path: str | os.PathLike[str]) -> tuple[GeneratorConfig | StyleGAN3Config, dict[str, torch.Tensor], dict[str, str]]:
    """Return (config, state dict, metadata) of a vjgan .safetensors model."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = dict(f.metadata() or {})
        config_class = CONFIG_CLASSES.get(meta.get("format", ""))
        if config_class is None:
            raise ValueError("a safetensors file, but not a vjgan model (its metadata has no vjgan config)")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"written by a newer vjgan (model format version {meta.get('format_version')})")
        cfg = config_class.from_json(meta["config"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    return cfg, state, meta
