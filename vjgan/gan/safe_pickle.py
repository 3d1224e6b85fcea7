"""What a model pickle may build, read through vjgan.gan.pickle_machine: data, never code.

StyleGAN checkpoints from NVIDIA's repositories are pickles whose network objects embed their
Python source (`module_src` / `build_module_src`) and are rebuilt by executing it; rosinality's
`.pt` files are torch zip archives whose `data.pkl` names tensor storages kept beside it.
vjgan reads only the recorded data. The names a pickle may use are listed here: data
constructors (containers, tensor and array rebuilders) that check their arguments against
vjgan.gan.limits and the bytes really in the file before allocating, record classes that
stand in for network objects, and a few names usable as data only.

Torch's own `weights_only` loader is not used, for zip archives either: it allocates what a
file declares before checking it against the file (storages, compressed entries, strided
views), and its unpickler hashes whatever keys a file builds.
"""

from __future__ import annotations

import collections
import io
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import limits
from .pickle_machine import Budget, Call, Class, Machine, Names, UnsafePickleError, no_args, shown, run


# ---------------------------------------------------------------------------------------------
# stand-ins for the objects of NVIDIA's and rosinality's code


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

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = dict(state) if isinstance(state, dict) else {}


class NamespaceRecord:
    """Stand-in for argparse.Namespace and similar plain attribute bags in training checkpoints."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update({k: v for k, v in state.items() if isinstance(k, str)})


@dataclass(frozen=True)
class StorageType:
    """A torch storage class named in a pickle (`torch.FloatStorage`): only its element type."""

    dtype: torch.dtype


class Storage:
    """Tensor data read from the file: a flat tensor that rebuilt tensors are views of."""

    __slots__ = ("flat",)

    def __init__(self, flat: torch.Tensor) -> None:
        self.flat = flat


def _flat_tensor(data: bytes | bytearray | memoryview, dtype: torch.dtype) -> torch.Tensor:
    if len(data) == 0:
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(bytearray(data), dtype=dtype)  # a private, writable copy


# ---------------------------------------------------------------------------------------------
# what a pickle may name


def _items_of(name: str, args: tuple) -> list | tuple:
    if len(args) > 1 or (args and not isinstance(args[0], (list, tuple))):
        raise UnsafePickleError(f"refused to load: {name} is called with something other than a list")
    return args[0] if args else ()


def _new_hashed(kind: type, name: str) -> Callable[..., Any]:
    def make(m: Machine, *args: Any) -> Any:
        items = _items_of(name, args)
        for item in items:
            m.check_key(item)
        return kind(items)

    return make


def _new_sequence(kind: type, name: str) -> Callable[..., Any]:
    return lambda m, *args: kind(_items_of(name, args))


def _new_empty(kind: type, name: str) -> Callable[..., Any]:
    def make(m: Machine, *args: Any) -> Any:
        no_args(name, args)
        return kind()

    return make


def _slice(m: Machine, *args: Any) -> slice:
    if len(args) > 3 or not all(a is None or (isinstance(a, int) and not isinstance(a, bool)) for a in args):
        raise UnsafePickleError("refused to load: a slice of something other than whole numbers")
    return slice(*args)


def _encode(m: Machine, text: Any, encoding: Any = "utf-8") -> bytes:
    # Protocols 0–2 have no bytes type: Python 3 writes bytes as _codecs.encode(text, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refused to load: _codecs.encode is called with something other than latin-1 text")
    return text.encode("latin-1")


def _empty_hooks(hooks: Any) -> None:
    if not isinstance(hooks, dict) or hooks:
        raise UnsafePickleError("refused to load: a tensor carries hooks (code), not just data")


def _rebuild_tensor(m: Machine, storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    hooks: Any = None, metadata: Any = None, *extra: Any) -> torch.Tensor:
    if not isinstance(storage, Storage):
        raise UnsafePickleError("refused to load: a tensor without stored data")
    _empty_hooks(collections.OrderedDict() if hooks is None else hooks)
    if extra or (metadata is not None and metadata != {}):
        raise UnsafePickleError("refused to load: a tensor with extra metadata")
    dims, steps, start = limits.check_strided_view(storage.flat.numel(), offset, size, stride)
    return storage.flat.as_strided(dims, steps, start)


def _rebuild_parameter(m: Machine, data: Any, requires_grad: Any = False, hooks: Any = None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("refused to load: a parameter that holds no tensor")
    _empty_hooks(collections.OrderedDict() if hooks is None else hooks)
    return torch.nn.Parameter(data, requires_grad=False)


def _reconstruct_persistent(m: Machine, meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict) or "state" not in meta:
        raise UnsafePickleError("refused to load: a persistent-object record without recorded state")
    name = meta.get("class_name")
    return PersistentRecord(
        class_name=name if isinstance(name, str) else "?",
        state=meta["state"] if isinstance(meta["state"], dict) else {},
        module_src_present=bool(meta.get("module_src")),
    )


_ARRAY_KINDS = "biufc"  # booleans, integers, floats, complex: never objects, records or strings


def _check_array_dtype(dtype: Any) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.kind not in _ARRAY_KINDS or dtype.fields is not None \
            or dtype.subdtype is not None:
        raise UnsafePickleError("refused to load: an array or scalar of something other than numbers")
    return dtype


def _numpy_dtype(m: Machine, spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    if not isinstance(spec, str) or len(spec) > 8:
        raise UnsafePickleError("refused to load: a numpy dtype that is not a short type code")
    try:
        dtype = np.dtype(spec)
    except TypeError:
        raise UnsafePickleError("refused to load: an unknown numpy dtype") from None
    _check_array_dtype(dtype)
    return np.dtype(spec, align=False, copy=True)  # a fresh object: BUILD may set its state


def _numpy_dtype_class(cls: type) -> Callable[..., Any]:
    def make(m: Machine, *args: Any) -> np.dtype:
        no_args(cls.__name__, args)
        return np.dtype(_check_array_dtype(cls()), copy=True)

    return make


def _numpy_multiarray(name: str) -> Callable[..., Any]:
    from numpy._core import multiarray  # numpy ≥ 2 name; numpy 1.x files say numpy.core

    return getattr(multiarray, name)


def _numpy_scalar(m: Machine, dtype: Any, data: Any = None) -> Any:
    _check_array_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise UnsafePickleError("refused to load: a numpy scalar whose bytes do not fit its type")
    return _numpy_multiarray("scalar")(dtype, data)


def _numpy_reconstruct(m: Machine, subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    # numpy pickles an array as an empty placeholder (shape (0,)) whose data BUILD sets later.
    if subtype is not np.ndarray or not isinstance(typecode, bytes) or len(typecode) > 8:
        raise UnsafePickleError("refused to load: an array of a type other than numpy.ndarray")
    dims = limits.check_shape(shape, "an array")
    if math.prod(dims) > 1:
        raise UnsafePickleError("refused to load: an array placeholder that declares data of its own")
    return _numpy_multiarray("_reconstruct")(np.ndarray, dims, typecode)


def _numpy_frombuffer(m: Machine, buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    # Protocol 5 pickles an array as its bytes in band (a bytearray, or bytes when read-only).
    _check_array_dtype(dtype)
    dims = limits.check_shape(shape, "an array")
    if not isinstance(buffer, (bytes, bytearray)) or order not in ("C", "F"):
        raise UnsafePickleError("refused to load: an array whose data is not raw bytes")
    limits.check_data_size(math.prod(dims) * dtype.itemsize, len(buffer), "an array")
    return np.frombuffer(bytearray(buffer), dtype=dtype).reshape(dims, order=order)


def _load_legacy_storage(m: Machine, blob: Any) -> Storage:
    if not isinstance(blob, (bytes, bytearray)):
        raise UnsafePickleError("refused to load: an embedded tensor storage that is not bytes")
    return _read_legacy_storage(bytes(blob), m.budget)


def _build_allowlist() -> dict[tuple[str, str], Any]:
    allow: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): Call("collections.OrderedDict", _new_empty(collections.OrderedDict, "collections.OrderedDict")),
        ("builtins", "set"): Call("set", _new_hashed(set, "set")),
        ("builtins", "frozenset"): Call("frozenset", _new_hashed(frozenset, "frozenset")),
        ("builtins", "dict"): Call("dict", _new_empty(dict, "dict")),
        ("builtins", "list"): Call("list", _new_sequence(list, "list")),
        ("builtins", "tuple"): Call("tuple", _new_sequence(tuple, "tuple")),
        ("builtins", "slice"): Call("slice", _slice),
        ("_codecs", "encode"): Call("_codecs.encode", _encode),
        ("torch._utils", "_rebuild_tensor_v2"): Call("torch._utils._rebuild_tensor_v2", _rebuild_tensor),
        ("torch._utils", "_rebuild_parameter"): Call("torch._utils._rebuild_parameter", _rebuild_parameter),
        ("torch.storage", "_load_from_bytes"): Call("torch.storage._load_from_bytes", _load_legacy_storage),
        ("numpy", "dtype"): Call("numpy.dtype", _numpy_dtype),
        ("numpy", "ndarray"): np.ndarray,  # data only: the first argument of _reconstruct
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): Call("torch_utils.persistence._reconstruct_persistent_obj", _reconstruct_persistent),
        ("dnnlib.util", "EasyDict"): Class("dnnlib.util.EasyDict", EasyDictRecord),
        ("dnnlib.tflib.network", "Network"): Class("dnnlib.tflib.network.Network", TFNetworkRecord),
        ("argparse", "Namespace"): Class("argparse.Namespace", NamespaceRecord),
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allow[(module, "scalar")] = Call(f"{module}.scalar", _numpy_scalar)
        allow[(module, "_reconstruct")] = Call(f"{module}._reconstruct", _numpy_reconstruct)
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allow[(module, "_frombuffer")] = Call(f"{module}._frombuffer", _numpy_frombuffer)
    for name in ("set", "frozenset", "dict", "list", "tuple", "slice"):  # protocol 0–2 spell builtins so
        allow[("__builtin__", name)] = allow[("builtins", name)]
    for dtype_name in ("Float32DType", "Float64DType", "Float16DType", "Int64DType", "Int32DType",
                       "UInt8DType", "BoolDType"):
        allow[("numpy.dtypes", dtype_name)] = Call(f"numpy.dtypes.{dtype_name}", _numpy_dtype_class(getattr(np.dtypes, dtype_name)))
    storages = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                "BoolStorage": torch.bool}
    for name, dtype in storages.items():
        allow[("torch", name)] = StorageType(dtype)
    return allow


def _check_dtype_state(state: Any) -> None:
    # (version, byte order, subarray, names, fields, element size, alignment, flags[, metadata])
    if not isinstance(state, tuple) or len(state) not in (8, 9) or state[1] not in ("<", ">", "|", "=") \
            or any(x is not None for x in state[2:5]) or (len(state) == 9 and state[8] is not None) \
            or not all(isinstance(x, int) and not isinstance(x, bool) and -1 <= x <= 64 for x in (state[0], *state[5:8])):
        raise UnsafePickleError("refused to load: a numpy dtype with fields, sub-arrays or metadata")


def _check_array_state(state: Any) -> None:
    # (version, shape, dtype, Fortran order, raw bytes)
    if not isinstance(state, tuple) or len(state) != 5 or not isinstance(state[3], bool):
        raise UnsafePickleError("refused to load: an array in an unknown layout")
    dims = limits.check_shape(state[1], "an array")
    dtype = _check_array_dtype(state[2])
    raw = state[4]
    if not isinstance(raw, (bytes, bytearray)):
        raise UnsafePickleError("refused to load: an array whose data is not raw bytes")
    limits.check_data_size(math.prod(dims) * dtype.itemsize, len(raw), "an array")


def _dict_state(state: Any) -> None:
    if not isinstance(state, dict):
        raise UnsafePickleError("refused to load: a record given state that is not a dictionary")


NAMES = Names(
    globals=_build_allowlist(),
    builds={EasyDictRecord: _dict_state, TFNetworkRecord: _dict_state, NamespaceRecord: _dict_state,
            np.ndarray: _check_array_state, np.dtype: _check_dtype_state},
)


# ---------------------------------------------------------------------------------------------
# entry points


def safe_load_pickle(data: bytes) -> Any:
    """Unpickle `data` with the allowlist and the bounds.

    Raises UnsafePickleError (refused), pickle.UnpicklingError (damaged) or limits.LimitError."""
    return run(io.BytesIO(data), NAMES)


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch's legacy (pre-zip) serialisation
_LEGACY_PROTOCOL = 1001


def _storage_pid(pid: Any) -> tuple[StorageType, str, int]:
    """('storage', storage type, key, location, element count[, view]) as torch writes it."""
    if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage" \
            or not isinstance(pid[1], StorageType) or not isinstance(pid[2], str) \
            or isinstance(pid[4], bool) or not isinstance(pid[4], int) or (len(pid) == 6 and pid[5] is not None):
        raise UnsafePickleError("refused to load: a reference to tensor data in an unknown form")
    if not 0 <= pid[4] <= limits.MAX_TENSOR_ELEMENTS:
        raise limits.LimitError(f"a tensor storage declares {pid[4]:,} elements")
    return pid[1], pid[2], pid[4]


def _read_legacy_storage(blob: bytes, budget: Budget) -> Storage:
    """A storage pickled by torch inside an NVIDIA pickle (`torch.storage._load_from_bytes`):
    four small pickles (magic number, protocol, system info, the storage's persistent id), the
    list of storage keys, then each storage as an element count and its raw bytes."""
    stream = io.BytesIO(blob)
    if run(stream, NAMES, budget) != _LEGACY_MAGIC or run(stream, NAMES, budget) != _LEGACY_PROTOCOL:
        raise UnsafePickleError("refused to load: an embedded tensor storage in an unknown format")
    info = run(stream, NAMES, budget)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise UnsafePickleError("refused to load: an embedded tensor storage that is not little-endian")
    declared: dict[str, tuple[StorageType, int]] = {}

    def persistent(pid: Any) -> str:
        kind, key, count = _storage_pid(pid)
        declared[key] = (kind, count)
        return key

    root = run(stream, NAMES, budget, persistent)
    keys = run(stream, NAMES, budget)
    if not isinstance(root, str) or keys != [root] or root not in declared:
        raise UnsafePickleError("refused to load: an embedded tensor storage of unexpected structure")
    kind, count = declared[root]
    head = stream.read(8)
    if len(head) != 8 or int.from_bytes(head, "little", signed=True) != count:
        raise limits.LimitError("an embedded tensor storage's size does not match its declaration")
    nbytes = count * kind.dtype.itemsize
    data = stream.read(nbytes)
    limits.check_data_size(nbytes, len(data), "an embedded tensor storage")
    return Storage(_flat_tensor(data, kind.dtype))


def load_torch_zip(path: str | os.PathLike[str]) -> Any:
    """Read a `torch.save` zip archive (what rosinality's tools write) without torch.load.

    The archive must be as torch writes it: one `<name>/data.pkl`, tensor data in
    `<name>/data/<key>` entries stored uncompressed, each exactly as large as its declaration."""
    path = Path(path)
    file_size = path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
        if len(entries) > limits.MAX_ZIP_ENTRIES:
            raise limits.LimitError(f"the archive has {len(entries):,} entries (at most {limits.MAX_ZIP_ENTRIES:,})")
        by_name = {e.filename: e for e in entries}
        pickles = [n for n in by_name if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError("a zip archive, but not one written by torch.save")
        prefix = pickles[0][: -len("data.pkl")]
        order = by_name.get(prefix + "byteorder")
        if order is not None and _read_entry(archive, order, file_size, 16) not in (b"little", b"little\n"):
            raise ValueError("the archive stores big-endian tensors")
        storages: dict[str, Storage] = {}

        def persistent(pid: Any) -> Storage:
            kind, key, count = _storage_pid(pid)
            if key not in storages:
                entry = by_name.get(f"{prefix}data/{key}")
                if entry is None:
                    raise limits.LimitError("a tensor's data is missing from the archive")
                limits.check_data_size(count * kind.dtype.itemsize, entry.file_size, "a tensor in the archive")
                storages[key] = Storage(_flat_tensor(_read_entry(archive, entry, file_size, entry.file_size), kind.dtype))
            elif storages[key].flat.dtype != kind.dtype or storages[key].flat.numel() < count:
                raise limits.LimitError("two tensors declare one storage differently")
            return storages[key]

        data = _read_entry(archive, by_name[pickles[0]], file_size, limits.MAX_ZIP_PICKLE_BYTES)
        return run(io.BytesIO(data), NAMES, Budget(), persistent)


def _read_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, file_size: int, most: int) -> bytes:
    """An entry's bytes, refusing compression (torch.save never compresses, and a compressed
    entry can inflate a thousandfold) and sizes beyond `most` or beyond the file itself."""
    if entry.compress_type != zipfile.ZIP_STORED:
        raise limits.LimitError(f"the archive entry {shown(entry.filename)} is compressed (torch.save never compresses)")
    if entry.file_size > most or entry.compress_size != entry.file_size or entry.header_offset + entry.file_size > file_size:
        raise limits.LimitError(f"the archive entry {shown(entry.filename)} declares {entry.file_size:,} bytes, "
                                "more than the file holds for it")
    data = archive.read(entry)
    limits.check_data_size(entry.file_size, len(data), f"the archive entry {shown(entry.filename)}")
    return data
