"""Regenerate tests/golden/resnet.npz: per-stage golden values for ResNet-18/34/50.

One command, from the repository root (needs torch, not torchvision)::

    python tests/golden/make_golden_resnet.py          # or: --out other/path.npz

The values come from the independent plain-torch networks of ``tests/torch_resnet.py``
(nothing from ``numpy_cam``) with the seeded random weights ``random_state_dict(depth,
seed=0)``, which NumPy alone rebuilds: the tests need no torch to use this file. No ImageNet
ResNet weights are reachable offline; random weights test the arithmetic just as well.

Inputs (float32 NCHW, rebuilt by the consumer from these recipes, checked by SHA-256):

- ``uniform224``: ``np.random.default_rng(0).uniform(-2, 2, (2, 3, 224, 224)).astype(np.float32)``
- ``uniform97x131``: ``np.random.default_rng(1).uniform(-2, 2, (1, 3, 97, 131)).astype(np.float32)``
  (odd and non-square: every stride-2 layer rounds, and H/W swaps change shapes)

Keys, for depth in 18, 34, 50 and each input (``__info__`` holds the same description):

- ``resnet<depth>/<input>/<stage>/shape`` int64, for stem, layer1..layer4, features
- ``.../<stage>/idx`` int32, sorted flat NCHW indices: 256 seeded random positions
  (``np.random.default_rng(zlib.crc32(b"resnet<depth>/<input>/<stage>"))``, over all
  samples) plus the whole border (first/last row and column) of one seeded channel of the
  last sample
- ``.../<stage>/val`` float32, the output at idx; ``.../<stage>/channel_mean`` float32 (C,),
  mean over N, H, W computed in float64
- ``resnet<depth>/<input>/logits`` float32 (N, 1000), in full
- ``__info__``: JSON with versions, input and weight SHA-256s, max |value| of every stage
  (the tolerance scale) and the largest deviation of this float32 run from a float64 run.

torch runs on one thread, so reruns on one machine give identical values; the zip entries
carry a fixed timestamp, so every entry but ``__info__`` (it holds the date) is byte-identical.
"""
import argparse
import datetime
import json
import platform
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))                                      # tests/, for torch_resnet
from torch_resnet import (  # noqa: E402
    GOLDEN_INPUTS,
    STAGE_NAMES,
    build_resnet,
    make_golden_input,
    random_state_dict,
    sha256_arrays,
)

OUT = HERE / "resnet.npz"
DEPTHS = (18, 34, 50)
N_RANDOM = 256


def positions(key, shape):
    """Sorted flat indices: N_RANDOM seeded ones + the border of one seeded channel, last sample."""
    n, c, h, w = shape
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    flat = rng.choice(n * c * h * w, size=N_RANDOM, replace=False)
    channel = int(rng.integers(c))
    rows, cols = np.nonzero(np.pad(np.zeros((h - 2, w - 2), bool), 1, constant_values=True))
    border = np.ravel_multi_index((np.full_like(rows, n - 1), np.full_like(rows, channel), rows, cols), shape)
    return np.unique(np.concatenate([flat, border])).astype(np.int32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    from make_golden import write_npz

    arrays, max_abs, f64_dev, weights_sha = {}, {}, {}, {}
    inputs = {name: make_golden_input(name) for name in GOLDEN_INPUTS}
    for depth in DEPTHS:
        net_name = f"resnet{depth}"
        sd = random_state_dict(depth, seed=0)
        weights_sha[net_name] = sha256_arrays(list(sd.values()))
        net, net64 = build_resnet(depth, sd), build_resnet(depth, sd).double()
        for name, x in inputs.items():
            with torch.no_grad():
                out = {k: v.numpy() for k, v in net.forward_stages(torch.from_numpy(x)).items()}
                out64 = {k: v.numpy() for k, v in net64.forward_stages(torch.from_numpy(x).double()).items()}
            for stage in STAGE_NAMES:
                y, key = out[stage], f"{net_name}/{name}/{stage}"
                max_abs[key] = float(np.abs(y).max())
                f64_dev[key] = float(np.abs(y - out64[stage]).max())
                if stage == "logits":
                    arrays[key] = y
                    continue
                idx = positions(key, y.shape)
                arrays[f"{key}/shape"] = np.array(y.shape, dtype=np.int64)
                arrays[f"{key}/idx"] = idx
                arrays[f"{key}/val"] = y.reshape(-1)[idx]
                arrays[f"{key}/channel_mean"] = y.mean(axis=(0, 2, 3), dtype=np.float64).astype(np.float32)
            print(f"{net_name} {name}: logits max {max_abs[f'{net_name}/{name}/logits']:.3f}, "
                  f"top-3 {np.argsort(-out['logits'], axis=1)[:, :3].tolist()}")

    info = {
        "what": "golden values for torchvision-layout ResNet-18/34/50 with seeded random weights "
                "(numpy-cam), from tests/torch_resnet.py",
        "regenerate": "python tests/golden/make_golden_resnet.py",
        "date": datetime.date.today().isoformat(),
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version(), "torch_threads": 1},
        "depths": list(DEPTHS),
        "stages": list(STAGE_NAMES),
        "weights": "tests/torch_resnet.py random_state_dict(depth, num_classes=1000, seed=0)",
        "weights_sha256": weights_sha,
        "inputs": {name: {"recipe": f"np.random.default_rng({seed}).uniform(-2, 2, {shape})"
                                    ".astype(np.float32)",
                          "sha256": sha256_arrays([inputs[name]])}
                   for name, (seed, shape) in GOLDEN_INPUTS.items()},
        "positions": f"{N_RANDOM} seeded random flat NCHW indices (rng = np.random.default_rng("
                     "zlib.crc32(b'<key>'))) + the border of channel rng.integers(C) of the last sample",
        "max_abs": max_abs,
        "float32_vs_float64_max_abs_dev": f64_dev,
    }
    arrays["__info__"] = np.array(json.dumps(info, indent=1))
    write_npz(args.out, arrays)
    print(f"wrote {args.out}: {Path(args.out).stat().st_size:,} bytes, {len(arrays)} arrays")


if __name__ == "__main__":
    main()
