"""A preset's keyframes and named directions, made concrete for one model.

Keyframes come from seeds (w, repeated on every row of W+) and from files: keyframe files
(`.npz`, see keyframe_files: a projected photo, a prompt's latent; refused when made for
another model) and plain `.npy` latents ([w_dim] or [num_ws, w_dim]). Routes may target a named
direction: a keyframe file of kind "direction" (`vjgan direction`). Relative file names are
read beside the preset. The live show and `vjgan render` both build their engines from this.
"""

from __future__ import annotations

import os

from dataclasses import dataclass
from typing import Any, Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import UserError
from .config import MotionConfig
from .keyframe_files import KEYFRAME_SUFFIX, load_keyframes
from .latents import as_wplus, keyframes_from_seeds


@dataclass(frozen=True)
class ResolvedLatents:
    keyframes: np.ndarray  # [K, num_ws, w_dim] float32
    directions: dict[str, np.ndarray]  # a route's `direction` file name → [num_ws, w_dim]


class _ModelHash:
    """The model's hash, computed only if a keyframe file needs checking (it reads every tensor)."""

    def __init__(self, G) -> None:
        self._G, self._value = G, None

    def __call__(self) -> str:
        if self._value is None:
            from .directions import model_hash

            self._value = model_hash(self._G)
        return self._value


def _where(name: str, folder: Path | None) -> Path:
    path = Path(name).expanduser()
    if not path.is_absolute() and folder is not None:
        path = folder / path
    return path


MAX_W_FILE_BYTES = 16 * 1024 * 1024  # a W+ latent is 18 × 512 floats (36 kB)


def load_w_file(path: str | Path, num_ws: int, w_dim: int) -> np.ndarray:
    """A plain saved latent: .npy of [w_dim], [num_ws, w_dim] or [1, num_ws, w_dim] → W+ [num_ws, w_dim]
    (never a pickle). Errors name the file and the reason, never its contents (a preset may name
    any file)."""
    try:
        size = os.stat(path).st_size
    except OSError as e:
        raise UserError(f"keyframe file {path}: cannot be read ({e.strerror or type(e).__name__})") from None
    if size > MAX_W_FILE_BYTES:
        raise UserError(f"keyframe file {path}: {size:,} bytes is too large for a saved latent")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:
        raise UserError(f"keyframe file {path}: cannot be read as a .npy array ({type(e).__name__})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise UserError(f"keyframe file {path}: not an array of numbers")
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape not in ((w_dim,), (num_ws, w_dim)):
        raise UserError(f"keyframe file {path}: shape {list(arr.shape)} does not fit this model "
                        f"([{w_dim}] or [{num_ws}, {w_dim}])")
    if not np.all(np.isfinite(arr)):
        raise UserError(f"keyframe file {path}: holds NaN or infinite values")
    return as_wplus(arr[None], num_ws)[0]


def load_keyframe(path: Path, num_ws: int, w_dim: int, model_hash: _ModelHash | None = None) -> np.ndarray:
    """One keyframe file (.npz keyframe file of any kind but a direction, or .npy) → W+ [num_ws, w_dim]."""
    if path.suffix.lower() == KEYFRAME_SUFFIX:
        kf = load_keyframes(path, model_hash=model_hash() if model_hash else None, num_ws=num_ws, w_dim=w_dim)
        if kf.kind == "direction":
            # A direction is a difference, not a place: as a keyframe it would be a meaningless face.
            raise UserError(f"keyframe file {path} holds a direction, not a keyframe (use it as a route's direction)")
        return kf.ws
    if path.suffix.lower() == ".npy":
        return load_w_file(path, num_ws, w_dim)
    raise UserError(f"keyframe file {path}: expected a .npz keyframe file (vjgan project) or a .npy latent")


PromptResolver = Callable[[Any, Sequence[str]], np.ndarray]  # (G, prompts) → [len(prompts), num_ws, w_dim]


def resolve_latents(G, motion: MotionConfig, folder: Path | None = None,
                    prompts: PromptResolver | None = None) -> ResolvedLatents:
    """The keyframes ([K, num_ws, w_dim]) and named directions `motion` asks for, for model G.

    Prompt keyframes need a resolver (CLIP: the caller's, from its --clip); without one a preset
    that holds prompts is one line."""
    kf = motion.keyframes
    num_ws, w_dim = G.num_ws, G.w_dim
    model_hash = _ModelHash(G)
    frames = [as_wplus(keyframes_from_seeds(G, list(kf.seeds), kf.truncation, kf.class_index), num_ws)]
    for name in kf.files:
        frames.append(load_keyframe(_where(name, folder), num_ws, w_dim, model_hash)[None])
    if kf.prompts:
        if prompts is None:
            raise UserError(f"the preset's keyframes include {len(kf.prompts)} text prompt(s): CLIP finds their "
                            "pictures, so give --clip FILE --clip-arch ARCH (docs/prompts.md)")
        frames.append(np.asarray(prompts(G, kf.prompts), dtype=np.float32).reshape(len(kf.prompts), num_ws, w_dim))
    directions = {}
    for route in motion.routes:
        name = route.direction_file
        if route.target == "direction" and name is not None and name not in directions:
            kf_file = load_keyframes(_where(name, folder), model_hash=model_hash(), num_ws=num_ws, w_dim=w_dim)
            if kf_file.kind != "direction":
                raise UserError(f"route {route.name!r}: {name} holds a {kf_file.kind}, not a direction "
                                f"(make one with `vjgan direction A B`)")
            directions[name] = kf_file.ws
    return ResolvedLatents(np.concatenate(frames), directions)
