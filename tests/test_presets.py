"""Presets: shipped ones load, strict validation names file/key/reason, saves are atomic."""

from __future__ import annotations

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


def test_stylegan3_preset_uses_the_view_parameters() -> None:
    from vjgan.motion.view import view_param_specs

    preset = load_preset("stylegan3")
    assert {r.target for r in preset.motion.routes} >= {"spin", "glide", "rotation"}
    assert set(preset.params) <= {s.name for s in view_param_specs()}
