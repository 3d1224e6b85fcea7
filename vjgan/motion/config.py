"""Typed settings of the latent engine, as a preset's `[motion]`, `[keyframes]` and `[[routes]]` tables.

A route is Klingemann's idea made general: `source × gain → target`. The source is something the
analyzer hears (a band's level, a band's onset, the beat, loudness); the gain is a named live
parameter (a MIDI knob); the target is a part of the latent space (a principal direction on a
layer group or a named direction found from two example pictures, the distance from the average
face, the noise, or a snap to the next keyframe) or, for StyleGAN3 networks, the view (turn and
glide the picture: motion/view.py).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

from ..errors import UserError
from ..validation import Number, check_fields, number


class MotionConfigError(UserError):
    """A bad value in a preset's motion settings (the message names the key)."""


PRINCIPAL_DIRECTIONS = 16  # GANSpace directions computed per model (fewer when w_dim is smaller)
MAX_KEYFRAMES = 1024  # seeds are mapped to W in one batch when a scene is built
MAX_PROMPT_CHARS = 300  # CLIP reads 77 tokens; a longer text is not a prompt
SEED = Number(0, 2**32 - 1, whole=True)  # numpy's RandomState range: the StyleGAN seed convention
# Ranges of the live parameters a preset sets the defaults of (LatentEngine.param_specs uses them).
MAX_SPEED = Number(0.05, 20.0, unit="ball radii per second")
SMOOTHING = Number(0.0, 0.5, unit="s")
WANDER = Number(0.0, 1.0)
EXPRESSIVENESS = Number(1.0, 4.0)
MAX_LEASH = 4.0
LEASH = Number(0.0, MAX_LEASH, unit="ball radii", why="0 = no leash")
DIRECTION_INDEX = Number(0, PRINCIPAL_DIRECTIONS - 1, whole=True)


SOURCE_PATTERN = re.compile(r"^(band|onset)\.[A-Za-z0-9_-]+$|^(beat|beat\.sin|loudness)$")
VIEW_TARGETS = ("rotation", "spin", "translation", "glide")  # StyleGAN3 only; nothing on other networks
TARGETS = ("direction", "expressiveness", "noise", "snap") + VIEW_TARGETS
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
        elif re.fullmatch(r"\d{1,4}-\d{1,4}", part):  # (w+ has at most 2·log2(4096) = 24 rows)
            lo, hi = (int(x) for x in part.split("-"))
            rows.update(range(lo, min(hi, num_ws - 1) + 1))
        elif re.fullmatch(r"\d{1,4}", part):
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
    gain: float = number(Number(0.0, 20.0), 0.5)  # default of the live parameter gain.<name>
    gain_max: float = number(Number(0.01, 20.0), 2.0)
    release_s: float = number(Number(0.001, 10.0, unit="s"), 0.3)  # decay of an onset's pulse
    smoothing_s: float = number(Number(0.0, 10.0, unit="s"), 0.08)  # glide of the gain knob

    def __post_init__(self) -> None:
        where = f"route {self.name!r}" if isinstance(self.name, str) else "route"
        check_fields(self, where, MotionConfigError)
        for key in ("name", "source", "target", "layers"):
            if not isinstance(getattr(self, key), str):
                raise MotionConfigError(f"{where}.{key} must be text, got {type(getattr(self, key)).__name__}")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.name or ""):
            raise MotionConfigError(f"{where}: name must be letters, digits, - or _")
        if not SOURCE_PATTERN.match(self.source):
            raise MotionConfigError(f"{where}: source {self.source!r} must be band.NAME, onset.NAME, beat, beat.sin or loudness")
        if self.target not in TARGETS:
            raise MotionConfigError(f"{where}: target {self.target!r} must be one of {', '.join(TARGETS)}")
        if self.target == "snap" and not self.source.startswith("onset."):
            raise MotionConfigError(f"{where}: a snap needs an onset source (onset.NAME)")
        layer_rows(self.layers, 64)  # validates the spec
        if isinstance(self.direction, str):
            if not self.direction.endswith(".npz"):
                raise MotionConfigError(f"{where}.direction: file {self.direction!r} must be a .npz made by `vjgan direction`")
        else:
            object.__setattr__(self, "direction", DIRECTION_INDEX.check(self.direction, f"{where}.direction",
                                                                         MotionConfigError))
        if self.gain > self.gain_max:
            raise MotionConfigError(f"{where}: gain {self.gain:g} must lie in [0, gain_max={self.gain_max:g}]")

    @property
    def param_name(self) -> str:
        return f"gain.{self.name}"

    @property
    def direction_file(self) -> str | None:
        """The named direction this route moves along, or None for a principal component."""
        return self.direction if isinstance(self.direction, str) else None


@dataclass(frozen=True)
class KeyframeConfig:
    seeds: tuple[int, ...] = number(SEED, (1, 2, 3, 4), max_items=MAX_KEYFRAMES)
    # keyframe files (.npz from `vjgan project` or a prompt search, bound to their model; or plain
    # .npy latents, [w_dim] or [num_ws, w_dim]), relative to the preset; each keeps its full W+
    files: tuple[str, ...] = ()
    # text prompts: each becomes a keyframe CLIP finds for the words (`vjgan live --clip`, `render
    # --clip`); found once per model, CLIP and prompt, then taken from the cache
    prompts: tuple[str, ...] = ()
    # ψ for keyframes made from seeds: stay near the good region
    truncation: float = number(Number(0.01, 2.0), 0.7)
    class_index: int = number(Number(0, 99_999, whole=True), 0)  # label for conditional networks (mod c_dim)
    # Transition lengths. The position through the keyframes grows by dt / length every frame:
    # a length near zero would make it infinite.
    beats_per_keyframe: float = number(Number(0.25, 4096.0, unit="beats"), 16.0)  # tempo-synced
    seconds_per_keyframe: float = number(Number(0.05, 3600.0, unit="s"), 8.0)  # while no tempo is known

    def __post_init__(self) -> None:
        check_fields(self, "keyframes", MotionConfigError)
        if not isinstance(self.files, tuple) or len(self.files) > MAX_KEYFRAMES \
                or not all(isinstance(f, str) and f for f in self.files):
            raise MotionConfigError(f"keyframes.files must be a list of at most {MAX_KEYFRAMES} file names")
        if not isinstance(self.prompts, tuple) or len(self.prompts) > MAX_KEYFRAMES \
                or not all(isinstance(t, str) and t.strip() and len(t) <= MAX_PROMPT_CHARS for t in self.prompts):
            raise MotionConfigError(f"keyframes.prompts must be a list of at most {MAX_KEYFRAMES} texts "
                                    f"of up to {MAX_PROMPT_CHARS} characters")
        if not self.seeds and not self.files and not self.prompts:
            raise MotionConfigError("keyframes: give at least one seed, file or prompt")


@dataclass(frozen=True)
class MotionConfig:
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    routes: tuple[RouteConfig, ...] = ()
    max_speed: float = number(MAX_SPEED, 1.0)  # default of motion.max_speed: ball radii per second a w+ row may move
    smoothing_s: float = number(SMOOTHING, 0.04)  # default of motion.smoothing
    wander: float = number(WANDER, 0.2)  # default of drift.wander: slow random motion on top of the keyframe path
    expressiveness_max: float = number(EXPRESSIVENESS, 2.0)  # default cap of ψ
    # default of motion.leash: each row of w+ stays within this many ball radii of the keyframe
    # path, and the wander moves only along the routed directions (a portrait keeps its identity);
    # 0 = no leash (the drift roams the whole ball)
    leash: float = number(LEASH, 0.0)
    seed: int = number(SEED, 0)

    def __post_init__(self) -> None:
        check_fields(self, "motion", MotionConfigError)
        names = [r.name for r in self.routes]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise MotionConfigError(f"two routes are named {sorted(dup)[0]!r}")

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
        kf = _build(KeyframeConfig, keyframes or {}, "keyframes", tuples=("seeds", "files", "prompts"))
        rs = tuple(_build(RouteConfig, r, f"routes[{i}]") for i, r in enumerate(routes or []))
        return _build(cls, {**(motion or {}), "keyframes": kf, "routes": rs}, "motion")


def with_keyframe_files(motion: MotionConfig, files: Sequence[str]) -> MotionConfig:
    """The same motion with these keyframe files instead of the preset's keyframes (a portrait
    given on the command line replaces the preset's seeds: the show plays that face). The files
    are named as the user typed them, so they are made absolute here, not read beside the preset."""
    if not files:
        return motion
    absolute = tuple(os.path.abspath(os.path.expanduser(str(f))) for f in files)
    keyframes = dataclasses.replace(motion.keyframes, seeds=(), files=absolute, prompts=())
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
        kwargs[key] = value  # types and ranges: each class's __post_init__ (vjgan.validation)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise MotionConfigError(f"{where}: {e}") from None
