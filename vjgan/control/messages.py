"""MIDI bytes to typed messages, and typed messages to words: pure functions, no ports.

rtmidi hands the callback one complete message as a list of ints (running status already
expanded), so decoding is a lookup on the status byte. Channels are 1-16 here, as printed on
controllers and in every VJ tool's mapping list; the wire carries 0-15.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

# Status bytes (channel messages carry the channel in the low nibble).
NOTE_OFF = 0x80
NOTE_ON = 0x90
POLY_AFTERTOUCH = 0xA0
CONTROL_CHANGE = 0xB0
PROGRAM_CHANGE = 0xC0
CHANNEL_PRESSURE = 0xD0
PITCH_BEND = 0xE0
SYSEX = 0xF0
SONG_POSITION = 0xF2
CLOCK = 0xF8
START = 0xFA
CONTINUE = 0xFB
STOP = 0xFC
ACTIVE_SENSING = 0xFE

CLOCK_PPQ = 24  # MIDI clock pulses per quarter note (fixed by the MIDI spec)

# 14-bit controllers: the MSB travels on CC n (0-31), the LSB on CC n + 32.
CC14_LSB_OFFSET = 32
CC14_MAX_MSB_NUMBER = 31

RELATIVE_ENCODINGS = ("twos", "offset", "signed")


@dataclass(frozen=True, slots=True)
class ControlChange:
    channel: int
    number: int
    value: int


@dataclass(frozen=True, slots=True)
class NoteOn:
    """A key or pad pressed (velocity > 0; note-on with velocity 0 decodes as NoteOff)."""

    channel: int
    note: int
    velocity: int


@dataclass(frozen=True, slots=True)
class NoteOff:
    channel: int
    note: int
    velocity: int


@dataclass(frozen=True, slots=True)
class ProgramChange:
    channel: int
    program: int


@dataclass(frozen=True, slots=True)
class PitchBend:
    channel: int
    value: int  # -8192 .. 8191, 0 = centre


@dataclass(frozen=True, slots=True)
class PolyAftertouch:
    channel: int
    note: int
    pressure: int


@dataclass(frozen=True, slots=True)
class ChannelPressure:
    channel: int
    pressure: int


@dataclass(frozen=True, slots=True)
class Clock:
    """One MIDI clock pulse (24 per quarter note)."""


@dataclass(frozen=True, slots=True)
class Start:
    pass


@dataclass(frozen=True, slots=True)
class Stop:
    pass


@dataclass(frozen=True, slots=True)
class Continue:
    pass


@dataclass(frozen=True, slots=True)
class SongPosition:
    sixteenths: int  # MIDI beats (sixteenth notes) since the start of the song


@dataclass(frozen=True, slots=True)
class SysEx:
    length: int


@dataclass(frozen=True, slots=True)
class Unknown:
    """Anything else (truncated, malformed or a system message vjgan has no use for)."""

    data: tuple[int, ...]


Message = Union[ControlChange, NoteOn, NoteOff, ProgramChange, PitchBend, PolyAftertouch, ChannelPressure,
                Clock, Start, Stop, Continue, SongPosition, SysEx, Unknown]

# Singletons: the clock arrives 48 times a second at 120 BPM; no need to allocate each time.
_CLOCK, _START, _STOP, _CONTINUE = Clock(), Start(), Stop(), Continue()


def _data_ok(data: Sequence[int], n: int) -> bool:
    return len(data) == n and all(0 <= b <= 0x7F for b in data[1:])


def decode(data: Sequence[int]) -> Message:
    """Decode one complete MIDI message given as bytes (a list of ints, as rtmidi delivers it)."""
    if not data:
        return Unknown(())
    status = data[0]
    if status < 0x80:
        return Unknown(tuple(data))
    if status < 0xF0:
        kind = status & 0xF0
        channel = (status & 0x0F) + 1
        two = _data_ok(data, 3)
        if kind == CONTROL_CHANGE and two:
            return ControlChange(channel, data[1], data[2])
        if kind == NOTE_ON and two:
            # Running-status senders end notes with velocity 0 instead of a note-off.
            return NoteOn(channel, data[1], data[2]) if data[2] > 0 else NoteOff(channel, data[1], 0)
        if kind == NOTE_OFF and two:
            return NoteOff(channel, data[1], data[2])
        if kind == PITCH_BEND and two:
            return PitchBend(channel, ((data[2] << 7) | data[1]) - 8192)
        if kind == POLY_AFTERTOUCH and two:
            return PolyAftertouch(channel, data[1], data[2])
        if kind == PROGRAM_CHANGE and _data_ok(data, 2):
            return ProgramChange(channel, data[1])
        if kind == CHANNEL_PRESSURE and _data_ok(data, 2):
            return ChannelPressure(channel, data[1])
        return Unknown(tuple(data))
    if len(data) == 1:
        if status == CLOCK:
            return _CLOCK
        if status == START:
            return _START
        if status == STOP:
            return _STOP
        if status == CONTINUE:
            return _CONTINUE
    if status == SYSEX:
        return SysEx(len(data))
    if status == SONG_POSITION and _data_ok(data, 3):
        return SongPosition((data[2] << 7) | data[1])
    return Unknown(tuple(data))


# --- relative encoders ------------------------------------------------------------------------


def relative_delta(value: int, encoding: str) -> int:
    """Encoder ticks (signed) carried by one CC value in the given relative encoding.

    - "twos": two's complement, 1..63 up, 127..65 down (127 = -1), as Behringer, Arturia and
      Native Instruments controllers send it;
    - "offset": binary offset around 64, 65.. up, 63.. down (64 = no move);
    - "signed": sign bit, 1..63 up, 65..127 down (65 = -1), the "signed bit" of Ableton and
      Mackie-style encoders.
    Larger magnitudes are acceleration (the encoder turned fast).
    """
    if not 0 <= value <= 127:
        raise ValueError(f"CC value {value} outside 0..127")
    if encoding == "twos":
        return value if value < 64 else value - 128
    if encoding == "offset":
        return value - 64
    if encoding == "signed":
        return -(value & 0x3F) if value & 0x40 else value & 0x3F
    raise ValueError(f"unknown relative encoding {encoding!r} (one of {', '.join(RELATIVE_ENCODINGS)})")


def encode_relative(delta: int, encoding: str) -> int:
    """The CC value a controller sends for `delta` ticks (the inverse of `relative_delta`)."""
    if encoding == "twos":
        if not -64 <= delta <= 63:
            raise ValueError(f"delta {delta} outside -64..63")
        return delta & 0x7F
    if encoding == "offset":
        if not -64 <= delta <= 63:
            raise ValueError(f"delta {delta} outside -64..63")
        return delta + 64
    if encoding == "signed":
        if not -63 <= delta <= 63:
            raise ValueError(f"delta {delta} outside -63..63")
        return (0x40 | -delta) if delta < 0 else delta
    raise ValueError(f"unknown relative encoding {encoding!r}")


# --- building messages (feedback out, tests) -----------------------------------------------------


def _check(channel: int, *values: int) -> None:
    if not 1 <= channel <= 16:
        raise ValueError(f"MIDI channel {channel} outside 1..16")
    for v in values:
        if not 0 <= v <= 127:
            raise ValueError(f"MIDI data byte {v} outside 0..127")


def control_change(channel: int, number: int, value: int) -> tuple[int, int, int]:
    _check(channel, number, value)
    return (CONTROL_CHANGE | (channel - 1), number, value)


def note_on(channel: int, note: int, velocity: int) -> tuple[int, int, int]:
    _check(channel, note, velocity)
    return (NOTE_ON | (channel - 1), note, velocity)


def note_off(channel: int, note: int, velocity: int = 0) -> tuple[int, int, int]:
    _check(channel, note, velocity)
    return (NOTE_OFF | (channel - 1), note, velocity)


def control_change_14bit(channel: int, number: int, value: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """MSB on CC `number`, then LSB on CC `number` + 32 (the order the MIDI spec asks for)."""
    if not 0 <= number <= CC14_MAX_MSB_NUMBER:
        raise ValueError(f"14-bit CC number {number} outside 0..31")
    if not 0 <= value <= 16383:
        raise ValueError(f"14-bit value {value} outside 0..16383")
    msb = control_change(channel, number, value >> 7)
    return msb, control_change(channel, number + CC14_LSB_OFFSET, value & 0x7F)


# --- words ---------------------------------------------------------------------------------------

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(note: int) -> str:
    """Note number to name with middle C (60) = C3, the convention of Ableton, Yamaha and most
    controller editors (Roland and some DAWs call it C4)."""
    return f"{_NOTE_NAMES[note % 12]}{note // 12 - 2}"


def describe(message: Message) -> str:
    """One message in words, as `vjgan midi monitor` prints it (without the clock, which the
    monitor sums up as a tempo)."""
    if isinstance(message, ControlChange):
        return f"ch {message.channel:<2} CC {message.number} = {message.value}"
    if isinstance(message, NoteOn):
        return f"ch {message.channel:<2} note on {note_name(message.note)} vel {message.velocity}"
    if isinstance(message, NoteOff):
        return f"ch {message.channel:<2} note off {note_name(message.note)}"
    if isinstance(message, ProgramChange):
        return f"ch {message.channel:<2} program {message.program}"
    if isinstance(message, PitchBend):
        return f"ch {message.channel:<2} pitch bend {message.value:+d}"
    if isinstance(message, PolyAftertouch):
        return f"ch {message.channel:<2} aftertouch {note_name(message.note)} {message.pressure}"
    if isinstance(message, ChannelPressure):
        return f"ch {message.channel:<2} channel pressure {message.pressure}"
    if isinstance(message, Clock):
        return "clock"
    if isinstance(message, Start):
        return "start"
    if isinstance(message, Stop):
        return "stop"
    if isinstance(message, Continue):
        return "continue"
    if isinstance(message, SongPosition):
        return f"song position {message.sixteenths}/16"
    if isinstance(message, SysEx):
        return f"sysex ({message.length} bytes)"
    return "unknown " + " ".join(f"{b:02X}" for b in message.data)
