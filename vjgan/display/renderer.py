"""The renderer: newest frame → texture → present → post effects → flash limiter → target.

It works on any moderngl context: the output window's (live), or a standalone EGL context
(`Renderer.offscreen`: tests, benchmarks, `vjgan render`). It never reads the wall clock: every
time it needs comes from `DisplayInputs.time`, so an offline render gives the same pictures every
run.

Passes per picture (each a full-target triangle; shaders in `shaders/`):

    present.frag      the two newest frames placed by fit/fill/stretch and cross-faded  → chain
    effect_*.frag     the preset's effects in order (ping-pong; feedback effects keep
                      their own previous output)                                        → chain
    luminance.frag    mean relative luminance on a 32×32 grid, read back (4 KB)
    output.frag       master × blackout, then the flash limiter's linear-light blend
                      toward the picture presented last time                            → presented
    blit.frag         presented → the target (the window), if one is given

Textures are allocated once: frames per size (`FrameTextures`), the chain and presented
textures per output size (again only when the output is resized).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import moderngl
import numpy as np

from ..errors import UserError
from .context import create_offscreen_context, release_offscreen_context
from .crossfade import crossfade_mix
from .effects import EffectConfig, EffectSpec, validate_effect_chain, EFFECTS
from .flash import FlashLimiter, FlashSafetyConfig
from .frame import Frame
from .geometry import place
from .inputs import MAX_LEVELS, DisplayInputs
from .interop import CudaGLInterop
from .settings import OutputSettings, RendererConfig
from .shaders import Pass
from .textures import FrameTextures

if TYPE_CHECKING:
    from ..handover import LatestSlot

log = logging.getLogger(__name__)

_CHAIN_DTYPE = "f2"  # half-float between passes: trails fade smoothly instead of sticking at 1/255


@dataclass(frozen=True, slots=True)
class RenderStats:
    """What one render did (for the HUD, latency measurement and tests)."""

    frame_index: int  # index of the newest frame on screen (-1 before the first)
    t_audio: float | None  # its ADC time: t_swap - t_audio is the sound-to-screen latency
    t_ready: float | None
    resolution: int  # its generator resolution (0 before the first frame)
    budget_step: int
    crossfade: float  # weight of the newest frame (1 = not fading)
    uploaded: bool  # a new frame was uploaded for this picture
    upload_ms: float  # CPU time spent handing the frame to GL
    luminance: float  # mean relative luminance presented
    flash_limited: bool  # the flash limiter held a change back
    output_size: tuple[int, int]
    t_swap: float | None = None  # set by OutputWindow.present: perf_counter after the buffer swap


@dataclass
class _Shown:
    frame: Frame
    texture: moderngl.Texture


class _EffectInstance:
    """One effect in the chain with its parameters (and its own history for feedback effects)."""

    def __init__(self, config: EffectConfig, program: Pass) -> None:
        self.config = config
        self.spec: EffectSpec = EFFECTS[config.name]
        self.program = program
        self.history: list[moderngl.Texture] = []
        self.history_fbos: list[moderngl.Framebuffer] = []
        self.current = 0

    def release_history(self) -> None:
        for f in self.history_fbos:
            f.release()
        for t in self.history:
            t.release()
        self.history, self.history_fbos = [], []


class Renderer:
    """Draws the newest frame through the shader chain; one per GL context, used on its thread.

        renderer = Renderer(window.ctx, window.framebuffer_size)   # or Renderer.offscreen((w, h))
        renderer.pull(frame_slot)                                   # or renderer.submit(frame)
        stats = renderer.render(DisplayInputs(time=t, ...), OutputSettings(...), target)
        pixels = renderer.read_pixels()                             # offline render, tests
    """

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int], config: RendererConfig | None = None) -> None:
        self.ctx = ctx
        self.config = config or RendererConfig()
        self._owns_context = False
        self._check_size(size)

        interop, reason = None, ""
        if self.config.upload == "pbo":
            reason = "PBO upload asked for"
        else:
            interop, reason = CudaGLInterop.detect(ctx)
            if interop is None and self.config.upload == "cuda-gl-interop":
                raise UserError(f"CUDA–GL interop was asked for but is not available: {reason}")
        self.upload_path_reason = reason  # why interop is not used ("" when it is)
        self._frames = FrameTextures(ctx, interop)

        # Compile everything now: a preset switch mid-show must not stall on a shader compile.
        self._present = Pass(ctx, "present.frag")
        self._luminance = Pass(ctx, "luminance.frag")
        self._output = Pass(ctx, "output.frag")
        self._blit = Pass(ctx, "blit.frag")
        self._effect_programs = {name: Pass(ctx, spec.shader) for name, spec in EFFECTS.items()}

        self._limiter = FlashLimiter(self.config.flash)
        self.flash_warning = self.config.flash.warning()
        if self.flash_warning:
            log.warning(self.flash_warning)

        grid = self.config.measure_grid
        self._lum_texture = ctx.texture((grid, grid), 1, dtype="f4")
        self._lum_fbo = ctx.framebuffer([self._lum_texture])

        self._effects: list[_EffectInstance] = []
        self._effects_key: tuple[EffectConfig, ...] | None = None
        self._newest: Frame | None = None  # offered, not yet drawn
        self._slot_sequence = 0
        self._a: _Shown | None = None  # the older of the two newest frames drawn
        self._b: _Shown | None = None  # the newest
        self._epoch: float | None = None
        self._last_time: float | None = None
        self._blackout_level = 0.0
        self.frames_uploaded = 0
        self.frames_dropped = 0  # offered but replaced by a newer one before they were drawn

        self.size = (0, 0)  # the output's pixels
        self.internal_size = (0, 0)  # the chain's pixels (smaller on a software renderer)
        self.animating = True  # the last picture will change without a new frame (fades, moving effects)
        self.target_allocations = 0  # times the output-size textures were (re)allocated
        self._chain: list[moderngl.Texture] = []
        self._chain_fbos: list[moderngl.Framebuffer] = []
        self._presented: list[moderngl.Texture] = []
        self._presented_fbos: list[moderngl.Framebuffer] = []
        self._presented_index = 0
        self.resize(size)

    # --- construction helpers ---------------------------------------------------------------

    @classmethod
    def offscreen(cls, size: tuple[int, int], config: RendererConfig | None = None) -> "Renderer":
        """A renderer on its own standalone GL context (EGL on Linux); `release()` frees both."""
        ctx = create_offscreen_context()
        try:
            renderer = cls(ctx, size, config)
        except BaseException:
            release_offscreen_context(ctx)
            raise
        renderer._owns_context = True
        return renderer

    @property
    def upload_path(self) -> str:
        """How frames reach their textures on this machine: "pbo" or "cuda-gl-interop"."""
        return self._frames.upload_path

    @property
    def texture_allocations(self) -> int:
        """Frame textures created so far (one or two per frame size ever seen)."""
        return self._frames.allocations

    @property
    def frame_texture_ids(self) -> set[int]:
        return self._frames.texture_ids()

    @property
    def output_texture(self) -> moderngl.Texture:
        """The last presented picture (RGBA8, output size): for a preview in a shared context."""
        return self._presented[self._presented_index]

    @property
    def display_period(self) -> float:
        return 1.0 / self.config.display_hz

    def set_flash_safety(self, config: FlashSafetyConfig) -> None:
        """Change the flash limit (e.g. on a preset switch); what was counted so far stays counted."""
        self._limiter.config = config
        self.flash_warning = config.warning()
        if self.flash_warning:
            log.warning(self.flash_warning)

    def set_display_rate(self, hz: float) -> None:
        """The output's refresh rate changed (e.g. fullscreen moved to another monitor)."""
        self.config = replace(self.config, display_hz=float(hz))

    @staticmethod
    def _check_size(size: tuple[int, int]) -> None:
        if len(size) != 2 or min(size) < 1 or max(size) > 16384:
            raise UserError(f"output size {size!r} must be two positive pixel counts up to 16384")

    # --- frames in --------------------------------------------------------------------------

    def submit(self, frame: Frame) -> None:
        """Offer a frame; only the newest offered before a render is drawn (no GL work here)."""
        if self._newest is not None and frame.index <= self._newest.index:
            return  # not newer than what we have: never go back in time
        if self._b is not None and frame.index <= self._b.frame.index:
            return
        if self._newest is not None:
            self.frames_dropped += 1
        self._newest = frame

    @property
    def has_new_frame(self) -> bool:
        """A frame was offered that is not drawn yet."""
        return self._newest is not None

    def pull(self, slot: "LatestSlot[Frame]") -> bool:
        """Take the newest frame from the frame worker's slot if it changed; True if there was one."""
        frame, sequence = slot.read()
        if frame is None or sequence == self._slot_sequence:
            return False
        self._slot_sequence = sequence
        self.submit(frame)
        return True

    # --- output size ------------------------------------------------------------------------

    def resize(self, size: tuple[int, int]) -> None:
        """Set the output size; reallocates the output textures only when it actually changes."""
        size = (int(size[0]), int(size[1]))
        self._check_size(size)
        if size == self.size:
            return
        self._release_targets()
        self.size = size
        inner = self.internal_size = self._internal(size)
        self._chain = [self.ctx.texture(inner, 4, dtype=_CHAIN_DTYPE) for _ in range(2)]
        self._chain_fbos = [self.ctx.framebuffer([t]) for t in self._chain]
        self._presented = [self.ctx.texture(inner, 4, dtype="f1") for _ in range(2)]
        self._presented_fbos = [self.ctx.framebuffer([t]) for t in self._presented]
        for t in self._chain + self._presented:
            t.repeat_x = t.repeat_y = False
        for t in self._presented:  # scaled up to the window when drawn smaller
            t.filter = (moderngl.LINEAR, moderngl.LINEAR)
        for fbo in self._presented_fbos:  # the screen was black before the first picture
            fbo.clear(0.0, 0.0, 0.0, 1.0)
        for effect in self._effects:  # feedback histories follow the output size
            effect.release_history()
        self.target_allocations += 1

    def _internal(self, size: tuple[int, int]) -> tuple[int, int]:
        limit = self.config.max_internal_pixels
        w, h = size
        if limit is None or w * h <= limit:
            return size
        scale = (limit / (w * h)) ** 0.5
        return max(1, round(w * scale)), max(1, round(h * scale))

    def _release_targets(self) -> None:
        for obj in self._chain_fbos + self._presented_fbos + self._chain + self._presented:
            obj.release()
        self._chain, self._chain_fbos, self._presented, self._presented_fbos = [], [], [], []

    # --- the effect chain -------------------------------------------------------------------

    def _sync_effects(self, effects: tuple[EffectConfig, ...]) -> None:
        if effects == self._effects_key:
            return
        resolved = validate_effect_chain(effects)
        old = self._effects
        self._effects = []
        for i, config in enumerate(resolved):
            # Keep a feedback effect's history when only its parameters changed (a knob turned).
            previous = old[i] if i < len(old) and old[i].config.name == config.name else None
            instance = _EffectInstance(config, self._effect_programs[config.name])
            if previous is not None:
                instance.history, instance.history_fbos, instance.current = \
                    previous.history, previous.history_fbos, previous.current
                previous.history, previous.history_fbos = [], []
            self._effects.append(instance)
        for instance in old:
            instance.release_history()
        self._effects_key = effects

    def _history(self, effect: _EffectInstance) -> None:
        if not effect.history:
            effect.history = [self.ctx.texture(self.internal_size, 4, dtype=_CHAIN_DTYPE) for _ in range(2)]
            for t in effect.history:
                t.repeat_x = t.repeat_y = False
            effect.history_fbos = [self.ctx.framebuffer([t]) for t in effect.history]
            for fbo in effect.history_fbos:
                fbo.clear(0.0, 0.0, 0.0, 1.0)

    # --- one picture ------------------------------------------------------------------------

    def render(self, inputs: DisplayInputs, settings: OutputSettings | None = None,
               target: moderngl.Framebuffer | None = None) -> RenderStats:
        """Draw one picture for display time `inputs.time` into the presented texture (and `target`)."""
        settings = settings or OutputSettings()
        now = inputs.time
        if self._epoch is None:
            self._epoch = now
        dt = self.display_period if self._last_time is None else min(max(now - self._last_time, 0.0), 0.25)
        self._last_time = now
        self._step_blackout(settings.blackout, dt)
        self._sync_effects(settings.effects)

        uploaded, upload_ms = False, 0.0
        if not settings.freeze and self._newest is not None:
            t0 = time.perf_counter()
            self._upload_newest()
            upload_ms = (time.perf_counter() - t0) * 1000.0
            uploaded = True

        ctx = self.ctx
        ctx.disable(moderngl.BLEND | moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        uniforms = self._shared_uniforms(inputs, dt)

        # Present: frames placed and cross-faded.
        mix = self._crossfade(now) if not settings.freeze else 1.0
        src = self._draw_present(settings, mix, uniforms)

        # Effects, in order.
        chain_index = 0
        for effect in self._effects:
            prog = effect.program
            if effect.spec.feedback:
                self._history(effect)
                previous = effect.history[effect.current]
                effect.current ^= 1
                out_fbo, out_tex = effect.history_fbos[effect.current], effect.history[effect.current]
                previous.use(1)
                prog.set("u_history", 1)
            else:
                chain_index ^= 1
                if self._chain[chain_index] is src:
                    chain_index ^= 1
                out_fbo, out_tex = self._chain_fbos[chain_index], self._chain[chain_index]
            out_fbo.use()
            src.use(0)
            prog.set("u_src", 0)
            self._set_uniforms(prog, uniforms)
            for key, value in effect.config.params.items():
                prog.set(f"p_{key}", float(value))
            prog.draw()
            src = out_tex

        # Measure, limit, present.
        gain = settings.master * (1.0 - self._blackout_level)
        candidate = self._measure(src, gain)
        decision = self._limiter.step(candidate, now)
        previous = self._presented[self._presented_index]
        self._presented_index ^= 1
        self._presented_fbos[self._presented_index].use()
        src.use(0)
        previous.use(1)
        out = self._output
        out.set("u_src", 0)
        out.set("u_previous", 1)
        out.set("u_gain", float(gain))
        out.set("u_limit", float(decision.alpha))
        out.draw()

        if target is not None:
            self.draw_to(target)

        self.animating = (mix < 1.0 or decision.limited or self._blackout_level not in (0.0, 1.0)
                          or self._blackout_level != (1.0 if settings.blackout else 0.0)
                          or any(e.config.animated for e in self._effects))
        shown = self._b.frame if self._b is not None else None
        return RenderStats(
            frame_index=shown.index if shown else -1,
            t_audio=shown.t_audio if shown else None,
            t_ready=shown.t_ready if shown else None,
            resolution=shown.resolution if shown else 0,
            budget_step=shown.budget_step if shown else 0,
            crossfade=mix, uploaded=uploaded, upload_ms=upload_ms,
            luminance=decision.luminance, flash_limited=decision.limited, output_size=self.size)

    def draw_to(self, target: moderngl.Framebuffer, size: tuple[int, int] | None = None) -> None:
        """Copy the presented picture to `target` (e.g. the window's framebuffer), scaled to `size`."""
        w, h = size or self.size
        target.use()
        self.ctx.viewport = (0, 0, w, h)
        self.output_texture.use(0)
        self._blit.set("u_src", 0)
        self._blit.draw()

    def _upload_newest(self) -> None:
        frame = self._newest
        self._newest = None
        assert frame is not None
        keep = self._b.texture if self._b is not None else None
        texture = self._frames.upload(frame, keep)
        self._a, self._b = self._b, _Shown(frame, texture)
        self.frames_uploaded += 1

    def _crossfade(self, now: float) -> float:
        if self._b is None or self._a is None or not self.config.crossfade:
            return 1.0
        a, b = self._a.frame, self._b.frame
        return crossfade_mix(a.t_ready, a.index, b.t_ready, b.index, now, self.display_period,
                             self.config.max_crossfade_s)

    def _step_blackout(self, on: bool, dt: float) -> None:
        target = 1.0 if on else 0.0
        fade = self.config.blackout_fade_s
        if fade <= 0.0:
            self._blackout_level = target
            return
        step = dt / fade
        level = self._blackout_level
        self._blackout_level = min(target, level + step) if target > level else max(target, level - step)

    def _shared_uniforms(self, inputs: DisplayInputs, dt: float) -> dict[str, object]:
        levels = tuple(float(x) for x in inputs.levels[:MAX_LEVELS])
        assert self._epoch is not None
        return {
            "u_resolution": (float(self.internal_size[0]), float(self.internal_size[1])),
            "u_time": float((inputs.time - self._epoch) % 3600.0),  # float32 keeps ms precision within an hour
            "u_dt": float(dt),
            "u_levels": list(levels) + [0.0] * (MAX_LEVELS - len(levels)),
            "u_level_count": len(levels),
            "u_bass": float(inputs.bass),
            "u_loudness": float(inputs.loudness),
            "u_beat_phase": float(inputs.beat_phase) % 1.0,
            "u_onset": float(inputs.onset_pulse(self.config.onset_decay_s)),
        }

    @staticmethod
    def _set_uniforms(prog: Pass, uniforms: dict[str, object]) -> None:
        for name, value in uniforms.items():
            prog.set(name, value)

    def _draw_present(self, settings: OutputSettings, mix: float, uniforms: dict[str, object]) -> moderngl.Texture:
        prog = self._present
        self._chain_fbos[0].use()
        self._set_uniforms(prog, uniforms)
        frames = [s for s in (self._a, self._b) if s is not None]
        prog.set("u_frames", len(frames))
        prog.set("u_background", tuple(float(c) for c in settings.background))
        prog.set("u_mix", float(mix))
        w, h = self.internal_size
        for unit, name, scale_name, shown in ((0, "u_frame_a", "u_scale_a", self._a or self._b),
                                              (1, "u_frame_b", "u_scale_b", self._b)):
            if shown is None:
                continue
            shown.texture.use(unit)
            prog.set(name, unit)
            p = place(settings.fit, shown.frame.width, shown.frame.height, w, h)
            prog.set(scale_name, (p.scale_x, p.scale_y))
        prog.draw()
        return self._chain[0]

    def _measure(self, src: moderngl.Texture, gain: float) -> float:
        # A small grid, read back synchronously: the GPU has to finish the chain before this
        # returns, but the picture must be finished before the swap anyway, and 4 KB is nothing.
        grid = self.config.measure_grid
        self._lum_fbo.use()
        src.use(0)
        prog = self._luminance
        prog.set("u_src", 0)
        prog.set("u_gain", float(gain))
        prog.set("u_resolution", (float(grid), float(grid)))
        prog.draw()
        cells = np.frombuffer(self._lum_texture.read(), dtype=np.float32)
        return float(cells.mean())

    # --- read-back and teardown -------------------------------------------------------------

    def read_pixels(self) -> np.ndarray:
        """The last presented picture as uint8 [H, W, 4] RGBA, top row first (a full read-back)."""
        w, h = self.internal_size
        data = np.frombuffer(self.output_texture.read(alignment=1), dtype=np.uint8).reshape(h, w, 4)
        return data[::-1].copy()

    def release(self) -> None:
        for effect in self._effects:
            effect.release_history()
        self._frames.release()
        self._release_targets()
        for p in [self._present, self._luminance, self._output, self._blit, *self._effect_programs.values()]:
            p.release()
        self._lum_fbo.release()
        self._lum_texture.release()
        if self._owns_context:
            release_offscreen_context(self.ctx)

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
