"""A MIDI device in a process of its own, for flood tests: sends a list of messages through a
JACK MIDI output port at a steady rate, whatever the test process is doing.

    python3 midi_flood_sender.py CLIENT_NAME FLOOD.json RATE_PER_S

Opens the JACK client CLIENT_NAME with the output port "out", prints "ready", waits for a line
on stdin, sends the messages (a JSON list of byte lists) at RATE_PER_S, never faster (a JACK
MIDI port carries a few hundred events per period; a burst beyond that is dropped by JACK
itself), prints "sent SECONDS" and keeps the port open until stdin closes.
"""

from __future__ import annotations

import json
import sys
import time

import rtmidi

from vjgan.control.ports import jack_settle

CHUNK = 20  # messages sent back to back; the rate sets the gap between chunks


def main() -> int:
    name, path, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(path) as f:
        messages = json.load(f)
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name)
    jack_settle(out)
    out.open_virtual_port("out")
    jack_settle(out)
    print("ready", flush=True)
    sys.stdin.readline()
    gap = CHUNK / rate
    t0 = last = time.perf_counter()
    for i in range(0, len(messages), CHUNK):
        for msg in messages[i:i + CHUNK]:
            out.send_message(msg)
        # On schedule, and never two chunks closer than half a gap (no catching up in a burst).
        target = max(t0 + (i // CHUNK + 1) * gap, last + gap / 2)
        time.sleep(max(0.0, target - time.perf_counter()))
        last = time.perf_counter()
    print(f"sent {time.perf_counter() - t0:.3f}", flush=True)
    sys.stdin.read()
    jack_settle(out)
    out.close_port()
    out.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
