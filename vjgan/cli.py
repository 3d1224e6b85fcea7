"""Command line: argparse subcommands only; each subcommand's work lives in its own module."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .errors import UserError


def _cmd_info(args: argparse.Namespace) -> int:
    from .gan.load import describe, load_generator

    G = load_generator(args.model)
    width = max(len(k) for k, _ in describe(G))
    print(f"{args.model}")
    for key, value in describe(G):
        print(f"  {key:<{width}}  {value}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .gan.load import FORMAT_NAMES, load_generator
    from .gan.own_format import save_generator

    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise UserError(f"output {out} must end in .safetensors (vjgan's own format)")
    if out.exists() and not args.force:
        raise UserError(f"output {out} exists; pass --force to replace it")
    G = load_generator(args.input)
    save_generator(G, out, metadata={"converted_from": Path(args.input).name, "source_format": G.source_format})
    print(f"wrote {out} ({FORMAT_NAMES.get(G.source_format, G.source_format)} → vjgan .safetensors, "
          f"{G.img_resolution}x{G.img_resolution}, {out.stat().st_size / 1e6:.1f} MB)")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from .gan.bench import bench_generator, config_f, describe_machine, random_generator
    from .gan.load import load_generator

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"vjgan bench on {describe_machine(device)}")
    if args.model:
        nets = [(args.model, load_generator(args.model))]
    else:
        nets = [(f"random config-F {r}x{r}", random_generator(config_f(r))) for r in args.res]
    for name, G in nets:
        print(f"{name}:")
        bench_generator(G, device, batch=args.batch, iters=args.iters)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vjgan", description="A real-time GAN visual instrument for live concerts.")
    parser.add_argument("--version", action="version", version=f"vjgan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="describe a model file (format, resolution, dims, channels)")
    p.add_argument("model", help="a StyleGAN2 checkpoint (.pkl, .pt or .safetensors)")
    p.set_defaults(handler=_cmd_info)

    p = sub.add_parser("convert", help="convert any supported checkpoint to vjgan's .safetensors format")
    p.add_argument("input", help="the checkpoint to read")
    p.add_argument("output", help="the .safetensors file to write")
    p.add_argument("--force", action="store_true", help="replace the output if it exists")
    p.set_defaults(handler=_cmd_convert)

    p = sub.add_parser("bench", help="time frame generation in each mode (ms per frame, fps)")
    p.add_argument("model", nargs="?", help="a model file (default: random config-F networks)")
    p.add_argument("--res", type=int, nargs="+", default=[256, 512, 1024], help="resolutions of the random networks")
    p.add_argument("--device", help="cuda, mps or cpu (default: cuda when present)")
    p.add_argument("--batch", type=int, default=8, help="batch size of the offline-rendering mode")
    p.add_argument("--iters", type=int, default=50, help="timed iterations per repeat")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.set_defaults(handler=_cmd_bench)

    for add in _plugin_parsers():
        add(sub)
    return parser


def _plugin_parsers() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Subcommands defined next to the code they drive."""
    return []


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except UserError as e:
        print(f"vjgan: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
