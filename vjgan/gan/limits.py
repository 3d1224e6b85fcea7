"""Bounds on what a model file may make the loader do, checked before anything is allocated.

A model file is untrusted input: a few hundred crafted bytes can declare a terabyte array, a
zip entry can inflate a thousandfold, a JSON config can ask for millions of layers, and a
pickle can build a structure whose hashing never ends. Every reader checks what a file
declares against two kinds of bound before acting on it:

* the file itself: data must come from bytes that are really there (a tensor's elements from
  its storage, a storage from the bytes that hold it), so memory follows the file's size;
* sane limits far above any released StyleGAN network (config-F 1024 px: z = w = 512, 8
  mapping layers, 512 channels, about 30 M parameters, 380 MB pickled with D and G).

The readers call the `check_*` functions here (vjgan.gan.pickle_machine and safe_pickle for
pickles and torch zips, own_format.read_header for safetensors, load.build_generator for every
config with `check_generator_config` and `check_state_matches` against networks.state_shapes);
each raises `LimitError` with a reason that names what was declared and the bound, and the
loader turns it into one `ModelLoadError` line.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Iterable, Mapping

# -- files ---------------------------------------------------------------------------------------
MAX_MODEL_FILE_BYTES = 8 * 1024**3  # a training snapshot with D, G, G_ema and optimiser state fits
MAX_SAFETENSORS_HEADER_BYTES = 16 * 1024**2  # a config-F header (156 tensors) is a few tens of kB
MAX_ZIP_ENTRIES = 100_000  # a rosinality training checkpoint has a few thousand
MAX_ZIP_PICKLE_BYTES = 64 * 1024**2  # the pickle inside a torch zip (structure only: data is in entries)

# -- pickles -------------------------------------------------------------------------------------
# The 64 px conformance snapshot (G, D, G_ema) runs 36 k opcodes, builds 5.7 k objects nested at
# most 32 deep, the largest 15 k parts when repeats are counted; config-F 1024 px holds more of
# the same (about twice the blocks), not deeper. The bounds leave a wide margin.
MAX_PICKLE_OPCODES = 1_000_000
MAX_PICKLE_OBJECTS = 200_000
MAX_PICKLE_NESTING = 100
# Repeated references (the pickle memo) let a small file describe a structure exponentially
# larger than itself. Each built object's size counting every repeat ("expanded" size) is
# tracked exactly; anything that walks the structure (hashing, printing, comparing) is then
# bounded by this.
MAX_PICKLE_EXPANDED = 5_000_000
MAX_KEY_EXPANDED = 64  # a dictionary key is a name or a small tuple, never a structure

# -- arrays and tensors --------------------------------------------------------------------------
MAX_TENSOR_DIMS = 8
MAX_TENSOR_ELEMENTS = 2**31  # a single array of 8 GB in fp32; released nets stay below 2.4 M

# -- generator configs ---------------------------------------------------------------------------
MAX_RESOLUTION = 4096
MAX_LATENT_DIM = 4096  # z_dim, w_dim and the mapping network's hidden and embedding widths
MAX_CLASSES = 100_000  # c_dim of a conditional network (ImageNet has 1000)
MAX_MAPPING_LAYERS = 32
MAX_CHANNELS = 4096
MAX_IMG_CHANNELS = 4  # grey, RGB, RGBA
MAX_RESAMPLE_TAPS = 16


class LimitError(ValueError):
    """A model file declares more than it holds, or more than any sane model needs."""


def _whole(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LimitError(f"{what} is {type(value).__name__}, not a whole number")
    if not low <= value <= high:
        raise LimitError(f"{what} {value} is outside {low}..{high}")
    return value


def check_file_size(size: int) -> None:
    if size > MAX_MODEL_FILE_BYTES:
        raise LimitError(f"the file is {size / 1024**3:.1f} GB, more than the {MAX_MODEL_FILE_BYTES // 1024**3} GB "
                         "vjgan reads as a model")


def check_shape(shape: Any, what: str = "an array") -> tuple[int, ...]:
    """A declared shape: a short sequence of non-negative whole numbers with a bounded product."""
    if not isinstance(shape, (tuple, list)):
        raise LimitError(f"{what} declares a shape that is {type(shape).__name__}, not a list of sizes")
    if len(shape) > MAX_TENSOR_DIMS:
        raise LimitError(f"{what} declares {len(shape)} dimensions (at most {MAX_TENSOR_DIMS})")
    if not all(type(d) is int for d in shape):
        raise LimitError(f"{what} declares a shape of something other than whole numbers")
    dims = tuple(shape)
    if any(d < 0 for d in dims):
        raise LimitError(f"{what} declares a negative size")
    if math.prod(dims) > MAX_TENSOR_ELEMENTS:
        raise LimitError(f"{what} declares {math.prod(dims):,} elements (at most {MAX_TENSOR_ELEMENTS:,})")
    return dims


def check_data_size(declared_bytes: int, available_bytes: int, what: str) -> None:
    """Data a header promises must be present in the file: memory then follows the file's size."""
    if declared_bytes != available_bytes:
        raise LimitError(f"{what} declares {declared_bytes:,} bytes but the file holds {available_bytes:,} for it")


def check_strided_view(numel_in_storage: int, offset: Any, size: Any, stride: Any) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """A tensor view (offset, size, stride) must lie inside its storage and hold no more
    elements than the storage does: a zero stride would otherwise turn one stored number into
    an arbitrarily large tensor once anything copies it."""
    dims = check_shape(size, "a tensor")
    if not isinstance(stride, (tuple, list)) or len(stride) != len(dims):
        raise LimitError("a tensor's strides do not match its shape")
    steps = tuple(_whole(s, "a tensor stride", 0, MAX_TENSOR_ELEMENTS) for s in stride)
    start = _whole(offset, "a tensor offset", 0, MAX_TENSOR_ELEMENTS)
    count = math.prod(dims)
    if count > numel_in_storage:
        raise LimitError(f"a tensor declares {count:,} elements from a storage of {numel_in_storage:,}")
    if count and start + sum((d - 1) * s for d, s in zip(dims, steps)) >= numel_in_storage:
        raise LimitError("a tensor reaches past the end of its storage")
    return dims, steps, start


def check_resample_taps(taps: Any) -> tuple[float, ...]:
    if not isinstance(taps, (list, tuple)) or not 1 <= len(taps) <= MAX_RESAMPLE_TAPS:
        raise LimitError(f"the resampling filter must be 1..{MAX_RESAMPLE_TAPS} taps")
    out = []
    for t in taps:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise LimitError("the resampling filter holds something other than finite numbers")
        out.append(float(t))
    return tuple(out)


_CONFIG_BOUNDS: Mapping[str, tuple[int, int]] = {
    "z_dim": (0, MAX_LATENT_DIM),
    "w_dim": (1, MAX_LATENT_DIM),
    "c_dim": (0, MAX_CLASSES),
    "img_resolution": (4, MAX_RESOLUTION),
    "img_channels": (1, MAX_IMG_CHANNELS),
    "mapping_layers": (1, MAX_MAPPING_LAYERS),
    "mapping_hidden_features": (1, MAX_LATENT_DIM),
    "embed_features": (1, MAX_LATENT_DIM),
    "num_fp16_res": (0, 16),
}


def check_generator_config(cfg: Any) -> None:
    """Every size a generator config declares, against the sane limits (before any layer exists).

    Works on any config dataclass: the fields named in the table are checked where present,
    `channels` (resolution → count) and `resample_taps` when the config has them."""
    names = {f.name for f in fields(cfg)}
    for name, (low, high) in _CONFIG_BOUNDS.items():
        if name in names and getattr(cfg, name) is not None:
            _whole(getattr(cfg, name), f"the config's {name}", low, high)
    if "channels" in names:
        channels = getattr(cfg, "channels")
        if not isinstance(channels, Mapping) or len(channels) > 2 * int(math.log2(MAX_RESOLUTION)):
            raise LimitError("the config's channels must map each block resolution to a count")
        for res, count in channels.items():
            _whole(res, "a block resolution in the config", 4, MAX_RESOLUTION)
            _whole(count, f"the config's channel count at {res} px", 1, MAX_CHANNELS)
    if "resample_taps" in names:
        check_resample_taps(getattr(cfg, "resample_taps"))
    for name in ("mapping_lr_multiplier", "conv_clamp", "w_avg_beta"):
        value = getattr(cfg, name, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            raise LimitError(f"the config's {name} must be a finite number ≥ 0")


def check_state_matches(planned: Mapping[str, tuple[int, ...]], found: Mapping[str, Iterable[int]]) -> None:
    """The tensors a file holds must be exactly those its config plans, shape for shape.

    Run before the real network is built, so the memory it takes is the file's own tensors
    (already bounded by the file's size) and never what a config alone asks for."""
    missing = [k for k in planned if k not in found]
    if missing:
        raise LimitError(f"tensor {missing[0]} is missing" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    unexpected = [k for k in found if k not in planned]
    if unexpected:
        raise LimitError(f"unexpected tensor {unexpected[0]}" + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    for key, shape in planned.items():
        got = tuple(found[key])
        if got != tuple(shape):
            raise LimitError(f"tensor {key} has shape {list(got)}, the network needs {list(shape)}")
