"""Where training images come from, and the order in which they are drawn.

DATA is a folder or .zip of images, or `procedural:SEED:COUNT`, which renders vjgan's own
dataset (see vjgan.dataset.procedural) in memory on the training device instead of reading it
from disk. Images small enough to fit the cache budget are decoded once and kept in memory as
uint8; larger sets are decoded per batch in threads.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..dataset import procedural
from ..dataset.folder import ImageFolder
from ..errors import UserError

_PROCEDURAL = re.compile(r"^procedural:(\d+):(\d+)(?::([a-z=0-9.,+]+))?$")


class TrainingData:
    """A set of uint8 images [3, R, R], indexed 0 .. len-1."""

    def __init__(self, spec: str, resolution: int, *, images: torch.Tensor | None = None,
                 folder: ImageFolder | None = None, threads: int = 0) -> None:
        if (images is None) == (folder is None):
            raise ValueError("give either images or folder")
        self.spec, self.resolution = spec, resolution
        self.images, self.folder, self.threads = images, folder, threads
        self._fallback: dict[int, int] = {}

    def __len__(self) -> int:
        return self.images.shape[0] if self.images is not None else len(self.folder)

    @property
    def device(self) -> torch.device:
        return self.images.device if self.images is not None else torch.device("cpu")

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """uint8 images [B, 3, R, R] for `indices` (CPU int64), on the storage device."""
        if self.images is not None:
            return self.images[indices.to(self.images.device)]
        idx = [int(i) for i in indices]
        loaded = self.folder.load_many(idx, self.threads)
        out = []
        for i, img in zip(idx, loaded):
            while img is None:  # unreadable (reported by the folder): take the next readable file
                i = self._fallback.setdefault(i, (i + 1) % len(self.folder))
                if len(self.folder.unreadable) >= len(self.folder):
                    raise UserError(f"none of the images in {self.folder.path} could be read")
                img = self.folder.load(i)
            out.append(img)
        return torch.stack(out)

    def describe(self) -> str:
        where = f"in memory on {self.device}" if self.images is not None else "streamed from disk"
        return f"{len(self)} images {self.resolution}x{self.resolution} from {self.spec} ({where})"


def parse_procedural(spec: str) -> tuple[int, int, dict[str, float]] | None:
    """`procedural:SEED:COUNT[:KINDS]` → (seed, count, kinds) or None if spec is not procedural."""
    m = _PROCEDURAL.match(spec.strip())
    if not m:
        if spec.strip().startswith("procedural:"):
            raise UserError(f"procedural data is written procedural:SEED:COUNT (for example procedural:1:50000), got {spec!r}")
        return None
    kinds = procedural.parse_kinds(m.group(3).replace("+", ",")) if m.group(3) else dict(procedural.KIND_WEIGHTS)
    return int(m.group(1)), int(m.group(2)), kinds


def open_training_data(spec: str, resolution: int, device: torch.device, *, cache_gb: float = 8.0,
                       threads: int = 0, log: Callable[[str], None] = print,
                       warn: Callable[[str], None] | None = None) -> TrainingData:
    """Open DATA for training at `resolution`², rendering or decoding into memory when it fits."""
    proc = parse_procedural(spec)
    if proc is not None:
        seed, count, kinds = proc
        if count < 1:
            raise UserError("a procedural dataset needs a count of at least 1")
        gb = count * 3 * resolution * resolution / 1e9
        t0 = time.monotonic()
        log(f"rendering procedural dataset seed {seed}: {count} images {resolution}x{resolution} on {device} ({gb:.2f} GB)")
        last = [t0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last[0] > 10:
                last[0] = now
                log(f"  {done}/{total} images, {done / max(now - t0, 1e-9):.0f} img/s")

        batch = 2048 if device.type == "cuda" else 64
        images = procedural.generate(seed, count, resolution, device, batch=batch, kinds=kinds, progress=progress)
        log(f"rendered in {time.monotonic() - t0:.1f}s")
        return TrainingData(spec, resolution, images=images)
    path = Path(spec)
    folder = ImageFolder(path, resolution, warn=warn or (lambda m: log(m)))
    gb = len(folder) * 3 * resolution * resolution / 1e9
    if gb <= cache_gb:
        t0 = time.monotonic()
        log(f"decoding {len(folder)} images from {path} to {resolution}x{resolution} ({gb:.2f} GB in memory)")
        images, _ = folder.load_all(threads)
        skipped = len(folder) - images.shape[0]
        log(f"decoded {images.shape[0]} images in {time.monotonic() - t0:.1f}s" + (f"; skipped {skipped} unreadable" if skipped else ""))
        if device.type == "cuda" and gb <= 0.5 * cache_gb:
            images = images.to(device)
        return TrainingData(str(path), resolution, images=images)
    log(f"{len(folder)} images would take {gb:.1f} GB (> --cache-gb {cache_gb:g}); decoding them per batch instead")
    return TrainingData(str(path), resolution, folder=folder, threads=threads)


class EpochSampler:
    """Draws indices in shuffled passes over the dataset (every image once per pass), with a random
    horizontal flip per draw when mirroring. Its whole state fits in a snapshot."""

    def __init__(self, count: int, seed: int, mirror: bool) -> None:
        self.count, self.mirror = count, mirror
        self.gen = torch.Generator(device="cpu")
        self.gen.manual_seed(seed)
        self.perm = torch.randperm(count, generator=self.gen)
        self.pos = 0

    def next(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices int64 [batch], flip bool [batch]) on the CPU."""
        parts = []
        need = batch
        while need > 0:
            if self.pos >= self.count:
                self.perm = torch.randperm(self.count, generator=self.gen)
                self.pos = 0
            take = min(need, self.count - self.pos)
            parts.append(self.perm[self.pos : self.pos + take])
            self.pos += take
            need -= take
        idx = torch.cat(parts)
        flip = torch.rand(batch, generator=self.gen) < 0.5 if self.mirror else torch.zeros(batch, dtype=torch.bool)
        return idx, flip

    def state_dict(self) -> dict:
        return {"count": self.count, "gen": self.gen.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        if int(state["count"]) != self.count:
            # A different dataset: keep the generator's stream but start a fresh pass over it.
            self.gen.set_state(state["gen"])
            self.perm = torch.randperm(self.count, generator=self.gen)
            self.pos = 0
            return
        self.gen.set_state(state["gen"])
        self.perm = state["perm"].clone()
        self.pos = int(state["pos"])
