"""The latent engine: the newest sound features and the live parameters → w+ for one frame.

Two kinds of motion, both bounded:
* drift accumulates: a path through keyframe latents, tempo-synced, plus a slow wander, folded
  back inside a ball around w_avg so it never leaves the region where the model draws well;
* pulses do not accumulate: each route adds `gain × source` along its target and lets go as the
  source's envelope falls.
Finally every row of w+ may move at most `motion.max_speed` ball radii per second (except on an
onset snap, which is meant to cut) and is smoothed, so a 60 fps picture never jitters.

The maths is in pure functions on numpy arrays; LatentEngine only keeps the state between frames
and is owned by a single thread (the frame worker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .config import MotionConfig, layer_rows
from .directions import LatentSpace
from .params import ParamSpec

# ---------------------------------------------------------------------------------------------
# pure functions


def smoothstep(x: float) -> float:
    """Ease in and out, so a keyframe transition starts and ends without a kink."""
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


def fold_into_ball(w: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Reflect points outside the ball back inside (a fold keeps motion continuous, a clamp would stick)."""
    d = w - centre
    norm = np.linalg.norm(d, axis=-1, keepdims=True)
    if radius <= 0:
        return np.broadcast_to(centre, w.shape).copy()
    folded = np.abs(((norm / radius + 1.0) % 4.0) - 2.0) - 1.0  # triangle wave: in [-1, 1]
    # A fold through the centre flips direction; keep the magnitude's sign on the direction.
    scale = np.where(norm > radius, np.abs(folded) * radius / np.maximum(norm, 1e-12), 1.0)
    return centre + d * scale


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
    """Owns the motion state; step() is called once per generated frame by one thread."""

    def __init__(self, space: LatentSpace, keyframes: np.ndarray, num_ws: int, num_layers: int,
                 config: MotionConfig) -> None:
        keyframes = np.asarray(keyframes, dtype=np.float32)
        if keyframes.ndim == 2:  # one w per keyframe (seeds): the same on every row of W+
            keyframes = np.repeat(keyframes[:, None], num_ws, axis=1)
        if keyframes.ndim != 3 or keyframes.shape[1:] != (num_ws, space.w_dim) or len(keyframes) == 0:
            raise ValueError("keyframes must be a non-empty [K, w_dim] or [K, num_ws, w_dim] array")
        self.space, self.config = space, config
        self.num_ws, self.num_layers = num_ws, num_layers
        self.keyframes = fold_into_ball(keyframes, space.w_avg, space.radius)  # [K, num_ws, w_dim]
        self.routes = config.routes
        self._rows = {r.name: np.array(layer_rows(r.layers, num_ws), dtype=np.int64) for r in config.routes}
        self._pulses = {r.name: 0.0 for r in config.routes}
        self._rng = np.random.default_rng(config.seed)
        self._wander = np.zeros(space.w_dim, dtype=np.float32)
        self.position = 0.0
        self._ws: np.ndarray | None = None
        self._onsets_seen: dict[str, float] = {}

    # The live parameters this engine reads; registered in the ParamStore by the show.
    def param_specs(self) -> list[ParamSpec]:
        c = self.config
        specs = [
            ParamSpec("drift.speed", 1.0, 0.0, 4.0, 0.3, "keyframe transition speed (× the tempo-synced rate)", "drift"),
            ParamSpec("drift.wander", c.wander, 0.0, 1.0, 0.3, "slow random motion on top of the keyframe path", "drift"),
            ParamSpec("expressiveness.max", c.expressiveness_max, 1.0, 4.0, 0.2, "cap of ψ (distance from the average)", "motion"),
            ParamSpec("motion.max_speed", c.max_speed, 0.05, 20.0, 0.2, "fastest a w+ row may move, ball radii per second", "motion"),
            ParamSpec("motion.smoothing", c.smoothing_s, 0.0, 0.5, 0.2, "time constant of the final glide (s)", "motion"),
            ParamSpec("noise.base", 1.0, 0.0, 3.0, 0.1, "noise strength on every layer (× learned strength)", "motion"),
        ]
        for r in self.routes:
            specs.append(ParamSpec(r.param_name, r.gain, 0.0, r.gain_max, r.smoothing_s,
                                   f"{r.source} → {r.target} ({r.layers})", "routes"))
        return specs

    def reset(self) -> None:
        self.position = 0.0
        self._ws = None
        self._wander[:] = 0
        self._pulses = {r.name: 0.0 for r in self.routes}

    def new_keyframe(self, w: np.ndarray) -> None:
        """Add a keyframe (w, or W+ rows) right after the current one (the 'new keyframe' trigger)."""
        w = np.broadcast_to(np.asarray(w, dtype=np.float32), (self.num_ws, self.space.w_dim))
        w = fold_into_ball(w[None], self.space.w_avg, self.space.radius)
        i = int(math.floor(self.position)) % len(self.keyframes)
        self.keyframes = np.concatenate([self.keyframes[: i + 1], w, self.keyframes[i + 1 :]])

    def capture_keyframe(self) -> None:
        """Keep the picture now on screen (its mean w) as the next keyframe."""
        if self._ws is not None:
            self.new_keyframe(self._ws.mean(axis=0))

    def _drift_base(self) -> np.ndarray:
        k = len(self.keyframes)
        i = int(math.floor(self.position))
        frac = smoothstep(self.position - i)
        a, b = self.keyframes[i % k], self.keyframes[(i + 1) % k]
        base = a + (b - a) * frac + self._wander
        return fold_into_ball(base, self.space.w_avg, self.space.radius)

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
        wander = params.get("drift.wander", 0.0)
        if wander > 0 and dt > 0:
            # Ornstein–Uhlenbeck: random, but pulled back, so it wanders without accumulating.
            sigma = wander * 0.5 * float(np.mean(space.stdevs))
            theta = 0.5
            self._wander += (-theta * self._wander * dt
                             + sigma * math.sqrt(2 * theta * dt) * self._rng.standard_normal(space.w_dim).astype(np.float32))
        else:
            self._wander *= math.exp(-dt / 0.5) if dt > 0 else 1.0
        snapped = False
        # -- pulses
        offsets = np.zeros((self.num_ws, space.w_dim), dtype=np.float32)
        psi = np.ones(self.num_ws, dtype=np.float32)
        noise = np.full(self.num_layers, params.get("noise.base", 1.0), dtype=np.float32)
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
                k = route.direction % len(space.components)
                offsets[rows] += gain * value * space.stdevs[k] * space.components[k]
            elif route.target == "expressiveness":
                psi[rows] += gain * value
            elif route.target == "noise":
                layer_idx = rows[rows < self.num_layers]
                noise[layer_idx] *= 1.0 + gain * value
        psi = np.minimum(psi, params.get("expressiveness.max", self.config.expressiveness_max))
        base = self._drift_base()
        target = apply_expressiveness(np.broadcast_to(base, (self.num_ws, space.w_dim)), space.w_avg, psi) + offsets
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
        self._ws = ws.astype(np.float32)
        return MotionFrame(self._ws.copy(), noise, snapped, self.position)

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


def load_w_file(path, w_dim: int) -> np.ndarray:
    """A saved latent: .npy of [w_dim] or [num_ws, w_dim] (rows averaged) — never a pickle."""
    from ..errors import UserError

    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:
        raise UserError(f"keyframe file {path}: cannot be read as a .npy array ({e})") from None
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr.mean(axis=0)
    if arr.shape != (w_dim,):
        raise UserError(f"keyframe file {path}: shape {list(arr.shape)} does not fit this model's w_dim {w_dim}")
    return arr
