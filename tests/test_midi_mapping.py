"""Mappings as data (dicts for presets and autosave, strict validation) and the action registry."""

from __future__ import annotations

import threading

import pytest

from vjgan.control.actions import ActionCall, ActionRegistry, UnknownActionError, parse_action_name
from vjgan.control.mapping import (Control, Mapping, MappingError, MappingTable, mappings_from_list,
                                   mappings_to_list, stable_port_name)
from vjgan.errors import UserError

KNOB = Mapping(Control("cc", 21, 1), "absolute", param="bass_gain")


def sample_mappings() -> list[Mapping]:
    return [
        KNOB,
        Mapping(Control("cc", 1, 2, port="nanoKONTROL"), "absolute14", param="zoom", takeover="scale"),
        Mapping(Control("cc", 16, 1), "relative-twos", param="hue", step=0.02),
        Mapping(Control("cc", 17, 1), "relative-offset", param="hue2", feedback=False),
        Mapping(Control("cc", 18, 1), "relative-signed", param="hue3", step=1.0),
        Mapping(Control("note", 36, 10), "trigger", action="recall-preset:3"),
        Mapping(Control("note", 37, 10), "trigger", action="tap-tempo"),
        Mapping(Control("note", 38, 10), "momentary", param="strobe"),
        Mapping(Control("cc", 45, 1), "toggle", param="freeze_switch"),
        Mapping(Control("cc", 46, 1), "absolute", param="jumpy", takeover="jump"),
    ]


def test_round_trip_through_plain_dicts():
    ms = sample_mappings()
    data = mappings_to_list(ms)
    assert data[0] == {"channel": 1, "cc": 21, "kind": "absolute", "param": "bass_gain", "takeover": "pickup"}
    assert data[1]["port"] == "nanoKONTROL" and data[1]["kind"] == "absolute14" and data[1]["takeover"] == "scale"
    assert data[2] == {"channel": 1, "cc": 16, "kind": "relative-twos", "param": "hue", "step": 0.02}
    assert data[3]["feedback"] is False
    assert data[5] == {"channel": 10, "note": 36, "kind": "trigger", "action": "recall-preset:3"}
    # Only TOML-representable scalars.
    assert all(isinstance(v, (str, int, float, bool)) for d in data for v in d.values())
    assert mappings_from_list(data) == ms


def test_dicts_survive_toml():
    tomllib = pytest.importorskip("tomllib")

    def dump(items):  # a minimal TOML writer for flat tables (the lead's writer does the real files)
        lines = []
        for d in items:
            lines.append("[[midi.mappings]]")
            for k, v in d.items():
                if isinstance(v, bool):
                    text = "true" if v else "false"
                else:
                    text = f'"{v}"' if isinstance(v, str) else repr(v)
                lines.append(f"{k} = {text}")
        return "\n".join(lines)

    ms = sample_mappings()
    loaded = tomllib.loads(dump(mappings_to_list(ms)))
    assert mappings_from_list(loaded["midi"]["mappings"]) == ms


@pytest.mark.parametrize("d, needle", [
    ({"channel": 1, "cc": 21, "kind": "absolute", "param": "x", "colour": "red"}, "unknown key 'colour'"),
    ({"channel": 0, "cc": 21, "kind": "absolute", "param": "x"}, "channel must be a whole number in [1, 16], got"),
    ({"channel": 17, "cc": 21, "kind": "absolute", "param": "x"}, "channel must be a whole number in [1, 16], got"),
    ({"channel": "1", "cc": 21, "kind": "absolute", "param": "x"}, "channel must be a whole number"),
    ({"channel": True, "cc": 21, "kind": "absolute", "param": "x"}, "channel must be a whole number"),
    ({"channel": 1, "cc": 128, "kind": "absolute", "param": "x"}, "cc must be a whole number in [0, 127], got 128"),
    ({"channel": 1, "cc": 1, "note": 1, "kind": "absolute", "param": "x"}, "exactly one of 'cc' or 'note'"),
    ({"channel": 1, "kind": "absolute", "param": "x"}, "exactly one of 'cc' or 'note'"),
    ({"cc": 1, "kind": "absolute", "param": "x"}, "missing key 'channel'"),
    ({"channel": 1, "cc": 1, "kind": "knob", "param": "x"}, "kind 'knob' is not one of"),
    ({"channel": 1, "cc": 1, "kind": "absolute"}, "exactly one of 'param' or 'action'"),
    ({"channel": 1, "cc": 1, "kind": "absolute", "param": "x", "action": "blackout"},
     "exactly one of 'param' or 'action'"),
    ({"channel": 1, "cc": 40, "kind": "absolute14", "param": "x"}, "MSB on CC 0-31"),
    ({"channel": 1, "note": 40, "kind": "absolute", "param": "x"}, "reads control changes, not notes"),
    ({"channel": 1, "note": 40, "kind": "relative-twos", "param": "x"}, "reads control changes, not notes"),
    ({"channel": 1, "cc": 4, "kind": "relative-twos", "param": "x", "step": 0}, "step must be a number in (0, 1]"),
    ({"channel": 1, "cc": 4, "kind": "relative-twos", "param": "x", "step": 2.0}, "step must be a number in (0, 1]"),
    ({"channel": 1, "cc": 4, "kind": "relative-twos", "param": "x", "step": "fast"}, "step must be a number"),
    ({"channel": 1, "cc": 4, "kind": "absolute", "param": "x", "step": 0.1}, "'step' applies to relative kinds only"),
    ({"channel": 1, "cc": 4, "kind": "relative-twos", "param": "x", "takeover": "jump"},
     "'takeover' applies to absolute"),
    ({"channel": 1, "cc": 4, "kind": "absolute", "param": "x", "takeover": "soft"}, "takeover 'soft' is not one of"),
    ({"channel": 1, "note": 4, "kind": "momentary", "action": "blackout"}, "an action is bound with kind 'trigger'"),
    ({"channel": 1, "note": 4, "kind": "trigger", "param": "x"}, "kind 'trigger' fires an action"),
    ({"channel": 1, "note": 4, "kind": "trigger", "action": "Black Out"}, "is not an action name"),
    ({"channel": 1, "cc": 4, "kind": "absolute", "param": "x", "port": ""}, "port must be a non-empty string"),
    ({"channel": 1, "cc": 4, "kind": "absolute", "param": "x", "feedback": "yes"}, "feedback must be true or false"),
    ({"channel": 1, "cc": 4, "kind": "absolute", "param": "two words"}, "is not a parameter name"),
])
def test_strict_validation_is_one_clear_line(d, needle):
    with pytest.raises(MappingError) as info:
        mappings_from_list([KNOB.to_dict(), d], "preset live.toml: midi.mappings")
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert "\n" not in message
    assert message.startswith("preset live.toml: midi.mappings #2: "), message
    assert needle in message, message


def test_not_a_list_or_not_a_table():
    with pytest.raises(MappingError, match="expected a list of tables"):
        mappings_from_list({"cc": 1})
    with pytest.raises(MappingError, match="#1: expected a table of keys"):
        mappings_from_list(["cc=1"])


def test_two_mappings_on_one_control_is_an_error_in_files():
    a = {"channel": 1, "cc": 21, "kind": "absolute", "param": "a"}
    b = {"channel": 1, "cc": 21, "kind": "absolute", "param": "b"}
    with pytest.raises(MappingError, match=r"#1 and #2 both use ch 1 CC 21"):
        mappings_from_list([a, b])
    # A 14-bit control owns CC n + 32 as well.
    c = {"channel": 1, "cc": 5, "kind": "absolute14", "param": "c"}
    d = {"channel": 1, "cc": 37, "kind": "absolute", "param": "d"}
    with pytest.raises(MappingError, match="both use ch 1 CC 37"):
        mappings_from_list([c, d])
    # Other channel, other port: no conflict.
    e = {"channel": 2, "cc": 21, "kind": "absolute", "param": "a"}
    f = {"port": "left", "channel": 3, "cc": 21, "kind": "absolute", "param": "a"}
    g = {"port": "right", "channel": 3, "cc": 21, "kind": "absolute", "param": "b"}
    assert len(mappings_from_list([a, e, f, g])) == 4


def test_table_lookup_and_learning_moves_a_control():
    table = MappingTable(sample_mappings())
    hits = table.lookup("cc", 1, 21, "any port")
    assert [m.param for m, _ in hits] == ["bass_gain"]
    # The 14-bit control answers on its MSB and (flagged) LSB numbers, and only on its port.
    assert table.lookup("cc", 2, 1, "nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0")[0][1] is False
    assert table.lookup("cc", 2, 33, "nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0")[0][1] is True
    assert table.lookup("cc", 2, 1, "Launch Control XL") == ()
    # Binding CC 21 to another parameter moves the control; bass_gain is left unmapped.
    moved = table.with_mapping(Mapping(Control("cc", 21, 1), "absolute", param="treble_gain"))
    assert [m.param for m, _ in moved.lookup("cc", 1, 21, "x")] == ["treble_gain"]
    assert moved.for_param("bass_gain") == ()
    assert len(moved) == len(table)
    # A 14-bit learn on CC 13 takes CC 45 (13 + 32) away from the toggle bound there.
    wide = table.with_mapping(Mapping(Control("cc", 13, 1), "absolute14", param="wide"))
    assert wide.for_param("freeze_switch") == ()
    assert table.without(target="hue").for_param("hue") == ()
    assert len(table.without(control=Control("note", 36, 10))) == len(table) - 1


def test_stable_port_name_drops_alsa_numbers():
    assert stable_port_name("nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0") == "nanoKONTROL2:nanoKONTROL2 MIDI 1"
    assert stable_port_name("testctl:out") == "testctl:out"


# --- actions ------------------------------------------------------------------------------------


def test_action_names():
    assert parse_action_name("recall-preset:3") == ("recall-preset", "3")
    assert parse_action_name("blackout") == ("blackout", None)
    for bad in ("", "Blackout", "recall preset", "x:", ":3", "a:b:c"):
        with pytest.raises(UnknownActionError):
            parse_action_name(bad)


def test_registry_invokes_with_argument_and_time():
    reg = ActionRegistry()
    calls: list[ActionCall] = []
    reg.register("recall-preset", calls.append, takes_argument=True)
    reg.register("blackout", calls.append)
    reg.invoke("recall-preset:7", t=12.5, source="midi")
    reg.invoke("blackout")
    assert calls[0] == ActionCall("recall-preset", "7", 12.5, "midi")
    assert calls[1].name == "blackout" and calls[1].argument is None and calls[1].t > 0
    assert reg.names() == ["blackout", "recall-preset"]
    assert reg.has("recall-preset:1") and not reg.has("recall-preset") and not reg.has("blackout:1")
    assert [i.description != "" for i in reg.infos()] == [True, True]  # standard actions are described


def test_registry_errors_are_user_errors():
    reg = ActionRegistry()
    reg.register("recall-preset", lambda call: None, takes_argument=True)
    with pytest.raises(UnknownActionError, match="no action named 'freeze' .known: recall-preset."):
        reg.invoke("freeze")
    with pytest.raises(UnknownActionError, match="needs an argument, e.g. 'recall-preset:1'"):
        reg.invoke("recall-preset")
    reg.register("freeze", lambda call: None)
    with pytest.raises(UnknownActionError, match="takes no argument"):
        reg.invoke("freeze:2")
    with pytest.raises(ValueError):
        reg.register("recall-preset:2", lambda call: None)
    reg.unregister("freeze")
    assert not reg.has("freeze")


def test_registry_registration_is_thread_safe():
    reg = ActionRegistry()
    hits = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(200):
            name = f"a{k}-{i}"

            def fn(call, name=name):
                with lock:
                    hits.append(call.name)

            reg.register(name, fn)
            reg.invoke(name)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(reg.names()) == 800
    assert sorted(hits) == sorted(reg.names())
