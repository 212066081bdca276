"""Box metrics of weakly supervised localisation: the paper's, and MaxBoxAcc / MaxBoxAccV2.

The paper (Zhou et al., CVPR 2016, Sec. 3 and Table 2, the ILSVRC protocol): one box per map,
``localize.localize`` (20% of the max, the largest connected component, its box); a guess is
right when its IoU with a ground-truth box is >= 0.5.

- ``gt_known_localization``: the map of the TRUE class; the fraction of images localised.
- ``top1_localization``: the map of the PREDICTED class; right when the class is right AND the
  box is (the paper's "top-1 localization error" is 1 minus this).

Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right", CVPR 2020
(Sec. 4, the evaluation metrics; reference code clovaai/wsolevaluation, ``evaluation.py``):
with s the map of the true class scaled to [0, 1], the box at threshold tau is that of
{s > tau}, and

    BoxAcc(tau, delta) = fraction of images with max IoU(box(tau), ground-truth boxes) >= delta
    MaxBoxAcc          = max over tau of BoxAcc(tau, 0.5), the largest component's box (CVPR 2020)
    MaxBoxAccV2        = mean over delta in (0.3, 0.5, 0.7) of max over tau of BoxAcc(tau, delta),
                         each delta with its own best tau, boxes of EVERY component ("multi-contour");
                         from the journal version (Choe et al., "Evaluation for Weakly Supervised
                         Object Localization: Protocol, Metrics, and Datasets", TPAMI, arXiv
                         2007.04178) and wsolevaluation's README, "Improved box evaluation"

``best_ious`` gives the (N, T) table of max IoUs behind them, so a threshold can be chosen on
a calibration split and reported on a test split (``calibrated_box_acc``), which is what the
paper asks for (the threshold is a hyper-parameter chosen with full supervision on held-out data).

Conventions (keyword options; ``PROJECT`` the defaults, ``WSOLEVALUATION`` the reference code's)
--------------------------------------------------------------------------------------------------
scale      "minmax": s = (h - min) / (max - min); "max": s = h / max (the paper's "20% of the
           max", negative values never pass); "none": h already in [0, 1]. A constant map, or
           max <= 0 for "max", passes no threshold. Without quantisation the test is done without
           a division, h - min > tau * (max - min), so "max" gives ``localize``'s masks exactly.
quantize   False: s > tau in float64. True (wsolevaluation): q = uint8(floor(255 s)), pixel kept
           when q > int(tau * max(q)).
rule       "components": connected components (``connectivity`` 8 or 4), the largest by pixel
           count, ties to the first in row-major order (``localize``). "contours": OpenCV's
           contours, the largest by contour area, ties to the last (``contours.py``); with
           boxes="all" each hole of a component adds a box (its bounding rect: the hole's box
           grown by one pixel), as ``findContours(RETR_TREE)`` does.
box_end    "last": (x0, y0, x1, y1) with x1 the last column (inclusive, the ILSVRC convention).
           "past": x1 = last + 1 and y1 = last + 1, clamped to W - 1, H - 1 (wsolevaluation's
           x + w of ``cv2.boundingRect``, then scored as inclusive: one column and row too many
           unless the box touches the right or bottom edge).
empty_box  None: no pixel passes -> no box, IoU 0. (0, 0, 0, 0): wsolevaluation's stand-in box,
           which scores as the top-left pixel.
IoU is inclusive in both conventions: area = (x1 - x0 + 1)(y1 - y0 + 1) (``localize.iou``).
Thresholds: ``THRESHOLDS`` = k / 100, k = 0..99; wsolevaluation's are ``np.arange(0, 1, interval)``
(``wsol_thresholds``), which can differ from k / 100 in the last bit.
"""
import numpy as np
from scipy import ndimage

from .._checks import check_array, check_choice, check_flag, check_fraction, check_int_range, check_unit_interval
from ..localize import _STRUCTURE, _bbox_of_mask, _largest_component, _localize
from ..released_code import _contour_rects
from .contours import _largest_by_contour_area

__all__ = ["THRESHOLDS", "IOU_THRESHOLDS", "PROJECT", "WSOLEVALUATION", "wsol_thresholds", "iou_matrix",
           "resize_box", "masks_at_thresholds", "boxes_at_thresholds", "best_ious", "box_accuracy",
           "max_box_acc", "max_box_acc_v2", "calibrated_box_acc", "gt_known_localization",
           "top1_localization"]

THRESHOLDS = np.arange(100) / 100                                        # (100,) 0.00 .. 0.99
IOU_THRESHOLDS = (0.3, 0.5, 0.7)                                         # MaxBoxAccV2's deltas
SCALES = ("minmax", "max", "none")                                       # the ``scale`` option (also PxAP's)
PROJECT = {"scale": "minmax", "quantize": False, "rule": "components", "connectivity": 8,
           "box_end": "last", "empty_box": None}
WSOLEVALUATION = {"scale": "minmax", "quantize": True, "rule": "contours", "connectivity": 8,
                  "box_end": "past", "empty_box": (0, 0, 0, 0)}


def wsol_thresholds(interval=0.01):
    """wsolevaluation's threshold list, ``np.arange(0, 1, interval)`` (its default 0.01 on the
    command line, 0.001 in ``evaluate_wsol``). (T,) float64."""
    check_fraction("interval", interval)
    return np.arange(0, 1, interval)


def _check_options(convention):
    """The keyword options ``convention`` over the defaults ``PROJECT``, checked: a new dict."""
    unknown = [repr(k) for k in convention if k not in PROJECT]
    if unknown:
        raise TypeError(f"the convention's options are {', '.join(PROJECT)}; got {', '.join(unknown)}")
    o = {**PROJECT, **convention}
    check_choice("scale", o["scale"], SCALES)
    check_flag("quantize", o["quantize"])
    check_choice("rule", o["rule"], ("components", "contours"))
    check_choice("connectivity", o["connectivity"], (4, 8))
    check_choice("box_end", o["box_end"], ("last", "past"))
    if o["empty_box"] is not None:
        o["empty_box"] = _check_boxes("empty_box", [o["empty_box"]])[0].tolist()
    return o


def _check_thresholds(thresholds):
    values = np.asarray(thresholds, dtype=np.float64) if not isinstance(thresholds, np.ndarray) else thresholds
    check_array("thresholds", values, "(T,)", kinds="fiu", nonempty=True, finite=True)
    if values.min() < 0 or values.max() > 1 or np.any(np.diff(values) <= 0):
        raise ValueError(f"thresholds must increase strictly within [0, 1]; got {values[:5]}...")
    return values.astype(np.float64, copy=False)


def _check_boxes(name, boxes, shape=None):
    """(K, 4) int64 array of inclusive boxes, each 0 <= x0 <= x1 < W and 0 <= y0 <= y1 < H."""
    try:
        array = np.asarray(boxes)
    except ValueError:
        raise ValueError(f"{name} must be (K, 4) boxes (x0, y0, x1, y1); got {boxes!r}") from None
    if array.ndim == 1 and array.size == 4:
        array = array[None]
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer boxes (x0, y0, x1, y1); got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != 4 or not len(array):
        raise ValueError(f"{name} must have shape (K, 4) with K >= 1, boxes (x0, y0, x1, y1); got {array.shape}")
    x0, y0, x1, y1 = array.T
    if np.any(x0 < 0) or np.any(y0 < 0) or np.any(x1 < x0) or np.any(y1 < y0):
        raise ValueError(f"{name} must be boxes (x0, y0, x1, y1) with 0 <= x0 <= x1 and 0 <= y0 <= y1; "
                         f"got {array.tolist()}")
    if shape is not None and (np.any(x1 >= shape[1]) or np.any(y1 >= shape[0])):
        raise ValueError(f"{name} must lie within the (H, W) = {shape} map: x1 < {shape[1]}, y1 < {shape[0]}; "
                         f"got {array.tolist()}")
    return array.astype(np.int64)


def _check_maps(heatmaps, gt_boxes):
    """heatmaps (N, H, W) finite; gt_boxes: (N, 4), or N sequences of boxes -> list of (K_i, 4)."""
    check_array("heatmaps", heatmaps, "(N, H, W)", kinds="fiu", nonempty=True, finite=True)
    if isinstance(gt_boxes, np.ndarray) and gt_boxes.ndim == 2:
        gt_boxes = gt_boxes[:, None]                                     # (N, 1, 4): one box each
    if len(gt_boxes) != len(heatmaps):
        raise ValueError(f"gt_boxes must hold one entry per map, {len(heatmaps)}; got {len(gt_boxes)}")
    return [_check_boxes(f"gt_boxes[{i}]", b, heatmaps.shape[1:]) for i, b in enumerate(gt_boxes)]


def iou_matrix(boxes_a, boxes_b):
    """IoU of every pair of inclusive boxes: (A, 4), (B, 4) -> (A, B) float64 (``localize.iou``)."""
    a, b = _check_boxes("boxes_a", boxes_a)[:, None], _check_boxes("boxes_b", boxes_b)[None]   # (A, 1, 4), (1, B, 4)
    return _iou_matrix(a, b)


def _iou_matrix(a, b):
    iw = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)   # (A, B)
    ih = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)   # (A, B)
    inter = iw * ih
    area = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1) + (b[..., 2] - b[..., 0] + 1) * (
        b[..., 3] - b[..., 1] + 1)
    return inter / (area - inter)                                        # (A, B), union >= 1 pixel


def resize_box(box, image_size, resize_size):
    """A box scaled from an image of (W, H) = ``image_size`` to ``resize_size``, each coordinate
    truncated: x * W' / W (wsolevaluation's ``resize_bbox``: its ground truth at 224 x 224)."""
    x0, y0, x1, y1 = _check_boxes("box", box)[0].tolist()
    (w, h), (w2, h2) = _check_width_height("image_size", image_size), _check_width_height("resize_size", resize_size)
    return int(x0 * w2 / w), int(y0 * h2 / h), int(x1 * w2 / w), int(y1 * h2 / h)


def _check_width_height(name, value):
    """(W, H), 2 ints >= 1, as a list."""
    try:
        count = len(value)
    except TypeError:
        raise TypeError(f"{name} must be (W, H), 2 integers >= 1; got {value!r}") from None
    if count != 2:
        raise ValueError(f"{name} must be (W, H), 2 integers >= 1; got {count} values: {value!r}")
    return [check_int_range(name, v, 1) for v in value]


def masks_at_thresholds(heatmap, thresholds=THRESHOLDS, scale="minmax", quantize=False):
    """The pixels kept at each threshold: (H, W) map -> (T, H, W) bool; see the conventions."""
    check_array("heatmap", heatmap, "(H, W)", kinds="fiu", nonempty=True, finite=True)
    check_choice("scale", scale, SCALES)
    return _masks(heatmap, _check_thresholds(thresholds), scale, check_flag("quantize", quantize))


def _scale(values, scale, name="heatmap"):
    """(lo, span): the map ``values`` (float64) scaled to [0, 1] is s = (values - lo) / span, by
    the ``scale`` convention (module docstring); span <= 0: a constant map, or max <= 0 for "max"."""
    if scale == "none":
        if values.min() < 0 or values.max() > 1:
            raise ValueError(f"{name} must be within [0, 1] with scale='none'; got [{values.min()}, {values.max()}]")
        return 0.0, 1.0
    lo = values.min() if scale == "minmax" else 0.0
    return lo, values.max() - lo


def _masks(heatmap, thresholds, scale, quantize):
    values = heatmap.astype(np.float64, copy=False)                      # (H, W)
    lo, span = _scale(values, scale)
    if span <= 0:                                                        # constant, or max <= 0: nothing
        return np.zeros((len(thresholds), *values.shape), bool)
    if not quantize:
        return values - lo > thresholds[:, None, None] * span            # (T, H, W)
    s = np.clip((values - lo) / span, 0.0, 1.0)                          # (H, W), "max": negatives -> 0
    q = (s * 255).astype(np.uint8)                                       # (H, W) floor, as astype(uint8)
    cut = (thresholds * int(q.max())).astype(np.int64)                   # (T,) int(tau * max q)
    return q > cut[:, None, None]                                        # (T, H, W)


def _boxes_of_mask(mask, rule, connectivity, every):
    """Inclusive (x0, y0, x1, y1) boxes of a mask: the largest component's, or every one's."""
    if not every:
        pick = _largest_by_contour_area(mask) if rule == "contours" else _largest_component(mask, connectivity)
        box = _bbox_of_mask(pick)
        return [] if box is None else [box]
    if rule == "contours":                                               # outer borders and holes
        return [(x, y, x + w - 1, y + h - 1) for x, y, w, h in _contour_rects(mask)]
    labels, _ = ndimage.label(mask, structure=_STRUCTURE[connectivity])  # (H, W)
    return [(c.start, r.start, c.stop - 1, r.stop - 1) for r, c in ndimage.find_objects(labels)]


def boxes_at_thresholds(heatmap, thresholds=THRESHOLDS, boxes="largest", **convention):
    """The boxes at each threshold: a list of T lists of (x0, y0, x1, y1) Python ints.

    heatmap : ndarray of shape (H, W); boxes : "largest" or "all"; ``convention``: the options
    of the module docstring (default ``PROJECT``). An empty list where no pixel passes, unless
    ``empty_box`` is set (wsolevaluation: [(0, 0, 0, 0)]).
    """
    check_array("heatmap", heatmap, "(H, W)", kinds="fiu", nonempty=True, finite=True)
    options = _check_options(convention)
    every = check_choice("boxes", boxes, ("largest", "all")) == "all"
    return _boxes_at(heatmap, _check_thresholds(thresholds), every, options)


def _boxes_at(heatmap, thresholds, every, o):
    height, width = heatmap.shape
    out = []
    for mask in _masks(heatmap, thresholds, o["scale"], o["quantize"]):
        found = _boxes_of_mask(mask, o["rule"], o["connectivity"], every)
        if o["box_end"] == "past":
            found = [(x0, y0, min(x1 + 1, width - 1), min(y1 + 1, height - 1)) for x0, y0, x1, y1 in found]
        if not found and o["empty_box"] is not None:
            found = [tuple(o["empty_box"])]
        out.append([tuple(int(v) for v in b) for b in found])
    return out


def best_ious(heatmaps, gt_boxes, thresholds=THRESHOLDS, boxes="largest", **convention):
    """(N, T) float64: for each map and threshold, the best IoU of its boxes with its true boxes.

    heatmaps : ndarray of shape (N, H, W) -- the true class's maps (at the image size)
    gt_boxes : int array of shape (N, 4), or N sequences of (x0, y0, x1, y1) inclusive boxes
    thresholds : increasing values in [0, 1]; boxes : "largest" (MaxBoxAcc) or "all" (V2)
    convention : the options of the module docstring (default ``PROJECT``)
    0.0 where there is no box.
    """
    truth = _check_maps(heatmaps, gt_boxes)
    thresholds, options = _check_thresholds(thresholds), _check_options(convention)
    every = check_choice("boxes", boxes, ("largest", "all")) == "all"
    out = np.zeros((len(heatmaps), len(thresholds)))                     # (N, T)
    for i, heatmap in enumerate(heatmaps):
        for t, found in enumerate(_boxes_at(heatmap, thresholds, every, options)):
            if found:
                out[i, t] = _iou_matrix(np.array(found)[:, None], truth[i][None]).max()
    return out


def _check_ious(ious, thresholds=None):
    check_array("ious", ious, "(N, T)", kinds="f", nonempty=True, finite=True)
    if thresholds is not None and len(thresholds) != ious.shape[1]:
        raise ValueError(f"thresholds must have one value per column of ious, {ious.shape[1]}; got {len(thresholds)}")
    return ious


def _check_delta(iou_threshold):
    return check_fraction("iou_threshold", iou_threshold, " (0.5, not 50)")


def box_accuracy(ious, iou_threshold=0.5):
    """BoxAcc(tau, delta) for every tau: (N, T) best IoUs -> (T,) fraction with IoU >= delta."""
    return np.mean(_check_ious(ious) >= _check_delta(iou_threshold), axis=0)


def max_box_acc(ious, thresholds=THRESHOLDS, iou_threshold=0.5):
    """MaxBoxAcc: (best accuracy, the threshold that gives it: the first on a tie)."""
    accuracy = box_accuracy(_check_ious(ious, thresholds), iou_threshold)  # (T,)
    k = int(np.argmax(accuracy))
    return float(accuracy[k]), float(np.asarray(thresholds)[k])


def max_box_acc_v2(ious, thresholds=THRESHOLDS, iou_thresholds=IOU_THRESHOLDS):
    """MaxBoxAccV2: (mean over deltas of MaxBoxAcc, [(delta, accuracy, threshold), ...]).

    Use the IoUs of ``best_ious(..., boxes="all")`` for the paper's V2 (every component's box).
    """
    rows = [(_check_delta(d), *max_box_acc(ious, thresholds, d)) for d in iou_thresholds]
    return float(np.mean([r[1] for r in rows])), rows


def calibrated_box_acc(calibration_ious, test_ious, thresholds=THRESHOLDS, iou_thresholds=(0.5,)):
    """The test split's BoxAcc at the threshold that is best on the calibration split.

    calibration_ious, test_ious : (N, T) and (M, T) from ``best_ious`` with the same thresholds.
    Returns (mean over deltas of the test accuracy, [(delta, test accuracy, threshold), ...]),
    each delta with the threshold its calibration MaxBoxAcc picked (the first on a tie).
    """
    _check_ious(calibration_ious, thresholds)
    _check_ious(test_ious, thresholds)
    rows = []
    for d in iou_thresholds:
        k = int(np.argmax(box_accuracy(calibration_ious, d)))
        rows.append((_check_delta(d), float(box_accuracy(test_ious, d)[k]), float(np.asarray(thresholds)[k])))
    return float(np.mean([r[1] for r in rows])), rows


def _paper_ious(heatmaps, truth, threshold, connectivity):
    """(N,) best IoU of the paper's box (``localize``) with the true boxes; 0 without a box."""
    out = np.zeros(len(heatmaps))
    for i, heatmap in enumerate(heatmaps):
        box = _localize(heatmap, threshold, connectivity)
        if box is not None:
            out[i] = _iou_matrix(np.array([box])[:, None], truth[i][None]).max()
    return out


def gt_known_localization(heatmaps, gt_boxes, threshold=0.2, connectivity=8, iou_threshold=0.5):
    """GT-known localisation accuracy (Sec. 3): the paper's box of the TRUE class's map has
    IoU >= 0.5 with a true box. heatmaps (N, H, W); gt_boxes as in ``best_ious``. A fraction."""
    truth = _check_maps(heatmaps, gt_boxes)
    threshold = check_unit_interval("threshold", threshold)
    ious = _paper_ious(heatmaps, truth, threshold, check_choice("connectivity", connectivity, (4, 8)))
    return float(np.mean(ious >= _check_delta(iou_threshold)))


def top1_localization(heatmaps, predicted, labels, gt_boxes, threshold=0.2, connectivity=8, iou_threshold=0.5):
    """Top-1 localisation accuracy (Sec. 3, Table 2): the top-1 class is right AND the paper's
    box of ITS map has IoU >= 0.5 with a true box. heatmaps (N, H, W): the maps of the predicted
    classes; predicted, labels: (N,) ints. 1 minus this is the paper's top-1 localisation error."""
    truth = _check_maps(heatmaps, gt_boxes)
    for name, v in (("predicted", predicted), ("labels", labels)):
        check_int_range(name, check_array(name, v, "(N,)", kinds="iu"), 0)
        if len(v) != len(heatmaps):
            raise ValueError(f"{name} must have shape ({len(heatmaps)},), one class per map; got {v.shape}")
    threshold = check_unit_interval("threshold", threshold)
    ious = _paper_ious(heatmaps, truth, threshold, check_choice("connectivity", connectivity, (4, 8)))
    return float(np.mean((predicted == labels) & (ious >= _check_delta(iou_threshold))))
