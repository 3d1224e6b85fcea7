"""Video outputs to the rest of the rig, all behind one sender interface.

An output (`Sink`) is opened, sent pictures (and, if it takes sound, the show's audio) and closed,
all on its own supervised thread (`SenderThread`). The main loop only offers the newest picture:
if the thread has not taken the previous one yet, that one is dropped and counted, so a slow
receiver or encoder costs frames, never the show's refresh. Audio chunks queue in a bounded
deque (the oldest go, counted, if the sender falls more than a few seconds behind).

Outputs: NDI (`ndi.py`, every platform), Syphon (`syphon.py`, macOS), Spout (`spout.py`, Windows),
a v4l2loopback camera (`v4l2.py`, Linux). Each is an optional extra whose library is imported
only when asked for; without it, one line says what to install and the show goes on.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import numpy as np

from ...errors import UserError
from ..grab import Picture

log = logging.getLogger(__name__)

AUDIO_BACKLOG = 400  # audio chunks held for a sender (4 s of 10 ms hops)


class OutputUnavailable(UserError):
    """This output cannot run here (no library, wrong platform, no device): one line, the show goes on."""


@dataclass(frozen=True)
class AudioChunk:
    """One hop of the show's audio, as the analysis heard it (mono float32)."""

    samples: np.ndarray
    rate: int
    t_end: float  # perf_counter (ADC) time of the last sample

    @property
    def t_start(self) -> float:
        return self.t_end - (len(self.samples) - 1) / self.rate


class Sink(Protocol):
    """One output. All methods are called on its sender thread only."""

    label: str  # "NDI vjgan", for logs and the HUD
    takes_audio: bool

    def open(self) -> None: ...

    def send_picture(self, picture: Picture) -> None: ...

    def send_audio(self, chunk: AudioChunk) -> None: ...

    def status(self) -> str: ...  # a few words for the HUD ("2 receivers"); "" if nothing to say

    def close(self) -> None: ...


class SenderThread:
    """Feeds one sink from its own supervised thread; never blocks whoever offers."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.sent = 0
        self.dropped = 0  # pictures replaced by a newer one before the sender took them
        self.audio_dropped = 0
        self._guard = threading.Lock()
        self._picture: Optional[Picture] = None
        self._audio: deque[AudioChunk] = deque()
        self._wake = threading.Event()
        self._opened = False

    # --- other threads ------------------------------------------------------------------------------------

    def offer_picture(self, picture: Picture) -> None:
        with self._guard:
            if self._picture is not None:
                self.dropped += 1
            self._picture = picture
        self._wake.set()

    def offer_audio(self, chunk: AudioChunk) -> None:
        if not self.sink.takes_audio:
            return
        with self._guard:
            if len(self._audio) >= AUDIO_BACKLOG:
                self._audio.popleft()
                self.audio_dropped += 1
            self._audio.append(chunk)
        self._wake.set()

    def status(self) -> str:
        words = [self.sink.label]
        extra = self.sink.status() if self._opened else "starting"
        if extra:
            words.append(extra)
        words.append(f"{self.sent} sent, {self.dropped} dropped")
        return " · ".join(words)

    # --- the sender's thread (supervised) ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        try:
            self.sink.open()
        except OutputUnavailable as e:  # not a fault to retry: the library or device is not there
            log.warning("%s", e)
            return
        self._opened = True
        try:
            while not stop.is_set():
                self._wake.wait(0.1)
                self._wake.clear()
                self.send_pending()
        finally:
            self._opened = False
            self.sink.close()

    def send_pending(self) -> None:
        with self._guard:
            picture, self._picture = self._picture, None
            chunks = list(self._audio)
            self._audio.clear()
        for chunk in chunks:
            self.sink.send_audio(chunk)
        if picture is not None:
            self.sink.send_picture(picture)
            self.sent += 1


# name → (option, how to open it, which extra / platform it needs); `vjgan devices` lists these.
@dataclass(frozen=True)
class OutputKind:
    name: str
    option: str
    platform: str  # "any", "darwin", "win32", "linux"
    extra: str  # the pyproject extra that installs its library
    make: Callable[[str], Sink]
    probe: Callable[[], str]  # "" when usable here, else why not (one line)


def output_kinds() -> list[OutputKind]:
    from . import ndi, spout, syphon, v4l2

    return [ndi.KIND, syphon.KIND, spout.KIND, v4l2.KIND]
