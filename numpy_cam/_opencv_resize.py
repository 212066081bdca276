"""OpenCV's bilinear resize of a uint8 map, to the bit: ``cv2.resize``'s fixed-point arithmetic in NumPy.

The authors' demo (preset "cam-pytorch-demo") resizes a uint8 map twice with ``cv2.resize``
and its default ``INTER_LINEAR``. On uint8 OpenCV does not interpolate in float and round: it
uses 11-bit integer weights and integer shifts, and so lands one level above or below the
rounded float value at some pixels (-1 to +1 per resize on random maps; up to 2 after the
demo's two). This module does the same integer steps, so the preset gives cv2's levels exactly.

Source read: opencv/opencv (commit 00756a4), ``modules/imgproc/src/resize.cpp``: ``cv::hal::resize`` (the
weights, the edge rules and the dispatch), ``HResizeLinear`` (rows), the uint8 specialisation
of ``VResizeLinear`` and its SIMD twin ``VResizeLinearVec_32s8u`` (columns), and
``INTER_RESIZE_COEF_BITS = 11``. Checked against opencv-python-headless 5.0.0.93 (cv2 5.0.0):
0 levels of difference on 3000 random size pairs (inputs 1 to 79 pixels a side, outputs 1 to
299, up and down) and on the demo's sizes (``tests/test_presets_opencv.py``).

The rule, along each axis of n_in pixels resized to n_out (``_weights``):

- scale = 1 / (n_out / n_in) in double; f = float32((o + 0.5) * scale - 0.5) (the half-pixel
  grid of ``upsample``), i = floor(f), t = f - i in float32;
- 11-bit weights: a0 = round(2048 (1 - t)), a1 = round(2048 t), rounding half to even
  (``saturate_cast<short>``); a0 + a1 = 2048, or 2047 or 2049 where 1 - t rounds in float32;
- the edges, which the two axes treat differently: along the columns (x), a source index
  left of 0 or at or beyond n_in - 1 is clamped and t set to 0, so such pixels get
  (2048, 0); along the rows (y), i and t are kept and only the two rows read, i and i + 1,
  are clamped to [0, n_in - 1]: an edge row then gets its weights (a0, a1) on the same row.

Then, on integers (``resize_linear_uint8``):

1. rows (``HResizeLinear``):  r = a0 m[:, x0] + a1 m[:, x1], so r = 2048 x the value;
2. columns (``VResizeLinear<uchar, ...>``, scalar and SSE2 alike):
   out = ((b0 (r[y0] >> 4)) >> 16) + ((b1 (r[y1] >> 4)) >> 16) + 2) >> 2, i.e. r loses its 4
   low bits to fit 16, each product keeps only its high 16 bits (``_mm_mulhi_epi16``), and the
   sum is divided by 4, rounding half up: 2048 * 2048 / 16 / 65536 / 4 = 1. The weights' rounding
   to 11 bits and the two truncations before the one rounding are why cv2 and the rounded
   float value part. At the top and bottom rows (both reads on one row) the two cuts apply to
   b0 and b1 separately, so the edge rule above matters to the bit.

What OpenCV does besides, and why it changes nothing here: an output of the input's size is
a copy (the rule gives the identity: t = 0, (4 m + 2) >> 2 = m); an exact halving of both
axes goes to ``INTER_AREA``'s fast path, (a + b + c + d + 2) >> 2 of each 2 x 2 block, which
the rule also gives (t = 0.5: weights 1024, no bits lost); the IPP path is not taken for
uint8 bilinear (``ipp_resize`` declines it as not OpenCV-exact); the OpenCL path needs a
``UMat``. ``INTER_LINEAR_EXACT`` (8 fractional bits, ``resize_bitExact``) is another path,
not the default, and is not reproduced.
"""
import numpy as np

COEF_BITS = 11                 # INTER_RESIZE_COEF_BITS
COEF_ONE = 1 << COEF_BITS      # INTER_RESIZE_COEF_SCALE, 2048


def _weights(n_in, n_out, clamp_weights):
    """One axis: the two source indices of each output index and their 11-bit weights.

    clamp_weights: True for the columns (x: an index outside [0, n_in - 1) is clamped and gets
    the weights (2048, 0)), False for the rows (y: the weights stay, only the reads are clamped).

    Returns i0, i1 : ndarray of shape (n_out,), int64 in [0, n_in - 1], and a0, a1 : ndarray of
    shape (n_out,), int64, a0 + a1 in 2047..2049 (2048 but where 1 - t rounds in float32).
    """
    scale = 1.0 / (n_out / n_in)                                          # as cv: 1 / inv_scale, double
    f = ((np.arange(n_out) + 0.5) * scale - 0.5).astype(np.float32)      # (n_out,), the half-pixel grid
    i0 = np.floor(f)                                                      # (n_out,), float32
    t = (f - i0).astype(np.float32)                                       # (n_out,), in [0, 1)
    i0 = i0.astype(np.int64)
    if clamp_weights:
        outside = (i0 < 0) | (i0 >= n_in - 1)
        t[outside] = 0
        i0 = np.clip(i0, 0, n_in - 1)                                     # cv's sx; i1 = sx + 1 (weight 0 here)
    a0 = np.rint((np.float32(1) - t) * np.float32(COEF_ONE)).astype(np.int64)   # half to even, as cvRound
    a1 = np.rint(t * np.float32(COEF_ONE)).astype(np.int64)
    return np.clip(i0, 0, n_in - 1), np.clip(i0 + 1, 0, n_in - 1), a0, a1   # the rows' reads clamped


def resize_linear_uint8(maps, size):
    """``cv2.resize(map, (W, H))`` of each uint8 map (INTER_LINEAR), level for level.

    Parameters
    ----------
    maps : ndarray of shape (N, h, w), uint8 (unchecked: a private helper of ``presets``)
    size : (H, W), ints

    Returns
    -------
    out : ndarray of shape (N, H, W), uint8
    """
    x0, x1, a0, a1 = _weights(maps.shape[-1], size[1], clamp_weights=True)    # (W,) each
    y0, y1, b0, b1 = _weights(maps.shape[-2], size[0], clamp_weights=False)   # (H,) each
    m = maps.astype(np.int64)                                                  # (N, h, w)
    rows = m[:, :, x0] * a0 + m[:, :, x1] * a1                                 # (N, h, W), 2048 x value
    top = (b0[:, None] * (rows[:, y0] >> 4)) >> 16                             # (N, H, W)
    bottom = (b1[:, None] * (rows[:, y1] >> 4)) >> 16                          # (N, H, W)
    # No clip needed: every term is >= 0, and with a0 + a1 <= 2049 (b0 + b1 too), rows >> 4 <=
    # (255 * 2049) >> 4 = 32655, so top + bottom <= 2049 * 32655 / 65536 < 1021 and (1020 + 2) >> 2 = 255.
    return ((top + bottom + 2) >> 2).astype(np.uint8)                          # (N, H, W)
