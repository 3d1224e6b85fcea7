"""OSC in: each message becomes the command a key or pad would post, on the show's one path.

`OscRouter` turns one message into a command (posted) or, for `?`, a reply read from snapshots
(the parameter store's, the newest Features): a query never changes anything. `OscListener` is
the supervised thread around a UDP socket: it reads packets, honours bundles with their timetags
(a bundle for later waits in a bounded schedule and is posted when due, stamped with its time),
answers queries to the sender's address, and reports unknown addresses and bad arguments in one
log line per kind and interval (`RateLimitedLog`), never stopping for them.
"""

from __future__ import annotations

import heapq
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Protocol, Sequence

from ..control.commands import (ACTIONS, Command, NudgeTempo, Portrait, Prompt, QUANTA, RecallPreset, SetParam,
                                 SetQuantize, SetTempo, Tap, ToggleRecording, UnknownActionError, parse_action)
from ..errors import UserError
from ..logs import RateLimitedLog
from .endpoints import Endpoint
from .osc_tree import ROOT

log = logging.getLogger(__name__)

MAX_PACKET = 65536
MAX_SCHEDULED = 4096  # bundles for later, held at most this many messages (a flood cannot grow memory)
MAX_AHEAD_S = 600.0  # a timetag further ahead than this is a sender's clock error, not a plan


class BadMessage(Exception):
    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind  # "unknown" (no such address or name) or "type" (arguments it does not take)


@dataclass(frozen=True)
class Reply:
    address: str
    values: tuple[Any, ...]


class ShowState(Protocol):
    """What queries read (snapshots only)."""

    params: Any  # ParamStore: snapshot(), spec_map(), names()

    def features(self) -> Any: ...  # the newest Features

    def preset_name(self) -> str: ...

    def recording(self) -> bool: ...

    def quantum(self) -> str: ...


def _is_query(args: Sequence[Any]) -> bool:
    return len(args) == 1 and args[0] == "?"


def _number(address: str, args: Sequence[Any]) -> float:
    if len(args) != 1 or isinstance(args[0], (str, bytes)) or args[0] is None:
        raise BadMessage("type", f"OSC {address}: expected one number, got {_describe(args)}")
    x = float(args[0])  # bools (T/F) are 1/0
    if not math.isfinite(x):
        raise BadMessage("type", f"OSC {address}: {args[0]!r} is not a finite number")
    return x


def _pressed(address: str, args: Sequence[Any]) -> bool:
    """A button: no argument, or a non-zero number, fires; 0 is its release."""
    if not args:
        return True
    return _number(address, args[:1]) != 0.0


def _describe(args: Sequence[Any]) -> str:
    if not args:
        return "no argument"
    return ", ".join(f"{type(a).__name__} {a!r}" for a in args)[:80]


class OscRouter:
    def __init__(self, post: Callable[[Command], None], state: ShowState) -> None:
        self._post = post
        self.state = state

    def route(self, address: str, args: Sequence[Any], t: float) -> Optional[Reply]:
        """Post the command `address` stands for (or answer a `?`); BadMessage when it stands for none."""
        if not address.startswith(ROOT + "/"):
            raise BadMessage("unknown", f"OSC {address}: not a vjgan address (they start with {ROOT}/)")
        path = address[len(ROOT) + 1:]
        head, _, rest = path.partition("/")
        query = _is_query(args)
        if head == "param" and rest:
            return self._param(address, rest, args, t, query)
        if head == "action" and rest:
            return self._action(address, rest, args, t)
        if head == "band" and rest and query:
            f = self.state.features()
            if rest not in f.band_names:
                raise BadMessage("unknown", f"OSC {address}: no band named {rest!r} ({', '.join(f.band_names)})")
            return Reply(address, (float(f.band(rest)),))
        handler = _SIMPLE.get(path)
        if handler is None:
            raise BadMessage("unknown", f"OSC {address}: no such address (`vjgan osc addresses` lists them)")
        return handler(self, address, args, t, query)

    # --- one method per address ----------------------------------------------------------------------

    def _param(self, address: str, name: str, args: Sequence[Any], t: float, query: bool) -> Optional[Reply]:
        spec = self.state.params.spec_map().get(name)
        if spec is None:
            raise BadMessage("unknown", f"OSC {address}: no parameter named {name!r} (/vjgan/params ? lists them)")
        if query:
            return Reply(address, (float(spec.to_normalized(self.state.params.snapshot().get(name, spec.default))),))
        self._post(SetParam(name, min(1.0, max(0.0, _number(address, args))), normalized=True, t=t, source="osc"))
        return None

    def _action(self, address: str, name: str, args: Sequence[Any], t: float) -> None:
        base, colon, _ = name.partition(":")
        spec = ACTIONS.get(base)
        if spec is None:
            raise BadMessage("unknown", f"OSC {address}: no action named {base!r} (`vjgan commands` lists them)")
        argument: Optional[str] = None
        if colon:
            try:
                spec, argument = parse_action(name)
            except UnknownActionError as e:
                raise BadMessage("unknown", f"OSC {address}: {e}") from None
        if spec.argument and argument is None:
            if len(args) != 1 or not isinstance(args[0], (str, int)) or isinstance(args[0], bool):
                raise BadMessage("type", f"OSC {address}: needs its argument ({spec.argument}), got {_describe(args)}")
            argument = str(args[0])
        elif not spec.argument and not _pressed(address, args):
            return None
        try:
            command = spec.make(argument)
        except UserError as e:
            raise BadMessage("type", f"OSC {address}: {e}") from None
        self._post(replace(command, t=t, source="osc"))
        return None

    def _preset(self, address: str, args: Sequence[Any], t: float, query: bool) -> Optional[Reply]:
        if query:
            return Reply(address, (self.state.preset_name(),))
        if len(args) != 1 or not isinstance(args[0], (str, int)) or isinstance(args[0], bool):
            raise BadMessage("type", f"OSC {address}: expected a preset name or number, got {_describe(args)}")
        self._post(RecallPreset(str(args[0]), t=t, source="osc"))
        return None

    def _tap(self, address: str, args: Sequence[Any], t: float, query: bool) -> None:
        if _pressed(address, args):
            self._post(Tap(t=t, source="osc"))
        return None

    def _tempo(self, address: str, args: Sequence[Any], t: float, query: bool) -> Optional[Reply]:
        if query:
            return Reply(address, (float(self.state.features().bpm),))
        self._post(SetTempo(_number(address, args), t=t, source="osc"))
        return None

    def _nudge(self, address: str, args: Sequence[Any], t: float, query: bool) -> None:
        self._post(NudgeTempo(_number(address, args), t=t, source="osc"))
        return None

    def _record(self, address: str, args: Sequence[Any], t: float, query: bool) -> Optional[Reply]:
        if query:
            return Reply(address, (1 if self.state.recording() else 0,))
        on = None if not args else _number(address, args) != 0.0
        self._post(ToggleRecording(on, t=t, source="osc"))
        return None

    def _quantize(self, address: str, args: Sequence[Any], t: float, query: bool) -> Optional[Reply]:
        if query:
            return Reply(address, (self.state.quantum(),))
        if len(args) != 1 or args[0] not in QUANTA:
            raise BadMessage("type", f"OSC {address}: expected one of {', '.join(QUANTA)}, got {_describe(args)}")
        self._post(SetQuantize(args[0], t=t, source="osc"))
        return None

    def _text(self, address: str, args: Sequence[Any]) -> str:
        if len(args) != 1 or not isinstance(args[0], str) or not args[0].strip():
            raise BadMessage("type", f"OSC {address}: expected one text argument, got {_describe(args)}")
        return args[0]

    def _prompt(self, address: str, args: Sequence[Any], t: float, query: bool) -> None:
        self._post(Prompt(self._text(address, args), t=t, source="osc"))
        return None

    def _portrait(self, address: str, args: Sequence[Any], t: float, query: bool) -> None:
        self._post(Portrait(self._text(address, args), t=t, source="osc"))
        return None

    def _params(self, address: str, args: Sequence[Any], t: float, query: bool) -> Reply:
        return Reply(address, tuple(self.state.params.names()))

    def _feature(self, address: str, args: Sequence[Any], t: float, query: bool) -> Reply:
        if not query:
            raise BadMessage("type", f"OSC {address}: vjgan sends this; send ? to ask for it")
        f = self.state.features()
        values = {f"{ROOT}/beat": (int(f.beat_count), float(f.phase_at(time.perf_counter()))),
                  f"{ROOT}/bpm": (float(f.bpm),), f"{ROOT}/loudness": (float(f.loudness),),
                  f"{ROOT}/clock": (f.tempo_source,)}
        return Reply(address, values[address])


_SIMPLE: dict[str, Callable[..., Optional[Reply]]] = {
    "preset": OscRouter._preset, "tap": OscRouter._tap, "tempo": OscRouter._tempo,
    "prompt": OscRouter._prompt, "portrait": OscRouter._portrait,
    "tempo/nudge": OscRouter._nudge, "record": OscRouter._record, "quantize": OscRouter._quantize,
    "params": OscRouter._params, "beat": OscRouter._feature, "bpm": OscRouter._feature,
    "loudness": OscRouter._feature, "clock": OscRouter._feature,
}


@dataclass
class ListenerStats:
    received: int = 0  # messages taken
    bad: int = 0  # messages refused (unknown address, bad arguments, unreadable packets)
    replies: int = 0
    scheduled: int = 0  # waiting for their timetag now


class OscListener:
    """The UDP socket and its supervised thread (`run`). Bound at construction, so a port in use is
    one line when the show starts, not a thread that keeps failing."""

    def __init__(self, endpoint: Endpoint, router: OscRouter, option: str = "--osc-in") -> None:
        from pythonosc.osc_packet import OscPacket, ParseError  # the `osc` extra; checked by the caller

        self._packet, self._parse_error = OscPacket, ParseError
        self.endpoint = endpoint
        self.router = router
        self.stats = ListenerStats()
        self._say = RateLimitedLog(log, 5.0)
        self._schedule: list[tuple[float, int, str, tuple[Any, ...], tuple[str, int]]] = []
        self._order = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((endpoint.host, endpoint.port))
        except OSError as e:
            self.sock.close()
            raise UserError(f"{option} {endpoint}: cannot listen there ({e.strerror or e})") from None
        self.sock.settimeout(0.2)
        self.endpoint = Endpoint(endpoint.host, self.sock.getsockname()[1])  # port 0: the one given

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._post_due()
            wait = 0.2 if not self._schedule else min(0.2, max(0.0, self._schedule[0][0] - time.perf_counter()))
            self.sock.settimeout(max(wait, 0.001))
            try:
                data, sender = self.sock.recvfrom(MAX_PACKET)
            except socket.timeout:
                continue
            except OSError:
                if stop.is_set():
                    return
                raise
            self.take(data, sender, time.perf_counter())

    def take(self, data: bytes, sender: tuple[str, int], arrived: float) -> None:
        """One datagram: a message or a bundle (nested bundles too)."""
        try:
            packet = self._packet(data)
        except self._parse_error as e:
            self.stats.bad += 1
            self._say("unreadable", f"OSC from {sender[0]}:{sender[1]}: unreadable packet ({e})")
            return
        wall = time.time()
        for timed in packet.messages:
            ahead = timed.time - wall
            address, args = timed.message.address, tuple(timed.message.params)
            if ahead > 0.0005:
                self._hold(arrived + min(ahead, MAX_AHEAD_S), address, args, sender)
            else:
                self._handle(address, args, arrived, sender)

    def _hold(self, due: float, address: str, args: tuple[Any, ...], sender: tuple[str, int]) -> None:
        if len(self._schedule) >= MAX_SCHEDULED:
            self.stats.bad += 1
            self._say("schedule", f"OSC: more than {MAX_SCHEDULED} timed messages waiting; dropped {address}")
            return
        self._order += 1
        heapq.heappush(self._schedule, (due, self._order, address, args, sender))
        self.stats.scheduled = len(self._schedule)

    def _post_due(self) -> None:
        now = time.perf_counter()
        while self._schedule and self._schedule[0][0] <= now:
            due, _, address, args, sender = heapq.heappop(self._schedule)
            self._handle(address, args, due, sender)  # stamped with its timetag, not with now
        self.stats.scheduled = len(self._schedule)

    def _handle(self, address: str, args: tuple[Any, ...], t: float, sender: tuple[str, int]) -> None:
        self.stats.received += 1
        try:
            reply = self.router.route(address, args, t)
        except BadMessage as e:
            self.stats.bad += 1
            self._say(e.kind, str(e))
            return
        except UserError as e:
            self.stats.bad += 1
            self._say("type", f"OSC {address}: {e}")
            return
        if reply is not None:
            self._reply(reply, sender)

    def _reply(self, reply: Reply, to: tuple[str, int]) -> None:
        from pythonosc.osc_message_builder import OscMessageBuilder

        b = OscMessageBuilder(reply.address)
        for v in reply.values:
            b.add_arg(v)
        try:
            self.sock.sendto(b.build().dgram, to)
            self.stats.replies += 1
        except OSError as e:
            self._say("reply", f"OSC: cannot answer {to[0]}:{to[1]} ({e.strerror or e})")

    def close(self) -> None:
        self.sock.close()
