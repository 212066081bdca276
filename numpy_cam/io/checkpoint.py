"""Weights I/O with NumPy only: PyTorch checkpoints in, the project's ``.npz`` format in and out.

``read_torch_checkpoint`` reads a ``torch.save`` file (zip or legacy layout) without torch and
without running the file's code: ``torch_pickle.py`` has the whitelisting unpickler and the two
layouts. The project's format is an ``.npz`` keyed by state-dict names plus a JSON record under
``__metadata__``; ``load_weights`` reads it entry by entry with its own bounded reader (never
pickle), and points any other file (a PyTorch or Keras checkpoint) at ``numpy-cam export``.

Checked at load, by both readers: every tensor is float16, float32 or float64 (the models
convert to float32 when they fold their layers; integer ``num_batches_tracked`` entries, which
are BatchNorm's bookkeeping and no weight, are kept as they are) and finite; otherwise a
``CheckpointError`` names the tensor. ``load_weights`` also checks the metadata fields the
package reads (``_check_metadata``), naming the field and the form it must have.

Memory. Every size a file declares (zip entry sizes and offsets, npy headers and shapes, tensor
offsets and strides against their storage, storage lengths against the file, pickle memo
slots) is checked before anything is allocated for it. For a file of S bytes:

- the arrays returned total A <= 2 S + 1 MiB (``array_budget``): PyTorch tensors may view one
  storage more than once (a transpose, a slice, a broadcast with stride 0) and a compressed
  ``.npz`` may expand, but only this far; beyond it the file is refused before allocating;
- the peak of what reading allocates besides those arrays is at most S + 32 MiB, so at most
  3 S + 33 MiB in all: a PyTorch checkpoint is read whole once (its storages are views of those
  bytes), an ``.npz`` entry by entry in 1 MiB chunks, and the rest is bounded bookkeeping: at
  most ``MAX_ZIP_ENTRIES`` entries in a zip directory of ``MAX_ZIP_DIRECTORY`` bytes, pickles of
  ``MAX_PICKLE_OPCODES`` opcodes and ``MAX_PICKLE_TEXT`` bytes of text, npy headers of
  ``MAX_NPY_HEADER`` bytes, ``MAX_METADATA_CHARS`` characters of metadata.

``tests/test_hostile_files.py`` builds hostile files and measures that peak with tracemalloc.
Every malformed file gives a ``CheckpointError`` of one line.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import numbers
import os
import reprlib
import shlex
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import name_limit

__all__ = ["CheckpointError", "read_torch_checkpoint", "save_weights", "load_weights",
           "sha256_of_file", "check_state_dict"]

MAX_ZIP_ENTRIES, MAX_ZIP_DIRECTORY = 4096, 1 << 20        # a state dict has hundreds of tensors
MAX_PICKLE_OPCODES, MAX_PICKLE_TEXT = 1 << 16, 1 << 20    # EfficientNet-Lite0's: 10,696 and 42 kB
MAX_PICKLE_BYTES = 1 << 22                                # a zip's data.pkl, read into memory
MAX_TUPLE_DEPTH = 100                                     # a state dict's tuples nest 3 deep
MAX_NPY_HEADER = 10000                                    # NumPy's own limit (numpy >= 1.24)
MAX_METADATA_CHARS = 1 << 19                              # 1000 class names of 500 characters
ARRAY_SLACK = 1 << 20                                     # 1 MiB: small files' broadcasts
_METADATA_KEY = "__metadata__"
_LEGACY_HEAD = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."   # pickle.dumps(torch's legacy magic number, 2)
_CHUNK = 1 << 20                                          # bytes read at a time from an .npz entry
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
              ValueError, OSError, struct.error, KeyError, IndexError, OverflowError)


class CheckpointError(ValueError):
    """A weights file is malformed, unsafe, or does not hold what was expected."""


def bounded_repr(value: Any) -> str:
    """A bounded repr of an object from an untrusted file (limits depth and length)."""
    return reprlib.repr(value)


def array_budget(file_size: int) -> int:
    """The most bytes of arrays a file of `file_size` bytes may give: 2 x its size + 1 MiB."""
    return 2 * file_size + ARRAY_SLACK


def budget_text(file_size: int) -> str:
    return f"2 x the file's {file_size} bytes + 1 MiB"


# --- Weights and metadata, as the package uses them -----------------------------------------

def _check_weight_dtype(name: str, dtype: np.dtype, source: str) -> None:
    """float16 / float32 / float64, or an integer ``num_batches_tracked`` (BatchNorm's count)."""
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return
    if dtype.kind in "iu" and name.rsplit(".", 1)[-1] == "num_batches_tracked":
        return
    raise CheckpointError(f"{source!r}: tensor {name!r} has dtype {dtype}; weights must be float16, float32 "
                          "or float64 (only a BatchNorm's num_batches_tracked may be an integer)")


def _check_finite(name: str, array: np.ndarray, source: str) -> None:
    if array.dtype.kind != "f" or not array.size:
        return
    low, high = array.min(), array.max()                  # both propagate NaN; no temporary array
    if not (np.isfinite(low) and np.isfinite(high)):
        found = "NaN" if np.isnan(low) or np.isnan(high) else "infinite values"
        raise CheckpointError(f"{source!r}: tensor {name!r} holds {found}; weights must be finite")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


_PREPROCESSING = {  # field -> (the form it must have, its test)
    "size": ("an int between 1 and 4096", lambda v: type(v) is int and 1 <= v <= 4096),
    "crop_fraction": ("a number in (0, 1]", lambda v: _is_number(v) and 0 < v <= 1),
    "resample": ("'bicubic' or 'bilinear'", lambda v: v in ("bicubic", "bilinear")),
    "mean": ("a list of 3 finite numbers (0..255 scale)",
             lambda v: isinstance(v, list) and len(v) == 3 and all(map(_is_number, v))),
    "std": ("a list of 3 finite numbers > 0 (0..255 scale)",
            lambda v: isinstance(v, list) and len(v) == 3 and all(_is_number(x) and x > 0 for x in v)),
}


def _check_metadata(metadata: dict, source: str) -> None:
    """The fields the package reads: architecture, class_names, preprocessing (see
    ``numpy_cam.io.image.preprocess``); other fields are kept as they are."""
    def refuse(field, form, value):
        return CheckpointError(f"{source!r}: metadata field {field!r} must be {form}; got {bounded_repr(value)}")

    if not isinstance(metadata.get("architecture"), str):
        raise refuse("architecture", "a str, the architecture's name (e.g. 'resnet50')", metadata.get("architecture"))
    names = metadata.get("class_names")
    if not (names is None or names == "imagenet"
            or isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise refuse("class_names", "'imagenet' or a list of str, one per class", names)
    block = metadata.get("preprocessing")
    if block is None:
        return                                            # the architecture's own preprocessing
    if not isinstance(block, dict):
        raise refuse("preprocessing", "an object with size, crop_fraction, resample, mean and std", block)
    for field, (form, test) in _PREPROCESSING.items():
        if field not in block:
            raise CheckpointError(f"{source!r}: metadata field 'preprocessing' has no {field!r}; expected "
                                  "size, crop_fraction, resample, mean and std (and optionally channel_order)")
        if not test(block[field]):
            raise refuse(f"preprocessing.{field}", form, block[field])
    if block.get("channel_order", "RGB") not in ("RGB", "BGR"):
        raise refuse("preprocessing.channel_order", "'RGB' or 'BGR'", block["channel_order"])


def read_torch_checkpoint(path: str | os.PathLike, check_weights: bool = True) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict without torch and without running the file's code.

    Parameters
    ----------
    path : str or os.PathLike
        A ``torch.save`` file, zip or legacy layout. A top-level dict holding a
        ``'state_dict'`` or ``'model_state_dict'`` mapping is unwrapped.
    check_weights : bool, default True
        Refuse tensors a model cannot use: a dtype other than float16/32/64 (an integer
        ``num_batches_tracked`` excepted), NaN or infinity. False reads every tensor as stored.

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
        If the file is empty, truncated, corrupt, not a state dict, declares more than it
        holds (the module docstring's memory bound), its pickle names a global outside the
        whitelist (then nothing has been imported or called), or a weight fails the checks.
    """
    from . import torch_pickle                            # it imports this module
    source = os.fspath(path)
    with open(path, "rb") as file:
        data = file.read()
    if not data:
        raise CheckpointError(f"{source!r} is empty; expected a PyTorch checkpoint")
    refs, storages = torch_pickle.read_state_dict(data, source)
    arrays, room = {}, array_budget(len(data))
    for name, ref in refs.items():
        if check_weights:
            _check_weight_dtype(name, ref.storage.dtype, source)
        arrays[name] = torch_pickle.tensor_array(name, ref, storages, source, room, budget_text(len(data)))
        room -= arrays[name].nbytes
        if check_weights:
            _check_finite(name, arrays[name], source)
    return arrays


# --- The project's .npz format ----------------------------------------------------------------

def _export_hint(source: str, kind: str, arch: str = "NAME") -> str:
    root, ext = os.path.splitext(os.path.basename(source))
    out = root + (".npz" if ext != ".npz" else "-numpy-cam.npz")
    return (f"{source!r} is {kind}, not a numpy-cam weights file: convert it with "
            f"`numpy-cam export {shlex.quote(source)} --arch {arch} --out {shlex.quote(out)}`")


def _not_an_npz(source: str, head: bytes) -> str:
    """What a file that is not a zip archive is, and what to do with it."""
    if not head:
        return f"{source!r} is empty; expected an .npz weights file written by `numpy-cam export`"
    if head.startswith(b"\x93NUMPY"):
        return f"{source!r} holds a single .npy array; expected an .npz weights file written by `numpy-cam export`"
    if head.startswith(_LEGACY_HEAD):
        return _export_hint(source, "a PyTorch checkpoint (legacy layout)")
    if head.startswith(b"\x80"):
        return _export_hint(source, "a pickle (a PyTorch checkpoint?)")
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return _export_hint(source, "an HDF5 file (a Keras .h5 model?)", "keras_resnet50")
    return (f"{source!r} is not an .npz weights file (it does not begin like a zip archive); numpy-cam reads "
            "the .npz files written by `numpy-cam export`, which converts PyTorch and Keras checkpoints")


def _read_exactly(member, count: int, key: str, source: str) -> bytes:
    data = member.read(count)
    if len(data) != count:
        raise CheckpointError(f"{source!r} is truncated or corrupt: entry {key!r} ends early")
    return data


def _npy_header(member, info: zipfile.ZipInfo, key: str, source: str) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of an .npy entry, once its data size matches the entry."""
    prefix = _read_exactly(member, 8, key, source)
    if prefix[:6] != b"\x93NUMPY" or prefix[6] not in (1, 2, 3):
        raise CheckpointError(f"{source!r}: entry {key!r} is not a .npy array (format 1, 2 or 3)")
    field = _read_exactly(member, 2 if prefix[6] == 1 else 4, key, source)
    length = int.from_bytes(field, "little")
    if length > MAX_NPY_HEADER:
        raise CheckpointError(f"refusing {source!r}: entry {key!r} declares a {length}-byte .npy header; "
                              f"at most {MAX_NPY_HEADER} are read")
    header = field + _read_exactly(member, length, key, source)
    read = np.lib.format.read_array_header_1_0 if prefix[6] == 1 else np.lib.format.read_array_header_2_0
    try:
        shape, fortran, dtype = read(io.BytesIO(header))
    except (ValueError, TypeError, SyntaxError) as exc:
        raise CheckpointError(f"{source!r}: entry {key!r} has a corrupt .npy header ({exc})") from exc
    if dtype.hasobject:
        raise CheckpointError(f"{source!r}: entry {key!r} holds Python objects (dtype {dtype}), which would "
                              "need pickle; weights files hold numeric arrays only")
    nbytes = math.prod(shape) * dtype.itemsize
    if 8 + len(header) + nbytes != info.file_size:
        raise CheckpointError(f"{source!r} is truncated or corrupt: entry {key!r} declares shape {shape} of "
                              f"{dtype} ({nbytes} bytes) but holds {info.file_size - 8 - len(header)} bytes of data")
    return shape, fortran, dtype


def _npy_data(member, shape: tuple, fortran: bool, dtype: np.dtype, key: str, source: str) -> np.ndarray:
    array = np.empty(math.prod(shape), dtype)                                        # (count,)
    raw = memoryview(array.view(np.uint8)) if array.nbytes else memoryview(b"")
    for start in range(0, len(raw), _CHUNK):
        chunk = raw[start:start + _CHUNK]
        if member.readinto(chunk) != len(chunk):
            raise CheckpointError(f"{source!r} is truncated or corrupt: entry {key!r} ends early")
    return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> tuple[str, np.ndarray]:
    """One entry of an .npz: its key, and its array once the dtype is one a weights file holds."""
    if not info.filename.endswith(".npy"):
        raise CheckpointError(f"{source!r}: entry {info.filename!r} is not a .npy array; expected an .npz "
                              "weights file written by `numpy-cam export`")
    key = info.filename[:-len(".npy")]
    with archive.open(info) as member:
        shape, fortran, dtype = _npy_header(member, info, key, source)
        if key != _METADATA_KEY:
            _check_weight_dtype(key, dtype, source)
        elif dtype.kind != "U" or shape != ():
            raise CheckpointError(f"{source!r} has no {_METADATA_KEY!r} text entry; expected a "
                                  "weights file written by save_weights")
        elif dtype.itemsize // 4 > MAX_METADATA_CHARS:
            raise CheckpointError(f"refusing {source!r}: its metadata has {dtype.itemsize // 4} characters; "
                                  f"at most {MAX_METADATA_CHARS} are read")
        array = _npy_data(member, shape, fortran, dtype, key, source)
    if key != _METADATA_KEY:
        _check_finite(key, array, source)
    return key, array


def _zip_kind(names: list[str]) -> str | None:
    """What a zip archive that is not an .npz is: a PyTorch checkpoint or a Keras model file."""
    if any(name.endswith("/data.pkl") and name.count("/") == 1 for name in names):
        return "a PyTorch checkpoint"
    if "config.json" in names and ("model.weights.h5" in names or "metadata.json" in names):
        return "a Keras model file"
    return None


def load_weights(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read an ``.npz`` file written by `save_weights`, entry by entry, without pickle.

    Returns
    -------
    arrays : dict of str to ndarray
        The weights, in the order they were saved: float16/32/64, finite (integer
        ``num_batches_tracked`` entries kept as they are).
    metadata : dict
        The decoded ``'__metadata__'`` record, its fields checked (``_check_metadata``).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    CheckpointError
        If the file is not an ``.npz`` (a PyTorch or Keras file: the message says how to
        convert it), is truncated or corrupt, declares more than it holds (the module
        docstring's memory bound), holds an object array, a weight of another dtype or a
        non-finite one, or lacks a valid JSON ``'__metadata__'`` record.
    """
    source, arrays = os.fspath(path), {}
    with open(path, "rb") as file:
        head = file.read(len(_LEGACY_HEAD))
        if head[:2] != b"PK":
            raise CheckpointError(_not_an_npz(source, head))
        from .torch_pickle import checked_zip_entries    # it imports this module
        archive, entries = checked_zip_entries(file, os.fstat(file.fileno()).st_size, source)
        with archive:
            kind = _zip_kind([info.filename for info, _ in entries])
            if kind is not None:
                arch = "keras_resnet50" if kind.endswith("Keras model file") else "NAME"
                raise CheckpointError(_export_hint(source, kind, arch))
            for info, _ in entries:
                try:
                    key, array = _read_entry(archive, info, source)
                except ZIP_ERRORS as exc:
                    if isinstance(exc, CheckpointError):
                        raise
                    raise CheckpointError(f"{source!r} is truncated or corrupt: cannot read entry "
                                          f"{info.filename!r} ({type(exc).__name__}: {exc})") from exc
                if key in arrays:
                    raise CheckpointError(f"{source!r}: entry {info.filename!r} appears twice")
                arrays[key] = array
    record = arrays.pop(_METADATA_KEY, None)
    if record is None:
        raise CheckpointError(f"{source!r} has no {_METADATA_KEY!r} text entry; expected a "
                              "weights file written by save_weights")
    try:
        metadata = json.loads(record.item())
    except (json.JSONDecodeError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise CheckpointError(f"{source!r}: {_METADATA_KEY!r} is not JSON ({why})") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{source!r}: {_METADATA_KEY!r} holds a "
                              f"{type(metadata).__name__}; expected a JSON object")
    _check_metadata(metadata, source)
    return arrays, metadata


def _temporary_prefix(folder: str, base: str) -> str:
    """``.<base>.``, shortened so that mkstemp's name (8 random characters, ``.tmp``) stays
    within the folder's file-name limit for any legal `base`."""
    limit = name_limit(folder)
    while len(os.fsencode(f".{base}.12345678.tmp")) > limit and base:
        base = base[:-1]
    return f".{base}."


def save_weights(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                 metadata: Mapping) -> None:
    """Write weights and their metadata to an ``.npz`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, replaced in one step; on error no partial or temporary file is left. The
        temporary file, beside it, is named after it within the file-name limit.
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
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=_temporary_prefix(folder, base), suffix=".tmp")
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
