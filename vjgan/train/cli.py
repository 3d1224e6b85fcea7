"""`vjgan train DATA --out DIR`: train a StyleGAN2 on a folder, a zip, or vjgan's procedural images."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..dataset.cli import resolve_device
from ..errors import UserError
from .data import open_training_data
from .trainer import ARCHITECTURES, SNAPSHOT_NAME, TrainConfig, Trainer, load_snapshot, parse_channels

DEFAULT_KIMG = 1000.0

# Options that define the run; on --resume they come from the snapshot.
_RUN_OPTIONS = ("res", "batch", "seed", "arch", "channels", "d_channels", "z_dim", "w_dim", "mapping_layers", "gamma",
                "lr", "ema_kimg", "style_mixing", "augment", "no_mirror", "no_fp16")


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `train` to the vjgan command line."""
    p = subparsers.add_parser(
        "train", help="train a StyleGAN2 generator on your images",
        description="Train a StyleGAN2 generator. DATA is a folder or .zip of images (resized and centre-cropped on "
                    "the fly; unreadable files are reported and skipped) or procedural:SEED:COUNT for vjgan's own "
                    "images, rendered in memory. The run writes DIR/snapshot.pt (resumable), DIR/network.safetensors "
                    "(the generator, for vjgan live/render), sample grids and interpolation strips. Stop any time "
                    "(Ctrl-C) or give --minutes: a snapshot is written, and --resume continues exactly.")
    p.add_argument("data", metavar="DATA", help="folder or .zip of images, or procedural:SEED:COUNT")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder (created)")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="SNAPSHOT",
                   help=f"continue the run in DIR (from DIR/{SNAPSHOT_NAME}, or the snapshot given)")
    p.add_argument("--kimg", type=float, default=None,
                   help=f"stop when this many thousand images have been shown in total (default {DEFAULT_KIMG:g}; on --resume the run's own target)")
    p.add_argument("--minutes", type=float, default=None, help="stop after this much wall-clock time (includes the final snapshot)")
    g = p.add_argument_group("the run (fixed at its start; ignored with --resume)")
    g.add_argument("--res", type=int, default=None, help="training resolution, a power of two (default 128)")
    g.add_argument("--batch", type=int, default=None, help="minibatch size (default 32)")
    g.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    g.add_argument("--arch", choices=sorted(ARCHITECTURES), default=None,
                   help="vj: real-time on a laptop CPU (default); large: StyleGAN2-ADA's size, GPU playback only")
    g.add_argument("--channels", default=None, metavar="SPEC", help="generator feature maps per resolution, e.g. 4:256,8:256,16:192,32:128,64:64,128:32")
    g.add_argument("--d-channels", default=None, metavar="SPEC", help="discriminator feature maps (default: the generator's)")
    g.add_argument("--z-dim", type=int, default=None, help="latent size (default 256)")
    g.add_argument("--w-dim", type=int, default=None, help="style size (default 256)")
    g.add_argument("--mapping-layers", type=int, default=None, help="mapping network depth (default 4)")
    g.add_argument("--gamma", type=float, default=None, help="R1 weight (default 0.0002 * res^2 / batch)")
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate of both networks (default 0.0025)")
    g.add_argument("--ema-kimg", type=float, default=None, help="half-life of the generator average in kimg (default 10 * batch / 32)")
    g.add_argument("--style-mixing", type=float, default=None, help="style-mixing probability (default 0.9)")
    g.add_argument("--augment", default=None, metavar="POLICY",
                   help="differentiable augmentation for small datasets: none (default) or a list of color,translation,cutout")
    g.add_argument("--no-mirror", action="store_true", default=None, help="do not add horizontally flipped copies")
    g.add_argument("--no-fp16", action="store_true", default=None, help="full precision on CUDA too")
    o = p.add_argument_group("output and machine")
    o.add_argument("--snapshot-kimg", type=float, default=None, help="also snapshot every this many kimg")
    o.add_argument("--snapshot-minutes", type=float, default=10.0, help="snapshot at least this often (default 10)")
    o.add_argument("--log-seconds", type=float, default=20.0, help="progress line interval (default 20)")
    o.add_argument("--export", default=None, metavar="PATH", help="also write the final generator to PATH (.safetensors)")
    o.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    o.add_argument("--cache-gb", type=float, default=8.0, help="keep decoded images in memory up to this size (default 8)")
    o.add_argument("--threads", type=int, default=0, help="image decoding threads (default: up to 8)")
    p.set_defaults(handler=run_train_command)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    res = args.res or 128
    kw: dict = {"resolution": res}
    if args.batch is not None:
        kw["batch"] = args.batch
    if args.seed is not None:
        kw["seed"] = args.seed
    if args.arch is not None:
        kw["architecture"] = args.arch
    if args.channels:
        kw["g_channels"] = parse_channels(args.channels, res)
    if args.d_channels:
        kw["d_channels"] = parse_channels(args.d_channels, res)
    for name in ("z_dim", "w_dim", "mapping_layers", "gamma", "ema_kimg", "style_mixing", "augment"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    if args.lr is not None:
        kw["lr_g"] = kw["lr_d"] = args.lr
    if args.no_mirror:
        kw["mirror"] = False
    if args.no_fp16:
        kw["fp16"] = False
    if kw.get("augment", "").strip().lower() in ("none", "off"):
        kw["augment"] = ""
    for name in ("z_dim", "w_dim", "mapping_layers"):
        if name in kw and kw[name] < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    return TrainConfig(**kw)


def run_train_command(args: argparse.Namespace, log=None) -> int:
    log = log or (lambda msg: print(msg, flush=True))
    if args.kimg is not None and not args.kimg > 0:
        raise UserError("--kimg must be positive")
    if args.minutes is not None and not args.minutes > 0:
        raise UserError("--minutes must be positive")
    device = resolve_device(args.device)
    out = Path(args.out)
    if args.resume:
        snap_path = out / SNAPSHOT_NAME if args.resume is True else Path(args.resume)
        state = load_snapshot(snap_path)
        ignored = [f"--{n.replace('_', '-')}" for n in _RUN_OPTIONS if getattr(args, n, None) not in (None, False)]
        if ignored:
            log(f"note: {', '.join(ignored)} ignored: a resumed run keeps the settings it started with")
        cfg = TrainConfig.from_dict(state["config"])
        target = args.kimg if args.kimg is not None else float(state.get("kimg_target", DEFAULT_KIMG))
        del state
        data = open_training_data(args.data, cfg.resolution, device, cache_gb=args.cache_gb, threads=args.threads, log=log)
        trainer = Trainer.resume(snap_path, data, out, device, log=log)
        log(f"resumed {snap_path} at {trainer.cur_nimg / 1000:.1f} kimg (step {trainer.step_index})")
    else:
        cfg = config_from_args(args)
        target = args.kimg if args.kimg is not None else DEFAULT_KIMG
        if (out / SNAPSHOT_NAME).exists():
            raise UserError(f"{out} already holds a training run; pass --resume to continue it, or choose another --out")
        data = open_training_data(args.data, cfg.resolution, device, cache_gb=args.cache_gb, threads=args.threads, log=log)
        trainer = Trainer.create(cfg, data, out, device, log=log)
    log(trainer.data.describe())
    result = trainer.run(kimg=target, minutes=args.minutes, snapshot_kimg=args.snapshot_kimg,
                         snapshot_minutes=args.snapshot_minutes, log_seconds=args.log_seconds)
    if args.export:
        path = trainer.export(args.export)
        log(f"exported the generator to {path}")
    return 130 if result.reason == "interrupted" else 0
