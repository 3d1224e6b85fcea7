"""Sources that are not an input device: an audio file (rehearsal without a mixer) and the demo.

Both play an array at real-time pace through the same analyzer as a live input. Without
`monitor` the capture thread itself keeps the pace (sleeping until each hop is "due" on the
perf_counter clock, which is then the hop's ADC time); with `monitor` an output stream plays the
audio to the speakers and its callback feeds the ring buffer with the time each block will be
heard, so the analysis is synchronised to what the room hears.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from vjgan.audio.capture import quiet_stderr
from vjgan.audio.demo import render_groove
from vjgan.audio.errors import AudioDeviceError, AudioFileError
from vjgan.audio.ring import RingBuffer

log = logging.getLogger("vjgan.audio")

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".opus", ".m4a")


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a whole file to (frames x channels float32, rate).

    libsndfile (soundfile) reads WAV, FLAC, OGG and, from version 1.1, MP3. Anything it cannot read
    is handed to ffmpeg when it is installed. Failures raise AudioFileError with the reason.
    """
    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"audio file {str(p)!r} does not exist")
    if not p.is_file():
        raise AudioFileError(f"{str(p)!r} is not a file")
    try:
        import soundfile as sf

        with quiet_stderr():  # libsndfile's MP3 decoder prints resync notes on bad data
            data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception:  # soundfile raises its own LibsndfileError / RuntimeError types
        # libsndfile's own messages are misleading here ("File does not exist or is not a
        # regular file" for a corrupt MP3), so say what is known instead.
        decoded = _ffmpeg_decode(p)
        if decoded is None:
            how = "libsndfile and ffmpeg" if shutil.which("ffmpeg") else "libsndfile (and ffmpeg is not installed)"
            raise AudioFileError(
                f"cannot read audio file {str(p)!r}: not a supported or intact audio file ({how} could not decode it)"
            ) from None
        data, rate = decoded
    if data.shape[0] == 0:
        raise AudioFileError(f"audio file {str(p)!r} contains no audio")
    if rate < 8000:
        raise AudioFileError(f"audio file {str(p)!r} has a sample rate of {rate} Hz; vjgan needs at least 8000")
    return np.ascontiguousarray(data, dtype=np.float32), int(rate)


def _ffmpeg_decode(p: Path) -> Optional[tuple[np.ndarray, int]]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    try:
        probe = subprocess.run(
            [ffmpeg, "-v", "error", "-i", str(p), "-f", "f32le", "-acodec", "pcm_f32le", "-ac", "2", "-ar", "48000", "-"],
            capture_output=True, timeout=120, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if probe.returncode != 0 or not probe.stdout:
        return None
    data = np.frombuffer(probe.stdout, dtype="<f4").reshape(-1, 2)
    return data, 48000


def to_mono(data: np.ndarray, channel: Optional[int] = None) -> np.ndarray:
    """A 1-based channel, or the mean of all channels."""
    if data.ndim == 1:
        return data.astype(np.float32, copy=False)
    if channel is not None:
        if not (1 <= channel <= data.shape[1]):
            raise AudioFileError(f"the file has {data.shape[1]} channel(s); --channel {channel} does not exist")
        return np.ascontiguousarray(data[:, channel - 1])
    return data.mean(axis=1).astype(np.float32)


class ArraySource:
    """Plays an array (mono float32) at real-time pace; optionally to the speakers too."""

    kind = "array"

    def __init__(self, samples: np.ndarray, rate: int, name: str, loop: bool = False, monitor: bool = False,
                 output_device: Any = None):
        self.samples = np.asarray(samples, dtype=np.float32)
        self.rate = int(rate)
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
        if self._stream is not None:
            try:
                self._stream.abort()
                self._stream.close()
            except Exception:  # already gone with its device
                pass
            self._stream = None
        self.connected = False


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
    """An audio file played at real-time pace (rehearse a set without the mixer)."""

    kind = "file"

    def __init__(self, path: str | Path, channel: Optional[int] = None, loop: bool = False, monitor: bool = False,
                 output_device: Any = None):
        data, rate = load_audio(path)
        super().__init__(to_mono(data, channel), rate, Path(path).name, loop=loop, monitor=monitor,
                         output_device=output_device)
        self.path = Path(path)


class DemoSource(ArraySource):
    """The demo groove, looped: for machines with no input, and for trying vjgan out."""

    kind = "demo"

    def __init__(self, rate: int = 48000, bpm: float = 124.0, monitor: bool = False):
        super().__init__(render_groove(rate, bpm=bpm, bars=8), rate, f"demo groove ({bpm:g} BPM)", loop=True,
                         monitor=monitor)
        self.bpm = bpm
