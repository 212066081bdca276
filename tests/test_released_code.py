"""numpy_cam.released_code: the authors' released box generator, step by step.

The expected boxes were derived by hand from the steps in the docstring of
``released_code_rects``; each test says how.
"""
import re

import numpy as np
import pytest

from numpy_cam import released_code as rc
from numpy_cam.localize import localize
from numpy_cam.released_code import localize_released_code, released_code_rects

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


@pytest.mark.parametrize("bad, error", [((100, 20, 110), ValueError), ((0, 100, 110), ValueError),
                                        ((20, 100, 255), ValueError), ((20, 100), ValueError),
                                        ((20, 100.5, 110), TypeError), (20, TypeError)])
def test_released_code_thresholds_are_checked(bad, error):
    expected = "thresholds must be 3 ints with 0 < t0 < t1 < t2 < 255; got " + repr(bad)
    with pytest.raises(error, match=re.escape(expected)):
        released_code_rects(np.zeros((20, 20), np.uint8), bad)


def test_released_code_heatmap_is_checked_and_not_mutated():
    with pytest.raises(TypeError, match="heatmap must have dtype uint8 or float; got int64"):
        released_code_rects(np.zeros((20, 20), np.int64))
    with pytest.raises(ValueError, match=r"heatmap must have shape \(H, W\); got \(2, 20, 20\)"):
        localize_released_code(np.zeros((2, 20, 20)))
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
    assert rc._distance_erode(np.ones((60, 90), bool)).all()
    assert not rc._distance_erode(np.zeros((60, 90), bool)).any()
