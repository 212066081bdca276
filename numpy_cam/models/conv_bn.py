"""A convolution followed by batch norm, the unit of every architecture here: its
state-dict shapes, the batch norm folded into the conv once, at load, and the set of layer
functions a forward pass calls (``Layers``).

conv(x, W, b) followed by inference BN equals conv(x, W', b') (``layers.fold_batch_norm``).
The folded weight is stored in OHWI memory and handed out as an OIHW view, the layout the
convolutions in ``numpy_cam.layers`` read without a copy.

Other layer functions (``layer_set``): every architecture's ``iter_stages(params, x, layers)``
calls its layers through ``layers``, a ``Layers`` tuple, never through a module-level import,
so that a model can run with other functions in place of the reference ones (a student's
``conv2d``: ``load_model(..., layers={"conv2d": my_conv2d})``) while the reference stays
untouched. Each replacement has the reference's signature and returns a new array; the
reference ReLU and ReLU6 here act in place, which is safe because the forward pass applies
them only to arrays it has just made. ``layers=None`` means the architecture module's own
imports (``module_layers``), read at call time: what ``tests/test_tolerance.py`` patches to
inject a bug into the reference.
"""
from collections import namedtuple
from collections.abc import Mapping

import numpy as np

from .. import layers as _layers
from ..layers import fold_batch_norm, relu

BN_PARAMS = ("weight", "bias", "running_mean", "running_var")             # a BN's state-dict suffixes


def relu_(y):
    """ReLU in place on an array the forward pass has just made (saves a copy)."""
    return relu(y, out=y)


def relu6_(y):
    """ReLU6 in place on an array the forward pass has just made (saves a copy)."""
    return _layers.relu6(y, out=y)


# The layer functions a forward pass calls, by their names in ``numpy_cam.layers``.
Layers = namedtuple("Layers", "conv2d relu relu6 max_pool2d global_avg_pool global_max_pool linear")
REFERENCE_LAYERS = Layers(conv2d=_layers.conv2d, relu=relu_, relu6=relu6_, max_pool2d=_layers.max_pool2d,
                          global_avg_pool=_layers.global_avg_pool, global_max_pool=_layers.global_max_pool,
                          linear=_layers.linear)


def module_layers(layers, **own):
    """``layers``, or when None the reference layers with ``own`` in place: the calling
    architecture module's own imports (``conv2d=conv2d``), looked up when it runs."""
    return REFERENCE_LAYERS._replace(**own) if layers is None else layers


def layer_set(layers=None, base=REFERENCE_LAYERS):
    """``base`` with the functions of ``layers`` (name -> callable) in place of its own.

    Parameters
    ----------
    layers : mapping of str to callable, a ``Layers`` (returned as it is), or None (``base``)
        Keys among ``Layers._fields``: "conv2d", "relu", "relu6", "max_pool2d",
        "global_avg_pool", "global_max_pool", "linear"; each value a function with the
        signature of the one of that name in ``numpy_cam.layers``.
    base : Layers

    Returns
    -------
    Layers
    """
    if layers is None or isinstance(layers, Layers):
        return base if layers is None else layers
    if not isinstance(layers, Mapping):
        raise TypeError(f"layers must be a dict of name -> function; got {type(layers).__name__}")
    unknown = sorted(set(layers) - set(Layers._fields), key=str)
    if unknown:
        raise ValueError(f"layers has unknown names {unknown}; expected some of {', '.join(Layers._fields)}")
    for name, fn in layers.items():
        if not callable(fn):
            raise TypeError(f"layers[{name!r}] must be a function; got {type(fn).__name__}")
    return base._replace(**layers)


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
