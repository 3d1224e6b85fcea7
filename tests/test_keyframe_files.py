"""Keyframe files: one plain-array format for projected and prompted latents, bound to a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vjgan.errors import UserError
from vjgan.motion.keyframe_files import load_keyframes, save_keyframes


def test_round_trip_keeps_ws_hash_kind_and_extras(tmp_path: Path) -> None:
    ws = np.random.default_rng(0).standard_normal((10, 128)).astype(np.float32)
    path = save_keyframes(tmp_path / "face.npz", ws, "abc123", "projection", source="photo.jpg", psnr=31.5)
    kf = load_keyframes(path, model_hash="abc123", num_ws=10, w_dim=128)
    np.testing.assert_array_equal(kf.ws, ws)
    assert (kf.kind, str(kf.extra["source"]), float(kf.extra["psnr"])) == ("projection", "photo.jpg", 31.5)


def test_file_for_another_model_or_shape_is_refused_by_name(tmp_path: Path) -> None:
    path = save_keyframes(tmp_path / "face.npz", np.zeros((10, 128)), "abc123", "projection")
    with pytest.raises(UserError, match="face.npz was made for another model"):
        load_keyframes(path, model_hash="def456")
    with pytest.raises(UserError, match=r"face.npz: ws shape \[10, 128\] does not fit"):
        load_keyframes(path, num_ws=16, w_dim=128)


@pytest.mark.parametrize("content", [b"", b"not a zip", None])
def test_junk_or_foreign_files_give_one_line(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "junk.npz"
    if content is None:
        np.savez(path, something=np.zeros(3))  # a valid .npz that vjgan did not make
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match="junk.npz") as e:
        load_keyframes(path)
    assert "\n" not in str(e.value)


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, ws=np.array([{"a": 1}], dtype=object), model_hash=np.str_("x"), kind=np.str_("prompt"))
    with pytest.raises(UserError, match="evil.npz"):
        load_keyframes(path)
