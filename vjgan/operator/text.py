"""Text for the operator window and the output HUD: a glyph atlas drawn once with Pillow.

Every string on screen changes many times a second (fps, levels, values), so rasterising whole
strings per redraw would cost the main thread milliseconds. Instead each character is drawn once
into an alpha atlas (Pillow's built-in scalable font, so no font file has to be installed), and a
string becomes one textured quad per character: a few numpy rows, uploaded with the rest of the
picture in one buffer.

Coordinates are framebuffer pixels with y growing downwards; a string is placed by the top-left
corner of its line box. Pen positions are rounded to whole pixels and the atlas is sampled
without filtering, so glyphs stay crisp at any position.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Printable ASCII and Latin-1: names, numbers, units, accented port names. Characters the font
# lacks (its "missing glyph" box) are left out and drawn as FALLBACK.
CHARSET = "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(chr(c) for c in range(0xA1, 0x100))
FALLBACK = "?"
_PAD = 1  # empty pixels around each glyph cell, so neighbours never bleed into each other
_CACHE_LIMIT = 4096  # strings whose quads are kept (labels repeat every redraw)


@dataclass(frozen=True, slots=True)
class Glyph:
    x0: int  # offset of the glyph's bitmap from the pen position (left edge of the line box)
    y0: int  # offset from the top of the line box
    width: int
    height: int
    u0: float  # atlas texture coordinates of the bitmap, v grows downwards like the rows
    v0: float
    u1: float
    v1: float
    advance: float  # how far the pen moves


def load_font(size_px: int) -> Any:
    """Pillow's built-in font at `size_px` (scalable where Pillow has FreeType, else its bitmap font)."""
    if size_px < 4:
        raise ValueError(f"font size {size_px} px is too small to read")
    return ImageFont.load_default(size=size_px)


class GlyphAtlas:
    """An alpha bitmap holding every character of CHARSET, and where each one lies in it."""

    def __init__(self, pixels: np.ndarray, glyphs: dict[str, Glyph], line_height: int, ascent: int,
                 size_px: int) -> None:
        self.pixels = pixels  # uint8 [H, W], row 0 at the top
        self.glyphs = glyphs
        self.line_height = line_height
        self.ascent = ascent
        self.size_px = size_px
        self._quads: dict[str, np.ndarray] = {}
        self._widths: dict[str, float] = {}

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the atlas bitmap."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    def glyph(self, ch: str) -> Glyph:
        return self.glyphs.get(ch) or self.glyphs[FALLBACK]

    def measure(self, text: str) -> float:
        """Width in pixels of `text` set on one line."""
        width = self._widths.get(text)
        if width is None:
            if len(self._widths) >= _CACHE_LIMIT:
                self._widths.clear()
            width = self._widths[text] = float(sum(self.glyph(ch).advance for ch in text))
        return width

    def quads(self, text: str) -> np.ndarray:
        """Corner rectangles of `text`'s glyphs, relative to the top-left of its line box.

        float32 [n, 8]: x0, y0, x1, y1 (pixels) and u0, v0, u1, v1 (atlas), one row per visible
        glyph (spaces have none). Cached per string: most labels repeat every redraw.
        """
        cached = self._quads.get(text)
        if cached is not None:
            return cached
        rows = []
        pen = 0.0
        for ch in text:
            g = self.glyph(ch)
            if g.width and g.height:
                x = round(pen) + g.x0
                rows.append((x, g.y0, x + g.width, g.y0 + g.height, g.u0, g.v0, g.u1, g.v1))
            pen += g.advance
        out = np.asarray(rows, dtype=np.float32).reshape(-1, 8)
        if len(self._quads) >= _CACHE_LIMIT:
            self._quads.clear()  # values that changed every redraw filled it: start afresh
        self._quads[text] = out
        return out


def _render(font: Any, ch: str) -> tuple[tuple[int, int, int, int], np.ndarray]:
    left, top, right, bottom = font.getbbox(ch)
    w, h = max(0, right - left), max(0, bottom - top)
    image = Image.new("L", (max(w, 1), max(h, 1)), 0)
    if w and h:
        ImageDraw.Draw(image).text((-left, -top), ch, font=font, fill=255)
    return (left, top, w, h), np.asarray(image, dtype=np.uint8)


def _line_metrics(font: Any) -> tuple[int, int]:
    """(line height, ascent) in pixels."""
    if hasattr(font, "getmetrics"):
        ascent, descent = font.getmetrics()
        return int(ascent + descent), int(ascent)
    _, top, _, bottom = font.getbbox("Ag|")  # Pillow's bitmap font has no metrics call
    return int(bottom - min(top, 0)), int(bottom)


@lru_cache(maxsize=8)
def build_atlas(size_px: int) -> GlyphAtlas:
    """The atlas for Pillow's built-in font at `size_px` (cached: windows at one scale share it)."""
    font = load_font(size_px)
    line_height, ascent = _line_metrics(font)
    # The glyph the font draws for characters it does not have: anything identical is missing.
    _, missing = _render(font, "\uffff")
    rendered: list[tuple[str, tuple[int, int, int, int], np.ndarray, float]] = []
    for ch in CHARSET:
        box, bitmap = _render(font, ch)
        if ch != FALLBACK and ch != " " and bitmap.shape == missing.shape and np.array_equal(bitmap, missing):
            continue
        rendered.append((ch, box, bitmap, float(font.getlength(ch))))

    # Shelf packing into a fixed-width atlas: rows of glyphs, each shelf as tall as its tallest.
    atlas_w = 512
    x = y = shelf = 0
    spots = []
    for _, (_, _, w, h), _, _ in rendered:
        if x + w + 2 * _PAD > atlas_w:
            x, y, shelf = 0, y + shelf, 0
        spots.append((x + _PAD, y + _PAD))
        x += w + 2 * _PAD
        shelf = max(shelf, h + 2 * _PAD)
    atlas_h = max(1, y + shelf)
    pixels = np.zeros((atlas_h, atlas_w), dtype=np.uint8)
    glyphs: dict[str, Glyph] = {}
    for (ch, (left, top, w, h), bitmap, advance), (gx, gy) in zip(rendered, spots):
        if w and h:
            pixels[gy:gy + h, gx:gx + w] = bitmap[:h, :w]
        glyphs[ch] = Glyph(left, top, w, h, gx / atlas_w, gy / atlas_h, (gx + w) / atlas_w, (gy + h) / atlas_h,
                           advance)
    return GlyphAtlas(pixels, glyphs, line_height, ascent, size_px)


def fit_text(text: str, width: float, measure: Any, ellipsis: str = "...") -> str:
    """`text`, shortened with an ellipsis so that `measure(result) <= width` (may be empty)."""
    if measure(text) <= width:
        return text
    if measure(ellipsis) > width:
        return ""
    lo, hi = 0, len(text)  # the longest prefix that fits with the ellipsis: binary search
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid] + ellipsis) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + ellipsis
