"""From a class activation map to a bounding box: weakly supervised localisation (Sec. 3).

The paper's procedure, three steps, each a function here:

1. ``threshold_mask``: "segment the regions of which the value is above 20% of the max
   value of the CAM", mask = heatmap > 0.2 * max(heatmap);
2. ``largest_component``: keep the largest connected component of that mask;
3. ``bbox_of_mask``: "take the bounding box that covers" it.

``localize`` chains them: it checks its arguments once and calls the unchecked ``_localize``
(which ``explain_image`` calls after checking its own). ``iou`` is the overlap measure of the
ILSVRC localisation metric (a guess is right when its class is right and its IoU with a
ground-truth box is >= 0.5).

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
  the largest (the README's conventions table and notebook 03 show a case), so it is a parameter.

Loop twins, in pure Python: ``largest_component_loop`` (breadth-first flood fill),
``bbox_of_mask_loop`` (a scan of every pixel) and ``iou_loop`` (a count of pixels).

The authors' released code draws its box another way, with three thresholds, an erosion and
a merge: ``released_code.py`` reproduces it; read its docstrings before comparing numbers
with the paper's tables.

References: Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR
2016, Sec. 3; released code: github.com/zhoubolei/CAM, ``bboxgenerator/dt_box.cpp``.
"""
import collections

import numpy as np
from scipy import ndimage

from ._checks import check_array, check_box, check_choice, check_unit_interval

__all__ = [
    "threshold_mask", "largest_component", "bbox_of_mask", "localize", "iou",
    "largest_component_loop", "bbox_of_mask_loop", "iou_loop",
]

_STRUCTURE = {4: ndimage.generate_binary_structure(2, 1),      # the cross
              8: ndimage.generate_binary_structure(2, 2)}      # the full 3 x 3 square


def _first_pixels(labels, n):
    """(n + 1,) int64: the row-major index of the first pixel of each label 1..n ([0]: unused)."""
    ids, index = np.unique(labels.ravel(), return_index=True)            # first occurrences
    first = np.zeros(n + 1, np.int64)
    first[ids] = index
    return first


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
    check_array("heatmap", heatmap, "(H, W)", kinds="fiu", nonempty=True, finite=True)
    return _threshold_mask(heatmap, check_unit_interval("threshold", threshold))


def _threshold_mask(heatmap, threshold):
    values = heatmap.astype(np.float64, copy=False)                      # (H, W)
    return values > threshold * values.max()                             # (H, W) bool


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
    check_array("mask", mask, "(H, W)", kinds="fiub")
    return _largest_component(mask.astype(bool, copy=False), check_choice("connectivity", connectivity, (4, 8)))


def _largest_component(mask, connectivity):
    labels, num_labels = ndimage.label(mask, structure=_STRUCTURE[connectivity])  # (H, W)
    if num_labels <= 1:
        return labels == 1                                               # (H, W) bool: the only one, or none
    sizes = np.bincount(labels.ravel(), minlength=num_labels + 1)        # (num_labels + 1,), [0] = background
    tied = np.flatnonzero(sizes[1:] == sizes[1:].max()) + 1              # labels of the largest size
    if len(tied) == 1:
        return labels == tied[0]                                         # (H, W) bool
    return labels == tied[np.argmin(_first_pixels(labels, num_labels)[tied])]  # (H, W) bool


def bbox_of_mask(mask):
    """The tightest box around the True pixels: (x0, y0, x1, y1) inclusive ints, or None if empty."""
    check_array("mask", mask, "(H, W)", kinds="fiub")
    return _bbox_of_mask(mask.astype(bool, copy=False))


def _bbox_of_mask(mask):
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
    check_array("heatmap", heatmap, "(H, W)", kinds="fiu", nonempty=True, finite=True)
    threshold = check_unit_interval("threshold", threshold)
    return _localize(heatmap, threshold, check_choice("connectivity", connectivity, (4, 8)))


def _localize(heatmap, threshold, connectivity):
    """Unchecked ``localize``: heatmap a finite (H, W) array, threshold in [0, 1], connectivity 4 or 8."""
    return _bbox_of_mask(_largest_component(_threshold_mask(heatmap, threshold), connectivity))


def iou(box_a, box_b):
    """Intersection over union of two inclusive boxes, counted in pixels.

    area = (x1 - x0 + 1) * (y1 - y0 + 1), as the released ``evaluation/compute_overlap.m``
    counts it; the intersection of (0, 0, 9, 9) and (10, 0, 19, 9) is empty, that of
    (0, 0, 9, 9) and (9, 0, 18, 9) one column of 10 pixels. Disjoint boxes give 0.0.
    TypeError for anything but integers; ValueError unless 4 of them with x0 <= x1 and y0 <= y1.

    >>> iou((0, 0, 9, 9), (5, 5, 14, 14)) == 25 / 175
    True
    """
    ax0, ay0, ax1, ay1 = check_box("box_a", box_a)
    bx0, by0, bx1, by1 = check_box("box_b", box_b)
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
    mask = check_array("mask", mask, "(H, W)", kinds="fiub").astype(bool, copy=False)
    if check_choice("connectivity", connectivity, (4, 8)) == 4:
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
    mask = check_array("mask", mask, "(H, W)", kinds="fiub").astype(bool, copy=False)
    box = None
    for y, row in enumerate(mask.tolist()):
        for x, on in enumerate(row):
            if on:
                box = (x, y, x, y) if box is None else (
                    min(box[0], x), min(box[1], y), max(box[2], x), max(box[3], y))
    return box


def iou_loop(box_a, box_b):
    """Loop twin of ``iou``: count the pixels in both boxes and in either, one at a time."""
    ax0, ay0, ax1, ay1 = check_box("box_a", box_a)
    bx0, by0, bx1, by1 = check_box("box_b", box_b)
    inter = union = 0
    for y in range(min(ay0, by0), max(ay1, by1) + 1):
        for x in range(min(ax0, bx0), max(ax1, bx1) + 1):
            in_a = ax0 <= x <= ax1 and ay0 <= y <= ay1
            in_b = bx0 <= x <= bx1 and by0 <= y <= by1
            inter += in_a and in_b
            union += in_a or in_b
    return inter / union
