"""Bilinear upsampling of class activation maps, written out (Sec. 2 of the paper).

The paper upsamples the class activation map to the size of the input image (Sec. 2) and
names no kernel; the usual choice, used here, is bilinear. What a kernel does not fix is the
*grid*: where output pixel o sits on the input axis. Two grids are in use, and the peers
disagree on which (the README's conventions table):

- half-pixel centres with edge clamping (the default, ``align_corners=False``): pixel i covers
  [i, i + 1) and its value sits at its centre i + 0.5 on both axes, so
  src = (o + 0.5) * n_in / n_out - 0.5, clamped to [0, n_in - 1]. This is the grid of PyTorch
  ``F.interpolate(mode="bilinear", align_corners=False)``, OpenCV ``cv2.resize``, Pillow and
  ``scipy.ndimage.zoom(order=1, grid_mode=True, mode="nearest")``: a map drawn over a photo
  lands where those libraries put it, with no half-pixel shift.
- corner-aligned (``align_corners=True``): the first and last pixel centres of both axes
  coincide, src = o * (n_in - 1) / (n_out - 1) (src = 0 when n_out == 1). This is scipy's
  default ``zoom`` grid (tf-keras-vis). Upsampling random 7 x 7 maps in [0, 1] to 224 x 224,
  the two grids are 0.24 to 0.59 apart at the worst pixel (median 0.39 over 1000 maps).

Along one axis, with i0 = floor(src), i1 = min(i0 + 1, n_in - 1) and w1 = src - i0, the
value is (1 - w1) m[i0] + w1 m[i1]. In 2-D, with (a, y0, y1) along the rows and (b, x0, x1)
along the columns::

    out[Y, X] = (1 - a)(1 - b) m[y0, x0] + (1 - a) b m[y0, x1] + a (1 - b) m[y1, x0] + a b m[y1, x1]

It is separable: out = A_h @ m @ A_w.T, with A the (n_out, n_in) interpolation matrix of each
axis (``interpolation_matrix``), two small matrix products. Downsampling is the same plain
bilinear *sampling*, without antialiasing: Pillow widens its filter when shrinking, so it
differs there. ``upsample_bilinear_loop`` is the loop twin, one output pixel at a time.
"""
import functools
import math

import numpy as np

from ._checks import check_array, check_int_range, check_size

__all__ = ["source_coordinates", "interpolation_matrix", "upsample_bilinear", "upsample_bilinear_loop"]


def source_coordinates(n_in, n_out, align_corners=False):
    """Where each of n_out output pixels samples an axis of n_in input pixels.

    Returns
    -------
    src : ndarray of shape (n_out,), float64, the source coordinate of each output index
    i0, i1 : ndarray of shape (n_out,), int64, the two neighbours, 0 <= i0 <= i1 <= n_in - 1
    w1 : ndarray of shape (n_out,), float64 in [0, 1], the weight of i1 (i0 gets 1 - w1)

    >>> source_coordinates(2, 4)[0].tolist(), source_coordinates(2, 3, align_corners=True)[0].tolist()
    ([0.0, 0.25, 0.75, 1.0], [0.0, 0.5, 1.0])
    """
    return _source_coordinates(check_int_range("n_in", n_in, 1), check_int_range("n_out", n_out, 1), align_corners)


def _source_coordinates(n_in, n_out, align_corners):
    o = np.arange(n_out, dtype=np.float64)                                # (n_out,)
    if align_corners:
        src = o * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)  # (n_out,)
    else:
        src = np.clip((o + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)     # (n_out,)
    i0 = np.floor(src).astype(np.int64)                                   # (n_out,)
    i1 = np.minimum(i0 + 1, n_in - 1)                                     # (n_out,)
    return src, i0, i1, src - i0


def interpolation_matrix(n_in, n_out, align_corners=False, dtype=np.float32):
    """The matrix of one axis' resampling: A @ v resamples a vector v of shape (n_in,).

    Returns
    -------
    A : ndarray of shape (n_out, n_in), ``dtype``. Row o holds 1 - w1 at i0 and w1 at i1 of
        ``source_coordinates`` (summed when i0 == i1), so each row sums to 1.
    """
    return _interpolation_matrix(check_int_range("n_in", n_in, 1), check_int_range("n_out", n_out, 1),
                                 align_corners, dtype)


def _interpolation_matrix(n_in, n_out, align_corners, dtype):
    _, i0, i1, w1 = _source_coordinates(n_in, n_out, align_corners)
    rows = np.arange(n_out)
    a = np.zeros((n_out, n_in))                                           # (n_out, n_in)
    a[rows, i0] = 1 - w1
    a[rows, i1] += w1
    return a.astype(dtype)


@functools.lru_cache(maxsize=64)
def _cached_matrix(n_in, n_out, align_corners, dtype):
    """interpolation_matrix, built once per (sizes, grid, dtype) and read-only: for 7 x 7 ->
    224 x 224, building the two costs ~50 us, the two products using them ~20 us."""
    a = _interpolation_matrix(n_in, n_out, align_corners, dtype)          # (n_out, n_in)
    a.flags.writeable = False
    return a


def _dtypes(maps):
    """The output dtype (float stays, int and bool give float32) and the working dtype."""
    out_dtype = maps.dtype if maps.dtype.kind == "f" else np.dtype(np.float32)
    return out_dtype, np.promote_types(out_dtype, np.float32)


def upsample_bilinear(maps, size, align_corners=False):
    """Resize the last two axes of ``maps`` to ``size`` by bilinear interpolation.

    Parameters
    ----------
    maps : array_like of shape (..., h, w), e.g. (N, h, w) class activation maps M_c or
        (N, K, h, w); float, int or bool
    size : (H, W), the output size, usually the input image's
    align_corners : bool
        False (default): half-pixel centres with edge clamping, as PyTorch, OpenCV and Pillow.
        True: the corner pixels' centres are aligned, as scipy's default ``zoom``.

    Returns
    -------
    out : ndarray of shape (..., H, W), a new array. float32 stays float32, float64 stays
        float64; int and bool give float32. Works both ways (H < h too) and for any ratio;
        shrinking is plain bilinear sampling, without antialiasing.

    Notes
    -----
    NaN and inf are not rejected, and they do not stay local: the matrix products multiply
    every input value, most by 0, and 0 * inf = nan, so one NaN or inf usually turns the whole
    map into NaN. Check ``np.isfinite(maps).all()`` first if that matters.
    """
    maps = check_array("maps", np.asarray(maps), "(..., h, w)", kinds="fiub", nonempty=True)
    return _upsample_bilinear(maps, check_size("size", size), bool(align_corners))


def _upsample_bilinear(maps, size, align_corners):
    """Unchecked: maps an ndarray (..., h, w), size (H, W) ints, align_corners a bool."""
    out_dtype, work = _dtypes(maps)
    a_h = _cached_matrix(maps.shape[-2], size[0], align_corners, work)   # (H, h)
    a_w = _cached_matrix(maps.shape[-1], size[1], align_corners, work)   # (W, w)
    rows = a_h @ maps.astype(work, copy=False)                            # (..., H, w)
    return (rows @ a_w.T).astype(out_dtype, copy=False)                   # (..., H, W)


def _source(o, n_in, n_out, align_corners):
    """The source coordinate of output index o, as a Python float (one pixel at a time)."""
    if align_corners:
        return 0.0 if n_out == 1 else o * (n_in - 1) / (n_out - 1)
    return min(max((o + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1.0)


def upsample_bilinear_loop(maps, size, align_corners=False):
    """Loop twin of ``upsample_bilinear``: each output pixel from its 4 neighbours, in float64.

    out[Y, X] = (1 - a)(1 - b) m[y0, x0] + (1 - a) b m[y0, x1] + a (1 - b) m[y1, x0] + a b m[y1, x1],
    with y0 = floor(sy), y1 = min(y0 + 1, h - 1), a = sy - y0 for the source row sy of Y, and
    the same for the columns. Returns the dtype ``upsample_bilinear`` does. Slow: it exists
    to be read and to check the vectorised version.
    """
    maps = check_array("maps", np.asarray(maps), "(..., h, w)", kinds="fiub", nonempty=True)
    (out_h, out_w), (out_dtype, _) = check_size("size", size), _dtypes(maps)
    h, w = maps.shape[-2:]
    out = np.zeros(maps.shape[:-2] + (out_h, out_w))                      # (..., H, W)
    for lead in np.ndindex(maps.shape[:-2]):
        m = maps[lead].astype(np.float64)                                 # (h, w)
        for y in range(out_h):
            sy = _source(y, h, out_h, align_corners)
            y0 = math.floor(sy)
            y1, a = min(y0 + 1, h - 1), sy - y0
            for x in range(out_w):
                sx = _source(x, w, out_w, align_corners)
                x0 = math.floor(sx)
                x1, b = min(x0 + 1, w - 1), sx - x0
                out[lead + (y, x)] = ((1 - a) * (1 - b) * m[y0, x0] + (1 - a) * b * m[y0, x1]
                                      + a * (1 - b) * m[y1, x0] + a * b * m[y1, x1])
    return out.astype(out_dtype)
