"""The operator console without a screen: key handling, learn state, layouts, text, presets, placement.

Everything here is pure or touches only files: the state machine and the layouts are fed plain
values; MIDI learn goes through a real `MidiController` fed decoded messages (no ports needed).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import replace
from pathlib import Path

import pytest

from vjgan.audio.features import rest_features
from vjgan.config import load_preset, user_presets_dir
from vjgan.control.apply import ApplyToParams
from vjgan.control.commands import ACTIONS
from vjgan.control.mapping import Control, Mapping
from vjgan.control.midi import MidiController
from vjgan.motion.params import ParamSpec, ParamStore
from vjgan.operator import hud, state as st
from vjgan.operator.collect import DisplayMeters, action_rows, collect_view, midi_view, param_rows
from vjgan.operator.hud import Rect, fit_aspect, layout_operator, layout_output_hud, wrap
from vjgan.operator.placement import Area, Screen, place_operator
from vjgan.live.saving import (PresetSaver, name_base, next_free_name, preset_for_saving, save_new_preset)
from vjgan.operator.runner import CommandRunner
from vjgan.alarms import AlarmBoard
from vjgan.control.commands import CommandQueue
from vjgan.operator.state import KeyPress, OperatorState, handle_key
from vjgan.operator.text import build_atlas, fit_text
from vjgan.operator.view import ACTION, BandMeter, MidiView, OperatorView, Row, fmt, format_value, mapping_text
from vjgan.resources import data_dir


class Mono:
    """Fixed-width text metrics: 7 px a character, 16 px lines (what a layout needs of a font)."""

    line_height = 16

    @staticmethod
    def measure(text: str) -> float:
        return 7.0 * len(text)


ROWS = (
    Row("master", value=1.0),
    Row("blackout", toggle=True),
    Row("gain.bass", value=0.9, maximum=2.0, mapping="ch 1 CC 21"),
    Row("drift.speed", value=1.0, maximum=4.0),
    Row("recall-preset:1", ACTION, "preset 1: default"),
)


def key(name: str, **kw: bool) -> KeyPress:
    return KeyPress(name, **kw)


# --- the state machine ------------------------------------------------------------------------------

def test_arrows_select_rows_and_stop_at_the_ends() -> None:
    s = OperatorState()
    s, cmds = handle_key(s, key("down"), ROWS)
    assert s.selected == "master" and cmds == ()  # the first press lands on the first row
    s, _ = handle_key(s, key("down"), ROWS)
    s, _ = handle_key(s, key("down", repeat=True), ROWS)  # held arrows repeat
    assert s.selected == "gain.bass"
    s, _ = handle_key(s, key("end"), ROWS)
    s, _ = handle_key(s, key("down"), ROWS)
    assert s.selected == "recall-preset:1"
    s, _ = handle_key(s, key("page_up"), ROWS)
    assert s.selected == "master"
    s, _ = handle_key(s, key("up"), ROWS)
    assert s.selected == "master"
    # A selected row that disappears (a preset without that route) falls back to the first.
    gone = OperatorState(selected="gain.removed")
    assert st.selected_row(gone, ROWS).target == "master"


def test_left_right_nudge_on_a_grid_of_the_range() -> None:
    s = OperatorState(selected="gain.bass")  # 0..2: steps of 0.02
    _, cmds = handle_key(s, key("right"), ROWS)
    assert cmds == (st.SetParam("gain.bass", pytest.approx(0.92)),)
    _, cmds = handle_key(s, key("left", shift=True), ROWS)
    assert cmds == (st.SetParam("gain.bass", pytest.approx(0.70)),)
    # From between grid points one press goes to the next point, not a full step past it.
    between = Row("g", value=0.913, maximum=2.0)
    assert st.nudge(between, +1) == pytest.approx(0.92)
    assert st.nudge(between, -1) == pytest.approx(0.90)
    # Floating-point residue does not skip a step: 0.3 is on the 0.01 grid of 0..1.
    assert st.nudge(Row("x", value=0.3), +1) == pytest.approx(0.31)
    # Clamped at the ends; an edge press at the end changes nothing, so no command.
    top = OperatorState(selected="master")
    assert handle_key(top, key("right"), ROWS)[1] == ()
    assert st.nudge(Row("x", value=0.995), +1, coarse=True) == 1.0
    # Switches go off and on; actions have no value to nudge.
    sw = OperatorState(selected="blackout")
    assert handle_key(sw, key("right"), ROWS)[1] == (st.SetParam("blackout", 1.0),)
    assert handle_key(OperatorState(selected="recall-preset:1"), key("right"), ROWS)[1] == ()


def test_learn_key_toggles_and_escape_cancels() -> None:
    s = OperatorState(selected="gain.bass")
    s, cmds = handle_key(s, key("l"), ROWS)
    assert s.learning == "gain.bass" and cmds == (st.StartLearn("gain.bass", False),)
    s2, cmds = handle_key(s, key("l"), ROWS)
    assert s2.learning is None and cmds == (st.CancelLearn(),)
    s3, cmds = handle_key(s, key("escape"), ROWS)
    assert s3.learning is None and cmds == (st.CancelLearn(),)
    assert handle_key(s3, key("escape"), ROWS)[1] == ()  # nothing to cancel: nothing happens
    # Learning an action row asks for a pad (action=True).
    _, cmds = handle_key(OperatorState(selected="recall-preset:1"), key("l"), ROWS)
    assert cmds == (st.StartLearn("recall-preset:1", True),)
    # The controller bound it (or someone cancelled): the state follows.
    ended, done = st.learn_finished(s, None)
    assert done and ended.learning is None
    assert st.learn_finished(s, "gain.bass") == (s, False)


def test_show_keys_presets_and_save() -> None:
    s = OperatorState(selected="gain.bass")
    expect = {"t": st.Invoke("tap-tempo"), "a": st.Invoke("acknowledge"), "b": st.Invoke("blackout"), "space": st.Invoke("freeze"),
              "f": st.ToggleFullscreen(), "h": st.ToggleOperator(), "3": st.RecallPreset(3),
              "delete": st.Unbind("gain.bass"), "backspace": st.Unbind("gain.bass")}
    for name, command in expect.items():
        assert handle_key(s, key(name), ROWS)[1] == (command,), name
    assert handle_key(s, key("s", ctrl=True), ROWS)[1] == (st.SavePreset(),)
    assert handle_key(s, key("s"), ROWS)[1] == ()  # plain S does nothing
    assert handle_key(s, key("3", ctrl=True), ROWS)[1] == ()
    assert handle_key(s, key("t", repeat=True), ROWS)[1] == ()  # a held T taps once
    assert handle_key(s, key("0"), ROWS)[1] == ()
    assert handle_key(OperatorState(selected="blackout"), key("enter"), ROWS)[1] == (st.SetParam("blackout", 1.0),)
    assert handle_key(OperatorState(selected="recall-preset:1"), key("enter"), ROWS)[1] == \
        (st.FireAction("recall-preset:1"),)


def test_clicks_and_wheel() -> None:
    s, cmds = st.handle_click(OperatorState(), "row", "drift.speed", ROWS)
    assert s.selected == "drift.speed" and cmds == ()
    s, cmds = st.handle_click(s, "learn", "gain.bass", ROWS)
    assert s.selected == s.learning == "gain.bass" and cmds == (st.StartLearn("gain.bass"),)
    s, cmds = st.handle_click(s, "learn", "gain.bass", ROWS)
    assert s.learning is None and cmds == (st.CancelLearn(),)
    assert st.handle_click(s, "row", "nope", ROWS) == (s, ())
    assert st.handle_scroll(OperatorState(selected="master"), -2.0, ROWS).selected == "gain.bass"
    assert st.handle_scroll(OperatorState(selected="gain.bass"), 1.0, ROWS).selected == "blackout"


def test_scroll_keeps_the_selection_in_view() -> None:
    assert st.scroll_to_show(0, 3, 5, 20) == 0
    assert st.scroll_to_show(0, 7, 5, 20) == 3
    assert st.scroll_to_show(10, 4, 5, 20) == 4
    assert st.scroll_to_show(18, None, 5, 20) == 15  # never past the end
    assert st.scroll_to_show(3, 0, 10, 4) == 0


# --- text ----------------------------------------------------------------------------------------------

def test_glyph_atlas_measures_and_places_text() -> None:
    atlas = build_atlas(14)
    assert atlas.line_height >= 14 and 0 < atlas.ascent <= atlas.line_height
    for ch in "AZaz09.:-_()%":
        assert ch in atlas.glyphs
    assert atlas.measure("gain.bass") == pytest.approx(atlas.measure("gain.") + atlas.measure("bass"))
    quads = atlas.quads("a b")
    assert quads.shape == (2, 8)  # spaces have no quad
    assert quads[1, 0] > quads[0, 2]  # b sits right of a
    assert (quads[:, 4:] >= 0).all() and (quads[:, 4:] <= 1).all()
    # Each quad's atlas rectangle holds ink, and the glyph's pixels sit there.
    w, h = atlas.size
    for x0, y0, x1, y1, u0, v0, u1, v1 in quads:
        region = atlas.pixels[round(v0 * h):round(v1 * h), round(u0 * w):round(u1 * w)]
        assert region.shape == (round(y1 - y0), round(x1 - x0)) and region.max() > 128
    # A character the font lacks is drawn as the fallback, never dropped silently.
    assert atlas.measure("\u2603") == atlas.measure("?")
    assert fit_text("expressiveness.max", atlas.measure("express..."), atlas.measure) == "express..."
    assert fit_text("short", 100, atlas.measure) == "short"
    assert fit_text("anything", 1, atlas.measure) == ""


# --- formatting --------------------------------------------------------------------------------------

def test_numbers_in_words() -> None:
    assert fmt(None) == "-" and fmt(math.nan) == "-" and fmt(12.345, 1, " ms") == "12.3 ms"
    assert format_value(0.9, 0, 2) == "0.90"
    assert format_value(12.0, 0, 100) == "12" and format_value(1.0, 0.05, 20) == "1.0"
    assert format_value(0.04, 0, 0.5) == "0.040" and format_value(0.5, 0, 1) == "0.50"
    assert format_value(1.0, 0, 1, toggle=True) == "on" and format_value(0.0, 0, 1, toggle=True) == "off"
    m = [Mapping(Control("cc", 21, 1), "absolute", param="a"), Mapping(Control("cc", 3, 2), "relative-twos", param="a"),
         Mapping(Control("note", 36, 10), "trigger", action="blackout")]
    assert mapping_text(m) == "ch 1 CC 21, ch 2 CC 3 enc, ch 10 note 36"


# --- layouts ---------------------------------------------------------------------------------------------

def many_rows(n: int) -> tuple[Row, ...]:
    return tuple(Row(f"gain.route_{i}", value=i / n, mapping="ch 1 CC 21" if i == 3 else "") for i in range(n))


def a_view(**kw: object) -> OperatorView:
    base = OperatorView(preset="default", output_size=(1920, 1080), display_fps=59.9, generation_fps=30.2,
                        generation_ms=21.5, latent_ms=0.8, resolution=512, budget_step=1, latency_ms=83.4, bpm=128.0,
                        tempo_source="audio", beat_phase=0.5,
                        bands=(BandMeter("sub", 0.25), BandMeter("bass", 1.0), BandMeter("mid", 0.0)),
                        loudness=0.5, midi=MidiView(True, ("nanoKONTROL2",), 12, 0.1, "ch 1 CC 21 = 64"),
                        rows=many_rows(8), selected="gain.route_3")
    return replace(base, **kw)


def all_inside(layout: hud.Layout) -> None:
    W, H = layout.size
    screen = Rect(0, 0, W, H)
    for f in layout.fills:
        assert f.rect.inside(screen), f
    for label in layout.labels:
        assert 0 <= label.x and label.x + Mono.measure(label.text) <= W + 1, label
        assert 0 <= label.y <= H - Mono.line_height + 1, label


@pytest.mark.parametrize("size", [(960, 600), (1600, 1000), (420, 340), (800, 300), (300, 900), (200, 120),
                                  (60, 40), (1, 1)])
def test_operator_layout_stays_inside_the_window_at_any_size(size: tuple[int, int]) -> None:
    layout = layout_operator(a_view(), size, Mono)
    assert layout.size == size
    all_inside(layout)
    if layout.preview is not None:
        assert layout.preview.w / layout.preview.h == pytest.approx(16 / 9, rel=0.03)


def test_operator_layout_shows_figures_rows_mappings_and_buttons() -> None:
    layout = layout_operator(a_view(), (960, 600), Mono)
    text = layout.text()
    for needle in ("preset default", "59.9 fps", "30.2 fps", "21.5 ms", "latent 0.8 ms", "512px", "budget step 1",
                   "sound to screen 83 ms", "BPM 128.0 (audio)", "MIDI: nanoKONTROL2", "ch 1 CC 21 = 64"):
        assert needle in text, needle
    assert layout.preview is not None and layout.preview.y < 100
    # The mapping text sits in its own row; the selected row is highlighted.
    rows = dict(layout.row_rects)
    assert len(rows) == 8
    mapped = layout.labels_in(rows["gain.route_3"])
    assert [lb.text for lb in mapped if lb.text == "ch 1 CC 21"]
    assert any(f.color == hud.SELECTED and f.rect == rows["gain.route_3"] for f in layout.fills)
    # Clicks: the learn button wins over the row it sits on; elsewhere on the row selects it.
    button = next(h for h in layout.hits if h.kind == "learn" and h.target == "gain.route_5")
    cx, cy = button.rect.x + button.rect.w / 2, button.rect.y + button.rect.h / 2
    assert layout.hit(cx, cy) == button
    row = rows["gain.route_5"]
    assert layout.hit(row.x + 5, row.y + 5).kind == "row" and layout.hit(row.x + 5, row.y + 5).target == "gain.route_5"
    assert layout.hit(1, 1) is None


def test_a_knob_waiting_to_pick_up_is_marked_in_its_value_bar() -> None:
    rows = (Row("gain.bass", value=0.9, maximum=2.0, mapping="ch 1 CC 21", pickup=0.75), Row("other"))
    layout = layout_operator(a_view(rows=rows, selected="other"), (960, 600), Mono)
    row = dict(layout.row_rects)["gain.bass"]
    ticks = [f.rect for f in layout.fills if f.color == hud.WARN and f.rect.w == 2 and f.rect.inside(row)]
    assert len(ticks) == 1
    value = next(lb for lb in layout.labels_in(row) if lb.text == "0.90")
    cell = next(f.rect for f in layout.fills if f.color == hud.ROW_ALT and f.rect.contains(value.x, value.y + 1))
    assert ticks[0].x == pytest.approx(cell.x + 0.75 * (cell.w - 2), abs=1)
    other = dict(layout.row_rects)["other"]
    assert not [f for f in layout.fills if f.color == hud.WARN and f.rect.w == 2 and f.rect.inside(other)]


def test_meters_show_each_band_level() -> None:
    layout = layout_operator(a_view(), (960, 600), Mono)
    labels = {lb.text: lb for lb in layout.labels}
    heights = {}
    for name in ("sub", "bass", "mid"):
        lb = labels[name]
        # The coloured bar right above the band's name, in its column.
        bars = [f for f in layout.fills if f.color in (hud.GOOD, hud.WARN, hud.BAD)
                and f.rect.x <= lb.x + 1 and lb.x <= f.rect.right and abs(f.rect.bottom - lb.y) < 1]
        heights[name] = bars[0].rect.h if bars else 0.0
    assert heights["mid"] == 0 and heights["bass"] > 3 * heights["sub"] > 0
    assert heights["bass"] == pytest.approx(4 * heights["sub"], rel=0.1)


def test_long_lists_scroll_to_the_selection() -> None:
    view = a_view(rows=many_rows(60), selected="gain.route_50")
    layout = layout_operator(view, (960, 600), Mono)
    shown = [t for t, _ in layout.row_rects]
    assert "gain.route_50" in shown and len(shown) == layout.visible_rows < 60
    assert layout.first_row == 50 - layout.visible_rows + 1
    # Kept from the previous redraw while the selection stays in view.
    again = layout_operator(replace(view, selected="gain.route_45"), (960, 600), Mono, scroll=layout.first_row)
    assert again.first_row == layout.first_row


def test_learning_is_shown_on_its_row_and_in_the_status() -> None:
    view = a_view(midi=MidiView(True, ("nano",), learning="gain.route_2"))
    layout = layout_operator(view, (960, 600), Mono)
    row = dict(layout.row_rects)["gain.route_2"]
    assert "move a control..." in [lb.text for lb in layout.labels_in(row)]
    assert "cancel" in [lb.text for lb in layout.labels_in(row)]
    assert "LEARN gain.route_2: move a control (L or Esc cancels)" in layout.text()
    off = layout_operator(a_view(midi=MidiView(False)), (960, 600), Mono)
    assert "MIDI not running (see the log): learning needs it" in off.text()


def test_narrow_windows_stack_and_keep_room_for_the_list() -> None:
    layout = layout_operator(a_view(), (420, 340), Mono)
    assert layout.preview is not None and layout.visible_rows >= 4
    list_top = min(r.y for _, r in layout.row_rects)
    assert list_top > layout.preview.bottom


def test_output_hud_layout() -> None:
    view = a_view(blackout=True, message="saved preset default-2")
    layout = layout_output_hud(view, (1280, 720), Mono)
    text = layout.text()
    assert "default" in text and "60 fps" in text and "BPM 128.0" in text and "83 ms" in text
    assert "BLACKOUT" in text and "saved preset default-2" in text
    all_inside(layout)
    assert layout.fills[0].color == hud.HUD_BOX and layout.fills[0].rect.x < 20
    assert layout_output_hud(view, (40, 20), Mono).fills == ()  # too small: nothing rather than a mess


def test_geometry_helpers() -> None:
    assert fit_aspect(Rect(0, 0, 400, 400), 2.0) == Rect(0, 100, 400, 200)
    assert fit_aspect(Rect(10, 0, 400, 100), 2.0) == Rect(110, 0, 200, 100)
    assert wrap(["aa", "bb", "cc"], 7 * 9, Mono.measure, sep=" ") == ["aa bb cc"]
    assert wrap(["aa", "bb", "cc"], 7 * 5, Mono.measure, sep=" ") == ["aa bb", "cc"]


# --- reading the show ------------------------------------------------------------------------------------

class Stats:
    def __init__(self, t_swap: float, t_audio: float | None) -> None:
        self.t_swap, self.t_audio = t_swap, t_audio


def test_display_meters_measure_rate_and_latency() -> None:
    m = DisplayMeters()
    for i in range(200):
        m.update(Stats(10.0 + i / 60, 10.0 + i / 60 - 0.080))
    assert m.display_fps == pytest.approx(60.0, rel=1e-3) and m.latency_ms == pytest.approx(80.0, rel=1e-3)
    m.update(Stats(100.0, None))  # a long stall is not a frame rate; no audio stamp keeps the last figure
    assert m.display_fps == pytest.approx(60.0, rel=1e-3) and m.latency_ms == pytest.approx(80.0, rel=1e-3)


def controller() -> tuple[ParamStore, MidiController]:
    params = ParamStore([ParamSpec("master", 1.0), ParamSpec("blackout", 0.0, toggle=True),
                         ParamSpec("gain.bass", 0.9, 0.0, 2.0)])
    fired: list = []
    midi = MidiController(params, post=ApplyToParams(params, other=fired.append), inputs=(), report=lambda line: None)
    midi.fired = fired  # (the commands that are not parameter moves, for the assertions)
    return params, midi


def test_rows_and_midi_view_from_a_controller() -> None:
    params, midi = controller()
    midi.learn("gain.bass")
    t = time.perf_counter()
    midi.handle_message("nanoKONTROL2 MIDI 1", [0xB0, 21, 100], t)
    rows = param_rows(params, midi.mappings_for)
    assert [r.target for r in rows] == ["master", "blackout", "gain.bass"]
    assert rows[2].mapping == "ch 1 CC 21" and rows[1].toggle and rows[2].maximum == 2.0
    actions = action_rows(midi, ["default", "drop"])  # the show's vocabulary, a recall per preset
    assert [r.target for r in actions] == sorted(  # actions with an argument: only preset recalls are offered
        [n for n, spec in ACTIONS.items() if not spec.argument] + ["recall-preset:1", "recall-preset:2"])
    assert {r.kind for r in actions} == {ACTION} and ("blackout", "blackout") in [(r.target, r.title) for r in actions]
    assert [r.title for r in actions if r.target.startswith("recall-preset")] == [
        "recall-preset:1 (default)", "recall-preset:2 (drop)"]
    assert action_rows(None, ["default"]) == action_rows(midi, ["default"])  # with or without MIDI
    # Learned at 100/127 while the value is 0.9/2: the knob must pick the value up first.
    assert param_rows(params, midi.mappings_for, midi.takeover_state)[2].pickup == pytest.approx(100 / 127)
    for value in (80, 57):  # through 0.45 of the range: taken over
        midi.handle_message("nanoKONTROL2 MIDI 1", [0xB0, 21, value], t)
    assert params.get("gain.bass") == pytest.approx(2 * 57 / 127)
    assert param_rows(params, midi.mappings_for, midi.takeover_state)[2].pickup is None
    view = midi_view(midi, t + 0.1)
    assert view.enabled and view.messages == 3 and view.last_age_s == pytest.approx(0.1)
    assert view.last_text == "ch 1 CC 21 = 57" and view.learning is None
    midi.learn("master")
    assert midi_view(midi, t).learning == "master"
    assert midi_view(None, t) == MidiView(enabled=False)


class Host:
    """The parts of a live show the operator reads, made of real components (no window)."""

    def __init__(self, params: ParamStore, midi: MidiController | None, presets: list[str]) -> None:
        self.params, self.midi, self.presets = params, midi, presets
        self.preset = load_preset("default")
        self.audio = type("Audio", (), {"latest": staticmethod(lambda: rest_features(("sub", "bass")))})()
        self.worker = self.renderer = self.window = self.frames = None
        self.lines: list[str] = []
        self.commands = CommandQueue()  # the show's one command path; the test reads what arrived
        self.alarms = AlarmBoard()

    def log(self, line: str) -> None:
        self.lines.append(line)

    def post(self, command) -> None:
        self.commands.post(command)


def test_collect_view_reads_the_show() -> None:
    params, midi = controller()
    params.set("blackout", 1.0)
    host = Host(params, midi, ["default", "drop"])
    meters = DisplayMeters(display_fps=60.0, latency_ms=90.0)
    view = collect_view(host, meters, time.perf_counter(), selected="gain.bass", message="hi")
    assert view.preset == "default" and view.presets == ("default", "drop") and view.blackout and not view.freeze
    assert [b.name for b in view.bands] == ["sub", "bass"] and view.bpm is None and view.latency_ms == 90.0
    assert view.generation_ms is None and view.midi.enabled and view.selected == "gain.bass" and view.message == "hi"
    assert [r.target for r in view.rows][:3] == ["master", "blackout", "gain.bass"]


def test_runner_learns_unbinds_and_reports() -> None:
    params, midi = controller()
    host = Host(params, midi, ["default", "drop"])
    runner = CommandRunner(host, toggle_operator=lambda: None)
    s = OperatorState(selected="gain.bass", learning="gain.bass")
    s = runner.run(st.StartLearn("gain.bass"), s)
    assert midi.learning is not None and midi.learning.target == "gain.bass"
    midi.handle_message("nano", [0xB0, 7, 30])  # the next control moved wins
    s = runner.poll(s)
    assert s.learning is None and runner.current_status().text == "learned: ch 1 CC 7 -> gain.bass"
    assert [m.control.number for m in midi.mappings_for("gain.bass")] == [7]
    runner.run(st.Unbind("gain.bass"), s)
    assert midi.mappings_for("gain.bass") == () and "1 MIDI control unbound" in runner.current_status().text
    host.commands.drain()
    runner.run(st.SetParam("gain.bass", 1.5), s)
    runner.run(st.RecallPreset(2), s)
    runner.run(st.RecallPreset(7), s)
    assert runner.current_status().error and "no preset 7 (there are 2)" in runner.current_status().text
    runner.run(st.FireAction("recall-preset:1"), s)
    runner.run(st.Invoke("tap-tempo"), s)
    runner.run(st.Invoke("acknowledge"), s)
    posted = host.commands.drain()  # everything that steers the show went onto its command path
    assert [type(c).__name__ for c in posted] == ["SetParam", "RecallPreset", "RecallPreset", "Tap", "AcknowledgeAlarm"]
    assert (posted[0].name, posted[0].value, posted[0].source) == ("gain.bass", 1.5, "operator")
    assert [posted[1].which, posted[2].which] == ["2", "1"]
    # Without a controller a learn is refused in words and the state drops it.
    bare = CommandRunner(Host(params, None, []), toggle_operator=lambda: None)
    s = bare.run(st.StartLearn("gain.bass"), OperatorState(learning="gain.bass"))
    assert s.learning is None and "not running" in bare.current_status().text and bare.current_status().error
    # An unknown parameter becomes a status line, never an exception in the live loop.
    s = runner.run(st.StartLearn("nope"), OperatorState(learning="nope"))
    assert s.learning is None and runner.current_status().error


# --- presets ------------------------------------------------------------------------------------------------

def shipped_digest() -> str:
    h = hashlib.sha256()
    for p in sorted(data_dir("presets").glob("*")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_new_preset_names() -> None:
    assert name_base("drop-3") == "drop" and name_base("my set!") == "my-set" and name_base("---") == "preset"
    assert next_free_name("drop", ["drop", "drop-2"]) == "drop-3"
    assert next_free_name("drop", ["Drop-2"]) == "drop-3"  # Windows and macOS ignore case


def test_ctrl_s_writes_a_new_preset_and_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path))
    before = shipped_digest()
    current = load_preset("default")
    mapping = {"channel": 1, "cc": 21, "kind": "absolute", "param": "gain.bass_expression", "takeover": "pickup"}
    values = {"gain.bass_expression": 1.25, "blackout": 1.0, "freeze": 1.0, "master": 0.8}
    first = save_new_preset(current, values, [mapping])
    assert first == user_presets_dir() / "default-2.toml"
    saved = load_preset(first)
    assert saved.name == "default-2" and saved.params == {"gain.bass_expression": 1.25, "master": 0.8}
    assert list(saved.midi) == [mapping] and saved.motion == current.motion
    # A user file already there is never replaced: the next free number is taken.
    (user_presets_dir() / "default-3.toml").write_text("# mine\n")
    second = save_new_preset(saved, values, None)
    assert second.name == "default-4.toml" and (user_presets_dir() / "default-3.toml").read_text() == "# mine\n"
    assert list(load_preset(second).midi) == [mapping]  # no controller: the preset's own mappings stay
    assert shipped_digest() == before
    names = sorted(p.name for p in user_presets_dir().iterdir())
    assert names == ["default-2.toml", "default-3.toml", "default-4.toml"]
    with pytest.raises(Exception, match="never saved into vjgan's own folder"):
        save_new_preset(current, values, None, folder=data_dir("presets"))


def test_a_relative_model_is_made_absolute_for_the_copy(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    current = replace(load_preset("default"), model="models/face.pkl", path=folder / "gig.toml")
    assert preset_for_saving(current, "gig-2", {}, None).model == str((folder / "models" / "face.pkl").resolve())
    assert preset_for_saving(current, "gig-2", {}, None, model_override="x.pkl").model == str(Path("x.pkl").resolve())
    assert preset_for_saving(replace(current, model=""), "gig-2", {}, None).model == ""


def test_saves_run_in_the_background_and_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path))
    saver = PresetSaver()
    saver.save(load_preset("default"), {"master": 0.5}, [])
    saver.wait()
    result = saver.results.latest()
    assert result is not None and result.path is not None and result.path.is_file() and not result.error
    assert not [p for p in result.path.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    # A failure is a result, never an exception on a thread nobody watches.
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a folder")
    saver.save(load_preset("default"), {}, None)
    saver.wait()
    assert saver.results.latest().path is None and saver.results.latest().error


# --- placement -----------------------------------------------------------------------------------------------

LAPTOP = Screen("eDP-1", Area(0, 0, 1920, 1080), primary=True)
PROJECTOR = Screen("HDMI-1", Area(1920, 0, 1920, 1080))


def test_two_monitors_put_the_operator_on_the_laptop() -> None:
    p = place_operator([LAPTOP, PROJECTOR], "HDMI-1", True, Area(1920, 0, 1920, 1080), (960, 600))
    assert p.operator == Area(480, 240, 960, 600) and p.move_output_to is None and not p.note
    # The output on the primary screen: the operator goes to the other one.
    p = place_operator([LAPTOP, PROJECTOR], "eDP-1", False, Area(100, 100, 1280, 720), (960, 600))
    assert p.operator.x >= 1920


def test_one_monitor_side_by_side() -> None:
    p = place_operator([LAPTOP], "eDP-1", False, Area(320, 180, 800, 450), (960, 600))
    assert p.operator.x == 16 and p.operator.w == 960 and p.move_output_to is not None
    out = Area(*p.move_output_to, 800, 450)
    assert not out.overlaps(p.operator) and out.right <= 1920 and not p.note
    small = place_operator([Screen("x", Area(0, 0, 1280, 720), True)], "x", False, Area(0, 0, 1280, 720), (960, 600))
    assert "overlaps" in small.note
    full = place_operator([LAPTOP], "eDP-1", True, Area(0, 0, 1920, 1080), (960, 600))
    assert full.move_output_to is None and "fullscreen output covers" in full.note
    assert place_operator([], None, False, Area(0, 0, 0, 0), (960, 600)).operator.w == 960


# --- the live show's switches --------------------------------------------------------------------------------

def test_operator_on_and_hud_off_by_default() -> None:
    from vjgan.cli import build_parser
    from vjgan.live.app import LiveOptions
    from vjgan.operator.console import start_console

    assert LiveOptions().operator is True and LiveOptions().hud is False
    args = build_parser().parse_args(["live", "--demo"])
    assert args.no_operator is False and args.hud is False
    args = build_parser().parse_args(["live", "--demo", "--no-operator", "--hud"])
    assert args.no_operator is True and args.hud is True
    params, midi = controller()
    assert start_console(Host(params, midi, []), operator=False, hud=False) is None  # nothing opened
