"""Checkers of the paper's box (Sec. 3) and of the IoU of the localisation metric: ``check_bbox``,
``check_iou``, ``check_localize``, against ``localize.bbox_of_mask``, ``iou`` and ``localize``.

The project's conventions (``numpy_cam.localize``): a box is (x0, y0, x1, y1) with *inclusive*
ends, x the column and y the row; no box is None; areas count pixels, (x1 - x0 + 1)(y1 - y0 + 1);
the box is that of the largest 8-connected component of heatmap > threshold * max(heatmap),
on the map as given (no normalisation inside).
"""
import numpy as np

from ..cam import _normalize
from ..localize import _bbox_of_mask, _largest_component, _localize, bbox_of_mask_loop, iou_loop, largest_component_loop
from .cases import Checker, Mistake

INCLUSIVE = ("The project's boxes are inclusive: (x0, y0, x1, y1) covers columns x0..x1 and rows y0..y1, so a "
             "one-pixel box is (x, y, x, y).")


def _exclusive(box):
    return box[0], box[1], box[2] + 1, box[3] + 1


def box_mistakes(box):
    """The typical mistakes in writing down a box (non-empty)."""
    x0, y0, x1, y1 = box
    return [Mistake("box ends exclusive (x1 + 1, y1 + 1)", INCLUSIVE, _exclusive(box)),
            Mistake("x and y swapped: (y0, x0, y1, x1)", "x is the column (axis 1 of mask[y, x]), y the row.",
                    (y0, x0, y1, x1) if (x0, x1) != (y0, y1) else None),
            Mistake("(x, y, width, height) instead of (x0, y0, x1, y1)", INCLUSIVE, (x0, y0, x1 - x0 + 1, y1 - y0 + 1)),
            Mistake("(x, y, x1 - x0, y1 - y0) instead of (x0, y0, x1, y1)", INCLUSIVE, (x0, y0, x1 - x0, y1 - y0))]


def _as_box(got):
    return tuple(got) if isinstance(got, (list, np.ndarray)) else got


def _mask(height, width, pixels):
    mask = np.zeros((height, width), bool)                                    # (H, W)
    for y, x in pixels:
        mask[y, x] = True
    return mask


def check_bbox(fn):
    """Check ``fn(mask) -> (x0, y0, x1, y1)`` inclusive ints, or None for an empty mask."""
    checker = Checker("check_bbox", fn)
    rect = _mask(5, 6, [(y, x) for y in (2, 3) for x in (1, 2, 3, 4)])
    for case, mask in (("one pixel at x = 3, y = 1 in a 4 x 5 mask", _mask(4, 5, [(1, 3)])),
                       ("rows 2..3, columns 1..4 of a 5 x 6 mask", rect),
                       ("two corners: (x, y) = (0, 4) and (5, 0)", _mask(5, 6, [(4, 0), (0, 5)])),
                       ("an L shape", _mask(6, 6, [(1, 1), (2, 1), (3, 1), (3, 2), (3, 3)])),
                       ("every pixel of a 2 x 3 mask", np.ones((2, 3), bool)),
                       ("an empty 3 x 3 mask", np.zeros((3, 3), bool))):
        expected = bbox_of_mask_loop(mask)
        mistakes = box_mistakes(expected) if expected is not None else [
            Mistake("a box for an empty mask", "No True pixel: no box, None.", (0, 0, 0, 0))]
        checker.expect(case, _as_box(checker.call(case, mask)), expected, mistakes)
    return checker.passed


def _iou_variants(a, b):
    """IoU computed with the typical mistakes, name -> (hint, value or None when it cannot be computed)."""
    def area(box, plus):
        return (box[2] - box[0] + plus) * (box[3] - box[1] + plus)

    def overlap(plus, clamp=True):
        iw, ih = min(a[2], b[2]) - max(a[0], b[0]) + plus, min(a[3], b[3]) - max(a[1], b[1]) + plus
        return max(iw, 0) * max(ih, 0) if clamp else iw * ih

    def ratio(num, den):
        return num / den if den else None

    inter = overlap(1)
    return {
        "areas without + 1 (exclusive ends)": (
            "Boxes are inclusive: width x1 - x0 + 1, height y1 - y0 + 1, for the areas and for the overlap (as the "
            "released evaluation/compute_overlap.m counts).",
            ratio(overlap(0), area(a, 0) + area(b, 0) - overlap(0))),
        "a negative overlap not clamped to 0": (
            "Disjoint boxes give a negative width and height, whose product is positive: the overlap is "
            "max(w, 0) * max(h, 0).", ratio(overlap(1, False), area(a, 1) + area(b, 1) - overlap(1, False))),
        "union = area_a + area_b (the overlap counted twice)": (
            "union = area_a + area_b - intersection.", ratio(inter, area(a, 1) + area(b, 1))),
        "intersection over the first box's area": ("IoU divides by the union of both boxes.",
                                                   ratio(inter, area(a, 1))),
        "intersection over the smaller area": ("IoU divides by the union of both boxes.",
                                               ratio(inter, min(area(a, 1), area(b, 1)))),
    }


def check_iou(fn):
    """Check ``fn(box_a, box_b) -> float`` in [0, 1], the IoU of two inclusive boxes, against ``localize.iou``."""
    checker = Checker("check_iou", fn)
    for a, b in (((0, 0, 9, 9), (5, 5, 14, 14)), ((2, 3, 7, 5), (2, 3, 7, 5)), ((0, 0, 9, 9), (10, 0, 19, 9)),
                 ((0, 0, 9, 9), (9, 0, 18, 9)), ((0, 0, 9, 9), (2, 2, 4, 4)), ((4, 4, 4, 4), (4, 4, 4, 4)),
                 ((0, 0, 1, 1), (5, 5, 6, 6)), ((3, 0, 8, 2), (0, 1, 4, 6))):
        case = f"iou({a}, {b})"
        mistakes = [Mistake(name, hint, value) for name, (hint, value) in _iou_variants(a, b).items()]
        checker.expect(case, checker.call(case, a, b), iou_loop(a, b), mistakes)
    return checker.passed


def _blob(shape, rows, cols, value, out=None):
    heatmap = np.zeros(shape, np.float32) if out is None else out            # (H, W)
    heatmap[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = value
    return heatmap


def localize_cases():
    """(case, heatmap, keyword arguments) of ``check_localize``."""
    two = _blob((8, 10), (5, 6), (6, 8), 9.0, _blob((8, 10), (1, 3), (1, 3), 10.0))       # 9 px and 6 px
    chain = np.zeros((8, 8), np.float32)
    chain[np.arange(5), np.arange(5)] = 5.0                                              # 5 diagonal pixels
    chain = _blob(chain.shape, (5, 6), (6, 7), 4.0, chain)                               # and a 2 x 2 block
    plateau = _blob((6, 8), (1, 4), (1, 6), 2.0, _blob((6, 8), (2, 3), (2, 4), 10.0))   # 2.0 = 20% of 10 exactly
    relative = _blob((6, 8), (2, 3), (3, 4), 50.0, _blob((6, 8), (0, 5), (1, 6), 10.0))  # halo above 0.2, below 20
    negative = _blob((6, 8), (2, 3), (3, 4), 10.0, _blob((6, 8), (1, 4), (2, 6), 0.0, np.full((6, 8), -5, np.float32)))
    halo = _blob((6, 8), (2, 3), (3, 4), 10.0, _blob((6, 8), (1, 4), (1, 6), 3.0))      # 3 > 0.2 * 10, < 0.5 * 10
    return (("two blobs: the larger one (9 pixels) has the box", two, {}),
            ("a diagonal chain of 5 pixels and a 2 x 2 block", chain, {}),
            ("a plateau at exactly 20% of the max", plateau, {}),
            ("max 50 with a halo of 10", relative, {}),
            ("a map from -5 to 10 (0 around the object)", negative, {}),
            ("an all-negative map", np.full((4, 5), -1.0, np.float32), {}),
            ("threshold=0.5 with a halo at 30% of the max", halo, {"threshold": 0.5}),
            ("connectivity=4 on the diagonal chain", chain, {"connectivity": 4}))


def localize_mistakes(heatmap, threshold, connectivity, expected):
    values = heatmap.astype(np.float64)                                                # (H, W)
    mistakes = [
        Mistake("no largest component: the box of every pixel above the threshold", "Sec. 3 keeps the largest "
                "connected component of the mask, then takes its box.",
                _bbox_of_mask(values > threshold * values.max())),
        Mistake(">= instead of >", "The paper keeps the values *above* 20% of the max: heatmap > 0.2 * max.",
                _bbox_of_mask(_largest_component(values >= threshold * values.max(), connectivity))),
        Mistake("an absolute threshold (heatmap > 0.2)", "The threshold is a fraction of the map's max: "
                "heatmap > threshold * max(heatmap).", _localize(values - threshold, 0.0, connectivity)
                if (values > threshold).any() else None),
        Mistake("the map min-max normalised first", "localize thresholds the map it is given; normalising first "
                "moves the threshold to min + 0.2 (max - min).", _localize(_normalize(values), threshold,
                                                                          connectivity)),
        Mistake("4-connectivity instead of 8" if connectivity == 8 else "connectivity argument ignored (8)",
                "connectivity=8: pixels touching by a corner are connected (OpenCV's contours, the authors' code); "
                "4: by a side only.", _localize(values, threshold, 12 - connectivity)),
        Mistake("threshold argument ignored (0.2)", "Use the threshold argument.",
                _localize(values, 0.2, connectivity) if threshold != 0.2 else None),
    ]
    if expected is not None:
        mistakes.append(Mistake("box ends exclusive (x1 + 1, y1 + 1)", INCLUSIVE, _exclusive(expected)))
    return mistakes


def check_localize(fn):
    """Check ``fn(heatmap, threshold=0.2, connectivity=8) -> box or None`` against ``localize.localize``."""
    checker = Checker("check_localize", fn)
    for case, heatmap, kwargs in localize_cases():
        threshold, connectivity = kwargs.get("threshold", 0.2), kwargs.get("connectivity", 8)
        values = heatmap.astype(np.float64)                                   # the loop twins' answer
        expected = bbox_of_mask_loop(largest_component_loop(values > threshold * values.max(), connectivity))
        mistakes = localize_mistakes(heatmap, threshold, connectivity, expected)
        checker.expect(case, _as_box(checker.call(case, heatmap, **kwargs)), expected, mistakes)
    return checker.passed
