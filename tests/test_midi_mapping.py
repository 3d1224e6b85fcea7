"""Mappings as data (dicts for presets and autosave, strict validation), bound to the show's actions."""

from __future__ import annotations

import pytest

from vjgan.control.commands import ACTIONS
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


def test_pads_bind_to_the_shows_vocabulary_of_actions():
    for spec in ACTIONS.values():
        name = f"{spec.name}:3" if spec.argument else spec.name
        m = Mapping(Control("note", 36, 10), "trigger", action=name)
        assert Mapping.from_dict(m.to_dict()) == m
    for bad, reason in (("warp", "no action named 'warp'"), ("recall-preset", "needs an argument"),
                        ("blackout:1", "takes no argument"), ("Black Out", "is not an action name")):
        with pytest.raises(MappingError, match=reason) as e:
            mappings_from_list([{"channel": 10, "note": 36, "kind": "trigger", "action": bad}], "preset live.toml")
        assert str(e.value).startswith("preset live.toml #1: ") and "\n" not in str(e.value)


def action_table() -> list[str]:
    """The action table of docs/midi.md, made from the vocabulary."""
    lines = ["| action | what it does |", "|---|---|"]
    for spec in sorted(ACTIONS.values(), key=lambda s: s.name):
        if spec.argument:
            lines.append(f"| `{spec.name}:ARG` | {spec.description} (ARG: {spec.argument}) |")
        else:
            lines.append(f"| `{spec.name}` | {spec.description} |")
    return lines


def test_the_midi_docs_list_the_vocabulary_of_actions():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "midi.md").read_text().splitlines()
    start = text.index("<!-- actions: vjgan.control.commands.ACTIONS -->") + 1
    end = text.index("<!-- end of actions -->")
    expected = "\n".join(action_table())
    assert text[start:end] == action_table(), f"docs/midi.md's action table should read:\n{expected}"
