"""Presets: shipped ones load, strict validation names file/key/reason, saves are atomic."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from vjgan.config import PresetError, available_presets, load_preset, save_preset


def test_at_least_three_presets_ship_and_load() -> None:
    names = available_presets()
    assert "default" in names and len(names) >= 3
    for name in names:
        preset = load_preset(name)
        assert preset.motion.routes, name


def test_default_is_klingemanns_rule() -> None:
    preset = load_preset("default")
    bass_routes = [r for r in preset.motion.routes if r.source == "band.bass"]
    assert any(r.target == "expressiveness" and "coarse" in r.layers and "middle" in r.layers for r in bass_routes)
    assert any(r.target == "direction" for r in preset.motion.routes)


def test_round_trip(tmp_path: Path) -> None:
    preset = load_preset("drop")
    path = save_preset(preset, tmp_path / "mine.toml")
    again = load_preset(path)
    assert again.motion == preset.motion and again.audio == preset.audio and again.display == preset.display


@pytest.mark.parametrize(
    "text,needle",
    [
        ('colour = "red"\n', "colour: unknown key"),
        ('[motion]\nmax_speed = "fast"\n', "max_speed"),
        ('[[routes]]\nname = "x"\nsource = "band.treble"\ntarget = "noise"\n', "band this preset does not define"),
        ('[display]\nfit = "zoom"\n', "display"),
        ('[display]\nflash_limit_per_s = 0\n', "can be raised, not removed"),
        ("name = [\n", "not valid TOML"),
        ('[audio]\nhop_s = 5\n', "audio"),
        ('[params]\n"gain.x" = "loud"\n', "params"),
    ],
)
def test_bad_preset_gives_one_line_with_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PresetError) as info:
        load_preset(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and needle in message


def test_unknown_preset_name_lists_available() -> None:
    with pytest.raises(PresetError, match="available: .*default"):
        load_preset("no-such-preset")


# ---------------------------------------------------------------------------------------------
# every numeric field: type, finiteness, range, one line at load time (vjgan.validation)

MINIMAL = '[keyframes]\nseeds = [1]\n'
ROUTE = '[[routes]]\nname = "pose"\nsource = "band.bass"\ntarget = "direction"\n'
BAD_VALUES = [
    # (preset text, key named in the message)
    ('[keyframes]\nbeats_per_keyframe = nan\n', "keyframes.beats_per_keyframe"),
    ('[keyframes]\nbeats_per_keyframe = 0.0\n', "keyframes.beats_per_keyframe"),
    ('[keyframes]\nbeats_per_keyframe = 1e-300\n', "keyframes.beats_per_keyframe"),
    ('[keyframes]\nseconds_per_keyframe = -inf\n', "keyframes.seconds_per_keyframe"),
    ('[keyframes]\ntruncation = nan\n', "keyframes.truncation"),
    ('[keyframes]\nclass_index = 1.5\n', "keyframes.class_index"),
    ('[keyframes]\nseeds = [-1]\n', "keyframes.seeds[0]"),
    ('[keyframes]\nseeds = [1, 99999999999999999999]\n', "keyframes.seeds[1]"),
    ('[keyframes]\nseeds = [4294967296]\n', "keyframes.seeds[0]"),
    ('[keyframes]\nseeds = ["one"]\n', "keyframes.seeds[0]"),
    ('[keyframes]\nseeds = [1.5]\n', "keyframes.seeds[0]"),
    ('[keyframes]\nseeds = [true]\n', "keyframes.seeds[0]"),
    ('[keyframes]\nseeds = "1, 2"\n', "keyframes.seeds"),
    ('[keyframes]\nfiles = [3]\n', "keyframes.files"),
    ('[motion]\nseed = -5\n', "motion.seed"),
    ('[motion]\nseed = "five"\n', "motion.seed"),
    ('[motion]\nseed = 1e30\n', "motion.seed"),
    ('[motion]\nwander = 5\n', "motion.wander"),
    ('[motion]\nwander = nan\n', "motion.wander"),
    ('[motion]\nsmoothing_s = 1.0\n', "motion.smoothing_s"),
    ('[motion]\nmax_speed = 0.01\n', "motion.max_speed"),
    ('[motion]\nmax_speed = inf\n', "motion.max_speed"),
    ('[motion]\nexpressiveness_max = nan\n', "motion.expressiveness_max"),
    (ROUTE + 'direction = 1.5\n', "route 'pose'.direction"),
    (ROUTE + 'direction = -1\n', "route 'pose'.direction"),
    (ROUTE + 'direction = 16\n', "route 'pose'.direction"),
    (ROUTE + 'direction = "first"\n', "route 'pose'.direction"),
    (ROUTE + 'gain = nan\n', "route 'pose'.gain"),
    (ROUTE + 'gain_max = inf\n', "route 'pose'.gain_max"),
    (ROUTE + 'release_s = 0\n', "route 'pose'.release_s"),
    (ROUTE + 'smoothing_s = -1\n', "route 'pose'.smoothing_s"),
    (ROUTE + 'layers = "1234567890123-2"\n', "layers"),
    ('[[routes]]\nname = 5\nsource = "band.bass"\ntarget = "direction"\n', "route.name"),
    ('[audio]\nhop_s = nan\n', "hop_s"),
    ('[audio]\nonset_median_s = 1e9\n', "onset_median_s"),
    ('[audio]\nflux_lag_s = 3600\n', "flux_lag_s"),
    ('[audio]\ninput_gain_db = inf\n', "input_gain_db"),
    ('[audio.tempo]\nbpm_min = "slow"\n', "tempo.bpm_min"),
    ('[[audio.bands]]\nname = "bass"\nlow_hz = 60\nhigh_hz = 250\nattack_s = nan\n', "band 'bass'.attack_s"),
    ('[[audio.bands]]\nname = "bass"\nlow_hz = -1\nhigh_hz = 250\n', "band 'bass'.low_hz"),
    ('[display]\nmaster = nan\n', "display: master"),
    ('[display]\nflash_limit_per_s = inf\n', "display: flash_limit_per_s"),
    ('[[display.effects]]\nname = "trails"\nlength = nan\n', "parameter 'length'"),
    ('[params]\n"gain.pose" = nan\n', "params.gain.pose"),
    ('[[midi.mappings]]\nchannel = 17\ncc = 1\nkind = "absolute"\nparam = "gain.pose"\n', "channel"),
    ('[[midi.mappings]]\nchannel = 1\ncc = 1.5\nkind = "absolute"\nparam = "gain.pose"\n', "cc"),
    ('[[midi]]\nchannel = 1\ncc = 300\nkind = "absolute"\nparam = "gain.pose"\n', "cc"),
    ('[[midi.mappings]]\nchannel = 1\ncc = 1\nkind = "relative-twos"\nparam = "gain.pose"\nstep = nan\n', "step"),
]


@pytest.mark.parametrize("text,key", BAD_VALUES)
def test_bad_number_is_one_line_at_load_time(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text if "[keyframes]" in text else MINIMAL + text)
    with pytest.raises(PresetError) as info:
        load_preset(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"preset {path}: ") and key in message, message
    assert "must be" in message or "expected" in message or "layers" in message, message


@pytest.mark.parametrize("text,key", [b for b in BAD_VALUES if b[1].startswith(("keyframes.b", "motion.", "route 'pose'.d"))])
def test_the_fixed_preset_runs(tmp_path: Path, text: str, key: str) -> None:
    """Replace the bad value by the field's default: the preset loads and the engine steps with it."""
    import numpy as np

    from vjgan.motion.directions import LatentSpace
    from vjgan.motion.latents import LatentEngine
    from vjgan.motion.params import ParamSmoother, ParamStore

    fixed = "\n".join(line for line in text.splitlines() if not line.startswith(key.split(".")[-1].split("'")[-1]))
    path = tmp_path / "fixed.toml"
    path.write_text(MINIMAL + fixed + "\n" if "[keyframes]" not in fixed else fixed + "\n")
    preset = load_preset(path)
    rng = np.random.default_rng(0)
    w_dim, num_ws = 8, 6
    space = LatentSpace(np.zeros(w_dim, np.float32), np.eye(w_dim, dtype=np.float32)[:4], np.ones(4, np.float32), 3.0, "pca")
    engine = LatentEngine(space, rng.standard_normal((2, w_dim)).astype(np.float32), num_ws, 5, preset.motion)
    store, smoother = ParamStore(engine.param_specs()), ParamSmoother()
    for i in range(60):
        values = smoother.step(store.snapshot(), store.spec_map(), 1 / 30)
        frame = engine.step(i / 30, 1 / 30, None, values)
        assert np.all(np.isfinite(frame.ws)) and np.all(np.isfinite(frame.noise_gains))


def test_both_midi_layouts_load_and_save_round_trips(tmp_path: Path) -> None:
    mapping = 'channel = 1\ncc = 21\nkind = "absolute"\nparam = "gain.pose"\n'
    for layout in ("[[midi]]\n", "[[midi.mappings]]\n"):
        path = tmp_path / "m.toml"
        path.write_text(MINIMAL + ROUTE + layout + mapping)
        preset = load_preset(path)
        assert preset.midi == ({"channel": 1, "cc": 21, "kind": "absolute", "param": "gain.pose"},)
    again = load_preset(save_preset(preset, tmp_path / "again.toml"))
    assert again.midi == preset.midi
    assert tomllib.loads((tmp_path / "again.toml").read_text())["midi"]["mappings"] == list(preset.midi)  # docs/midi.md's layout


SECRET = "hunter2-do-not-print-me"


@pytest.mark.parametrize("content", [
    f"user: admin\npassword: {SECRET}\n",
    f"{SECRET}\n",
    f"secret12{{\"{SECRET}\": 1}}\n",  # a '{' at byte 8 reads as a safetensors header
    f"{{\"__metadata__\": {{\"config\": \"{SECRET}\"}}}}",
    f"PK\x03\x04{SECRET}",
    f"\x93NUMPY{SECRET}",
    # a .npy header naming the secret as its dtype: numpy's own message quotes it
    "\x93NUMPY\x01\x00v\x00{'descr': '" + SECRET + "', 'fortran_order': False, 'shape': (3,), }" + " " * 40 + "\n",
])
def test_errors_never_quote_a_named_files_contents(tmp_path: Path, content: str) -> None:
    """A preset may name a model or keyframe file anywhere (absolute or ../ paths are allowed);
    the error about a file that is no model must not show what the file holds."""
    from vjgan.errors import UserError
    from vjgan.gan.load import load_generator
    from vjgan.motion.keyframe_files import load_keyframes
    from vjgan.motion.latent_files import load_w_file

    private = tmp_path / "private" / "notes.txt"
    private.parent.mkdir()
    private.write_bytes(content.encode("latin-1"))
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "p.toml").write_text(f'model = "../private/notes.txt"\n[keyframes]\nfiles = ["{private}"]\n')
    preset = load_preset(presets / "p.toml")
    assert preset.model_path().resolve() == private.resolve()
    messages = []
    for attempt in (lambda: load_generator(preset.model_path()), lambda: load_w_file(Path(preset.motion.keyframes.files[0]), 10, 128),
                    lambda: load_keyframes(private)):
        with pytest.raises(UserError) as info:
            attempt()
        messages.append(str(info.value))
    for message in messages:
        assert "notes.txt" in message and SECRET not in message and "hunter2" not in message, message


def test_stylegan3_preset_uses_the_view_parameters() -> None:
    from vjgan.motion.view import view_param_specs

    preset = load_preset("stylegan3")
    assert {r.target for r in preset.motion.routes} >= {"spin", "glide", "rotation"}
    assert set(preset.params) <= {s.name for s in view_param_specs()}
