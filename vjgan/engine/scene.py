"""A scene: one model prepared for a device, its latent statistics, and a preset's motion.

`build_scene` is the one assembly of the engine, for the live show and for `vjgan render`:
load the model, get its latent space (cached per model), make the keyframes, wrap the generator
for the device, make the latent engine and the driver that glides the knobs into it. Building
takes seconds (loading, sampling W, capturing CUDA graphs), so the show builds the next scene on a
background thread; `cancelled()` is asked between the stages, and a newer request makes an older
build stop at its next stage (`BuildCancelled`) instead of finishing a scene nobody will play.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional

import torch

from ..config import Preset
from ..gan.load import load_generator
from ..gan.networks import Generator
from ..motion.directions import LatentSpace, load_or_compute
from ..motion.latent_files import PromptResolver, ResolvedLatents, resolve_latents
from ..motion.latents import LatentEngine, MotionFrame
from ..motion.params import ParamSmoother, ParamStore
from .synth import Synthesizer


class BuildCancelled(Exception):
    """A newer scene was asked for while this one was being built."""


@dataclass
class Scene:
    name: str
    preset: Preset
    model_path: str
    G: Generator
    synth: Synthesizer
    space: LatentSpace
    engine: LatentEngine
    built_in_s: float

    @property
    def levels(self) -> list[int]:
        return self.synth.levels


def model_path_for(preset: Preset, override: str | Path | None = None) -> Path:
    """The model a scene plays: the one named on the command line, else the preset's."""
    return Path(override).expanduser() if override else preset.model_path()


def build_scene(model: str | Path | Generator, preset: Preset, device: torch.device, *,
                seed: Optional[int] = None, live: bool = True, latents: Optional[ResolvedLatents] = None,
                prompts: Optional[PromptResolver] = None, cancelled: Callable[[], bool] = lambda: False,
                log: Callable[[str], None] = lambda s: None) -> Scene:
    """Assemble the engine for `preset` playing `model` on `device` (see the module's text).

    `seed` replaces the preset's motion seed (render --seed); `live` captures every exit point for
    the frame budget up front, where render only needs full frames; `latents`: the preset's
    keyframes and named directions when the caller has read them already (render checks them
    before it starts); `prompts`: how text-prompt keyframes become latents (CLIP, when given)."""

    def stage() -> None:
        if cancelled():
            raise BuildCancelled()

    t0 = time.perf_counter()
    if isinstance(model, Generator):
        G, model_path = model, "<in memory>"
    else:
        G, model_path = load_generator(model), str(model)
        log(f"model {model_path}: {G.img_resolution}x{G.img_resolution}, {G.num_ws} ws")
    stage()
    space = load_or_compute(G)
    stage()
    if latents is None:  # seeds through the mapping network, keyframe and direction files beside the preset
        latents = resolve_latents(G, preset.motion, preset.path.parent if preset.path is not None else None, prompts)
    stage()
    synth = Synthesizer(G, device, live=live, cancelled=cancelled, log=log)
    stage()
    motion = preset.motion if seed is None else dataclasses.replace(preset.motion, seed=seed)
    engine = LatentEngine(space, latents.keyframes, G.num_ws, synth.num_layers, motion, latents.directions,
                          transformable=synth.has_transform)
    return Scene(preset.name or Path(model_path).stem, preset, model_path, G, synth, space, engine,
                 time.perf_counter() - t0)


class MotionDriver:
    """The knobs glided (each parameter with its own time constant), then the latent engine stepped.

    Live, `params` is the show's store (every input moves it through the command path); in a
    render it is the driver's own, set from the preset. Frames come in order, none skipped; the
    driver is owned by one thread.
    """

    def __init__(self, engine: LatentEngine, params: ParamStore, smoothing: Optional[ParamSmoother] = None) -> None:
        self.engine = engine
        self.params = params
        self._smoother = smoothing or ParamSmoother()
        self._last_t: Optional[float] = None
        self._dt = 0.0
        self.values: Mapping[str, float] = {}
        self.unused: list[str] = []  # preset values the engine has no knob for (render reports them)

    @classmethod
    def for_render(cls, engine: LatentEngine, overrides: Mapping[str, float] | None = None) -> "MotionDriver":
        """A driver with its own store, set from a preset's [params] (values for other parts of the
        show, such as display or MIDI, are not the engine's business and are left out)."""
        store = ParamStore(engine.param_specs())
        known = set(store.names())
        values = {k: v for k, v in (overrides or {}).items() if k in known}
        if values:
            store.set_many(values)
        driver = cls(engine, store)
        driver.unused = sorted(k for k in (overrides or {}) if k not in known)
        return driver

    def glide(self, t: float) -> Mapping[str, float]:
        """Advance the knobs' glide to time `t` and return the smoothed values."""
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        self.values = self._smoother.step(self.params.snapshot(), self.params.spec_map(), dt)
        self._dt = dt
        return self.values

    def step(self, t: float, features, onset_times: Mapping[str, float] | None = None) -> MotionFrame:
        """The motion for the frame shown at time `t`: glide the knobs, then step the engine."""
        values = self.glide(t)
        return self.engine.step(t, self._dt, features, values, onset_times)

    def carry_over(self) -> ParamSmoother:
        """The glide state, for the next scene's driver: a scene change never makes a knob jump."""
        return ParamSmoother(dict(self._smoother.values))
