"""Train vjgan's default model in one bounded session on a GPU machine.

    python3 -m vjgan.train.gpu_session --out "$OUT" --minutes 9

Renders the procedural dataset from its seed on the GPU (nothing is carried to the machine),
trains the default architecture until the time budget is used, and leaves in --out at most
eight files, each under 16 MiB:

    default.safetensors   the generator (exponential moving average), vjgan's own format
    grid.png              32 samples of fixed latents
    interp.png            three W-space interpolations between fixed latents
    reals.png             32 training images, for comparison
    log.txt               everything printed, including progress lines and timings
    stats.jsonl           the training statistics (losses, kimg/s) over time
    speed.json            GPU and CPU frame times of the trained generator
    snapshot.pt           the resumable snapshot, only if it fits in 16 MiB (it does not for the
                          default architecture: it stays in --run-dir)

The model, grid and strip are refreshed in --out at every snapshot (every --snapshot-minutes),
so a session killed from outside still returns a recent model. It is `vjgan train
procedural:SEED:COUNT --out RUN_DIR ...` with the settings below, plus that bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

from ..atomic import atomic_output
from ..dataset import procedural
from ..dataset.png import write_png
from ..errors import UserError
from .data import TrainingData
from .trainer import SNAPSHOT_NAME, TrainConfig, Trainer

MAX_FILE_BYTES = 16 * 2**20
DEFAULTS = {"seed": 1, "count": 50000, "res": 128, "batch": 64, "kimg": 5000.0, "ema_kimg": 10.0}


class Tee:
    """Print and append to a log file, flushing both (the file survives a kill)."""

    def __init__(self, path: Path | None) -> None:
        self.file = open(path, "a", buffering=1) if path is not None else None  # noqa: SIM115

    def __call__(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        print(line, flush=True)
        if self.file is not None:
            self.file.write(line + "\n")


def describe_environment(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    for mod in ("safetensors", "numpy", "PIL"):
        try:
            __import__(mod)
            info[mod] = "ok"
        except ImportError:
            info[mod] = "MISSING"
    return info


def render_dataset(seed: int, count: int, res: int, device: torch.device, max_seconds: float, log: Tee) -> TrainingData:
    """Render images 0.. of dataset `seed`; stop early (fewer images) if it would take longer than max_seconds.

    On a GPU, a first batch is also rendered on the CPU and compared (the same seed should give
    the same pictures anywhere); if rendering fails on the GPU, the CPU renders instead.
    """
    t0 = time.monotonic()
    where = device
    if device.type == "cuda":
        probe = list(range(min(16, count)))
        try:
            on_gpu = procedural.render(seed, probe, res, device).cpu()
            on_cpu = procedural.render(seed, probe, res, "cpu")
            diff = (on_gpu.int() - on_cpu.int()).abs()
            log(f"GPU vs CPU rendering of {len(probe)} images: max difference {int(diff.max())} grey levels, "
                f"{100 * float((diff > 0).float().mean()):.3f}% of values differ")
        except Exception:  # noqa: BLE001 - fall back rather than lose the session
            log("rendering on the GPU failed; rendering on the CPU instead:\n" + traceback.format_exc())
            where = torch.device("cpu")
    images = torch.empty(count, 3, res, res, dtype=torch.uint8, device=device)
    done, last = 0, t0
    batch = 4096 if where.type == "cuda" else 256
    for first, imgs in procedural.iter_batches(seed, count, res, where, batch):
        images[first : first + imgs.shape[0]] = imgs.to(device)
        done = first + imgs.shape[0]
        now = time.monotonic()
        if now - last > 10 or done == count:
            last = now
            log(f"  rendered {done}/{count} images, {done / (now - t0):.0f} img/s")
        if now - t0 > max_seconds and done < count:
            log(f"  rendering is slower than planned: training on the first {done} images")
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    log(f"dataset ready: {done} images in {time.monotonic() - t0:.1f}s")
    return TrainingData(f"procedural:{seed}:{done}", res, images=images[:done])


def measure_speed(network: Path, device: torch.device, log: Tee) -> dict:
    """Frame times of the exported generator: fp32 batch 1 on 2 CPU threads (as the issue asks)
    and, on a GPU, vjgan's own benchmark (eager, fp16, CUDA graph)."""
    from ..gan.load import load_generator

    out: dict = {}
    G = load_generator(network)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ws = G.mapping(torch.randn(1, G.z_dim))
        times = []
        with torch.no_grad():
            for i in range(25):
                t = time.perf_counter()
                G.synthesis(ws, noise_mode="const")
                times.append(time.perf_counter() - t)
        ms = statistics.median(times[5:]) * 1e3
        out["cpu_fp32_batch1_2threads_ms"] = round(ms, 2)
        out["cpu_model"] = platform.processor() or platform.machine()
        log(f"CPU fp32 synthesis, batch 1, 2 threads: {ms:.1f} ms ({1000 / ms:.1f} fps) on this machine's CPU")
    finally:
        torch.set_num_threads(threads)
    if device.type == "cuda":
        try:
            from ..gan.bench import bench_generator

            timings = bench_generator(load_generator(network), device, batch=8, iters=50, log=lambda m: log(m.strip()))
            out["gpu"] = [{"mode": t.label.strip(), "ms": round(t.ms, 3), "fps": round(t.fps, 1), "note": t.note} for t in timings]
        except Exception as e:  # noqa: BLE001 - a benchmark failure must not lose the trained model
            log(f"GPU benchmark failed: {type(e).__name__}: {e}")
            G = G.to(device)
            ws = G.mapping(torch.randn(1, G.z_dim, device=device))
            for fp16 in (False, True):
                for _ in range(5):
                    G.synthesis(ws, use_fp16=fp16)
                torch.cuda.synchronize(device)
                t = time.perf_counter()
                for _ in range(50):
                    G.synthesis(ws, use_fp16=fp16)
                torch.cuda.synchronize(device)
                ms = (time.perf_counter() - t) / 50 * 1e3
                out[f"gpu_eager_{'fp16' if fp16 else 'fp32'}_ms"] = round(ms, 3)
                log(f"GPU eager {'fp16' if fp16 else 'fp32'} synthesis, batch 1: {ms:.2f} ms")
    return out


def save_state_fallback(trainer: Trainer, path: Path) -> None:
    """The averaged generator as a plain torch file (tensors, strings), for machines without safetensors."""
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in trainer.G_ema.state_dict().items()}
    with atomic_output(path) as f:
        torch.save({"format": "vjgan-generator-state", "config": trainer.g_cfg.to_json(), "state": state,
                    "metadata": trainer.network_metadata()}, f)


def convert_fallback(src: str, dst: str) -> int:
    """default-state.pt (written where safetensors was missing) → vjgan's .safetensors."""
    from ..gan.networks import Generator, GeneratorConfig
    from .trainer import save_network

    blob = torch.load(src, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != "vjgan-generator-state":
        raise UserError(f"{src} is not a generator state written by vjgan.train.gpu_session")
    G = Generator(GeneratorConfig.from_json(blob["config"]))
    G.load_state_dict(blob["state"], strict=True)
    path = save_network(G.eval(), Path(dst), dict(blob.get("metadata", {})))
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--convert"]:
        if len(argv) != 3:
            print("usage: python3 -m vjgan.train.gpu_session --convert default-state.pt OUT.safetensors", file=sys.stderr)
            return 2
        return convert_fallback(argv[1], argv[2])
    p = argparse.ArgumentParser(prog="python3 -m vjgan.train.gpu_session", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for the files to bring back (e.g. $OUT)")
    p.add_argument("--minutes", type=float, default=9.0, help="wall-clock budget for everything (default 9)")
    p.add_argument("--run-dir", default="build/vjgan-default-run", help="the training run's folder (snapshots)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir (or --snapshot)")
    p.add_argument("--snapshot", default=None, help="snapshot to resume from (default RUN_DIR/snapshot.pt)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="procedural dataset seed (default 1)")
    p.add_argument("--count", type=int, default=DEFAULTS["count"], help="procedural images (default 50000)")
    p.add_argument("--res", type=int, default=DEFAULTS["res"], help="resolution (default 128)")
    p.add_argument("--batch", type=int, default=DEFAULTS["batch"], help="minibatch (default 64)")
    p.add_argument("--kimg", type=float, default=DEFAULTS["kimg"], help="total target; the time budget usually ends first")
    p.add_argument("--ema-kimg", type=float, default=DEFAULTS["ema_kimg"], help="EMA half-life (default 10)")
    p.add_argument("--train-seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--snapshot-minutes", type=float, default=3.0, help="refresh --out this often (default 3)")
    p.add_argument("--device", default="auto", help="auto (default), cuda or cpu (for a trial run)")
    p.add_argument("--no-fp16", action="store_true", help="train in full precision")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--render-share", type=float, default=0.2,
                   help="at most this share of the budget for rendering the dataset (default 0.2)")
    args = p.parse_args(argv)

    t_start = time.monotonic()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    budget = args.minutes * 60
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Tee(out / "log.txt")
    from ..dataset.cli import resolve_device

    try:
        device = resolve_device(args.device)
    except UserError as e:
        log(f"error: {e}")
        return 2
    env = describe_environment(device)
    log("environment: " + json.dumps(env))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        # StyleGAN2-ADA keeps TF32 off (accuracy of the fp32 layers and of R1's double backward).
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    run_dir = Path(args.run_dir)
    snap = Path(args.snapshot) if args.snapshot else run_dir / SNAPSHOT_NAME
    data = render_dataset(args.seed, args.count, args.res, device, args.render_share * budget, log)

    def publish(trainer: Trainer) -> None:
        """Refresh the model and pictures in --out (so that a kill still returns them)."""
        try:
            trainer.export(out / "default.safetensors")
        except ImportError as e:  # no safetensors on this machine: keep the weights anyway
            save_state_fallback(trainer, out / "default-state.pt")
            log(f"cannot write .safetensors here ({e}); wrote default-state.pt instead; convert it with "
                f"python3 -m vjgan.train.gpu_session --convert default-state.pt models/default.safetensors")
        write_png(out / "grid.png", trainer.sample_grid())
        write_png(out / "interp.png", trainer.interpolation_strip())
        if (trainer.out_dir / "reals.png").exists():
            shutil.copyfile(trainer.out_dir / "reals.png", out / "reals.png")
        if (trainer.out_dir / "log.jsonl").exists():
            shutil.copyfile(trainer.out_dir / "log.jsonl", out / "stats.jsonl")

    def build(fp16: bool) -> Trainer:
        if args.resume:
            trainer = Trainer.resume(snap, data, run_dir, device, log=log)
            log(f"resumed {snap} at {trainer.cur_nimg / 1000:.1f} kimg")
            return trainer
        if snap.exists():
            raise UserError(f"{run_dir} already holds a run; pass --resume or another --run-dir")
        cfg = TrainConfig(resolution=args.res, batch=args.batch, seed=args.train_seed, ema_kimg=args.ema_kimg, fp16=fp16)
        return Trainer.create(cfg, data, run_dir, device, log=log)

    reserve = min(45.0 if device.type == "cuda" else 20.0, 0.15 * budget)  # export, speed measurement, copies
    fp16 = not args.no_fp16
    result = None
    while True:
        trainer = build(fp16)
        trainer.on_checkpoint = publish
        log(trainer.data.describe())
        log("generator: " + trainer.g_cfg.to_json())
        minutes = (budget - (time.monotonic() - t_start) - reserve) / 60
        if minutes <= 0:
            log("no time left to train after rendering the dataset")
            break
        try:
            result = trainer.run(kimg=args.kimg, minutes=minutes, snapshot_minutes=args.snapshot_minutes)
            break
        except Exception:  # noqa: BLE001
            log("training failed:\n" + traceback.format_exc())
            if fp16 and trainer.step_index < 20 and not args.resume:
                log("retrying in full precision, without channels-last")
                fp16 = False
                shutil.rmtree(run_dir, ignore_errors=True)
                continue
            if trainer.step_index > 0:
                trainer.save_snapshot()
                publish(trainer)
            raise
    if result is None:  # no training happened, so no checkpoint published the files yet
        trainer.checkpoint()
    log(f"trained {trainer.cur_nimg / 1000:.1f} kimg in this run's {trainer.train_seconds:.0f}s of training steps; "
        f"session so far {time.monotonic() - t_start:.0f}s")
    if snap.exists():
        size = snap.stat().st_size
        if size <= MAX_FILE_BYTES:
            shutil.copyfile(snap, out / "snapshot.pt")
            log(f"snapshot copied to {out / 'snapshot.pt'} ({size / 2**20:.1f} MiB)")
        else:
            log(f"snapshot is {size / 2**20:.1f} MiB (> 16 MiB): kept at {snap} on this machine only")
    interrupted = result is not None and result.reason == "interrupted"
    if not interrupted and budget - (time.monotonic() - t_start) > 25:
        try:
            speed = measure_speed(out / "default.safetensors", device, log)
            speed.update(kimg=round(trainer.cur_nimg / 1000, 1), environment=env,
                         train_seconds=round(trainer.train_seconds), dataset=data.spec)
            (out / "speed.json").write_text(json.dumps(speed, indent=2) + "\n")
        except Exception:  # noqa: BLE001
            log("speed measurement failed:\n" + traceback.format_exc())
    log(f"done in {time.monotonic() - t_start:.0f}s; files in {out}: {', '.join(sorted(f.name for f in out.iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
