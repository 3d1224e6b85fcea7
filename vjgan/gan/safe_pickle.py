"""A pickle reader that builds data, never runs code.

StyleGAN checkpoints from NVIDIA's repositories are pickles whose network objects embed their
Python source (`module_src` / `build_module_src`) and are rebuilt by executing it. vjgan reads
only the recorded state: every global a pickle names is looked up in an allowlist of data
constructors (containers, tensor and array rebuilders) or replaced by an inert record. Anything
else is refused, naming the global.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for a global that is not plain data."""


@dataclass
class PersistentRecord:
    """Stand-in for `torch_utils.persistence` objects: the class name and recorded state only.

    The real reconstructor would exec `module_src`; we keep the text as inert data and never run it.
    """

    class_name: str
    state: dict[str, Any]
    module_src_present: bool = False


class EasyDictRecord(dict):
    """Stand-in for dnnlib's EasyDict: a dict that also accepts attribute-style state."""

    def __setstate__(self, state: Any) -> None:  # EasyDict pickles its items through the dict protocol
        if isinstance(state, dict):
            self.update(state)


class TFNetworkRecord:
    """Stand-in for `dnnlib.tflib.network.Network`: keeps the pickled state dict (`variables`,
    `components`, `static_kwargs`, ...) and ignores `build_module_src`, which is never executed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = dict(state) if isinstance(state, dict) else {}


class NamespaceRecord:
    """Stand-in for argparse.Namespace and similar plain attribute bags in training checkpoints."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)


def _reconstruct_persistent(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict) or "state" not in meta:
        raise UnsafePickleError("a persistent-object record without recorded state")
    return PersistentRecord(
        class_name=str(meta.get("class_name", "?")),
        state=meta["state"] if isinstance(meta["state"], dict) else {},
        module_src_present=bool(meta.get("module_src")),
    )


def _load_storage_from_bytes(data: bytes) -> Any:
    # Legacy torch storages pickled inside another pickle: load them with torch's own
    # weights-only unpickler, which refuses anything but tensors and containers.
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _numpy_global(name: str) -> Callable[..., Any]:
    from numpy._core import multiarray  # numpy ≥ 2 name; numpy 1.x files say numpy.core

    return getattr(multiarray, name)


def _build_allowlist() -> dict[tuple[str, str], Callable[[], Any]]:
    from torch import _utils as torch_utils

    allow: dict[tuple[str, str], Callable[[], Any]] = {
        ("collections", "OrderedDict"): lambda: collections.OrderedDict,
        ("builtins", "set"): lambda: set,
        ("builtins", "frozenset"): lambda: frozenset,
        ("builtins", "dict"): lambda: dict,
        ("builtins", "list"): lambda: list,
        ("builtins", "tuple"): lambda: tuple,
        ("builtins", "slice"): lambda: slice,
        ("torch._utils", "_rebuild_tensor_v2"): lambda: torch_utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): lambda: torch_utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): lambda: _load_storage_from_bytes,
        ("numpy", "dtype"): lambda: np.dtype,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): lambda: _reconstruct_persistent,
        ("dnnlib.util", "EasyDict"): lambda: EasyDictRecord,
        ("dnnlib.tflib.network", "Network"): lambda: TFNetworkRecord,
        ("argparse", "Namespace"): lambda: NamespaceRecord,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        for name in ("scalar", "_reconstruct"):
            allow[(module, name)] = (lambda n=name: _numpy_global(n))
    for dtype_name in ("Float32DType", "Float64DType", "Float16DType", "Int64DType", "Int32DType",
                       "UInt8DType", "BoolDType"):
        allow[("numpy.dtypes", dtype_name)] = (lambda n=dtype_name: getattr(np.dtypes, n))
    return allow


_ALLOWLIST = _build_allowlist()


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allowlisted globals; refuses everything else by name."""

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWLIST.get((module, name))
        if factory is None:
            raise UnsafePickleError(f"refused to load: the file asks to call {module}.{name}, which is not model data")
        return factory()

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused to load: the pickle references external persistent storage")


def safe_load_pickle(data: bytes) -> Any:
    """Unpickle `data` with the allowlist; raises UnsafePickleError or pickle.UnpicklingError."""
    return RestrictedUnpickler(io.BytesIO(data)).load()
