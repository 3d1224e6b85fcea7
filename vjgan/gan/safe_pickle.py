"""A pickle reader that builds data, never runs code, never touches what it did not make, and
bounds its own work.

StyleGAN checkpoints from NVIDIA's repositories are pickles whose network objects embed their
Python source (`module_src` / `build_module_src`) and are rebuilt by executing it; rosinality's
`.pt` files are torch zip archives whose `data.pkl` names tensor storages kept beside it.
vjgan reads only the recorded data, with its own small pickle machine (opcodes decoded by the
standard library's `pickletools`):

* every global a pickle names is looked up in an allowlist: data constructors (containers,
  tensor and array rebuilders) that check their arguments before allocating, record classes
  that stand in for network objects, and a few names usable as data only. Anything else is
  refused, naming the global;
* the machine may change only objects it made itself, and only before they are used inside
  another object: a pickle can neither alter a function, a class or a shared value (such as
  `torch._utils._rebuild_tensor_v2.__defaults__`, which would break later loads in the same
  process), nor build a structure that refers to itself;
* work and memory are bounded before anything is built (vjgan.gan.limits): opcodes, objects,
  nesting, the size of each object counted with every repeat (a tiny pickle can describe an
  exponentially large structure, whose hashing or printing would never end), dictionary keys
  that are plain names or small tuples, and array or tensor sizes that must match bytes that
  really are in the file.

Torch's own `weights_only` loader is not used for zip files because it allocates what a file
declares before checking it against the file (storages, compressed entries, strided views).
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import limits


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something that is not plain model data (the message says what)."""


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


@dataclass(frozen=True)
class _Call:
    """A data constructor the pickle may call (REDUCE); `fn(machine, *args)` checks, then builds."""

    name: str
    fn: Callable[..., Any]


@dataclass(frozen=True)
class _Class:
    """A record class the pickle may instantiate (NEWOBJ, or REDUCE without arguments) and fill (BUILD)."""

    name: str
    cls: type


def _no_args(name: str, args: tuple) -> None:
    if args:
        raise UnsafePickleError(f"refused to load: {name} is called with arguments model files never give it")


def _items_of(name: str, args: tuple) -> list | tuple:
    if len(args) > 1 or (args and not isinstance(args[0], (list, tuple))):
        raise UnsafePickleError(f"refused to load: {name} is called with something other than a list")
    return args[0] if args else ()


def _new_hashed(kind: type, name: str) -> Callable[..., Any]:
    def make(m: "_Machine", *args: Any) -> Any:
        items = _items_of(name, args)
        for item in items:
            m.check_key(item)
        return kind(items)

    return make


def _new_sequence(kind: type, name: str) -> Callable[..., Any]:
    return lambda m, *args: kind(_items_of(name, args))


def _new_empty(kind: type, name: str) -> Callable[..., Any]:
    def make(m: "_Machine", *args: Any) -> Any:
        _no_args(name, args)
        return kind()

    return make


def _slice(m: "_Machine", *args: Any) -> slice:
    if len(args) > 3 or not all(a is None or (isinstance(a, int) and not isinstance(a, bool)) for a in args):
        raise UnsafePickleError("refused to load: a slice of something other than whole numbers")
    return slice(*args)


def _encode(m: "_Machine", text: Any, encoding: Any = "utf-8") -> bytes:
    # Protocols 0–2 have no bytes type: Python 3 writes bytes as _codecs.encode(text, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refused to load: _codecs.encode is called with something other than latin-1 text")
    return text.encode("latin-1")


def _empty_hooks(hooks: Any) -> None:
    if not isinstance(hooks, dict) or hooks:
        raise UnsafePickleError("refused to load: a tensor carries hooks (code), not just data")


def _rebuild_tensor(m: "_Machine", storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    hooks: Any = None, metadata: Any = None, *extra: Any) -> torch.Tensor:
    if not isinstance(storage, Storage):
        raise UnsafePickleError("refused to load: a tensor without stored data")
    _empty_hooks(collections.OrderedDict() if hooks is None else hooks)
    if extra or (metadata is not None and metadata != {}):
        raise UnsafePickleError("refused to load: a tensor with extra metadata")
    dims, steps, start = limits.check_strided_view(storage.flat.numel(), offset, size, stride)
    return storage.flat.as_strided(dims, steps, start)


def _rebuild_parameter(m: "_Machine", data: Any, requires_grad: Any = False, hooks: Any = None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("refused to load: a parameter that holds no tensor")
    _empty_hooks(collections.OrderedDict() if hooks is None else hooks)
    return torch.nn.Parameter(data, requires_grad=False)


def _reconstruct_persistent(m: "_Machine", meta: Any) -> PersistentRecord:
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


def _numpy_dtype(m: "_Machine", spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    if not isinstance(spec, str) or len(spec) > 8:
        raise UnsafePickleError("refused to load: a numpy dtype that is not a short type code")
    try:
        dtype = np.dtype(spec)
    except TypeError:
        raise UnsafePickleError("refused to load: an unknown numpy dtype") from None
    _check_array_dtype(dtype)
    return np.dtype(spec, align=False, copy=True)  # a fresh object: BUILD may set its state


def _numpy_dtype_class(cls: type) -> Callable[..., Any]:
    def make(m: "_Machine", *args: Any) -> np.dtype:
        _no_args(cls.__name__, args)
        return np.dtype(_check_array_dtype(cls()), copy=True)

    return make


def _numpy_multiarray(name: str) -> Callable[..., Any]:
    from numpy._core import multiarray  # numpy ≥ 2 name; numpy 1.x files say numpy.core

    return getattr(multiarray, name)


def _numpy_scalar(m: "_Machine", dtype: Any, data: Any = None) -> Any:
    _check_array_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise UnsafePickleError("refused to load: a numpy scalar whose bytes do not fit its type")
    return _numpy_multiarray("scalar")(dtype, data)


def _numpy_reconstruct(m: "_Machine", subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    # numpy pickles an array as an empty placeholder (shape (0,)) whose data BUILD sets later.
    if subtype is not np.ndarray or not isinstance(typecode, bytes) or len(typecode) > 8:
        raise UnsafePickleError("refused to load: an array of a type other than numpy.ndarray")
    dims = limits.check_shape(shape, "an array")
    if math.prod(dims) > 1:
        raise UnsafePickleError("refused to load: an array placeholder that declares data of its own")
    return _numpy_multiarray("_reconstruct")(np.ndarray, dims, typecode)


def _numpy_frombuffer(m: "_Machine", buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    # Protocol 5 pickles an array as its bytes in band (a bytearray, or bytes when read-only).
    _check_array_dtype(dtype)
    dims = limits.check_shape(shape, "an array")
    if not isinstance(buffer, (bytes, bytearray)) or order not in ("C", "F"):
        raise UnsafePickleError("refused to load: an array whose data is not raw bytes")
    limits.check_data_size(math.prod(dims) * dtype.itemsize, len(buffer), "an array")
    return np.frombuffer(bytearray(buffer), dtype=dtype).reshape(dims, order=order)


def _load_legacy_storage(m: "_Machine", blob: Any) -> Storage:
    if not isinstance(blob, (bytes, bytearray)):
        raise UnsafePickleError("refused to load: an embedded tensor storage that is not bytes")
    return _read_legacy_storage(bytes(blob), m.budget)


def _build_allowlist() -> dict[tuple[str, str], Any]:
    allow: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): _Call("collections.OrderedDict", _new_empty(collections.OrderedDict, "collections.OrderedDict")),
        ("builtins", "set"): _Call("set", _new_hashed(set, "set")),
        ("builtins", "frozenset"): _Call("frozenset", _new_hashed(frozenset, "frozenset")),
        ("builtins", "dict"): _Call("dict", _new_empty(dict, "dict")),
        ("builtins", "list"): _Call("list", _new_sequence(list, "list")),
        ("builtins", "tuple"): _Call("tuple", _new_sequence(tuple, "tuple")),
        ("builtins", "slice"): _Call("slice", _slice),
        ("_codecs", "encode"): _Call("_codecs.encode", _encode),
        ("torch._utils", "_rebuild_tensor_v2"): _Call("torch._utils._rebuild_tensor_v2", _rebuild_tensor),
        ("torch._utils", "_rebuild_parameter"): _Call("torch._utils._rebuild_parameter", _rebuild_parameter),
        ("torch.storage", "_load_from_bytes"): _Call("torch.storage._load_from_bytes", _load_legacy_storage),
        ("numpy", "dtype"): _Call("numpy.dtype", _numpy_dtype),
        ("numpy", "ndarray"): np.ndarray,  # data only: the first argument of _reconstruct
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _Call("torch_utils.persistence._reconstruct_persistent_obj", _reconstruct_persistent),
        ("dnnlib.util", "EasyDict"): _Class("dnnlib.util.EasyDict", EasyDictRecord),
        ("dnnlib.tflib.network", "Network"): _Class("dnnlib.tflib.network.Network", TFNetworkRecord),
        ("argparse", "Namespace"): _Class("argparse.Namespace", NamespaceRecord),
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allow[(module, "scalar")] = _Call(f"{module}.scalar", _numpy_scalar)
        allow[(module, "_reconstruct")] = _Call(f"{module}._reconstruct", _numpy_reconstruct)
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allow[(module, "_frombuffer")] = _Call(f"{module}._frombuffer", _numpy_frombuffer)
    for name in ("set", "frozenset", "dict", "list", "tuple", "slice"):  # protocol 0–2 spell builtins so
        allow[("__builtin__", name)] = allow[("builtins", name)]
    for dtype_name in ("Float32DType", "Float64DType", "Float16DType", "Int64DType", "Int32DType",
                       "UInt8DType", "BoolDType"):
        allow[("numpy.dtypes", dtype_name)] = _Call(f"numpy.dtypes.{dtype_name}", _numpy_dtype_class(getattr(np.dtypes, dtype_name)))
    storages = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                "BoolStorage": torch.bool}
    for name, dtype in storages.items():
        allow[("torch", name)] = StorageType(dtype)
    return allow


_ALLOWLIST = _build_allowlist()
_BUILDABLE = (EasyDictRecord, TFNetworkRecord, NamespaceRecord, np.ndarray, np.dtype)


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------------------
# the machine


@dataclass
class _Budget:
    """Work done so far by one load, nested pickles (embedded storages) included."""

    opcodes: int = 0
    objects: int = 0


class _Machine:
    """Runs one pickle's opcodes on a stack, as the standard unpickler would, with the checks
    described in the module docstring. Each object it makes is noted with its expanded size,
    its nesting depth and whether it has been used inside another object (then it is sealed:
    no later change)."""

    def __init__(self, stream: io.BufferedIOBase | io.BytesIO, budget: _Budget,
                 persistent_load: Callable[[Any], Any] | None = None) -> None:
        self.stream, self.budget, self.persistent_load = stream, budget, persistent_load
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.made: dict[int, list] = {}  # id → [expanded size, depth, sealed]
        self.keep: list[Any] = []  # holds what we made, so that ids stay unique during the load

    def run(self) -> Any:
        ops = pickletools.genops(self.stream)
        budget = self.budget
        while True:
            try:
                op, arg, _ = next(ops)
            except StopIteration:
                raise pickle.UnpicklingError("the pickle ends without its STOP instruction") from None
            except ValueError as e:
                exhausted = "exhausted" in str(e) or "remain" in str(e)
                raise pickle.UnpicklingError("the pickle is truncated" if exhausted else "the pickle holds an unknown instruction") from None
            budget.opcodes += 1
            if budget.opcodes > limits.MAX_PICKLE_OPCODES:
                raise limits.LimitError(f"the pickle runs more than {limits.MAX_PICKLE_OPCODES:,} instructions")
            handler = _HANDLERS.get(op.name)
            if handler is None:
                raise UnsafePickleError(f"refused to load: the pickle uses the {op.name} instruction, which model data never needs")
            if handler(self, arg):
                if len(self.stack) != 1 or self.marks:
                    raise pickle.UnpicklingError("the pickle ends with a malformed stack")
                return self.stack[0]

    # -- bookkeeping --------------------------------------------------------------------------

    def note(self, obj: Any, parts: Any = ()) -> Any:
        """Record a new object built from `parts` (which are sealed: they now live inside it)."""
        size, depth = 1, 0
        made = self.made
        for part in parts:
            entry = made.get(id(part))
            if entry is None:
                size += 1
            else:
                size += entry[0]
                depth = max(depth, entry[1])
                entry[2] = True
        self._check_size(size, depth + 1)
        known = made.get(id(obj))
        if known is not None:  # a constructor gave back an object it was passed (tuple(t) is t)
            known[0], known[1] = max(known[0], size), max(known[1], depth + 1)
            return obj
        self.budget.objects += 1
        if self.budget.objects > limits.MAX_PICKLE_OBJECTS:
            raise limits.LimitError(f"the pickle builds more than {limits.MAX_PICKLE_OBJECTS:,} objects")
        made[id(obj)] = [size, depth + 1, False]
        self.keep.append(obj)
        return obj

    def grow(self, target: Any, kinds: tuple[type, ...], parts: Any) -> None:
        """`target` is about to receive `parts`: it must be ours, unsealed and of an allowed kind."""
        entry = self.made.get(id(target))
        if entry is None:
            what = f"the global {target.name}" if isinstance(target, (_Call, _Class)) else f"a {type(target).__name__}"
            raise UnsafePickleError(f"refused to load: the pickle tries to change {what}, which it did not make")
        if not isinstance(target, kinds):
            raise UnsafePickleError(f"refused to load: the pickle tries to change a {type(target).__name__}, "
                                    "which model data never does")
        if entry[2]:
            raise UnsafePickleError("refused to load: the pickle changes an object after using it "
                                    "(a structure that refers to itself)")
        size, depth = entry[0], entry[1]
        for part in parts:
            sub = self.made.get(id(part))
            if sub is None:
                size += 1
            else:
                if part is target:
                    raise UnsafePickleError("refused to load: an object that contains itself")
                size += sub[0]
                depth = max(depth, sub[1] + 1)
                sub[2] = True
        self._check_size(size, depth)
        entry[0], entry[1] = size, depth

    @staticmethod
    def _check_size(size: int, depth: int) -> None:
        if depth > limits.MAX_PICKLE_NESTING:
            raise limits.LimitError(f"the pickle nests objects more than {limits.MAX_PICKLE_NESTING} deep")
        if size > limits.MAX_PICKLE_EXPANDED:
            raise limits.LimitError(f"the pickle describes an object of more than {limits.MAX_PICKLE_EXPANDED:,} parts "
                                    "(counting repeated references)")

    def check_key(self, key: Any) -> None:
        """Hashing must be cheap and harmless: names, numbers and small tuples of them only."""
        if key is None or type(key) in (str, bytes, int, float, bool):
            return
        if type(key) in (tuple, frozenset):
            entry = self.made.get(id(key))
            if entry is None or entry[0] <= limits.MAX_KEY_EXPANDED:
                return
        raise UnsafePickleError(f"refused to load: a dictionary key that is a {type(key).__name__} "
                                "of more than a few plain values")

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise pickle.UnpicklingError("the pickle takes items it never marked")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def pop(self) -> Any:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise pickle.UnpicklingError("the pickle takes from an empty stack")
        return self.stack.pop()

    def top(self) -> Any:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise pickle.UnpicklingError("the pickle uses an empty stack")
        return self.stack[-1]

    def push_global(self, module: Any, name: Any) -> None:
        if not isinstance(module, str) or not isinstance(name, str):
            raise UnsafePickleError("refused to load: a global named by something other than text")
        entry = _ALLOWLIST.get((module, name))
        if entry is None:
            raise UnsafePickleError(f"refused to load: the file asks to call {_shown(module)}.{_shown(name)}, "
                                    "which is not model data")
        self.stack.append(entry)


# -- opcode handlers: each takes (machine, argument) and returns True at STOP --------------------


def _push_arg(m: _Machine, arg: Any) -> None:
    m.stack.append(arg)


def _push(value: Any) -> Callable[[_Machine, Any], None]:
    return lambda m, arg: m.stack.append(value)


def _new(kind: type) -> Callable[[_Machine, Any], None]:
    return lambda m, arg: m.stack.append(m.note(kind()))


def _tuple_of(n: int) -> Callable[[_Machine, Any], None]:
    def handler(m: _Machine, arg: Any) -> None:
        items = [m.pop() for _ in range(n)][::-1]
        m.stack.append(m.note(tuple(items), items))

    return handler


def _op_tuple(m: _Machine, arg: Any) -> None:
    items = m.pop_mark()
    m.stack.append(m.note(tuple(items), items))


def _op_list(m: _Machine, arg: Any) -> None:
    items = m.pop_mark()
    m.stack.append(m.note(list(items), items))


def _pairs(m: _Machine, items: list[Any]) -> list[tuple[Any, Any]]:
    if len(items) % 2:
        raise pickle.UnpicklingError("the pickle gives a key without a value")
    pairs = list(zip(items[::2], items[1::2]))
    for key, _ in pairs:
        m.check_key(key)
    return pairs


def _op_dict(m: _Machine, arg: Any) -> None:
    items = m.pop_mark()
    pairs = _pairs(m, items)
    m.stack.append(m.note(dict(pairs), items))


def _op_frozenset(m: _Machine, arg: Any) -> None:
    items = m.pop_mark()
    for item in items:
        m.check_key(item)
    m.stack.append(m.note(frozenset(items), items))


def _op_append(m: _Machine, arg: Any) -> None:
    item = m.pop()
    target = m.top()
    m.grow(target, (list,), (item,))
    target.append(item)


def _op_appends(m: _Machine, arg: Any) -> None:
    items = m.pop_mark()
    target = m.top()
    m.grow(target, (list,), items)
    target.extend(items)


def _op_setitem(m: _Machine, arg: Any) -> None:
    value = m.pop()
    key = m.pop()
    target = m.top()
    m.check_key(key)
    m.grow(target, (dict,), (key, value))
    target[key] = value


def _op_setitems(m: _Machine, arg: Any) -> None:
    items = m.pop_mark()
    target = m.top()
    pairs = _pairs(m, items)
    m.grow(target, (dict,), items)
    for key, value in pairs:
        target[key] = value


def _op_additems(m: _Machine, arg: Any) -> None:
    items = m.pop_mark()
    target = m.top()
    for item in items:
        m.check_key(item)
    m.grow(target, (set,), items)
    target.update(items)


def _op_pop(m: _Machine, arg: Any) -> None:
    if m.marks and m.marks[-1] == len(m.stack):
        m.pop_mark()
    else:
        m.pop()


def _op_pop_mark(m: _Machine, arg: Any) -> None:
    m.pop_mark()


def _op_dup(m: _Machine, arg: Any) -> None:
    m.stack.append(m.top())


def _op_mark(m: _Machine, arg: Any) -> None:
    m.marks.append(len(m.stack))


def _op_put(m: _Machine, arg: Any) -> None:
    if not isinstance(arg, int) or arg < 0:
        raise pickle.UnpicklingError("the pickle uses a negative memo index")
    m.memo[arg] = m.top()


def _op_memoize(m: _Machine, arg: Any) -> None:
    m.memo[len(m.memo)] = m.top()


def _op_get(m: _Machine, arg: Any) -> None:
    try:
        m.stack.append(m.memo[arg])
    except (KeyError, TypeError):
        raise pickle.UnpicklingError("the pickle refers to a memo entry it never made") from None


def _op_global(m: _Machine, arg: Any) -> None:
    module, _, name = str(arg).partition(" ")
    m.push_global(module, name)


def _op_stack_global(m: _Machine, arg: Any) -> None:
    name = m.pop()
    module = m.pop()
    m.push_global(module, name)


def _op_reduce(m: _Machine, arg: Any) -> None:
    args = m.pop()
    func = m.top()
    if not isinstance(args, tuple):
        raise UnsafePickleError("refused to load: a call whose arguments are not a tuple")
    if isinstance(func, _Class):
        _no_args(func.name, args)
        result = func.cls()
    elif isinstance(func, _Call):
        result = func.fn(m, *args)
    else:
        raise UnsafePickleError(f"refused to load: the pickle calls a {type(func).__name__}, which is not a data constructor")
    m.stack[-1] = m.note(result, (args,))


def _op_newobj(m: _Machine, arg: Any) -> None:
    args = m.pop()
    cls = m.pop()
    if not isinstance(cls, _Class):
        raise UnsafePickleError(f"refused to load: the pickle instantiates a {type(cls).__name__}, which is not a record class")
    if not isinstance(args, tuple):
        raise UnsafePickleError("refused to load: a call whose arguments are not a tuple")
    _no_args(cls.name, args)
    m.stack.append(m.note(cls.cls(), (args,)))


def _op_newobj_ex(m: _Machine, arg: Any) -> None:
    kwargs = m.pop()
    args = m.pop()
    if kwargs:
        raise UnsafePickleError("refused to load: a record class called with keyword arguments")
    m.stack.append(args)
    _op_newobj(m, arg)


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


def _op_build(m: _Machine, arg: Any) -> None:
    state = m.pop()
    target = m.top()
    m.grow(target, _BUILDABLE, (state,))
    if isinstance(target, np.dtype):
        _check_dtype_state(state)
    elif isinstance(target, np.ndarray):
        _check_array_state(state)
    elif not isinstance(state, dict):
        raise UnsafePickleError(f"refused to load: a {type(target).__name__} given state that is not a dictionary")
    target.__setstate__(state)


def _op_binpersid(m: _Machine, arg: Any) -> None:
    pid = m.pop()
    if m.persistent_load is None:
        raise UnsafePickleError("refused to load: the pickle references external persistent storage")
    m.stack.append(m.note(m.persistent_load(pid), (pid,)))


def _op_proto(m: _Machine, arg: Any) -> None:
    if not isinstance(arg, int) or not 0 <= arg <= 5:
        raise pickle.UnpicklingError("the pickle declares an unknown protocol")


def _op_stop(m: _Machine, arg: Any) -> bool:
    return True


_HANDLERS: dict[str, Callable[[_Machine, Any], Any]] = {
    "PROTO": _op_proto, "FRAME": lambda m, arg: None, "STOP": _op_stop,
    "NONE": _push(None), "NEWTRUE": _push(True), "NEWFALSE": _push(False),
    **{name: _push_arg for name in (
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
        "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
        "BINBYTES", "SHORT_BINBYTES", "BINBYTES8")},
    "BYTEARRAY8": lambda m, arg: m.stack.append(bytearray(arg)),
    "EMPTY_LIST": _new(list), "EMPTY_DICT": _new(dict), "EMPTY_SET": _new(set),
    "EMPTY_TUPLE": lambda m, arg: m.stack.append(()),
    "MARK": _op_mark, "TUPLE": _op_tuple, "TUPLE1": _tuple_of(1), "TUPLE2": _tuple_of(2), "TUPLE3": _tuple_of(3),
    "LIST": _op_list, "DICT": _op_dict, "FROZENSET": _op_frozenset,
    "APPEND": _op_append, "APPENDS": _op_appends, "SETITEM": _op_setitem, "SETITEMS": _op_setitems,
    "ADDITEMS": _op_additems, "POP": _op_pop, "POP_MARK": _op_pop_mark, "DUP": _op_dup,
    "PUT": _op_put, "BINPUT": _op_put, "LONG_BINPUT": _op_put, "MEMOIZE": _op_memoize,
    "GET": _op_get, "BINGET": _op_get, "LONG_BINGET": _op_get,
    "GLOBAL": _op_global, "STACK_GLOBAL": _op_stack_global,
    "REDUCE": _op_reduce, "NEWOBJ": _op_newobj, "NEWOBJ_EX": _op_newobj_ex, "BUILD": _op_build,
    "BINPERSID": _op_binpersid,
}
# Not handled, hence refused by name: INST and OBJ (protocol-0 instantiation of any class), the
# extension registry (EXT1/2/4), out-of-band buffers, and the text form of persistent ids.


def _run(stream: io.BytesIO, budget: _Budget, persistent_load: Callable[[Any], Any] | None = None) -> Any:
    return _Machine(stream, budget, persistent_load).run()


# ---------------------------------------------------------------------------------------------
# entry points


def safe_load_pickle(data: bytes) -> Any:
    """Unpickle `data` with the allowlist and the bounds.

    Raises UnsafePickleError (refused), pickle.UnpicklingError (damaged) or limits.LimitError."""
    return _run(io.BytesIO(data), _Budget())


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


def _read_legacy_storage(blob: bytes, budget: _Budget) -> Storage:
    """A storage pickled by torch inside an NVIDIA pickle (`torch.storage._load_from_bytes`):
    four small pickles (magic number, protocol, system info, the storage's persistent id), the
    list of storage keys, then each storage as an element count and its raw bytes."""
    stream = io.BytesIO(blob)
    if _run(stream, budget) != _LEGACY_MAGIC or _run(stream, budget) != _LEGACY_PROTOCOL:
        raise UnsafePickleError("refused to load: an embedded tensor storage in an unknown format")
    info = _run(stream, budget)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise UnsafePickleError("refused to load: an embedded tensor storage that is not little-endian")
    declared: dict[str, tuple[StorageType, int]] = {}

    def persistent(pid: Any) -> str:
        kind, key, count = _storage_pid(pid)
        declared[key] = (kind, count)
        return key

    root = _run(stream, budget, persistent)
    keys = _run(stream, budget)
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
        return _run(io.BytesIO(data), _Budget(), persistent)


def _read_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, file_size: int, most: int) -> bytes:
    """An entry's bytes, refusing compression (torch.save never compresses, and a compressed
    entry can inflate a thousandfold) and sizes beyond `most` or beyond the file itself."""
    if entry.compress_type != zipfile.ZIP_STORED:
        raise limits.LimitError(f"the archive entry {_shown(entry.filename)} is compressed (torch.save never compresses)")
    if entry.file_size > most or entry.compress_size != entry.file_size or entry.header_offset + entry.file_size > file_size:
        raise limits.LimitError(f"the archive entry {_shown(entry.filename)} declares {entry.file_size:,} bytes, "
                                "more than the file holds for it")
    data = archive.read(entry)
    limits.check_data_size(entry.file_size, len(data), f"the archive entry {_shown(entry.filename)}")
    return data
