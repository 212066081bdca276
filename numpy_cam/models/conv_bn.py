"""A convolution followed by batch norm, the unit of every architecture here: its
state-dict shapes, and the batch norm folded into the conv once, at load.

conv(x, W, b) followed by inference BN equals conv(x, W', b') (``layers.fold_batch_norm``).
The folded weight is stored in OHWI memory and handed out as an OIHW view, the layout the
convolutions in ``numpy_cam.layers`` read without a copy.
"""
import numpy as np

from ..layers import fold_batch_norm, relu

BN_PARAMS = ("weight", "bias", "running_mean", "running_var")             # a BN's state-dict suffixes


def relu_(y):
    """ReLU in place on an array the forward pass has just made (saves a copy)."""
    return relu(y, out=y)


def folded_conv(state_dict, conv, bn, eps, conv_bias=False):
    """(w, b) of ``<conv>.weight`` (and ``<conv>.bias`` if conv_bias) folded with BN ``<bn>.*``.

    Returns w : (O, I, kh, kw) float32, OHWI in memory; b : (O,) float32.
    """
    w, b = fold_batch_norm(state_dict[f"{conv}.weight"], state_dict[f"{conv}.bias"] if conv_bias else None,
                           state_dict[f"{bn}.weight"], state_dict[f"{bn}.bias"],
                           state_dict[f"{bn}.running_mean"], state_dict[f"{bn}.running_var"], eps)
    w_ohwi = np.ascontiguousarray(w.transpose(0, 2, 3, 1), dtype=np.float32)
    return w_ohwi.transpose(0, 3, 1, 2), b.astype(np.float32)            # (O, I, kh, kw), (O,)


def conv_bn_shapes(conv, bn, c_out, c_in, k, conv_bias=False, batches_tracked=True):
    """State-dict name -> shape of a (c_out, c_in, k, k) conv and its BN (PyTorch names;
    Keras has a conv bias and no ``num_batches_tracked``)."""
    shapes = {f"{conv}.weight": (c_out, c_in, k, k)}
    if conv_bias:
        shapes[f"{conv}.bias"] = (c_out,)
    shapes.update({f"{bn}.{p}": (c_out,) for p in BN_PARAMS})
    if batches_tracked:
        shapes[f"{bn}.num_batches_tracked"] = ()
    return shapes
