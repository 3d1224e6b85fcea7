"""NDI out (`--ndi NAME`, extra `ndi`: ndi-python, whose wheels carry NDI's runtime).

Pictures go out as RGBX at the output's resolution; the show's audio as a 32-bit float stream
(the analysed mono signal on both channels). Both carry timecodes on one clock (perf_counter, in
NDI's 100 ns units), so a receiver can line them up. Sending is synchronous on the sender's own
thread (NDI compresses there); NDI's own clocking is off, since the show sets the pace.
A receiver may connect directly to `HOST:5961` (the first sender's port) without discovery.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..grab import Picture
from . import AudioChunk, OutputKind, OutputUnavailable

INSTALL = "pip install 'vjgan[ndi]'"
TICKS_PER_S = 10_000_000  # NDI timecodes count 100 ns


def _library() -> Any:
    try:
        import NDIlib  # noqa: N813 - the library's own name
    except ImportError:
        raise OutputUnavailable(f"--ndi: NDI needs ndi-python ({INSTALL})") from None
    except OSError as e:  # the runtime inside the wheel could not load
        raise OutputUnavailable(f"--ndi: NDI's runtime does not load here ({e})") from None
    return NDIlib


def probe() -> str:
    try:
        ndi = _library()
    except OutputUnavailable as e:
        return str(e).removeprefix("--ndi: ")
    if not ndi.is_supported_CPU():
        return "this CPU lacks what NDI's runtime needs (SSE4.2)"
    return ""


class NdiSink:
    takes_audio = True

    def __init__(self, name: str) -> None:
        if not name.strip():
            raise OutputUnavailable("--ndi: give the source a name (e.g. --ndi vjgan)")
        self.name = name
        self.label = f"NDI {name}"
        self._ndi: Any = None
        self._sender: Any = None
        self._video: Any = None

    def open(self) -> None:
        ndi = self._ndi = _library()
        if not ndi.initialize():
            raise OutputUnavailable("--ndi: NDI's runtime would not start on this machine")
        self._sender = ndi.send_create(ndi.SendCreate(self.name, clock_video=False, clock_audio=False))
        if self._sender is None:
            ndi.destroy()
            raise OutputUnavailable(f"--ndi {self.name}: NDI could not create the sender")
        self._video = ndi.VideoFrameV2()
        self._video.FourCC = ndi.FOURCC_VIDEO_TYPE_RGBX

    def send_picture(self, picture: Picture) -> None:
        rows = picture.rows_top_first()
        v = self._video
        v.xres, v.yres = picture.size
        v.frame_rate_N, v.frame_rate_D = 60, 1  # nominal: the show sends when it has a new picture
        v.line_stride_in_bytes = rows.shape[1] * 4
        v.timecode = int(picture.t * TICKS_PER_S)
        v.data = rows
        self._ndi.send_send_video_v2(self._sender, v)

    def send_audio(self, chunk: AudioChunk) -> None:
        ndi = self._ndi
        n = len(chunk.samples)
        frame = ndi.AudioFrameV2(chunk.rate, 2, n)
        frame.data = np.ascontiguousarray(np.broadcast_to(chunk.samples.astype(np.float32), (2, n)))
        frame.channel_stride_in_bytes = n * 4
        frame.timecode = int(chunk.t_start * TICKS_PER_S)
        ndi.send_send_audio_v2(self._sender, frame)

    def status(self) -> str:
        if self._sender is None:
            return ""
        n = self._ndi.send_get_no_connections(self._sender, 0)
        return f"{n} receiver{'' if n == 1 else 's'}"

    def close(self) -> None:
        if self._sender is not None:
            self._ndi.send_destroy(self._sender)
            self._sender = None
            self._ndi.destroy()


KIND = OutputKind("NDI", "--ndi NAME", "any", "ndi", NdiSink, probe)
