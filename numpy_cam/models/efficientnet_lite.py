"""EfficientNet-Lite0, -Lite1 and -Lite2 (Tan & Le 2019; Google's "Lite" family) as pure NumPy functions.

Architecture, as Google's official ImageNet checkpoints expect it (see weights/README.md):

    stem      3x3 conv stride 2, 3 -> 32, BN, ReLU6
    stage 1-7 inverted-residual blocks (``BASE_STAGES``, scaled per variant); block =
              [1x1 expand conv, BN, ReLU6] (absent when expansion is 1)
              -> depthwise kxk conv (groups = channels), BN, ReLU6
              -> 1x1 project conv, BN (no activation) -> + input when stride 1 and in == out
    head      1x1 conv -> 1280, BN, ReLU6: the CAM feature maps f_k (paper Sec. 2)
    classify  global average pooling F_k, (dropout: identity at inference), linear S_c

One spec builds every member (Google's ``efficientnet_lite_builder``; ``VARIANTS``): Lite0 is
the base table; a variant multiplies each stage's output channels by ``width`` and rounds to
the nearest multiple of 8 (never more than 10 % down: ``round_filters``) and its repeats by
``depth``, rounded up (``round_repeats``). Lite fixes the stem (32) and the head (1280) and
leaves the repeats of the first and the last stage unscaled. Hence 16 blocks in Lite0 and 21
in Lite1 and Lite2; stage widths 16, 24, 40, 80, 112, 192, 320 in Lite0 and Lite1, 16, 24, 48,
88, 120, 208, 352 in Lite2 (every fact checked against the checkpoints' names and shapes).

All convolutions use TensorFlow "SAME" padding, computed per input size (a padding fixed for
224 x 224 is wrong at other sizes), and batch norm uses eps = 1e-3. Both matter: symmetric
padding or eps = 1e-5 move the logits by 1 to 2 while the top-3 still looks plausible.

Batch norm is folded into the convolution before it once, at load (``fold_params``), so the
forward pass is conv -> activation only. Folded weights are kept in OHWI memory and handed to
``conv2d`` as OIHW views (see the layout note in ``layers``).

References: M. Tan, Q. V. Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019, arXiv:1905.11946; github.com/tensorflow/tpu,
models/official/efficientnet/lite/ (the Lite builder, README and checkpoints).
"""
import math
from collections import namedtuple

from ..layers import conv2d
from .conv_bn import conv_bn_shapes, folded_conv, module_layers

BN_EPS = 1e-3
STEM_CHANNELS = 32                                                       # fixed in every Lite variant
HEAD_CHANNELS = 1280                                                     # fixed in every Lite variant
CHANNEL_DIVISOR = 8                                                      # Google's depth_divisor
# Google's evaluation centre crop: side = size / (size + CROP_PADDING) * short side (224/256 for Lite0)
CROP_PADDING = 32

Variant = namedtuple("Variant", "name width depth resolution")
VARIANTS = {v.name: v for v in (                                         # efficientnet_lite_params
    Variant("efficientnet_lite0", 1.0, 1.0, 224),
    Variant("efficientnet_lite1", 1.0, 1.1, 240),
    Variant("efficientnet_lite2", 1.1, 1.2, 260),
)}

# One row a stage; the stride is the first block's (the others have stride 1).
Stage = namedtuple("Stage", "repeats kernel stride expansion out_channels")
BASE_STAGES = (Stage(1, 3, 1, 1, 16), Stage(2, 3, 2, 6, 24), Stage(2, 5, 2, 6, 40), Stage(3, 3, 2, 6, 80),
               Stage(3, 5, 1, 6, 112), Stage(4, 5, 2, 6, 192), Stage(1, 3, 1, 6, 320))
STAGE_NAMES = tuple(f"stage{s}" for s in range(1, len(BASE_STAGES) + 1))

# One inverted-residual block; ``stage`` indexes STAGE_NAMES.
Block = namedtuple("Block", "stage kernel stride expansion c_in c_out")


def round_filters(channels, width):
    """``channels * width`` to the nearest multiple of 8, but never more than 10 % below it."""
    scaled = channels * width
    rounded = max(CHANNEL_DIVISOR, int(scaled + CHANNEL_DIVISOR / 2) // CHANNEL_DIVISOR * CHANNEL_DIVISOR)
    return rounded + CHANNEL_DIVISOR if rounded < 0.9 * scaled else rounded


def round_repeats(repeats, depth):
    """``repeats * depth`` rounded up."""
    return int(math.ceil(depth * repeats))


def scaled_stages(width, depth):
    """``BASE_STAGES`` scaled: every stage's channels, and the repeats of all but the first and last."""
    last = len(BASE_STAGES) - 1
    return tuple(stage._replace(repeats=stage.repeats if i in (0, last) else round_repeats(stage.repeats, depth),
                                out_channels=round_filters(stage.out_channels, width))
                 for i, stage in enumerate(BASE_STAGES))


def block_specs(stages):
    """The blocks of ``stages`` in order, each a ``Block``; c_in is the previous layer's output."""
    blocks, c_in = [], STEM_CHANNELS
    for s, stage in enumerate(stages):
        for r in range(stage.repeats):
            blocks.append(Block(s, stage.kernel, stage.stride if r == 0 else 1, stage.expansion,
                                c_in, stage.out_channels))
            c_in = stage.out_channels
    return tuple(blocks)


def inverted_residual(x, params, block, layers=None):
    """One MBConv block without squeeze-excitation. x : (N, c_in, H, W) -> (N, c_out, H', W').

    ``layers``: the layer functions to call (``conv_bn.Layers``; None: the reference).
    """
    layers = module_layers(layers, conv2d=conv2d)
    conv, relu6 = layers.conv2d, layers.relu6
    y = x
    if params["expand"] is not None:
        y = relu6(conv(y, *params["expand"]))                             # (N, c_in*e, H, W)
    w, b = params["depthwise"]
    y = relu6(conv(y, w, b, stride=block.stride, padding="same", groups=w.shape[0]))  # (N, c_in*e, H', W')
    y = conv(y, *params["project"])                                       # (N, c_out, H', W')
    if block.stride == 1 and block.c_in == block.c_out:
        y += x                                                            # the residual connection
    return y


class EfficientNetLite:
    """One EfficientNet-Lite variant, with the architecture API of ``numpy_cam.models`` as attributes."""

    FC_WEIGHT, FC_BIAS = "_fc.weight", "_fc.bias"                          # (classes, 1280), (classes,)

    def __init__(self, variant):
        self.variant = variant
        self.stages = scaled_stages(variant.width, variant.depth)
        self.blocks = block_specs(self.stages)
        size = variant.resolution
        # Google's evaluation preprocessing (the checkpoints were trained with it, not ImageNet mean/std)
        self.PREPROCESSING = {"size": size, "crop_fraction": size / (size + CROP_PADDING), "resample": "bicubic",
                              "mean": [127.0, 127.0, 127.0], "std": [128.0, 128.0, 128.0]}

    def __repr__(self):
        return f"EfficientNetLite({self.variant})"

    def expected_shapes(self, num_classes=1000):
        """State-dict name -> shape of the checkpoint (296 entries for Lite0 with 1000 classes,
        386 for Lite1 and Lite2)."""
        shapes = {}

        def conv_bn(conv, bn, c_out, c_in, k):
            shapes.update(conv_bn_shapes(conv, bn, c_out, c_in, k))

        conv_bn("_conv_stem", "_bn0", STEM_CHANNELS, 3, 3)
        for i, block in enumerate(self.blocks):
            b, mid = f"_blocks.{i}", block.c_in * block.expansion
            if block.expansion != 1:
                conv_bn(f"{b}._expand_conv", f"{b}._bn0", mid, block.c_in, 1)
            conv_bn(f"{b}._depthwise_conv", f"{b}._bn1", mid, 1, block.kernel)
            conv_bn(f"{b}._project_conv", f"{b}._bn2", block.c_out, mid, 1)
        conv_bn("_conv_head", "_bn1", HEAD_CHANNELS, self.blocks[-1].c_out, 1)
        shapes[self.FC_WEIGHT] = (num_classes, HEAD_CHANNELS)
        shapes[self.FC_BIAS] = (num_classes,)
        return shapes

    def fold_params(self, state_dict):
        """Fold each BN into its conv; returns {"stem": (w, b), "blocks": [...], "head": (w, b)}.

        Each (w, b) is an OIHW float32 weight (OHWI in memory) and its (O,) float32 bias; a block
        is a dict with "expand" (or None), "depthwise" and "project".
        """
        def folded(conv, bn):
            return folded_conv(state_dict, conv, bn, BN_EPS)

        blocks = []
        for i, block in enumerate(self.blocks):
            b = f"_blocks.{i}"
            blocks.append({
                "expand": folded(f"{b}._expand_conv", f"{b}._bn0") if block.expansion != 1 else None,
                "depthwise": folded(f"{b}._depthwise_conv", f"{b}._bn1"),
                "project": folded(f"{b}._project_conv", f"{b}._bn2"),
            })
        return {"stem": folded("_conv_stem", "_bn0"), "blocks": blocks,
                "head": folded("_conv_head", "_bn1")}

    def iter_stages(self, params, x, layers=None):
        """Yield (name, output) for stem, stage1..stage7 and features, in order.

        x : (N, 3, H, W) float32 -> stem (N, 32, H/2, W/2) ... features (N, 1280, H/32, W/32),
        each spatial size rounded up (TF "SAME"). ``layers``: the layer functions to call
        (``conv_bn.Layers``; None: the reference).
        """
        layers = module_layers(layers, conv2d=conv2d)
        conv, relu6 = layers.conv2d, layers.relu6
        w, b = params["stem"]
        y = relu6(conv(x, w, b, stride=2, padding="same"))                # (N, 32, H/2, W/2)
        yield "stem", y
        for i, (block, block_params) in enumerate(zip(self.blocks, params["blocks"])):
            y = inverted_residual(y, block_params, block, layers)         # (N, c_out, H', W')
            if i + 1 == len(self.blocks) or self.blocks[i + 1].stage != block.stage:
                yield STAGE_NAMES[block.stage], y                         # the last block of a stage
        yield "features", relu6(conv(y, *params["head"]))                 # (N, 1280, h, w)


EFFICIENTNET_LITE = {name: EfficientNetLite(variant) for name, variant in VARIANTS.items()}
