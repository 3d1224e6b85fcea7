"""vjgan's StyleGAN2 trainer.

The recipe is StyleGAN2's (Karras et al. 2020) with the small-resolution settings of
StyleGAN2-ADA: Adam (lr 0.0025, betas (0, 0.99)), the non-saturating logistic loss, R1 on real
images applied lazily every 16 minibatches (scaled by 16, with Adam's lr and betas adjusted for
the extra steps), an exponential moving average of the generator (the network that is kept),
style mixing, x-flips, and optionally DiffAugment for small datasets. On CUDA the highest four
resolutions of both networks run in half precision with activations clamped to ±256.

A snapshot holds everything training needs to continue exactly: both networks, the average,
both optimisers, every random generator, the data order and the counters; it is a plain
`torch.save` file of tensors and numbers, read back with `weights_only=True`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from ..atomic import atomic_output
from ..dataset.png import tile, to_uint8, write_png
from ..errors import UserError
from ..gan.networks import Generator, GeneratorConfig
from . import augment as aug
from .data import EpochSampler, TrainingData
from .discriminator import Discriminator, DiscriminatorConfig

SNAPSHOT_FORMAT = "vjgan-train-snapshot"
SNAPSHOT_VERSION = 1
SNAPSHOT_NAME = "snapshot.pt"
NETWORK_NAME = "network.safetensors"


def vj_channels(res: int) -> dict[int, int]:
    """The real-time architecture: 32 feature maps at the top, doubling per halving of the
    resolution up to 256, with the 16² level held to 192 from 128² up (keeps the model under 16 MiB).
    At 128² that is about 0.9 GMAC per frame (about 30 fps fp32 on two x86 cores)."""
    chans = {}
    for r in [2**i for i in range(2, int(math.log2(res)) + 1)]:
        chans[r] = min(32 * res // r, 256)
    if res >= 128:
        chans[16] = min(chans[16], 192)
    return chans


def large_channels(res: int) -> dict[int, int]:
    """StyleGAN2-ADA's size for small resolutions (channel_base 16384, at most 512): for GPU playback only."""
    return {2**i: min(16384 // 2**i, 512) for i in range(2, int(math.log2(res)) + 1)}


ARCHITECTURES: dict[str, Callable[[int], dict[int, int]]] = {"vj": vj_channels, "large": large_channels}


def parse_channels(text: str, res: int) -> dict[int, int]:
    """'4:256,8:256,...' (every resolution 4 .. res) → dict."""
    chans: dict[int, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            r, c = (int(v) for v in part.split(":"))
        except ValueError:
            raise UserError(f"--channels wants RES:CHANNELS pairs such as 4:256,8:256, got {part.strip()!r}") from None
        if c < 1:
            raise UserError(f"--channels: {r}x{r} needs at least one feature map")
        chans[r] = c
    needed = [2**i for i in range(2, int(math.log2(res)) + 1)]
    missing = [r for r in needed if r not in chans]
    if missing:
        raise UserError(f"--channels has no entry for {', '.join(f'{r}x{r}' for r in missing)}")
    return {r: chans[r] for r in needed}


@dataclass
class TrainConfig:
    """What a run is; fixed when it starts and stored in every snapshot."""

    resolution: int = 128
    batch: int = 32
    seed: int = 0
    architecture: str = "vj"
    g_channels: dict[int, int] | None = None  # None: from `architecture`
    d_channels: dict[int, int] | None = None  # None: the generator's
    z_dim: int = 256
    w_dim: int = 256
    mapping_layers: int = 4
    lr_g: float = 0.0025
    lr_d: float = 0.0025
    beta2: float = 0.99
    gamma: float | None = None  # R1 weight; None: 0.0002 · res² / batch
    r1_interval: int = 16
    ema_kimg: float | None = None  # EMA half-life; None: 10 · batch / 32
    ema_rampup: float | None = 0.05  # the half-life is at most this fraction of the images seen
    style_mixing: float = 0.9
    mirror: bool = True
    augment: str = ""  # DiffAugment policy: '', or any of color,translation,cutout
    mbstd_group: int = 4
    fp16: bool = True  # half precision in the top resolutions (CUDA only)
    channels_last: bool = True  # channels-last memory layout in those layers (CUDA only)

    def __post_init__(self) -> None:
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise UserError(f"--res must be a power of two ≥ 8, got {self.resolution}")
        if self.batch < 2:
            raise UserError("--batch must be at least 2 (the discriminator compares samples within a batch)")
        if self.architecture not in ARCHITECTURES:
            raise UserError(f"unknown architecture {self.architecture!r}; choose from {', '.join(ARCHITECTURES)}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name} must be positive")
        if self.gamma is not None and self.gamma < 0:
            raise UserError("--gamma must be ≥ 0")
        if self.r1_interval < 1:
            raise UserError("the R1 interval must be ≥ 1")
        if not 0 <= self.style_mixing <= 1:
            raise UserError("--style-mixing must be between 0 and 1")
        try:
            aug.parse_policy(self.augment)
        except ValueError as e:
            raise UserError(f"--augment: {e}") from None
        for name in ("g_channels", "d_channels"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, {int(k): int(v) for k, v in value.items()})

    @property
    def r1_gamma(self) -> float:
        return self.gamma if self.gamma is not None else 0.0002 * self.resolution**2 / self.batch

    @property
    def ema_half_life_kimg(self) -> float:
        return self.ema_kimg if self.ema_kimg is not None else 10.0 * self.batch / 32

    def generator_config(self) -> GeneratorConfig:
        chans = self.g_channels or ARCHITECTURES[self.architecture](self.resolution)
        return GeneratorConfig(z_dim=self.z_dim, w_dim=self.w_dim, img_resolution=self.resolution, channels=chans,
                               mapping_layers=self.mapping_layers, conv_clamp=256.0, num_fp16_res=4)

    def discriminator_config(self) -> DiscriminatorConfig:
        chans = self.d_channels or self.g_channels or ARCHITECTURES[self.architecture](self.resolution)
        return DiscriminatorConfig(img_resolution=self.resolution, channels=chans, mbstd_group=self.mbstd_group,
                                   conv_clamp=256.0, num_fp16_res=4)

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in ("g_channels", "d_channels"):
            if d[name] is not None:
                d[name] = {str(k): v for k, v in d[name].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class RunResult:
    reason: str  # 'kimg' (target reached), 'minutes' (time budget), 'interrupted'
    cur_nimg: int
    step: int
    seconds: float
    snapshot: Path | None
    network: Path | None


def _atomic_torch_save(obj: object, path: Path) -> None:
    with atomic_output(path, make_folder=True) as f:
        torch.save(obj, f)


def _format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def save_network(G: Generator, path: Path, metadata: dict[str, str]) -> Path:
    """Write the generator in vjgan's own format (one .safetensors file, atomic)."""
    from ..gan.own_format import save_generator

    return save_generator(G, path, metadata)


class Trainer:
    """One training run in `out_dir`. Build with `Trainer.create` or `Trainer.resume`."""

    def __init__(self, cfg: TrainConfig, data: TrainingData, out_dir: str | os.PathLike[str], device: torch.device,
                 log: Callable[[str], None] = print) -> None:
        if data.resolution != cfg.resolution:
            raise ValueError("the data's resolution differs from the run's")
        if len(data) < 1:
            raise UserError("no training images")
        self.cfg, self.data, self.device, self.log = cfg, data, device, log
        self.out_dir = Path(out_dir)
        self.cuda = device.type == "cuda"
        self.use_fp16 = cfg.fp16 and self.cuda
        self.channels_last = cfg.channels_last and self.cuda
        self.policy = aug.parse_policy(cfg.augment)
        self.g_cfg = cfg.generator_config()
        self.d_cfg = cfg.discriminator_config()
        torch.manual_seed(cfg.seed)  # initial weights; the snapshot restores the RNG later
        self.G = Generator(self.g_cfg).to(device).train()
        self.D = Discriminator(self.d_cfg).to(device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        opt_kw = {"fused": True} if self.cuda else {}
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(0.0, cfg.beta2), eps=1e-8, **opt_kw)
        # Lazy regularisation adds one D step every r1_interval: scale lr and β so the overall
        # dynamics match applying R1 every step (StyleGAN2, appendix C).
        ratio = cfg.r1_interval / (cfg.r1_interval + 1)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d * ratio, betas=(0.0, cfg.beta2**ratio), eps=1e-8, **opt_kw)
        self.sampler = EpochSampler(len(data), cfg.seed, cfg.mirror)
        self.cur_nimg = 0
        self.step_index = 0
        self.train_seconds = 0.0  # accumulated over all pieces of the run
        self.kimg_target: float | None = None
        self.on_checkpoint: Callable[["Trainer"], None] | None = None  # called after each checkpoint
        self.last_stats: dict[str, float] = {}
        self._stop = threading.Event()
        grid_gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1_000_003)
        self.grid_z = torch.randn(32, cfg.z_dim, generator=grid_gen)
        self.interp_z = torch.randn(6, cfg.z_dim, generator=grid_gen)
        torch.manual_seed(cfg.seed + 1)  # the training stream proper

    # ------------------------------------------------------------------------------ creation

    @classmethod
    def create(cls, cfg: TrainConfig, data: TrainingData, out_dir: str | os.PathLike[str], device: torch.device,
               log: Callable[[str], None] = print) -> "Trainer":
        out = Path(out_dir)
        if (out / SNAPSHOT_NAME).exists():
            raise UserError(f"{out} already holds a training run ({SNAPSHOT_NAME}); pass --resume to continue it, or choose another --out")
        trainer = cls(cfg, data, out, device, log)
        out.mkdir(parents=True, exist_ok=True)
        (out / "training.json").write_text(json.dumps(trainer.describe(), indent=2) + "\n")
        return trainer

    @classmethod
    def resume(cls, snapshot: str | os.PathLike[str], data: TrainingData, out_dir: str | os.PathLike[str],
               device: torch.device, log: Callable[[str], None] = print) -> "Trainer":
        state = load_snapshot(snapshot)
        cfg = TrainConfig.from_dict(state["config"])
        if data.resolution != cfg.resolution:
            raise UserError(f"the run trains at {cfg.resolution}x{cfg.resolution}, but the data was opened at {data.resolution}")
        trainer = cls(cfg, data, out_dir, device, log)
        trainer.load_state_dict(state)
        if state.get("data", {}).get("spec") not in (None, data.spec) or int(state.get("data", {}).get("count", len(data))) != len(data):
            log(f"note: the run was trained on {state['data'].get('spec')} ({state['data'].get('count')} images); it continues on {data.spec} ({len(data)} images)")
        return trainer

    def describe(self) -> dict:
        return {
            "config": self.cfg.to_dict(),
            "generator": json.loads(self.g_cfg.to_json()),
            "discriminator": json.loads(self.d_cfg.to_json()),
            "generator_parameters": self.G.parameter_count(),
            "discriminator_parameters": self.D.parameter_count(),
            "r1_gamma": self.cfg.r1_gamma,
            "ema_half_life_kimg": self.cfg.ema_half_life_kimg,
            "data": {"spec": self.data.spec, "count": len(self.data), "resolution": self.data.resolution},
            "device": str(self.device),
            "fp16": self.use_fp16,
            "torch": torch.__version__,
        }

    # ------------------------------------------------------------------------------ state

    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state()}
        if self.cuda:
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "config": self.cfg.to_dict(),
            "generator_config": self.g_cfg.to_json(),
            "discriminator_config": self.d_cfg.to_json(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": rng,
            "cur_nimg": self.cur_nimg,
            "step": self.step_index,
            "train_seconds": self.train_seconds,
            "kimg_target": self.kimg_target,
            "data": {"spec": self.data.spec, "count": len(self.data), "resolution": self.data.resolution},
            "stats": dict(self.last_stats),
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("generator_config") != self.g_cfg.to_json():
            raise UserError("the snapshot's generator does not match its own recorded config")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.sampler.load_state_dict(state["sampler"])
        self.cur_nimg = int(state["cur_nimg"])
        self.step_index = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.kimg_target = state.get("kimg_target")
        self.last_stats = dict(state.get("stats", {}))
        torch.set_rng_state(state["rng"]["torch"])
        if self.cuda and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)

    def save_snapshot(self, path: str | os.PathLike[str] | None = None) -> Path:
        path = Path(path) if path is not None else self.out_dir / SNAPSHOT_NAME
        _atomic_torch_save(self.state_dict(), path)
        return path

    # ------------------------------------------------------------------------------ training

    def _generate(self, z: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        G = self.G
        ws = G.mapping(z, update_emas=update_emas)
        if self.cfg.style_mixing > 0:
            # Style mixing: from a random layer on, take the styles of a second latent, so that
            # neighbouring layers' styles are not assumed to be correlated.
            num_ws = ws.shape[1]
            cutoff = torch.randint(1, num_ws, (), device=z.device)
            cutoff = torch.where(torch.rand((), device=z.device) < self.cfg.style_mixing, cutoff, torch.full_like(cutoff, num_ws))
            ws2 = G.mapping(torch.randn_like(z))
            mix = (torch.arange(num_ws, device=z.device) >= cutoff)[None, :, None]
            ws = torch.where(mix, ws2, ws)
        return G.synthesis(ws, noise_mode="random", use_fp16=self.use_fp16)

    def _discriminate(self, img: torch.Tensor) -> torch.Tensor:
        if self.policy:
            img = aug.augment(img, self.policy)
        return self.D(img, use_fp16=self.use_fp16, channels_last=self.channels_last)

    def _real_batch(self) -> torch.Tensor:
        idx, flip = self.sampler.next(self.cfg.batch)
        imgs = self.data.batch(idx).to(self.device, non_blocking=True)
        imgs = imgs.float() / 127.5 - 1.0
        flip = flip.to(self.device, non_blocking=True)[:, None, None, None]
        return torch.where(flip, imgs.flip(3), imgs)

    @staticmethod
    def _sanitize(module: torch.nn.Module) -> None:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        for g in grads:
            torch.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5, out=g)

    def train_step(self) -> dict[str, torch.Tensor]:
        """One minibatch: generator step, discriminator step, and every r1_interval an R1 step."""
        cfg, B = self.cfg, self.cfg.batch
        stats: dict[str, torch.Tensor] = {}

        # Generator: non-saturating logistic loss, softplus(−D(G(z))).
        self.D.requires_grad_(False)
        z = torch.randn(B, cfg.z_dim, device=self.device)
        fake_logits = self._discriminate(self._generate(z))
        loss_G = F.softplus(-fake_logits).mean()
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self._sanitize(self.G)
        self.opt_G.step()
        self.D.requires_grad_(True)
        stats["loss_G"] = loss_G.detach()

        # Discriminator: softplus(D(G(z))) + softplus(−D(x)).
        with torch.no_grad():
            fake = self._generate(torch.randn(B, cfg.z_dim, device=self.device), update_emas=True)
        real = self._real_batch()
        fake_logits = self._discriminate(fake)
        real_logits = self._discriminate(real)
        loss_D = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self._sanitize(self.D)
        self.opt_D.step()
        stats["loss_D"] = loss_D.detach()
        stats["D_real"] = real_logits.detach().mean()
        stats["D_fake"] = fake_logits.detach().mean()

        # Lazy R1: γ/2 · ‖∇ₓD(x)‖² on reals, every r1_interval minibatches, scaled by the interval.
        if cfg.r1_gamma > 0 and self.step_index % cfg.r1_interval == 0:
            real_in = real.detach().requires_grad_(True)
            logits = self._discriminate(real_in)
            (grad,) = torch.autograd.grad(logits.sum(), real_in, create_graph=True)
            penalty = grad.float().square().sum(dim=[1, 2, 3])
            loss_R1 = (penalty * (cfg.r1_gamma / 2)).mean() * cfg.r1_interval
            self.opt_D.zero_grad(set_to_none=True)
            loss_R1.backward()
            self._sanitize(self.D)
            self.opt_D.step()
            stats["r1"] = penalty.detach().mean()

        self._update_ema()
        self.cur_nimg += B
        self.step_index += 1
        return stats

    @torch.no_grad()
    def _update_ema(self) -> None:
        half_life = self.cfg.ema_half_life_kimg * 1000
        if self.cfg.ema_rampup is not None:
            half_life = min(half_life, self.cur_nimg * self.cfg.ema_rampup)
        beta = 0.5 ** (self.cfg.batch / max(half_life, 1e-8))
        ema_p = list(self.G_ema.parameters())
        cur_p = [p.detach() for p in self.G.parameters()]
        torch._foreach_lerp_(ema_p, cur_p, 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # ------------------------------------------------------------------------------ pictures

    @torch.no_grad()
    def sample_grid(self, cols: int = 8, rows: int = 4) -> torch.Tensor:
        """uint8 [3, H, W]: G_ema's images of the run's fixed latents (ψ = 1, constant noise)."""
        z = self.grid_z[: cols * rows].to(self.device)
        imgs = torch.cat([self.G_ema(z[i : i + 16], noise_mode="const") for i in range(0, z.shape[0], 16)])
        return tile(to_uint8(imgs).cpu(), cols)

    @torch.no_grad()
    def interpolation_strip(self, frames: int = 10, rows: int = 3) -> torch.Tensor:
        """uint8 [3, H, W]: each row walks linearly in W between two fixed latents (what a live show does)."""
        G = self.G_ema
        out = []
        t = torch.linspace(0, 1, frames, device=self.device)[:, None, None]
        for r in range(rows):
            za, zb = self.interp_z[2 * r : 2 * r + 2].to(self.device)
            wa, wb = G.mapping(za[None]), G.mapping(zb[None])
            ws = wa + (wb - wa) * t  # [frames, num_ws, w_dim]
            out.append(G.synthesis(ws, noise_mode="const"))
        return tile(to_uint8(torch.cat(out)).cpu(), frames)

    @torch.no_grad()
    def real_grid(self, cols: int = 8, rows: int = 4) -> torch.Tensor:
        n = min(cols * rows, len(self.data))
        g = torch.Generator().manual_seed(self.cfg.seed + 7)
        idx = torch.randperm(len(self.data), generator=g)[:n]
        return tile(self.data.batch(idx).cpu(), cols)

    def write_pictures(self, tag: str | None = None) -> tuple[Path, Path]:
        tag = tag or f"{self.cur_nimg // 1000:06d}"
        grid = write_png(self.out_dir / f"grid-{tag}.png", self.sample_grid())
        strip = write_png(self.out_dir / f"interp-{tag}.png", self.interpolation_strip())
        return grid, strip

    def network_metadata(self) -> dict[str, str]:
        return {
            "trained_by": "vjgan train",
            "kimg": f"{self.cur_nimg / 1000:.1f}",
            "training_seconds": f"{self.train_seconds:.0f}",
            "training_data": self.data.spec,
            "training_config": json.dumps(self.cfg.to_dict(), sort_keys=True),
        }

    def export(self, path: str | os.PathLike[str] | None = None) -> Path:
        path = Path(path) if path is not None else self.out_dir / NETWORK_NAME
        G = copy.deepcopy(self.G_ema).to("cpu").float()
        return save_network(G, path, self.network_metadata())

    # ------------------------------------------------------------------------------ the loop

    def request_stop(self) -> None:
        """Stop cleanly after the current minibatch (safe from a signal handler or another thread)."""
        self._stop.set()

    def checkpoint(self) -> tuple[Path, Path | None]:
        """Snapshot, exported network, sample grid and interpolation strip; returns (snapshot, network)."""
        snap = self.save_snapshot()
        try:
            net = self.export()
        except ImportError as e:  # no safetensors here: the snapshot still holds the network
            net = None
            self.log(f"warning: cannot export the network ({e}); it is kept in {snap}")
        self.write_pictures()
        if self.on_checkpoint is not None:
            self.on_checkpoint(self)
        return snap, net

    def run(self, *, kimg: float, minutes: float | None = None, snapshot_kimg: float | None = None,
            snapshot_minutes: float | None = 10.0, log_seconds: float = 20.0,
            handle_signals: bool = True) -> RunResult:
        """Train until `kimg` thousand images in total have been shown, `minutes` of wall-clock time
        have passed in this call, or a stop is requested (SIGINT/SIGTERM); then checkpoint.

        The time budget is kept with a margin for the final checkpoint, so that a piece of work
        given ten minutes ends inside them.
        """
        target = int(round(kimg * 1000))
        self.kimg_target = float(kimg)
        t_start = time.monotonic()
        deadline = t_start + minutes * 60 if minutes is not None else None
        self._stop.clear()
        restore = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            def on_signal(signum, frame):  # noqa: ARG001
                self.log(f"signal {signum}: stopping after this minibatch and writing a snapshot")
                self.request_stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                restore[sig] = signal.signal(sig, on_signal)
        try:
            return self._loop(target, t_start, deadline, snapshot_kimg, snapshot_minutes, log_seconds)
        finally:
            for sig, handler in restore.items():
                signal.signal(sig, handler)

    def _loop(self, target: int, t_start: float, deadline: float | None, snapshot_kimg: float | None,
              snapshot_minutes: float | None, log_seconds: float) -> RunResult:
        cfg = self.cfg
        self.log(f"training {self.G.parameter_count() / 1e6:.2f}M-parameter generator, "
                 f"{self.D.parameter_count() / 1e6:.2f}M-parameter discriminator at {cfg.resolution}x{cfg.resolution}, "
                 f"batch {cfg.batch}, on {self.device}{' with fp16' if self.use_fp16 else ''}; "
                 f"from {self.cur_nimg / 1000:.1f} to {target / 1000:.1f} kimg")
        if self.cur_nimg == 0 and not (self.out_dir / "reals.png").exists():
            write_png(self.out_dir / "reals.png", self.real_grid())
        # Seconds kept for the final checkpoint, refined once one has been timed.
        checkpoint_cost = 5.0 if deadline is None else min(5.0, 0.1 * (deadline - t_start))
        step_cost = 0.0
        last_ckpt_time = time.monotonic()
        last_ckpt_nimg = self.cur_nimg
        last_log_time, last_log_nimg = time.monotonic(), self.cur_nimg
        window: list[dict[str, torch.Tensor]] = []
        reason = "kimg"
        snapshot = network = None
        while True:
            if self.cur_nimg >= target:
                reason = "kimg"
                break
            if self._stop.is_set():
                reason = "interrupted"
                break
            now = time.monotonic()
            if deadline is not None and now + step_cost + checkpoint_cost > deadline:
                reason = "minutes"
                break
            t0 = time.monotonic()
            stats = self.train_step()
            window.append(stats)
            if self.cuda and self.step_index <= 3:
                torch.cuda.synchronize(self.device)
            dt = time.monotonic() - t0
            self.train_seconds += dt
            step_cost = dt if step_cost == 0 else 0.9 * step_cost + 0.1 * dt
            now = time.monotonic()
            if now - last_log_time >= log_seconds or self.step_index == 1 or self.cur_nimg >= target:
                self._report(window, now - last_log_time, self.cur_nimg - last_log_nimg, target, deadline, now)
                window = []
                last_log_time, last_log_nimg = now, self.cur_nimg
            due = (snapshot_kimg is not None and self.cur_nimg - last_ckpt_nimg >= snapshot_kimg * 1000) or \
                  (snapshot_minutes is not None and now - last_ckpt_time >= snapshot_minutes * 60)
            if due and self.cur_nimg < target:
                c0 = time.monotonic()
                snapshot, network = self.checkpoint()
                checkpoint_cost = max(checkpoint_cost, 1.5 * (time.monotonic() - c0))
                self.log(f"snapshot at {self.cur_nimg / 1000:.1f} kimg: {snapshot} ({time.monotonic() - c0:.1f}s)")
                last_ckpt_time, last_ckpt_nimg = time.monotonic(), self.cur_nimg
        if window:
            now = time.monotonic()
            self._report(window, now - last_log_time, self.cur_nimg - last_log_nimg, target, deadline, now)
        snapshot, network = self.checkpoint()
        elapsed = time.monotonic() - t_start
        why = {"kimg": "reached the kimg target", "minutes": "time budget used", "interrupted": "stopped on request"}[reason]
        self.log(f"{why} at {self.cur_nimg / 1000:.1f} kimg after {_format_duration(elapsed)}; "
                 f"snapshot {snapshot}, network {network}")
        return RunResult(reason, self.cur_nimg, self.step_index, elapsed, snapshot, network)

    def _report(self, window: list[dict[str, torch.Tensor]], seconds: float, nimg: int, target: int,
                deadline: float | None, now: float) -> None:
        means: dict[str, float] = {}
        for key in sorted({k for s in window for k in s}):
            vals = [s[key].float() for s in window if key in s]
            means[key] = float(torch.stack(vals).mean()) if vals else float("nan")
        self.last_stats = means
        rate = nimg / 1000 / max(seconds, 1e-9)  # kimg/s
        remaining = (target - self.cur_nimg) / 1000 / max(rate, 1e-9)
        eta = remaining if deadline is None else min(remaining, max(0.0, deadline - now))
        parts = [f"kimg {self.cur_nimg / 1000:8.1f}/{target / 1000:.1f}", f"step {self.step_index}",
                 f"{rate:.3g} kimg/s" + (f" ({rate * 1000:.2g} img/s)" if rate < 0.1 else ""), f"G {means.get('loss_G', float('nan')):.3f}", f"D {means.get('loss_D', float('nan')):.3f}"]
        if "r1" in means:
            parts.append(f"R1 {means['r1']:.4f}")
        parts.append(f"ETA {_format_duration(eta)}" + (" (time budget)" if deadline is not None and eta < remaining else ""))
        self.log(" | ".join(parts))
        finite = all(math.isfinite(v) for v in means.values())
        record = {"kimg": self.cur_nimg / 1000, "step": self.step_index, "kimg_per_s": rate,
                  "train_seconds": self.train_seconds, **means}
        with open(self.out_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if not finite:
            self.log("warning: a loss is not finite; the gradients are sanitised, but check the learning rate and --gamma")


def load_snapshot(path: str | os.PathLike[str]) -> dict:
    """Read a training snapshot (tensors and numbers only: no code can run)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no training snapshot at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is the same answer to the user
        raise UserError(f"cannot read training snapshot {path}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
    if not isinstance(state, dict) or state.get("format") != SNAPSHOT_FORMAT:
        raise UserError(f"{path} is not a vjgan training snapshot")
    if int(state.get("version", 0)) > SNAPSHOT_VERSION:
        raise UserError(f"{path} was written by a newer vjgan (snapshot version {state.get('version')})")
    return state
