"""MIDI through real ports: vjgan's MidiController on a JACK dummy server, a second rtmidi client
playing the controller (knobs, encoders, 14-bit faders, pads, clock) and receiving its LEDs.

Waiting is on conditions, never fixed sleeps. To check that something did *not* happen, the
controller sends a marker afterwards (an encoder step on another parameter) and the test waits
for the marker: messages from one port arrive in order, so everything before it was handled.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from vjgan.alarms import AlarmBoard
from vjgan.audio.tempo import BeatClock
from vjgan.control.apply import ApplyToParams, apply_param_command
from vjgan.control.clock import ExternalClockSink
from vjgan.cli import main as vjgan_main
from vjgan.control.cli import add_midi_parser, format_midi_ports, list_midi_ports, monitor
from vjgan.control.commands import Blackout, CommandQueue, RecallPreset, Tap
from vjgan.control.mapping import Control, Mapping
from vjgan.control.messages import control_change_14bit, encode_relative
from vjgan.control.midi import MidiController
from vjgan.control.ports import MidiPortError
from vjgan.motion.params import ParamSpec, ParamStore
from vjgan.supervise import Supervisor

from jack_midi_fixtures import ClockSender, VirtualController, jack, jack_server, wait_until  # noqa: F401

MARKER = Mapping(Control("cc", 119, 16), "relative-offset", param="marker", step=0.001, feedback=False)


def make_params() -> ParamStore:
    return ParamStore([
        ParamSpec("gain", 0.5, 0.0, 2.0),
        ParamSpec("zoom", 0.0, -1.0, 1.0),
        ParamSpec("hue", 0.5),
        ParamSpec("warp", 0.5),
        ParamSpec("swirl", 0.5),
        ParamSpec("strobe", 0.0),
        ParamSpec("freeze", 0.0, toggle=True),
        ParamSpec("marker", 0.0),
    ])


class Reports:
    """The controller's report lines, thread-safe, with counting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def count(self, needle: str) -> int:
        with self._lock:
            return sum(needle in line for line in self.lines)


@pytest.fixture
def ctl(jack):
    c = VirtualController()
    yield c
    c.close()


@pytest.fixture
def make_midi(jack):
    made: list[MidiController] = []

    def make(params: ParamStore, inputs, **kw) -> MidiController:
        kw.setdefault("api", "jack")
        kw.setdefault("poll_interval_s", 0.05)
        kw.setdefault("report", Reports())
        kw.setdefault("post", ApplyToParams(params))
        midi = MidiController(params, inputs=inputs, **kw)
        made.append(midi)
        return midi

    yield make
    for midi in made:
        midi.stop()


def sync(ctl: VirtualController, params: ParamStore) -> None:
    """Wait until everything `ctl` sent so far has been handled (see the module docstring)."""
    before = params.get("marker")
    ctl.send([0xBF, 119, 65])  # +1 tick on the marker encoder
    wait_until(lambda: params.get("marker") > before, what="the marker message")


def test_knobs_encoders_and_fourteen_bit_faders(ctl, make_midi):
    params = make_params()
    midi = make_midi(params, [ctl.name], mappings=[
        MARKER,
        Mapping(Control("cc", 21, 1), "absolute", param="gain", takeover="jump"),
        Mapping(Control("cc", 16, 1), "relative-twos", param="hue", step=0.01),
        Mapping(Control("cc", 17, 1), "relative-offset", param="warp", step=0.02),
        Mapping(Control("cc", 18, 1), "relative-signed", param="swirl", step=0.05),
        Mapping(Control("cc", 7, 2), "absolute14", param="zoom", takeover="jump"),
    ])
    midi.start()
    assert midi.connected_ports()["inputs"] == [ctl.out_port]

    ctl.send([0xB0, 21, 127])
    wait_until(lambda: params.get("gain") == 2.0, what="the absolute knob")
    ctl.send([0xB0, 21, 32])
    wait_until(lambda: params.get("gain") == pytest.approx(2 * 32 / 127), what="the knob back down")

    for delta in (1, 1, 3, -2):
        ctl.send([0xB0, 16, encode_relative(delta, "twos")])
        ctl.send([0xB0, 17, encode_relative(delta, "offset")])
        ctl.send([0xB0, 18, encode_relative(-delta, "signed")])
    wait_until(lambda: params.get("hue") == pytest.approx(0.53), what="two's complement encoder")
    wait_until(lambda: params.get("warp") == pytest.approx(0.56), what="binary offset encoder")
    wait_until(lambda: params.get("swirl") == pytest.approx(0.35), what="signed bit encoder")

    value = (93 << 7) | 57
    ctl.send(*control_change_14bit(2, 7, value))
    wait_until(lambda: params.get("zoom") == pytest.approx(-1 + 2 * value / 16383), what="the 14-bit pair")
    ctl.send([0xB1, 39, 58])  # LSB only: the fine part moves
    wait_until(lambda: params.get("zoom") == pytest.approx(-1 + 2 * (value + 1) / 16383), what="the LSB alone")


def test_pickup_takeover_after_a_preset_change(ctl, make_midi):
    params = make_params()
    midi = make_midi(params, [ctl.name], mappings=[MARKER, Mapping(Control("cc", 21, 1), "absolute", param="hue")])
    midi.start()
    ctl.send([0xB0, 21, 60], [0xB0, 21, 70])  # passes 0.5 (63.5): taken over
    wait_until(lambda: params.get("hue") == pytest.approx(70 / 127), what="pick-up at the start")

    params.set_many({"hue": 0.9})  # a preset recall
    ctl.send([0xB0, 21, 80], [0xB0, 21, 100])  # below 0.9 · 127 = 114.3: must not move it
    sync(ctl, params)
    assert params.get("hue") == 0.9
    ctl.send([0xB0, 21, 120])  # passes through the stored value
    wait_until(lambda: params.get("hue") == pytest.approx(120 / 127), what="pick-up after the preset")
    assert midi.takeover_state(Control("cc", 21, 1)) == (pytest.approx(120 / 127), True)


def test_pads_fire_actions_and_switch_parameters(ctl, make_midi):
    params = make_params()
    fired = []
    done = threading.Event()
    post = ApplyToParams(params, other=lambda command: (fired.append(command), done.set()))
    midi = make_midi(params, [ctl.name], post=post, mappings=[
        MARKER,
        Mapping(Control("note", 36, 10), "trigger", action="recall-preset:4"),
        Mapping(Control("note", 37, 10), "momentary", param="strobe"),
        Mapping(Control("note", 38, 10), "toggle", param="freeze"),
    ])
    midi.start()
    ctl.send([0x99, 36, 110], [0x89, 36, 0])
    assert done.wait(5.0)
    assert fired[0] == RecallPreset("4", t=fired[0].t, source="midi")
    ctl.send([0x99, 37, 127])
    wait_until(lambda: params.get("strobe") == 1.0, what="momentary on")
    ctl.send([0x99, 37, 0])  # note-on velocity 0 = off
    wait_until(lambda: params.get("strobe") == 0.0, what="momentary off")
    ctl.send([0x99, 38, 127], [0x89, 38, 0])
    wait_until(lambda: params.get("freeze") == 1.0, what="toggle on")
    ctl.send([0x99, 38, 127], [0x89, 38, 0])
    wait_until(lambda: params.get("freeze") == 0.0, what="toggle off")
    sync(ctl, params)
    assert len(fired) == 1


def test_midi_learn_over_real_ports(ctl, make_midi):
    params = make_params()
    fired = []
    midi = make_midi(params, [ctl.name], post=ApplyToParams(params, other=fired.append), mappings=[MARKER])
    midi.start()

    learned = []
    got = threading.Event()
    midi.learn("gain", on_learned=lambda m: (learned.append(m), got.set()))
    ctl.send([0xB3, 74, 5])
    assert got.wait(5.0)
    assert learned[0] == Mapping(Control("cc", 74, 4), "absolute", param="gain")
    ctl.send([0xB3, 74, 64])  # passes 0.25 · 127 on the way up: now it drives gain
    wait_until(lambda: params.get("gain") == pytest.approx(2 * 64 / 127), what="the learned knob")

    # Learning the same knob for hue moves it: gain stays where it is.
    midi.learn("hue")
    ctl.send([0xB3, 74, 64])
    wait_until(lambda: midi.learning is None, what="the second learn")
    assert midi.mappings_for("gain") == () and midi.mappings_for("hue")[0].control.number == 74

    # A pad to a preset: the learning hit does not recall it; the next one does.
    midi.learn("recall-preset:2", action=True)
    ctl.send([0x99, 40, 100], [0x89, 40, 0])
    wait_until(lambda: midi.learning is None, what="the pad learn")
    sync(ctl, params)
    assert fired == []
    ctl.send([0x99, 40, 100])
    wait_until(lambda: len(fired) == 1, what="the learned pad")

    # A 14-bit fader is recognised by its LSB following at once.
    midi.learn("zoom")
    ctl.send(*control_change_14bit(1, 12, 8192))
    wait_until(lambda: [m.kind for m in midi.mappings_for("zoom")] == ["absolute14"], what="the 14-bit learn")
    # And everything learned is plain data for the autosave.
    kinds = {d.get("param") or d.get("action"): d["kind"] for d in midi.mappings_to_list()}
    assert kinds == {"marker": "relative-offset", "hue": "absolute", "recall-preset:2": "trigger", "zoom": "absolute14"}


class LockedBeatClock:
    """The audio engine's part, reduced to a lock: `BeatClock` is single-threaded and the engine
    queues these calls for its capture thread; here a lock serialises them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.beat_clock = BeatClock()
        self.ticks = 0
        self.started = threading.Event()
        self.stopped = threading.Event()

    def external_tick(self, t: float) -> None:
        with self.lock:
            self.beat_clock.external_tick(t)
            self.ticks += 1

    def external_start(self) -> None:
        with self.lock:
            self.beat_clock.external_start()
        self.started.set()

    def external_stop(self) -> None:
        with self.lock:
            self.beat_clock.external_stop()
        self.stopped.set()


def test_midi_clock_sets_tempo_and_drives_the_beat_clock(ctl, make_midi):
    params = make_params()
    sink = LockedBeatClock()
    midi = make_midi(params, [ctl.name], clock=ExternalClockSink(sink))
    midi.start()
    pulses = 4 * 24
    sender = ClockSender(ctl, bpm=150.0, pulses=pulses, start=True)
    sender.start()
    try:
        assert sink.started.wait(5.0)
        wait_until(lambda: sink.ticks == pulses, timeout=10.0, what="all clock pulses")
    finally:
        sender.halt.set()
        sender.join()
    state = midi.clock_state()
    assert state.running and state.pulses == pulses
    sent = sender.sent_bpm()
    assert sent == pytest.approx(150.0, abs=2.0)  # the sender's own timing, on a possibly loaded machine
    assert state.bpm == pytest.approx(sent, abs=1.0)
    with sink.lock:
        assert sink.beat_clock.source == "external"
        assert sink.beat_clock.bpm == pytest.approx(sent, abs=1.5)
        assert sink.beat_clock.beat_count >= 3
    ctl.send([0xFC])
    assert sink.stopped.wait(5.0)
    wait_until(lambda: not midi.clock_state().running, what="transport stop")


def test_value_feedback_to_the_leds_rate_limited(ctl, make_midi):
    params = make_params()
    midi = make_midi(params, [ctl.name], mappings=[
        MARKER,
        Mapping(Control("cc", 16, 1), "relative-twos", param="hue"),
        Mapping(Control("cc", 21, 1), "absolute", param="gain", takeover="jump"),
        Mapping(Control("note", 38, 10), "toggle", param="freeze"),
    ])
    midi.start()
    # On start the controller shows the current values.
    wait_until(lambda: {(0xB0, 16, 64), (0xB0, 21, 32), (0x99, 38, 0)} <= set(ctl.received()), what="initial LEDs")
    ctl.clear()

    # A burst from another thread (an automation, a drag in the operator window): 600 changes.
    def burst() -> None:
        for i in range(600):
            params.set("hue", (i % 100) / 100.0)
        params.set("hue", 0.25)

    th = threading.Thread(target=burst)
    th.start()
    th.join()
    wait_until(lambda: (0xB0, 16, 32) in ctl.received()[-1:], what="the final hue on the ring")  # 0.25 · 127
    hue_msgs = [m for m in ctl.received() if m[:2] == (0xB0, 16)]
    # ≤ 50 a second: the burst took well under a second, so a handful, not hundreds.
    assert 1 <= len(hue_msgs) <= 12, hue_msgs

    # Toggle pad light follows the parameter.
    params.set("freeze", 1.0)
    wait_until(lambda: (0x99, 38, 127) in ctl.received(), what="the pad light")

    # The knob that moves gain is not echoed (motor faders would fight the hand)...
    ctl.clear()
    ctl.send([0xB0, 21, 100])
    wait_until(lambda: params.get("gain") == pytest.approx(200 / 127), what="the knob")
    sync(ctl, params)
    params.set("hue", 0.5)  # ...while a change from elsewhere still is
    wait_until(lambda: (0xB0, 16, 64) in ctl.received(), what="later feedback")
    assert not any(m[:2] == (0xB0, 21) for m in ctl.received())


def test_a_port_that_vanishes_is_reported_once_and_reconnected(ctl, make_midi):
    params = make_params()
    reports = Reports()
    midi = make_midi(params, [ctl.name], report=reports, mappings=[
        MARKER, Mapping(Control("cc", 21, 1), "absolute", param="gain", takeover="jump")])
    midi.start()
    ctl.send([0xB0, 21, 127])
    wait_until(lambda: params.get("gain") == 2.0, what="the knob before unplugging")

    ctl.unplug()
    wait_until(lambda: reports.count("disconnected") == 2, what="both ports reported gone")
    polls = midi.port_polls
    wait_until(lambda: midi.port_polls >= polls + 5, what="five more port scans")
    assert reports.count(f"MIDI input '{ctl.out_port}' disconnected") == 1
    assert reports.count(f"MIDI output '{ctl.in_port}' disconnected") == 1
    assert reports.count("waiting for") == 0  # the disconnect line already says it comes back
    assert midi.connected_ports() == {"inputs": [], "outputs": []}
    params.set("gain", 1.0)  # changed while unplugged

    ctl.plug()
    wait_until(lambda: reports.count("reconnected") == 2, what="both ports back")
    assert reports.count(f"MIDI input '{ctl.out_port}' reconnected") == 1
    # The LEDs get the current state back, and the knob works again.
    wait_until(lambda: (0xB0, 21, 64) in ctl.received(), what="the LED state after replugging")
    ctl.send([0xB0, 21, 0])
    wait_until(lambda: params.get("gain") == 0.0, what="the knob after replugging")
    assert reports.count("disconnected") == 2


def test_several_ports_at_once(jack, make_midi):
    left, right = VirtualController(), VirtualController()
    try:
        params = make_params()
        midi = make_midi(params, [left.name, right.name])
        midi.start()
        assert sorted(midi.connected_ports()["inputs"]) == sorted([left.out_port, right.out_port])
        # With two controllers, learn records which one: the same CC on the other does nothing.
        midi.learn("hue", kind="relative-offset", step=0.1)
        right.send([0xB0, 1, 65])
        wait_until(lambda: midi.learning is None, what="learn on the right controller")
        assert midi.mappings_for("hue")[0].control.port == right.out_port
        midi.learn("warp", kind="relative-offset", step=0.1)
        left.send([0xB0, 1, 65])
        wait_until(lambda: midi.learning is None, what="learn on the left controller")
        right.send([0xB0, 1, 66])
        left.send([0xB0, 1, 63])
        wait_until(lambda: params.get("hue") == pytest.approx(0.7), what="the right encoder")
        wait_until(lambda: params.get("warp") == pytest.approx(0.4), what="the left encoder")
        # Feedback goes to the controller the mapping belongs to.
        params.set("hue", 1.0)
        wait_until(lambda: (0xB0, 1, 127) in right.received(), what="the right ring")
        assert (0xB0, 1, 127) not in left.received()
    finally:
        left.close()
        right.close()


def test_a_port_that_matches_nothing_lists_the_ports(ctl, make_midi):
    params = make_params()
    midi = make_midi(params, ["no-such-controller"])
    with pytest.raises(MidiPortError) as info:
        midi.start()
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("no MIDI input port matches 'no-such-controller' (available inputs: ")
    assert f"'{ctl.out_port}'" in text

    # Not required: reported once, opened when it appears (a controller plugged in later).
    reports = Reports()
    later = VirtualController()
    later.unplug()
    try:
        midi = make_midi(params, [later.name], report=reports,
                         mappings=[Mapping(Control("cc", 2, 1), "absolute", param="hue", takeover="jump")])
        midi.start(require_ports=False)
        assert reports.count(f"waiting for a MIDI input port matching '{later.name}'") == 1
        later.plug()
        wait_until(lambda: midi.connected_ports()["inputs"] == [later.out_port], what="the late controller")
        later.send([0xB0, 2, 0])
        wait_until(lambda: params.get("hue") == 0.0, what="the late controller's knob")
    finally:
        later.close()


def test_list_midi_ports(ctl):
    ports = list_midi_ports("jack")
    assert ports["error"] is None and ports["api"] == "Jack"
    assert ctl.out_port in ports["inputs"] and ctl.in_port in ports["outputs"]
    lines = format_midi_ports(ports)
    assert lines[0] == "MIDI (Jack API)" and f"    {ctl.out_port}" in lines
    assert list_midi_ports("nonsense")["error"].startswith("unknown MIDI API 'nonsense'")


class _Signalling(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.wrote = threading.Event()

    def write(self, s: str) -> int:
        n = super().write(s)
        self.wrote.set()
        return n


def test_midi_monitor_prints_messages_in_words(ctl):
    out, err = _Signalling(), _Signalling()
    result = {}
    th = threading.Thread(target=lambda: result.setdefault("rc", monitor([ctl.name], count=8, seconds=20,
                                                                           out=out, err=err, poll_interval_s=0.05)))
    th.start()
    assert err.wrote.wait(10.0)  # "listening": the port is open
    ctl.send([0xB0, 21, 64], [0x99, 60, 100], [0x89, 60, 0], [0xC0, 5], [0xFA])
    sender = ClockSender(ctl, bpm=120.0, pulses=24 * 10, start=False)
    sender.start()
    th.join(20.0)
    sender.halt.set()
    sender.join()
    assert result.get("rc") == 0
    lines = out.getvalue().splitlines()
    assert lines[:5] == ["ch 1  CC 21 = 64", "ch 10 note on C3 vel 100", "ch 10 note off C3", "ch 1  program 5",
                         "start"]
    # Then the tempo, once a second: the first from one beat of pulses, the last from four.
    assert all(line.startswith("clock ") and line.endswith(" BPM") for line in lines[5:8])
    assert float(lines[7].split()[1]) == pytest.approx(sender.sent_bpm(), abs=1.0)


def test_midi_cli_subcommands(ctl, capsys):
    parser = argparse.ArgumentParser(prog="vjgan")
    add_midi_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["midi", "ports"])
    assert args.handler(args) == 0
    assert ctl.out_port in capsys.readouterr().out

    assert vjgan_main(["midi", "monitor", "no-such-controller"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vjgan: no MIDI input port matches 'no-such-controller'")
    assert ctl.out_port in err[0]


# --- a flood, and faults in the controller's threads ---------------------------------------------


class ShowLoop(threading.Thread):
    """The show's side of the command path: a CommandQueue drained about once a frame, parameter
    commands applied to the store (with their origin, as the show does), the rest kept."""

    def __init__(self, params: ParamStore) -> None:
        super().__init__(daemon=True)
        self.params = params
        self.queue = CommandQueue()
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.others: list = []

    def run(self) -> None:
        while not self.halt.wait(0.016):
            for command in self.queue.drain():
                if not apply_param_command(self.params, command):
                    with self.lock:
                        self.others.append(command)

    def count(self, kind: type) -> int:
        with self.lock:
            return sum(isinstance(c, kind) for c in self.others)


class ClockCounter:
    def __init__(self) -> None:
        self.ticks = 0

    def clock_tick(self, t: float) -> None:
        self.ticks += 1

    def clock_start(self, t: float) -> None:
        pass

    def clock_stop(self, t: float) -> None:
        pass


def starve_the_interpreter():
    """A loaded show: a thread that keeps Python's interpreter lock for a quarter of a second at a
    time, so that the MIDI reader waits that long between turns (2,500 messages of a 10,000 a
    second flood pile up meanwhile; rtmidi's default queue holds 1,024)."""
    stop = threading.Event()

    def hog() -> None:
        while not stop.is_set():
            sum(i * i for i in range(20000))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.25)
    thread = threading.Thread(target=hog, daemon=True)
    thread.start()

    def release() -> None:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)

    return release


FLOOD_ATTEMPTS = 3
OWN_PROCESS = "VJGAN_FLOOD_IN_OWN_PROCESS"


def test_the_flood_in_a_process_of_its_own(jack_server) -> None:
    """The flood starves the interpreter (a quarter of a second between thread switches), so every
    thread in the process takes turns of that length: threads that earlier tests left in this
    process (a whole-suite run) made the reader's turns so rare that nothing arrived within a
    minute. The show under test is a process of its own, as `vjgan live` is."""
    env = {**os.environ, OWN_PROCESS: "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                           "test_a_flood_loses"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert " passed" in last and "skipped" not in last, proc.stdout[-2000:]


@pytest.mark.skipif(os.environ.get(OWN_PROCESS) != "1",
                    reason="runs in a process of its own (test_the_flood_in_a_process_of_its_own)")
def test_a_flood_loses_no_pad_no_tick_no_clock_and_no_final_value(jack, make_midi, capfd, tmp_path):
    step = 2.0 ** -15  # encoder sums are exact in binary
    # 20,000 messages in 2 s, as the tester sent them: a knob swept back and forth, encoder ticks
    # of +1 and +2, clock pulses, and every 40 messages a blackout pad and a momentary pad, each
    # pressed and released; then a tap pad that marks the end.
    flood, ticks, presses, pulses, knob = [], 0, 0, 0, 0
    for i in range(20000):
        k = i % 40
        if k == 0:
            flood += [[0x99, 36, 100], [0x89, 36, 0], [0x99, 37, 100], [0x89, 37, 0]]
            presses += 1
        elif k % 4 == 1:
            knob = (i * 7) % 128
            flood.append([0xB0, 21, knob])
        elif k % 4 == 2:
            ticks += 1 + i % 2
            flood.append([0xB0, 16, 1 + i % 2])
        elif k % 4 == 3:
            pulses += 1
            flood.append([0xF8])
        else:
            flood.append([0xB0, 21, knob])
    flood.append([0x99, 38, 100])
    (tmp_path / "flood.json").write_text(json.dumps(flood))
    # JACK itself may drop part of a burst on a loaded machine before any reader sees it (the
    # device's witness tells); such an attempt says nothing about the reader and is made again.
    for attempt in range(1, FLOOD_ATTEMPTS + 1):
        outcome = _flood_once(make_midi, capfd, tmp_path / "flood.json", len(flood), step)
        if outcome is not None:
            break
    else:
        pytest.skip(f"JACK dropped part of the flood before any reader in {FLOOD_ATTEMPTS} attempts (machine overloaded)")
    show, params, strobe, clock, err = outcome
    assert show.count(Blackout) == presses
    assert strobe == [1.0, 0.0] * presses  # every momentary press and release, in order
    assert params.get("enc") == ticks * step  # exact: no tick lost, none read from a stale value
    assert params.get("knob") == pytest.approx(knob / 127)  # the knob's last position
    assert clock.ticks == pulses
    assert show.queue.coalesced > 0  # knob moves and ticks were merged in the queue, not before
    assert "queue limit" not in err
    assert len(err.splitlines()) <= 3, err[:2000]


def _flood_once(make_midi, capfd, flood_file: Path, messages: int, step: float):
    """One flood through a fresh show and controller: (show, params, strobe values, clock, stderr),
    or None if JACK did not deliver the whole flood even to the device's own witness."""
    params = ParamStore([ParamSpec("knob", 0.0), ParamSpec("enc", 0.0), ParamSpec("strobe", 0.0)])
    strobe: list[float] = []
    params.subscribe(lambda name, value, origin: strobe.append(value) if name == "strobe" else None)
    # The device is a process of its own, so that it keeps its pace while this one is starved.
    name = f"flood-{uuid.uuid4().hex[:6]}"
    sender = subprocess.Popen([sys.executable, str(Path(__file__).parent / "midi_flood_sender.py"), name,
                               str(flood_file), "10000"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    show = ShowLoop(params)
    midi = None
    try:
        assert sender.stdout.readline().strip() == "ready", sender.stderr.read()[-2000:]
        show.start()
        clock = ClockCounter()
        midi = make_midi(params, [name], post=show.queue.post, clock=clock, mappings=[
            Mapping(Control("cc", 21, 1), "absolute", param="knob", takeover="jump"),
            Mapping(Control("cc", 16, 1), "relative-twos", param="enc", step=step),
            Mapping(Control("note", 36, 10), "trigger", action="blackout"),
            Mapping(Control("note", 37, 10), "momentary", param="strobe"),
            Mapping(Control("note", 38, 10), "trigger", action="tap-tempo"),
        ])
        midi.start()
        # Before the flood, the path is live: a ping from the device reaches the controller.
        for _ in range(50):
            sender.stdin.write("ping\n")
            sender.stdin.flush()
            assert sender.stdout.readline().strip() == "pinged"
            try:
                wait_until(lambda: midi.activity().count > 0, timeout=0.2, what="the ping")
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"no ping reached the controller in 10 s; its ports: {midi.connected_ports()}")
        capfd.readouterr()  # what came before the flood is not the flood's
        release = starve_the_interpreter()
        try:
            sender.stdin.write("go\n")
            sender.stdin.flush()
            said = sender.stdout.readline().split()
            assert said[:1] == ["sent"], said
            if int(said[2]) < messages:
                return None
            try:
                wait_until(lambda: show.count(Tap) == 1, timeout=60.0, what="the end of the flood")
            except AssertionError as e:
                raise AssertionError(f"{e}: {show.count(Blackout)} blackouts, {len(strobe)} strobe changes, "
                                     f"{clock.ticks} clock pulses, {midi.activity().count} messages so far; "
                                     f"the device's witness got all {messages}; the controller's ports: "
                                     f"{midi.connected_ports()}") from None
        finally:
            release()
        time.sleep(0.05)  # one more turn of the show's loop
        return show, params, strobe, clock, capfd.readouterr().err
    finally:
        show.halt.set()
        if show.is_alive():
            show.join()
        if midi is not None:
            midi.stop()
        sender.stdin.close()
        sender.wait(10)
        assert "ReserveEvent" not in sender.stderr.read()  # (JACK dropped nothing on the device's side)


def test_a_fault_in_the_input_thread_restarts_it_shows_an_alarm_and_midi_goes_on(ctl, make_midi, caplog):
    params = make_params()
    apply = ApplyToParams(params)
    posted = []

    def faulty_show(command) -> None:  # the show's queue, with a fault on the 5th command
        posted.append(command)
        if len(posted) == 5:
            raise RuntimeError("injected fault in the command sink")
        apply(command)

    board = AlarmBoard()
    supervisor = Supervisor(board)
    midi = make_midi(params, [ctl.name], post=faulty_show, supervisor=supervisor, mappings=[
        MARKER, Mapping(Control("cc", 16, 1), "relative-offset", param="hue", step=0.01)])
    midi.start()
    ctl.send(*[[0xB0, 16, 65]] * 10)  # ten ticks in one go: the 5th one's command raises
    wait_until(lambda: board.shown(), what="the alarm")
    assert [a.text for a in board.shown()] == ["MIDI INPUT RESTARTED (1)"]
    wait_until(lambda: params.get("hue") == pytest.approx(0.59), what="the ticks after the fault")  # 9 of 10
    sync(ctl, params)  # and MIDI keeps working after the restart
    ctl.send([0xB0, 16, 63])
    wait_until(lambda: params.get("hue") == pytest.approx(0.58), what="a tick after the restart")
    (task,) = [t for t in supervisor.tasks() if t.name == "midi-in"]
    assert task.alive and task.restarts == 1 and "injected fault" in task.last_error
    assert "injected fault in the command sink" in caplog.text and "Traceback" in caplog.text


def test_a_fault_in_the_port_watcher_restarts_it_and_ports_still_reconnect(ctl, make_midi):
    params = make_params()
    lines = Reports()
    failed = []

    def report(line: str) -> None:  # a report that fails the first time a port goes (a fault, not a lost port)
        lines(line)
        if "disconnected" in line and not failed:
            failed.append(line)
            raise RuntimeError("injected fault in the port watcher")

    board = AlarmBoard()
    supervisor = Supervisor(board)
    midi = make_midi(params, [ctl.name], report=report, supervisor=supervisor, mappings=[
        MARKER, Mapping(Control("cc", 21, 1), "absolute", param="gain", takeover="jump")])
    midi.start()
    ctl.unplug()
    wait_until(lambda: any(a.key == "task:midi-ports" for a in board.shown()), what="the watcher's alarm")
    wait_until(lambda: lines.count("disconnected") == 2, what="both ports reported gone")
    lost = [a for a in board.shown() if a.key.startswith("midi-lost:")]
    assert [a.text for a in lost] == [f"MIDI LOST: {ctl.out_port} — reconnecting"] and lost[0].active
    ctl.plug()
    wait_until(lambda: lines.count("reconnected") == 2, what="both ports back")
    wait_until(lambda: not [a for a in board.shown() if a.key.startswith("midi-lost:") and a.active],
               what="the lost-port alarm cleared")
    ctl.send([0xB0, 21, 0])
    wait_until(lambda: params.get("gain") == 0.0, what="the knob after replugging")
    texts = [a.text for a in board.shown()]
    assert "MIDI PORT WATCHER RESTARTED (1)" in texts
