"""What the operator sees, as one immutable snapshot, and how numbers are written.

`collect.py` fills an `OperatorView` from the running show at the redraw rate; the layout
(`hud.py`) and the key handling (`state.py`) only ever read these plain values, so both are
pure functions that tests can feed by hand.
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

    @property
    def title(self) -> str:
        return self.label or self.target

    @property
    def normalized(self) -> float:
        span = self.maximum - self.minimum
        return 0.0 if span <= 0 else min(1.0, max(0.0, (self.value - self.minimum) / span))


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
    alarms: tuple[str, ...] = ()  # the supervisor's alarm lines, until acknowledged (A)
    # The rig (vjgan/rig): recording ("REC 01:23 show.mp4 · 2040 frames · 0 dropped"), each video
    # output, Link, OSC; one line each, only for what runs.
    rig: tuple[str, ...] = ()


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
