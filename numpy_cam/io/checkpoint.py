"""Weights I/O with NumPy only: PyTorch checkpoints in, the project's ``.npz`` format in and out.

Why a whitelisting unpickler: a PyTorch checkpoint is a pickle, and a pickle is a small program
that may name any importable function (``os.system``, ``builtins.eval``) and call it with
arguments of its choice, so ``pickle.load`` on a downloaded file runs whatever its author wanted.
The reader below gives the pickle machine inert local stand-ins for the few names a plain state
dict uses (``_RestrictedUnpickler.allowed``) and refuses every other name before anything is
imported or called. The stand-ins only record what was asked for; NumPy then builds the arrays.
torch is never imported.

Legacy layout (``torch.save(..., _use_new_zipfile_serialization=False)``, PyTorch < 1.6): five
pickles in a row (the magic number 0x1950a86a20f9469cfc6c, the protocol version 1001, a dict
about the writing machine, the object, the list of storage keys), then for each listed key the
storage's element count (int64) and its raw bytes, both little-endian. In the object pickle a
tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and a storage
is the persistent id ``('storage', torch.FloatStorage, key, location, numel, view_metadata)``.

Zip layout (``torch.save`` since 1.6): a zip archive with one top folder whose name varies.
``<top>/data.pkl`` is the object pickle (persistent ids without ``view_metadata``),
``<top>/data/<key>`` the raw bytes of each storage, in the byte order named by ``<top>/byteorder``.

The project's format is an ``.npz`` keyed by state-dict names plus a JSON record under
``__metadata__``; it loads with ``allow_pickle=False``.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import re
import reprlib
import struct
import tempfile
import zipfile
import zlib
from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["CheckpointError", "read_torch_checkpoint", "save_weights", "load_weights",
           "sha256_of_file", "check_state_dict"]

_LEGACY_MAGIC, _LEGACY_PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
_METADATA_KEY = "__metadata__"
_STORAGE_DTYPES = {"FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2",
                   "BFloat16Storage": None, "LongStorage": "i8", "IntStorage": "i4",
                   "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
                   "BoolStorage": "?"}  # None: NumPy has no such type
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError,
                  TypeError, AttributeError, OverflowError, MemoryError, struct.error)
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
               ValueError, OSError, struct.error)

# Inert stand-ins: a storage class; elements [start, start + length) of storage `key` (length
# None: to its end); a tensor to build once the storage bytes are known.
_StorageType = namedtuple("_StorageType", "name dtype")
_Storage = namedtuple("_Storage", "key dtype start length")
_TensorRef = namedtuple("_TensorRef", "storage offset size stride")


class CheckpointError(ValueError):
    """A weights file is malformed, unsafe, or does not hold what was expected."""


def _short(value: Any) -> str:
    """A bounded repr of an object from an untrusted pickle (limits depth and length)."""
    return reprlib.repr(value)


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
        bad = f"{self.source!r}: malformed storage reference {_short(pid)}"
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise CheckpointError(bad)
        stype, key, _location, numel, *view = pid[1:]
        if not isinstance(stype, _StorageType):
            raise CheckpointError(f"{self.source!r}: unknown storage type {_short(stype)}")
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

    def _rebuild_tensor(self, storage, offset, size, stride, *_ignored) -> _TensorRef:
        if not (isinstance(storage, _Storage) and _is_index_tuple((offset,))
                and _is_index_tuple(size) and _is_index_tuple(stride)
                and len(size) == len(stride)):
            raise CheckpointError(f"{self.source!r}: malformed tensor record "
                                  f"{_short((storage, offset, size, stride))}")
        return _TensorRef(storage, offset, size, stride)

    def _rebuild_parameter(self, data, *_ignored) -> Any:
        return data  # the tensor inside; checked with the other entries at the end


def _unpickle(unpickler: _RestrictedUnpickler, what: str) -> Any:
    try:
        return unpickler.load()
    except CheckpointError:
        raise
    except _PICKLE_ERRORS as exc:
        raise CheckpointError(f"{unpickler.source!r} is truncated or corrupt: cannot read "
                              f"{what} ({type(exc).__name__}: {exc})") from exc


def _read_legacy(data: bytes, source: str) -> tuple[Any, dict[str, np.ndarray]]:
    stream = io.BytesIO(data)
    try:
        magic = _RestrictedUnpickler(stream, source).load()
    except _PICKLE_ERRORS as exc:
        if isinstance(exc, CheckpointError):
            raise
        magic = exc
    if type(magic) is not int or magic != _LEGACY_MAGIC:
        raise CheckpointError(f"{source!r} is not a PyTorch checkpoint, or is truncated: it is "
                              "not a zip archive and does not begin with the legacy format's "
                              f"magic number (found {_short(magic)})")
    protocol = _unpickle(_RestrictedUnpickler(stream, source), "the protocol version")
    if protocol != _LEGACY_PROTOCOL:
        raise CheckpointError(f"{source!r}: legacy protocol {_short(protocol)} is not supported")
    _unpickle(_RestrictedUnpickler(stream, source), "the system information")
    unpickler = _RestrictedUnpickler(stream, source)
    obj = _unpickle(unpickler, "the object pickle")
    keys = _unpickle(_RestrictedUnpickler(stream, source), "the list of storage keys")
    if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)
            and set(keys) == set(unpickler.storage_dtypes)):
        raise CheckpointError(f"{source!r}: the list of stored storages {_short(keys)} does not "
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
        storages[key] = np.frombuffer(data, dtype, count, position + 8)
        position = end
    return obj, storages


def _read_zip(data: bytes, source: str) -> tuple[Any, dict[str, np.ndarray]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            pickles = [name for name in names if re.fullmatch(r"[^/]+/data\.pkl", name)]
            if len(pickles) != 1:
                raise CheckpointError(f"{source!r} is a zip archive but not a PyTorch checkpoint:"
                                      f" expected one '<folder>/data.pkl' entry, found "
                                      f"{len(pickles)} among {names[:5]}")
            top = pickles[0][:-len("data.pkl")]
            packed = [i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED]
            if packed:                                    # torch never compresses: no zip bombs
                raise CheckpointError(f"{source!r}: compressed entries {_short(packed)}; a PyTorch "
                                      "checkpoint stores its entries uncompressed")
            order = (archive.read(top + "byteorder").decode("ascii", "replace").strip()
                     if top + "byteorder" in names else "little")
            if order not in ("little", "big"):
                raise CheckpointError(f"{source!r}: unknown byte order {_short(order)}")
            unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), source)
            obj = _unpickle(unpickler, "data.pkl")
            storages = {}
            for key, dtype in unpickler.storage_dtypes.items():
                if f"{top}data/{key}" not in names:
                    raise CheckpointError(f"{source!r}: storage {key!r} has no data entry")
                raw = archive.read(f"{top}data/{key}")
                dtype = dtype.newbyteorder("<" if order == "little" else ">")
                storages[key] = np.frombuffer(raw, dtype, len(raw) // dtype.itemsize)
    except _ZIP_ERRORS as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{source!r} is a corrupt or truncated zip archive "
                              f"({type(exc).__name__}: {exc})") from exc
    return obj, storages


def _to_array(name: str, ref: _TensorRef, storages: dict, source: str) -> np.ndarray:
    storage = ref.storage
    base = storages[storage.key][storage.start:]
    base = base if storage.length is None else base[:storage.length]
    needed = 0 if 0 in ref.size else ref.offset + 1 + sum(
        (n - 1) * s for n, s in zip(ref.size, ref.stride))
    if needed > base.size:
        raise CheckpointError(f"{source!r} is truncated or corrupt: tensor {name!r} needs "
                              f"{needed} elements of storage {storage.key!r}, which holds "
                              f"{base.size}")
    view = np.lib.stride_tricks.as_strided(  # in bounds: checked just above
        base[ref.offset:], ref.size, [s * base.itemsize for s in ref.stride], writeable=False)
    return view.astype(base.dtype.newbyteorder("="), order="C")  # owned, contiguous copy


def read_torch_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict without torch and without running the file's code.

    Parameters
    ----------
    path : str or os.PathLike
        A ``torch.save`` file, zip or legacy layout. A top-level dict holding a
        ``'state_dict'`` or ``'model_state_dict'`` mapping is unwrapped.

    Returns
    -------
    dict of str to ndarray
        The tensors in file order under their state-dict names, as owned C-contiguous arrays
        with the tensors' dtypes (0-d for scalars).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    CheckpointError
        If the file is empty, truncated, corrupt, not a state dict, or its pickle names a
        global outside the whitelist (then nothing has been imported or called).
    """
    source = os.fspath(path)
    with open(path, "rb") as file:
        data = file.read()
    if not data:
        raise CheckpointError(f"{source!r} is empty; expected a PyTorch checkpoint")
    obj, storages = (_read_zip if data[:2] == b"PK" else _read_legacy)(data, source)
    if isinstance(obj, Mapping):
        obj = next((obj[key] for key in ("state_dict", "model_state_dict")
                    if isinstance(obj.get(key), Mapping)), obj)
    expected = "expected a mapping of str names to tensors (a state dict)"
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source!r} holds an object of type {type(obj).__name__}; "
                              f"{expected}")
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, _TensorRef):
            kind, found = ("key", key) if not isinstance(key, str) else ("entry", value)
            raise CheckpointError(f"{source!r}: {kind} {_short(key)} is of type "
                                  f"{type(found).__name__}; {expected}")
    return {name: _to_array(name, ref, storages, source) for name, ref in obj.items()}


def save_weights(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                 metadata: Mapping) -> None:
    """Write weights and their metadata to an ``.npz`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, replaced in one step; on error no partial or temporary file is left.
    arrays : mapping of str to ndarray
        State-dict names to numeric arrays, stored in this order. Object arrays are refused.
    metadata : mapping
        JSON-serialisable record (architecture, num_classes, preprocessing, source,
        source_sha256, ...), stored as JSON text in a 0-d unicode array ``'__metadata__'``.

    Raises
    ------
    TypeError
        If a name is not a str, an array has an object dtype, or `metadata` is not JSON.
    ValueError
        If a name is the reserved ``'__metadata__'``.
    """
    checked = {}
    for name, value in arrays.items():
        if not isinstance(name, str):
            raise TypeError(f"weight names must be str; got {name!r} ({type(name).__name__})")
        if name == _METADATA_KEY:
            raise ValueError(f"{_METADATA_KEY!r} is reserved for the metadata record")
        checked[name] = np.asarray(value)
        if checked[name].dtype.hasobject:
            raise TypeError(f"weight {name!r} has dtype {checked[name].dtype}: only plain "
                            "arrays can be saved (object arrays would need pickle)")
    try:
        text = json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be a JSON-serialisable mapping: {exc}") from exc
    folder, base = os.path.split(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
                for name, array in [(_METADATA_KEY, np.array(text)), *checked.items()]:
                    with archive.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as an ordinary new file; mkstemp made it 0o600
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def load_weights(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read an ``.npz`` file written by `save_weights`, with ``allow_pickle=False``.

    Returns
    -------
    arrays : dict of str to ndarray
        The weights, in the order they were saved.
    metadata : dict
        The decoded ``'__metadata__'`` record.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    CheckpointError
        If the file is not an ``.npz``, is truncated or corrupt, holds an object array, or
        lacks a JSON ``'__metadata__'`` record.
    """
    source, arrays = os.fspath(path), {}
    with open(path, "rb") as file:  # ours to close: np.load leaks its own on a bad zip
        try:
            npz = np.load(file, allow_pickle=False)
        except (ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise CheckpointError(f"{source!r} is not an .npz weights file, or is truncated or "
                                  f"corrupt ({type(exc).__name__}: {exc})") from exc
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{source!r} holds a single .npy array; expected an .npz")
        with npz:
            for key in npz.files:
                try:
                    arrays[key] = npz[key]
                except ValueError as exc:
                    raise CheckpointError(f"{source!r}: cannot read entry {key!r} as a plain array "
                                          f"({exc}); weights files hold numeric arrays only, "
                                          "never pickled objects") from exc
                except _ZIP_ERRORS as exc:
                    raise CheckpointError(f"{source!r} is truncated or corrupt: cannot read entry "
                                          f"{key!r} ({type(exc).__name__}: {exc})") from exc
    record = arrays.pop(_METADATA_KEY, None)
    if record is None or record.shape != () or record.dtype.kind != "U":
        raise CheckpointError(f"{source!r} has no {_METADATA_KEY!r} text entry; expected a "
                              "weights file written by save_weights")
    try:
        metadata = json.loads(record.item())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{source!r}: {_METADATA_KEY!r} is not JSON ({exc})") from exc
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{source!r}: {_METADATA_KEY!r} holds a "
                              f"{type(metadata).__name__}; expected a JSON object")
    return arrays, metadata


def sha256_of_file(path: str | os.PathLike) -> str:
    """Return the SHA-256 of the file at `path` as 64 lowercase hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_state_dict(arrays: Mapping[str, np.ndarray],
                     expected: Mapping[str, tuple[int, ...]], source: str) -> None:
    """Check that weights have exactly the names and shapes a model expects.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        The weights that were read.
    expected : mapping of str to tuple of int
        The names and shapes the model needs.
    source : str
        Where `arrays` came from (a path), for the message.

    Raises
    ------
    CheckpointError
        Naming, in one message, the missing, unexpected and mis-shaped entries (the first 10
        of each kind, then how many more).
    """
    missing = [name for name in expected if name not in arrays]
    unexpected = [name for name in arrays if name not in expected]
    misshaped = [f"{name} (expected {tuple(shape)}, got {np.shape(arrays[name])})"
                 for name, shape in expected.items()
                 if name in arrays and np.shape(arrays[name]) != tuple(shape)]
    problems = [f"{len(found)} {kind}: " + ", ".join(found[:10])
                + (f", ... and {len(found) - 10} more" if len(found) > 10 else "")
                for kind, found in [("missing", missing), ("unexpected", unexpected),
                                    ("mis-shaped", misshaped)] if found]
    if problems:
        raise CheckpointError(f"the weights in {source!r} do not fit the model: "
                              + "; ".join(problems))
