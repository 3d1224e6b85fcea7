"""The display's pure logic: effect chains, settings, keys, monitor choice, cross-fade timing, frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vjgan.display.crossfade import crossfade_mix
from vjgan.display.effects import EFFECTS, EffectConfig, validate_effect_chain
from vjgan.display.frame import Frame
from vjgan.display.geometry import place
from vjgan.display.inputs import DisplayInputs
from vjgan.display.keys import Action, KeyActions
from vjgan.display.monitors import MonitorInfo, find_monitor
from vjgan.display.settings import OutputSettings, RendererConfig
from vjgan.errors import UserError
from vjgan.resources import data_dir


# --- effect chains -----------------------------------------------------------------------------

def test_chain_from_preset_tables_fills_defaults() -> None:
    chain = validate_effect_chain([{"name": "trails", "length": 1.0}, {"name": "beat_zoom"},
                                   {"name": "colour_grade", "params": {"saturation": 0.5}}])
    assert [e.name for e in chain] == ["trails", "beat_zoom", "colour_grade"]
    assert chain[0].params["length"] == 1.0 and chain[0].params["loudness"] == EFFECTS["trails"].defaults()["loudness"]
    assert chain[1].params == EFFECTS["beat_zoom"].defaults()
    assert chain[2].params["saturation"] == 0.5
    assert validate_effect_chain([EffectConfig("rgb_shift", {"amount": 0.02})])[0].params["amount"] == 0.02


@pytest.mark.parametrize("items, message", [
    ([{"name": "blurr"}],
     r"effect 1: unknown effect 'blurr' \(known: beat_zoom, colour_grade, kaleidoscope, rgb_shift, trails\)"),
    ([{"name": "color_grade"}], r"did you mean 'colour_grade'"),
    ([{"name": "trails"}, {"name": "trails", "lenght": 1}],
     r"effect 2 \(trails\): unknown parameter 'lenght' .*did you mean 'length'"),
    ([{"name": "trails", "length": 99}], r"'length' must be a number in \[0.02, 5\], got 99"),
    ([{"name": "trails", "length": "long"}], r"'length' must be a number"),
    ([{"name": "trails", "length": True}], r"'length' must be a number"),
    ([{"name": "trails", "length": math.nan}], r"must be a number"),
    ([{"length": 1}], r"effect 1: needs a name"),
    (["trails"], r"expected a table"),
    ({"name": "trails"}, r"must be a list"),
])
def test_bad_chains_are_one_clear_line(items: object, message: str) -> None:
    with pytest.raises(UserError, match=message) as err:
        validate_effect_chain(items)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_every_effect_has_its_shader_and_uniforms() -> None:
    shaders = data_dir("shaders")
    for spec in EFFECTS.values():
        source = (shaders / spec.shader).read_text()
        for p in spec.params:
            assert f"uniform float p_{p.name};" in source, f"{spec.shader} lacks p_{p.name}"
            assert p.minimum <= p.default <= p.maximum
        assert ("u_history" in source) == spec.feedback


# --- settings ----------------------------------------------------------------------------------

def test_output_settings_validate_and_toggle() -> None:
    with pytest.raises(UserError, match="fit mode 'zoom'"):
        OutputSettings(fit="zoom")
    with pytest.raises(UserError, match="master"):
        OutputSettings(master=1.5)
    with pytest.raises(UserError, match="upload path"):
        RendererConfig(upload="dma")


def test_output_settings_from_a_preset_table() -> None:
    s = OutputSettings.from_preset({"fit": "fit", "master": 0.8, "effects": [{"name": "kaleidoscope", "segments": 8}]})
    assert s.fit == "fit" and s.master == 0.8 and s.effects[0].params["segments"] == 8
    with pytest.raises(UserError, match="unknown effect"):
        OutputSettings.from_preset({"effects": [{"name": "nope"}]})


# --- keys --------------------------------------------------------------------------------------

def test_keys_map_to_actions() -> None:
    keys = KeyActions()
    expected = {"f": Action.TOGGLE_FULLSCREEN, "F11": Action.TOGGLE_FULLSCREEN, "b": Action.BLACKOUT,
                "space": Action.FREEZE, "right": Action.NEXT_PRESET, "page_down": Action.NEXT_PRESET,
                "left": Action.PREVIOUS_PRESET, "page_up": Action.PREVIOUS_PRESET, "t": Action.TAP_TEMPO}
    for key, action in expected.items():
        assert keys.press(key, 0.0) is action
    assert keys.press("x", 0.0) is None
    # Every key action is a name of the show's one vocabulary, so a key gives the same command as a pad.
    from vjgan.control.commands import action_command

    for action in set(expected.values()):
        action_command(action.value)


def test_quit_needs_a_second_press_within_the_window() -> None:
    keys = KeyActions(quit_confirm_s=2.0)
    assert keys.press("q", 10.0) is Action.QUIT_ARMED
    assert keys.quit_armed(11.0)
    assert keys.press("escape", 11.5) is Action.QUIT  # Q and Escape are the same quit key
    # Too late: the second press arms again instead of quitting.
    assert keys.press("q", 20.0) is Action.QUIT_ARMED
    assert not keys.quit_armed(22.5)
    assert keys.press("q", 22.5) is Action.QUIT_ARMED
    assert keys.quit_pressed(23.0) is Action.QUIT  # the close button counts as a press


# --- monitors ----------------------------------------------------------------------------------

MONITORS = [
    MonitorInfo(0, "eDP-1", 1920, 1200, 60.0, 0, 0, True),
    MonitorInfo(1, "HDMI-1", 1920, 1080, 60.0, 1920, 0, False),
    MonitorInfo(2, "HDMI-2", 1280, 720, None, 3840, 0, False),
]


def test_monitor_by_index_name_and_substring() -> None:
    assert find_monitor(None, MONITORS).name == "eDP-1"
    assert find_monitor(1, MONITORS).name == "HDMI-1"
    assert find_monitor("2", MONITORS).name == "HDMI-2"
    assert find_monitor("hdmi-1", MONITORS).name == "HDMI-1"
    assert find_monitor("edp", MONITORS).name == "eDP-1"


@pytest.mark.parametrize("spec, message", [
    ("DP-7", r"no monitor matches 'DP-7' \(available: 0: eDP-1 1920x1200 @ 60 Hz at \(0, 0\) \(primary\); 1: HDMI-1"),
    (5, r"no monitor number 5 \(available: .*2: HDMI-2 1280x720 at \(3840, 0\)"),
    ("HDMI", r"'HDMI' matches 2 monitors; give its number"),
])
def test_monitor_errors_list_what_is_there(spec: object, message: str) -> None:
    with pytest.raises(UserError, match=message) as err:
        find_monitor(spec, MONITORS)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


# --- cross-fade timing -------------------------------------------------------------------------

def test_crossfade_only_when_generation_is_slower_than_the_display() -> None:
    period = 1 / 60
    # Generation at 100 fps: always the newest frame.
    assert crossfade_mix(1.0, 1, 1.01, 2, 1.0101, period) == 1.0
    # Generation at 10 fps: a fade over one generation interval from the newer frame's arrival.
    assert crossfade_mix(1.0, 1, 1.1, 2, 1.1, period) == 0.0
    assert crossfade_mix(1.0, 1, 1.1, 2, 1.15, period) == pytest.approx(0.5)
    assert crossfade_mix(1.0, 1, 1.1, 2, 1.3, period) == 1.0  # a stalled generator: the newest stays
    # Frames the display skipped still count: two frames in 0.1 s is 20 fps.
    assert crossfade_mix(1.0, 1, 1.1, 3, 1.125, period) == pytest.approx(0.5)
    # A long stall is caught up within max_fade_s, not crawled through.
    assert crossfade_mix(0.0, 1, 2.0, 2, 2.25, period, max_fade_s=0.5) == pytest.approx(0.5)
    assert crossfade_mix(None, None, 1.0, 1, 1.0, period) == 1.0


# --- frames, inputs, geometry ------------------------------------------------------------------

def test_frame_checks_its_pixels() -> None:
    px = np.zeros((4, 6, 4), np.uint8)
    f = Frame(px, 1, 0.0, 0.1, 4)
    assert f.size == (6, 4) and not f.on_cuda
    with pytest.raises(ValueError, match="RGBA"):
        Frame(np.zeros((4, 4, 3), np.uint8), 1, 0.0, 0.0, 4)
    with pytest.raises(ValueError, match="uint8"):
        Frame(np.zeros((4, 4, 4), np.float32), 1, 0.0, 0.0, 4)
    with pytest.raises(ValueError, match="contiguous"):
        Frame(np.zeros((4, 8, 4), np.uint8)[:, ::2], 1, 0.0, 0.0, 4)
    torch = pytest.importorskip("torch")
    assert Frame(torch.zeros(4, 4, 4, dtype=torch.uint8), 1, 0.0, 0.0, 4).width == 4


def test_onset_pulse_decays() -> None:
    assert DisplayInputs(time=5.0).onset_pulse(0.1) == 0.0
    assert DisplayInputs(time=5.0, onset_time=5.0).onset_pulse(0.1) == 1.0
    assert DisplayInputs(time=5.1, onset_time=5.0).onset_pulse(0.1) == pytest.approx(math.exp(-1))


def test_geometry_of_fit_fill_stretch() -> None:
    stretch = place("stretch", 512, 512, 1920, 1080)
    assert (stretch.scale_x, stretch.scale_y) == (1.0, 1.0)
    fit = place("fit", 1024, 1024, 1920, 1080)
    assert (fit.scale_x, fit.scale_y) == pytest.approx((1080 / 1920, 1.0))
    fill = place("fill", 1024, 1024, 1080, 1920)  # portrait: crops the sides
    assert (fill.scale_x, fill.scale_y) == pytest.approx((1920 / 1080, 1.0))
    assert fit.source_uv(0.5, 0.5) == (0.5, 0.5)
    # A half-size frame (budget step-down) lands on exactly the same rectangle.
    assert place("fit", 512, 512, 1920, 1080) == fit


def test_the_docs_describe_every_effect_and_its_defaults() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "display.md").read_text(encoding="utf-8")
    for spec in EFFECTS.values():
        assert f"| `{spec.name}` |" in text, spec.name
        for p in spec.params:
            assert f"`{p.name}` ({p.default:g}" in text, f"{spec.name}.{p.name}"


def test_inputs_from_the_audio_engines_features() -> None:
    from dataclasses import replace

    from vjgan.audio.features import rest_features
    from vjgan.display.inputs import OnsetLatch

    names = ("sub", "bass", "mid")
    assert DisplayInputs.from_features(None, 3.0) == DisplayInputs(time=3.0)
    f = replace(rest_features(names, adc_time=10.0), bands=(0.1, 0.8, 0.3), loudness=0.6, beat_time=9.9,
                beat_period=0.5, onsets=(False, True, False))
    inputs = DisplayInputs.from_features(f, 10.15)
    assert inputs.levels == (0.1, 0.8, 0.3) and inputs.bass == 0.8 and inputs.loudness == 0.6
    assert inputs.beat_phase == pytest.approx(0.5)  # predicted at the display time, not the snapshot's
    assert inputs.onset_time == 10.0 and inputs.onset_pulse(0.15) == pytest.approx(math.exp(-1))
    assert DisplayInputs.from_features(f, 10.15, bass_band="kick").bass == 0.1  # no such band: the first
    latch = OnsetLatch()
    assert latch.update(f) == 10.0
    assert latch.update(replace(f, adc_time=10.5, onsets=(False,) * 3)) == 10.0  # remembered


# --- redraws ---------------------------------------------------------------------------------------------

def test_redraw_on_new_frames_while_moving_and_rarely_when_still() -> None:
    from vjgan.display.redraw import RedrawPolicy

    p = RedrawPolicy(animation_hz=30.0, idle_hz=2.0)
    assert p.due(new_frame=True, animated=False, since_last_s=0.0)
    assert not p.due(new_frame=False, animated=True, since_last_s=0.02)
    assert p.due(new_frame=False, animated=True, since_last_s=1 / 30)
    assert not p.due(new_frame=False, animated=False, since_last_s=0.4)
    assert p.due(new_frame=False, animated=False, since_last_s=0.5)
    assert p.wait_s(animated=False, since_last_s=0.1) == pytest.approx(0.4)
    assert p.wait_s(animated=True, since_last_s=1.0) == 0.0


def test_software_renderers_are_recognised_and_draw_smaller() -> None:
    from vjgan.display.redraw import SOFTWARE_MAX_PIXELS, internal_scale, is_software_renderer, policy_for

    assert is_software_renderer("llvmpipe (LLVM 15.0.6, 256 bits)")
    assert is_software_renderer("Microsoft Basic Render Driver")
    assert not is_software_renderer("NVIDIA GeForce RTX 4090/PCIe/SSE2")
    assert not is_software_renderer("Apple M2 Max")
    assert internal_scale((1920, 1080), software=False) == 1.0
    assert internal_scale((640, 360), software=True) == 1.0
    scale = internal_scale((1280, 720), software=True)
    assert round(1280 * scale) * round(720 * scale) <= SOFTWARE_MAX_PIXELS + 1280
    assert policy_for(60.0, software=True).animation_hz == 30.0 and policy_for(144.0, False).animation_hz == 144.0


def test_an_effect_moves_when_a_drive_is_on() -> None:
    from vjgan.display.effects import validate_effect_chain

    still, moving, trails = validate_effect_chain([
        {"name": "colour_grade", "saturation": 1.2},
        {"name": "colour_grade", "hue_beat": 0.1},
        {"name": "trails"},
    ])
    assert not still.animated and moving.animated and trails.animated  # feedback always moves
    (kaleido,) = validate_effect_chain([{"name": "kaleidoscope", "spin": 0.0, "bass": 0.0}])
    assert not kaleido.animated
