"""Write the small checkpoint fixtures of tests/test_checkpoint.py (needs torch).

Run from the repository root: ``python tests/data/make_checkpoints.py``. It writes, into
tests/data/checkpoints/:

- ``tiny_legacy.pth``: a state dict in PyTorch's legacy (pre-1.6) layout;
- ``tiny_zip.pt``: the same state dict in the current zip layout;
- ``tiny_expected.npz``: the expected arrays, in state-dict order, so the tests can compare
  exactly without torch.

The state dict covers what a reader can get wrong: a float32 conv weight, tensors that share
one storage (a transpose, a view with a storage offset, a strided slice), a broadcast tensor
(stride 0), a 0-d int64 ``num_batches_tracked``, float64, float16 (with a subnormal and the
largest finite value), the integer and bool types, and an empty tensor.

Rerunning it rewrites ``tiny_legacy.pth`` with different bytes but the same tensors: the legacy
layout names each storage by its memory address at saving time.
"""
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent / "checkpoints"


def tiny_state_dict() -> "OrderedDict[str, torch.Tensor]":
    table = torch.arange(15, dtype=torch.float32).div(4).reshape(3, 5)  # one shared storage
    state = OrderedDict()
    conv = torch.arange(108, dtype=torch.float32).mul(0.37).sin()
    state["conv.weight"] = conv.reshape(4, 3, 3, 3)
    state["fc.weight"] = table.t()  # (5, 3), strides (1, 5)
    state["fc.bias"] = table[1, 1:4]  # storage offset 6
    state["fc.every_other"] = table[:, ::2]  # strides (5, 2)
    state["fc.broadcast"] = torch.tensor([1.5, -2.5]).expand(3, 2)  # strides (0, 1)
    state["bn.running_var"] = torch.tensor([0.1, 1 / 3, 2.5e-300, -7.0], dtype=torch.float64)
    state["bn.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
    state["half.weight"] = torch.tensor([0.1, -65504.0, 6e-8, 1.0], dtype=torch.float16)
    state["ints.int32"] = torch.tensor([-(2**31), 0, 2**31 - 1], dtype=torch.int32)
    state["ints.int16"] = torch.tensor([-300, 300], dtype=torch.int16)
    state["ints.int8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    state["ints.uint8"] = torch.tensor([0, 1, 255], dtype=torch.uint8)
    state["mask"] = torch.tensor([[True, False, True], [False, False, True]])
    state["empty"] = torch.zeros(0, 3)
    return state


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    state = tiny_state_dict()
    torch.save(state, OUT / "tiny_legacy.pth", _use_new_zipfile_serialization=False)
    torch.save(state, OUT / "tiny_zip.pt")
    expected = {name: np.array(tensor.numpy(), order="C") for name, tensor in state.items()}
    np.savez(OUT / "tiny_expected.npz", **expected)
    for path in sorted(OUT.iterdir()):
        print(f"{path.stat().st_size:6d} bytes  {path}")


if __name__ == "__main__":
    main()
