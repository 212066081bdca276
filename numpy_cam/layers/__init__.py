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
rows when it is large, see ``_conv_dense``). Elementwise NumPy functions follow the
memory order of their input, so batch norm, ReLU and the residual additions keep the layout.
Conv weights may be stored the same way (OHWI memory seen as OIHW): see ``models/``.

float32 in, float32 out: constants are cast to the input dtype so that NumPy 2's promotion
rules never silently compute in float64.

Each function has a slow loop twin of the same name and signature in ``layers_loop.py``;
``tests/test_layers.py`` checks every pair on random shapes, odd sizes included.

References: Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR
2016, Sec. 2 (global average pooling gives F_k, the linear layer gives S_c, the softmax P_c).
"""
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "same_padding", "conv2d", "batch_norm", "fold_batch_norm", "relu", "relu6",
    "max_pool2d", "global_avg_pool", "global_max_pool", "linear", "softmax",
]


def same_padding(size, kernel, stride):
    """TensorFlow "SAME" padding of one spatial axis, as (before, after).

    The output has ceil(size / stride) samples; the total padding is
    max((ceil(size / stride) - 1) * stride + kernel - size, 0), and the odd pixel goes
    after (bottom / right). It depends on the input size, so it is computed per call.

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


def _check_nchw(x, name="x"):
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        shape = getattr(x, "shape", type(x).__name__)
        raise ValueError(f"{name} must be an array of shape (N, C, H, W); got {shape}")


def _windows(x_nhwc, kh, kw, stride, pads, fill):
    """Padded (N, H', W', C) array and the output size (Ho, Wo) of a kh x kw window."""
    (top, bottom), (left, right) = pads
    if top or bottom or left or right:
        n, height, width, c = x_nhwc.shape
        padded = np.empty((n, height + top + bottom, width + left + right, c), x_nhwc.dtype)
        padded[:, :top] = fill                                           # only the border is
        padded[:, top + height:] = fill                                  # filled: one pass
        padded[:, top:top + height, :left] = fill                        # fewer than np.pad
        padded[:, top:top + height, left + width:] = fill                # or np.full
        padded[:, top:top + height, left:left + width] = x_nhwc
        x_nhwc = padded
    height, width = x_nhwc.shape[1:3]
    if height < kh or width < kw:
        raise ValueError(f"a {kh}x{kw} window does not fit a padded input of {height}x{width}")
    return x_nhwc, ((height - kh) // stride + 1, (width - kw) // stride + 1)


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """2-D cross-correlation (what deep-learning frameworks call convolution).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    weight : ndarray of shape (O, C / groups, kh, kw)
    bias : ndarray of shape (O,) or None
    stride : int
    padding : int, (ph, pw), ((top, bottom), (left, right)) or "same"
        Zero padding; "same" is TensorFlow's, computed from the input size.
    groups : int
        C and O must both be divisible by it; groups == C == O is a depthwise convolution.

    Returns
    -------
    y : ndarray of shape (N, O, Ho, Wo), Ho = (H + top + bottom - kh) // stride + 1
    """
    _check_nchw(x)
    n, c, height, width = x.shape
    o, c_per_group, kh, kw = weight.shape
    if c != c_per_group * groups or o % groups:
        raise ValueError(f"weight of shape {weight.shape} with groups={groups} expects "
                         f"{c_per_group * groups} input channels; x has shape {x.shape}")
    pads = _pads(padding, height, width, kh, kw, stride)
    x_nhwc, (ho, wo) = _windows(x.transpose(0, 2, 3, 1), kh, kw, stride, pads, 0)  # (N, H', W', C)
    if groups == 1:
        y = _conv_dense(x_nhwc, weight, stride, ho, wo)                  # (N, Ho, Wo, O)
    elif groups == c == o:
        y = _conv_depthwise(x_nhwc, weight, stride, ho, wo)              # (N, Ho, Wo, C)
    else:
        o_per_group = o // groups
        y = np.concatenate([
            _conv_dense(x_nhwc[..., g * c_per_group:(g + 1) * c_per_group],
                        weight[g * o_per_group:(g + 1) * o_per_group], stride, ho, wo)
            for g in range(groups)], axis=-1)                            # (N, Ho, Wo, O)
    if bias is not None:
        y += bias.astype(y.dtype, copy=False)
    return y.transpose(0, 3, 1, 2)                                       # (N, O, Ho, Wo)


# im2col in blocks (measured on ResNet-50, 2 cores with 2 MB of L2 each): when one image's
# im2col matrix is large (the 7x7 stem and the 3x3 convs of layer1 at 224 x 224: 7 MB), filling
# and multiplying it about 2 MB at a time, so the block is still in cache when the matrix
# product reads it, was 11-35% faster than one copy of the whole matrix; smaller blocks than
# ~1024 rows make the product re-read the weights too often and are slower.
_IM2COL_BLOCK_BYTES = 2 << 20
_IM2COL_MIN_BLOCK_ROWS = 1024
# With few rows (layer4 at batch 1: 7 x 7 = 49) OpenBLAS is 10-25% faster on the transposed
# product W @ cols^T (O x M, the long side first) than on cols @ W^T; from ~200 rows on slower.
_FEW_ROWS = 128


def _conv_dense(x_nhwc, weight, stride, ho, wo):
    """groups=1: one matrix product, after an im2col copy when the kernel is not 1x1.

    A large im2col matrix is filled and multiplied a block of output rows of one image at a
    time, into the rows of ``y`` that block gives: the same sums, equal up to float32 rounding.
    """
    n, c = x_nhwc.shape[0], x_nhwc.shape[3]
    o, _, kh, kw = weight.shape
    k = kh * kw * c
    w_mat = weight.transpose(0, 2, 3, 1).reshape(o, k)                   # (O, kh*kw*C), free for OHWI memory
    if kh == kw == 1:
        cols = x_nhwc[:, :ho * stride:stride, :wo * stride:stride, :]     # (N, Ho, Wo, C)
        return _matmul_wt(cols.reshape(n * ho * wo, c), w_mat).reshape(n, ho, wo, o)  # (N, Ho, Wo, O)
    win = sliding_window_view(x_nhwc, (kh, kw), axis=(1, 2))              # (N, H-kh+1, W-kw+1, C, kh, kw)
    win = win[:, ::stride, ::stride].transpose(0, 1, 2, 4, 5, 3)          # (N, Ho, Wo, kh, kw, C)
    rows = max(_IM2COL_BLOCK_BYTES // (wo * k * x_nhwc.itemsize), -(-_IM2COL_MIN_BLOCK_ROWS // wo))
    if rows >= ho:                                                        # small: all images at once
        cols = np.empty(win.shape, dtype=x_nhwc.dtype)
        np.copyto(cols, win)                                              # the one im2col copy
        return _matmul_wt(cols.reshape(n * ho * wo, k), w_mat).reshape(n, ho, wo, o)  # (N, Ho, Wo, O)
    y = np.empty((n, ho, wo, o), dtype=x_nhwc.dtype)                      # (N, Ho, Wo, O)
    cols = np.empty((rows, wo, kh, kw, c), dtype=x_nhwc.dtype)            # one block, reused
    for b in range(n):
        for i in range(0, ho, rows):
            r = min(rows, ho - i)
            np.copyto(cols[:r], win[b, i:i + r])                          # im2col of r output rows
            np.matmul(cols[:r].reshape(r * wo, k), w_mat.T, out=y[b, i:i + r].reshape(r * wo, o))
    return y


def _matmul_wt(cols, w_mat):
    """cols @ w_mat.T as a C-contiguous (M, O) array; the faster BLAS call for few rows."""
    if cols.shape[0] < _FEW_ROWS:
        return np.ascontiguousarray((w_mat @ cols.T).T)                   # (M, O)
    return cols @ w_mat.T                                                 # (M, O)


def _conv_depthwise(x_nhwc, weight, stride, ho, wo):
    """groups == C: y[n, i, j, c] = sum_{u, v} x[n, i*s + u, j*s + v, c] w[c, 0, u, v].

    One ``einsum`` over a ``sliding_window_view`` (no copy of the windows): measured 2-3x
    faster than a loop over the kh*kw taps with a multiply and an add each. With few
    channels (C < 64) einsum's inner loop is too short, and the tap loop, run over blocks of
    16 output rows that stay in cache, is 2.6x faster (EfficientNet-Lite0's first block).
    """
    kh, kw = weight.shape[2:]
    n, c = x_nhwc.shape[0], x_nhwc.shape[3]
    taps = np.ascontiguousarray(weight[:, 0].transpose(1, 2, 0))                  # (kh, kw, C)
    if c >= 64 or stride != 1:
        win = sliding_window_view(x_nhwc, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # (N, Ho', Wo', C, kh, kw)
        return np.einsum("nhwcuv,uvc->nhwc", win[:, :ho, :wo], taps)      # (N, Ho, Wo, C)
    row_taps = np.ascontiguousarray(np.broadcast_to(taps[:, :, None], (kh, kw, wo, c)))  # (kh, kw, Wo, C)
    y = np.empty((n, ho, wo, c), x_nhwc.dtype)                            # (N, Ho, Wo, C)
    tmp = np.empty((n, 16, wo, c), x_nhwc.dtype)
    for r0 in range(0, ho, 16):
        rows, t = y[:, r0:r0 + 16], tmp[:, :min(16, ho - r0)]
        for i in range(kh):
            for j in range(kw):
                patch = x_nhwc[:, r0 + i:r0 + i + rows.shape[1], j:j + wo]  # (N, rows, Wo, C)
                if i == j == 0:
                    np.multiply(patch, row_taps[0, 0], out=rows)
                else:
                    rows += np.multiply(patch, row_taps[i, j], out=t)
    return y


def batch_norm(x, gamma, beta, mean, var, eps):
    """Batch normalisation at inference: gamma * (x - mean) / sqrt(var + eps) + beta.

    x : (N, C, H, W); gamma, beta, mean, var : (C,). eps is a parameter because checkpoints
    differ (PyTorch 1e-5, EfficientNet 1e-3, Keras ResNet50 1.001e-5).
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

    conv(x, W, b) followed by BN equals conv(x, W * s, (b - mean) * s + beta), with
    s = gamma / sqrt(var + eps) per output channel. Computed in float64, returned in the
    dtype of ``weight``. weight : (O, C / groups, kh, kw); bias : (O,) or None.
    """
    scale, shift = _bn_scale_shift(gamma, beta, mean, var, eps)
    b = 0.0 if bias is None else np.asarray(bias, np.float64)
    folded_w = (weight.astype(np.float64) * scale[:, None, None, None]).astype(weight.dtype)
    folded_b = (b * scale + shift).astype(weight.dtype)
    return folded_w, folded_b


def relu(x, out=None):
    """max(x, 0), elementwise. ``out=x`` works in place (NumPy's ufunc convention)."""
    return np.maximum(x, 0, out=out)


def relu6(x, out=None):
    """min(max(x, 0), 6), elementwise (MobileNet / EfficientNet-Lite). ``out=x``: in place."""
    return np.clip(x, 0, 6, out=out)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over kernel_size x kernel_size windows; padded positions never win (-inf).

    x : (N, C, H, W) -> (N, C, Ho, Wo). stride defaults to kernel_size; padding as in conv2d.
    """
    _check_nchw(x)
    stride = kernel_size if stride is None else stride
    pads = _pads(padding, x.shape[2], x.shape[3], kernel_size, kernel_size, stride)
    x_nhwc, (ho, wo) = _windows(x.transpose(0, 2, 3, 1), kernel_size, kernel_size, stride, pads, -np.inf)
    y = None
    for i in range(kernel_size):
        for j in range(kernel_size):
            patch = x_nhwc[:, i:i + stride * ho:stride, j:j + stride * wo:stride, :]  # (N, Ho, Wo, C)
            y = patch.copy() if y is None else np.maximum(y, patch, out=y)
    return y.transpose(0, 3, 1, 2)                                        # (N, C, Ho, Wo)


def global_avg_pool(x):
    """Global average pooling, the paper's F_k = mean over (x, y) of f_k(x, y) (Sec. 2).

    x : (N, K, h, w) -> (N, K). (The paper writes a sum; the mean differs by 1 / (h w).)
    """
    _check_nchw(x)
    return x.mean(axis=(2, 3), dtype=x.dtype)


def global_max_pool(x):
    """Global max pooling, the paper's GMP baseline: max over (x, y) of f_k. (N, K, h, w) -> (N, K)."""
    _check_nchw(x)
    return x.max(axis=(2, 3))


def linear(x, weight, bias=None):
    """Fully connected layer, S = x W^T + b (Sec. 2: S_c = sum_k w_k^c F_k).

    x : (N, K); weight : (classes, K); bias : (classes,) or None -> (N, classes).
    """
    if x.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must have shape (N, {weight.shape[1]}) for a weight of shape "
                         f"{weight.shape}; got {x.shape}")
    y = x @ weight.T                                                      # (N, classes)
    if bias is not None:
        y += bias.astype(y.dtype, copy=False)
    return y


def softmax(logits, axis=-1):
    """P_c = exp(S_c) / sum_c' exp(S_c'), computed as exp(S - max S) so it cannot overflow."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
