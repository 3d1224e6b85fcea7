"""The OSC address tree: one table for the listener, the sender, `vjgan osc addresses` and docs/osc.md.

Conventions (those of Resolume, which most VJ controllers are set up for):
- a parameter takes a float normalised 0–1, which its range scales;
- `?` as the only argument asks for the current value, which goes back to the sender's address
  and port, under the same address;
- a button address (an action, tap, record) fires on a message without arguments or with a
  non-zero number, and ignores 0 (a button's release).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..control.commands import QUANTA

ROOT = "/vjgan"
IN = "in"
OUT = "out"


@dataclass(frozen=True)
class OscAddress:
    pattern: str  # "<name>" marks a part that names something
    args: str  # the arguments, in OSC type letters (f float, i int, s string) and words
    direction: str  # IN (vjgan listens), OUT (vjgan sends) or "in, out"
    does: str
    query: bool = False  # `?` returns the current value


ADDRESSES: tuple[OscAddress, ...] = (
    # --- in: steering the show (each becomes the command a key or pad would post) ---
    OscAddress(f"{ROOT}/param/<name>", "f 0–1", "in, out",
               "set a parameter across its range; vjgan sends every change back out (from any input)", query=True),
    OscAddress(f"{ROOT}/action/<action>", "none, or i/f (fires unless 0)", IN,
               "fire a named action (`vjgan commands`), e.g. /vjgan/action/blackout"),
    OscAddress(f"{ROOT}/action/<action>", "s or i: the action's argument", IN,
               "an action that takes an argument: /vjgan/action/recall-preset 3, /vjgan/action/quantize \"bar\" "
               "(or /vjgan/action/recall-preset:3)"),
    OscAddress(f"{ROOT}/preset", "s name, or i number (from 1)", "in, out",
               "recall a preset (built in the background, committed whole; quantised if asked); "
               "vjgan sends the new name when it lands", query=True),
    OscAddress(f"{ROOT}/tap", "none, or i/f (fires unless 0)", IN, "tap tempo (the message's time counts)"),
    OscAddress(f"{ROOT}/tempo", "f BPM", IN, "set the tempo (with Ableton Link: the session's)", query=True),
    OscAddress(f"{ROOT}/tempo/nudge", "f BPM", IN, "move the tempo by this many BPM (with Link: the session's)"),
    OscAddress(f"{ROOT}/record", "none (toggle), or i/f 1 start / 0 stop", IN,
               "record the output with the show's sound (a new file each take)", query=True),
    OscAddress(f"{ROOT}/quantize", f"s {' | '.join(QUANTA)}", IN,
               "preset changes land on the next beat or bar", query=True),
    OscAddress(f"{ROOT}/prompt", "s words", IN,
               "find the picture CLIP matches to the words (in the background; needs --clip), then cross-fade to it"),
    OscAddress(f"{ROOT}/portrait", "s path of a photo on the show's machine", IN,
               "project the photo into the model (in the background), then play it: the living portrait"),
    OscAddress(f"{ROOT}/params", "?", IN, "answers with every parameter's name (s s s ...)", query=True),
    # --- out: what the analyser hears, at the hop rate (or --osc-rate), one bundle per hop ---
    OscAddress(f"{ROOT}/band/<band>", "f 0–1", OUT, "band envelope after automatic gain (sub, bass, ...)",
               query=True),
    OscAddress(f"{ROOT}/onset/<band>", "i 1", OUT, "an onset in that band (sent only when one fired)"),
    OscAddress(f"{ROOT}/beat", "i beat index, f phase 0–1", OUT,
               "the beat clock (index % 4 == 0 on the bar with Link)", query=True),
    OscAddress(f"{ROOT}/bpm", "f", OUT, "the tempo the beat clock runs at (0 until there is one)", query=True),
    OscAddress(f"{ROOT}/clock", "s link | external | tap | manual | audio | none", OUT,
               "what drives the beat clock", query=True),
    OscAddress(f"{ROOT}/loudness", "f 0–1", OUT, "overall level after automatic gain and the gate", query=True),
    OscAddress(f"{ROOT}/hop", "i", OUT, "the analysis hop's index (a receiver can see what it missed)"),
)


def describe_tree() -> list[str]:
    """One line per address, for `vjgan osc addresses`."""
    lines = []
    for a in ADDRESSES:
        q = " (? answers)" if a.query else ""
        lines.append(f"{a.direction:<8} {a.pattern:<26} {a.args:<40} {a.does}{q}")
    return lines
