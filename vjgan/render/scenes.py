"""A story film's pictures: each scene's prompts become keyframes, and per frame the scene on
screen drives the motion.

    prepare_story()  load CLIP, hear the song's beat grid, plan the scenes (before any frame)
    StoryFilm.keyframes()  one keyframe per prompt: from the cache, else searched (and cached)
    StoryMotion      what the render loop steps instead of one MotionDriver: each scene has its
                     own latent engine (its keyframes, the preset's routes and params), so within a
                     scene the sound moves the picture as it does live; across a scene change the
                     two engines' W+ are cross-faded, the next fully there on the bar line
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch

from ..audio.config import AnalysisConfig
from ..gan.networks import Generator
from ..motion.config import MotionConfig
from ..motion.directions import LatentSpace, model_hash
from ..motion.latents import MotionFrame
from ..prompt.cache import PromptCache, find_keyframe
from ..prompt.clip import ClipScorer, load_clip
from ..prompt.progress import SearchBar
from ..prompt.settings import SearchSettings
from .beatgrid import song_grid
from ..engine.scene import MotionDriver
from .progress import format_clock
from .story import PlannedScene, StoryPlan, StoryScene, plan_story

Log = Callable[[str], None]


@dataclass
class StoryFilm:
    plan: StoryPlan
    scorer: ClipScorer
    settings: SearchSettings

    def describe(self) -> list[str]:
        g = self.plan.grid
        grid = (f"{g.bpm:.1f} BPM, bars of {g.beats_per_bar} beats from {g.first_beat:.2f} s" if g.measured
                else f"no steady beat found: a nominal {g.bpm:.0f} BPM grid")
        lines = [f"story: {len(self.plan.scenes)} scenes on the song's grid ({grid})"]
        for i, s in enumerate(self.plan.scenes, start=1):
            text = s.scene.text if len(s.scene.text) <= 60 else s.scene.text[:59] + "…"
            count = len(s.scene.prompts)
            lines.append(f"  scene {i}: {format_clock(s.start)}–{format_clock(s.end)} ({s.end - s.start:.1f} s), "
                         f"{count} prompt{'s' if count > 1 else ''}: \"{text}\"")
        if self.plan.left_out:
            lines.append(f"story: {self.plan.left_out} scene(s) would start after the end of the film and are left out")
        return lines

    def keyframes(self, G: Generator, space: LatentSpace, log: Log, progress: bool = True) -> list[np.ndarray]:
        """Per scene, its prompts' keyframes as W+ [K, num_ws, w_dim]; searches what the cache lacks."""
        cache = PromptCache()
        hash_of_model = model_hash(G)
        prompts = [p for s in self.plan.scenes for p in s.scene.prompts]
        found: dict[str, np.ndarray] = {}
        for n, prompt in enumerate(dict.fromkeys(prompts), start=1):
            started = time.perf_counter()
            bar = SearchBar(prompt, self.settings.work, f"story {n}/{len(set(prompts))}", enabled=progress)
            try:
                keyframe, cached = find_keyframe(G, self.scorer, prompt, space, self.settings, cache=cache,
                                                 hash_of_model=hash_of_model, on_progress=bar.update)
            finally:
                bar.close()
            where = "from the cache" if cached else f"searched in {time.perf_counter() - started:.1f} s"
            log(f"story: \"{prompt}\" score {keyframe.score:.3f} (best random latent {keyframe.score_start:.3f}), {where}")
            found[prompt] = keyframe.ws
        return [np.stack([found[p] for p in s.scene.prompts]) for s in self.plan.scenes]


def prepare_story(scenes: list[StoryScene], clip: str, clip_arch: str, mono: np.ndarray, rate: int,
                  analysis: AnalysisConfig, song_end: float, fade_beats: float, settings: SearchSettings,
                  device: torch.device) -> StoryFilm:
    """CLIP loaded (or one line why not) and the scenes placed on the song's bar lines, from the
    top of the song to `song_end` (seconds)."""
    scorer = load_clip(clip, clip_arch, device)
    plan = plan_story(scenes, song_grid(mono, rate, analysis), song_end, fade_beats)
    return StoryFilm(plan, scorer, settings)


def scene_motion(base: MotionConfig, scene: PlannedScene, keyframes: int, period: float, seed: int) -> MotionConfig:
    """The preset's motion for one scene: its drift passes once through the scene's keyframes."""
    length = scene.end - scene.start
    per_keyframe = max(length / keyframes, 1e-3)
    timing = dataclasses.replace(base.keyframes, seconds_per_keyframe=per_keyframe,
                                 beats_per_keyframe=per_keyframe / period)
    return dataclasses.replace(base, keyframes=timing, seed=seed)


def blend(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    return (a + (b - a) * np.float32(weight)).astype(np.float32)


class StoryMotion:
    """Steps like a MotionDriver (frames in order, on the file's clock). `make_driver(i)` builds
    scene i's driver when the scene first appears; a scene's driver is dropped once it has left."""

    def __init__(self, plan: StoryPlan, make_driver: Callable[[int], MotionDriver]) -> None:
        self.plan = plan
        self._make_driver = make_driver
        self._drivers: dict[int, MotionDriver] = {}

    def step(self, t: float, features, onset_times: Mapping[str, float] | None = None) -> MotionFrame:
        i, weight = self.plan.at(t)
        needed = [i, i + 1] if weight > 0 else [i]
        for gone in [j for j in self._drivers if j not in needed]:
            del self._drivers[gone]
        frames = []
        for j in needed:
            if j not in self._drivers:
                self._drivers[j] = self._make_driver(j)
            frames.append(self._drivers[j].step(t, features, onset_times))
        if len(frames) == 1:
            return frames[0]
        a, b = frames
        return MotionFrame(blend(a.ws, b.ws, weight), blend(a.noise_gains, b.noise_gains, weight),
                           a.snapped or b.snapped, b.drift_position if weight >= 0.5 else a.drift_position)
