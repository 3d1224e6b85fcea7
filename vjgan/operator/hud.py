"""Where everything goes: the operator window's and the output HUD's layout (pure functions).

`layout_operator(view, size, metrics)` turns an `OperatorView` into a `Layout`: filled
rectangles (panels, meters, bars, the selection), text labels, the preview rectangle, and the
clickable areas (rows, learn buttons). The painter draws a Layout as it is; the window hit-tests
clicks against it. `metrics` is anything with `line_height` and `measure(text) -> width`
(the glyph atlas, or a fixed-width stand-in in tests), so layouts are computed without GL.

Coordinates are framebuffer pixels, origin at the top left, y downwards.

    two columns (wide windows)                    one column (narrow windows)
    +-------------------+----------------------+   +------------------------+
    | preview           | parameter  value MIDI |   | preview                |
    |                   | > gain.bass  0.90 ... |   | preset, stats, tempo   |
    | preset  BLACKOUT  |   drift.speed ...     |   | meters, MIDI, message  |
    | fps, gen ms, step |                       |   | parameter list         |
    | BPM, beat, meters |                       |   |                        |
    | MIDI, message     |                       |   |                        |
    +-------------------+----------------------+   +------------------------+
    | keys help                                 |   | keys help              |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence

from .state import scroll_to_show
from .text import fit_text
from .view import ACTION, DASH, OperatorView, Row, fmt, format_value, resolution_text

RGBA = tuple[float, float, float, float]

BACKGROUND: RGBA = (0.06, 0.06, 0.07, 1.0)
PANEL: RGBA = (0.12, 0.12, 0.14, 1.0)
ROW_ALT: RGBA = (0.09, 0.09, 0.11, 1.0)
SELECTED: RGBA = (0.16, 0.28, 0.45, 1.0)
TEXT: RGBA = (0.92, 0.92, 0.92, 1.0)
DIM: RGBA = (0.55, 0.57, 0.62, 1.0)
ACCENT: RGBA = (0.30, 0.62, 0.95, 1.0)
GOOD: RGBA = (0.30, 0.85, 0.40, 1.0)
WARN: RGBA = (1.00, 0.74, 0.20, 1.0)
BAD: RGBA = (1.00, 0.32, 0.30, 1.0)
LEARN: RGBA = (0.95, 0.50, 0.10, 1.0)
BLACK: RGBA = (0.0, 0.0, 0.0, 1.0)
HUD_BOX: RGBA = (0.0, 0.0, 0.0, 0.6)

MIDI_LIGHT_S = 0.25  # the activity light stays on this long after a message
TWO_COLUMNS_MIN_WIDTH = 720

HELP = ("Up/Down select", "Left/Right nudge (Shift x10)", "Enter switch/fire", "L learn", "Del unbind",
        "Ctrl+S save preset", "1-9 preset", "T tap", "B blackout", "Space freeze", "F fullscreen",
        "H hide")


class TextMetrics(Protocol):
    line_height: int

    def measure(self, text: str) -> float: ...


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px < self.right and self.y <= py < self.bottom

    def inside(self, other: "Rect") -> bool:
        return other.x <= self.x and other.y <= self.y and self.right <= other.right + 1e-6 \
            and self.bottom <= other.bottom + 1e-6


@dataclass(frozen=True, slots=True)
class Fill:
    rect: Rect
    color: RGBA


@dataclass(frozen=True, slots=True)
class Label:
    x: float  # left edge
    y: float  # top of the line box
    text: str
    color: RGBA = TEXT


@dataclass(frozen=True, slots=True)
class Hit:
    rect: Rect
    kind: str  # "row" or "learn"
    target: str


@dataclass(frozen=True)
class Layout:
    size: tuple[int, int]
    fills: tuple[Fill, ...] = ()
    labels: tuple[Label, ...] = ()
    preview: Optional[Rect] = None  # where the output picture goes (its aspect kept)
    hits: tuple[Hit, ...] = ()
    first_row: int = 0  # first parameter row shown (the list scrolls)
    visible_rows: int = 0
    row_rects: tuple[tuple[str, Rect], ...] = ()  # (target, rect) of every row shown

    def hit(self, x: float, y: float) -> Optional[Hit]:
        """The clickable thing at (x, y): buttons win over the row they sit on."""
        for h in reversed(self.hits):
            if h.rect.contains(x, y):
                return h
        return None

    def text(self) -> str:
        """Every label, one per line (for tests and logs)."""
        return "\n".join(label.text for label in self.labels)

    def labels_in(self, rect: Rect) -> list[Label]:
        return [label for label in self.labels if rect.contains(label.x + 0.5, label.y + 0.5)]


class _Canvas:
    """Collects fills and labels; text is clipped to the width it is given."""

    def __init__(self, metrics: TextMetrics) -> None:
        self.metrics = metrics
        self.fills: list[Fill] = []
        self.labels: list[Label] = []
        self.hits: list[Hit] = []

    def fill(self, rect: Rect, color: RGBA) -> None:
        if rect.w > 0 and rect.h > 0:
            self.fills.append(Fill(rect, color))

    def text(self, x: float, y: float, text: str, color: RGBA = TEXT, width: Optional[float] = None,
             align: str = "left") -> float:
        """Place `text` (shortened to `width`); returns its right edge."""
        if width is not None:
            text = fit_text(text, max(0.0, width), self.metrics.measure)
        if not text:
            return x
        w = self.metrics.measure(text)
        if align == "right" and width is not None:
            x = x + width - w
        elif align == "center" and width is not None:
            x = x + (width - w) / 2
        self.labels.append(Label(round(x), round(y), text, color))
        return x + w


def fit_aspect(box: Rect, aspect: float) -> Rect:
    """The largest rectangle of width/height `aspect` centred in `box` (letterboxed)."""
    if box.w <= 0 or box.h <= 0 or not aspect > 0:
        return Rect(box.x, box.y, 0, 0)
    w = min(box.w, box.h * aspect)
    h = w / aspect
    return Rect(round(box.x + (box.w - w) / 2), round(box.y + (box.h - h) / 2), round(w), round(h))


def wrap(parts: Sequence[str], width: float, measure: Callable[[str], float], sep: str = "   ") -> list[str]:
    """Greedy line filling of `parts` joined by `sep`; a part wider than a line gets its own."""
    lines: list[str] = []
    line = ""
    for part in parts:
        candidate = part if not line else line + sep + part
        if line and measure(candidate) > width:
            lines.append(line)
            line = part
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


def level_color(level: float) -> RGBA:
    return GOOD if level < 0.7 else WARN if level < 0.9 else BAD


# --- the operator window ---------------------------------------------------------------------------------

def layout_operator(view: OperatorView, size: tuple[int, int], metrics: TextMetrics, scroll: int = 0) -> Layout:
    """The operator window at `size` pixels; `scroll` is the first list row shown last time."""
    W, H = int(size[0]), int(size[1])
    c = _Canvas(metrics)
    lh = metrics.line_height
    pad = max(4, lh // 3)
    margin = max(6, lh // 2)
    c.fill(Rect(0, 0, W, H), BACKGROUND)
    if W < 4 * lh or H < 4 * lh:
        return Layout((W, H), tuple(c.fills), (), None)

    # Footer: the keys, wrapped to the width, in at most 30% of the height.
    help_lines = wrap(HELP, W - 2 * margin, metrics.measure)
    help_lines = help_lines[:max(0, int((H * 0.3 - 2 * pad) // lh))]
    footer_h = len(help_lines) * lh + 2 * pad if help_lines else 0
    footer = Rect(0, H - footer_h, W, footer_h)
    c.fill(footer, PANEL)
    for i, line in enumerate(help_lines):
        c.text(margin, footer.y + pad + i * lh, line, DIM, width=W - 2 * margin)
    body = Rect(margin, margin, W - 2 * margin, footer.y - 2 * margin)

    two_columns = W >= TWO_COLUMNS_MIN_WIDTH and W >= H
    if two_columns:
        left_w = round(body.w * 0.46)
        left = Rect(body.x, body.y, left_w, body.h)
        right = Rect(left.right + margin, body.y, body.w - left_w - margin, body.h)
        preview_h = min(left.w * _aspect_inv(view), body.h * 0.55)
        status_bottom = left.bottom
    else:
        left = Rect(body.x, body.y, body.w, body.h)
        preview_h = min(left.w * _aspect_inv(view), body.h * 0.25)

    preview_box = Rect(left.x, left.y, left.w, round(preview_h))
    c.fill(preview_box, BLACK)
    preview = fit_aspect(preview_box, view.output_size[0] / max(1, view.output_size[1]))
    y = preview_box.bottom + pad

    if not two_columns:
        # One column: the parameter list is what the keys act on, so it keeps at least 40% of
        # the height (and four rows); the status block drops its last lines when short of room.
        keep = max(4 * (lh + pad) + lh, 0.4 * body.h)
        status_bottom = max(y, min(y + _status_height(view, lh, pad), body.bottom - keep))
    y = _status_block(c, view, Rect(left.x, y, left.w, max(0, status_bottom - y)), lh, pad)

    list_area = right if two_columns else Rect(body.x, y + pad, body.w, body.bottom - y - pad)
    first, visible, row_rects = _parameter_list(c, view, list_area, lh, pad, scroll)
    return Layout((W, H), tuple(c.fills), tuple(c.labels), preview if preview.w > 0 else None, tuple(c.hits),
                  first, visible, tuple(row_rects))


def _aspect_inv(view: OperatorView) -> float:
    w, h = view.output_size
    return h / max(1, w)


def _status_height(view: OperatorView, lh: int, pad: int) -> float:
    meters = 3 * lh + pad if view.bands else 0
    alarms = (len(view.alarms) + 1) * lh if view.alarms else 0
    return (8 + len(view.rig)) * lh + meters + alarms + 4 * pad


def _status_block(c: _Canvas, view: OperatorView, area: Rect, lh: int, pad: int) -> float:
    """Preset and flags, learn prompt or message, figures, tempo, meters, MIDI. Returns the bottom."""
    x, w = area.x, area.w
    y = area.y

    def room(h: float) -> bool:
        return y + h <= area.bottom + 0.5

    if room(lh):
        right = c.text(x, y, f"preset {view.preset or DASH}", TEXT, width=w * 0.5)
        for flag, on, color in (("BLACKOUT", view.blackout, BAD), ("FREEZE", view.freeze, ACCENT),
                                ("FULLSCREEN", view.output_fullscreen, DIM)):
            if not on:
                continue
            tw = c.metrics.measure(flag) + 2 * pad
            if right + pad + tw > x + w:
                break
            badge = Rect(round(right + pad), y, round(tw), lh)
            c.fill(badge, color)
            c.text(badge.x + pad, y, flag, BLACK)
            right = badge.right
        y += lh + pad
    # Alarms first: a thread that failed, an input that is gone. They stay until acknowledged.
    for line in view.alarms:
        if room(lh):
            c.fill(Rect(x, y, w, lh), BAD)
            c.text(x + pad, y, line, BLACK, width=w - 2 * pad)
            y += lh
    if view.alarms and room(lh):
        c.text(x, y, "A acknowledges the alarm lines", DIM, width=w)
        y += lh
    # The learn prompt and the newest message come next: they answer what the operator just did
    # (in a small window the lines below are the ones left out).
    midi = view.midi
    if room(lh):
        if midi.learning:
            c.fill(Rect(x, y, w, lh), LEARN)
            c.text(x + pad, y, f"LEARN {midi.learning}: move a control (L or Esc cancels)", BLACK, width=w - 2 * pad)
        elif view.message:
            c.text(x, y, view.message, BAD if view.message_is_error else WARN, width=w)
        y += lh
    step = DASH if view.budget_step is None else view.budget_step
    lines = [
        (f"output {fmt(view.display_fps, 1)} fps    generation {fmt(view.generation_fps, 1)} fps", TEXT),
        (f"generation {fmt(view.generation_ms, 1, ' ms')} (latent {fmt(view.latent_ms, 1, ' ms')})", TEXT),
        (f"frame {resolution_text(view.resolution)}, budget step {step}    "
         f"sound to screen {fmt(view.latency_ms, 0, ' ms')}", TEXT),
    ]
    for text, color in lines:
        if room(lh):
            c.text(x, y, text, color, width=w)
            y += lh
    if room(lh):  # tempo: figures, then a light on the beat and the phase ramp
        source = "" if view.tempo_source in ("", "none") else f" ({view.tempo_source})"
        right = c.text(x, y, f"BPM {fmt(view.bpm, 1)}{source}", TEXT, width=w * 0.5)
        light = Rect(round(right + 2 * pad), y + 2, lh - 4, lh - 4)
        if light.right + 4 * lh <= x + w:
            c.fill(light, WARN if view.beat_flash else PANEL)
            bar = Rect(light.right + pad, y + lh // 2 - 2, min(6 * lh, x + w - light.right - pad), 4)
            c.fill(bar, PANEL)
            c.fill(Rect(bar.x, bar.y, round(bar.w * min(1.0, max(0.0, view.beat_phase))), bar.h), ACCENT)
        y += lh + pad
    for line in view.rig:  # recording, video outputs, Link, OSC
        if room(lh):
            c.text(x, y, line, BAD if line.startswith("REC") else TEXT, width=w)
            y += lh
    if view.bands and room(3 * lh):
        # The meters take the room the MIDI lines below them leave, up to six lines.
        meters_h = min(6 * lh, max(3 * lh, area.bottom - y - 2 * lh - 2 * pad))
        y = _meters(c, view, Rect(x, y, w, meters_h), lh) + pad
    if room(lh):
        light = Rect(x, y + 2, lh - 4, lh - 4)
        active = midi.last_age_s is not None and midi.last_age_s < MIDI_LIGHT_S
        c.fill(light, GOOD if active else PANEL)
        if not midi.enabled:
            text, color = "MIDI not running (see the log): learning needs it", DIM
        else:
            ports = ", ".join(midi.inputs) if midi.inputs else "no input port open"
            count = f"{midi.messages} message{'' if midi.messages == 1 else 's'}"
            text, color = f"MIDI: {ports}    {count}", TEXT
        c.text(light.right + pad, y, text, color, width=w - light.w - pad)
        y += lh
    if midi.enabled and room(lh):
        last = f"last: {midi.last_text}" if midi.last_text else "last: nothing yet"
        clock = ""
        if midi.clock_bpm is not None:
            clock = f"    clock {midi.clock_bpm:.1f} BPM {'running' if midi.clock_running else 'stopped'}"
        c.text(x, y, last + clock, DIM, width=w)
        y += lh
    return y


def _meters(c: _Canvas, view: OperatorView, area: Rect, lh: int) -> float:
    n = len(view.bands) + 1  # and loudness
    gap = 4
    bar_w = max(2.0, (area.w - gap * (n - 1)) / n)
    bar_h = area.h - lh
    levels = [(b.name, b.level) for b in view.bands] + [("loud", view.loudness)]
    for i, (name, level) in enumerate(levels):
        bx = round(area.x + i * (bar_w + gap))
        well = Rect(bx, area.y, round(bar_w), bar_h)
        c.fill(well, PANEL)
        level = min(1.0, max(0.0, level if math.isfinite(level) else 0.0))
        filled = round(bar_h * level)
        c.fill(Rect(bx, area.y + bar_h - filled, round(bar_w), filled), level_color(level))
        c.text(bx, area.y + bar_h, name, DIM, width=bar_w, align="center")
    if not view.audio_connected:
        c.text(area.x + 4, area.y + 2, "NO AUDIO INPUT", BAD, width=area.w - 8)
    elif view.gated:
        c.text(area.x + 4, area.y + 2, "gate (silence)", DIM, width=area.w - 8)
    return area.bottom


def _parameter_list(c: _Canvas, view: OperatorView, area: Rect, lh: int, pad: int,
                    scroll: int) -> tuple[int, int, list[tuple[str, Rect]]]:
    rows = view.rows
    row_h = lh + pad
    if area.w < 8 * lh or area.h < 2 * row_h:
        return 0, 0, []
    c.fill(area, PANEL)
    measure = c.metrics.measure
    button_w = round(max(measure("learn"), measure("cancel")) + 2 * pad)
    scrollbar_w = max(4, pad)
    inner_w = area.w - 2 * pad - button_w - pad - scrollbar_w
    name_w = round(inner_w * 0.42)
    value_w = round(inner_w * 0.22)
    map_w = inner_w - name_w - value_w - 2 * pad
    x_name = area.x + pad
    x_value = x_name + name_w + pad
    x_map = x_value + value_w + pad
    x_button = area.right - pad - scrollbar_w - button_w

    c.text(x_name, area.y + pad // 2, "parameter", DIM, width=name_w)
    c.text(x_value, area.y + pad // 2, "value", DIM, width=value_w)
    c.text(x_map, area.y + pad // 2, "MIDI", DIM, width=map_w)
    top = area.y + row_h
    visible = max(1, int((area.bottom - top) // row_h))
    selected = next((i for i, r in enumerate(rows) if r.target == view.selected), None)
    first = scroll_to_show(scroll, selected, visible, len(rows))
    midi_on = view.midi.enabled
    shown: list[tuple[str, Rect]] = []
    for n, row in enumerate(rows[first:first + visible]):
        i = first + n
        rect = Rect(area.x, top + n * row_h, area.w - scrollbar_w, row_h)
        learning = view.midi.learning == row.target
        if i == selected:
            c.fill(rect, SELECTED)
        elif i % 2:
            c.fill(rect, ROW_ALT)
        ty = rect.y + pad // 2
        c.text(x_name, ty, row.title, TEXT if row.kind != ACTION else DIM, width=name_w)
        _value_cell(c, row, Rect(x_value, rect.y + 2, value_w, row_h - 4), ty)
        if learning:
            c.text(x_map, ty, "move a control...", LEARN, width=map_w)
        else:
            c.text(x_map, ty, row.mapping or DASH, TEXT if row.mapping else DIM, width=map_w)
        button = Rect(x_button, rect.y + 2, button_w, row_h - 4)
        c.fill(button, LEARN if learning else (ACCENT if midi_on else ROW_ALT))
        c.text(button.x, ty, "cancel" if learning else "learn", BLACK if midi_on or learning else DIM,
               width=button.w, align="center")
        c.hits.append(Hit(rect, "row", row.target))
        c.hits.append(Hit(button, "learn", row.target))
        shown.append((row.target, rect))
    if len(rows) > visible:  # where the shown rows sit in the whole list
        track = Rect(area.right - scrollbar_w, top, scrollbar_w, visible * row_h)
        c.fill(track, ROW_ALT)
        thumb_h = max(4, round(track.h * visible / len(rows)))
        thumb_y = track.y + round((track.h - thumb_h) * first / max(1, len(rows) - visible))
        c.fill(Rect(track.x, thumb_y, track.w, thumb_h), DIM)
    return first, visible, shown


def _value_cell(c: _Canvas, row: Row, cell: Rect, ty: float) -> None:
    if row.kind == ACTION:
        c.text(cell.x + 2, ty, "action", DIM, width=cell.w)
        return
    c.fill(cell, ROW_ALT)
    c.fill(Rect(cell.x, cell.y, round(cell.w * row.normalized), cell.h), (0.20, 0.40, 0.62, 1.0))
    if row.pickup is not None:  # where the knob stands until it passes through the value
        c.fill(Rect(round(cell.x + (cell.w - 2) * min(1.0, max(0.0, row.pickup))), cell.y, 2, cell.h), WARN)
    c.text(cell.x + 3, ty, format_value(row.value, row.minimum, row.maximum, row.toggle), TEXT, width=cell.w - 6)


# --- the output window's rehearsal HUD ----------------------------------------------------------------

def hud_lines(view: OperatorView) -> list[tuple[str, RGBA]]:
    """The text of the optional HUD on the output (single-screen rehearsal)."""
    flags = " ".join(f for f, on in (("BLACKOUT", view.blackout), ("FREEZE", view.freeze)) if on)
    lines = [
        (f"{view.preset}    {fmt(view.display_fps, 0)} fps    generation {fmt(view.generation_ms, 1)} ms    "
         f"{resolution_text(view.resolution)} step {DASH if view.budget_step is None else view.budget_step}", TEXT),
        (f"BPM {fmt(view.bpm, 1)}{'' if view.tempo_source in ('', 'none') else f' ({view.tempo_source})'}    "
         f"sound to screen {fmt(view.latency_ms, 0, ' ms')}" + (f"    {flags}" if flags else ""),
         BAD if flags else TEXT),
    ]
    lines += [(line, TEXT) for line in view.rig]
    lines += [(line, BAD) for line in view.alarms]
    if view.midi.learning:
        lines.append((f"LEARN {view.midi.learning}: move a control", LEARN))
    elif view.message:
        lines.append((view.message, BAD if view.message_is_error else WARN))
    elif view.midi.enabled and view.midi.last_text:
        lines.append((f"MIDI {view.midi.last_text}", DIM))
    return lines


def layout_output_hud(view: OperatorView, size: tuple[int, int], metrics: TextMetrics) -> Layout:
    """A translucent box in the output's top-left corner: figures, tempo light, band meters."""
    W, H = int(size[0]), int(size[1])
    c = _Canvas(metrics)
    lh = metrics.line_height
    pad = max(3, lh // 3)
    lines = hud_lines(view)
    max_w = max(0.0, W - 4 * pad)
    text_w = min(max_w, max(metrics.measure(t) for t, _ in lines))
    meter_h = lh if view.bands else 0
    box = Rect(pad, pad, round(text_w + 2 * pad), round(len(lines) * lh + meter_h + 2 * pad))
    if box.w <= 2 * pad or box.bottom > H:
        return Layout((W, H))
    c.fill(box, HUD_BOX)
    for i, (text, color) in enumerate(lines):
        c.text(box.x + pad, box.y + pad + i * lh, text, color, width=text_w)
    if view.bands:
        y = box.y + pad + len(lines) * lh + 2
        light = Rect(box.x + pad, y, lh - 4, lh - 4)
        c.fill(light, WARN if view.beat_flash else PANEL)
        n = len(view.bands)
        span = box.right - pad - (light.right + pad)
        bar_w = max(2.0, (span - 2 * (n - 1)) / n)
        for i, band in enumerate(view.bands):
            bx = round(light.right + pad + i * (bar_w + 2))
            level = min(1.0, max(0.0, band.level))
            c.fill(Rect(bx, y, round(bar_w), lh - 4), PANEL)
            c.fill(Rect(bx, y, round(bar_w * level), lh - 4), level_color(level))
    return Layout((W, H), tuple(c.fills), tuple(c.labels))
