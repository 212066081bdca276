"""Regenerate tests/golden/small_nets.npz: per-stage golden values of the shipped small nets.

    python tests/golden/make_golden_small.py          # needs torch

The values come from the PyTorch network that trained them (``SmallNet`` in
weights/train_small.py, plain ``nn.Conv2d`` / ``nn.BatchNorm2d``, nothing from numpy_cam's
NumPy code), loaded with the exported arrays of each ``numpy_cam/data/small_*_seed0.npz``. Inputs:
``"synthetic"``, the first 4 images of the fixed test set (``make_dataset(4, TEST_SEED)``,
image i does not depend on n) as x = (rgb - 127.5) / 127.5; ``"uniform64x80"``,
``np.random.default_rng(5).uniform(-1, 1, (1, 3, 64, 80))`` (odd width: padding at the edges).
Keys: ``<net>/<input>/<stage>/{idx,val,channel_mean,shape}`` for conv1..conv5 (idx: 256
seeded random positions plus every border position of channel 0 of the last image, flat into
NCHW) and ``<net>/<input>/logits`` in full.
"""
import json
import pathlib
import sys
import zlib

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "weights")]
from numpy_cam.io.checkpoint import load_weights                            # noqa: E402 (after sys.path)
from numpy_cam.gap_gmp.synthetic import TEST_SEED, make_dataset                  # noqa: E402
from train_small import SmallNet                                         # noqa: E402

NETS = ("small_gap_seed0", "small_gmp_seed0")
STAGES = ("conv1", "conv2", "conv3", "conv4", "conv5")


def inputs():
    images = make_dataset(4, TEST_SEED)[0]                                # (4, 64, 64, 3) uint8
    synthetic = ((images.astype(np.float32) - np.float32(127.5)) / np.float32(127.5)).transpose(0, 3, 1, 2)
    uniform = np.random.default_rng(5).uniform(-1, 1, (1, 3, 64, 80)).astype(np.float32)
    return {"synthetic": np.ascontiguousarray(synthetic), "uniform64x80": uniform}


def positions(shape, key):
    n, c, h, w = shape
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    flat = rng.choice(n * c * h * w, size=256, replace=False)
    border = [(n - 1, 0, y, x) for y in range(h) for x in range(w) if y in (0, h - 1) or x in (0, w - 1)]
    return np.unique(np.concatenate([flat, np.ravel_multi_index(np.array(border).T, shape)]))


def main():
    out = {}
    for net_name in NETS:
        arrays, metadata = load_weights(ROOT / "weights" / f"{net_name}.npz")
        net = SmallNet("avg" if "gap" in net_name else "max", metadata["num_classes"], tuple(metadata["channels"]))
        net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
        net.eval()
        for input_name, x in inputs().items():
            with torch.no_grad():
                y = torch.from_numpy(x)
                for stage, layer in zip(STAGES, net.features):
                    y = layer(y)
                    value = y.numpy()
                    key = f"{net_name}/{input_name}/{stage}"
                    idx = positions(value.shape, key)
                    out[f"{key}/shape"] = np.array(value.shape)
                    out[f"{key}/idx"] = idx
                    out[f"{key}/val"] = value.reshape(-1)[idx]
                    out[f"{key}/channel_mean"] = value.astype(np.float64).mean(axis=(0, 2, 3))
                out[f"{net_name}/{input_name}/logits"] = net(torch.from_numpy(x)).numpy()
    out["__info__"] = np.array(json.dumps({"torch": torch.__version__, "nets": NETS, "stages": STAGES,
                                           "inputs": list(inputs())}))
    path = ROOT / "tests" / "golden" / "small_nets.npz"
    np.savez_compressed(path, **out)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
