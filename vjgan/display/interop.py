"""CUDA–GL interop: copy a CUDA frame straight into a GL texture, with no trip through host memory.

Optional and guarded. It needs torch with CUDA, the `cuda-python` package (its runtime bindings),
and a GL context on the NVIDIA driver (the same GPU). `detect` tries it once at start on a small
texture and checks the pixels read back; anything that fails leaves the renderer on the PBO path
with the reason recorded, because a show must start even where interop does not work.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import moderngl

GL_TEXTURE_2D = 0x0DE1


def _runtime() -> Any:
    # cuda-python ≥ 12.6 names the module cuda.bindings.runtime; older releases cuda.cudart.
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


class CudaGLInterop:
    name = "cuda-gl-interop"

    def __init__(self, cudart: Any) -> None:
        self._rt = cudart
        self._resources: dict[int, Any] = {}  # texture GL name → registered CUDA resource

    @classmethod
    def detect(cls, ctx: moderngl.Context) -> tuple["CudaGLInterop | None", str]:
        """(interop, "") when it works here, else (None, why not)."""
        vendor = str(ctx.info.get("GL_VENDOR", ""))
        if "NVIDIA" not in vendor.upper():
            return None, f"the GL driver is {vendor or 'unknown'}, not NVIDIA's"
        if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
            return None, "torch is not installed"
        import torch

        if not torch.cuda.is_available():
            return None, "torch sees no CUDA GPU"
        rt = _runtime()
        if rt is None:
            return None, "the cuda-python package is not installed (pip install cuda-python)"
        interop = cls(rt)
        probe = ctx.texture((16, 16), 4)
        try:
            pattern = (torch.arange(16 * 16 * 4, dtype=torch.int32) % 251).to(torch.uint8).reshape(16, 16, 4)
            interop.upload(pattern.cuda(), probe)
            ctx.finish()
            back = torch.frombuffer(bytearray(probe.read()), dtype=torch.uint8).reshape(16, 16, 4)
            if not torch.equal(back, pattern):
                return None, "a test copy through CUDA–GL interop read back wrong pixels"
            return interop, ""
        except Exception as e:  # any driver or binding failure: fall back, never crash the show
            return None, f"CUDA–GL interop failed its test copy ({' '.join(str(e).split())})"
        finally:
            interop.forget(probe)
            probe.release()

    def _check(self, result: Any, what: str) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise RuntimeError(f"{what}: CUDA error {int(err)}")
        return values[0] if len(values) == 1 else values

    def upload(self, pixels: Any, texture: moderngl.Texture) -> None:
        """Copy a contiguous CUDA uint8 [H, W, 4] tensor into `texture` (same size)."""
        rt = self._rt
        resource = self._resources.get(texture.glo)
        if resource is None:
            flags = rt.cudaGraphicsRegisterFlags.cudaGraphicsRegisterFlagsWriteDiscard
            resource = self._check(rt.cudaGraphicsGLRegisterImage(texture.glo, GL_TEXTURE_2D, flags),
                                   "registering the texture")
            self._resources[texture.glo] = resource
        pixels = pixels.contiguous()
        height, width = int(pixels.shape[0]), int(pixels.shape[1])
        # Stream 0: the frame worker synchronised its stream before publishing (t_ready), and
        # unmapping orders the copy before any GL command issued afterwards.
        self._check(rt.cudaGraphicsMapResources(1, resource, 0), "mapping the texture")
        try:
            array = self._check(rt.cudaGraphicsSubResourceGetMappedArray(resource, 0, 0), "getting the texture array")
            self._check(rt.cudaMemcpy2DToArrayAsync(array, 0, 0, pixels.data_ptr(), width * 4, width * 4, height,
                                                    rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice, 0),
                        "copying the frame")
        finally:
            self._check(rt.cudaGraphicsUnmapResources(1, resource, 0), "unmapping the texture")

    def forget(self, texture: moderngl.Texture) -> None:
        """Unregister a texture before it is released."""
        resource = self._resources.pop(texture.glo, None)
        if resource is not None:
            try:
                self._rt.cudaGraphicsUnregisterResource(resource)
            except Exception:
                pass  # the context is going away anyway
