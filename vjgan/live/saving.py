"""Saving the running show as a new user preset (Ctrl+S, a pad, OSC, the console), never over another.

A save never writes into the presets shipped with vjgan and never replaces a file: it takes the
name it was given, if no preset has it, or else picks the first free name `<preset>-2`,
`<preset>-3`... among both the shipped and the user's presets (compared without case, as
Windows and macOS file systems do), and writes it atomically into
`user_presets_dir()` through `config.save_preset` (temporary file, then rename; the text is read
back and validated before it replaces anything). Renaming one of the user's presets writes the
new file first and only then removes the old one, so a failure leaves the preset where it was.
Saves and renames run on a short-lived thread because a file system sync can take longer than
a frame, and the main thread draws the output.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from ..config import Preset, available_presets, load_preset, save_preset, user_presets_dir
from ..errors import UserError
from ..handover import LatestSlot
from ..resources import data_dir

# States of the output, not settings: a recalled preset must never come up black or frozen.
TRANSIENT_PARAMS = frozenset({"blackout", "freeze"})

_SUFFIX = re.compile(r"-\d+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_GIVEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
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


def check_new_name(name: str, taken: Iterable[str]) -> str:
    """A name given for a new preset: usable as a file name and free (case-insensitive)."""
    name = name.strip()
    if not _GIVEN_NAME.fullmatch(name) or len(name) > 80:
        raise UserError(f"preset name {name!r}: use letters, digits, '.', '-' and '_' (at most 80)")
    if name.casefold() in {t.casefold() for t in taken}:
        raise UserError(f"a preset named {name} exists; a save never replaces one (pick another name)")
    return name


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


def _user_folder(folder: Optional[Path]) -> Path:
    folder = Path(folder) if folder is not None else user_presets_dir()
    shipped = data_dir("presets").resolve()
    if folder.resolve() == shipped:
        raise UserError(f"presets are never saved into vjgan's own folder {shipped}")
    return folder


def _taken(folder: Path) -> set[str]:
    existing = {p.stem for p in folder.glob("*.toml")} if folder.is_dir() else set()
    return set(available_presets()) | existing


def save_new_preset(current: Preset, values: Mapping[str, float], midi: Optional[Sequence[Mapping[str, Any]]],
                    *, folder: Optional[Path] = None, model_override: Optional[str] = None,
                    name: Optional[str] = None) -> Path:
    """Write a new preset file and return its path (UserError if it cannot be written).
    `name`: the new preset's name (refused if a preset has it); None: the next free number."""
    folder = _user_folder(folder)
    with _save_lock:
        taken = _taken(folder)
        name = check_new_name(name, taken) if name is not None else next_free_name(name_base(current.name), taken)
        path = folder / f"{name}.toml"
        try:
            save_preset(preset_for_saving(current, name, values, midi, model_override), path)
        except OSError as e:
            raise UserError(f"cannot save preset {path}: {e.strerror or e}") from None
    return path


def rename_user_preset(old: str, new: str, *, folder: Optional[Path] = None) -> Path:
    """Rename the user's preset `old` to `new` (a free name); returns the new file's path."""
    folder = _user_folder(folder)
    with _save_lock:
        old_path = next((p for p in folder.glob("*.toml") if p.stem == old), None) if folder.is_dir() else None
        if old_path is None:
            if old in available_presets():
                raise UserError(f"preset {old} is one of vjgan's own and keeps its name; save a copy and rename that")
            raise UserError(f"no preset of yours is named {old!r}")
        if new.strip().casefold() == old.casefold():
            raise UserError(f"preset {old} already has that name")
        new = check_new_name(new, _taken(folder))
        preset = load_preset(old_path)
        path = folder / f"{new}.toml"
        try:
            save_preset(replace(preset, name=new, path=None), path)
            old_path.unlink()  # only once the new file is safely written
        except OSError as e:
            raise UserError(f"cannot rename preset {old} to {new}: {e.strerror or e}") from None
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
    renamed_from: Optional[str] = None  # a rename: the preset's old name


class PresetSaver:
    """Saves on a background thread; the newest result waits in `results` for the main thread."""

    def __init__(self, save: Callable[..., Path] = save_new_preset,
                 rename: Callable[[str, str], Path] = rename_user_preset) -> None:
        self._save = save
        self._rename = rename
        self.results: LatestSlot[SaveResult] = LatestSlot()
        self._threads: list[threading.Thread] = []

    def save(self, current: Preset, values: Mapping[str, float], midi: Optional[Sequence[Mapping[str, Any]]],
             model_override: Optional[str] = None, name: Optional[str] = None) -> None:
        values = dict(values)  # copies: the show goes on changing them
        midi = None if midi is None else [dict(m) for m in midi]
        extra = {} if name is None else {"name": name}
        self._in_background(lambda: SaveResult(self._save(current, values, midi, model_override=model_override,
                                                           **extra)), "save the preset")

    def rename(self, old: str, new: str) -> None:
        self._in_background(lambda: SaveResult(self._rename(old, new), renamed_from=old), f"rename preset {old}")

    def _in_background(self, work: Callable[[], SaveResult], what: str) -> None:
        def run() -> None:
            try:
                result = work()
            except UserError as e:
                result = SaveResult(None, str(e))
            except Exception as e:  # a save must never take the show down
                result = SaveResult(None, f"cannot {what}: {type(e).__name__}: {e}")
            self.results.publish(result)

        thread = threading.Thread(target=run, name="vjgan-preset-save", daemon=False)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def wait(self, timeout: float = 5.0) -> None:
        """Let running saves finish (at shutdown: a preset the user asked for is not lost)."""
        for t in list(self._threads):
            t.join(timeout)
