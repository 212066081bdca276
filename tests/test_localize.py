"""numpy_cam.localize: exact boxes on hand-built masks and maps, the tie rule, the edges,
IoU by hand, the loop twins."""
import doctest

import numpy as np
import pytest

from numpy_cam import localize as loc
from numpy_cam.localize import (bbox_of_mask, bbox_of_mask_loop, iou, iou_loop, largest_component,
                                largest_component_loop, localize, threshold_mask)

RNG = np.random.default_rng(2016)


def mask_of(rows):
    """A bool mask from strings of '.' and '#' (one string per row y)."""
    return np.array([[c == "#" for c in row] for row in rows])


# A diagonal line: one 8-connected component of 4 pixels, four 4-connected single pixels.
# An L of 3 pixels: one component either way.
DIAGONAL_VS_L = mask_of([
    "#.......",
    ".#......",
    "..#.....",
    "...#....",
    "......##",
    "......#.",
])


# ---------------------------------------------------------------- components and their boxes

def test_connectivity_changes_the_largest_component():
    assert bbox_of_mask(largest_component(DIAGONAL_VS_L, 8)) == (0, 0, 3, 3)
    assert bbox_of_mask(largest_component(DIAGONAL_VS_L, 4)) == (6, 4, 7, 5)
    assert bbox_of_mask(largest_component(DIAGONAL_VS_L)) == (0, 0, 3, 3)      # default: 8
    assert largest_component(DIAGONAL_VS_L, 8).sum() == 4
    assert largest_component(DIAGONAL_VS_L, 4).sum() == 3


def test_connectivity_through_localize():
    heat = DIAGONAL_VS_L * 1.0
    assert localize(heat) == (0, 0, 3, 3)
    assert localize(heat, connectivity=4) == (6, 4, 7, 5)


def test_tie_goes_to_the_first_pixel_in_row_major_order():
    # both components have 2 pixels; the right one starts on row 0, the left one on row 1
    mask = mask_of([
        "....##",
        "##....",
    ])
    for largest in (largest_component, largest_component_loop):
        for connectivity in (4, 8):
            assert bbox_of_mask(largest(mask, connectivity)) == (4, 0, 5, 0)
    # on the same row, the one further left starts first
    mask = mask_of(["##.##", "....."])
    assert bbox_of_mask(largest_component(mask)) == (0, 0, 1, 0)


def test_empty_mask():
    empty = np.zeros((4, 5), bool)
    for largest in (largest_component, largest_component_loop):
        out = largest(empty)
        assert out.shape == (4, 5) and out.dtype == bool and not out.any()
    assert bbox_of_mask(empty) is None and bbox_of_mask_loop(empty) is None
    assert localize(np.zeros((4, 5))) is None


def test_single_pixel_and_whole_image():
    one = np.zeros((4, 6), bool)
    one[2, 3] = True                                                    # y = 2, x = 3
    assert bbox_of_mask(largest_component(one)) == (3, 2, 3, 2)
    assert bbox_of_mask_loop(one) == (3, 2, 3, 2)
    full = np.ones((4, 6), bool)
    for connectivity in (4, 8):
        assert bbox_of_mask(largest_component(full, connectivity)) == (0, 0, 5, 3)
    assert localize(np.ones((4, 6))) == (0, 0, 5, 3)


def test_box_holds_python_ints():
    box = bbox_of_mask(DIAGONAL_VS_L)
    assert box == (0, 0, 7, 5) and all(type(v) is int for v in box)


def test_mask_and_connectivity_are_checked():
    with pytest.raises(ValueError, match="connectivity must be 4 or 8; got 6"):
        largest_component(DIAGONAL_VS_L, 6)
    with pytest.raises(ValueError, match="connectivity must be 4 or 8"):
        largest_component_loop(DIAGONAL_VS_L, True)
    with pytest.raises(ValueError, match=r"mask must have shape \(H, W\); got \(2, 3, 4\)"):
        bbox_of_mask(np.zeros((2, 3, 4), bool))
    with pytest.raises(TypeError, match=r"mask must be a NumPy array of shape \(H, W\); got list"):
        largest_component([[True]])
    with pytest.raises(TypeError, match=r"mask must have dtype float, int or bool; got <U1"):
        bbox_of_mask_loop(np.array([["a"]]))


# ------------------------------------------------------------------------------- threshold

HEAT = np.array([
    [0, 1, 0, 0, 0, 0],
    [0, 2, 3, 0, 0, 0],
    [0, 0, 10, 8, 0, 0],
    [0, 0, 6, 0, 0, 1.5],
    [4, 0, 0, 0, 0, 2.5],
])                                                                      # max 10


def test_threshold_paper_value():
    # 20% of 10 is 2: the 2 at (x=1, y=1) is not above it; 3, 10, 8, 6 form the largest
    # component (4 pixels), 4 and 2.5 stand alone
    mask = threshold_mask(HEAT)
    assert mask.sum() == 6 and not mask[1, 1] and mask[1, 2] and mask[4, 5]
    assert localize(HEAT) == (2, 1, 3, 3)
    assert localize(HEAT, 0.2, connectivity=4) == (2, 1, 3, 3)


def test_threshold_other_values():
    assert localize(HEAT, 0.5) == (2, 2, 3, 3)                          # > 5: 10, 8, 6
    # > 0.5: the 1 and the 2 join the top component (6 pixels); 1.5 and 2.5 make a pair
    assert localize(HEAT, 0.05) == (1, 0, 3, 3)
    assert threshold_mask(HEAT, 0.05).sum() == 9
    assert localize(HEAT, 0.0) == (1, 0, 3, 3)                          # the positive pixels
    assert localize(HEAT, 1.0) is None                                  # nothing is above the max


def test_threshold_is_strict_at_the_boundary():
    heat = np.array([[4.0, 2.0], [1.0, 0.0]])
    np.testing.assert_array_equal(threshold_mask(heat, 0.5), [[True, False], [False, False]])
    np.testing.assert_array_equal(threshold_mask(heat, 0.49), [[True, True], [False, False]])
    heat32 = heat.astype(np.float32)
    np.testing.assert_array_equal(threshold_mask(heat32, 0.5), [[True, False], [False, False]])


@pytest.mark.parametrize("bad, error", [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                                        ("high", TypeError), (None, TypeError), (True, TypeError)])
def test_threshold_outside_unit_interval_is_refused(bad, error):
    with pytest.raises(error, match=r"threshold must be (a number )?between 0 and 1; got " + repr(bad)[:4]):
        threshold_mask(HEAT, bad)
    with pytest.raises(error, match=r"threshold must be (a number )?between 0 and 1"):
        localize(HEAT, bad)


def test_constant_and_non_positive_maps():
    const = np.full((3, 4), 7.0)
    assert threshold_mask(const).all()
    assert localize(const) == (0, 0, 3, 2)
    assert localize(const, 1.0) is None
    for heat in (np.zeros((3, 4)), np.full((3, 4), -2.0), -1.0 - RNG.random((5, 6)),
                 -RNG.random((5, 6)).astype(np.float32)):
        mask = threshold_mask(heat)
        assert mask.dtype == bool and not mask.any()
        assert localize(heat) is None


def test_map_is_checked_and_not_mutated():
    with pytest.raises(ValueError, match="heatmap must be finite"):
        localize(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match=r"heatmap must have shape \(H, W\); got \(1, 2, 2\)"):
        localize(np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match=r"heatmap must not be empty; got shape \(0, 3\)"):
        threshold_mask(np.ones((0, 3)))
    with pytest.raises(TypeError, match=r"heatmap must have dtype float or int; got bool"):
        localize(np.ones((2, 2), bool))
    heat = HEAT.copy()
    localize(heat)
    np.testing.assert_array_equal(heat, HEAT)


def test_integer_map():
    heat = (HEAT * 2).astype(np.int64)                                  # max 20, 20% = 4
    assert localize(heat) == (2, 1, 3, 3)                               # 4 at (0, 4) is not above


# ------------------------------------------------------------------------------------- IoU

def test_iou_by_hand():
    # intersection (5..9) x (5..9) = 25; union 100 + 100 - 25 = 175
    assert iou((0, 0, 9, 9), (5, 5, 14, 14)) == pytest.approx(1 / 7, abs=0, rel=1e-15)
    assert iou((0, 0, 9, 9), (0, 0, 9, 9)) == 1.0
    # sharing the column x = 9 is an overlap of 1 x 10 pixels: 10 / (100 + 100 - 10)
    assert iou((0, 0, 9, 9), (9, 0, 18, 9)) == pytest.approx(1 / 19, abs=0, rel=1e-15)
    # one corner pixel in common: 1 / 199
    assert iou((0, 0, 9, 9), (9, 9, 18, 18)) == pytest.approx(1 / 199, abs=0, rel=1e-15)
    assert iou((0, 0, 9, 9), (10, 0, 19, 9)) == 0.0                     # side by side
    assert iou((0, 0, 9, 9), (30, 40, 31, 41)) == 0.0
    assert iou((0, 0, 9, 9), (2, 2, 3, 3)) == pytest.approx(4 / 100, abs=0, rel=1e-15)
    assert iou((4, 4, 4, 4), (4, 4, 4, 4)) == 1.0                       # one pixel each


def test_iou_symmetric_and_equal_to_its_loop_twin():
    for _ in range(200):
        x0, y0, x1, y1 = RNG.integers(0, 15, 4)
        a = (int(x0), int(y0), int(x0 + RNG.integers(0, 10)), int(y0 + RNG.integers(0, 10)))
        b = (int(x1), int(y1), int(x1 + RNG.integers(0, 10)), int(y1 + RNG.integers(0, 10)))
        assert iou(a, b) == iou(b, a)
        assert iou(a, b) == pytest.approx(iou_loop(a, b), abs=1e-15)
        assert 0.0 <= iou(a, b) <= 1.0


@pytest.mark.parametrize("bad, error, message", [
    ((5, 0, 4, 9), ValueError, r"box_a \(x0, y0, x1, y1\) must have x0 <= x1 and y0 <= y1; got \(5, 0, 4, 9\)"),
    ((0, 5, 9, 4), ValueError, "x0 <= x1 and y0 <= y1"),
    ((0, 0, 9), ValueError, r"box_a must be 4 integers \(x0, y0, x1, y1\); got \(0, 0, 9\)"),
    ((0.5, 0, 9, 9), TypeError, "box_a must be 4 integers"),
    (None, TypeError, "box_a must be 4 integers"),
])
def test_malformed_boxes_are_refused(bad, error, message):
    with pytest.raises(error, match=message):
        iou(bad, (0, 0, 9, 9))
    with pytest.raises(error, match="box_b"):
        iou((0, 0, 9, 9), bad)
    with pytest.raises(error, match=message):
        iou_loop(bad, (0, 0, 9, 9))


def test_iou_of_numpy_ints():
    assert iou(np.array([0, 0, 9, 9]), (5, 5, 14, 14)) == pytest.approx(1 / 7)


# ------------------------------------------------------------------------------ loop twins

def random_masks(count=50):
    for _ in range(count):
        shape = tuple(int(n) for n in RNG.integers(1, 25, 2))
        yield RNG.random(shape) < RNG.uniform(0.05, 0.95)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_largest_component_matches_loop_twin(connectivity):
    sizes_differ = 0
    for mask in random_masks():
        fast = largest_component(mask, connectivity)
        slow = largest_component_loop(mask, connectivity)
        np.testing.assert_array_equal(fast, slow)
        assert fast.dtype == bool and fast.shape == mask.shape
        sizes_differ += largest_component(mask, 4).sum() != largest_component(mask, 8).sum()
    assert sizes_differ > 10                        # the random masks do tell 4 from 8 apart


def test_bbox_matches_loop_twin():
    for mask in random_masks():
        for m in (mask, largest_component(mask)):
            assert bbox_of_mask(m) == bbox_of_mask_loop(m)


def test_doctests():
    assert doctest.testmod(loc, optionflags=doctest.ELLIPSIS).failed == 0
