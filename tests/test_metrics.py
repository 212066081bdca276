"""numpy_cam.metrics: wsolevaluation's own unit-test numbers, hand-built cases, bad input.

The "published" tests reproduce clovaai/wsolevaluation's ``evaluation_test.py`` (same inputs,
same expected outputs, options set to its conventions). Its mask tests read five PNG masks of
its ``test_data/``; only their pixel counts matter for the maps it tests (perfect and constant),
so the masks here are built with the same counts (224 x 224 after its resize: mask 0: 43031
foreground, 7145 background; mask 1: 833, 49343; mask 2: 347, 13910 and 35919 ignored; one
all-background, one all-foreground). Its expected values are written with 49342 and 13909
background pixels; the 0.1-point tolerance it uses covers the one-pixel difference.
"""
import numpy as np
import pytest
from scipy import ndimage

from numpy_cam import metrics
from numpy_cam.localize import iou, localize

WSOL = {**metrics.WSOLEVALUATION, "scale": "none"}     # its unit tests feed maps already in [0, 1]
UNIMODAL = np.array([[0.0, 0.0, 0.0, 0.0, 0.0],
                     [0.0, 0.4, 0.4, 0.4, 0.6],
                     [0.0, 0.4, 1.0, 0.8, 0.6],
                     [0.0, 0.4, 0.4, 0.4, 0.6]])
MULTIMODAL = np.array([[0.4, 0.0, 0.2, 0.2, 0.2],
                       [0.4, 0.4, 0.0, 0.4, 0.0],
                       [0.0, 0.0, 0.0, 0.4, 0.0],
                       [1.0, 0.6, 0.8, 0.2, 0.2]])


# ------------------------------------------------------------------ wsolevaluation's published tests

def test_published_iou_of_degenerate_zero_boxes_is_one():
    ious = metrics.iou_matrix(np.zeros((3, 4), int), np.zeros((5, 4), int))
    assert ious.dtype == np.float64 and ious.shape == (3, 5) and np.all(ious == 1.0)


def test_published_iou_refuses_a_box_against_the_convention():
    with pytest.raises(ValueError, match=r"0 <= x0 <= x1 and 0 <= y0 <= y1; got \[\[1, 1, 0, 0\]\]"):
        metrics.iou_matrix(np.array([[1, 1, 0, 0]]), np.array([[1, 1, 2, 2]]))


def test_published_iou_eye_and_realistic_values():
    boxes = np.array([[1, 1, 3, 3], [4, 4, 5, 5]])
    assert np.array_equal(metrics.iou_matrix(boxes, boxes), np.eye(2))
    assert metrics.iou_matrix([[1, 2, 5, 6]], [[3, 1, 4, 5]])[0, 0] == pytest.approx(8 / 27, abs=1e-6)


def test_published_resize_box():
    assert metrics.resize_box((1, 2, 4, 3), (10, 20), (35, 10)) == (3, 1, 14, 1)
    assert metrics.resize_box((1, 2, 1, 2), (3, 3), (3, 3)) == (1, 2, 1, 2)


@pytest.mark.parametrize("scoremap, expected", [
    (np.zeros((3, 3)), [(0, 0, 0, 0)] * 5),
    (UNIMODAL, [(1, 1, 4, 3), (1, 1, 4, 3), (2, 1, 4, 3), (2, 2, 4, 3), (2, 2, 3, 3)]),
    (MULTIMODAL, [(0, 0, 4, 3), (0, 0, 2, 2), (0, 3, 3, 3), (2, 3, 3, 3), (0, 3, 1, 3)]),
], ids=["degenerate", "unimodal", "multimodal"])
def test_published_boxes_from_scoremaps(scoremap, expected):
    boxes = metrics.boxes_at_thresholds(scoremap, np.arange(0, 1, 0.2), **WSOL)
    assert [b[0] for b in boxes] == expected


def test_published_boxes_refuse_nan():
    with pytest.raises(ValueError, match="heatmap must be finite; got 9 NaN"):
        metrics.boxes_at_thresholds(np.full((3, 3), np.nan), np.arange(0, 1, 0.2), **WSOL)


def _counted_mask(foreground, background, ignored=0):
    """(1, 224, 224) mask and ignore with the given pixel counts (their layout does not matter here)."""
    assert foreground + background + ignored == 224 * 224
    index = np.arange(224 * 224).reshape(1, 224, 224)
    return index < foreground, (index >= foreground) & (index < foreground + ignored)


MASKS = {0: ((43031, 7145, 0), 43031 / (43031 + 7145)),
         1: ((833, 49343, 0), 833 / (833 + 49342)),
         2: ((347, 13910, 35919), 347 / (347 + 13909))}


@pytest.mark.parametrize("k", sorted(MASKS))
@pytest.mark.parametrize("ignore_score", [0.0, 1.0])
def test_published_pxap_of_a_perfect_map_is_one(k, ignore_score):
    mask, ignore = _counted_mask(*MASKS[k][0])
    scoremap = np.where(ignore, ignore_score, mask.astype(float))
    assert metrics.pxap(scoremap, mask, metrics.wsol_thresholds(0.01), ignore, scale="none") == 1.0


@pytest.mark.parametrize("k", sorted(MASKS))
@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_published_pxap_of_a_constant_map_is_the_foreground_share(k, value):
    (fg, bg, ignored), published = MASKS[k]
    mask, ignore = _counted_mask(fg, bg, ignored)
    ap = metrics.pxap(np.full(mask.shape, value), mask, metrics.wsol_thresholds(0.01), ignore, scale="none")
    assert ap == pytest.approx(fg / (fg + bg), abs=1e-12)
    assert abs(100 * ap - 100 * published) < 0.1                       # its assertAlmostEqual(delta=0.1)


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_published_pxap_all_background_raises_all_foreground_is_one(value):
    empty, full = np.zeros((1, 224, 224), bool), np.ones((1, 224, 224), bool)
    scoremap = np.full(empty.shape, value)
    with pytest.raises(ValueError, match="at least one foreground pixel"):
        metrics.pxap(scoremap, empty, metrics.wsol_thresholds(0.01), scale="none")
    assert metrics.pxap(scoremap, full, metrics.wsol_thresholds(0.01), scale="none") == 1.0


def test_published_pxap_refuses_nan():
    with pytest.raises(ValueError, match="heatmaps must be finite"):
        metrics.pxap(np.full((1, 4, 4), np.nan), np.ones((1, 4, 4), bool))


# ------------------------------------------------------------------ where the two conventions part

def test_the_project_convention_on_the_published_multimodal_map():
    boxes = metrics.boxes_at_thresholds(MULTIMODAL, np.arange(0, 1, 0.2), scale="none")
    # 0.2: the 5-pixel diagonal strip (contour area 0) beats the 3-pixel L (area 0.5) by pixels;
    # 0.6: two single pixels, the first in row-major order wins; inclusive ends, no + 1
    assert [b[0] for b in boxes] == [(0, 0, 4, 3), (0, 1, 3, 3), (0, 3, 2, 3), (0, 3, 0, 3), (0, 3, 0, 3)]


def test_box_end_past_adds_a_column_and_a_row_unless_at_the_edge():
    last = metrics.boxes_at_thresholds(UNIMODAL, [0.8], scale="none")
    past = metrics.boxes_at_thresholds(UNIMODAL, [0.8], scale="none", box_end="past")
    edge = metrics.boxes_at_thresholds(UNIMODAL, [0.5], scale="none", box_end="past")
    assert last == [[(2, 2, 2, 2)]] and past == [[(2, 2, 3, 3)]] and edge == [[(2, 1, 4, 3)]]


def test_quantisation_drops_a_value_just_above_the_threshold():
    heatmap = np.array([[0.0, 0.603, 1.0]])                           # uint8: 0, 153, 255
    assert metrics.masks_at_thresholds(heatmap, [0.6], scale="none").tolist() == [[[False, True, True]]]
    assert metrics.masks_at_thresholds(heatmap, [0.6], scale="none", quantize=True).tolist() == [
        [[False, False, True]]]                                        # 153 > int(0.6 * 255) = 153: no


def test_the_threshold_is_strict_and_minmax_shifts_it():
    heatmap = np.array([[1.0, 2.0, 3.0]])                              # minmax: 0, 0.5, 1; max: 1/3, 2/3, 1
    assert metrics.masks_at_thresholds(heatmap, [0.49, 0.5]).tolist() == [[[False, True, True]],
                                                                           [[False, False, True]]]
    assert metrics.masks_at_thresholds(heatmap, [0.3], scale="max").tolist() == [[[True, True, True]]]


def test_scale_max_reproduces_localize_exactly():
    rng = np.random.default_rng(0)
    maps = ndimage.gaussian_filter(rng.normal(size=(40, 24, 20)), (0, 2, 2))   # (40, 24, 20), signed
    gt = np.array([[3, 4, 15, 18]] * 40)
    ious = metrics.best_ious(maps, gt, [0.2], scale="max")
    expected = [0.0 if localize(m) is None else iou(localize(m), (3, 4, 15, 18)) for m in maps]
    assert ious[:, 0].tolist() == expected
    assert metrics.gt_known_localization(maps, gt) == np.mean(np.array(expected) >= 0.5)


# ------------------------------------------------------------------ the contour rule

@pytest.mark.parametrize("pixels, area", [
    ([(0, 0)], 0.0), ([(0, 0), (0, 1), (0, 2)], 0.0), ([(0, 0), (1, 1), (2, 2)], 0.0),
    ([(0, 0), (0, 1), (1, 0), (1, 1)], 1.0), ([(0, 0), (1, 0), (1, 1)], 0.5),
    ([(y, x) for y in range(3) for x in range(4)], 6.0),
    ([(y, x) for y in range(3) for x in range(3) if (y, x) != (1, 1)], 4.0),      # a ring: the hole counts
])
def test_contour_area_by_hand(pixels, area):
    mask = np.zeros((5, 6), bool)
    mask[tuple(np.array(pixels).T)] = True
    assert metrics.contour_area(mask) == area


def test_largest_by_contour_area_ties_go_to_the_last_component():
    mask = np.zeros((4, 5), bool)
    mask[0, 1] = mask[3, 0] = mask[2, 4] = True                        # three pixels, area 0 each
    assert np.argwhere(metrics.largest_by_contour_area(mask)).tolist() == [[3, 0]]
    assert not metrics.largest_by_contour_area(np.zeros((3, 3), bool)).any()


def _cv2_boxes(cv2, scoremap, thresholds, every):
    """wsolevaluation's box rule, stated with OpenCV: threshold the uint8 map, trace, box."""
    height, width = scoremap.shape
    gray = (scoremap * 255).astype(np.uint8)
    out = []
    for tau in thresholds:
        binary = np.where(gray > int(tau * gray.max()), 255, 0).astype(np.uint8)
        contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        if not every and contours:
            contours = [max(contours, key=cv2.contourArea)]
        rects = [cv2.boundingRect(c) for c in contours]
        out.append(sorted((x, y, min(x + w, width - 1), min(y + h, height - 1)) for x, y, w, h in rects)
                   or [(0, 0, 0, 0)])
    return out


def test_the_contour_rule_matches_opencv_on_random_maps():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(2)
    thresholds = metrics.wsol_thresholds(0.1)
    for _ in range(60):
        shape = tuple(int(v) for v in rng.integers(4, 30, 2))
        s = ndimage.gaussian_filter(rng.random(shape), rng.uniform(0.5, 3))
        s = (s - s.min()) / (s.max() - s.min())
        for every in (False, True):
            ours = metrics.boxes_at_thresholds(s, thresholds, "all" if every else "largest", **WSOL)
            assert [sorted(b) for b in ours] == _cv2_boxes(cv2, s, thresholds, every)
        labels, n = ndimage.label(s > 0.5, np.ones((3, 3)))
        for k in range(1, n + 1):
            contour = cv2.findContours((labels == k).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
            assert metrics.contour_area(labels == k) == cv2.contourArea(contour[0])


# ------------------------------------------------------------------ hand-built metric cases

def _blob_map(shape, *boxes):
    """A map with value v on each inclusive box (x0, y0, x1, y1, v), 0 elsewhere: (1, H, W)."""
    heatmap = np.zeros(shape)
    for x0, y0, x1, y1, v in boxes:
        heatmap[y0:y1 + 1, x0:x1 + 1] = v
    return heatmap[None]


def test_exact_box_one_pixel_off_and_empty_map():
    gt = np.array([[2, 2, 5, 5]])
    assert metrics.best_ious(_blob_map((10, 10), (2, 2, 5, 5, 1.0)), gt, [0.5]).tolist() == [[1.0]]
    assert metrics.best_ious(_blob_map((10, 10), (2, 2, 5, 6, 1.0)), gt, [0.5]).tolist() == [[16 / 20]]
    assert metrics.best_ious(np.zeros((1, 10, 10)), gt, [0.5]).tolist() == [[0.0]]
    # wsolevaluation: no pixel -> the box (0, 0, 0, 0), which scores as the top-left pixel
    assert metrics.best_ious(np.zeros((1, 10, 10)), [[(0, 0, 1, 1)]], [0.5], **metrics.WSOLEVALUATION
                             ).tolist() == [[0.25]]


def test_every_component_and_several_true_boxes():
    heatmap = _blob_map((12, 12), (0, 0, 3, 3, 1.0), (8, 8, 10, 10, 0.9))   # 16 and 9 pixels
    gt = [[(8, 8, 10, 10), (0, 6, 1, 7)]]
    assert metrics.best_ious(heatmap, gt, [0.5]).tolist() == [[0.0]]          # the largest: top-left
    assert metrics.best_ious(heatmap, gt, [0.5], boxes="all").tolist() == [[1.0]]
    assert metrics.best_ious(heatmap, gt, [0.95], boxes="all").tolist() == [[0.0]]   # 0.9 below


def test_max_box_acc_v2_and_calibration_on_a_table_of_ious():
    ious = np.array([[0.2, 0.6, 0.8], [0.4, 0.55, 0.3]])
    thresholds = [0.1, 0.2, 0.3]
    assert metrics.box_accuracy(ious, 0.5).tolist() == [0.0, 1.0, 0.5]
    assert metrics.max_box_acc(ious, thresholds) == (1.0, 0.2)
    value, rows = metrics.max_box_acc_v2(ious, thresholds)
    assert rows == [(0.3, 1.0, 0.2), (0.5, 1.0, 0.2), (0.7, 0.5, 0.3)] and value == pytest.approx(2.5 / 3)
    test = np.array([[0.9, 0.1, 0.1], [0.9, 0.1, 0.6]])
    assert metrics.calibrated_box_acc(ious, test, thresholds) == (0.0, [(0.5, 0.0, 0.2)])
    assert metrics.max_box_acc(test, thresholds) == (1.0, 0.1)              # the oracle on test


def test_top1_needs_the_right_class_and_the_box():
    maps = np.concatenate([_blob_map((8, 8), (1, 1, 4, 4, 1.0))] * 3)     # (3, 8, 8)
    gt = np.array([[1, 1, 4, 4], [1, 1, 4, 4], [5, 5, 7, 7]])
    assert metrics.gt_known_localization(maps, gt) == pytest.approx(2 / 3)
    assert metrics.top1_localization(maps, np.array([0, 1, 2]), np.array([0, 2, 2]), gt) == pytest.approx(1 / 3)


def test_pxap_by_hand():
    heatmap = np.array([[[0.9, 0.8, 0.3, 0.1]]])
    mask = np.array([[[True, False, True, False]]])
    # descending: {0.9} P 1 R 1/2; {0.9, 0.8} P 1/2 R 1/2; + 0.3: P 2/3 R 1; + 0.1: P 1/2 R 1
    assert metrics.pxap(heatmap, mask, scale="none") == pytest.approx(1 / 2 + 2 / 3 / 2, abs=1e-15)
    ignore = np.array([[[False, True, False, False]]])                    # the 0.8 counts as neither
    assert metrics.pxap(heatmap, mask, ignore=ignore, scale="none") == pytest.approx(1.0, abs=1e-15)
    taus, precision, recall = metrics.pixel_precision_recall(heatmap, mask, [0.0, 0.5, 0.95], scale="none")
    assert taus.tolist() == [0.0, 0.5, 0.95, 1.0] and recall.tolist() == [1.0, 0.5, 0.0, 0.0]
    assert precision[:2].tolist() == [0.5, 0.5] and np.isnan(precision[2:]).all()


def test_pxap_pools_pixels_over_images_and_minmax_scales_each():
    heatmaps = np.array([[[4.0, 2.0]], [[3.0, 1.0]]])                    # minmax: [1, 0] twice
    masks = np.array([[[False, True]], [[True, False]]])
    # minmax: at 1 one hit, one miss (P 1/2, R 1/2), then all (P 1/2, R 1)
    assert metrics.pxap(heatmaps, masks) == 0.5
    # max: [1, 1/2], [1, 1/3]: at 1 P 1/2 R 1/2; from 1/2 down the other hit: P 2/3, R 1
    assert metrics.pxap(heatmaps, masks, scale="max") == pytest.approx(1 / 4 + 1 / 3, abs=1e-15)


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("call, error, message", [
    (lambda: metrics.best_ious(np.zeros((4, 4)), [[0, 0, 1, 1]]), ValueError, r"heatmaps must have shape \(N, H, W\)"),
    (lambda: metrics.best_ious(np.zeros((2, 4, 4)), [[0, 0, 1, 1]]), ValueError, "one entry per map, 2; got 1"),
    (lambda: metrics.best_ious(np.zeros((1, 4, 4)), [[(2, 0, 1, 1)]]), ValueError, "x0 <= x1"),
    (lambda: metrics.best_ious(np.zeros((1, 4, 4)), [[(0, 0, 4, 1)]]), ValueError, r"within the \(H, W\) = \(4, 4\)"),
    (lambda: metrics.best_ious(np.zeros((1, 4, 4)), [[(0.0, 0, 1, 1)]]), TypeError, "integer boxes"),
    (lambda: metrics.best_ious(np.zeros((1, 4, 4)), [[(0, 0, 1)]]), ValueError, r"shape \(K, 4\)"),
    (lambda: metrics.best_ious(np.zeros((1, 4, 4)), [[0, 0, 1, 1]], [0.5, 0.2]), ValueError, "increase strictly"),
    (lambda: metrics.best_ious(np.zeros((1, 4, 4)), [[0, 0, 1, 1]], [50]), ValueError, r"within \[0, 1\]"),
    (lambda: metrics.best_ious(np.zeros((1, 4, 4)), [[0, 0, 1, 1]], rule="cv2"), ValueError, "rule must be"),
    (lambda: metrics.best_ious(np.zeros((1, 4, 4)), [[0, 0, 1, 1]], boxes="max"), ValueError, "boxes must be"),
    (lambda: metrics.masks_at_thresholds(np.ones((2, 2)), quantize="yes"), TypeError, "quantize must be True"),
    (lambda: metrics.masks_at_thresholds(np.full((2, 2), 2.0), scale="none"), ValueError, r"within \[0, 1\]"),
    (lambda: metrics.box_accuracy(np.zeros((2, 3)), 50), ValueError, r"\(0.5, not 50\)"),
    (lambda: metrics.max_box_acc(np.zeros((2, 3)), [0.1, 0.2]), ValueError, "one value per column of ious, 3"),
    (lambda: metrics.pxap(np.zeros((1, 2, 2)), np.zeros((1, 2, 2))), TypeError, "masks must have dtype bool"),
    (lambda: metrics.pxap(np.zeros((1, 2, 2)), np.zeros((1, 2, 3), bool)), ValueError, "shape of heatmaps"),
    (lambda: metrics.pxap(np.zeros((1, 1, 2)), np.array([[[True, False]]]), ignore=np.array([[[True, False]]])),
     ValueError, "must not overlap"),
    (lambda: metrics.top1_localization(np.zeros((2, 4, 4)), np.array([0]), np.array([0, 1]), [[0, 0, 1, 1]] * 2),
     ValueError, r"predicted must have shape \(2,\)"),
    (lambda: metrics.wsol_thresholds(0), ValueError, r"interval must be a number in \(0, 1\]"),
    (lambda: metrics.wsol_thresholds("0.1"), TypeError, r"interval must be a number in \(0, 1\]; got '0.1'"),
    (lambda: metrics.box_accuracy(np.zeros((2, 3)), None), TypeError, r"iou_threshold must be a number"),
    (lambda: metrics.best_ious(np.zeros((1, 4, 4)), [[0, 0, 1, 1]], scal="max"), TypeError,
     r"options are scale, quantize, rule, connectivity, box_end, empty_box; got 'scal'"),
    (lambda: metrics.boxes_at_thresholds(np.ones((2, 2)), quantize=1), TypeError, "quantize must be True or False"),
    (lambda: metrics.gt_known_localization(np.zeros((1, 4, 4)), [[0, 0, 1, 1]], threshold=20), ValueError,
     "threshold must be between 0 and 1; got 20"),
    (lambda: metrics.top1_localization(np.zeros((1, 4, 4)), np.array([0]), np.array([0]), [[0, 0, 1, 1]],
                                       threshold="0.2"), TypeError, "threshold must be a number"),
    (lambda: metrics.resize_box((0, 0, 1, 1), (10, 10, 3), (5, 5)), ValueError,
     r"image_size must be \(W, H\), 2 integers >= 1; got 3 values"),
    (lambda: metrics.resize_box((0, 0, 1, 1), (10, 10), 5), TypeError, r"resize_size must be \(W, H\)"),
    (lambda: metrics.contour_area(np.zeros((2, 2), np.uint8)), TypeError, "component must have dtype bool"),
    (lambda: metrics.contour_area(np.eye(3, dtype=bool)[None]), ValueError, r"component must have shape \(H, W\)"),
    (lambda: metrics.contour_area(np.array([[True, False, True]])), ValueError,
     "one 8-connected component .*; got 2 components"),
    (lambda: metrics.largest_by_contour_area([[True]]), TypeError, "mask must be a NumPy array"),
    (lambda: metrics.largest_by_contour_area(np.zeros(3, bool)), ValueError, r"mask must have shape \(H, W\)"),
])
def test_bad_input_says_what_was_wrong(call, error, message):
    with pytest.raises(error, match=message):
        call()
