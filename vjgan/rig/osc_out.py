"""OSC out: what the analyser hears, and every parameter change, to each `--osc-out HOST:PORT`.

Two things feed it, and neither waits for it:
- the audio engine's hop listener hands each hop's Features over (a bounded deque: if the sender
  falls behind, the oldest hops go and are counted);
- the parameter store's change notices (from any input: MIDI, keys, OSC, a preset recall) are
  folded into a name → newest value map.
Its own supervised thread sends one bundle per hop (or at `rate_hz`, with onsets and beats in
between kept), and the parameter changes at most `PARAM_RATE_HZ` times a second, from a
non-blocking socket: a receiver that is not there costs nothing but a rate-limited line.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ..logs import RateLimitedLog
from .endpoints import Endpoint
from .osc_tree import ROOT

log = logging.getLogger(__name__)

PARAM_RATE_HZ = 60.0  # parameter echoes per second at most (a knob sweep arrives as its newest values)
MAX_BACKLOG = 256  # hops held for the sender (2.5 s at 100 hops a second)


@dataclass
class SenderStats:
    bundles: int = 0
    params: int = 0
    dropped_hops: int = 0  # hops the sender was too far behind to send
    errors: int = 0


def feature_messages(f: Any, onsets: Sequence[bool], now: float) -> list[tuple[str, tuple[Any, ...]]]:
    """The messages one hop stands for (pure: tests read it)."""
    out: list[tuple[str, tuple[Any, ...]]] = [(f"{ROOT}/hop", (int(f.hop_index),))]
    for name, value in zip(f.band_names, f.bands):
        out.append((f"{ROOT}/band/{name}", (float(value),)))
    for name, fired in zip(f.band_names, onsets):
        if fired:
            out.append((f"{ROOT}/onset/{name}", (1,)))
    out.append((f"{ROOT}/beat", (int(f.beat_count), float(f.beat_phase))))
    out.append((f"{ROOT}/bpm", (float(f.bpm),)))
    out.append((f"{ROOT}/clock", (str(f.tempo_source),)))
    out.append((f"{ROOT}/loudness", (float(f.loudness),)))
    return out


class OscSender:
    def __init__(self, targets: Sequence[Endpoint], params: Any, rate_hz: Optional[float] = None,
                 preset_name: Callable[[], str] = lambda: "") -> None:
        from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder  # the `osc` extra
        from pythonosc.osc_message_builder import OscMessageBuilder

        self._bundle, self._message, self._immediately = OscBundleBuilder, OscMessageBuilder, IMMEDIATELY
        self.targets = tuple(targets)
        self.params = params
        self.rate_hz = rate_hz
        self._preset_name = preset_name
        self.stats = SenderStats()
        self._say = RateLimitedLog(log, 5.0)
        self._hops: deque[Any] = deque()
        self._pending_params: dict[str, float] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._last_params = 0.0
        self._last_send = 0.0
        self._held_onsets: Optional[list[bool]] = None
        self._sent_preset = ""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    # --- fed by other threads (return at once) -----------------------------------------------------

    def on_hop(self, features: Any, samples: Any = None) -> None:
        with self._guard:
            if len(self._hops) >= MAX_BACKLOG:
                self._hops.popleft()
                self.stats.dropped_hops += 1
            self._hops.append(features)
        self._wake.set()

    def on_param(self, name: str, value: float, origin: Any = None) -> None:
        with self._guard:
            self._pending_params[name] = value
        self._wake.set()

    # --- the sender's thread -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(0.1)
            self._wake.clear()
            self.send_pending(time.perf_counter())

    def send_pending(self, now: float) -> None:
        with self._guard:
            hops = list(self._hops)
            self._hops.clear()
        for f in self._due_hops(hops, now):
            self._send_bundle(feature_messages(f[0], f[1], now))
        if now - self._last_params >= 1.0 / PARAM_RATE_HZ:
            self._send_params(now)
        name = self._preset_name()
        if name and name != self._sent_preset:
            # A new preset brings its own values (registered without change notices): send them
            # all, so a controller showing the old preset's values catches up.
            self._sent_preset = name
            self._send_bundle([(f"{ROOT}/preset", (name,))])
            with self._guard:
                self._pending_params = {**self.params.snapshot().values, **self._pending_params}
            self._send_params(now)

    def _due_hops(self, hops: list[Any], now: float) -> list[tuple[Any, Sequence[bool]]]:
        """Every hop at the hop rate; at a chosen rate, the newest when due, with the onsets of the
        hops skipped in between kept (an onset is an event: it must not fall between two sends)."""
        if self.rate_hz is None:
            return [(f, f.onsets) for f in hops]
        for f in hops:
            held = self._held_onsets
            self._held_onsets = list(f.onsets) if held is None else [a or b for a, b in zip(held, f.onsets)]
        if not hops or now - self._last_send < 1.0 / self.rate_hz:
            return []
        self._last_send = now
        onsets, self._held_onsets = self._held_onsets or hops[-1].onsets, None
        return [(hops[-1], onsets)]

    def _send_params(self, now: float) -> None:
        with self._guard:
            pending, self._pending_params = self._pending_params, {}
        if not pending:
            return
        self._last_params = now
        specs = self.params.spec_map()
        messages = []
        for name, value in pending.items():
            spec = specs.get(name)
            if spec is not None:  # a parameter of a preset that has just gone: nothing to echo
                messages.append((f"{ROOT}/param/{name}", (float(spec.to_normalized(value)),)))
        self.stats.params += len(messages)
        if messages:
            self._send_bundle(messages)

    def _send_bundle(self, messages: list[tuple[str, tuple[Any, ...]]]) -> None:
        bundle = self._bundle(self._immediately)
        for address, args in messages:
            m = self._message(address)
            for a in args:
                m.add_arg(a)
            bundle.add_content(m.build())
        data = bundle.build().dgram
        for target in self.targets:
            try:
                self.sock.sendto(data, (target.host, target.port))
            except OSError as e:  # full buffer, unreachable network: this bundle is lost, the next one tries
                self.stats.errors += 1
                self._say(f"send:{target}", f"OSC out to {target}: {e.strerror or e}")
        self.stats.bundles += 1

    def close(self) -> None:
        self.sock.close()
