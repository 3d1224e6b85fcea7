"""Writes network records back in the layout NVIDIA's training code pickles them, for loader tests.

NVIDIA's networks are `torch_utils.persistence` objects: a REDUCE of
`torch_utils.persistence._reconstruct_persistent_obj` with a dict holding the class name, the
module source (here a placeholder) and the module's recorded state. This writer takes the
records vjgan's safe unpickler makes (`PersistentRecord`) and pickles them the same way, at any
protocol and with numpy's global names as numpy 1.x (`numpy.core`) or 2.x (`numpy._core`) write
them, so one fixture yields the other layouts users bring (the 2021 releases are protocol 3 with
numpy 1.x names).
"""

from __future__ import annotations

import io
import pickle
from types import FunctionType
from typing import Any

from vjgan.gan.safe_pickle import EasyDictRecord, PersistentRecord


def _reconstruct_persistent_obj(meta: Any) -> Any:  # pragma: no cover - only its name is written
    raise RuntimeError("a stand-in, never called")


class _NvidiaLayoutPickler(pickle._Pickler):  # the Python pickler lets save_global be replaced
    def __init__(self, file: io.BytesIO, protocol: int, numpy_core: str) -> None:
        super().__init__(file, protocol)
        self.numpy_core = numpy_core

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, PersistentRecord):
            meta = {"type": "class", "version": 4, "module_src": "# placeholder: never executed",
                    "class_name": obj.class_name, "state": obj.state}
            return _reconstruct_persistent_obj, (meta,)
        return NotImplemented

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = getattr(obj, "__module__", "") or ""
        if obj is _reconstruct_persistent_obj:
            module, name = "torch_utils.persistence", "_reconstruct_persistent_obj"
        elif obj is EasyDictRecord:
            module, name = "dnnlib.util", "EasyDict"
        elif module.startswith("numpy._core"):
            module = module.replace("numpy._core", self.numpy_core, 1)
            name = name or obj.__qualname__
        else:
            return super().save_global(obj, name)
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n")
        self.memoize(obj)

    # The base class files functions and classes under its own save_global; route them to ours.
    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[FunctionType] = save_global
    dispatch[type] = save_global


def nvidia_pickle(data: Any, protocol: int = 4, numpy_core: str = "numpy._core") -> bytes:
    """Pickle `data` (dicts, PersistentRecords, tensors, numpy values) as NVIDIA's code would."""
    buffer = io.BytesIO()
    _NvidiaLayoutPickler(buffer, protocol, numpy_core).dump(data)
    return buffer.getvalue()
