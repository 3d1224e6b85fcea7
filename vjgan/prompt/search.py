"""The prompt search: the W+ latent whose picture CLIP finds closest to a text.

1. **Sample.** Score `candidates` random latents (mapped with truncation ψ, so they start in the
   region where the model draws well); the best one's score is `score_start`.
2. **Rounds** (the seed work's iterative re-seeding), `rounds` times:
   - *optimise* W+ from the best latent toward the text, `steps` Adam steps over fresh random
     crops, with a leash: a penalty on the squared distance from where the round began (in
     units of the model's W radius), and every row projected back into the ball around `w_avg`
     that holds 95 % of the model's samples (`LatentSpace.radius`), where its pictures are good;
   - *re-seed*: score the optimised latent, then `reseeds` fresh perturbations of the best one
     so far (random directions of the model's own W, `spread` radii wide, halved each round);
     the best of all starts the next round.
3. The result is the best latent seen, scored on the same fixed crops as `score_start`: the
   score can only rise, and it is measured the same way throughout.

Everything random comes from one `torch.Generator` seeded with `seed`, drawn on the CPU: a
search repeats exactly for its seed (on one device and software stack).

The work is cut into small steps (one Adam step, or one batch of `batch` pictures scored), so
the live show can run a search between frames or on a thread of its own: `PromptSearch.step()`
does one step, `progress` says where it stands (also passed to `on_progress` after each step),
`cancel()` stops it between steps, and `result()` is the keyframe.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ..errors import UserError
from ..gan.networks import Generator
from ..motion.directions import LatentSpace, model_hash
from ..motion.keyframe_files import save_keyframes
from .clip import ClipScorer
from .crops import crop_views, random_crops
from .settings import SearchSettings


class SearchCancelled(Exception):
    """The search was cancelled before it finished."""


@dataclass(frozen=True)
class SearchProgress:
    prompt: str
    phase: str  # "sample", "optimise", "re-seed" or "done"
    round: int  # 0 while sampling, then 1…rounds
    rounds: int
    done: int  # steps done
    total: int  # steps in all
    score_start: float  # NaN until the candidates are scored
    score: float  # best so far (NaN until the candidates are scored)


@dataclass(frozen=True)
class PromptKeyframe:
    """A found keyframe; `save()` writes it in the one keyframe format (kind "prompt")."""

    prompt: str
    ws: np.ndarray  # float32 [num_ws, w_dim]
    score_start: float
    score: float
    model_hash: str
    clip: str  # the scorer's identity: architecture and weights digest
    seed: int

    def save(self, path: str | Path) -> Path:
        return save_keyframes(path, self.ws, self.model_hash, "prompt", prompt=self.prompt,
                              score_start=np.float64(self.score_start), score=np.float64(self.score),
                              clip=self.clip, seed=np.int64(self.seed))


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


class PromptSearch:
    """One prompt's search, advanced one small step at a time by whoever owns it (one thread).

    `G` is used as it is when it lives on `device` (its weights are only read, never changed);
    otherwise a copy is made there, so a search can run on a second GPU while the show's copy
    keeps playing on the first.
    """

    def __init__(self, G: Generator, scorer: ClipScorer, prompt: str, space: LatentSpace,
                 settings: SearchSettings = SearchSettings(), device: torch.device | str | None = None,
                 on_progress: Callable[[SearchProgress], None] | None = None, hash_of_model: str | None = None) -> None:
        if not prompt.strip():
            raise UserError("a prompt must have some words in it")
        self.device = torch.device(device) if device is not None else _device_of(G)
        self.G = G if _device_of(G) == self.device else copy.deepcopy(G).to(self.device)
        self.scorer = scorer.to(self.device)
        self.prompt = prompt
        self.settings = settings
        self.on_progress = on_progress
        self.model_hash = hash_of_model or model_hash(G)
        self._text = self.scorer.embed_texts([prompt])[0]
        self._w_avg = torch.from_numpy(np.asarray(space.w_avg, dtype=np.float32)).to(self.device)
        self._radius = float(space.radius)
        self._random = torch.Generator().manual_seed(settings.seed)
        self._score_crops = random_crops(settings.score_crops, self._random, settings.min_crop, whole_first=True)
        self._best: torch.Tensor | None = None  # [num_ws, w_dim]
        self._score_start = math.nan
        self._best_score = math.nan
        self._phase, self._round, self._done = "sample", 0, 0
        self._cancelled = False
        self._finished = False
        self._work: Iterator[None] = self._steps()

    # -- the owner's interface --------------------------------------------------------------

    @property
    def progress(self) -> SearchProgress:
        return SearchProgress(self.prompt, self._phase, self._round, self.settings.rounds, self._done,
                              self.settings.work, self._score_start, self._best_score)

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Stop before the next step (safe to call from another thread)."""
        self._cancelled = True

    def step(self) -> bool:
        """Do one small piece of the search; False once it has finished or was cancelled."""
        if self._cancelled or self._finished:
            return False
        try:
            next(self._work)
            self._done += 1
        except StopIteration:
            self._finished = True
            self._phase = "done"
        if self.on_progress is not None:
            self.on_progress(self.progress)
        return not self._finished

    def run(self) -> PromptKeyframe:
        """Step until done; the keyframe, or SearchCancelled."""
        while self.step():
            pass
        return self.result()

    def result(self) -> PromptKeyframe:
        if self._cancelled and not self._finished:
            raise SearchCancelled(self.prompt)
        if not self._finished or self._best is None:
            raise RuntimeError("the search has not finished")
        return PromptKeyframe(self.prompt, self._best.cpu().numpy().astype(np.float32), self._score_start,
                              self._best_score, self.model_hash, self.scorer.identity, self.settings.seed)

    # -- the search ---------------------------------------------------------------------------

    def _pictures(self, ws: torch.Tensor) -> torch.Tensor:
        return self.G.synthesis(ws, noise_mode="const")

    @torch.no_grad()
    def _score(self, ws: torch.Tensor) -> torch.Tensor:
        """Mean similarity to the text over the fixed score crops, per latent: [N]."""
        views = crop_views(self._pictures(ws), self._score_crops, self.scorer.image_size)
        similarity = self.scorer.embed_pictures(views) @ self._text
        return similarity.view(len(ws), -1).mean(dim=1)

    def _score_in_batches(self, ws: torch.Tensor) -> Iterator[None]:
        """Score latents a batch per step, keeping the best seen."""
        for start in range(0, len(ws), self.settings.batch):
            batch = ws[start : start + self.settings.batch]
            self._keep_best(batch, self._score(batch))
            yield

    def _into_ball(self, ws: torch.Tensor) -> torch.Tensor:
        """Rows farther than the radius from w_avg are pulled back onto the ball's surface."""
        offset = ws - self._w_avg
        norm = offset.norm(dim=-1, keepdim=True)
        return self._w_avg + offset * torch.clamp(self._radius / norm.clamp_min(1e-12), max=1.0)

    @torch.no_grad()
    def _mapped(self, count: int, truncation: float) -> torch.Tensor:
        """`count` random latents mapped to W+ [count, num_ws, w_dim] (random labels if conditional)."""
        G = self.G
        z = torch.randn(count, G.z_dim, generator=self._random).to(self.device) if G.z_dim else None
        c = None
        if G.c_dim:
            labels = torch.randint(0, G.c_dim, (count,), generator=self._random)
            c = torch.nn.functional.one_hot(labels, G.c_dim).float().to(self.device)
        return G.mapping(z, c, truncation_psi=truncation).float()

    def _keep_best(self, ws: torch.Tensor, values: torch.Tensor) -> None:
        i = int(torch.argmax(values))  # the first of equal scores: the order is deterministic
        if self._best is None or float(values[i]) > self._best_score:
            self._best, self._best_score = ws[i].clone(), float(values[i])

    def _steps(self) -> Iterator[None]:
        s = self.settings
        candidates = self._into_ball(self._mapped(s.candidates, s.truncation))
        yield from self._score_in_batches(candidates)
        self._score_start = self._best_score
        # Adam's step per coordinate: a fraction of the typical spread of one W coordinate.
        step_size = s.learning_rate * self._radius / math.sqrt(self.G.w_dim)
        for r in range(s.rounds):
            self._round = r + 1
            self._phase = "optimise"
            anchor = self._best.clone()
            w = anchor.clone().requires_grad_(True)
            optimiser = torch.optim.Adam([w], lr=step_size)
            for _ in range(s.steps):
                crops = random_crops(s.crops, self._random, s.min_crop)
                views = crop_views(self._pictures(w.unsqueeze(0)), crops, self.scorer.image_size)
                similarity = (self.scorer.embed_pictures(views) @ self._text).mean()
                leash = ((w - anchor) ** 2).sum(dim=-1).mean() / self._radius ** 2
                (grad,) = torch.autograd.grad(s.leash * leash - similarity, [w])
                w.grad = grad
                optimiser.step()
                with torch.no_grad():
                    w.copy_(self._into_ball(w))
                yield
            self._phase = "re-seed"
            yield from self._score_in_batches(w.detach().unsqueeze(0))
            if s.reseeds:
                spread = s.spread * 0.5 ** r
                directions = self._mapped(s.reseeds, 1.0)[:, :1] - self._w_avg  # the model's own W directions
                yield from self._score_in_batches(self._into_ball(self._best.unsqueeze(0) + spread * directions))
