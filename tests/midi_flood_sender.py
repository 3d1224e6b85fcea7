"""A MIDI device in a process of its own, for flood tests: sends a list of messages through a
JACK MIDI output port at a steady rate, whatever the test process is doing.

    python3 midi_flood_sender.py CLIENT_NAME FLOOD.json RATE_PER_S

Opens the JACK client CLIENT_NAME with the output port "out", prints "ready", then answers each
"ping" line on stdin with one message nothing is mapped to (CC 119 on channel 16) and "pinged",
so the test can see its reader connected before the flood. On "go" it sends the messages (a JSON list of byte lists) at RATE_PER_S, never faster (a JACK
MIDI port carries a few hundred events per period; a burst beyond that is dropped by JACK
itself), prints "sent SECONDS WITNESSED" and keeps the port open until stdin closes.

WITNESSED is how many messages a second client of this process (a plain rtmidi input connected
to "out", with a queue larger than the flood) received: the flood as JACK delivered it. On a
loaded machine JACK itself can drop a burst before any reader sees it; the test then knows that
the premise failed, not the reader under test.
"""

from __future__ import annotations

import json
import sys
import time

import rtmidi

from vjgan.control.ports import jack_settle

CHUNK = 20  # messages sent back to back; the rate sets the gap between chunks
PING = [0xBF, 119, 0]  # not part of any flood (the witness does not count it)


def main() -> int:
    name, path, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(path) as f:
        messages = json.load(f)
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name)
    jack_settle(out)
    out.open_virtual_port("out")
    jack_settle(out)
    witness = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, f"{name}-witness", queue_size_limit=2 * len(messages) + 1024)
    witness.ignore_types(sysex=False, timing=False, active_sense=False)
    ports = witness.get_ports()
    witness.open_port(next(i for i, p in enumerate(ports) if p.startswith(f"{name}:out")))
    jack_settle(witness)
    print("ready", flush=True)
    while sys.stdin.readline().strip() == "ping":
        out.send_message(PING)
        print("pinged", flush=True)
    gap = CHUNK / rate
    t0 = last = time.perf_counter()
    for i in range(0, len(messages), CHUNK):
        for msg in messages[i:i + CHUNK]:
            out.send_message(msg)
        # On schedule, and never two chunks closer than half a gap (no catching up in a burst).
        target = max(t0 + (i // CHUNK + 1) * gap, last + gap / 2)
        time.sleep(max(0.0, target - time.perf_counter()))
        last = time.perf_counter()
    seconds = time.perf_counter() - t0
    witnessed, quiet_since = 0, time.perf_counter()
    while time.perf_counter() - quiet_since < 0.5 and witnessed < len(messages):
        got = witness.get_message()
        if got is None:
            time.sleep(0.001)
        elif got[0] != PING:
            witnessed += 1
            quiet_since = time.perf_counter()
    print(f"sent {seconds:.3f} {witnessed}", flush=True)
    sys.stdin.read()
    witness.close_port()
    witness.delete()
    jack_settle(out)
    out.close_port()
    out.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
