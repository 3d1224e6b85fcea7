"""The rig's parts wired into a running show: `Rig.start()` once, two calls per loop turn, `shutdown()`.

    rig = Rig(show, options); rig.start()         # after the audio engine, director and renderer exist
    rig.collect()                                 # each turn, first: hand the last read-back picture out
    rig.after_present(renderer, t)                # each drawn picture: start its read-back
    rig.shutdown()                                # first thing at shutdown: finish the take, close sockets

Each part that cannot start (its library is missing, its port is taken, its device is not there)
says why in one line and the show goes on without it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..control.commands import NudgeTempo, SetQuantize, SetTempo, Tap, ToggleRecording
from ..errors import UserError
from .outputs import AudioChunk, OutputUnavailable, SenderThread
from .quantize import Quantiser
from .record import Recorder, RecordSettings, check_record_path

log = logging.getLogger(__name__)

MIN_BPM, MAX_BPM = 20.0, 999.0


@dataclass(frozen=True)
class RigOptions:
    osc_in: Optional[str] = None  # PORT (loopback) or HOST:PORT (0.0.0.0:PORT: the network)
    osc_out: tuple[str, ...] = ()  # HOST:PORT each
    osc_rate: Optional[float] = None  # features per second (None: every analysis hop)
    link: bool = False
    link_latency_ms: float = 0.0
    ndi: Optional[str] = None
    syphon: Optional[str] = None
    spout: Optional[str] = None
    v4l2: Optional[str] = None
    record: Optional[str] = None
    record_codec: Optional[str] = None
    record_fps: int = 30
    quantize: str = "preset"
    max_output_fps: float = 60.0

    @property
    def any(self) -> bool:
        return bool(self.osc_in or self.osc_out or self.link or self.ndi or self.syphon or self.spout or self.v4l2
                    or self.record)

    def check(self) -> "RigOptions":
        """What can be checked before the show opens anything: one line each."""
        if self.record:
            check_record_path(Path(self.record))
        if self.osc_rate is not None and not 0 < self.osc_rate <= 1000:
            raise UserError(f"--osc-rate {self.osc_rate:g}: give features per second, 1–1000")
        if self.record_fps not in (24, 25, 30, 50, 60):
            raise UserError(f"--record-fps {self.record_fps}: choose 24, 25, 30, 50 or 60")
        from .endpoints import parse_endpoint

        if self.osc_in:
            parse_endpoint(self.osc_in, "--osc-in")
        for target in self.osc_out:
            parse_endpoint(target, "--osc-out")
        return self


class _ShowState:
    """What OSC queries read: snapshots only."""

    def __init__(self, show: Any, rig: "Rig") -> None:
        self.params = show.params
        self._show = show
        self._rig = rig

    def features(self) -> Any:
        return self._show.audio.latest()

    def preset_name(self) -> str:
        return self._show.preset.name

    def recording(self) -> bool:
        return self._rig.recorder.recording

    def quantum(self) -> str:
        return self._rig.quantiser.quantum


class Rig:
    def __init__(self, show: Any, options: RigOptions) -> None:
        self.show = show
        self.options = options
        self.senders: list[SenderThread] = []
        self.osc_in: Any = None
        self.osc_out: Any = None
        self.link: Any = None
        self.grabber: Any = None
        self.quantiser = Quantiser(lambda: show.audio.latest(), quantum=options.quantize)
        self._tasks: list[Any] = []
        self._closers: list[Any] = []
        record = RecordSettings(Path(options.record), options.record_codec, options.record_fps) \
            if options.record else None
        from ..paths import data_dir

        self.recorder = Recorder(show.supervisor, show.alarms, record, audio_rate=self._audio_rate,
                                 default_dir=lambda: data_dir() / "recordings")

    # --- start (main thread) ------------------------------------------------------------------------------

    def start(self) -> None:
        show = self.show
        steering = show.steering
        steering.add_handler(ToggleRecording, lambda c: self.recorder.toggle(c.on))
        steering.add_handler(SetTempo, lambda c: self.set_tempo(c.bpm))
        steering.add_handler(NudgeTempo, self._nudge_tempo)
        steering.add_handler(SetQuantize, lambda c: self.quantiser.set_quantum(c.quantum))
        steering.add_handler(Tap, self._tap)
        if show.director is not None:
            show.director.commit_gate = self.quantiser.gate
        for start in (self._start_osc_in, self._start_osc_out, self._start_link, self._start_outputs):
            try:
                start()
            except UserError as e:
                log.warning("%s", e)  # one line; the show goes on without this part
        show.audio.add_hop_listener(self._on_hop)
        if self.options.record:
            self.recorder.start()

    def _spawn(self, name: str, body: Any, label: str, **kw: Any) -> None:
        self._tasks.append(self.show.supervisor.spawn(name, body, label=label, **kw))

    def _start_osc_in(self) -> None:
        if not self.options.osc_in:
            return
        _need_osc("--osc-in")
        from .endpoints import parse_endpoint
        from .osc_in import OscListener, OscRouter

        endpoint = parse_endpoint(self.options.osc_in, "--osc-in")
        self.osc_in = OscListener(endpoint, OscRouter(self.show.post, _ShowState(self.show, self)))
        self._closers.append(self.osc_in.close)
        self._spawn("osc-in", self.osc_in.run, "OSC IN")
        where = "the network" if endpoint.host == "0.0.0.0" else "this machine only"
        log.info("OSC: listening on %s (%s); `vjgan osc addresses` lists what it takes", self.osc_in.endpoint, where)

    def _start_osc_out(self) -> None:
        if not self.options.osc_out:
            return
        _need_osc("--osc-out")
        from .endpoints import parse_endpoint
        from .osc_out import OscSender

        targets = [parse_endpoint(t, "--osc-out") for t in self.options.osc_out]
        self.osc_out = OscSender(targets, self.show.params, self.options.osc_rate,
                                 preset_name=lambda: self.show.preset.name)
        self._closers.append(self.show.params.subscribe(self.osc_out.on_param))
        self._closers.append(self.osc_out.close)
        self._spawn("osc-out", self.osc_out.run, "OSC OUT")
        rate = "every analysis hop" if self.options.osc_rate is None else f"{self.options.osc_rate:g} times a second"
        log.info("OSC: sending features (%s) and parameter changes to %s", rate, ", ".join(map(str, targets)))

    def _start_link(self) -> None:
        if not self.options.link:
            return
        from .link import LinkSession  # the GPL extra: imported only here, only with --link

        self.link = LinkSession(self.show.audio, self.options.link_latency_ms)
        self._closers.append(self.link.close)
        self._spawn("link", self.link.run, "LINK")
        log.info("Link: joined the session (latency offset %.0f ms); it drives the beat clock while a peer is there",
                 self.options.link_latency_ms)

    def _start_outputs(self) -> None:
        from .outputs import output_kinds

        o = self.options
        wanted = {"NDI": o.ndi, "Syphon": o.syphon, "Spout": o.spout, "v4l2loopback": o.v4l2}
        for kind in output_kinds():
            name = wanted.get(kind.name)
            if not name:
                continue
            why = kind.probe()
            try:
                if why:
                    raise OutputUnavailable(f"{kind.option.split()[0]} {name}: {why}")
                sink = kind.make(name)
            except OutputUnavailable as e:
                log.warning("%s", e)  # one line; the show goes on without this output
                continue
            sender = SenderThread(sink)
            self.senders.append(sender)
            self._spawn(f"out-{sink.label}", sender.run, sink.label.upper())
            log.info("%s: sending the output%s", sink.label, " and the show's sound" if sink.takes_audio else "")

    # --- per turn (main thread) ------------------------------------------------------------------------------

    @property
    def wants_pictures(self) -> bool:
        return bool(self.senders) or self.recorder.recording

    def collect(self) -> None:
        """The picture read back last turn goes to the outputs and the recorder."""
        if self.grabber is None:
            return
        picture = self.grabber.collect()
        if picture is None:
            return
        for sender in self.senders:
            sender.offer_picture(picture)
        self.recorder.offer_picture(picture)

    def after_present(self, renderer: Any, presented_at: float) -> None:
        if not self.wants_pictures:
            return
        if self.grabber is None:
            from .grab import PictureGrabber

            self.grabber = PictureGrabber(renderer.ctx, self.options.max_output_fps)
        self.grabber.grab(renderer, presented_at)

    # --- the capture thread ---------------------------------------------------------------------------------------

    def _on_hop(self, features: Any, samples: np.ndarray) -> None:
        if self.osc_out is not None:
            self.osc_out.on_hop(features)
        if not (self.senders or self.recorder.recording):
            return
        chunk = AudioChunk(np.array(samples, dtype=np.float32), self._audio_rate() or 48000, features.adc_time)
        for sender in self.senders:
            sender.offer_audio(chunk)
        self.recorder.offer_audio(chunk)

    def _audio_rate(self) -> Optional[int]:
        audio = self.show.audio
        return int(audio.source.rate) if audio is not None else None

    # --- commands (main loop) ------------------------------------------------------------------------------------

    def set_tempo(self, bpm: float) -> None:
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise UserError(f"tempo {bpm:g} BPM: give {MIN_BPM:g}–{MAX_BPM:g}")
        if self.link is not None:
            self.link.set_tempo(bpm)  # the session's; it comes back as the clock's while a peer is there
        self.show.audio.set_bpm(bpm)

    def _nudge_tempo(self, c: NudgeTempo) -> None:
        bpm = self.link.tempo() if self.link is not None and self.link.driving else self.show.audio.latest().bpm
        if bpm <= 0:
            raise UserError("no tempo yet to nudge: tap, or set one (/vjgan/tempo)")
        self.set_tempo(bpm + c.delta_bpm)

    def _tap(self, c: Tap) -> None:
        self.show.audio.tap(c.t)  # the beat clock's own tap tempo, as without the rig
        if self.link is not None:
            self.link.tap(c.t)  # and the session's tempo

    # --- the HUD and the operator window -------------------------------------------------------------------------

    def status_lines(self) -> tuple[str, ...]:
        lines = []
        rec = self.recorder.status()
        if rec:
            lines.append(rec)
        for sender in self.senders:
            lines.append(sender.status())
        if self.link is not None:
            lines.append(self.link.status())
        if self.osc_in is not None:
            s = self.osc_in.stats
            lines.append(f"OSC in {self.osc_in.endpoint} · {s.received} messages · {s.bad} refused")
        if self.osc_out is not None:
            s = self.osc_out.stats
            lines.append(f"OSC out · {s.bundles} bundles · {s.dropped_hops} hops dropped")
        return tuple(lines)

    # --- shutdown (main thread, before the supervisor stops) ------------------------------------------------------

    def shutdown(self) -> None:
        self.recorder.close()  # every take finished and renamed before anything else goes
        for task in self._tasks:
            task.stop()
        for task in self._tasks:
            task.join(3.0)
        for close in reversed(self._closers):
            try:
                close()
            except Exception as e:  # closing one part must not keep the others open
                log.warning("rig: %s did not close cleanly: %s", getattr(close, "__qualname__", close), e)
        self._closers = []
        if self.grabber is not None:
            self.grabber.release()
            self.grabber = None


def _need_osc(option: str) -> None:
    try:
        import pythonosc  # noqa: F401
    except ImportError:
        raise UserError(f"{option}: OSC needs python-osc (pip install 'vjgan[osc]')") from None
