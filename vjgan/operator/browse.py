"""The model picker's two halves that are not drawing: a folder listing, and the `vjgan info`
summary of a chosen file, read on a thread of its own.

Reading a model to describe it takes from milliseconds (vjgan's .safetensors) to seconds (a large
pickle, read safely), so it never runs on the main thread: `ModelSummaries.request(path)` starts
the read and `latest()` gives the newest result when it is there. Only the newest request counts;
a read that finishes after a newer request is dropped. The model read here is freed at once:
`SwitchModel` loads it again in the scene builder, which is where playing models live.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..errors import UserError
from ..handover import LatestSlot

MODEL_SUFFIXES = (".pkl", ".pt", ".pth", ".safetensors")  # what `vjgan info` reads (models/README.md)


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    path: Path
    folder: bool


def list_folder(folder: Path, suffixes: tuple[str, ...] = MODEL_SUFFIXES) -> tuple[tuple[Entry, ...], str]:
    """Sub-folders, then model files, each alphabetical (hidden ones left out); and an error line
    ("" when the folder could be read)."""
    try:
        children = list(Path(folder).iterdir())
    except OSError as e:
        return (), f"cannot read folder {folder}: {e.strerror or e}"
    folders, files = [], []
    for p in children:
        if p.name.startswith("."):
            continue
        try:
            if p.is_dir():
                folders.append(Entry(p.name, p, True))
            elif p.suffix.lower() in suffixes and p.is_file():
                files.append(Entry(p.name, p, False))
        except OSError:  # a broken link, a file that went away: not listed
            continue
    key = lambda e: e.name.casefold()  # noqa: E731
    return tuple(sorted(folders, key=key) + sorted(files, key=key)), ""


@dataclass(frozen=True)
class ModelSummary:
    path: str
    rows: tuple[tuple[str, str], ...] = ()  # `vjgan info`'s lines
    error: str = ""


def describe_model(path: str) -> tuple[tuple[str, str], ...]:
    """`vjgan info`'s summary of a model file (read safely: no code from it runs)."""
    from ..gan.load import describe, load_generator

    return tuple(describe(load_generator(path)))


class ModelSummaries:
    """`vjgan info` for the file the operator picked, read in the background."""

    def __init__(self, describe: Callable[[str], tuple[tuple[str, str], ...]] = describe_model) -> None:
        self._describe = describe
        self._results: LatestSlot[ModelSummary] = LatestSlot()
        self._asked: Optional[str] = None
        self._lock = threading.Lock()

    def request(self, path: str) -> None:
        with self._lock:
            if path == self._asked:
                return
            self._asked = path
        threading.Thread(target=self._read, args=(path,), name="vjgan-model-info", daemon=True).start()

    def _read(self, path: str) -> None:
        try:
            summary = ModelSummary(path, self._describe(path))
        except UserError as e:
            summary = ModelSummary(path, error=str(e))
        except Exception as e:  # a file we cannot read is a line in the picker, never a crash
            summary = ModelSummary(path, error=f"cannot read {path}: {type(e).__name__}: {e}")
        with self._lock:
            if path == self._asked:  # only the newest request is shown
                self._results.publish(summary)

    @property
    def asked(self) -> Optional[str]:
        return self._asked

    def latest(self) -> Optional[ModelSummary]:
        """The summary of the newest request, once it is read (None while it is being read)."""
        summary = self._results.latest()
        return summary if summary is not None and summary.path == self._asked else None
