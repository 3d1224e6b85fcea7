"""The one way vjgan writes a user's file: all of the new content or none of it.

Guarantee: after `atomic_write` (or leaving `atomic_output` without an exception) returns, the
file holds exactly the new bytes, and that survives a power cut: the data is fsynced before the
rename, and the folder after it (a rename is only durable once its directory entry is). If
anything fails on the way, the old file is untouched and the temporary file is removed.

Mode: a file that existed keeps its mode (a preset a user made read-only for the group stays
so); a new file gets the usual 0666 less the umask. `tempfile.mkstemp` alone would leave 0600,
which hid videos and presets from other accounts and from sharing.

Temporary files are named `.<name>.<random>.tmp` beside the target, so `remove_stale_temporaries`
can clear what a killed process left behind without touching anything else.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Iterator

_umask_lock = threading.Lock()
TMP_SUFFIX = ".tmp"


def current_umask() -> int:
    with _umask_lock:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_mode(is_dir: bool = False) -> int:
    return (0o777 if is_dir else 0o666) & ~current_umask()


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable. Not possible (nor needed) on Windows."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary_beside(path: Path) -> tuple[int, Path]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    return fd, Path(tmp)


def _target_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return default_mode()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, make_folder: bool = False) -> Iterator[BinaryIO]:
    """Write `path` through a binary file object; the file appears (or is replaced) on success only.

    The folder must exist unless `make_folder`: silently creating a mistyped output folder hides
    the typo (and vjgan's commands say so in one line instead).
    """
    path = Path(path)
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise FileNotFoundError(f"no folder {path.parent}")
    mode = _target_mode(path)
    fd, tmp = _temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_folder(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, make_folder: bool = False) -> Path:
    """Write bytes (or UTF-8 text) to `path` atomically and durably; returns the path."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_output(path, make_folder=make_folder) as f:
        f.write(payload)
    return Path(path)


def publish(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Rename a finished temporary file or folder into place with the usual mode (made elsewhere,
    e.g. by an encoder that needs a file name): fsync it, chmod, rename, fsync the folder."""
    tmp, path = Path(tmp), Path(path)
    is_dir = tmp.is_dir()
    if not is_dir:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.chmod(tmp, _target_mode(path) if not is_dir else default_mode(True))
    os.replace(tmp, path)
    fsync_folder(path.parent)
    return path


def remove_stale_temporaries(folder: str | os.PathLike[str], name: str) -> int:
    """Delete `.<name>.*.tmp` files a killed process left in `folder`; returns how many."""
    folder = Path(folder)
    removed = 0
    if not folder.is_dir():
        return 0
    for stale in folder.glob(f".{name}.*{TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            stale.unlink()
            removed += 1
    return removed
