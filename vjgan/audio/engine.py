"""The capture thread: reads hops from a source, analyses them, publishes `Features`.

    engine = AudioEngine(open_source(device="Scarlett"))
    engine.start()
    ...
    f = engine.latest()          # any thread, any time: the newest snapshot, never blocks
    engine.tap()                 # performer controls, from any thread
    engine.stop()

Threads meet only at two points here. Going out, the newest `Features` is published by one
reference assignment (atomic in CPython) and readers never wait or queue. Coming in, performer
commands (tap, x2, resync, MIDI clock pulses) are stamped with the caller's perf_counter time and
appended to a bounded deque that the capture thread drains before each hop, so the beat clock is
only ever touched by one thread and a burst of commands cannot grow without bound.

When the input goes away (device unplugged, file ended) the thread keeps publishing at the hop
rate with silence as input, so envelopes decay to rest and the beat clock free-runs: the show
goes on, and `Features.connected` tells the HUD.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Union

import numpy as np

from vjgan.audio.analysis import Analyzer
from vjgan.audio.config import AnalysisConfig
from vjgan.audio.errors import AudioDeviceError
from vjgan.audio.features import Features, rest_features
from vjgan.logs import RateLimitedLog

if TYPE_CHECKING:
    from vjgan.supervise import Supervisor, Task

log = logging.getLogger("vjgan.audio")


class Source(Protocol):
    rate: int
    connected: bool
    kind: str

    @property
    def name(self) -> str: ...

    def start(self) -> None: ...

    def read(self, n: int, timeout: float) -> Optional[tuple[np.ndarray, float]]: ...

    def poll(self, now: float) -> Optional[str]: ...

    def stop(self) -> None: ...


@dataclass
class EngineStats:
    hops: int = 0
    silent_hops: int = 0  # hops synthesised while the input was gone
    analysis_s: float = 0.0  # total CPU-side time spent in Analyzer.process
    max_analysis_s: float = 0.0


# listener(features, samples): called on the capture thread after each hop is analysed, with the
# hop's snapshot and the mono samples it analysed (silence while the input is gone, so a listener
# keeps the hop rate). It must return at once: copy what it needs into its own bounded buffer.
HopListener = Callable[[Features, np.ndarray], None]


class AudioEngine:
    SWITCH_INTERVAL_S = 0.001  # see start()

    def __init__(self, source: Source, config: Optional[AnalysisConfig] = None,
                 on_features: Optional[Callable[[Features], None]] = None):
        self.source = source
        self.config = config or AnalysisConfig()
        self.on_features = on_features  # called in the capture thread for every snapshot (tests, recorders)
        self._hop_listeners: list[HopListener] = []
        self._say = RateLimitedLog(log, 5.0)
        self.analyzer: Optional[Analyzer] = None
        self.stats = EngineStats()
        self.ended = threading.Event()  # the source has ended (a file without loop)
        self._latest: Features = rest_features(self.config.band_names(), time.perf_counter())
        self._commands: deque[tuple[str, tuple]] = deque(maxlen=512)
        self._task: Optional["Task"] = None
        self._supervisor: Optional["Supervisor"] = None
        self._own_supervisor = False
        self._saved_switch: Optional[float] = None
        self.last_hop_at: Optional[float] = None  # perf_counter time of the newest hop (the watchdog's)

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self, supervisor: Optional["Supervisor"] = None) -> "AudioEngine":
        """Open the source and start the capture thread, as a task of `supervisor` (the show's;
        a private one when none is given). A fault in the analysis is logged and shown, and the
        thread restarts with a fresh analyzer on the same source."""
        from vjgan.supervise import Supervisor

        self.source.start()  # errors (bad device) surface here, in the caller's thread
        self.analyzer = Analyzer(self.source.rate, self.config)
        self._latest = rest_features(self.config.band_names(), time.perf_counter())
        # The PortAudio callback and this thread wait for the interpreter lock behind whatever
        # else runs Python (the frame worker, the UI). A 1 ms switch interval (default 5 ms) bounds
        # that wait well inside a 10 ms hop.
        self._saved_switch = sys.getswitchinterval()
        if self._saved_switch > self.SWITCH_INTERVAL_S:
            sys.setswitchinterval(self.SWITCH_INTERVAL_S)
        self._own_supervisor = supervisor is None
        self._supervisor = supervisor or Supervisor()
        self._task = self._supervisor.spawn("audio", self._run, label="AUDIO ANALYSIS",
                                            on_restart=self._fresh_analyzer)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        if self._task is not None and self._task.thread.is_alive():
            self._task.stop()
            if not self._task.join(timeout):
                log.warning("the audio thread did not stop within %.0f s; leaving it behind", timeout)
        if self._own_supervisor and self._supervisor is not None:
            self._supervisor.stop(timeout=0.1)
        self.source.stop()
        if self._saved_switch is not None:
            sys.setswitchinterval(self._saved_switch)
            self._saved_switch = None

    def _fresh_analyzer(self) -> None:
        """After a fault: a new analyzer (the old one's state may be what failed); the tempo
        found so far is lost, the source and its stream stay open."""
        self.analyzer = Analyzer(self.source.rate, self.config)

    def __enter__(self) -> "AudioEngine":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and self._task.thread.is_alive()

    @property
    def restarts(self) -> int:
        """How often the capture thread failed and was restarted."""
        return self._task.restarts if self._task is not None else 0

    def add_hop_listener(self, listener: HopListener) -> None:
        """Hear every hop as it is analysed (OSC out, NDI audio, the recorder): the analysis itself
        is unchanged, the listener only gets a look at what it used."""
        self._hop_listeners.append(listener)

    def hop_age(self) -> Optional[float]:
        """Seconds since the last analysis hop, for the watchdog (None before the first)."""
        return None if self.last_hop_at is None else time.perf_counter() - self.last_hop_at

    # --- reading ---------------------------------------------------------------------------------

    def latest(self) -> Features:
        """The newest snapshot (a reference read: never blocks, never copies)."""
        return self._latest

    # --- performer controls (any thread) -------------------------------------------------------

    def _command(self, name: str, *args: Any) -> None:
        self._commands.append((name, args))

    def tap(self, t: Optional[float] = None) -> None:
        self._command("tap", time.perf_counter() if t is None else t)

    def double(self) -> None:
        self._command("double")

    def halve(self) -> None:
        self._command("halve")

    def resync(self, t: Optional[float] = None) -> None:
        self._command("resync", time.perf_counter() if t is None else t)

    def set_bpm(self, bpm: float) -> None:
        if not (1.0 <= bpm <= 1000.0):
            raise ValueError(f"bpm must be in [1, 1000] (got {bpm})")
        self._command("set_bpm", float(bpm))

    def follow_audio(self) -> None:
        self._command("follow_audio")

    def external_tick(self, t: Optional[float] = None) -> None:
        """A MIDI clock pulse (24 per beat) received at perf_counter time `t`."""
        self._command("external_tick", time.perf_counter() if t is None else t)

    def external_start(self) -> None:
        self._command("external_start")

    def external_stop(self) -> None:
        self._command("external_stop")

    def link_timeline(self, t: float, beat: float, bpm: float) -> None:
        """Ableton Link's session (from its own thread): `beat` is the session's beat at
        perf_counter time `t`, at `bpm`. While these arrive, they set tempo and phase."""
        self._command("link_timeline", t, beat, bpm)

    def link_lost(self) -> None:
        """Link stopped driving (no peer left, or Link was turned off)."""
        self._command("link_lost")

    def _drain_commands(self) -> None:
        clock = self.analyzer.clock  # type: ignore[union-attr]
        while self._commands:
            name, args = self._commands.popleft()
            getattr(clock, name)(*args)

    # --- the capture thread ----------------------------------------------------------------------

    def _publish(self, f: Features) -> None:
        self._latest = f  # the hand-over: one reference swap
        self.last_hop_at = time.perf_counter()
        if self.on_features is not None:
            self.on_features(f)

    def _analyse(self, samples: np.ndarray, adc: float, connected: bool) -> None:
        an = self.analyzer
        assert an is not None
        t0 = time.perf_counter()
        f = an.process(samples, adc, connected=connected, bad_samples=getattr(self.source, "bad_samples", 0))
        cost = time.perf_counter() - t0
        st = self.stats
        st.hops += 1
        st.analysis_s += cost
        st.max_analysis_s = max(st.max_analysis_s, cost)
        self._publish(f)
        for listener in self._hop_listeners:
            try:
                listener(f, samples)
            except Exception as e:  # a listener's fault must not stop the analysis the show plays from
                self._say(f"listener:{type(e).__name__}", f"a hop listener failed: {type(e).__name__}: {e}")

    def _run(self, stop: threading.Event) -> None:
        """The capture thread's body: read a hop, analyse, publish, until `stop`. A fault
        propagates to the supervisor."""
        an = self.analyzer
        assert an is not None
        src = self.source
        hop_s = an.dt
        last_adc: Optional[float] = None
        while not stop.is_set():
            if self.analyzer is not an:  # restarted after a fault
                an = self.analyzer
            self._drain_commands()
            got = src.read(an.hop, timeout=2 * hop_s)
            if got is not None:
                samples, adc = got
                self._analyse(samples, adc, connected=True)
                last_adc = adc
                continue
            now = time.perf_counter()
            event = src.poll(now)
            if event == "ended":
                self.ended.set()
            if src.connected:
                continue  # a late block, not a lost device: wait for it
            # Input gone: keep the hop rate with silence so everything decays to rest and the
            # beat clock keeps running; stamps continue on the wall clock.
            if last_adc is None or now - last_adc > 1.0:
                last_adc = now - hop_s
            while last_adc + hop_s <= now:
                last_adc += hop_s
                self.stats.silent_hops += 1
                self._analyse(an.silence(), last_adc, connected=False)


def open_source(
    device: Union[str, int, None] = None,
    *,
    file: Optional[str] = None,
    demo: bool = False,
    channel: Optional[int] = None,
    backend: str = "sounddevice",
    loop: bool = False,
    monitor: bool = False,
    fallback_to_demo: bool = True,
    on_status: Optional[Callable[[str], None]] = None,
) -> Source:
    """The source a show asks for: a file, the demo, or an input device (default: the default input).

    With no device named and no input device present, the demo groove is used after one line
    on `on_status`, so a laptop without a sound card still starts the show. A device that was
    named but is not there is an error (a typo should not silently play the demo).
    """
    from vjgan.audio.capture import DeviceSource, input_devices
    from vjgan.audio.sources import DemoSource, FileSource

    say = on_status or (lambda msg: log.warning("%s", msg))
    if file is not None:
        return FileSource(file, channel=channel, loop=loop, monitor=monitor, on_status=say)
    if demo:
        return DemoSource(monitor=monitor)
    try:
        src = DeviceSource(device, channel=channel, backend=backend, on_status=say)
        if device is None and not input_devices(backend):
            raise AudioDeviceError("no audio input device found")
        return src
    except AudioDeviceError as exc:
        if device is not None or not fallback_to_demo:
            raise
        say(f"{exc}; playing the demo groove instead")
        return DemoSource(monitor=monitor)
