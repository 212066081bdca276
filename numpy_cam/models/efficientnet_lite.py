"""EfficientNet-Lite0 (Tan & Le 2019; Google's "Lite" variant) as pure NumPy functions.

Architecture, as Google's official ImageNet checkpoint expects it (see weights/README.md):

    stem      3x3 conv stride 2, 3 -> 32, BN, ReLU6
    stage 1-7 16 inverted-residual blocks (table ``STAGES``); block =
              [1x1 expand conv, BN, ReLU6] (absent when expansion is 1)
              -> depthwise kxk conv (groups = channels), BN, ReLU6
              -> 1x1 project conv, BN (no activation) -> + input when stride 1 and in == out
    head      1x1 conv 320 -> 1280, BN, ReLU6: the CAM feature maps f_k (paper Sec. 2)
    classify  global average pooling F_k, (dropout: identity at inference), linear S_c

All convolutions use TensorFlow "SAME" padding, computed per input size (a padding fixed for
224 x 224 is wrong at other sizes), and batch norm uses eps = 1e-3. Both matter: symmetric
padding or eps = 1e-5 move the logits by 1 to 2 while the top-3 still looks plausible.

Batch norm is folded into the convolution before it once, at load (``fold_params``), so the
forward pass is conv -> activation only. Folded weights are kept in OHWI memory and handed to
``conv2d`` as OIHW views (see the layout note in ``layers.py``).
"""

from ..layers import conv2d, global_avg_pool, linear, relu6
from .conv_bn import conv_bn_shapes, folded_conv

BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# (repeats, kernel, stride of the first block, expansion, output channels), one row a stage
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
FC_WEIGHT, FC_BIAS = "_fc.weight", "_fc.bias"                            # (classes, 1280), (classes,)
STAGE_NAMES = tuple(f"stage{s}" for s in range(1, len(STAGES) + 1))
# Google's evaluation preprocessing (the checkpoint was trained with it, not ImageNet mean/std)
PREPROCESSING = {"size": 224, "crop_fraction": 224 / 256, "resample": "bicubic",
                 "mean": [127.0, 127.0, 127.0], "std": [128.0, 128.0, 128.0]}


def block_specs():
    """The 16 blocks as (stage, kernel, stride, expansion, c_in, c_out), in order."""
    specs, c_in = [], STEM_CHANNELS
    for stage, (repeats, kernel, stride, expansion, c_out) in enumerate(STAGES):
        for r in range(repeats):
            specs.append((stage, kernel, stride if r == 0 else 1, expansion, c_in, c_out))
            c_in = c_out
    return tuple(specs)


BLOCKS = block_specs()


def expected_shapes(num_classes=1000):
    """State-dict name -> shape of the checkpoint (296 entries for 1000 classes)."""
    shapes = {}

    def conv_bn(conv, bn, c_out, c_in, k):
        shapes.update(conv_bn_shapes(conv, bn, c_out, c_in, k))

    conv_bn("_conv_stem", "_bn0", STEM_CHANNELS, 3, 3)
    for i, (_, k, _, e, c_in, c_out) in enumerate(BLOCKS):
        b = f"_blocks.{i}"
        if e != 1:
            conv_bn(f"{b}._expand_conv", f"{b}._bn0", c_in * e, c_in, 1)
        conv_bn(f"{b}._depthwise_conv", f"{b}._bn1", c_in * e, 1, k)
        conv_bn(f"{b}._project_conv", f"{b}._bn2", c_out, c_in * e, 1)
    conv_bn("_conv_head", "_bn1", HEAD_CHANNELS, STAGES[-1][-1], 1)
    shapes["_fc.weight"] = (num_classes, HEAD_CHANNELS)
    shapes["_fc.bias"] = (num_classes,)
    return shapes


def fold_params(state_dict):
    """Fold each BN into its conv; returns {"stem": (w, b), "blocks": [...], "head": (w, b)}.

    Each (w, b) is an OIHW float32 weight (OHWI in memory) and its (O,) float32 bias; a block
    is a dict with "expand" (or None), "depthwise" and "project".
    """
    def folded(conv, bn):
        return folded_conv(state_dict, conv, bn, BN_EPS)

    blocks = []
    for i, (_, _, _, e, _, _) in enumerate(BLOCKS):
        b = f"_blocks.{i}"
        blocks.append({
            "expand": folded(f"{b}._expand_conv", f"{b}._bn0") if e != 1 else None,
            "depthwise": folded(f"{b}._depthwise_conv", f"{b}._bn1"),
            "project": folded(f"{b}._project_conv", f"{b}._bn2"),
        })
    return {"stem": folded("_conv_stem", "_bn0"), "blocks": blocks,
            "head": folded("_conv_head", "_bn1")}


def relu6_(y):
    """ReLU6 in place on an array the forward pass has just made (saves a copy)."""
    return relu6(y, out=y)


def inverted_residual(x, block, spec):
    """One MBConv block without squeeze-excitation. x : (N, c_in, H, W) -> (N, c_out, H', W')."""
    _, kernel, stride, _, c_in, c_out = spec
    y = x
    if block["expand"] is not None:
        y = relu6_(conv2d(y, *block["expand"]))                           # (N, c_in*e, H, W)
    w, b = block["depthwise"]
    y = relu6_(conv2d(y, w, b, stride=stride, padding="same", groups=w.shape[0]))  # (N, c_in*e, H', W')
    y = conv2d(y, *block["project"])                                      # (N, c_out, H', W')
    if stride == 1 and c_in == c_out:
        y += x                                                            # the residual connection
    return y


def iter_stages(params, x):
    """Yield (name, output) for stem, stage1..stage7 and features, in order.

    x : (N, 3, H, W) float32 -> stem (N, 32, H/2, W/2) ... features (N, 1280, H/32, W/32),
    each spatial size rounded up (TF "SAME").
    """
    w, b = params["stem"]
    y = relu6_(conv2d(x, w, b, stride=2, padding="same"))                 # (N, 32, H/2, W/2)
    yield "stem", y
    for i, (spec, block) in enumerate(zip(BLOCKS, params["blocks"])):
        y = inverted_residual(y, block, spec)                             # (N, c_out, H', W')
        if i + 1 == len(BLOCKS) or BLOCKS[i + 1][0] != spec[0]:
            yield STAGE_NAMES[spec[0]], y                                 # the last block of a stage
    yield "features", relu6_(conv2d(y, *params["head"]))                  # (N, 1280, h, w)


def classify(f, fc_weight, fc_bias):
    """Global average pooling then the FC layer: f (N, 1280, h, w) -> logits S (N, classes)."""
    return linear(global_avg_pool(f), fc_weight, fc_bias)
