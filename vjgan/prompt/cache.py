"""Found keyframes, kept per model, CLIP, prompt and search settings: a set list plays instantly
the second time.

An entry is an ordinary keyframe file (`vjgan.motion.keyframe_files`, kind "prompt") in the
user's cache folder, named by a digest of what determines the search's result: the model's
hash, the CLIP weights' identity, the prompt (spaces normalised) and the settings, seed
included. The search is deterministic, so an entry is exactly what searching again would find.
A damaged entry is deleted and searched again, never trusted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import UserError
from ..gan.networks import Generator
from ..motion.directions import LatentSpace, model_hash
from ..motion.keyframe_files import load_keyframes
from ..paths import cache_dir
from .clip import ClipScorer
from .search import PromptKeyframe, PromptSearch, SearchProgress
from .settings import SearchSettings

CACHE_VERSION = 1


def normalise_prompt(text: str) -> str:
    """The same words with the same spacing: 'a  yeti\\n' and 'a yeti' are one prompt."""
    return " ".join(text.split())


class PromptCache:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or (cache_dir() / "prompts")

    def path_for(self, hash_of_model: str, clip: str, prompt: str, settings: SearchSettings) -> Path:
        key = json.dumps({"version": CACHE_VERSION, "model": hash_of_model, "clip": clip,
                          "prompt": normalise_prompt(prompt), "settings": settings.key()}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        return self.folder / f"{hash_of_model[:12]}-{digest}.npz"

    def lookup(self, hash_of_model: str, clip: str, prompt: str, settings: SearchSettings) -> PromptKeyframe | None:
        """The keyframe found before for exactly this search, or None."""
        path = self.path_for(hash_of_model, clip, prompt, settings)
        if not path.is_file():
            return None
        try:
            found = load_keyframes(path, model_hash=hash_of_model)
            extra = found.extra
            keyframe = PromptKeyframe(str(extra["prompt"]), found.ws, float(extra["score_start"]),
                                      float(extra["score"]), found.model_hash, str(extra["clip"]), int(extra["seed"]))
        except (UserError, KeyError, ValueError):
            path.unlink(missing_ok=True)
            return None
        if keyframe.clip != clip or normalise_prompt(keyframe.prompt) != normalise_prompt(prompt):
            return None  # a digest collision: search again rather than show the wrong picture
        return keyframe

    def store(self, keyframe: PromptKeyframe, settings: SearchSettings) -> Path | None:
        """Keep a found keyframe; a cache folder that cannot be written only costs a search next time."""
        path = self.path_for(keyframe.model_hash, keyframe.clip, keyframe.prompt, settings)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return keyframe.save(path)
        except OSError:
            return None


def find_keyframe(G: Generator, scorer: ClipScorer, prompt: str, space: LatentSpace,
                  settings: SearchSettings = SearchSettings(), *, cache: PromptCache | None = None,
                  device: torch.device | str | None = None, hash_of_model: str | None = None,
                  on_progress: Callable[[SearchProgress], None] | None = None,
                  fresh: bool = False, cancelled: Callable[[], bool] = lambda: False) -> tuple[PromptKeyframe, bool]:
    """The keyframe for `prompt`: from the cache when this search was done before (unless
    `fresh`), else searched and cached. Returns (keyframe, came_from_cache). Blocking, but
    `cancelled()` is asked between steps (SearchCancelled then)."""
    cache = cache or PromptCache()
    hash_of_model = hash_of_model or model_hash(G)
    cached = None if fresh else cache.lookup(hash_of_model, scorer.identity, prompt, settings)
    if cached is not None:
        return cached, True
    search = PromptSearch(G, scorer, prompt, space, settings, device, on_progress, hash_of_model)
    while search.step():
        if cancelled():
            search.cancel()
    keyframe = search.result()
    cache.store(keyframe, settings)
    return keyframe, False


class PromptKeyframes:
    """Text prompts → W+ keyframes for a model (a preset's `keyframes.prompts`, a prompt typed in
    the show): from the cache when found before with this model, CLIP and settings, else searched
    and cached, so a set list plays instantly the second time."""

    def __init__(self, scorer: ClipScorer, settings: SearchSettings = SearchSettings(), *,
                 cache: PromptCache | None = None, log: Callable[[str], None] = lambda line: None) -> None:
        self.scorer = scorer
        self.settings = settings
        self.cache = cache or PromptCache()
        self._log = log
        self._hashes: dict[int, str] = {}

    def model_hash(self, G: Generator) -> str:
        key = id(G)
        if key not in self._hashes:
            self._hashes[key] = model_hash(G)
        return self._hashes[key]

    def find(self, G: Generator, prompt: str, *, cancelled: Callable[[], bool] = lambda: False,
             on_progress: Callable[[SearchProgress], None] | None = None) -> tuple[PromptKeyframe, Path]:
        """One prompt's keyframe and the file it is kept in (the cache's, else the data folder's)."""
        from ..motion.directions import load_or_compute

        digest = self.model_hash(G)
        keyframe, cached = find_keyframe(G, self.scorer, prompt, load_or_compute(G), self.settings, cache=self.cache,
                                         device=next(G.parameters()).device, hash_of_model=digest,
                                         on_progress=on_progress, cancelled=cancelled)
        self._log(f"prompt {prompt!r}: {'from the cache' if cached else 'found'} (CLIP score {keyframe.score:.3f})")
        path = self.cache.path_for(digest, self.scorer.identity, prompt, self.settings)
        if not path.is_file():  # a cache folder that cannot be written: keep it beside the user's presets
            from ..paths import data_dir

            folder = data_dir() / "prompts"
            folder.mkdir(parents=True, exist_ok=True)
            path = keyframe.save(folder / path.name)
        return keyframe, path

    def __call__(self, G: Generator, prompts: Sequence[str], cancelled: Callable[[], bool] = lambda: False) -> np.ndarray:
        """[len(prompts), num_ws, w_dim] (vjgan.motion.latent_files.PromptResolver)."""
        return np.stack([self.find(G, p, cancelled=cancelled)[0].ws for p in prompts])

