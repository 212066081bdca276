"""PxAP: pixel average precision of a map against an exact mask (Choe et al., CVPR 2020, Sec. 4).

Each pixel is a detection with score s (the map scaled to [0, 1]); at threshold tau the pixels
with s >= tau are called foreground. Pooled over every pixel of every image (not averaged per
image), against the true masks:

    PxPrec(tau) = |{s >= tau} & mask| / |{s >= tau}|,   PxRec(tau) = |{s >= tau} & mask| / |mask|
    PxAP = sum_k PxPrec(tau_k) (PxRec(tau_k) - PxRec(tau_{k+1})),  tau_0 < tau_1 < ... (Riemann sum)

over the sweep's thresholds and 1.0 (the pixels at the peak), with PxRec = 0 above the last;
a threshold that no pixel reaches adds nothing. This is wsolevaluation's ``MaskEvaluator``
(``evaluation.py``): its histogram bins [tau_k, tau_{k+1}), ..., [1, 2), [2, 3) count the same
pixels (note ``>=`` here where its boxes use ``>``), and pixels marked "ignore" count as neither.
It reports percent; this module reports fractions.
"""
import numpy as np

from .._checks import check_array, check_choice
from .boxes import SCALES, THRESHOLDS, _check_thresholds, _scale

__all__ = ["pixel_precision_recall", "pxap"]


def _scores(heatmap, scale):
    values = heatmap.astype(np.float64, copy=False)                      # (H, W)
    lo, span = _scale(values, scale, "heatmaps")
    if span <= 0:                                                        # constant, or max <= 0
        return np.zeros_like(values)                                     # wsolevaluation's normalize_scoremap
    return np.clip((values - lo) / span, 0.0, 1.0)                       # (H, W)


def pixel_precision_recall(heatmaps, masks, thresholds=THRESHOLDS, ignore=None, scale="minmax"):
    """The pooled pixel precision-recall curve, at ``thresholds`` and 1.0.

    Parameters
    ----------
    heatmaps : ndarray of shape (N, H, W), real, finite -- the true class's maps
    masks : ndarray of shape (N, H, W), bool -- the exact object masks
    thresholds : increasing values in [0, 1]
    ignore : None or ndarray of shape (N, H, W), bool -- pixels that count as neither
    scale : "minmax" (default, wsolevaluation's), "max" or "none" (maps already in [0, 1])

    Returns
    -------
    taus : (K,) float64, the operating points (``thresholds``, then 1.0 if not among them)
    precision : (K,) float64, NaN where no pixel reaches tau
    recall : (K,) float64
    """
    check_array("heatmaps", heatmaps, "(N, H, W)", kinds="fiu", nonempty=True, finite=True)
    check_array("masks", masks, "(N, H, W)", kinds="b")
    if masks.shape != heatmaps.shape:
        raise ValueError(f"masks must have the shape of heatmaps, {heatmaps.shape}; got {masks.shape}")
    if ignore is not None:
        check_array("ignore", ignore, "(N, H, W)", kinds="b")
        if ignore.shape != heatmaps.shape:
            raise ValueError(f"ignore must have the shape of heatmaps, {heatmaps.shape}; got {ignore.shape}")
        if np.any(ignore & masks):
            raise ValueError("ignore and masks must not overlap: an ignored pixel is neither foreground nor background")
    check_choice("scale", scale, SCALES)
    taus = _check_thresholds(thresholds)
    if taus[-1] < 1.0:
        taus = np.append(taus, 1.0)                                      # (K,)
    tp, fp, positives = np.zeros(len(taus)), np.zeros(len(taus)), 0      # pixels with s >= tau
    for i, heatmap in enumerate(heatmaps):
        s = _scores(heatmap, scale)                                      # (H, W)
        keep = np.ones(s.shape, bool) if ignore is None else ~ignore[i]
        on, off = s[masks[i] & keep], s[~masks[i] & keep]                # (P,), (Q,) scores
        tp += on.size - np.searchsorted(np.sort(on), taus, side="left")
        fp += off.size - np.searchsorted(np.sort(off), taus, side="left")
        positives += on.size
    if positives == 0:
        raise ValueError("masks must hold at least one foreground pixel (outside ignore) to measure recall")
    if not np.any(tp + fp):
        raise ValueError("no pixel reaches any threshold: precision is undefined everywhere")
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)                                       # (K,)
    return taus, precision, tp / positives


def pxap(heatmaps, masks, thresholds=THRESHOLDS, ignore=None, scale="minmax"):
    """PxAP, a fraction in [0, 1]: the area under ``pixel_precision_recall``'s curve (see above).

    A perfect map (1 on the mask, 0 elsewhere) gives 1.0; a constant map gives the share of
    foreground pixels.
    """
    _, precision, recall = pixel_precision_recall(heatmaps, masks, thresholds, ignore, scale)
    steps = recall - np.append(recall[1:], 0.0)                          # (K,) recall gained at tau_k
    return float(np.sum(np.where(steps > 0, precision, 0.0) * steps))
