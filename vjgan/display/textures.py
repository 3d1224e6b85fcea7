"""Frame textures: allocated once per frame size, then updated in place.

The display holds the two newest frames (for the cross-fade), so each frame size gets at most
two textures, created the first time a frame of that size arrives and reused for every later
frame of that size. A budget step-down to a half-size frame therefore costs one allocation the
first time, none afterwards; switching back and forth between sizes allocates nothing.

Uploads go through one pixel-buffer object per size: the pixels are copied into the PBO (the
buffer is orphaned first, so the CPU never waits for the GPU to finish reading the previous
frame) and the texture is filled from it by the driver. CUDA frames go through CUDA–GL interop
where it works, otherwise through a pinned host buffer (allocated once per size) into the PBO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import moderngl
import numpy as np

from .frame import Frame
from .interop import CudaGLInterop


@dataclass
class _SizeSlot:
    pbo: moderngl.Buffer
    textures: list[moderngl.Texture] = field(default_factory=list)
    staging: Any = None  # pinned torch tensor for CUDA frames on the PBO path


class FrameTextures:
    PER_SIZE = 2

    def __init__(self, ctx: moderngl.Context, interop: CudaGLInterop | None = None) -> None:
        self.ctx = ctx
        self.interop = interop
        self._slots: dict[tuple[int, int], _SizeSlot] = {}
        self.allocations = 0  # textures created so far (grows only with new frame sizes)

    @property
    def upload_path(self) -> str:
        return self.interop.name if self.interop is not None else "pbo"

    def upload(self, frame: Frame, keep: moderngl.Texture | None) -> moderngl.Texture:
        """Write `frame` into a texture of its size other than `keep` (still on screen); return it."""
        slot = self._slot(frame.size)
        texture = next((t for t in slot.textures if t is not keep), None)
        if texture is None:
            texture = self._new_texture(frame.size)
            slot.textures.append(texture)
        if frame.on_cuda and self.interop is not None:
            self.interop.upload(frame.pixels, texture)
        else:
            data = self._host_view(frame, slot)
            slot.pbo.orphan()
            slot.pbo.write(data)
            texture.write(slot.pbo, alignment=4)
        return texture

    def _slot(self, size: tuple[int, int]) -> _SizeSlot:
        slot = self._slots.get(size)
        if slot is None:
            slot = _SizeSlot(self.ctx.buffer(reserve=size[0] * size[1] * 4, dynamic=True))
            self._slots[size] = slot
        return slot

    def _new_texture(self, size: tuple[int, int]) -> moderngl.Texture:
        texture = self.ctx.texture(size, 4, dtype="f1")
        texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
        texture.repeat_x = texture.repeat_y = False  # clamp to edge, as the torch fallback pads
        self.allocations += 1
        return texture

    @staticmethod
    def _host_view(frame: Frame, slot: _SizeSlot) -> Any:
        pixels = frame.pixels
        if isinstance(pixels, np.ndarray):
            return pixels
        if not frame.on_cuda:
            return pixels.detach().contiguous().numpy()
        import torch

        if slot.staging is None:
            slot.staging = torch.empty(tuple(pixels.shape), dtype=torch.uint8, pin_memory=True)
        slot.staging.copy_(pixels)  # pinned: a DMA copy, synchronous so the PBO sees whole frames
        return slot.staging.numpy()

    def sizes(self) -> list[tuple[int, int]]:
        return list(self._slots)

    def texture_ids(self) -> set[int]:
        return {t.glo for slot in self._slots.values() for t in slot.textures}

    def release(self) -> None:
        for slot in self._slots.values():
            for t in slot.textures:
                if self.interop is not None:
                    self.interop.forget(t)
                t.release()
            slot.pbo.release()
        self._slots.clear()
