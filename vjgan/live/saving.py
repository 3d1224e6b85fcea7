"""Saving the running show as a new user preset (Ctrl+S, a pad, OSC), never over another.

A save never writes into the presets shipped with vjgan and never replaces a file: it picks the
first free name `<preset>-2`, `<preset>-3`... among both the shipped and the user's presets
(compared without case, as Windows and macOS file systems do), and writes it atomically into
`user_presets_dir()` through `config.save_preset` (temporary file, then rename; the text is read
back and validated before it replaces anything). Saves run on a short-lived thread because a
file system sync can take longer than a frame, and the main thread draws the output.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from ..config import Preset, available_presets, save_preset, user_presets_dir
from ..errors import UserError
from ..handover import LatestSlot
from ..resources import data_dir

# States of the output, not settings: a recalled preset must never come up black or frozen.
TRANSIENT_PARAMS = frozenset({"blackout", "freeze"})

_SUFFIX = re.compile(r"-\d+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_save_lock = threading.Lock()  # two quick Ctrl+S must not pick the same name


def name_base(name: str) -> str:
    """The part of a preset name new copies are numbered from: "drop-3" → "drop"; file-name safe."""
    base = _UNSAFE.sub("-", _SUFFIX.sub("", name.strip())).strip("-.")
    return base or "preset"


def next_free_name(base: str, taken: Iterable[str]) -> str:
    """`base-2`, `base-3`, ...: the first one not in `taken` (case-insensitive)."""
    used = {t.casefold() for t in taken}
    n = 2
    while f"{base}-{n}".casefold() in used:
        n += 1
    return f"{base}-{n}"


def preset_for_saving(current: Preset, name: str, values: Mapping[str, float],
                      midi: Optional[Sequence[Mapping[str, Any]]], model_override: Optional[str] = None) -> Preset:
    """`current` renamed, with `values` (output states left out) and the MIDI map (None: keep the
    preset's own). The model is written as an absolute path when it was relative to the
    original preset's folder or given on the command line, so the copy plays the same model."""
    if model_override:
        model = str(Path(model_override).expanduser().resolve())
    elif current.model and not Path(current.model).expanduser().is_absolute() and current.path is not None:
        model = str(current.model_path().resolve())
    else:
        model = current.model
    params = {k: float(v) for k, v in values.items() if k not in TRANSIENT_PARAMS}
    mappings = tuple(dict(m) for m in midi) if midi is not None else current.midi
    return replace(current, name=name, model=model, params=params, midi=mappings, path=None)


def save_new_preset(current: Preset, values: Mapping[str, float], midi: Optional[Sequence[Mapping[str, Any]]],
                    *, folder: Optional[Path] = None, model_override: Optional[str] = None) -> Path:
    """Write a new preset file and return its path (UserError if it cannot be written)."""
    folder = Path(folder) if folder is not None else user_presets_dir()
    shipped = data_dir("presets").resolve()
    if folder.resolve() == shipped:
        raise UserError(f"presets are never saved into vjgan's own folder {shipped}")
    with _save_lock:
        existing = {p.stem for p in folder.glob("*.toml")} if folder.is_dir() else set()
        name = next_free_name(name_base(current.name), set(available_presets()) | existing)
        path = folder / f"{name}.toml"
        try:
            save_preset(preset_for_saving(current, name, values, midi, model_override), path)
        except OSError as e:
            raise UserError(f"cannot save preset {path}: {e.strerror or e}") from None
    return path


def midi_mappings(midi: Any) -> Optional[list[dict[str, Any]]]:
    """The controller's mappings as plain dicts, or None without a controller."""
    if midi is None:
        return None
    for method in ("mappings_to_list", "mappings_as_dicts"):  # MidiController, or a wrapper around it
        fn = getattr(midi, method, None)
        if callable(fn):
            return [dict(m) for m in fn()]
    return None


@dataclass(frozen=True)
class SaveResult:
    path: Optional[Path]
    error: str = ""


class PresetSaver:
    """Saves on a background thread; the newest result waits in `results` for the main thread."""

    def __init__(self, save: Callable[..., Path] = save_new_preset) -> None:
        self._save = save
        self.results: LatestSlot[SaveResult] = LatestSlot()
        self._threads: list[threading.Thread] = []

    def save(self, current: Preset, values: Mapping[str, float], midi: Optional[Sequence[Mapping[str, Any]]],
             model_override: Optional[str] = None) -> None:
        values = dict(values)  # copies: the show goes on changing them
        midi = None if midi is None else [dict(m) for m in midi]

        def work() -> None:
            try:
                result = SaveResult(self._save(current, values, midi, model_override=model_override))
            except UserError as e:
                result = SaveResult(None, str(e))
            except Exception as e:  # a save must never take the show down
                result = SaveResult(None, f"cannot save the preset: {type(e).__name__}: {e}")
            self.results.publish(result)

        thread = threading.Thread(target=work, name="vjgan-preset-save", daemon=False)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def wait(self, timeout: float = 5.0) -> None:
        """Let running saves finish (at shutdown: a preset the user asked for is not lost)."""
        for t in list(self._threads):
            t.join(timeout)
