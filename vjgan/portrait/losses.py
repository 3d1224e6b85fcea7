"""What "looks the same" means when fitting a latent to a picture.

Three distances, all on images in the networks' range ([-1, 1], [N, 3, H, W]):

* `PixelStructureLoss`: mean squared error plus (1 − SSIM) at several scales (an image pyramid),
  needing no network at all. SSIM (Wang et al. 2004) compares local means, contrasts and
  correlations in an 11-tap Gaussian window (σ 1.5), so it rewards edges and texture in place
  where plain MSE settles for a blur.
* `FeatureLoss`: the LPIPS recipe (Zhang et al. 2018) on any feature network: each layer's
  features are scaled to unit length per pixel across channels, their squared differences are
  weighted per channel (LPIPS's learned weights, or 1), averaged over the picture and summed over
  the layers. The networks: the model's own discriminator (`DiscriminatorFeatures`) or a VGG16
  (vgg16.py).
* `CombinedLoss`: a feature loss plus the pixel/structure loss, weighted.

Each returns one number per image ([N]); the projector sums them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0, window: torch.Tensor | None = None) -> torch.Tensor:
    """Mean structural similarity per image ([N]); pictures smaller than the window use a smaller one."""
    size = min(SSIM_WINDOW, a.shape[-1], a.shape[-2])
    if window is None or window.shape[-1] != size:
        window = gaussian_window(size, SSIM_SIGMA * size / SSIM_WINDOW)
    channels = a.shape[1]
    k = window.to(device=a.device, dtype=a.dtype)[None, None].expand(channels, 1, -1, -1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, k, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(dim=1)


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB ([-1, 1] pictures: a range of 2)."""
    mse = (a.float() - b.float()).square().flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))


def pyramid(x: torch.Tensor, smallest: int = 16) -> list[torch.Tensor]:
    """The picture and its 2× box-filtered reductions down to `smallest` pixels."""
    levels = [x]
    while levels[-1].shape[-1] // 2 >= smallest:
        levels.append(F.avg_pool2d(levels[-1], 2))
    return levels


class PixelStructureLoss(nn.Module):
    """Σ over pyramid levels of MSE + structure_weight·(1 − SSIM); no network needed."""

    name = "pixel+ssim"

    def __init__(self, structure_weight: float = 1.0) -> None:
        super().__init__()
        self.structure_weight = structure_weight

    def forward(self, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = image.new_zeros(image.shape[0])
        for a, b in zip(pyramid(image), pyramid(target)):
            total = total + (a - b).square().flatten(1).mean(dim=1)
            total = total + self.structure_weight * (1 - ssim(a, b))
        return total


def unit_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Scale each pixel's feature vector to unit length (LPIPS's normalisation)."""
    return x / (x.square().sum(dim=1, keepdim=True) + eps).sqrt()


FeatureExtractor = Callable[[torch.Tensor], Sequence[torch.Tensor]]


class FeatureLoss(nn.Module):
    """LPIPS-style distance on the layers a feature network returns; targets' features cached."""

    def __init__(self, network: nn.Module, name: str, channel_weights: Sequence[torch.Tensor] | None = None,
                 input_size: int | None = None) -> None:
        super().__init__()
        self.network = network
        self.name = name
        self.channel_weights = list(channel_weights) if channel_weights is not None else None
        self.input_size = input_size  # pictures are area-averaged down to this side first (None: as they are)
        self._target_key: tuple[int, int] | None = None
        self._target_features: list[torch.Tensor] = []

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and x.shape[-1] != self.input_size:
            if x.shape[-1] > self.input_size:
                return F.adaptive_avg_pool2d(x, self.input_size)
            return F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return x

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [unit_channels(f.float()) for f in self.network(self._prepare(x))]

    def forward(self, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        key = (id(target), target._version)
        if key != self._target_key:
            with torch.no_grad():
                self._target_features = [f.detach() for f in self.features(target)]
            self._target_key = key
        total = image.new_zeros(image.shape[0])
        for i, (a, b) in enumerate(zip(self.features(image), self._target_features)):
            diff = (a - b).square()
            if self.channel_weights is not None:
                diff = diff * self.channel_weights[i].to(diff.device).reshape(1, -1, 1, 1)
            total = total + diff.sum(dim=1).flatten(1).mean(dim=1)
        return total


class CombinedLoss(nn.Module):
    """A feature distance plus the pixel/structure loss (features alone may ignore colour)."""

    def __init__(self, features: FeatureLoss, pixel_weight: float = 1.0) -> None:
        super().__init__()
        self.features = features
        self.pixels = PixelStructureLoss()
        self.pixel_weight = pixel_weight
        self.name = f"{features.name}+pixel+ssim"

    def forward(self, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.features(image, target) + self.pixel_weight * self.pixels(image, target)


class DiscriminatorFeatures(nn.Module):
    """The discriminator's activations after each residual block, top resolution first (the
    epilogue, which only judges realness, is left out)."""

    def __init__(self, D: nn.Module, use_fp16: bool = False) -> None:
        super().__init__()
        self.D = D
        self.use_fp16 = use_fp16

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        out = []
        x = img
        cuda = img.device.type == "cuda"
        for res in self.D.block_resolutions:
            block = getattr(self.D, f"b{res}")
            half = self.use_fp16 and cuda and block.use_fp16
            x = block(x, torch.float16 if half else torch.float32, False)
            out.append(x)
        return out
