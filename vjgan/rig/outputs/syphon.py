"""Syphon out on macOS (`--syphon NAME`, extra `syphon`: syphon-python, MIT, macOS 11+).

A Metal server: each picture is copied into a Metal texture and published, from the sender's own
thread (Metal needs no GL context there). Not testable on Linux: kept to the sender interface
that the NDI test exercises. See docs/outputs.md.
"""

from __future__ import annotations

import sys
from typing import Any

from ..grab import Picture
from . import AudioChunk, OutputKind, OutputUnavailable

INSTALL = "pip install 'vjgan[syphon]'"


def _library() -> Any:
    if sys.platform != "darwin":
        raise OutputUnavailable("--syphon: Syphon exists only on macOS (NDI works everywhere: --ndi NAME)")
    try:
        import syphon
        from syphon.utils.numpy import copy_image_to_mtl_texture
        from syphon.utils.raw import create_mtl_texture
    except ImportError:
        raise OutputUnavailable(f"--syphon: Syphon needs syphon-python ({INSTALL})") from None
    return syphon, copy_image_to_mtl_texture, create_mtl_texture


def probe() -> str:
    try:
        _library()
    except OutputUnavailable as e:
        return str(e).removeprefix("--syphon: ")
    return ""


class SyphonSink:
    takes_audio = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.label = f"Syphon {name}"
        self._server: Any = None
        self._texture: Any = None
        self._size = (0, 0)

    def open(self) -> None:
        syphon, self._copy, self._create = _library()
        self._server = syphon.SyphonMetalServer(self.name)

    def send_picture(self, picture: Picture) -> None:
        if picture.size != self._size:
            self._texture = self._create(self._server.device, *picture.size)
            self._size = picture.size
        self._copy(picture.rows_top_first(), self._texture)
        self._server.publish_frame_texture(self._texture)

    def send_audio(self, chunk: AudioChunk) -> None:
        pass  # Syphon carries pictures only

    def status(self) -> str:
        return ""

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


KIND = OutputKind("Syphon", "--syphon NAME", "darwin", "syphon", SyphonSink, probe)
