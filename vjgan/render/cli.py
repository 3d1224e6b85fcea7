"""The `vjgan render` subcommand: arguments in, `RenderOptions` out, the render run.

Wired into the main CLI with `add_render_parser(subparsers)`; `python -m vjgan.render` runs it
on its own (the tests use that, and so can scripts).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..motion.config import SEED
from ..prompt.cli import add_clip_arguments, add_search_arguments, settings_from_args
from ..validation import Number, cli_number
from .options import DEFAULT_BATCH, MAX_BATCH, MAX_QUALITY, MAX_THREADS, RenderOptions, parse_fps, parse_size, parse_time

EPILOG = """\
examples:
  vjgan render song.wav --out song.mp4
  vjgan render set.flac --out teaser.mp4 --size 1080x1920 --start 1:30 --duration 15
  vjgan render song.wav --out song.mp4 --codec h264_nvenc --quality 19 --timings
  vjgan render song.wav --out face.mp4 --preset living-portrait --model ffhq.pkl --keyframes me.npz
  vjgan render song.wav --story story.txt --clip ViT-B-32.safetensors --clip-arch ViT-B-32 --out film.mp4 --captions

The picture follows the same analyzer, latent engine and shaders as `vjgan live`, driven by the
file's clock; the same seed gives the same video. Ctrl-C stops and keeps what was rendered.
"""


def add_render_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `render` on the main CLI's subparsers (returns the new parser)."""
    p = subparsers.add_parser(
        "render", help="render an audio file to a video with its soundtrack (offline, frame-exact)",
        description="Render an audio file to a video: the live show's engine on the file's clock, "
                    "encoded with the soundtrack muxed in sync.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", help="the audio file (WAV, FLAC, OGG, MP3; others through ffmpeg when installed)")
    p.add_argument("--out", "-o", required=True, help="the video to write: .mp4, .mov, .mkv or .webm")
    p.add_argument("--preset", default="default", help="a preset name or .toml file (default: default)")
    p.add_argument("--model", help="a model file (default: the preset's)")
    p.add_argument("--keyframes", action="append", metavar="F.npz",
                   help="a keyframe file (`vjgan project`) to play instead of the preset's keyframes; repeat for several")
    p.add_argument("--fps", default="30", help="frame rate: 30, 60, 29.97 or 30000/1001 (default: 30)")
    p.add_argument("--size", help="output WIDTHxHEIGHT, e.g. 1920x1080 or 1080x1920; the preset's fit (fit, "
                                  "fill or stretch) places the model's square picture (default: the model's size)")
    p.add_argument("--start", default="0", help="where to begin in the audio: seconds or m:ss (default: 0)")
    p.add_argument("--duration", help="how much to render: seconds or m:ss (default: to the end)")
    p.add_argument("--seed", type=cli_number(SEED),
                   help="motion seed (default: the preset's); the same seed gives the same video")
    p.add_argument("--codec", help="video encoder: libx264 (default for .mp4/.mov/.mkv), libx265, h264_nvenc, "
                                   "hevc_nvenc, libvpx-vp9 (default for .webm), libsvtav1, … or h264, hevc, "
                                   "nvenc, vp9, av1")
    p.add_argument("--quality", type=cli_number(Number(0.0, MAX_QUALITY)),
                   help="the encoder's constant quality, lower is better: x264 crf (default 18), "
                        "x265 crf (20), NVENC cq (21), VP9 crf (31), AV1 crf (30); x264 crf 0 is lossless")
    p.add_argument("--encoder-preset", help="the encoder's speed preset: x264/x265 ultrafast…veryslow "
                                            "(default medium), NVENC p1…p7 (default p5)")
    p.add_argument("--batch", type=cli_number(Number(1, MAX_BATCH, whole=True)), default=DEFAULT_BATCH,
                   help=f"frames generated at once (default {DEFAULT_BATCH})")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best present)")
    p.add_argument("--threads", type=cli_number(Number(1, MAX_THREADS, whole=True)), help="CPU threads for torch (default on the CPU: half the cores, "
                                               "leaving the rest to the encoder; elsewhere torch's choice)")
    p.add_argument("--no-gl", action="store_true", help="skip OpenGL: fit/fill on tensors, post effects off")
    p.add_argument("--serial", action="store_true", help="on CUDA: analysis, generation and post one after another on "
                                                         "the main thread, only encoding beside them (the same video, "
                                                         "slower; for comparison). A CPU render always runs so")
    p.add_argument("--force", action="store_true", help="replace the output file if it exists")
    p.add_argument("--timings", action="store_true", help="print generation, post, conversion and encoding "
                                                          "time separately at the end")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    story = p.add_argument_group("story film (docs/prompts.md)")
    story.add_argument("--story", help="a text file, one scene per paragraph: each scene's words become its pictures, "
                                       "scene changes land on the song's bar lines")
    add_clip_arguments(story, required=False)
    story.add_argument("--captions", action="store_true", help="write each scene's text as subtitles beside the video "
                                                               "(NAME.srt)")
    story.add_argument("--fade", type=float, default=2.0, metavar="BEATS",
                       help="cross-fade into each scene, ending on its bar line (default 2 beats; 0 cuts)")
    add_search_arguments(story, prefix="prompt-")
    p.set_defaults(handler=run_render_command)
    return p


def options_from_args(args: argparse.Namespace) -> RenderOptions:
    return RenderOptions(
        audio=Path(args.audio).expanduser(), out=Path(args.out).expanduser(), preset=args.preset, model=args.model,
        keyframes=tuple(args.keyframes or ()),
        fps=parse_fps(args.fps), size=parse_size(args.size) if args.size else None,
        start=parse_time(args.start), duration=parse_time(args.duration) if args.duration else None,
        seed=args.seed, codec=args.codec, quality=args.quality, encoder_preset=args.encoder_preset,
        batch=args.batch, device=args.device, threads=args.threads, force=args.force, timings=args.timings,
        use_gl=not args.no_gl, pipeline=not args.serial, progress=not args.quiet, story=Path(args.story).expanduser() if args.story else None,
        clip=args.clip, clip_arch=args.clip_arch, captions=args.captions, fade_beats=args.fade,
        search=settings_from_args(args, seed=0, prefix="prompt_"))


def run_render_command(args: argparse.Namespace) -> int:
    from .render import render  # torch and PyAV load only when a render is asked for

    result = render(options_from_args(args))
    # 130 (the shell's code for Ctrl-C) tells a script the video is shorter than asked for.
    return 130 if result.interrupted else 0
