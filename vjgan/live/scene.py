"""A scene: one model prepared for the device, its latent statistics, and a latent engine for a preset.

Building one takes seconds (loading, sampling W for the directions, capturing CUDA graphs), so
the show builds the next scene in a background thread and swaps it in when it is ready.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import UserError
from ..gan.fast import FastSynthesis, choose_precision
from ..gan.load import load_generator
from ..gan.networks import Generator
from ..motion.directions import LatentSpace, load_or_compute
from ..motion.latent_files import resolve_latents
from ..motion.latents import LatentEngine
from ..motion.config import MotionConfig


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA where present, Apple's MPS next, the CPU otherwise (or what the user asked for)."""
    if requested:
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU")
        if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise UserError("--device mps asked for, but this PyTorch has no MPS support here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class GeneratorBackend:
    """w+ and noise gains in, a uint8 RGBA frame (numpy, host memory) out, at a chosen exit point."""

    def __init__(self, G: Generator, device: torch.device) -> None:
        self.device = device
        G = G.to(device)
        if device.type == "cuda":
            self.fast, self.accuracy = choose_precision(G, device)
            for r in self.fast.exit_resolutions():
                if r >= 32:
                    self.fast.capture(r)  # capture every exit point up front: no hitch when stepping
        else:
            self.fast, self.accuracy = FastSynthesis(G, device, "fp32"), []
        self.levels = [r for r in reversed(self.fast.exit_resolutions())]  # full resolution first
        self.num_layers = self.fast.num_layers
        self._host: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def frame(self, ws: np.ndarray, noise_gains: np.ndarray, exit_resolution: int) -> np.ndarray:
        self.fast.set_noise_gains(torch.from_numpy(np.ascontiguousarray(noise_gains, dtype=np.float32)))
        w = torch.from_numpy(np.ascontiguousarray(ws, dtype=np.float32))[None].to(self.device, non_blocking=True)
        pixels = self.fast.frame(w, exit_resolution=exit_resolution)
        if self.device.type == "cpu":
            return pixels.numpy()
        host = self._host.get(exit_resolution)
        if host is None:
            host = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=self.device.type == "cuda")
            self._host[exit_resolution] = host
        host.copy_(pixels)  # synchronous: the graph's output is reused by the next frame
        return host.numpy().copy()

    def set_noise_mode(self, mode: str) -> None:
        self.fast.set_noise_mode(mode)


@dataclass
class Scene:
    name: str
    model_path: str
    G: Generator
    backend: GeneratorBackend
    space: LatentSpace
    engine: LatentEngine
    built_in_s: float


def build_scene(model: str | Path | Generator, motion: MotionConfig, device: torch.device, name: str = "",
                preset_folder: Path | None = None, log: Callable[[str], None] = lambda s: None) -> Scene:
    """Load (or take) a generator, prepare it for `device`, and make a latent engine for `motion`."""
    t0 = time.perf_counter()
    if isinstance(model, Generator):
        G, model_path = model, "<in memory>"
    else:
        G, model_path = load_generator(model), str(model)
        log(f"model {model_path}: {G.img_resolution}x{G.img_resolution}, {G.num_ws} ws")
    space = load_or_compute(G)
    latents = resolve_latents(G, motion, preset_folder)
    backend = GeneratorBackend(G, device)
    engine = LatentEngine(space, latents.keyframes, G.num_ws, backend.num_layers, motion, latents.directions)
    return Scene(name or Path(model_path).stem, model_path, G, backend, space, engine, time.perf_counter() - t0)


class SceneBuilder:
    """Builds a scene on a background thread; the worker polls `ready()` and swaps when it is done."""

    def __init__(self, build: Callable[[], Scene], on_error: Callable[[str], None]) -> None:
        self._result: Scene | None = None
        self._done = threading.Event()
        self._on_error = on_error

        def run() -> None:
            try:
                self._result = build()
            except UserError as e:
                on_error(str(e))
            except torch.cuda.OutOfMemoryError:
                on_error("not enough GPU memory to load the next model; the current one keeps playing")
            except Exception as e:  # the show goes on whatever the new scene did
                on_error(f"could not prepare the next scene: {type(e).__name__}: {e}")
            finally:
                self._done.set()

        self._thread = threading.Thread(target=run, name="vjgan-scene-builder", daemon=True)
        self._thread.start()

    def ready(self) -> bool:
        return self._done.is_set()

    def result(self) -> Scene | None:
        return self._result

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
