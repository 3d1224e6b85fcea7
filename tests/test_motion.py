"""Latent engine, named parameters and the cached latent-space statistics."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from vjgan.audio.features import rest_features
from vjgan.gan.load import load_generator
from vjgan.motion.config import MotionConfig, MotionConfigError, RouteConfig, layer_rows
from vjgan.motion.directions import compute_latent_space, load_or_compute, model_hash
from vjgan.motion.latents import LatentEngine, fold_into_ball, keyframes_from_seeds, limit_step
from vjgan.motion.params import ParamSmoother, ParamSpec, ParamStore, UnknownParameterError

CONFORMANCE = Path(__file__).parent / "data" / "conformance"
BANDS = ("sub", "bass", "lowmid", "mid", "highmid", "high")


@pytest.fixture(scope="module")
def G():
    return load_generator(CONFORMANCE / "sg2ada_64px.pkl")


@pytest.fixture(scope="module")
def space(G):
    return compute_latent_space(G, samples=4000, components=8)


def features_at(t: float, bass: float = 0.0, onset: bool = False, bpm: float = 120.0, loud: float = 0.5):
    base = rest_features(BANDS, adc_time=t)
    bands = [0.0] * len(BANDS)
    bands[1] = bass
    onsets = [False] * len(BANDS)
    onsets[1] = onset
    period = 60.0 / bpm
    return dataclasses.replace(base, bands=tuple(bands), onsets=tuple(onsets), loudness=loud, bpm=bpm,
                               beat_period=period, beat_time=t - (t % period), gated=False)


def klingemann(**overrides) -> MotionConfig:
    routes = [
        RouteConfig("bass_expression", "band.bass", "expressiveness", "coarse+middle", gain=1.0),
        RouteConfig("bass_pose", "band.bass", "direction", "coarse", direction=0, gain=1.5),
        RouteConfig("kick_snap", "onset.bass", "snap", gain=0.5),
        RouteConfig("hat_noise", "band.high", "noise", "fine", gain=1.0),
    ]
    return MotionConfig.from_dict({"max_speed": 1.0, **overrides}, {"seeds": [1, 2, 3]}, [dataclasses.asdict(r) for r in routes])


def test_latent_space_statistics(G, space) -> None:
    assert space.source == "pca"
    comps = space.components
    np.testing.assert_allclose(comps @ comps.T, np.eye(len(comps)), atol=1e-4)
    assert np.all(np.diff(space.stdevs) <= 1e-6)  # strongest first
    assert space.radius > 0


def test_latent_space_is_cached_per_model(G, tmp_path: Path) -> None:
    a = load_or_compute(G, samples=1000, components=4, folder=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and model_hash(G) in files[0].name
    b = load_or_compute(G, samples=1000, components=4, folder=tmp_path)
    np.testing.assert_array_equal(a.components, b.components)
    files[0].write_bytes(b"damaged")
    c = load_or_compute(G, samples=1000, components=4, folder=tmp_path)
    np.testing.assert_allclose(c.components, a.components)


def test_fold_keeps_points_inside_and_is_identity_inside() -> None:
    centre = np.zeros(8, dtype=np.float32)
    rng = np.random.default_rng(1)
    pts = rng.standard_normal((500, 8)).astype(np.float32) * 5
    folded = fold_into_ball(pts, centre, 2.0)
    assert np.all(np.linalg.norm(folded, axis=1) <= 2.0 + 1e-5)
    inside = pts[np.linalg.norm(pts, axis=1) < 2.0]
    np.testing.assert_allclose(fold_into_ball(inside, centre, 2.0), inside)


def test_limit_step() -> None:
    prev = np.zeros((3, 4))
    new = np.ones((3, 4)) * 10
    out = limit_step(new, prev, 0.5)
    np.testing.assert_allclose(np.linalg.norm(out - prev, axis=1), 0.5)


def test_layer_groups() -> None:
    assert layer_rows("coarse", 18) == [0, 1, 2, 3]
    assert layer_rows("middle", 18) == [4, 5, 6, 7]
    assert layer_rows("fine", 10) == [8, 9]
    assert layer_rows("coarse+fine", 10) == [0, 1, 2, 3, 8, 9]
    assert layer_rows("2-4", 10) == [2, 3, 4]
    with pytest.raises(MotionConfigError):
        layer_rows("sideways", 10)


def test_engine_stays_bounded_over_a_long_track(G, space) -> None:
    cfg = klingemann()
    keyframes = keyframes_from_seeds(G, cfg.keyframes.seeds, cfg.keyframes.truncation)
    engine = LatentEngine(space, keyframes, G.num_ws, 9, cfg)
    store = ParamStore(engine.param_specs())
    rng = np.random.default_rng(3)
    fps, seconds = 60.0, 120.0
    prev = None
    max_speed = store.get("motion.max_speed") * space.radius
    worst_ratio, snaps = 0.0, 0
    expressive_reach = 0.0
    for i in range(int(fps * seconds)):
        t = i / fps
        beat_pos = (t * 2.0) % 1.0  # 120 BPM
        bass = max(0.0, 1.0 - beat_pos * 3) + 0.1 * rng.random()
        onset = beat_pos < 1 / 30
        out = engine.step(t, 1 / fps, features_at(t, bass=bass, onset=onset), store.snapshot().values)
        assert out.ws.shape == (G.num_ws, G.w_dim) and np.all(np.isfinite(out.ws))
        # drift (before pulses) stays inside the ball
        assert np.linalg.norm(engine._drift_base() - space.w_avg, axis=-1).max() <= space.radius * (1 + 1e-4)
        if prev is not None and not out.snapped:
            step = np.linalg.norm(out.ws - prev, axis=1).max()
            worst_ratio = max(worst_ratio, step / (max_speed / fps))
        snaps += out.snapped
        expressive_reach = max(expressive_reach, float(np.linalg.norm(out.ws[0] - space.w_avg)))
        prev = out.ws
    assert worst_ratio <= 1.0 + 1e-4
    assert snaps > 100  # one per beat, roughly
    # pulses are bounded: expressiveness is capped, directions add at most gain·σ
    bound = store.get("expressiveness.max") * space.radius + 1.5 * space.stdevs[0]
    assert expressive_reach <= bound + 1e-3


def test_stronger_bass_means_more_expressive(G, space) -> None:
    cfg = klingemann()
    keyframes = keyframes_from_seeds(G, cfg.keyframes.seeds, cfg.keyframes.truncation)
    distances = {}
    for bass in (0.0, 1.0):
        engine = LatentEngine(space, keyframes, G.num_ws, 9, cfg)
        params = ParamStore(engine.param_specs()).snapshot().values
        for i in range(120):  # two seconds: let the glide settle
            out = engine.step(i / 60, 1 / 60, features_at(i / 60, bass=bass), params)
        distances[bass] = np.linalg.norm(out.ws[:8] - space.w_avg, axis=1).mean()
    assert distances[1.0] > 1.3 * distances[0.0]


def test_noise_route_and_gain_parameter_by_name(G, space) -> None:
    cfg = klingemann()
    keyframes = keyframes_from_seeds(G, cfg.keyframes.seeds, cfg.keyframes.truncation)
    engine = LatentEngine(space, keyframes, G.num_ws, 9, cfg)
    store = ParamStore(engine.param_specs())
    f = dataclasses.replace(features_at(0.0), bands=(0, 0, 0, 0, 0, 1.0))
    out = engine.step(0.0, 1 / 60, f, store.snapshot().values)
    assert out.noise_gains[8] == pytest.approx(2.0) and out.noise_gains[0] == pytest.approx(1.0)
    store.set("gain.hat_noise", 0.0)
    out = engine.step(0.02, 1 / 60, f, store.snapshot().values)
    assert out.noise_gains[8] == pytest.approx(1.0)


def test_param_store_ranges_snapshots_and_listeners() -> None:
    store = ParamStore([ParamSpec("gain.a", 0.5, 0.0, 2.0)])
    seen = []
    unsubscribe = store.subscribe(lambda n, v: seen.append((n, v)))
    snap = store.snapshot()
    assert store.set("gain.a", 5.0) == 2.0
    assert snap["gain.a"] == 0.5  # snapshots are immutable
    assert store.snapshot()["gain.a"] == 2.0 and store.snapshot().version > snap.version
    assert store.set_normalized("gain.a", 0.25) == 0.5
    assert store.get_normalized("gain.a") == 0.25
    assert seen == [("gain.a", 2.0), ("gain.a", 0.5)]
    unsubscribe()
    store.set("gain.a", 1.0)
    assert len(seen) == 2
    with pytest.raises(UnknownParameterError):
        store.set("gain.nope", 1.0)
    with pytest.raises(TypeError):
        snap.values["gain.a"] = 3.0


def test_smoother_is_frame_rate_independent() -> None:
    spec = {"x": ParamSpec("x", 0.0, 0.0, 1.0, smoothing_s=0.2)}
    target = ParamStore(spec.values())
    target.set("x", 1.0)
    results = []
    for fps in (30, 120):
        sm = ParamSmoother({"x": 0.0})
        for _ in range(int(fps * 0.2)):
            value = sm.step(target.snapshot(), spec, 1 / fps)["x"]
        results.append(value)
    assert results[0] == pytest.approx(1 - math.exp(-1), abs=1e-6)
    assert results[1] == pytest.approx(results[0], abs=1e-6)


def test_bad_motion_config_names_the_key() -> None:
    with pytest.raises(MotionConfigError, match="unknown key 'speeed'"):
        MotionConfig.from_dict({"speeed": 1}, None, None)
    with pytest.raises(MotionConfigError, match=r"route 'x'.*source"):
        MotionConfig.from_dict(None, None, [{"name": "x", "source": "treble", "target": "noise"}])
    with pytest.raises(MotionConfigError, match="snap needs an onset"):
        MotionConfig.from_dict(None, None, [{"name": "x", "source": "band.bass", "target": "snap"}])
    with pytest.raises(MotionConfigError, match="expected a number"):
        MotionConfig.from_dict({"max_speed": "fast"}, None, None)
