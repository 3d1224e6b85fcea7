"""CLIP from a local file: load it safely, embed texts, score pictures against them.

The user brings CLIP's weights as they bring their GAN; vjgan never downloads at run time.
`--clip FILE` is a weights file (`.safetensors`, or a PyTorch state dict read with
`torch.load(weights_only=True)`), `--clip-arch` names open_clip's architecture for it (or an
open_clip JSON config). Nothing in the file is executed: safetensors holds only tensors, a
weights-only unpickler refuses every global but tensor rebuilders, and TorchScript archives
(OpenAI's original `.pt` files, which hold code) are refused outright. The tokenizer's
vocabulary ships inside open_clip; architectures whose tokenizer or text tower would come from
the Hugging Face hub are refused.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import io
import json
import logging
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch

from ..errors import UserError

# OpenAI's normalisation, used by most CLIP releases (and by open_clip when a config names none).
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_CONFIG_BYTES = 1024 * 1024
EXTRA_HINT = "pip install 'vjgan[prompt]'"


def require_open_clip() -> Any:
    """The open_clip module, or one line saying how to get it."""
    try:
        import open_clip
    except ModuleNotFoundError as e:
        raise UserError(f"text prompts need CLIP, an optional extra that is not installed ({e.name} is missing): "
                        f"{EXTRA_HINT} (open_clip_torch and a torchvision made for your torch; docs/prompts.md)") from None
    except (ImportError, RuntimeError, OSError) as e:
        # A torchvision built for another torch fails while importing ("operator torchvision::nms
        # does not exist"); open_clip cannot work until the two match.
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"CLIP: open_clip does not import ({first}); torchvision must be the release made for "
                        f"torch {torch.__version__} (docs/prompts.md)") from None
    return open_clip


# ---------------------------------------------------------------------------------------------
# architecture


@dataclass(frozen=True)
class ClipArch:
    name: str  # what the user gave: an open_clip architecture name or a JSON file's name
    model_name: str  # the name open_clip knows it by
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _preprocess_of_tags(open_clip: Any, name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The normalisation the architecture's released weights were trained with (read from
    open_clip's table of releases, without downloading); OpenAI's where they differ or none is named."""
    from open_clip import pretrained

    seen = set()
    for tag in pretrained.list_pretrained_tags_by_model(name):
        cfg = pretrained.get_pretrained_cfg(name, tag)
        seen.add((tuple(cfg.get("mean", OPENAI_MEAN)), tuple(cfg.get("std", OPENAI_STD))))
    if len(seen) == 1:
        return next(iter(seen))
    return OPENAI_MEAN, OPENAI_STD


def _check_offline(name: str, cfg: Mapping[str, Any], registered: bool) -> None:
    text = cfg.get("text_cfg", {})
    # open_clip gives SigLIP architectures (by name) a tokenizer from the hub.
    if text.get("hf_tokenizer_name") or text.get("hf_model_name") or (registered and "siglip" in name.lower()):
        raise UserError(f"--clip-arch {name}: its tokenizer or text model comes from the Hugging Face hub, which "
                        f"vjgan does not download from; use one whose tokenizer ships in open_clip (docs/prompts.md)")
    if not all(key in cfg for key in ("embed_dim", "vision_cfg", "text_cfg")):
        raise UserError(f"--clip-arch {name}: not an open_clip model config (needs embed_dim, vision_cfg, text_cfg)")


def resolve_arch(open_clip: Any, arch: str | Path) -> ClipArch:
    """An architecture name, or an open_clip JSON config (as released beside the weights), checked."""
    arch = str(arch)
    path = Path(arch).expanduser()
    if arch.lower().endswith(".json") or path.is_file():
        return _arch_from_json(open_clip, path)
    names = open_clip.list_models()
    if arch not in names:
        close = difflib.get_close_matches(arch, names, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (e.g. ViT-B-32, ViT-B-32-quickgelu, MobileCLIP-S2)"
        raise UserError(f"--clip-arch {arch}: not an open_clip architecture{hint}")
    _check_offline(arch, open_clip.get_model_config(arch), registered=True)
    mean, std = _preprocess_of_tags(open_clip, arch)
    return ClipArch(arch, arch, tuple(mean), tuple(std))


def _arch_from_json(open_clip: Any, path: Path) -> ClipArch:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise UserError(f"--clip-arch {path}: too large for a model config")
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"--clip-arch {path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"--clip-arch {path}: not a JSON config ({e})") from None
    if not isinstance(document, dict):
        raise UserError(f"--clip-arch {path}: not an open_clip model config")
    cfg = document.get("model_cfg", document)  # the hub's open_clip_config.json wraps it
    if not isinstance(cfg, dict):
        raise UserError(f"--clip-arch {path}: not an open_clip model config")
    _check_offline(str(path), cfg, registered=False)
    preprocess = document.get("preprocess_cfg", {}) if isinstance(document.get("preprocess_cfg"), dict) else {}
    mean = tuple(float(v) for v in preprocess.get("mean", OPENAI_MEAN))
    std = tuple(float(v) for v in preprocess.get("std", OPENAI_STD))
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise UserError(f"--clip-arch {path}: preprocess_cfg mean and std must be three numbers (std > 0)")
    # open_clip builds models and tokenizers from its registry of named configs; register this
    # one under a name of its own (a digest), so it can never replace a built-in architecture.
    text = json.dumps(cfg, sort_keys=True)
    model_name = f"vjgan-config-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if model_name not in open_clip.list_models():
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / f"{model_name}.json"
            file.write_text(text, encoding="utf-8")
            open_clip.add_model_config(file)
    return ClipArch(str(path), model_name, mean, std)


# ---------------------------------------------------------------------------------------------
# weights


def _is_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    header = int.from_bytes(data[:8], "little")
    return 0 < header <= len(data) - 8 and data[8:9] == b"{"


def _is_torchscript(data: bytes) -> bool:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """A checkpoint's tensors (never code) and the SHA-256 of the file."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise UserError(f"--clip {path}: is a folder; give the weights file inside it "
                        f"(e.g. open_clip_model.safetensors)") from None
    except OSError as e:
        raise UserError(f"--clip {path}: {e.strerror or e}") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        if _is_safetensors(data):
            from safetensors.torch import load as load_safetensors

            state = load_safetensors(data)
        elif data[:2] == b"PK" and _is_torchscript(data):
            raise UserError(f"--clip {path}: a TorchScript archive (as OpenAI's original .pt files are) holds code, "
                            f"which vjgan never runs; use the same weights as a .safetensors file (docs/prompts.md)")
        else:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except UserError:
        raise
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))  # what the weights-only unpickler refused
        if found is None:
            raise UserError(f"--clip {path}: not a CLIP weights file (.safetensors or a PyTorch state dict)") from None
        raise UserError(f"--clip {path}: refused, the file asks to call {found.group(1)}, which is not "
                        f"model data") from None
    except Exception as e:  # noqa: BLE001 - any failure to parse is the same answer to the user
        raise UserError(f"--clip {path}: not a CLIP weights file (.safetensors or a PyTorch state dict; "
                        f"{type(e).__name__})") from None
    del data
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UserError(f"--clip {path}: not a state dict of named tensors")
    if all(k.startswith("module.") for k in state):  # saved from a DistributedDataParallel wrapper
        state = {k[len("module."):]: v for k, v in state.items()}
    return state, digest


def _fit_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, arch: str) -> dict[str, torch.Tensor]:
    from open_clip.convert import convert_state_dict

    state = convert_state_dict(model, state)  # Apple's original MobileCLIP layouts → open_clip's
    expected = model.state_dict()
    for name in ("logit_scale", "logit_bias"):  # stored as a scalar or a 1-element vector
        if name in state and name in expected and state[name].numel() == expected[name].numel():
            state[name] = state[name].reshape(expected[name].shape)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{len(v)} {what}" for v, what in ((missing, "missing"), (unexpected, "unexpected"),
                                                    (wrong, "of another shape")) if v]
        example = (wrong or missing or unexpected)[0]
        raise UserError(f"--clip {path} does not fit --clip-arch {arch}: tensors {', '.join(parts)} "
                        f"(e.g. {example}); see docs/prompts.md for which architecture goes with which weights")
    return state


# ---------------------------------------------------------------------------------------------
# the scorer


class ClipScorer:
    """A CLIP model on one device, in eval mode with frozen weights.

    Pictures go in as [N, 3, H, W] in [0, 1] at the model's input size (see `vjgan.prompt.crops`);
    embeddings come out unit-length, so a dot product is the cosine similarity CLIP ranks by.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, image_size: tuple[int, int],
                 mean: Sequence[float], std: Sequence[float], identity: str, device: torch.device) -> None:
        self.model = model.eval().requires_grad_(False).to(device)
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.device = device
        self.identity = identity  # architecture and weights digest: part of the keyframe cache key
        self._mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def to(self, device: torch.device) -> "ClipScorer":
        """This scorer on `device`: itself when it is there already, else a copy (this one stays put,
        so a search on a second GPU leaves the first one's scorer working)."""
        device = torch.device(device)
        if device == self.device:
            return self
        return ClipScorer(copy.deepcopy(self.model), self.tokenizer, self.image_size, self._mean.flatten().tolist(),
                          self._std.flatten().tolist(), self.identity, device)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)
        return self.model.encode_text(tokens, normalize=True).float()

    def embed_pictures(self, pictures: torch.Tensor) -> torch.Tensor:
        """Differentiable: the search follows the gradient of the score back into the latent."""
        x = (pictures.float() - self._mean) / self._std
        return self.model.encode_image(x, normalize=True).float()


@contextlib.contextmanager
def _quiet_random_init() -> Iterator[None]:
    """open_clip warns that it made random weights; they are replaced by the file's at once, and
    the warning would reach the user as a 'vjgan:' line."""

    def drop(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No pretrained weights loaded")

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def load_clip(path: str | Path, arch: str | Path, device: torch.device | str = "cpu") -> ClipScorer:
    """`--clip FILE --clip-arch ARCH` → a ClipScorer on `device`; every failure is one UserError line."""
    open_clip = require_open_clip()
    path = Path(path).expanduser()
    spec = resolve_arch(open_clip, arch)
    state, digest = read_weights(path)
    # Built with random weights, then the file's: nothing is fetched (no pretrained tag, no
    # timm or Hugging Face base weights).
    with _quiet_random_init():
        model = open_clip.create_model(spec.model_name, pretrained=None, load_weights=False, pretrained_image=False,
                                       pretrained_text=False, device="cpu")
    model.load_state_dict(_fit_weights(model, state, path, spec.name), strict=True)
    tokenizer = open_clip.get_tokenizer(spec.model_name)
    size = model.visual.image_size
    image_size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    identity = f"{Path(spec.name).name}:{digest[:16]}"
    return ClipScorer(model, tokenizer, image_size, spec.mean, spec.std, identity, torch.device(device))
