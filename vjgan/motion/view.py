"""Turning and gliding a StyleGAN3 picture: the view's state and its per-frame transform.

A StyleGAN3 network draws from Fourier features defined on a continuous plane, and it is
equivariant: rotating or moving that plane under the picture turns or moves the picture
smoothly, textures and all. The VJ plays it with named parameters — a rotation angle and speed, a
translation and a glide speed and direction — and with routes that push them with the sound
(`rotation`, `spin`, `translation` and `glide` targets: a turn on every beat, the bass pushing a
glide). Spin and glide accumulate; rotation and translation are offsets that come back.

Pure functions and a frozen state: the latent engine keeps one `ViewState` per scene and turns
it into the network's input transform each frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..gan.stylegan3 import view_transform
from .params import ParamSpec

# What one unit of route gain × source means for each target.
ROTATION_DEG = 90.0  # `rotation`: degrees of turn (an offset, released with the source)
SPIN_DEG_PER_S = 90.0  # `spin`: degrees per second added to the rotation speed
TRANSLATION_WIDTHS = 0.25  # `translation`: image widths along the glide direction (an offset)
GLIDE_WIDTHS_PER_S = 0.5  # `glide`: image widths per second added to the glide speed

# Far from the origin the input's phases lose float32 precision (visible as shimmer); the glide
# folds back at this distance, reversing smoothly like a ball at a wall.
GLIDE_LIMIT_WIDTHS = 256.0


def view_param_specs() -> list[ParamSpec]:
    """The live parameters of the view (registered only for networks with an input transform)."""
    return [
        ParamSpec("rotation", 0.0, -180.0, 180.0, 0.2, "turn of the picture (degrees, counter-clockwise)", "view"),
        ParamSpec("rotation.speed", 0.0, -180.0, 180.0, 0.3, "continuous turn (degrees per second)", "view"),
        ParamSpec("translation.x", 0.0, -1.0, 1.0, 0.2, "offset to the right (image widths)", "view"),
        ParamSpec("translation.y", 0.0, -1.0, 1.0, 0.2, "offset downward (image widths)", "view"),
        ParamSpec("glide.speed", 0.0, 0.0, 2.0, 0.3, "continuous travel (image widths per second)", "view"),
        ParamSpec("glide.direction", 0.0, -180.0, 180.0, 0.3, "direction of travel and of translation pushes (degrees)", "view"),
    ]


@dataclass(frozen=True)
class ViewState:
    """What spin and glide have accumulated: an angle and a distance travelled (unfolded)."""

    angle_deg: float = 0.0
    travelled_x: float = 0.0
    travelled_y: float = 0.0


@dataclass(frozen=True)
class ViewPush:
    """This frame's route contributions, in the targets' units (see the constants above)."""

    rotation_deg: float = 0.0
    spin_deg_per_s: float = 0.0
    translation_widths: float = 0.0
    glide_widths_per_s: float = 0.0


def fold(x: float, limit: float) -> float:
    """A triangle wave: identity within ±limit, reflected beyond, continuous everywhere."""
    return limit * (1.0 - abs(((x / limit + 1.0) % 4.0) - 2.0))


def step_view(state: ViewState, params: Mapping[str, float], push: ViewPush, dt: float) -> ViewState:
    """Advance spin and glide by dt seconds (frame-rate independent: speeds integrate)."""
    spin = params.get("rotation.speed", 0.0) + push.spin_deg_per_s
    glide = params.get("glide.speed", 0.0) + push.glide_widths_per_s
    heading = math.radians(params.get("glide.direction", 0.0))
    return ViewState(
        angle_deg=(state.angle_deg + spin * dt) % 360.0,
        travelled_x=state.travelled_x + glide * math.cos(heading) * dt,
        travelled_y=state.travelled_y + glide * math.sin(heading) * dt,
    )


def view_matrix(state: ViewState, params: Mapping[str, float], push: ViewPush) -> np.ndarray:
    """The network's input transform for this frame: accumulated motion plus the offsets."""
    heading = math.radians(params.get("glide.direction", 0.0))
    angle = state.angle_deg + params.get("rotation", 0.0) + push.rotation_deg
    x = (fold(state.travelled_x, GLIDE_LIMIT_WIDTHS) + params.get("translation.x", 0.0)
         + push.translation_widths * math.cos(heading))
    y = (fold(state.travelled_y, GLIDE_LIMIT_WIDTHS) + params.get("translation.y", 0.0)
         + push.translation_widths * math.sin(heading))
    return view_transform(angle, (x, y))
