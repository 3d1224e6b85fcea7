"""Crafted model files, written by the tests (no big binaries in the repository).

Each builder writes one file into a folder and returns its path. The files are what a hostile
or unlucky user could hand to `vjgan info`, `vjgan convert` or a preset: tiny pickles that
declare huge arrays or structures whose hashing never ends, archives that inflate a
thousandfold, safetensors headers that lie. Pickles are spelled out opcode by opcode (the
standard pickler cannot make most of them).
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

# -- pickle opcodes, spelled out -----------------------------------------------------------------


def proto(n: int = 2) -> bytes:
    return pickle.PROTO + bytes([n])


def text(s: str) -> bytes:
    b = s.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(b)) + b


def glob(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def integer(n: int) -> bytes:
    if 0 <= n < 2**31:
        return pickle.BININT + struct.pack("<i", n)
    body = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return pickle.LONG1 + bytes([len(body)]) + body


def raw(data: bytes) -> bytes:
    return pickle.BINBYTES + struct.pack("<I", len(data)) + data


def tuple_of(*items: bytes) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def call(func: bytes, *args: bytes) -> bytes:
    return func + tuple_of(*args) + pickle.REDUCE


def ordered_dict() -> bytes:
    return call(glob("collections", "OrderedDict"))


def dict_of(**items: bytes) -> bytes:
    return pickle.EMPTY_DICT + pickle.MARK + b"".join(text(k) + v for k, v in items.items()) + pickle.SETITEMS


def float_dtype() -> bytes:
    return call(glob("numpy", "dtype"), text("f8"), pickle.NEWFALSE, pickle.NEWTRUE)


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# -- pickles -------------------------------------------------------------------------------------


def _exponential_key(levels: int) -> bytes:
    key = pickle.EMPTY_TUPLE + (pickle.DUP + pickle.TUPLE2) * levels
    return proto() + pickle.EMPTY_DICT + key + pickle.NONE + pickle.SETITEM + pickle.STOP


def exponential_key(folder: Path) -> Path:
    """A dict whose key is t_n = (t_{n-1}, t_{n-1}): 2^100 nodes described in 200 bytes; hashing
    it visits every node (tuples do not cache their hash), so a plain unpickler never returns."""
    return write(folder, "exponential_key.pkl", _exponential_key(100))


def small_exponential_key(folder: Path) -> Path:
    """The same with only 2^10 nodes: small enough to build, still no key a model needs."""
    return write(folder, "small_exponential_key.pkl", _exponential_key(10))


def exponential_value(folder: Path) -> Path:
    """A generator whose 'architecture' is an exponential structure: printing it in an error
    message would never end."""
    value = pickle.EMPTY_TUPLE + (pickle.DUP + pickle.TUPLE2) * 60
    return write(folder, "exponential_value.pkl", proto() + dict_of(G_ema=value) + pickle.STOP)


def deeply_nested_lists(folder: Path, depth: int = 150_000) -> Path:
    """[[[[...]]]] 150,000 levels deep, in 300 kB."""
    data = proto() + pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1) + pickle.STOP
    return write(folder, "deeply_nested_lists.pkl", data)


def five_megabytes_of_lists(folder: Path) -> Path:
    """Five million empty lists: memory and time grow with the objects a pickle builds."""
    return write(folder, "five_megabytes_of_lists.pkl", proto() + pickle.EMPTY_LIST * 5_000_000 + pickle.STOP)


def object_array(folder: Path) -> Path:
    """A numpy array of Python objects declaring 10^9 elements (8 GB of pointers)."""
    array = call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"),
                 tuple_of(integer(0)), pickle.SHORT_BINBYTES + b"\x01b")
    dtype = call(glob("numpy", "dtype"), text("O"), pickle.NEWFALSE, pickle.NEWTRUE)
    state = tuple_of(integer(1), tuple_of(integer(10**9)), dtype, pickle.NEWFALSE, pickle.EMPTY_LIST)
    return write(folder, "object_array.pkl", proto() + array + state + pickle.BUILD + pickle.STOP)


def huge_array(folder: Path) -> Path:
    """About 70 bytes asking numpy for a 10 TB array."""
    array = call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"),
                 tuple_of(integer(10**13)), pickle.SHORT_BINBYTES + b"\x01b")
    return write(folder, "huge_array.pkl", proto() + array + pickle.STOP)


def array_bytes_missing(folder: Path) -> Path:
    """A float array declaring 10^9 elements (8 GB) whose data is 8 bytes."""
    array = call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"),
                 tuple_of(integer(0)), pickle.SHORT_BINBYTES + b"\x01b")
    state = tuple_of(integer(1), tuple_of(integer(10**9)), float_dtype(), pickle.NEWFALSE, raw(bytes(8)))
    return write(folder, "array_bytes_missing.pkl", proto() + array + state + pickle.BUILD + pickle.STOP)


def _legacy_storage_blob(numel: int, data: bytes) -> bytes:
    """A storage in torch's legacy format, as NVIDIA pickles embed one per tensor."""
    pid = tuple_of(text("storage"), glob("torch", "FloatStorage"), text("0"), text("cpu"), integer(numel), pickle.NONE)
    return (proto() + integer(0x1950A86A20F9469CFC6C) + pickle.STOP
            + proto() + integer(1001) + pickle.STOP
            + proto() + dict_of(little_endian=pickle.NEWTRUE) + pickle.STOP
            + proto() + pid + pickle.BINPERSID + pickle.STOP
            + proto() + pickle.EMPTY_LIST + text("0") + pickle.APPEND + pickle.STOP
            + struct.pack("<q", numel) + data)


def _tensor(storage: bytes, size: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    return call(glob("torch._utils", "_rebuild_tensor_v2"), storage, integer(0),
                tuple_of(*map(integer, size)), tuple_of(*map(integer, stride)), pickle.NEWFALSE, ordered_dict())


def storage_declares_terabytes(folder: Path) -> Path:
    """An NVIDIA-style pickle whose embedded storage declares 10^12 floats and holds none."""
    storage = call(glob("torch.storage", "_load_from_bytes"), raw(_legacy_storage_blob(10**12, b"")))
    return write(folder, "storage_declares_terabytes.pkl",
                 proto() + dict_of(G_ema=_tensor(storage, (10**12,), (1,))) + pickle.STOP)


def zero_stride_view(folder: Path) -> Path:
    """One stored float viewed as 2^30 elements with stride 0: copying it would take 4 GB."""
    storage = call(glob("torch.storage", "_load_from_bytes"), raw(_legacy_storage_blob(1, bytes(4))))
    return write(folder, "zero_stride_view.pkl",
                 proto() + dict_of(G_ema=_tensor(storage, (2**30,), (0,))) + pickle.STOP)


def sets_function_defaults(folder: Path) -> Path:
    """69 bytes of allowed globals that set torch._utils._rebuild_tensor_v2.__defaults__: a
    plain unpickler applies BUILD's attribute state to the function itself, and every later
    tensor load in the process breaks."""
    slots = pickle.EMPTY_DICT + text("__defaults__") + tuple_of(text("x")) + pickle.SETITEM
    data = proto() + glob("torch._utils", "_rebuild_tensor_v2") + tuple_of(pickle.NONE, slots) + pickle.BUILD + pickle.STOP
    return write(folder, "sets_function_defaults.pkl", data)


def sets_class_attribute(folder: Path) -> Path:
    """BUILD on an allowed class: would give collections.OrderedDict a new attribute."""
    slots = pickle.EMPTY_DICT + text("pwned") + pickle.NEWTRUE + pickle.SETITEM
    data = proto() + glob("collections", "OrderedDict") + tuple_of(pickle.NONE, slots) + pickle.BUILD + pickle.STOP
    return write(folder, "sets_class_attribute.pkl", data)


def list_contains_itself(folder: Path) -> Path:
    return write(folder, "list_contains_itself.pkl",
                 proto() + pickle.EMPTY_LIST + pickle.DUP + pickle.APPEND + pickle.STOP)


def changes_dict_after_use(folder: Path) -> Path:
    """A dict put in a tuple, then filled: its holder would change after it was built."""
    data = (proto() + pickle.EMPTY_DICT + pickle.BINPUT + b"\x00" + tuple_of(pickle.BINGET + b"\x00") + pickle.POP
            + pickle.BINGET + b"\x00" + text("late") + pickle.NONE + pickle.SETITEM + pickle.STOP)
    return write(folder, "changes_dict_after_use.pkl", data)


def byte_swaps_shared_dtype(folder: Path) -> Path:
    """numpy.dtype('f8', copy=False) is numpy's shared float64; BUILD with a '>' state would
    make every float64 array in the process big-endian. vjgan hands out copies only."""
    dtype = call(glob("numpy", "dtype"), text("f8"), pickle.NEWFALSE, pickle.NEWFALSE)
    state = tuple_of(integer(3), text(">"), pickle.NONE, pickle.NONE, pickle.NONE, integer(-1), integer(-1), integer(0))
    return write(folder, "byte_swaps_shared_dtype.pkl", proto() + dtype + state + pickle.BUILD + pickle.STOP)


# -- torch zip archives --------------------------------------------------------------------------


def _zip(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip archive from (name, payload, method, crc32, uncompressed size): payloads may be
    pre-compressed, which the standard zipfile writer cannot take."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, payload, method, crc, size in entries:
        offset = out.tell()
        encoded = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(payload), size, len(encoded), 0))
        out.write(encoded + payload)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(payload), size,
                                  len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
    start = out.tell()
    out.write(central.getvalue())
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central.getvalue()), start, 0))
    return out.getvalue()


def _stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, zipfile.ZIP_STORED, zlib.crc32(data), len(data)


def _rosinality_pickle(numel: int, size: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    storage = tuple_of(text("storage"), glob("torch", "FloatStorage"), text("0"), text("cpu"), integer(numel)) + pickle.BINPERSID
    g_ema = pickle.EMPTY_DICT + text("style.1.weight") + _tensor(storage, size, stride) + pickle.SETITEM
    return proto() + dict_of(g_ema=g_ema) + pickle.STOP


def zip_storage_inflates(folder: Path) -> Path:
    """A 4 MB torch zip whose one storage inflates to 4 GB (2^30 − 1 floats of zeros)."""
    chunk = 64 * 1024 * 1024
    total = 4 * (2**30 - 1)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)  # self-contained: repeatable
    tail_len = total - 63 * chunk
    tail = compressor.compress(bytes(tail_len)) + compressor.flush()
    crc = 0
    zeros = bytes(chunk)
    for _ in range(63):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(zeros[:tail_len], crc)
    numel = total // 4
    entries = [_stored("archive/data.pkl", _rosinality_pickle(numel, (numel,), (1,))),
               _stored("archive/byteorder", b"little"),
               ("archive/data/0", block * 63 + tail, zipfile.ZIP_DEFLATED, crc, total)]
    return write(folder, "zip_storage_inflates.pt", _zip(entries))


def zip_entry_size_lies(folder: Path) -> Path:
    """A stored entry whose directory claims 4 GB in a file of a few hundred bytes."""
    numel = 2**30 - 1
    entries = [_stored("archive/data.pkl", _rosinality_pickle(numel, (numel,), (1,))),
               ("archive/data/0", bytes(16), zipfile.ZIP_STORED, zlib.crc32(bytes(16)), 4 * numel)]
    return write(folder, "zip_entry_size_lies.pt", _zip(entries))


def zip_zero_stride_view(folder: Path) -> Path:
    entries = [_stored("archive/data.pkl", _rosinality_pickle(1, (2**30,), (0,))), _stored("archive/data/0", bytes(4))]
    return write(folder, "zip_zero_stride_view.pt", _zip(entries))


# -- safetensors ---------------------------------------------------------------------------------


def _small_vjgan_model() -> bytes:
    import torch

    from vjgan.gan.networks import Generator, GeneratorConfig
    from vjgan.gan.own_format import FORMAT_TAG, FORMAT_VERSION
    from safetensors.torch import save

    torch.manual_seed(0)
    G = Generator(GeneratorConfig.from_channel_base(z_dim=16, w_dim=16, img_resolution=8, mapping_layers=2,
                                                    channel_base=64, channel_max=8))
    meta = {"format": FORMAT_TAG, "format_version": FORMAT_VERSION, "config": G.config.to_json()}
    return save({k: v.contiguous() for k, v in G.state_dict().items()}, metadata=meta)


def _split(data: bytes) -> tuple[dict, bytes]:
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def _join(header: dict, body: bytes) -> bytes:
    text_ = json.dumps(header).encode()
    return len(text_).to_bytes(8, "little") + text_ + body


def _with_config(folder: Path, name: str, **changes: object) -> Path:
    header, body = _split(_small_vjgan_model())
    config = json.loads(header["__metadata__"]["config"])
    config.update(changes)
    header["__metadata__"]["config"] = json.dumps(config)
    return write(folder, name, _join(header, body))


def safetensors_millions_of_layers(folder: Path) -> Path:
    return _with_config(folder, "millions_of_layers.safetensors", mapping_layers=2_000_000)


def safetensors_huge_z_dim(folder: Path) -> Path:
    return _with_config(folder, "huge_z_dim.safetensors", z_dim=2**28)


def safetensors_config_beyond_tensors(folder: Path) -> Path:
    """Within every limit, but 1024 px with 4096 channels per block (about 12 GB of weights)
    over tensors for an 8 px network: refused by comparing shapes before allocating."""
    channels = {str(2**i): 4096 for i in range(2, 11)}
    return _with_config(folder, "config_beyond_tensors.safetensors", img_resolution=1024, channels=channels)


def safetensors_huge_header(folder: Path) -> Path:
    data = _small_vjgan_model()
    return write(folder, "huge_header.safetensors", (2**62).to_bytes(8, "little") + data[8:])


def safetensors_offsets_beyond_file(folder: Path) -> Path:
    header, body = _split(_small_vjgan_model())
    name = next(k for k in header if k != "__metadata__")
    begin = header[name]["data_offsets"][0]
    header[name]["data_offsets"] = [begin, begin + 10**12]
    return write(folder, "offsets_beyond_file.safetensors", _join(header, body))


# name → (builder, a word the one-line refusal must contain)
CRAFTED = {
    "exponential_key.pkl": (exponential_key, "counting repeated references"),
    "small_exponential_key.pkl": (small_exponential_key, "dictionary key"),
    "exponential_value.pkl": (exponential_value, "counting repeated references"),
    "deeply_nested_lists.pkl": (deeply_nested_lists, "more than 100 deep"),
    "five_megabytes_of_lists.pkl": (five_megabytes_of_lists, "more than 200,000 objects"),
    "object_array.pkl": (object_array, "other than numbers"),
    "huge_array.pkl": (huge_array, "10,000,000,000,000 elements"),
    "array_bytes_missing.pkl": (array_bytes_missing, "declares 8,000,000,000 bytes"),
    "storage_declares_terabytes.pkl": (storage_declares_terabytes, "1,000,000,000,000 elements"),
    "zero_stride_view.pkl": (zero_stride_view, "from a storage of 1"),
    "sets_function_defaults.pkl": (sets_function_defaults, "did not make"),
    "sets_class_attribute.pkl": (sets_class_attribute, "did not make"),
    "list_contains_itself.pkl": (list_contains_itself, "contains itself"),
    "changes_dict_after_use.pkl": (changes_dict_after_use, "after using it"),
    "byte_swaps_shared_dtype.pkl": (byte_swaps_shared_dtype, "not a generator"),
    "zip_storage_inflates.pt": (zip_storage_inflates, "compressed"),
    "zip_entry_size_lies.pt": (zip_entry_size_lies, "more than the file holds"),
    "zip_zero_stride_view.pt": (zip_zero_stride_view, "from a storage of 1"),
    "millions_of_layers.safetensors": (safetensors_millions_of_layers, "mapping_layers 2000000"),
    "huge_z_dim.safetensors": (safetensors_huge_z_dim, "z_dim 268435456"),
    "config_beyond_tensors.safetensors": (safetensors_config_beyond_tensors, "is missing"),
    "huge_header.safetensors": (safetensors_huge_header, "header declares more bytes than the file holds"),
    "offsets_beyond_file.safetensors": (safetensors_offsets_beyond_file, "outside the file's data"),
}
