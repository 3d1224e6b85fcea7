"""A private X server (Xvfb) for tests that open windows: reading back what it shows, typing keys
and clicking through XTEST, finding windows by title, and a test picture."""

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
WIDE_SCREEN = (1280, 720)  # room for the operator console beside a small output


def _die_with_parent() -> None:
    # If the test process dies without its teardown (an X error makes Xlib call exit()), the
    # kernel stops the server too, so no Xvfb is left behind (Linux; Xvfb exists nowhere else).
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _start_xvfb(exe: str, fbdir: Path, size: tuple[int, int]) -> tuple[subprocess.Popen[bytes], int]:
    # Like `xvfb-run -a`: take the first display number with no server (socket or lock file),
    # and move on if another process wins the race for it.
    for number in range(99, 200):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        proc = subprocess.Popen([exe, f":{number}", "-screen", "0", f"{size[0]}x{size[1]}x24",
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
    yield from _private_x_server(tmp_path_factory, SCREEN)


@pytest.fixture(scope="module")
def xvfb_wide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The same with a WIDE_SCREEN (the operator console's tests)."""
    yield from _private_x_server(tmp_path_factory, WIDE_SCREEN)


def _private_x_server(tmp_path_factory: pytest.TempPathFactory, size: tuple[int, int]) -> Iterator[Path]:
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb is not installed (Debian: xvfb)")
    fbdir = tmp_path_factory.mktemp("xvfb")
    proc, number = _start_xvfb(exe, fbdir, size)
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


# --- X input and window queries --------------------------------------------------------------------

class XWindowAttributes(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int),
                ("border_width", ctypes.c_int), ("depth", ctypes.c_int), ("visual", ctypes.c_void_p),
                ("root", ctypes.c_ulong), ("class_", ctypes.c_int), ("bit_gravity", ctypes.c_int),
                ("win_gravity", ctypes.c_int), ("backing_store", ctypes.c_int), ("backing_planes", ctypes.c_ulong),
                ("backing_pixel", ctypes.c_ulong), ("save_under", ctypes.c_int), ("colormap", ctypes.c_ulong),
                ("map_installed", ctypes.c_int), ("map_state", ctypes.c_int), ("all_event_masks", ctypes.c_long),
                ("your_event_mask", ctypes.c_long), ("do_not_propagate_mask", ctypes.c_long),
                ("override_redirect", ctypes.c_int), ("screen", ctypes.c_void_p)]


IS_VIEWABLE = 2


class XInput:
    """Keys and clicks through XTEST, the close button's message, and top-level windows by title."""

    def __init__(self) -> None:
        x11_path, xtst_path = ctypes.util.find_library("X11"), ctypes.util.find_library("Xtst")
        if x11_path is None or xtst_path is None:
            pytest.skip("libX11/libXtst are not installed (Debian: libx11-6 libxtst6)")
        x11, xtst = self.x11, self.xtst = ctypes.CDLL(x11_path), ctypes.CDLL(xtst_path)
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XStringToKeysym.restype = ctypes.c_ulong
        x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        x11.XFlush.argtypes = [ctypes.c_void_p]
        x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        x11.XInternAtom.restype = ctypes.c_ulong
        x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        x11.XDefaultRootWindow.restype = ctypes.c_ulong
        x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x11.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong),
                                   ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
                                   ctypes.POINTER(ctypes.c_uint)]
        x11.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_char_p)]
        x11.XFree.argtypes = [ctypes.c_void_p]
        x11.XGetWindowAttributes.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(XWindowAttributes)]
        xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
        xtst.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_ulong]
        xtst.XTestFakeButtonEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
        self.display = x11.XOpenDisplay(None)
        assert self.display, "cannot open the X display"

    def _code(self, keysym: str) -> int:
        code = self.x11.XKeysymToKeycode(self.display, self.x11.XStringToKeysym(keysym.encode()))
        assert code, f"no keycode for {keysym}"
        return code

    def press(self, keysym: str, *modifiers: str) -> None:
        held = [self._code(m) for m in modifiers]
        for code in held:
            self.xtst.XTestFakeKeyEvent(self.display, code, True, 0)
        code = self._code(keysym)
        self.xtst.XTestFakeKeyEvent(self.display, code, True, 0)
        self.xtst.XTestFakeKeyEvent(self.display, code, False, 0)
        for code in reversed(held):
            self.xtst.XTestFakeKeyEvent(self.display, code, False, 0)
        self.x11.XFlush(self.display)
        # glfw drops a key press stamped with the same server millisecond as the previous press
        # of that key (its filter for input-method duplicates): space quick presses apart.
        time.sleep(0.01)

    def click(self, x: float, y: float) -> None:
        self.xtst.XTestFakeMotionEvent(self.display, -1, int(x), int(y), 0)
        self.xtst.XTestFakeButtonEvent(self.display, 1, True, 0)
        self.xtst.XTestFakeButtonEvent(self.display, 1, False, 0)
        self.x11.XFlush(self.display)

    def move(self, x: float, y: float) -> None:
        self.xtst.XTestFakeMotionEvent(self.display, -1, int(x), int(y), 0)
        self.x11.XFlush(self.display)

    def button(self, down: bool, number: int = 1) -> None:
        """Press (or release) a mouse button where the pointer is: drags are made of these and moves."""
        self.xtst.XTestFakeButtonEvent(self.display, number, down, 0)
        self.x11.XFlush(self.display)

    def key(self, keysym: str, down: bool) -> None:
        """Hold (or let go of) one key, e.g. a modifier during a drag."""
        self.xtst.XTestFakeKeyEvent(self.display, self._code(keysym), down, 0)
        self.x11.XFlush(self.display)

    def close_window(self, xid: int) -> None:
        """What a window manager sends when the close button is clicked (WM_DELETE_WINDOW)."""

        class ClientMessage(ctypes.Structure):
            _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                        ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                        ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

        class XEvent(ctypes.Union):
            _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

        event = XEvent()
        event.xclient.type = 33  # ClientMessage
        event.xclient.window = xid
        event.xclient.message_type = self.x11.XInternAtom(self.display, b"WM_PROTOCOLS", False)
        event.xclient.format = 32
        event.xclient.data[0] = self.x11.XInternAtom(self.display, b"WM_DELETE_WINDOW", False)
        self.x11.XSendEvent(self.display, xid, False, 0, ctypes.byref(event))
        self.x11.XFlush(self.display)

    def windows(self) -> dict[str, int]:
        """Top-level windows by title (no window manager: they are the root's children)."""
        root, parent = ctypes.c_ulong(), ctypes.c_ulong()
        children = ctypes.POINTER(ctypes.c_ulong)()
        n = ctypes.c_uint()
        self.x11.XSync(self.display, False)
        if not self.x11.XQueryTree(self.display, self.x11.XDefaultRootWindow(self.display), ctypes.byref(root),
                                   ctypes.byref(parent), ctypes.byref(children), ctypes.byref(n)):
            return {}
        found = {}
        for i in range(n.value):
            name = ctypes.c_char_p()
            if self.x11.XFetchName(self.display, children[i], ctypes.byref(name)) and name.value is not None:
                found[name.value.decode("utf-8", "replace")] = int(children[i])
                self.x11.XFree(name)
        if children:
            self.x11.XFree(children)
        return found

    def attributes(self, xid: int) -> XWindowAttributes:
        attrs = XWindowAttributes()
        assert self.x11.XGetWindowAttributes(self.display, xid, ctypes.byref(attrs))
        return attrs

    def close(self) -> None:
        self.x11.XCloseDisplay(self.display)


def quadrants(size: int = 64) -> np.ndarray:
    px = np.zeros((size, size, 4), np.uint8)
    h = size // 2
    px[:h, :h] = (255, 0, 0, 255)
    px[:h, h:] = (0, 255, 0, 255)
    px[h:, :h] = (0, 0, 255, 255)
    px[h:, h:] = (255, 255, 255, 255)
    return px
