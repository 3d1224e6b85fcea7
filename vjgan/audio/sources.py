"""Sources that are not an input device: an audio file (rehearsal without a mixer) and the demo.

Both play an array at real-time pace through the same analyzer as a live input. Without
`monitor` the capture thread itself keeps the pace (sleeping until each hop is "due" on the
perf_counter clock, which is then the hop's ADC time); with `monitor` an output stream plays the
audio to the speakers and its callback feeds the ring buffer with the time each block will be
heard, so the analysis is synchronised to what the room hears.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from vjgan.audio.capture import quiet_stderr
from vjgan.audio.demo import render_groove
from vjgan.audio.errors import AudioDeviceError
from vjgan.audio.files import open_audio, read_mono
from vjgan.audio.ring import RingBuffer

log = logging.getLogger("vjgan.audio")

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".opus", ".m4a")


class ArraySource:
    """Plays an array (mono float32) at real-time pace; optionally to the speakers too."""

    kind = "array"

    def __init__(self, samples: np.ndarray, rate: int, name: str, loop: bool = False, monitor: bool = False,
                 output_device: Any = None):
        self.samples = np.asarray(samples, dtype=np.float32)
        self.rate = int(rate)
        self.bad_samples = 0  # invalid samples silenced (a file counts its own as it is decoded)
        self._name = name
        self.loop = loop
        self.monitor = monitor
        self.output_device = output_device
        self.connected = False
        self.finished = False
        self.latency = 0.0
        self._pos = 0
        self._t0 = 0.0
        self._stream: Any = None
        self._ring: Optional[RingBuffer] = None

    @property
    def name(self) -> str:
        return self._name

    def start(self) -> None:
        self._pos = 0
        self.finished = False
        self.connected = True
        self._t0 = time.perf_counter()
        if self.monitor:
            self._start_output()

    def _start_output(self) -> None:
        try:
            with quiet_stderr():
                import sounddevice as sd
        except (ImportError, OSError) as exc:
            raise AudioDeviceError(f"cannot play to the speakers: {exc}") from None
        ring = RingBuffer(capacity=2 * self.rate, channels=1, rate=self.rate)
        samples = self.samples
        state = {"pos": 0}
        perf = time.perf_counter

        def callback(outdata: np.ndarray, frames: int, t: Any, status: Any) -> None:
            # Copy the next block out and into the analysis ring, stamped with its DAC time
            # (the moment it is heard is the moment a microphone would have picked it up).
            pos = state["pos"]
            block = _take(samples, pos, frames, self.loop)
            outdata[:, 0] = block
            if outdata.shape[1] > 1:
                outdata[:, 1:] = block[:, None]
            state["pos"] = pos + frames
            now = perf()
            ring.write(block, now + max(0.0, t.outputBufferDacTime - t.currentTime) if t.currentTime > 0 else now)

        try:
            with quiet_stderr():
                self._stream = sd.OutputStream(samplerate=self.rate, channels=2, dtype="float32", device=self.output_device,
                                               latency="low", callback=callback)
                self._stream.start()
        except Exception as exc:
            raise AudioDeviceError(f"cannot play to the speakers: {exc}") from None
        self.latency = float(self._stream.latency)
        self._ring = ring

    def read(self, n: int, timeout: float) -> Optional[tuple[np.ndarray, float]]:
        """The next hop, returned once it is due (its newest sample "reaches the ADC")."""
        if self.finished:
            time.sleep(min(timeout, 0.01))
            return None
        if self._ring is not None:
            got = self._ring.read(n, max_behind=self.rate // 2)
            if got is None:
                self._ring.wait(timeout)
                got = self._ring.read(n, max_behind=self.rate // 2)
            if got is None:
                return None
            frames, adc = got
            self._pos += n
            if not self.loop and self._pos >= len(self.samples):
                self._end()
            return frames[:, 0], adc
        if not self.loop and self._pos + n > len(self.samples):
            self._end()
            return None
        due = self._t0 + (self._pos + n) / self.rate
        wait = due - time.perf_counter()
        if wait > timeout:
            time.sleep(timeout)
            return None
        if wait > 0:
            time.sleep(wait)
        hop = _take(self.samples, self._pos, n, self.loop)
        self._pos += n
        return hop, due

    def _end(self) -> None:
        self.finished = True
        self.connected = False

    def poll(self, now: float) -> Optional[str]:
        return "ended" if self.finished else None

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            # On a thread, waited for a moment only: an output stream whose server died (JACK)
            # waits minutes in PortAudio's abort, and stopping must not.
            closer = threading.Thread(target=_close_output, args=(stream,), name="vjgan-monitor-close", daemon=True)
            closer.start()
            closer.join(1.0)
        self.connected = False


def _close_output(stream: Any) -> None:
    try:
        stream.abort()
        stream.close()
    except Exception:  # already gone with its device
        pass


def _take(samples: np.ndarray, pos: int, n: int, loop: bool) -> np.ndarray:
    total = len(samples)
    if loop:
        idx = (pos + np.arange(n)) % total
        return samples[idx]
    out = np.zeros(n, dtype=np.float32)
    if pos < total:
        chunk = samples[pos : pos + n]
        out[: len(chunk)] = chunk
    return out


class FileSource(ArraySource):
    """An audio file played at real-time pace (rehearse a set without the mixer).

    The file is decoded once, a block at a time, straight to the mono mix that is played: the
    decoded multichannel file is never held whole. Invalid samples (NaN, infinity) are silenced
    as they are decoded and reported in one line.
    """

    kind = "file"

    def __init__(self, path: str | Path, channel: Optional[int] = None, loop: bool = False, monitor: bool = False,
                 output_device: Any = None, on_status: Optional[Callable[[str], None]] = None):
        with open_audio(path) as reader:
            mono = read_mono(reader, channel)
            notes = reader.notes()
            bad = reader.bad_samples
        super().__init__(mono, reader.rate, Path(path).name, loop=loop, monitor=monitor, output_device=output_device)
        self.path = Path(path)
        self.bad_samples = bad
        for note in notes:
            (on_status or (lambda msg: log.warning("%s", msg)))(note)


class DemoSource(ArraySource):
    """The demo groove, looped: for machines with no input, and for trying vjgan out."""

    kind = "demo"

    def __init__(self, rate: int = 48000, bpm: float = 124.0, monitor: bool = False):
        super().__init__(render_groove(rate, bpm=bpm, bars=8), rate, f"demo groove ({bpm:g} BPM)", loop=True,
                         monitor=monitor)
        self.bpm = bpm
