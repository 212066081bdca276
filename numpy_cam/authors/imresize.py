"""MATLAB's ``imresize`` with its default method (bicubic), written out: the authors' MATLAB demo
resizes each crop's 14 x 14 map to 224 x 224 with it (``demo.m`` line 48).

MATLAB's source (``toolbox/images/images/imresize.m``) ships with MATLAB and is not public;
its rule is known from line-by-line ports: github.com/fatheral/matlab_imresize ``imresize.py``
(a rewrite of imresize.m, checked there against MATLAB R2015b output, 0 uint8 steps of
difference) and ``contributions`` in github.com/vanlinhnguyen/PhDworks
``missingfuncs/isotropic/resize_nguyen.m``. Along one axis of n_in pixels resized to n_out,
with s = n_out / n_in and output pixel x = 1..n_out (MATLAB counts from 1):

1. the kernel is Keys' cubic with a = -0.5 (Keys 1981, as MATLAB's ``cubic``)::

       cubic(t) = 1.5|t|^3 - 2.5|t|^2 + 1            for |t| <= 1
                  -0.5|t|^3 + 2.5|t|^2 - 4|t| + 2    for 1 < |t| <= 2,  0 beyond

   4 pixels wide. Shrinking (s < 1) with antialiasing (the default) stretches it to
   h(t) = s cubic(s t), 4 / s pixels wide: a low-pass filter, unlike a plain bicubic sample;
2. output pixel x samples the input at u = x / s + (1 - 1 / s) / 2 (pixel centres aligned:
   the half-pixel grid, in 0-based terms (o + 0.5) / s - 0.5);
3. the taps are the ceil(width) + 2 input indices from floor(u - width / 2), each weighted by
   h(u - index), and the weights of each output pixel are divided by their sum;
4. an index outside 1..n_in is reflected, edge pixel included (half-sample symmetric:
   0 -> 1, -1 -> 2, n_in + 1 -> n_in), where Pillow and OpenCV clamp or drop the taps;
5. the two axes are resized one after the other, the axis with the smaller s first (rows on
   a tie). A float image stays float (no clipping: bicubic overshoots); a uint8 image is
   rounded (half away from zero) and clipped to 0..255 after EACH axis, as MATLAB's
   ``imresizemex`` returns the input's class.

Here each axis is an (n_out, n_in) matrix (``resize_matrix``, a reflected tap adds to its
pixel's entry), so a float map resizes as A_h @ m @ A_w.T. No MATLAB ran here: the tests pin
hand-computed cases (derived in ``tests/test_authors.py``) and, when the files are at hand,
compare with images MATLAB wrote (R2015b and R2017b, from two public repositories): the same
uint8 values everywhere but on exact ties (46 of 9.7 million pixels, where 255 v lies within
3e-14 of k + 0.5 and the summation order decides).
"""
import math

import numpy as np

from .._checks import check_array, check_int_range, check_size

__all__ = ["cubic", "resize_matrix", "imresize"]

KERNEL_WIDTH = 4                  # cubic's support, in input pixels, before antialiasing


def cubic(t):
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``): (...) -> (...) float64."""
    a = np.abs(np.asarray(t, dtype=np.float64))                        # (...)
    near = (1.5 * a - 2.5) * a * a + 1                                 # |t| <= 1
    far = ((-0.5 * a + 2.5) * a - 4) * a + 2                           # 1 < |t| <= 2
    return np.where(a <= 1, near, np.where(a <= 2, far, 0.0))


def resize_matrix(n_in, n_out, antialias=True):
    """The matrix of one axis' MATLAB bicubic resize: A @ v resizes a vector v of shape (n_in,).

    Parameters
    ----------
    n_in, n_out : int >= 1, the axis' length before and after
    antialias : bool, widen the kernel when shrinking (MATLAB's default, 'Antialiasing' true)

    Returns
    -------
    A : ndarray of shape (n_out, n_in), float64; each row sums to 1 (to rounding)
    """
    n_in, n_out = check_int_range("n_in", n_in, 1), check_int_range("n_out", n_out, 1)
    return _resize_matrix(n_in, n_out, bool(antialias))


def _resize_matrix(n_in, n_out, antialias):
    scale = n_out / n_in
    stretch = scale if scale < 1 and antialias else 1.0                # h(t) = s cubic(s t)
    width = KERNEL_WIDTH / stretch
    x = np.arange(1, n_out + 1, dtype=np.float64)                      # (n_out,) MATLAB's 1-based x
    u = x / scale + 0.5 * (1 - 1 / scale)                              # (n_out,) where x samples
    left = np.floor(u - width / 2)                                     # (n_out,)
    taps = left[:, None] + np.arange(math.ceil(width) + 2)             # (n_out, P) 1-based indices
    weights = stretch * cubic(stretch * (u[:, None] - taps))           # (n_out, P)
    weights /= weights.sum(axis=1, keepdims=True)
    period = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])  # (2 n_in,) the reflection
    index = period[np.mod(taps.astype(np.int64) - 1, 2 * n_in)]        # (n_out, P) 0-based, in range
    matrix = np.zeros((n_out, n_in))                                   # (n_out, n_in)
    np.add.at(matrix, (np.broadcast_to(np.arange(n_out)[:, None], index.shape), index), weights)
    return matrix


def imresize(image, size, antialias=True):
    """``imresize(image, size)`` as MATLAB computes it (bicubic), over the last two axes.

    Parameters
    ----------
    image : ndarray of shape (..., h, w), float or uint8
        e.g. (N, h, w) maps. MATLAB resizes the first two axes of an (h, w, c) array; here
        an RGB image goes in as (3, h, w) (``np.moveaxis(rgb, -1, 0)``).
    size : (H, W), the output size (MATLAB's [numrows numcols])
    antialias : bool, MATLAB's 'Antialiasing' (default true; it acts only when shrinking)

    Returns
    -------
    out : ndarray of shape (..., H, W). float64 for float64 input, float32 for float32 (computed
        in float64); uint8 for uint8, rounded and clipped after each axis as MATLAB does.
    """
    image = check_array("image", image, "(..., h, w)", kinds="f", dtypes=(np.uint8,), nonempty=True,
                        finite=True)
    size = check_size("size", size)
    h, w = image.shape[-2:]
    a_h = _resize_matrix(h, size[0], bool(antialias))                  # (H, h)
    a_w = _resize_matrix(w, size[1], bool(antialias))                  # (W, w)
    if image.dtype != np.uint8:
        out = a_h @ image.astype(np.float64) @ a_w.T                   # (..., H, W)
        return out.astype(np.promote_types(image.dtype, np.float32), copy=False)
    if size[1] / w < size[0] / h:                                      # MATLAB: smaller scale first
        return _to_uint8(a_h @ _to_uint8(image.astype(np.float64) @ a_w.T))
    return _to_uint8(_to_uint8(a_h @ image.astype(np.float64)) @ a_w.T)


def _to_uint8(values):
    """MATLAB's cast of a double to uint8: rounded half away from zero, clipped to 0..255."""
    return np.floor(np.clip(values, 0, 255) + 0.5).astype(np.uint8)
