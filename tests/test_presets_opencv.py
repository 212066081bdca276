"""cv2.resize's uint8 bilinear arithmetic written out (numpy_cam/_opencv_resize.py), the resize of
the "cam-pytorch-demo" preset: its three rules on hand-built maps with exact levels, then level
for level against cv2 itself (opencv-python-headless, where installed) on many sizes."""
import numpy as np
import pytest

from numpy_cam._opencv_resize import _weights, resize_linear_uint8
from numpy_cam.upsample import _upsample_bilinear

RNG = np.random.default_rng(5)
SIZES = [((7, 7), (224, 224)), ((14, 14), (256, 256)), ((7, 7), (256, 256)), ((256, 256), (427, 640)),
         ((256, 256), (300, 451)), ((256, 256), (400, 600)), ((5, 9), (37, 100)), ((13, 11), (6, 4)),
         ((224, 224), (7, 7)), ((256, 256), (128, 128)), ((1, 1), (5, 5)), ((2, 1), (3, 7)), ((3, 3), (3, 3)),
         ((1, 7), (1, 8)), ((100, 100), (33, 77)), ((640, 427), (256, 256))]


def test_weights_are_11_bit_and_sum_to_2048():
    i0, i1, a0, a1 = _weights(2, 5, clamp_weights=True)      # t = 0 (clamped), 0.1, 0.5, 0.9, 0 (clamped)
    np.testing.assert_array_equal(a1, [0, 205, 1024, 1843, 0])  # round(2048 t): 204.8, 1843.2
    np.testing.assert_array_equal(a0 + a1, 2048)
    np.testing.assert_array_equal(i0, [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(i1, [1, 1, 1, 1, 1])


def test_columns_use_the_11_bit_weights():
    # [0, 255] -> 5 columns: t = 0.9 at column 3 weighs 255 by 1843 / 2048, 229.47, not 0.9:
    # r = 1843 * 255 = 469965, r >> 4 = 29372, (2048 * 29372) >> 16 = 917, (917 + 2) >> 2 = 229,
    # where the float value 229.5 would round to 230
    out = resize_linear_uint8(np.array([[[0, 255]]], np.uint8), (1, 5))
    np.testing.assert_array_equal(out[0, 0], [0, 26, 128, 229, 255])


def test_rows_cut_each_product_before_rounding():
    # [1, 37] -> 5 rows: row 1 has t = 0.1, weights (1843, 205); the rows are r = 2048 and 75776,
    # r >> 4 = 128 and 4736; (1843 * 128) >> 16 = 3 (of 3.6), (205 * 4736) >> 16 = 14 (of 14.8);
    # (3 + 14 + 2) >> 2 = 4, though the value with these weights is 4.60
    out = resize_linear_uint8(np.array([[[1], [37]]], np.uint8), (5, 1))
    np.testing.assert_array_equal(out[0, :, 0], [1, 4, 19, 33, 37])


def test_edge_rows_keep_their_two_weights():
    # 2 -> 5 rows: row 0 samples -0.3, so t = 0.7 on rows -1 and 0, both read as row 0, weights
    # (614, 1434). Column 1 is the mean of 199 and 216: r = 1024 * 415 = 424960, r >> 4 = 26560;
    # (614 * 26560) >> 16 + (1434 * 26560) >> 16 = 248 + 581, (829 + 2) >> 2 = 207. Clamping the
    # weights to (2048, 0), as the columns do, would give (830 + 2) >> 2 = 208.
    out = resize_linear_uint8(np.array([[[199, 216], [192, 182]]], np.uint8), (5, 3))
    np.testing.assert_array_equal(out[0, 0], [199, 207, 216])
    np.testing.assert_array_equal(out[0, -1], [192, 187, 182])


def test_identity_and_exact_halving():
    m = RNG.integers(0, 256, (2, 6, 8), dtype=np.uint8)
    np.testing.assert_array_equal(resize_linear_uint8(m, (6, 8)), m)
    blocks = m.astype(int).reshape(2, 3, 2, 4, 2).sum(axis=(2, 4))                  # (2, 3, 4), 2 x 2 sums
    np.testing.assert_array_equal(resize_linear_uint8(m, (3, 4)), (blocks + 2) >> 2)   # INTER_AREA's rule


def test_fixed_point_is_within_one_level_of_the_float_value():
    m = RNG.integers(0, 256, (4, 7, 7), dtype=np.uint8)
    exact = _upsample_bilinear(m.astype(np.float64), (224, 224), False)               # (4, 224, 224)
    assert np.abs(resize_linear_uint8(m, (224, 224)) - exact).max() < 1


# --- against cv2 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes", SIZES, ids=str)
def test_is_cv2_resize(sizes):
    cv2 = pytest.importorskip("cv2")
    (h, w), (H, W) = sizes
    maps = RNG.integers(0, 256, (3, h, w), dtype=np.uint8)                             # (3, h, w)
    maps[1] = np.where(maps[1] < 128, 0, 255)                                          # hard edges
    maps[2] = (255 * np.linspace(0, 1, h * w)).astype(np.uint8).reshape(h, w)         # a ramp
    expected = np.stack([cv2.resize(one, (W, H)) for one in maps])                     # (3, H, W)
    np.testing.assert_array_equal(resize_linear_uint8(maps, (H, W)), expected)


def test_is_cv2_resize_on_random_sizes():
    cv2 = pytest.importorskip("cv2")
    for _ in range(300):
        (h, w), (H, W) = RNG.integers(1, 40, 2), RNG.integers(1, 260, 2)
        one = RNG.integers(0, 256, (h, w), dtype=np.uint8)
        np.testing.assert_array_equal(resize_linear_uint8(one[None], (H, W))[0], cv2.resize(one, (int(W), int(H))),
                                      err_msg=f"{(h, w)} -> {(H, W)}")
