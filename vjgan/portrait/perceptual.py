"""Which distance a projection fits with, chosen from what the user has (docs/portrait.md has the measurements).

    vgg            the user's VGG16 / LPIPS files (--perceptual FILE)
    discriminator  the model file's own discriminator features, plus pixels and structure
    pixel          multi-scale pixels and structure (SSIM): needs nothing
    auto           vgg when files are given, else pixel: on the project's networks the discriminator
                   features cost 0.2–1.7 dB against pixels and structure alone (their
                   discriminators are untrained; a trained one may do better on real photos:
                   `--loss discriminator` tries it)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..errors import UserError
from .losses import CombinedLoss, DiscriminatorFeatures, FeatureLoss, PixelStructureLoss

LOSS_KINDS = ("auto", "pixel", "discriminator", "vgg")


@dataclass(frozen=True)
class LossChoice:
    loss: nn.Module
    description: str  # one line for the user: what is used and, for auto, why


def choose_loss(kind: str, model_path: str | os.PathLike[str] | None, perceptual_files: Sequence[str] = (),
                device: torch.device | None = None) -> LossChoice:
    if kind not in LOSS_KINDS:
        raise UserError(f"--loss {kind!r}: choose one of {', '.join(LOSS_KINDS)}")
    if perceptual_files and kind not in ("auto", "vgg"):
        raise UserError(f"--perceptual gives a VGG16; it cannot be used with --loss {kind}")
    if kind == "vgg" and not perceptual_files:
        raise UserError("--loss vgg needs the network's weights: --perceptual FILE (vjgan downloads nothing)")
    if perceptual_files:
        from .vgg16 import load_vgg16

        loss = load_vgg16(perceptual_files)
        return LossChoice(CombinedLoss(loss), f"{loss.name} features from {', '.join(map(str, perceptual_files))}, plus pixels and structure")
    if kind == "discriminator" and model_path is not None:
        from ..train.discriminator_files import NoDiscriminator, read_discriminator

        try:
            D = read_discriminator(model_path)
        except NoDiscriminator as e:
            raise UserError(f"--loss discriminator: {model_path}: {e}") from None
        use_fp16 = device is not None and device.type == "cuda"
        features = FeatureLoss(DiscriminatorFeatures(D, use_fp16=use_fp16), "discriminator")
        return LossChoice(CombinedLoss(features), "the model's own discriminator features, plus pixels and structure")
    if kind == "discriminator":
        raise UserError("--loss discriminator needs a model file that carries a discriminator")
    return LossChoice(PixelStructureLoss(), "pixels and structure")
