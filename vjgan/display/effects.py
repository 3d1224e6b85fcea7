"""Post effects: which exist, what they take, and strict validation of a preset's effect chain.

A preset lists effects in the order they are applied, each a name and a few numbers:

    [[display.effects]]
    name = "trails"
    length = 0.6

Every effect is one GLSL file in `shaders/` (`effect_<name>.frag`); its parameters become
uniforms `p_<param>`. A name or parameter that does not exist, or a value out of range, is
one line naming the effect and the reason — a typo must not silently leave an effect off.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..errors import UserError
from ..validation import Number


@dataclass(frozen=True, slots=True)
class EffectParam:
    name: str
    default: float
    minimum: float
    maximum: float
    description: str

    @property
    def rule(self) -> Number:
        return Number(self.minimum, self.maximum, why=self.description)


@dataclass(frozen=True, slots=True)
class EffectSpec:
    name: str
    description: str
    params: tuple[EffectParam, ...]
    feedback: bool = False  # reads its own output of the previous picture (u_history)
    moves_with: tuple[str, ...] = ()  # parameters that, when not 0, make it change with time or sound

    @property
    def shader(self) -> str:
        return f"effect_{self.name}.frag"

    def param(self, name: str) -> EffectParam | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, float]:
        return {p.name: p.default for p in self.params}


def _p(name: str, default: float, lo: float, hi: float, description: str) -> EffectParam:
    return EffectParam(name, default, lo, hi, description)


# The audio inputs each effect reacts to are fixed per effect (what it is for); the parameters
# say how strongly, so a preset can turn any reaction down to 0.
EFFECTS: dict[str, EffectSpec] = {spec.name: spec for spec in (
    EffectSpec("trails", "feedback: the picture leaves glowing trails that fade; loudness lengthens them", (
        _p("length", 0.35, 0.02, 5.0, "seconds for a trail to fade to 1/e"),
        _p("loudness", 0.5, 0.0, 1.0, "how much loudness lengthens the trails (up to 4x)"),
        _p("zoom", 0.0, -1.0, 1.0, "trails drift outward (>0) or inward (<0), in zoom per second"),
    ), feedback=True),
    EffectSpec("beat_zoom", "the picture punches in on each beat and relaxes until the next", (
        _p("amount", 0.06, 0.0, 0.5, "extra zoom on the beat (0.06 = 6%)"),
        _p("sharpness", 4.0, 0.5, 20.0, "how quickly the zoom falls back after the beat"),
        _p("bass", 0.5, 0.0, 2.0, "extra zoom from the bass level, relative to amount"),
    ), moves_with=("amount",)),
    EffectSpec("rgb_shift", "red and blue split apart on onsets and with the bass", (
        _p("amount", 0.012, 0.0, 0.1, "split at full drive, as a fraction of the width"),
        _p("angle", 0.0, -180.0, 180.0, "direction of the split in degrees (0 = horizontal)"),
        _p("onset", 1.0, 0.0, 1.0, "drive from onsets"),
        _p("bass", 0.3, 0.0, 1.0, "drive from the bass level"),
        _p("base", 0.0, 0.0, 1.0, "constant drive, also in silence"),
    ), moves_with=("onset", "bass")),
    EffectSpec("kaleidoscope", "mirrored wedges around the centre, turning slowly; the bass twists them", (
        _p("segments", 6.0, 2.0, 24.0, "number of mirrored wedges (whole numbers)"),
        _p("spin", 0.02, -1.0, 1.0, "turns per second"),
        _p("bass", 0.25, 0.0, 1.0, "twist from the bass level, in wedge widths"),
        _p("mix", 1.0, 0.0, 1.0, "blend with the untouched picture"),
    ), moves_with=("spin", "bass")),
    EffectSpec("colour_grade", "saturation, contrast, brightness and hue; the beat swings the hue", (
        _p("saturation", 1.0, 0.0, 2.0, "0 = grey, 1 = unchanged"),
        _p("contrast", 1.0, 0.0, 2.0, "around mid grey; 1 = unchanged"),
        _p("brightness", 0.0, -0.5, 0.5, "added after contrast"),
        _p("hue", 0.0, -0.5, 0.5, "hue rotation in turns"),
        _p("hue_beat", 0.0, 0.0, 0.5, "hue swing on each beat, in turns"),
        _p("bass_saturation", 0.0, 0.0, 1.0, "extra saturation with the bass level"),
    ), moves_with=("hue_beat", "bass_saturation")),
)}


@dataclass(frozen=True)
class EffectConfig:
    """One effect in a chain. After `validate_effect_chain`, `params` holds every parameter."""

    name: str
    params: dict[str, float] = field(default_factory=dict)

    @property
    def spec(self) -> EffectSpec:
        return EFFECTS[self.name]

    @property
    def animated(self) -> bool:
        """It changes the picture over time even when no new frame comes (a redraw is needed)."""
        spec = self.spec
        return spec.feedback or any(self.params.get(p, spec.param(p).default) != 0.0 for p in spec.moves_with)


def effect_names() -> tuple[str, ...]:
    return tuple(sorted(EFFECTS))


def validate_effect(item: EffectConfig | Mapping[str, Any], where: str = "effect") -> EffectConfig:
    """Check one effect (an EffectConfig, or a preset table {name = ..., param = value, ...}).

    Returns an EffectConfig with the defaults filled in; raises UserError naming what is wrong.
    A table may also nest its parameters as {name = ..., params = {...}}.
    """
    if isinstance(item, EffectConfig):
        name, raw = item.name, dict(item.params)
    elif isinstance(item, Mapping):
        if "name" not in item:
            raise UserError(f"{where}: needs a name (one of {', '.join(effect_names())})")
        name = item["name"]
        raw = {k: v for k, v in item.items() if k not in ("name", "params")}
        nested = item.get("params")
        if nested is not None:
            if not isinstance(nested, Mapping):
                raise UserError(f"{where}: params must be a table of numbers")
            for k, v in nested.items():
                if k in raw:
                    raise UserError(f"{where}: parameter {k!r} is given twice")
                raw[k] = v
    else:
        raise UserError(f"{where}: expected a table like {{ name = \"trails\" }}, got {type(item).__name__}")
    if not isinstance(name, str) or name not in EFFECTS:
        hint = difflib.get_close_matches(str(name), list(EFFECTS), n=1)
        did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
        raise UserError(f"{where}: unknown effect {name!r} (known: {', '.join(effect_names())}){did_you_mean}")
    spec = EFFECTS[name]
    params = spec.defaults()
    for key, value in raw.items():
        p = spec.param(key)
        if p is None:
            hint = difflib.get_close_matches(str(key), [q.name for q in spec.params], n=1)
            did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
            raise UserError(f"{where} ({name}): unknown parameter {key!r} "
                            f"({name} takes {', '.join(q.name for q in spec.params)}){did_you_mean}")
        params[key] = p.rule.check(value, f"{where} ({name}): parameter {key!r}")
    return EffectConfig(name, params)


def validate_effect_chain(items: Iterable[EffectConfig | Mapping[str, Any]]) -> tuple[EffectConfig, ...]:
    """Check a whole chain (in order); returns it with defaults filled in."""
    if isinstance(items, (str, bytes, Mapping)):
        raise UserError("effects must be a list of tables, e.g. [{ name = \"trails\" }]")
    return tuple(validate_effect(item, f"effect {i + 1}") for i, item in enumerate(items))
