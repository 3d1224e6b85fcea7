"""Real MIDI ports without hardware: a JACK dummy server and a virtual controller on it.

The ALSA sequencer is a kernel module and absent in CI; python-rtmidi's JACK API on a JACK
server with the dummy driver gives real ports between real clients. The server gets a name of
its own (other test modules may run JACK servers too) and each test points libjack at it through
$JACK_DEFAULT_SERVER for its own duration only.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Optional

import pytest

from vjgan.control.ports import jack_settle
from waiting import wait_until  # noqa: F401  (the MIDI tests import it from here)

def _rtmidi_with_jack():
    rtmidi = pytest.importorskip("rtmidi", reason="python-rtmidi is not installed")
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        pytest.skip("this python-rtmidi build has no JACK API")
    return rtmidi


def _die_with_parent() -> None:
    """In the jackd child: receive SIGTERM when the test process dies, so a crashed or killed test
    run leaves no server behind (JACK allows only a few at a time)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


JACK_REGISTRY = "/dev/shm/jack-shm-registry"
JACK_MAX_SERVERS = 8


def reclaim_dead_jack_servers(path: str = JACK_REGISTRY) -> int:
    """Free the slots of JACK servers whose process is gone; returns how many.

    JACK registers every server in a shared registry of 8 slots. A server killed with SIGKILL
    keeps its slot, and JACK reclaims a dead slot only for a server of the same name, so 8 killed
    servers with unique names (a test of a lost audio server does that) make every later jackd
    fail with "Too many servers already active". Slots of live servers are left alone.
    Registry layout (JACK2's shm.c): a 24-byte header (magic "KCAJ", protocol, type, size,
    hdr_len, entry_len) then 8 slots of {pid (int32), name}, filling up to hdr_len.
    """
    try:
        with open(path, "r+b") as f:
            header = f.read(24)
            if len(header) < 24 or header[:4] != b"KCAJ":
                return 0
            hdr_len = struct.unpack_from("<I", header, 16)[0]
            slot = (hdr_len - 24) // JACK_MAX_SERVERS
            if slot < 8:
                return 0
            freed = 0
            for i in range(JACK_MAX_SERVERS):
                f.seek(24 + i * slot)
                (pid,) = struct.unpack("<i", f.read(4))
                if pid <= 0:
                    continue
                try:
                    os.kill(pid, 0)
                    continue  # alive (or not ours to signal): in use
                except ProcessLookupError:
                    pass
                except PermissionError:
                    continue
                f.seek(24 + i * slot)
                f.write(bytes(slot))
                freed += 1
            return freed
    except OSError:
        return 0


class JackServer:
    """`jackd --no-realtime -n NAME -d dummy`: real-time paced, no sound card, no privileges."""

    def __init__(self) -> None:
        self.name = f"vjgan-midi-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.proc: Optional[subprocess.Popen] = None
        self.log = tempfile.TemporaryFile()  # a file, not a pipe: nobody reads while it runs

    def start(self, timeout: float = 15.0) -> None:
        rtmidi = _rtmidi_with_jack()
        reclaim_dead_jack_servers()
        env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
        self.proc = subprocess.Popen(
            ["jackd", "--no-realtime", "-n", self.name, "-d", "dummy", "-r", "48000", "-p", "480"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)
        old = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        os.environ["JACK_NO_START_SERVER"] = "1"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if self.proc.poll() is not None:
                    self.log.seek(0)
                    out = self.log.read().decode(errors="replace")
                    raise RuntimeError(f"jackd exited with {self.proc.returncode}:\n{out[-2000:]}")
                try:
                    probe = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, "vjgan-test-probe")
                    probe.get_ports()
                    probe.delete()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"jackd server {self.name} did not come up within {timeout} s")
                    time.sleep(0.05)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def jack_server():
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (Debian package jackd2; .ci/run installs it)")
    _rtmidi_with_jack()
    server = JackServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def jack(jack_server, monkeypatch):
    """The module's JACK server, made the default for libjack and for vjgan's MIDI API choice."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jack_server.name)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.setenv("VJGAN_MIDI_API", "jack")
    return jack_server


class VirtualController:
    """Plays a hardware controller: client `name` with an output port "out" (its knobs and pads)
    and client `name`-leds with an input port "in" (its LEDs, where feedback arrives)."""

    def __init__(self, name: Optional[str] = None) -> None:
        self.rtmidi = _rtmidi_with_jack()
        self.name = name or f"testctl-{uuid.uuid4().hex[:6]}"
        self._lock = threading.Lock()
        self._received: list[tuple[int, ...]] = []
        self._out = None
        self._in = None
        self.plug()

    @property
    def out_port(self) -> str:
        return f"{self.name}:out"

    @property
    def in_port(self) -> str:
        return f"{self.name}-leds:in"

    def plug(self) -> None:
        rtmidi = self.rtmidi
        # Every port change waits for the graph to settle: libjack races otherwise
        # (jackaudio/jack2#216, see vjgan/control/ports.py).
        self._out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, self.name)
        jack_settle(self._out)
        self._out.open_virtual_port("out")
        # Polled, not a callback: a callback thread waiting for the interpreter lock while the
        # port is deleted deadlocks or crashes python-rtmidi (see vjgan/control/ports.py).
        self._in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, f"{self.name}-leds")
        self._in.ignore_types(sysex=True, timing=False, active_sense=True)
        jack_settle(self._in)
        self._in.open_virtual_port("in")
        jack_settle(self._in)

    def unplug(self) -> None:
        """The USB cable pulled: both clients and their ports disappear at once."""
        self._drain()
        for client in (self._out, self._in):
            if client is not None:
                jack_settle(client)
                client.close_port()
                client.delete()
        self._out = self._in = None

    close = unplug

    def send(self, *messages) -> None:
        with self._lock:  # JACK's output ring buffer takes one writer at a time
            for msg in messages:
                self._out.send_message(list(msg))

    def _drain(self) -> None:
        with self._lock:
            while self._in is not None:
                event = self._in.get_message()
                if event is None:
                    break
                self._received.append(tuple(event[0]))

    def received(self) -> list[tuple[int, ...]]:
        """Everything the LED input has received so far."""
        self._drain()
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        self._drain()
        with self._lock:
            self._received.clear()


class ClockSender(threading.Thread):
    """Sends MIDI clock at `bpm` on an absolute schedule (no drift), optionally Start first."""

    def __init__(self, ctl: VirtualController, bpm: float, pulses: int, start: bool = True) -> None:
        super().__init__(daemon=True)
        self.ctl = ctl
        self.period = 60.0 / (bpm * 24)
        self.pulses = pulses
        self.send_start = start
        self.halt = threading.Event()
        self.sent: list[float] = []  # when each pulse actually went out

    def sent_bpm(self, last: int = 96) -> float:
        """The tempo actually sent: median pulse interval of the last `last` pulses. A sender
        thread held up by a loaded machine sends late pulses in a burst; the median ignores that."""
        times = self.sent[-last:]
        gaps = sorted(b - a for a, b in zip(times, times[1:]))
        return 60.0 / (24 * gaps[len(gaps) // 2])

    def run(self) -> None:
        if self.send_start:
            self.ctl.send([0xFA])
        t0 = time.perf_counter() + 0.005
        for i in range(self.pulses):
            target = t0 + i * self.period
            while not self.halt.is_set():
                left = target - time.perf_counter()
                if left <= 0:
                    break
                time.sleep(min(left, 0.005))
            if self.halt.is_set():
                return
            self.ctl.send([0xF8])
            self.sent.append(time.perf_counter())
