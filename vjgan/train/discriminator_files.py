"""Read the discriminator that a training checkpoint carries, into vjgan's Discriminator, safely.

A trained discriminator has learnt what the model's pictures look like, so its features make a
perceptual distance for projecting a photo with no downloaded network. Files that carry one:

* stylegan2-ada-pytorch snapshots and StyleGAN2 pickles from the stylegan3 repository (`D`),
  read through vjgan.gan.safe_pickle: no code in the file runs;
* rosinality training checkpoints (`d`), through `torch.load(weights_only=True)`;
* vjgan's own training snapshots (`snapshot.pt`: `D` and its config).

The residual discriminator of those repositories is the one vjgan trains (train/discriminator.py):
the same blocks (3×3 conv, 3×3 conv with 2× down-sampling, a 1×1 down-sampled skip, each branch
scaled by √½), the same equalized-learning-rate scales and [1, 3, 3, 1] blur before subsampling;
only the tensor names differ. A file without a usable discriminator (an inference-only file, an
incomplete or conditional one) is reported with a reason: projection then falls back to other
losses.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..gan import safe_pickle
from .discriminator import Discriminator, DiscriminatorConfig


class NoDiscriminator(Exception):
    """The file holds no discriminator vjgan can use; str() is the reason (one line)."""


def read_discriminator(path: str | os.PathLike[str]) -> Discriminator:
    """The discriminator in a checkpoint, in eval mode on the CPU; raises NoDiscriminator."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise NoDiscriminator(f"cannot be read ({e.strerror or e})") from None
    try:
        if head.startswith(b"PK\x03\x04"):
            D = _from_torch_zip(p)
        elif head[:1] == b"\x80":
            D = _from_pickle(p)
        else:
            raise NoDiscriminator("only training checkpoints (.pkl snapshots, .pt training files) carry a discriminator")
    except NoDiscriminator:
        raise
    except (safe_pickle.UnsafePickleError, pickle.UnpicklingError, EOFError) as e:
        raise NoDiscriminator(f"cannot be read safely ({_first_line(e)})") from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, RuntimeError, zipfile.BadZipFile) as e:
        raise NoDiscriminator(f"its discriminator is not one vjgan understands ({_first_line(e)})") from None
    return D.eval().requires_grad_(False)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _build(cfg: DiscriminatorConfig, state: dict[str, torch.Tensor]) -> Discriminator:
    D = Discriminator(cfg)
    expected = D.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise NoDiscriminator(f"its discriminator is incomplete (no {missing[0]})")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise NoDiscriminator(f"its discriminator has an unexpected tensor {unexpected[0]}")
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise NoDiscriminator(f"discriminator tensor {key} has shape {list(state[key].shape)}, expected {list(ref.shape)}")
        if not torch.isfinite(state[key]).all():
            raise NoDiscriminator(f"discriminator tensor {key} holds NaN or infinite values")
    D.load_state_dict({k: v.float() for k, v in state.items()})
    return D


def _channels_from(state: dict[str, torch.Tensor], resolutions: list[int], conv: str, last: str) -> dict[int, int]:
    """Feature maps per resolution, read off the weights: block r maps channels[r] → channels[r/2]."""
    channels = {}
    for r in resolutions:
        w = state[conv.format(r=r)]
        channels[r] = int(w.shape[1])
        channels[r // 2] = int(w.shape[0])
    channels[4] = int(state[last].shape[0])
    return channels


# ---------------------------------------------------------------------------------------------
# NVIDIA pickles


def _from_pickle(path: Path) -> Discriminator:
    data = safe_pickle.safe_load_pickle(path.read_bytes())
    if isinstance(data, tuple) and len(data) == 3:
        raise NoDiscriminator("TensorFlow snapshots' discriminators are not read (convert the model, or use --perceptual)")
    if not isinstance(data, dict) or not isinstance(data.get("D"), safe_pickle.PersistentRecord):
        raise NoDiscriminator("the pickle holds no discriminator (an inference-only network file)")
    return _from_nvidia(data["D"])


def _attrs(record: Any) -> dict[str, Any]:
    return {k: v for k, v in record.state.items() if not k.startswith("_")}


def _flatten(record: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    """Parameters and buffers of a recorded module tree, named as in its state dict."""
    for group in ("_parameters", "_buffers"):
        for name, tensor in (record.state.get(group) or {}).items():
            if tensor is not None:
                out[prefix + name] = tensor.detach() if isinstance(tensor, torch.Tensor) else torch.as_tensor(tensor)
    for name, child in (record.state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, safe_pickle.PersistentRecord):
            raise ValueError(f"sub-module {prefix + name} is not a recorded network object")
        _flatten(child, prefix + name + ".", out)


def _from_nvidia(D: safe_pickle.PersistentRecord) -> Discriminator:
    attrs = _attrs(D)
    if int(attrs.get("c_dim", 0) or 0):
        raise NoDiscriminator("a conditional discriminator (its features depend on a label); use --perceptual")
    modules = D.state.get("_modules") or {}
    resolutions = [int(r) for r in attrs.get("block_resolutions") or []]
    if not resolutions or "b4" not in modules:
        raise NoDiscriminator("the recorded discriminator has no blocks")
    for r in resolutions:
        arch = _attrs(modules[f"b{r}"]).get("architecture", "resnet")
        if arch != "resnet":
            raise NoDiscriminator(f"a '{arch}' discriminator; vjgan reads the residual ('resnet') kind")
    flat: dict[str, torch.Tensor] = {}
    _flatten(D, "", flat)
    taps = None
    for key in [k for k in flat if k.endswith("resample_filter")]:
        f2 = flat.pop(key).float()
        taps = taps if taps is not None else f2
    state = {}
    for key, tensor in flat.items():
        # Same block names; the 4×4 epilogue's layers sit at the top level in vjgan's module.
        state[re.sub(r"^b4\.", "", key)] = tensor
    b4 = _attrs(modules["b4"])
    mbstd = modules["b4"].state.get("_modules", {}).get("mbstd")
    mbstd_attrs = _attrs(mbstd) if mbstd is not None else {}
    first_conv = _attrs(modules[f"b{resolutions[0]}"].state["_modules"]["conv0"])
    if taps is not None:
        expected = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1]))
        if taps.shape != expected.shape or not torch.allclose(taps, expected / expected.sum(), atol=1e-6):
            raise NoDiscriminator("the discriminator uses a resampling filter other than [1, 3, 3, 1]")
    cfg = DiscriminatorConfig(
        img_resolution=int(attrs["img_resolution"]), img_channels=int(attrs.get("img_channels", 3)),
        channels=_channels_from(state, resolutions, "b{r}.conv1.weight", "conv.weight"),
        mbstd_group=int(mbstd_attrs.get("group_size") or 4), mbstd_channels=int(mbstd_attrs.get("num_channels") or 1),
        conv_clamp=float(first_conv["conv_clamp"]) if first_conv.get("conv_clamp") is not None else None,
        num_fp16_res=sum(1 for r in resolutions if _attrs(modules[f"b{r}"]).get("use_fp16")),
    )
    if int(b4.get("cmap_dim", 0) or 0):
        raise NoDiscriminator("a conditional discriminator (its features depend on a label); use --perceptual")
    # The blocks' own input channels must chain (r → r/2) the way the config assumes.
    for r in resolutions:
        if int(state[f"b{r}.conv0.weight"].shape[1]) != cfg.channels[r]:
            raise NoDiscriminator(f"block b{r} does not chain with the one above it")
    return _build(cfg, state)


# ---------------------------------------------------------------------------------------------
# torch zip files: rosinality training checkpoints, vjgan training snapshots


def _from_torch_zip(path: Path) -> Discriminator:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise NoDiscriminator("the file holds objects other than tensors and plain data") from None
    if not isinstance(data, dict):
        raise NoDiscriminator("not a training checkpoint")
    if data.get("format") == "vjgan-train-snapshot":
        cfg = DiscriminatorConfig.from_json(data["discriminator_config"])
        return _build(cfg, dict(data["D"]))
    if isinstance(data.get("d"), dict):
        return _from_rosinality(data["d"])
    raise NoDiscriminator("the file carries no discriminator (an inference checkpoint)")


def _from_rosinality(sd: dict[str, torch.Tensor]) -> Discriminator:
    """rosinality's layout: convs.0 fromRGB, convs.1.. residual blocks, final_conv, final_linear."""
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"convs\.(\d+)\.conv1\.", k))})
    if "convs.0.0.weight" not in sd or not blocks or "final_conv.0.weight" not in sd:
        raise NoDiscriminator("its discriminator is incomplete (no residual blocks or final layers)")
    n = len(blocks)
    resolution = 4 * 2**n
    resolutions = [resolution // 2**i for i in range(n)]
    state: dict[str, torch.Tensor] = {}
    top = resolutions[0]
    state[f"b{top}.fromrgb.weight"] = sd["convs.0.0.weight"]
    state[f"b{top}.fromrgb.bias"] = sd["convs.0.1.bias"]
    for i, r in enumerate(resolutions, start=1):
        state[f"b{r}.conv0.weight"] = sd[f"convs.{i}.conv1.0.weight"]
        state[f"b{r}.conv0.bias"] = sd[f"convs.{i}.conv1.1.bias"]
        state[f"b{r}.conv1.weight"] = sd[f"convs.{i}.conv2.1.weight"]
        state[f"b{r}.conv1.bias"] = sd[f"convs.{i}.conv2.2.bias"]
        state[f"b{r}.skip.weight"] = sd[f"convs.{i}.skip.1.weight"]
        kernel = sd.get(f"convs.{i}.conv2.0.kernel")
        if kernel is not None:
            expected = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1]))
            if not torch.allclose(kernel.float(), expected / expected.sum(), atol=1e-6):
                raise NoDiscriminator("the discriminator uses a blur kernel other than [1, 3, 3, 1]")
    state["conv.weight"] = sd["final_conv.0.weight"]
    state["conv.bias"] = sd["final_conv.1.bias"]
    state["fc.weight"] = sd["final_linear.0.weight"]
    state["fc.bias"] = sd["final_linear.0.bias"]
    state["out.weight"] = sd["final_linear.1.weight"]
    state["out.bias"] = sd["final_linear.1.bias"]
    channels = _channels_from(state, resolutions, "b{r}.conv1.weight", "conv.weight")
    # rosinality's networks have no activation clamp and no fp16 blocks.
    cfg = DiscriminatorConfig(img_resolution=resolution, channels=channels, conv_clamp=None, num_fp16_res=0)
    return _build(cfg, state)
