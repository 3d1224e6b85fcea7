"""The fast frame path: its re-arranged maths on the CPU, and fp16 + CUDA graphs where CUDA exists."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vjgan.gan import ops
from vjgan.gan.bench import config_f, random_generator
from vjgan.gan.epilogue import fused_epilogue, fused_torgb, polyphase_rows, torch_epilogue
from vjgan.gan.fast import (FastSynthesis, choose_precision, measure_accuracy, polyphase_up_weight,
                            polyphase_upsample_kernel)
from vjgan.gan.load import load_generator

CONFORMANCE = Path(__file__).parent / "data" / "conformance"
NETS = ["sg2ada_64px.pkl", "sg2ada_64px_tf.pkl", "sg2ada_64px_rosinality.pt", "sg2ada_cond_32px.pkl", "sg3repo_sg2_32px.pkl",
        "sg3t_64px.pkl", "sg3r_64px.pkl"]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_polyphase_up_conv_equals_transposed_conv_and_blur() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 5, 3, 3, generator=g)
    x = torch.randn(2, 5, 7, 9, generator=g)
    k4 = ops.make_resample_kernel((1, 3, 3, 1), gain=4.0)
    ref = ops.modulated_conv2d(x, w, torch.ones(2, 5), demodulate=False, up=True, up_kernel2d_gain4=k4)
    got = F.pixel_shuffle(F.conv2d(x, polyphase_up_weight(w, (1, 3, 3, 1)), padding=1), 2)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_polyphase_skip_upsampler_equals_zero_insertion_filter() -> None:
    img = torch.randn(2, 3, 5, 8, generator=torch.Generator().manual_seed(1))
    ref = ops.upsample2x(img, ops.make_resample_kernel((1, 3, 3, 1), gain=4.0))
    got = F.pixel_shuffle(F.conv2d(img, polyphase_upsample_kernel((1, 3, 3, 1), 3), padding=1, groups=3), 2)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", NETS)
def test_prepared_fp32_path_matches_reference_on_cpu(name: str) -> None:
    G = load_generator(CONFORMANCE / name)
    fast = FastSynthesis(G, "cpu")
    assert fast.precision == "fp32" and not fast.use_graphs
    report = measure_accuracy(G, fast, samples=3)
    assert report.max_abs < 1e-4


def test_frame_outputs_rgba_and_honours_controls_on_cpu() -> None:
    G = load_generator(CONFORMANCE / "sg2ada_64px.pkl")
    fast = FastSynthesis(G, "cpu")
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(2)))
    frame = fast.frame(ws)
    assert frame.shape == (64, 64, 4) and frame.dtype == torch.uint8
    assert (frame[..., 3] == 255).all()
    expected = ((G.synthesis(ws)[0].clamp(-1, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)).permute(1, 2, 0)
    assert (frame[..., :3].int() - expected.int()).abs().max() <= 1
    fast.set_noise_gains([0.0] * fast.num_layers)
    silent = fast.frame(ws).clone()
    fast.set_noise_mode("none")
    assert torch.equal(silent, fast.frame(ws))
    fast.set_noise_mode("random")
    fast.set_noise_gains([1.0] * fast.num_layers)
    assert not torch.equal(fast.frame(ws), fast.frame(ws))
    assert fast.frame(ws, exit_resolution=16).shape == (16, 16, 4)
    batch = fast.frames(ws.repeat(3, 1, 1))
    assert batch.shape == (3, 64, 64, 4)
    fast.set_noise_mode("const")
    per_frame = fast.frames(ws.repeat(2, 1, 1), noise_gains=torch.tensor([[0.0] * fast.num_layers, [1.0] * fast.num_layers]))
    fast.set_noise_gains([0.0] * fast.num_layers)
    assert (per_frame[0].int() - fast.frame(ws).int()).abs().max() <= 1  # batched vs fused weights: rounding
    fast.set_noise_gains([1.0] * fast.num_layers)
    assert (per_frame[1].int() - fast.frame(ws).int()).abs().max() <= 1
    with pytest.raises(ValueError):
        fast.set_noise_gains([1.0])
    with pytest.raises(ValueError):
        fast.frame(ws, exit_resolution=12)


def test_stylegan3_frames_take_a_transform_per_frame_and_keep_no_state_on_cpu() -> None:
    ref = np.load(CONFORMANCE / "sg3r_64px_reference.npz")
    G = load_generator(CONFORMANCE / "sg3r_64px.pkl")
    fast = FastSynthesis(G, "cpu")
    assert fast.has_transform and fast.exit_resolutions() == [64] and fast.num_layers == 0
    ws = torch.from_numpy(ref["ws_psi07"][:2])
    turn = torch.from_numpy(ref["transform"])
    with torch.no_grad():
        expected_turned = G.synthesis(ws[:1], transform=turn)
        expected_plain = G.synthesis(ws[:1])
    assert (fast.frame(ws[:1], transform=turn)[..., :3].int() - _rgba(expected_turned).int()).abs().max() <= 1
    assert (fast.frame(ws[:1])[..., :3].int() - _rgba(expected_plain).int()).abs().max() <= 1
    both = fast.frames(ws, transform=torch.stack([turn, torch.eye(3)]))
    assert (both[0, ..., :3].int() - _rgba(expected_turned).int()).abs().max() <= 1
    with torch.no_grad():
        assert (both[1, ..., :3].int() - _rgba(G.synthesis(ws[1:])).int()).abs().max() <= 1
    with pytest.raises(ValueError, match="transform"):
        fast.frame(ws[:1], transform=torch.eye(4))
    sg2 = FastSynthesis(load_generator(CONFORMANCE / "sg3repo_sg2_32px.pkl"), "cpu")
    assert not sg2.has_transform
    with pytest.raises(ValueError, match="no input transform"):
        sg2.frame(torch.zeros(1, sg2.num_ws, sg2.w_dim), transform=turn)


@pytest.mark.parametrize("name", ["sg3t_64px.pkl", "sg3r_64px.pkl"])
@pytest.mark.parametrize("precision", ["fp16-all", "fp16-nvidia"])
def test_stylegan3_half_precision_maths_within_tolerance_on_cpu(name: str, precision: str) -> None:
    """The fp16 path's maths (scaling, clamps, folded gains) against fp32, run on the CPU; the GPU
    run of the same check is test_fp16_accuracy_on_conformance_networks."""
    G = load_generator(CONFORMANCE / name)
    fast = FastSynthesis(G, "cpu", precision, half_on_cpu=True)
    assert {layer.dtype for layer in fast.layers if hasattr(layer, "dtype")} >= {torch.float16}
    report = measure_accuracy(G, fast, samples=2)
    assert report.ok, report  # the StyleGAN2 tolerance: mean ≤ 0.01, 99.9th percentile ≤ 0.1


def _rgba(img: torch.Tensor) -> torch.Tensor:
    return ((img[0].clamp(-1, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)).permute(1, 2, 0)


# ---------------------------------------------------------------------------------------------
# CUDA: fp16 accuracy, graphs, Triton epilogue


@cuda
@pytest.mark.parametrize("name", NETS)
def test_fp16_accuracy_on_conformance_networks(name: str) -> None:
    G = load_generator(CONFORMANCE / name)
    fast, reports = choose_precision(G, "cuda")
    report = measure_accuracy(G, fast, samples=16)
    print(name, fast.precision, report)
    assert fast.precision != "fp32", f"no fp16 policy within tolerance: {reports}"
    assert report.mean_abs <= 0.01 and report.p999_abs <= 0.1


@cuda
def test_fp16_accuracy_on_config_f_1024_without_clamp() -> None:
    G = random_generator(config_f(1024))
    assert G.config.conv_clamp is None
    fast, reports = choose_precision(G, "cuda", samples=4)
    report = measure_accuracy(G, fast, samples=4)
    print("config-F 1024", fast.precision, report, reports)
    assert report.mean_abs <= 0.01 and report.p999_abs <= 0.1


@cuda
def test_graph_replay_matches_eager_and_controls_change_without_recapture() -> None:
    G = load_generator(CONFORMANCE / "sg2ada_64px.pkl").cuda()
    fast = FastSynthesis(G, "cuda", "fp16-all")
    eager = FastSynthesis(G, "cuda", "fp16-all", use_graphs=False)
    ws = G.mapping(torch.randn(2, G.z_dim, device="cuda"))
    a = fast.frame(ws[:1]).clone()
    assert torch.equal(a, eager.frame(ws[:1]))
    b = fast.frame(ws[1:]).clone()
    assert not torch.equal(a, b)
    assert torch.equal(b, eager.frame(ws[1:]))
    graphs = dict(fast._graphs)
    # Per-layer noise strength and noise mode change between replays, with no new capture.
    fast.set_noise_gains([0.0] * fast.num_layers)
    quiet = fast.frame(ws[:1]).clone()
    fast.set_noise_mode("none")
    assert torch.equal(quiet, fast.frame(ws[:1]))
    fast.set_noise_mode("random")
    fast.set_noise_gains([2.0] * fast.num_layers)
    r1, r2 = fast.frame(ws[:1]).clone(), fast.frame(ws[:1]).clone()
    assert not torch.equal(r1, r2)
    assert fast._graphs == graphs
    # No allocation per frame once captured.
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    for _ in range(20):
        fast.frame(ws[:1])
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == before
    # Early exit: one graph per exit point, the block's skip image.
    fast.set_noise_mode("const")
    fast.set_noise_gains([1.0] * fast.num_layers)
    small = fast.frame(ws[:1], exit_resolution=32)
    assert small.shape == (32, 32, 4)
    ref_small = G.synthesis(ws[:1], exit_resolution=32)
    got_small = small[..., :3].permute(2, 0, 1).float().sub(128).div(127.5)
    assert (got_small - ref_small[0].clamp(-1, 1)).abs().mean() < 0.02


@cuda
@pytest.mark.parametrize("name", ["sg3t_64px", "sg3r_64px"])
def test_stylegan3_graph_replays_follow_the_transform_without_recapture(name: str) -> None:
    ref = np.load(CONFORMANCE / f"{name}_reference.npz")
    G = load_generator(CONFORMANCE / f"{name}.pkl").cuda()
    fast, _ = choose_precision(G, "cuda")
    ws = torch.from_numpy(ref["ws_psi07"][:1]).cuda()
    turn = torch.from_numpy(ref["transform"])
    plain = fast.frame(ws).clone()
    graphs = dict(fast._graphs)
    turned = fast.frame(ws, transform=turn).clone()
    assert fast._graphs == graphs and not torch.equal(plain, turned)
    expected = torch.from_numpy(ref["img_psi07_transformed"][:1]).cuda()
    got = turned[..., :3].permute(2, 0, 1).float().sub(128).div(127.5)
    assert (got - expected[0].clamp(-1, 1)).abs().mean() < 0.02
    assert torch.equal(fast.frame(ws), plain)  # the transform was this frame's only
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    for _ in range(10):
        fast.frame(ws, transform=turn)
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == before


@cuda
def test_batched_path_matches_single_frames() -> None:
    G = load_generator(CONFORMANCE / "sg2ada_64px.pkl").cuda()
    fast = FastSynthesis(G, "cuda", "fp16-all", use_graphs=False)
    ws = G.mapping(torch.randn(4, G.z_dim, device="cuda"))
    batch = fast.frames(ws)
    for i in range(4):
        assert (batch[i].int() - fast.frame(ws[i : i + 1]).int()).abs().max() <= 2


@pytest.mark.parametrize("name", ["sg2ada_64px.pkl", "sg2ada_64px_tf.pkl", "sg2ada_cond_32px.pkl"])
def test_stylegan2_half_precision_maths_within_tolerance_on_cpu(name: str) -> None:
    """Batch 1 folds the (normalised) styles into the weights in fp16 and the demodulation into
    the epilogue; the GPU run of the same check is test_fp16_accuracy_on_conformance_networks."""
    G = load_generator(CONFORMANCE / name)
    fast = FastSynthesis(G, "cpu", "fp16-all", half_on_cpu=True)
    assert {layer.dtype for layer in fast.layers if hasattr(layer, "dtype")} == {torch.float16}
    report = measure_accuracy(G, fast, samples=2)
    assert report.ok, report


def test_one_batched_style_pass_gives_each_layers_affine_and_demodulation() -> None:
    """The frame's style table against each layer's own affine and demodulation (the reference
    module's maths), for a batch of two w+."""
    G = load_generator(CONFORMANCE / "sg2ada_64px.pkl")
    fast = FastSynthesis(G, "cpu")
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3)))
    with torch.no_grad():
        fs = fast._frame_styles(ws, None)
        convs = [layer for layer in fast.layers if hasattr(layer, "modulate_weights")]
        for layer in convs:
            module = G.synthesis.get_submodule(layer.step.module)
            s = module.affine(ws[:, layer.step.w_index])  # the reference style
            d = (s.square() @ module.weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
            got_s = fs.s[layer.slot, :, : layer.c_in]
            largest = s.abs().amax(dim=1, keepdim=True)
            torch.testing.assert_close(got_s, s / largest, atol=1e-5, rtol=1e-5)
            # Stored weight × its style × the scale = √2 · weight · style · demodulation.
            top = (fast._arranged(module.weight.float(), module.up)[1])
            torch.testing.assert_close(fs.d[layer.slot, :, : layer.c_out], d * largest * top, atol=1e-5, rtol=1e-4)
        assert fs.d.shape[0] == len(convs) and fs.strength.shape == (1, len(convs))


# ---------------------------------------------------------------------------------------------
# Triton kernels: on CUDA, or on the CPU in Triton's interpreter (TRITON_INTERPRET=1, set before
# Triton is imported: test_triton_kernels_in_the_interpreter runs these in a child process).

KERNEL_DEVICE = ("cuda" if torch.cuda.is_available() else
                 "cpu" if os.environ.get("TRITON_INTERPRET") == "1" and importlib.util.find_spec("triton") else None)
kernels = pytest.mark.skipif(KERNEL_DEVICE is None, reason="needs CUDA, or Triton's interpreter (TRITON_INTERPRET=1)")


@kernels
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("shuffle", [False, True])
def test_epilogue_kernel_matches_pytorch(channels_last: bool, dtype: torch.dtype, shuffle: bool) -> None:
    dev = KERNEL_DEVICE
    g = torch.Generator().manual_seed(0)
    c = 24
    y = (torch.randn(2, c * (4 if shuffle else 1), 8, 8, generator=g) * 50).to(dev, dtype)
    if channels_last:
        y = y.contiguous(memory_format=torch.channels_last)
    side = 16 if shuffle else 8
    bias = torch.randn(c, generator=g).to(dev)
    table = torch.rand(2, 3, 40, generator=g).to(dev)  # channel scales as a strided view, as the frame's table
    scale = table[:, 1, :c]
    const = torch.randn(side, side, generator=g).to(dev, dtype)
    random = torch.randn(side, side, generator=g).to(dev)
    mix = torch.tensor([0.7, 0.4]).to(dev)
    strengths = torch.rand(2, 5, generator=g).to(dev)
    for strength in (strengths[:, 2], strengths[:1, 2]):  # one per frame, or one for all
        ref = torch_epilogue(y.clone(), bias, scale, const, random, mix, strength, 60.0, shuffle)
        got = fused_epilogue(y.clone(), bias, scale, const, random, mix, strength, 60.0, shuffle)
        assert got.shape == ref.shape and got.is_contiguous(memory_format=torch.channels_last) == channels_last
        tol = 1e-2 if dtype == torch.float16 else 1e-5
        torch.testing.assert_close(got.float(), ref.float(), atol=tol * 60, rtol=tol)
    none = fused_epilogue(y.clone(), bias, scale, None, None, mix, strengths[:, 0], None, shuffle)
    torch.testing.assert_close(none.float(), torch_epilogue(y.clone(), bias, scale, None, None, mix, strengths[:, 0],
                                                             None, shuffle).float(), atol=0.5, rtol=1e-2)


@kernels
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("img_channels", [3, 1])
def test_torgb_kernel_matches_conv_and_upsampling(channels_last: bool, img_channels: int) -> None:
    dev = KERNEL_DEVICE
    g = torch.Generator().manual_seed(1)
    n, c = 2, 40  # not a multiple of the kernel's channel block
    x = torch.randn(n, c, 10, 12, generator=g).to(dev, torch.float16)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(img_channels, c, generator=g).to(dev)
    table = torch.randn(3, n, 64, generator=g).to(dev)
    styles = table[1, :, :c]
    bias = torch.randn(img_channels, generator=g).to(dev)
    previous = torch.randn(n, img_channels, 5, 6, generator=g).to(dev)
    rows = polyphase_rows((1, 3, 3, 1))
    y = F.conv2d(x.float() * styles[:, :, None, None], weight[:, :, None, None]) + bias[None, :, None, None]
    up = F.pixel_shuffle(F.conv2d(previous, polyphase_upsample_kernel((1, 3, 3, 1), img_channels).to(dev), padding=1,
                                  groups=img_channels), 2)
    ref = y.clamp(-0.8, 0.8) + up
    got = fused_torgb(x, weight, styles, bias, previous, rows, 0.8)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    first = fused_torgb(x, weight, styles, bias, None, rows, None)
    torch.testing.assert_close(first, y, atol=1e-4, rtol=1e-4)
    rgba = torch.zeros(n, 10, 12, 4, dtype=torch.uint8, device=dev)
    assert fused_torgb(x, weight, styles, bias, previous, rows, 0.8, rgba_out=rgba) is None
    expected = torch.zeros_like(rgba)
    FastSynthesis.to_rgba_u8(ref, expected)
    assert (rgba.int() - expected.int()).abs().max() <= 1 and (rgba[..., 3] == 255).all()


@kernels
@pytest.mark.parametrize("name", ["sg2ada_64px.pkl", "sg2ada_cond_32px.pkl"])
def test_fused_path_matches_the_reference(name: str) -> None:
    """The whole frame with the Triton kernels: fp32 against vjgan's reference module, and the
    RGBA frame the last ToRGB writes."""
    G = load_generator(CONFORMANCE / name).to(KERNEL_DEVICE)
    fast = FastSynthesis(G, KERNEL_DEVICE, "fp32", use_graphs=False)
    assert fast.fused
    assert measure_accuracy(G, fast, samples=2).max_abs < 1e-4
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(4)).to(KERNEL_DEVICE),
                   torch.eye(G.c_dim, device=KERNEL_DEVICE)[:2] if G.c_dim else None)
    with torch.no_grad():
        expected = G.synthesis(ws[:1], noise_mode="const")
    assert (fast.frame(ws[:1])[..., :3].int() - _rgba(expected).int()).abs().max() <= 1
    batch = fast.frames(ws[:1].repeat(2, 1, 1), noise_gains=torch.tensor([[0.0] * fast.num_layers,
                                                                           [1.0] * fast.num_layers]))
    assert (batch[1, ..., :3].int() - _rgba(expected).int()).abs().max() <= 1
    assert (batch[0].int() - batch[1].int()).abs().max() > 8  # the first frame's noise is off


@pytest.mark.skipif(torch.cuda.is_available() or importlib.util.find_spec("triton") is None
                    or os.environ.get("TRITON_INTERPRET") == "1", reason="runs the kernels' tests in the interpreter "
                    "where Triton is installed and there is no GPU")
def test_triton_kernels_in_the_interpreter() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                           "kernel_matches or torgb_kernel or fused_path"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1], proc.stdout[-2000:]


@cuda
def test_live_frames_rotate_through_a_ring_of_pinned_host_buffers() -> None:
    from vjgan.engine.synth import HOST_RING, Synthesizer

    G = load_generator(CONFORMANCE / "sg2ada_64px.pkl")
    synth = Synthesizer(G, torch.device("cuda"), live=False)
    ws = [G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(i)))[0].numpy()
          for i in range(HOST_RING + 1)]
    gains = np.ones(synth.num_layers, np.float32)
    pictures = [synth.frame(w, gains, 64) for w in ws[:HOST_RING]]
    kept = [p.copy() for p in pictures]
    assert all(synth._host[64][i].is_pinned() for i in range(HOST_RING))
    assert not any(np.shares_memory(a, b) for i, a in enumerate(pictures) for b in pictures[i + 1:])
    newest = synth.frame(ws[HOST_RING], gains, 64)  # the ring comes round: the oldest buffer again
    assert np.shares_memory(newest, pictures[0])
    assert all(np.array_equal(p, k) for p, k in zip(pictures[1:], kept[1:]))  # the others untouched
    expected = synth.fast.frame(torch.from_numpy(ws[HOST_RING])[None].cuda()).cpu().numpy()
    assert np.array_equal(newest, expected)
