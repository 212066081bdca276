"""ResNet-18/34/50 in plain PyTorch, and seeded random weights: the reference for numpy-cam.

A second implementation of the networks ``numpy_cam.models.resnet`` implements in NumPy,
written separately with ``nn.Conv2d``, ``nn.BatchNorm2d`` and ``nn.MaxPool2d`` (no
torchvision, nothing from ``numpy_cam``), with torchvision's module names so that its state
dicts load unchanged. It produces ``tests/golden/resnet.npz`` (``tests/golden/
make_golden_resnet.py``) and serves the live parity tests.

No ImageNet ResNet weights are reachable offline, so the tests use random weights that are
the same everywhere: ``random_state_dict(depth, seed)`` draws them with NumPy alone, and torch
is imported only inside the functions that build a network, so the NumPy tests can rebuild
the golden file's weights without torch.

    sd = random_state_dict(50)              # {name: ndarray}, torchvision's names and order
    net = build_resnet(50, sd)              # eval mode, strict key match (needs torch)
    out = net.forward_stages(x)             # stem, layer1..layer4, features, logits

References: K. He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
(arXiv:1512.03385), Table 1; the stride on the 3x3 conv of a bottleneck is torchvision's
("ResNet v1.5").
"""
import hashlib

import numpy as np

BN_EPS = 1e-5
LAYOUTS = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3])}
STAGE_NAMES = ("stem", "layer1", "layer2", "layer3", "layer4", "features", "logits")
# The inputs of tests/golden/resnet.npz: name -> (seed, NCHW shape), see ``make_golden_input``.
GOLDEN_INPUTS = {"uniform224": (0, (2, 3, 224, 224)), "uniform97x131": (1, (1, 3, 97, 131))}


def make_golden_input(name):
    """The golden input ``name``: float32 NCHW, uniform in [-2, 2), seeded."""
    seed, shape = GOLDEN_INPUTS[name]
    return np.random.default_rng(seed).uniform(-2, 2, shape).astype(np.float32)


def sha256_arrays(arrays):
    """SHA-256 over the C-ordered little-endian bytes of the arrays, in order."""
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def _branch_convs(kind, c_in, width, stride=1):
    """(name, c_out, c_in, kernel, stride) of the convs of one block's residual branch, in
    order. The stride sits on the first 3x3 conv (torchvision's, "v1.5", for Bottleneck)."""
    if kind == "basic":
        return [("conv1", width, c_in, 3, stride), ("conv2", width, width, 3, 1)]
    return [("conv1", width, c_in, 1, 1), ("conv2", width, width, 3, stride),
            ("conv3", 4 * width, width, 1, 1)]


def _blocks(depth):
    """Yield (prefix, c_in, width, c_out, stride) for every block, in order."""
    kind, counts = LAYOUTS[depth]
    c_in = 64
    for i, (width, count) in enumerate(zip((64, 128, 256, 512), counts)):
        c_out = width * (4 if kind == "bottleneck" else 1)
        for b in range(count):
            yield f"layer{i + 1}.{b}", c_in, width, c_out, (2 if i and not b else 1)
            c_in = c_out


def random_state_dict(depth, num_classes=1000, seed=0):
    """Seeded random weights for ResNet-``depth`` as NumPy arrays, in torchvision's key order.

    Conv weights He-normal (std sqrt(2 / fan_in)); BN gamma ~ U(0.5, 1.5) except the last BN
    of each residual branch, gamma ~ U(0.1, 0.3), so that 16 residual additions keep the
    activations in a sane range; beta ~ N(0, 0.1), running_mean ~ N(0, 0.1), running_var ~
    U(0.5, 1.5); ``num_batches_tracked`` int64 0; fc weight ~ N(0, 0.01), bias ~ N(0, 0.01).
    Everything float32, drawn in key order from ``np.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    kind = LAYOUTS[depth][0]
    sd = {}

    def conv_bn(conv, bn, c_out, c_in, k, gamma_range=(0.5, 1.5)):
        std = np.sqrt(2.0 / (c_in * k * k))
        sd[f"{conv}.weight"] = rng.normal(0, std, (c_out, c_in, k, k)).astype(np.float32)
        sd[f"{bn}.weight"] = rng.uniform(*gamma_range, c_out).astype(np.float32)
        sd[f"{bn}.bias"] = rng.normal(0, 0.1, c_out).astype(np.float32)
        sd[f"{bn}.running_mean"] = rng.normal(0, 0.1, c_out).astype(np.float32)
        sd[f"{bn}.running_var"] = rng.uniform(0.5, 1.5, c_out).astype(np.float32)
        sd[f"{bn}.num_batches_tracked"] = np.array(0, dtype=np.int64)

    conv_bn("conv1", "bn1", 64, 3, 7)
    for prefix, c_in, width, c_out, stride in _blocks(depth):
        convs = _branch_convs(kind, c_in, width)
        for j, (name, o, i, k, _) in enumerate(convs):
            last = j == len(convs) - 1
            conv_bn(f"{prefix}.{name}", f"{prefix}.bn{name[-1]}", o, i, k,
                    (0.1, 0.3) if last else (0.5, 1.5))
        if stride != 1 or c_in != c_out:
            conv_bn(f"{prefix}.downsample.0", f"{prefix}.downsample.1", c_out, c_in, 1)
    features = 512 * (4 if kind == "bottleneck" else 1)
    sd["fc.weight"] = rng.normal(0, 0.01, (num_classes, features)).astype(np.float32)
    sd["fc.bias"] = rng.normal(0, 0.01, num_classes).astype(np.float32)
    return sd


def build_resnet(depth, state_dict=None, num_classes=1000):
    """ResNet-``depth`` (18, 34 or 50) in eval mode; ``state_dict`` (arrays or tensors) is
    loaded with ``strict=True``. Without one the weights are torch's default initialisation."""
    import torch
    from torch import nn

    class Block(nn.Module):
        """Residual block: relu(branch(x) + shortcut(x)); torchvision's submodule names."""

        def __init__(self, kind, c_in, width, c_out, stride):
            super().__init__()
            self.names = []
            for name, o, i, k, s in _branch_convs(kind, c_in, width, stride):
                setattr(self, name, nn.Conv2d(i, o, k, stride=s, padding=k // 2, bias=False))
                setattr(self, f"bn{name[-1]}", nn.BatchNorm2d(o, eps=BN_EPS))
                self.names.append((name, f"bn{name[-1]}"))
            self.relu = nn.ReLU()
            self.downsample = None
            if stride != 1 or c_in != c_out:
                self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                                nn.BatchNorm2d(c_out, eps=BN_EPS))

        def forward(self, x):
            h = x
            for j, (conv, bn) in enumerate(self.names):
                h = getattr(self, bn)(getattr(self, conv)(h))
                if j < len(self.names) - 1:
                    h = self.relu(h)
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.relu(h + shortcut)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            kind = LAYOUTS[depth][0]
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64, eps=BN_EPS)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            layers = [[] for _ in range(4)]
            for prefix, c_in, width, c_out, stride in _blocks(depth):
                layers[int(prefix[5]) - 1].append(Block(kind, c_in, width, c_out, stride))
            for i, blocks in enumerate(layers):
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.fc = nn.Linear(512 * (4 if kind == "bottleneck" else 1), num_classes)

        def forward_stages(self, x):
            """x (N, 3, H, W) -> {stem, layer1..layer4, features (= layer4), logits}."""
            out = {"stem": self.maxpool(self.relu(self.bn1(self.conv1(x))))}  # (N, 64, H/4, W/4)
            h = out["stem"]
            for i in range(1, 5):
                h = out[f"layer{i}"] = getattr(self, f"layer{i}")(h)
            out["features"] = h                                           # (N, K, H/32, W/32)
            out["logits"] = self.fc(h.mean(dim=(2, 3)))                   # GAP, then fc
            return out

        def forward(self, x):
            return self.forward_stages(x)["logits"]

    net = ResNet()
    if state_dict is not None:
        net.load_state_dict({k: torch.as_tensor(np.asarray(v)) if isinstance(v, np.ndarray) else v
                             for k, v in state_dict.items()}, strict=True)
    return net.eval()
