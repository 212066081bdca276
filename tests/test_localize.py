"""numpy_cam.localize: exact boxes on hand-built masks and maps, the tie rule, the edges,
IoU by hand, the loop twins, and the authors' released box generator step by step.

The expected boxes of the released-code tests were derived by hand from the steps in the
docstring of ``released_code_rects``; each test says how.
"""
import doctest

import numpy as np
import pytest

from numpy_cam import localize as loc
from numpy_cam.localize import (bbox_of_mask, bbox_of_mask_loop, iou, iou_loop, largest_component,
                                largest_component_loop, localize, localize_released_code,
                                released_code_rects, threshold_mask)

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
    with pytest.raises(ValueError, match=r"mask must be an array of shape \(H, W\); got \(2, 3, 4\)"):
        bbox_of_mask(np.zeros((2, 3, 4), bool))


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


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "high", None])
def test_threshold_outside_unit_interval_is_refused(bad):
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\].*got " + repr(bad)[:4]):
        threshold_mask(HEAT, bad)
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\]"):
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
    with pytest.raises(ValueError, match=r"shape \(H, W\); got \(1, 2, 2\)"):
        localize(np.ones((1, 2, 2)))
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


@pytest.mark.parametrize("bad, message", [
    ((5, 0, 4, 9), "x0 <= x1 and y0 <= y1"),
    ((0, 5, 9, 4), "x0 <= x1 and y0 <= y1"),
    ((0, 0, 9), "4 integers"),
    ((0.5, 0, 9, 9), "4 integers"),
    (None, "4 integers"),
])
def test_malformed_boxes_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        iou(bad, (0, 0, 9, 9))
    with pytest.raises(ValueError, match="box_b"):
        iou((0, 0, 9, 9), bad)
    with pytest.raises(ValueError, match=message):
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


# ------------------------------------------------------- the authors' released box generator

def square_map(height, width, value, rows, cols, dtype=np.uint8):
    """A map of zeros with ``value`` on rows[0]..rows[1] and cols[0]..cols[1] (inclusive)."""
    heat = np.zeros((height, width), dtype)
    heat[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = value
    return heat


def test_released_code_square_and_the_merge_skip():
    # a 10 x 10 square at x, y = 5..14 passes all three thresholds; its largest distance to
    # the outside is 5, so the edge (d = 1) is at 255 / 5 = 51 > 10: nothing is eroded.
    # Three identical rects (5, 5, 10, 10): the merge deletes the second, then skips the
    # third (it moved into the deleted one's place), so two remain.
    heat = square_map(20, 20, 200, (5, 14), (5, 14))
    assert released_code_rects(heat) == [(5, 5, 10, 10), (5, 5, 10, 10)]
    # the evaluation scores [x, y, x + w, y + h]: one pixel more than the square
    assert localize_released_code(heat) == (5, 5, 15, 15)
    assert localize(heat) == (5, 5, 14, 14)                             # the paper's box


def test_released_code_distance_erosion():
    # a 60 x 60 square at 10..69 in 80 x 80: largest distance 30, 255 / 30 = 8.5, so the
    # outer ring (d = 1) becomes floor(8.5 + 0.5) = 9, not above 10, and goes; d = 2 gives
    # 17 and stays. The square shrinks by one pixel on each side: x, y = 11..68.
    heat = square_map(80, 80, 200, (10, 69), (10, 69))
    assert released_code_rects(heat) == [(11, 11, 58, 58), (11, 11, 58, 58)]
    assert localize_released_code(heat) == (11, 11, 69, 69)


def test_released_code_two_levels_loose_and_tight():
    # 50 on x, y = 5..24 (only threshold 20 passes), 200 on 10..17 (all three). Largest
    # distances 10 and 4: nothing eroded. Rects: A (5, 5, 20, 20) once, C (10, 10, 8, 8)
    # twice. A and C overlap by 64 <= int(400 / 2): both stay; the second C goes.
    heat = square_map(40, 40, 50, (5, 24), (5, 24))
    heat[10:18, 10:18] = 200
    assert released_code_rects(heat) == [(5, 5, 20, 20), (10, 10, 8, 8)]
    assert localize_released_code(heat) == (5, 5, 25, 25)
    # as floats the map is divided by its max and scaled to 0..255 first: 50 / 200 * 255
    # = 63.75 -> 64, still between 20 and 100, so the same rects
    assert released_code_rects(heat / 200.0) == [(5, 5, 20, 20), (10, 10, 8, 8)]
    assert released_code_rects(heat.astype(np.float32) * 3) == [(5, 5, 20, 20), (10, 10, 8, 8)]
    # the paper, at 20% of 200 = 40: the 50s pass, one component
    assert localize(heat.astype(float)) == (5, 5, 24, 24)


def test_released_code_hole_gives_its_own_rect():
    # a ring: x, y = 5..16 at 200 with a hole at 9..12. Largest distance 2 * sqrt(2) (at
    # (7, 7), three from the outside, (2, 2) from the hole's corner), 255 / 2.83 = 90 for
    # d = 1: nothing eroded. Per threshold: the outer rect (5, 5, 12, 12) and the hole's
    # rect, its box grown by one pixel: (8, 8, 6, 6). Sorted: O O O H H H; merged: the
    # second O goes, the third is skipped; the H's overlap O by 36 <= 72; among the H's the
    # same deletion and skip.
    heat = square_map(30, 30, 200, (5, 16), (5, 16))
    heat[9:13, 9:13] = 0
    expected = [(5, 5, 12, 12), (5, 5, 12, 12), (8, 8, 6, 6), (8, 8, 6, 6)]
    assert released_code_rects(heat) == expected
    assert released_code_rects(heat, clear_frame=False) == expected
    assert localize_released_code(heat) == (5, 5, 17, 17)


def test_released_code_frame_of_old_and_new_opencv():
    # a square on x = 0..7, y = 2..9 touches the left edge (the edge is not background for
    # the distance transform: largest distance 4, nothing eroded). OpenCV <= 3.1 clears the
    # outermost column before tracing: x = 1..7; OpenCV >= 3.2 keeps it: x = 0..7.
    heat = square_map(20, 20, 200, (2, 9), (0, 7))
    assert released_code_rects(heat) == [(1, 2, 7, 8)] * 2
    assert released_code_rects(heat, clear_frame=False) == [(0, 2, 8, 8)] * 2
    assert localize_released_code(heat) == (1, 2, 8, 10)
    assert localize_released_code(heat, clear_frame=False) == (0, 2, 8, 10)


def test_released_code_five_pixel_margin():
    # x = 12..19 (the right edge): w is clamped to W - x - 5 = 20 - 12 - 5 = 3
    heat = square_map(20, 20, 200, (2, 9), (12, 19))
    assert released_code_rects(heat) == [(12, 2, 3, 8)] * 2
    assert released_code_rects(heat, clear_frame=False) == [(12, 2, 3, 8)] * 2
    # x = 16..19, inside the margin: x is clamped to W - 5 = 15 and w to 20 - 16 - 5 = -1.
    # The area is -8, the overlap 0 > int(-8 * 0.5) = -4: the merge still deletes one.
    heat = square_map(20, 20, 200, (2, 9), (16, 19))
    assert released_code_rects(heat, clear_frame=False) == [(15, 2, -1, 8)] * 2
    # the script takes min and max of x and x + w = 14
    assert localize_released_code(heat, clear_frame=False) == (14, 2, 15, 10)


def test_released_code_every_pixel_above_a_threshold():
    # no background pixel: dt.c leaves the mask unchanged. Cleared frame: x, y = 1..8,
    # w clamped to 10 - 1 - 5 = 4; without: (0, 0) and w clamped to 10 - 0 - 5 = 5.
    heat = np.full((10, 10), 200, np.uint8)
    assert released_code_rects(heat) == [(1, 1, 4, 4)] * 2
    assert released_code_rects(heat, clear_frame=False) == [(0, 0, 5, 5)] * 2


def test_released_code_thresholds_are_strict_and_configurable():
    # the ring of 50 around a core of 200: thresholds (60, 100, 110) see only the core
    heat = square_map(40, 40, 50, (5, 24), (5, 24))
    heat[10:18, 10:18] = 200
    assert released_code_rects(heat, (60, 100, 110)) == [(10, 10, 8, 8)] * 2
    assert released_code_rects(heat, (50, 100, 110)) == [(10, 10, 8, 8)] * 2   # 50 is not > 50
    assert released_code_rects(heat, (49, 100, 110)) == [(5, 5, 20, 20), (10, 10, 8, 8)]


def test_released_code_nothing_found():
    assert released_code_rects(np.zeros((20, 20), np.uint8)) == []
    assert localize_released_code(np.zeros((20, 20), np.uint8)) is None
    assert localize_released_code(np.full((20, 20), 20, np.uint8)) is None     # not above 20
    assert localize_released_code(-np.ones((20, 20))) is None                  # float, max <= 0


@pytest.mark.parametrize("bad", [(100, 20, 110), (0, 100, 110), (20, 100, 255), (20, 100), (20, 100.5, 110)])
def test_released_code_thresholds_are_checked(bad):
    with pytest.raises(ValueError, match=r"thresholds must be 3 ints with 0 < t0 < t1 < t2 < 255"):
        released_code_rects(np.zeros((20, 20), np.uint8), bad)


def test_released_code_heatmap_is_checked_and_not_mutated():
    with pytest.raises(TypeError, match="uint8 array .* or a float array; got int64"):
        released_code_rects(np.zeros((20, 20), np.int64))
    with pytest.raises(ValueError, match="heatmap must be finite"):
        released_code_rects(np.full((20, 20), np.inf))
    heat = square_map(20, 20, 200, (2, 9), (0, 7))
    before = heat.copy()
    released_code_rects(heat)
    np.testing.assert_array_equal(heat, before)


def test_released_code_erosion_cut_is_above_10():
    # a 50 x 50 square: largest distance 25, d = 1 -> floor(10.2 + 0.5) = 10, not above 10,
    # so the outer ring goes; a 48 x 48 square: largest 24, d = 1 -> floor(10.625 + 0.5) = 11
    # stays.
    assert released_code_rects(square_map(60, 60, 200, (5, 54), (5, 54))) == [(6, 6, 48, 48)] * 2
    assert released_code_rects(square_map(60, 60, 200, (5, 52), (5, 52))) == [(5, 5, 48, 48)] * 2


def test_released_code_rounds_half_up():
    # a 340 x 340 square: largest distance 170, 255 / 170 = 1.5 exactly. d = 7 gives 10.5,
    # which dt.c's (int)(s + 0.5) makes 11 (kept); d = 6 gives 9.5 -> 9 (gone). Six rings
    # go: x, y = 11..338. (Rounding half to even would make 10.5 a 10 and take 7 rings.)
    heat = square_map(350, 350, 200, (5, 344), (5, 344))
    assert released_code_rects(heat) == [(11, 11, 328, 328)] * 2


def test_released_code_merge_needs_more_than_half():
    # 50 on x = 5..24, y = 5..14 (20 x 10, area 200) with 105 on its left half x = 5..14
    # (10 x 10): threshold 20 sees the whole (5, 5, 20, 10), 100 the half (5, 5, 10, 10),
    # 110 nothing. Their overlap, 100, is not above int(200 * 0.5) = 100: both stay.
    heat = square_map(30, 40, 50, (5, 14), (5, 24))
    heat[5:15, 5:15] = 105
    assert released_code_rects(heat) == [(5, 5, 20, 10), (5, 5, 10, 10)]
    heat[5:15, 5:16] = 105                                              # 11 x 10: overlap 110
    assert released_code_rects(heat) == [(5, 5, 20, 10)]


def test_released_code_erosion_of_an_all_foreground_mask_keeps_it():
    # dt.c (no zero pixel: all distances 1e20) leaves such a mask as it is at every size;
    # scipy's transform has no zero to measure from either, so this is a case of its own
    assert loc._distance_erode(np.ones((60, 90), bool)).all()
    assert not loc._distance_erode(np.zeros((60, 90), bool)).any()
