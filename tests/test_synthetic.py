"""numpy_cam.gap_gmp.synthetic: pinned bytes, determinism, exact inclusive boxes, the object's design
(size, head, contrasts), the data regimes, argument checks."""
import hashlib

import numpy as np
import pytest
from scipy import ndimage

from numpy_cam.localize import bbox_of_mask_loop
from numpy_cam.localize import bbox_of_mask, iou
from numpy_cam.gap_gmp.synthetic import CLASS_NAMES, DEFAULT, MIN_SIZE, NUM_CLASSES, REGIMES, Regime, make_dataset

# SHA-256 of images, labels, boxes (little-endian int64) and masks of make_dataset(6, 2016,
# return_masks=True), in that order. A change here changes every dataset: say so in the
# changelog and retrain the small models.
PINNED_SHA256 = "adb3f417907601cbea270a5ebbb2821a736245b49d05652ed7a2a2e897d293e3"
PINNED_BOXES = [[4, 24, 58, 62], [18, 8, 62, 31], [20, 5, 62, 31],
                [7, 5, 48, 61], [43, 2, 60, 33], [4, 21, 62, 51]]

N = 60                                               # ten images per class
IMAGES, LABELS, BOXES, MASKS = make_dataset(N, seed=7, return_masks=True)


def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------ determinism

def test_pinned_bytes():
    images, labels, boxes, masks = make_dataset(6, 2016, return_masks=True)
    assert boxes.tolist() == PINNED_BOXES
    assert digest(images, labels.astype("<i8"), boxes.astype("<i8"), masks) == PINNED_SHA256


def test_same_arguments_same_bytes():
    again = make_dataset(N, seed=7, return_masks=True)
    for first, second in zip((IMAGES, LABELS, BOXES, MASKS), again):
        assert first.tobytes() == second.tobytes()


def test_image_i_does_not_depend_on_n():
    few = make_dataset(5, seed=7)
    for first, second in zip(few, (IMAGES, LABELS, BOXES)):
        np.testing.assert_array_equal(first, second[:5])


def test_different_seeds_differ():
    a, _, boxes_a = make_dataset(6, seed=0)
    b, _, boxes_b = make_dataset(6, seed=1)
    assert all((a[i] != b[i]).mean() > 0.5 for i in range(6))      # every image, most pixels
    assert not np.array_equal(boxes_a, boxes_b)


def test_masks_are_optional_and_the_same():
    images, labels, boxes = make_dataset(4, seed=7)
    np.testing.assert_array_equal(images, IMAGES[:4])
    np.testing.assert_array_equal(boxes, BOXES[:4])


# ---------------------------------------------------------------------- shapes and labels

def test_shapes_and_dtypes():
    assert IMAGES.shape == (N, 64, 64, 3) and IMAGES.dtype == np.uint8
    assert LABELS.shape == (N,) and LABELS.dtype == np.int64
    assert BOXES.shape == (N, 4) and BOXES.dtype == np.int64
    assert MASKS.shape == (N, 64, 64) and MASKS.dtype == np.uint8
    images, _, boxes = make_dataset(2, seed=0, size=MIN_SIZE)
    assert images.shape == (2, MIN_SIZE, MIN_SIZE, 3) and boxes.max() < MIN_SIZE


def test_class_names():
    assert NUM_CLASSES == len(CLASS_NAMES) >= 5
    assert len(set(CLASS_NAMES)) == NUM_CLASSES and all(isinstance(c, str) and c for c in CLASS_NAMES)


def test_labels_cycle_and_are_balanced():
    np.testing.assert_array_equal(LABELS, np.arange(N) % NUM_CLASSES)
    assert np.bincount(LABELS, minlength=NUM_CLASSES).tolist() == [N // NUM_CLASSES] * NUM_CLASSES


def test_images_use_the_range():
    assert IMAGES.min() < 20 and IMAGES.max() > 235
    assert (MASKS == 0).any(axis=(1, 2)).all()                     # background in every image


# ------------------------------------------------------------------------- boxes and masks

def test_box_is_the_inclusive_box_of_the_mask():
    for mask, box in zip(MASKS, BOXES):
        assert tuple(box) == bbox_of_mask_loop(mask > 0)
        x0, y0, x1, y1 = box
        assert mask[y0, x0:x1 + 1].any() and mask[y1, x0:x1 + 1].any()   # inclusive: edges hold object
        assert mask[y0:y1 + 1, x0].any() and mask[y0:y1 + 1, x1].any()
        assert (mask > 0).sum() == (mask[y0:y1 + 1, x0:x1 + 1] > 0).sum()


def test_boxes_inside_the_image():
    x0, y0, x1, y1 = BOXES.T
    assert (0 <= x0).all() and (x0 <= x1).all() and (x1 < 64).all()
    assert (0 <= y0).all() and (y0 <= y1).all() and (y1 < 64).all()


def test_object_size_range():
    for size in (64, 96):
        _, _, boxes = make_dataset(N, seed=3, size=size)
        longer = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) + 1
        low, high = 0.45, 0.95                      # the object's longer side, of the image side
        assert (longer >= low * size - 2).all() and (longer <= high * size + 1).all()
        assert longer.min() < 0.6 * size and longer.max() > 0.8 * size     # the range is used


def test_head_inside_the_box_and_attached_to_the_body():
    for mask, box in zip(MASKS, BOXES):
        x0, y0, x1, y1 = box
        head, body = mask == 2, mask == 1
        assert 0 < head.sum() < 0.35 * (mask > 0).sum() and body.sum() > 0
        assert head[y0:y1 + 1, x0:x1 + 1].sum() == head.sum()
        assert ndimage.label(mask > 0, np.ones((3, 3)))[1] == 1           # one 8-connected object


def test_head_contrasts_with_body_and_background_and_texture_is_weak():
    against_background = []
    for image, mask in zip(IMAGES.astype(np.float64), MASKS):
        body, head = image[mask == 1], image[mask == 2]                    # (k, 3) each
        assert (np.abs(head.mean(0) - body.mean(0)) > 60).all()           # strong on every channel
        assert body.std(0).max() < 20                                     # texture +-12, noise +-10
        around = ndimage.binary_dilation(mask == 2, iterations=2) & (mask == 0)
        against_background.append(np.abs(head.mean(0) - image[around].mean(0)).max())
    assert np.median(against_background) > 120                         # the head stands out there too


def test_body_colour_does_not_give_the_class():
    images, labels, _, masks = make_dataset(600, seed=11, return_masks=True)
    colour = np.array([image[mask == 1].mean(0) for image, mask in zip(images, masks)])   # (600, 3)
    means = np.array([colour[labels == k].mean(0) for k in range(NUM_CLASSES)])           # (C, 3)
    assert np.abs(means - colour.mean(0)).max() < 15        # a class mean within 15 levels of the rest
    assert colour.std(0).min() > 40                         # while colours spread widely


# ------------------------------------------------------------------------------ arguments

@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0, "seed": 0}, r"n must be >= 1 .*got 0"),
    ({"n": -3, "seed": 0}, r"n must be >= 1 .*got -3"),
    ({"n": 2.5, "seed": 0}, r"n must be an integer >= 1; got 2.5"),
    ({"n": True, "seed": 0}, r"n must be an integer >= 1; got True"),
    ({"n": 2, "seed": -1}, r"seed must be >= 0 .*got -1"),
    ({"n": 2, "seed": 0, "size": MIN_SIZE - 1}, rf"size must be >= {MIN_SIZE} .*got {MIN_SIZE - 1}"),
    ({"n": 2, "seed": 0, "size": "64"}, r"size must be an integer >= 32; got '64'"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_dataset(**kwargs)


# -------------------------------------------------------------------------------- regimes

@pytest.mark.parametrize("regime", ["default", DEFAULT, Regime(), REGIMES["default"]])
def test_the_default_regime_is_the_pinned_data(regime):
    images, labels, boxes, masks = make_dataset(6, 2016, return_masks=True, regime=regime)
    assert digest(images, labels.astype("<i8"), boxes.astype("<i8"), masks) == PINNED_SHA256


def test_the_regimes_are_named_and_differ_from_the_default():
    assert {"default", "large_head", "small_object", "strong_texture", "textured", "textured_small",
            "textured_large"} <= set(REGIMES)
    assert len(set(REGIMES.values())) == len(REGIMES)
    default = make_dataset(6, 2016, regime="default")[0]
    for name in set(REGIMES) - {"default"}:
        assert not np.array_equal(make_dataset(6, 2016, regime=name)[0], default), name


def test_a_texture_regime_keeps_the_layout():
    """Only the texture's contrast differs: the same masks, boxes and pixels off the body."""
    weak = make_dataset(12, 5, return_masks=True)
    strong = make_dataset(12, 5, return_masks=True, regime="strong_texture")
    for a, b in zip(weak[1:], strong[1:]):
        np.testing.assert_array_equal(a, b)                                     # labels, boxes, masks
    body = weak[3] == 1
    np.testing.assert_array_equal(weak[0][~body], strong[0][~body])
    spread = [(image.astype(np.float64)[mask == 1].std(0).max()) for image, mask in zip(strong[0], strong[3])]
    assert min(spread) > 30                                                     # +-48 levels, against < 20


def _head_ious(masks, boxes):
    return np.array([iou(bbox_of_mask(m == 2), tuple(int(v) for v in b)) for m, b in zip(masks, boxes)])


def test_large_heads_alone_can_pass_iou_one_half():
    _, _, boxes, masks = make_dataset(N, seed=3, return_masks=True, regime="large_head")
    share = [(m == 2).sum() / (m > 0).sum() for m in masks]
    assert 0.5 < np.mean(_head_ious(masks, boxes) >= 0.5) < 0.95 and np.median(share) > 0.4
    assert not np.any(_head_ious(MASKS, BOXES) >= 0.5)                          # the default: never


def test_small_objects():
    _, _, boxes = make_dataset(N, seed=3, regime="small_object")
    longer = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) + 1
    assert (longer >= 0.25 * 64 - 2).all() and (longer <= 0.45 * 64 + 1).all()


@pytest.mark.parametrize("regime, low, high", [("textured", 0.25, 0.6), ("textured_small", 0.15, 0.3),
                                               ("textured_large", 0.6, 0.95)])
def test_textured_objects_have_no_head(regime, low, high):
    images, _, boxes, masks = make_dataset(N, seed=3, return_masks=True, regime=regime)
    assert not np.any(masks == 2) and all((m == 1).any() for m in masks)
    longer = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) + 1
    assert (longer >= low * 64 - 2).all() and (longer <= high * 64 + 1).all()
    assert longer.min() < (low + 0.05) * 64 and longer.max() > (high - 0.05) * 64       # the range is used


@pytest.mark.parametrize("regime, error, message", [
    ("huge_head", ValueError, r"regime must be one of \['default', .*\] or a Regime; got 'huge_head'"),
    ({"head_radius": (0.1, 0.2)}, TypeError, r"regime must be a Regime or a name in .*; got dict"),
    (Regime(object_size=(0.6, 0.4)), ValueError, r"regime.object_size must be \(low, high\) with 0.1 <= low"),
    (Regime(object_size=(0.5, 1.2)), ValueError, r"regime.object_size .*got \(0.5, 1.2\)"),
    (Regime(head_radius=(0.0, 0.2)), ValueError, r"regime.head_radius must be \(low, high\) with 0.01"),
    (Regime(texture_contrast=300.0), ValueError, r"regime.texture_contrast must be within \[0, 255\]"),
])
def test_bad_regimes(regime, error, message):
    with pytest.raises(error, match=message):
        make_dataset(2, 0, regime=regime)
