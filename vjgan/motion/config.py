"""Typed settings of the latent engine, as a preset's `[motion]`, `[keyframes]` and `[[routes]]` tables.

A route is Klingemann's idea made general: `source × gain → target`. The source is something the
analyzer hears (a band's level, a band's onset, the beat, loudness); the gain is a named live
parameter (a MIDI knob); the target is a part of the latent space (a principal direction on a
layer group or a named direction found from two example pictures, the distance from the average
face, the noise, or a snap to the next keyframe).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

from ..errors import UserError


class MotionConfigError(UserError):
    """A bad value in a preset's motion settings (the message names the key)."""


MAX_LEASH = 4.0
SOURCE_PATTERN = re.compile(r"^(band|onset)\.[A-Za-z0-9_-]+$|^(beat|beat\.sin|loudness)$")
TARGETS = ("direction", "expressiveness", "noise", "snap")
GROUPS = ("coarse", "middle", "fine", "all")


def layer_rows(spec: str, num_ws: int) -> list[int]:
    """Rows of w+ a layer-group spec names: coarse 0–3 (pose, shape), middle 4–7 (features),
    fine 8+ (colour, texture), all, a '+'-joined mix, or an explicit range such as '2-5'."""
    rows: set[int] = set()
    for part in spec.split("+"):
        part = part.strip()
        if part == "coarse":
            rows.update(range(0, min(4, num_ws)))
        elif part == "middle":
            rows.update(range(4, min(8, num_ws)))
        elif part == "fine":
            rows.update(range(8, num_ws))
        elif part == "all":
            rows.update(range(num_ws))
        elif re.fullmatch(r"\d+-\d+", part):
            lo, hi = (int(x) for x in part.split("-"))
            rows.update(range(lo, min(hi, num_ws - 1) + 1))
        elif part.isdigit():
            if int(part) < num_ws:
                rows.add(int(part))
        else:
            raise MotionConfigError(f"layers {spec!r}: expected coarse, middle, fine, all, 'a-b' or a '+' mix")
    return sorted(rows)


@dataclass(frozen=True)
class RouteConfig:
    name: str
    source: str
    target: str
    layers: str = "coarse+middle"
    # target "direction": a principal component's index, or a direction file (`vjgan direction`,
    # a keyframe .npz of kind "direction", relative to the preset) whose full length is gain 1
    direction: int | str = 0
    gain: float = 0.5  # default of the live parameter gain.<name>
    gain_max: float = 2.0
    release_s: float = 0.3  # decay of an onset's pulse
    smoothing_s: float = 0.08  # glide of the gain knob

    def __post_init__(self) -> None:
        where = f"route {self.name!r}"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.name or ""):
            raise MotionConfigError(f"{where}: name must be letters, digits, - or _")
        if not SOURCE_PATTERN.match(self.source):
            raise MotionConfigError(f"{where}: source {self.source!r} must be band.NAME, onset.NAME, beat, beat.sin or loudness")
        if self.target not in TARGETS:
            raise MotionConfigError(f"{where}: target {self.target!r} must be one of {', '.join(TARGETS)}")
        if self.target == "snap" and not self.source.startswith("onset."):
            raise MotionConfigError(f"{where}: a snap needs an onset source (onset.NAME)")
        layer_rows(self.layers, 64)  # validates the spec
        if isinstance(self.direction, bool) or not isinstance(self.direction, (int, str)):
            raise MotionConfigError(f"{where}: direction must be a principal component index or a direction file")
        if isinstance(self.direction, str) and not self.direction.endswith(".npz"):
            raise MotionConfigError(f"{where}: direction file {self.direction!r} must be a .npz made by `vjgan direction`")
        if isinstance(self.direction, int) and not 0 <= self.direction < 512:
            raise MotionConfigError(f"{where}: direction must be a principal component index ≥ 0")
        if not 0 <= self.gain <= self.gain_max or self.gain_max <= 0:
            raise MotionConfigError(f"{where}: gain {self.gain} must lie in [0, gain_max={self.gain_max}]")
        if not 0 < self.release_s <= 10 or not 0 <= self.smoothing_s <= 10:
            raise MotionConfigError(f"{where}: release_s must be in (0, 10] and smoothing_s in [0, 10]")

    @property
    def param_name(self) -> str:
        return f"gain.{self.name}"

    @property
    def direction_file(self) -> str | None:
        """The named direction this route moves along, or None for a principal component."""
        return self.direction if isinstance(self.direction, str) else None


@dataclass(frozen=True)
class KeyframeConfig:
    seeds: tuple[int, ...] = (1, 2, 3, 4)
    # keyframe files (.npz from `vjgan project` or a prompt search, bound to their model; or plain
    # .npy latents, [w_dim] or [num_ws, w_dim]), relative to the preset; each keeps its full W+
    files: tuple[str, ...] = ()
    truncation: float = 0.7  # ψ for keyframes made from seeds: stay near the good region
    class_index: int = 0  # label for conditional networks
    beats_per_keyframe: float = 16.0  # tempo-synced transition length
    seconds_per_keyframe: float = 8.0  # used while no tempo is known

    def __post_init__(self) -> None:
        if not self.seeds and not self.files:
            raise MotionConfigError("keyframes: give at least one seed or file")
        if not 0 < self.truncation <= 2:
            raise MotionConfigError("keyframes.truncation must be in (0, 2]")
        if self.beats_per_keyframe <= 0 or self.seconds_per_keyframe <= 0:
            raise MotionConfigError("keyframes: transition lengths must be positive")


@dataclass(frozen=True)
class MotionConfig:
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    routes: tuple[RouteConfig, ...] = ()
    max_speed: float = 1.0  # default of motion.max_speed: ball radii per second a w+ row may move
    smoothing_s: float = 0.04  # default of motion.smoothing
    wander: float = 0.2  # default of drift.wander: slow random motion on top of the keyframe path
    expressiveness_max: float = 2.0  # default cap of ψ
    # default of motion.leash: each row of w+ stays within this many ball radii of the keyframe
    # path, and the wander moves only along the routed directions (a portrait keeps its identity);
    # 0 = no leash (the drift roams the whole ball)
    leash: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        names = [r.name for r in self.routes]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise MotionConfigError(f"two routes are named {sorted(dup)[0]!r}")
        if not 0 < self.max_speed <= 20:
            raise MotionConfigError("motion.max_speed must be in (0, 20] radii per second")
        if not 1 <= self.expressiveness_max <= 4:
            raise MotionConfigError("motion.expressiveness_max must be in [1, 4]")
        if not 0 <= self.leash <= MAX_LEASH:
            raise MotionConfigError(f"motion.leash must be in [0, {MAX_LEASH:g}] ball radii (0 = no leash)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "motion": {k: getattr(self, k) for k in ("max_speed", "smoothing_s", "wander", "expressiveness_max", "leash", "seed")},
            "keyframes": {f.name: (list(v) if isinstance(v := getattr(self.keyframes, f.name), tuple) else v)
                          for f in fields(KeyframeConfig)},
            "routes": [{f.name: getattr(r, f.name) for f in fields(RouteConfig)} for r in self.routes],
        }

    @classmethod
    def from_dict(cls, motion: Mapping[str, Any] | None, keyframes: Mapping[str, Any] | None,
                  routes: list[Mapping[str, Any]] | None) -> "MotionConfig":
        kf = _build(KeyframeConfig, keyframes or {}, "keyframes", tuples=("seeds", "files"))
        rs = tuple(_build(RouteConfig, r, f"routes[{i}]") for i, r in enumerate(routes or []))
        return _build(cls, {**(motion or {}), "keyframes": kf, "routes": rs}, "motion")


def with_keyframe_files(motion: MotionConfig, files: Sequence[str]) -> MotionConfig:
    """The same motion with these keyframe files instead of the preset's keyframes (a portrait
    given on the command line replaces the preset's seeds: the show plays that face). The files
    are named as the user typed them, so they are made absolute here, not read beside the preset."""
    if not files:
        return motion
    absolute = tuple(os.path.abspath(os.path.expanduser(str(f))) for f in files)
    keyframes = dataclasses.replace(motion.keyframes, seeds=(), files=absolute)
    return dataclasses.replace(motion, keyframes=keyframes)


def _build(cls: type, data: Mapping[str, Any], where: str, tuples: tuple[str, ...] = ()) -> Any:
    if not isinstance(data, Mapping):
        raise MotionConfigError(f"{where}: expected a table")
    known = {f.name: f for f in fields(cls)}
    unknown = [k for k in data if k not in known]
    if unknown:
        raise MotionConfigError(f"{where}: unknown key {unknown[0]!r}")
    kwargs = {}
    for key, value in data.items():
        if key in tuples:
            if not isinstance(value, (list, tuple)):
                raise MotionConfigError(f"{where}.{key}: expected a list")
            value = tuple(value)
        expected = known[key].type
        if expected in ("float", float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected in ("float", float, "int", int) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise MotionConfigError(f"{where}.{key}: expected a number, got {value!r}")
        if expected in ("str", str) and not isinstance(value, str):
            raise MotionConfigError(f"{where}.{key}: expected text, got {value!r}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise MotionConfigError(f"{where}: {e}") from None
