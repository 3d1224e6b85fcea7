"""A pickle machine that builds data, never runs code, never touches what it did not make, and
bounds its own work.

It runs a pickle's opcodes (decoded by the standard library's `pickletools`) on a stack, as the
standard unpickler does, with these differences:

* a global is looked up in the caller's `Names`: a `Call` (a data constructor that checks its
  arguments before allocating), a `Class` (a record class) or a plain value usable as data
  only. Anything else is refused, naming the global;
* an object may be changed (APPEND, SETITEM, ADDITEMS, BUILD) only if this machine made it, only
  before it was used inside another object, and BUILD only on the kinds the caller allows,
  with the caller's check of the state: a pickle can neither alter a function, a class or a
  shared value (such as `torch._utils._rebuild_tensor_v2.__defaults__`, which would break later
  loads in the same process), nor build a structure that refers to itself;
* work is bounded (vjgan.gan.limits): opcodes, objects, nesting, and the size of each object
  counted with every repeat, which a tiny pickle can make exponentially large through its memo
  (hashing or printing such a structure would never end); dictionary keys must be names,
  numbers or small tuples of them.

What a pickle may build is the caller's business (vjgan.gan.safe_pickle); this module knows no
torch and no numpy.
"""

from __future__ import annotations

import pickle
import pickletools
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Mapping

from . import limits


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something that is not plain model data (the message says what)."""


@dataclass(frozen=True)
class Call:
    """A data constructor the pickle may call (REDUCE); `fn(machine, *args)` checks, then builds."""

    name: str
    fn: Callable[..., Any]


@dataclass(frozen=True)
class Class:
    """A record class the pickle may instantiate (NEWOBJ, or REDUCE without arguments) and fill (BUILD)."""

    name: str
    cls: type


@dataclass(frozen=True)
class Names:
    """What a pickle may name (module, name) → Call, Class or a value, and the kinds of object
    BUILD may fill, each with the check its state must pass first."""

    globals: Mapping[tuple[str, str], Any]
    builds: Mapping[type, Callable[[Any], None]] = field(default_factory=dict)


def shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def no_args(name: str, args: tuple) -> None:
    if args:
        raise UnsafePickleError(f"refused to load: {name} is called with arguments model files never give it")


@dataclass
class Budget:
    """Work done so far by one load, nested pickles (embedded storages) included."""

    opcodes: int = 0
    objects: int = 0


class Machine:
    """Runs one pickle's opcodes on a stack, as the standard unpickler would, with the checks
    described in the module docstring. Each object it makes is noted with its expanded size,
    its nesting depth and whether it has been used inside another object (then it is sealed:
    no later change)."""

    def __init__(self, stream: BinaryIO, names: Names, budget: Budget,
                 persistent_load: Callable[[Any], Any] | None = None) -> None:
        self.stream, self.names, self.budget, self.persistent_load = stream, names, budget, persistent_load
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
            what = f"the global {target.name}" if isinstance(target, (Call, Class)) else f"a {type(target).__name__}"
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
        entry = self.names.globals.get((module, name))
        if entry is None:
            raise UnsafePickleError(f"refused to load: the file asks to call {shown(module)}.{shown(name)}, "
                                    "which is not model data")
        self.stack.append(entry)


# -- opcode handlers: each takes (machine, argument) and returns True at STOP --------------------


def _push_arg(m: Machine, arg: Any) -> None:
    m.stack.append(arg)


def _push(value: Any) -> Callable[[Machine, Any], None]:
    return lambda m, arg: m.stack.append(value)


def _new(kind: type) -> Callable[[Machine, Any], None]:
    return lambda m, arg: m.stack.append(m.note(kind()))


def _tuple_of(n: int) -> Callable[[Machine, Any], None]:
    def handler(m: Machine, arg: Any) -> None:
        items = [m.pop() for _ in range(n)][::-1]
        m.stack.append(m.note(tuple(items), items))

    return handler


def _op_tuple(m: Machine, arg: Any) -> None:
    items = m.pop_mark()
    m.stack.append(m.note(tuple(items), items))


def _op_list(m: Machine, arg: Any) -> None:
    items = m.pop_mark()
    m.stack.append(m.note(list(items), items))


def _pairs(m: Machine, items: list[Any]) -> list[tuple[Any, Any]]:
    if len(items) % 2:
        raise pickle.UnpicklingError("the pickle gives a key without a value")
    pairs = list(zip(items[::2], items[1::2]))
    for key, _ in pairs:
        m.check_key(key)
    return pairs


def _op_dict(m: Machine, arg: Any) -> None:
    items = m.pop_mark()
    pairs = _pairs(m, items)
    m.stack.append(m.note(dict(pairs), items))


def _op_frozenset(m: Machine, arg: Any) -> None:
    items = m.pop_mark()
    for item in items:
        m.check_key(item)
    m.stack.append(m.note(frozenset(items), items))


def _op_append(m: Machine, arg: Any) -> None:
    item = m.pop()
    target = m.top()
    m.grow(target, (list,), (item,))
    target.append(item)


def _op_appends(m: Machine, arg: Any) -> None:
    items = m.pop_mark()
    target = m.top()
    m.grow(target, (list,), items)
    target.extend(items)


def _op_setitem(m: Machine, arg: Any) -> None:
    value = m.pop()
    key = m.pop()
    target = m.top()
    m.check_key(key)
    m.grow(target, (dict,), (key, value))
    target[key] = value


def _op_setitems(m: Machine, arg: Any) -> None:
    items = m.pop_mark()
    target = m.top()
    pairs = _pairs(m, items)
    m.grow(target, (dict,), items)
    for key, value in pairs:
        target[key] = value


def _op_additems(m: Machine, arg: Any) -> None:
    items = m.pop_mark()
    target = m.top()
    for item in items:
        m.check_key(item)
    m.grow(target, (set,), items)
    target.update(items)


def _op_pop(m: Machine, arg: Any) -> None:
    if m.marks and m.marks[-1] == len(m.stack):
        m.pop_mark()
    else:
        m.pop()


def _op_pop_mark(m: Machine, arg: Any) -> None:
    m.pop_mark()


def _op_dup(m: Machine, arg: Any) -> None:
    m.stack.append(m.top())


def _op_mark(m: Machine, arg: Any) -> None:
    m.marks.append(len(m.stack))


def _op_put(m: Machine, arg: Any) -> None:
    if not isinstance(arg, int) or arg < 0:
        raise pickle.UnpicklingError("the pickle uses a negative memo index")
    m.memo[arg] = m.top()


def _op_memoize(m: Machine, arg: Any) -> None:
    m.memo[len(m.memo)] = m.top()


def _op_get(m: Machine, arg: Any) -> None:
    try:
        m.stack.append(m.memo[arg])
    except (KeyError, TypeError):
        raise pickle.UnpicklingError("the pickle refers to a memo entry it never made") from None


def _op_global(m: Machine, arg: Any) -> None:
    module, _, name = str(arg).partition(" ")
    m.push_global(module, name)


def _op_stack_global(m: Machine, arg: Any) -> None:
    name = m.pop()
    module = m.pop()
    m.push_global(module, name)


def _op_reduce(m: Machine, arg: Any) -> None:
    args = m.pop()
    func = m.top()
    if not isinstance(args, tuple):
        raise UnsafePickleError("refused to load: a call whose arguments are not a tuple")
    if isinstance(func, Class):
        no_args(func.name, args)
        result = func.cls()
    elif isinstance(func, Call):
        result = func.fn(m, *args)
    else:
        raise UnsafePickleError(f"refused to load: the pickle calls a {type(func).__name__}, which is not a data constructor")
    m.stack[-1] = m.note(result, (args,))


def _op_newobj(m: Machine, arg: Any) -> None:
    args = m.pop()
    cls = m.pop()
    if not isinstance(cls, Class):
        raise UnsafePickleError(f"refused to load: the pickle instantiates a {type(cls).__name__}, which is not a record class")
    if not isinstance(args, tuple):
        raise UnsafePickleError("refused to load: a call whose arguments are not a tuple")
    no_args(cls.name, args)
    m.stack.append(m.note(cls.cls(), (args,)))


def _op_newobj_ex(m: Machine, arg: Any) -> None:
    kwargs = m.pop()
    args = m.pop()
    if kwargs:
        raise UnsafePickleError("refused to load: a record class called with keyword arguments")
    m.stack.append(args)
    _op_newobj(m, arg)


def _op_build(m: Machine, arg: Any) -> None:
    state = m.pop()
    target = m.top()
    m.grow(target, tuple(m.names.builds), (state,))
    check = next(check for kind, check in m.names.builds.items() if isinstance(target, kind))
    check(state)
    target.__setstate__(state)


def _op_binpersid(m: Machine, arg: Any) -> None:
    pid = m.pop()
    if m.persistent_load is None:
        raise UnsafePickleError("refused to load: the pickle references external persistent storage")
    m.stack.append(m.note(m.persistent_load(pid), (pid,)))


def _op_proto(m: Machine, arg: Any) -> None:
    if not isinstance(arg, int) or not 0 <= arg <= 5:
        raise pickle.UnpicklingError("the pickle declares an unknown protocol")


def _op_stop(m: Machine, arg: Any) -> bool:
    return True


_HANDLERS: dict[str, Callable[[Machine, Any], Any]] = {
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


def run(stream: BinaryIO, names: Names, budget: Budget | None = None,
        persistent_load: Callable[[Any], Any] | None = None) -> Any:
    """Run one pickle from `stream` (which is left just after its STOP) and return its object.

    Raises UnsafePickleError (refused), pickle.UnpicklingError (damaged) or limits.LimitError."""
    return Machine(stream, names, budget or Budget(), persistent_load).run()


