"""The small GAP and GMP networks of the GAP-vs-GMP experiment (paper Sec. 3, Table 2).

Two networks, identical but for the global pooling, trained by ``weights/train_small.py`` on
the synthetic localisation data of ``numpy_cam.gap_gmp.synthetic`` (64 x 64 images):

    conv1..conv5  3x3 conv (padding 1, PyTorch-style symmetric), BN (eps 1e-5), ReLU;
                  channels 3 -> 32 -> 48 -> 48 -> 96 -> 96, strides 1, 2, 1, 2, 1
                  conv5's maps (N, 96, H/4, W/4) are the CAM features f_k
    pooling       global average pooling ("small_gap") or global max pooling ("small_gmp")
    classify      linear 96 -> classes, softmax

The paper's comparison: GoogLeNet-GAP and GoogLeNet-GMP classify about equally well, but
GAP localises better, because the average rewards every discriminative part of the object
and the max only the single strongest one. For a GMP net the map M_c of Eq. 2 is still
sum_k w_k^c f_k(x, y), but the identity mean(M_c) + b_c = S_c holds only for GAP.
"""

from ..layers import conv2d
from .conv_bn import conv_bn_shapes, folded_conv, module_layers

BN_EPS = 1e-5
CHANNELS = (32, 48, 48, 96, 96)
STRIDES = (1, 2, 1, 2, 1)
STAGE_NAMES = tuple(f"conv{i}" for i in range(1, len(CHANNELS) + 1))
FC_WEIGHT, FC_BIAS = "fc.weight", "fc.bias"                               # (classes, 96), (classes,)
# x = (rgb - 127.5) / 127.5 on the whole 64 x 64 image (no crop, no resize)
PREPROCESSING = {"size": 64, "crop_fraction": 1.0, "resample": "bilinear",
                 "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]}


def expected_shapes(num_classes):
    """State-dict name -> shape."""
    shapes, c_in = {}, 3
    for i, c_out in enumerate(CHANNELS):
        shapes.update(conv_bn_shapes(f"features.{i}.conv", f"features.{i}.bn", c_out, c_in, 3))
        c_in = c_out
    shapes[FC_WEIGHT] = (num_classes, CHANNELS[-1])
    shapes[FC_BIAS] = (num_classes,)
    return shapes


def fold_params(state_dict):
    """Fold each BN into its conv: a list of (w, b), OIHW float32 weights in OHWI memory."""
    params = [folded_conv(state_dict, f"features.{i}.conv", f"features.{i}.bn", BN_EPS)
              for i in range(len(CHANNELS))]                              # (O, I, 3, 3), (O,) each
    return params


def iter_stages(params, x, layers=None):
    """Yield (name, output) for conv1..conv5 and "features" (= conv5): x (N, 3, H, W) -> (N, 96, H/4, W/4).

    ``layers``: the layer functions to call (``conv_bn.Layers``; None: the reference).
    """
    layers = module_layers(layers, conv2d=conv2d)
    y = x
    for name, (w, b), stride in zip(STAGE_NAMES, params, STRIDES):
        y = layers.relu(layers.conv2d(y, w, b, stride=stride, padding=1))  # (N, c_out, H', W')
        yield name, y
    yield "features", y                                                   # (N, 96, ceil(H/4), ceil(W/4))
