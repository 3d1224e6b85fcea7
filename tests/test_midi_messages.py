"""MIDI bytes → messages → words: the pure decoding layer, fed byte lists as rtmidi delivers them."""

from __future__ import annotations

import pytest

from vjgan.control.messages import (ChannelPressure, Clock, Continue, ControlChange, NoteOff, NoteOn, PitchBend,
                                    PolyAftertouch, ProgramChange, SongPosition, Start, Stop, SysEx, Unknown,
                                    control_change, control_change_14bit, decode, describe, encode_relative,
                                    note_name, note_off, note_on, relative_delta)


@pytest.mark.parametrize("data, expected", [
    ([0xB0, 21, 64], ControlChange(1, 21, 64)),
    ([0xBF, 127, 0], ControlChange(16, 127, 0)),
    ([0x99, 36, 100], NoteOn(10, 36, 100)),
    ([0x90, 60, 0], NoteOff(1, 60, 0)),  # note-on with velocity 0 is a note-off
    ([0x83, 60, 64], NoteOff(4, 60, 64)),
    ([0xC2, 5], ProgramChange(3, 5)),
    ([0xE0, 0x00, 0x40], PitchBend(1, 0)),
    ([0xE0, 0x7F, 0x7F], PitchBend(1, 8191)),
    ([0xE0, 0x00, 0x00], PitchBend(1, -8192)),
    ([0xA1, 60, 33], PolyAftertouch(2, 60, 33)),
    ([0xD0, 90], ChannelPressure(1, 90)),
    ([0xF8], Clock()),
    ([0xFA], Start()),
    ([0xFC], Stop()),
    ([0xFB], Continue()),
    ([0xF2, 0x10, 0x01], SongPosition(144)),
    ([0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7], SysEx(6)),
])
def test_decode(data, expected):
    assert decode(data) == expected


@pytest.mark.parametrize("data", [[], [0x40], [0xB0, 21], [0xB0, 21, 128], [0x90, 60], [0xC0], [0xF8, 0],
                                  [0xF5]])
def test_decode_malformed_is_unknown_not_an_error(data):
    assert isinstance(decode(data), Unknown)


@pytest.mark.parametrize("encoding, value, delta", [
    ("twos", 1, 1), ("twos", 5, 5), ("twos", 63, 63), ("twos", 127, -1), ("twos", 123, -5), ("twos", 64, -64),
    ("twos", 0, 0),
    ("offset", 65, 1), ("offset", 63, -1), ("offset", 64, 0), ("offset", 70, 6), ("offset", 0, -64),
    ("offset", 127, 63),
    ("signed", 1, 1), ("signed", 65, -1), ("signed", 0, 0), ("signed", 64, 0), ("signed", 70, -6),
    ("signed", 63, 63), ("signed", 127, -63),
])
def test_relative_encodings(encoding, value, delta):
    assert relative_delta(value, encoding) == delta


@pytest.mark.parametrize("encoding, lo, hi", [("twos", -64, 63), ("offset", -64, 63), ("signed", -63, 63)])
def test_relative_encode_is_inverse(encoding, lo, hi):
    for delta in range(lo, hi + 1):
        assert relative_delta(encode_relative(delta, encoding), encoding) == delta


def test_relative_rejects_bad_input():
    with pytest.raises(ValueError):
        relative_delta(1, "gray")
    with pytest.raises(ValueError):
        relative_delta(128, "twos")


def test_builders():
    assert control_change(1, 21, 64) == (0xB0, 21, 64)
    assert note_on(10, 36, 127) == (0x99, 36, 127)
    assert note_off(16, 1) == (0x8F, 1, 0)
    assert control_change_14bit(2, 7, 16383) == ((0xB1, 7, 127), (0xB1, 39, 127))
    assert control_change_14bit(1, 0, (100 << 7) | 27) == ((0xB0, 0, 100), (0xB0, 32, 27))
    with pytest.raises(ValueError):
        control_change(17, 1, 1)
    with pytest.raises(ValueError):
        control_change_14bit(1, 32, 0)


def test_note_names_middle_c_is_c3():
    assert note_name(60) == "C3"
    assert note_name(0) == "C-2"
    assert note_name(61) == "C#3"
    assert note_name(127) == "G8"


@pytest.mark.parametrize("data, text", [
    ([0xB0, 21, 64], "ch 1  CC 21 = 64"),
    ([0x99, 60, 100], "ch 10 note on C3 vel 100"),
    ([0x89, 60, 0], "ch 10 note off C3"),
    ([0xC0, 3], "ch 1  program 3"),
    ([0xE0, 0x00, 0x50], "ch 1  pitch bend +2048"),
    ([0xFA], "start"),
    ([0xFC], "stop"),
    ([0xFB], "continue"),
    ([0xF5, 1], "unknown F5 01"),
])
def test_describe_in_words(data, text):
    assert describe(decode(data)) == text
