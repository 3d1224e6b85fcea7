"""Prompt search speed: `python -m vjgan.prompt.bench` (for docs/benchmarks.md, never a test).

CLIP is built from its architecture with random weights (the same arithmetic as the released
weights, nothing to download), saved to a temporary file and loaded through `load_clip`, the path
`vjgan prompt` takes. The generator is a model file, or random config-F networks at the given
resolutions. One search per row; the time of each phase is printed as a Markdown table row.

    python -m vjgan.prompt.bench --model models/default.safetensors          # ViT-B-32, default settings
    python -m vjgan.prompt.bench --res 1024 --clip-arch ViT-B-32 MobileCLIP-S2 --device cuda
    python -m vjgan.prompt.bench --model models/default.safetensors --rounds 2 --steps 10
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

HEADER = ("| model | CLIP | device | settings | sampling | per optimisation step | re-seeding | search |\n"
          "|---|---|---|---|---|---|---|---|")


def _random_clip(arch: str, folder: Path) -> Path:
    from safetensors.torch import save_file

    from .clip import _quiet_random_init, require_open_clip, resolve_arch

    open_clip = require_open_clip()
    spec = resolve_arch(open_clip, arch)
    with _quiet_random_init():
        model = open_clip.create_model(spec.model_name, pretrained=None, load_weights=False, pretrained_image=False,
                                       pretrained_text=False)
    path = folder / f"{spec.model_name}-random.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_search(G, model_name: str, arch: str, clip_file: Path, device: torch.device, settings) -> str:
    from ..gan.bench import describe_machine
    from ..motion.directions import load_or_compute
    from .clip import load_clip
    from .search import PromptSearch

    scorer = load_clip(clip_file, arch, device)
    G = G.eval().to(device)
    space = load_or_compute(G)
    search = PromptSearch(G, scorer, "a yeti tardigrade in the snow", space, settings, device)
    phase_time: dict[str, float] = {}
    phase_steps: dict[str, int] = {}
    started = time.perf_counter()
    while True:
        phase = search.progress.phase
        t0 = time.perf_counter()
        going = search.step()
        _sync(device)
        phase_time[phase] = phase_time.get(phase, 0.0) + time.perf_counter() - t0
        phase_steps[phase] = phase_steps.get(phase, 0) + 1
        if not going:
            break
    total = time.perf_counter() - started
    s = settings
    label = f"{s.candidates} cand., {s.rounds}×{s.steps} steps, {s.reseeds} reseeds, {s.crops} crops"
    per_step = phase_time.get("optimise", 0.0) / max(1, phase_steps.get("optimise", 0))
    return (f"| {model_name} | {Path(arch).name} | {describe_machine(device)} | {label} | {phase_time.get('sample', 0):.1f} s | "
            f"{per_step * 1000:.0f} ms | {phase_time.get('re-seed', 0):.1f} s | {total:.1f} s |")


def main(argv: Sequence[str] | None = None) -> int:
    from ..gan.bench import config_f, random_generator
    from ..gan.load import load_generator
    from .settings import SearchSettings

    p = argparse.ArgumentParser(prog="python -m vjgan.prompt.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a model file (default: random config-F networks at --res)")
    p.add_argument("--res", type=int, nargs="+", default=[1024], help="resolutions of the random networks")
    p.add_argument("--clip-arch", nargs="+", default=["ViT-B-32"], help="open_clip architectures (random weights)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    d = SearchSettings()
    for name in ("candidates", "rounds", "steps", "reseeds", "crops"):
        p.add_argument(f"--{name}", type=int, default=getattr(d, name))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    settings = dataclasses.replace(d, candidates=args.candidates, rounds=args.rounds, steps=args.steps,
                                   reseeds=args.reseeds, crops=args.crops)
    nets = ([(Path(args.model).name, load_generator(args.model))] if args.model
            else [(f"random config-F {r}²", random_generator(config_f(r))) for r in args.res])
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for arch in args.clip_arch:
            clip_file = _random_clip(arch, Path(folder))
            for name, G in nets:
                print(bench_search(G, name, arch, clip_file, device, settings), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
