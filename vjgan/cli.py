"""Command line: argparse subcommands only; each subcommand's work lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from . import __version__
from .errors import UserError
from .logs import setup_logging
from .audio.config import GAIN_DB
from .validation import Number, cli_number

# Numeric options, refused by the parser in one line (a 0 fps floor would divide by zero later).
MIN_FPS = cli_number(Number(0.1, 1000.0, unit="fps"))
SECONDS = cli_number(Number(0.0, 1e6, low_open=True, unit="s"))
COUNT = cli_number(Number(1, 1_000_000, whole=True))
THREADS = cli_number(Number(1, 1024, whole=True))
RESOLUTION = cli_number(Number(4, 4096, whole=True, unit="px"))
OSC_RATE = cli_number(Number(1.0, 1000.0, unit="Hz"))
HOP_MS = cli_number(Number(2.0, 50.0, unit="ms", why="the analysis hop"))
LATENCY_MS = cli_number(Number(0.0, 2000.0, unit="ms", why="how late the picture is behind the sound"))


class OneLineParser(argparse.ArgumentParser):
    """argparse, except that a bad argument is one line, like every other vjgan error (the
    usage is one `--help` away). Subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


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
    if not out.parent.is_dir():  # never made silently: a mistyped folder would hide the model
        raise UserError(f"output folder {out.parent} does not exist; create it first")
    if out.exists() and not args.force:
        raise UserError(f"output {out} exists; pass --force to replace it")
    G = load_generator(args.input)
    try:
        save_generator(G, out, metadata={"converted_from": Path(args.input).name, "source_format": G.source_format})
    except OSError as e:  # a full disk, a quota, a read-only folder: the old file (if any) is untouched
        raise UserError(f"cannot write {out}: {e.strerror or type(e).__name__}") from None
    print(f"wrote {out} ({FORMAT_NAMES.get(G.source_format, G.source_format)} → vjgan .safetensors, "
          f"{G.img_resolution}x{G.img_resolution}, {out.stat().st_size / 1e6:.1f} MB)")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from .gan.bench import bench_generator, benchmark_config, describe_machine, random_generator
    from .gan.load import load_generator

    from .engine.device import pick_device

    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"vjgan bench on {describe_machine(device)}")
    if args.model == "live":
        return _bench_live(args, device)
    if args.model == "rig":
        from .rig.bench import run_rig_bench

        run_rig_bench()
        return 0
    if args.model == "display":
        from .display.bench import bench_display

        try:
            w, h = (int(x) for x in args.output.lower().split("x"))
        except ValueError:
            raise UserError(f"--output must look like 1920x1080, not {args.output!r}") from None
        for r in args.res:
            print(bench_display((w, h), r).describe())
        return 0
    if args.model == "default" or (not args.model and device.type != "cuda"):
        # The model a fresh install plays: what a laptop without a GPU should measure.
        from .resources import data_file

        shipped = data_file("models", "default.safetensors")
        nets = [(f"the shipped default model ({shipped.name})", load_generator(shipped))]
    elif args.model:
        nets = [(args.model, load_generator(args.model))]
    else:
        label = {"stylegan2": "config-F", "stylegan3-t": "StyleGAN3-T", "stylegan3-r": "StyleGAN3-R"}
        nets = [(f"random {label[a]} {r}x{r}", random_generator(benchmark_config(a, r))) for a in args.arch for r in args.res]
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
    if args.live_model:
        models = [args.live_model]
    elif device.type != "cuda":
        from .resources import data_file

        models = [str(data_file("models", "default.safetensors"))]  # what a laptop without a GPU plays
    else:
        models = [random_generator(config_f(r)) for r in args.res]
    for model in models:
        result = run_live_bench(model, device, seconds=args.seconds, output=(w, h), min_fps=args.min_fps,
                                redraw=args.redraw, hop_s=args.hop_ms / 1000.0, latch=not args.no_latch)
        print_live_bench(result)
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; `command` (the subcommand being run) gets its plugin's full parser."""
    parser = OneLineParser(prog="vjgan", description="A real-time GAN visual instrument for live concerts.")
    parser.add_argument("--version", action="version", version=f"vjgan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="describe a model file (format, resolution, dims, channels)")
    p.add_argument("model", help="a StyleGAN2 or StyleGAN3 checkpoint (.pkl, .pt or .safetensors)")
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
    p.add_argument("model", nargs="?", help="a model file, 'default' (the shipped model), 'live', 'display' or 'rig' "
                                             "(default: the shipped model on a CPU, random config-F networks on CUDA)")
    p.add_argument("--live-model", help="with `bench live`: a model file instead of random config-F networks")
    p.add_argument("--seconds", type=SECONDS, default=20.0, help="with `bench live`: length of the click track")
    p.add_argument("--output", default="640x360", help="with `bench live` / `bench display`: offscreen output size")
    p.add_argument("--min-fps", type=MIN_FPS, default=24.0, help="with `bench live`: the frame budget's floor")
    p.add_argument("--hop-ms", type=HOP_MS, default=10.0, metavar="MS", help="with `bench live`: the analysis hop")
    p.add_argument("--no-latch", action="store_true",
                   help="with `bench live`: start a frame on every analysis hop instead of timing it to the vsync")
    p.add_argument("--redraw", choices=("live", "every"), default="live",
                   help="with `bench live`: redraw as the live show does (default), or on every display tick")
    p.add_argument("--res", type=RESOLUTION, nargs="+", default=[256, 512, 1024],
                   help="resolutions of the random config-F networks (CUDA, or `bench live` without --live-model)")
    p.add_argument("--arch", nargs="+", default=["stylegan2"], choices=["stylegan2", "stylegan3-t", "stylegan3-r"],
                   help="architectures of the random networks (StyleGAN2 config-F, NVIDIA's StyleGAN3 T and R)")
    p.add_argument("--device", help="cuda, mps or cpu (default: cuda when present)")
    p.add_argument("--batch", type=COUNT, default=8, help="batch size of the offline-rendering mode")
    p.add_argument("--iters", type=COUNT, default=50, help="timed iterations per repeat")
    p.add_argument("--threads", type=THREADS, help="CPU threads for torch")
    p.set_defaults(handler=_cmd_bench)

    p = sub.add_parser("live", help="play the show: audio in, pictures out (the default command)")
    p.add_argument("--preset", help="a preset name or .toml file (default: Klingemann's rule; with --portrait, "
                                     "living-portrait)")
    p.add_argument("--model", help="a model file (default: the preset's, else the embedded default)")
    kf = p.add_argument_group("keyframes found while the show plays (docs/portrait.md, docs/prompts.md)")
    kf.add_argument("--portrait", metavar="PHOTO", help="project this photo into the model in the background, then "
                                                        "play it: the living portrait (vjgan[portrait])")
    kf.add_argument("--portrait-steps", type=COUNT, default=300, help="projection steps (more: a closer likeness)")
    kf.add_argument("--portrait-align", choices=("face", "none"), default="face",
                    help="face: crop around the detected face as FFHQ was made; none: the whole picture")
    kf.add_argument("--clip", metavar="FILE", help="CLIP weights for text prompts (vjgan[prompt]; nothing is downloaded)")
    kf.add_argument("--clip-arch", metavar="ARCH", help="CLIP's architecture, e.g. ViT-B-32")
    kf.add_argument("--prompt", action="append", metavar="WORDS", help="find a picture for these words once the show "
                                                                       "runs (needs --clip); the operator can type more")
    src = p.add_argument_group("audio input")
    src.add_argument("--audio", metavar="DEVICE", help="input device: index or part of its name (default: the default input)")
    src.add_argument("--file", metavar="F", help="play an audio file in real time instead of an input (rehearsal)")
    src.add_argument("--demo", action="store_true", help="the built-in demo groove (no input needed)")
    src.add_argument("--audio-backend", choices=("sounddevice", "pyaudio"), default="sounddevice")
    src.add_argument("--channel", default="mix", metavar="N|mix", help="input channel from 1, or 'mix' (default)")
    src.add_argument("--gain", type=cli_number(GAIN_DB), default=0.0, metavar="DB", help="manual input gain in dB")
    src.add_argument("--monitor-audio", action="store_true", help="also play --file or --demo to the speakers")
    src.add_argument("--hop-ms", type=HOP_MS, metavar="MS",
                     help="analysis hop in ms (default: the preset's, 10); 5 halves the wait for the sound "
                          "(docs/benchmarks.md: about 0.15 ms of one core per hop)")
    out = p.add_argument_group("output")
    out.add_argument("--monitor", metavar="NAME|INDEX", help="the projector's monitor (see `vjgan devices`)")
    out.add_argument("--fullscreen", action="store_true", help="start fullscreen (F toggles)")
    out.add_argument("--window", default="1280x720", metavar="WxH", help="window size when not fullscreen")
    out.add_argument("--no-operator", action="store_true", help="no operator window on the laptop screen")
    out.add_argument("--hud", action="store_true", help="text HUD on the output (single-screen rehearsal; off by default)")
    out.add_argument("--ui-scale", type=float, default=1.0, metavar="X",
                     help="operator console size, times the monitor's own scale (0.5-4; default 1)")
    p.add_argument("--midi", action="append", metavar="PORT", help="MIDI input port (part of its name); repeat for several")
    p.add_argument("--device", help="cuda, mps or cpu (default: the fastest present)")
    p.add_argument("--min-fps", type=MIN_FPS, default=24.0, help="below this generation rate, step down a block")
    p.add_argument("--duration", type=SECONDS, metavar="S", help="stop after S seconds")
    p.add_argument("--no-latch", action="store_true",
                   help="start a frame on every analysis hop instead of timing it to the display's refresh")
    p.add_argument("--fresh", action="store_true", help="ignore the autosaved running state")
    _add_rig_options(p)
    p.set_defaults(handler=_cmd_live)

    p = sub.add_parser("commands", help="list the named actions keys, pads and OSC can fire (docs/commands.md)")
    p.set_defaults(handler=_cmd_commands)

    p = sub.add_parser("osc", help="OSC: `vjgan osc addresses` prints the address tree (docs/osc.md)")
    p.add_argument("what", choices=("addresses",), help="addresses: every address vjgan takes and sends")
    p.set_defaults(handler=_cmd_osc)

    p = sub.add_parser("devices", help="list audio inputs, MIDI ports, monitors and video outputs")
    p.add_argument("--audio-backend", choices=("sounddevice", "pyaudio"), default="sounddevice")
    p.set_defaults(handler=_cmd_devices)

    _add_plugins(sub, command)
    return parser


def _cmd_live(args: argparse.Namespace) -> int:
    from .live.app import LiveOptions, run_live

    if sum(bool(x) for x in (args.audio, args.file, args.demo)) > 1:
        raise UserError("choose one audio input: --audio DEVICE, --file F or --demo")
    try:
        w, h = (int(x) for x in args.window.lower().split("x"))
    except ValueError:
        raise UserError(f"--window must look like 1280x720, not {args.window!r}") from None
    if not 0.5 <= args.ui_scale <= 4.0:
        raise UserError(f"--ui-scale must be between 0.5 and 4, not {args.ui_scale:g}")
    preset = args.preset or ("living-portrait" if args.portrait else "default")
    return run_live(LiveOptions(
        preset=preset, model=args.model, portrait=args.portrait, portrait_steps=args.portrait_steps,
        portrait_align=args.portrait_align, clip=args.clip, clip_arch=args.clip_arch, prompts=tuple(args.prompt or ()), audio=args.audio, file=args.file, demo=args.demo,
        audio_backend=args.audio_backend, channel=args.channel, gain_db=args.gain, monitor_audio=args.monitor_audio,
        monitor=args.monitor, fullscreen=args.fullscreen, window_size=(w, h), midi=tuple(args.midi or ()),
        device=args.device, min_fps=args.min_fps, duration=args.duration, fresh=args.fresh,
        operator=not args.no_operator, hud=args.hud, ui_scale=args.ui_scale, rig=_rig_options(args),
        hop_s=args.hop_ms / 1000.0 if args.hop_ms else None, latch=not args.no_latch,
    ))


def _add_rig_options(p: argparse.ArgumentParser) -> None:
    """vjgan in the rig: OSC, Ableton Link, video outputs, recording (docs/osc.md, docs/outputs.md)."""
    g = p.add_argument_group("the rig (docs/osc.md, docs/outputs.md)")
    g.add_argument("--osc-in", metavar="PORT|HOST:PORT",
                   help="take OSC on this port (loopback only; 0.0.0.0:PORT listens on the network)")
    g.add_argument("--osc-out", action="append", metavar="HOST:PORT",
                   help="send the analysis and parameter changes over OSC there; repeat for several")
    g.add_argument("--osc-rate", type=OSC_RATE, metavar="HZ", help="features per second out (default: every hop)")
    g.add_argument("--link", action="store_true", help="join the Ableton Link session (extra `link`, GPL)")
    g.add_argument("--link-latency", type=LATENCY_MS, default=0.0, metavar="MS",
                   help="how late the picture is behind the sound: the beat clock runs this much early")
    g.add_argument("--quantize", choices=("off", "beat", "bar", "preset"), default="preset",
                   help="preset changes land on the next beat or bar (default: each preset's own option)")
    g.add_argument("--ndi", metavar="NAME", help="send the output and the sound as an NDI source")
    g.add_argument("--syphon", metavar="NAME", help="publish the output as a Syphon server (macOS)")
    g.add_argument("--spout", metavar="NAME", help="publish the output as a Spout sender (Windows)")
    g.add_argument("--v4l2", metavar="/dev/videoN", help="write the output to a v4l2loopback camera (Linux)")
    g.add_argument("--record", metavar="FILE", help="record the output with the sound (.mp4, .mov, .mkv; "
                                                   "never over an existing file)")
    g.add_argument("--record-codec", metavar="CODEC", help="h264 (default), prores_ks, hap, ... (.mov for ProRes/HAP)")
    g.add_argument("--record-fps", type=int, choices=(24, 25, 30, 50, 60), default=30, metavar="FPS",
                   help="the recording's frame rate: 24, 25, 30, 50 or 60 (default 30)")


def _rig_options(args: argparse.Namespace):
    from .rig.rig import RigOptions

    options = RigOptions(
        osc_in=args.osc_in, osc_out=tuple(args.osc_out or ()), osc_rate=args.osc_rate, link=args.link,
        link_latency_ms=args.link_latency, ndi=args.ndi, syphon=args.syphon, spout=args.spout, v4l2=args.v4l2,
        record=args.record, record_codec=args.record_codec, record_fps=args.record_fps, quantize=args.quantize)
    return options.check()


def _cmd_commands(args: argparse.Namespace) -> int:
    from .control.commands import describe_actions

    print("Named actions (MIDI pads, keys, the operator window and OSC all fire these):")
    for line in describe_actions():
        print(f"  {line}")
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    """Everything a show can be wired to: audio inputs, MIDI ports, monitors."""
    from .audio.capture import list_audio_devices

    print("Audio inputs:")
    lines = list_audio_devices(args.audio_backend)
    for line in lines or ["(none found: `vjgan live` plays the demo groove)"]:
        print(f"  {line}")
    from .audio.capture import quiet_stderr
    from .control.cli import list_midi_ports

    with quiet_stderr():  # ALSA prints its own complaint when the MIDI sequencer is absent
        ports = list_midi_ports()
    if ports.get("error"):
        print(f"MIDI: unavailable ({ports['error']})")
    else:
        for kind in ("inputs", "outputs"):
            print(f"MIDI {kind}:")
            for name in ports.get(kind, []) or ["(none)"]:
                print(f"  {name}")
    from .display.monitors import list_monitors
    from .display.errors import NoDisplayError

    print("Monitors:")
    try:
        monitors = list_monitors()
        for m in monitors or ["(none)"]:
            print(f"  {m.describe() if hasattr(m, 'describe') else m}")
    except NoDisplayError as e:
        print(f"  (no display: {e})")
    from .rig.outputs import output_kinds

    print("Video outputs:")
    for kind in output_kinds():
        why = kind.probe()
        print(f"  {kind.name:<13} {kind.option:<20} {'ready' if not why else 'not here: ' + why}")
    return 0


def _cmd_osc(args: argparse.Namespace) -> int:
    from .control.commands import describe_actions
    from .live.app import SHOW_PARAMS
    from .rig.osc_tree import describe_tree

    print("OSC addresses (floats for parameters are 0–1 across the range; `?` as the argument asks):")
    for line in describe_tree():
        print(f"  {line}")
    print("Parameters of every show (a preset adds its own; /vjgan/params ? lists them all while it plays):")
    print("  " + ", ".join(spec.name for spec in SHOW_PARAMS))
    print("Actions (/vjgan/action/<action>):")
    for line in describe_actions():
        print(f"  {line}")
    return 0


# Subcommands defined next to the code they drive: (module, function that adds them, the commands
# it adds with their one-line help). Only the module of the command being run is imported, so
# `vjgan analyze` starts without loading torch and stays small; `vjgan --help` lists them all
# from this table.
PLUGINS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("vjgan.audio.cli", "add_analyze_parser", (("analyze", "tempo, beats, onsets and band envelopes of a track"),)),
    ("vjgan.control.cli", "add_midi_parser", (("midi", "MIDI tools: watch what a controller sends, list ports"),)),
    ("vjgan.render.cli", "add_render_parser", (("render", "an audio file → a video with its soundtrack"),)),
    ("vjgan.train.cli", "add_train_parser", (("train", "train a StyleGAN2 on your images"),)),
    ("vjgan.dataset.cli", "add_dataset_parser", (("dataset", "make a training dataset"),)),
    ("vjgan.portrait.cli", "add_portrait_parsers",
     (("project", "project photos into a model's latent space (keyframes for a living portrait)"),
      ("direction", "a named latent direction from two examples (A → B)"))),
    ("vjgan.prompt.cli", "add_prompt_parser", (("prompt", "find the picture CLIP matches to some words (a keyframe)"),)),
)


def _add_plugins(sub: argparse._SubParsersAction, command: str | None) -> None:
    """The full parser of the plugin that defines `command`; a one-line entry for every other."""
    for module, function, commands in PLUGINS:
        if command in {name for name, _ in commands}:
            getattr(importlib.import_module(module), function)(sub)
        else:
            for name, help_text in commands:
                sub.add_parser(name, help=help_text, add_help=False)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(next((w for w in words if not w.startswith("-")), None))
    args = parser.parse_args(words)
    if getattr(args, "command", None) is None:
        # A bare `vjgan` plays the show, as a fresh install should: `vjgan live` with its defaults.
        args = parser.parse_args(["live"])
    # One logging path: "vjgan: ..." lines on stderr, and a log file in the user's data folder
    # (for the show, the file an operator can send after it).
    setup_logging(verbose=getattr(args, "verbose", False), log_file=args.command == "live")
    # Subcommand modules name their callback `handler` or `func`.
    handler = getattr(args, "handler", None) or getattr(args, "func", None)
    try:
        return int(handler(args) or 0)
    except UserError as e:
        logging.getLogger("vjgan").error("%s", e)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
