"""Untrusted containers: zip archives checked before they are read, and PyTorch's two
checkpoint layouts, read without torch and without running the file's code.

Used by ``checkpoint.read_torch_checkpoint`` and ``checkpoint.load_weights`` (the zip checks);
the memory bound these checks keep is stated in ``checkpoint``'s docstring.

Why a whitelisting unpickler: a PyTorch checkpoint is a pickle, and a pickle is a small program
that may name any importable function (``os.system``, ``builtins.eval``) and call it with
arguments of its choice, so ``pickle.load`` on a downloaded file runs whatever its author wanted.
The reader below gives the pickle machine inert local stand-ins for the few names a plain state
dict uses (``_RestrictedUnpickler.allowed``) and refuses every other name before anything is
imported or called. The stand-ins only record what was asked for; NumPy then builds the arrays.

Why a scan before the unpickler: the unpickler allocates what an opcode declares before it can
fail (one 5-byte opcode naming memo slot 2^31 makes CPython reserve 32 GiB for the memo) and
hashes what it is given (a dict key nested 100,000 tuples deep overflows the C stack and kills
the interpreter). So each pickle is first walked opcode by opcode with ``pickletools.genops``,
which builds nothing, keeping a stack of tuple depths, and refused if it has more than
``MAX_PICKLE_OPCODES`` opcodes or ``MAX_PICKLE_TEXT`` bytes of strings and numbers (together
they bound the objects it can make), names a memo slot beyond its own opcode count, builds a
tuple nested deeper than ``MAX_TUPLE_DEPTH``, or uses the set opcodes (no state dict holds a
set; protocol 2, torch's default, cannot even write one without a global).

Legacy layout (``torch.save(..., _use_new_zipfile_serialization=False)``, PyTorch < 1.6): five
pickles in a row (the magic number 0x1950a86a20f9469cfc6c, the protocol version 1001, a dict
about the writing machine, the object, the list of storage keys), then for each listed key the
storage's element count (int64) and its raw bytes, both little-endian. In the object pickle a
tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and a storage
is the persistent id ``('storage', torch.FloatStorage, key, location, numel, view_metadata)``.

Zip layout (``torch.save`` since 1.6): a zip archive with one top folder whose name varies.
``<top>/data.pkl`` is the object pickle (persistent ids without ``view_metadata``),
``<top>/data/<key>`` the raw bytes of each storage, stored uncompressed, in the byte order named
by ``<top>/byteorder``. Storages are NumPy views of the file's bytes, never copies.

A tensor is checked against its storage before NumPy makes anything: offset + 1 + sum((n - 1) *
stride) <= the storage's length (strides of axes of length 1 are ignored, as torch ignores them).
"""
from __future__ import annotations

import io
import math
import pickle
import pickletools
import re
import struct
import zipfile
import zlib
from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from typing import Any

import numpy as np

from .checkpoint import (MAX_PICKLE_BYTES, MAX_PICKLE_OPCODES, MAX_PICKLE_TEXT, MAX_TUPLE_DEPTH, MAX_ZIP_DIRECTORY,
                         MAX_ZIP_ENTRIES, ZIP_ERRORS, CheckpointError, budget_text, array_budget, bounded_repr)

_LEGACY_MAGIC, _LEGACY_PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
_STORAGE_DTYPES = {"FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2",
                   "BFloat16Storage": None, "LongStorage": "i8", "IntStorage": "i4",
                   "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
                   "BoolStorage": "?"}  # None: NumPy has no such type
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError,
                  TypeError, AttributeError, OverflowError, MemoryError, RecursionError,
                  struct.error)
_MAX_DIM = 1 << 40  # longer axes cannot hold data within the bound; NumPy overflows on some

# Inert stand-ins: a storage class; elements [start, start + length) of storage `key` (length
# None: to its end); a tensor to build once the storage bytes are known.
_StorageType = namedtuple("_StorageType", "name dtype")
_Storage = namedtuple("_Storage", "key dtype start length")
TensorRef = namedtuple("TensorRef", "storage offset size stride")


def _is_index_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(type(v) is int and v >= 0 for v in value)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves whitelisted globals only, each to an inert local stand-in."""

    def __init__(self, stream: io.BytesIO, source: str):
        super().__init__(stream)
        self.source = source
        self.storage_dtypes: dict[str, np.dtype] = {}  # key -> dtype, in order of first use
        # Bound methods and tuples: the pickle's BUILD opcode cannot reprogram them.
        self.allowed = {("collections", "OrderedDict"): OrderedDict,
                        ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor,
                        ("torch._utils", "_rebuild_tensor"): self._rebuild_tensor,
                        ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter}
        self.allowed.update({("torch", name): _StorageType(name, dtype)
                             for name, dtype in _STORAGE_DTYPES.items()})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise CheckpointError(
                f"refusing to load {self.source!r}: its pickle asks for the global "
                f"{f'{module}.{name}'!r}, which is not one of the tensor-rebuilding names this "
                "reader allows; nothing was executed")
        return self.allowed[module, name]

    def persistent_load(self, pid: Any) -> _Storage:
        bad = f"{self.source!r}: malformed storage reference {bounded_repr(pid)}"
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise CheckpointError(bad)
        stype, key, _location, numel, *view = pid[1:]
        if not isinstance(stype, _StorageType):
            raise CheckpointError(f"{self.source!r}: unknown storage type {bounded_repr(stype)}")
        if stype.dtype is None:
            raise CheckpointError(f"{self.source!r} holds {stype.name} (bfloat16) tensors, which "
                                  "NumPy cannot represent; convert them to float32 first")
        if not isinstance(key, str) or type(numel) is not int:
            raise CheckpointError(bad)
        dtype = np.dtype(stype.dtype)
        if self.storage_dtypes.setdefault(key, dtype) != dtype:
            raise CheckpointError(f"{self.source!r}: storage {key!r} is used with two dtypes")
        if not view or view[0] is None:
            return _Storage(key, dtype, 0, None)
        if not (isinstance(view[0], tuple) and len(view[0]) == 3
                and _is_index_tuple(view[0][1:])):
            raise CheckpointError(bad)
        return _Storage(key, dtype, *view[0][1:])  # a slice of the stored storage `key`

    def _rebuild_tensor(self, storage, offset, size, stride, *_ignored) -> TensorRef:
        if not (isinstance(storage, _Storage) and _is_index_tuple((offset,))
                and _is_index_tuple(size) and _is_index_tuple(stride)
                and len(size) == len(stride)):
            raise CheckpointError(f"{self.source!r}: malformed tensor record "
                                  f"{bounded_repr((storage, offset, size, stride))}")
        return TensorRef(storage, offset, size, stride)

    def _rebuild_parameter(self, data, *_ignored) -> Any:
        return data  # the tensor inside; checked with the other entries at the end


# --- Zip archives, checked before any entry is read -----------------------------------------

def _directory_size(file, size: int) -> tuple[int, int] | None:
    """(entries, bytes) of a zip's central directory as its end record declares them."""
    tail_size = min(size, 22 + 0xFFFF)                    # the record and the longest comment
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    return struct.unpack_from("<HI", tail, at + 10) if 0 <= at <= len(tail) - 22 else None


def checked_zip_entries(file, size: int, source: str) -> tuple[zipfile.ZipFile, list]:
    """Open the zip archive `file` (`size` bytes) once its directory and entries are checked.

    Returns
    -------
    archive : zipfile.ZipFile, to be closed by the caller
    entries : list of (zipfile.ZipInfo, int), each entry and the offset of its data in the file

    Raises
    ------
    CheckpointError
        If the archive is corrupt, has more than ``MAX_ZIP_ENTRIES`` entries or a directory of
        more than ``MAX_ZIP_DIRECTORY`` bytes, an entry that is encrypted, compressed other
        than with deflate, extends past the end of the file or shares bytes with another (one
        stored byte read many times), or entries that would expand beyond ``array_budget``.
    """
    declared = _directory_size(file, size)
    if declared and (declared[0] > MAX_ZIP_ENTRIES or declared[1] > MAX_ZIP_DIRECTORY):
        raise CheckpointError(f"refusing {source!r}: its zip directory declares {declared[0]} entries in "
                              f"{declared[1]} bytes; a weights file has at most {MAX_ZIP_ENTRIES} entries "
                              f"in {MAX_ZIP_DIRECTORY} bytes")
    try:
        archive = zipfile.ZipFile(file)
    except ZIP_ERRORS as exc:
        raise CheckpointError(f"{source!r} is a corrupt or truncated zip archive "
                              f"({type(exc).__name__}: {exc})") from exc
    try:
        return archive, _checked_entries(archive, file, size, source)
    except BaseException:
        archive.close()
        raise


def _checked_entries(archive: zipfile.ZipFile, file, size: int, source: str) -> list:
    infos, entries, spans = archive.infolist(), [], []
    if len(infos) > MAX_ZIP_ENTRIES:
        raise CheckpointError(f"refusing {source!r}: its zip archive has {len(infos)} entries; a weights "
                              f"file has at most {MAX_ZIP_ENTRIES}")
    for info in infos:
        name = info.filename
        if info.flag_bits & 1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"{source!r}: zip entry {name!r} is encrypted or compressed with method "
                                  f"{info.compress_type}; expected stored or deflated entries")
        file.seek(info.header_offset)
        local = file.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04" or (
                info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size):
            raise CheckpointError(f"{source!r} is a corrupt or truncated zip archive: entry {name!r} has "
                                  f"no valid header at byte {info.header_offset}")
        start = info.header_offset + 30 + sum(struct.unpack_from("<HH", local, 26))
        if start + info.compress_size > size:
            raise CheckpointError(f"{source!r} is truncated or corrupt: zip entry {name!r} ends at byte "
                                  f"{start + info.compress_size} of a {size}-byte file")
        entries.append((info, start))
        spans.append((info.header_offset, start + info.compress_size, name))
    spans.sort()
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            raise CheckpointError(f"refusing {source!r}: zip entries {first!r} and {second!r} share bytes "
                                  "(an archive whose entries overlap reads the same bytes many times)")
    total = sum(info.file_size for info in infos)
    if total > array_budget(size):
        big = max(infos, key=lambda info: info.file_size)
        raise CheckpointError(f"refusing {source!r}: its zip entries would expand to {total} bytes ({big.filename!r}: "
                              f"{big.file_size} bytes from {big.compress_size}), more than {budget_text(size)}; "
                              "refused before inflating (save weights uncompressed, with np.savez)")
    return entries


# --- The scan: what a pickle would build, judged before the unpickler runs ------------------

def _opcode_kind(name: str) -> str:
    """How the scan treats an opcode: by what it does to the depth of tuples on the stack."""
    kinds = {"tuple": ("EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"),
             "flat": ("EMPTY_LIST", "EMPTY_DICT", "LIST", "DICT", "APPEND", "APPENDS", "SETITEM",
                      "SETITEMS"),                  # lists and dicts, which no hash recurses into
             "set": ("EMPTY_SET", "ADDITEMS", "FROZENSET"), "long": ("LONG", "LONG1", "LONG4"),
             "get": ("GET", "BINGET", "LONG_BINGET"), "put": ("PUT", "BINPUT", "LONG_BINPUT"),
             "memoize": ("MEMOIZE",), "mark": ("MARK",), "pop": ("POP",)}
    return next((kind for kind, names in kinds.items() if name in names), "other")


# opcode -> (its name, the position of the MARK it pops or -1, how many items it pops, pushes, kind)
_OPCODES = {op: (op.name, op.stack_before.index(pickletools.markobject) if pickletools.markobject in op.stack_before
                 else -1, len(op.stack_before), len(op.stack_after), _opcode_kind(op.name))
            for op in pickletools.opcodes}


def _scan_pickle(stream: io.BytesIO, source: str) -> None:
    """Walk the pickle at the stream's position (genops builds nothing); refuse it as the module
    docstring says. Parse errors are left to the caller (ValueError); the stream ends after STOP.

    The stack and the memo hold, for each object, the depth of the tuples it may contain (a
    conservative bound: what a call returns gets the deepest of its arguments).
    """
    stack, marks, memo, filled, text = [], [], [], 0, 0
    for count, (opcode, arg, _pos) in enumerate(pickletools.genops(stream), 1):
        name, mark, pops, pushes, kind = _OPCODES[opcode]
        if type(arg) in (str, bytes, bytearray):
            text += len(arg)
        elif kind == "long":
            text += arg.bit_length() // 8
        if count > MAX_PICKLE_OPCODES or text > MAX_PICKLE_TEXT:
            raise CheckpointError(f"refusing {source!r}: a pickle of more than {MAX_PICKLE_OPCODES} opcodes "
                                  f"or {MAX_PICKLE_TEXT} bytes of text, far more than a state dict needs")
        if kind == "set":
            raise CheckpointError(f"refusing {source!r}: its pickle builds a set ({name}), which no state dict holds")
        if kind == "put" and not 0 <= arg < count:
            raise CheckpointError(f"refusing {source!r}: its pickle names memo slot {arg} after {count} opcodes "
                                  "(the unpickler would reserve memory for every slot below it)")
        if kind == "mark":
            marks.append(len(stack))
            continue
        floor = marks[-1] if marks else 0
        if mark >= 0 or (kind == "pop" and marks and floor == len(stack)):   # pops up to a MARK
            if not marks:
                raise ValueError(f"{name} without a MARK")
            bottom = marks.pop() - max(mark, 0)
            if bottom < (marks[-1] if marks else 0):
                raise ValueError(f"{name} pops more than the stack holds")
            depth = max(stack[bottom:], default=0)
            del stack[bottom:]
        elif len(stack) - pops < floor:
            raise ValueError(f"{name} pops more than the stack holds")
        elif pops:                                       # the hot path allocates nothing
            depth = stack.pop() if pops == 1 else max(stack.pop(), stack.pop(), stack.pop() if pops == 3 else 0)
        else:
            depth = 0
        if kind == "get":
            depth = memo[arg] if 0 <= arg < len(memo) and memo[arg] is not None else 0
        elif kind in ("flat", "tuple"):
            depth = 0 if kind == "flat" else depth + 1
        if depth > MAX_TUPLE_DEPTH:
            raise CheckpointError(f"refusing {source!r}: its pickle nests tuples more than {MAX_TUPLE_DEPTH} "
                                  "deep (hashing them would overflow the C stack)")
        if pushes:
            stack.append(depth)
            if pushes == 2:                              # DUP
                stack.append(depth)
        if kind in ("put", "memoize") and stack:
            slot = filled if kind == "memoize" else arg        # slots < count: the list stays small
            memo.extend([None] * (slot + 1 - len(memo)))
            filled += memo[slot] is None
            memo[slot] = stack[-1]


def _load(stream: io.BytesIO, source: str, what: str,
          unpickler: _RestrictedUnpickler | None = None) -> Any:
    """The next pickle of the stream, scanned then unpickled. Parse errors come as a
    CheckpointError whose ``__cause__`` is the error; refusals have none."""
    start = stream.tell()
    try:
        _scan_pickle(stream, source)
        stream.seek(start)
        return (unpickler or _RestrictedUnpickler(stream, source)).load()
    except CheckpointError:
        raise
    except _PICKLE_ERRORS as exc:
        raise CheckpointError(f"{source!r} is truncated or corrupt: cannot read {what} "
                              f"({type(exc).__name__}: {bounded_repr(str(exc))})") from exc


def _read_legacy(data: bytes, source: str) -> tuple[Any, dict[str, np.ndarray]]:
    stream = io.BytesIO(data)
    try:
        magic = _load(stream, source, "the magic number")
    except CheckpointError as exc:
        if exc.__cause__ is None:                                    # a refusal, not a parse error
            raise
        magic = exc.__cause__
    if type(magic) is not int or magic != _LEGACY_MAGIC:
        raise CheckpointError(f"{source!r} is not a PyTorch checkpoint, or is truncated: it is "
                              "not a zip archive and does not begin with the legacy format's "
                              f"magic number (found {bounded_repr(magic)})")
    protocol = _load(stream, source, "the protocol version")
    if protocol != _LEGACY_PROTOCOL:
        raise CheckpointError(f"{source!r}: legacy protocol {bounded_repr(protocol)} is not supported")
    _load(stream, source, "the system information")
    unpickler = _RestrictedUnpickler(stream, source)
    obj = _load(stream, source, "the object pickle", unpickler)
    keys = _load(stream, source, "the list of storage keys")
    if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)
            and set(keys) == set(unpickler.storage_dtypes)):
        raise CheckpointError(f"{source!r}: the list of stored storages {bounded_repr(keys)} does not "
                              f"match the storages the tensors use")
    storages, position = {}, stream.tell()
    for key in keys:
        dtype = unpickler.storage_dtypes[key].newbyteorder("<")
        header = data[position:position + 8]
        count = struct.unpack("<q", header)[0] if len(header) == 8 else -1
        end = position + 8 + count * dtype.itemsize
        if count < 0 or end > len(data):
            raise CheckpointError(f"{source!r} is truncated: the data of storage {key!r} is cut "
                                  f"short at byte {len(data)}")
        storages[key] = np.frombuffer(data, dtype, count, position + 8)  # a view: no copy
        position = end
    return obj, storages


def _read_zip(data: bytes, source: str) -> tuple[Any, dict[str, np.ndarray]]:
    archive, entries = checked_zip_entries(io.BytesIO(data), len(data), source)
    names = {info.filename: (info, start) for info, start in entries}
    pickles = [name for name in names if re.fullmatch(r"[^/]+/data\.pkl", name)]
    if len(pickles) != 1:
        raise CheckpointError(f"{source!r} is a zip archive but not a PyTorch checkpoint:"
                              f" expected one '<folder>/data.pkl' entry, found "
                              f"{len(pickles)} among {list(names)[:5]}")
    top = pickles[0][:-len("data.pkl")]
    packed = [info.filename for info, _ in entries if info.compress_type != zipfile.ZIP_STORED]
    if packed:                                    # torch never compresses: no zip bombs
        raise CheckpointError(f"{source!r}: compressed entries {bounded_repr(packed)}; a PyTorch "
                              "checkpoint stores its entries uncompressed")
    if names[pickles[0]][0].file_size > MAX_PICKLE_BYTES:
        raise CheckpointError(f"refusing {source!r}: its data.pkl has {names[pickles[0]][0].file_size} "
                              f"bytes, more than the {MAX_PICKLE_BYTES} a state dict's pickle can need")
    try:
        with archive:
            order = (archive.read(top + "byteorder").decode("ascii", "replace").strip()
                     if top + "byteorder" in names else "little")
            stream = io.BytesIO(archive.read(pickles[0]))
    except ZIP_ERRORS as exc:
        raise CheckpointError(f"{source!r} is a corrupt or truncated zip archive "
                              f"({type(exc).__name__}: {exc})") from exc
    if order not in ("little", "big"):
        raise CheckpointError(f"{source!r}: unknown byte order {bounded_repr(order)}")
    unpickler = _RestrictedUnpickler(stream, source)
    obj = _load(stream, source, "data.pkl", unpickler)
    storages = {}
    for key, dtype in unpickler.storage_dtypes.items():
        if f"{top}data/{key}" not in names:
            raise CheckpointError(f"{source!r}: storage {key!r} has no data entry")
        info, start = names[f"{top}data/{key}"]
        if zlib.crc32(memoryview(data)[start:start + info.file_size]) != info.CRC:
            raise CheckpointError(f"{source!r} is a corrupt or truncated zip archive (BadZipFile: "
                                  f"Bad CRC-32 for file {info.filename!r})")
        dtype = dtype.newbyteorder("<" if order == "little" else ">")
        storages[key] = np.frombuffer(data, dtype, info.file_size // dtype.itemsize, start)  # no copy
    return obj, storages


def read_state_dict(data: bytes, source: str) -> tuple[dict[str, TensorRef], dict[str, np.ndarray]]:
    """The tensor records of a ``torch.save`` file's bytes (zip or legacy), unwrapped from a
    ``'state_dict'`` / ``'model_state_dict'`` entry, and the storages they view (views of
    `data`). Nothing is allocated for the tensors yet: ``tensor_array`` makes each one."""
    obj, storages = (_read_zip if data[:2] == b"PK" else _read_legacy)(data, source)
    if isinstance(obj, Mapping):
        obj = next((obj[key] for key in ("state_dict", "model_state_dict")
                    if isinstance(obj.get(key), Mapping)), obj)
    expected = "expected a mapping of str names to tensors (a state dict)"
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source!r} holds an object of type {type(obj).__name__}; "
                              f"{expected}")
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, TensorRef):
            kind, found = ("key", key) if not isinstance(key, str) else ("entry", value)
            raise CheckpointError(f"{source!r}: {kind} {bounded_repr(key)} is of type "
                                  f"{type(found).__name__}; {expected}")
    return dict(obj), storages


def tensor_array(name: str, ref: TensorRef, storages: dict[str, np.ndarray], source: str,
                 room: int, limit: str) -> np.ndarray:
    """Tensor `name` as an owned C-contiguous array in native byte order, once its record is
    checked against its storage and its size against `room`, the bytes still allowed (`limit`
    says how they were counted, for the message)."""
    storage, size, bad = ref.storage, ref.size, f"{source!r}: malformed tensor record for {name!r}"
    root = storages.get(storage.key)
    if root is None:
        raise CheckpointError(f"{bad}: storage {storage.key!r} is not in the file")
    length = root.size - storage.start if storage.length is None else storage.length
    if storage.start + length > root.size:
        raise CheckpointError(f"{bad}: it views elements {storage.start} to {storage.start + length} of storage "
                              f"{storage.key!r}, which holds {root.size}")
    if any(n > _MAX_DIM for n in size):
        raise CheckpointError(f"{bad}: its shape {bounded_repr(size)} has an axis longer than 2**40")
    nbytes = math.prod(size) * root.itemsize
    if nbytes > room:
        raise CheckpointError(f"refusing {source!r}: tensor {name!r} of shape {size} and strides {ref.stride} "
                              f"would take {nbytes} bytes, more than {limit} allows; refused before allocating")
    if nbytes == 0:
        return np.zeros(size, root.dtype.newbyteorder("="))
    stride = [0 if n == 1 else s for n, s in zip(size, ref.stride)]  # torch ignores these too
    needed = ref.offset + 1 + sum((n - 1) * s for n, s in zip(size, stride))
    if needed > length:
        raise CheckpointError(f"{source!r} is truncated or corrupt: tensor {name!r} needs "
                              f"{needed} elements of storage {storage.key!r}, which holds {length}")
    start = storage.start + ref.offset
    view = np.lib.stride_tricks.as_strided(  # in bounds: checked just above
        root[start:], size, [s * root.itemsize for s in stride], writeable=False)
    return view.astype(root.dtype.newbyteorder("="), order="C")  # owned, contiguous copy
