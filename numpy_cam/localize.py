"""From a class activation map to a bounding box: weakly supervised localisation (Sec. 3).

The paper's procedure, three steps, each a function here:

1. ``threshold_mask``: "segment the regions of which the value is above 20% of the max
   value of the CAM", mask = heatmap > 0.2 * max(heatmap);
2. ``largest_component``: keep the largest connected component of that mask;
3. ``bbox_of_mask``: "take the bounding box that covers" it.

``localize`` chains them. ``iou`` is the overlap measure of the ILSVRC localisation metric
(a guess is right when its class is right and its IoU with a ground-truth box is >= 0.5).

Conventions
-----------
- A map is an (H, W) array of real numbers (float in practice), indexed ``heatmap[y, x]``:
  row = y, column = x, origin at the top-left pixel.
- A box is ``(x0, y0, x1, y1)``, four Python ints, *inclusive* pixel coordinates (the ILSVRC
  convention the paper's evaluation uses): the box covers columns x0..x1 and rows y0..y1,
  its width is x1 - x0 + 1 and its height y1 - y0 + 1. A one-pixel box is (x, y, x, y).
  "No box" (nothing above the threshold) is ``None``.
- Connectivity: 8 by default (the 3 x 3 structure: diagonal neighbours touch), because the
  contour tracing of the authors' released code (OpenCV) follows 8-connected objects.
  ``scipy.ndimage.label`` defaults to 4 (the cross); the choice changes which component is
  the largest (PAPER.md, "Conventions that peers disagree on"), so it is a parameter.

Loop twins, in pure Python: ``largest_component_loop`` (breadth-first flood fill),
``bbox_of_mask_loop`` (a scan of every pixel) and ``iou_loop`` (a count of pixels).

The authors' released code draws its box another way, with three thresholds, an erosion and
a merge (``released_code_rects``, ``localize_released_code``, at the end of this file): read
their docstrings before comparing numbers with the paper's tables.

References: Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR
2016, Sec. 3; released code: github.com/zhoubolei/CAM, ``bboxgenerator/dt_box.cpp``.
"""
import collections
import operator

import numpy as np
from scipy import ndimage

__all__ = [
    "threshold_mask", "largest_component", "bbox_of_mask", "localize", "iou",
    "largest_component_loop", "bbox_of_mask_loop", "iou_loop",
    "RELEASED_THRESHOLDS", "released_code_rects", "localize_released_code",
]

_STRUCTURE = {4: ndimage.generate_binary_structure(2, 1),      # the cross
              8: ndimage.generate_binary_structure(2, 2)}      # the full 3 x 3 square


def _check_map(heatmap, name="heatmap"):
    if not isinstance(heatmap, np.ndarray) or heatmap.ndim != 2 or heatmap.size == 0:
        shape = getattr(heatmap, "shape", type(heatmap).__name__)
        raise ValueError(f"{name} must be a non-empty array of shape (H, W); got {shape}")
    if not (np.issubdtype(heatmap.dtype, np.integer) or np.issubdtype(heatmap.dtype, np.floating)):
        raise ValueError(f"{name} must hold real numbers; got dtype {heatmap.dtype}")
    if np.issubdtype(heatmap.dtype, np.floating) and not np.isfinite(heatmap).all():
        raise ValueError(f"{name} must be finite; got NaN or infinity")


def _check_mask(mask):
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        shape = getattr(mask, "shape", type(mask).__name__)
        raise ValueError(f"mask must be an array of shape (H, W); got {shape}")
    return mask.astype(bool, copy=False)


def _check_connectivity(connectivity):
    if isinstance(connectivity, bool) or connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8; got {connectivity!r}")
    return int(connectivity)


def _first_pixels(labels, n):
    """(n + 1,) int64: the row-major index of the first pixel of each label 1..n ([0]: unused)."""
    ids, index = np.unique(labels.ravel(), return_index=True)            # first occurrences
    first = np.zeros(n + 1, np.int64)
    first[ids] = index
    return first


def _check_box(box, name="box"):
    try:
        x0, y0, x1, y1 = (operator.index(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be 4 integers (x0, y0, x1, y1); got {box!r}") from None
    if x1 < x0 or y1 < y0:
        raise ValueError(f"{name} (x0, y0, x1, y1) must have x0 <= x1 and y0 <= y1; got {box!r}")
    return x0, y0, x1, y1


def threshold_mask(heatmap, threshold=0.2):
    """The pixels whose value is above ``threshold`` times the map's max (Sec. 3: 20%).

    Parameters
    ----------
    heatmap : ndarray of shape (H, W), real, finite
    threshold : float in [0, 1]
        A fraction of the max. The comparison is strict and computed in float64:
        mask = heatmap > threshold * max(heatmap).

    Returns
    -------
    mask : ndarray of shape (H, W), bool

    Notes
    -----
    What the formula gives at the edges, with no special case and never a NaN:

    - max <= 0 (an all-negative or all-zero map): an empty mask. Every value is <= max <=
      threshold * max, so nothing is strictly above it.
    - a constant map c > 0: every pixel when threshold < 1, none when threshold == 1.
    - threshold == 0: the positive pixels; threshold == 1: always empty (nothing exceeds the max).
    """
    _check_map(heatmap)
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        t = float("nan")                        # refused just below, with the same message
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"threshold must be in [0, 1] (a fraction of the map's max); got {threshold!r}")
    values = heatmap.astype(np.float64, copy=False)                      # (H, W)
    return values > t * values.max()                                     # (H, W) bool


def largest_component(mask, connectivity=8):
    """The largest connected component of ``mask`` (``scipy.ndimage.label``).

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool (nonzero counts as True)
    connectivity : 4 or 8
        8 (default): pixels touching by a side or a corner are connected (3 x 3 structure),
        as in OpenCV's contour tracing used by the authors' code; 4: by a side only (cross),
        scipy's own default.

    Returns
    -------
    component : ndarray of shape (H, W), bool, a new array; all False for an empty mask.
        Ties (several components of the largest size): the one whose first pixel comes
        first in row-major order (smallest y, then smallest x).
    """
    mask = _check_mask(mask)
    labels, n = ndimage.label(mask, structure=_STRUCTURE[_check_connectivity(connectivity)])  # (H, W)
    if n == 0:
        return np.zeros(mask.shape, bool)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)                 # (n + 1,), [0] = background
    tied = np.flatnonzero(sizes[1:] == sizes[1:].max()) + 1              # labels of the largest size
    return labels == tied[np.argmin(_first_pixels(labels, n)[tied])]     # (H, W) bool


def bbox_of_mask(mask):
    """The tightest box around the True pixels: (x0, y0, x1, y1) inclusive ints, or None if empty."""
    mask = _check_mask(mask)
    ys = np.flatnonzero(mask.any(axis=1))                                # rows holding a pixel
    xs = np.flatnonzero(mask.any(axis=0))                                # columns holding a pixel
    if ys.size == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1])


def localize(heatmap, threshold=0.2, connectivity=8):
    """The paper's box (Sec. 3): threshold at 20% of the max, largest component, its box.

    Parameters
    ----------
    heatmap : ndarray of shape (H, W) -- the CAM upsampled to the image (any scale)
    threshold : float in [0, 1] -- see ``threshold_mask``
    connectivity : 4 or 8 -- see ``largest_component``

    Returns
    -------
    bbox : (x0, y0, x1, y1) inclusive ints, or None when no pixel passes the threshold
        (for instance a map whose max is <= 0).
    """
    return bbox_of_mask(largest_component(threshold_mask(heatmap, threshold), connectivity))


def iou(box_a, box_b):
    """Intersection over union of two inclusive boxes, counted in pixels.

    area = (x1 - x0 + 1) * (y1 - y0 + 1), as the released ``evaluation/compute_overlap.m``
    counts it; the intersection of (0, 0, 9, 9) and (10, 0, 19, 9) is empty, that of
    (0, 0, 9, 9) and (9, 0, 18, 9) one column of 10 pixels. Disjoint boxes give 0.0.
    ValueError for anything but 4 ints with x0 <= x1 and y0 <= y1.

    >>> iou((0, 0, 9, 9), (5, 5, 14, 14)) == 25 / 175
    True
    """
    ax0, ay0, ax1, ay1 = _check_box(box_a, "box_a")
    bx0, by0, bx1, by1 = _check_box(box_b, "box_b")
    iw = min(ax1, bx1) - max(ax0, bx0) + 1                               # overlap width in pixels
    ih = min(ay1, by1) - max(ay0, by0) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (ax1 - ax0 + 1) * (ay1 - ay0 + 1) + (bx1 - bx0 + 1) * (by1 - by0 + 1) - inter
    return inter / union


# ----------------------------------------------------------------------------- loop twins

def largest_component_loop(mask, connectivity=8):
    """Loop twin of ``largest_component``: a breadth-first flood fill from every unvisited
    pixel, in row-major order, keeping the first component of the largest size."""
    mask = _check_mask(mask)
    if _check_connectivity(connectivity) == 4:
        steps = [(-1, 0), (0, -1), (0, 1), (1, 0)]
    else:
        steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    height, width = mask.shape
    pixels = mask.tolist()
    seen = [[False] * width for _ in range(height)]
    best = []
    for y in range(height):
        for x in range(width):
            if not pixels[y][x] or seen[y][x]:
                continue
            seen[y][x] = True
            queue, component = collections.deque([(y, x)]), []
            while queue:
                cy, cx = queue.popleft()
                component.append((cy, cx))
                for dy, dx in steps:
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < height and 0 <= nx < width and pixels[ny][nx] and not seen[ny][nx]:
                        seen[ny][nx] = True
                        queue.append((ny, nx))
            if len(component) > len(best):          # strict: on a tie the earlier one stays
                best = component
    out = np.zeros((height, width), bool)
    for y, x in best:
        out[y, x] = True
    return out


def bbox_of_mask_loop(mask):
    """Loop twin of ``bbox_of_mask``: the min and max x and y over every True pixel."""
    mask = _check_mask(mask)
    box = None
    for y, row in enumerate(mask.tolist()):
        for x, on in enumerate(row):
            if on:
                box = (x, y, x, y) if box is None else (
                    min(box[0], x), min(box[1], y), max(box[2], x), max(box[3], y))
    return box


def iou_loop(box_a, box_b):
    """Loop twin of ``iou``: count the pixels in both boxes and in either, one at a time."""
    ax0, ay0, ax1, ay1 = _check_box(box_a, "box_a")
    bx0, by0, bx1, by1 = _check_box(box_b, "box_b")
    inter = union = 0
    for y in range(min(ay0, by0), max(ay1, by1) + 1):
        for x in range(min(ax0, bx0), max(ax1, bx1) + 1):
            in_a = ax0 <= x <= ax1 and ay0 <= y <= ay1
            in_b = bx0 <= x <= bx1 and by0 <= y <= by1
            inter += in_a and in_b
            union += in_a or in_b
    return inter / union


# ------------------------------------------------------- the authors' released box generator

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
    if not isinstance(heatmap, np.ndarray) or not (
            heatmap.dtype == np.uint8 or np.issubdtype(heatmap.dtype, np.floating)):
        raise TypeError("heatmap must be a uint8 array (the 0..255 map dt_box reads) or a float "
                        f"array; got {getattr(heatmap, 'dtype', type(heatmap).__name__)}")
    _check_map(heatmap)
    if heatmap.dtype == np.uint8:
        return heatmap
    values = heatmap.astype(np.float64)                                  # (H, W)
    peak = values.max()
    if peak <= 0:
        return np.zeros(heatmap.shape, np.uint8)
    return np.floor(np.clip(values / peak, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _check_thresholds(thresholds):
    try:
        t = tuple(operator.index(v) for v in thresholds)
    except TypeError:
        t = ()
    if len(t) != 3 or not 0 < t[0] < t[1] < t[2] < 255:
        raise ValueError(f"thresholds must be 3 ints with 0 < t0 < t1 < t2 < 255; got {thresholds!r}")
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
