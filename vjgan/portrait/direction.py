"""A named latent direction from two examples: from picture A (neutral) to picture B (smiling).

The direction is the difference of the two projections in W+, row by row: a route moving along it
with gain 1 at full level carries a keyframe as far as A was from B, on the rows the route names
(a mouth opens on the middle rows; the coarse rows would also turn the head if A and B differ in
pose: `--joint` shares the coarse rows between A and B, so their difference carries no pose).
"""

from __future__ import annotations

import numpy as np

from ..motion.config import layer_rows


def direction_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """B − A, [num_ws, w_dim]."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"two W+ latents of one shape expected, got {list(a.shape)} and {list(b.shape)}")
    return b - a


def describe_direction(direction: np.ndarray) -> str:
    """Its length on each layer group, e.g. 'coarse 0.00, middle 3.10, fine 1.20'."""
    num_ws = direction.shape[0]
    parts = []
    for group in ("coarse", "middle", "fine"):
        rows = layer_rows(group, num_ws)
        if rows:
            parts.append(f"{group} {float(np.linalg.norm(direction[rows], axis=-1).mean()):.2f}")
    return ", ".join(parts)
