"""vjgan's StyleGAN2 trainer: `vjgan train DATA --out DIR`."""

from .discriminator import Discriminator, DiscriminatorConfig
from .trainer import RunResult, TrainConfig, Trainer, load_snapshot, vj_channels

__all__ = ["Discriminator", "DiscriminatorConfig", "RunResult", "TrainConfig", "Trainer", "load_snapshot", "vj_channels"]
