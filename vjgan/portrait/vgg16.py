"""A user-supplied VGG16 as a perceptual distance (`vjgan project --perceptual FILE`), read as plain tensors.

vjgan never downloads weights. A user who has them names the files:

* torchvision's VGG16 state dict (`vgg16-*.pth`: `features.N.weight`, `features.N.bias`);
* an LPIPS VGG state dict as the `lpips` package saves it (`net.sliceK.N.*` and `linK.model.1.weight`);
* LPIPS's linear calibration weights alone (the `lpips` package's `weights/v0.1/vgg.pth`:
  `linK.model.1.weight`), given together with a VGG16 file.

Files are read with `torch.load(weights_only=True)` (tensors and plain containers only; nothing
in the file runs). TorchScript archives (NVIDIA's `vgg16.pt`) hold program code and are refused.

The network is VGG16's 13 3×3 convolutions with ReLU and 2× max-pooling (Simonyan & Zisserman
2015), read after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 as LPIPS does. Pictures in
[-1, 1] are shifted and scaled per channel first: LPIPS's constants, which equal torchvision's
ImageNet normalisation (mean 0.485/0.456/0.406, deviation 0.229/0.224/0.225 on [0, 1] pictures).
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .losses import FeatureLoss

CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # `features.N` of each conv
TAPS = (1, 3, 6, 9, 12)  # the convs (0-based) whose ReLU output LPIPS reads
POOL_AFTER = (1, 3, 6, 9)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
INPUT_SIZE = 256  # larger pictures are area-averaged to this side first (VGG16's scale of detail)


class VGG16Features(nn.Module):
    """[N, 3, H, W] in [-1, 1] → the five LPIPS layers' activations."""

    def __init__(self) -> None:
        super().__init__()
        cin = 3
        convs = []
        for cout in CHANNELS:
            convs.append(nn.Conv2d(cin, cout, 3, padding=1))
            cin = cout
        self.convs = nn.ModuleList(convs)
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).reshape(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).reshape(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i in TAPS:
                out.append(x)
            if i in POOL_AFTER:
                x = F.max_pool2d(x, 2)
        return out


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UserError(f"perceptual network {path}: no such file")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                if any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist()):
                    raise UserError(f"perceptual network {path}: a TorchScript archive holds program code, which vjgan "
                                    f"never runs; give torchvision's VGG16 state dict (vgg16-*.pth) instead")
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except UserError:
        raise
    except pickle.UnpicklingError:
        raise UserError(f"perceptual network {path}: refused, the file holds objects other than tensors") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same answer to the user
        raise UserError(f"perceptual network {path}: not a PyTorch weights file ({type(e).__name__})") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise UserError(f"perceptual network {path}: not a state dict of tensors")
    return data


def _lpips_slice_index(key: str) -> tuple[int, str] | None:
    """`net.slice2.5.weight` → (5, 'weight'): lpips keeps torchvision's `features` numbering."""
    m = re.fullmatch(r"(?:net\.)?slice\d\.(\d+)\.(weight|bias)", key)
    return (int(m.group(1)), m.group(2)) if m else None


def load_vgg16(paths: Sequence[str | os.PathLike[str]]) -> FeatureLoss:
    """A VGG16 (and optional LPIPS calibration) from the user's files, as a feature distance."""
    convs: dict[tuple[int, str], torch.Tensor] = {}
    lins: dict[int, torch.Tensor] = {}
    for name in paths:
        path = Path(name).expanduser()
        state = _read_state(path)
        found = False
        for key, tensor in state.items():
            if m := re.fullmatch(r"features\.(\d+)\.(weight|bias)", key):
                convs[(int(m.group(1)), m.group(2))] = tensor
                found = True
            elif (idx := _lpips_slice_index(key)) is not None:
                convs[idx] = tensor
                found = True
            elif m := re.fullmatch(r"lin(\d)\.model\.1\.weight", key):
                lins[int(m.group(1))] = tensor
                found = True
        if not found:
            raise UserError(f"perceptual network {path}: neither a VGG16 (features.N.*) nor LPIPS (linK.*) state dict")
    if not convs:
        raise UserError("perceptual network: LPIPS weights need a VGG16 file too (torchvision's vgg16-*.pth)")
    net = VGG16Features()
    state = {}
    for i, index in enumerate(TORCHVISION_INDEX):
        for part in ("weight", "bias"):
            if (index, part) not in convs:
                raise UserError(f"perceptual network: VGG16 conv features.{index}.{part} is missing")
            state[f"convs.{i}.{part}"] = convs[(index, part)]
    for key, ref in net.state_dict().items():
        if key in state and tuple(state[key].shape) != tuple(ref.shape):
            raise UserError(f"perceptual network: {key} has shape {list(state[key].shape)}, VGG16 needs {list(ref.shape)}")
    net.load_state_dict({**net.state_dict(), **{k: v.float() for k, v in state.items()}})
    weights = None
    if lins:
        if sorted(lins) != list(range(len(TAPS))):
            raise UserError(f"perceptual network: LPIPS weights lin0..lin4 expected, found {sorted(lins)}")
        weights = []
        for i, tap in enumerate(TAPS):
            w = lins[i].float().reshape(-1)
            if w.numel() != CHANNELS[tap] or not torch.isfinite(w).all():
                raise UserError(f"perceptual network: LPIPS weight lin{i} does not fit VGG16's layer ({w.numel()} values)")
            weights.append(w)
    net.eval().requires_grad_(False)
    return FeatureLoss(net, "vgg16-lpips" if weights else "vgg16", weights, input_size=INPUT_SIZE)
