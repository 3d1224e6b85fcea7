"""Real audio servers for the audio tests: a JACK dummy server and a PulseAudio null sink.

Both are started by fixtures with unique names under a temporary folder, and torn down after
the tests that use them. They need no sound card and no kernel module, so they run in CI (which
installs jackd2 and pulseaudio); a test skips only when the binary is absent.

PortAudio learns about servers when it is initialised, so the fixtures set the environment
(JACK_DEFAULT_SERVER, PULSE_SERVER, PULSE_SOURCE), which vjgan's capture processes inherit, and
re-initialise this process's PortAudio (for monitoring to the speakers), restoring both before
stopping the server: in-process PortAudio cannot recover from a JACK server killed under it.
`JackDummy` is a server a test may kill and restart (vjgan's inputs survive that: they live in
capture processes).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pytest

JACK_RATE = 48000
JACK_PERIOD = 480


def _refresh_portaudio() -> None:
    from vjgan.audio.capture import SoundDeviceBackend

    SoundDeviceBackend().refresh()


class _Env:
    """Set environment variables now; put the old values back on restore()."""

    def __init__(self, **values: str):
        self.saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)

    def restore(self) -> None:
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class JackDummy:
    """`jackd -d dummy` under a name of its own: started, killed and restarted by the tests."""

    def __init__(self, log_dir: Path, name: Optional[str] = None):
        self.name = name or f"vjgan-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.log_dir = log_dir
        self.proc: Optional[subprocess.Popen] = None
        self.env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")

    def start(self) -> None:
        jackd = shutil.which("jackd")
        assert jackd is not None
        logf = self.log_dir / f"jackd-{time.monotonic_ns()}.log"
        with open(logf, "wb") as log:
            self.proc = subprocess.Popen([jackd, "-n", self.name, "--no-realtime", "-d", "dummy", "-r", str(JACK_RATE),
                                          "-p", str(JACK_PERIOD)], stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         preexec_fn=_die_with_parent)
        lsp = shutil.which("jack_lsp")
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"jackd exited at start: {logf.read_text(errors='replace')[-2000:]}")
            if lsp and subprocess.run([lsp, "-s", self.name], capture_output=True, env=self.env, timeout=10).returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"jackd did not come up: {logf.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """The server dies (SIGKILL: no goodbye to its clients)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
        # A killed server leaves its shared-memory files behind (a clean exit removes them).
        for leftover in Path("/dev/shm").glob(f"*{self.name}*"):
            leftover.unlink(missing_ok=True)


class ToneIntoVjgan:
    """A sine played into vjgan's JACK input ports by a player process of its own.

    In a separate process because this test process must never be a client of a server that a
    test kills: libjack and PortAudio cannot recover in the process that was attached to it.
    """

    SCRIPT = """
import sys, time, numpy as np, jack
client = jack.Client("vjgan-tone", servername=sys.argv[1], no_start_server=True)
port = client.outports.register("out")
phase = [0.0]
step = 2 * np.pi * float(sys.argv[2]) / client.samplerate

@client.set_process_callback
def process(frames):
    t = phase[0] + step * np.arange(frames)
    port.get_array()[:] = 0.5 * np.sin(t)
    phase[0] = float(t[-1] + step) % (2 * np.pi)

client.activate()
while True:
    targets = [p.name for p in client.get_ports(is_input=True, is_audio=True) if not p.name.startswith("system:")]
    if targets:
        break
    time.sleep(0.05)
for t in targets:
    client.connect(port, t)
print("playing", flush=True)
sys.stdin.read()
"""

    def __init__(self, server: str, freq: float = 1000.0):
        self.proc = subprocess.Popen([sys.executable, "-c", self.SCRIPT, server, str(freq)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != "playing":
            self.close()
            pytest.fail("the JACK tone player did not start")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def _die_with_parent() -> None:
    """In a server or player child: SIGTERM when the test process dies, so a crashed run leaves
    no JACK server behind (JACK allows only a few at a time)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def need_jackd() -> None:
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (Debian package jackd2); .ci/run installs it")
    pytest.importorskip("sounddevice")


@pytest.fixture(scope="module")
def jack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JACK dummy server (48 kHz, 10 ms periods, paced in real time); yields its name."""
    need_jackd()
    server = JackDummy(tmp_path_factory.mktemp("jack"))
    server.start()
    saved = _Env(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
    _refresh_portaudio()
    try:
        yield server.name
    finally:
        saved.restore()
        _refresh_portaudio()  # detach this process's PortAudio from the server before it goes
        server.stop()


class JackPlayer:
    """A second JACK client that plays an array into vjgan's input ports.

    It records, for every cycle, JACK's frame time and the perf_counter time its callback ran,
    which gives the truth the tests compare vjgan's ADC stamps with: the sample at frame f of the
    cycle that starts at frame time L is delivered to inputs in that cycle, i.e. "captured" during
    the period before it, at (L - period + f) / rate on the JACK clock.
    """

    def __init__(self, server: str, signal_: np.ndarray, name: str = "vjgan-player"):
        import jack

        self.client = jack.Client(name, servername=server, no_start_server=True)
        self.rate = self.client.samplerate
        self.period = self.client.blocksize
        self.signal = np.asarray(signal_, dtype=np.float32)
        self.port = self.client.outports.register("out")
        self.start_frame: Optional[int] = None
        self._pos = 0
        self._cycles: list[tuple[int, float]] = []
        self.client.set_process_callback(self._process)
        self.xruns = 0
        self.client.set_xrun_callback(self._xrun)

    def _xrun(self, delay_usecs: float) -> None:
        self.xruns += 1  # an overloaded machine: the server fell behind the wall clock

    def _process(self, frames: int) -> None:
        now = time.perf_counter()
        lft = self.client.last_frame_time
        buf = self.port.get_array()
        if self.start_frame is None:
            self.start_frame = lft
        p = self._pos
        chunk = self.signal[p : p + frames]
        buf[: len(chunk)] = chunk
        buf[len(chunk) :] = 0.0
        self._pos = p + frames
        if len(self._cycles) < 100_000:
            self._cycles.append((lft, now))

    def start(self, targets: list[str]) -> None:
        self.client.activate()
        for t in targets:
            self.client.connect(self.port, t)

    def vjgan_inputs(self) -> list[str]:
        return [p.name for p in self.client.get_ports(is_input=True, is_audio=True) if not p.name.startswith("system:")]

    @property
    def done(self) -> bool:
        return self._pos >= len(self.signal)

    def sample_adc_time(self, index: float) -> float:
        """perf_counter time at which sample `index` of the signal was (as if) captured."""
        cyc = np.asarray(self._cycles, dtype=np.float64)
        assert self.start_frame is not None
        frame = self.start_frame + index
        # A callback runs at or after its cycle's start: the smallest offset is the start itself.
        # Taken over the cycles within half a second of the sample, because on a loaded machine
        # the dummy driver can fall behind the wall clock (an xrun) and the offset then steps.
        near = np.abs(cyc[:, 0] - frame) <= 0.5 * self.rate
        sel = cyc[near] if np.count_nonzero(near) >= 5 else cyc
        offset = float(np.min(sel[:, 1] - sel[:, 0] / self.rate))
        return (frame - self.period) / self.rate + offset

    def close(self) -> None:
        try:
            self.client.deactivate()
        finally:
            self.client.close()


@pytest.fixture(scope="module")
def pulse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator["PulseServer"]:
    """A private PulseAudio daemon with a null sink; vjgan captures its monitor via ALSA 'pulse'."""
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        pytest.skip("pulseaudio is not installed (Debian packages pulseaudio pulseaudio-utils); .ci/run installs them")
    pytest.importorskip("sounddevice")
    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        pytest.fail(str(exc))
    saved = _Env(PULSE_SERVER=server.address, PULSE_SOURCE=f"{server.sink}.monitor",
                 PULSE_RUNTIME_PATH=str(server.root / "rt"))
    _refresh_portaudio()
    try:
        yield server
    finally:
        saved.restore()
        _refresh_portaudio()
        server.stop()


class PulseServer:
    sink = "vjgan_null"

    def __init__(self, root: Path):
        self.root = root
        self.socket = root / "native"
        self.address = f"unix:{self.socket}"
        self.proc: Optional[subprocess.Popen] = None
        self._player: Optional[subprocess.Popen] = None
        self._feeder: Optional[threading.Thread] = None
        self._stop_feed = threading.Event()

    def _env(self) -> dict:
        return dict(os.environ, PULSE_SERVER=self.address, PULSE_RUNTIME_PATH=str(self.root / "rt"),
                    HOME=str(self.root), XDG_CONFIG_HOME=str(self.root / "cfg"))

    def start(self) -> None:
        (self.root / "rt").mkdir(exist_ok=True)
        log = open(self.root / "pulse.log", "wb")
        # -n: no default script, so nothing but our modules (no device probing, no stream rescue:
        # a stream on an unloaded sink dies as it would with an unplugged card).
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--system=no",
             "--disallow-exit", "-L", f"module-native-protocol-unix socket={self.socket} auth-anonymous=1"],
            stdout=log, stderr=subprocess.STDOUT, env=self._env(),
        )
        deadline = time.monotonic() + 15
        while self.pactl("info").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pulseaudio did not start: {(self.root / 'pulse.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        self.load_sink()

    def pactl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], capture_output=True, text=True, env=self._env(), timeout=10)

    def load_sink(self) -> None:
        r = self.pactl("load-module", "module-null-sink", f"sink_name={self.sink}", "rate=48000", "channels=2")
        if r.returncode != 0:
            raise RuntimeError(f"cannot load the null sink: {r.stderr}")

    def unload_sink(self) -> None:
        r = self.pactl("unload-module", "module-null-sink")
        if r.returncode != 0:
            raise RuntimeError(f"cannot unload the null sink: {r.stderr}")

    def play_tone(self, freq: float = 1000.0, amplitude: float = 0.5) -> None:
        """Play a continuous tone into the null sink with pacat, fed from a thread, until stop_tone()."""
        self.stop_tone()
        self._stop_feed.clear()
        self._player = subprocess.Popen(
            ["pacat", "--playback", f"--device={self.sink}", "--raw", "--format=float32le", "--rate=48000",
             "--channels=1", "--latency-msec=20"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self._env(),
        )
        player = self._player
        t = np.arange(4800) / 48000.0
        block = (amplitude * np.sin(2 * np.pi * freq * t)).astype("<f4").tobytes()  # 100 ms, whole cycles

        def feed() -> None:
            while not self._stop_feed.is_set() and player.poll() is None:
                try:
                    player.stdin.write(block)  # type: ignore[union-attr]
                    player.stdin.flush()  # type: ignore[union-attr]
                except (BrokenPipeError, OSError):
                    return

        self._feeder = threading.Thread(target=feed, daemon=True)
        self._feeder.start()

    def stop_tone(self) -> None:
        self._stop_feed.set()
        if self._player is not None:
            _stop(self._player)
            self._player = None
        if self._feeder is not None:
            self._feeder.join(2)
            self._feeder = None

    def stop(self) -> None:
        self.stop_tone()
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
