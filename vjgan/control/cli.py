"""`vjgan midi ...` subcommands and the MIDI part of `vjgan devices`.

The top-level parser (vjgan/cli.py) calls `add_midi_parser(subparsers)`; handlers return an exit
code and raise `UserError` for anything the user can fix (the CLI prints it as one line).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import deque
from typing import Any, Optional, Sequence, TextIO

from .clock import ClockTracker
from .messages import CLOCK_PPQ, Clock, Continue, Start, Stop, decode, describe
from .ports import ALL_PORTS, API_CHOICES, MidiPortError, PortManager, PortPatterns, list_midi_ports

__all__ = ["add_midi_parser", "list_midi_ports", "format_midi_ports", "monitor"]


def format_midi_ports(ports: dict[str, Any]) -> list[str]:
    """`list_midi_ports()` as the lines `vjgan devices` prints."""
    lines = [f"MIDI ({ports.get('api', 'default')} API)"]
    if ports.get("error"):
        lines.append(f"  unavailable: {ports['error']}")
        return lines
    for key, title in (("inputs", "inputs"), ("outputs", "outputs")):
        names = ports.get(key) or []
        lines.append(f"  {title}:" + ("" if names else " none"))
        lines += [f"    {name}" for name in names]
    return lines


def monitor(patterns: Sequence[str] = (), *, api: Optional[str] = None, count: Optional[int] = None,
            seconds: Optional[float] = None, out: Optional[TextIO] = None, err: Optional[TextIO] = None,
            client_name: str = "vjgan-monitor", poll_interval_s: float = 0.5) -> int:
    """Print incoming MIDI messages in words until Ctrl-C, `count` lines or `seconds`.

    The clock is summed up as its tempo (at most one line a second, from a beat of pulses on)
    rather than 24 lines a beat. Messages go to `out` (stdout), port news to `err` (stderr).
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    received: deque[tuple[str, list, float]] = deque(maxlen=10000)
    wake = threading.Event()

    def on_message(port: str, data: list, t: float) -> None:  # the MIDI input thread: queue and return
        received.append((port, data, t))
        wake.set()

    def report(line: str) -> None:
        print(f"vjgan: {line}", file=err, flush=True)

    if not patterns:
        listing = list_midi_ports(api)
        if listing["error"]:
            raise MidiPortError(listing["error"])
        if not [n for n in listing["inputs"] if not n.startswith(client_name)]:
            raise MidiPortError("no MIDI input ports (is the controller plugged in and switched on?)")
    ports = PortManager(PortPatterns(tuple(patterns) or (ALL_PORTS,), (), False), on_message, api=api,
                        client_name=client_name, report=report, poll_interval_s=poll_interval_s)
    ports.start(require=True)
    clock = ClockTracker(min_pulses=CLOCK_PPQ)
    printed = 0
    last_clock_line = -1e9
    clock_was_on = False
    deadline = None if seconds is None else time.monotonic() + seconds
    print("listening (Ctrl-C to stop)", file=err, flush=True)
    try:
        while count is None or printed < count:
            timeout = 0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic()))
            wake.wait(timeout)
            wake.clear()
            lines: list[str] = []
            many = len(ports.open_inputs()) > 1
            while received:
                port, data, t = received.popleft()
                msg = decode(data)
                prefix = f"{port}: " if many else ""
                if isinstance(msg, Clock):
                    clock.tick(t)
                    continue
                if isinstance(msg, Start):
                    clock.start(t)
                elif isinstance(msg, Stop):
                    clock.stop(t)
                elif isinstance(msg, Continue):
                    clock.continue_(t)
                lines.append(prefix + describe(msg))
            now = time.perf_counter()
            state = clock.state(now)
            if state.bpm is not None and now - last_clock_line >= 1.0:
                lines.append(f"clock {state.bpm:.1f} BPM")
                last_clock_line = now
                clock_was_on = True
            elif clock_was_on and not state.receiving:
                lines.append("clock stopped")
                clock_was_on = False
            for line in lines:
                if count is not None and printed >= count:
                    break
                print(line, file=out, flush=True)
                printed += 1
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    finally:
        ports.stop()
    return 0


def _cmd_monitor(args: argparse.Namespace) -> int:
    return monitor(args.ports, api=args.midi_api, count=args.count, seconds=args.seconds)


def _cmd_ports(args: argparse.Namespace) -> int:
    listing = list_midi_ports(args.midi_api)
    for line in format_midi_ports(listing):
        print(line)
    if listing["error"]:
        raise MidiPortError(listing["error"])
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive (got {value})")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive (got {value})")
    return value


def add_midi_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `vjgan midi monitor [PORT ...]` and `vjgan midi ports` to the top-level subcommands."""
    midi = subparsers.add_parser("midi", help="MIDI tools: watch what a controller sends, list ports")
    sub = midi.add_subparsers(dest="midi_command", metavar="COMMAND")

    def usage(_args: argparse.Namespace) -> int:
        midi.print_help()
        return 2

    midi.set_defaults(handler=usage)

    p = sub.add_parser("monitor", help="print incoming MIDI messages in words, for checking a controller")
    p.add_argument("ports", nargs="*", metavar="PORT",
                   help="part of an input port's name (case-insensitive; several allowed; default: every input)")
    p.add_argument("--midi-api", choices=API_CHOICES, help="MIDI system (default: $VJGAN_MIDI_API or the platform's)")
    p.add_argument("--count", type=_positive_int, help="exit after printing this many lines")
    p.add_argument("--seconds", type=_positive_float, help="exit after this many seconds")
    p.set_defaults(handler=_cmd_monitor)

    p = sub.add_parser("ports", help="list MIDI input and output ports")
    p.add_argument("--midi-api", choices=API_CHOICES, help="MIDI system (default: $VJGAN_MIDI_API or the platform's)")
    p.set_defaults(handler=_cmd_ports)
