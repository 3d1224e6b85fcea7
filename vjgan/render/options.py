"""What `vjgan render` was asked to do: one typed, validated value built from the command line.

Parsing helpers turn the user's spelling (`--fps 29.97`, `--size 1920x1080`) into exact values
and reject nonsense with one line each, before anything is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import UserError
from ..motion.config import SEED
from ..prompt.settings import SearchSettings

MAX_FPS = 240
MAX_SIDE = 8192
MIN_SIDE = 16
DEFAULT_BATCH = 8
MAX_BATCH = 256
MAX_THREADS = 1024
MAX_QUALITY = 63.0  # the largest crf any of the encoders takes (VP9, AV1)


@dataclass(frozen=True)
class RenderOptions:
    audio: Path
    out: Path
    preset: str = "default"  # a preset name or a .toml path
    model: str | None = None  # overrides the preset's model
    keyframes: tuple[str, ...] = ()  # keyframe files (a projected portrait) instead of the preset's keyframes
    fps: Fraction = Fraction(30)
    size: tuple[int, int] | None = None  # (width, height); None = the model's square resolution
    start: float = 0.0  # seconds into the audio file (rounded to the nearest frame)
    duration: float | None = None  # seconds; None = to the end of the file
    seed: int | None = None  # motion seed; None = the preset's
    codec: str | None = None  # encoder name or alias; None = the container's default (H.264 for .mp4)
    quality: float | None = None  # the codec's constant-quality value (crf, cq); None = its default
    encoder_preset: str | None = None  # the encoder's speed/quality preset (x264 "medium", NVENC "p5")
    batch: int = DEFAULT_BATCH  # frames generated per batch
    device: str | None = None  # cuda, mps or cpu; None = the best present
    threads: int | None = None  # CPU threads for torch; None = torch's default
    force: bool = False  # replace an existing output file
    timings: bool = False  # print generation vs encoding time at the end
    use_gl: bool = True  # the live renderer on an offscreen GL context, where one can be made
    pipeline: bool = True  # on CUDA, generation and post on their own threads, overlapped (False: --serial)
    progress: bool = True
    # A story film (docs/prompts.md): scenes from a text file, keyframes found by CLIP.
    story: Path | None = None
    clip: str | None = None  # CLIP weights file
    clip_arch: str | None = None  # its open_clip architecture
    captions: bool = False  # write the scenes' text beside the video as NAME.srt
    fade_beats: float = 2.0  # cross-fade into each scene, in beats, ending on its bar line
    search: SearchSettings = field(default_factory=SearchSettings)

    def __post_init__(self) -> None:
        if not 0 < self.fps <= MAX_FPS:
            raise UserError(f"--fps {float(self.fps):g}: must be above 0 and at most {MAX_FPS}")
        if self.size is not None:
            check_size(*self.size)
        if not math.isfinite(self.start) or self.start < 0:
            raise UserError(f"--start {self.start:g}: must be a time ≥ 0 in seconds")
        if self.duration is not None and (not math.isfinite(self.duration) or self.duration <= 0):
            raise UserError(f"--duration {self.duration:g}: must be a positive time in seconds")
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise UserError(f"--threads {self.threads}: must be at least 1")
        if not 1 <= self.batch <= MAX_BATCH:
            raise UserError(f"--batch {self.batch}: must be between 1 and {MAX_BATCH} frames")
        if self.quality is not None and (not math.isfinite(self.quality) or not 0 <= self.quality <= MAX_QUALITY):
            raise UserError(f"--quality {self.quality:g}: must be a number in 0..{MAX_QUALITY:g} (lower is better for crf/cq)")
        if self.seed is not None and SEED.problem(self.seed) is not None:
            raise UserError(f"--seed {SEED.problem(self.seed)}")
        if self.story is not None and not (self.clip and self.clip_arch):
            raise UserError("--story needs CLIP to turn its words into pictures: give --clip FILE and --clip-arch ARCH "
                            "(docs/prompts.md)")
        if self.captions and self.story is None:
            raise UserError("--captions shows a story's text: it needs --story")
        if not (math.isfinite(self.fade_beats) and 0 <= self.fade_beats <= 64):
            raise UserError(f"--fade {self.fade_beats:g}: must be between 0 (a cut) and 64 beats")


def parse_fps(text: str) -> Fraction:
    """'30', '29.97' (read as NTSC's 30000/1001), '24000/1001' → an exact frame rate."""
    text = text.strip()
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            value = Fraction(int(num), int(den))
        else:
            value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise UserError(f"--fps {text!r}: expected a number such as 30, 29.97 or 30000/1001") from None
    if value.denominator != 1:
        # Broadcast rates written in decimals (23.976, 29.97, 59.94) mean n·1000/1001.
        for base in (24, 30, 48, 60, 120):
            ntsc = Fraction(base * 1000, 1001)
            if abs(float(value - ntsc)) < 0.006:
                return ntsc
        value = value.limit_denominator(1001)
    if not 0 < value <= MAX_FPS:
        raise UserError(f"--fps {text}: must be above 0 and at most {MAX_FPS}")
    return value


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' → (1920, 1080)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1920x1080") from None
    check_size(width, height)
    return width, height


def check_size(width: int, height: int) -> None:
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise UserError(f"--size {width}x{height}: each side must be between {MIN_SIDE} and {MAX_SIDE} pixels")
    if width % 2 or height % 2:
        # 4:2:0 video (what every player and site expects) halves both axes for colour.
        raise UserError(f"--size {width}x{height}: width and height must be even for 4:2:0 video")


def parse_time(text: str) -> float:
    """Seconds ('90', '12.5') or minutes:seconds ('1:30', '1:02:03.5')."""
    try:
        parts = [float(p) for p in text.strip().split(":")]
    except ValueError:
        raise UserError(f"time {text!r}: expected seconds (90.5) or m:ss (1:30.5)") from None
    if len(parts) > 3 or any(p < 0 or not math.isfinite(p) for p in parts):
        raise UserError(f"time {text!r}: expected seconds (90.5) or m:ss (1:30.5)")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds
