"""Ring buffer, device lookup, file decoding, file/demo sources and the capture engine."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf

from vjgan.audio.capture import DeviceInfo, StampClock, find_input_device, parse_channel
from vjgan.audio.demo import click_track
from vjgan.audio.engine import AudioEngine
from vjgan.audio.errors import AudioDeviceError, AudioFileError
from vjgan.audio.features import Features
from vjgan.audio.offline import analyze_array
from vjgan.audio.ring import RingBuffer
from vjgan.audio.files import open_audio, to_mono
from vjgan.audio.sources import ArraySource, DemoSource, FileSource

RATE = 48000


def load_audio(path) -> tuple[np.ndarray, int]:
    """A whole file through the block reader, as frames x channels."""
    with open_audio(path, block_frames=5000) as reader:
        return np.concatenate(list(reader.blocks(3001))), reader.rate


# --- ring buffer ---------------------------------------------------------------------------------------


def test_ring_buffer_wraps_and_stamps_the_newest_sample():
    ring = RingBuffer(capacity=1000, channels=2, rate=1000)
    data = np.arange(2400, dtype=np.float32).reshape(1200, 2)
    ring.write(data[:300], adc_time=10.0)
    assert ring.read(400) is None  # not enough yet
    got, adc = ring.read(200)
    assert np.array_equal(got, data[:200])
    assert adc == pytest.approx(10.0 + 199 / 1000)
    ring.write(data[300:800], adc_time=10.3)
    got, adc = ring.read(500)
    assert np.array_equal(got, data[200:700])
    ring.write(data[800:1200], adc_time=10.8)  # wraps around the end of the ring
    got, adc = ring.read(400)  # and so does this read
    assert np.array_equal(got, data[700:1100])
    assert adc == pytest.approx(10.0 + 1099 / 1000)  # extrapolated back from the newest block's stamp
    assert ring.overruns == 0


def test_ring_buffer_skips_ahead_when_the_reader_falls_behind():
    ring = RingBuffer(capacity=1000, channels=1, rate=1000)
    for i in range(10):
        ring.write(np.full(100, i, dtype=np.float32), adc_time=float(i) / 10)
    got, adc = ring.read(100, max_behind=300)
    assert ring.overruns == 1
    assert got[0, 0] == 7.0  # the three newest blocks remain: 7, 8, 9
    assert adc == pytest.approx(0.799)


def test_ring_buffer_wait_wakes_on_write():
    ring = RingBuffer(capacity=100, channels=1, rate=1000)
    threading.Timer(0.05, lambda: ring.write(np.ones(10, dtype=np.float32), 1.0)).start()
    assert ring.wait(5.0) is True
    assert ring.available() == 10


def test_stamps_ignore_callbacks_that_start_late():
    # Host clock = perf_counter - 1000; blocks of 10 ms; some callbacks run up to 8 ms late
    # (waiting for the interpreter lock). Stamps must follow the host's ADC times regardless.
    clock = StampClock(rate=48000)
    rng = np.random.default_rng(0)
    for k in range(200):
        host_now = 5.0 + k * 0.01
        late = rng.choice([0.0, 0.0005, 0.003, 0.008])
        adc = clock.stamp(host_now + 1000.0 + late, host_now, host_now - 0.01, 480)
        if k > 5:
            assert adc == pytest.approx(host_now - 0.01 + 1000.0, abs=1e-4)


def test_stamps_without_host_times_use_the_frame_clock():
    clock = StampClock(rate=1000, latency=0.004)
    stamps = [clock.stamp(100.0 + 0.01 * (k + 1) + (0.006 if k % 3 else 0.0), 0.0, 0.0, 10) for k in range(50)]
    # Block k's first frame was captured at 100 + 0.01 k, minus the device latency.
    assert stamps[-1] == pytest.approx(100.0 + 0.49 - 0.004, abs=1e-4)  # (allowing the drift creep)
    assert np.allclose(np.diff(stamps), 0.01, atol=1e-4)
    clock.reset()  # after an overflow the next observation is taken as it is
    assert clock.stamp(200.0, 0.0, 0.0, 10) == pytest.approx(200.0 - 0.01 - 0.004)


# --- finding a device ---------------------------------------------------------------------------------

DEVICES = [
    DeviceInfo(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "ALSA", 2, 44100.0, is_default=False),
    DeviceInfo(3, "Scarlett 2i2 USB: Audio (hw:1,0)", "ALSA", 2, 48000.0, is_default=False),
    DeviceInfo(5, "default", "ALSA", 32, 44100.0, is_default=True),
    DeviceInfo(9, "Scarlett 2i2 USB", "JACK Audio Connection Kit", 2, 48000.0),
]


def test_find_device_by_index_name_and_default():
    assert find_input_device(None, DEVICES).index == 5
    assert find_input_device(3, DEVICES).index == 3
    assert find_input_device("9", DEVICES).index == 9
    assert find_input_device("scarlett", DEVICES).index == 3  # default host API first
    assert find_input_device("Scarlett 2i2 USB", DEVICES).index == 9  # an exact name wins
    assert find_input_device("usb (jack", DEVICES).index == 9  # "name (host api)" works too


def test_unknown_device_names_the_choices():
    with pytest.raises(AudioDeviceError, match=r"no audio input device matches 'Motu'.*Scarlett"):
        find_input_device("Motu", DEVICES)
    with pytest.raises(AudioDeviceError, match="index 7"):
        find_input_device(7, DEVICES)
    with pytest.raises(AudioDeviceError, match="no audio input device found"):
        find_input_device(None, [])


def test_parse_channel():
    assert parse_channel("mix") is None and parse_channel(None) is None and parse_channel("0") is None
    assert parse_channel("2") == 2
    with pytest.raises(AudioDeviceError, match="--channel"):
        parse_channel("left")


# --- files ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clicks() -> tuple[np.ndarray, np.ndarray]:
    return click_track(44100, 120.0, 6.0, start=0.25)


@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_audio_formats_decode_and_analyse(tmp_path, clicks, fmt, subtype):
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    x, _ = clicks
    stereo = np.stack([x, 0.5 * x], axis=1)
    path = tmp_path / f"clicks.{fmt.lower()}"
    sf.write(path, stereo, 44100, format=fmt, subtype=subtype)
    data, rate = load_audio(path)
    assert rate == 44100 and data.shape[1] == 2
    assert abs(len(data) - len(x)) < 44100 * 0.1  # MP3 pads a little
    res = analyze_array(to_mono(data), rate)
    assert res.final_bpm == pytest.approx(120.0, rel=0.01)
    assert to_mono(data, channel=2).max() == pytest.approx(0.5 * data[:, 0].max(), rel=0.05)


def test_formats_libsndfile_cannot_read_are_decoded_by_ffmpeg_through_pyav(tmp_path, clicks):
    av = pytest.importorskip("av")
    x, _ = clicks
    path = tmp_path / "clicks.m4a"  # AAC in MP4: not a libsndfile format
    with av.open(str(path), "w") as c:
        stream = c.add_stream("aac", rate=44100, layout="stereo")
        stereo = np.ascontiguousarray(np.stack([x, 0.5 * x]).astype(np.float32))
        for start in range(0, stereo.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(stereo[:, start : start + 1024], format="fltp", layout="stereo")
            frame.sample_rate = 44100
            c.mux(stream.encode(frame))
        c.mux(stream.encode(None))
    with open_audio(path, block_frames=777) as reader:
        assert (reader.rate, reader.channels) == (44100, 2)
        assert abs(reader.frames - len(x)) < 44100 * 0.1  # as the container declares it
        data = np.concatenate(list(reader.blocks(5000)))
    assert abs(len(data) - len(x)) < 44100 * 0.1  # AAC pads a little
    assert analyze_array(to_mono(data), 44100).final_bpm == pytest.approx(120.0, rel=0.01)
    # Damage in the middle: the packets FFmpeg cannot decode play as silence, the rest keeps its time.
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.m4a"
    damaged.write_bytes(bytes(raw))
    with open_audio(damaged) as reader:
        rest = np.concatenate(list(reader.blocks()))
        notes = reader.notes()
    assert len(rest) == len(data)
    assert len(notes) == 1 and notes[0].startswith("damaged.m4a: ") and "damaged packet(s) played as silence" in notes[0]


def test_bad_audio_files_are_one_clear_error(tmp_path):
    with pytest.raises(AudioFileError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioFileError, match="is not a file"):
        load_audio(tmp_path)
    junk = tmp_path / "song.mp3"
    junk.write_bytes(b"ID3 this is not audio" * 50)
    with pytest.raises(AudioFileError, match="not a supported or intact audio file"):
        load_audio(junk)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), dtype=np.float32), 44100)
    with pytest.raises(AudioFileError, match="no audio"):
        load_audio(empty)
    with pytest.raises(AudioFileError, match="channel"):
        to_mono(np.zeros((10, 2), dtype=np.float32), channel=3)


# --- sources and the engine ------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.items: list[Features] = []

    def __call__(self, f: Features) -> None:
        self.items.append(f)


def test_file_source_plays_in_real_time_and_the_show_goes_on_after_the_end(tmp_path):
    x, clicks_t = click_track(RATE, 120.0, 1.2, start=0.2)
    path = tmp_path / "short.wav"
    sf.write(path, x, RATE)
    rec = Recorder()
    engine = AudioEngine(FileSource(path), on_features=rec)
    t0 = time.perf_counter()
    engine.start()
    assert engine.ended.wait(10.0)
    wall = time.perf_counter() - t0
    time.sleep(0.3)  # silence hops after the end
    engine.stop()
    assert engine.restarts == 0
    assert wall >= 1.2 - 0.05  # never faster than real time
    live = [f for f in rec.items if f.connected]
    after = [f for f in rec.items if not f.connected]
    assert len(live) == int(1.2 / 0.01)
    # Each hop is stamped when its newest sample is due, and published only after that.
    adc = np.array([f.adc_time for f in live])
    assert np.allclose(np.diff(adc), 0.01)
    assert all(f.published_at >= f.adc_time for f in live)
    # Onsets at the clicks, on the file's own timeline.
    mid = live[0].band_names.index("mid")
    on = adc[[f.onsets[mid] for f in live]] - adc[0] + 0.01
    assert len(on) == len(clicks_t)
    assert np.all((on - clicks_t >= 0) & (on - clicks_t <= 0.021))
    # After the end the engine keeps publishing, decaying to rest.
    assert len(after) >= 10
    assert after[-1].adc_time > after[0].adc_time
    assert max(after[-1].bands) < max(live[-10].bands) or max(live[-10].bands) == 0.0


def test_engine_forwards_performer_controls_to_the_beat_clock():
    engine = AudioEngine(DemoSource(rate=RATE))
    engine.start()
    try:
        now = time.perf_counter()
        for i in range(4):
            engine.tap(now + i * 0.5)  # stamped taps: 120 BPM whenever they are processed
        deadline = time.monotonic() + 5
        while engine.latest().tempo_source != "tap" and time.monotonic() < deadline:
            time.sleep(0.02)
        f = engine.latest()
        assert f.tempo_source == "tap" and f.bpm == pytest.approx(120.0)
        engine.double()
        engine.set_bpm(90.0)
        time.sleep(0.1)
        assert engine.latest().bpm == pytest.approx(90.0)
        engine.follow_audio()
        time.sleep(0.1)
        assert engine.latest().tempo_source in ("none", "audio")
        assert engine.latest().connected
    finally:
        engine.stop()
    assert engine.restarts == 0
    assert engine.stats.hops > 10
    with pytest.raises(ValueError):
        engine.set_bpm(0.0)


def test_latest_is_a_snapshot_readers_can_keep():
    engine = AudioEngine(ArraySource(np.zeros(RATE, dtype=np.float32), RATE, "zeros"))
    first = engine.latest()  # before start: a rest snapshot, never None
    assert first.bands == (0.0,) * len(first.band_names) and not first.beat
    engine.start()
    time.sleep(0.15)
    a = engine.latest()
    time.sleep(0.1)
    b = engine.latest()
    engine.stop()
    assert b.hop_index > a.hop_index  # newer snapshots replaced it...
    with pytest.raises(AttributeError):
        a.bpm = 1.0  # ...and the one we hold never changes under us


def test_a_file_with_invalid_samples_plays_as_silence_said_once_and_counted(tmp_path):
    x, _ = click_track(RATE, 120.0, 1.5, start=0.25)
    x[RATE // 2 : RATE // 2 + 100] = np.nan
    x[RATE : RATE + 50] = -np.inf
    path = tmp_path / "damaged.wav"
    sf.write(path, x, RATE, subtype="FLOAT")
    said: list[str] = []
    rec = Recorder()
    engine = AudioEngine(FileSource(path, on_status=said.append), on_features=rec)
    engine.start()
    assert engine.ended.wait(10.0)
    engine.stop()
    assert engine.restarts == 0
    assert said == ["damaged.wav: 150 invalid sample(s) (NaN, infinity or beyond ±1000) so far, treated as silence"]
    assert rec.items[-1].bad_samples == 150  # for the HUD
    assert all(np.isfinite(f.bands).all() and np.isfinite(f.loudness) for f in rec.items)
    # The clicks after the damage still light the bands: the show did not fade out for good.
    assert max(max(f.bands) for f in rec.items if f.connected and f.adc_time - rec.items[0].adc_time > 1.1) > 0.3


def test_an_analyzer_that_raises_is_restarted_shown_and_the_sound_keeps_flowing():
    """Fault injection: the analyzer fails on its 30th hop; the supervisor logs it, raises an
    alarm, and the capture thread carries on with a fresh analyzer on the same source."""
    from vjgan.alarms import AlarmBoard
    from vjgan.audio import analysis
    from vjgan.supervise import Supervisor

    calls = {"n": 0}
    real = analysis.Analyzer.process

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 30:
            raise FloatingPointError("injected fault in the analyzer")
        return real(self, *args, **kwargs)

    board = AlarmBoard()
    supervisor = Supervisor(board)
    engine = AudioEngine(DemoSource(rate=RATE))
    analysis.Analyzer.process = flaky
    try:
        engine.start(supervisor)
        deadline = time.monotonic() + 10
        while calls["n"] < 80 and time.monotonic() < deadline:
            time.sleep(0.02)
        hops_after = engine.latest().hop_index
    finally:
        analysis.Analyzer.process = real
        engine.stop()
        supervisor.stop()
    assert calls["n"] >= 80, "the capture thread did not come back"
    assert engine.restarts == 1
    assert [a.text for a in board.shown()] == ["AUDIO ANALYSIS RESTARTED (1)"]
    assert hops_after > 0 and engine.latest().connected
