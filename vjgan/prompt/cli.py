"""The `vjgan prompt` subcommand: texts in, one keyframe file per text out.

Wired into the main CLI with `add_prompt_parser(subparsers)`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EPILOG = """\
examples:
  vjgan prompt "a yeti tardigrade in the snow" --clip ViT-B-32.safetensors --clip-arch ViT-B-32 --out yeti.npz
  vjgan prompt "fire" "ice" "a forest at night" --model my.pkl --clip mobileclip_s2.safetensors \\
      --clip-arch MobileCLIP-S2 --out scenes.npz        # scenes-1.npz, scenes-2.npz, scenes-3.npz

CLIP's weights are a local file you downloaded yourself (docs/prompts.md names the ones that
work); nothing is downloaded. The same texts, model, CLIP and seed give the same keyframes, and
a search done before is taken from the cache at once.
"""


def add_prompt_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `prompt` on the main CLI's subparsers (returns the new parser)."""
    p = subparsers.add_parser(
        "prompt", help="find a keyframe whose picture matches a text (CLIP; the optional extra vjgan[prompt])",
        description="Search the model's latent space for the picture CLIP finds closest to each text, and save "
                    "it as a keyframe file for presets, renders and the live show.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("texts", nargs="+", metavar="TEXT", help="what the picture should show (one keyframe per text)")
    p.add_argument("--out", "-o", required=True, help="the keyframe file, NAME.npz; with several texts "
                                                      "NAME-1.npz, NAME-2.npz, … in the order given")
    add_clip_arguments(p)
    p.add_argument("--model", help="the model to search (default: the embedded default model)")
    p.add_argument("--seed", type=int, default=0, help="the search's seed (default 0); the same seed finds the same keyframe")
    add_search_arguments(p)
    p.add_argument("--device", help="cuda, mps or cpu (default: the best present)")
    p.add_argument("--preview", action="store_true", help="also write each keyframe's picture as NAME.png")
    p.add_argument("--fresh", action="store_true", help="search again even if this search is in the cache")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_prompt_command)
    return p


def add_clip_arguments(p: argparse._ActionsContainer, required: bool = True) -> None:
    p.add_argument("--clip", required=required, metavar="FILE",
                   help="CLIP weights: a .safetensors file (or a PyTorch state dict) you downloaded")
    p.add_argument("--clip-arch", required=required, metavar="ARCH",
                   help="its open_clip architecture, e.g. ViT-B-32 (LAION), ViT-B-32-quickgelu (OpenAI), "
                        "MobileCLIP-S2; or an open_clip_config.json")


def add_search_arguments(p: argparse._ActionsContainer, prefix: str = "") -> None:
    """How thoroughly to search; `prefix` names them apart where they share a parser (render's)."""
    from .settings import SearchSettings

    d = SearchSettings()
    g = p if prefix else p.add_argument_group("search")
    g.add_argument(f"--{prefix}candidates", type=int, default=d.candidates,
                   help=f"random latents scored first (default {d.candidates})")
    g.add_argument(f"--{prefix}rounds", type=int, default=d.rounds, help=f"optimise + re-seed rounds (default {d.rounds})")
    g.add_argument(f"--{prefix}steps", type=int, default=d.steps, help=f"optimisation steps per round (default {d.steps})")
    g.add_argument(f"--{prefix}reseeds", type=int, default=d.reseeds,
                   help=f"perturbations tried per round (default {d.reseeds})")


def settings_from_args(args: argparse.Namespace, seed: int, prefix: str = ""):
    from .settings import SearchSettings

    value = lambda name: getattr(args, prefix + name)  # noqa: E731
    return SearchSettings(candidates=value("candidates"), rounds=value("rounds"), steps=value("steps"),
                          reseeds=value("reseeds"), seed=seed)


def output_paths(out: Path, count: int) -> list[Path]:
    """NAME.npz for one text; NAME-1.npz … NAME-N.npz for several."""
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, count + 1)]


def check_outputs(paths: list[Path], force: bool, preview: bool) -> None:
    from ..errors import UserError

    for path in paths:
        if path.suffix != ".npz":
            raise UserError(f"--out {path}: keyframe files end in .npz")
        if not path.parent.is_dir():
            raise UserError(f"--out {path}: no folder {path.parent}")
        for target in [path] + ([path.with_suffix(".png")] if preview else []):
            if target.exists() and not force:
                raise UserError(f"{target} exists; pass --force to replace it")


def run_prompt_command(args: argparse.Namespace) -> int:
    from ..config import default_model_path
    from ..gan.load import load_generator
    from ..motion.directions import load_or_compute, model_hash
    from .cache import PromptCache, find_keyframe
    from .clip import load_clip
    from .progress import SearchBar

    out = Path(args.out).expanduser()
    paths = output_paths(out, len(args.texts))
    check_outputs(paths, args.force, args.preview)
    settings = settings_from_args(args, args.seed)
    from ..engine.device import pick_device

    device = pick_device(args.device)
    scorer = load_clip(args.clip, args.clip_arch, device)
    G = load_generator(Path(args.model).expanduser() if args.model else default_model_path()).eval().to(device)
    space = load_or_compute(G)
    hash_of_model = model_hash(G)
    cache = PromptCache()
    for i, (text, path) in enumerate(zip(args.texts, paths), start=1):
        started = time.perf_counter()
        bar = SearchBar(text, settings.work, f"{i}/{len(paths)}" if len(paths) > 1 else "", enabled=not args.quiet)
        try:
            keyframe, cached = find_keyframe(G, scorer, text, space, settings, cache=cache, device=device,
                                             hash_of_model=hash_of_model, on_progress=bar.update, fresh=args.fresh)
        finally:
            bar.close()
        keyframe.save(path)
        where = "from the cache" if cached else f"in {time.perf_counter() - started:.1f} s"
        print(f"wrote {path}: \"{text}\" score {keyframe.score:.3f} (best random latent {keyframe.score_start:.3f}), "
              f"{where}", file=sys.stderr)
        if args.preview:
            write_preview(G, keyframe.ws, path.with_suffix(".png"))
    return 0


def write_preview(G, ws, path: Path) -> None:
    """The keyframe's picture as a PNG (written atomically)."""
    import io

    import numpy as np
    import torch
    from PIL import Image

    from ..atomic import atomic_write
    from .crops import to_rgb

    device = next(G.parameters()).device
    with torch.no_grad():
        picture = to_rgb(G.synthesis(torch.from_numpy(np.asarray(ws))[None].to(device), noise_mode="const"))[0]
    pixels = ((picture.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())
