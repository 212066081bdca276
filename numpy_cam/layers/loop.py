"""Loop twins of ``numpy_cam.layers``: the same functions written as the textbook loops.

Slow and obviously correct: one output value at a time, straight from the definition, with
explicit zero padding, in float64 and returned in the input's dtype. They exist to be read
and to check the vectorised versions (``tests/test_layers.py``); never use them for real
inputs. Same names, same signatures, same shapes (NCHW, OIHW) as ``numpy_cam.layers``; only
the normalisation of the ``padding`` argument is shared with it.
"""
import math

import numpy as np

from . import _pads


def same_padding(size, kernel, stride):
    """TF "SAME": out = ceil(size / stride) outputs; the padding is what the last window overhangs.

    Outputs start at 0, stride, 2 * stride, ... while inside the input; the last window ends
    at (out - 1) * stride + kernel; the smaller half of the overhang goes before.
    """
    out = 0
    while out * stride < size:
        out += 1
    total = max((out - 1) * stride + kernel - size, 0)
    before = total // 2
    return before, total - before


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """y[n, o, i, j] = b[o] + sum_{c in group(o), u, v} w[o, c, u, v] x_pad[n, c, i*s + u, j*s + v].

    s = stride, x_pad is x with zeros around it; Ho = (H_pad - kh) // s + 1, Wo = (W_pad - kw) // s + 1.
    """
    n, c, height, width = x.shape
    o, c_per_group, kh, kw = weight.shape
    (top, bottom), (left, right) = _pads(padding, height, width, kh, kw, stride)
    x_pad = np.zeros((n, c, height + top + bottom, width + left + right))
    x_pad[:, :, top:top + height, left:left + width] = x
    ho = (x_pad.shape[2] - kh) // stride + 1
    wo = (x_pad.shape[3] - kw) // stride + 1
    o_per_group = o // groups
    y = np.zeros((n, o, ho, wo))
    for b in range(n):
        for oc in range(o):
            g = oc // o_per_group
            channels = slice(g * c_per_group, (g + 1) * c_per_group)
            for i in range(ho):
                for j in range(wo):
                    window = x_pad[b, channels, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    y[b, oc, i, j] = np.sum(window * weight[oc]) + (0.0 if bias is None else bias[oc])
    return y.astype(x.dtype)


def batch_norm(x, gamma, beta, mean, var, eps):
    """y[n, c, i, j] = gamma[c] * (x[n, c, i, j] - mean[c]) / sqrt(var[c] + eps) + beta[c]."""
    y = np.zeros(x.shape)
    for c in range(x.shape[1]):
        y[:, c] = gamma[c] * (x[:, c].astype(np.float64) - mean[c]) / math.sqrt(var[c] + eps) + beta[c]
    return y.astype(x.dtype)


def fold_batch_norm(weight, bias, gamma, beta, mean, var, eps):
    """Per output channel o: w'[o] = w[o] * s[o], b'[o] = (b[o] - mean[o]) * s[o] + beta[o]."""
    folded_w = np.zeros(weight.shape)
    folded_b = np.zeros(weight.shape[0])
    for o in range(weight.shape[0]):
        s = gamma[o] / math.sqrt(var[o] + eps)
        folded_w[o] = weight[o] * s
        folded_b[o] = ((0.0 if bias is None else bias[o]) - mean[o]) * s + beta[o]
    return folded_w.astype(weight.dtype), folded_b.astype(weight.dtype)


def relu(x, out=None):
    """Each value v becomes v if v > 0 else 0."""
    flat = [v if v > 0 else 0.0 for v in x.ravel().tolist()]
    return _result(np.array(flat, dtype=x.dtype).reshape(x.shape), out)


def relu6(x, out=None):
    """Each value v becomes min(max(v, 0), 6)."""
    flat = [min(max(v, 0.0), 6.0) for v in x.ravel().tolist()]
    return _result(np.array(flat, dtype=x.dtype).reshape(x.shape), out)


def _result(y, out):
    if out is None:
        return y
    out[...] = y
    return out


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """y[n, c, i, j] = max_{u, v < k} x_pad[n, c, i*s + u, j*s + v]: k = kernel_size, x_pad padded with -inf."""
    stride = kernel_size if stride is None else stride
    n, c, height, width = x.shape
    (top, bottom), (left, right) = _pads(padding, height, width, kernel_size, kernel_size, stride)
    x_pad = np.full((n, c, height + top + bottom, width + left + right), -np.inf)
    x_pad[:, :, top:top + height, left:left + width] = x
    ho = (x_pad.shape[2] - kernel_size) // stride + 1
    wo = (x_pad.shape[3] - kernel_size) // stride + 1
    y = np.zeros((n, c, ho, wo))
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    y[b, ch, i, j] = x_pad[b, ch, i * stride:i * stride + kernel_size,
                                           j * stride:j * stride + kernel_size].max()
    return y.astype(x.dtype)


def global_avg_pool(x):
    """F[n, k] = (1 / (h w)) sum_{i, j} f[n, k, i, j]."""
    n, k, h, w = x.shape
    y = np.zeros((n, k))
    for b in range(n):
        for ch in range(k):
            total = 0.0
            for i in range(h):
                for j in range(w):
                    total += float(x[b, ch, i, j])
            y[b, ch] = total / (h * w)
    return y.astype(x.dtype)


def global_max_pool(x):
    """F[n, k] = max_{i, j} f[n, k, i, j]."""
    n, k = x.shape[:2]
    y = np.zeros((n, k))
    for b in range(n):
        for ch in range(k):
            y[b, ch] = max(x[b, ch].ravel().tolist())
    return y.astype(x.dtype)


def linear(x, weight, bias=None):
    """S[n, c] = b[c] + sum_k w[c, k] x[n, k]."""
    n, classes = x.shape[0], weight.shape[0]
    y = np.zeros((n, classes))
    for b in range(n):
        for c in range(classes):
            y[b, c] = sum(float(weight[c, k]) * float(x[b, k]) for k in range(x.shape[1]))
            y[b, c] += 0.0 if bias is None else float(bias[c])
    return y.astype(x.dtype)


def softmax(logits, axis=-1):
    """P_c = exp(S_c - m) / sum_c' exp(S_c' - m), m = max_c S_c, one row of classes at a time."""
    moved = np.moveaxis(np.asarray(logits, np.float64), axis, -1)
    out = np.zeros(moved.shape)
    for idx in np.ndindex(moved.shape[:-1]):
        row = moved[idx].tolist()
        m = max(row)
        e = [math.exp(v - m) for v in row]
        total = sum(e)
        out[idx] = [v / total for v in e]
    return np.moveaxis(out, -1, axis).astype(logits.dtype)
