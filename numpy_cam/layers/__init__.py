"""The layers of a CAM network as pure NumPy functions, vectorised (inference only).

Every function takes and returns NCHW arrays, the paper's f_k(x, y) layout and PyTorch's:
``x`` of shape (N, C, H, W), conv weights of shape (O, C / groups, kh, kw) (OIHW), linear
weights of shape (out, in). Nothing is mutated; the result is a new array.

Memory layout (the one place this is said)
------------------------------------------
An NCHW *shape* says nothing about the order of the bytes. The convolutions here work in
channels-last memory: they view their input as ``x.transpose(0, 2, 3, 1)`` (N, H, W, C) and
return ``y_nhwc.transpose(0, 3, 1, 2)``, an NCHW-shaped view of channels-last memory (what
PyTorch calls ``memory_format=torch.channels_last``). When the input already is such a view
(the output of a previous layer here) no copy is made; a plain C-contiguous NCHW input costs
one copy. Why: a 1x1 convolution on channels-last memory is one matrix product with no copy,
a depthwise tap is a multiply along the contiguous channel axis, and im2col is one copy of a
``sliding_window_view`` with the channels innermost (made and multiplied in blocks of output
rows when it is large, see ``_kernels.conv_dense``). Elementwise NumPy functions follow the
memory order of their input, so batch norm, ReLU and the residual additions keep the layout.
Conv weights may be stored the same way (OHWI memory seen as OIHW): see ``models/``.

float32 in, float32 out: constants are cast to the input dtype so that NumPy 2's promotion
rules never silently compute in float64.

This file is the math; the speed kernels it delegates to (im2col in cache-sized blocks, the
faster BLAS call for few rows, the depthwise einsum and tap loop, border-only padding) are
in ``_kernels.py``, every threshold there a named constant with what was measured. Each
function has a slow loop twin of the same name and signature in ``loop.py``
(``layers.loop``); ``tests/test_layers.py`` checks every pair on random shapes, odd sizes
included, and forces every kernel path.

References: Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR
2016, Sec. 2 (global average pooling gives F_k, the linear layer gives S_c, the softmax P_c).
"""
import math

import numpy as np

from . import _kernels

__all__ = [
    "same_padding", "conv2d", "batch_norm", "fold_batch_norm", "relu", "relu6",
    "max_pool2d", "global_avg_pool", "global_max_pool", "linear", "softmax",
]


def same_padding(size, kernel, stride):
    """TensorFlow "SAME" padding of one spatial axis, as (before, after).

    The output has out = ceil(size / stride) samples; the total padding is
    max((out - 1) * stride + kernel - size, 0), and the odd pixel goes after (bottom / right).
    It depends on the input size, so it is computed per call. Loop twin:
    ``layers.loop.same_padding``.

    Parameters
    ----------
    size, kernel, stride : int
        The input's length along the axis, the window's, and the step.

    Returns
    -------
    (before, after) : (int, int)

    >>> same_padding(224, 3, 2), same_padding(225, 3, 2), same_padding(14, 5, 1)
    ((0, 1), (1, 1), (2, 2))
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pads(padding, height, width, kh, kw, stride):
    """Normalise ``padding`` to ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        if padding.lower() != "same":
            raise ValueError(f"padding must be an int, a pair, a pair of pairs or 'same'; got {padding!r}")
        return same_padding(height, kh, stride), same_padding(width, kw, stride)
    if np.ndim(padding) == 0:
        p = int(padding)
        return (p, p), (p, p)
    ph, pw = padding
    ph = (int(ph), int(ph)) if np.ndim(ph) == 0 else (int(ph[0]), int(ph[1]))
    pw = (int(pw), int(pw)) if np.ndim(pw) == 0 else (int(pw[0]), int(pw[1]))
    if min(ph + pw) < 0:
        raise ValueError(f"padding must not be negative; got {padding!r}")
    return ph, pw


def _output_size(padded_height, padded_width, kh, kw, stride):
    """(Ho, Wo) = ((H' - kh) // stride + 1, (W' - kw) // stride + 1) for a padded H' x W' input."""
    if padded_height < kh or padded_width < kw:
        raise ValueError(f"a {kh}x{kw} window does not fit a padded input of {padded_height}x{padded_width}")
    return (padded_height - kh) // stride + 1, (padded_width - kw) // stride + 1


def _check_nchw(x, name="x"):
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        shape = getattr(x, "shape", type(x).__name__)
        raise ValueError(f"{name} must be an array of shape (N, C, H, W); got {shape}")


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """2-D cross-correlation (what deep-learning frameworks call convolution).

    y[n, o, i, j] = b[o] + sum_{c in group(o), u, v} w[o, c, u, v] x_pad[n, c, i*s + u, j*s + v]

    with s = stride, u < kh, v < kw, and x_pad the input with ``top`` zero rows above,
    ``bottom`` below, ``left`` and ``right`` zero columns beside it. The C input and O output
    channels are split into ``groups`` equal consecutive groups; output channel o sees only
    the C / groups input channels of its group (group(o) = o // (O / groups)), so w has
    C / groups input channels. groups == 1 is an ordinary convolution, groups == C == O a
    depthwise one (each channel filtered on its own).

    Output size: Ho = (H + top + bottom - kh) // s + 1, Wo = (W + left + right - kw) // s + 1.

    Padding: an int p pads p on every side; (ph, pw) pads ph above and below and pw left and
    right (PyTorch's convention); ((top, bottom), (left, right)) is explicit; "same" is
    TensorFlow's, Ho = ceil(H / s), computed from the input size by ``same_padding`` (the odd
    pixel goes bottom / right).

    Loop twin: ``layers.loop.conv2d``. Kernels: ``_kernels.pad`` (the zero border), then
    ``_kernels.conv_dense`` (groups == 1: im2col and one matrix product),
    ``_kernels.conv_depthwise`` (groups == C == O) or ``_kernels.conv_grouped``.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    weight : ndarray of shape (O, C / groups, kh, kw)
    bias : ndarray of shape (O,) or None
    stride : int
    padding : int, (ph, pw), ((top, bottom), (left, right)) or "same"
    groups : int
        C and O must both be divisible by it.

    Returns
    -------
    y : ndarray of shape (N, O, Ho, Wo)
        An NCHW view of channels-last memory (see "Memory layout" above).
    """
    _check_nchw(x)
    n, c, height, width = x.shape
    o, c_per_group, kh, kw = weight.shape
    if c != c_per_group * groups or o % groups:
        raise ValueError(f"weight of shape {weight.shape} with groups={groups} expects "
                         f"{c_per_group * groups} input channels; x has shape {x.shape}")
    pads = _pads(padding, height, width, kh, kw, stride)
    x_pad = _kernels.pad(x.transpose(0, 2, 3, 1), pads, 0)              # (N, H + top + bottom, W + left + right, C)
    ho, wo = _output_size(x_pad.shape[1], x_pad.shape[2], kh, kw, stride)
    if groups == 1:
        y = _kernels.conv_dense(x_pad, weight, stride, ho, wo)          # (N, Ho, Wo, O)
    elif groups == c == o:
        y = _kernels.conv_depthwise(x_pad, weight, stride, ho, wo)      # (N, Ho, Wo, C)
    else:
        y = _kernels.conv_grouped(x_pad, weight, stride, ho, wo, groups)  # (N, Ho, Wo, O)
    if bias is not None:
        y += bias.astype(y.dtype, copy=False)
    return y.transpose(0, 3, 1, 2)                                       # (N, O, Ho, Wo)


def batch_norm(x, gamma, beta, mean, var, eps):
    """Batch normalisation at inference.

    y[n, c, i, j] = gamma[c] * (x[n, c, i, j] - mean[c]) / sqrt(var[c] + eps) + beta[c],

    computed as x * scale + shift with scale = gamma / sqrt(var + eps) and
    shift = beta - mean * scale (both in float64, then cast to x's dtype). eps is a parameter
    because checkpoints differ (PyTorch 1e-5, EfficientNet 1e-3, Keras ResNet50 1.001e-5).
    Loop twin: ``layers.loop.batch_norm``.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    gamma, beta, mean, var : ndarray of shape (C,)
    eps : float

    Returns
    -------
    y : ndarray of shape (N, C, H, W)
    """
    _check_nchw(x)
    scale, shift = _bn_scale_shift(gamma, beta, mean, var, eps)
    return x * scale.astype(x.dtype)[:, None, None] + shift.astype(x.dtype)[:, None, None]


def _bn_scale_shift(gamma, beta, mean, var, eps):
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)   # (C,)
    shift = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale         # (C,)
    return scale, shift


def fold_batch_norm(weight, bias, gamma, beta, mean, var, eps):
    """Fold an inference batch norm into the convolution before it.

    conv(x, w, b) followed by BN equals conv(x, w', b') with, per output channel o,

    s[o] = gamma[o] / sqrt(var[o] + eps),  w'[o] = w[o] * s[o],  b'[o] = (b[o] - mean[o]) * s[o] + beta[o]

    (b = 0 when ``bias`` is None). Computed in float64, returned in the dtype of ``weight``.
    Loop twin: ``layers.loop.fold_batch_norm``.

    Parameters
    ----------
    weight : ndarray of shape (O, C / groups, kh, kw)
    bias : ndarray of shape (O,) or None
    gamma, beta, mean, var : ndarray of shape (O,)
    eps : float

    Returns
    -------
    folded_w : ndarray of shape (O, C / groups, kh, kw)
    folded_b : ndarray of shape (O,)
    """
    scale, shift = _bn_scale_shift(gamma, beta, mean, var, eps)
    b = 0.0 if bias is None else np.asarray(bias, np.float64)
    folded_w = (weight.astype(np.float64) * scale[:, None, None, None]).astype(weight.dtype)
    folded_b = (b * scale + shift).astype(weight.dtype)
    return folded_w, folded_b


def relu(x, out=None):
    """ReLU: y = max(x, 0), elementwise. ``out=x`` works in place (NumPy's ufunc convention).

    Loop twin: ``layers.loop.relu``. x : ndarray of any shape -> y of the same shape.
    """
    return np.maximum(x, 0, out=out)


def relu6(x, out=None):
    """ReLU6: y = min(max(x, 0), 6), elementwise (MobileNet / EfficientNet-Lite). ``out=x``: in place.

    Loop twin: ``layers.loop.relu6``. x : ndarray of any shape -> y of the same shape.
    """
    return np.clip(x, 0, 6, out=out)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling: y[n, c, i, j] = max_{u, v < k} x_pad[n, c, i*s + u, j*s + v].

    k = kernel_size, s = stride (default k). x_pad is padded with -inf, so padded positions
    never win; padding and the output size are as in ``conv2d`` (with kh = kw = k).
    Loop twin: ``layers.loop.max_pool2d``. Kernel: ``_kernels.pad`` (the -inf border); the
    max is taken here, one (u, v) tap at a time over all windows.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    kernel_size : int
    stride : int or None
    padding : int, (ph, pw), ((top, bottom), (left, right)) or "same"

    Returns
    -------
    y : ndarray of shape (N, C, Ho, Wo)
    """
    _check_nchw(x)
    k = kernel_size
    s = k if stride is None else stride
    pads = _pads(padding, x.shape[2], x.shape[3], k, k, s)
    x_pad = _kernels.pad(x.transpose(0, 2, 3, 1), pads, -np.inf)        # (N, H + top + bottom, W + left + right, C)
    ho, wo = _output_size(x_pad.shape[1], x_pad.shape[2], k, k, s)
    y = None
    for u in range(k):
        for v in range(k):
            tap = x_pad[:, u:u + s * ho:s, v:v + s * wo:s, :]            # (N, Ho, Wo, C): x_pad[n, i*s + u, j*s + v, c]
            y = tap.copy() if y is None else np.maximum(y, tap, out=y)
    return y.transpose(0, 3, 1, 2)                                       # (N, C, Ho, Wo)


def global_avg_pool(x):
    """Global average pooling, F_k = (1 / (h w)) sum_{x, y} f_k(x, y): the paper's F_k (Sec. 2) as a mean.

    (The paper writes F_k = sum_{x, y} f_k(x, y); the mean differs by the constant 1 / (h w).)
    Loop twin: ``layers.loop.global_avg_pool``.

    Parameters
    ----------
    x : ndarray of shape (N, K, h, w)
        The last conv maps f_k.

    Returns
    -------
    F : ndarray of shape (N, K)
    """
    _check_nchw(x)
    return x.mean(axis=(2, 3), dtype=x.dtype)


def global_max_pool(x):
    """Global max pooling, the paper's GMP baseline (Sec. 2, 3): F_k = max_{x, y} f_k(x, y).

    Loop twin: ``layers.loop.global_max_pool``.

    Parameters
    ----------
    x : ndarray of shape (N, K, h, w)

    Returns
    -------
    F : ndarray of shape (N, K)
    """
    _check_nchw(x)
    return x.max(axis=(2, 3))


def linear(x, weight, bias=None):
    """Fully connected layer: S[n, c] = b[c] + sum_k w[c, k] x[n, k], i.e. S = x W^T + b.

    On pooled features this is the paper's class score S_c = sum_k w_k^c F_k (Sec. 2), with
    w_k^c = weight[c, k] and the bias b_c of real checkpoints.
    Loop twin: ``layers.loop.linear``.

    Parameters
    ----------
    x : ndarray of shape (N, K)
    weight : ndarray of shape (classes, K)
    bias : ndarray of shape (classes,) or None

    Returns
    -------
    S : ndarray of shape (N, classes)
    """
    if x.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must have shape (N, {weight.shape[1]}) for a weight of shape "
                         f"{weight.shape}; got {x.shape}")
    y = x @ weight.T                                                      # (N, classes)
    if bias is not None:
        y += bias.astype(y.dtype, copy=False)
    return y


def softmax(logits, axis=-1):
    """Softmax, the paper's P_c = exp(S_c) / sum_c' exp(S_c') (Sec. 2).

    Computed as exp(S - max S) / sum exp(S - max S), the same value, so exp cannot overflow.
    Loop twin: ``layers.loop.softmax``.

    Parameters
    ----------
    logits : ndarray of shape (N, classes)
        Any shape; the classes along ``axis``.
    axis : int

    Returns
    -------
    probs : ndarray of the shape of ``logits``
    """
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
