"""Hostile weights files cost no more than the bound numpy_cam.io.checkpoint states.

Each test builds its file in tmp_path, reads it with ``read_torch_checkpoint`` or
``load_weights``, expects a one-line ``CheckpointError`` that says what is wrong, and measures
the peak of what the reader allocated with tracemalloc (NumPy reports its array memory to it).
The bound, for a file of S bytes giving arrays of A bytes: peak <= S + A + 32 MiB, with
A <= 2 S + 1 MiB (``checkpoint.array_budget``). Before these checks the same files made the
readers allocate gigabytes, crash the interpreter, or end in a traceback. ``pytest -s`` prints
each measured peak.
"""
import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

from numpy_cam.io import checkpoint
from numpy_cam.io.checkpoint import (MAX_PICKLE_OPCODES, MAX_PICKLE_TEXT, MAX_ZIP_ENTRIES, CheckpointError,
                                     load_weights, read_torch_checkpoint, save_weights)

MiB = 1 << 20
METADATA = {"architecture": "resnet18", "class_names": ["a", "b"]}


def assert_bounded(read, path, pattern):
    """`read(path)` raises a one-line CheckpointError matching `pattern` (None: it succeeds)
    within the stated memory bound. Returns the peak."""
    tracemalloc.start()
    try:
        if pattern is None:
            arrays = read(path)
            returned = sum(a.nbytes for a in (arrays[0] if isinstance(arrays, tuple) else arrays).values())
        else:
            with pytest.raises(CheckpointError, match=pattern) as info:
                read(path)
            returned = 0
            assert "\n" not in str(info.value)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = os.path.getsize(path)
    print(f"\n{os.path.basename(path)}: {size} bytes, peak {peak / MiB:.2f} MiB "
          f"(bound {(size + returned + 32 * MiB) / MiB:.1f} MiB)")
    assert returned <= checkpoint.array_budget(size)
    assert peak <= size + returned + 32 * MiB
    return peak


def raw_zip(entries):
    """A zip archive written byte by byte, so that it can lie: each entry is (name, stored
    bytes, method, declared size, CRC, offset of the local header it points at or None)."""
    body, central = bytearray(), bytearray()
    for name, data, method, size, crc, at in entries:
        encoded = name.encode()
        if at is None:
            at = len(body)
            body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size,
                                len(encoded), 0) + encoded + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(encoded), 0, 0, 0, 0, 0, at) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(body), 0)
    return bytes(body + central + end)


def npy_bytes(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


def npy_header(shape, descr="<f4", version=(1, 0)):
    buffer = io.BytesIO()
    write = np.lib.format.write_array_header_1_0 if version == (1, 0) else np.lib.format.write_array_header_2_0
    write(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()                                # the magic string included


def stored(name, data, at=None):
    return name, data, zipfile.ZIP_STORED, len(data), zlib.crc32(data), at


METADATA_ENTRY = stored("__metadata__.npy", npy_bytes(np.array(json.dumps(METADATA))))


# --- .npz files -----------------------------------------------------------------------------

def deflated_zeros(header, total):
    """A raw deflate stream of `header` then zeros, `total` bytes in all, built from one
    compressed MiB repeated (a full flush makes every MiB compress to the same bytes)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    flush = lambda data: packer.compress(data) + packer.flush(zlib.Z_FULL_FLUSH)  # noqa: E731
    head, unit = flush(header), flush(bytes(MiB))
    assert flush(bytes(MiB)) == unit
    full, rest = divmod(total - len(header), MiB)
    return head + unit * full + packer.compress(bytes(rest)) + packer.flush()


def test_zip_bomb_npz_is_refused_before_inflating(tmp_path):
    """A 4.2 MB .npz whose one deflated entry inflates to 4 GiB - 1 MiB of float32 zeros."""
    total = 4095 * MiB
    header = npy_header(((total - 128) // 4,))
    assert len(header) == 128
    data = deflated_zeros(header, total)
    bomb = ("fc.weight.npy", data, zipfile.ZIP_DEFLATED, total, 0, None)  # CRC never reached
    path = tmp_path / "bomb.npz"
    path.write_bytes(raw_zip([METADATA_ENTRY, bomb]))
    assert 4 * MiB < path.stat().st_size < 5 * MiB
    assert_bounded(load_weights, path, r"refusing .*: its zip entries would expand to 429391\d{4} bytes "
                                       r"\('fc.weight.npy': 4293918720 bytes from \d+\), more than 2 x the file's "
                                       r"\d+ bytes \+ 1 MiB; refused before inflating")


def test_compressed_npz_within_the_budget_loads(tmp_path):
    """np.savez_compressed files load: real weights barely compress."""
    weights = {"fc.weight": np.random.default_rng(0).normal(size=(256, 256)).astype(np.float32),
               "fc.bias": np.zeros(256, np.float32)}
    np.savez_compressed(tmp_path / "w.npz", __metadata__=np.array(json.dumps(METADATA)), **weights)
    assert_bounded(load_weights, tmp_path / "w.npz", None)


@pytest.mark.parametrize("shape", [(100000, 100000), (2 ** 62,), (3, 2 ** 61, 2 ** 61)])
def test_huge_declared_npy_shape(tmp_path, shape):
    entry = stored("fc.weight.npy", npy_header(shape) + bytes(16))
    (tmp_path / "huge.npz").write_bytes(raw_zip([METADATA_ENTRY, entry]))
    assert_bounded(load_weights, tmp_path / "huge.npz",
                   rf"truncated or corrupt: entry 'fc.weight' declares shape {re.escape(str(shape))} of float32 "
                   r"\(\d+ bytes\) but holds 16 bytes of data")


def test_huge_declared_npy_header(tmp_path):
    data = np.lib.format.magic(2, 0) + struct.pack("<I", 0xFFFFFFFF) + b"{" * 1000
    (tmp_path / "header.npz").write_bytes(raw_zip([METADATA_ENTRY, stored("w.npy", data)]))
    assert_bounded(load_weights, tmp_path / "header.npz",
                   "refusing .*: entry 'w' declares a 4294967295-byte .npy header; at most 10000 are read")


def test_overlapping_npz_entries(tmp_path):
    """1000 directory entries naming the same MiB of data: 1 GiB from a 1 MiB file."""
    first = stored("w0.npy", npy_bytes(np.zeros(MiB // 4, np.float32)))
    copies = [(f"w{i}.npy", first[1], zipfile.ZIP_STORED, first[3], first[4], 0) for i in range(1, 1000)]
    (tmp_path / "overlap.npz").write_bytes(raw_zip([first, *copies, METADATA_ENTRY]))
    assert_bounded(load_weights, tmp_path / "overlap.npz",
                   "refusing .*: zip entries 'w0.npy' and 'w1.npy' share bytes")


def test_too_many_zip_entries_are_refused_before_parsing(tmp_path):
    entries = [stored(f"{i}", b"") for i in range(MAX_ZIP_ENTRIES + 1)]
    (tmp_path / "many.npz").write_bytes(raw_zip(entries))
    assert_bounded(load_weights, tmp_path / "many.npz",
                   f"its zip directory declares {MAX_ZIP_ENTRIES + 1} entries in \\d+ bytes; a weights file has "
                   f"at most {MAX_ZIP_ENTRIES} entries")


def test_most_zip_entries_stay_within_the_bound(tmp_path):
    names = [f"entry-{'x' * 180}-{i}.npy" for i in range(MAX_ZIP_ENTRIES)]     # nearly 1 MiB of directory
    (tmp_path / "most.npz").write_bytes(raw_zip([stored(name, b"") for name in names]))
    assert_bounded(load_weights, tmp_path / "most.npz", "truncated or corrupt: entry 'entry-x.*-0' ends early")


def test_deeply_nested_metadata(tmp_path):
    text = "[" * 100_000 + "]" * 100_000
    np.savez(tmp_path / "nested.npz", __metadata__=np.array(text), w=np.zeros(2, np.float32))
    assert_bounded(load_weights, tmp_path / "nested.npz", r"'__metadata__' is not JSON \(nested too deeply\)")


def test_the_largest_metadata_stays_within_the_bound(tmp_path):
    text = "[" + "{}," * (checkpoint.MAX_METADATA_CHARS // 3 - 1) + "{}]"     # the costliest JSON per character
    assert len(text) <= checkpoint.MAX_METADATA_CHARS
    np.savez(tmp_path / "big.npz", __metadata__=np.array(text), w=np.zeros(2, np.float32))
    assert_bounded(load_weights, tmp_path / "big.npz", "'__metadata__' holds a list; expected a JSON object")
    text += " " * (checkpoint.MAX_METADATA_CHARS + 1 - len(text))
    np.savez(tmp_path / "bigger.npz", __metadata__=np.array(text), w=np.zeros(2, np.float32))
    assert_bounded(load_weights, tmp_path / "bigger.npz", f"its metadata has {len(text)} characters; at most")


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.999])
def test_truncated_npz(tmp_path, fraction):
    save_weights(tmp_path / "w.npz", {"w": np.ones((64, 64), np.float32)}, METADATA)
    data = (tmp_path / "w.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:int(len(data) * fraction)])
    assert_bounded(load_weights, tmp_path / "cut.npz", "corrupt or truncated|truncated or corrupt")


def test_missing_crop_fraction_is_a_checkpoint_error_not_a_key_error(tmp_path):
    import numpy_cam
    metadata = {"architecture": "small_gap", "preprocessing": {"size": 64, "resample": "bilinear",
                                                               "mean": [127.5] * 3, "std": [127.5] * 3}}
    arrays, _ = load_weights(numpy_cam.DATA / "small_gap_seed0.npz")
    save_weights(tmp_path / "w.npz", arrays, metadata)
    with pytest.raises(CheckpointError, match="metadata field 'preprocessing' has no 'crop_fraction'"):
        numpy_cam.load_model(tmp_path / "w.npz")


# --- PyTorch checkpoints --------------------------------------------------------------------

def rebuild(storage_pid, offset, size, stride):
    """The object pickle's bytes for {'w': _rebuild_tensor_v2(<storage>, offset, size, stride)}."""
    def tup(*items):
        return b"(" + b"".join(items) + b"t"

    def num(value):
        return b"\x8a\x09" + value.to_bytes(9, "little", signed=True)

    pid = tup(b"X\x07\x00\x00\x00storage", b"ctorch\nFloatStorage\n", b"X\x01\x00\x00\x000", b"X\x03\x00\x00\x00cpu",
              num(storage_pid), b"N") + b"Q"
    call = (b"ctorch._utils\n_rebuild_tensor_v2\n" + tup(pid, num(offset), tup(*map(num, size)),
            tup(*map(num, stride)), b"\x89", b"N") + b"R")
    return b"\x80\x02}X\x01\x00\x00\x00w" + call + b"s."


def legacy(object_pickle, storage):
    head = b"".join(pickle.dumps(x, 2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    return head + object_pickle + pickle.dumps(["0"], 2) + struct.pack("<q", storage.size) + storage.tobytes()


def write(path, data):
    path.write_bytes(data)
    return path


def test_stride_zero_expanded_to_30000_squared(tmp_path):
    path = write(tmp_path / "broadcast.pth", legacy(rebuild(1, 0, (30000, 30000), (0, 0)), np.ones(1, np.float32)))
    assert path.stat().st_size < 400
    assert_bounded(read_torch_checkpoint, path,
                   r"refusing .*: tensor 'w' of shape \(30000, 30000\) and strides \(0, 0\) would take 3600000000 "
                   r"bytes, more than 2 x the file's \d+ bytes \+ 1 MiB allows; refused before allocating")


@pytest.mark.parametrize("offset, size, stride, pattern", [
    (0, (2,), (2 ** 63,), r"tensor 'w' needs 9223372036854775809 elements of storage '0', which holds 2"),
    (2 ** 63, (1,), (1,), r"tensor 'w' needs 9223372036854775809 elements"),
    (0, (2, 2), (2 ** 62, 2 ** 62), r"tensor 'w' needs \d+ elements"),
    (0, (0, 2 ** 63), (1, 1), r"malformed tensor record for 'w'"),
    (0, (2 ** 62, 2 ** 62), (0, 0), r"malformed tensor record for 'w'"),
])
def test_huge_strides_offsets_and_sizes(tmp_path, offset, size, stride, pattern):
    path = write(tmp_path / "stride.pth", legacy(rebuild(2, offset, size, stride), np.ones(2, np.float32)))
    assert_bounded(read_torch_checkpoint, path, pattern)


def test_a_huge_stride_on_an_axis_of_length_1_is_ignored_as_torch_does(tmp_path):
    path = write(tmp_path / "one.pth", legacy(rebuild(2, 0, (1, 2), (2 ** 63, 1)), np.array([3, 4], np.float32)))
    np.testing.assert_array_equal(read_torch_checkpoint(path)["w"], [[3, 4]])


def test_many_views_of_one_storage(tmp_path):
    """100 tensors viewing one 256 kB storage: 25 MB of arrays from a 260 kB file."""
    view = rebuild(MiB // 16, 0, (MiB // 16,), (1,))[len(b"\x80\x02}X\x01\x00\x00\x00w"):-2]       # the call
    state = b"\x80\x02}(" + b"".join(f"X\x04\x00\x00\x00w{i:03d}".encode() + view for i in range(100)) + b"u."
    path = write(tmp_path / "views.pth", legacy(state, np.ones(MiB // 16, np.float32)))
    assert_bounded(read_torch_checkpoint, path, r"tensor 'w006' of shape \(65536,\) and strides \(1,\) would take "
                                                r"262144 bytes, more than 2 x the file's")


def torch_zip(object_pickle, storages, overlap=False):
    entries = [stored("archive/data.pkl", object_pickle), stored("archive/byteorder", b"little")]
    for key, data in storages.items():
        entries.append(stored(f"archive/data/{key}", data, at=None))
    if overlap:                                             # storage "1" is storage "0" again
        name, data, method, size, crc, _ = entries[2]
        at = sum(30 + len(entry[0]) + len(entry[1]) for entry in entries[:2])     # entry 2's local header
        entries.append(("archive/data/1", data, method, size, crc, at))
    return raw_zip(entries)


def test_overlapping_storages_in_a_torch_zip(tmp_path):
    path = write(tmp_path / "overlap.pt", torch_zip(rebuild(2, 0, (2,), (1,)), {"0": bytes(8)}, overlap=True))
    assert_bounded(read_torch_checkpoint, path, "zip entries 'archive/data/0' and 'archive/data/1' share bytes")


@pytest.mark.parametrize("layout", ["legacy", "zip"])
@pytest.mark.parametrize("pickle_bytes, pattern", [
    (b"\x80\x02Nr\xff\xff\xff\x7f.", "its pickle names memo slot 2147483647 after 3 opcodes"),
    (b"\x80\x02(" + b"\x8a\x01\x01" * MAX_PICKLE_OPCODES + b"l.", f"more than {MAX_PICKLE_OPCODES} opcodes"),
    (b"\x80\x02X" + struct.pack("<I", MAX_PICKLE_TEXT + 1) + b"a" * (MAX_PICKLE_TEXT + 1) + b".",
     f"or {MAX_PICKLE_TEXT} bytes of text"),
    (b"\x80\x04\x8f.", r"its pickle builds a set \(EMPTY_SET\)"),
    (b"\x80\x02X\x10\x00\x00\x00" + b"\xff" * 16 + b".", "truncated or corrupt: cannot read"),
    (b"\x80\x02\x8e" + struct.pack("<Q", 2 ** 62) + b"x.", "truncated or corrupt: cannot read"),
], ids=["memo-slot", "opcodes", "text", "set", "bad-utf8", "declared-8-EiB"])
def test_hostile_pickles(tmp_path, layout, pickle_bytes, pattern):
    data = legacy(pickle_bytes, np.zeros(0, np.float32)) if layout == "legacy" else torch_zip(pickle_bytes, {})
    assert_bounded(read_torch_checkpoint, write(tmp_path / "pickle.pth", data), pattern)


def test_the_largest_pickle_stays_within_the_bound(tmp_path):
    """The costliest opcodes per byte (a new dict each, left on the stack), as many as allowed."""
    state = b"\x80\x02" + b"}" * (MAX_PICKLE_OPCODES - 3) + b"}."
    assert_bounded(read_torch_checkpoint, write(tmp_path / "dicts.pth", legacy(state, np.zeros(0, np.float32))),
                   "entry 'w'|holds an object of type dict|does not match|state dict")


def test_deeply_nested_tuple_key_is_refused_without_crashing(tmp_path):
    """Before: CPython hashed the key recursively in C and died of a segmentation fault."""
    state = b"\x80\x02}N" + b"\x85" * 200_000 + b"Ns."          # {(((...(None,)...),): None}
    path = write(tmp_path / "tuples.pth", legacy(state, np.zeros(0, np.float32)))
    code = ("import sys\nfrom numpy_cam.io.checkpoint import read_torch_checkpoint, CheckpointError\n"
            "try:\n    read_torch_checkpoint(sys.argv[1])\nexcept CheckpointError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-500:]
    assert "its pickle nests tuples more than 100 deep" in result.stdout
    assert_bounded(read_torch_checkpoint, path, "nests tuples more than 100 deep")


def test_legacy_storage_view_outside_its_storage(tmp_path):
    view = rebuild(4, 0, (2,), (1,)).replace(b"NtQ", b"(X\x01\x00\x00\x00v\x8a\x09" + (2 ** 62).to_bytes(9, "little")
                                             + b"\x8a\x09" + (2).to_bytes(9, "little") + b"ttQ")
    path = write(tmp_path / "view.pth", legacy(view, np.ones(4, np.float32)))
    assert_bounded(read_torch_checkpoint, path, "malformed tensor record for 'w'")

