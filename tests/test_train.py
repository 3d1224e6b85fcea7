"""vjgan's StyleGAN2 trainer on tiny networks and data (CPU, a few seconds in all)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from vjgan.errors import UserError
from vjgan.gan.load import load_generator
from vjgan.gan.networks import Generator
from vjgan.train import augment as aug
from vjgan.train import trainer as trainer_module
from vjgan.train.cli import add_train_parser
from vjgan.train.data import EpochSampler, TrainingData, open_training_data
from vjgan.train.discriminator import Discriminator, DiscriminatorConfig, minibatch_stddev
from vjgan.train.trainer import SNAPSHOT_NAME, TrainConfig, Trainer, load_snapshot, vj_channels

TINY = {4: 32, 8: 32, 16: 16}


def tiny_config(**kw) -> TrainConfig:
    base = dict(resolution=16, batch=4, seed=5, g_channels=TINY, z_dim=32, w_dim=32, mapping_layers=2,
                r1_interval=2, augment="color,translation,cutout", style_mixing=0.9)
    base.update(kw)
    return TrainConfig(**base)


def tiny_data(count: int = 12, res: int = 16) -> TrainingData:
    g = torch.Generator().manual_seed(0)
    # Smooth random colour fields: something with structure for D to learn from.
    low = torch.randint(0, 256, (count, 3, 4, 4), generator=g, dtype=torch.uint8).float()
    imgs = torch.nn.functional.interpolate(low, size=(res, res), mode="bilinear", align_corners=False)
    return TrainingData("memory", res, images=imgs.round().clamp(0, 255).to(torch.uint8))


def all_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {}
    for name, module in (("G", trainer.G), ("D", trainer.D), ("G_ema", trainer.G_ema)):
        out.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    for name, opt in (("opt_G", trainer.opt_G), ("opt_D", trainer.opt_D)):
        for i, st in opt.state_dict()["state"].items():
            out.update({f"{name}.{i}.{k}": torch.as_tensor(v) for k, v in st.items()})
    return out


def test_training_steps_change_the_generator_and_keep_losses_finite(tmp_path: Path) -> None:
    trainer = Trainer.create(tiny_config(), tiny_data(), tmp_path / "run", torch.device("cpu"), log=lambda m: None)
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    d_before = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    seen = set()
    for _ in range(3):
        stats = trainer.train_step()
        seen |= set(stats)
        assert all(torch.isfinite(v) for v in stats.values()), stats
    assert {"loss_G", "loss_D", "r1"} <= seen
    changed = [k for k, v in trainer.G.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("synthesis.") for k in changed) and any(k.startswith("mapping.fc") for k in changed)
    assert any(not torch.equal(v, d_before[k]) for k, v in trainer.D.state_dict().items())
    assert not torch.equal(trainer.G.mapping.w_avg, torch.zeros_like(trainer.G.mapping.w_avg))  # w_avg is tracked
    assert trainer.cur_nimg == 12 and trainer.step_index == 3
    # The average lags the raw generator once the ramp-up allows a non-zero half-life.
    assert any(not torch.equal(a, b) for a, b in zip(trainer.G_ema.parameters(), trainer.G.parameters()))


def test_first_ema_update_copies_the_generator(tmp_path: Path) -> None:
    trainer = Trainer.create(tiny_config(), tiny_data(), tmp_path / "run", torch.device("cpu"), log=lambda m: None)
    trainer.train_step()  # at 0 images seen the ramped half-life is 0: the average is the generator
    for a, b in zip(trainer.G_ema.parameters(), trainer.G.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_snapshot_resumes_exactly(tmp_path: Path) -> None:
    device = torch.device("cpu")
    data = tiny_data()
    quiet = lambda m: None  # noqa: E731
    straight = Trainer.create(tiny_config(), data, tmp_path / "a", device, log=quiet)
    for _ in range(6):
        straight.train_step()
    reference = all_state(straight)

    first = Trainer.create(tiny_config(), data, tmp_path / "b", device, log=quiet)
    for _ in range(3):
        first.train_step()
    snap = first.save_snapshot()
    first.write_pictures()  # pictures must not disturb the random streams
    first.export()
    del first
    torch.manual_seed(12345)  # whatever happened to the global generator in between
    resumed = Trainer.resume(snap, data, tmp_path / "b", device, log=quiet)
    assert resumed.step_index == 3 and resumed.cur_nimg == 12
    for _ in range(3):
        resumed.train_step()
    got = all_state(resumed)
    assert got.keys() == reference.keys()
    different = [k for k in reference if not torch.equal(got[k], reference[k])]
    assert not different, f"resumed training diverged in {different[:5]}"


def test_exported_network_loads_and_matches_the_average(tmp_path: Path) -> None:
    trainer = Trainer.create(tiny_config(), tiny_data(), tmp_path / "run", torch.device("cpu"), log=lambda m: None)
    for _ in range(2):
        trainer.train_step()
    path = trainer.export(tmp_path / "model.safetensors")
    G = load_generator(path)
    assert G.source_format == "vjgan" and G.img_resolution == 16 and G.config.channels == TINY
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(G(z, noise_mode="const"), trainer.G_ema(z, noise_mode="const"), rtol=0, atol=1e-6)
    assert path.stat().st_mode & 0o044  # readable by others, like any model file


def test_run_stops_on_kimg_and_time_budget_and_writes_pictures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    trainer = Trainer.create(tiny_config(), tiny_data(), out, torch.device("cpu"), log=lambda m: None)
    result = trainer.run(kimg=0.012, log_seconds=0, handle_signals=False)
    assert result.reason == "kimg" and result.cur_nimg == 12 and result.step == 3
    for name in (SNAPSHOT_NAME, "network.safetensors", "grid-000000.png", "interp-000000.png", "reals.png", "log.jsonl"):
        assert (out / name).is_file(), name
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["kimg"] == pytest.approx(0.012) and "kimg_per_s" in lines[-1]
    # A time budget, on a fake clock where each minibatch takes 1 s: with 6 s and 0.6 s kept for
    # the final snapshot, five more minibatches fit (the sixth would end past the margin).
    class Clock:
        now = 1000.0

        def monotonic(self) -> float:
            return self.now

    clock = Clock()
    monkeypatch.setattr(trainer_module, "time", clock)
    real_step = trainer.train_step

    def one_second_step():
        stats = real_step()
        clock.now += 1.0
        return stats

    trainer.train_step = one_second_step
    result = trainer.run(kimg=1000.0, minutes=0.1, handle_signals=False, log_seconds=1e9)
    assert result.reason == "minutes" and result.step == 3 + 5 and result.seconds <= 6.0
    assert load_snapshot(out / SNAPSHOT_NAME)["step"] == result.step


def test_stop_request_from_another_thread_ends_after_a_minibatch(tmp_path: Path) -> None:
    trainer = Trainer.create(tiny_config(), tiny_data(), tmp_path / "run", torch.device("cpu"), log=lambda m: None)
    original = trainer.train_step

    def step_then_stop():
        stats = original()
        trainer.request_stop()  # as the SIGINT handler does
        return stats

    trainer.train_step = step_then_stop
    result = trainer.run(kimg=10, handle_signals=False)
    assert result.reason == "interrupted" and result.step == 1
    assert load_snapshot(tmp_path / "run" / SNAPSHOT_NAME)["step"] == 1


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vjgan")
    add_train_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["train", *argv])


def test_cli_trains_on_a_folder_then_resumes(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "art"
    folder.mkdir()
    for i in range(6):
        Image.new("RGB", (40 + 8 * i, 30), (40 * i, 255 - 40 * i, 128)).save(folder / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "run"
    logs: list[str] = []
    common = ["--res", "16", "--batch", "4", "--channels", "4:32,8:32,16:16", "--z-dim", "32", "--w-dim", "32",
              "--mapping-layers", "2", "--log-seconds", "0", "--device", "cpu"]
    args = parse(str(folder), "--out", str(out), "--kimg", "0.008", *common)
    assert args.handler(args, log=logs.append) == 0
    assert any("broken.jpg" in line for line in logs), logs
    assert load_snapshot(out / SNAPSHOT_NAME)["cur_nimg"] == 8
    # The same folder again without --resume would overwrite a run: refused.
    with pytest.raises(UserError, match="--resume"):
        args = parse(str(folder), "--out", str(out), *common)
        args.handler(args, log=logs.append)
    args = parse(str(folder), "--out", str(out), "--resume", "--kimg", "0.016", "--batch", "8", "--log-seconds", "0")
    assert args.handler(args, log=logs.append) == 0
    assert any("--batch ignored" in line for line in logs)
    state = load_snapshot(out / SNAPSHOT_NAME)
    assert state["cur_nimg"] == 16 and state["config"]["batch"] == 4
    assert load_generator(out / "network.safetensors").img_resolution == 16


@pytest.mark.parametrize("argv, message", [
    (["/no/such/folder", "--out", "X"], "does not exist"),
    (["procedural:1", "--out", "X"], "procedural:SEED:COUNT"),
    (["procedural:1:4", "--out", "X", "--res", "48"], "power of two"),
    (["procedural:1:4", "--out", "X", "--augment", "zoom"], "zoom"),
    (["procedural:1:4", "--out", "X", "--channels", "4:8"], "8x8"),
    (["procedural:1:4", "--out", "X", "--kimg", "0"], "--kimg"),
])
def test_cli_bad_input_is_one_clear_error(argv: list[str], message: str, tmp_path: Path) -> None:
    argv = [a.replace("X", str(tmp_path / "out")) for a in argv]
    args = parse(*argv, "--device", "cpu")
    with pytest.raises(UserError, match=message):
        args.handler(args, log=lambda m: None)


def test_resume_without_a_snapshot_is_refused(tmp_path: Path) -> None:
    args = parse("procedural:1:4", "--out", str(tmp_path), "--resume")
    with pytest.raises(UserError, match="no training snapshot"):
        args.handler(args, log=lambda m: None)
    (tmp_path / SNAPSHOT_NAME).write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read training snapshot"):
        args.handler(args, log=lambda m: None)


def test_procedural_data_renders_in_memory() -> None:
    data = open_training_data("procedural:3:5:marble+cells", 16, torch.device("cpu"), log=lambda m: None)
    assert len(data) == 5 and data.images.dtype == torch.uint8 and data.images.shape == (5, 3, 16, 16)
    assert data.images.float().std() > 5  # not blank


def test_epoch_sampler_visits_every_image_once_per_pass_and_restores() -> None:
    s = EpochSampler(10, seed=1, mirror=True)
    idx, flip = s.next(10)
    assert sorted(idx.tolist()) == list(range(10)) and flip.dtype == torch.bool
    s.next(3)
    state = s.state_dict()
    ahead = [s.next(4) for _ in range(4)]
    t = EpochSampler(10, seed=99, mirror=True)
    t.load_state_dict(state)
    again = [t.next(4) for _ in range(4)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(ahead, again))


def test_discriminator_shapes_and_minibatch_stddev() -> None:
    cfg = DiscriminatorConfig(img_resolution=32, channels={4: 16, 8: 16, 16: 8, 32: 8}, mbstd_group=4)
    D = Discriminator(cfg)
    for n in (4, 6, 5):  # groups: 4, 2 (gcd), 1
        assert D(torch.randn(n, 3, 32, 32)).shape == (n, 1)
    x = torch.randn(8, 4, 4, 4)
    y = minibatch_stddev(x, 4, 1)
    assert y.shape == (8, 5, 4, 4)
    # Samples i and i+2 (of 8, groups of 4) share a group statistic, which is the mean std over the group.
    groups = x.reshape(4, 2, 4, 4, 4)
    expected = (groups.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=[1, 2, 3])
    torch.testing.assert_close(y[:2, 4, 0, 0], expected)
    torch.testing.assert_close(y[2:4, 4, 0, 0], expected)
    # Down-sampling blocks halve the size exactly; the residual sum keeps the scale moderate.
    with torch.no_grad():
        h = D.b32(torch.randn(2, 3, 32, 32), torch.float32, False)
    assert h.shape == (2, 8, 16, 16) and 0.2 < float(h.std()) < 5


def test_augmentations_keep_shape_and_gradients() -> None:
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    y = aug.augment(x, aug.parse_policy("color,translation,cutout"))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert aug.parse_policy("none") == () and aug.parse_policy("") == ()
    with pytest.raises(ValueError):
        aug.parse_policy("color,zoom")


def test_translation_shifts_content_and_fills_with_zeros() -> None:
    torch.manual_seed(0)
    img = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8).repeat(32, 1, 1, 1) + 1
    out = aug._translation(img, ratio=0.25)
    for k in range(32):
        o = out[k, 0]
        nz = o.nonzero()
        (r0, c0), (r1, c1) = nz.min(0).values.tolist(), nz.max(0).values.tolist()
        # The non-zero part is an exact shifted copy of the image.
        dy, dx = int(o[r0, c0].item() - 1) // 8 - r0, int(o[r0, c0].item() - 1) % 8 - c0
        assert abs(dy) <= 2 and abs(dx) <= 2
        assert torch.equal(o[r0 : r1 + 1, c0 : c1 + 1], img[0, 0, r0 + dy : r1 + 1 + dy, c0 + dx : c1 + 1 + dx])
        assert int((o == 0).sum()) == 64 - (r1 - r0 + 1) * (c1 - c0 + 1)


def test_cutout_zeroes_a_square_of_half_the_size() -> None:
    torch.manual_seed(1)
    out = aug._cutout(torch.ones(16, 1, 8, 8))
    zeros = (out == 0).sum(dim=[1, 2, 3])
    assert (zeros <= 16).all() and (zeros >= 4).all() and (zeros == 16).any()  # 4x4, less where it overhangs


def test_default_architecture_fits_the_budget() -> None:
    chans = vj_channels(128)
    assert chans == {4: 256, 8: 256, 16: 192, 32: 128, 64: 64, 128: 32}
    G = Generator(TrainConfig(resolution=128).generator_config())
    stored = sum(v.numel() for v in G.state_dict().values())
    assert stored * 4 < 16 * 2**20  # the exported model fits in 16 MiB


def test_gpu_session_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    """The one-shot GPU command, shrunk: renders, trains, and leaves the files to bring back."""
    from vjgan.train import gpu_session

    out, run = tmp_path / "out", tmp_path / "run"
    code = gpu_session.main(["--out", str(out), "--run-dir", str(run), "--minutes", "2", "--kimg", "0.008",
                             "--count", "8", "--res", "8", "--batch", "4", "--device", "cpu", "--snapshot-minutes", "100"])
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {"default.safetensors", "grid.png", "interp.png", "reals.png", "log.txt", "stats.jsonl", "snapshot.pt", "speed.json"} <= names
    assert len(names) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir())
    G = load_generator(out / "default.safetensors")
    assert G.img_resolution == 8 and G.config.channels == vj_channels(8)
    state = load_snapshot(out / "snapshot.pt")
    assert state["cur_nimg"] == 8 and state["data"]["spec"] == "procedural:1:8"
    log = (out / "log.txt").read_text()
    assert "dataset ready: 8 images" in log and "reached the kimg target" in log
    # Where safetensors is missing, the weights are kept as a torch file and converted later.
    trainer = Trainer.resume(run / SNAPSHOT_NAME, open_training_data("procedural:1:8", 8, torch.device("cpu"), log=lambda m: None),
                             run, torch.device("cpu"), log=lambda m: None)
    gpu_session.save_state_fallback(trainer, tmp_path / "state.pt")
    assert gpu_session.main(["--convert", str(tmp_path / "state.pt"), str(tmp_path / "conv.safetensors")]) == 0
    a, b = load_generator(tmp_path / "conv.safetensors"), load_generator(out / "default.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
