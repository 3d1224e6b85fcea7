"""Command line: argparse subcommands only; each subcommand's work lives in its own module."""

from __future__ import annotations

import argparse
import logging
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

    from .live.scene import pick_device

    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"vjgan bench on {describe_machine(device)}")
    if args.model == "live":
        return _bench_live(args, device)
    if args.model == "display":
        from .display.bench import bench_display

        try:
            w, h = (int(x) for x in args.output.lower().split("x"))
        except ValueError:
            raise UserError(f"--output must look like 1920x1080, not {args.output!r}") from None
        for r in args.res:
            print(bench_display((w, h), r).describe())
        return 0
    if args.model:
        nets = [(args.model, load_generator(args.model))]
    else:
        nets = [(f"random config-F {r}x{r}", random_generator(config_f(r))) for r in args.res]
    for name, G in nets:
        print(f"{name}:")
        bench_generator(G, device, batch=args.batch, iters=args.iters)
    return 0


def _bench_live(args: argparse.Namespace, device) -> int:
    from .gan.bench import config_f, random_generator
    from .live.benchlive import print_live_bench, run_live_bench

    try:
        w, h = (int(x) for x in args.output.lower().split("x"))
    except ValueError:
        raise UserError(f"--output must look like 640x360, not {args.output!r}") from None
    models = [args.live_model] if args.live_model else [random_generator(config_f(r)) for r in args.res]
    for model in models:
        result = run_live_bench(model, device, seconds=args.seconds, output=(w, h), min_fps=args.min_fps)
        print_live_bench(result)
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

    p = sub.add_parser("bench", help="time frame generation in each mode, or the live pipeline (`bench live`)",
                       description="`vjgan bench [MODEL]` times synthesis in each mode; `vjgan bench live` runs the whole "
                                   "show offscreen with time-stamped clicks and reports sound-to-screen latency; "
                                   "`vjgan bench display` times the upload and shader chain offscreen.")
    p.add_argument("model", nargs="?", help="a model file (default: random config-F networks), 'live' or 'display'")
    p.add_argument("--live-model", help="with `bench live`: a model file instead of random config-F networks")
    p.add_argument("--seconds", type=float, default=20.0, help="with `bench live`: length of the click track")
    p.add_argument("--output", default="640x360", help="with `bench live` / `bench display`: offscreen output size")
    p.add_argument("--min-fps", type=float, default=24.0, help="with `bench live`: the frame budget's floor")
    p.add_argument("--res", type=int, nargs="+", default=[256, 512, 1024], help="resolutions of the random networks")
    p.add_argument("--device", help="cuda, mps or cpu (default: cuda when present)")
    p.add_argument("--batch", type=int, default=8, help="batch size of the offline-rendering mode")
    p.add_argument("--iters", type=int, default=50, help="timed iterations per repeat")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.set_defaults(handler=_cmd_bench)

    p = sub.add_parser("live", help="play the show: audio in, pictures out (the default command)")
    p.add_argument("--preset", default="default", help="a preset name or .toml file (default: Klingemann's rule)")
    p.add_argument("--model", help="a model file (default: the preset's, else the embedded default)")
    src = p.add_argument_group("audio input")
    src.add_argument("--audio", metavar="DEVICE", help="input device: index or part of its name (default: the default input)")
    src.add_argument("--file", metavar="F", help="play an audio file in real time instead of an input (rehearsal)")
    src.add_argument("--demo", action="store_true", help="the built-in demo groove (no input needed)")
    src.add_argument("--audio-backend", choices=("sounddevice", "pyaudio"), default="sounddevice")
    src.add_argument("--channel", default="mix", metavar="N|mix", help="input channel from 1, or 'mix' (default)")
    src.add_argument("--gain", type=float, default=0.0, metavar="DB", help="manual input gain in dB")
    src.add_argument("--monitor-audio", action="store_true", help="also play --file or --demo to the speakers")
    out = p.add_argument_group("output")
    out.add_argument("--monitor", metavar="NAME|INDEX", help="the projector's monitor (see `vjgan devices`)")
    out.add_argument("--fullscreen", action="store_true", help="start fullscreen (F toggles)")
    out.add_argument("--window", default="1280x720", metavar="WxH", help="window size when not fullscreen")
    out.add_argument("--no-operator", action="store_true", help="no operator window on the laptop screen")
    out.add_argument("--hud", action="store_true", help="text HUD on the output (single-screen rehearsal; off by default)")
    p.add_argument("--midi", action="append", metavar="PORT", help="MIDI input port (part of its name); repeat for several")
    p.add_argument("--device", help="cuda, mps or cpu (default: the fastest present)")
    p.add_argument("--min-fps", type=float, default=24.0, help="below this generation rate, step down a block")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--fresh", action="store_true", help="ignore the autosaved running state")
    p.set_defaults(handler=_cmd_live)

    p = sub.add_parser("devices", help="list audio inputs, MIDI ports and monitors")
    p.add_argument("--audio-backend", choices=("sounddevice", "pyaudio"), default="sounddevice")
    p.set_defaults(handler=_cmd_devices)

    for add in _plugin_parsers():
        add(sub)
    return parser


def _cmd_live(args: argparse.Namespace) -> int:
    from .live.app import LiveOptions, run_live

    if sum(bool(x) for x in (args.audio, args.file, args.demo)) > 1:
        raise UserError("choose one audio input: --audio DEVICE, --file F or --demo")
    try:
        w, h = (int(x) for x in args.window.lower().split("x"))
    except ValueError:
        raise UserError(f"--window must look like 1280x720, not {args.window!r}") from None
    return run_live(LiveOptions(
        preset=args.preset, model=args.model, audio=args.audio, file=args.file, demo=args.demo,
        audio_backend=args.audio_backend, channel=args.channel, gain_db=args.gain, monitor_audio=args.monitor_audio,
        monitor=args.monitor, fullscreen=args.fullscreen, window_size=(w, h), midi=tuple(args.midi or ()),
        device=args.device, min_fps=args.min_fps, duration=args.duration, fresh=args.fresh,
        operator=not args.no_operator, hud=args.hud,
    ))


def _cmd_devices(args: argparse.Namespace) -> int:
    """Everything a show can be wired to: audio inputs, MIDI ports, monitors."""
    from .audio.capture import list_audio_devices

    print("Audio inputs:")
    lines = list_audio_devices(args.audio_backend)
    for line in lines or ["(none found: `vjgan live` plays the demo groove)"]:
        print(f"  {line}")
    try:
        from .control.cli import list_midi_ports

        ports = list_midi_ports()
        for kind in ("inputs", "outputs"):
            print(f"MIDI {kind}:")
            for name in ports.get(kind, []) or ["(none)"]:
                print(f"  {name}")
    except UserError as e:
        print(f"MIDI: unavailable ({e})")
    from .display.monitors import list_monitors
    from .display.errors import NoDisplayError

    print("Monitors:")
    try:
        monitors = list_monitors()
        for m in monitors or ["(none)"]:
            print(f"  {m.describe() if hasattr(m, 'describe') else m}")
    except NoDisplayError as e:
        print(f"  (no display: {e})")
    return 0


def _plugin_parsers() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Subcommands defined next to the code they drive (imported here so `vjgan --help` lists them)."""
    from .audio.cli import add_analyze_parser
    from .control.cli import add_midi_parser
    from .dataset.cli import add_dataset_parser
    from .prompt.cli import add_prompt_parser
    from .render.cli import add_render_parser
    from .train.cli import add_train_parser

    return [add_analyze_parser, add_midi_parser, add_render_parser, add_train_parser, add_dataset_parser,
            add_prompt_parser]


def main(argv: Sequence[str] | None = None) -> int:
    # Library modules report through logging; the user sees one "vjgan: ..." line per event.
    logging.basicConfig(level=logging.WARNING, format="vjgan: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    # Subcommand modules name their callback `handler` or `func`.
    handler = getattr(args, "handler", None) or getattr(args, "func", None)
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
