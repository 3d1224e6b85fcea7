"""The renderer on a standalone EGL context (Mesa llvmpipe in CI): pictures read back and checked."""

from __future__ import annotations

import ctypes.util
import math
from typing import Iterator

import numpy as np
import pytest

from vjgan.display.effects import EffectConfig
from vjgan.display.flash import FlashSafetyConfig, count_changes, mean_luminance
from vjgan.display.frame import Frame
from vjgan.display.inputs import DisplayInputs
from vjgan.display.renderer import Renderer
from vjgan.display.settings import OutputSettings, RendererConfig
from vjgan.errors import UserError
from vjgan.handover import LatestSlot

if ctypes.util.find_library("EGL") is None:
    pytest.skip("libEGL is not installed (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri)", allow_module_level=True)

SIZE = (64, 64)
STRETCH = OutputSettings(fit="stretch")


def make_renderer(size: tuple[int, int] = SIZE, **config: object) -> Renderer:
    config.setdefault("upload", "pbo")
    return Renderer.offscreen(size, RendererConfig(**config))  # type: ignore[arg-type]


@pytest.fixture
def renderer() -> Iterator[Renderer]:
    r = make_renderer(blackout_fade_s=0.0)
    yield r
    r.release()


def solid(r: int, g: int, b: int, size: int = 32) -> np.ndarray:
    px = np.empty((size, size, 4), np.uint8)
    px[...] = (r, g, b, 255)
    return px


def frame(pixels: np.ndarray, index: int, t_ready: float) -> Frame:
    return Frame(pixels, index, t_ready - 0.01, t_ready, pixels.shape[0])


def show(r: Renderer, t: float, settings: OutputSettings = STRETCH, **inputs: object) -> np.ndarray:
    r.render(DisplayInputs(time=t, **inputs), settings)  # type: ignore[arg-type]
    return r.read_pixels()


def quadrants(size: int = 32) -> np.ndarray:
    px = solid(0, 0, 0, size)
    h = size // 2
    px[:h, :h, :3] = (255, 0, 0)
    px[:h, h:, :3] = (0, 255, 0)
    px[h:, :h, :3] = (0, 0, 255)
    px[h:, h:, :3] = (255, 255, 255)
    return px


# --- presenting ----------------------------------------------------------------------------------

def test_before_any_frame_the_screen_is_black(renderer: Renderer) -> None:
    out = show(renderer, 0.0)
    assert out.shape == (64, 64, 4) and (out[..., :3] == 0).all() and (out[..., 3] == 255).all()


def test_the_frame_appears_upright(renderer: Renderer) -> None:
    renderer.submit(frame(quadrants(), 1, 0.0))
    out = show(renderer, 0.0)
    assert tuple(out[8, 8, :3]) == (255, 0, 0)  # top left stays top left
    assert tuple(out[8, 56, :3]) == (0, 255, 0)
    assert tuple(out[56, 8, :3]) == (0, 0, 255)
    assert tuple(out[56, 56, :3]) == (255, 255, 255)
    assert renderer.upload_path == "pbo" and renderer.upload_path_reason


def test_a_torch_frame_is_shown_like_a_numpy_one(renderer: Renderer) -> None:
    torch = pytest.importorskip("torch")
    renderer.submit(Frame(torch.from_numpy(quadrants()), 1, 0.0, 0.0, 32))
    out = show(renderer, 0.0)
    assert tuple(out[8, 8, :3]) == (255, 0, 0) and tuple(out[56, 56, :3]) == (255, 255, 255)


def test_crossfade_midpoint_between_the_two_newest_frames(renderer: Renderer) -> None:
    a, b = solid(200, 0, 0), solid(0, 0, 100)
    renderer.submit(frame(a, 1, 10.0))
    show(renderer, 10.0)
    renderer.submit(frame(b, 2, 10.1))  # generation at 10 fps, display at 60 Hz: fade
    assert np.abs(show(renderer, 10.1)[..., :3].astype(int) - (200, 0, 0)).max() <= 1  # fade starts at A
    stats = renderer.render(DisplayInputs(time=10.15), STRETCH)
    assert stats.crossfade == pytest.approx(0.5) and stats.frame_index == 2
    assert np.abs(renderer.read_pixels()[..., :3].astype(int) - (100, 0, 50)).max() <= 1
    assert np.abs(show(renderer, 10.2)[..., :3].astype(int) - (0, 0, 100)).max() <= 1  # reaches B
    assert np.abs(show(renderer, 11.0)[..., :3].astype(int) - (0, 0, 100)).max() <= 1  # and stays


def test_no_crossfade_while_generation_keeps_up(renderer: Renderer) -> None:
    renderer.submit(frame(solid(200, 0, 0), 1, 1.0))
    show(renderer, 1.0)
    renderer.submit(frame(solid(0, 0, 100), 2, 1.0 + 1 / 60))
    stats = renderer.render(DisplayInputs(time=1.0 + 1 / 60), STRETCH)
    assert stats.crossfade == 1.0
    assert np.abs(renderer.read_pixels()[..., :3].astype(int) - (0, 0, 100)).max() <= 1


def test_only_the_newest_frame_is_drawn_and_never_an_older_one(renderer: Renderer) -> None:
    slot: LatestSlot[Frame] = LatestSlot()
    assert not renderer.pull(slot)
    for i, level in enumerate((50, 100, 150), start=1):
        slot.publish(frame(solid(level, level, level), i, 1.0 + i / 100))
    assert renderer.pull(slot)
    assert not renderer.pull(slot)  # nothing new
    stats = renderer.render(DisplayInputs(time=2.0), STRETCH)
    assert stats.frame_index == 3 and renderer.frames_uploaded == 1
    renderer.submit(frame(solid(10, 10, 10), 2, 1.02))  # late arrival of an older frame: ignored
    assert show(renderer, 2.1)[0, 0, 0] == 150


def test_freeze_holds_the_picture(renderer: Renderer) -> None:
    renderer.submit(frame(solid(0, 120, 0), 1, 0.0))
    show(renderer, 0.0)
    renderer.submit(frame(solid(0, 0, 120), 2, 0.5))
    assert tuple(show(renderer, 1.0, OutputSettings(fit="stretch", freeze=True))[5, 5, :3]) == (0, 120, 0)
    assert tuple(show(renderer, 2.0)[5, 5, :3]) == (0, 0, 120)


def test_master_intensity_scales_the_picture(renderer: Renderer) -> None:
    renderer.submit(frame(solid(200, 100, 50), 1, 0.0))
    out = show(renderer, 0.0, OutputSettings(fit="stretch", master=0.5))
    assert np.abs(out[..., :3].astype(int) - (100, 50, 25)).max() <= 1


def test_blackout_cuts_to_black_and_back(renderer: Renderer) -> None:
    renderer.submit(frame(solid(120, 120, 120), 1, 0.0))
    show(renderer, 0.0)
    assert (show(renderer, 1.0, OutputSettings(fit="stretch", blackout=True))[..., :3] == 0).all()
    assert tuple(show(renderer, 2.0)[0, 0, :3]) == (120, 120, 120)


def test_blackout_fades_over_its_time() -> None:
    with make_renderer(blackout_fade_s=0.2) as r:
        r.submit(frame(solid(200, 200, 200), 1, 0.0))
        show(r, 0.0)
        half = show(r, 0.1, OutputSettings(fit="stretch", blackout=True))
        assert np.abs(half[..., :3].astype(int) - 100).max() <= 1
        assert (show(r, 0.2, OutputSettings(fit="stretch", blackout=True))[..., :3] == 0).all()


def test_the_renderer_says_when_its_picture_will_move_without_a_new_frame() -> None:
    with make_renderer(blackout_fade_s=0.2) as r:
        r.submit(frame(solid(200, 200, 200), 1, 0.0))
        show(r, 0.0)
        assert not r.animating and not r.has_new_frame  # a still picture: no redraw needed
        show(r, 0.1, OutputSettings(fit="stretch", blackout=True))
        assert r.animating  # the blackout is fading
        show(r, 0.5, OutputSettings(fit="stretch", blackout=True))
        assert not r.animating
        r.submit(frame(solid(0, 0, 0), 2, 0.6))
        assert r.has_new_frame
        show(r, 0.7, OutputSettings(fit="stretch", effects=(EffectConfig("beat_zoom", {}),)))
        assert r.animating  # beat-driven effects move between frames


def test_a_software_renderer_draws_the_chain_smaller_and_fills_the_output() -> None:
    with make_renderer((256, 128), max_internal_pixels=64 * 32) as r:
        assert r.size == (256, 128) and r.internal_size == (64, 32)
        r.submit(frame(quadrants(), 1, 0.0))
        small = show(r, 0.0)
        assert small.shape == (32, 64, 4)
        assert tuple(small[4, 4, :3]) == (255, 0, 0) and tuple(small[28, 60, :3]) == (255, 255, 255)


# --- textures ------------------------------------------------------------------------------------

def test_textures_are_allocated_once_and_updated_in_place(renderer: Renderer) -> None:
    for i in range(1, 61):
        # New content every frame, varied in blue only (luminance moves < 0.1, so the flash
        # limiter has no reason to hold anything back); shown once its cross-fade is complete.
        level = (i * 37) % 256
        renderer.submit(frame(solid(60, 60, level), i, i / 30))
        out = show(renderer, (i + 1) / 30)
        assert tuple(out[3, 3, :3]) == (60, 60, level)  # the new content really arrived
    assert renderer.texture_allocations == 2  # the two newest frames, for the cross-fade
    ids = renderer.frame_texture_ids
    assert renderer.target_allocations == 1

    # The frame budget steps down: a half-size frame gets textures of its own, once, and is
    # sampled scaled onto the same place on the output.
    index = 61
    for cycle in range(6):
        for size in (16, 32):
            index += 1
            renderer.submit(frame(solid(0, 0, 200, size), index, index / 30))
            out = show(renderer, (index + 1) / 30, OutputSettings(fit="fit"))
            assert tuple(out[32, 32, :3]) == (0, 0, 200) and tuple(out[0, 0, :3]) == (0, 0, 200)
        if cycle == 0:
            after_first_cycle = renderer.texture_allocations
    assert after_first_cycle <= 4 and renderer.texture_allocations == after_first_cycle
    assert ids <= renderer.frame_texture_ids

    renderer.resize(SIZE)  # same size: nothing reallocated
    assert renderer.target_allocations == 1
    renderer.resize((32, 18))
    assert renderer.target_allocations == 2 and show(renderer, 10.0).shape == (18, 32, 4)


# --- effects -------------------------------------------------------------------------------------

def ramp(size: int = 64) -> np.ndarray:
    px = solid(0, 0, 90, size)
    px[..., 0] = (np.arange(size) * 4)[None, :]
    px[..., 1] = (np.arange(size) * 4)[:, None]
    return px


def with_effect(name: str, t: float = 0.0, **params: float) -> OutputSettings:
    return OutputSettings(fit="stretch", effects=(EffectConfig(name, dict(params)),))


def test_beat_zoom_punches_in_on_the_beat(renderer: Renderer) -> None:
    renderer.submit(frame(ramp(), 1, 0.0))
    plain = show(renderer, 0.0)
    on_beat = show(renderer, 5.0, with_effect("beat_zoom", amount=0.25, bass=0.0), beat_phase=0.0)
    late = show(renderer, 10.0, with_effect("beat_zoom", amount=0.25, bass=0.0, sharpness=8.0), beat_phase=0.9)
    # Zoom 1.25 about the centre: the output's left edge shows what sat 10% in from the edge.
    assert abs(int(on_beat[32, 0, 0]) - int(plain[32, 6, 0])) <= 3
    assert abs(int(on_beat[32, 32, 0]) - int(plain[32, 32, 0])) <= 3  # the centre stays
    assert np.abs(late.astype(int) - plain.astype(int)).max() <= 1  # relaxed by the end of the beat


def test_rgb_shift_splits_channels_on_an_onset(renderer: Renderer) -> None:
    bar = solid(0, 0, 0, 64)
    bar[:, 28:36, :3] = 255
    renderer.submit(frame(bar, 1, 0.0))
    effect = with_effect("rgb_shift", amount=0.05, onset=1.0, bass=0.0, base=0.0)
    quiet = show(renderer, 1.0, effect)  # no onset yet: nothing moves
    assert np.array_equal(quiet, show(renderer, 2.0))
    hit = show(renderer, 3.0, effect, onset_time=3.0)
    cols = np.arange(64)

    def centre(channel: int) -> float:
        row = hit[32, :, channel].astype(float)
        return float((row * cols).sum() / row.sum())

    shift = 0.05 * 64
    assert centre(1) == pytest.approx(31.5, abs=0.2)  # green stays
    assert centre(0) == pytest.approx(31.5 - shift, abs=0.5)  # red comes from the right: moves left
    assert centre(2) == pytest.approx(31.5 + shift, abs=0.5)


def test_kaleidoscope_makes_the_picture_symmetric(renderer: Renderer) -> None:
    renderer.submit(frame(ramp(), 1, 0.0))
    plain = show(renderer, 0.0).astype(float)
    k = show(renderer, 1.0, with_effect("kaleidoscope", segments=6, spin=0.0, bass=0.0)).astype(float)

    def asymmetry(img: np.ndarray) -> float:
        diffs = []
        for r in (8.0, 14.0, 20.0, 26.0):
            for a in np.linspace(0, 2 * math.pi, 17)[:-1]:
                b = a + math.pi / 3  # one wedge further round
                (x0, y0), (x1, y1) = [(32 + r * math.cos(c), 32 + r * math.sin(c)) for c in (a, b)]
                diffs.append(np.abs(img[int(y0), int(x0), :3] - img[int(y1), int(x1), :3]).mean())
        return float(np.mean(diffs))

    assert asymmetry(plain) > 20  # the ramp is not symmetric...
    assert asymmetry(k) < 3  # ...the kaleidoscope's is, up to the pixel grid
    assert np.abs(k - plain).mean() > 10


def test_colour_grade(renderer: Renderer) -> None:
    renderer.submit(frame(ramp(), 1, 0.0))
    grey = show(renderer, 0.0, with_effect("colour_grade", saturation=0.0))
    assert np.abs(grey[..., 0].astype(int) - grey[..., 1]).max() <= 1
    assert np.abs(grey[..., 1].astype(int) - grey[..., 2]).max() <= 1
    flat = show(renderer, 1.0, with_effect("colour_grade", contrast=0.0))
    assert np.abs(flat[..., :3].astype(int) - 128).max() <= 1
    renderer.submit(frame(solid(255, 0, 0, 8), 2, 1.5))
    turned = show(renderer, 2.0, with_effect("colour_grade", hue=1 / 3))  # a third of a turn: red → green
    assert np.abs(turned[..., :3].astype(int) - (0, 255, 0)).max() <= 2


def test_trails_fade_with_time() -> None:
    with make_renderer() as r:
        left, right = solid(0, 0, 0, 64), solid(0, 0, 0, 64)
        left[20:40, 4:20, :3] = 255
        right[20:40, 44:60, :3] = 255
        settings = with_effect("trails", length=0.2, loudness=0.0)
        r.submit(frame(left, 1, 0.0))
        show(r, 0.0, settings)
        r.submit(frame(right, 2, 1 / 60))
        out = show(r, 1 / 60, settings)
        assert out[30, 50, 0] == 255  # the new picture
        expected = 255 * math.exp(-(1 / 60) / 0.2)
        assert abs(int(out[30, 10, 0]) - expected) <= 2  # the trail of the old one
        t = 1 / 60
        while t < 1.0:
            t += 1 / 60
            out = show(r, t, settings)
        assert out[30, 10, 0] <= 2 and out[30, 50, 0] == 255  # faded after a second


def test_every_effect_runs_in_one_chain(renderer: Renderer) -> None:
    from vjgan.display.effects import EFFECTS

    renderer.submit(frame(ramp(), 1, 0.0))
    plain = show(renderer, 0.0)
    chain = OutputSettings(fit="stretch", effects=tuple(EffectConfig(n) for n in EFFECTS))
    for i in range(5):
        stats = renderer.render(DisplayInputs(time=1.0 + i / 60, levels=(0.2, 0.9, 0.1), bass=0.9, loudness=0.7,
                                              beat_phase=0.1, onset_time=1.0), chain)
    out = renderer.read_pixels()
    assert np.abs(out.astype(int) - plain.astype(int)).mean() > 5
    assert stats.output_size == SIZE


def test_a_bad_chain_is_refused_with_one_line(renderer: Renderer) -> None:
    with pytest.raises(UserError, match="unknown parameter 'speed'"):
        bad = OutputSettings(effects=(EffectConfig("kaleidoscope", {"speed": 1.0}),))
        renderer.render(DisplayInputs(time=0.0), bad)


# --- flash safety ----------------------------------------------------------------------------------

def strobe_run(renderer: Renderer, seconds: float = 3.0, hz: float = 10.0) -> list[float]:
    white, black = solid(255, 255, 255, 8), solid(0, 0, 0, 8)
    presented = []
    for i in range(int(seconds * 60)):
        t = i / 60
        renderer.submit(frame(white if int(t * hz * 2) % 2 == 0 else black, i + 1, t))
        renderer.render(DisplayInputs(time=t), STRETCH)
        presented.append(mean_luminance(renderer.read_pixels()))  # measured independently, on the CPU
    return presented


def _max_in_one_second(hits: list[int]) -> int:
    return max((sum(1 for j in hits if s <= j < s + 60) for s in range(0, max(hits, default=0) + 1)), default=0)


def test_flash_limiter_caps_a_ten_hertz_strobe() -> None:
    with make_renderer((32, 18)) as r:
        presented = strobe_run(r)
    hits = count_changes(presented, start=0.0)
    assert _max_in_one_second(hits) <= 3
    jumps = [i for i in range(1, len(presented)) if abs(presented[i] - presented[i - 1]) >= 0.1
             and min(presented[i], presented[i - 1]) < 0.8]
    assert _max_in_one_second(jumps) <= 3
    assert len(hits) >= 6  # limited, not frozen


def test_without_the_default_limit_the_strobe_gets_through() -> None:
    with make_renderer((32, 18), flash=FlashSafetyConfig(max_changes_per_s=30)) as r:
        assert r.flash_warning
        presented = strobe_run(r, seconds=1.5)
    assert _max_in_one_second(count_changes(presented, start=0.0)) >= 15


def test_measured_luminance_matches_the_picture(renderer: Renderer) -> None:
    renderer.submit(frame(ramp(), 1, 0.0))
    stats = renderer.render(DisplayInputs(time=0.0), OutputSettings(fit="fit"))
    assert stats.luminance == pytest.approx(mean_luminance(renderer.read_pixels()), abs=0.01)
