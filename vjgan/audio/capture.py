"""Live input from an audio interface: PortAudio through sounddevice (default) or PyAudio.

`DeviceSource` opens the device at its native rate in a capture process of its own (see
`vjgan.audio.worker` for why), whose PortAudio callback does one copy into a pipe; here the blocks
go into a `RingBuffer` and on, a hop at a time, to the capture thread (`vjgan.audio.engine`). It
watches its input: one that disappears (unplugged, its server gone) is reported once, and a new
capture process retries in the background until it returns, re-enumerating devices each time,
because PortAudio only learns about new devices (and servers) when it is initialised again.

Times: PortAudio stamps each block with `inputBufferAdcTime` on the stream's own clock; a
`StampClock` maps that onto the perf_counter clock every other stage uses, filtering out the
delay with which a Python callback may start (see its docstring). perf_counter is the system's
monotonic clock, the same in both processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol, Union

import numpy as np

from vjgan.audio.errors import AudioDeviceError
from vjgan.audio.ring import RingBuffer
from vjgan.audio.samples import BadSampleReport
from vjgan.audio.worker import HEADER, WorkerSettings

log = logging.getLogger("vjgan.audio")

BACKENDS = ("sounddevice", "pyaudio")


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate: float
    is_default: bool = False

    def label(self) -> str:
        default = "  (default)" if self.is_default else ""
        return (
            f"[{self.index}] {self.name} ({self.hostapi}): {self.max_input_channels} in, "
            f"{self.default_samplerate:g} Hz{default}"
        )


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence C libraries that print to stderr while PortAudio probes devices.

    ALSA and PortAudio's ALSA host print a screen of "Expression ... failed" lines while probing
    devices that are busy or absent; the user gets one clear line from vjgan instead. Only the
    process's fd 2 is redirected, and only around device enumeration and opening.
    """
    if os.environ.get("VJGAN_AUDIO_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class StampClock:
    """ADC stamps on the perf_counter clock, immune to late callbacks.

    A Python callback can start milliseconds after PortAudio took its time stamps (it waits for
    the interpreter lock), so "perf_counter() now" is late by that wait. The offset between the
    stream's clock and perf_counter is therefore tracked as the *smallest* (now - stream time)
    seen: the least-delayed callback is the closest to the truth. It may creep up by `drift` s/s
    (the two clocks' rates differ by ppm) and snaps to any smaller observation at once.
    Hosts without usable stamps (ALSA's pulse plugin, some Windows drivers) use the count of
    frames delivered as their stream clock, minus the reported latency.
    """

    def __init__(self, rate: int, latency: float = 0.0, drift: float = 2e-4):
        self.rate = rate
        self.latency = latency
        self.drift = drift
        self._offset: Optional[float] = None
        self._last_now = 0.0
        self._frames = 0

    def reset(self) -> None:
        self._offset = None

    def stamp(self, now: float, current_time: float, adc_time: float, frames: int) -> float:
        """ADC time (perf_counter clock) of the first frame of a block of `frames`."""
        self._frames += frames
        lag = current_time - adc_time
        if current_time > 0.0 and adc_time > 0.0 and 0.0 <= lag < 1.0:
            ref, first = current_time, adc_time
        else:  # frame clock: the block's last frame arrived "now", minus the device's latency
            ref = self._frames / self.rate
            first = ref - frames / self.rate - self.latency
        observed = now - ref
        off = self._offset
        if off is None or observed < off or now - self._last_now > 1.0:
            off = observed
        else:
            off = min(off + (now - self._last_now) * self.drift, observed)
        self._offset = off
        self._last_now = now
        return first + off


class BlockSink(Protocol):
    """Where a PortAudio callback puts its block: a `RingBuffer`, or the capture process's pipe."""

    def write(self, block: np.ndarray, adc_time: float) -> None: ...


class InputStream(ABC):
    @property
    @abstractmethod
    def active(self) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

    latency: float = 0.0


class Backend(ABC):
    name: str

    @abstractmethod
    def devices(self) -> list[DeviceInfo]:
        """All devices with at least one input channel."""

    @abstractmethod
    def refresh(self) -> None:
        """Re-initialise the library so devices plugged in (or removed) since are seen."""

    @abstractmethod
    def open_input(self, device: DeviceInfo, channels: int, rate: int, blocksize: int, ring: BlockSink) -> InputStream:
        """Open and start an input stream whose callback writes each block into `ring`."""

    def close(self) -> None:
        """Release the library. PortAudio counts initialisations: one left open stops every
        other binding in the process from re-scanning devices."""


# --- sounddevice -------------------------------------------------------------------------------------


class _SdStream(InputStream):
    def __init__(self, stream: Any):
        self._stream = stream
        self.latency = float(stream.latency)

    @property
    def active(self) -> bool:
        return bool(self._stream.active)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.abort()
        with contextlib.suppress(Exception):
            self._stream.close()


class SoundDeviceBackend(Backend):
    name = "sounddevice"

    def __init__(self) -> None:
        try:
            with quiet_stderr():
                import sounddevice  # noqa: F401  (imports PortAudio; fails without the library)
        except (ImportError, OSError) as exc:
            raise AudioDeviceError(f"audio backend 'sounddevice' is unavailable: {exc}") from None
        self._sd = sys.modules["sounddevice"]

    def devices(self) -> list[DeviceInfo]:
        sd = self._sd
        with quiet_stderr():
            try:
                devs = sd.query_devices()
                apis = sd.query_hostapis()
            except Exception as exc:  # PortAudio not initialised, no host API
                log.debug("query_devices failed: %s", exc)
                return []
            try:
                default_in = sd.default.device[0]
            except Exception:
                default_in = -1
        out = []
        for i, d in enumerate(devs):
            if d["max_input_channels"] > 0:
                out.append(
                    DeviceInfo(i, d["name"], apis[d["hostapi"]]["name"], int(d["max_input_channels"]),
                               float(d["default_samplerate"]), is_default=(i == default_in))
                )
        return out

    def refresh(self) -> None:
        # sounddevice exposes no public re-scan; terminating and re-initialising PortAudio is the
        # documented way (it closes every stream of this process, so only the capture source calls it).
        sd = self._sd
        with quiet_stderr():
            with contextlib.suppress(Exception):
                sd._terminate()
            sd._initialize()

    def open_input(self, device: DeviceInfo, channels: int, rate: int, blocksize: int, ring: BlockSink) -> InputStream:
        sd = self._sd
        clock = StampClock(rate)
        perf = time.perf_counter

        def callback(indata: np.ndarray, frames: int, t: Any, status: Any) -> None:
            # One copy into the ring and a time stamp; nothing else runs here.
            if status.input_overflow:
                clock.reset()  # frames were lost: the frame count no longer tracks time
            ring.write(indata, clock.stamp(perf(), t.currentTime, t.inputBufferAdcTime, frames))

        with quiet_stderr():
            try:
                stream = sd.InputStream(device=device.index, channels=channels, samplerate=rate, blocksize=blocksize,
                                        dtype="float32", latency="low", callback=callback)
                stream.start()
            except Exception as exc:
                raise AudioDeviceError(f"cannot open audio input {device.name!r}: {exc}") from None
        clock.latency = float(stream.latency)
        return _SdStream(stream)


# --- PyAudio (optional extra) ----------------------------------------------------------------------


class _PaStream(InputStream):
    def __init__(self, stream: Any):
        self._stream = stream
        with contextlib.suppress(Exception):
            self.latency = float(stream.get_input_latency())

    @property
    def active(self) -> bool:
        try:
            return bool(self._stream.is_active())
        except Exception:
            return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.stop_stream()
        with contextlib.suppress(Exception):
            self._stream.close()


class PyAudioBackend(Backend):
    name = "pyaudio"

    def __init__(self) -> None:
        try:
            with quiet_stderr():
                import pyaudio
        except (ImportError, OSError):
            raise AudioDeviceError(
                "audio backend 'pyaudio' is not installed (pip install 'vjgan[pyaudio]'); "
                "the default backend is sounddevice"
            ) from None
        self._mod = pyaudio
        with quiet_stderr():
            self._pa = pyaudio.PyAudio()

    def devices(self) -> list[DeviceInfo]:
        pa = self._pa
        out = []
        with quiet_stderr():
            try:
                default_in = int(pa.get_default_input_device_info()["index"])
            except Exception:
                default_in = -1
            for i in range(pa.get_device_count()):
                d = pa.get_device_info_by_index(i)
                if int(d["maxInputChannels"]) > 0:
                    api = pa.get_host_api_info_by_index(int(d["hostApi"]))["name"]
                    out.append(DeviceInfo(i, d["name"], api, int(d["maxInputChannels"]),
                                          float(d["defaultSampleRate"]), is_default=(i == default_in)))
        return out

    def refresh(self) -> None:
        with quiet_stderr():
            with contextlib.suppress(Exception):
                self._pa.terminate()
            self._pa = self._mod.PyAudio()

    def close(self) -> None:
        pa, self._pa = self._pa, None
        if pa is not None:
            with quiet_stderr(), contextlib.suppress(Exception):
                pa.terminate()

    def open_input(self, device: DeviceInfo, channels: int, rate: int, blocksize: int, ring: BlockSink) -> InputStream:
        pa_mod = self._mod
        clock = StampClock(rate)
        perf = time.perf_counter

        def callback(in_data: bytes, frame_count: int, t: dict, status: int) -> tuple[None, int]:
            block = np.frombuffer(in_data, dtype=np.float32).reshape(frame_count, channels)  # a view, no copy
            if status & pa_mod.paInputOverflow:
                clock.reset()
            ring.write(block, clock.stamp(perf(), t.get("current_time", 0.0), t.get("input_buffer_adc_time", 0.0),
                                          frame_count))
            return None, pa_mod.paContinue

        with quiet_stderr():
            try:
                stream = self._pa.open(format=pa_mod.paFloat32, channels=channels, rate=rate, input=True,
                                       input_device_index=device.index, frames_per_buffer=blocksize,
                                       stream_callback=callback)
                stream.start_stream()
            except Exception as exc:
                raise AudioDeviceError(f"cannot open audio input {device.name!r}: {exc}") from None
        wrapped = _PaStream(stream)
        clock.latency = wrapped.latency
        return wrapped


def get_backend(name: str = "sounddevice") -> Backend:
    if name == "sounddevice":
        return SoundDeviceBackend()
    if name == "pyaudio":
        return PyAudioBackend()
    raise AudioDeviceError(f"unknown audio backend {name!r} (choose from {', '.join(BACKENDS)})")


# --- finding devices ------------------------------------------------------------------------------------


def find_input_device(spec: Union[str, int, None], devices: list[DeviceInfo]) -> DeviceInfo:
    """The input device for `spec`: an index, a case-insensitive name substring, or None (default).

    An exact name beats a substring; among several substring matches the default host API's
    device wins, then the lowest index, so "Scarlett" finds the interface under any host API.
    """
    if not devices:
        if spec is None or spec == "":
            raise AudioDeviceError("no audio input device found")
        raise AudioDeviceError(f"no audio input device matches {spec!r}: this machine has no audio inputs")
    if spec is None or spec == "":
        for d in devices:
            if d.is_default:
                return d
        return devices[0]
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        for d in devices:
            if d.index == index:
                return d
        raise AudioDeviceError(f"no audio input device with index {index} (see `vjgan devices`)")
    needle = str(spec).strip().lower()
    exact = [d for d in devices if d.name.lower() == needle]
    if exact:
        return exact[0]
    matches = [d for d in devices if needle in d.name.lower() or needle in f"{d.name} ({d.hostapi})".lower()]
    if not matches:
        names = ", ".join(repr(d.name) for d in devices[:8])
        raise AudioDeviceError(f"no audio input device matches {spec!r} (inputs: {names})")
    default_api = next((d.hostapi for d in devices if d.is_default), None)
    matches.sort(key=lambda d: (d.hostapi != default_api, d.index))
    return matches[0]


def input_devices(backend: str = "sounddevice", timeout_s: float = 15.0) -> list[DeviceInfo]:
    """The audio inputs, as a capture process sees them (PortAudio is never initialised here)."""
    if backend not in BACKENDS:
        raise AudioDeviceError(f"unknown audio backend {backend!r} (choose from {', '.join(BACKENDS)})")
    worker = WorkerLink(WorkerSettings(backend=backend, list=True))
    try:
        event = worker.wait_event(timeout_s)
    finally:
        worker.close(grace_s=0.5)
    if event is None:
        return []
    if event.get("event") == "error":
        raise AudioDeviceError(str(event.get("message")))
    return [DeviceInfo(**d) for d in event.get("devices", [])]


def list_audio_devices(backend: str = "sounddevice") -> list[str]:
    """One line per audio input (index, name, host API, channels, native rate); `vjgan devices`."""
    return [d.label() for d in input_devices(backend)]


def parse_channel(value: Union[str, int, None]) -> Optional[int]:
    """`--channel`: 'mix' (or nothing) for a mono mix, or a 1-based channel number."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("", "mix", "mono", "0"):
        return None
    if not text.isdigit():
        raise AudioDeviceError(f"--channel must be 'mix' or a channel number from 1 (got {value!r})")
    return int(text)


# --- the live source -------------------------------------------------------------------------------------


class WorkerLink:
    """The parent's end of one capture process (`vjgan.audio.worker`): its events and its audio."""

    PIPE_BYTES = 1 << 20  # ~5 s of 48 kHz mono: a capture thread held up that long loses nothing

    def __init__(self, settings: WorkerSettings):
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        with contextlib.suppress(AttributeError, OSError):  # Linux only; elsewhere the default size
            import fcntl

            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, self.PIPE_BYTES)
        self.audio_fd = read_fd
        settings = dataclasses.replace(settings, audio_fd=write_fd)
        env = dict(os.environ)
        # The child imports the same vjgan as this process, wherever that came from.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        debug = bool(os.environ.get("VJGAN_AUDIO_DEBUG"))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vjgan.audio.worker", settings.to_json()],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None if debug else subprocess.DEVNULL,
                pass_fds=(write_fd,), env=env, start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            raise AudioDeviceError(f"cannot start the audio capture process: {exc}") from None
        finally:
            os.close(write_fd)
        os.set_blocking(self.proc.stdout.fileno(), False)  # type: ignore[union-attr]
        self._lines = b""
        self._partial = b""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def events(self) -> list[dict]:
        """Events the child has written since the last call (never waits)."""
        out = self.proc.stdout
        if out is None:
            return []
        while True:
            try:
                chunk = os.read(out.fileno(), 65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if not chunk:
                break
            self._lines += chunk
        *lines, self._lines = self._lines.split(b"\n")
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                log.debug("capture process: %r", line[:200])
        return events

    def wait_event(self, timeout: float) -> Optional[dict]:
        """The child's first event, waiting up to `timeout` (None if it exits or stays silent)."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if events:
                return events[0]
            left = deadline - time.monotonic()
            if left <= 0 or not self.alive:
                return None
            select.select([self.proc.stdout], [], [], min(left, 0.1))

    def wait_audio(self, timeout: float) -> None:
        select.select([self.audio_fd], [], [], max(0.0, timeout))

    def drain(self, ring: RingBuffer) -> int:
        """Move every block the child has sent into `ring`; returns the invalid samples it silenced."""
        bad = 0
        data = self._partial
        while True:
            try:
                chunk = os.read(self.audio_fd, 1 << 16)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        pos, size = 0, HEADER.size
        while len(data) - pos >= size:
            adc, frames, silenced = HEADER.unpack_from(data, pos)
            end = pos + size + 4 * frames
            if end > len(data):
                break
            ring.write(np.frombuffer(data, dtype=np.float32, count=frames, offset=pos + size), adc)
            bad += silenced
            pos = end
        self._partial = data[pos:]
        return bad

    def close(self, grace_s: float = 1.0) -> None:
        """Ask the child to close its stream and exit; kill it if it has not within `grace_s`
        (a stream on a dead server never closes). Never blocks for longer."""
        proc = self.proc
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace_s)
        with contextlib.suppress(OSError, ValueError):
            proc.stdout.close()  # type: ignore[union-attr]
        with contextlib.suppress(OSError):
            os.close(self.audio_fd)


class DeviceSource:
    """Hops from an audio input, with loss detection and automatic reconnection.

    The input is opened in a capture process (see `vjgan.audio.worker` for why): this object
    starts it, reads its audio into a ring buffer and watches it. A lost input (the child says
    its stream stopped, it dies, or no audio arrives) is reported once; a new child then retries
    every `retry_s` until the device is back.
    """

    kind = "device"
    STARTUP_S = 5.0  # allowance for the first block after opening
    OPEN_TIMEOUT_S = 15.0  # for the capture process to start and open the device

    def __init__(
        self,
        device: Union[str, int, None] = None,
        channel: Optional[int] = None,
        backend: str = "sounddevice",
        rate: Optional[int] = None,
        block_s: float = 0.005,
        stall_timeout_s: float = 2.0,
        retry_s: float = 1.0,
        on_status: Optional[Callable[[str], None]] = None,
    ):
        if backend not in BACKENDS:
            raise AudioDeviceError(f"unknown audio backend {backend!r} (choose from {', '.join(BACKENDS)})")
        self.spec = device
        self.channel = channel
        self.backend = backend
        self._want_rate = rate
        self.block_s = block_s
        self.stall_timeout_s = stall_timeout_s
        self.retry_s = retry_s
        self.on_status = on_status or (lambda msg: log.warning("%s", msg))
        self.device: Optional[DeviceInfo] = None
        self.rate = 0
        self.latency = 0.0  # input latency PortAudio reports for the open stream (s)
        self.connected = False
        self.reconnects = 0
        self.bad_samples = 0  # invalid samples (NaN, inf) the driver delivered, played as silence
        self._bad_report = BadSampleReport(f"audio input {self.name!r}")
        self._worker: Optional[WorkerLink] = None
        self._ring: Optional[RingBuffer] = None
        self._last_data = 0.0
        self._last_written = 0
        self._next_retry = 0.0

    @property
    def name(self) -> str:
        return self.device.name if self.device else str(self.spec or "default input")

    def _settings(self, persistent: bool) -> WorkerSettings:
        return WorkerSettings(backend=self.backend, device=self.spec, channel=self.channel,
                              rate=self._want_rate or (self.rate or None), block_s=self.block_s,
                              retry_s=self.retry_s, persistent=persistent)

    def start(self) -> None:
        """Open the device now; a wrong name or a device that cannot open raises AudioDeviceError."""
        worker = WorkerLink(self._settings(persistent=False))
        event = worker.wait_event(self.OPEN_TIMEOUT_S)
        if event is None or event.get("event") != "open":
            worker.close(grace_s=0.5)
            if event is not None and event.get("message"):
                raise AudioDeviceError(str(event["message"]))
            raise AudioDeviceError(f"audio input {self.name!r} did not open within {self.OPEN_TIMEOUT_S:g} s")
        self._opened(worker, event)

    def _opened(self, worker: WorkerLink, event: dict) -> None:
        self.device = DeviceInfo(**event["device"])
        if not self.rate:
            self.rate = int(event["rate"])
        self.latency = float(event.get("latency") or 0.0)
        # Two seconds of ring: ample for any stall the analysis can recover from.
        self._ring = RingBuffer(capacity=2 * self.rate, channels=1, rate=self.rate)
        self._worker = worker
        self.connected = True
        self._last_data = time.perf_counter()
        self._last_written = 0

    def read(self, n: int, timeout: float) -> Optional[tuple[np.ndarray, float]]:
        """The next `n` mono samples and the ADC time of the last, or None after `timeout`."""
        ring, worker = self._ring, self._worker
        if ring is None or worker is None or not self.connected:
            time.sleep(min(timeout, 0.01))
            return None
        self._take(worker, ring)
        got = ring.read(n, max_behind=self.rate // 2)
        if got is None:
            worker.wait_audio(timeout)
            self._take(worker, ring)
            got = ring.read(n, max_behind=self.rate // 2)
            if got is None:
                return None
        frames, adc = got
        return frames[:, 0], adc

    def _take(self, worker: WorkerLink, ring: RingBuffer) -> None:
        bad = worker.drain(ring)
        if bad:
            self.bad_samples += bad
            line = self._bad_report.add(bad, time.perf_counter())
            if line:
                self.on_status(line)

    def poll(self, now: float) -> Optional[str]:
        """Check the input; returns "lost" or "back" when the state changes, else None.

        Called by the capture thread whenever a read comes back empty.
        """
        worker = self._worker
        if self.connected and worker is not None:
            ring = self._ring
            if ring is not None and ring.written != self._last_written:
                self._last_written = ring.written
                self._last_data = now
            why = None
            for event in worker.events():
                if event.get("event") == "lost":
                    why = str(event.get("why") or "stream stopped")
            if why is None and not worker.alive:
                why = "the capture process ended"
            # Some hosts take a while to deliver the first block after opening (PulseAudio
            # through ALSA: up to a couple of seconds); only a stall after data flowed counts early.
            limit = self.stall_timeout_s if self._last_written else max(self.stall_timeout_s, self.STARTUP_S)
            if why is None and now - self._last_data > limit:
                why = f"no audio for {now - self._last_data:.1f} s"
            if why is None:
                return None
            self._close()
            self._next_retry = now + self.retry_s
            self.on_status(f"audio input {self.name!r} lost ({why}); the show goes on, retrying every {self.retry_s:g} s")
            return "lost"
        # Reconnecting: one capture process at a time, which retries by itself until the device
        # is there; if it dies (PortAudio can abort after a server died), a new one after retry_s.
        if worker is None:
            if now < self._next_retry:
                return None
            self._next_retry = now + self.retry_s
            try:
                self._worker = worker = WorkerLink(self._settings(persistent=True))
            except AudioDeviceError as exc:
                log.debug("reconnect failed: %s", exc)
                return None
        for event in worker.events():
            if event.get("event") == "open":
                self._opened(worker, event)
                self.reconnects += 1
                self.on_status(f"audio input {self.name!r} is back")
                return "back"
            log.debug("reconnecting: %s", event.get("message") or event)
        if not worker.alive:
            self._close()
        return None

    def _close(self) -> None:
        worker, self._worker = self._worker, None
        self.connected = False
        if worker is not None:
            # On a thread of its own: the child may take its grace time to close its stream (or
            # be killed), and the capture thread must keep publishing meanwhile.
            threading.Thread(target=worker.close, name="vjgan-audio-close", daemon=True).start()

    def stop(self) -> None:
        worker, self._worker = self._worker, None
        self.connected = False
        if worker is not None:
            worker.close(grace_s=1.0)
