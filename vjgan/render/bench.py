"""Render speed benchmark: `python -m vjgan.render.bench` (for docs/benchmarks.md, never a test).

Renders the demo groove with random config-F networks (or a given model) at each resolution
and encoder, through the whole `vjgan render` path, and prints one Markdown table row per run
with generation, post, conversion and encoding timed separately. A random network draws
high-frequency texture, which is harder to encode than a trained model's pictures, so the
encoding figures are on the pessimistic side.

    python -m vjgan.render.bench                               # 512² and 1024², libx264 (+ NVENC when present)
    python -m vjgan.render.bench --res 1024 --codecs h264_nvenc --seconds 30
    python -m vjgan.render.bench --model my.safetensors --size 1920x1080
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np
import soundfile as sf
import torch

from ..audio.demo import render_groove
from ..errors import UserError
from .options import RenderOptions, parse_fps, parse_size
from .render import render

HEADER = ("| model | output | device | encoder | batch | frames | generation | post | 4:2:0 + copy | encoding | "
          "total | × real time |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def _fps(frames: int, seconds: float) -> str:
    return f"{frames / seconds:.0f} fps" if seconds > 0 else "-"


def _write_groove(path: Path, seconds: float, rate: int = 48000) -> None:
    loop = render_groove(rate, bpm=124.0, bars=8)
    reps = int(np.ceil(seconds * rate / len(loop)))
    mono = np.tile(loop, reps)[: int(seconds * rate)]
    sf.write(path, np.stack([mono, mono], axis=1), rate)


def _random_model(res: int, folder: Path) -> Path:
    from ..gan.bench import config_f, random_generator
    from ..gan.own_format import save_generator

    return save_generator(random_generator(config_f(res)), folder / f"random-config-f-{res}.safetensors")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vjgan.render.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--res", type=int, nargs="+", default=[512, 1024], help="random config-F resolutions")
    p.add_argument("--model", help="benchmark this model instead of random networks")
    p.add_argument("--codecs", nargs="+", help="encoders (default: libx264, plus h264_nvenc when it opens)")
    p.add_argument("--encoder-presets", nargs="+", default=[None],
                   help="encoder presets to compare, e.g. medium veryfast (default: each encoder's own default)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the rendered groove")
    p.add_argument("--fps", default="30")
    p.add_argument("--size", help="output WIDTHxHEIGHT (default: the model's square)")
    p.add_argument("--batch", type=int, nargs="+", default=[8])
    p.add_argument("--device", help="cuda or cpu (default: the best present)")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--no-gl", action="store_true", help="tensor fit/fill instead of the GL renderer")
    p.add_argument("--serial", action="store_true", help="stages one after another (as `vjgan render --serial`)")
    p.add_argument("--keep", help="keep models, audio and videos in this folder")
    args = p.parse_args(argv)
    fps = parse_fps(args.fps)
    size = parse_size(args.size) if args.size else None
    codecs = args.codecs or ["libx264"] + (["h264_nvenc"] if torch.cuda.is_available() else [])  # NVENC: where it opens
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vjgan-render-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    audio = work / "groove.wav"
    _write_groove(audio, args.seconds)
    device = torch.device(args.device) if args.device else None
    on_gpu = torch.cuda.is_available() and (device is None or device.type == "cuda")
    gpu = torch.cuda.get_device_name(0) if on_gpu else None
    print(f"vjgan render bench: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
          f"{', ' + gpu if gpu else ''}; torch {torch.__version__}, PyAV {av.__version__}, "
          f"{args.seconds:g} s at {float(fps):g} fps; {time.strftime('%Y-%m-%d')}", flush=True)
    models = [Path(args.model)] if args.model else [_random_model(r, work) for r in args.res]
    rows = []
    for model in models:
        for codec, encoder_preset, batch in itertools.product(codecs, args.encoder_presets, args.batch):
            out = work / f"{model.stem}-{codec}-{encoder_preset or 'default'}-b{batch}.mp4"
            opts = RenderOptions(audio=audio, out=out, model=str(model), fps=Fraction(fps), size=size, codec=codec,
                                 encoder_preset=encoder_preset, batch=batch, device=args.device,
                                 threads=args.threads, force=True, timings=True, progress=False,
                                 use_gl=not args.no_gl, pipeline=not args.serial)
            try:
                result = render(opts, log=lambda s: print("  " + s, file=sys.stderr, flush=True))
            except UserError as e:
                print(f"  skipped {model.name} with {codec}: {e}", file=sys.stderr, flush=True)
                continue
            t = result.timings
            with av.open(str(out)) as c:
                w, h = c.streams.video[0].width, c.streams.video[0].height
            rows.append(f"| {model.stem} | {w}x{h} ({result.post}) | {result.device} | {result.encoder} | {batch} | "
                        f"{t.frames} | {_fps(t.frames, t.generate)} | {_fps(t.frames, t.post)} | "
                        f"{_fps(t.frames, t.convert)} | {_fps(t.frames, t.encode)} | {_fps(t.frames, t.loop)} | "
                        f"{t.video_s / t.loop:.2f}× |")
            print(rows[-1], flush=True)
    print()
    print(HEADER)
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
