"""The GAP-vs-GMP experiment re-scored: a calibrated threshold, MaxBoxAcc(V2), PxAP, baselines.

The paper (Sec. 3, Table 2) scores one box per map at a fixed threshold (20%) and IoU >= 0.5.
Choe et al. (CVPR 2020, Sec. 4) showed that a threshold tuned on the test set does much of the
work; here (``numpy_cam.metrics``) a CALIBRATION split, generated with its own seed
(``CALIBRATION_SEED``, no image shared with the training or test sets), chooses every
threshold, the TEST split reports, and the oracle (the best threshold on the test split
itself) sits beside it. Per net and per threshold convention:

- ``classification``: top-1 correct;
- ``top1_loc`` / ``gt_known_loc``: the paper's box (largest 8-connected component at tau) of
  the true class's map, IoU >= 0.5; top-1 also needs the class right (a wrong class fails
  whatever the map, so the true class's map is the only one needed); at the paper's
  tau = 0.2 and at the calibrated tau of MaxBoxAcc;
- ``max_box_acc``: GT-known localisation at the best tau (IoU 0.5, the largest component);
- ``max_box_acc_v2``: IoU 0.3, 0.5, 0.7, each with its own best tau, every component's box;
- ``pxap``: pixel average precision against the exact object masks (body and head).

Conventions (``CONVENTIONS``): "max", the paper's words, tau x the RAW map's max (negative
values never pass); "minmax", tau on the map min-max normalised to [0, 1] (``to_heatmap``;
the box ``evaluate.py`` draws and the old table scored). The map is M_c of Eq. 2 upsampled
bilinearly to the 64 x 64 image, no ReLU. Thresholds k / 100, k = 0..99.

Baselines, scored the same way on the same splits (``baselines``): a fixed centred square
(its size chosen on the calibration split; the Chebyshev "centre prior" map, whose
thresholds give centred squares of every size), the whole image, and the exact head and
body boxes from the masks (oracle part boxes). Counts are integers out of ``n``.
"""
import numpy as np

from ..cam import class_activation_map
from ..localize import bbox_of_mask
from ..metrics import (IOU_THRESHOLDS, THRESHOLDS, best_ious, boxes_at_thresholds,
                       calibrated_box_acc, iou_matrix, max_box_acc, pxap)
from ..upsample import upsample_bilinear
from . import synthetic
from .evaluate import BATCH, images_to_x

__all__ = ["CALIBRATION_SEED", "CONVENTIONS", "PAPER_THRESHOLD", "class_maps", "score_maps", "score_net",
           "centre_prior", "baselines", "part_boxes"]

CALIBRATION_SEED = 2020          # Choe et al., CVPR 2020; not TRAIN_SEED (1512) nor TEST_SEED (4150)
CONVENTIONS = ("max", "minmax")  # the scale of ``numpy_cam.metrics``: raw map / its max, or min-max
PAPER_THRESHOLD = 0.2
PAPER = int(np.flatnonzero(THRESHOLDS == PAPER_THRESHOLD)[0])             # its column: 20
DELTA = 0.5                                                               # the paper's IoU


def class_maps(model, images, labels):
    """(predicted (N,) int64, maps (N, S, S) float32): M_c of the TRUE class, upsampled to the image."""
    n, size = len(images), images.shape[1]
    predicted, maps = np.empty(n, np.int64), np.empty((n, size, size), np.float32)
    for start in range(0, n, BATCH):
        part = slice(start, start + BATCH)
        f = model.features(images_to_x(images[part], model.preprocessing))            # (B, K, h, w)
        predicted[part] = model.classify(f).argmax(axis=1)
        cam = class_activation_map(f, model.fc_weight, labels[part])                  # (B, h, w)
        maps[part] = upsample_bilinear(cam, (size, size))                             # (B, S, S)
    return predicted, maps


def _count(mask):
    return int(np.count_nonzero(mask))


def _ious(maps, boxes, scale):
    """{"largest": (N, T), "all": (N, T)} best IoUs of the maps' boxes at every threshold."""
    return {kind: best_ious(maps, boxes, THRESHOLDS, kind, scale=scale) for kind in ("largest", "all")}


def score_maps(calibration, test, right=None, pixel_ap=None):
    """The record of one map source on one convention, from its IoU tables.

    calibration, test : ``{"largest": (N, T), "all": (N, T)}`` best IoUs (``best_ious``)
    right : (M,) bool, the test split's correct classifications, or None (a class-free baseline)
    pixel_ap : PxAP on the test split, or None

    Counts are of the M test images; thresholds are the calibration split's choices
    ("calibrated") or the test split's own ("oracle").
    """
    n, cal, tst = len(test["largest"]), calibration, test
    acc, tau = calibrated_box_acc(cal["largest"], tst["largest"], THRESHOLDS, (DELTA,))[1][0][1:]
    k = int(np.flatnonzero(THRESHOLDS == tau)[0])
    oracle_acc, oracle_tau = max_box_acc(tst["largest"], THRESHOLDS, DELTA)
    v2_cal = calibrated_box_acc(cal["all"], tst["all"], THRESHOLDS, IOU_THRESHOLDS)[1]
    v2_oracle = [(d, *max_box_acc(tst["all"], THRESHOLDS, d)) for d in IOU_THRESHOLDS]
    located = tst["largest"] >= DELTA                                     # (M, T)
    record = {"n": n,
              "gt_known_loc": {"paper": _count(located[:, PAPER]), "calibrated": [round(acc * n), tau],
                               "oracle": [round(oracle_acc * n), oracle_tau]},
              "max_box_acc_v2": {"calibrated": {str(d): [round(a * n), t] for d, a, t in v2_cal},
                                 "oracle": {str(d): [round(a * n), t] for d, a, t in v2_oracle}}}
    if right is not None:
        record["classification"] = _count(right)
        record["top1_loc"] = {"paper": _count(right & located[:, PAPER]), "calibrated": _count(right & located[:, k])}
    if pixel_ap is not None:
        record["pxap"] = pixel_ap
    return record


def score_net(model, calibration, test):
    """{"max": record, "minmax": record} of one net; calibration, test: the splits of ``splits``."""
    cal_maps = class_maps(model, calibration["images"], calibration["labels"])[1]
    predicted, test_maps = class_maps(model, test["images"], test["labels"])
    right = predicted == test["labels"]
    out = {}
    for scale in CONVENTIONS:
        out[scale] = score_maps(_ious(cal_maps, calibration["boxes"], scale), _ious(test_maps, test["boxes"], scale),
                                right, pxap(test_maps, test["masks"] > 0, scale=scale))
    return out


def splits(calibration_size, test_size, regime=synthetic.DEFAULT):
    """(calibration, test): dicts of images, labels, boxes, masks of the two seeded splits."""
    names = ("images", "labels", "boxes", "masks")
    calibration = synthetic.make_dataset(calibration_size, CALIBRATION_SEED, return_masks=True, regime=regime)
    test = synthetic.make_dataset(test_size, synthetic.TEST_SEED, return_masks=True, regime=regime)
    return dict(zip(names, calibration)), dict(zip(names, test))


def centre_prior(size):
    """(size, size) float64: minus the Chebyshev distance to the image centre. Its pixels above a
    threshold form a centred square, so its box at every threshold is a fixed centred box."""
    c = (size - 1) / 2
    y, x = np.mgrid[:size, :size]
    return -np.maximum(np.abs(x - c), np.abs(y - c))


def _fixed_box_ious(box_per_threshold, gt_boxes):
    """(N, T): the IoU of the same box list (one per threshold) with each image's true box."""
    boxes = np.array([found[0] for found in box_per_threshold])              # (T, 4)
    return iou_matrix(gt_boxes, boxes)                                       # (N, T)


def part_boxes(masks, part):
    """(N, 4) int64 exact boxes of the pixels equal to ``part`` (1 body, 2 head); -1 rows where absent."""
    out = np.full((len(masks), 4), -1, np.int64)
    for i, mask in enumerate(masks):
        box = bbox_of_mask(mask == part)
        if box is not None:
            out[i] = box
    return out


def _box_row(ious_vs_gt, n):
    """The record of one box per image, no threshold to choose: counts at each IoU threshold."""
    return {"n": n, "box_acc": {str(d): _count(ious_vs_gt >= d) for d in IOU_THRESHOLDS}}


def baselines(calibration, test):
    """The class-free baselines on the test split (the centred box's size from the calibration split)."""
    size, n = test["images"].shape[1], len(test["labels"])
    prior = centre_prior(size)
    squares = boxes_at_thresholds(prior, THRESHOLDS)                         # T lists of one centred box
    cal, tst = _fixed_box_ious(squares, calibration["boxes"]), _fixed_box_ious(squares, test["boxes"])
    prior_maps = np.broadcast_to(prior.astype(np.float32), test["masks"].shape)   # (M, S, S), a view
    objects = test["masks"] > 0
    out = {"centred_box": score_maps({"largest": cal, "all": cal}, {"largest": tst, "all": tst},
                                     pixel_ap=pxap(np.ascontiguousarray(prior_maps), objects))}
    whole = np.array([[0, 0, size - 1, size - 1]])
    out["whole_image"] = _box_row(iou_matrix(test["boxes"], whole)[:, 0], n)
    out["whole_image"]["pxap"] = float(objects.mean())                     # a constant map: the foreground share
    for name, part in (("head_box", 2), ("body_box", 1)):
        boxes = part_boxes(test["masks"], part)
        present = boxes[:, 0] >= 0
        ious = np.zeros(n)
        if present.any():
            ious[present] = [iou_matrix(g, b)[0, 0] for g, b in zip(test["boxes"][present], boxes[present])]
        out[name] = _box_row(ious, n)
        out[name]["present"] = _count(present)
    return out
