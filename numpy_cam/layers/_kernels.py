"""The speed kernels behind ``numpy_cam.layers`` (private: read ``layers`` for the math).

Each kernel computes exactly what its public layer's docstring says, on channels-last memory
(``x_nhwc`` of shape (N, H', W', C), already padded, see the "Memory layout" section of
``numpy_cam.layers``), and returns channels-last; the public layer adds the bias and returns
the NCHW view. What is here is only about speed: copies avoided, cache-sized blocks, the
faster BLAS call. Every threshold is a named constant below, with what was measured.
Their loop twins are in ``layers/loop.py``; ``tests/test_layers.py`` forces every path here
(by patching the constants) and checks it against them.
"""
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# im2col in blocks (measured on ResNet-50, 2 cores with 2 MB of L2 each): when one image's
# im2col matrix is large (the 7x7 stem and the 3x3 convs of layer1 at 224 x 224: 7 MB), filling
# and multiplying it about 2 MB at a time, so the block is still in cache when the matrix
# product reads it, was 11-35% faster than one copy of the whole matrix; smaller blocks than
# ~1024 rows make the product re-read the weights too often and are slower.
IM2COL_BLOCK_BYTES = 2 << 20          # bytes of im2col matrix per block (about the L2 cache)
IM2COL_MIN_BLOCK_ROWS = 1024          # at least this many im2col rows (output pixels) per block
# With few rows (layer4 at batch 1: 7 x 7 = 49) OpenBLAS is 10-25% faster on the transposed
# product W @ cols^T (O x M, the long side first) than on cols @ W^T; from ~200 rows on slower.
FEW_ROWS = 128                        # im2col rows below which the transposed product is used
# Depthwise: one einsum over a sliding_window_view (no copy of the windows) was measured 2-3x
# faster than a loop over the kh*kw taps with a multiply and an add each. With few channels
# einsum's inner loop is too short, and the tap loop, run over blocks of 16 output rows that
# stay in cache, is 2.6x faster (EfficientNet-Lite0's first block, 32 channels at 112 x 112).
DEPTHWISE_EINSUM_MIN_CHANNELS = 64    # einsum from this many channels on (and at any stride != 1)
DEPTHWISE_ROW_BLOCK = 16              # output rows per block of the tap loop


def pad(x_nhwc, pads, fill):
    """x_nhwc padded by ((top, bottom), (left, right)) with the value ``fill`` (no copy if no padding).

    Only the border is filled, then the interior copied in: one pass fewer than np.pad or
    np.full. x_nhwc : (N, H, W, C) -> (N, H + top + bottom, W + left + right, C).
    """
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x_nhwc
    n, height, width, c = x_nhwc.shape
    padded = np.empty((n, height + top + bottom, width + left + right, c), x_nhwc.dtype)
    padded[:, :top] = fill                                               # top rows
    padded[:, top + height:] = fill                                      # bottom rows
    padded[:, top:top + height, :left] = fill                            # left columns
    padded[:, top:top + height, left + width:] = fill                    # right columns
    padded[:, top:top + height, left:left + width] = x_nhwc              # the interior
    return padded


def conv_dense(x_nhwc, weight, stride, ho, wo):
    """groups=1: one matrix product y = cols @ W^T, after an im2col copy when the kernel is not 1x1.

    W is the weight as an (O, kh*kw*C) matrix, cols the (N*Ho*Wo, kh*kw*C) matrix of windows.
    A large im2col matrix is filled and multiplied a block of output rows of one image at a
    time (``conv_dense_blocked``): the same sums, equal up to float32 rounding.
    """
    n, c = x_nhwc.shape[0], x_nhwc.shape[3]
    o, _, kh, kw = weight.shape
    k = kh * kw * c
    w_mat = weight.transpose(0, 2, 3, 1).reshape(o, k)                   # (O, kh*kw*C), free for OHWI memory
    if kh == kw == 1:
        cols = x_nhwc[:, :ho * stride:stride, :wo * stride:stride, :]     # (N, Ho, Wo, C)
        return matmul_wt(cols.reshape(n * ho * wo, c), w_mat).reshape(n, ho, wo, o)  # (N, Ho, Wo, O)
    win = sliding_window_view(x_nhwc, (kh, kw), axis=(1, 2))              # (N, H-kh+1, W-kw+1, C, kh, kw)
    win = win[:, ::stride, ::stride].transpose(0, 1, 2, 4, 5, 3)          # (N, Ho, Wo, kh, kw, C)
    row_bytes = wo * k * x_nhwc.itemsize                                  # im2col bytes of one output row
    rows = max(IM2COL_BLOCK_BYTES // row_bytes, math.ceil(IM2COL_MIN_BLOCK_ROWS / wo))  # output rows per block
    if rows >= ho:                                                        # small: all images at once
        cols = np.empty(win.shape, dtype=x_nhwc.dtype)                    # (N, Ho, Wo, kh, kw, C)
        np.copyto(cols, win)                                              # the one im2col copy
        return matmul_wt(cols.reshape(n * ho * wo, k), w_mat).reshape(n, ho, wo, o)  # (N, Ho, Wo, O)
    return conv_dense_blocked(win, w_mat, rows)


def conv_dense_blocked(win, w_mat, rows):
    """im2col and product ``rows`` output rows of one image at a time, into the rows of y they give.

    win : (N, Ho, Wo, kh, kw, C) windows (a view); w_mat : (O, kh*kw*C) -> y : (N, Ho, Wo, O).
    """
    n, ho, wo, kh, kw, c = win.shape
    o, k = w_mat.shape
    y = np.empty((n, ho, wo, o), dtype=win.dtype)                         # (N, Ho, Wo, O)
    cols = np.empty((rows, wo, kh, kw, c), dtype=win.dtype)               # one block, reused
    for b in range(n):
        for i in range(0, ho, rows):
            r = min(rows, ho - i)
            np.copyto(cols[:r], win[b, i:i + r])                          # im2col of r output rows
            np.matmul(cols[:r].reshape(r * wo, k), w_mat.T, out=y[b, i:i + r].reshape(r * wo, o))
    return y


def matmul_wt(cols, w_mat):
    """cols @ w_mat.T as a C-contiguous (M, O) array; for few rows M, as (w_mat @ cols.T).T (faster)."""
    if cols.shape[0] < FEW_ROWS:
        return np.ascontiguousarray((w_mat @ cols.T).T)                   # (M, O)
    return cols @ w_mat.T                                                 # (M, O)


def conv_grouped(x_nhwc, weight, stride, ho, wo, groups):
    """1 < groups < C: ``conv_dense`` on each group's channels, the outputs side by side."""
    o, c_per_group = weight.shape[:2]
    o_per_group = o // groups
    return np.concatenate([
        conv_dense(x_nhwc[..., g * c_per_group:(g + 1) * c_per_group],
                   weight[g * o_per_group:(g + 1) * o_per_group], stride, ho, wo)
        for g in range(groups)], axis=-1)                                 # (N, Ho, Wo, O)


def conv_depthwise(x_nhwc, weight, stride, ho, wo):
    """groups == C == O: y[n, i, j, c] = sum_{u, v} x[n, i*s + u, j*s + v, c] w[c, 0, u, v].

    ``depthwise_einsum`` from DEPTHWISE_EINSUM_MIN_CHANNELS channels on or at stride != 1,
    ``depthwise_tap_loop`` below that (see the constants for the measurements).
    """
    taps = np.ascontiguousarray(weight[:, 0].transpose(1, 2, 0))                  # (kh, kw, C)
    if x_nhwc.shape[3] >= DEPTHWISE_EINSUM_MIN_CHANNELS or stride != 1:
        return depthwise_einsum(x_nhwc, taps, stride, ho, wo)
    return depthwise_tap_loop(x_nhwc, taps, ho, wo)


def depthwise_einsum(x_nhwc, taps, stride, ho, wo):
    """One einsum over the windows (a view, no copy). taps : (kh, kw, C) -> y : (N, Ho, Wo, C)."""
    kh, kw = taps.shape[:2]
    win = sliding_window_view(x_nhwc, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # (N, Ho', Wo', C, kh, kw)
    return np.einsum("nhwcuv,uvc->nhwc", win[:, :ho, :wo], taps)      # (N, Ho, Wo, C)


def depthwise_tap_loop(x_nhwc, taps, ho, wo):
    """Stride 1: y = sum over the kh*kw taps (u, v) of x shifted by (u, v) times w[:, 0, u, v].

    Run over blocks of DEPTHWISE_ROW_BLOCK output rows, so each block stays in cache through
    all the taps. taps : (kh, kw, C) -> y : (N, Ho, Wo, C).
    """
    kh, kw = taps.shape[:2]
    n, c = x_nhwc.shape[0], x_nhwc.shape[3]
    block = DEPTHWISE_ROW_BLOCK
    row_taps = np.ascontiguousarray(np.broadcast_to(taps[:, :, None], (kh, kw, wo, c)))  # (kh, kw, Wo, C)
    y = np.empty((n, ho, wo, c), x_nhwc.dtype)                            # (N, Ho, Wo, C)
    tmp = np.empty((n, block, wo, c), x_nhwc.dtype)                       # (N, block, Wo, C)
    for r0 in range(0, ho, block):
        rows, t = y[:, r0:r0 + block], tmp[:, :min(block, ho - r0)]       # (N, rows, Wo, C) each
        for i in range(kh):
            for j in range(kw):
                patch = x_nhwc[:, r0 + i:r0 + i + rows.shape[1], j:j + wo]  # (N, rows, Wo, C)
                if i == j == 0:
                    np.multiply(patch, row_taps[0, 0], out=rows)
                else:
                    rows += np.multiply(patch, row_taps[i, j], out=t)
    return y
