"""A private X server (Xvfb) for tests that open windows, and reading back what it shows."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from vjgan.display import glfw_session

SCREEN = (640, 360)


def _die_with_parent() -> None:
    # If the test process dies without its teardown (an X error makes Xlib call exit()), the
    # kernel stops the server too, so no Xvfb is left behind (Linux; Xvfb exists nowhere else).
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _start_xvfb(exe: str, fbdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    # Like `xvfb-run -a`: take the first display number with no server (socket or lock file),
    # and move on if another process wins the race for it.
    for number in range(99, 200):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        proc = subprocess.Popen([exe, f":{number}", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                                 "-fbdir", str(fbdir), "-nolisten", "tcp", "-noreset"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20.0
        while proc.poll() is None and time.monotonic() < deadline:
            if Path(f"/tmp/.X11-unix/X{number}").exists() and (fbdir / "Xvfb_screen0").exists():
                return proc, number
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        log = proc.communicate(timeout=10)[1].decode(errors="replace")
        if "server already active" not in log and "Cannot establish any listening sockets" not in log:
            pytest.fail(f"Xvfb :{number} did not start: {log[-500:]}")
    pytest.fail("no free X display number between :99 and :199")


@pytest.fixture(scope="module")
def xvfb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private X server on a free display number; yields the XWD file of its screen."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb is not installed (Debian: xvfb)")
    fbdir = tmp_path_factory.mktemp("xvfb")
    proc, number = _start_xvfb(exe, fbdir)
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY")}
    os.environ["DISPLAY"] = f":{number}"
    os.environ.pop("WAYLAND_DISPLAY", None)
    try:
        yield fbdir / "Xvfb_screen0"
    finally:
        glfw_session.terminate()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_screen(xwd: Path) -> np.ndarray:
    """The X screen as RGB [H, W, 3], from Xvfb's XWD framebuffer file (32-bit TrueColor)."""
    raw = xwd.read_bytes()
    header = struct.unpack(">25I", raw[:100])
    header_size, width, height = header[0], header[4], header[5]
    bits_per_pixel, bytes_per_line, ncolors = header[11], header[12], header[19]
    assert bits_per_pixel == 32, f"unexpected XWD pixel format ({bits_per_pixel} bits)"
    offset = header_size + ncolors * 12
    rows = np.frombuffer(raw, np.uint8, count=bytes_per_line * height, offset=offset).reshape(height, bytes_per_line)
    bgrx = rows[:, : width * 4].reshape(height, width, 4)
    return bgrx[..., 2::-1]


