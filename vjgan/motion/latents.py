"""The latent engine: the newest sound features and the live parameters → w+ for one frame.

Keyframes are points in W+ ([num_ws, w_dim]: a seed's w repeated on every row, or a projected
photo's or prompt's full W+, kept row by row). Two kinds of motion, both bounded:
* drift accumulates: a path through the keyframes, tempo-synced, plus a slow wander, folded
  back inside a ball around w_avg so it never leaves the region where the model draws well (the
  ball grows to hold a keyframe that lies outside it: a chosen keyframe is never altered);
* pulses do not accumulate: each route adds `gain × source` along its target and lets go as the
  source's envelope falls.
Finally every row of w+ may move at most `motion.max_speed` ball radii per second (except on an
onset snap, which is meant to cut) and is smoothed, so a 60 fps picture never jitters.

For networks with an input transform (StyleGAN3) the engine also plays the view: the turn and
glide parameters and routes (motion/view.py) become each frame's transform, carried in the
MotionFrame to the generator.

With a leash (`motion.leash` > 0, a portrait), the wander moves only along the routed directions
on the routed rows, and every row stays within the leash of the keyframe path: the face moves
with the music and stays itself over a whole set.

The maths is in pure functions on numpy arrays; LatentEngine only keeps the state between frames
and is owned by a single thread (the frame worker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .config import EXPRESSIVENESS, MAX_LEASH, MAX_SPEED, SMOOTHING, WANDER, MotionConfig, layer_rows
from .directions import LatentSpace
from .params import ParamSpec
from .view import (GLIDE_WIDTHS_PER_S, ROTATION_DEG, SPIN_DEG_PER_S, TRANSLATION_WIDTHS, ViewPush, ViewState,
                   step_view, view_matrix, view_param_specs)

# ---------------------------------------------------------------------------------------------
# pure functions


def smoothstep(x: float) -> float:
    """Ease in and out, so a keyframe transition starts and ends without a kink."""
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


def fold_into_ball(w: np.ndarray, centre: np.ndarray, radius: float | np.ndarray) -> np.ndarray:
    """Reflect points outside the ball back inside (a fold keeps motion continuous, a clamp would stick).

    `radius` is one number, or one per row (shape [..., 1]) for balls of different sizes."""
    d = w - centre
    norm = np.linalg.norm(d, axis=-1, keepdims=True)
    radius = np.asarray(radius, dtype=np.float64)
    if np.all(radius <= 0):
        return np.broadcast_to(centre, w.shape).copy()
    radius = np.maximum(radius, 1e-12)
    folded = np.abs(((norm / radius + 1.0) % 4.0) - 2.0) - 1.0  # triangle wave: in [-1, 1]
    # A fold through the centre flips direction; keep the magnitude's sign on the direction.
    scale = np.where(norm > radius, np.abs(folded) * radius / np.maximum(norm, 1e-12), 1.0)
    return (centre + d * scale).astype(w.dtype, copy=False)


def leash(ws: np.ndarray, anchor: np.ndarray, radius: float, knee: float = 0.5) -> np.ndarray:
    """Keep each row of ws within `radius` of the anchor's row.

    Unchanged up to knee·radius, then a smooth (tanh) approach to the radius, which is never
    passed: motion near the edge slows down instead of sticking to it."""
    d = ws - anchor
    if radius <= 0:
        return np.array(np.broadcast_to(anchor, ws.shape), dtype=ws.dtype)
    r = np.linalg.norm(d, axis=-1, keepdims=True)
    inner = knee * radius
    span = radius - inner
    squashed = np.where(r > inner, inner + span * np.tanh((r - inner) / span), r)
    return (anchor + d * (squashed / np.maximum(r, 1e-12))).astype(ws.dtype, copy=False)


def as_wplus(latents: np.ndarray, num_ws: int) -> np.ndarray:
    """Keyframes as W+: [K, w_dim] (one w each, repeated on every row) or [K, num_ws, w_dim] → [K, num_ws, w_dim]."""
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim == 2:
        return np.repeat(latents[:, None, :], num_ws, axis=1)
    if latents.ndim == 3 and latents.shape[1] == num_ws:
        return latents.copy()
    raise ValueError(f"keyframes must be [K, w_dim] or [K, {num_ws}, w_dim], got {list(latents.shape)}")


def limit_step(new: np.ndarray, previous: np.ndarray, max_step: float) -> np.ndarray:
    """Move each row from `previous` toward `new` by at most `max_step` (Euclidean)."""
    delta = new - previous
    norm = np.linalg.norm(delta, axis=-1, keepdims=True)
    scale = np.minimum(1.0, max_step / np.maximum(norm, 1e-12))
    return previous + delta * scale


def one_pole(current: np.ndarray, target: np.ndarray, dt: float, tau: float) -> np.ndarray:
    """First-order glide with a time constant: the result does not depend on the frame rate."""
    if tau <= 0 or dt <= 0:
        return target
    return current + (target - current) * (1.0 - math.exp(-dt / tau))


def apply_expressiveness(ws: np.ndarray, w_avg: np.ndarray, psi_rows: np.ndarray) -> np.ndarray:
    """Scale each row's distance from w_avg by ψ (ψ > 1: more expressive, a caricature of itself)."""
    return w_avg + (ws - w_avg) * psi_rows[:, None]


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionFrame:
    ws: np.ndarray  # [num_ws, w_dim] float32
    noise_gains: np.ndarray  # [num_layers] float32
    snapped: bool  # an onset snap happened this frame (the step limit was lifted)
    drift_position: float
    transform: np.ndarray | None = None  # [3, 3] input transform (StyleGAN3), None for other networks


def source_value(source: str, features, t: float) -> float:
    """Current value of a route's source (0..1; beat.sin in −1..1), or 0 if the band does not exist.

    An onset source reads only this snapshot's flag; LatentEngine.step prefers onset times seen
    by every hop (frames are rarer than hops, so a one-hop flag is easily missed)."""
    if features is None:
        return 0.0
    kind, _, name = source.partition(".")
    try:
        if kind == "band":
            return float(features.band(name))
        if kind == "onset":
            return 1.0 if features.onset(name) else 0.0
    except KeyError:
        return 0.0
    if source == "loudness":
        return float(features.loudness)
    phase = features.phase_at(t) if getattr(features, "beat_period", 0.0) > 0 else None
    if phase is None:
        return 0.0
    if source == "beat":
        return (1.0 - phase) ** 3  # a hit on the beat that lets go before the next
    if source == "beat.sin":
        return math.sin(2.0 * math.pi * phase)
    return 0.0


class LatentEngine:
    """Owns the motion state; step() is called once per generated frame by one thread.

    keyframes: [K, w_dim] (seeds) or [K, num_ws, w_dim] (W+, e.g. projected photos).
    directions: the named directions routes may target (their `direction` file name →
        [num_ws, w_dim], full length = gain 1), loaded by `latent_files.resolve_latents`.
    """

    def __init__(self, space: LatentSpace, keyframes: np.ndarray, num_ws: int, num_layers: int,
                 config: MotionConfig, directions: Mapping[str, np.ndarray] | None = None,
                 transformable: bool = False) -> None:
        keyframes = np.asarray(keyframes)
        if len(keyframes) == 0 or keyframes.shape[-1] != space.w_dim:
            raise ValueError(f"keyframes must be a non-empty [K, w_dim] or [K, num_ws, w_dim] array (w_dim {space.w_dim})")
        self.space, self.config = space, config
        self.num_ws, self.num_layers = num_ws, num_layers
        self.keyframes = as_wplus(keyframes, num_ws)
        self.routes = config.routes
        self._rows = {r.name: np.array(layer_rows(r.layers, num_ws), dtype=np.int64) for r in config.routes}
        self._unit_offsets = {r.name: self._unit_offset(r, directions or {}) for r in config.routes
                              if r.target == "direction"}
        self._pulses = {r.name: 0.0 for r in config.routes}
        self._rng = np.random.default_rng(config.seed)
        self.leashed = config.leash > 0
        # The wander: free in W (one w_dim vector on every row), or, on a leash, one coefficient
        # per routed direction (the only ways a leashed portrait may move).
        self._wander = np.zeros(space.w_dim, dtype=np.float32)
        self._route_wander = {name: 0.0 for name in self._unit_offsets}
        self.position = 0.0
        self._ws: np.ndarray | None = None
        self._onsets_seen: dict[str, float] = {}
        self.transformable = transformable  # the network takes an input transform: play the view
        self.view = ViewState()
        self._view_offsets = np.zeros(2)  # smoothed rotation and translation pushes

    def _unit_offset(self, route, directions: Mapping[str, np.ndarray]) -> np.ndarray:
        """What gain 1 at full level adds to the route's rows: one standard deviation along a
        principal component, or a named direction's full length."""
        rows = self._rows[route.name]
        name = route.direction_file
        if name is None:
            k = route.direction % len(self.space.components)
            return np.broadcast_to(self.space.stdevs[k] * self.space.components[k], (len(rows), self.space.w_dim)).astype(np.float32)
        if name not in directions:
            raise ValueError(f"route {route.name!r}: direction {name!r} was not loaded")
        vector = np.asarray(directions[name], dtype=np.float32)
        if vector.shape != (self.num_ws, self.space.w_dim):
            raise ValueError(f"route {route.name!r}: direction {name!r} has shape {list(vector.shape)}, "
                             f"expected [{self.num_ws}, {self.space.w_dim}]")
        return vector[rows]

    # The live parameters this engine reads; registered in the ParamStore by the show.
    def param_specs(self) -> list[ParamSpec]:
        c = self.config
        specs = [
            ParamSpec("drift.speed", 1.0, 0.0, 4.0, 0.3, "keyframe transition speed (× the tempo-synced rate)", "drift"),
            ParamSpec("drift.wander", c.wander, WANDER.low, WANDER.high, 0.3, "slow random motion on top of the keyframe path", "drift"),
            ParamSpec("expressiveness.max", c.expressiveness_max, EXPRESSIVENESS.low, EXPRESSIVENESS.high, 0.2,
                      "cap of ψ (distance from the average)", "motion"),
            ParamSpec("motion.max_speed", c.max_speed, MAX_SPEED.low, MAX_SPEED.high, 0.2,
                      "fastest a w+ row may move, ball radii per second", "motion"),
            ParamSpec("motion.smoothing", c.smoothing_s, SMOOTHING.low, SMOOTHING.high, 0.2, "time constant of the final glide (s)", "motion"),
            ParamSpec("noise.base", 1.0, 0.0, 3.0, 0.1, "noise strength on every layer (× learned strength)", "motion"),
        ]
        if self.leashed:
            specs.append(ParamSpec("motion.leash", c.leash, 0.0, MAX_LEASH, 0.2,
                                   "how far the picture may stray from its keyframe, ball radii (0 = frozen)", "motion"))
        if self.transformable:
            specs += view_param_specs()
        for r in self.routes:
            specs.append(ParamSpec(r.param_name, r.gain, 0.0, r.gain_max, r.smoothing_s,
                                   f"{r.source} → {r.target} ({r.layers})", "routes"))
        return specs

    def reset(self) -> None:
        self.position = 0.0
        self._ws = None
        self._wander[:] = 0
        self._route_wander = {name: 0.0 for name in self._route_wander}
        self._pulses = {r.name: 0.0 for r in self.routes}
        self.view = ViewState()
        self._view_offsets[:] = 0

    def new_keyframe(self, w: np.ndarray) -> None:
        """Add a keyframe ([w_dim] or [num_ws, w_dim]) right after the current one."""
        w = as_wplus(np.asarray(w, dtype=np.float32)[None], self.num_ws)
        i = int(math.floor(self.position)) % len(self.keyframes)
        self.keyframes = np.concatenate([self.keyframes[: i + 1], w, self.keyframes[i + 1 :]])

    def capture_keyframe(self) -> None:
        """Keep the picture now on screen (its whole w+) as the next keyframe."""
        if self._ws is not None:
            self.new_keyframe(self._ws)

    def _path(self) -> np.ndarray:
        """The point on the keyframe path now, [num_ws, w_dim] (the leash's anchor)."""
        k = len(self.keyframes)
        i = int(math.floor(self.position))
        frac = smoothstep(self.position - i)
        a, b = self.keyframes[i % k], self.keyframes[(i + 1) % k]
        return a + (b - a) * frac

    def _drift_base(self) -> np.ndarray:
        """The path plus the free wander, folded into the ball ([num_ws, w_dim]); on a leash, the path."""
        path = self._path()
        if self.leashed:
            return path
        space = self.space
        # The ball grows, row by row, to hold the path: the wander may not push further out, but
        # a keyframe outside the usual region (a projected photo) is played as it is.
        reach = np.linalg.norm(path - space.w_avg, axis=-1, keepdims=True)
        return fold_into_ball(path + self._wander, space.w_avg, np.maximum(space.radius, reach))

    def _step_wander(self, amount: float, dt: float) -> None:
        """Ornstein–Uhlenbeck: random, but pulled back, so it wanders without accumulating."""
        theta = 0.5
        if amount <= 0 or dt <= 0:
            decay = math.exp(-dt / 0.5) if dt > 0 else 1.0
            self._wander *= decay
            self._route_wander = {n: c * decay for n, c in self._route_wander.items()}
            return
        kick = math.sqrt(2 * theta * dt)
        if self.leashed:
            # In units of each route's gain-1 offset: half of one at full wander.
            for name, c in self._route_wander.items():
                self._route_wander[name] = c - theta * c * dt + amount * 0.5 * kick * float(self._rng.standard_normal())
        else:
            sigma = amount * 0.5 * float(np.mean(self.space.stdevs))
            self._wander += (-theta * self._wander * dt
                             + sigma * kick * self._rng.standard_normal(self.space.w_dim).astype(np.float32))

    def step(self, t: float, dt: float, features, params: Mapping[str, float],
             onset_times: Mapping[str, float] | None = None) -> MotionFrame:
        """One frame. `onset_times`: band → ADC time of its newest onset, kept by whoever sees
        every analysis hop; an onset counts once, on the first frame after it."""
        space, kf = self.space, self.config.keyframes
        dt = max(0.0, min(dt, 0.25))  # a stall (window drag, swap) must not fling the picture
        # -- drift: tempo-synced progress through keyframes, plus a bounded random wander
        period = getattr(features, "beat_period", 0.0) if features is not None else 0.0
        transition_s = kf.beats_per_keyframe * period if period > 0 else kf.seconds_per_keyframe
        self.position += params.get("drift.speed", 1.0) * dt / transition_s
        self._step_wander(params.get("drift.wander", 0.0), dt)
        snapped = False
        # -- pulses
        offsets = np.zeros((self.num_ws, space.w_dim), dtype=np.float32)
        psi = np.ones(self.num_ws, dtype=np.float32)
        noise = np.full(self.num_layers, params.get("noise.base", 1.0), dtype=np.float32)
        push = {"rotation": 0.0, "spin": 0.0, "translation": 0.0, "glide": 0.0}
        for route in self.routes:
            gain = params.get(route.param_name, route.gain)
            if route.source.startswith("onset.") and onset_times is not None:
                band = route.source[len("onset."):]
                newest = onset_times.get(band, -math.inf)
                value = 1.0 if newest > self._onsets_seen.get(route.name, -math.inf) else 0.0
                self._onsets_seen[route.name] = newest
            else:
                value = source_value(route.source, features, t)
            if route.source.startswith("onset."):
                # An onset is one hop long; its pulse rises at once and releases over release_s.
                decayed = self._pulses[route.name] * (math.exp(-dt / route.release_s) if dt > 0 else 1.0)
                if route.target == "snap" and value > 0 and self._pulses[route.name] < 0.5:
                    self._snap(gain)
                    snapped = True
                value = max(value, decayed)
                self._pulses[route.name] = value
            rows = self._rows[route.name]
            if route.target == "direction":
                offsets[rows] += (gain * value + self._route_wander[route.name]) * self._unit_offsets[route.name]
            elif route.target == "expressiveness":
                psi[rows] += gain * value
            elif route.target == "noise":
                layer_idx = rows[rows < self.num_layers]
                noise[layer_idx] *= 1.0 + gain * value
            elif route.target in push:
                push[route.target] += gain * value
        psi = np.minimum(psi, params.get("expressiveness.max", self.config.expressiveness_max))
        base = self._drift_base()
        target = apply_expressiveness(base, space.w_avg, psi) + offsets
        # -- bounded, smooth output
        if self._ws is None:
            ws = target.astype(np.float32)
        else:
            smoothed = one_pole(self._ws, target, dt, params.get("motion.smoothing", self.config.smoothing_s))
            if snapped:
                ws = smoothed
            else:
                max_step = params.get("motion.max_speed", self.config.max_speed) * space.radius * dt
                ws = limit_step(smoothed, self._ws, max_step)
        if self.leashed:
            # Last, so nothing after it can pull the picture off its keyframe.
            ws = leash(ws, self._path(), params.get("motion.leash", self.config.leash) * space.radius)
        self._ws = ws.astype(np.float32)
        transform = self._step_view(dt, params, push) if self.transformable else None
        return MotionFrame(self._ws.copy(), noise, snapped, self.position, transform)

    def _step_view(self, dt: float, params: Mapping[str, float], push: Mapping[str, float]) -> np.ndarray:
        """Spin and glide accumulate; the rotation and translation pushes glide like w+ does."""
        offsets = np.array([push["rotation"] * ROTATION_DEG, push["translation"] * TRANSLATION_WIDTHS])
        self._view_offsets = one_pole(self._view_offsets, offsets, dt, params.get("motion.smoothing", self.config.smoothing_s))
        view_push = ViewPush(rotation_deg=float(self._view_offsets[0]), spin_deg_per_s=push["spin"] * SPIN_DEG_PER_S,
                             translation_widths=float(self._view_offsets[1]),
                             glide_widths_per_s=push["glide"] * GLIDE_WIDTHS_PER_S)
        self.view = step_view(self.view, params, view_push, dt)
        return view_matrix(self.view, params, view_push)

    def _snap(self, gain: float) -> None:
        """Jump part of the way to the next keyframe (gain 1 = all the way)."""
        i = math.floor(self.position)
        remaining = (i + 1) - self.position
        self.position += min(1.0, max(0.0, gain)) * remaining


def keyframes_from_seeds(G, seeds, truncation: float, class_index: int = 0) -> np.ndarray:
    """The StyleGAN convention: seed → z from numpy's RandomState(seed).randn(z_dim) → w."""
    import torch

    if not seeds:
        return np.zeros((0, G.w_dim), dtype=np.float32)
    device = next(G.parameters()).device
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float().to(device) if G.z_dim else None
    c = None
    if G.c_dim:
        c = torch.zeros(len(seeds), G.c_dim, device=device)
        c[:, class_index % G.c_dim] = 1
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=truncation)
    return ws[:, 0].float().cpu().numpy()
