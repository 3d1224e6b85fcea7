"""Presets: TOML files holding a whole show setting, strictly validated, written atomically.

A preset names a model, the analysis bands, the routes from sound to latent space with their
gains, the keyframes, the display chain and the MIDI map. A bad file is reported as one line
naming the file, the key and the reason. Presets are written only on an explicit save; the
running state (knob positions, learned mappings) is autosaved to a separate file in the user's
data folder, so a crash loses nothing and a curated preset is never overwritten by accident.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from .atomic import atomic_write
from .audio.config import AnalysisConfig
from .errors import UserError
from .motion.config import MotionConfig
from .resources import data_dir
from .validation import Number, check_fields, number

TOP_LEVEL_KEYS = ("name", "description", "model", "quantize", "audio", "motion", "keyframes", "routes", "display",
                  "midi", "params")
QUANTIZE = ("off", "beat", "bar")  # a change to this preset lands as soon as it is ready, or on the next beat / bar
DEFAULT_PRESET = "default"


class PresetError(UserError):
    """A preset file that cannot be used; the message names the file, key and reason."""


@dataclass(frozen=True)
class DisplayConfig:
    """How frames reach the screen: geometry, post effects, safety."""

    fit: str = "fill"  # fit (letterbox), fill (crop) or stretch
    effects: tuple[dict[str, Any], ...] = ()  # chain of {name = "...", param = value, ...}
    # large full-frame luminance changes per second (photosensitivity)
    flash_limit_per_s: float = number(Number(0.1, 30.0, why="the limit can be raised, not removed"), 3.0)
    master: float = number(Number(0.0, 1.0), 1.0)

    def __post_init__(self) -> None:
        if self.fit not in ("fit", "fill", "stretch"):
            raise ValueError(f"fit must be fit, fill or stretch, not {self.fit!r}")
        check_fields(self, "", PresetError)
        for effect in self.effects:
            if not isinstance(effect, Mapping) or not isinstance(effect.get("name"), str):
                raise ValueError("each effect needs a name, e.g. { name = \"trails\" }")
        validator = _effect_validator()
        if validator is not None:
            validator(self.effects)

    def to_dict(self) -> dict[str, Any]:
        return {"fit": self.fit, "effects": [dict(e) for e in self.effects],
                "flash_limit_per_s": self.flash_limit_per_s, "master": self.master}


def _midi_validator():
    """vjgan.control's strict reader of MIDI maps (imported late: config sits below control)."""
    from .control.mapping import mappings_from_list

    return mappings_from_list


def _effect_validator():
    """The display package's own check of effect names and parameters, when it is installed."""
    try:
        from .display.effects import validate_effect_chain
    except ImportError:
        return None
    return validate_effect_chain


@dataclass(frozen=True)
class Preset:
    name: str
    description: str = ""
    model: str = ""  # "" = the embedded default model
    audio: AnalysisConfig = field(default_factory=AnalysisConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    midi: tuple[dict[str, Any], ...] = ()  # mappings, validated by vjgan.control when MIDI starts
    params: dict[str, float] = field(default_factory=dict)  # saved parameter values
    quantize: str = "off"  # a change to this preset waits for the next "beat" or "bar" (QUANTIZE)
    path: Path | None = None  # where it was read from (not stored)

    def model_path(self) -> Path:
        """The model file this preset plays, resolved relative to the preset's folder."""
        if not self.model:
            return default_model_path()
        p = Path(self.model).expanduser()
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p

    def to_dict(self) -> dict[str, Any]:
        m = self.motion.to_dict()
        out: dict[str, Any] = {"name": self.name, "description": self.description, "model": self.model,
                               "audio": self.audio.to_dict(), "motion": m["motion"], "keyframes": m["keyframes"],
                               "routes": m["routes"], "display": self.display.to_dict()}
        if self.midi:
            out["midi"] = {"mappings": [dict(x) for x in self.midi]}
        if self.params:
            out["params"] = dict(self.params)
        if self.quantize != "off":
            out["quantize"] = self.quantize
        return _drop_none(out)


def _drop_none(value: Any) -> Any:
    # TOML has no null: leave unset optional values out.
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value]
    return value


def default_model_path() -> Path:
    from .resources import data_file

    try:
        return data_file("models", "default.safetensors")
    except FileNotFoundError:
        raise UserError("vjgan's embedded default model (models/default.safetensors) is missing from this installation; "
                        "give a model with --model") from None


def preset_from_dict(data: Mapping[str, Any], source: str = "<preset>", path: Path | None = None) -> Preset:
    def fail(key: str, reason: str) -> PresetError:
        return PresetError(f"preset {source}: {key}: {reason}")

    unknown = [k for k in data if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise fail(unknown[0], f"unknown key (expected one of {', '.join(TOP_LEVEL_KEYS)})")
    for key in ("name", "description", "model", "quantize"):
        if key in data and not isinstance(data[key], str):
            raise fail(key, "expected text")
    if data.get("quantize", "off") not in QUANTIZE:
        raise fail("quantize", f"expected one of {', '.join(QUANTIZE)}")
    try:
        audio = AnalysisConfig.from_dict(data.get("audio") or {})
    except UserError as e:
        raise fail("audio", str(e)) from None
    try:
        routes = data.get("routes")
        if routes is not None and not isinstance(routes, list):
            raise UserError("expected an array of tables ([[routes]])")
        motion = MotionConfig.from_dict(data.get("motion"), data.get("keyframes"), routes)
    except UserError as e:
        raise fail("motion", str(e)) from None
    band_names = {b.name for b in audio.bands}
    for route in motion.routes:
        kind, _, band = route.source.partition(".")
        if kind in ("band", "onset") and band not in band_names:
            raise fail(f"routes.{route.name}", f"source {route.source!r} names a band this preset does not define "
                                               f"({', '.join(sorted(band_names))})")
    display_data = data.get("display") or {}
    if not isinstance(display_data, Mapping):
        raise fail("display", "expected a table")
    try:
        bad = [k for k in display_data if k not in ("fit", "effects", "flash_limit_per_s", "master")]
        if bad:
            raise ValueError(f"unknown key {bad[0]!r}")
        display = DisplayConfig(**{**display_data, "effects": tuple(display_data.get("effects", ()))})
    except (ValueError, TypeError, UserError) as e:
        raise fail("display", str(e)) from None
    midi = data.get("midi", [])
    if isinstance(midi, Mapping) and set(midi) <= {"mappings"}:  # [[midi.mappings]], as docs/midi.md writes it
        midi = midi.get("mappings", [])
    if not isinstance(midi, list) or not all(isinstance(m, Mapping) for m in midi):
        raise fail("midi", "expected an array of tables ([[midi.mappings]])")
    params = data.get("params", {})
    if not isinstance(params, Mapping):
        raise fail("params", "expected a table of numbers")
    for key, value in params.items():  # each parameter's own range applies when it is set (ParamStore clamps)
        problem = Number().problem(value)
        if problem is not None:
            raise fail(f"params.{key}", problem)
    try:
        _midi_validator()(midi, "mappings")
    except UserError as e:
        raise fail("midi", str(e)) from None
    return Preset(name=data.get("name") or (path.stem if path else "untitled"), description=data.get("description", ""),
                  model=data.get("model", ""), audio=audio, motion=motion, display=display,
                  midi=tuple(dict(m) for m in midi), params={k: float(v) for k, v in params.items()},
                  quantize=data.get("quantize", "off"), path=path)


def load_preset(name_or_path: str | os.PathLike[str]) -> Preset:
    """A preset by file path, or by the name of one shipped with vjgan (e.g. 'default')."""
    path = resolve_preset(name_or_path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise PresetError(f"preset {path}: cannot be read ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise PresetError(f"preset {path}: not valid TOML ({e})") from None
    return preset_from_dict(data, str(path), path)


def resolve_preset(name_or_path: str | os.PathLike[str]) -> Path:
    p = Path(name_or_path).expanduser()
    if p.suffix == ".toml" or p.exists() or os.sep in str(name_or_path):
        if not p.is_file():
            raise PresetError(f"preset {p}: no such file")
        return p
    for folder in (user_presets_dir(), data_dir("presets")):
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    raise PresetError(f"no preset named {str(name_or_path)!r} (available: {', '.join(available_presets()) or 'none'})")


def user_presets_dir() -> Path:
    from .paths import data_dir as user_data

    return user_data() / "presets"


def available_presets() -> list[str]:
    names = set()
    for folder in (data_dir("presets"), user_presets_dir()):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.toml"))
    return sorted(names)


def save_preset(preset: Preset, path: str | os.PathLike[str]) -> Path:
    """Explicit save: TOML, atomically."""
    path = Path(path)
    text = tomli_w.dumps(preset.to_dict())
    preset_from_dict(tomllib.loads(text), str(path), path)  # never write what we could not read back
    atomic_write(path, text, make_folder=True)
    return path
