"""Training images from a folder (searched recursively) or a .zip archive.

Each image is decoded, converted to RGB, scaled so its shorter side matches the training
resolution and centre-cropped, when it is read; the source files are never changed. A file that
cannot be decoded is reported once, by name and reason, and left out.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ..errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def _default_warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _pil():
    try:
        from PIL import Image, ImageOps
    except ImportError:  # pillow is a dependency; this only guards stripped-down environments
        raise UserError("reading training images needs Pillow (pip install pillow)") from None
    return Image, ImageOps


def decode_image(data: bytes, resolution: int) -> torch.Tensor:
    """Decode image bytes to uint8 [3, resolution, resolution]: RGB, shorter side scaled, centre-cropped.

    Raises ValueError (with the decoder's reason) when the bytes are not a readable image.
    """
    Image, ImageOps = _pil()
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format == "JPEG":
                im.draft("RGB", (resolution, resolution))  # let libjpeg decode at a reduced scale
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                canvas = Image.new("RGB", rgba.size, (0, 0, 0))  # transparency becomes black (no light)
                canvas.paste(rgba, mask=rgba.getchannel("A"))
                im = canvas
            else:
                im = im.convert("RGB")
            im = ImageOps.fit(im, (resolution, resolution), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
            raw = im.tobytes()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError) as e:
        raise ValueError(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from None
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(resolution, resolution, 3).permute(2, 0, 1).contiguous()


class ImageFolder:
    """The images in a folder or .zip, read on demand at `resolution`².

    Files are listed once, sorted by name (so index i is the same file on every machine).
    `warn` receives one line per unreadable file.
    """

    def __init__(self, path: str | os.PathLike[str], resolution: int, *,
                 warn: Callable[[str], None] = _default_warn) -> None:
        self.path = Path(path)
        self.resolution = int(resolution)
        self.warn = warn
        self._local = threading.local()
        self._bad: dict[int, str] = {}
        self._lock = threading.Lock()
        if not self.path.exists():
            raise UserError(f"training data {self.path} does not exist")
        if self.path.is_dir():
            self.is_zip = False
            names = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*")
                     if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not any(part.startswith(".") for part in p.relative_to(self.path).parts)]
        elif zipfile.is_zipfile(self.path):
            self.is_zip = True
            try:
                with zipfile.ZipFile(self.path) as z:
                    names = [n for n in z.namelist() if not n.endswith("/") and Path(n).suffix.lower() in IMAGE_EXTENSIONS
                             and not any(part.startswith(".") or part == "__MACOSX" for part in Path(n).parts)]
            except (zipfile.BadZipFile, OSError) as e:
                raise UserError(f"training data {self.path} is not a readable zip archive ({e})") from None
        else:
            raise UserError(f"training data {self.path} is neither a folder nor a .zip archive of images")
        self.names = sorted(names)
        if not self.names:
            raise UserError(f"training data {self.path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def unreadable(self) -> dict[str, str]:
        """Files found unreadable so far: name → reason."""
        return {self.names[i]: why for i, why in sorted(self._bad.items())}

    def _read_bytes(self, index: int) -> bytes:
        name = self.names[index]
        if not self.is_zip:
            return (self.path / name).read_bytes()
        z = getattr(self._local, "zip", None)
        if z is None:  # one handle per thread: ZipFile is not safe to share between threads
            z = self._local.zip = zipfile.ZipFile(self.path)
        return z.read(name)

    def load(self, index: int) -> torch.Tensor | None:
        """Image `index` as uint8 [3, R, R], or None if it cannot be read (reported once)."""
        if index in self._bad:
            return None
        try:
            return decode_image(self._read_bytes(index), self.resolution)
        except (OSError, ValueError, zipfile.BadZipFile, KeyError, RuntimeError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            with self._lock:
                first = index not in self._bad
                self._bad[index] = reason
            if first:
                self.warn(f"skipping unreadable image {self.names[index]}: {reason}")
            return None

    def load_many(self, indices: list[int], threads: int = 0) -> list[torch.Tensor | None]:
        """Decode several images, in parallel threads (Pillow decodes without the interpreter lock)."""
        threads = threads or min(8, os.cpu_count() or 1)
        if threads <= 1 or len(indices) <= 1:
            return [self.load(i) for i in indices]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(self.load, indices))

    def load_all(self, threads: int = 0, progress: Callable[[int, int], None] | None = None,
                 chunk: int = 1024) -> tuple[torch.Tensor, list[str]]:
        """Every readable image as one uint8 tensor [M, 3, R, R], and their names; unreadable ones are skipped."""
        kept: list[torch.Tensor] = []
        kept_names: list[str] = []
        for start in range(0, len(self.names), chunk):
            idx = list(range(start, min(start + chunk, len(self.names))))
            for i, img in zip(idx, self.load_many(idx, threads)):
                if img is not None:
                    kept.append(img)
                    kept_names.append(self.names[i])
            if progress is not None:
                progress(idx[-1] + 1, len(self.names))
        if not kept:
            raise UserError(f"none of the {len(self.names)} images in {self.path} could be read")
        return torch.stack(kept), kept_names
