"""`vjgan bench`: milliseconds per frame of each synthesis mode, for a model or random config-F nets.

Timings are medians over repeated runs after warm-up, measured with device events on CUDA and a
host clock elsewhere. Results go to docs/benchmarks.md by hand (never asserted in tests).
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .fast import FastSynthesis, choose_precision
from .networks import Generator, GeneratorConfig
from .stylegan3 import StyleGAN3Config

ARCHITECTURES = ("stylegan2", "stylegan3-t", "stylegan3-r")


@dataclass
class Timing:
    label: str
    ms: float
    note: str = ""

    @property
    def fps(self) -> float:
        return 1000.0 / self.ms if self.ms > 0 else float("inf")


def config_f(resolution: int) -> GeneratorConfig:
    """StyleGAN2 config-F (512-wide mapping and channels, 8 mapping layers), no clamp."""
    return GeneratorConfig.from_channel_base(
        channel_base=32768, channel_max=512, z_dim=512, w_dim=512, img_resolution=resolution,
        mapping_layers=8, conv_clamp=None,
    )


def stylegan3_config(kind: str, resolution: int) -> StyleGAN3Config:
    """NVIDIA's full-size StyleGAN3 configs: 512-wide, R with doubled channels; fp16 top 4, clamp 256."""
    wide = 2 if kind == "r" else 1
    return StyleGAN3Config.from_paper(kind, img_resolution=resolution, z_dim=512, w_dim=512, channel_base=32768 * wide,
                                      channel_max=512 * wide, mapping_layers=2, conv_clamp=256.0, num_fp16_res=4)


def benchmark_config(architecture: str, resolution: int) -> GeneratorConfig | StyleGAN3Config:
    """config-F for StyleGAN2, NVIDIA's T or R for StyleGAN3, at `resolution`."""
    if architecture == "stylegan2":
        return config_f(resolution)
    if architecture in ("stylegan3-t", "stylegan3-r"):
        return stylegan3_config(architecture[-1], resolution)
    raise ValueError(f"architecture must be one of {ARCHITECTURES}")


def random_generator(cfg: GeneratorConfig | StyleGAN3Config, seed: int = 0) -> Generator:
    """A randomly initialised generator with non-zero noise strengths and biases (so every path is exercised)."""
    torch.manual_seed(seed)
    G = Generator(cfg)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength") or (name.endswith(".bias") and "affine" not in name):
                p.copy_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg) * 0.1)
    return G.eval().requires_grad_(False)


def time_fn(fn: Callable[[], object], device: torch.device, warmup: int = 5, iters: int = 50, repeats: int = 5) -> float:
    """Median milliseconds per call of fn."""
    for _ in range(warmup):
        fn()
    samples = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / iters)
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            samples.append((time.perf_counter() - t0) * 1000.0 / iters)
    return statistics.median(samples)


@torch.no_grad()
def bench_generator(G: Generator, device: torch.device, batch: int = 8, iters: int = 50,
                    log: Callable[[str], None] = print) -> list[Timing]:
    G = G.to(device)
    ws = G.mapping(torch.randn(1, G.z_dim, device=device) if G.z_dim else None,
                   torch.eye(G.c_dim, device=device)[:1] if G.c_dim else None)
    results: list[Timing] = []
    slow_iters = max(3, iters // 5)

    def add(t: Timing) -> None:
        results.append(t)
        log(f"  {t.label:<28} {t.ms:9.3f} ms  {t.fps:9.1f} fps  {t.note}")

    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    add(Timing("fp32 eager (reference)", time_fn(lambda: G.synthesis(ws), device, iters=slow_iters)))
    if cuda:
        torch.backends.cudnn.benchmark = True
        fast, reports = choose_precision(G, device)
        for r in reports:
            log(f"  accuracy {r.precision:<12} mean {r.mean_abs:.2e}  p99.9 {r.p999_abs:.2e}  max {r.max_abs:.2e}  {'ok' if r.ok else 'over tolerance'}")
        eager = FastSynthesis(G, device, fast.precision, use_graphs=False)
        add(Timing(f"{fast.precision} eager", time_fn(lambda: eager.frame(ws), device, iters=slow_iters)))
        full = time_fn(lambda: fast.frame(ws), device, iters=iters)
        add(Timing(f"{fast.precision} graph", full, "w+ in → uint8 RGBA on the GPU"))
        for label, path in (("graph", fast), ("eager", eager)):
            count, what = count_kernels(lambda path=path: path.frame(ws), device)
            log(f"  kernels per frame ({label}): {count}  [{what}]")
        for r in fast.exit_resolutions()[:-1][::-1]:
            if r < 32:
                break
            t = time_fn(lambda r=r: fast.frame(ws, exit_resolution=r), device, iters=iters)
            add(Timing(f"  exit at {r}²", t, f"saves {100 * (1 - t / full):.0f}% of the full frame"))
        wsb = ws.repeat(batch, 1, 1)
        tb = time_fn(lambda: fast.frames(wsb), device, iters=max(3, iters // 10))
        add(Timing(f"{fast.precision} batch {batch}", tb / batch, f"per frame ({tb:.2f} ms per batch)"))
        frame = fast.frame(ws)
        host = torch.empty(frame.shape, dtype=torch.uint8, pin_memory=True)
        add(Timing("device→host copy (pinned)", time_fn(lambda: host.copy_(frame), device, iters=iters),
                   f"{frame.numel() / 1e6:.1f} MB"))
    else:
        fast = FastSynthesis(G, device, "fp32")
        add(Timing("fp32 prepared", time_fn(lambda: fast.frame(ws), device, iters=slow_iters), "w+ in → uint8 RGBA"))
        count, what = count_kernels(lambda: fast.frame(ws), device)
        log(f"  kernels per frame: {count}  [{what}]")
        for r in fast.exit_resolutions()[:-1][::-1][:2]:
            t = time_fn(lambda r=r: fast.frame(ws, exit_resolution=r), device, iters=slow_iters)
            add(Timing(f"  exit at {r}²", t))
        wsb = ws.repeat(batch, 1, 1)
        tb = time_fn(lambda: fast.frames(wsb), device, iters=2, warmup=1, repeats=3)
        add(Timing(f"fp32 batch {batch}", tb / batch, "per frame"))
    return results


def count_kernels(fn: Callable[[], object], device: torch.device) -> tuple[int, str]:
    """How many kernels one call of `fn` runs on the device, and what was counted.

    On CUDA: torch.profiler's device activities (kernels, copies, fills) during one call, after
    a warm-up call (a CUDA graph's replay shows its kernels one by one). Elsewhere there are no
    kernels to see: the aten operators that would each launch one on a GPU are counted instead
    (views and allocations launch nothing; a Triton kernel would count once but does not run
    off CUDA), which is how the count before this round's changes was taken on a CPU.
    """
    fn()
    if device.type == "cuda":
        from torch.profiler import ProfilerActivity, profile

        torch.cuda.synchronize(device)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize(device)
        events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        return len(events), "CUDA kernels, copies and fills (torch.profiler)"
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            returns = func._schema.returns
            view = bool(returns) and returns[0].alias_info is not None and not returns[0].alias_info.is_write
            name = func._schema.name
            if not view and not name.startswith(("aten::empty", "aten::lift_fresh", "aten::detach")):
                type(self).n += 1
            return func(*args, **(kwargs or {}))

    with _Count():
        fn()
    return _Count.n, "operators that launch a kernel on a GPU (counted on the CPU)"


def describe_machine(device: torch.device) -> str:
    parts = [f"torch {torch.__version__}"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        parts.insert(0, props.name)
        try:
            import subprocess

            driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=10).stdout.strip()
            parts.append(f"driver {driver}")
        except Exception:
            pass
        parts.append(f"CUDA {torch.version.cuda}")
    else:
        parts.insert(0, f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    return ", ".join(parts)
