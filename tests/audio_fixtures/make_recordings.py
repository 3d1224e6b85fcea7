"""Make the music recordings the audio tests use (run once; the .ogg files are committed).

Each piece is written here as MIDI (drums, bass, keys, pads, humanised timing and velocity) and
rendered by FluidSynth with the FluidR3 GM soundfont: recorded instrument samples released under
the MIT licence by Frank Wen, so the renders may be redistributed with vjgan. The true tempo is
known because we wrote it. Needs Debian's `fluidsynth` and `fluid-soundfont-gm`:

    python3 tests/audio_fixtures/make_recordings.py
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
PPQ = 480
RATE = 44100

# GM drum notes
KICK, SNARE, CLAP, HAT, OPEN_HAT, RIDE, CRASH, RIM = 36, 38, 39, 42, 46, 51, 49, 37


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


class Song:
    """Notes in beats; humanised on export. Channel 9 is the GM drum kit."""

    def __init__(self, bpm: float, seed: int):
        self.bpm = bpm
        self.rng = np.random.default_rng(seed)
        self.events: list[tuple[float, int, int, int, float]] = []  # beat, channel, note, velocity, length
        self.programs: dict[int, int] = {}

    def program(self, channel: int, program: int) -> None:
        self.programs[channel] = program

    def note(self, beat: float, channel: int, note: int, velocity: int, length: float = 0.25, jitter_ms: float = 4.0) -> None:
        # Human timing: a few ms early or late, velocity +-8 (a drum machine this is not).
        jitter = self.rng.normal(0.0, jitter_ms / 1000.0) * self.bpm / 60.0
        vel = int(np.clip(velocity + self.rng.integers(-8, 9), 1, 127))
        self.events.append((max(0.0, beat + jitter), channel, note, vel, length))

    def midi(self) -> bytes:
        tempo = int(round(60_000_000 / self.bpm))
        msgs: list[tuple[int, bytes]] = [(0, b"\xff\x51\x03" + tempo.to_bytes(3, "big"))]
        for ch, prog in self.programs.items():
            msgs.append((0, bytes([0xC0 | ch, prog])))
        for beat, ch, note, vel, length in self.events:
            on = int(round(beat * PPQ))
            off = int(round((beat + length) * PPQ))
            msgs.append((on, bytes([0x90 | ch, note, vel])))
            msgs.append((off, bytes([0x80 | ch, note, 0])))
        msgs.sort(key=lambda m: (m[0], m[1][0] & 0xF0 == 0x90))  # note-offs before note-ons at a tick
        track = bytearray()
        last = 0
        for tick, data in msgs:
            track += _vlq(tick - last) + data
            last = tick
        track += b"\x00\xff\x2f\x00"
        header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, PPQ)
        return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def house(bars: int = 12) -> Song:
    s = Song(124.0, seed=1)
    s.program(0, 38)  # synth bass 1
    s.program(1, 4)  # electric piano
    s.program(2, 89)  # warm pad
    chords = [(57, 60, 64), (53, 57, 60), (55, 59, 62), (52, 55, 59)]
    bass = [45, 41, 43, 40]
    for bar in range(bars):
        b0 = bar * 4
        for q in range(4):
            s.note(b0 + q, 9, KICK, 118)
            if q in (1, 3):
                s.note(b0 + q, 9, CLAP, 96)
            s.note(b0 + q + 0.5, 9, OPEN_HAT if q == 3 else HAT, 84)
            s.note(b0 + q + 0.25, 9, HAT, 48)
            s.note(b0 + q + 0.75, 9, HAT, 52)
            s.note(b0 + q + 0.5, 0, bass[bar % 4], 100, 0.4)
        if bar % 4 == 0:
            s.note(b0, 9, CRASH, 90, 1.0)
        for ch_beat in (0.0, 1.5, 2.5):
            for n in chords[bar % 4]:
                s.note(b0 + ch_beat, 1, n + 12, 70, 0.4)
        for n in chords[bar % 4]:
            s.note(b0, 2, n, 50, 4.0, jitter_ms=0.0)
    return s


def funk(bars: int = 10) -> Song:
    """96 BPM, 16th-note hats, a syncopated kick, ghost notes on the snare, slap bass, clav and brass stabs."""
    s = Song(96.0, seed=2)
    s.program(0, 36)  # slap bass 1
    s.program(1, 7)  # clavinet
    s.program(2, 61)  # brass section
    kick = [0.0, 0.75, 2.0, 2.5]
    ghosts = [1.75, 2.25, 3.25, 3.75]
    riff = [(0.0, 40), (0.75, 40), (1.5, 43), (2.0, 45), (2.75, 45), (3.0, 52), (3.5, 50)]
    for bar in range(bars):
        b0 = bar * 4
        for k in kick:
            s.note(b0 + k, 9, KICK, 112)
        s.note(b0 + 1, 9, SNARE, 112)
        s.note(b0 + 3, 9, SNARE, 116)
        for g in ghosts:
            s.note(b0 + g, 9, SNARE, 34)
        for i in range(16):
            s.note(b0 + i / 4, 9, HAT, 70 if i % 2 == 0 else 42, 0.1)
        for off, n in riff:
            s.note(b0 + off, 0, n, 104, 0.2)
        for off in (0.5, 1.25, 2.5, 3.25):
            for n in (64, 67, 71):
                s.note(b0 + off, 1, n, 76, 0.15)
        if bar % 2 == 1:
            for n in (67, 71, 74):
                s.note(b0 + 3.5, 2, n, 92, 0.4)
    return s


def render(song: Song, seconds: float, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mid = Path(tmp) / "song.mid"
        wav = Path(tmp) / "song.wav"
        mid.write_bytes(song.midi())
        subprocess.run(
            ["fluidsynth", "-ni", "-q", "-g", "0.7", "-r", str(RATE), "-F", str(wav), str(SOUNDFONT), str(mid)],
            check=True,
        )
        x, rate = sf.read(wav, dtype="float32", always_2d=True)
    mono = x.mean(axis=1)[: int(seconds * rate)]
    mono *= 0.8 / max(1e-9, float(np.max(np.abs(mono))))
    sf.write(out, mono, rate, format="OGG", subtype="VORBIS")
    print(f"{out.name}: {len(mono) / rate:.1f} s at {rate} Hz, {song.bpm} BPM, {out.stat().st_size // 1024} KiB")


def main() -> int:
    if not SOUNDFONT.exists():
        print("needs Debian's fluid-soundfont-gm and fluidsynth", file=sys.stderr)
        return 1
    render(house(), 22.0, HERE / "house_124bpm.ogg")
    render(funk(), 24.0, HERE / "funk_96bpm.ogg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
