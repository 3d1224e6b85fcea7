"""What the operator sees, as one immutable snapshot, and how numbers are written.

`collect.py` fills an `OperatorView` from the running show at the redraw rate; the panels
(`panels.py`) and the key handling (`state.py`) only ever read these plain values, so what is
shown and what a key does can be tested with values made by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

PARAM = "param"
ACTION = "action"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the parameter list: a parameter, or an action a pad can be learned to."""

    target: str  # parameter name, or action name as the MIDI mappings store it ("recall-preset:1")
    kind: str = PARAM  # PARAM or ACTION
    label: str = ""  # what the list shows ("" = the target)
    value: float = 0.0
    minimum: float = 0.0
    maximum: float = 1.0
    toggle: bool = False
    mapping: str = ""  # the controls bound to it, in words ("" = none)
    pickup: Optional[float] = None  # normalised position of a bound knob that has not taken over yet
    group: str = ""  # the page it is on ("output", "drift", "motion", "routes"; actions: "actions")
    default: float = 0.0
    description: str = ""

    @property
    def title(self) -> str:
        return self.label or self.target

    @property
    def normalized(self) -> float:
        span = self.maximum - self.minimum
        return 0.0 if span <= 0 else min(1.0, max(0.0, (self.value - self.minimum) / span))


@dataclass(frozen=True, slots=True)
class RouteView:
    """One route of the playing preset: source × gain → target on layers."""

    name: str
    source: str
    target: str
    layers: str
    direction: int = 0

    @property
    def gain_param(self) -> str:
        return f"gain.{self.name}"


@dataclass(frozen=True, slots=True)
class AlarmLine:
    key: str  # what AcknowledgeAlarm(key) takes
    text: str


@dataclass(frozen=True, slots=True)
class Activity:
    """One input or output's light and line on the HUD: MIDI today; OSC, NDI and recording add theirs."""

    name: str  # "MIDI", "OSC", "NDI", "REC"
    lit: bool  # a message (or frame) in the last moment
    text: str  # ports, counts, the last message in words
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class BandMeter:
    name: str
    level: float  # 0..1 envelope after automatic gain


@dataclass(frozen=True, slots=True)
class MidiView:
    enabled: bool = False  # a MIDI controller is running (learn needs one)
    inputs: tuple[str, ...] = ()
    messages: int = 0
    last_age_s: Optional[float] = None  # seconds since the last message, None before the first
    last_text: str = ""  # the last message in words
    clock_bpm: Optional[float] = None
    clock_running: bool = False
    learning: Optional[str] = None  # target of the pending learn request


@dataclass(frozen=True)
class OperatorView:
    """Everything one redraw shows. Unknown figures are None (drawn as a dash)."""

    preset: str = ""
    presets: tuple[str, ...] = ()
    blackout: bool = False
    freeze: bool = False
    output_fullscreen: bool = False
    output_size: tuple[int, int] = (16, 9)  # the output's pixels: the preview keeps its aspect
    display_fps: Optional[float] = None
    generation_fps: Optional[float] = None
    generation_ms: Optional[float] = None
    latent_ms: Optional[float] = None
    resolution: Optional[int] = None
    budget_step: Optional[int] = None
    latency_ms: Optional[float] = None  # sound to screen: buffer swap minus ADC time of the frame's audio
    bpm: Optional[float] = None
    tempo_source: str = "none"
    beat_phase: float = 0.0
    beat_flash: bool = False  # just after a beat
    bands: tuple[BandMeter, ...] = ()
    loudness: float = 0.0
    audio_connected: bool = True
    gated: bool = False
    midi: MidiView = field(default_factory=MidiView)
    rows: tuple[Row, ...] = ()
    selected: Optional[str] = None
    message: str = ""  # the newest status line (learned, saved, errors)
    message_is_error: bool = False
    alarms: tuple[AlarmLine, ...] = ()  # the supervisor's alarm lines, until acknowledged (A)
    user_presets: frozenset[str] = frozenset()  # the presets that are the user's own (can be renamed)
    model: str = ""  # the model file playing
    routes: tuple[RouteView, ...] = ()
    route_sources: tuple[str, ...] = ()  # what a route may listen to, with this preset's bands
    log: tuple[tuple[int, str], ...] = ()  # (level, text) of the newest log lines, oldest first
    # What runs beside the picture: recording ("REC 01:23 show.mp4 · 2040 frames · 0 dropped"),
    # each video output, Link, OSC (vjgan/rig), a keyframe search (vjgan/live/finder.py); one line
    # each, only for what runs.
    rig: tuple[str, ...] = ()
    prompts_available: bool = False  # the show has CLIP (--clip): typed prompts can be found


# --- numbers in words -----------------------------------------------------------------------------

DASH = "-"


def fmt(value: Optional[float], decimals: int = 1, unit: str = "") -> str:
    """A figure with its unit, or a dash when it is unknown."""
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:.{decimals}f}{unit}"


def format_value(value: float, minimum: float, maximum: float, toggle: bool = False) -> str:
    """A parameter value with the decimals one nudge (1% of the range) needs: 0..2 → "0.92"."""
    if toggle:
        return "on" if value >= (minimum + maximum) / 2 else "off"
    step = abs(maximum - minimum) / 100.0
    decimals = 2 if step <= 0 else min(4, max(0, math.ceil(-math.log10(step) - 1e-9)))
    return f"{value:.{decimals}f}"


_KIND_WORDS = {"absolute": "", "absolute14": " 14-bit", "relative-twos": " enc", "relative-offset": " enc",
               "relative-signed": " enc", "momentary": " hold", "toggle": " toggle", "trigger": ""}


def mapping_text(mappings: Sequence[object]) -> str:
    """The controls bound to one target, e.g. "ch 1 CC 21" or "ch 10 note 36, ch 1 CC 3 enc"."""
    parts = []
    for m in mappings:
        control = getattr(m, "control", None)
        label = control.label() if control is not None and hasattr(control, "label") else str(m)
        parts.append(label + _KIND_WORDS.get(str(getattr(m, "kind", "")), ""))
    return ", ".join(parts)


def resolution_text(resolution: Optional[int]) -> str:
    return DASH if not resolution else f"{resolution}px"


OSC_PARAM_PREFIX = "/vjgan/param/"  # docs/commands.md: OSC sets a parameter at /vjgan/param/<name>


def osc_address(name: str) -> str:
    return OSC_PARAM_PREFIX + name


MIDI_LIGHT_S = 0.25  # an activity light stays on this long after a message


def activities(view: "OperatorView") -> tuple[Activity, ...]:
    """The HUD's activity lines, one per input or output that exists in this show: MIDI, then the
    rig's (recording, video outputs, Link, OSC), each named by its line's first word."""
    rig = tuple(Activity(line.split(" ", 1)[0], line.startswith("REC"), line) for line in view.rig)
    midi = view.midi
    if not midi.enabled:
        return (Activity("MIDI", False, "not running (see the log): learning needs it", enabled=False),) + rig
    ports = ", ".join(midi.inputs) if midi.inputs else "no input port open"
    count = f"{midi.messages} message{'' if midi.messages == 1 else 's'}"
    last = f"last: {midi.last_text}" if midi.last_text else "last: nothing yet"
    clock = ""
    if midi.clock_bpm is not None:
        clock = f"  clock {midi.clock_bpm:.1f} BPM {'running' if midi.clock_running else 'stopped'}"
    lit = midi.last_age_s is not None and midi.last_age_s < MIDI_LIGHT_S
    return (Activity("MIDI", lit, f"{ports}  {count}  {last}{clock}"),) + rig


def hud_lines(view: "OperatorView") -> list[tuple[str, str]]:
    """The output HUD's text (single-screen rehearsal): (line, tone) with tone "text", "bad",
    "warn", "learn" or "dim"."""
    flags = " ".join(f for f, on in (("BLACKOUT", view.blackout), ("FREEZE", view.freeze)) if on)
    lines = [
        (f"{view.preset}    {fmt(view.display_fps, 0)} fps    generation {fmt(view.generation_ms, 1)} ms    "
         f"{resolution_text(view.resolution)} step {DASH if view.budget_step is None else view.budget_step}", "text"),
        (f"BPM {fmt(view.bpm, 1)}{'' if view.tempo_source in ('', 'none') else f' ({view.tempo_source})'}    "
         f"sound to screen {fmt(view.latency_ms, 0, ' ms')}" + (f"    {flags}" if flags else ""),
         "bad" if flags else "text"),
    ]
    lines += [(line, "text") for line in view.rig]
    lines += [(a.text, "bad") for a in view.alarms]
    if view.midi.learning:
        lines.append((f"LEARN {view.midi.learning}: move a control", "learn"))
    elif view.message:
        lines.append((view.message, "bad" if view.message_is_error else "warn"))
    elif view.midi.enabled and view.midi.last_text:
        lines.append((f"MIDI {view.midi.last_text}", "dim"))
    return lines
