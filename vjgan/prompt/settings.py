"""How thoroughly a prompt search looks (`vjgan.prompt.search`), as one validated value.

Kept apart from the search itself so the command line can show the defaults without loading
torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from ..errors import UserError


@dataclass(frozen=True)
class SearchSettings:
    candidates: int = 64  # random latents scored first
    rounds: int = 4  # optimise + re-seed rounds
    steps: int = 30  # Adam steps per round
    reseeds: int = 15  # perturbations of the best latent scored per round
    crops: int = 16  # random views per optimisation step
    score_crops: int = 8  # fixed views every score is taken on (the first is the whole picture)
    min_crop: float = 0.6  # smallest view side, as a fraction of the picture's
    batch: int = 8  # pictures scored per step
    learning_rate: float = 0.1  # Adam's step, in units of the model's typical spread per coordinate
    leash: float = 2.0  # weight of the pull toward the round's starting latent
    spread: float = 0.5  # first round's perturbation size, in W radii (halved every round)
    truncation: float = 0.7  # ψ of the sampled candidates
    seed: int = 0

    def __post_init__(self) -> None:
        counts = {"candidates": self.candidates, "batch": self.batch, "crops": self.crops,
                  "score_crops": self.score_crops}
        for name, value in counts.items():
            if not 1 <= value <= 100_000:
                raise UserError(f"prompt search: {name} must be at least 1, not {value}")
        for name, value in {"rounds": self.rounds, "steps": self.steps, "reseeds": self.reseeds}.items():
            if not 0 <= value <= 100_000:
                raise UserError(f"prompt search: {name} must be 0 or more, not {value}")
        if not 0 < self.min_crop <= 1:
            raise UserError(f"prompt search: min_crop must be in (0, 1], not {self.min_crop}")
        for name, value in {"learning_rate": self.learning_rate, "leash": self.leash, "spread": self.spread}.items():
            if not (math.isfinite(value) and value >= 0):
                raise UserError(f"prompt search: {name} must be a number ≥ 0, not {value}")
        if not 0 < self.truncation <= 2:
            raise UserError(f"prompt search: truncation must be in (0, 2], not {self.truncation}")

    @property
    def work(self) -> int:
        """Steps a whole search takes (what the progress bar counts)."""
        per_round = self.steps + 1 + math.ceil(self.reseeds / self.batch)
        return math.ceil(self.candidates / self.batch) + self.rounds * per_round

    def key(self) -> str:
        """Canonical text of the settings (part of the cache key: other settings, other keyframe)."""
        return json.dumps(asdict(self), sort_keys=True)
