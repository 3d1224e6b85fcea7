"""GPU machine only: 1024² StyleGAN3-T and -R frames, NVIDIA's own code and vjgan's, side by side.

NVIDIA's stylegan3 code is not part of vjgan (non-commercial licence) and the GPU machines have no
internet: carry a checkout of it next to the repository (default `.nvidia/stylegan3`, or pass its
path). This script builds NVIDIA's generator with random weights, times its synthesis (eager, and
captured in a CUDA graph when that works) with its CUDA plugin where it builds, else its reference
ops (printed), then pickles that very network, loads it with vjgan's safe loader and times vjgan's
frame path on the same weights, and compares the two fp32 pictures.

Usage: python3 .ci/nvidia_stylegan3_bench.py [NVIDIA_CHECKOUT] [--res 1024] [--iters 30]
"""

from __future__ import annotations

import argparse
import copy
import pickle
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vjgan.gan.bench import describe_machine, time_fn  # noqa: E402
from vjgan.gan.fast import choose_precision  # noqa: E402
from vjgan.gan.load import load_generator  # noqa: E402


def nvidia_generator(kind: str, resolution: int):
    from training.networks_stylegan3 import Generator  # NVIDIA's module, from the carried checkout

    wide = 2 if kind == "r" else 1
    return Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                     mapping_kwargs=dict(num_layers=2), channel_base=32768 * wide, channel_max=512 * wide,
                     num_fp16_res=4, conv_clamp=256, conv_kernel=3 if kind == "t" else 1,
                     use_radial_filters=kind == "r")


def graph_of(fn):
    """fn captured as a CUDA graph (after warm-up), or None when capture fails."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    try:
        with torch.cuda.stream(stream):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        return graph
    except Exception as e:  # noqa: BLE001 - a failed capture is a result to report
        print(f"    (CUDA graph capture failed: {type(e).__name__}: {e})")
        return None


@torch.no_grad()
def bench_kind(kind: str, res: int, iters: int, device: torch.device) -> None:
    torch.manual_seed(0)
    G = nvidia_generator(kind, res).eval().requires_grad_(False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"nvidia-{kind}.pkl"
        path.write_bytes(pickle.dumps(copy.deepcopy(G).cpu()))
        ours = load_generator(path).to(device)
    G = G.to(device)
    ws = G.mapping(torch.randn(1, 512, device=device), None)
    print(f"StyleGAN3-{kind.upper()} {res}²:")
    ref_nvidia = G.synthesis(ws, force_fp32=True)
    ref_ours = ours.synthesis(ws)
    err = (ref_nvidia - ref_ours).abs().max().item()
    print(f"  fp32 pictures, max |NVIDIA − vjgan| = {err:.3g} (max |NVIDIA| {ref_nvidia.abs().max().item():.3g})")
    rows = [("NVIDIA eager (its fp16 policy)", time_fn(lambda: G.synthesis(ws), device, iters=max(3, iters // 5)))]
    graph = graph_of(lambda: G.synthesis(ws))
    if graph is not None:
        rows.append(("NVIDIA, one CUDA graph", time_fn(graph.replay, device, iters=iters)))
    fast, reports = choose_precision(ours, device)
    for r in reports:
        print(f"  vjgan accuracy {r.precision:<12} mean {r.mean_abs:.2e}  p99.9 {r.p999_abs:.2e}  {'ok' if r.ok else 'over tolerance'}")
    rows.append((f"vjgan fast {fast.precision}, graph", time_fn(lambda: fast.frame(ws), device, iters=iters)))
    for label, ms in rows:
        print(f"  {label:<34} {ms:8.3f} ms  {1000 / ms:7.1f} fps")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkout", nargs="?", default=str(ROOT / ".nvidia" / "stylegan3"))
    parser.add_argument("--res", type=int, default=1024)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()
    checkout = Path(args.checkout)
    if not (checkout / "training" / "networks_stylegan3.py").is_file():
        print(f"SKIPPED: no NVIDIA stylegan3 checkout at {checkout}")
        return 0
    sys.path.insert(0, str(checkout))
    from torch_utils.ops import filtered_lrelu

    device = torch.device("cuda")
    print(f"StyleGAN3 {args.res}² on {describe_machine(device)}")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    plugin = filtered_lrelu._init()
    print(f"  NVIDIA filtered_lrelu: {'its CUDA plugin' if plugin else 'its reference ops (the plugin did not build)'}")
    for kind in ("t", "r"):
        bench_kind(kind, args.res, args.iters, device)
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
