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
    unsubscribe = store.subscribe(lambda n, v, origin: seen.append((n, v, origin)))
    snap = store.snapshot()
    assert store.set("gain.a", 5.0) == 2.0
    assert snap["gain.a"] == 0.5  # snapshots are immutable
    assert store.snapshot()["gain.a"] == 2.0 and store.snapshot().version > snap.version
    assert store.set_normalized("gain.a", 0.25, origin="knob 7") == 0.5
    assert store.get_normalized("gain.a") == 0.25
    assert seen == [("gain.a", 2.0, None), ("gain.a", 0.5, "knob 7")]
    assert store.nudge_normalized("gain.a", 0.25) == 1.0
    assert store.toggle("gain.a") == 0.0 and store.toggle("gain.a") == 2.0
    assert store.reset("gain.a") == 0.5
    del seen[2:]
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
    with pytest.raises(MotionConfigError, match="max_speed must be a number"):
        MotionConfig.from_dict({"max_speed": "fast"}, None, None)


# ---------------------------------------------------------------------------------------------
# the engine runs with every value the preset rules admit (vjgan.validation)


def _bounds(rule) -> list[float]:
    """The extreme admitted values of a rule (the next float inside an open bound)."""
    out = []
    for bound, is_open, inward in ((rule.low, rule.low_open, math.inf), (rule.high, rule.high_open, -math.inf)):
        if bound is not None:
            out.append(math.nextafter(bound, inward) if is_open else bound)
    return out


def _ruled_fields():
    from vjgan.motion.config import KeyframeConfig
    from vjgan.validation import NUMBER

    for table, cls in (("motion", MotionConfig), ("keyframes", KeyframeConfig), ("routes", RouteConfig)):
        for f in dataclasses.fields(cls):
            if NUMBER in f.metadata:
                for value in _bounds(f.metadata[NUMBER]):
                    yield table, f.name, value


ALL_TARGETS = [
    {"name": "expr", "source": "band.bass", "target": "expressiveness", "layers": "all"},
    {"name": "pose", "source": "beat.sin", "target": "direction", "layers": "coarse"},
    {"name": "kick", "source": "onset.bass", "target": "snap"},
    {"name": "grain", "source": "loudness", "target": "noise", "layers": "fine"},
    {"name": "beat", "source": "beat", "target": "direction", "layers": "0-99", "direction": 3},
]


@pytest.mark.parametrize("table,name,value", list(_ruled_fields()))
def test_engine_runs_at_every_admitted_limit(G, space, table: str, name: str, value: float) -> None:
    motion, keyframes = {}, {"seeds": [0, 2**32 - 1]}
    routes = [dict(r) for r in ALL_TARGETS]
    if table == "motion":
        motion[name] = value
    elif table == "keyframes":
        keyframes[name] = [int(value)] if name == "seeds" else value
    else:
        for r in routes:
            r[name] = value
            if name == "gain_max":
                r["gain"] = min(0.5, value)
    try:
        cfg = MotionConfig.from_dict(motion, keyframes, routes)
    except MotionConfigError:
        pytest.skip("refused with the other fields' defaults (a check between fields): not admitted")
    kf = cfg.keyframes
    frames = keyframes_from_seeds(G, kf.seeds, kf.truncation, kf.class_index)
    engine = LatentEngine(space, frames, G.num_ws, 9, cfg)
    store = ParamStore(engine.param_specs())
    smoother = ParamSmoother()
    onsets = {}
    for i in range(150):
        t = i / 60
        if i == 50:
            for spec in store.specs():
                store.set(spec.name, spec.maximum)
        if i == 100:
            for spec in store.specs():
                store.set(spec.name, spec.minimum)
        if i % 15 == 0:
            onsets["bass"] = t
        features = None if i % 40 < 5 else features_at(t, bass=(i % 7) / 7, onset=i % 15 == 0, bpm=60 + i)
        values = smoother.step(store.snapshot(), store.spec_map(), 1 / 60)
        out = engine.step(t, 1 / 60 if i % 30 else 5.0, features, values, onsets)
        assert np.all(np.isfinite(out.ws)) and np.all(np.isfinite(out.noise_gains)) and math.isfinite(out.drift_position)


# the view: turning and gliding a StyleGAN3 picture


def view_engine(G, space, routes=(), **motion):
    cfg = MotionConfig.from_dict(motion, {"seeds": [1, 2]}, [dataclasses.asdict(r) for r in routes])
    keyframes = keyframes_from_seeds(G, cfg.keyframes.seeds, cfg.keyframes.truncation)
    return LatentEngine(space, keyframes, G.num_ws, 0, cfg, transformable=True)


def angle_and_shift(m: np.ndarray) -> tuple[float, np.ndarray]:
    """Read a view transform back: the view is its inverse, [[cos, sin, tx], [−sin, cos, ty]]."""
    view = np.linalg.inv(m)
    return math.degrees(math.atan2(view[0, 1], view[0, 0])), view[:2, 2]


def test_view_parameters_exist_only_for_networks_with_an_input_transform(G, space) -> None:
    plain = LatentEngine(space, keyframes_from_seeds(G, [1], 0.7), G.num_ws, 9, klingemann())
    assert not any(s.group == "view" for s in plain.param_specs())
    assert plain.step(0.0, 1 / 60, features_at(0.0), ParamStore(plain.param_specs()).snapshot().values).transform is None
    engine = view_engine(G, space)
    names = {s.name for s in engine.param_specs() if s.group == "view"}
    assert names == {"rotation", "rotation.speed", "translation.x", "translation.y", "glide.speed", "glide.direction"}
    out = engine.step(0.0, 1 / 60, features_at(0.0), ParamStore(engine.param_specs()).snapshot().values)
    np.testing.assert_allclose(out.transform, np.eye(3), atol=1e-6)


@pytest.mark.parametrize("fps", [30, 120])
def test_rotation_speed_and_glide_integrate_independently_of_frame_rate(G, space, fps: int) -> None:
    engine = view_engine(G, space)
    store = ParamStore(engine.param_specs())
    store.set_many({"rotation.speed": 45.0, "glide.speed": 0.5, "glide.direction": 90.0, "rotation": 10.0,
                    "translation.x": 0.25})
    values = store.snapshot().values
    for i in range(2 * fps):
        out = engine.step(i / fps, 1 / fps, features_at(i / fps), values)
    angle, shift = angle_and_shift(out.transform)
    assert angle == pytest.approx(10.0 + 45.0 * 2, abs=1e-6)  # offset + speed × 2 s
    np.testing.assert_allclose(shift, [0.25, 1.0], atol=1e-6)  # offset + 0.5 widths/s upward for 2 s


def test_beat_turns_the_picture_and_bass_pushes_the_glide(G, space) -> None:
    routes = (RouteConfig("beat_turn", "beat", "spin", gain=1.0), RouteConfig("bass_glide", "band.bass", "glide", gain=1.0))
    fps, bpm = 120, 120.0
    travelled = {}
    for bass in (0.0, 1.0):
        engine = view_engine(G, space, routes)
        values = ParamStore(engine.param_specs()).snapshot().values
        angles = []
        for i in range(4 * fps):  # eight beats
            t = i / fps
            engine.step(t, 1 / fps, features_at(t, bass=bass, bpm=bpm), values)
            angles.append(engine.view.angle_deg)
        travelled[bass] = math.hypot(engine.view.travelled_x, engine.view.travelled_y)
        per_beat = np.diff(np.array(angles)[::fps // 2])  # angle gained over each beat
        # The beat source (1 − phase)³ integrates to a quarter of the period: 90°/s × 0.5 s / 4.
        np.testing.assert_allclose(per_beat, 90.0 * 0.5 / 4, rtol=0.05)
        speed = np.diff(angles[: fps // 2])
        assert speed[:5].mean() > 5 * speed[-5:].mean()  # the turn comes on the beat, then settles
    assert travelled[0.0] == 0.0 and travelled[1.0] == pytest.approx(0.5 * 4.0, rel=1e-6)


def test_rotation_and_translation_pushes_come_back(G, space) -> None:
    routes = (RouteConfig("jolt", "onset.bass", "rotation", gain=0.2, release_s=0.2),
              RouteConfig("nudge", "band.bass", "translation", gain=1.0))
    engine = view_engine(G, space, routes)
    values = ParamStore(engine.param_specs()).snapshot().values
    out = engine.step(0.0, 1 / 60, features_at(0.0, bass=1.0, onset=True), values)
    for i in range(1, 10):
        out = engine.step(i / 60, 1 / 60, features_at(i / 60, bass=1.0), values)
    angle, shift = angle_and_shift(out.transform)
    assert 0.0 < angle < 0.2 * 90 and shift[0] == pytest.approx(0.25, abs=0.01)  # glide direction 0: along x
    for i in range(10, 240):
        out = engine.step(i / 60, 1 / 60, features_at(i / 60, bass=0.0), values)
    angle, shift = angle_and_shift(out.transform)
    assert abs(angle) < 0.01 and np.abs(shift).max() < 1e-3


def test_glide_folds_back_far_from_the_origin() -> None:
    from vjgan.motion.view import GLIDE_LIMIT_WIDTHS, fold

    xs = np.linspace(-3 * GLIDE_LIMIT_WIDTHS, 3 * GLIDE_LIMIT_WIDTHS, 10001)
    ys = np.array([fold(x, GLIDE_LIMIT_WIDTHS) for x in xs])
    assert np.abs(ys).max() <= GLIDE_LIMIT_WIDTHS + 1e-9
    assert np.abs(np.diff(ys)).max() <= np.diff(xs).max() + 1e-9  # continuous: never jumps
    inside = np.abs(xs) <= GLIDE_LIMIT_WIDTHS
    np.testing.assert_allclose(ys[inside], xs[inside], atol=1e-9)


def test_view_route_targets_are_validated() -> None:
    routes = MotionConfig.from_dict(None, None, [{"name": "t", "source": "beat", "target": "spin"}]).routes
    assert routes[0].target == "spin"
    with pytest.raises(MotionConfigError, match="target 'twirl'"):
        MotionConfig.from_dict(None, None, [{"name": "t", "source": "beat", "target": "twirl"}])
