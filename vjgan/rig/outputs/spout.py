"""Spout out on Windows (`--spout NAME`, extra `spout`: SpoutGL).

Spout shares a GL texture through DirectX, so it needs an OpenGL context on the thread that
sends: the sender thread makes its own hidden one (moderngl's standalone context, which on
Windows is a hidden window of that thread) and hands Spout each picture's pixels. Not testable on
Linux: kept to the sender interface that the NDI test exercises. See docs/outputs.md.
"""

from __future__ import annotations

import sys
from typing import Any

from ..grab import Picture
from . import AudioChunk, OutputKind, OutputUnavailable

INSTALL = "pip install 'vjgan[spout]'"
GL_RGBA = 0x1908


def _library() -> Any:
    if sys.platform != "win32":
        raise OutputUnavailable("--spout: Spout exists only on Windows (NDI works everywhere: --ndi NAME)")
    try:
        import SpoutGL  # noqa: N813 - the library's own name
    except ImportError:
        raise OutputUnavailable(f"--spout: Spout needs SpoutGL ({INSTALL})") from None
    return SpoutGL


def probe() -> str:
    try:
        _library()
    except OutputUnavailable as e:
        return str(e).removeprefix("--spout: ")
    return ""


class SpoutSink:
    takes_audio = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.label = f"Spout {name}"
        self._sender: Any = None
        self._ctx: Any = None

    def open(self) -> None:
        import moderngl

        spout = _library()
        self._ctx = moderngl.create_context(standalone=True)  # current on this thread, for Spout
        self._sender = spout.SpoutSender()
        self._sender.setSenderName(self.name)

    def send_picture(self, picture: Picture) -> None:
        w, h = picture.size
        # Spout takes GL's row order (bottom first) as it is: no flip, no copy.
        self._sender.sendImage(picture.pixels, w, h, GL_RGBA, False, 0)

    def send_audio(self, chunk: AudioChunk) -> None:
        pass  # Spout carries pictures only

    def status(self) -> str:
        return ""

    def close(self) -> None:
        if self._sender is not None:
            self._sender.releaseSender()
            self._sender = None
        if self._ctx is not None:
            self._ctx.release()
            self._ctx = None


KIND = OutputKind("Spout", "--spout NAME", "win32", "spout", SpoutSink, probe)
