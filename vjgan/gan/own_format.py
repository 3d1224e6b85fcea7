"""vjgan's own model format: one .safetensors file, the generator's JSON config in its metadata.

No pickle anywhere, so opening a model can never run code; safetensors also maps the file
lazily, which keeps loading fast.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from ..atomic import atomic_write
from . import limits
from .networks import Generator, GeneratorConfig, state_shapes

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
    """Return (config, state dict, metadata) of a vjgan .safetensors model.

    The header, the config and the tensor shapes it plans are all checked before a tensor is read."""
    meta, shapes = read_header(path)
    if meta.get("format") != FORMAT_TAG:
        raise ValueError("a safetensors file, but not a vjgan model (its metadata has no vjgan config)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"written by a newer vjgan (model format version {meta.get('format_version', '?')[:20]})")
    if "config" not in meta:
        raise ValueError("a vjgan model without its config")
    cfg = GeneratorConfig.from_json(meta["config"])
    limits.check_generator_config(cfg)
    limits.check_state_matches(state_shapes(cfg), shapes)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError:
        raise ValueError("the safetensors library cannot read this file") from None  # its message may quote the file
    return cfg, state, meta


_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def read_header(path: str | os.PathLike[str]) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """(metadata, tensor name → shape) of a safetensors file, every entry checked against the
    file: the header fits in it and in vjgan.gan.limits, each tensor's bytes lie inside the
    data section and match its shape and type. Raises limits.LimitError or ValueError."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) != 8:
            raise limits.LimitError("the safetensors header is cut short")
        length = int.from_bytes(head, "little")
        if length > size - 8:  # (the length is not shown: in a file that is no model, it is 8 bytes of text)
            raise limits.LimitError("the safetensors header declares more bytes than the file holds")
        if length > limits.MAX_SAFETENSORS_HEADER_BYTES:
            raise limits.LimitError(f"the safetensors header is larger than the {limits.MAX_SAFETENSORS_HEADER_BYTES:,} "
                                    "bytes vjgan reads")
        text = f.read(length)
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("the safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ValueError("the safetensors header is not a table")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError("the safetensors metadata is not a table of text")
    data_bytes = size - 8 - length
    shapes = {}
    for name, entry in header.items():
        if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPE_BYTES:
            raise ValueError("a safetensors tensor entry of unknown type")
        shape = limits.check_shape(entry.get("shape"), "a tensor")
        offsets = entry.get("data_offsets")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_bytes):
            raise limits.LimitError("a safetensors tensor lies outside the file's data")
        limits.check_data_size(math.prod(shape) * _DTYPE_BYTES[entry["dtype"]], offsets[1] - offsets[0], "a tensor")
        shapes[name] = shape
    return meta, shapes
