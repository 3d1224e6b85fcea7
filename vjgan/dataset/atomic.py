"""Atomic file replacement that keeps ordinary permissions.

`tempfile.mkstemp` creates files readable by their owner only (0600) and `mkdtemp` folders
0700; a finished file should get the usual mode (0666, 0777 for folders, less the umask) before
it is renamed into place.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_lock = threading.Lock()


def _umask() -> int:
    with _lock:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def publish(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Give `tmp` the default permissions and rename it to `path` (atomic on one filesystem)."""
    tmp, path = Path(tmp), Path(path)
    mode = (0o777 if tmp.is_dir() else 0o666) & ~_umask()
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path
