"""Write a procedural dataset to disk: a folder of PNGs or a .zip of them, plus dataset.json.

Nothing that exists is overwritten: the folder is built under a temporary name beside the
target and renamed into place when complete; a zip is written to a temporary file and renamed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ..errors import UserError
from . import procedural
from ..atomic import publish
from .png import encode_png


def image_name(index: int) -> str:
    """Path of image `index` inside the dataset: 1000 images per sub-folder."""
    return f"{index // 1000:05d}/{index:08d}.png"


def dataset_info(seed: int, count: int, res: int, kinds: dict[str, float]) -> dict:
    return {
        "generator": "vjgan procedural",
        "procedural_version": procedural.PROCEDURAL_VERSION,
        "seed": seed,
        "count": count,
        "resolution": res,
        "kinds": kinds,
        "command": f"vjgan dataset procedural OUT --count {count} --res {res} --seed {seed}"
                   + ("" if kinds == procedural.KIND_WEIGHTS else " --kinds " + ",".join(f"{k}={v:g}" for k, v in kinds.items())),
    }


def write_procedural(out: str | os.PathLike[str], *, seed: int, count: int, res: int,
                     kinds: dict[str, float] | None = None, device: str | torch.device = "cpu",
                     batch: int = 0, threads: int = 0, level: int = 1,
                     progress: Callable[[int, int, float], None] | None = None) -> Path:
    """Render images 0 .. count-1 of dataset `seed` at `res`² and store them under `out`.

    `out` ending in .zip gives one archive (PNGs stored, not recompressed); anything else a
    folder. Returns the path written.
    """
    out = Path(out)
    if out.exists():
        raise UserError(f"{out} already exists; choose a new path (vjgan never overwrites a dataset)")
    if count < 1:
        raise UserError("--count must be at least 1")
    if res < 8 or res & (res - 1):
        raise UserError(f"--res must be a power of two ≥ 8, got {res}")
    kinds = kinds or dict(procedural.KIND_WEIGHTS)
    device = torch.device(device)
    batch = batch or (1024 if device.type == "cuda" else 64)
    threads = threads or min(8, os.cpu_count() or 1)
    info = dataset_info(seed, count, res, kinds)
    as_zip = out.suffix.lower() == ".zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    if as_zip:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        tmp = Path(tmp_name)
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    t0 = time.monotonic()
    keep_tmp = False
    try:
        with ThreadPoolExecutor(threads) as pool:
            archive = zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) if as_zip else None
            try:
                for first, imgs in procedural.iter_batches(seed, count, res, device, batch, kinds):
                    cpu = imgs.to("cpu")
                    blobs = list(pool.map(lambda im: encode_png(im, level), cpu))
                    for k, blob in enumerate(blobs):
                        name = image_name(first + k)
                        if archive is not None:
                            archive.writestr(name, blob)
                        else:
                            target = tmp / name
                            target.parent.mkdir(exist_ok=True)
                            target.write_bytes(blob)
                    if progress is not None:
                        progress(first + len(blobs), count, time.monotonic() - t0)
                if archive is not None:
                    archive.writestr("dataset.json", json.dumps(info, indent=2) + "\n")
            finally:
                if archive is not None:
                    archive.close()
        if not as_zip:
            (tmp / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
        if out.exists():
            keep_tmp = True
            raise UserError(f"{out} appeared while the dataset was being written; the new one is at {tmp}")
        publish(tmp, out)
    except BaseException:
        if not keep_tmp:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        raise
    return out
