"""W+ keyframes in the latent engine: files kept row by row, named directions, and the leash that
keeps a portrait itself over a long set."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from vjgan.audio.features import rest_features
from vjgan.config import load_preset
from vjgan.errors import UserError
from vjgan.gan.load import load_generator
from vjgan.motion.config import MotionConfig, MotionConfigError, layer_rows, with_keyframe_files
from vjgan.motion.directions import compute_latent_space, model_hash
from vjgan.motion.keyframe_files import save_keyframes
from vjgan.motion.latent_files import resolve_latents
from vjgan.motion.latents import LatentEngine, as_wplus, leash
from vjgan.motion.params import ParamStore

CONFORMANCE = Path(__file__).parent / "data" / "conformance"
BANDS = ("sub", "bass", "lowmid", "mid", "highmid", "high")


@pytest.fixture(scope="module")
def G():
    return load_generator(CONFORMANCE / "sg2ada_64px.pkl")


@pytest.fixture(scope="module")
def space(G):
    return compute_latent_space(G, samples=4000, components=8)


@pytest.fixture(scope="module")
def portrait(G, space) -> np.ndarray:
    """A 'projected' W+: every row its own, some rows outside the ball the drift keeps to."""
    rng = np.random.default_rng(5)
    rows = space.w_avg + rng.standard_normal((G.num_ws, G.w_dim)).astype(np.float32) * space.stdevs.mean()
    rows[-1] = space.w_avg + (rows[-1] - space.w_avg) * 3 * space.radius / np.linalg.norm(rows[-1] - space.w_avg)
    return rows.astype(np.float32)


def features(t: float, rng: np.random.Generator, bpm: float = 124.0):
    base = rest_features(BANDS, adc_time=t)
    period = 60.0 / bpm
    bands = tuple(float(v) for v in rng.random(len(BANDS)) ** 0.5)
    onsets = tuple(bool(v) for v in rng.random(len(BANDS)) < 0.05)
    return dataclasses.replace(base, bands=bands, onsets=onsets, loudness=float(rng.random()), bpm=bpm,
                               beat_period=period, beat_time=t - (t % period), gated=False)


def portrait_motion(**motion) -> MotionConfig:
    routes = [
        {"name": "sway", "source": "beat.sin", "target": "direction", "layers": "coarse", "direction": 0, "gain": 2.0},
        {"name": "expression", "source": "band.bass", "target": "direction", "layers": "middle", "direction": 1, "gain": 2.0},
        {"name": "breath", "source": "loudness", "target": "expressiveness", "layers": "coarse+middle", "gain": 1.0},
        {"name": "kick", "source": "onset.bass", "target": "snap", "gain": 1.0},
    ]
    return MotionConfig.from_dict({"leash": 0.3, "wander": 1.0, "max_speed": 20.0, "smoothing_s": 0.0, **motion},
                                  {"files": ["me.npz"], "seeds": []}, routes)


def test_the_leash_holds_over_a_long_set(G, space, portrait) -> None:
    """Twenty minutes of music at 30 fps, every knob at its loudest: the portrait moves, on the
    routed rows and directions only, and never strays past the leash."""
    cfg = portrait_motion()
    engine = LatentEngine(space, portrait[None], G.num_ws, 9, cfg)
    store = ParamStore(engine.param_specs())
    for spec in engine.param_specs():
        if spec.name.startswith("gain."):
            store.set(spec.name, spec.maximum)
    store.set("drift.wander", 1.0)
    store.set("expressiveness.max", 4.0)
    params = store.snapshot().values
    limit = 0.3 * space.radius
    moved_rows = layer_rows("coarse+middle", G.num_ws)
    still_rows = [r for r in range(G.num_ws) if r not in moved_rows]
    # What a row may move along: its routed direction(s) and its own distance from the average.
    basis = {r: [space.components[0] if r < 4 else space.components[1], portrait[r] - space.w_avg] for r in moved_rows}
    rng = np.random.default_rng(11)
    fps, seconds = 30, 20 * 60
    worst, reach, residual = 0.0, 0.0, 0.0
    for i in range(fps * seconds):
        t = i / fps
        out = engine.step(t, 1 / fps, features(t, rng), params)
        dev = out.ws - portrait
        dist = np.linalg.norm(dev, axis=-1)
        worst = max(worst, float(dist.max()))
        reach = max(reach, float(dist[moved_rows].min()))
        if i % 97 == 0:
            assert np.all(out.ws[still_rows] == portrait[still_rows])
            for r in moved_rows:
                q, _ = np.linalg.qr(np.stack(basis[r], axis=1))
                residual = max(residual, float(np.linalg.norm(dev[r] - q @ (q.T @ dev[r]))))
    assert worst <= limit * (1 + 1e-5)  # the leash, never passed
    assert reach > 0.5 * limit  # and the motion really pulls at it
    assert residual < 1e-3 * limit  # nothing but the routed directions


def test_leash_is_a_live_parameter_and_zero_freezes_the_face(G, space, portrait) -> None:
    engine = LatentEngine(space, portrait[None], G.num_ws, 9, portrait_motion())
    store = ParamStore(engine.param_specs())
    assert store.get("motion.leash") == pytest.approx(0.3)
    store.set("motion.leash", 0.0)
    rng = np.random.default_rng(0)
    for i in range(60):
        out = engine.step(i / 30, 1 / 30, features(i / 30, rng), store.snapshot().values)
    np.testing.assert_array_equal(out.ws, portrait)
    unleashed = LatentEngine(space, portrait[None], G.num_ws, 9, portrait_motion(leash=0.0))
    assert "motion.leash" not in {s.name for s in unleashed.param_specs()}


def test_leash_function() -> None:
    anchor = np.zeros((3, 4))
    ws = np.array([[0.1, 0, 0, 0], [0, 0.8, 0, 0], [0, 0, 1.5, 0]])
    out = leash(ws, anchor, 1.0)
    np.testing.assert_allclose(out[0], ws[0])  # inside the knee: untouched
    assert 0.5 < np.linalg.norm(out[1]) < 0.8 and np.linalg.norm(out[2]) < 1.0
    assert np.linalg.norm(out[2]) > np.linalg.norm(out[1])  # still monotonic
    assert np.linalg.norm(leash(np.array([[100.0, 0, 0, 0]]), anchor[:1], 1.0)) <= 1.0
    np.testing.assert_array_equal(leash(ws, anchor, 0.0), anchor)


def test_wplus_keyframes_play_every_row_as_given(G, space, portrait) -> None:
    cfg = MotionConfig.from_dict({"wander": 0.0, "smoothing_s": 0.0}, {"seeds": [1]}, [])
    engine = LatentEngine(space, portrait[None], G.num_ws, 9, cfg)
    out = engine.step(0.0, 1 / 30, None, ParamStore(engine.param_specs()).snapshot().values)
    np.testing.assert_allclose(out.ws, portrait, atol=1e-6)  # not averaged, not folded into the ball
    seeds = np.random.default_rng(0).standard_normal((2, G.w_dim)).astype(np.float32)
    assert as_wplus(seeds, G.num_ws).shape == (2, G.num_ws, G.w_dim)
    np.testing.assert_array_equal(as_wplus(seeds, G.num_ws)[1, 7], seeds[1])
    engine.capture_keyframe()
    np.testing.assert_allclose(engine.keyframes[1], out.ws)  # the whole W+ on screen is kept


def test_a_route_follows_a_named_direction(G, space, portrait) -> None:
    direction = np.zeros((G.num_ws, G.w_dim), dtype=np.float32)
    direction[4:8] = np.random.default_rng(2).standard_normal((4, G.w_dim))
    cfg = MotionConfig.from_dict({"wander": 0.0, "smoothing_s": 0.0, "max_speed": 20.0}, {"seeds": [1]},
                                 [{"name": "smile", "source": "band.bass", "target": "direction", "layers": "middle",
                                   "direction": "smile.npz", "gain": 1.0}])
    engine = LatentEngine(space, portrait[None], G.num_ws, 9, cfg, {"smile.npz": direction})
    f = dataclasses.replace(rest_features(BANDS), bands=(0, 1.0, 0, 0, 0, 0), gated=False)
    params = ParamStore(engine.param_specs()).snapshot().values
    for i in range(30):
        out = engine.step(i / 30, 1 / 30, f, params)
    np.testing.assert_allclose(out.ws, portrait + direction, atol=1e-4)  # gain 1, full level: all the way to B
    with pytest.raises(ValueError, match="was not loaded"):
        LatentEngine(space, portrait[None], G.num_ws, 9, cfg)
    with pytest.raises(MotionConfigError, match="must be a .npz"):
        MotionConfig.from_dict(None, None, [{"name": "x", "source": "beat", "target": "direction", "direction": "smile.txt"}])


def test_preset_files_resolve_for_their_model_only(G, tmp_path: Path, portrait) -> None:
    digest = model_hash(G)
    save_keyframes(tmp_path / "me.npz", portrait, digest, "projection")
    np.save(tmp_path / "old.npy", portrait.mean(axis=0))
    smile = np.ones((G.num_ws, G.w_dim), dtype=np.float32)
    save_keyframes(tmp_path / "smile.npz", smile, digest, "direction")
    cfg = MotionConfig.from_dict(None, {"seeds": [3], "files": ["me.npz", "old.npy"]},
                                 [{"name": "s", "source": "beat", "target": "direction", "direction": "smile.npz"}])
    latents = resolve_latents(G, cfg, tmp_path)
    assert latents.keyframes.shape == (3, G.num_ws, G.w_dim)
    np.testing.assert_array_equal(latents.keyframes[1], portrait)
    np.testing.assert_allclose(latents.keyframes[2], np.broadcast_to(portrait.mean(axis=0), portrait.shape))
    np.testing.assert_array_equal(latents.directions["smile.npz"], smile)
    other = load_generator(CONFORMANCE / "sg3repo_sg2_32px.pkl")
    with pytest.raises(UserError, match="me.npz was made for another model"):
        resolve_latents(other, cfg, tmp_path)
    swapped = MotionConfig.from_dict(None, {"files": ["smile.npz"]}, [])
    with pytest.raises(UserError, match="holds a direction, not a keyframe"):
        resolve_latents(G, swapped, tmp_path)


def test_living_portrait_preset_plays_a_given_portrait(G, tmp_path: Path, portrait, monkeypatch) -> None:
    preset = load_preset("living-portrait")
    assert preset.motion.leash > 0
    routes = {r.source: r for r in preset.motion.routes}
    assert routes["beat.sin"].target == "direction" and "coarse" in routes["beat.sin"].layers  # the beat sways the pose
    assert routes["band.bass"].target in ("direction", "expressiveness")  # the bass drives expression
    assert routes["loudness"].target == "expressiveness"  # loudness breathes
    save_keyframes(tmp_path / "me.npz", portrait, model_hash(G), "projection")
    monkeypatch.chdir(tmp_path)
    motion = with_keyframe_files(preset.motion, ["me.npz"])  # as typed on a command line
    assert motion.keyframes.seeds == () and Path(motion.keyframes.files[0]).is_absolute()
    latents = resolve_latents(G, motion, preset.path.parent)
    np.testing.assert_array_equal(latents.keyframes, portrait[None])
    assert math.isclose(motion.leash, preset.motion.leash)


def test_render_plays_a_projected_keyframe_and_refuses_another_models(G, tmp_path: Path, monkeypatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import av
    import soundfile as sf

    from vjgan.cli import main

    monkeypatch.setenv("VJGAN_CACHE_DIR", str(tmp_path / "cache"))
    tiny = load_generator(CONFORMANCE / "sg3repo_sg2_32px.pkl")
    rng = np.random.default_rng(1)
    me = save_keyframes(tmp_path / "me.npz", tiny.w_avg.numpy() + rng.standard_normal((tiny.num_ws, tiny.w_dim)),
                        model_hash(tiny), "projection")
    t = np.arange(int(1.5 * 22050)) / 22050
    sf.write(tmp_path / "beat.wav", (0.5 * np.sin(2 * np.pi * 60 * t) * (t % 0.5 < 0.1)).astype(np.float32), 22050)
    common = [str(tmp_path / "beat.wav"), "--model", str(CONFORMANCE / "sg3repo_sg2_32px.pkl"), "--preset",
              "living-portrait", "--fps", "10", "--no-gl", "--quiet"]
    out = tmp_path / "me.mp4"
    assert main(["render", *common, "--out", str(out), "--keyframes", str(me)]) == 0
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 15
    capsys.readouterr()
    other = save_keyframes(tmp_path / "other.npz", np.zeros((G.num_ws, G.w_dim)), model_hash(G), "projection")
    code = main(["render", *common, "--out", str(tmp_path / "no.mp4"), "--keyframes", str(other)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "other.npz was made for another model" in err[0], err
    assert not (tmp_path / "no.mp4").exists()
