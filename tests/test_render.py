"""`vjgan render` end to end on the CPU: a synthetic track (kicks and hats) becomes a video.

Every render here is real: the analyzer, the latent engine, a tiny random StyleGAN2, the GL
renderer on Mesa's EGL (or tensors), libx264 and AAC through PyAV. The results are decoded with
PyAV and checked: frame count, duration, the soundtrack's length and sync, that the picture
jumps on the kicks, that a seed repeats exactly, that a section equals the same part of a full
render, the bad-input errors, and that Ctrl-C leaves a playable file.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from vjgan.gan.networks import Generator, GeneratorConfig
from vjgan.gan.own_format import save_generator
from vjgan.cli import main as vjgan_main


def render_main(args: list[str]) -> int:
    return vjgan_main(["render", *args])

RATE = 48000
BPM = 120.0
BEAT = 60.0 / BPM
SECONDS = 3.0
FPS = 24
SIZE = (64, 36)  # not square: the preset's fill crops the model's 32² picture

# A preset owned by these tests, so they do not move when the shipped presets are retuned:
# kicks punch (expressiveness and pose on the bass onset), hats stir the fine layers' noise,
# and the drift between keyframes is slow, so between kicks little moves.
PRESET = """
name = "render-test"
[motion]
max_speed = 8.0
smoothing_s = 0.02
wander = 0.05
[keyframes]
seeds = [1, 2, 3]
seconds_per_keyframe = 30.0
beats_per_keyframe = 64.0
[[routes]]
name = "kick_punch"
source = "onset.bass"
target = "expressiveness"
layers = "all"
gain = 1.5
release_s = 0.15
[[routes]]
name = "kick_pose"
source = "onset.bass"
target = "direction"
layers = "coarse"
direction = 0
gain = 2.0
release_s = 0.15
[[routes]]
name = "hat_noise"
source = "band.high"
target = "noise"
layers = "fine"
gain = 1.0
[display]
fit = "fill"
"""


def kick_times(seconds: float) -> list[float]:
    return [i * BEAT for i in range(int(seconds / BEAT + 1e-9) + 1) if i * BEAT < seconds]


def synth_track(seconds: float, rate: int = RATE) -> np.ndarray:
    """Kicks on the beat (a 150→50 Hz sweep), closed hats on the off-beats; stereo float32."""
    n = int(seconds * rate)
    x = np.zeros(n)
    rng = np.random.default_rng(1)
    for t0 in kick_times(seconds):
        start, length = int(t0 * rate), int(0.25 * rate)
        t = np.arange(length) / rate
        freq = 50.0 + 100.0 * np.exp(-t * 30.0)
        piece = 0.9 * np.sin(2 * np.pi * np.cumsum(freq) / rate) * np.exp(-t * 12.0)
        x[start : start + length] += piece[: max(0, n - start)]
    for t0 in kick_times(seconds):
        start, length = int((t0 + BEAT / 2) * rate), int(0.04 * rate)
        if start + length <= n:
            hat = rng.standard_normal(length) * np.exp(-np.arange(length) / rate * 80.0)
            x[start : start + length] += 0.2 * np.diff(hat, prepend=0.0)  # bright: mostly above 6 kHz
    return np.stack([x, 0.8 * x], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("render")
    torch.manual_seed(0)
    cfg = GeneratorConfig.from_channel_base(channel_base=1024, channel_max=32, img_resolution=32, z_dim=32,
                                            w_dim=32, mapping_layers=2)
    G = Generator(cfg)
    with torch.no_grad():  # a fresh network's noise strengths are 0; a trained one's are not
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    model = save_generator(G, root / "tiny.safetensors")
    audio = root / "groove.wav"
    sf.write(audio, synth_track(SECONDS), RATE)
    long_audio = root / "long.wav"
    sf.write(long_audio, synth_track(40.0), RATE)
    preset = root / "render-test.toml"
    preset.write_text(PRESET, encoding="utf-8")
    return {"root": root, "model": model, "audio": audio, "long": long_audio, "preset": preset}


@pytest.fixture(autouse=True)
def _cache(workspace, monkeypatch) -> None:
    # The latent statistics of the tiny model are computed once and kept in the test's folder.
    monkeypatch.setenv("VJGAN_CACHE_DIR", str(workspace["root"] / "cache"))


def run_render(ws: dict[str, Path], out: Path, *extra: str, audio: Path | None = None) -> int:
    args = [str(audio or ws["audio"]), "--out", str(out), "--model", str(ws["model"]), "--preset", str(ws["preset"]),
            "--fps", str(FPS), "--size", f"{SIZE[0]}x{SIZE[1]}", "--quiet", *extra]
    return render_main(args)


def decode_video(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def decode_audio(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].rate
        return np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1), rate


@pytest.fixture(scope="module")
def rendered(workspace) -> Path:
    out = workspace["root"] / "groove.mp4"
    with pytest.MonkeyPatch.context() as mp:  # module scope: the autouse fixture is not active yet
        mp.setenv("VJGAN_CACHE_DIR", str(workspace["root"] / "cache"))
        assert run_render(workspace, out, "--seed", "7") == 0
    return out


def test_video_has_the_expected_frames_duration_and_soundtrack(rendered) -> None:
    with av.open(str(rendered)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        assert (v.width, v.height) == SIZE
        assert v.average_rate == FPS
        assert v.frames == SECONDS * FPS
        assert float(v.duration * v.time_base) == pytest.approx(SECONDS, abs=1e-3)
        assert float(a.duration * a.time_base) == pytest.approx(SECONDS, abs=1e-3)
        assert a.rate == RATE and a.layout.nb_channels == 2
        assert v.codec_context.colorspace == 1 and v.codec_context.color_range == 1  # tagged BT.709, TV range
    frames = decode_video(rendered)
    assert frames.shape == (SECONDS * FPS, SIZE[1], SIZE[0], 3)
    audio, rate = decode_audio(rendered)
    # Whole AAC frames decode; the container's edit list trims to the exact length.
    assert SECONDS * rate <= audio.shape[1] < SECONDS * rate + 2048


def test_soundtrack_is_in_sync_with_the_source(rendered, workspace) -> None:
    decoded, _ = decode_audio(rendered)
    source, _ = sf.read(workspace["audio"], dtype="float32")
    # The first kick must land on the same sample (AAC's encoder delay is compensated).
    probe = source[: RATE // 2, 0]
    corr = np.correlate(decoded[0, : RATE // 2 + 2000], probe, mode="valid")
    assert int(np.argmax(corr)) == 0
    # And the sound is the source's, not just aligned noise: AAC at its default bit rate is close.
    n = min(decoded.shape[1], len(source))
    err = np.sqrt(np.mean((decoded[0, :n] - source[:n, 0]) ** 2)) / np.sqrt(np.mean(source[:n, 0] ** 2))
    assert err < 0.2


def test_frames_move_more_on_kicks_than_between_them(rendered) -> None:
    frames = decode_video(rendered).astype(np.float32)
    change = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # change[k - 1]: frame k vs k - 1
    times = np.arange(1, len(frames)) / FPS
    on_kick, between = [], []
    for t0 in kick_times(SECONDS)[1:]:  # the first kick coincides with the first frames' settling
        window = (times >= t0) & (times < t0 + 0.1)  # the frames right after the kick
        on_kick.append(change[window].max())
        between.append(change[(times >= t0 + 0.2) & (times < t0 + BEAT - 0.05)])
    quiet = np.median(np.concatenate(between))
    # (With the onset routes on a continuous band source instead, the ratio is about 1.7.)
    assert np.mean(on_kick) > 2.5 * quiet and min(on_kick) > 1.8 * quiet, (on_kick, quiet)


def test_same_seed_gives_identical_frames_and_audio(rendered, workspace) -> None:
    again = workspace["root"] / "again.mp4"
    assert run_render(workspace, again, "--seed", "7") == 0
    assert np.array_equal(decode_video(again), decode_video(rendered))
    assert np.array_equal(decode_audio(again)[0], decode_audio(rendered)[0])
    other = workspace["root"] / "other-seed.mp4"
    threads = torch.get_num_threads()
    assert run_render(workspace, other, "--seed", "8", "--threads", "1") == 0
    assert torch.get_num_threads() == threads  # the render's thread count does not leak into the process
    assert not np.array_equal(decode_video(other), decode_video(rendered))  # the seed is really used


def test_a_section_moves_exactly_as_that_part_of_the_full_render(workspace, monkeypatch) -> None:
    # Spy on the generator (the real one still runs) to see the motion and pictures it made.
    from vjgan.engine.synth import Synthesizer

    made: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    real = Synthesizer.frames

    def spy(self, ws, gains):
        frames = real(self, ws, gains)
        made.append((ws.copy(), gains.copy(), frames.cpu().numpy()))
        return frames

    monkeypatch.setattr(Synthesizer, "frames", spy)

    def run(out: str, *extra: str) -> tuple[np.ndarray, ...]:
        made.clear()
        assert run_render(workspace, workspace["root"] / out, "--no-gl", *extra) == 0
        return tuple(np.concatenate([m[i] for m in made]) for i in range(3))

    full = run("full.mp4")
    part = run("part.mp4", "--start", "1", "--duration", "1.5")
    assert len(part[0]) == 36
    # Analysis and motion ran from the top of the file: w+, noise and pictures are identical.
    # (Stateful display stages, the flash limiter's count and feedback effects, start afresh.)
    for whole, section in zip(full, part):
        assert np.array_equal(section, whole[24:60])
    audio_full, rate = decode_audio(workspace["root"] / "full.mp4")
    audio_part, _ = decode_audio(workspace["root"] / "part.mp4")
    with av.open(str(workspace["root"] / "part.mp4")) as c:
        assert float(c.streams.audio[0].duration * c.streams.audio[0].time_base) == pytest.approx(1.5, abs=1e-3)
    # AAC is lossy and frames differently, so compare the sound's envelope rather than samples.
    n = int(1.5 * rate)
    env = lambda x: np.abs(x[0, :n]).reshape(-1, 480).mean(axis=1)  # noqa: E731
    assert np.corrcoef(env(audio_part), env(audio_full[:, rate:]))[0, 1] > 0.98


def test_gl_and_tensor_paths_give_the_same_picture(workspace) -> None:
    # Lossless H.264 (crf 0), so what is compared is the two post paths, not encoder noise.
    gl, tensor = workspace["root"] / "gl.mkv", workspace["root"] / "tensor.mkv"
    assert run_render(workspace, gl, "--quality", "0") == 0
    assert run_render(workspace, tensor, "--quality", "0", "--no-gl") == 0
    a, b = decode_video(gl).astype(np.float32), decode_video(tensor).astype(np.float32)
    assert a.shape == b.shape
    # Same geometry, sampling and flash limiter; GL filters in 8 bits and chains in half floats.
    diff = np.abs(a - b)
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 4.0, (diff.mean(), np.percentile(diff, 99))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="stages overlap on CUDA only (a CPU render runs them in turn)")
@pytest.mark.parametrize("post", ["--no-gl", "--gl"])
def test_overlapped_stages_give_the_serial_video_frame_for_frame(workspace, post) -> None:
    extra = ("--seed", "5", "--batch", "3") + (("--no-gl",) if post == "--no-gl" else ())
    overlapped, serial = workspace["root"] / f"overlapped{post}.mp4", workspace["root"] / f"serial{post}.mp4"
    assert run_render(workspace, overlapped, *extra) == 0
    assert run_render(workspace, serial, "--serial", *extra) == 0
    a, b = decode_video(overlapped), decode_video(serial)
    assert len(a) == SECONDS * FPS and np.array_equal(a, b)


def test_generation_never_runs_more_than_the_queues_ahead_of_the_encoder(workspace) -> None:
    """The stages' queues are bounded: with a generator much faster than the encoder (a tiny
    model, x264's slow preset), what is generated but not yet encoded stays within the queues'
    room however long the file, so memory stays flat on a two-hour set."""
    from fractions import Fraction

    from vjgan.render.options import RenderOptions
    from vjgan.render.render import render

    batch = 4
    opts = RenderOptions(audio=workspace["long"], out=workspace["root"] / "bounded.mp4", preset=str(workspace["preset"]),
                         model=str(workspace["model"]), fps=Fraction(FPS), size=(320, 180), duration=12.0, batch=batch,
                         encoder_preset="veryslow", use_gl=False, force=True, progress=False)
    result = render(opts, log=lambda line: None)
    assert result.frames == 12 * FPS
    # Room: two batches waiting and one in work at each of generation, post and the encoder.
    room = 3 * 3 * batch
    assert result.most_ahead <= room, result.most_ahead
    assert max(result.queue_depths) <= 2
    # Rather than only testing a queue's maxsize: a generator 3-10x faster than this encoder
    # would otherwise be hundreds of frames ahead by the end.
    assert result.timings.encode > 2 * result.timings.generate, result.timings


def test_a_file_with_nan_and_inf_samples_renders_to_the_end(workspace, capsys) -> None:
    x = synth_track(SECONDS)
    x[RATE : RATE + 100] = np.nan
    x[2 * RATE : 2 * RATE + 100] = np.inf
    audio = workspace["root"] / "damaged.wav"
    sf.write(audio, x, RATE, subtype="FLOAT")
    out = workspace["root"] / "damaged.mp4"
    assert run_render(workspace, out, audio=audio) == 0
    err = capsys.readouterr().err
    assert "damaged.wav: 400 invalid sample(s) (NaN, infinity or beyond ±1000) so far, treated as silence" in err
    assert len(decode_video(out)) == SECONDS * FPS  # every frame, not the first 31
    sound, _ = decode_audio(out)
    assert np.all(np.isfinite(sound)) and np.abs(sound).max() > 0.3


@pytest.mark.parametrize("rate, channels", [(8000, 1), (96000, 8), (192000, 2)])
def test_any_rate_and_channel_count_renders_with_its_soundtrack(workspace, tmp_path, rate, channels) -> None:
    mono = synth_track(1.0, rate)[:, 0]
    audio = tmp_path / f"track-{rate}-{channels}.wav"
    sf.write(audio, np.stack([mono * (1.0 - 0.1 * c) for c in range(channels)], axis=1), rate, subtype="FLOAT")
    out = tmp_path / "v.mp4"
    assert run_render(workspace, out, audio=audio) == 0
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.frames == FPS and a.layout.nb_channels == min(channels, 2)
        assert float(a.duration * a.time_base) == pytest.approx(1.0, abs=1e-3)
        expected_rate = rate if rate <= 96000 else 48000  # AAC's highest rate is 96 kHz: resampled
        assert a.rate == expected_rate


# -- bad input: one line, before any work --------------------------------------------------------

def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("vjgan: ")
    return err[0]


def _bad_input(workspace, out: Path, *args: str, audio: Path | None = None) -> list[str]:
    """Run with a model path that does not exist: an error about the input proves nothing was loaded."""
    missing = workspace["root"] / "missing.safetensors"
    return [str(audio or workspace["audio"]), "--out", str(out), "--model", str(missing),
            "--quiet", *args]


def test_unreadable_audio_is_one_line_before_any_work(workspace, capsys) -> None:
    bad = workspace["root"] / "not-audio.wav"
    bad.write_text("this is not a WAV file\n")
    out = workspace["root"] / "bad-audio.mp4"
    t0 = time.perf_counter()
    assert render_main(_bad_input(workspace, out, audio=bad)) == 2
    line = _one_line_error(capsys)
    assert "not-audio.wav" in line and "cannot read audio file" in line
    assert render_main(_bad_input(workspace, out, audio=workspace["root"] / "nowhere.wav")) == 2
    assert "does not exist" in _one_line_error(capsys)
    assert not out.exists()
    assert time.perf_counter() - t0 < 10


def test_unwritable_output_is_one_line_before_any_work(workspace, capsys) -> None:
    root = workspace["root"]
    assert render_main(_bad_input(workspace, root / "no" / "such" / "folder" / "v.mp4")) == 2
    assert "does not exist" in _one_line_error(capsys)
    assert render_main(_bad_input(workspace, root)) == 2  # a folder, not a file
    assert "is a folder" in _one_line_error(capsys)
    assert render_main(_bad_input(workspace, root / "video.avi")) == 2
    assert "must end in" in _one_line_error(capsys)
    existing = root / "existing.mp4"
    existing.write_bytes(b"keep me")
    assert render_main(_bad_input(workspace, existing)) == 2
    assert "--force" in _one_line_error(capsys)
    assert existing.read_bytes() == b"keep me"
    if os.name == "posix" and os.geteuid() != 0:  # root writes anywhere
        locked = root / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            assert render_main(_bad_input(workspace, locked / "v.mp4")) == 2
            assert "cannot write" in _one_line_error(capsys)
        finally:
            locked.chmod(0o700)


def test_unknown_codec_is_one_line_before_any_work(workspace, capsys) -> None:
    out = workspace["root"] / "codec.mp4"
    assert render_main(_bad_input(workspace, out, "--codec", "no-such-codec")) == 2
    line = _one_line_error(capsys)
    assert "--codec no-such-codec" in line and "libx264" in line  # says what exists
    assert render_main(_bad_input(workspace, out, "--codec", "aac")) == 2
    assert "not a video encoder" in _one_line_error(capsys)
    assert render_main(_bad_input(workspace, workspace["root"] / "v.webm", "--codec", "libx264")) == 2
    assert "cannot hold h264" in _one_line_error(capsys)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="NVENC may well work on a CUDA machine")
def test_hardware_encoder_that_cannot_start_is_one_line_and_leaves_nothing(workspace, capsys) -> None:
    out = workspace["root"] / "nvenc.mp4"
    args = [str(workspace["audio"]), "--out", str(out), "--model", str(workspace["model"]), "--quiet",
            "--codec", "nvenc"]
    assert render_main(args) == 2
    line = _one_line_error(capsys)
    assert "h264_nvenc" in line and "cannot start" in line
    assert not out.exists()
    assert not list(workspace["root"].glob(".nvenc-*"))  # no partial file left behind


# -- Ctrl-C ---------------------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process; Windows delivers Ctrl-C differently")
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_leaves_a_playable_file_of_what_was_rendered(workspace, stop) -> None:
    """With generation, post and encoding on their own threads, a stop still ends in a finished,
    playable file, the soundtrack cut with the picture."""
    import pty

    out = workspace["root"] / f"stopped-{stop.name}.mp4"
    cmd = [sys.executable, "-m", "vjgan", "render", str(workspace["long"]), "--out", str(out),
           "--model", str(workspace["model"]), "--preset", str(workspace["preset"]), "--fps", str(FPS),
           "--size", f"{SIZE[0]}x{SIZE[1]}", "--batch", "4"]
    env = {**os.environ, "VJGAN_CACHE_DIR": str(workspace["root"] / "cache"), "PYTHONUNBUFFERED": "1"}
    # stderr on a pseudo-terminal: the progress line then updates several times a second.
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env,
                            cwd=Path(__file__).resolve().parents[1])
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            done = [int(n) for n in re.findall(rb"\]\s+(\d+)/\d+ frames", seen)]
            if done and max(done) >= 40:
                break
        assert done and max(done) >= 40, seen.decode(errors="replace")
        proc.send_signal(stop)
        proc.wait(timeout=60)
        try:
            while chunk := os.read(master, 4096):
                seen += chunk
        except OSError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode(errors="replace")
    assert proc.returncode == 130, text
    assert "stopped:" in text
    frames = decode_video(out)
    total = 40 * FPS
    assert 40 <= len(frames) < total
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        video_s = float(v.duration * v.time_base)
        audio_s = float(a.duration * a.time_base)
    assert video_s == pytest.approx(len(frames) / FPS, abs=1e-3)
    assert audio_s == pytest.approx(video_s, abs=1.0 / FPS)  # the soundtrack stops with the picture
    assert not list(workspace["root"].glob(f".stopped-{stop.name}-*"))  # the partial file became the output
