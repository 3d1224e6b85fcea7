"""A v4l2loopback camera on Linux (`--v4l2 /dev/videoN`, extra `v4l2`: pyvirtualcam).

OBS, browsers and video-call software read it as a webcam. The kernel module must be loaded
first (`sudo modprobe v4l2loopback exclusive_caps=1`); without it the device does not exist and
one line says so. Sent as RGB from the sender's own thread. Not testable where the module cannot
be loaded (CI's machines): kept to the sender interface that the NDI test exercises.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..grab import Picture
from . import AudioChunk, OutputKind, OutputUnavailable

INSTALL = "pip install 'vjgan[v4l2]'"


def _library() -> Any:
    if not sys.platform.startswith("linux"):
        raise OutputUnavailable("--v4l2: v4l2loopback exists only on Linux (NDI works everywhere: --ndi NAME)")
    try:
        import pyvirtualcam
    except ImportError:
        raise OutputUnavailable(f"--v4l2: a v4l2loopback camera needs pyvirtualcam ({INSTALL})") from None
    return pyvirtualcam


def loopback_devices() -> list[str]:
    """The v4l2loopback devices present (their driver names itself in sysfs)."""
    found = []
    for name in sorted(Path("/sys/class/video4linux").glob("video*")):
        try:
            if "loopback" in (name / "name").read_text().lower() or (name / "device" / "driver").resolve().name == "v4l2_loopback":
                found.append(f"/dev/{name.name}")
        except OSError:
            continue
    return found


def probe() -> str:
    try:
        _library()
    except OutputUnavailable as e:
        return str(e).removeprefix("--v4l2: ")
    if not loopback_devices():
        return "no v4l2loopback device (sudo modprobe v4l2loopback exclusive_caps=1)"
    return ""


class V4l2Sink:
    takes_audio = False

    def __init__(self, device: str) -> None:
        self.device = device
        self.label = f"v4l2 {device}"
        self._cam: Any = None
        self._size = (0, 0)

    def open(self) -> None:
        _library()
        if not Path(self.device).exists():
            raise OutputUnavailable(f"--v4l2 {self.device}: no such device (sudo modprobe v4l2loopback)")

    def send_picture(self, picture: Picture) -> None:
        if picture.size != self._size:  # the camera's format follows the output's size
            self.close()
            pyvirtualcam = _library()
            w, h = picture.size
            self._cam = pyvirtualcam.Camera(w, h, 60, fmt=pyvirtualcam.PixelFormat.RGB, device=self.device,
                                            backend="v4l2loopback")
            self._size = picture.size
        self._cam.send(np.ascontiguousarray(picture.rows_top_first()[..., :3]))

    def send_audio(self, chunk: AudioChunk) -> None:
        pass  # a camera carries pictures only

    def status(self) -> str:
        return ""

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None
            self._size = (0, 0)


KIND = OutputKind("v4l2loopback", "--v4l2 /dev/videoN", "linux", "v4l2", V4l2Sink, probe)
