"""`vjgan project` (pictures → keyframe files) and `vjgan direction` (two examples → a named direction)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from ..engine.device import pick_device
from ..errors import UserError
from ..motion.keyframe_files import KEYFRAME_SUFFIX, load_keyframes, save_keyframes
from .project import ProjectionProgress, ProjectionResult, ProjectionSettings

PROJECT_EPILOG = """\
examples:
  vjgan project me.jpg --model ffhq.pkl --out me.npz
  vjgan project a.jpg b.jpg c.jpg --model ffhq.pkl --out anna.npz --joint     # anna-1.npz … anna-3.npz
  vjgan render song.wav --out me.mp4 --preset living-portrait --model ffhq.pkl --keyframes me.npz

Writes the keyframe file(s) and NAME.png (target | projection). docs/portrait.md explains the choices.
"""

DIRECTION_EPILOG = """\
examples:
  vjgan direction neutral.jpg smiling.jpg --model ffhq.pkl --out smile.npz
  vjgan direction closed.npz open.npz --model ffhq.pkl --out mouth.npz   # from projected keyframes

A preset's route then moves along it:  direction = "smile.npz"  (gain 1 = from A all the way to B).
"""


def _add_projection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="the model to project into (the keyframes work only with it)")
    p.add_argument("--align", choices=("face", "none"), default="face",
                   help="face: find the face and crop it as FFHQ was made (default); none: the centred square")
    p.add_argument("--steps", type=int, default=ProjectionSettings.steps, help=f"optimisation steps (default {ProjectionSettings.steps})")
    p.add_argument("--loss", default="auto", choices=("auto", "pixel", "discriminator", "vgg"),
                   help="the distance to fit: auto = VGG16 if --perceptual is given, else pixels and structure; "
                        "discriminator = the model file's own discriminator features (training snapshots carry one)")
    p.add_argument("--perceptual", action="append", metavar="FILE",
                   help="VGG16 weights (torchvision's vgg16-*.pth, or LPIPS files); repeat for a second file")
    p.add_argument("--joint", action="store_true", help="pictures of one subject: share the coarse layers (pose, face shape)")
    p.add_argument("--optimise-noise", action="store_true",
                   help="also fit the noise maps (stored in the file; the show plays the model's own noise)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent noise (the same seed repeats a projection)")
    p.add_argument("--device", help="cuda, mps or cpu (default: cuda when present)")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")


def add_portrait_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("project", help="project photos into a model's latent space (keyframes for a living portrait)",
                              description="Find the W+ latent of each picture (the StyleGAN2 projector) and write "
                                          "keyframe files the presets, `vjgan live` and `vjgan render` can play.",
                              epilog=PROJECT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="the pictures (JPEG, PNG, …)")
    p.add_argument("--out", "-o", required=True, metavar="NAME.npz", help="the keyframe file; several pictures give NAME-1.npz, …")
    _add_projection_options(p)
    p.set_defaults(handler=run_project_command)

    p = subparsers.add_parser("direction", help="a named latent direction from two examples (A → B)",
                              description="Project two pictures (or take two keyframe files) and write the "
                                          "direction from A to B, which a preset's route can follow.",
                              epilog=DIRECTION_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", metavar="A", help="the starting picture or keyframe .npz (e.g. neutral)")
    p.add_argument("b", metavar="B", help="the picture or keyframe .npz it leads to (e.g. smiling)")
    p.add_argument("--out", "-o", required=True, metavar="NAME.npz", help="the direction file")
    _add_projection_options(p)
    p.set_defaults(handler=run_direction_command)


# ---------------------------------------------------------------------------------------------
# progress


class ProgressLine:
    """'project [#####-----] 120/500  loss 0.2131  w+  0:42 left' on stderr: rewritten in place
    on a terminal, a line every few seconds in a log."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.2 if self.tty else 5.0
        self.started = time.perf_counter()
        self._last = -float("inf")

    def __call__(self, p: ProjectionProgress) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self._last < self.interval and p.step < p.steps):
            return
        self._last = now
        line = format_progress(p, now - self.started)
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and p.step >= p.steps:
            self.stream.write("\n")
        self.stream.flush()


def format_progress(p: ProjectionProgress, elapsed_s: float, width: int = 20) -> str:
    filled = int(round(width * p.step / max(1, p.steps)))
    left = elapsed_s / p.step * (p.steps - p.step) if p.step else float("inf")
    clock = "--:--" if left == float("inf") else f"{int(left) // 60}:{int(left) % 60:02d}"
    return (f"project [{'#' * filled}{'-' * (width - filled)}] {p.step}/{p.steps}  loss {p.loss:.4f}  "
            f"{p.phase:<2}  {clock} left")


# ---------------------------------------------------------------------------------------------
# the commands


def _check_output(out: Path, force: bool) -> None:
    if out.suffix != KEYFRAME_SUFFIX:
        raise UserError(f"--out {out}: must end in {KEYFRAME_SUFFIX}")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: the folder {out.parent} does not exist")
    if out.exists() and not force:
        raise UserError(f"--out {out} exists; pass --force to replace it")


def keyframe_paths(out: Path, count: int) -> list[Path]:
    """NAME.npz for one picture; NAME-1.npz, NAME-2.npz, … for several (in the order given)."""
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, count + 1)]


@dataclass
class _Projected:
    targets: np.ndarray  # uint8 [N, R, R, 3]: what was fitted (aligned)
    result: ProjectionResult
    notes: list[str]


def _project(args: argparse.Namespace, G, images: list[str]) -> _Projected:
    from .align import align_face
    from .images import fill_square, read_image, to_tensor
    from .perceptual import choose_loss
    from .project import ProjectionJob

    settings = ProjectionSettings(steps=args.steps, joint=args.joint, optimise_noise=args.optimise_noise, seed=args.seed)
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    res = G.img_resolution
    crops, notes = [], []
    for name in images:
        rgb = read_image(name)
        if args.align == "face":
            aligned = align_face(rgb, res, source=f"image {name}")
            marks = aligned.landmarks
            if not marks.eyes_found:
                notes.append(f"{name}: eyes not found, placed from the face box (check the preview)")
            crops.append(aligned.image)
        else:
            crops.append(fill_square(rgb, res))
    choice = choose_loss(args.loss, args.model, args.perceptual or (), device)
    print(f"projecting {len(images)} picture(s) into {Path(args.model).name} ({res}x{res}) on {device.type}: "
          f"{settings.steps} steps, {choice.description}", file=sys.stderr)
    targets = torch.stack([to_tensor(c) for c in crops])
    job = ProjectionJob(G, targets, settings, device, choice.loss, ProgressLine(enabled=not args.quiet))
    return _Projected(np.stack(crops), job.run(), notes)


def _write_preview(path: Path, projected: _Projected) -> Path:
    from .images import side_by_side, to_uint8, write_png

    return write_png(path, side_by_side(projected.targets, to_uint8(projected.result.images)))


def run_project_command(args: argparse.Namespace) -> int:
    from ..gan.load import load_generator
    from ..motion.directions import model_hash

    out = Path(args.out).expanduser()
    paths = keyframe_paths(out, len(args.images))
    for p in paths:
        _check_output(p, args.force)
    G = load_generator(args.model)
    projected = _project(args, G, args.images)
    r = projected.result
    digest = model_hash(G)
    for i, (path, image) in enumerate(zip(paths, args.images)):
        save_keyframes(path, r.ws[i], digest, "projection", source=Path(image).name, model=Path(args.model).name,
                       psnr=r.psnr[i], ssim=r.ssim[i], loss=r.loss_name, steps=r.steps, align=args.align,
                       joint=bool(args.joint), **r.noise)
        print(f"wrote {path} ({Path(image).name}: PSNR {r.psnr[i]:.1f} dB, SSIM {r.ssim[i]:.3f})")
    preview = _write_preview(out.with_suffix(".png"), projected)
    print(f"wrote {preview} (target | projection); {r.seconds:.0f} s, {r.precision}")
    for note in projected.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def run_direction_command(args: argparse.Namespace) -> int:
    from ..gan.load import load_generator
    from ..motion.directions import model_hash
    from .direction import describe_direction, direction_between

    out = Path(args.out).expanduser()
    _check_output(out, args.force)
    G = load_generator(args.model)
    digest = model_hash(G)
    ends: dict[str, np.ndarray] = {}
    images = []
    for name in (args.a, args.b):
        if Path(name).suffix.lower() == KEYFRAME_SUFFIX:
            kf = load_keyframes(Path(name).expanduser(), model_hash=digest, num_ws=G.num_ws, w_dim=G.w_dim)
            if kf.kind == "direction":
                raise UserError(f"{name} is a direction; give two pictures or two keyframe files")
            ends[name] = kf.ws
        else:
            images.append(name)
    if images:
        projected = _project(args, G, images)
        for i, name in enumerate(images):
            ends[name] = projected.result.ws[i]
            print(f"projected {Path(name).name}: PSNR {projected.result.psnr[i]:.1f} dB")
        preview = _write_preview(out.with_suffix(".png"), projected)
        print(f"wrote {preview} (target | projection)")
    direction = direction_between(ends[args.a], ends[args.b])
    save_keyframes(out, direction, digest, "direction", source=f"{Path(args.a).name} -> {Path(args.b).name}",
                   model=Path(args.model).name)
    print(f"wrote {out}: {Path(args.a).name} → {Path(args.b).name}, length per row {describe_direction(direction)}")
    return 0
