"""A story file and the song's beat grid → scenes with start and end times on bar lines.

The story is plain text, one scene per paragraph (paragraphs are separated by blank lines;
lines starting with `#` are comments). A paragraph may begin with its length in brackets:

    [8 bars] A yeti walks through the snow at dawn. It stops at a frozen lake.

    [12 s] Under the ice, a tardigrade wakes.

    A city of glass under a green sky.

`[N bars]` (or `[1 bar]`) counts bars of the song's grid; `[N s]` or `[m:ss]` is rounded to the
nearest whole bar (at least one), because every scene change lands on a bar line. Scenes without
a length share the bars the others leave, evenly. The story is laid over the whole song: the
first scene also holds any pickup before the first bar line, the last lasts until the song ends,
and scenes that would start after the end are left out. (So a render of a section, `--start`
and `--duration`, is that part of the whole film.) Each sentence of a scene is one prompt, so one keyframe (a fragment of one or
two words joins the sentence before it).

Scene changes are cross-fades that end on the bar line: the next scene is fully there on the
downbeat. Pure functions: tests feed them numbers.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..motion.latents import smoothstep
from .beatgrid import BeatGrid

MAX_STORY_BYTES = 1024 * 1024
LENGTH = re.compile(r"\[\s*(?:(?P<bars>\d+)\s*bars?|(?P<seconds>\d+(?:\.\d+)?)\s*(?:s|secs?|seconds?)"
                    r"|(?P<minutes>\d+):(?P<mss>\d{1,2}(?:\.\d+)?))\s*\]", re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


@dataclass(frozen=True)
class SceneLength:
    value: float
    unit: str  # "bars" or "s"


@dataclass(frozen=True)
class StoryScene:
    text: str  # the paragraph, spaces normalised (the caption)
    prompts: tuple[str, ...]  # its sentences: one keyframe each
    length: SceneLength | None
    line: int  # where the paragraph starts in the file (1-based), for messages


@dataclass(frozen=True)
class PlannedScene:
    scene: StoryScene
    start: float  # seconds on the song's clock
    end: float
    fade: float  # length of the cross-fade into the next scene, ending at `end` (0: a cut, or the last scene)


@dataclass(frozen=True)
class StoryPlan:
    scenes: tuple[PlannedScene, ...]
    grid: BeatGrid
    left_out: int  # scenes that would have started after the end of the film

    def at(self, t: float) -> tuple[int, float]:
        """(scene on screen at time t, weight of the next scene in the cross-fade: 0 outside one)."""
        i = 0
        while i + 1 < len(self.scenes) and t >= self.scenes[i].end:
            i += 1
        s = self.scenes[i]
        if s.fade > 0 and i + 1 < len(self.scenes) and t >= s.end - s.fade:
            return i, smoothstep((t - (s.end - s.fade)) / s.fade)
        return i, 0.0


# ---------------------------------------------------------------------------------------------
# reading


def split_prompts(text: str) -> tuple[str, ...]:
    """Sentences of a paragraph; a fragment of fewer than three words joins its neighbour."""
    prompts: list[str] = []
    for sentence in SENTENCE_END.split(text.strip()):
        if not sentence:
            continue
        if prompts and (len(sentence.split()) < 3 or len(prompts[-1].split()) < 3):
            prompts[-1] = f"{prompts[-1]} {sentence}"
        else:
            prompts.append(sentence)
    return tuple(prompts)


def parse_story(text: str, source: str = "story") -> list[StoryScene]:
    """Scenes of a story text; a bad length or an empty story is one UserError naming the line."""
    scenes: list[StoryScene] = []
    paragraph: list[str] = []
    first_line = 0

    def finish() -> None:
        if not paragraph:
            return
        body = " ".join(" ".join(paragraph).split())
        length = None
        if body.startswith("["):
            found = LENGTH.match(body)
            if found is None:
                marker = body[: body.find("]") + 1] if "]" in body else body.split()[0]
                raise UserError(f"{source} line {first_line}: {marker!r} is not a scene length; "
                                f"write [8 bars], [12 s] or [1:30]")
            length = _length(found, source, first_line)
            body = body[found.end():].strip()
        if not body:
            raise UserError(f"{source} line {first_line}: a scene needs some words after its length")
        scenes.append(StoryScene(body, split_prompts(body), length, first_line))
        paragraph.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        if not stripped:
            finish()
            continue
        if not paragraph:
            first_line = number
        paragraph.append(stripped)
    finish()
    if not scenes:
        raise UserError(f"{source}: no scenes (write one paragraph per scene, separated by blank lines)")
    return scenes


def _length(found: re.Match[str], source: str, line: int) -> SceneLength:
    if found["bars"] is not None:
        length = SceneLength(float(found["bars"]), "bars")
    elif found["seconds"] is not None:
        length = SceneLength(float(found["seconds"]), "s")
    else:
        length = SceneLength(int(found["minutes"]) * 60 + float(found["mss"]), "s")
    if length.value <= 0:
        raise UserError(f"{source} line {line}: a scene must last longer than 0")
    return length


def read_story(path: Path) -> list[StoryScene]:
    try:
        if path.stat().st_size > MAX_STORY_BYTES:
            raise UserError(f"--story {path}: too large for a story (over 1 MB of text)")
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"--story {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UserError(f"--story {path}: not UTF-8 text") from None
    return parse_story(text, f"--story {path.name}")


# ---------------------------------------------------------------------------------------------
# planning


def bars_of(length: SceneLength, grid: BeatGrid) -> int:
    if length.unit == "bars":
        return max(1, int(length.value))
    return max(1, round(length.value / grid.bar))


def plan_story(scenes: list[StoryScene], grid: BeatGrid, song_end: float, fade_beats: float = 2.0) -> StoryPlan:
    """Scene times for a film of the song from its top to `song_end` (see the module's text)."""
    if song_end <= 0:
        raise ValueError("the song must have a length")
    whole_bars = max(0, math.floor((song_end - grid.first_beat) / grid.bar + 1e-6))
    fixed = sum(bars_of(s.length, grid) for s in scenes if s.length is not None)
    free = [i for i, s in enumerate(scenes) if s.length is None]
    share, extra = divmod(max(0, whole_bars - fixed), len(free)) if free else (0, 0)
    bars = []
    for i, s in enumerate(scenes):
        if s.length is not None:
            bars.append(bars_of(s.length, grid))
        else:
            bars.append(max(1, share + (1 if free.index(i) < extra else 0)))
    times: list[tuple[StoryScene, float, float]] = []
    start, line = 0.0, 0
    for scene, n in zip(scenes, bars):
        if start >= song_end - 1e-6:
            break
        line += n
        times.append((scene, start, min(grid.bar_line(line), song_end)))
        start = times[-1][2]
    last_scene, last_start, _ = times[-1]
    times[-1] = (last_scene, last_start, song_end)  # the last scene plays to the end
    fade = max(0.0, fade_beats) * grid.period
    planned = []
    for i, (scene, begin, end) in enumerate(times):
        if i + 1 < len(times):
            next_length = times[i + 1][2] - times[i + 1][1]
            planned.append(PlannedScene(scene, begin, end, min(fade, 0.5 * (end - begin), 0.5 * next_length)))
        else:
            planned.append(PlannedScene(scene, begin, end, 0.0))
    return StoryPlan(tuple(planned), grid, len(scenes) - len(planned))


# ---------------------------------------------------------------------------------------------
# captions


def _srt_time(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def captions_srt(plan: StoryPlan, start: float, end: float) -> str:
    """SubRip captions of the video that shows the song from `start` to `end`: each scene's text
    while it is on screen, in the video's time."""
    blocks = []
    for s in plan.scenes:
        shown_from, shown_to = max(s.start, start), min(s.end, end)
        if shown_to - shown_from < 1e-3:
            continue
        lines = "\n".join(textwrap.wrap(s.scene.text, 42))
        blocks.append(f"{len(blocks) + 1}\n{_srt_time(shown_from - start)} --> {_srt_time(shown_to - start)}\n{lines}\n")
    return "\n".join(blocks)
