"""Keyframe files: latents found for one model (a projected photo, a text prompt), kept as `.npz`.

One format for every way vjgan finds a keyframe, so presets, `render` and the live show read
them alike:

    ws          float32 [num_ws, w_dim]   the keyframe in W+ (one row per synthesis input)
    model_hash  str                       `directions.model_hash(G)` of the model it was found for
    kind        str                       "projection", "prompt", "direction", ...
    (anything else the finder records: the prompt, scores, noise buffers, the source image name)

Only plain arrays are stored (`allow_pickle=False` on reading): a keyframe file, like a model,
can never carry code. A file found for another model is refused by name, because its latents
mean nothing there (same shapes, another face).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ..atomic import atomic_write
from ..errors import UserError

KEYFRAME_SUFFIX = ".npz"
MAX_KEYFRAME_BYTES = 256 * 1024 * 1024  # far above any real W+ (18 × 512 floats); refuses junk early


@dataclass(frozen=True)
class KeyframeFile:
    ws: np.ndarray  # float32 [num_ws, w_dim]
    model_hash: str
    kind: str
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)


def save_keyframes(path: str | os.PathLike[str], ws: np.ndarray, model_hash: str, kind: str,
                   **extra: np.ndarray | str | float | int) -> Path:
    """Write a keyframe file atomically. `ws` is [num_ws, w_dim]."""
    ws = np.asarray(ws, dtype=np.float32)
    if ws.ndim != 2 or not np.all(np.isfinite(ws)):
        raise ValueError(f"keyframe ws must be a finite [num_ws, w_dim] array, got shape {list(ws.shape)}")
    reserved = {"ws", "model_hash", "kind"} & set(extra)
    if reserved:
        raise ValueError(f"keyframe extra names {sorted(reserved)} are reserved")
    buffer = io.BytesIO()
    arrays = {name: np.asarray(value) for name, value in extra.items()}
    np.savez(buffer, ws=ws, model_hash=np.str_(model_hash), kind=np.str_(kind), **arrays)
    return atomic_write(path, buffer.getvalue())


def load_keyframes(path: str | os.PathLike[str], *, model_hash: str | None = None,
                   num_ws: int | None = None, w_dim: int | None = None) -> KeyframeFile:
    """Read a keyframe file; with `model_hash` (and shapes), refuse one made for another model."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise UserError(f"keyframe file {path}: {e.strerror or e}") from None
    if size > MAX_KEYFRAME_BYTES:
        raise UserError(f"keyframe file {path}: {size} bytes is too large for a keyframe file")
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {name: data[name] for name in data.files}
    except Exception as e:
        raise UserError(f"keyframe file {path}: not a keyframe .npz ({type(e).__name__})") from None
    for required in ("ws", "model_hash", "kind"):
        if required not in fields:
            raise UserError(f"keyframe file {path}: no '{required}' entry (not made by vjgan)")
    ws = fields.pop("ws")
    if ws.ndim != 2 or ws.dtype.kind != "f" or not np.all(np.isfinite(ws)):
        raise UserError(f"keyframe file {path}: 'ws' must be a finite float [num_ws, w_dim] array")
    found_hash = str(fields.pop("model_hash"))
    kind = str(fields.pop("kind"))
    if model_hash is not None and found_hash != model_hash:
        raise UserError(f"keyframe file {path} was made for another model ({found_hash[:12]}…, "
                        f"this one is {model_hash[:12]}…); make it again with this model")
    if (num_ws is not None and ws.shape[0] != num_ws) or (w_dim is not None and ws.shape[1] != w_dim):
        raise UserError(f"keyframe file {path}: ws shape {list(ws.shape)} does not fit this model "
                        f"([{num_ws}, {w_dim}])")
    return KeyframeFile(ws.astype(np.float32), found_hash, kind, fields)
