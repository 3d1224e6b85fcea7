"""`vjgan dataset procedural OUT --count N --res R --seed S`: write vjgan's own training set."""

from __future__ import annotations

import argparse
import time

import torch

from ..errors import UserError
from . import procedural
from .writer import write_procedural


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when present, else the CPU; 'cpu', 'cuda', 'cuda:1' as given (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r} (use auto, cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name} asked for, but this torch sees no CUDA GPU")
    return device


def add_dataset_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `dataset` (with its `procedural` sub-command) to the vjgan command line."""
    parser = subparsers.add_parser("dataset", help="make a training dataset",
                                   description="Make a training dataset for `vjgan train`.")
    sub = parser.add_subparsers(dest="dataset_command", metavar="KIND")
    sub.required = True
    proc = sub.add_parser(
        "procedural", help="vjgan's own abstract images (deterministic for a seed)",
        description="Render vjgan's procedural images (fluid marbling, flow fields, light streaks, organic forms, "
                    "Julia sets, fractal flames) into a folder of PNGs, or a .zip if OUT ends in .zip. "
                    "The same seed gives the same images on any machine, so a dataset can be rebuilt where it is "
                    "used instead of being copied there.")
    proc.add_argument("out", metavar="OUT", help="folder to create (or a .zip file); must not exist")
    proc.add_argument("--count", type=int, required=True, help="number of images")
    proc.add_argument("--res", type=int, default=128, help="image size in pixels, a power of two (default 128)")
    proc.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    proc.add_argument("--kinds", default="", help=f"which kinds and weights, e.g. 'flame,julia' or 'marble=2,flow=1' "
                                                  f"(default: all of {', '.join(procedural.KINDS)})")
    proc.add_argument("--device", default="auto", help="where to render: auto (default), cpu or cuda")
    proc.add_argument("--batch", type=int, default=0, help="images rendered at once (default: 64 on CPU, 1024 on CUDA)")
    proc.set_defaults(handler=run_dataset_command)
    return parser


def run_dataset_command(args: argparse.Namespace) -> int:
    if getattr(args, "dataset_command", "procedural") != "procedural":
        raise UserError(f"unknown dataset kind {args.dataset_command!r}")
    try:
        kinds = procedural.parse_kinds(args.kinds)
    except ValueError as e:
        raise UserError(f"--kinds: {e}") from None
    if args.seed < 0:
        raise UserError("--seed must be ≥ 0")
    if args.batch < 0:
        raise UserError("--batch must be ≥ 1")
    device = resolve_device(args.device)
    last = [0.0]

    def progress(done: int, total: int, elapsed: float) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= 2.0:
            last[0] = now
            rate = done / max(elapsed, 1e-9)
            eta = (total - done) / max(rate, 1e-9)
            print(f"rendered {done}/{total} images  {rate:.0f} img/s  ETA {eta:.0f}s", flush=True)

    out = write_procedural(args.out, seed=args.seed, count=args.count, res=args.res, kinds=kinds,
                           device=device, batch=args.batch, progress=progress)
    print(f"wrote {args.count} images ({args.res}x{args.res}, seed {args.seed}) to {out}")
    return 0
