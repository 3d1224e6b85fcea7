"""Load StyleGAN2 generators from every common checkpoint layout, safely.

Supported: vjgan's own .safetensors; stylegan2-ada-pytorch pickles (protocols 2–5, numpy 1.x and
2.x names); StyleGAN2 networks pickled by the stylegan3 repository; NVIDIA's TensorFlow
StyleGAN2 release pickles (converted on load); rosinality `.pt` files (inference and training
checkpoints). Pickles and torch zip files go through vjgan.gan.safe_pickle (no code runs, work
and memory bounded); safetensors headers are checked by vjgan.gan.own_format. A generator's
config is checked against vjgan.gan.limits and its planned tensor shapes against the file's
before any layer is allocated. Every failure becomes a ModelLoadError with one line naming the
file and the reason.
"""

from __future__ import annotations

import math
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from . import limits, safe_pickle
from .networks import Generator, GeneratorConfig, state_shapes
from .own_format import read_own_format


MAX_REASON_CHARS = 300


class ModelLoadError(UserError):
    """A model file could not be used; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        reason = " ".join(reason.split())  # one line, whatever a file made the reason say
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[: MAX_REASON_CHARS - 1] + "…"
        self.path, self.reason = str(path), reason
        super().__init__(f"cannot load model {self.path}: {reason}")


@dataclass
class Checkpoint:
    """What a checkpoint holds, converted to vjgan's layout but not yet built."""

    format: str
    config: GeneratorConfig
    state: dict[str, torch.Tensor]
    notes: dict[str, str]


FORMAT_NAMES = {
    "vjgan": "vjgan .safetensors",
    "ada": "stylegan2-ada-pytorch pickle",
    "sg3": "StyleGAN2 pickle from the stylegan3 repository",
    "tf": "TensorFlow StyleGAN2 pickle (converted)",
    "rosinality": "rosinality .pt",
    "rosinality-train": "rosinality training checkpoint .pt",
}


# ---------------------------------------------------------------------------------------------
# entry points


def load_generator(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Generator:
    """Load any supported checkpoint as a vjgan Generator in eval mode, fp32, on `device`.

    The returned module has `z_dim, w_dim, c_dim, num_ws, img_resolution, w_avg`, plus
    `source_format` (a key of FORMAT_NAMES) and `source_path`.
    """
    ckpt = read_checkpoint(path)
    G = build_generator(ckpt, path)
    return G.to(device)


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Identify the file's layout from its bytes and convert its tensors to vjgan's layout."""
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(path, "no such file")
    if p.is_dir():
        raise ModelLoadError(path, "is a folder, not a model file")
    try:
        with open(p, "rb") as f:
            head = f.read(16)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise ModelLoadError(path, f"cannot be read ({e.strerror or e})") from None
    if not head:
        raise ModelLoadError(path, "the file is empty")
    try:
        limits.check_file_size(size)
        if head.startswith(b"PK\x03\x04"):
            return _read_torch_zip(p)
        if len(head) >= 9 and head[8:9] == b"{":
            cfg, state, meta = read_own_format(p)
            return Checkpoint("vjgan", cfg, state, {k: v for k, v in meta.items() if k not in ("config",)})
        if head[0] == 0x80:
            return _read_pickle(p)
    except ModelLoadError:
        raise
    except (safe_pickle.UnsafePickleError, limits.LimitError) as e:
        raise ModelLoadError(path, str(e)) from None
    except MemoryError:
        raise ModelLoadError(path, "it needs more memory than this machine has") from None
    except RecursionError:
        raise ModelLoadError(path, "its structure nests too deeply") from None
    except (pickle.UnpicklingError, EOFError) as e:
        raise ModelLoadError(path, f"the file is truncated or corrupt ({_first_line(e)})") from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, RuntimeError, zipfile.BadZipFile) as e:
        raise ModelLoadError(path, f"not a StyleGAN2 checkpoint vjgan understands ({_first_line(e)})") from None
    raise ModelLoadError(path, "not a model file (neither a pickle, a PyTorch zip nor a safetensors file)")


def build_generator(ckpt: Checkpoint, path: str | os.PathLike[str] = "<memory>") -> Generator:
    """Build vjgan's module for `ckpt` and load its tensors strictly.

    The config is checked against the limits and the tensors against the shapes it plans
    before the network is allocated, so a config cannot ask for more memory than the file holds."""
    try:
        limits.check_generator_config(ckpt.config)
        planned = state_shapes(ckpt.config)
        odd = [k for k, v in ckpt.state.items() if not isinstance(v, torch.Tensor)]
        if odd:
            raise limits.LimitError(f"{_shown(odd[0])} is a {type(ckpt.state[odd[0]]).__name__}, not a tensor")
        limits.check_state_matches(planned, {k: v.shape for k, v in ckpt.state.items()})
    except limits.LimitError as e:
        raise ModelLoadError(path, str(e)) from None
    for key, got in ckpt.state.items():
        if got.is_floating_point() and not torch.isfinite(got).all():
            raise ModelLoadError(path, f"tensor {key} holds NaN or infinite values")
    G = Generator(ckpt.config)
    G.load_state_dict({k: v.float() for k, v in ckpt.state.items()}, strict=True)
    G.eval().requires_grad_(False)
    G.source_format = ckpt.format
    G.source_path = str(path)
    return G


def _shown(value: Any) -> str:
    """A value from the file, for a message: short text and numbers as they are, anything else by type
    (printing a crafted structure could take as long as hashing it)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) or (isinstance(value, str) and len(value) <= 60):
        return repr(value)
    return f"<{type(value).__name__}>"


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# ---------------------------------------------------------------------------------------------
# NVIDIA PyTorch pickles (stylegan2-ada-pytorch and the stylegan3 repository)


def _read_pickle(path: Path) -> Checkpoint:
    data = safe_pickle.safe_load_pickle(path.read_bytes())
    if isinstance(data, dict):
        for key in ("G_ema", "Gs", "g_ema"):  # the inference network, never the raw training G
            net = data.get(key)
            if isinstance(net, safe_pickle.PersistentRecord):
                return _from_nvidia_pytorch(net)
            if isinstance(net, safe_pickle.TFNetworkRecord):
                return _from_tf(net)
        nets = [v for v in data.values() if isinstance(v, safe_pickle.PersistentRecord) and v.class_name == "Generator"]
        if len(nets) == 1:
            return _from_nvidia_pytorch(nets[0])
        raise ModelLoadError(path, "the pickle holds no generator network (no G_ema key)")
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(x, safe_pickle.TFNetworkRecord) for x in data):
        return _from_tf(data[2])  # (G, D, Gs): Gs is the moving average used for inference
    if isinstance(data, safe_pickle.PersistentRecord):
        return _from_nvidia_pytorch(data)
    if isinstance(data, safe_pickle.TFNetworkRecord):
        return _from_tf(data)
    raise ModelLoadError(path, f"the pickle holds a {type(data).__name__}, not a generator network")


def _public_attrs(record: safe_pickle.PersistentRecord) -> dict[str, Any]:
    return {k: v for k, v in record.state.items() if not k.startswith("_")}


def _flatten_module(record: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    state = record.state
    for group in ("_parameters", "_buffers"):
        for name, tensor in (state.get(group) or {}).items():
            if tensor is not None:
                if not isinstance(tensor, torch.Tensor):
                    raise ValueError(f"{_shown(prefix + str(name))} is a {type(tensor).__name__}, not a tensor")
                out[prefix + name] = tensor.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, safe_pickle.PersistentRecord):
            raise ValueError(f"sub-module {prefix + name} is not a recorded network object")
        _flatten_module(child, prefix + name + ".", out)


def _from_nvidia_pytorch(G: safe_pickle.PersistentRecord) -> Checkpoint:
    modules = G.state.get("_modules") or {}
    synthesis, mapping = modules.get("synthesis"), modules.get("mapping")
    if synthesis is None or mapping is None:
        raise ValueError(f"a {G.class_name} without mapping and synthesis networks")
    synth_modules = synthesis.state.get("_modules") or {}
    if "input" in synth_modules or any(k.startswith("L0_") for k in synth_modules):
        raise ValueError("this is a StyleGAN3 (alias-free) network; vjgan runs StyleGAN2 networks")
    state: dict[str, torch.Tensor] = {}
    _flatten_module(G, "", state)
    # The resampling filters are fixed buffers rebuilt from the config; keep the taps.
    filters = {k: state.pop(k) for k in [k for k in state if k.endswith("resample_filter")]}
    attrs = _public_attrs(G)
    kwargs = dict(G.state.get("_init_kwargs") or {})
    synth_kwargs = dict(kwargs.get("synthesis_kwargs") or {})
    is_sg3_layout = "synthesis_kwargs" not in kwargs
    if is_sg3_layout:  # the stylegan3 repository flattens synthesis kwargs into the generator's
        synth_kwargs = {k: v for k, v in kwargs.items() if k not in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")}
    resolutions = list(_public_attrs(synthesis).get("block_resolutions") or [])
    blocks = {r: synth_modules[f"b{r}"] for r in resolutions}
    for r, block in blocks.items():
        arch = _public_attrs(block).get("architecture", "skip")
        if arch != "skip":
            raise ValueError(f"block b{r} uses the {_shown(arch)} architecture; vjgan runs skip generators (all released StyleGAN2 nets)")
    first_layer = _public_attrs(blocks[resolutions[0]].state["_modules"]["conv1"])
    conv_clamp = first_layer.get("conv_clamp")
    fp16_res = [r for r, b in blocks.items() if _public_attrs(b).get("use_fp16")]
    mapping_attrs = _public_attrs(mapping)
    fc0_attrs = _public_attrs(mapping.state["_modules"]["fc0"])
    taps = limits.check_resample_taps(synth_kwargs.get("resample_filter") or [1, 3, 3, 1])
    if filters:
        f2 = next(iter(filters.values())).float()
        expected = torch.outer(torch.tensor(taps, dtype=torch.float32), torch.tensor(taps, dtype=torch.float32))
        if f2.shape != expected.shape or not torch.allclose(f2, expected / expected.sum(), atol=1e-6):
            raise ValueError("the network uses a resampling filter other than its config says")
    z_dim, c_dim, w_dim = int(attrs["z_dim"]), int(attrs["c_dim"]), int(attrs["w_dim"])
    embed_features = state["mapping.embed.weight"].shape[0] if c_dim else None
    cfg = GeneratorConfig(
        z_dim=z_dim, c_dim=c_dim, w_dim=w_dim,
        img_resolution=int(attrs["img_resolution"]), img_channels=int(attrs["img_channels"]),
        channels={r: int(state[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in resolutions},
        mapping_layers=int(mapping_attrs.get("num_layers", 8)),
        mapping_lr_multiplier=float(fc0_attrs.get("bias_gain", 0.01)),
        mapping_hidden_features=int(state["mapping.fc0.weight"].shape[0]) if int(mapping_attrs.get("num_layers", 8)) > 1 else None,
        embed_features=int(embed_features) if embed_features is not None else None,
        conv_clamp=float(conv_clamp) if conv_clamp is not None else None,
        num_fp16_res=len(fp16_res),
        w_avg_beta=float(mapping_attrs.get("w_avg_beta") or 0.995),
        resample_taps=tuple(float(t) for t in taps),
    )
    fmt = "sg3" if is_sg3_layout else "ada"
    return Checkpoint(fmt, cfg, state, {"module_src": "present, not executed" if G.module_src_present else "absent"})


# ---------------------------------------------------------------------------------------------
# TensorFlow StyleGAN2 release pickles


def _tf_variables(net: safe_pickle.TFNetworkRecord) -> dict[str, np.ndarray]:
    out = {}
    for name, value in net.state.get("variables", []):
        if not isinstance(value, np.ndarray):
            raise ValueError(f"variable {_shown(name)} is a {type(value).__name__}, not an array")
        out[name] = value
    return out


def _from_tf(Gs: safe_pickle.TFNetworkRecord) -> Checkpoint:
    comps = Gs.state.get("components") or {}
    mapping, synthesis = comps.get("mapping"), comps.get("synthesis")
    if mapping is None or synthesis is None:
        raise ValueError("a TensorFlow network without mapping and synthesis components")
    kw = dict(Gs.state.get("static_kwargs") or {})
    kw.update(synthesis.state.get("static_kwargs") or {})
    if kw.get("architecture", "skip") != "skip":
        raise ValueError(f"the {_shown(kw['architecture'])} generator architecture is not supported; vjgan runs skip generators")
    if kw.get("nonlinearity", "lrelu") != "lrelu":
        raise ValueError(f"nonlinearity {_shown(kw['nonlinearity'])} is not supported")
    if int(kw.get("label_size", 0) or 0):
        raise ValueError("conditional TensorFlow networks are not supported; convert them with a PyTorch tool first")
    mv, sv = _tf_variables(mapping), _tf_variables(synthesis)
    top = _tf_variables(Gs)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32, order="C"))  # copies; keeps 0-d shapes

    state: dict[str, torch.Tensor] = {}
    n_map = len([k for k in mv if k.startswith("Dense") and k.endswith("/weight")])
    for i in range(n_map):
        state[f"mapping.fc{i}.weight"] = t(mv[f"Dense{i}/weight"].T)
        state[f"mapping.fc{i}.bias"] = t(mv[f"Dense{i}/bias"])
    state["mapping.w_avg"] = t(top["dlatent_avg"])
    resolution = int(kw["resolution"])
    resolutions = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
    channels = {}
    noise_index = 0

    def conv(prefix: str, tf_name: str, res: int, flip: bool) -> None:
        nonlocal noise_index
        w = sv[f"{tf_name}/weight"].transpose(3, 2, 0, 1)  # HWIO → OIHW
        if flip:
            # TF's up-sampling conv is a true convolution; PyTorch's transposed conv correlates.
            w = w[:, :, ::-1, ::-1]
        state[f"{prefix}.weight"] = t(w)
        state[f"{prefix}.bias"] = t(sv[f"{tf_name}/bias"])
        state[f"{prefix}.noise_strength"] = t(sv[f"{tf_name}/noise_strength"])
        state[f"{prefix}.noise_const"] = t(sv[f"noise{noise_index}"][0, 0])
        state[f"{prefix}.affine.weight"] = t(sv[f"{tf_name}/mod_weight"].T)
        # TF adds 1 to the style after the dense layer; the PyTorch layout keeps it in the bias.
        state[f"{prefix}.affine.bias"] = t(sv[f"{tf_name}/mod_bias"] + 1)
        noise_index += 1

    for r in resolutions:
        tag = f"{r}x{r}"
        if r == 4:
            state["synthesis.b4.const"] = t(sv["4x4/Const/const"][0])
            conv("synthesis.b4.conv1", "4x4/Conv", r, flip=False)
        else:
            conv(f"synthesis.b{r}.conv0", f"{tag}/Conv0_up", r, flip=True)
            conv(f"synthesis.b{r}.conv1", f"{tag}/Conv1", r, flip=False)
        state[f"synthesis.b{r}.torgb.weight"] = t(sv[f"{tag}/ToRGB/weight"].transpose(3, 2, 0, 1))
        state[f"synthesis.b{r}.torgb.bias"] = t(sv[f"{tag}/ToRGB/bias"])
        state[f"synthesis.b{r}.torgb.affine.weight"] = t(sv[f"{tag}/ToRGB/mod_weight"].T)
        state[f"synthesis.b{r}.torgb.affine.bias"] = t(sv[f"{tag}/ToRGB/mod_bias"] + 1)
        channels[r] = int(state[f"synthesis.b{r}.conv1.weight"].shape[0])
    z_dim = int(state["mapping.fc0.weight"].shape[1])
    cfg = GeneratorConfig(
        z_dim=z_dim, c_dim=0, w_dim=int(state["mapping.w_avg"].shape[0]),
        img_resolution=resolution, img_channels=int(kw.get("num_channels", 3)), channels=channels,
        mapping_layers=n_map, mapping_lr_multiplier=float(kw.get("mapping_lrmul", 0.01)),
        mapping_hidden_features=int(state["mapping.fc0.weight"].shape[0]) if n_map > 1 else None,
        conv_clamp=None, num_fp16_res=0, w_avg_beta=float(kw.get("dlatent_avg_beta", 0.995)),
        resample_taps=limits.check_resample_taps(kw.get("resample_kernel", (1, 3, 3, 1))),
    )
    return Checkpoint("tf", cfg, state, {"build_module_src": "present, not executed" if Gs.state.get("build_module_src") else "absent"})


# ---------------------------------------------------------------------------------------------
# rosinality (stylegan2-pytorch) torch.save files


def _read_torch_zip(path: Path) -> Checkpoint:
    data = safe_pickle.load_torch_zip(path)
    if isinstance(data, dict) and "g_ema" in data and isinstance(data["g_ema"], dict):
        fmt = "rosinality-train" if "g" in data or "d" in data else "rosinality"
        return _from_rosinality(data["g_ema"], data.get("latent_avg"), fmt)
    if isinstance(data, dict) and any(k.startswith("style.") for k in data):
        return _from_rosinality(data, None, "rosinality")
    raise ModelLoadError(path, "a PyTorch file without a generator (expected a rosinality checkpoint with 'g_ema')")


def _from_rosinality(sd: dict[str, torch.Tensor], latent_avg: torch.Tensor | None, fmt: str) -> Checkpoint:
    n_map = len([k for k in sd if k.startswith("style.") and k.endswith(".weight")])
    if n_map == 0 or "input.input" not in sd:
        raise ValueError("not a rosinality generator state (no style.* or input.input tensors)")
    n_convs = len([k for k in sd if k.startswith("convs.") and k.endswith(".conv.weight")])
    resolution = 4 * 2 ** (n_convs // 2)
    resolutions = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
    state: dict[str, torch.Tensor] = {}
    for i in range(n_map):
        state[f"mapping.fc{i}.weight"] = sd[f"style.{i + 1}.weight"]
        state[f"mapping.fc{i}.bias"] = sd[f"style.{i + 1}.bias"]
    w_dim = int(sd[f"style.{n_map}.weight"].shape[0])
    notes = {}
    if latent_avg is None:
        # rosinality's training checkpoints keep no mean latent (its tools sample one when
        # needed); estimate it the same way so truncation works.
        latent_avg = _estimate_w_avg(sd, n_map)
        notes["w_avg"] = f"estimated from {W_AVG_SAMPLES:,} mapped samples (the file stores none)"
    state["mapping.w_avg"] = latent_avg.reshape(-1)
    state["synthesis.b4.const"] = sd["input.input"][0]

    def conv(dst: str, src: str, noise: int) -> None:
        state[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
        state[f"{dst}.bias"] = sd[f"{src}.activate.bias"]
        state[f"{dst}.noise_strength"] = sd[f"{src}.noise.weight"].reshape([])
        state[f"{dst}.noise_const"] = sd[f"noises.noise_{noise}"][0, 0]
        state[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
        state[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]

    def torgb(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
        state[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(-1)
        state[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
        state[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]

    conv("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1")
    for i, r in enumerate(resolutions[1:]):
        conv(f"synthesis.b{r}.conv0", f"convs.{2 * i}", 2 * i + 1)
        conv(f"synthesis.b{r}.conv1", f"convs.{2 * i + 1}", 2 * i + 2)
        torgb(f"synthesis.b{r}.torgb", f"to_rgbs.{i}")
    channels = {r: int(state[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in resolutions}
    cfg = GeneratorConfig(
        z_dim=int(sd["style.1.weight"].shape[1]), c_dim=0, w_dim=w_dim, img_resolution=resolution,
        img_channels=int(state["synthesis.b4.torgb.weight"].shape[0]), channels=channels,
        mapping_layers=n_map, mapping_lr_multiplier=0.01,
        mapping_hidden_features=int(sd["style.1.weight"].shape[0]) if n_map > 1 else None,
        conv_clamp=None, num_fp16_res=0,
    )
    return Checkpoint(fmt, cfg, state, notes)


W_AVG_SAMPLES = 100_000


def _estimate_w_avg(sd: dict[str, torch.Tensor], n_map: int, lr_multiplier: float = 0.01) -> torch.Tensor:
    """Mean of the mapping network's output over a fixed-seed batch of z (deterministic)."""
    from .ops import bias_lrelu, normalize_2nd_moment

    z_dim = int(sd["style.1.weight"].shape[1])
    gen = torch.Generator().manual_seed(0)
    total = None
    with torch.no_grad():
        for start in range(0, W_AVG_SAMPLES, 10_000):
            x = normalize_2nd_moment(torch.randn(10_000, z_dim, generator=gen))
            for i in range(1, n_map + 1):
                w = sd[f"style.{i}.weight"].float() * (lr_multiplier / math.sqrt(x.shape[1]))
                x = bias_lrelu(x @ w.t(), sd[f"style.{i}.bias"].float() * lr_multiplier)
            total = x.sum(0) if total is None else total + x.sum(0)
    return total / W_AVG_SAMPLES


# ---------------------------------------------------------------------------------------------
# description for `vjgan info`


def describe(G: Generator) -> list[tuple[str, str]]:
    """Human-readable facts about a loaded generator, in display order."""
    cfg = G.config
    rows = [
        ("format", FORMAT_NAMES.get(getattr(G, "source_format", ""), getattr(G, "source_format", "?"))),
        ("resolution", f"{cfg.img_resolution}x{cfg.img_resolution}, {cfg.img_channels} channels"),
        ("z_dim / w_dim / c_dim", f"{cfg.z_dim} / {cfg.w_dim} / {cfg.c_dim}"),
        ("num_ws", str(G.num_ws)),
        ("mapping layers", str(cfg.mapping_layers)),
        ("parameters", f"{sum(p.numel() for p in G.parameters()):,}"),
        ("channels per block", ", ".join(f"{r}:{c}" for r, c in cfg.channels.items())),
        ("conv_clamp", "none" if cfg.conv_clamp is None else f"{cfg.conv_clamp:g}"),
        ("trained in fp16", "none" if cfg.num_fp16_res == 0 else f"blocks ≥ {cfg.fp16_resolution}px"),
    ]
    return rows
