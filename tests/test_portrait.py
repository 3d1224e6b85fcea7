"""The living portrait: alignment on a real photograph, projection, losses, the discriminator
reader, `vjgan project` and `vjgan direction`, and their one-line errors."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vjgan.cli import main
from vjgan.errors import UserError
from vjgan.gan.load import load_generator
from vjgan.motion.directions import model_hash
from vjgan.motion.keyframe_files import load_keyframes
from vjgan.portrait.align import align_face, ffhq_eye_positions, find_face, quad_to_crop
from vjgan.portrait.losses import DiscriminatorFeatures, FeatureLoss, PixelStructureLoss, psnr, ssim
from vjgan.portrait.perceptual import choose_loss
from vjgan.portrait.project import (ProjectionCancelled, ProjectionJob, ProjectionSettings, fp16_is_accurate,
                                    learning_rate)
from vjgan.portrait.vgg16 import TORCHVISION_INDEX, VGG16Features, load_vgg16
from vjgan.train.discriminator_files import NoDiscriminator, read_discriminator

ROOT = Path(__file__).parent.parent
CONFORMANCE = Path(__file__).parent / "data" / "conformance"
TINY = CONFORMANCE / "sg3repo_sg2_32px.pkl"  # 32², num_ws 8: fast enough for a few steps anywhere
ADA = CONFORMANCE / "sg2ada_64px.pkl"
DEFAULT_MODEL = ROOT / "models" / "default.safetensors"
# The astronaut's pupils, marked by hand on the 512² original (x, y).
ASTRONAUT_EYES = np.array([[203.0, 101.0], [245.5, 103.5]])


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image is in the test extra")
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def tiny():
    return load_generator(TINY)


class Payload:
    """Stands for any object a hostile weights file might ask to build."""


def known_wplus(G, seed: int = 7) -> torch.Tensor:
    """A W+ latent whose rows come from three mapped latents (ψ 0.7): reachable, not a single w."""
    g = torch.Generator().manual_seed(seed)
    ws = G.mapping(torch.randn(3, G.z_dim, generator=g), None, truncation_psi=0.7)
    rows = torch.tensor([i * 3 // G.num_ws for i in range(G.num_ws)])
    return ws[rows, torch.arange(G.num_ws)][None]


# ---------------------------------------------------------------------------------------------
# alignment


def test_alignment_puts_the_astronauts_eyes_where_ffhq_does(astronaut: np.ndarray) -> None:
    aligned = align_face(astronaut, 256)
    marks = aligned.landmarks
    assert marks.eyes_found and marks.turn == 0
    # The detector's eyes are the hand-marked pupils (within 2% of the picture).
    np.testing.assert_allclose([marks.left_eye, marks.right_eye], ASTRONAUT_EYES, atol=0.02 * 512)
    expected = ffhq_eye_positions()
    # Where the crop put the real (hand-marked) eyes, and where a fresh detection finds them in it.
    np.testing.assert_allclose(quad_to_crop(aligned.quad, ASTRONAUT_EYES), expected, atol=0.05)
    again = find_face(aligned.image)
    np.testing.assert_allclose(np.array([again.left_eye, again.right_eye]) / 256, expected, atol=0.05)
    assert aligned.image.shape == (256, 256, 3) and aligned.image.dtype == np.uint8


@pytest.mark.parametrize("degrees", [-35, 25])
def test_alignment_levels_a_tilted_head(astronaut: np.ndarray, degrees: float) -> None:
    turned = np.asarray(Image.fromarray(astronaut).rotate(degrees, resample=Image.BICUBIC, center=(256, 256)))
    th = np.deg2rad(degrees)
    rel = ASTRONAUT_EYES - 256
    eyes = np.stack([np.cos(th) * rel[:, 0] + np.sin(th) * rel[:, 1], -np.sin(th) * rel[:, 0] + np.cos(th) * rel[:, 1]], 1) + 256
    aligned = align_face(turned, 128)
    np.testing.assert_allclose(quad_to_crop(aligned.quad, eyes), ffhq_eye_positions(), atol=0.05)


def test_ffhq_geometry() -> None:
    # Level eyes one unit apart, mouth one unit below: the crop is 4 eye distances wide,
    # centred 0.1 of the way to the mouth.
    np.testing.assert_allclose(ffhq_eye_positions(1.0), [[0.375, 0.475], [0.625, 0.475]])


def test_no_face_and_bad_images_give_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    blank = tmp_path / "wall.png"
    Image.fromarray((np.linspace(0, 255, 128)[None, :, None] * np.ones((128, 1, 3))).astype(np.uint8)).save(blank)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(rng.bytes(500))
    for image, needle in ((blank, "no face found"), (junk, "not a picture vjgan can read"), (tmp_path / "none.jpg", "no such file")):
        code = main(["project", str(image), "--model", str(TINY), "--out", str(tmp_path / "x.npz"), "--steps", "1", "-q"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and needle in err[0] and image.name in err[0], err
    assert not (tmp_path / "x.npz").exists()


# ---------------------------------------------------------------------------------------------
# projection


@pytest.mark.slow
def test_projection_recovers_a_known_wplus() -> None:
    """The default model (128², trained) draws a picture from a known W+; projection gets it back."""
    G = load_generator(DEFAULT_MODEL)
    with torch.no_grad():
        target = G.synthesis(known_wplus(G), noise_mode="const")
    seen = []
    job = ProjectionJob(G, target, ProjectionSettings(steps=150, w_share=0.0), on_progress=seen.append)
    result = job.run()
    assert result.psnr[0] >= 30.0, result.psnr
    assert [p.step for p in seen] == list(range(1, 151)) and seen[-1].loss < 0.5 * seen[0].loss
    assert result.ws.shape == (1, G.num_ws, G.w_dim) and result.precision == "fp32"
    # The result is what the show will play: the model's own noise, from the keyframe alone.
    with torch.no_grad():
        again = G.synthesis(torch.from_numpy(result.ws), noise_mode="const")
    assert float(psnr(again, target)[0]) == pytest.approx(result.psnr[0], abs=1e-3)


def test_job_reports_each_step_and_cancels_between_steps(tiny) -> None:
    target = torch.zeros(1, 3, 32, 32)
    seen = []

    def progress(p) -> None:
        seen.append(p)
        if p.step == 3:
            job.cancel()

    job = ProjectionJob(tiny, target, ProjectionSettings(steps=20), on_progress=progress)
    with pytest.raises(ProjectionCancelled):
        job.run()
    assert [p.step for p in seen] == [1, 2, 3] and all(p.steps == 20 for p in seen) and seen[0].phase == "w"


def test_joint_projection_shares_the_coarse_rows(tiny) -> None:
    with torch.no_grad():
        targets = torch.cat([tiny.synthesis(known_wplus(tiny, s), noise_mode="const") for s in (1, 2)])
    result = ProjectionJob(tiny, targets, ProjectionSettings(steps=6, w_share=0.5, joint=True)).run()
    np.testing.assert_array_equal(result.ws[0, :4], result.ws[1, :4])
    assert np.abs(result.ws[0, 4:] - result.ws[1, 4:]).max() > 1e-4
    assert len(result.psnr) == 2


def test_fitted_noise_is_returned_and_the_model_untouched(tiny) -> None:
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    result = ProjectionJob(tiny, torch.zeros(1, 3, 32, 32), ProjectionSettings(steps=4, optimise_noise=True)).run()
    assert len(result.noise) == len(tiny.synthesis.conv_layers())
    for n in result.noise.values():
        assert abs(float(n.mean())) < 1e-4 and float(n.std()) == pytest.approx(1.0, abs=0.05)
    for k, v in tiny.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_fp16_is_used_only_on_cuda(tiny) -> None:
    w = tiny.w_avg.reshape(1, 1, -1).expand(1, tiny.num_ws, -1)
    assert not fp16_is_accurate(tiny, torch.device("cpu"), w)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_projection_on_cuda_matches_the_cpu_path() -> None:
    G = load_generator(DEFAULT_MODEL)
    with torch.no_grad():
        target = G.synthesis(known_wplus(G), noise_mode="const")
    result = ProjectionJob(G, target, ProjectionSettings(steps=150, w_share=0.0), device="cuda").run()
    assert result.precision in ("fp16", "fp32") and result.psnr[0] >= 30.0, (result.precision, result.psnr)
    loss = choose_loss("discriminator", ADA, device=torch.device("cuda")).loss
    with torch.no_grad():
        small = load_generator(ADA).synthesis(known_wplus(load_generator(ADA)), noise_mode="const")
    r = ProjectionJob(load_generator(ADA), small, ProjectionSettings(steps=5), device="cuda", loss=loss).run()
    assert np.isfinite(r.loss)


def test_learning_rate_ramps_up_and_down() -> None:
    lrs = [learning_rate(i / 100, 0.1, 0.05, 0.25) for i in range(100)]
    assert lrs[0] == 0 and max(lrs) == pytest.approx(0.1) and lrs[-1] < 0.002
    assert lrs[5] == pytest.approx(0.1) and lrs[80] < lrs[70]


# ---------------------------------------------------------------------------------------------
# losses and the networks behind them


def test_pixel_structure_loss_and_quality_measures() -> None:
    a = torch.rand(2, 3, 64, 64) * 2 - 1
    b = a + 0.1 * torch.randn_like(a)
    assert float(PixelStructureLoss()(a, a).abs().max()) < 1e-5
    assert torch.all(PixelStructureLoss()(a, b) > 0)
    assert torch.allclose(ssim(a, a), torch.ones(2)) and torch.all(ssim(a, b) < 0.99)
    assert float(psnr(a, b)[0]) == pytest.approx(10 * np.log10(4 / 0.01), abs=0.3)


def test_discriminator_from_every_layout() -> None:
    ada, ada3 = read_discriminator(ADA), read_discriminator(CONFORMANCE / "sg2ada_64px_protocol3.pkl")
    for k, v in ada.state_dict().items():
        assert torch.equal(v, ada3.state_dict()[k]), k
    assert read_discriminator(TINY).config.img_resolution == 32
    for name, reason in (("sg2ada_64px_rosinality_train.pt", "incomplete"), ("sg2ada_64px_rosinality.pt", "inference"),
                         ("sg2ada_64px_tf.pkl", "TensorFlow"), ("sg2ada_cond_32px.pkl", "conditional"),
                         ("hostile/exec_on_load.pkl", "builtins.exec")):
        with pytest.raises(NoDiscriminator, match=reason):
            read_discriminator(CONFORMANCE / name)


def test_rosinality_discriminator_layout_reads_the_same_network(tmp_path: Path) -> None:
    """The ADA discriminator's tensors laid out as rosinality's training checkpoints store them."""
    D = read_discriminator(ADA)
    sd = D.state_dict()
    blur = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1]))
    ros = {"convs.0.0.weight": sd["b64.fromrgb.weight"], "convs.0.1.bias": sd["b64.fromrgb.bias"]}
    for i, r in enumerate((64, 32, 16, 8), start=1):
        ros.update({f"convs.{i}.conv1.0.weight": sd[f"b{r}.conv0.weight"], f"convs.{i}.conv1.1.bias": sd[f"b{r}.conv0.bias"],
                    f"convs.{i}.conv2.0.kernel": blur / blur.sum(), f"convs.{i}.conv2.1.weight": sd[f"b{r}.conv1.weight"],
                    f"convs.{i}.conv2.2.bias": sd[f"b{r}.conv1.bias"], f"convs.{i}.skip.0.kernel": blur / blur.sum(),
                    f"convs.{i}.skip.1.weight": sd[f"b{r}.skip.weight"]})
    ros.update({"final_conv.0.weight": sd["conv.weight"], "final_conv.1.bias": sd["conv.bias"],
                "final_linear.0.weight": sd["fc.weight"], "final_linear.0.bias": sd["fc.bias"],
                "final_linear.1.weight": sd["out.weight"], "final_linear.1.bias": sd["out.bias"]})
    path = tmp_path / "train.pt"
    torch.save({"g_ema": {}, "d": ros}, path)
    again = read_discriminator(path)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    for a, b in zip(DiscriminatorFeatures(D)(x), DiscriminatorFeatures(again)(x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)  # ADA clamps at ±256; rosinality does not


def test_vjgan_training_snapshot_carries_its_discriminator(tmp_path: Path) -> None:
    from vjgan.train.data import TrainingData
    from vjgan.train.trainer import TrainConfig, Trainer

    cfg = TrainConfig(resolution=16, batch=2, seed=1, g_channels={4: 16, 8: 16, 16: 8}, z_dim=16, w_dim=16, mapping_layers=2)
    data = TrainingData("memory", 16, images=torch.zeros(4, 3, 16, 16, dtype=torch.uint8))
    trainer = Trainer.create(cfg, data, tmp_path / "run", torch.device("cpu"), log=lambda m: None)
    D = read_discriminator(trainer.save_snapshot())
    for k, v in trainer.D.state_dict().items():
        assert torch.equal(D.state_dict()[k], v), k


def test_feature_losses_are_distances() -> None:
    loss = FeatureLoss(DiscriminatorFeatures(read_discriminator(ADA)), "discriminator")
    a = torch.rand(1, 3, 64, 64) * 2 - 1
    assert float(loss(a, a)) < 1e-6
    assert float(loss(a + 0.3 * torch.randn_like(a), a)) > float(loss(a + 0.05 * torch.randn_like(a), a)) > 0


def _vgg_state(prefix: str = "features") -> dict[str, torch.Tensor]:
    net = VGG16Features()
    out = {}
    for i, index in enumerate(TORCHVISION_INDEX):
        out[f"{prefix}.{index}.weight"] = net.convs[i].weight.detach().clone()
        out[f"{prefix}.{index}.bias"] = net.convs[i].bias.detach().clone()
    return out


def test_vgg16_from_torchvision_and_lpips_files(tmp_path: Path) -> None:
    torchvision = tmp_path / "vgg16.pth"
    torch.save({**_vgg_state(), "classifier.0.weight": torch.zeros(4, 4)}, torchvision)
    plain = load_vgg16([torchvision])
    assert plain.name == "vgg16" and plain.channel_weights is None
    lins = tmp_path / "lpips-vgg.pth"
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 128, 256, 512, 512))}, lins)
    lpips = load_vgg16([torchvision, lins])
    assert lpips.name == "vgg16-lpips" and len(lpips.channel_weights) == 5
    a = torch.rand(1, 3, 64, 64) * 2 - 1
    assert float(lpips(a, a)) < 1e-6 < float(lpips(a.flip(-1), a))
    # The lpips package's own layout: slices keep torchvision's numbering.
    full = tmp_path / "lpips-full.pth"
    sliced = {}
    for key, value in _vgg_state().items():
        index = int(key.split(".")[1])
        k = 1 + sum(index > b for b in (3, 8, 15, 22))
        sliced[f"net.slice{k}.{index}.{key.split('.')[2]}"] = value
    torch.save({**sliced, **torch.load(lins)}, full)
    assert load_vgg16([full]).name == "vgg16-lpips"


def test_perceptual_files_that_are_not_plain_weights_are_refused(tmp_path: Path) -> None:
    scripted = tmp_path / "vgg16.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is how NVIDIA's file was made
        torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 4, 3)), str(scripted))
    with pytest.raises(UserError, match="TorchScript archive holds program code"):
        load_vgg16([scripted])
    evil = tmp_path / "evil.pth"
    torch.save({"features.0.weight": torch.zeros(1), "x": Payload()}, evil)
    with pytest.raises(UserError, match="refused"):
        load_vgg16([evil])
    with pytest.raises(UserError, match="LPIPS weights need a VGG16 file"):
        lins = tmp_path / "lins.pth"
        torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, lins)
        load_vgg16([lins])
    assert zipfile.is_zipfile(scripted)


def test_loss_choice() -> None:
    assert choose_loss("auto", ADA).description == "pixels and structure"
    assert "own discriminator" in choose_loss("discriminator", ADA).description
    with pytest.raises(UserError, match="--loss discriminator: .*inference checkpoint"):
        choose_loss("discriminator", CONFORMANCE / "sg2ada_64px_rosinality.pt")
    with pytest.raises(UserError, match="--loss discriminator"):
        choose_loss("discriminator", DEFAULT_MODEL)
    with pytest.raises(UserError, match="--perceptual FILE"):
        choose_loss("vgg", DEFAULT_MODEL)


# ---------------------------------------------------------------------------------------------
# the commands


def test_project_then_direction_end_to_end(tmp_path: Path, astronaut: np.ndarray, tiny,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(photo)
    mirrored = tmp_path / "mirrored.png"
    Image.fromarray(astronaut[:, ::-1].copy()).save(mirrored)
    out = tmp_path / "face.npz"
    assert main(["project", str(photo), str(mirrored), "--model", str(TINY), "--out", str(out), "--steps", "4",
                 "--loss", "discriminator", "-q"]) == 0
    printed = capsys.readouterr()
    digest = model_hash(tiny)
    first = load_keyframes(tmp_path / "face-1.npz", model_hash=digest, num_ws=tiny.num_ws, w_dim=tiny.w_dim)
    second = load_keyframes(tmp_path / "face-2.npz", model_hash=digest)
    assert first.kind == "projection" and str(first.extra["source"]) == "astronaut.jpg" and "PSNR" in printed.out
    assert "own discriminator features" in printed.err  # this pickle carries D
    preview = Image.open(tmp_path / "face.png")
    assert preview.size == (2 * 32 + 4, 2 * 32 + 4)
    # A direction from the two keyframe files is their difference, and refuses another model.
    smile = tmp_path / "smile.npz"
    assert main(["direction", str(tmp_path / "face-1.npz"), str(tmp_path / "face-2.npz"), "--model", str(TINY),
                 "--out", str(smile)]) == 0
    d = load_keyframes(smile, model_hash=digest)
    assert d.kind == "direction"
    np.testing.assert_allclose(d.ws, second.ws - first.ws, atol=1e-6)
    code = main(["direction", str(tmp_path / "face-1.npz"), str(tmp_path / "face-2.npz"), "--model", str(ADA),
                 "--out", str(tmp_path / "other.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "face-1.npz was made for another model" in err[0]
    # An existing output is kept unless --force.
    code = main(["project", str(photo), "--model", str(TINY), "--out", str(smile), "--steps", "1", "-q"])
    assert code == 2 and "exists" in capsys.readouterr().err


def test_direction_from_two_pictures(tmp_path: Path, astronaut: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(astronaut).save(a)
    Image.fromarray(np.clip(astronaut.astype(int) + 40, 0, 255).astype(np.uint8)).save(b)
    out = tmp_path / "brighter.npz"
    assert main(["direction", str(a), str(b), "--model", str(TINY), "--out", str(out), "--steps", "3", "--joint",
                 "--loss", "pixel", "-q"]) == 0
    d = load_keyframes(out)
    assert d.kind == "direction" and d.ws.shape == (8, 64)
    np.testing.assert_array_equal(d.ws[:4], 0)  # --joint: the coarse rows are shared, so they do not move
    assert (tmp_path / "brighter.png").is_file() and "coarse 0.00" in capsys.readouterr().out


def test_missing_opencv_is_one_line(tmp_path: Path, astronaut: np.ndarray, monkeypatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from vjgan.portrait import align

    photo = tmp_path / "a.png"
    Image.fromarray(astronaut).save(photo)
    monkeypatch.setitem(sys.modules, "cv2", None)  # as if the portrait extra were not installed
    monkeypatch.setattr(align, "_CASCADES", {})
    code = main(["project", str(photo), "--model", str(TINY), "--out", str(tmp_path / "a.npz"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'vjgan[portrait]'" in err[0]
