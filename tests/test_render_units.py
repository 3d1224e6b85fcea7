"""The pieces of `vjgan render` one by one: clock arithmetic, colour, codecs, soundtrack, the
analyzer feed, batched generation, the post stage, the writer and the progress line."""

from __future__ import annotations

import argparse
import ctypes.util
import io
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from vjgan.audio.config import AnalysisConfig
from vjgan.audio.files import open_audio
from vjgan.audio.offline import ArrayStream, analyze_array
from vjgan.config import DisplayConfig
from vjgan.display.flash import FlashSafetyConfig, count_changes
from vjgan.display.inputs import DisplayInputs
from vjgan.errors import UserError
from vjgan.gan.networks import Generator, GeneratorConfig
from vjgan.render.cli import add_render_parser, options_from_args
from vjgan.render.codecs import (CONTAINERS, VideoSettings, audio_settings, container_for, hardware_first, profile_for,
                                 resolve_video_codec)
from vjgan.render.colour import rgb_to_yuv420p, yuv420p_to_rgb
from vjgan.render.encode import VideoFile
from vjgan.render.feed import FeatureFeed
from vjgan.engine.synth import Synthesizer
from vjgan.render.options import parse_fps, parse_size, parse_time
from vjgan.render.post import GLPost, TensorPost
from vjgan.render.progress import Progress, format_clock, format_progress
from vjgan.render.soundtrack import Soundtrack
from vjgan.render.timeline import Timeline, plan_timeline

# -- the file's clock -------------------------------------------------------------------------------


@pytest.mark.parametrize("fps,rate,hop", [(Fraction(30), 48000, 480), (Fraction(30000, 1001), 44100, 441),
                                          (Fraction(24), 22050, 220), (Fraction(60), 48000, 480)])
def test_hops_before_each_frame_are_exact(fps: Fraction, rate: int, hop: int) -> None:
    tl = Timeline(fps, rate, hop, 0, 5000)
    for k in range(0, 5000, 7):
        t = Fraction(k) / fps
        n = tl.hops_before(k)
        assert Fraction(n * hop, rate) <= t < Fraction((n + 1) * hop, rate)  # the last hop heard by then


@pytest.mark.parametrize("fps", [Fraction(30), Fraction(30000, 1001), Fraction(24000, 1001), Fraction(25)])
def test_audio_is_cut_on_the_frame_grid_without_drift(fps: Fraction) -> None:
    rate = 44100
    tl = plan_timeline(fps, rate, 441, total_samples=rate * 600, start_s=61.3, duration_s=120.0)
    ends = [tl.audio_end_after(i) for i in range(tl.frames + 1)]
    assert ends[0] == 0 and ends[-1] == tl.audio_samples
    per_frame = np.diff(ends)
    assert np.all(np.abs(per_frame - rate / fps) < 1)  # each frame's sound: its exact length, rounded
    for i in range(0, tl.frames + 1, 97):  # and no drift, however long the render
        exact = Fraction((tl.first_frame + i) * rate) / fps - Fraction(tl.first_frame * rate) / fps
        assert abs(ends[i] - exact) <= 1


def test_plan_snaps_the_start_to_a_frame_and_stops_at_the_end_of_the_file() -> None:
    tl = plan_timeline(Fraction(30), 48000, 480, total_samples=48000 * 10, start_s=1.01)
    assert tl.first_frame == 30 and tl.frames == 270  # 1.01 s is nearest frame 30; runs to the end
    tl = plan_timeline(Fraction(30), 48000, 480, total_samples=48000 * 10 + 1)
    assert tl.frames == 301  # a partial last frame is kept (the soundtrack is padded with silence)
    tl = plan_timeline(Fraction(30), 48000, 480, total_samples=48000 * 10, start_s=8.0, duration_s=60.0)
    assert tl.end_frame == 300  # a duration past the end stops at the end
    with pytest.raises(UserError, match="past the end"):
        plan_timeline(Fraction(30), 48000, 480, total_samples=48000 * 10, start_s=10.0)


def test_option_parsing() -> None:
    assert parse_fps("30") == 30
    assert parse_fps("29.97") == Fraction(30000, 1001)
    assert parse_fps("23.976") == Fraction(24000, 1001)
    assert parse_fps("30000/1001") == Fraction(30000, 1001)
    for bad in ("0", "fast", "1/0", "1000"):
        with pytest.raises(UserError, match="--fps"):
            parse_fps(bad)
    assert parse_size("1920x1080") == (1920, 1080)
    assert parse_size("1080×1920") == (1080, 1920)
    for bad in ("1921x1080", "big", "8x8", "1920x1080x3"):
        with pytest.raises(UserError, match="--size"):
            parse_size(bad)
    assert parse_time("90") == 90 and parse_time("1:30.5") == 90.5 and parse_time("1:02:03") == 3723
    with pytest.raises(UserError):
        parse_time("-1")


def test_cpu_renders_leave_cores_to_the_encoder(monkeypatch) -> None:
    from vjgan.engine.device import render_cpu_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert render_cpu_threads(torch.device("cpu")) == 4
    assert render_cpu_threads(torch.device("cuda")) is None  # torch's own choice next to a GPU
    assert render_cpu_threads(torch.device("cpu"), requested=3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "6")
    assert render_cpu_threads(torch.device("cpu")) is None  # the user's environment wins
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert render_cpu_threads(torch.device("cpu")) == 1


def test_cli_wiring_builds_options() -> None:
    parser = argparse.ArgumentParser(prog="vjgan")
    add_render_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["render", "song.wav", "--out", "song.mp4", "--size", "1080x1920", "--fps", "29.97",
                              "--start", "1:00", "--duration", "15", "--seed", "3", "--codec", "nvenc",
                              "--quality", "19", "--batch", "16", "--timings"])
    opts = options_from_args(args)
    assert opts.size == (1080, 1920) and opts.fps == Fraction(30000, 1001)
    assert (opts.start, opts.duration, opts.seed) == (60.0, 15.0, 3)
    assert (opts.codec, opts.quality, opts.batch) == ("nvenc", 19.0, 16)
    assert opts.timings and opts.use_gl and args.handler.__name__ == "run_render_command"


# -- colour ----------------------------------------------------------------------------------------


def test_bt709_limited_range_reference_values() -> None:
    colours = torch.tensor([[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8)
    px = colours[:, None, None, :].expand(-1, 2, 2, -1).contiguous()
    yuv = rgb_to_yuv420p(px)  # [5, 3, 2]: Y rows 0-1, then U and V (one sample each)
    y, u, v = yuv[:, 0, 0].tolist(), yuv[:, 2, 0].tolist(), yuv[:, 2, 1].tolist()
    assert y == [235, 16, 63, 173, 32]
    assert u == [128, 128, 102, 42, 240]
    assert v == [128, 128, 240, 26, 118]


def test_players_decode_our_pixels_as_the_colours_we_meant() -> None:
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, 255 - (xx + yy) * 255 / (w + h)], -1).astype(np.uint8)
    yuv = rgb_to_yuv420p(torch.from_numpy(img)[None])[0].numpy()
    from av.video.reformatter import ColorRange, Colorspace

    frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
    # FFmpeg's own conversion, told what the stream is tagged with (BT.709, limited range), as a player is.
    decoded = frame.reformat(format="rgb24", src_colorspace=Colorspace.ITU709, src_color_range=ColorRange.MPEG)
    decoded = decoded.to_ndarray().astype(int)
    assert np.abs(decoded - img).mean() < 2.5
    assert np.abs(yuv420p_to_rgb(torch.from_numpy(yuv)[None])[0].numpy().astype(int) - img).mean() < 2.5
    with pytest.raises(ValueError, match="even"):
        rgb_to_yuv420p(torch.zeros(1, 3, 4, 3, dtype=torch.uint8))


# -- codecs, containers, soundtrack --------------------------------------------------------------


def test_codec_names_aliases_and_containers() -> None:
    mp4, webm = container_for(Path("a.MP4")), container_for(Path("a.webm"))
    assert resolve_video_codec(None, mp4) == "libx264"
    assert resolve_video_codec("h264", mp4) == "libx264"
    assert resolve_video_codec("hevc", mp4) == "libx265"
    if "h264_nvenc" in av.codecs_available:  # in PyAV's wheels from 16 on; opening it needs a GPU
        assert resolve_video_codec("nvenc", mp4) == "h264_nvenc"
    assert resolve_video_codec(None, webm) == "libvpx-vp9"
    with pytest.raises(UserError, match="no such video encoder"):
        resolve_video_codec("h266-deluxe", mp4)
    with pytest.raises(UserError, match="cannot hold"):
        resolve_video_codec("libx264", webm)
    with pytest.raises(UserError, match="must end in"):
        container_for(Path("a.gif"))
    assert set(CONTAINERS) >= {".mp4", ".mov", ".mkv", ".webm"}


def test_encoder_settings_per_family() -> None:
    x264 = VideoSettings("libx264", 1920, 1080, Fraction(30))
    assert x264.options() == {"crf": "18", "preset": "medium"} and x264.bit_rate() is None
    assert VideoSettings("libx264", 64, 64, Fraction(30), quality=0, preset="ultrafast").options() == \
        {"crf": "0", "preset": "ultrafast"}
    nvenc = VideoSettings("h264_nvenc", 1920, 1080, Fraction(30), quality=19)
    assert nvenc.options() == {"rc": "vbr", "tune": "hq", "cq": "19", "preset": "p5"} and nvenc.bit_rate() == 0
    assert profile_for("libvpx-vp9").zero_bit_rate
    generic = VideoSettings("mpeg4", 1920, 1080, Fraction(30))
    assert generic.options() == {} and generic.bit_rate() == int(0.15 * 1920 * 1080 * 30)
    with pytest.raises(UserError, match="--quality"):
        VideoSettings("mpeg4", 64, 64, Fraction(30), quality=20).check()
    with pytest.raises(UserError, match="--encoder-preset turbo: libx264 takes ultrafast"):
        VideoSettings("libx264", 64, 64, Fraction(30), preset="turbo").check()
    VideoSettings("h264_nvenc", 64, 64, Fraction(30), preset="p7").check()
    assert "preset medium" in x264.describe() and "crf 18" in x264.describe()


@pytest.mark.skipif(torch.cuda.is_available(), reason="NVENC may well open on a CUDA machine")
@pytest.mark.skipif("h264_nvenc" not in av.codecs_available, reason="this FFmpeg build has no NVENC")
def test_nvenc_is_tried_first_on_a_gpu_and_libx264_runs_when_it_does_not_open(tmp_path) -> None:
    """The real NVENC is asked to open; here (no NVIDIA driver) it refuses, as on an H100."""
    from vjgan.render.options import RenderOptions
    from vjgan.render.render import open_video

    mp4 = container_for(Path("a.mp4"))
    assert hardware_first(mp4, gpu=False) is None
    assert hardware_first(mp4, gpu=True) == "h264_nvenc"
    assert hardware_first(container_for(Path("a.webm")), gpu=True) is None  # no VP9 NVENC encoder
    video = VideoSettings("libx264", 64, 64, Fraction(30))
    lines: list[str] = []
    opts = RenderOptions(audio=tmp_path / "a.wav", out=tmp_path / "auto.mp4")
    file, ran = open_video(opts, mp4, video, None, None, {}, True, lines.append)
    file.abort()
    assert ran.codec == "libx264"
    assert len(lines) == 1 and lines[0].startswith("encoder: h264_nvenc does not start on this GPU (")
    assert lines[0].endswith("; libx264 instead")
    # Asked for by name, it is the user's choice: no second guess (one line as a UserError).
    asked = RenderOptions(audio=tmp_path / "a.wav", out=tmp_path / "asked.mp4", encoder_preset="veryfast")
    lines.clear()
    file, ran = open_video(asked, mp4, VideoSettings("libx264", 64, 64, Fraction(30), preset="veryfast"), None, None,
                           {}, True, lines.append)
    file.abort()
    assert ran.codec == "libx264" and not lines
    assert not list(tmp_path.glob(".*partial*"))  # nothing left behind by the refused encoder


def soundtrack_of(folder: Path, data: np.ndarray, source_rate: int, rate: int, channels: int,
                  timeline: Timeline) -> Soundtrack:
    """The soundtrack of `data` (frames x channels), written to a float WAV and read back from it."""
    path = folder / f"sound-{len(list(folder.iterdir()))}.wav"
    sf.write(path, data, source_rate, subtype="FLOAT")
    return Soundtrack(open_audio(path), rate, channels, timeline)


def read_in_pieces(track: Soundtrack, sizes: list[int]) -> np.ndarray:
    out, pos, i = [], 0, 0
    while pos < track.length:
        n = min(sizes[i % len(sizes)], track.length - pos)
        out.append(track.read(pos, n))
        pos, i = pos + n, i + 1
    return np.concatenate(out, axis=1)


def test_soundtrack_lengths_channels_and_rates(tmp_path: Path) -> None:
    rate = 44100
    tl = plan_timeline(Fraction(30000, 1001), rate, 441, total_samples=rate * 3, start_s=0.5, duration_s=2.0)
    surround = np.random.default_rng(0).uniform(-1, 1, (rate * 3, 6)).astype(np.float32)
    track = soundtrack_of(tmp_path, surround, rate, rate, 2, tl)
    assert track.length == tl.audio_samples and track.channels == 2
    start = tl.audio_start
    # Front L/R, from the section's start, whatever the pieces the encoder asks for.
    assert np.array_equal(read_in_pieces(track, [1024, 7, 30000]), surround[start : start + tl.audio_samples, :2].T)
    opus = audio_settings("libopus", rate, 1)
    assert (opus.rate, opus.channels) == (48000, 1)  # Opus takes 48 kHz: resampled
    mono = soundtrack_of(tmp_path, surround[:, :1], rate, opus.rate, 1, tl)
    assert mono.channels == 1 and abs(mono.length - tl.frames * 48000 / float(tl.fps)) <= 1
    assert audio_settings("aac", 22050, 2).rate == 22050  # a rate AAC takes is kept
    end = plan_timeline(Fraction(30), rate, 441, total_samples=rate + 100)  # the last frame outlasts the file
    loud = soundtrack_of(tmp_path, np.full((rate + 100, 1), 3.0, np.float32), rate, rate, 1, end)
    tail = loud.read(0, loud.length)
    assert tail.shape == (1, end.audio_samples) and end.audio_samples > rate + 100
    assert tail[0, : rate + 100].max() == 1.0 and tail[0, rate + 100 :].max() == 0.0  # clipped; silence after the end


@pytest.mark.parametrize("source_rate, rate", [(44100, 48000), (192000, 48000), (8000, 48000), (37800, 44100)])
def test_soundtrack_resampled_piece_by_piece_equals_the_whole_file_resampled(tmp_path: Path, source_rate: int,
                                                                             rate: int) -> None:
    from scipy.signal import resample_poly

    x = np.random.default_rng(1).uniform(-0.5, 0.5, (int(source_rate * 2.5), 2)).astype(np.float32)
    tl = plan_timeline(Fraction(25), source_rate, 441, total_samples=len(x), start_s=0.7)
    track = soundtrack_of(tmp_path, x, source_rate, rate, 2, tl)
    g = math.gcd(rate, source_rate)
    up, down = rate // g, source_rate // g
    whole = resample_poly(x, up, down, axis=0).T
    start = track.timeline.audio_start
    got = read_in_pieces(track, [1024, 333, 70000])
    expected = whole[:, start : start + track.length]
    assert np.allclose(got[:, : expected.shape[1]], np.clip(expected, -1, 1), atol=1e-6)
    # Past the file's end only the filter's ring-out (the whole-file resample stops instead), then silence.
    ring_out = 10 * max(up, down) // down + 1  # the reach of scipy's filter, in output samples
    assert np.all(got[:, expected.shape[1] + ring_out :] == 0.0)


def _write(path: Path, video: VideoSettings, frames: int, sound_dir: Path, audio_codec: str = "aac") -> VideoFile:
    container = container_for(path)
    tl = plan_timeline(video.fps, 48000, 480, total_samples=48000 * 2)
    settings = audio_settings(audio_codec, 48000, 2)
    t = np.arange(tl.audio_samples) / 48000
    sound = np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1).astype(np.float32) * 0.5
    track = soundtrack_of(sound_dir, np.concatenate([sound, np.zeros((48000 * 2 - len(sound), 2), np.float32)]),
                          48000, settings.rate, settings.channels, tl)
    f = VideoFile(path, container, video, track, settings, {"comment": "test"})
    picture = rgb_to_yuv420p(torch.full((1, video.height, video.width, 3), 200, dtype=torch.uint8))[0].numpy()
    for _ in range(frames):
        f.write(picture)
    return f


@pytest.mark.parametrize("name,codec,audio", [("a.webm", "libvpx-vp9", "libopus"), ("a.mkv", "libx264", "aac"),
                                              ("a.mov", "libx264", "aac")])
def test_writer_makes_playable_files_in_each_container(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                                       name: str, codec: str, audio: str) -> None:
    path = tmp_path / name
    f = _write(path, VideoSettings(codec, 32, 24, Fraction(25), preset=None), frames=20,
               sound_dir=tmp_path_factory.mktemp("sound"), audio_codec=audio)
    f.finish()
    with av.open(str(path)) as c:
        assert len([x for x in c.decode(video=0)]) == 20
    with av.open(str(path)) as c:
        samples = sum(x.samples for x in c.decode(audio=0))
    assert abs(samples / 48000 - 20 / 25) < 0.05
    assert list(tmp_path.iterdir()) == [path]  # the temporary file became the output


def test_an_existing_video_survives_until_the_new_one_is_complete(tmp_path: Path,
                                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(b"the old video")
    sound = tmp_path_factory.mktemp("sound")
    f = _write(path, VideoSettings("libx264", 32, 24, Fraction(25)), frames=5, sound_dir=sound)
    assert path.read_bytes() == b"the old video"
    f.abort()
    assert path.read_bytes() == b"the old video" and list(tmp_path.iterdir()) == [path]
    f = _write(path, VideoSettings("libx264", 32, 24, Fraction(25)), frames=5, sound_dir=sound)
    f.finish()
    with av.open(str(path)) as c:
        assert c.streams.video[0].frames == 5


# -- the analyzer on the file's clock ------------------------------------------------------------


def test_feed_is_the_live_analyzer_and_tracks_every_onset_between_frames() -> None:
    rate = 48000
    x = np.zeros(rate * 2, np.float32)
    rng = np.random.default_rng(0)
    for t0 in (0.5, 1.0, 1.5):  # broadband clicks
        i = int(t0 * rate)
        x[i : i + 480] = rng.uniform(-0.9, 0.9, 480) * np.exp(-np.arange(480) / 100.0)
    config = AnalysisConfig()
    reference = analyze_array(x, rate, config)
    feed = FeatureFeed(ArrayStream(x, rate), config)
    tl = Timeline(Fraction(30), rate, feed.hop, 0, 60)
    assert sum(len(v) for v in reference.onsets.values()) >= 3
    for k in range(60):
        t = k / 30
        f = feed.features_until(tl.hops_before(k))
        n = tl.hops_before(k)
        if n:
            assert f.adc_time == pytest.approx(n * feed.hop / rate)  # the newest hop heard by frame k
            assert np.allclose(f.bands, reference.bands[n - 1])  # the same analyzer, hop for hop
        # Every onset up to the frame is known by its time, also those on hops between frames.
        times = feed.onsets.latest()
        for band, onsets in reference.onsets.items():
            heard = [o for o in onsets if o <= t + 1e-9]
            assert times.get(band) == (pytest.approx(heard[-1]) if heard else None)
    past_end = feed.features_until(len(x) // feed.hop + 5)
    assert not past_end.connected


# -- batched generation --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> Generator:
    torch.manual_seed(0)
    G = Generator(GeneratorConfig.from_channel_base(channel_base=512, channel_max=16, img_resolution=16,
                                                    z_dim=16, w_dim=16, mapping_layers=2))
    with torch.no_grad():  # a fresh network's noise strengths are 0; a trained one's are not
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    return G.requires_grad_(False)


def test_every_frame_of_a_batch_gets_its_own_noise_gains(tiny: Generator) -> None:
    gen = Synthesizer(tiny, torch.device("cpu"), live=False)
    w = tiny.mapping(torch.randn(1, tiny.z_dim), None).detach().numpy()[0]
    ws = np.stack([w] * 4)
    gains = np.ones((4, gen.num_layers), np.float32)
    gains[1] = 0.0
    gains[3] = 3.0
    batch = gen.frames(ws, gains)
    assert batch.shape == (4, 16, 16, 4) and batch.dtype == torch.uint8
    for i in range(4):
        single = gen.frames(ws[i : i + 1], gains[i : i + 1])[0]
        assert (batch[i].int() - single.int()).abs().max() <= 1  # the gains of frame i, not of its batch
    assert torch.equal(batch[0], batch[2])
    assert not torch.equal(batch[0], batch[1]) and not torch.equal(batch[0], batch[3])


# -- the post stage ------------------------------------------------------------------------------


def _frames(n: int, size: int = 16, value: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    rgb = torch.randint(0, 256, (n, size, size, 3), generator=g, dtype=torch.uint8) if value is None else \
        torch.full((n, size, size, 3), value, dtype=torch.uint8)
    return torch.cat([rgb, torch.full_like(rgb[..., :1], 255)], dim=-1)


def test_tensor_post_fits_portrait_and_applies_master() -> None:
    post = TensorPost((18, 32), "fit", 1.0, FlashSafetyConfig())
    out = post.process(_frames(1, value=200), [DisplayInputs(time=0.0)])
    assert out.shape == (1, 32, 18, 4)
    assert out[0, :5, :, :3].max() == 0 and out[0, -5:, :, :3].max() == 0  # bars above and below
    assert out[0, 16, 9, 0] == 200
    dim = TensorPost((16, 16), "stretch", 0.5, FlashSafetyConfig())
    half = dim.process(_frames(1, value=200), [DisplayInputs(time=0.0)])
    assert half[0, 8, 8, 0] == 100


def test_tensor_post_holds_a_strobe_to_the_flash_limit() -> None:
    fps = 30
    strobe = torch.cat([_frames(1, value=v) for v in ([0, 255] * 30)])  # 30 Hz black/white: 60 changes in 2 s
    inputs = [DisplayInputs(time=i / fps) for i in range(len(strobe))]
    post = TensorPost((16, 16), "fill", 1.0, FlashSafetyConfig())
    out = post.process(strobe, inputs)
    lin = (out[..., :3].float() / 255.0)
    lin = torch.where(lin <= 0.04045, lin / 12.92, ((lin + 0.055) / 1.055) ** 2.4)
    luminance = (lin @ torch.tensor([0.2126, 0.7152, 0.0722])).mean(dim=(1, 2)).tolist()
    changes = count_changes(luminance, start=0.0)
    times = np.array(changes) / fps
    for t in times:  # no more than 3 large changes in any one second
        assert np.sum((times >= t) & (times < t + 1.0)) <= 3


@pytest.mark.skipif(ctypes.util.find_library("EGL") is None, reason="no libEGL (Debian: libegl1 libegl-mesa0)")
@pytest.mark.parametrize("fit,size", [("fill", (48, 16)), ("fit", (16, 48)), ("stretch", (40, 24))])
def test_gl_post_and_tensor_post_agree(fit: str, size: tuple[int, int]) -> None:
    frames = _frames(6)
    inputs = [DisplayInputs(time=i / 30) for i in range(6)]
    gl = GLPost(size, DisplayConfig(fit=fit), 30.0, FlashSafetyConfig())
    try:
        a = gl.process(frames, inputs).int()
    finally:
        gl.close()
    b = TensorPost(size, fit, 1.0, FlashSafetyConfig()).process(frames, inputs).int()
    assert a.shape == b.shape == (6, size[1], size[0], 4)
    assert (a - b).abs().max() <= 2


@pytest.mark.skipif(ctypes.util.find_library("EGL") is None, reason="no libEGL (Debian: libegl1 libegl-mesa0)")
def test_post_choice_says_which_path_and_why() -> None:
    from vjgan.render.post import make_post

    said: list[str] = []
    gl = make_post((32, 32), DisplayConfig(), 30.0, True, said.append)
    try:
        assert gl.kind == "gl" and "OpenGL" in said[-1]
        software = gl.software
    finally:
        gl.close()
    on_gpu = make_post((32, 32), DisplayConfig(), 30.0, True, said.append, frames_on_gpu=True)
    # GPU frames and no effects: a software rasteriser is skipped for the (identical) tensor path.
    assert on_gpu.kind == ("tensor" if software else "gl")
    on_gpu.close()
    with_effects = make_post((32, 32), DisplayConfig(effects=({"name": "trails"},)), 30.0, True, said.append,
                             frames_on_gpu=True)
    assert with_effects.kind == "gl"  # the look needs GL, whatever it runs on
    with_effects.close()
    said.clear()
    none = make_post((32, 32), DisplayConfig(effects=({"name": "trails"},), flash_limit_per_s=6.0), 30.0, False,
                     said.append)
    assert none.kind == "tensor"
    assert any("photosensitive" in s for s in said) and any("left out" in s and "trails" in s for s in said)


def test_without_any_gl_the_render_still_has_a_picture(monkeypatch) -> None:
    # A machine where no GL context can be made (CI has EGL, so its absence is simulated).
    from vjgan.display.errors import NoGLError
    from vjgan.display.renderer import Renderer
    from vjgan.render.post import make_post

    def no_gl(*args, **kwargs):
        raise NoGLError("no offscreen OpenGL 3.3 context could be created (egl: not found)")

    monkeypatch.setattr(Renderer, "offscreen", classmethod(no_gl))
    said: list[str] = []
    post = make_post((24, 16), DisplayConfig(fit="fill"), 30.0, True, said.append)
    assert post.kind == "tensor" and any("no OpenGL" in s for s in said)
    out = post.process(_frames(2, value=90), [DisplayInputs(time=0.0), DisplayInputs(time=1 / 30)])
    assert out.shape == (2, 16, 24, 4) and int(out[1, 8, 12, 0]) == 90


# -- progress ------------------------------------------------------------------------------------


def test_progress_line_content() -> None:
    assert format_clock(65) == "1:05" and format_clock(3723) == "1:02:03" and format_clock(math.inf) == "--:--"
    line = format_progress(50, 100, 2.0, 25.0)
    assert line == "render [############------------]  50/100 frames (50%)  25.0 fps  1.00x real time  ETA 0:02"
    assert "--x real time" in format_progress(0, 100, 0.0, 30.0, bar=False)


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_prints_lines_to_a_log_and_rewrites_a_terminal_line() -> None:
    clock, log = _Clock(), io.StringIO()
    p = Progress(100, 30.0, stream=log, clock=clock)  # a log: whole lines, every 5 s
    for i in range(1, 101):
        clock.t = i * 0.1
        p.update(i)
    p.close(100)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and 2 <= len(lines) <= 4 and "100/100 frames" in lines[-1]

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    clock, tty = _Clock(), Tty()
    p = Progress(10, 30.0, stream=tty, clock=clock)
    for i in range(1, 11):
        clock.t = i * 0.3
        p.update(i)
    p.message("a note")
    p.close(10)
    text = tty.getvalue()
    assert text.count("\r") >= 10 and "a note\n" in text and text.endswith("\n")
