"""The operator console without a screen: keys, learn state, what the panels show, presets, routes,
the model picker, placement.

Everything here is pure or touches only files: the state machine and the view are fed plain
values; MIDI learn goes through a real `MidiController` fed decoded messages (no ports needed).
"""

from __future__ import annotations

import hashlib
import math
import threading
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
from vjgan.operator import state as st
from vjgan.operator.collect import DisplayMeters, action_rows, collect_view, midi_view, param_rows
from vjgan.operator.placement import Area, Screen, place_operator
from vjgan.live.saving import (PresetSaver, name_base, next_free_name, preset_for_saving, save_new_preset)
from vjgan.operator.runner import CommandRunner
from vjgan.alarms import AlarmBoard
from vjgan.control.commands import CommandQueue
from vjgan.operator.state import KeyPress, OperatorState, handle_key
from vjgan.operator.view import ACTION, MidiView, OperatorView, Row, fmt, format_value, mapping_text
from vjgan.errors import UserError
from vjgan.resources import data_dir


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


# --- what the panels show, as values -------------------------------------------------------------------------

def test_pages_group_the_rows_in_a_fixed_order() -> None:
    from vjgan.operator.params_panel import pages_of, value_format

    rows = (Row("gain.a", group="routes"), Row("master", group="output"), Row("blackout", ACTION, group="actions"),
            Row("odd", group="zzz"), Row("drift.speed", group="drift"))
    assert list(pages_of(rows)) == ["output", "drift", "routes", "actions", "zzz"]
    assert value_format(Row("g", value=0.9, maximum=2.0)) == "%.2f"
    assert value_format(Row("m", value=1.0, maximum=10.0)) == "%.1f" and value_format(Row("x", maximum=100)) == "%.0f"


def test_hud_lines_and_activity() -> None:
    from vjgan.operator.view import AlarmLine, activities, hud_lines, osc_address

    view = OperatorView(preset="drop", display_fps=59.7, generation_ms=12.34, resolution=512, budget_step=1, bpm=128,
                        latency_ms=45.0, blackout=True, alarms=(AlarmLine("g", "GENERATOR RESTARTED (2)"),),
                        message="saved preset drop-2")
    lines = hud_lines(view)
    assert lines[0] == ("drop    60 fps    generation 12.3 ms    512px step 1", "text")
    assert lines[1] == ("BPM 128.0    sound to screen 45 ms    BLACKOUT", "bad")
    assert ("GENERATOR RESTARTED (2)", "bad") in lines and lines[-1] == ("saved preset drop-2", "warn")
    assert hud_lines(replace(view, midi=MidiView(True, learning="gain.bass")))[-1] == \
        ("LEARN gain.bass: move a control", "learn")
    off = activities(OperatorView())
    assert len(off) == 1 and not off[0].enabled and "not running" in off[0].text
    on = activities(OperatorView(midi=MidiView(True, ("nano",), 3, 0.1, "ch 1 CC 21 = 57", 120.0, True)))
    assert on[0].lit and on[0].text.startswith("nano  3 messages  last: ch 1 CC 21 = 57  clock 120.0 BPM running")
    assert not activities(OperatorView(midi=MidiView(True, messages=1, last_age_s=2.0)))[0].lit
    assert osc_address("gain.bass") == "/vjgan/param/gain.bass"


def test_the_model_picker_lists_folders_then_models(tmp_path: Path) -> None:
    from vjgan.operator.browse import list_folder

    for name in ("b.pkl", "A.safetensors", "notes.txt", ".hidden.pkl", "c.PT"):
        (tmp_path / name).write_text("")
    (tmp_path / "zz").mkdir()
    (tmp_path / "aa").mkdir()
    entries, error = list_folder(tmp_path)
    assert error == "" and [(e.name, e.folder) for e in entries] == [
        ("aa", True), ("zz", True), ("A.safetensors", False), ("b.pkl", False), ("c.PT", False)]
    entries, error = list_folder(tmp_path / "gone")
    assert entries == () and "cannot read folder" in error


def test_the_model_summary_is_read_in_the_background() -> None:
    from vjgan.operator.browse import ModelSummaries

    model = Path(__file__).resolve().parent / "data" / "conformance" / "sg2ada_64px.pkl"
    summaries = ModelSummaries()
    summaries.request(str(model))
    deadline = time.monotonic() + 60
    while summaries.latest() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    info = dict(summaries.latest().rows)
    assert info["resolution"] == "64x64, 3 channels" and info["num_ws"] == "10"
    # A file that is not a model: one line, no exception.
    summaries.request(__file__)
    while summaries.latest() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert summaries.latest().error and not summaries.latest().rows
    # Only the newest request is shown: an older read finishing later is dropped.
    gate = threading.Event()
    slow = ModelSummaries(describe=lambda path: (gate.wait(10), (("path", path),))[1])
    slow.request("first")
    slow.request("second")
    gate.set()
    while slow.latest() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert slow.latest().rows == (("path", "second"),)


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


def test_save_under_a_name_and_rename_never_replace_a_preset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vjgan.live.saving import rename_user_preset

    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path))
    before = shipped_digest()
    current = load_preset("default")
    path = save_new_preset(current, {"master": 0.7}, None, name="Gig-One")
    assert path == user_presets_dir() / "Gig-One.toml" and load_preset(path).name == "Gig-One"
    for taken in ("gig-one", "DROP", "default"):  # the user's and vjgan's, without case
        with pytest.raises(UserError, match="exists; a save never replaces one"):
            save_new_preset(current, {}, None, name=taken)
    with pytest.raises(UserError, match="use letters, digits"):
        save_new_preset(current, {}, None, name="../escape")
    renamed = rename_user_preset("Gig-One", "gig-two")
    assert renamed == user_presets_dir() / "gig-two.toml" and not path.exists()
    assert load_preset(renamed).name == "gig-two" and load_preset(renamed).params == {"master": 0.7}
    with pytest.raises(UserError, match="one of vjgan's own"):
        rename_user_preset("drop", "mine")
    with pytest.raises(UserError, match="exists"):
        rename_user_preset("gig-two", "Drop")
    with pytest.raises(UserError, match="no preset of yours"):
        rename_user_preset("nothing", "x")
    assert sorted(p.name for p in user_presets_dir().iterdir()) == ["gig-two.toml"]
    assert shipped_digest() == before


def test_a_rename_runs_in_the_background_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path))
    save_new_preset(load_preset("default"), {}, None, name="a")
    saver = PresetSaver()
    saver.rename("a", "b")
    saver.wait()
    result = saver.results.latest()
    assert result.renamed_from == "a" and result.path == user_presets_dir() / "b.toml"
    saver.rename("drop", "c")
    saver.wait()
    assert saver.results.latest().path is None and "vjgan's own" in saver.results.latest().error


def test_route_edits_make_a_new_preset_with_the_running_values() -> None:
    from vjgan.live.steer import with_route, without_route

    preset = load_preset("default")
    running = {"gain.bass_expression": 1.7, "gain.kick_snap": 0.5, "master": 0.9}
    edited = with_route(preset, "bass_expression", {"layers": "fine", "source": "band.mid"}, running)
    route = next(r for r in edited.motion.routes if r.name == "bass_expression")
    assert (route.source, route.layers, route.target) == ("band.mid", "fine", "expressiveness")
    assert edited.name == preset.name and edited.params == running and edited.path == preset.path
    added = with_route(preset, "hats", {"source": "onset.high", "target": "snap"}, {})
    assert added.motion.routes[-1].name == "hats" and len(added.motion.routes) == len(preset.motion.routes) + 1
    removed = without_route(preset, "kick_snap", running)
    assert "kick_snap" not in [r.name for r in removed.motion.routes]
    assert "gain.kick_snap" not in removed.params  # no value for a knob that is gone
    # Held to what a preset file is held to: one line naming the route and the reason.
    with pytest.raises(UserError, match="names a band this preset does not define"):
        with_route(preset, "x", {"source": "band.nope", "target": "noise"}, {})
    with pytest.raises(UserError, match="snap needs an onset"):
        with_route(preset, "kick_snap", {"source": "beat"}, {})
    with pytest.raises(UserError, match="needs a source and a target"):
        with_route(preset, "new", {"layers": "fine"}, {})
    with pytest.raises(UserError, match="not a route setting"):
        with_route(preset, "kick_snap", {"colour": 1}, {})
    with pytest.raises(UserError, match="no route named"):
        without_route(preset, "nothing", {})


def test_the_console_layout_travels_with_the_running_state() -> None:
    from vjgan.config import tomllib
    from vjgan.live.autosave import RunningState, _state_from

    layout = {"imgui": "[Window][Preview]\nPos=0,0\nSize=400,300\n\n[Docking][Data]\n", "panels": ["Preview", "Log"]}
    state = _state_from(tomllib.loads(RunningState("default", {"master": 1.0}, (), layout).to_toml()))
    assert state.layout == layout


def test_ui_scale_option() -> None:
    from vjgan.cli import build_parser
    from vjgan.live.app import LiveOptions
    from vjgan.operator.window import OperatorConfig

    assert LiveOptions().ui_scale == 1.0
    assert build_parser().parse_args(["live", "--ui-scale", "2"]).ui_scale == 2.0
    with pytest.raises(UserError, match="UI scale"):
        OperatorConfig(ui_scale=9.0)


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
