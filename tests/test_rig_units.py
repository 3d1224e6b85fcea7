"""The rig's pure parts, with numbers: beat/bar boundaries, Link's priority on the beat clock,
the recording's sound timeline, take names, senders that drop rather than wait, and the OSC
router (address → command, `?` → a reply from snapshots)."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vjgan.audio.tempo import MIDI_CLOCK_PPQ, BeatClock, TapTempo
from vjgan.control.commands import (Blackout, CommandQueue, NudgeTempo, Portrait, Prompt, RecallPreset, SetParam,
                                    SetQuantize, SetTempo, Tap, ToggleRecording, action_command)
from vjgan.motion.params import ParamSpec, ParamStore
from vjgan.rig.endpoints import parse_endpoint
from vjgan.rig.grab import Picture
from vjgan.rig.osc_in import BadMessage, OscRouter
from vjgan.rig.osc_tree import ADDRESSES
from vjgan.rig.outputs import AudioChunk, SenderThread
from vjgan.rig.quantize import Quantiser, next_boundary
from vjgan.rig.record import LiveSoundtrack, free_path
from vjgan.audio.features import rest_features
from vjgan.errors import UserError


# --- quantised preset changes --------------------------------------------------------------------------

def test_next_beat_and_next_bar_from_the_beat_clock() -> None:
    # Beat 6 at t=10 s, 0.5 s per beat (120 BPM).
    assert next_boundary(10.2, 10.0, 0.5, 6, 1) == pytest.approx(10.5)  # beat 7
    assert next_boundary(10.2, 10.0, 0.5, 6, 4) == pytest.approx(11.0)  # beat 8: a bar
    assert next_boundary(10.0, 10.0, 0.5, 8, 4) == pytest.approx(12.0)  # on a bar: the next one
    assert next_boundary(13.9, 10.0, 0.5, 6, 4) == pytest.approx(15.0)  # extrapolated past the last beat seen
    assert next_boundary(10.2, 10.0, 0.0, 6, 4) is None  # no tempo: nothing to wait for


class _Request:
    def __init__(self, number: int, quantize: str) -> None:
        self.number = number
        self.preset = type("P", (), {"quantize": quantize})()


def test_quantiser_holds_a_change_until_its_boundary_and_the_command_overrides_presets() -> None:
    clock = [10.2]
    f = rest_features(("bass",))
    from dataclasses import replace

    f = replace(f, beat_time=10.0, beat_period=0.5, beat_count=6)
    q = Quantiser(lambda: f, clock=lambda: clock[0])
    assert q.gate(_Request(1, "off"))  # the preset's own option: at once
    assert not q.gate(_Request(2, "bar"))
    clock[0] = 10.9
    assert not q.gate(_Request(2, "bar"))
    clock[0] = 11.0
    assert q.gate(_Request(2, "bar"))
    q.set_quantum("beat")  # the command: every change, whatever the preset says
    clock[0] = 11.1
    assert not q.gate(_Request(3, "off"))
    clock[0] = 11.5
    assert q.gate(_Request(3, "off"))
    with pytest.raises(UserError):
        q.set_quantum("sometimes")


# --- Link on the beat clock: first in priority, back to the others when it goes ------------------------

def test_link_drives_the_beat_clock_over_midi_clock_and_tap_and_hands_back() -> None:
    clock = BeatClock()
    clock.tap(0.0)
    clock.tap(0.5)  # tap: 120 BPM
    assert clock.source == "tap" and clock.bpm == pytest.approx(120.0)
    for k in range(48):  # MIDI clock at 100 BPM overrides tap
        clock.external_tick(1.0 + k * 0.6 / MIDI_CLOCK_PPQ)
    assert clock.source == "external" and clock.bpm == pytest.approx(100.0, rel=1e-3)
    # Link's session: beat 13.75 at t = 2.0, 130 BPM.
    clock.link_timeline(2.0, 13.75, 130.0)
    clock.advance(2.0)
    assert clock.source == "link" and clock.bpm == pytest.approx(130.0)
    assert clock.beat_count == 13 and clock.phase(2.0) == pytest.approx(0.75)
    beats = [clock.advance(2.0 + k * 0.01) for k in range(1, 30)]  # the next session beat (14) is 0.115 s on
    assert sum(beats) == 1 and beats.index(True) == 11
    assert clock.beat_count == 14 and clock.beat_count % 4 != 0
    # A tap while Link drives changes nothing on the clock (tap changes the session's tempo instead).
    clock.tap(2.2)
    assert clock.source == "link" and clock.bpm == pytest.approx(130.0)
    # Link goes (no update within the timeout): the MIDI clock takes over again, then tap.
    for k in range(48):
        clock.external_tick(2.05 + k * 0.6 / MIDI_CLOCK_PPQ)
    clock.advance(2.05 + 48 * 0.6 / MIDI_CLOCK_PPQ + 0.01)
    assert clock.source == "external" and clock.bpm == pytest.approx(100.0, rel=1e-2)
    clock.external_stop()
    assert clock.source == "tap"


def test_tap_tempo_fits_a_line_and_restarts_after_a_pause() -> None:
    taps = TapTempo(timeout_s=2.0)
    assert taps.add(0.0) and taps.period() is None
    for k, jitter in enumerate([0.01, -0.01, 0.005], start=1):
        taps.add(k * 0.5 + jitter)
    assert taps.period() == pytest.approx(0.5, abs=0.01)
    assert not taps.add(1.0)  # out of order
    taps.add(10.0)  # after a pause: a new sequence
    assert taps.period() is None


# --- the recording's sound ----------------------------------------------------------------------------------

def test_sound_lands_where_it_was_heard_and_never_ahead_of_what_arrived() -> None:
    rate, fps = 1000, Fraction(10)
    track = LiveSoundtrack(rate, 2, fps)
    hop = lambda start, n, value: AudioChunk(np.full(n, value, np.float32), rate, start + (n - 1) / rate)  # noqa: E731
    track.add(hop(9.9, 100, 0.1))  # before t0: buffered, then cut at t0
    track.start(10.0)
    track.add(hop(10.0, 100, 0.2))
    track.add(hop(10.1003, 100, 0.3))  # a jittered stamp: placed contiguously
    assert track.end_after(3) == 200  # three frames want 300 samples, 200 have arrived
    track.add(hop(10.5, 100, 0.4))  # after a gap (a lost device): put back where its time says
    assert track.end_after(10) == 600
    x = track.read(0, 600)
    assert x.shape == (2, 600)
    assert np.allclose(x[:, :100], 0.2) and np.allclose(x[:, 100:200], 0.3)
    assert np.allclose(x[:, 200:500], 0.0) and np.allclose(x[:, 500:600], 0.4)


def test_a_take_whose_last_sound_never_arrives_ends_in_silence_as_long_as_its_pictures() -> None:
    rate, fps = 1000, Fraction(10)
    track = LiveSoundtrack(rate, 2, fps)
    track.start(0.0)
    track.add(AudioChunk(np.full(250, 0.5, np.float32), rate, 0.249))
    assert not track.wait_for(3, timeout=0.01)  # the third frame's sound is still on its way
    assert track.fill_to(3) == 50
    assert track.end_after(3) == 300  # both tracks now end with the third frame
    x = track.read(0, 300)
    assert np.allclose(x[:, :250], 0.5) and np.allclose(x[:, 250:], 0.0)
    assert track.fill_to(3) == 0


def test_takes_never_overwrite(tmp_path: Path) -> None:
    wanted = tmp_path / "show.mp4"
    assert free_path(wanted) == wanted
    wanted.write_bytes(b"earlier take")
    (tmp_path / "show-2.mp4").write_bytes(b"another")
    assert free_path(wanted) == tmp_path / "show-3.mp4"


# --- senders drop, never wait -------------------------------------------------------------------------------

def _until(condition, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.001)


class _SlowSink:
    label = "slow"
    takes_audio = True

    def __init__(self) -> None:
        self.pictures: list[int] = []
        self.audio: list[float] = []
        self.release = threading.Event()

    def open(self) -> None: ...

    def send_picture(self, picture: Picture) -> None:
        self.release.wait(5.0)
        self.pictures.append(picture.index)

    def send_audio(self, chunk: AudioChunk) -> None:
        self.audio.append(chunk.t_end)

    def status(self) -> str:
        return ""

    def close(self) -> None: ...


def test_a_slow_receiver_costs_dropped_pictures_and_the_newest_is_sent() -> None:
    sink = _SlowSink()
    sender = SenderThread(sink)
    stop = threading.Event()
    worker = threading.Thread(target=sender.run, args=(stop,))
    worker.start()
    try:
        pixels = np.zeros((2, 2, 4), np.uint8)
        sender.offer_picture(Picture(pixels, 0.0, 1))
        _until(lambda: sender._picture is None)  # taken: the sink is now stuck in send_picture
        for i in range(2, 12):  # offered while the sink is stuck: each replaces the last, at once
            sender.offer_picture(Picture(pixels, 0.0, i))
            sender.offer_audio(AudioChunk(np.zeros(4, np.float32), 48000, float(i)))
        assert sender.dropped == 9
        sink.release.set()
        _until(lambda: sender.sent >= 2)
    finally:
        stop.set()
        worker.join(5)
    assert sink.pictures == [1, 11]
    assert sink.audio == [float(i) for i in range(2, 12)]  # sound is queued, not dropped


# --- OSC: addresses into commands -----------------------------------------------------------------------------

class _State:
    def __init__(self) -> None:
        self.params = ParamStore([ParamSpec("master", 1.0, 0.0, 1.0, 0.05, "", "output"),
                                  ParamSpec("drift.speed", 1.0, 0.0, 4.0, 0.3, "", "drift")])
        self.f = rest_features(("sub", "bass"))

    def features(self):
        return self.f

    def preset_name(self) -> str:
        return "default"

    def recording(self) -> bool:
        return False

    def quantum(self) -> str:
        return "preset"


def test_osc_addresses_become_the_same_commands_as_keys_and_pads() -> None:
    q = CommandQueue()
    state = _State()
    r = OscRouter(q.post, state)
    assert r.route("/vjgan/param/drift.speed", [0.5], 1.0) is None
    assert r.route("/vjgan/action/blackout", [], 2.0) is None
    assert r.route("/vjgan/action/blackout", [0.0], 2.5) is None  # a button's release: nothing
    r.route("/vjgan/action/recall-preset", ["drop"], 3.0)
    r.route("/vjgan/action/recall-preset:3", [], 3.5)
    r.route("/vjgan/preset", [2], 4.0)
    r.route("/vjgan/tap", [1], 5.0)
    r.route("/vjgan/tempo", [128.0], 6.0)
    r.route("/vjgan/tempo/nudge", [-0.5], 6.5)
    r.route("/vjgan/record", [1], 7.0)
    r.route("/vjgan/quantize", ["bar"], 8.0)
    r.route("/vjgan/action/quantize", ["beat"], 8.5)
    r.route("/vjgan/prompt", ["a yeti tardigrade in the snow"], 9.0)
    r.route("/vjgan/portrait", ["/home/vj/me.jpg"], 9.5)
    assert q.drain() == [
        SetParam("drift.speed", 0.5, normalized=True, t=1.0, source="osc"),
        Blackout(t=2.0, source="osc"),
        RecallPreset("drop", t=3.0, source="osc"), RecallPreset("3", t=3.5, source="osc"),
        RecallPreset("2", t=4.0, source="osc"), Tap(t=5.0, source="osc"),
        SetTempo(128.0, t=6.0, source="osc"), NudgeTempo(-0.5, t=6.5, source="osc"),
        ToggleRecording(True, t=7.0, source="osc"), SetQuantize("bar", t=8.0, source="osc"),
        SetQuantize("beat", t=8.5, source="osc"),
        Prompt("a yeti tardigrade in the snow", t=9.0, source="osc"), Portrait("/home/vj/me.jpg", t=9.5, source="osc"),
    ]
    assert action_command("blackout", t=2.0, source="osc") == Blackout(t=2.0, source="osc")


def test_osc_queries_answer_from_snapshots_and_change_nothing() -> None:
    q = CommandQueue()
    state = _State()
    state.params.set("drift.speed", 3.0)
    r = OscRouter(q.post, state)
    assert r.route("/vjgan/param/drift.speed", ["?"], 0.0).values == (pytest.approx(0.75),)
    assert r.route("/vjgan/params", ["?"], 0.0).values == ("master", "drift.speed")
    assert r.route("/vjgan/preset", ["?"], 0.0).values == ("default",)
    assert r.route("/vjgan/band/bass", ["?"], 0.0).values == (0.0,)
    assert r.route("/vjgan/clock", ["?"], 0.0).values == ("none",)
    assert r.route("/vjgan/record", ["?"], 0.0).values == (0,)
    assert q.drain() == []


@pytest.mark.parametrize("address, args, kind", [
    ("/vjgan/param/nope", [0.5], "unknown"), ("/other/thing", [], "unknown"), ("/vjgan/teleport", [], "unknown"),
    ("/vjgan/action/explode", [], "unknown"), ("/vjgan/param/master", ["loud"], "type"),
    ("/vjgan/param/master", [float("nan")], "type"), ("/vjgan/param/master", [], "type"),
    ("/vjgan/action/recall-preset", [], "type"), ("/vjgan/quantize", ["sometimes"], "type"),
    ("/vjgan/bpm", [120.0], "type"), ("/vjgan/prompt", [], "type"), ("/vjgan/prompt", [3], "type"), ("/vjgan/band/treble", ["?"], "unknown"),
])
def test_bad_osc_messages_say_which_kind_in_one_line(address, args, kind) -> None:
    r = OscRouter(CommandQueue().post, _State())
    with pytest.raises(BadMessage) as e:
        r.route(address, args, 0.0)
    assert e.value.kind == kind and "\n" not in str(e.value) and address in str(e.value)


def test_every_address_the_listener_takes_is_in_the_tree() -> None:
    from vjgan.rig.osc_in import _SIMPLE

    inbound = {a.pattern for a in ADDRESSES if "in" in a.direction or a.query}
    for path in _SIMPLE:
        assert f"/vjgan/{path}" in inbound, path


def test_listening_is_loopback_unless_the_network_is_named() -> None:
    assert str(parse_endpoint("9000", "--osc-in")) == "127.0.0.1:9000"
    assert str(parse_endpoint("0.0.0.0:9000", "--osc-in")) == "0.0.0.0:9000"
    for bad in ("nine", "70000", "no.such.host.invalid:9000"):
        with pytest.raises(UserError, match="--osc-in"):
            parse_endpoint(bad, "--osc-in")


def test_the_director_holds_a_finished_scene_until_the_gate_opens() -> None:
    import dataclasses
    import time
    import types

    import torch

    from vjgan.config import load_preset
    from vjgan.live.director import SceneDirector
    from vjgan.supervise import Supervisor

    committed = []
    director = SceneDirector(torch.device("cpu"), on_commit=lambda req, scene: committed.append(req.preset.name),
                             build=lambda *a, **k: types.SimpleNamespace(built_in_s=0.0))
    clock = [10.2]
    f = dataclasses.replace(rest_features(("bass",)), beat_time=10.0, beat_period=0.5, beat_count=6)
    director.commit_gate = Quantiser(lambda: f, clock=lambda: clock[0], quantum="bar").gate
    supervisor = Supervisor()
    supervisor.spawn("scene-builder", director.run)
    try:
        director.request(dataclasses.replace(load_preset("default"), name="drop"))
        deadline = time.monotonic() + 10
        while director._results.read()[1] == 0:  # built
            assert time.monotonic() < deadline
            time.sleep(0.01)
        for _ in range(3):
            assert director.poll() is None  # held: the bar starts at 11.0
        clock[0] = 11.0
        assert director.poll() is not None and committed == ["drop"]
        assert director.poll() is None  # committed once
    finally:
        supervisor.stop()


def test_the_hud_says_what_drives_the_clock_and_what_the_rig_does() -> None:
    from vjgan.operator.view import OperatorView, activities, hud_lines

    view = OperatorView(bpm=124.0, tempo_source="link", rig=("REC 00:05 show.mp4 · 150 frames · 2 dropped",
                                                              "NDI vjgan · 1 receiver · 150 sent, 0 dropped"))
    text = [t for t, _ in hud_lines(view)]
    assert any("BPM 124.0 (link)" in t for t in text)
    assert "REC 00:05 show.mp4 · 150 frames · 2 dropped" in text and any(t.startswith("NDI vjgan") for t in text)
    assert [a.name for a in activities(view)] == ["MIDI", "REC", "NDI"]  # the console's activity lines


def test_record_toggles_takes_without_waiting_and_each_take_is_a_new_playable_file(tmp_path: Path) -> None:
    import time

    import av

    from vjgan.alarms import AlarmBoard
    from vjgan.rig.record import Recorder, RecordSettings
    from vjgan.supervise import Supervisor

    supervisor = Supervisor()
    (tmp_path / "take.mp4").write_bytes(b"keep me")
    recorder = Recorder(supervisor, AlarmBoard(), RecordSettings(tmp_path / "take.mp4"), audio_rate=lambda: 48000,
                        default_dir=lambda: tmp_path)
    t = time.perf_counter()

    def play(seconds: float) -> None:
        nonlocal t
        for k in range(int(seconds * 30)):
            pixels = np.full((64, 96, 4), (k * 8) % 256, np.uint8)
            recorder.offer_picture(Picture(pixels, t, k))
            for _ in range(2):  # two hops of a 440 Hz tone a picture: one picture in each 1/30 s slot
                n = 800
                recorder.offer_audio(AudioChunk(np.sin(np.arange(n) * 2 * np.pi * 440 / 48000).astype(np.float32),
                                                48000, t + (n - 1) / 48000))
                t += n / 48000
            time.sleep(0.005)
    taken = []
    try:
        recorder.toggle()
        taken.append(recorder.take)
        play(1.0)
        t0 = time.perf_counter()
        recorder.toggle()  # stop: returns at once, the take's thread finishes the file
        assert time.perf_counter() - t0 < 0.1 and not recorder.recording
        recorder.toggle(True)
        taken.append(recorder.take)
        play(1.0)
        recorder.close()
    finally:
        supervisor.stop()
    assert (tmp_path / "take.mp4").read_bytes() == b"keep me"
    takes = sorted(tmp_path.glob("take-*.mp4"))
    assert [p.name for p in takes] == ["take-2.mp4", "take-3.mp4"]
    for path, take in zip(takes, taken):
        with av.open(str(path)) as c:
            kinds = sorted(s.type for s in c.streams)
            assert kinds == ["audio", "video"]
            video = c.streams.video[0]
            assert (video.width, video.height) == (96, 64)
            # Every picture is in the file or was dropped (counted) because the encoder was behind:
            # how many are dropped depends on the machine's load, never none kept.
            assert take.written + take.dropped == 30 and take.written >= 1
            assert sum(1 for _ in c.decode(video=0)) == take.written


def test_osc_out_at_a_chosen_rate_keeps_the_onsets_of_the_hops_in_between() -> None:
    import dataclasses
    import time

    pytest.importorskip("pythonosc")
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer

    from vjgan.rig.endpoints import Endpoint
    from vjgan.rig.osc_out import OscSender

    heard: list[tuple[str, tuple]] = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: heard.append((address, args)))
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state = _State()
    sender = OscSender([Endpoint("127.0.0.1", server.server_address[1])], state.params, rate_hz=10.0)
    try:
        base = rest_features(("sub", "bass"))
        hops = [dataclasses.replace(base, hop_index=i, onsets=(False, i == 3), bands=(0.1, 0.01 * i))
                for i in range(1, 9)]
        for f in hops:
            sender.on_hop(f)
        sender.on_param("drift.speed", 3.0)
        sender.send_pending(time.perf_counter())
        deadline = time.monotonic() + 5
        while not any(a == "/vjgan/param/drift.speed" for a, _ in heard) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        server.shutdown()
        sender.close()
    got = dict(heard)
    assert got["/vjgan/hop"] == (8,)  # only the newest hop went out at this rate...
    assert got["/vjgan/onset/bass"] == (1,)  # ...with the onset of hop 3, skipped in between
    assert "/vjgan/onset/sub" not in got
    assert got["/vjgan/band/bass"] == (pytest.approx(0.08),)
    assert got["/vjgan/param/drift.speed"] == (pytest.approx(0.75),)  # normalised 0–1
