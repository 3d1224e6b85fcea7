"""The `analyze` subcommand (`vjgan devices`, in vjgan.cli, lists the audio inputs with `list_audio_devices`).

    vjgan analyze TRACK.mp3 --json out.json --plot out.png   # offline, faster than real time
    vjgan analyze --audio "Scarlett" --channel 1               # live meters from an input
    vjgan analyze --demo                                       # live meters, the demo groove
    vjgan analyze TRACK.flac --live --monitor                  # rehearse: real time, to the speakers

Handlers return an exit code; bad input raises a `vjgan.errors.UserError` subclass, which the
top-level CLI prints as one `vjgan: ...` line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, TextIO

from vjgan.audio.capture import BACKENDS, parse_channel
from vjgan.audio.config import GAIN_DB, AnalysisConfig
from vjgan.atomic import atomic_write
from vjgan.audio.features import Features
from vjgan.errors import UserError
from vjgan.validation import Number, cli_number


# --- shared arguments (the `live` subcommand can reuse these) -----------------------------------


def add_audio_input_arguments(parser: argparse.ArgumentParser) -> None:
    """--audio, --audio-backend, --channel, --demo, --monitor, --gain."""
    g = parser.add_argument_group("audio input")
    g.add_argument("--audio", metavar="DEVICE", help="input device: index or part of its name (default: the default input)")
    g.add_argument("--audio-backend", choices=BACKENDS, default="sounddevice",
                   help="PortAudio binding (pyaudio needs the 'pyaudio' extra)")
    g.add_argument("--channel", default="mix", metavar="N|mix",
                   help="input channel number from 1, or 'mix' for a mono mix (default)")
    g.add_argument("--demo", action="store_true", help="use the built-in demo groove instead of an input")
    g.add_argument("--monitor", action="store_true", help="also play a file or the demo to the speakers")
    g.add_argument("--gain", type=cli_number(GAIN_DB), default=0.0, metavar="DB", help="manual input gain in dB (default 0)")


def analysis_config_from_args(args: argparse.Namespace) -> AnalysisConfig:
    return AnalysisConfig().with_gain(float(getattr(args, "gain", 0.0) or 0.0))


def add_analyze_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "analyze", help="analyse a track (tempo, beats, onsets, band envelopes) or show live meters",
        description="With FILE: run the live analyzer over the file faster than real time and report tempo, "
                    "beats and onsets (--json, --plot). Without FILE, or with --live: show live band meters, "
                    "BPM and beat from an input device, the demo groove, or FILE played in real time.",
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="audio file (WAV, FLAC, OGG, MP3, ...)")
    p.add_argument("--json", metavar="OUT", help="write bpm, beats, onsets, bands and per-hop frames as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="draw envelopes, onsets, beats and tempo (needs matplotlib)")
    p.add_argument("--live", action="store_true", help="play FILE in real time with live meters instead")
    p.add_argument("--duration", type=cli_number(Number(0.0, 1e6, low_open=True, unit="s")), metavar="S",
                   help="stop live meters after S seconds")
    add_audio_input_arguments(p)
    p.set_defaults(func=run_analyze)
    return p


def run_analyze(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    config = analysis_config_from_args(args)
    if args.file and not args.live:
        if args.demo or args.audio:
            raise UserError("give either FILE or --audio/--demo, not both (use --live to play FILE in real time)")
        return _analyze_offline(args, config, out)
    if args.json or args.plot:
        raise UserError("--json and --plot go with an offline FILE analysis (without --live)")
    return _analyze_live(args, config, out)


# --- offline ---------------------------------------------------------------------------------------------


def _analyze_offline(args: argparse.Namespace, config: AnalysisConfig, out: TextIO) -> int:
    from vjgan.audio.offline import analyze_array
    from vjgan.audio.sources import load_audio, to_mono

    data, rate = load_audio(args.file)
    mono = to_mono(data, parse_channel(args.channel))
    if args.plot:
        _require_matplotlib()
    t0 = time.perf_counter()
    result = analyze_array(mono, rate, config)
    elapsed = time.perf_counter() - t0
    duration = len(mono) / rate
    conf = float(result.confidence[-1]) if len(result.confidence) else 0.0
    print(f"{Path(args.file).name}: {duration:.1f} s at {rate} Hz, analysed in {elapsed:.2f} s "
          f"({duration / max(elapsed, 1e-9):.0f}x real time)", file=out)
    tempo = f"{result.final_bpm:.1f} BPM (confidence {conf:.2f})" if result.final_bpm > 0 else "no steady beat found"
    print(f"tempo: {tempo}, {len(result.beats)} beats", file=out)
    print("onsets: " + ", ".join(f"{n} {len(ts)}" for n, ts in result.onsets.items()), file=out)
    if args.json:
        _write_atomic(Path(args.json), json.dumps(result.to_json(), separators=(",", ":")).encode())
        print(f"wrote {args.json}", file=out)
    if args.plot:
        from vjgan.audio.plot import plot_analysis

        plot_analysis(result, Path(args.plot), title=Path(args.file).name)
        print(f"wrote {args.plot}", file=out)
    return 0


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'vjgan[plot]'") from None


def _write_atomic(path: Path, data: bytes) -> None:
    path = path.expanduser()
    if not path.parent.is_dir():
        raise UserError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist")
    atomic_write(path, data)


# --- live meters -----------------------------------------------------------------------------------------

_BARS = " ▁▂▃▄▅▆▇█"


def short_names(names: Sequence[str]) -> list[str]:
    """Four-letter labels for the meters, distinct even when names share a prefix (high, highmid)."""
    short = [n[:4].ljust(4) for n in names]
    for i, n in enumerate(names):
        if short.count(short[i]) > 1 and len(n) > 4:
            short[i] = (n[0] + n[-3:]).ljust(4)
    return short


def format_meters(f: Features, width: int = 8) -> str:
    """One terminal line: a meter per band, loudness, tempo and the beat."""
    def bar(v: float) -> str:
        v = min(max(v, 0.0), 1.0)
        full = int(v * width)
        part = int((v * width - full) * (len(_BARS) - 1))
        return ("█" * full + (_BARS[part] if full < width else ""))[:width].ljust(width)

    bands = " ".join(f"{n}{'*' if o else ' '}{bar(v)}" for n, v, o in zip(short_names(f.band_names), f.bands, f.onsets))
    tempo = f"{f.bpm:6.1f} BPM {f.tempo_source:<8} {f.tempo_confidence:4.2f}" if f.bpm > 0 else "   --- BPM" + " " * 14
    dot = "●" if f.beat_phase < 0.15 and f.bpm > 0 else "○"
    state = "" if f.connected else "  [no input]"
    return f"{bands} | loud {bar(f.loudness)} | {tempo} {dot} {f.beat_count:5d}{state}"


def _analyze_live(args: argparse.Namespace, config: AnalysisConfig, out: TextIO,
                  should_stop: Optional[Callable[[], bool]] = None) -> int:
    from vjgan.audio.engine import AudioEngine, open_source

    messages: list[str] = []

    def status(msg: str) -> None:
        messages.append(msg)
        print(f"\nvjgan: {msg}", file=sys.stderr, flush=True)

    source = open_source(args.audio, file=args.file, demo=args.demo, channel=parse_channel(args.channel),
                         backend=args.audio_backend, monitor=args.monitor, on_status=status)
    engine = AudioEngine(source, config)
    engine.start()
    tty = out.isatty()
    print(f"listening to {source.name} at {source.rate} Hz (Ctrl-C to stop)", file=out, flush=True)
    t_end = time.perf_counter() + args.duration if args.duration else None
    last_line = 0.0
    try:
        while engine.running:
            now = time.perf_counter()
            if (t_end is not None and now >= t_end) or engine.ended.is_set() or (should_stop and should_stop()):
                break
            f = engine.latest()
            if tty:
                print("\r" + format_meters(f), end="", file=out, flush=True)
                time.sleep(1 / 30)
            elif now - last_line >= 0.5:
                print(format_meters(f), file=out, flush=True)
                last_line = now
                time.sleep(0.05)
            else:
                time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()
        if tty:
            print(file=out)
    return 0
