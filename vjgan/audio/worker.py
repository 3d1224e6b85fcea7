"""The capture process: an audio input opened in a child process, so no driver can stop the show.

PortAudio keeps process-wide state, and its JACK host API does not survive the server: after
jackd dies under an open stream, stopping or closing that stream waits ten minutes on a condition
nothing will signal, and terminating PortAudio (the only way to see a restarted server) fails an
assertion that aborts the process. So `DeviceSource` (vjgan.audio.capture) opens each input in a
child process running `main` below. The child does everything PortAudio: it finds the device,
opens the stream and forwards every block through a pipe. A lost input is a child that says so
and exits; one that hangs is killed, which never blocks; the next attempt is a new child with a
fresh PortAudio that sees devices and servers as they are now.

The child runs `python -m vjgan.audio.worker SETTINGS` (SETTINGS: JSON, see `WorkerSettings`):

* audio: on the inherited descriptor `audio_fd`, one message per block: `HEADER` (ADC time of the
  first frame on the perf_counter clock, which is system-wide, frame count, invalid samples
  silenced) and the mono float32 frames. Each message is one write of at most PIPE_BUF bytes, so
  it arrives whole. The pipe holds about 5 s (see `WorkerLink`); a parent that stops reading for
  longer costs frames, never the callback's time.
* events: one JSON object per line on stdout: `{"event": "open", ...}` with the device, rate and
  latency; `{"event": "error", "message": ...}` (no such device: the child retries when
  `persistent`, else exits); `{"event": "lost", "why": ...}` before it exits; or, for `list`,
  `{"event": "devices", "devices": [...]}`.
* stdin: the parent closes it to ask the child to close its stream and exit.

Its stderr is discarded (unless VJGAN_AUDIO_DEBUG is set): ALSA, JACK and PortAudio print screens
of notes ("Expression ... failed") when a device or server goes; the parent says one line instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import sys
import threading
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from vjgan.audio.samples import silence_invalid

HEADER = struct.Struct("<dII")  # ADC time of the first frame, frames, invalid samples silenced
PIPE_BUF = 4096  # POSIX guarantees writes up to 512 bytes whole; Linux and macOS, 4096 or more
MAX_FRAMES = (PIPE_BUF - HEADER.size) // 4


@dataclass(frozen=True)
class WorkerSettings:
    backend: str = "sounddevice"
    device: Union[str, int, None] = None
    channel: Optional[int] = None
    rate: Optional[int] = None
    block_s: float = 0.005
    retry_s: float = 1.0
    persistent: bool = False  # keep retrying until the device is there (reconnection), instead of exiting
    list: bool = False  # only list the input devices
    audio_fd: int = -1

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


class PipeSink:
    """What the PortAudio callback writes into (in place of a RingBuffer): the block's invalid
    samples silenced, the channel picked or the channels mixed, the result sent down the pipe."""

    def __init__(self, fd: int, rate: int, channel: Optional[int]):
        self.fd = fd
        self.rate = rate
        self.channel = channel

    def write(self, block: np.ndarray, adc_time: float) -> None:
        frames = np.array(block, dtype=np.float32).reshape(len(block), -1)  # a copy: PortAudio reuses its buffer
        bad = silence_invalid(frames)
        mono = frames[:, self.channel - 1] if self.channel is not None else frames.mean(axis=1)
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        for start in range(0, len(mono), MAX_FRAMES):
            piece = mono[start : start + MAX_FRAMES]
            message = HEADER.pack(adc_time + start / self.rate, len(piece), bad if start == 0 else 0) + piece.tobytes()
            try:
                os.write(self.fd, message)
            except BlockingIOError:
                pass  # the parent is that far behind: it skips ahead to the newest audio anyway
            except (BrokenPipeError, OSError):
                os._exit(0)  # the parent is gone


def _event(**fields: Any) -> None:
    try:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        os._exit(0)  # the parent is gone


def _watch_stdin(stop: threading.Event) -> None:
    """The parent closes our stdin (or dies): time to go."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    stop.set()


def _exit_soon(code: int, within_s: float) -> None:
    """Leave without PortAudio's clean-up (it may hang or abort on a dead server), and leave even
    if the stream's close below hangs."""
    timer = threading.Timer(within_s, lambda: os._exit(code))
    timer.daemon = True
    timer.start()


def run(settings: WorkerSettings) -> int:
    from vjgan.audio.capture import find_input_device, get_backend
    from vjgan.audio.errors import AudioDeviceError

    stop = threading.Event()
    threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()
    backend = None
    while not stop.is_set():
        try:
            if backend is None:
                backend = get_backend(settings.backend)
            else:
                backend.refresh()  # see devices (and servers) that came since
            devices = backend.devices()
            if settings.list:
                _event(event="devices", devices=[dataclasses.asdict(d) for d in devices])
                return 0
            dev = find_input_device(settings.device, devices)
            if settings.channel is not None and not (1 <= settings.channel <= dev.max_input_channels):
                raise AudioDeviceError(f"{dev.name!r} has {dev.max_input_channels} input channel(s); "
                                       f"--channel {settings.channel} does not exist")
            rate = int(settings.rate or round(dev.default_samplerate))
            channels = settings.channel if settings.channel is not None else min(2, dev.max_input_channels)
            block = max(32, int(round(rate * settings.block_s)))
            sink = PipeSink(settings.audio_fd, rate, settings.channel)
            stream = backend.open_input(dev, channels, rate, block, sink)
        except AudioDeviceError as exc:
            _event(event="error", message=str(exc))
            if not settings.persistent:
                return 2
            stop.wait(settings.retry_s)
            continue
        _event(event="open", device=dataclasses.asdict(dev), rate=rate, latency=stream.latency)
        while not stop.wait(0.05):
            if not stream.active:
                _event(event="lost", why="stream stopped")
                return 0
        _exit_soon(0, 1.0)
        stream.close()
        return 0
    return 0


def main(argv: list[str]) -> None:
    settings = WorkerSettings(**json.loads(argv[1]))
    if settings.audio_fd >= 0:
        os.set_blocking(settings.audio_fd, False)
    try:
        code = run(settings)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line
        _event(event="error", message=f"audio capture process failed: {type(exc).__name__}: {exc}")
        code = 1
    sys.stdout.flush()
    os._exit(code)  # no atexit: PortAudio's own clean-up can hang or abort after a server died


if __name__ == "__main__":
    main(sys.argv)
