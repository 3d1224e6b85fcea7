"""Training data: vjgan's procedural images, image folders and zips, the PNG writer, `vjgan dataset`."""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path

import pytest
import torch

from vjgan.dataset import procedural
from vjgan.dataset.cli import add_dataset_parser
from vjgan.dataset.folder import ImageFolder, decode_image
from vjgan.dataset.png import encode_png, tile, to_uint8
from vjgan.dataset.writer import image_name, write_procedural
from vjgan.errors import UserError
from vjgan.train.data import TrainingData

Image = pytest.importorskip("PIL.Image")


def indices_of_each_kind(seed: int, per_kind: int = 1) -> list[int]:
    found: dict[str, list[int]] = {k: [] for k in procedural.KINDS}
    i = 0
    while any(len(v) < per_kind for v in found.values()):
        kind = procedural.image_kind(seed, i)
        if len(found[kind]) < per_kind:
            found[kind].append(i)
        i += 1
    return [i for k in procedural.KINDS for i in found[k]]


def test_procedural_images_are_a_pure_function_of_seed_and_index() -> None:
    idx = indices_of_each_kind(seed=4)
    assert len(idx) == len(procedural.KINDS)
    a = procedural.render(4, idx, 16)
    b = procedural.render(4, idx, 16)
    assert a.dtype == torch.uint8 and a.shape == (len(idx), 3, 16, 16)
    assert torch.equal(a, b)
    # Rendering alone, or in another order among others, gives the same bytes (no batch dependence).
    assert torch.equal(procedural.render(4, [idx[0]], 16)[0], a[0])
    assert torch.equal(procedural.render(4, [idx[-1], 999, idx[1]], 16)[[0, 2]], a[[-1, 1]])
    # Another seed gives other pictures.
    assert not torch.equal(procedural.render(5, idx[:2], 16), a[:2])


# Mean colour of images 4, 0, 2, 17, 24, 6, 3 of seed 4 at 16² (one of each kind, in KINDS order),
# recorded with procedural version 1. A change to the drawing code that alters published datasets
# must bump PROCEDURAL_VERSION (and these numbers); a tolerance absorbs CPU rounding differences.
GOLDEN_V1 = [[84.77, 65.56, 70.41], [72.73, 78.23, 72.81], [30.06, 31.43, 30.09], [95.64, 99.23, 75.77],
             [56.29, 65.6, 46.54], [29.18, 4.7, 17.31], [81.62, 81.19, 81.72]]


def test_published_datasets_do_not_change_silently() -> None:
    idx = indices_of_each_kind(seed=4)
    assert idx == [4, 0, 2, 17, 24, 6, 3]
    if procedural.PROCEDURAL_VERSION != 1:
        pytest.fail("PROCEDURAL_VERSION changed: record the new golden means here")
    means = procedural.render(4, idx, 16).float().mean(dim=[2, 3])
    torch.testing.assert_close(means, torch.tensor(GOLDEN_V1), atol=0.6, rtol=0)


def test_every_kind_draws_a_picture_with_light_and_structure() -> None:
    idx = indices_of_each_kind(seed=11, per_kind=2)
    imgs = procedural.render(11, idx, 32).float()
    kinds = [procedural.image_kind(11, i) for i in idx]
    for img, kind in zip(imgs, kinds):
        assert img.max() > 100, f"{kind} is too dark"
        assert img.std() > 8, f"{kind} is flat"
        assert (img.mean(0) < 250).float().mean() > 0.2, f"{kind} is blown out"
        # Structure at several scales, not noise: neighbouring pixels are strongly correlated.
        dx = (img[:, :, 1:] - img[:, :, :-1]).abs().mean()
        assert dx < img.std(), f"{kind} looks like noise"


def test_dataset_seed_hash_is_stable() -> None:
    # Published datasets are named by their seed: image seeds must never change silently.
    assert procedural.image_seed(1, 0) == procedural.image_seed(1, 0)
    assert procedural.image_seed(1, 0) != procedural.image_seed(1, 1) != procedural.image_seed(2, 0)
    assert [procedural.image_kind(1, i) for i in range(8)] == [procedural.image_kind(1, i) for i in range(8)]


def test_hash_uniform_is_uniform_enough() -> None:
    u = procedural._hash_uniform(torch.tensor([[12345]]), torch.arange(20000)[None])
    assert 0 <= float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.01
    hist = torch.histc(u, bins=10, min=0, max=1)
    assert float(hist.min()) > 1700


def test_parse_kinds() -> None:
    assert procedural.parse_kinds("") == procedural.KIND_WEIGHTS
    assert procedural.parse_kinds("flame, julia=2") == {"flame": 1.0, "julia": 2.0}
    for bad in ("kittens", "flame=x", "flame=-1", "flame=0"):
        with pytest.raises(ValueError):
            procedural.parse_kinds(bad)
    only = procedural.parse_kinds("cells")
    assert {procedural.image_kind(3, i, only) for i in range(10)} == {"cells"}


def test_writer_makes_a_folder_and_a_zip_of_the_rendered_images(tmp_path: Path) -> None:
    kinds = {"marble": 1.0, "cells": 1.0}
    expected = procedural.render(7, list(range(5)), 16, kinds=kinds)
    folder = write_procedural(tmp_path / "ds", seed=7, count=5, res=16, kinds=kinds)
    archive = write_procedural(tmp_path / "ds.zip", seed=7, count=5, res=16, kinds=kinds)
    info = json.loads((folder / "dataset.json").read_text())
    assert info["seed"] == 7 and info["count"] == 5 and info["procedural_version"] == procedural.PROCEDURAL_VERSION
    assert info["kinds"] == kinds and "--kinds marble=1,cells=1" in info["command"]
    with zipfile.ZipFile(archive) as z:
        assert json.loads(z.read("dataset.json")) == info
        for i in range(5):
            from_zip = decode_image(z.read(image_name(i)), 16)
            from_dir = decode_image((folder / image_name(i)).read_bytes(), 16)
            assert torch.equal(from_zip, expected[i]) and torch.equal(from_dir, expected[i])
    assert not list(tmp_path.glob(".*"))  # no temporary leftovers
    with pytest.raises(UserError, match="already exists"):
        write_procedural(folder, seed=7, count=5, res=16)
    with pytest.raises(UserError, match="power of two"):
        write_procedural(tmp_path / "x", seed=7, count=5, res=24)


def test_dataset_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="vjgan")
    add_dataset_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dataset", "procedural", str(tmp_path / "d"), "--count", "3", "--res", "16",
                              "--seed", "9", "--kinds", "marble,cells", "--device", "cpu"])
    assert args.handler(args) == 0
    assert "wrote 3 images" in capsys.readouterr().out
    assert len(list((tmp_path / "d").rglob("*.png"))) == 3
    for bad, msg in ((["--kinds", "nope"], "--kinds"), (["--seed", "-1"], "--seed"), (["--device", "tpu"], "device")):
        args = parser.parse_args(["dataset", "procedural", str(tmp_path / "e"), "--count", "1", *bad])
        with pytest.raises(UserError, match=msg):
            args.handler(args)


def _png_bytes(img: "Image.Image", fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def make_images(root: Path) -> None:
    """Three good images (one wide, one tall, one with alpha) and three that cannot be read."""
    root.mkdir(parents=True, exist_ok=True)
    wide = Image.new("RGB", (90, 30), (255, 0, 0))
    wide.paste((0, 255, 0), (30, 0, 60, 30))  # green middle third
    wide.save(root / "a_wide.png")
    tall = Image.new("RGB", (20, 60), (0, 0, 255))
    (root / "sub").mkdir()
    tall.save(root / "sub" / "b_tall.jpg", quality=95)
    Image.new("RGBA", (16, 16), (255, 255, 255, 0)).save(root / "c_alpha.png")
    (root / "d_garbage.png").write_bytes(b"this is not an image")
    (root / "e_truncated.jpg").write_bytes(_png_bytes(wide, "JPEG")[:200])
    (root / "f_empty.webp").write_bytes(b"")
    (root / "notes.txt").write_text("not an image, not listed")
    (root / ".hidden.png").write_bytes(b"junk")  # dot files are skipped silently


@pytest.mark.parametrize("as_zip", [False, True])
def test_image_folder_resizes_crops_and_skips_unreadable_files_by_name(tmp_path: Path, as_zip: bool) -> None:
    make_images(tmp_path / "imgs")
    source: Path = tmp_path / "imgs"
    if as_zip:
        source = tmp_path / "imgs.zip"
        with zipfile.ZipFile(source, "w") as z:
            for f in sorted((tmp_path / "imgs").rglob("*")):
                if f.is_file():
                    z.write(f, f.relative_to(tmp_path / "imgs").as_posix())
    warnings: list[str] = []
    folder = ImageFolder(source, 16, warn=warnings.append)
    assert folder.names == ["a_wide.png", "c_alpha.png", "d_garbage.png", "e_truncated.jpg", "f_empty.webp", "sub/b_tall.jpg"]
    images, kept = folder.load_all(threads=2)
    assert kept == ["a_wide.png", "c_alpha.png", "sub/b_tall.jpg"]
    assert images.shape == (3, 3, 16, 16) and images.dtype == torch.uint8
    assert sorted(w.split(":")[0] for w in warnings) == [
        "skipping unreadable image d_garbage.png", "skipping unreadable image e_truncated.jpg",
        "skipping unreadable image f_empty.webp"]
    assert set(folder.unreadable) == {"d_garbage.png", "e_truncated.jpg", "f_empty.webp"}
    # Centre crop of the wide image: only the green middle third survives.
    wide = images[0].float()
    assert wide[1].mean() > 240 and wide[0].mean() < 15
    assert images[1].max() == 0  # transparent → black (no light on the projector)
    tall = images[2].float()
    assert tall[2].mean() > 230 and tall[0].mean() < 25
    # Each unreadable file is reported once, however often it is asked for.
    assert folder.load(folder.names.index("d_garbage.png")) is None
    assert len(warnings) == 3


def test_streamed_training_data_substitutes_unreadable_images(tmp_path: Path) -> None:
    make_images(tmp_path / "imgs")
    warnings: list[str] = []
    data = TrainingData("imgs", 16, folder=ImageFolder(tmp_path / "imgs", 16, warn=warnings.append), threads=2)
    batch = data.batch(torch.arange(len(data)))
    assert batch.shape == (6, 3, 16, 16)
    assert any("d_garbage.png" in w for w in warnings)
    # d_garbage, e_truncated and f_empty (2, 3, 4) are replaced by the next readable file, sub/b_tall (5).
    assert torch.equal(batch[2], batch[5]) and torch.equal(batch[4], batch[5])


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        ImageFolder(tmp_path / "missing", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no images"):
        ImageFolder(tmp_path / "empty", 16)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="neither a folder nor a .zip"):
        ImageFolder(tmp_path / "file.txt", 16)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"nope")
    with pytest.raises(UserError, match="none of the 1 images"):
        ImageFolder(tmp_path / "bad", 16, warn=lambda m: None).load_all()


def test_png_encoder_round_trips() -> None:
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (3, 7, 11), dtype=torch.uint8, generator=g)
    im = Image.open(io.BytesIO(encode_png(rgb)))
    assert im.size == (11, 7) and im.mode == "RGB"
    assert torch.equal(torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).reshape(7, 11, 3).permute(2, 0, 1), rgb)
    grey = torch.randint(0, 256, (5, 4), dtype=torch.uint8, generator=g)
    im = Image.open(io.BytesIO(encode_png(grey)))
    assert im.mode == "L" and torch.equal(torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).reshape(5, 4), grey)
    with pytest.raises(TypeError):
        encode_png(torch.zeros(3, 4, 4))


def test_tile_and_to_uint8() -> None:
    imgs = torch.stack([torch.full((3, 2, 2), float(v)) for v in (-1.0, 0.0, 1.0)])
    u = to_uint8(imgs)
    assert u[:, 0, 0, 0].tolist() == [0, 128, 255]
    grid = tile(u, cols=2)
    assert grid.shape == (3, 4, 4)
    assert grid[0, 0, 0] == 0 and grid[0, 0, 2] == 128 and grid[0, 2, 0] == 255 and grid[0, 2, 2] == 0
