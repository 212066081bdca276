"""numpy_cam.upsample: the loop twin, three independent implementations, hand-built numbers,
properties and error messages.

Independent references: Pillow's float ("F") bilinear resize (upsampling only: it widens its
filter when shrinking), ``scipy.ndimage.zoom(order=1, grid_mode=True, mode="nearest")`` and
PyTorch ``F.interpolate(mode="bilinear")`` (skipped without torch). The max differences
quoted in the comments were measured on 10-20 random float32 maps per case, N(0, 1) unless
[0, 1] is said; the tolerances leave room above them.
"""
import doctest

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from numpy_cam import upsample
from numpy_cam.upsample import (interpolation_matrix, source_coordinates, upsample_bilinear,
                                upsample_bilinear_loop)

RNG = np.random.default_rng(2016)
GRIDS = [False, True]                                                   # align_corners


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def pillow(m, size):
    """Pillow's bilinear resize of a 2-D float map to size = (H, W) (Pillow takes (W, H))."""
    image = Image.fromarray(m.astype(np.float32), mode="F")
    return np.asarray(image.resize(size[::-1], Image.Resampling.BILINEAR))


def scipy_zoom(m, size, **grid):
    out = ndimage.zoom(m, (size[0] / m.shape[0], size[1] / m.shape[1]), order=1, **grid)
    assert out.shape == size                                            # zoom rounds the factor
    return out


# --- vectorised == loop twin -------------------------------------------------------------

TWIN_CASES = [
    # (..., h, w), (H, W)
    ((7, 7), (224, 224)),                 # the usual CAM case, ratio 32
    ((7, 7), (225, 225)),                 # non-integer ratio
    ((13, 13), (5, 5)),                   # down, ratio 2.6
    ((3, 3), (7, 7)),                     # up, ratio 7/3
    ((13, 3), (5, 7)),                    # down along rows, up along columns
    ((1, 5), (4, 9)), ((5, 1), (9, 3)),   # one pixel wide
    ((6, 4), (1, 3)), ((4, 6), (1, 1)),   # h -> 1
    ((1, 1), (3, 4)),                     # a single pixel
    ((5, 6), (5, 6)),                     # same size
    ((2, 6, 6), (9, 4)),                  # batched (N, h, w)
    ((2, 3, 4, 5), (7, 3)),               # batched (N, k, h, w)
]


@pytest.mark.parametrize("shape, size", TWIN_CASES)
@pytest.mark.parametrize("align_corners", GRIDS)
def test_matches_loop_twin(shape, size, align_corners):
    maps = rand(*shape)
    before = maps.copy()
    out = upsample_bilinear(maps, size, align_corners)
    ref = upsample_bilinear_loop(maps, size, align_corners)
    assert out.shape == ref.shape == shape[:-2] + size and out.dtype == ref.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=2e-6)         # measured <= 4.8e-7
    np.testing.assert_array_equal(maps, before)                         # input untouched


@pytest.mark.parametrize("align_corners", GRIDS)
def test_matches_loop_twin_float64(align_corners):
    maps = RNG.standard_normal((2, 9, 5))
    out = upsample_bilinear(maps, (20, 3), align_corners)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, upsample_bilinear_loop(maps, (20, 3), align_corners), rtol=0, atol=1e-13)


# --- independent implementations ----------------------------------------------------------

@pytest.mark.parametrize("shape, size", [((7, 7), (224, 224)), ((7, 7), (225, 225)), ((3, 3), (7, 7)),
                                         ((5, 9), (16, 20)), ((1, 5), (4, 9))])
def test_pillow_upsampling(shape, size):
    m = rand(*shape)
    # measured max |difference| <= 4.8e-7 on these cases (1.2e-7 for a [0, 1] map, 7 -> 224)
    np.testing.assert_allclose(upsample_bilinear(m, size), pillow(m, size), rtol=0, atol=1e-6)


def test_pillow_differs_when_downsampling():
    """The docs' claim: Pillow widens its filter when shrinking, so it is not plain bilinear there."""
    m = RNG.random((13, 13)).astype(np.float32)
    diff = np.abs(upsample_bilinear(m, (5, 5)) - pillow(m, (5, 5))).max()
    assert diff > 0.1                                                   # measured 0.21 to 0.42


@pytest.mark.parametrize("shape, size", [((7, 7), (224, 224)), ((7, 7), (225, 225)), ((3, 4), (7, 9)),
                                         ((13, 13), (5, 5)), ((12, 10), (5, 4)), ((1, 5), (4, 9))])
def test_scipy_zoom(shape, size):
    m = rand(*shape)
    # half-pixel grid: grid_mode=True, mode="nearest"; measured max |difference| <= 4.8e-7
    half = scipy_zoom(m, size, grid_mode=True, mode="nearest")
    np.testing.assert_allclose(upsample_bilinear(m, size), half, rtol=0, atol=2e-6)
    # scipy's default zoom is the align-corners grid (what tf-keras-vis uses); <= 4.8e-7 too
    np.testing.assert_allclose(upsample_bilinear(m, size, align_corners=True), scipy_zoom(m, size),
                               rtol=0, atol=2e-6)


@pytest.mark.parametrize("shape, size", [((1, 1, 7, 7), (224, 224)), ((2, 3, 7, 7), (225, 225)),
                                         ((2, 1, 13, 13), (5, 5)), ((1, 2, 3, 4), (7, 9)),
                                         ((1, 1, 12, 10), (5, 4)), ((1, 1, 1, 5), (4, 9))])
@pytest.mark.parametrize("align_corners", GRIDS)
def test_torch_interpolate(shape, size, align_corners):
    torch = pytest.importorskip("torch")
    maps = rand(*shape)
    ref = torch.nn.functional.interpolate(torch.from_numpy(maps), size=size, mode="bilinear",
                                          align_corners=align_corners).numpy()
    # measured max |difference| <= 2.2e-6 (float32 rounding, values up to ~4);
    # on a [0, 1] map, 7 -> 224: 1.2e-7 (half-pixel) and 3.6e-7 (align-corners)
    np.testing.assert_allclose(upsample_bilinear(maps, size, align_corners), ref, rtol=0, atol=1e-5)


# --- exact hand-built numbers -------------------------------------------------------------

def test_hand_built_2x2_to_4x4():
    m = np.array([[0, 1], [2, 3]], np.float32)
    # half-pixel, ratio 2: src = (o + 0.5) / 2 - 0.5 = -0.25 (-> 0), 0.25, 0.75, 1.25 (-> 1)
    for f in (upsample_bilinear, upsample_bilinear_loop):
        out = f(m, (4, 4))
        np.testing.assert_array_equal(out[0], [0, 0.25, 0.75, 1])
        np.testing.assert_array_equal(out[:, 0], [0, 0.5, 1.5, 2])
        np.testing.assert_array_equal(out[3, 3], 3)
    np.testing.assert_array_equal(interpolation_matrix(2, 4), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])


def test_hand_built_align_corners_and_non_integer_ratio():
    for f in (upsample_bilinear, upsample_bilinear_loop):
        # align corners 2 -> 3: src = o * 1 / 2 = 0, 0.5, 1
        np.testing.assert_array_equal(f(np.array([[0.0, 1.0]]), (1, 3), align_corners=True), [[0, 0.5, 1]])
        # half-pixel 3 -> 5, ratio 0.6: src = (o + 0.5) * 0.6 - 0.5 = -0.2 (-> 0), 0.4, 1.0, 1.6, 2.2 (-> 2)
        # on [1, 3, 9]: 1, 1 + 0.4 * 2 = 1.8, 3, 3 + 0.6 * 6 = 6.6, 9
        np.testing.assert_allclose(f(np.array([[1.0, 3.0, 9.0]]), (1, 5)), [[1, 1.8, 3, 6.6, 9]], rtol=1e-14)
    # down 13 -> 5, ratio 2.6: src = (o + 0.5) * 2.6 - 0.5 = 0.8, 3.4, 6.0, 8.6, 11.2
    src, i0, i1, w1 = source_coordinates(13, 5)
    np.testing.assert_allclose(src, [0.8, 3.4, 6.0, 8.6, 11.2], rtol=1e-14)
    np.testing.assert_array_equal(i0, [0, 3, 6, 8, 11])
    np.testing.assert_array_equal(i1, [1, 4, 7, 9, 12])
    np.testing.assert_allclose(w1, [0.8, 0.4, 0.0, 0.6, 0.2], atol=1e-14)


def test_source_coordinates_edges():
    src, i0, i1, w1 = source_coordinates(1, 4)                          # one input pixel: all from it
    assert src.tolist() == [0.0] * 4 and i0.tolist() == i1.tolist() == [0] * 4 and w1.tolist() == [0.0] * 4
    assert source_coordinates(5, 1)[0].tolist() == [2.0]                # half-pixel: the centre
    assert source_coordinates(5, 1, align_corners=True)[0].tolist() == [0.0]
    assert source_coordinates(1, 3, align_corners=True)[0].tolist() == [0.0] * 3
    src, i0, i1, w1 = source_coordinates(7, 224)
    assert src.dtype == w1.dtype == np.float64 and i0.dtype == i1.dtype == np.int64
    assert src[0] == 0 and src[-1] == 6 and (i0 <= i1).all() and i1.max() == 6


def test_docstring_examples():
    assert doctest.testmod(upsample).failed == 0


# --- properties ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(7, 7), (1, 1), (1, 9), (2, 3, 5, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("align_corners", GRIDS)
def test_same_size_is_identity(shape, dtype, align_corners):
    maps = RNG.standard_normal(shape).astype(dtype)
    out = upsample_bilinear(maps, shape[-2:], align_corners)
    np.testing.assert_array_equal(out, maps)                            # exactly
    assert out.dtype == dtype and not np.shares_memory(out, maps)
    np.testing.assert_array_equal(upsample_bilinear_loop(maps, shape[-2:], align_corners), maps)


@pytest.mark.parametrize("align_corners", GRIDS)
def test_constant_stays_constant_and_values_stay_in_range(align_corners):
    for size in [(224, 224), (225, 31), (3, 2)]:
        const = upsample_bilinear(np.full((2, 7, 7), 0.3, np.float32), size, align_corners)
        np.testing.assert_allclose(const, np.float32(0.3), rtol=4e-7)  # measured: 2 float32 ulps
        np.testing.assert_allclose(upsample_bilinear(np.full((7, 7), 0.3), size, align_corners), 0.3, rtol=1e-15)
        maps = rand(7, 9)
        out = upsample_bilinear(maps, size, align_corners)
        slack = 1e-6 * np.abs(maps).max()                               # float32 rounding
        assert maps.min() - slack <= out.min() and out.max() <= maps.max() + slack
        out64 = upsample_bilinear(maps.astype(np.float64), size, align_corners)
        assert maps.min() - 1e-12 <= out64.min() and out64.max() <= maps.max() + 1e-12


@pytest.mark.parametrize("n_in, n_out", [(7, 224), (7, 225), (13, 5), (1, 4), (5, 1), (3, 3)])
@pytest.mark.parametrize("align_corners", GRIDS)
def test_interpolation_matrix_rows_sum_to_one(n_in, n_out, align_corners):
    a = interpolation_matrix(n_in, n_out, align_corners, dtype=np.float64)
    assert a.shape == (n_out, n_in) and (a >= 0).all() and (np.count_nonzero(a, axis=1) <= 2).all()
    np.testing.assert_allclose(a.sum(axis=1), 1, rtol=0, atol=1e-15)
    assert interpolation_matrix(n_in, n_out, align_corners).dtype == np.float32


@pytest.mark.parametrize("dtype, expected", [(np.float32, np.float32), (np.float64, np.float64),
                                             (np.float16, np.float16), (np.uint8, np.float32),
                                             (np.int64, np.float32), (np.bool_, np.float32)])
def test_dtype(dtype, expected):
    maps = (RNG.random((2, 3, 4)) * 3).astype(dtype)
    assert upsample_bilinear(maps, (5, 6)).dtype == expected
    assert upsample_bilinear_loop(maps, (5, 6)).dtype == expected


def test_integer_input_values():
    np.testing.assert_array_equal(upsample_bilinear(np.array([[0, 4]], np.uint8), (1, 4)), [[0, 1, 3, 4]])


def test_cached_matrices_cannot_be_changed_by_callers():
    upsample_bilinear(rand(7, 7), (224, 224))
    a = upsample._cached_matrix(7, 224, False, np.dtype(np.float32))
    with pytest.raises(ValueError, match="read-only"):
        a[0, 0] = 5
    b = interpolation_matrix(7, 224)                                    # the public one: a fresh copy
    b[0, 0] = 5
    np.testing.assert_array_equal(upsample_bilinear(np.ones((7, 7), np.float32), (224, 224)), 1)


def test_grids_differ():
    """Half-pixel vs align-corners on [0, 1] maps: up to ~0.4 apart for a typical 7 -> 224."""
    m = np.random.default_rng(0).random((7, 7)).astype(np.float32)
    diff = np.abs(upsample_bilinear(m, (224, 224)) - upsample_bilinear(m, (224, 224), align_corners=True))
    assert diff.max() > 0.3                                             # measured 0.361
    checker = (np.indices((7, 7)).sum(axis=0) % 2).astype(np.float32)
    diff = upsample_bilinear(checker, (224, 224)) - upsample_bilinear(checker, (224, 224), align_corners=True)
    assert np.abs(diff).max() > 0.45                                    # measured 0.481


def test_non_finite_values_pass_through():
    """As documented: no error; the matrix products spread one NaN over the whole map, the
    loop only to the output pixels whose 4 neighbours include it."""
    maps = rand(7, 7)
    maps[3, 3] = np.nan
    assert np.isnan(upsample_bilinear(maps, (14, 14))).all()
    loop = upsample_bilinear_loop(maps, (14, 14))
    assert 0 < np.isnan(loop).sum() < 14 * 14 // 4


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("maps, size, error, match", [
    (np.zeros(5), (4, 4), ValueError, r"maps must have shape \(\.\.\., h, w\); got \(5,\)"),
    (3.0, (4, 4), ValueError, r"maps must have shape \(\.\.\., h, w\); got \(\)"),
    (np.zeros((7, 0)), (4, 4), ValueError, r"maps must not be empty; got shape \(7, 0\)"),
    (np.zeros((0, 7, 7)), (4, 4), ValueError, r"maps must not be empty; got shape \(0, 7, 7\)"),
    (np.zeros((7, 7)), (0, 5), ValueError, r"size must be \(H, W\) with positive integers; got \(0, 5\)"),
    (np.zeros((7, 7)), (5,), ValueError, r"size must be \(H, W\) with positive integers; got \(5,\)"),
    (np.zeros((7, 7)), (5.0, 5), TypeError, r"size must be \(H, W\) with positive integers; got \(5\.0, 5\)"),
    (np.zeros((7, 7)), (True, 5), TypeError, r"positive integers; got \(True, 5\)"),
    (np.zeros((7, 7)), 224, TypeError, r"positive integers; got 224"),
    (np.zeros((7, 7), complex), (4, 4), TypeError, r"maps must have dtype float, int or bool; got complex128"),
    (np.array([["a"]]), (4, 4), TypeError, r"maps must have dtype float, int or bool"),
])
@pytest.mark.parametrize("function", [upsample_bilinear, upsample_bilinear_loop])
def test_bad_input_messages(function, maps, size, error, match):
    with pytest.raises(error, match=match):
        function(maps, size)


@pytest.mark.parametrize("n_in, n_out, error, match", [
    (0, 5, ValueError, r"n_in must be >= 1; got 0"),
    (5, 0, ValueError, r"n_out must be >= 1; got 0"),
    (-1, 3, ValueError, r"n_in must be >= 1; got -1"),
    (2.0, 3, TypeError, r"n_in must be an integer; got 2.0"),
    (2, True, TypeError, r"n_out must be an integer; got True"),
])
def test_bad_lengths(n_in, n_out, error, match):
    with pytest.raises(error, match=match):
        source_coordinates(n_in, n_out)
    with pytest.raises(error, match=match):
        interpolation_matrix(n_in, n_out)
