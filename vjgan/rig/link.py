"""Ableton Link (`--link`, extra `link`: LinkPython-extern, GPL-2.0-or-later like Link itself).

vjgan's core never imports it: only `--link` does, so a vjgan without the extra stays MIT.

While the session has at least one other peer (the DJ's software), its tempo and phase drive the
beat clock: a supervised thread reads the session every few milliseconds and hands the audio
engine (session beat, tempo) at a perf_counter time, which the capture thread's beat clock follows
(`BeatClock.link_timeline`), so beat_count % 4 == 0 on the session's bar. The latency offset
shifts the clock earlier by what the picture lags behind the sound (as Link apps do for their
output latency): frames made now reach the screen later, and show the beat the room hears then.

Tap, typed tempo and nudges change the session's tempo, so everybody in the session follows.

Priority of what drives the beat clock: Link (with a peer) > MIDI clock > tap or typed tempo >
the audio's own tempo; the HUD and OSC (`/vjgan/clock`) say which one does.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

from ..audio.tempo import TapTempo
from ..errors import UserError

log = logging.getLogger(__name__)

QUANTUM = 4  # beats per bar in the session (Link's "quantum")
PERIOD_S = 0.005  # how often the session is read
JOIN_SETTLE_S = 1.0  # peers present this long before the session drives the beat clock
MIN_BPM, MAX_BPM = 20.0, 999.0  # Link's own tempo range

INSTALL = "pip install 'vjgan[link]' (LinkPython-extern, GPL-2.0-or-later)"


def link_library() -> Any:
    try:
        import link
    except ImportError:
        raise UserError(f"--link: Ableton Link needs LinkPython-extern ({INSTALL})") from None
    return link


class LinkSession:
    """vjgan's peer in the Link session; the reading thread is `run` (supervised)."""

    def __init__(self, engine: Any, latency_ms: float = 0.0, bpm: float = 120.0) -> None:
        library = link_library()
        self.engine = engine
        self.latency_s = latency_ms / 1000.0
        self._link = library.Link(float(bpm))
        self._link.enabled = True
        self.driving = False
        self.taps = TapTempo()
        self._guard = threading.Lock()  # LinkPython's app-session calls from two threads, in turn

    # --- the reading thread --------------------------------------------------------------------------------

    _peers_since: Optional[float] = None

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.wait(PERIOD_S):
                self.read_once()
        finally:
            if self.driving:
                self.engine.link_lost()
                self.driving = False

    def read_once(self) -> None:
        if self._link.numPeers() == 0:
            self._peers_since = None
            if self.driving:
                self.engine.link_lost()
                self.driving = False
                log.info("Link: no peer left; the beat clock follows its own sources again")
            return
        if not self.driving:
            # A joining peer first sees its own timeline; Link adopts the session's after measuring
            # the peers' clocks. Driving the beat clock only once that settled keeps a join from
            # flashing a beat at the wrong tempo.
            now = time.monotonic()
            if self._peers_since is None:
                self._peers_since = now
            if now - self._peers_since < JOIN_SETTLE_S:
                return
        t, micros = self._now()
        with self._guard:
            state = self._link.captureAppSessionState()
            beat = state.beatAtTime(micros + int(self.latency_s * 1e6), QUANTUM)
            bpm = state.tempo()
        self.engine.link_timeline(t, beat, bpm)
        if not self.driving:
            self.driving = True
            log.info("Link: %d peer%s at %.1f BPM; the session drives the beat clock", self.peers,
                     "" if self.peers == 1 else "s", bpm)

    def _now(self) -> tuple[float, int]:
        """perf_counter and Link's clock read together (the mid-point of two perf_counter reads)."""
        a = time.perf_counter()
        micros = self._link.clock().micros()
        b = time.perf_counter()
        return 0.5 * (a + b), micros

    # --- commands (main loop) ---------------------------------------------------------------------------------

    @property
    def peers(self) -> int:
        return int(self._link.numPeers())

    def tempo(self) -> float:
        with self._guard:
            return float(self._link.captureAppSessionState().tempo())

    def beat_now(self) -> float:
        _, micros = self._now()
        with self._guard:
            return float(self._link.captureAppSessionState().beatAtTime(micros, QUANTUM))

    def set_tempo(self, bpm: float) -> None:
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise UserError(f"tempo {bpm:g} BPM: Link takes {MIN_BPM:g}–{MAX_BPM:g}")
        _, micros = self._now()
        with self._guard:
            state = self._link.captureAppSessionState()
            state.setTempo(float(bpm), micros)
            self._link.commitAppSessionState(state)

    def tap(self, t: float) -> Optional[float]:
        """A tap (at its own time): two or more set the session's tempo. Returns the BPM set."""
        if not self.taps.add(t):
            return None
        period = self.taps.period()
        if period is None or period <= 0:
            return None
        bpm = min(MAX_BPM, max(MIN_BPM, 60.0 / period))
        self.set_tempo(bpm)
        return bpm

    def status(self) -> str:
        n = self.peers
        who = f"{n} peer{'' if n == 1 else 's'}" if n else "no peers"
        return f"LINK {who} · {self.tempo():.1f} BPM" + (" · drives the clock" if self.driving else "")

    def close(self) -> None:
        self._link.enabled = False
