"""A tiny CLIP with random weights, saved as a user would bring one, for the prompt and story tests.

open_clip builds any architecture from its config with random weights and ships its tokenizer,
so nothing is downloaded. The architecture is small (two layers each side, 64 wide, 64² input)
to keep a search to seconds on a 2-core CPU; it is a real CLIP all the same (ViT image tower,
transformer text tower, the BPE tokenizer), loaded through the same code as a real checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

TINY_CLIP = {
    "model_cfg": {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
}

DEFAULT_MODEL = Path(__file__).parent.parent / "models" / "default.safetensors"


def need_open_clip():
    """open_clip, or a skip where the optional extra is not installed. CI installs the extra, so
    there a missing open_clip is an error, never a silent skip."""
    if os.environ.get("CI"):
        import open_clip

        return open_clip
    return pytest.importorskip("open_clip", reason="the optional extra vjgan[prompt] is not installed")


def write_tiny_clip(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """(weights .safetensors, open_clip_config.json) of a random tiny CLIP."""
    open_clip = need_open_clip()
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CLIP["model_cfg"])
    weights = folder / "tiny_clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    config = folder / "open_clip_config.json"
    config.write_text(json.dumps(TINY_CLIP), encoding="utf-8")
    return weights, config
