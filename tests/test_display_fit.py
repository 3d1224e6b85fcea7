"""Fit / fill / stretch: the GL present shader and the torch fallback frame pictures identically.

Both are checked against the geometry worked out by hand: the test frame is a linear ramp (red
grows with the column, green with the row), which bilinear sampling reproduces exactly, so every
output pixel has a known value.
"""

from __future__ import annotations

import ctypes.util

import numpy as np
import pytest
import torch

from vjgan.display.fit import fit_frames
from vjgan.display.geometry import place

SIZES = [(160, 90), (90, 160), (1920, 1080)]


def ramp(width: int = 32, height: int = 32) -> np.ndarray:
    frame = np.empty((height, width, 4), np.uint8)
    frame[..., 0] = (np.arange(width) * (248 // width) + 4)[None, :]
    frame[..., 1] = (np.arange(height) * (248 // height) + 4)[:, None]
    frame[..., 2] = 128
    frame[..., 3] = 255
    return frame


def expected(mode: str, src_w: int, src_h: int, out_w: int, out_h: int, background: int = 0) -> np.ndarray:
    """The picture by hand: each output pixel centre → frame coordinate → the ramp's value there."""
    p = place(mode, src_w, src_h, out_w, out_h)
    su = ((np.arange(out_w) + 0.5) / out_w - 0.5) / p.scale_x + 0.5
    sv = ((np.arange(out_h) + 0.5) / out_h - 0.5) / p.scale_y + 0.5
    tx = np.clip(su * src_w - 0.5, 0, src_w - 1)  # texel coordinate, clamped at the edges
    ty = np.clip(sv * src_h - 0.5, 0, src_h - 1)
    out = np.empty((out_h, out_w, 3), np.float64)
    out[..., 0] = (tx * (248 // src_w) + 4)[None, :]
    out[..., 1] = (ty * (248 // src_h) + 4)[:, None]
    out[..., 2] = 128
    if mode == "fit":
        inside = ((su >= 0) & (su <= 1))[None, :] & ((sv >= 0) & (sv <= 1))[:, None]
        out[~inside] = background
    return out


@pytest.mark.parametrize("mode", ["fit", "fill", "stretch"])
@pytest.mark.parametrize("out_size", SIZES[:2])
def test_torch_fallback_matches_the_geometry(mode: str, out_size: tuple[int, int]) -> None:
    frame = ramp()
    batch = torch.from_numpy(np.stack([frame, frame]))
    out = fit_frames(batch, *out_size, mode=mode)
    assert out.shape == (2, out_size[1], out_size[0], 4) and out.dtype == torch.uint8
    want = expected(mode, 32, 32, *out_size)
    assert np.abs(out[1, ..., :3].numpy().astype(float) - want).max() <= 1.0
    assert (out[..., 3] == 255).all()  # fit's bars are opaque


def test_torch_fallback_channels_first_float_and_background() -> None:
    frame = ramp(32, 16)  # not square: a landscape frame on a portrait output
    x = torch.from_numpy(frame[..., :3]).permute(2, 0, 1)[None].float() / 127.5 - 1.0  # [1, 3, H, W] in -1..1
    out = fit_frames(x, 90, 160, mode="fit", background=-1.0)
    assert out.shape == (1, 3, 160, 90) and out.dtype == torch.float32
    got = (out[0].permute(1, 2, 0).numpy() + 1.0) * 127.5
    assert np.abs(got - expected("fit", 32, 16, 90, 160, background=0)).max() <= 0.01
    with pytest.raises(ValueError, match="channel axis"):
        fit_frames(torch.zeros(1, 5, 5, 5), 10, 10)


# --- the GL path -------------------------------------------------------------------------------

def _gl_renderer(size: tuple[int, int]):  # type: ignore[no-untyped-def]
    if ctypes.util.find_library("EGL") is None and ctypes.util.find_library("GL") is None:
        pytest.skip("no OpenGL library (libEGL/libGL) is installed (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri)")
    from vjgan.display.renderer import Renderer
    from vjgan.display.settings import RendererConfig

    return Renderer.offscreen(size, RendererConfig(upload="pbo"))


@pytest.mark.parametrize("out_size", SIZES)
def test_gl_and_torch_frame_the_picture_the_same_way(out_size: tuple[int, int]) -> None:
    from vjgan.display.frame import Frame
    from vjgan.display.inputs import DisplayInputs
    from vjgan.display.settings import OutputSettings

    modes = ["fit", "fill"] if out_size == (1920, 1080) else ["fit", "fill", "stretch"]
    frames = [ramp(), ramp(32, 16)]
    with _gl_renderer(out_size) as renderer:
        t = 0.0
        for mode in modes:
            for i, frame in enumerate(frames):
                t += 2.0  # far apart: the flash limiter never has to hold a change back here
                # Ready a second before it is shown, so any cross-fade from the previous one is over.
                renderer.submit(Frame(frame, int(t), t - 1.0, t - 1.0, 32))
                stats = renderer.render(DisplayInputs(time=t), OutputSettings(fit=mode))
                assert not stats.flash_limited
                gl = renderer.read_pixels()
                h, w = frame.shape[:2]
                want = expected(mode, w, h, *out_size)
                error = np.abs(gl[..., :3].astype(float) - want).max()
                assert error <= 1.0, f"{mode} {w}x{h} → {out_size}: off by {error}"
                fallback = fit_frames(torch.from_numpy(frame[None]), *out_size, mode=mode)[0].numpy()
                difference = np.abs(gl.astype(int) - fallback.astype(int)).max()
                assert difference <= 1, f"{mode} {w}x{h} → {out_size}: GL and torch differ by {difference}"
                if mode == "fit":  # the bars are exactly where the fallback puts them
                    assert np.array_equal(gl[..., :3].sum(-1) == 0, fallback[..., :3].sum(-1) == 0)
