"""From the generator's square frames to the output picture: the live show's look, offline.

Two ways, chosen once per render:

* `GLPost`: the live show's own renderer (`vjgan.display.renderer.Renderer`) on a standalone GL
  context (EGL on Linux, no display needed): fit/fill/stretch, the preset's post effects, master
  intensity and the flash limiter, driven by the file's clock. The same shaders as live.
* `TensorPost`: where no GL context can be made (or `--no-gl`): fit/fill/stretch on tensors
  (`vjgan.display.fit`, same geometry and sampling as the present shader), master intensity and
  the same flash limiter, on the generator's device. Post effects need GL; they are left out
  with one line saying so.

Both return uint8 RGBA [N, H, W, 4] pictures.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import torch

from ..display.fit import fit_frames
from ..display.flash import FlashLimiter, FlashSafetyConfig
from ..display.frame import Frame
from ..display.inputs import DisplayInputs
from ..errors import UserError


class Post(Protocol):
    kind: str

    def process(self, frames: torch.Tensor, inputs: Sequence[DisplayInputs]) -> torch.Tensor: ...

    def close(self) -> None: ...


def _srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)


_LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 relative luminance, as WCAG and the GL measure use


class TensorPost:
    """fit/fill/stretch, master and the flash limiter on tensors (no GL)."""

    kind = "tensor"

    def __init__(self, size: tuple[int, int], fit: str, master: float, flash: FlashSafetyConfig) -> None:
        self.width, self.height = size
        self.fit = fit
        self.master = master
        self.limiter = FlashLimiter(flash)
        self._previous: torch.Tensor | None = None  # the last presented picture, linear light [H, W, 3]

    def process(self, frames: torch.Tensor, inputs: Sequence[DisplayInputs]) -> torch.Tensor:
        placed = fit_frames(frames, self.width, self.height, self.fit)  # uint8 [N, H, W, 4]
        rgb = placed[..., :3].float() / 255.0
        if self.master != 1.0:
            rgb = (rgb * self.master).clamp_(0.0, 1.0)
        linear = _srgb_to_linear(rgb)
        luma = torch.tensor(_LUMA, device=linear.device)
        candidates = (linear @ luma).mean(dim=(1, 2)).tolist()  # one mean relative luminance per picture
        out_linear = []
        held = False
        for i, (candidate, inp) in enumerate(zip(candidates, inputs)):
            decision = self.limiter.step(candidate, inp.time)
            current = linear[i]
            if decision.alpha < 1.0:
                # Hold toward the previous picture in linear light, as the output shader does.
                previous = self._previous if self._previous is not None else torch.zeros_like(current)
                current = previous + decision.alpha * (current - previous)
                held = True
            self._previous = current
            out_linear.append(current)
        if not held and self.master == 1.0:
            return placed
        result = torch.empty_like(placed)
        result[..., :3] = (_linear_to_srgb(torch.stack(out_linear)) * 255.0).round_().to(torch.uint8)
        result[..., 3] = 255
        return result

    def close(self) -> None:
        pass


class GLPost:
    """The live renderer on a standalone context; pictures are read back one by one."""

    kind = "gl"

    def __init__(self, size: tuple[int, int], display_config, fps: float, flash: FlashSafetyConfig) -> None:
        from ..display.renderer import Renderer
        from ..display.settings import OutputSettings, RendererConfig

        # No cross-fade: offline every frame is ready on time, so the newest is always shown whole.
        config = RendererConfig(display_hz=fps, crossfade=False, flash=flash)
        self.settings = OutputSettings.from_preset(display_config)
        self.renderer = Renderer.offscreen(size, config)
        self._index = 0

    def process(self, frames: torch.Tensor, inputs: Sequence[DisplayInputs]) -> torch.Tensor:
        pictures = []
        for pixels, inp in zip(frames, inputs):
            self._index += 1
            # A CUDA tensor goes straight to its texture where CUDA–GL interop works.
            frame = Frame(pixels=pixels if pixels.is_cuda else pixels.numpy(), index=self._index,
                          t_audio=inp.time, t_ready=inp.time, resolution=int(pixels.shape[0]))
            self.renderer.submit(frame)
            self.renderer.render(inp, self.settings)
            pictures.append(torch.from_numpy(self.renderer.read_pixels()))
        return torch.stack(pictures)

    @property
    def upload_path(self) -> str:
        return self.renderer.upload_path

    @property
    def gl_renderer(self) -> str:
        return str(self.renderer.ctx.info.get("GL_RENDERER", "unknown"))

    @property
    def software(self) -> bool:
        name = self.gl_renderer.lower()
        return any(s in name for s in SOFTWARE_GL)

    def close(self) -> None:
        self.renderer.release()


SOFTWARE_GL = ("llvmpipe", "softpipe", "swrast", "software", "swiftshader")


def make_post(size: tuple[int, int], display_config, fps: float, use_gl: bool, log: Callable[[str], None],
              frames_on_gpu: bool = False) -> Post:
    """GL where a context can be made (and wanted), the tensor path otherwise; says which.

    One exception, for speed: frames made on a GPU, a preset without post effects and only a
    software rasteriser (Mesa's llvmpipe on a GPU server without the vendor's GL) — then the
    tensor path gives the same picture on the GPU instead of a round trip through the CPU.
    """
    flash = FlashSafetyConfig(max_changes_per_s=display_config.flash_limit_per_s)
    if flash.warning():
        log(flash.warning())
    if use_gl:
        try:
            post = GLPost(size, display_config, fps, flash)
        except UserError as e:
            log(f"no OpenGL for the post effects ({e}); fit/fill on tensors instead")
        except Exception as e:  # a broken driver must not stop a render that can go without GL
            log(f"no OpenGL for the post effects ({type(e).__name__}: {e}); fit/fill on tensors instead")
        else:
            if frames_on_gpu and not post.settings.effects and post.software:
                log(f"OpenGL here is a software rasteriser ({post.gl_renderer}) and the preset has no post "
                    f"effects: fit/fill on the GPU's tensors instead (the same picture)")
                post.close()
            else:
                log(f"output {size[0]}x{size[1]} {display_config.fit}: OpenGL ({post.gl_renderer}, "
                    f"{post.upload_path} upload), {len(post.settings.effects)} post effect(s)")
                return post
    effects = [e.get("name", "?") if isinstance(e, dict) else getattr(e, "name", "?") for e in display_config.effects]
    if effects:
        log(f"post effects left out without OpenGL: {', '.join(effects)}")
    log(f"output {size[0]}x{size[1]} {display_config.fit}: tensors")
    return TensorPost(size, display_config.fit, display_config.master, flash)
