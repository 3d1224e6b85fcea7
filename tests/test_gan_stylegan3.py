"""StyleGAN3 (configs T and R): NVIDIA's snapshots load safely and reproduce NVIDIA's images (fp32, CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nvidia_layout import nvidia_pickle
from vjgan.gan import safe_pickle
from vjgan.gan.load import _flatten_module, load_generator
from vjgan.gan.resample import (FilteredLReLU, downsample_strided, filtered_lrelu_reference, height_kernel,
                                resample_reference, upsample_strided, width_kernel)
from vjgan.gan.stylegan3 import StyleGAN3Config, design_lowpass, view_transform

CONFORMANCE = Path(__file__).parent / "data" / "conformance"
NETS = [("sg3t_64px", "stylegan3-t", "t"), ("sg3r_64px", "stylegan3-r", "r")]


def assert_close(actual: torch.Tensor, reference: np.ndarray, what: str) -> None:
    ref = torch.from_numpy(reference)
    assert actual.shape == ref.shape, f"{what}: shape {list(actual.shape)} != {list(ref.shape)}"
    err = (actual - ref).abs().max().item()
    tol = 1e-4 * ref.abs().max().item()
    assert err <= tol, f"{what}: max abs error {err:.3g} > {tol:.3g}"


@pytest.fixture(scope="module", params=NETS, ids=[n[0] for n in NETS])
def net(request):
    name, arch, kind = request.param
    return name, arch, kind, load_generator(CONFORMANCE / f"{name}.pkl"), dict(np.load(CONFORMANCE / f"{name}_reference.npz"))


def test_reproduces_nvidia_reference(net) -> None:
    name, arch, _, G, ref = net
    assert G.source_format == "stylegan3" and G.config.architecture == arch
    assert (G.num_ws, G.z_dim, G.w_dim, G.img_resolution) == (16, 64, 64, 64)
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        assert_close(G.w_avg, ref["w_avg"], "w_avg")
        assert_close(G.mapping(z), ref["ws_psi1"], "ws_psi1")
        assert_close(G.mapping(z, truncation_psi=0.7), ref["ws_psi07"], "ws_psi07")
        assert_close(G.mapping(z, truncation_psi=0.5, truncation_cutoff=4), ref["ws_psi05_cut4"], "ws_psi05_cut4")
        for key in ("img_psi07", "img_psi1", "img_mix"):
            img = G.synthesis(torch.from_numpy(ref[key.replace("img", "ws")]))
            assert img.dtype == torch.float32
            assert_close(img, ref[key], key)


def test_transform_turns_the_picture_and_leaves_no_state(net) -> None:
    _, _, _, G, ref = net
    ws = torch.from_numpy(ref["ws_psi07"])
    stored = G.synthesis.input.transform.clone()
    # The fixture's matrix is what NVIDIA's visualizer writes for a 12° turn and a (0.15, −0.1) shift.
    np.testing.assert_allclose(view_transform(12.0, (0.15, -0.1)), ref["transform"], atol=1e-6)
    with torch.no_grad():
        turned = G.synthesis(ws, transform=torch.from_numpy(ref["transform"]))
        assert_close(turned, ref["img_psi07_transformed"], "img_psi07_transformed")
        per_sample = G.synthesis(ws, transform=np.broadcast_to(ref["transform"], (len(ws), 3, 3)))
        assert_close(per_sample, ref["img_psi07_transformed"], "img_psi07_transformed, one matrix per sample")
        assert torch.equal(G.synthesis.input.transform, stored)
        assert_close(G.synthesis(ws), ref["img_psi07"], "img_psi07 after a transformed call")
        with pytest.raises(ValueError, match="transform"):
            G.synthesis(ws, transform=torch.eye(2))


def test_the_view_moves_the_picture_as_documented() -> None:
    """T is translation-equivariant, R rotation-equivariant: a view transform moves the picture
    itself, +x to the right, +y downward, a positive angle counter-clockwise."""
    def mismatch(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).abs().mean() / a.abs().mean())

    for name in ("sg3t_64px", "sg3r_64px"):
        G = load_generator(CONFORMANCE / f"{name}.pkl")
        ws = torch.from_numpy(np.load(CONFORMANCE / f"{name}_reference.npz")["ws_psi07"][:1])
        with torch.no_grad():
            still = G.synthesis(ws)
            right = G.synthesis(ws, transform=view_transform(0.0, (0.25, 0.0)))  # a quarter width: 16 px
            down = G.synthesis(ws, transform=view_transform(0.0, (0.0, 0.25)))
            turned = G.synthesis(ws, transform=view_transform(90.0))
        assert mismatch(still[..., :, :-16], right[..., :, 16:]) < 0.01
        assert mismatch(still[..., :-16, :], down[..., 16:, :]) < 0.01
        if name == "sg3r_64px":
            assert mismatch(torch.rot90(still, 1, (2, 3)), turned) < 1e-4  # exact on the sampling grid


def test_interface_shared_with_stylegan2(net) -> None:
    _, _, _, G, ref = net
    ws = torch.from_numpy(ref["ws_psi07"])
    with torch.no_grad():
        plain = G.synthesis(ws)
        assert torch.equal(G.synthesis(ws, noise_mode="random"), plain)  # no noise inputs
        assert torch.equal(G.synthesis(ws, exit_resolution=64, noise_gains=[]), plain)
    assert G.synthesis.plan.exit_resolutions == [64] and G.synthesis.plan.num_noise_layers == 0
    with pytest.raises(ValueError, match="exit_resolution"):
        G.synthesis(ws, exit_resolution=32)
    with pytest.raises(ValueError, match="noise"):
        G.synthesis(ws, noise_gains=[1.0])
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(ws[:, :3])


def test_loader_takes_g_ema_and_the_file_geometry(net) -> None:
    name, _, kind, G, _ = net
    raw = safe_pickle.safe_load_pickle((CONFORMANCE / f"{name}.pkl").read_bytes())
    g_state: dict[str, torch.Tensor] = {}
    _flatten_module(raw["G"], "", g_state)
    loaded = G.state_dict()
    assert any(not torch.equal(loaded[k], g_state[k]) for k in loaded), "fixture G and G_ema should differ"
    ema_state: dict[str, torch.Tensor] = {}
    _flatten_module(raw["G_ema"], "", ema_state)
    assert set(ema_state) == set(loaded)
    assert all(torch.equal(loaded[k], ema_state[k].float()) for k in loaded)
    # One fp16 rule: the plan's flags agree with what NVIDIA recorded per layer.
    layers = raw["G_ema"].state["_modules"]["synthesis"].state["_modules"]
    recorded = [bool(layers[s.module].state["use_fp16"]) for s in G.synthesis.plan.steps if s.kind != "fourier"]
    assert recorded == [s.fp16 for s in G.synthesis.plan.steps if s.kind != "fourier"]
    # The paper's schedule, used to build new networks, gives the same geometry and filters.
    cfg = G.config
    paper = StyleGAN3Config.from_paper(kind, img_resolution=64, z_dim=64, w_dim=64, channel_base=2048, channel_max=64,
                                       mapping_hidden_features=64, num_fp16_res=4)
    assert paper == cfg
    for g in cfg.layers:
        for which, taps, cutoff, half, radial in (("up_filter", g.up_taps, g.in_cutoff, g.in_half_width, False),
                                                   ("down_filter", g.down_taps, g.out_cutoff, g.out_half_width, g.down_radial)):
            designed = design_lowpass(taps, cutoff, half * 2, g.tmp_sampling_rate, radial)
            stored = loaded.get(f"synthesis.{g.name}.{which}")
            assert (designed is None) == (stored is None)
            if designed is not None:
                torch.testing.assert_close(designed, stored, atol=1e-6, rtol=0)


@pytest.mark.parametrize("protocol,numpy_core", [(3, "numpy.core"), (4, "numpy.core"), (3, "numpy._core")])
def test_other_pickle_layouts_and_a_conditional_network(protocol: int, numpy_core: str, tmp_path: Path) -> None:
    """The 2021 releases: protocol 3 with numpy 1.x names; a conditional net adds a label embedding."""
    ref = dict(np.load(CONFORMANCE / "sg3t_64px_reference.npz"))
    raw = safe_pickle.safe_load_pickle((CONFORMANCE / "sg3t_64px.pkl").read_bytes())
    G_ema = raw["G_ema"]
    # Make it conditional: 10 labels embedded to 64 features, concatenated with z before fc0.
    gen = torch.Generator().manual_seed(0)
    mapping = G_ema.state["_modules"]["mapping"]
    embed = safe_pickle.PersistentRecord("FullyConnectedLayer", {
        "_parameters": {"weight": torch.randn(64, 10, generator=gen), "bias": torch.zeros(64)},
        "_buffers": {}, "_modules": {}, "in_features": 10, "out_features": 64, "activation": "linear",
        "weight_gain": np.float64(10**-0.5), "bias_gain": 1})
    mapping.state["_modules"]["embed"] = embed
    fc0 = mapping.state["_modules"]["fc0"]
    fc0.state["_parameters"]["weight"] = torch.randn(64, 128, generator=gen)
    for record in (G_ema, mapping):
        record.state["c_dim"] = 10
    path = tmp_path / "conditional.pkl"
    path.write_bytes(nvidia_pickle({"G": raw["G"], "G_ema": G_ema, "training_set_kwargs": {"use_labels": True}},
                                   protocol=protocol, numpy_core=numpy_core))
    assert path.read_bytes()[:2] == bytes([0x80, protocol])
    G = load_generator(path)
    assert G.c_dim == 10 and G.config.embed_features == 64 and G.source_format == "stylegan3"
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        with pytest.raises(ValueError, match="conditional"):
            G.mapping(z)
        labels = torch.eye(10)[:4]
        assert not torch.equal(G.mapping(z, labels), G.mapping(z, labels.roll(1, dims=0)))
        # The synthesis network is the fixture's: NVIDIA's images from NVIDIA's ws.
        assert_close(G.synthesis(torch.from_numpy(ref["ws_psi07"])), ref["img_psi07"], "img_psi07")


def test_a_stylegan3_file_with_a_missing_filter_is_refused_in_one_line(tmp_path: Path) -> None:
    raw = safe_pickle.safe_load_pickle((CONFORMANCE / "sg3r_64px.pkl").read_bytes())
    layer = raw["G_ema"].state["_modules"]["synthesis"].state["_modules"]["L3_36_64"]
    del layer.state["_buffers"]["down_filter"]
    path = tmp_path / "broken.pkl"
    path.write_bytes(nvidia_pickle({"G_ema": raw["G_ema"]}))
    from vjgan.gan.load import ModelLoadError

    with pytest.raises(ModelLoadError) as info:
        load_generator(path)
    assert "\n" not in str(info.value) and "L3_36_64.down_filter" in str(info.value) and str(path) in str(info.value)


# ---------------------------------------------------------------------------------------------
# resampling: the fast form against the literal one


@pytest.mark.parametrize("up,taps,pad", [(2, 12, (9, 8)), (4, 24, (-6, -9)), (2, 12, (-11, -12)), (2, 12, (14, 13))])
def test_strided_upsampling_equals_zero_insertion_and_filtering(up: int, taps: int, pad: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(up + taps)
    x = torch.randn(2, 3, 11, 29, generator=g)
    f = torch.randn(taps, generator=g)  # not symmetric: checks it is a convolution, not a correlation
    ref = resample_reference(x, None, up=up, padding=(pad[0], pad[1], 0, 0))
    ref = torch.nn.functional.conv2d(ref, f.flip(0).reshape(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    ref = ref[:, :, ::up]  # keep only the rows holding input samples: a width-only up-sampling
    got = upsample_strided(x, width_kernel(f, 3), up, pad)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    along_height = upsample_strided(x.transpose(2, 3), height_kernel(f, 3), up, pad)
    torch.testing.assert_close(along_height, ref.transpose(2, 3), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("radial", [False, True])
def test_strided_downsampling_equals_filter_then_decimate(radial: bool) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 40, 34, generator=g)
    f = torch.randn(12, 12, generator=g) if radial else torch.randn(12, generator=g)
    kernels = ((f.flip([0, 1])[None, None].repeat(4, 1, 1, 1),) if radial
               else (width_kernel(f.flip(0), 4), height_kernel(f.flip(0), 4)))
    torch.testing.assert_close(downsample_strided(x, kernels, 2), resample_reference(x, f, down=2), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("name", ["sg3t_64px", "sg3r_64px"])
def test_fast_filtered_lrelu_equals_reference_on_every_layer(name: str) -> None:
    G = load_generator(CONFORMANCE / f"{name}.pkl")
    g = torch.Generator().manual_seed(5)
    for layer_geometry in G.config.layers[:-1]:
        layer = getattr(G.synthesis, layer_geometry.name)
        geo = layer.geometry
        conv_size = geo.in_size + geo.conv_kernel - 1
        x = torch.randn(2, geo.out_channels, conv_size, conv_size, generator=g) * 100
        bias = torch.randn(geo.out_channels, generator=g)
        ref = filtered_lrelu_reference(x, bias, layer.up_filter, layer.down_filter, up=geo.up, down=geo.down,
                                       padding=geo.padding, clamp=256.0)
        fast = FilteredLReLU.prepare(layer.up_filter, layer.down_filter, geo.out_channels, up=geo.up, down=geo.down,
                                     padding=geo.padding, clamp=256.0)
        got = fast(x + bias[:, None, None])
        assert got.shape == ref.shape == (2, geo.out_channels, geo.out_size, geo.out_size)
        torch.testing.assert_close(got, ref, atol=1e-3, rtol=1e-4)
