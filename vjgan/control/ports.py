"""MIDI ports through python-rtmidi: found by name, opened, watched, reopened when replugged.

Ports are chosen by a case-insensitive part of their name (`--midi nano` opens
"nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0"); every port that matches is opened, and several
patterns may be given. A background thread lists the ports at a low rate (never the MIDI
callback): a port that vanishes is closed and reported once, and reopened when a port matching
the same pattern appears again (with ALSA a replugged device often comes back under a new
client number, hence matching by pattern rather than by the old name).

Each open port is its own rtmidi client instance: rtmidi opens one port per instance, and a
fresh instance per (re)open avoids backends that cannot reopen a closed instance. One long-lived
instance per direction serves the listing, because creating instances in a loop leaks ALSA
sequencer clients.

Input is read by polling, not through rtmidi's callback. With a callback, rtmidi's own thread
(ALSA's input thread, JACK's process thread) must take Python's interpreter lock to deliver a
message, while python-rtmidi keeps that lock during `close_port()` and `delete()`, which join or
stop that very thread: closing a port while messages flow (the MIDI clock runs all night)
deadlocks or crashes, and both happened in vjgan's tests. Polled, the backend threads never
enter Python, a port can be closed at any moment, and the backend's own receive times still
travel with each message (`get_message()` returns them), so timing is as precise as before;
the reader adds at most `read_interval_s` (1 ms) of latency.

A flood must not lose a pad. Each input port holds `INPUT_QUEUE_SIZE` messages (rtmidi's
`queue_size_limit`; its default of 1024 is a tenth of a second of a 10,000 message/s burst), and
each time the reader wakes it takes everything waiting on every port, then hands the messages on
in order. Nothing is dropped or merged here: knob moves are coalesced later, in the show's
command queue, and notes and clock go through one by one. If a queue still fills up, rtmidi
drops what does not fit and prints a line per lost message straight to the process's stderr,
which vjgan cannot intercept; the reader notices a full queue and says so in one line, at most
every few seconds, with a count.

The reader and the watcher are supervised tasks: a fault in either (a bug in the message
handler, say) is logged with its traceback and raises an operator alarm, and the thread is
restarted with the messages it had read but not yet handed on. A port that vanishes is not a
fault: it is reported once, shown as an alarm until it returns, and reopened.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ..alarms import WARNING
from ..errors import UserError
from ..logs import RateLimitedLog
from ..supervise import Supervisor, Task
from .clock import TimestampMapper
from .mapping import stable_port_name

log = logging.getLogger(__name__)

# Messages an input port holds until the reader takes them: 6.5 s of a 10,000 message/s flood
# (a controller sends a few hundred a second; a DAW's automation burst or a MIDI storm far more).
# rtmidi allocates the ring up front: 32 bytes a message, 2 MB a port.
INPUT_QUEUE_SIZE = 65536
PROBE_QUEUE_SIZE = 2  # clients that only list ports never receive


class MidiPortError(UserError):
    """A MIDI port name that matches nothing, or a MIDI system that cannot be opened."""


API_ENV = "VJGAN_MIDI_API"  # lets a user on JACK (or a test) pick the backend without a flag
ALL_PORTS = "*"  # the pattern that matches every port (except vjgan's own and ALSA's Midi Through)

_API_NAMES = {
    "alsa": "API_LINUX_ALSA",
    "jack": "API_UNIX_JACK",
    "coremidi": "API_MACOSX_CORE",
    "core": "API_MACOSX_CORE",
    "winmm": "API_WINDOWS_MM",
    "windows": "API_WINDOWS_MM",
}
API_CHOICES = ("alsa", "jack", "coremidi", "winmm")


def _rtmidi() -> Any:
    try:
        import rtmidi  # python-rtmidi
    except ImportError as e:  # pragma: no cover - a dependency of vjgan; only a broken install lacks it
        raise MidiPortError(f"python-rtmidi is not installed or does not load ({e}); "
                            "pip install python-rtmidi") from None
    return rtmidi


def resolve_api(name: Optional[str] = None) -> int:
    """An rtmidi API constant from a name ("alsa", "jack", "coremidi", "winmm"); None reads
    $VJGAN_MIDI_API and otherwise takes the platform's default (ALSA, CoreMIDI or WinMM)."""
    rtmidi = _rtmidi()
    if name is None:
        name = os.environ.get(API_ENV) or None
    if name is None or name.strip().lower() in ("", "default"):
        return rtmidi.API_UNSPECIFIED
    key = name.strip().lower()
    if key not in _API_NAMES:
        raise MidiPortError(f"unknown MIDI API {name!r} (one of {', '.join(API_CHOICES)})")
    api = getattr(rtmidi, _API_NAMES[key])
    if api not in rtmidi.get_compiled_api():
        have = ", ".join(rtmidi.get_api_name(a) for a in rtmidi.get_compiled_api()) or "none"
        raise MidiPortError(f"this python-rtmidi was built without the {key} MIDI API (it has: {have})")
    return api


def api_label(api: int) -> str:
    rtmidi = _rtmidi()
    if api == rtmidi.API_UNSPECIFIED:
        platform = "CoreMIDI" if sys.platform == "darwin" else "Windows MM" if sys.platform == "win32" else "ALSA"
        return f"default, {platform}"
    return rtmidi.get_api_display_name(api) or str(api)


def is_own_port(name: str, client_name: str) -> bool:
    """Ports of vjgan's own clients (JACK lists them as "vjgan:in", "vjgan-01:in"; ALSA as
    "vjgan:in 130:0"): never open them, or feedback would loop back into the input."""
    return re.match(rf"^{re.escape(client_name)}(-\d+)?:", name) is not None


def port_matches(pattern: str, name: str) -> bool:
    if pattern == ALL_PORTS:
        return not name.startswith("Midi Through")
    return pattern.casefold() in name.casefold()


def match_ports(pattern: str, names: Sequence[str], client_name: str) -> list[str]:
    """Port names that `pattern` selects, in listing order, never vjgan's own."""
    return [n for n in names if not is_own_port(n, client_name) and port_matches(pattern, n)]


def _new_client(kind: str, api: int, client_name: str, queue_size: int = INPUT_QUEUE_SIZE) -> Any:
    rtmidi = _rtmidi()
    try:
        if kind == "input":
            return rtmidi.MidiIn(api, client_name, queue_size_limit=queue_size)
        return rtmidi.MidiOut(api, client_name)
    except Exception as e:  # rtmidi.SystemError: no ALSA sequencer, JACK server not running...
        raise MidiPortError(f"cannot open the MIDI system ({api_label(api)} API): {e}") from None


# libjack (JACK2) races when a client registers or unregisters a port while its notification
# thread still walks the client's port list for a latency update caused by an earlier graph
# change (jackaudio/jack2#216: a segfault in JackClient::HandleLatencyCallback, seen in vjgan's
# tests). RtMidi unregisters ports without deactivating the client first, so with JACK vjgan lets
# pending notifications drain before each port change. Other MIDI systems need no pause.
JACK_SETTLE_S = 0.05


def _is_jack(client: Any) -> bool:
    try:
        return client.get_current_api() == _rtmidi().API_UNIX_JACK
    except Exception:
        return False


def jack_settle(client: Any) -> None:
    if _is_jack(client):
        time.sleep(JACK_SETTLE_S)


def _delete(client: Any) -> None:
    """Free an rtmidi instance now (garbage collection may keep its OS client alive for a while)."""
    try:
        if client.is_port_open():
            jack_settle(client)  # (a client without ports has no port list to race on)
        client.close_port()
    except Exception:
        pass
    try:
        client.delete()
    except Exception:
        pass


def list_midi_ports(api: Optional[str] = None) -> dict[str, Any]:
    """MIDI input and output port names for `vjgan devices`; never raises.

    Returns {"api": str, "inputs": [names], "outputs": [names], "error": None or one line}.
    """
    result: dict[str, Any] = {"api": "default", "inputs": [], "outputs": [], "error": None}
    try:
        api_id = resolve_api(api)
        result["api"] = api_label(api_id)
        for kind, key in (("input", "inputs"), ("output", "outputs")):
            client = _new_client(kind, api_id, "vjgan-list", PROBE_QUEUE_SIZE)
            try:
                result[key] = [n for n in client.get_ports() if n]
            finally:
                _delete(client)
    except UserError as e:
        result["error"] = str(e)
    except Exception as e:  # pragma: no cover - rtmidi raising something unexpected
        result["error"] = f"cannot list MIDI ports: {e}"
    return result


MessageFn = Callable[[str, list, float], None]  # (port name, bytes, time.perf_counter seconds)


class _OpenInput:
    """One open input port: its rtmidi client and the clock that maps its message times."""

    def __init__(self, name: str, client: Any) -> None:
        self.name = name
        self.client = client
        self.mapper = TimestampMapper()

    def drain(self, limit: int) -> list[tuple[list, float]]:
        """Everything queued, up to `limit` messages, with their backend time deltas (caller
        holds the lock). `limit` is the queue's size: more than that are not waiting at once, and
        a sender faster than the reader cannot keep it here for ever."""
        out = []
        get = self.client.get_message
        append = out.append
        for _ in range(limit):
            event = get()
            if event is None:
                break
            append(event)
        return out


@dataclass(frozen=True)
class PortPatterns:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    outputs_required: bool  # outputs named explicitly (an error when absent) or implied by the inputs


class PortManager:
    """Opens the ports that match the patterns and keeps them open across unplugging."""

    def __init__(self, patterns: PortPatterns, on_message: MessageFn, *, api: Optional[str] = None,
                 client_name: str = "vjgan", report: Callable[[str], None] = lambda line: None,
                 poll_interval_s: float = 0.5, read_interval_s: float = 0.001,
                 on_output_connected: Callable[[str], None] = lambda name: None,
                 supervisor: Optional[Supervisor] = None, input_queue_size: int = INPUT_QUEUE_SIZE) -> None:
        """`on_message(port, bytes, t)` runs on the reader thread for every message, in order;
        whatever it raises (other than for bad input it reports itself) is a fault of the reader
        task. `supervisor` runs the reader and the watcher (a private one if None)."""
        if input_queue_size < 2:
            raise ValueError("input_queue_size must be at least 2")
        self.patterns = patterns
        self._on_message = on_message
        self._api_name = api
        self.client_name = client_name
        self._report = report
        self.poll_interval_s = poll_interval_s
        self.read_interval_s = read_interval_s
        self._on_output_connected = on_output_connected
        self._lock = threading.RLock()
        self._api: Optional[int] = None
        self._probe_in: Any = None
        self._probe_out: Any = None
        self._inputs: dict[str, _OpenInput] = {}
        self._outputs: dict[str, Any] = {}
        self._lost: set[tuple[str, str]] = set()  # (direction, name) reported as gone, not back yet
        self._waiting: set[tuple[str, str]] = set()  # (direction, pattern) reported as matching nothing
        self._failed: set[tuple[str, str]] = set()  # (direction, name) that failed to open, reported once
        self._suspect: set[str] = set()  # outputs whose last send failed: reopened on the next scan
        self._groups: dict[tuple[str, str], str] = {}  # (direction, port) -> device group (see send)
        self._system_down = False
        self._supervisor = supervisor if supervisor is not None else Supervisor()
        self._alarms = self._supervisor.alarms
        self.input_queue_size = input_queue_size
        self._watcher: Optional[Task] = None
        self._reader: Optional[Task] = None
        # Read from the ports but not yet handed on: survives a restart of the reader.
        self._backlog: deque[tuple[str, list, float]] = deque()
        self._say = RateLimitedLog(log, 5.0)  # one line per problem and port every 5 s, with a count
        self.polls = 0  # completed scans (tests wait on it instead of sleeping)

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self, *, require: bool = True) -> None:
        """Open what matches now. With `require`, a pattern that matches no port is a
        `MidiPortError` listing the ports there are; without it, it is reported once and
        opened when it appears."""
        if not self.patterns.inputs and not self.patterns.outputs:
            return
        try:
            self._start(require)
        except BaseException:
            self.stop()
            raise

    def _start(self, require: bool) -> None:
        self._api = resolve_api(self._api_name)
        try:
            self._probe_in = _new_client("input", self._api, f"{self.client_name}-list", PROBE_QUEUE_SIZE)
            self._probe_out = _new_client("output", self._api, f"{self.client_name}-list")
        except MidiPortError as e:
            if require:
                raise
            self._report(f"{e}; MIDI stays off until it can be opened")
            self._system_down = True
        if not self._system_down:
            ins, outs = self._list()
            if require:
                for pattern in self.patterns.inputs:
                    if not match_ports(pattern, ins, self.client_name):
                        raise MidiPortError(self._no_match("input", pattern, ins))
                if self.patterns.outputs_required:
                    for pattern in self.patterns.outputs:
                        if not match_ports(pattern, outs, self.client_name):
                            raise MidiPortError(self._no_match("output", pattern, outs))
            self._sync(ins, outs)
        self._watcher = self._supervisor.spawn("midi-ports", self._watch, label="MIDI PORT WATCHER",
                                               failing="controllers plugged in now are not opened")
        self._reader = self._supervisor.spawn("midi-in", self._read, label="MIDI INPUT",
                                              failing="knobs and pads may not respond")

    def stop(self) -> None:
        tasks = [t for t in (self._watcher, self._reader) if t is not None]
        for task in tasks:
            task.stop()
        for task in tasks:
            task.join(timeout=5.0)
        self._watcher = self._reader = None
        self._backlog.clear()
        with self._lock:
            for port in self._inputs.values():
                _delete(port.client)
            for client in self._outputs.values():
                _delete(client)
            self._inputs.clear()
            self._outputs.clear()
            for probe in (self._probe_in, self._probe_out):
                if probe is not None:
                    _delete(probe)
            self._probe_in = self._probe_out = None

    # --- state -----------------------------------------------------------------------------------------

    def open_inputs(self) -> list[str]:
        with self._lock:
            return list(self._inputs)

    def open_outputs(self) -> list[str]:
        with self._lock:
            return list(self._outputs)

    def send(self, port_pattern: Optional[str], messages: Sequence[Sequence[int]]) -> None:
        """Send LED feedback for a control on the input(s) matching `port_pattern` (None: any).
        An output that fails is reported (rate-limited) and reopened by the watcher; the failure
        does not reach the caller.

        Input and output of one device are often named differently (JACK: "...(capture)" and
        "...(playback)"; CoreMIDI and WinMM alike), so the output is found through the device
        group: the pattern that opened both (`--midi nano`), or with "*" the shared port name.
        A control of a device whose outputs are not open sends nothing, rather than lighting up
        another device.
        """
        with self._lock:  # the watcher must not delete an output while it sends
            if port_pattern is None:
                outs = list(self._outputs.items())
            else:
                groups = {self._groups.get(("input", n)) for n in self._inputs if port_matches(port_pattern, n)}
                outs = [(n, c) for n, c in self._outputs.items()
                        if self._groups.get(("output", n)) in groups or port_matches(port_pattern, n)]
            for name, client in outs:
                try:
                    for msg in messages:
                        client.send_message(list(msg))
                except Exception as e:  # the device's failure, not a fault: unplugged between two scans
                    self._suspect.add(name)  # the watcher reopens it
                    self._say(f"send:{name}", f"MIDI output '{name}' refused feedback ({e}); reopening it")

    # --- scanning -----------------------------------------------------------------------------------

    def _list(self) -> tuple[list[str], list[str]]:
        return [n for n in self._probe_in.get_ports() if n], [n for n in self._probe_out.get_ports() if n]

    def _no_match(self, direction: str, pattern: str, names: list[str]) -> str:
        avail = [n for n in names if not is_own_port(n, self.client_name)]
        listing = "; ".join(f"'{n}'" for n in avail) if avail else "none"
        return f"no MIDI {direction} port matches '{pattern}' (available {direction}s: {listing})"

    def _wanted(self, direction: str, names: list[str], open_inputs: list[str]) -> list[tuple[str, str]]:
        """(port name, device group) of the ports to have open in `direction`."""
        if direction == "input":
            patterns = self.patterns.inputs
        else:
            patterns = self.patterns.outputs
        wanted: dict[str, str] = {}
        for pattern in patterns:
            found = match_ports(pattern, names, self.client_name)
            if direction == "output" and pattern == ALL_PORTS and not self.patterns.outputs_required:
                # "Every input" must not mean "send LED feedback to every synth": only outputs of
                # the devices whose inputs are open (same name on ALSA and CoreMIDI).
                stems = {stable_port_name(n) for n in open_inputs}
                found = [n for n in found if stable_port_name(n) in stems]
            key = (direction, pattern)
            lost = any(d == direction and port_matches(pattern, n) for d, n in self._lost)
            if not found and not lost and (direction == "input" or self.patterns.outputs_required):
                if key not in self._waiting:
                    self._waiting.add(key)
                    self._report(f"waiting for a MIDI {direction} port matching '{pattern}'")
            else:
                self._waiting.discard(key)
            for n in found:
                wanted.setdefault(n, f"*{stable_port_name(n)}" if pattern == ALL_PORTS else pattern)
        return list(wanted.items())

    def _sync(self, ins: list[str], outs: list[str]) -> None:
        # Only this thread (or start(), before it runs) changes the port tables, so it reads them
        # freely; it takes the lock just to insert or remove an entry, so that the reader and the
        # feedback sender never wait for a port being opened or closed.
        for name in [n for n in self._inputs if n not in ins]:
            self._close_input(name, vanished=True)
        for name, group in self._wanted("input", ins, ins):
            if name not in self._inputs:
                self._groups[("input", name)] = group
                self._open_input(name)
        for name in [n for n in self._outputs if n not in outs or n in self._suspect]:
            # A send error on a port still listed: it was replugged between two scans (its
            # old connection is dead though the name is back), so reopen it.
            self._close_output(name, vanished=name not in outs)
        for name, group in self._wanted("output", outs, list(self._inputs)):
            if name not in self._outputs:
                self._groups[("output", name)] = group
                self._open_output(name)

    def _open_input(self, name: str) -> None:
        client = None
        try:
            client = _new_client("input", self._api, self.client_name, self.input_queue_size)
            names = client.get_ports()
            if name not in names:
                raise MidiPortError(f"MIDI input '{name}' vanished while opening")
            port = _OpenInput(name, client)
            # Clock (0xF8) and Start/Stop are "timing" messages, dropped by rtmidi unless asked for.
            client.ignore_types(sysex=True, timing=False, active_sense=True)
            jack_settle(client)
            client.open_port(names.index(name), "in")
        except Exception as e:
            if client is not None:
                _delete(client)
            if ("input", name) not in self._failed:
                self._failed.add(("input", name))
                self._report(f"cannot open MIDI input '{name}': {e}; retrying")
            return
        self._failed.discard(("input", name))
        with self._lock:
            self._inputs[name] = port
        again = ("input", name) in self._lost
        self._lost.discard(("input", name))
        if again:
            self._alarms.clear(f"midi-lost:{name}")
        self._report(f"MIDI input '{name}' {'reconnected' if again else 'connected'}")

    def _open_output(self, name: str) -> None:
        client = None
        try:
            client = _new_client("output", self._api, self.client_name)
            names = client.get_ports()
            if name not in names:
                raise MidiPortError(f"MIDI output '{name}' vanished while opening")
            jack_settle(client)
            client.open_port(names.index(name), "feedback")
        except Exception as e:
            if client is not None:
                _delete(client)
            if ("output", name) not in self._failed:
                self._failed.add(("output", name))
                self._report(f"cannot open MIDI output '{name}': {e}; retrying")
            return
        self._failed.discard(("output", name))
        with self._lock:
            self._outputs[name] = client
        again = ("output", name) in self._lost
        self._lost.discard(("output", name))
        self._report(f"MIDI output '{name}' {'reconnected' if again else 'connected'}")
        self._on_output_connected(name)

    def _close_input(self, name: str, vanished: bool) -> None:
        with self._lock:
            port = self._inputs.pop(name)
        _delete(port.client)
        if vanished:
            self._lost.add(("input", name))
            self._alarms.raise_alarm(f"midi-lost:{name}", f"MIDI LOST: {stable_port_name(name)} — reconnecting",
                                     WARNING)
            self._report(f"MIDI input '{name}' disconnected; it reconnects when it returns")

    def _close_output(self, name: str, vanished: bool) -> None:
        with self._lock:
            client = self._outputs.pop(name)
            self._suspect.discard(name)
        _delete(client)
        if vanished:
            self._lost.add(("output", name))
            self._report(f"MIDI output '{name}' disconnected; it reconnects when it returns")

    def _watch(self, stop: threading.Event) -> None:
        """The port watcher (a supervised task): list the ports, open what matches, close what went."""
        while not stop.wait(self.poll_interval_s):
            try:
                if self._system_down:
                    self._probe_in = _new_client("input", self._api, f"{self.client_name}-list", PROBE_QUEUE_SIZE)
                    self._probe_out = _new_client("output", self._api, f"{self.client_name}-list")
                    self._system_down = False
                    self._report("MIDI system available again")
                ins, outs = self._list()
            except Exception as e:  # the MIDI system itself went away (JACK stopped): not a fault here
                if not self._system_down:
                    self._system_down = True
                    self._report(f"MIDI ports cannot be listed ({e}); retrying")
                    for probe in (self._probe_in, self._probe_out):
                        if probe is not None:
                            _delete(probe)
                    self._probe_in = self._probe_out = None
            else:
                self._sync(ins, outs)
            self.polls += 1

    def _read(self, stop: threading.Event) -> None:
        """The input reader (a supervised task): take everything waiting on every open port, then
        hand it on in order; sleep `read_interval_s` when nothing waits."""
        backlog = self._backlog
        while not stop.is_set():
            if not backlog:
                self._take_all(backlog)
                if not backlog:
                    time.sleep(self.read_interval_s)
                    continue
            while backlog:
                port, data, t = backlog.popleft()  # first: a message that raises is not handled twice
                self._on_message(port, data, t)

    def _take_all(self, into: deque) -> None:
        full = []
        with self._lock:  # the watcher must not delete a client while it is read
            for port in self._inputs.values():
                events = port.drain(self.input_queue_size)
                if not events:
                    continue
                if len(events) >= self.input_queue_size - 1:  # rtmidi's ring holds size - 1
                    full.append(port.name)
                now = time.perf_counter()
                mapped = port.mapper.map
                name = port.name
                into.extend((name, data, mapped(delta, now)) for data, delta in events)
        for name in full:
            self._say(f"full:{name}", f"MIDI input '{name}' received more than {self.input_queue_size - 1} "
                      "messages faster than vjgan could read them; some may have been lost")
