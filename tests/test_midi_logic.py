"""The MIDI logic without ports: takeover, the router (through MidiController.handle_message with
byte lists), MIDI learn, the clock tracker, timestamps and the feedback rate limit.

The same paths run through real JACK MIDI ports in test_midi_jack.py; here the inputs are exact,
so the assertions can be exact too.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from vjgan.alarms import AlarmBoard
from vjgan.control.apply import ApplyToParams, apply_param_command
from vjgan.control.clock import ClockTracker, TimestampMapper, number_pulses
from vjgan.control.commands import Blackout, CommandQueue, NudgeParam, RecallPreset, SetParam, Tap, ToggleParam
from vjgan.control.feedback import FeedbackSender, feedback_messages
from vjgan.control.mapping import Control, Mapping, MappingError
from vjgan.control.midi import MidiController
from vjgan.control.takeover import absolute_move
from vjgan.errors import UserError
from vjgan.motion.params import ParamSpec, ParamStore, UnknownParameterError
from vjgan.supervise import Supervisor

from jack_midi_fixtures import wait_until


def make_params() -> ParamStore:
    return ParamStore([
        ParamSpec("gain", 0.5, 0.0, 2.0),
        ParamSpec("zoom", 0.0, -1.0, 1.0),
        ParamSpec("hue", 0.5),
        ParamSpec("strobe", 0.0),
        ParamSpec("freeze", 0.0, toggle=True),
    ])


class Recorder:
    """A ClockSink and a sink for the commands that are not parameter moves, remembering what they got."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ticks: list[float] = []
        self.events: list[tuple[str, float]] = []
        self.commands: list = []

    def clock_tick(self, t: float) -> None:
        with self.lock:
            self.ticks.append(t)

    def clock_start(self, t: float) -> None:
        with self.lock:
            self.events.append(("start", t))

    def clock_stop(self, t: float) -> None:
        with self.lock:
            self.events.append(("stop", t))

    def command(self, command) -> None:
        with self.lock:
            self.commands.append(command)


@pytest.fixture
def rig():
    params = make_params()
    rec = Recorder()
    reports: list[str] = []
    midi = MidiController(params, post=ApplyToParams(params, other=rec.command), clock=rec, report=reports.append)
    midi.start()  # no ports: the router and the feedback thread only
    yield params, midi, rec, reports
    midi.stop()


def cc(ch: int, n: int, v: int) -> list[int]:
    return [0xB0 | (ch - 1), n, v]


# --- takeover (pure) ----------------------------------------------------------------------------


def test_pickup_waits_until_the_knob_passes_the_value():
    r = absolute_move("pickup", None, 0.1, 0.6, engaged=False)
    assert r.value is None and not r.engaged  # first touch far away, direction unknown
    r = absolute_move("pickup", 0.1, 0.3, 0.6, engaged=False)
    assert r.value is None and not r.engaged  # still below
    r = absolute_move("pickup", 0.3, 0.7, 0.6, engaged=False)
    assert r.value == 0.7 and r.engaged  # passed through 0.6
    r = absolute_move("pickup", 0.9, 0.5, 0.6, engaged=False)
    assert r.value == 0.5 and r.engaged  # from above, too
    r = absolute_move("pickup", None, 0.6 + 0.5 / 127, 0.6, engaged=False)
    assert r.engaged  # within one 7-bit step
    assert absolute_move("pickup", 0.0, 0.2, 0.6, engaged=True).value == 0.2


def test_jump_sets_at_once():
    r = absolute_move("jump", None, 0.1, 0.9, engaged=False)
    assert r.value == 0.1 and r.engaged


def test_scale_converges_at_the_end_of_travel():
    value, knob, engaged = 0.8, 0.2, False
    values = []
    while knob < 1.0 and not engaged:
        nxt = min(1.0, knob + 0.05)
        r = absolute_move("scale", knob, nxt, value, engaged)
        engaged = r.engaged
        value = r.value if r.value is not None else value
        values.append(value)
        knob = nxt
    assert all(b >= a for a, b in zip(values, values[1:]))  # moves with the knob, never back
    assert engaged and value == pytest.approx(knob)
    # Turning down from above the value moves it down proportionally and takes over at 0 at the latest.
    r = absolute_move("scale", 0.9, 0.45, 0.3, False)
    assert r.value == pytest.approx(0.15) and not r.engaged


# --- the router --------------------------------------------------------------------------------


def test_absolute_cc_with_pickup_after_a_preset_change(rig):
    params, midi, _, _ = rig
    midi.set_mappings([Mapping(Control("cc", 21, 1), "absolute", param="gain")])
    # First touch far from the value (gain 0.5 of 0..2 = 0.25 normalised): nothing yet.
    midi.handle_message("ctl", cc(1, 21, 0))
    assert params.get("gain") == 0.5
    midi.handle_message("ctl", cc(1, 21, 20))
    assert params.get("gain") == 0.5
    midi.handle_message("ctl", cc(1, 21, 40))  # passed 0.25 · 127 = 31.75
    assert params.get("gain") == pytest.approx(2 * 40 / 127)
    midi.handle_message("ctl", cc(1, 21, 127))
    assert params.get("gain") == 2.0
    # A preset recall moves the value: the knob (at 127) must pick it up again.
    params.set_many({"gain": 0.2})
    midi.handle_message("ctl", cc(1, 21, 120))
    assert params.get("gain") == 0.2
    midi.handle_message("ctl", cc(1, 21, 10))  # crosses 0.1 · 127 = 12.7 on the way down
    assert params.get("gain") == pytest.approx(2 * 10 / 127)
    # So does a change from the keyboard or the operator window.
    params.set("gain", 1.0)
    midi.handle_message("ctl", cc(1, 21, 11))
    assert params.get("gain") == 1.0
    assert midi.takeover_state(Control("cc", 21, 1)) == (pytest.approx(11 / 127), False)


def test_bank_switch_arms_takeover(rig):
    params, midi, _, _ = rig
    midi.set_mappings([Mapping(Control("cc", 21, 1), "absolute", param="hue")])
    midi.handle_message("ctl", cc(1, 21, 63))
    midi.handle_message("ctl", cc(1, 21, 64))
    assert params.get("hue") == pytest.approx(64 / 127)
    midi.arm_takeover()
    midi.handle_message("ctl", cc(1, 21, 100))
    assert params.get("hue") == pytest.approx(64 / 127)


def test_scale_and_jump_modes(rig):
    params, midi, _, _ = rig
    midi.set_mappings([Mapping(Control("cc", 1, 1), "absolute", param="hue", takeover="scale"),
                       Mapping(Control("cc", 2, 1), "absolute", param="strobe", takeover="jump")])
    midi.handle_message("ctl", cc(1, 2, 100))
    assert params.get("strobe") == pytest.approx(100 / 127)
    midi.handle_message("ctl", cc(1, 1, 0))
    midi.handle_message("ctl", cc(1, 1, 10))
    assert 0.5 < params.get("hue") < 0.6  # moved proportionally, not jumped to 10/127
    for v in range(20, 128, 10):
        midi.handle_message("ctl", cc(1, 1, v))
    midi.handle_message("ctl", cc(1, 1, 127))
    assert params.get("hue") == 1.0
    midi.handle_message("ctl", cc(1, 1, 64))
    assert params.get("hue") == pytest.approx(64 / 127)  # engaged: follows the knob


def test_fourteen_bit_pairs(rig):
    params, midi, _, _ = rig
    midi.set_mappings([Mapping(Control("cc", 7, 3), "absolute14", param="zoom", takeover="jump")])
    midi.handle_message("ctl", [0xB2, 7, 100])
    midi.handle_message("ctl", [0xB2, 39, 27])
    assert params.get("zoom") == pytest.approx(-1 + 2 * ((100 << 7) | 27) / 16383)
    midi.handle_message("ctl", [0xB2, 39, 28])  # the LSB alone moves the fine part
    assert params.get("zoom") == pytest.approx(-1 + 2 * ((100 << 7) | 28) / 16383)
    midi.handle_message("ctl", [0xB2, 7, 127])
    midi.handle_message("ctl", [0xB2, 39, 127])
    assert params.get("zoom") == 1.0
    midi.handle_message("ctl", [0xB2, 7, 0])  # MSB alone with LSB 0 (the MIDI 1.0 reset)
    assert params.get("zoom") == -1.0
    # The same CC on another channel is not this control.
    midi.handle_message("ctl", [0xB0, 7, 64])
    assert params.get("zoom") == -1.0


def test_relative_encoders_with_per_mapping_step(rig):
    params, midi, _, _ = rig
    midi.set_mappings([
        Mapping(Control("cc", 16, 1), "relative-twos", param="hue", step=0.01),
        Mapping(Control("cc", 17, 1), "relative-offset", param="gain", step=0.1),
        Mapping(Control("cc", 18, 1), "relative-signed", param="zoom", step=0.05),
    ])
    for v in (1, 1, 3, 127):  # +1 +1 +3 -1
        midi.handle_message("ctl", cc(1, 16, v))
    assert params.get("hue") == pytest.approx(0.54)
    midi.handle_message("ctl", cc(1, 17, 66))  # +2 ticks of 0.1 of the 0..2 range
    assert params.get("gain") == pytest.approx(0.9)
    midi.handle_message("ctl", cc(1, 17, 61))  # -3
    assert params.get("gain") == pytest.approx(0.3)
    midi.handle_message("ctl", cc(1, 18, 66))  # signed bit: -2 ticks of 0.05 of the -1..1 range
    assert params.get("zoom") == pytest.approx(-0.2)
    for _ in range(100):
        midi.handle_message("ctl", cc(1, 16, 127))
    assert params.get("hue") == 0.0  # clamped at the end of the range


def test_notes_as_triggers_momentary_and_toggle(rig):
    params, midi, rec, reports = rig
    midi.set_mappings([
        Mapping(Control("note", 36, 10), "trigger", action="recall-preset:3"),
        Mapping(Control("note", 37, 10), "momentary", param="strobe"),
        Mapping(Control("note", 38, 10), "toggle", param="freeze"),
        Mapping(Control("cc", 64, 1), "trigger", action="blackout"),  # a button in CC mode
    ])
    t0 = time.perf_counter()
    midi.handle_message("pads", [0x99, 36, 100], t=t0)
    midi.handle_message("pads", [0x89, 36, 0])
    assert rec.commands == [RecallPreset("3", t=t0, source="midi")]  # the pad's own time
    midi.handle_message("pads", [0x99, 37, 90])
    assert params.get("strobe") == 1.0
    midi.handle_message("pads", [0x99, 37, 0])  # note-on with velocity 0 releases
    assert params.get("strobe") == 0.0
    for expected in (1.0, 0.0, 1.0):
        midi.handle_message("pads", [0x99, 38, 127])
        midi.handle_message("pads", [0x89, 38, 0])
        assert params.get("freeze") == expected
    midi.handle_message("pads", cc(1, 64, 127))
    midi.handle_message("pads", cc(1, 64, 127))  # held: no second press
    midi.handle_message("pads", cc(1, 64, 0))
    midi.handle_message("pads", cc(1, 64, 127))
    assert [type(c) for c in rec.commands] == [RecallPreset, Blackout, Blackout]


def test_unknown_parameter_is_reported_once_and_unknown_actions_cannot_be_mapped(rig):
    params, midi, rec, reports = rig
    midi.set_mappings([Mapping(Control("cc", 5, 1), "absolute", param="gone", takeover="jump"),
                       Mapping(Control("cc", 6, 1), "relative-twos", param="gone2"),
                       Mapping(Control("note", 40, 1), "toggle", param="gone3")])
    for _ in range(3):
        midi.handle_message("pads", cc(1, 5, 10))
        midi.handle_message("pads", cc(1, 6, 1))
        midi.handle_message("pads", [0x90, 40, 100])
        midi.handle_message("pads", [0x80, 40, 0])
    for name in ("gone", "gone2", "gone3"):
        assert sum(f"no parameter named '{name}'" in r for r in reports) == 1
    assert rec.commands == []
    # An action outside the show's vocabulary is refused when the mapping is made, in one line.
    with pytest.raises(MappingError, match="no action named 'warp'"):
        Mapping(Control("note", 41, 1), "trigger", action="warp")
    with pytest.raises(MappingError, match="needs an argument"):
        Mapping(Control("note", 41, 1), "trigger", action="recall-preset")


def test_learn_binds_the_next_control_and_moves_it(rig):
    params, midi, _, reports = rig
    learned = []
    midi.learn("gain", on_learned=learned.append)
    assert midi.learning is not None and midi.learning.target == "gain"
    midi.handle_message("ctl", [0xF8])  # clock never binds
    midi.handle_message("ctl", cc(2, 70, 12))
    assert midi.learning is None
    assert learned == [Mapping(Control("cc", 70, 2), "absolute", param="gain")]
    assert midi.mappings_for("gain") == tuple(learned)
    assert params.get("gain") == 0.5  # the learning move itself does not set the value
    # Learn the same knob to another parameter: the control moves, gain is unbound.
    midi.learn("hue")
    midi.handle_message("ctl", cc(2, 70, 40))
    assert midi.mappings_for("gain") == () and len(midi.mappings_for("hue")) == 1
    assert len(midi.mappings) == 1
    assert any("MIDI learn: ch 2 CC 70 → hue" in r for r in reports)


def test_learn_a_pad_to_an_action_does_not_fire_it(rig):
    params, midi, rec, _ = rig
    midi.learn("recall-preset:2", action=True)
    midi.handle_message("pads", [0x99, 44, 100])
    midi.handle_message("pads", [0x89, 44, 0])
    assert midi.mappings == (Mapping(Control("note", 44, 10), "trigger", action="recall-preset:2"),)
    assert rec.commands == []
    midi.handle_message("pads", [0x99, 44, 100])
    assert [c.which for c in rec.commands] == ["2"]


def test_learn_picks_the_kind_from_the_message_and_the_request(rig):
    params, midi, _, _ = rig
    midi.learn("freeze")  # a switch parameter: a pad toggles it
    midi.handle_message("pads", [0x90, 50, 100])
    midi.handle_message("pads", [0x80, 50, 0])
    assert midi.mappings_for("freeze")[0].kind == "toggle"
    assert params.get("freeze") == 0.0  # neither the press nor its release acted
    params.set("strobe", 0.7)
    midi.learn("strobe")
    midi.handle_message("pads", [0x90, 51, 100])
    midi.handle_message("pads", [0x90, 51, 0])
    assert midi.mappings_for("strobe")[0].kind == "momentary"
    assert params.get("strobe") == 0.7  # the learning press's release did not switch it off
    midi.learn("hue", kind="relative-offset", step=0.05)
    midi.handle_message("pads", [0x90, 52, 100])  # a pad cannot be an encoder: still learning
    assert midi.learning is not None
    midi.handle_message("ctl", cc(1, 90, 65))
    m = midi.mappings_for("hue")[0]
    assert (m.kind, m.step, m.control.number) == ("relative-offset", 0.05, 90)


def test_learn_recognises_a_fourteen_bit_knob(rig):
    params, midi, _, _ = rig
    learned = []
    midi.learn("zoom", on_learned=learned.append)
    midi.handle_message("ctl", [0xB0, 3, 64])
    midi.handle_message("ctl", [0xB0, 35, 0])
    assert [m.kind for m in learned] == ["absolute", "absolute14"]
    assert midi.mappings == (Mapping(Control("cc", 3, 1), "absolute14", param="zoom"),)
    # It drives the value at 14-bit resolution once picked up (zoom 0.0 = the centre, 8192).
    midi.handle_message("ctl", [0xB0, 3, 64])
    midi.handle_message("ctl", [0xB0, 35, 1])
    assert params.get("zoom") == pytest.approx(-1 + 2 * 8193 / 16383)


def test_learn_rejects_unknown_targets_at_once(rig):
    params, midi, _, _ = rig
    with pytest.raises(UnknownParameterError):
        midi.learn("nope")
    with pytest.raises(UserError, match="no action named 'warp'"):
        midi.learn("warp", action=True)
    with pytest.raises(MappingError, match="kind 'trigger'"):
        midi.learn("blackout", action=True, kind="toggle")
    with pytest.raises(MappingError, match="takeover"):
        midi.learn("hue", takeover="soft")
    assert midi.learning is None


def test_cancel_learn(rig):
    params, midi, _, _ = rig
    midi.learn("hue")
    midi.cancel_learn()
    midi.handle_message("ctl", cc(1, 1, 1))
    assert midi.mappings == ()


def test_mappings_round_trip_through_the_controller(rig):
    params, midi, _, _ = rig
    midi.learn("gain")
    midi.handle_message("ctl", cc(1, 21, 5))
    saved = midi.mappings_to_list()
    other_params = make_params()
    other = MidiController(other_params, post=ApplyToParams(other_params))
    other.load_mappings(saved)
    assert other.mappings == midi.mappings
    with pytest.raises(MappingError, match="autosave: midi.mappings #1: unknown key 'knob'"):
        other.load_mappings([{"knob": 1}], "autosave: midi.mappings")
    assert other.mappings == midi.mappings  # a bad file changes nothing


def test_clock_through_the_router_sets_tempo_and_drives_the_sink(rig):
    params, midi, rec, _ = rig
    rng = random.Random(7)
    period = 60.0 / (128.0 * 24)
    n = 4 * 24
    t0 = time.perf_counter() - n * period - 0.01
    midi.handle_message("clk", [0xFA], t=t0)
    for i in range(n):
        midi.handle_message("clk", [0xF8], t=t0 + i * period + rng.uniform(-0.002, 0.002))
    # A second port's clock is ignored while the first one runs.
    midi.handle_message("other", [0xF8], t=t0 + n * period)
    state = midi.clock_state()
    assert state.bpm == pytest.approx(128.0, abs=0.3)
    assert state.running and state.receiving and state.pulses == n
    assert len(rec.ticks) == n and rec.events[0][0] == "start"
    midi.handle_message("clk", [0xFC], t=t0 + n * period)
    assert rec.events[-1][0] == "stop" and not midi.clock_state().running


# --- the show's queue between the knob and the value ---------------------------------------------


class Show:
    """The show's side of the command path, turned by hand: its CommandQueue, and the step of its
    main loop that applies what was posted (parameter commands to the store, the rest kept)."""

    def __init__(self, params: ParamStore) -> None:
        self.params = params
        self.queue = CommandQueue()
        self.others: list = []
        self.applied: list[tuple[str, float]] = []
        params.subscribe(lambda name, value, origin: self.applied.append((name, value)))

    def turn(self) -> list:
        drained = self.queue.drain()
        for command in drained:
            if not apply_param_command(self.params, command):
                self.others.append(command)
        return drained


@pytest.fixture
def show_rig():
    params = make_params()
    show = Show(params)
    midi = MidiController(params, post=show.queue.post)
    midi.start()
    yield params, midi, show
    midi.stop()


def test_pickup_against_the_applied_value_with_many_moves_per_turn(show_rig):
    params, midi, show = show_rig
    knob = Control("cc", 21, 1)
    midi.set_mappings([Mapping(knob, "absolute", param="hue")])
    for v in (0, 20, 40, 60, 70, 80, 90):  # crosses 0.5 (63.5) between 60 and 70
        midi.handle_message("ctl", cc(1, 21, v))
    assert params.get("hue") == 0.5  # nothing applied until the show's loop turns
    (move,) = show.turn()  # one command: the moves after the pick-up, coalesced to the last
    assert move == SetParam("hue", 90 / 127, normalized=True, origin=knob, t=move.t, source="midi")
    assert params.get("hue") == pytest.approx(90 / 127) and midi.takeover_state(knob) == (pytest.approx(90 / 127), True)
    # A preset recall applied by the show: the knob must pick the new value up again.
    params.set_many({"hue": 0.9})
    for v in (95, 100, 110):
        midi.handle_message("ctl", cc(1, 21, v))
    assert show.turn() == [] and params.get("hue") == 0.9
    midi.handle_message("ctl", cc(1, 21, 120))  # passes 0.9 · 127 = 114.3
    midi.handle_message("ctl", cc(1, 21, 125))
    show.turn()
    assert params.get("hue") == pytest.approx(125 / 127)


def test_a_knob_move_applied_after_another_change_keeps_the_knob_in_control(show_rig):
    params, midi, show = show_rig
    knob = Control("cc", 21, 1)
    midi.set_mappings([Mapping(knob, "absolute", param="hue", takeover="pickup")])
    midi.handle_message("ctl", cc(1, 21, 64))
    show.turn()
    assert midi.takeover_state(knob)[1]
    midi.handle_message("ctl", cc(1, 21, 70))  # queued...
    params.set("hue", 0.2)  # ...when another change is applied (the operator's slider, say)
    midi.handle_message("ctl", cc(1, 21, 72))  # the knob is behind 0.2 now: this move waits
    show.turn()  # the queued move lands: the value is the knob's again
    assert params.get("hue") == pytest.approx(70 / 127) and midi.takeover_state(knob)[1]
    midi.handle_message("ctl", cc(1, 21, 74))  # so the knob drives it, without passing 70 again
    show.turn()
    assert params.get("hue") == pytest.approx(74 / 127)
    # After a bank switch only passing through the value counts, even for a move still queued.
    midi.handle_message("ctl", cc(1, 21, 80))
    midi.arm_takeover()
    show.turn()
    assert params.get("hue") == pytest.approx(80 / 127) and not midi.takeover_state(knob)[1]
    midi.handle_message("ctl", cc(1, 21, 90))
    show.turn()
    assert params.get("hue") == pytest.approx(80 / 127)


def test_scale_takeover_adds_up_several_moves_per_turn(show_rig):
    params, midi, show = show_rig
    midi.set_mappings([Mapping(Control("cc", 1, 1), "absolute", param="hue", takeover="scale")])
    params.set("hue", 0.8)
    positions = [26, 32, 38, 44, 50]
    value, previous = 0.8, None
    for p in positions:  # what applying each move at once gives
        r = absolute_move("scale", previous, p / 127, value, False)
        value = r.value if r.value is not None else value
        previous = p / 127
    for p in positions:
        midi.handle_message("ctl", cc(1, 1, p))
    show.turn()
    assert params.get("hue") == pytest.approx(value) and 0.8 < value < 1.0


def test_encoder_ticks_and_pads_between_two_turns_all_count(show_rig):
    params, midi, show = show_rig
    midi.set_mappings([
        Mapping(Control("cc", 16, 1), "relative-twos", param="hue", step=1 / 1024),
        Mapping(Control("note", 36, 10), "trigger", action="blackout"),
        Mapping(Control("note", 37, 10), "momentary", param="strobe"),
        Mapping(Control("note", 38, 10), "toggle", param="freeze"),
        Mapping(Control("note", 39, 10), "trigger", action="tap-tempo"),
    ])
    t0 = time.perf_counter()
    for i in range(300):  # 300 ticks of +1 and 3 of each pad, all before the show's loop turns
        midi.handle_message("enc", cc(1, 16, 1))
        if i % 100 == 0:
            for note in (36, 37, 38):
                midi.handle_message("pads", [0x99, note, 100])
                midi.handle_message("pads", [0x89, note, 0])
            midi.handle_message("pads", [0x99, 39, 100], t=t0 + i)
    drained = show.turn()
    nudges = [c for c in drained if isinstance(c, NudgeParam)]
    assert len(nudges) <= 4  # summed between the pads, never read from a stale value
    assert params.get("hue") == 0.5 + 300 / 1024
    assert [type(c) for c in show.others].count(Blackout) == 3
    assert [c.t for c in show.others if isinstance(c, Tap)] == [t0, t0 + 100, t0 + 200]  # each pad's own time
    assert [v for n, v in show.applied if n == "strobe"] == [1.0, 0.0] * 3  # every press and release
    assert sum(isinstance(c, ToggleParam) for c in drained) == 3 and params.get("freeze") == 1.0


# --- faults in the controller's threads -------------------------------------------------------------


def test_a_feedback_send_that_raises_restarts_the_sender_and_raises_an_alarm(caplog):
    board = AlarmBoard()
    sent: list = []
    calls = []

    def send(port, msgs):
        calls.append(msgs)
        if len(calls) == 2:
            raise RuntimeError("injected feedback fault")
        sent.append(msgs)

    fb = FeedbackSender(send, rate_hz=200.0, supervisor=Supervisor(board))
    fb.start()
    try:
        a, b = Control("cc", 1, 1), Control("cc", 2, 1)
        fb.update(a, ((0xB0, 1, 10),))
        wait_until(lambda: sent == [((0xB0, 1, 10),)], what="the first value")
        fb.update(b, ((0xB0, 2, 20),))  # this send raises
        wait_until(lambda: board.shown(), what="the alarm")
        assert board.shown()[0].text == "MIDI LED FEEDBACK RESTARTED (1)"
        wait_until(lambda: ((0xB0, 2, 20),) in sent, timeout=5.0, what="the failed value, sent after the restart")
        fb.update(a, ((0xB0, 1, 11),))
        wait_until(lambda: ((0xB0, 1, 11),) in sent, what="later values")
    finally:
        fb.stop()
    assert "injected feedback fault" in caplog.text and "Traceback" in caplog.text


# --- clock tracker and timestamps (pure) -------------------------------------------------------


def ticks(bpm: float, n: int, t0: float = 100.0, jitter: float = 0.0, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    p = 60.0 / (bpm * 24)
    return [t0 + i * p + rng.uniform(-jitter, jitter) for i in range(n)]


def feed(tracker: ClockTracker, times: list[float]) -> None:
    for t in times:
        tracker.tick(t)


def test_tempo_robust_to_jitter_quantisation_and_outliers():
    tr = ClockTracker()
    feed(tr, ticks(120.0, 96, jitter=0.004))
    assert tr.state(100.0 + 96 * 0.0208).bpm == pytest.approx(120.0, abs=0.3)
    # JACK-style quantisation: pulses land on 10 ms period boundaries.
    tr = ClockTracker()
    times = [100.0 + 0.01 * (int(t / 0.01) + 1) for t in ticks(120.0, 96, t0=0.0)]
    feed(tr, times)
    assert tr.state(times[-1]).bpm == pytest.approx(120.0, abs=0.3)
    # One very late pulse does not bend the tempo.
    times = ticks(140.0, 96)
    times[60] += 0.012
    tr = ClockTracker()
    feed(tr, times)
    assert tr.state(times[-1]).bpm == pytest.approx(140.0, abs=0.05)


def test_a_lost_pulse_is_counted():
    times = ticks(100.0, 96)
    del times[50]
    tr = ClockTracker()
    feed(tr, times)
    assert tr.state(times[-1]).bpm == pytest.approx(100.0, abs=0.05)
    p = 60.0 / (100.0 * 24)
    assert number_pulses(times, p)[-1] == 95


def test_tempo_change_is_followed_within_a_beat_or_two():
    a = ticks(120.0, 96)
    b = ticks(90.0, 48, t0=a[-1] + 60.0 / (90.0 * 24))
    tr = ClockTracker()
    feed(tr, a + b)
    assert tr.state(b[-1]).bpm == pytest.approx(90.0, abs=0.3)


def test_clock_gap_and_transport():
    tr = ClockTracker()
    tr.start(99.0)
    feed(tr, ticks(120.0, 48))
    s = tr.state(101.0)
    assert s.running and s.receiving and s.pulses == 48 and s.beats == 2.0
    assert not tr.state(103.0).receiving and tr.state(103.0).bpm is None  # the clock went quiet
    tr.stop(103.0)
    feed(tr, ticks(60.0, 48, t0=110.0))  # after the gap: the new tempo alone
    s = tr.state(112.0)
    assert not s.running and s.bpm == pytest.approx(60.0, abs=0.05)
    tr.continue_(112.0)
    assert tr.state(112.0).running
    assert ClockTracker().state(0.0).bpm is None


def test_timestamp_mapper_removes_callback_delays():
    m = TimestampMapper()
    rng = random.Random(3)
    true = [10.0 + 0.02 * i for i in range(200)]
    delays = [0.0005 + (rng.random() * 0.006 if rng.random() < 0.5 else 0.0) for _ in true]
    out = []
    prev = None
    for t, d in zip(true, delays):
        delta = 0.0 if prev is None else t - prev
        prev = t
        out.append(m.map(delta, t + d))
    errors = [abs(o - (t + 0.0005)) for o, t in zip(out[5:], true[5:])]
    assert max(errors) < 0.0006  # the up-to-6 ms waits for the interpreter lock are gone
    assert all(o <= t + d for o, t, d in zip(out, true, delays))  # never in the future


# --- feedback ------------------------------------------------------------------------------------


def test_feedback_messages_per_kind():
    c = Control("cc", 21, 2)
    assert feedback_messages(Mapping(c, "absolute", param="x"), 0.5) == ((0xB1, 21, 64),)
    assert feedback_messages(Mapping(c, "relative-twos", param="x"), 1.0) == ((0xB1, 21, 127),)
    wide = Mapping(Control("cc", 1, 1), "absolute14", param="x")
    assert feedback_messages(wide, 1.0) == ((0xB0, 1, 127), (0xB0, 33, 127))
    assert feedback_messages(Mapping(Control("note", 36, 10), "toggle", param="x"), 1.0) == ((0x99, 36, 127),)
    assert feedback_messages(Mapping(Control("note", 36, 10), "toggle", param="x"), 0.0) == ((0x99, 36, 0),)
    assert feedback_messages(Mapping(Control("cc", 64, 1), "momentary", param="x"), 1.0) == ((0xB0, 64, 127),)
    assert feedback_messages(Mapping(Control("note", 36, 10), "trigger", action="blackout"), 1.0) == ()


def test_feedback_rate_limit_latest_value_wins():
    sent: list[tuple[float, tuple]] = []
    lock = threading.Lock()

    def send(port, msgs):
        with lock:
            sent.append((time.monotonic(), msgs))

    fb = FeedbackSender(send, rate_hz=50.0)
    fb.start()
    try:
        a, b = Control("cc", 1, 1), Control("cc", 2, 1)
        t0 = time.monotonic()
        for i in range(2000):  # a drag in the operator window: far more updates than a controller takes
            fb.update(a, ((0xB0, 1, i % 128),))
            if i % 2:
                fb.update(b, ((0xB0, 2, i % 128),))
        fb.update(a, ((0xB0, 1, 99),))
        fb.update(b, ((0xB0, 2, 98),))
        elapsed = time.monotonic() - t0
        wait_until(lambda: {m[0][1:] for _, m in sent[-2:]} == {(1, 99), (2, 98)}, what="the final values")
        with lock:
            per = {n: [t for t, m in sent if m[0][1] == n] for n in (1, 2)}
        for n, times in per.items():
            # At most one message per 20 ms per control, and far fewer than the updates.
            gaps = [y - x for x, y in zip(times, times[1:])]
            assert all(g >= 0.0195 for g in gaps), (n, min(gaps))
            assert len(times) <= elapsed * 50 + 3
        # Unchanged values are not sent again.
        before = len(sent)
        fb.update(a, ((0xB0, 1, 99),))
        time.sleep(0.05)
        assert len(sent) == before
        # After forget() (a replugged device) they are.
        fb.forget()
        fb.update(a, ((0xB0, 1, 99),))
        wait_until(lambda: len(sent) == before + 1, what="the resent value")
    finally:
        fb.stop()


def test_feedback_from_any_source_but_no_echo_to_the_knob_that_moved(rig):
    params, midi, _, _ = rig
    sent = []
    midi._feedback._send = lambda port, msgs: sent.append(msgs)  # no ports in this test: catch what goes out
    midi.set_mappings([Mapping(Control("cc", 21, 1), "absolute", param="hue", takeover="jump"),
                       Mapping(Control("cc", 22, 1), "relative-twos", param="hue", step=0.1)])
    wait_until(lambda: ((0xB0, 21, 64),) in sent and ((0xB0, 22, 64),) in sent, what="the initial values")
    sent.clear()
    params.set("hue", 1.0)  # from the keyboard: both controls show it
    wait_until(lambda: ((0xB0, 21, 127),) in sent and ((0xB0, 22, 127),) in sent, what="keyboard feedback")
    sent.clear()
    midi.handle_message("ctl", cc(1, 21, 10))  # the knob itself: only the encoder ring follows
    wait_until(lambda: ((0xB0, 22, 10),) in sent, what="the encoder ring")
    time.sleep(0.05)
    assert not any(m[0][1] == 21 for m in sent)


def test_a_learn_that_cannot_make_a_mapping_says_so_once():
    from vjgan.control.router import LearnRequest, MidiRouter

    reports: list[str] = []
    router = MidiRouter(make_params(), post=lambda command: None, report=reports.append,
                        open_inputs=lambda: ["a", "b"])
    router.learn(LearnRequest("hue"))
    router.handle(" ", cc(1, 10, 5), time.perf_counter())  # a nameless port cannot be recorded
    assert router.learning is None and len(router.table) == 0
    assert len(reports) == 1 and reports[0].startswith("MIDI learn failed: ")


def test_midi_clock_drives_the_audio_beat_clock():
    from vjgan.audio.tempo import BeatClock
    from vjgan.control.clock import ClockSink, ExternalClockSink

    beat_clock = BeatClock()
    sink = ExternalClockSink(beat_clock)
    assert isinstance(sink, ClockSink)
    params = make_params()
    midi = MidiController(params, post=ApplyToParams(params), clock=sink)
    period = 60.0 / (100.0 * 24)
    t0 = time.perf_counter()
    midi.handle_message("clk", [0xFA], t=t0)
    for i in range(48):
        midi.handle_message("clk", [0xF8], t=t0 + i * period)
    assert beat_clock.source == "external"
    assert beat_clock.bpm == pytest.approx(100.0, abs=0.01)
    assert beat_clock.beat_count >= 1
    midi.handle_message("clk", [0xFC], t=t0 + 48 * period)
    assert beat_clock.source != "external"
    with pytest.raises(TypeError, match="external_tick"):
        ExternalClockSink(object())
