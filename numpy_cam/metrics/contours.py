"""OpenCV's contour rule for "the largest box", written out (no cv2): wsolevaluation's convention.

clovaai/wsolevaluation (Choe et al., CVPR 2020, ``evaluation.py``,
``compute_bboxes_from_scoremaps``) boxes a thresholded map with ``cv2.findContours(RETR_TREE,
CHAIN_APPROX_SIMPLE)``; the single box (``multi_contour_eval=False``) is the bounding rect of
``max(contours, key=cv2.contourArea)``. That is not the largest connected component by pixel
count (``localize.largest_component``), in two ways, both used by its published tests:

- **area**: ``contourArea`` is the shoelace area of the polygon through the centres of the
  border pixels that Suzuki-Abe border following visits (8-connected objects), not a pixel
  count. A one-pixel-wide line, a single pixel, or any thin object has area 0; a 2 x 2 square
  has area 1; a filled w x h rectangle (w, h >= 2) has (w - 1)(h - 1). So a compact 3-pixel
  "L" (area 0.5) beats a 5-pixel diagonal strip (area 0).
- **ties**: ``max`` keeps the first of equal areas, and ``findContours`` lists the outer
  contours of the top level last-found first, so the tie goes to the component whose first
  pixel (row-major) comes LAST. Two single pixels: the lower / further-right one wins.

Hole contours (``RETR_TREE`` also returns them) never win "largest": a hole's polygon lies
inside the outer polygon of the component around it. Components inside holes are ordered
here with the others by their first pixel (reverse raster order); OpenCV's order can differ
for them, so only equal areas there could pick another box (``tests/test_metrics.py`` compares
with cv2 on random maps when it is installed).

``contour_area`` traces the outer border (Suzuki and Abe, "Topological structural analysis of
digitized binary images by border following", CVGIP 1985, Algorithm 1, step 3) and sums the
shoelace formula; ``largest_by_contour_area`` applies the rule to a mask.
"""
import numpy as np
from scipy import ndimage

from .._checks import check_array
from ..localize import _STRUCTURE, _first_pixels

__all__ = ["contour_area", "largest_by_contour_area"]

# The 8 neighbours (dy, dx), clockwise on the screen (y grows downwards), starting East.
_CLOCKWISE = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))
_WEST = 4


def _outer_border(pixels, y, x):
    """The border pixels visited from (y, x), the component's first pixel in row-major order.

    ``pixels``: a list of lists of bools with a False frame (so every neighbour exists).
    Suzuki-Abe step 3 for an outer border, whose start has a 0 on its left (step 3.1 searches
    clockwise from there; 3.3 searches counter-clockwise from the pixel after the previous one).
    """
    def first_on(cy, cx, start, step):
        for k in range(8):
            d = (start + step * k) % 8
            dy, dx = _CLOCKWISE[d]
            if pixels[cy + dy][cx + dx]:
                return d
        return None

    d1 = first_on(y, x, _WEST, +1)                                      # 3.1, clockwise from West
    if d1 is None:
        return [(y, x)]                                                 # an isolated pixel
    p1 = (y + _CLOCKWISE[d1][0], x + _CLOCKWISE[d1][1])
    prev, here = p1, (y, x)                                             # 3.2
    border = []
    while True:
        back = _CLOCKWISE.index((prev[0] - here[0], prev[1] - here[1]))
        d4 = first_on(here[0], here[1], back - 1, -1)                   # 3.3, counter-clockwise
        nxt = (here[0] + _CLOCKWISE[d4][0], here[1] + _CLOCKWISE[d4][1])
        border.append(here)                                             # 3.4
        if nxt == (y, x) and here == p1:                                # 3.5: back at the start
            return border
        prev, here = here, nxt


def _shoelace(points):
    """|signed area| of the closed polygon through ``points`` (y, x), as cv2.contourArea."""
    ys = np.array([p[0] for p in points], np.float64)                   # (P,)
    xs = np.array([p[1] for p in points], np.float64)                   # (P,)
    return abs(float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1)))) / 2


def contour_area(component):
    """cv2.contourArea of the outer contour of a single 8-connected component.

    Parameters
    ----------
    component : ndarray of shape (H, W), bool -- one 8-connected component, or none (the
        trace starts at its first pixel in row-major order)

    Returns
    -------
    area : float, a multiple of 0.5; 0.0 for an empty mask, a pixel, a line

    TypeError: not a bool array; ValueError: not 2-D, or more than one 8-connected component.
    """
    check_array("component", component, "(H, W)", kinds="b")
    count = ndimage.label(component, structure=_STRUCTURE[8])[1]
    if count > 1:
        raise ValueError(f"component must be one 8-connected component (largest_by_contour_area picks one); "
                         f"got {count} components")
    padded = np.pad(component, 1)                                      # (H + 2, W + 2), a False frame
    flat = np.flatnonzero(padded)
    if flat.size == 0:
        return 0.0
    y, x = divmod(int(flat[0]), padded.shape[1])
    return _shoelace(_outer_border(padded.tolist(), y, x))


def largest_by_contour_area(mask):
    """The 8-connected component of ``mask`` that wsolevaluation's ``max(contours,
    key=cv2.contourArea)`` boxes: the largest contour area, ties to the LAST first pixel.

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool

    Returns
    -------
    component : ndarray of shape (H, W), bool, a new array; all False for an empty mask

    TypeError: not a bool array; ValueError: not 2-D.
    """
    return _largest_by_contour_area(check_array("mask", mask, "(H, W)", kinds="b"))


def _largest_by_contour_area(mask):
    labels, n = ndimage.label(mask, structure=_STRUCTURE[8])            # (H, W)
    if n <= 1:
        return labels == 1
    pixels = np.pad(labels > 0, 1).tolist()                             # (H + 2, W + 2), a False frame
    first = _first_pixels(labels, n).tolist()                           # (n + 1,) first pixel of each label
    width = labels.shape[1]
    best, best_area = 0, -1.0
    for label in sorted(range(1, n + 1), key=lambda k: -first[k]):      # the last first pixel first
        y, x = divmod(first[label], width)
        area = _shoelace(_outer_border(pixels, y + 1, x + 1))           # in the framed image
        if area > best_area:                                            # strict: the first one stays
            best, best_area = label, area
    return labels == best
