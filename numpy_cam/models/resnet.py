"""torchvision's ResNet-18, -34 and -50 (He et al. 2016) as pure NumPy functions.

Architecture, with torchvision's state-dict names (``RESNET18``, ``RESNET34``, ``RESNET50``):

    stem      conv1 7x7 stride 2 padding 3 (no bias), bn1, ReLU, max pool 3x3 stride 2 padding 1
    layer1-4  residual blocks; the first block of layer2..4 halves the size (stride 2) and has a
              projection shortcut ``downsample`` = 1x1 conv with that stride + BN (so has
              layer1.0 of ResNet-50, where 64 -> 256 channels)
              BasicBlock (18: [2, 2, 2, 2], 34: [3, 4, 6, 3] blocks; width 64, 128, 256, 512):
                  3x3 conv (stride s), BN, ReLU -> 3x3 conv, BN -> + shortcut -> ReLU
              Bottleneck (50: [3, 4, 6, 3] blocks; width w = 64..512, output 4 w):
                  1x1 conv, BN, ReLU -> 3x3 conv (stride s), BN, ReLU -> 1x1 conv, BN
                  -> + shortcut -> ReLU
    features  layer4's output: the CAM maps f_k, (N, 512 or 2048, H/32, W/32) (paper Sec. 2)
    classify  global average pooling F_k, then ``fc`` (linear with bias) S_c

CAM needs conv maps -> global average pooling -> one linear layer (Zhou et al. 2016, Sec. 2):
a ResNet has exactly that head, so Eq. 2 applies to it unchanged.

Every convolution pads symmetrically (PyTorch's ``padding=k // 2``), so at an odd size the
output has floor((H - 1) / 2) + 1 rows; batch norm uses PyTorch's eps = 1e-5. How this
differs from Keras' ``ResNet50``: Keras puts the stride on the first 1x1 conv of a
bottleneck (the original v1; torchvision's "v1.5" strides the 3x3 conv), gives its convs
biases and uses BN eps = 1.001e-5 (its padding is symmetric too); ``keras_resnet.py`` is
that network, and Keras weights run there, not here.

Batch norm is folded into the conv before it once, at load (``fold_params``); folded
weights are float32 in OHWI memory handed to ``conv2d`` as OIHW views (see ``numpy_cam.layers``).
ReLU, bias and residual additions act in place on arrays the forward pass has just made.

References: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016, arXiv:1512.03385 (Table 1 gives the layouts).
"""

from collections import namedtuple

from ..layers import conv2d, max_pool2d
from .conv_bn import conv_bn_shapes, folded_conv, module_layers

BN_EPS = 1e-5
WIDTHS = (64, 128, 256, 512)                                             # of layer1..layer4
# depth: (block kind, number of blocks in layer1..layer4)
LAYOUTS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3))}
EXPANSION = {"basic": 1, "bottleneck": 4}
# torchvision's evaluation: resize the short side to 256, centre crop 224, ImageNet mean/std
# on [0, 1] values. numpy_cam.io.image.preprocess crops int(224 / 256 * short side) around the
# centre and resizes that to 224: the same up to resampling. Mean and std on the 0..255 scale.
PREPROCESSING = {"size": 224, "crop_fraction": 224 / 256, "resample": "bilinear",
                 "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]}
# One residual block: its state-dict prefix ("layer2.0"), channels, stride and projection shortcut.
Block = namedtuple("Block", "name c_in width c_out stride has_downsample")


class ResNet:
    """One ResNet depth, with the architecture API of ``numpy_cam.models`` as attributes."""

    PREPROCESSING = PREPROCESSING
    FC_WEIGHT, FC_BIAS = "fc.weight", "fc.bias"                            # (classes, K), (classes,)

    def __init__(self, depth):
        if depth not in LAYOUTS:
            raise ValueError(f"depth must be one of {sorted(LAYOUTS)}; got {depth!r}")
        self.depth = depth
        self.kind, self.repeats = LAYOUTS[depth]
        self.expansion = EXPANSION[self.kind]
        self.num_features = WIDTHS[-1] * self.expansion                  # K: 512 or 2048
        self.layer_specs = self._layer_specs()

    def __repr__(self):
        return f"ResNet({self.depth})"

    def _layer_specs(self):
        """Per layer, a tuple of ``Block``s."""
        layers, c_in = [], WIDTHS[0]
        for i, (width, repeats) in enumerate(zip(WIDTHS, self.repeats)):
            blocks, c_out = [], width * self.expansion
            for b in range(repeats):
                stride = 2 if i > 0 and b == 0 else 1
                blocks.append(Block(f"layer{i + 1}.{b}", c_in, width, c_out, stride,
                                    has_downsample=stride != 1 or c_in != c_out))
                c_in = c_out
            layers.append(tuple(blocks))
        return tuple(layers)

    def _convs(self, c_in, width, c_out):
        """The (conv, bn, c_out, c_in, kernel) of a block's residual branch, in order."""
        if self.kind == "basic":
            return (("conv1", "bn1", width, c_in, 3), ("conv2", "bn2", c_out, width, 3))
        return (("conv1", "bn1", width, c_in, 1), ("conv2", "bn2", width, width, 3),
                ("conv3", "bn3", c_out, width, 1))

    def expected_shapes(self, num_classes=1000):
        """State-dict name -> shape, in torchvision's order (122 / 218 / 320 entries for
        ResNet-18 / 34 / 50, of which 20 / 36 / 53 are ``num_batches_tracked``)."""
        shapes = {}

        def conv_bn(conv, bn, c_out, c_in, k):
            shapes.update(conv_bn_shapes(conv, bn, c_out, c_in, k))

        conv_bn("conv1", "bn1", WIDTHS[0], 3, 7)
        for layer in self.layer_specs:
            for block in layer:
                for conv, bn, o, i, k in self._convs(block.c_in, block.width, block.c_out):
                    conv_bn(f"{block.name}.{conv}", f"{block.name}.{bn}", o, i, k)
                if block.has_downsample:
                    conv_bn(f"{block.name}.downsample.0", f"{block.name}.downsample.1", block.c_out, block.c_in, 1)
        shapes[self.FC_WEIGHT] = (num_classes, self.num_features)
        shapes[self.FC_BIAS] = (num_classes,)
        return shapes

    def fold_params(self, state_dict):
        """Fold each BN into its conv: {"stem": (w, b), "layers": [[block, ...] x 4]}.

        Each (w, b) is an OIHW float32 weight (OHWI in memory) and its (O,) float32 bias; a
        block is {"convs": [(w, b), ...] (2 or 3, the residual branch), "downsample": (w, b)
        or None}.
        """
        def folded(conv, bn):
            return folded_conv(state_dict, conv, bn, BN_EPS)

        layers = []
        for layer in self.layer_specs:
            layers.append([{
                "convs": [folded(f"{block.name}.{conv}", f"{block.name}.{bn}")
                          for conv, bn, *_ in self._convs(block.c_in, block.width, block.c_out)],
                "downsample": folded(f"{block.name}.downsample.0", f"{block.name}.downsample.1")
                              if block.has_downsample else None,
            } for block in layer])
        return {"stem": folded("conv1", "bn1"), "layers": layers}

    def block(self, x, params, stride, layers=None):
        """One residual block: relu(branch(x) + shortcut(x)). x (N, c_in, H, W) -> (N, c_out, H', W').

        ``layers``: the layer functions to call (``conv_bn.Layers``; None: the reference).
        """
        layers = module_layers(layers, conv2d=conv2d, max_pool2d=max_pool2d)
        conv, relu = layers.conv2d, layers.relu
        convs = params["convs"]
        if self.kind == "basic":
            y = relu(conv(x, *convs[0], stride=stride, padding=1))       # (N, width, H', W')
            y = conv(y, *convs[1], padding=1)                             # (N, c_out, H', W')
        else:
            y = relu(conv(x, *convs[0]))                                 # (N, width, H, W)
            y = relu(conv(y, *convs[1], stride=stride, padding=1))       # (N, width, H', W')
            y = conv(y, *convs[2])                                        # (N, c_out, H', W')
        if params["downsample"] is None:
            y += x                                                        # identity shortcut
        else:
            y += conv(x, *params["downsample"], stride=stride)            # projection shortcut
        return relu(y)

    def iter_stages(self, params, x, layers=None):
        """Yield (name, output) for stem, layer1..layer4 and features (= layer4), in order.

        x : (N, 3, H, W) float32 -> stem (N, 64, H/4, W/4), layer1 (N, 64 or 256, H/4, W/4),
        layer2 .. layer4 halve the size each, features (N, K, H/32, W/32); each halving is
        floor((size - 1) / 2) + 1. ``layers``: the layer functions to call (``conv_bn.Layers``;
        None: the reference).
        """
        layers = module_layers(layers, conv2d=conv2d, max_pool2d=max_pool2d)
        w, b = params["stem"]
        y = layers.relu(layers.conv2d(x, w, b, stride=2, padding=3))      # (N, 64, H/2, W/2)
        y = layers.max_pool2d(y, 3, stride=2, padding=1)                  # (N, 64, H/4, W/4)
        yield "stem", y
        for i, (specs, blocks) in enumerate(zip(self.layer_specs, params["layers"])):
            for block, block_params in zip(specs, blocks):
                y = self.block(y, block_params, block.stride, layers)     # (N, c_out, H', W')
            yield f"layer{i + 1}", y
        yield "features", y                                               # (N, K, h, w): f_k

RESNET18, RESNET34, RESNET50 = ResNet(18), ResNet(34), ResNet(50)
