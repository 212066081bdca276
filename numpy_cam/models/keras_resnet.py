"""Keras' ResNet50 (``keras.applications.ResNet50``, He et al. 2016, v1) as pure NumPy functions.

Architecture, as Keras 3 builds it (every fact below read from the layer configs of a model
built with ``weights=None``; layer names in quotes are Keras')::

    stem      "conv1_pad" ZeroPadding2D(3) + "conv1_conv" 7x7 conv stride 2 "valid", 3 -> 64,
              with bias; "conv1_bn" BN; ReLU; "pool1_pad" ZeroPadding2D(1) + "pool1_pool"
              3x3 max pool stride 2 "valid"
    conv2-5   3, 4, 6, 3 bottleneck blocks "conv<s>_block<b>", widths 64, 128, 256, 512:
              "_1_conv" 1x1 conv (stride 2 HERE in the first block of conv3-5), BN, ReLU
              -> "_2_conv" 3x3 conv stride 1 "same", BN, ReLU
              -> "_3_conv" 1x1 conv to 4 x width, BN
              -> + shortcut, ReLU ("_out"). The shortcut is the input, or in the first block
              of each stage "_0_conv" 1x1 conv (same stride) + BN (a projection).
    head      "avg_pool" global average pooling F_k over conv5's maps f_k (paper Sec. 2),
              "predictions" Dense 2048 -> classes with softmax (S_c before the softmax)

Every conv has a bias (``use_bias=True``) and every BN eps = 1.001e-5. The explicit zero
padding is symmetric, so unlike EfficientNet no TF "SAME" asymmetry arises: the 3x3 convs
are "same" at stride 1 (1 pixel each side at any size) and the strided convs are 1x1
"valid". The max pool pads with zeros in Keras and with -inf here; after the ReLU every
value is >= 0 and every window holds a real pixel, so the maxima are the same.

State-dict names: the Keras layer name + ``.weight`` / ``.bias`` (conv kernels OIHW, Dense
(classes, 2048)) and, for BN, ``.weight .bias .running_mean .running_var`` (gamma, beta,
moving mean, moving variance). ``numpy_cam.io.export`` converts a Keras model to them.

Preprocessing ("caffe" mode of ``keras.applications.resnet50.preprocess_input``): the RGB
image, 0..255, is reversed to BGR and the ImageNet mean in BGR order, [103.939, 116.779,
123.68], is subtracted; no scaling. ``PREPROCESSING`` says so with ``"channel_order": "BGR"``:
"mean" and "std" are given in the model's channel order, so the image's channels are reversed
first, then x = (bgr - mean) / std. Keras' own examples squash the whole image to 224 x 224
(``keras.utils.load_img`` defaults to nearest-neighbour); here it is bilinear, with no crop.
"""

from collections import namedtuple

from ..layers import conv2d, max_pool2d
from .conv_bn import conv_bn_shapes, folded_conv, module_layers

BN_EPS = 1.001e-5
STEM_CHANNELS = 64
EXPANSION = 4                                                             # block output = 4 x width
STAGE_WIDTHS = (64, 128, 256, 512)                                        # conv2 .. conv5
PREPROCESSING = {"size": 224, "crop_fraction": 1.0, "resample": "bilinear",
                 "mean": [103.939, 116.779, 123.68], "std": [1.0, 1.0, 1.0],
                 "channel_order": "BGR"}
# One bottleneck block: its stage ("conv3"), Keras layer prefix ("conv3_block1"), stride, channels.
Block = namedtuple("Block", "stage prefix stride c_in width c_out")


class KerasResNet:
    """A Keras ResNet v1 (bottleneck blocks) with ``blocks`` blocks in conv2 .. conv5.

    Has the attribute API of the other architecture modules: ``expected_shapes``,
    ``fold_params``, ``iter_stages``, ``PREPROCESSING``, ``FC_WEIGHT``, ``FC_BIAS``.
    """

    BN_EPS = BN_EPS
    PREPROCESSING = PREPROCESSING
    FC_WEIGHT, FC_BIAS = "predictions.weight", "predictions.bias"         # (classes, 2048), (classes,)

    def __init__(self, name, blocks):
        self.name = name
        self.blocks = tuple(blocks)                                       # e.g. (3, 4, 6, 3)
        self.features_channels = EXPANSION * STAGE_WIDTHS[-1]             # 2048: K of w_k^c

    def __repr__(self):
        return f"KerasResNet({self.name!r}, blocks={self.blocks})"

    def block_specs(self):
        """The blocks in order, each a ``Block``."""
        specs, c_in = [], STEM_CHANNELS
        for s, (repeats, width) in enumerate(zip(self.blocks, STAGE_WIDTHS)):
            for b in range(repeats):
                stride = 2 if s > 0 and b == 0 else 1                    # conv2 follows the max pool
                specs.append(Block(f"conv{s + 2}", f"conv{s + 2}_block{b + 1}", stride, c_in, width,
                                   EXPANSION * width))
                c_in = EXPANSION * width
        return tuple(specs)

    def conv_layers(self):
        """Every conv as (conv name, BN name, c_out, c_in, kernel), in Keras' layer order."""
        layers = [("conv1_conv", "conv1_bn", STEM_CHANNELS, 3, 7)]
        for block in self.block_specs():
            p = block.prefix
            layers += [(f"{p}_1_conv", f"{p}_1_bn", block.width, block.c_in, 1),
                       (f"{p}_2_conv", f"{p}_2_bn", block.width, block.width, 3)]
            if p.endswith("_block1"):                                     # projection shortcut
                layers.append((f"{p}_0_conv", f"{p}_0_bn", block.c_out, block.c_in, 1))
            layers.append((f"{p}_3_conv", f"{p}_3_bn", block.c_out, block.width, 1))
        return tuple(layers)

    def expected_shapes(self, num_classes=1000):
        """State-dict name -> shape (320 entries for ResNet50; 25,636,712 numbers for 1000 classes)."""
        shapes = {}
        for conv, bn, c_out, c_in, k in self.conv_layers():
            shapes.update(conv_bn_shapes(conv, bn, c_out, c_in, k, conv_bias=True, batches_tracked=False))
        shapes[self.FC_WEIGHT] = (num_classes, self.features_channels)
        shapes[self.FC_BIAS] = (num_classes,)
        return shapes

    def fold_params(self, state_dict):
        """Fold each BN into its conv (and the conv's bias): {"stem": (w, b), "blocks": [...]}.

        Each (w, b) is an OIHW float32 weight (OHWI in memory) and its (O,) float32 bias; a block
        is a dict with "1", "2", "3" and "shortcut" (None when the shortcut is the identity).
        """
        def folded(conv, bn):
            return folded_conv(state_dict, conv, bn, self.BN_EPS, conv_bias=True)

        blocks = []
        for p in (block.prefix for block in self.block_specs()):
            params = {i: folded(f"{p}_{i}_conv", f"{p}_{i}_bn") for i in ("1", "2", "3")}
            params["shortcut"] = folded(f"{p}_0_conv", f"{p}_0_bn") if p.endswith("_block1") else None
            blocks.append(params)
        return {"stem": folded("conv1_conv", "conv1_bn"), "blocks": blocks}

    def iter_stages(self, params, x, layers=None):
        """Yield (name, output) for stem, conv2 .. conv5 and features (= conv5), in order.

        x : (N, 3, H, W) float32, BGR minus the mean -> stem (N, 64, ceil(H/4), ceil(W/4))
        ... features (N, 2048, ceil(H/32), ceil(W/32)): every stride 2 rounds up (7 at 224,
        4 at 97), although the padding is symmetric and not TF "SAME". ``layers``: the layer
        functions to call (``conv_bn.Layers``; None: the reference).
        """
        layers = module_layers(layers, conv2d=conv2d, max_pool2d=max_pool2d)
        y = layers.relu(layers.conv2d(x, *params["stem"], stride=2, padding=3))  # (N, 64, H/2, W/2)
        y = layers.max_pool2d(y, 3, stride=2, padding=1)                  # (N, 64, H/4, W/4)
        yield "stem", y
        specs = self.block_specs()
        for i, (block, block_params) in enumerate(zip(specs, params["blocks"])):
            y = bottleneck(y, block_params, block.stride, layers)         # (N, 4 width, H', W')
            if i + 1 == len(specs) or specs[i + 1].stage != block.stage:
                yield block.stage, y                                      # the last block of a stage
        yield "features", y                                               # (N, 2048, h, w): f_k

def bottleneck(x, block, stride, layers=None):
    """One Keras v1 bottleneck block: x (N, c_in, H, W) -> (N, 4 width, H / stride, W / stride).

    The stride is on the first 1x1 conv (and on the projection), not on the 3x3 conv as in
    torchvision's ResNet "v1.5": the two disagree for the same weights. ``layers``: the layer
    functions to call (``conv_bn.Layers``; None: the reference).
    """
    layers = module_layers(layers, conv2d=conv2d, max_pool2d=max_pool2d)
    conv, relu = layers.conv2d, layers.relu
    if block["shortcut"] is None:
        shortcut = x                                                      # (N, c_out, H, W)
    else:
        shortcut = conv(x, *block["shortcut"], stride=stride)             # (N, c_out, H', W')
    y = relu(conv(x, *block["1"], stride=stride))                        # (N, width, H', W')
    y = relu(conv(y, *block["2"], padding="same"))                       # (N, width, H', W')
    y = conv(y, *block["3"])                                              # (N, c_out, H', W')
    y += shortcut                                                         # the residual connection
    return relu(y)


KERAS_RESNET50 = KerasResNet("keras_resnet50", (3, 4, 6, 3))
