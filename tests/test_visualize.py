"""visualize: jet against matplotlib's table, colormap, overlay, boxes and PNG files, pixel by pixel."""
import colorsys
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numpy_cam import visualize
from numpy_cam.io import image as image_io
from numpy_cam.io.image import save_png
from numpy_cam.visualize import JET, apply_colormap, draw_box, jet, overlay

REFERENCE = Path(__file__).parent / "golden" / "jet_matplotlib.csv"   # make_jet_reference.py


@pytest.fixture(scope="module")
def reference():
    """matplotlib's colormaps["jet"](i / 255)[:3], i = 0..255: (256, 3) float64."""
    ref = np.loadtxt(REFERENCE, delimiter=",", dtype=np.float64)
    assert ref.shape == (256, 3)
    return ref


# -- jet ----------------------------------------------------------------------------------

def test_jet_table_matches_matplotlib(reference):
    assert JET.shape == (256, 3) and JET.dtype == np.uint8
    assert np.abs(JET / 255.0 - reference).max() <= 0.5 / 255 + 1e-12   # measured: 0.5 / 255 (rounding)
    np.testing.assert_array_equal(JET, np.floor(reference * 255 + 0.5 + 1e-9))   # half up, ties too
    assert JET[22, 2] == 228 and JET[244, 0] == 178                     # 227.5, 177.5 on paper
    assert np.abs(jet(np.arange(256) / 255.0) - reference).max() <= 1e-12   # measured: ~1e-16


def test_jet_known_values(reference):
    assert jet(0.0).tolist() == [0.0, 0.0, 0.5]                        # dark blue
    assert jet(1.0).tolist() == [0.5, 0.0, 0.0]                        # dark red
    np.testing.assert_allclose(reference[128], [0.4901960784313725, 1.0, 0.4775458570524984], rtol=0, atol=0)
    np.testing.assert_allclose(jet(128 / 255), reference[128], rtol=0, atol=1e-15)
    assert JET[0].tolist() == [0, 0, 128] and JET[128].tolist() == [125, 255, 122]
    assert JET[255].tolist() == [128, 0, 0]
    assert jet([[0.0, 2.0], [-1.0, 1.0]]).shape == (2, 2, 3)           # any shape, clipped
    np.testing.assert_array_equal(jet([-1.0, 2.0]), jet([0.0, 1.0]))


def test_jet_table_is_read_only():
    with pytest.raises(ValueError, match="read-only"):
        JET[0, 0] = 1


def test_jet_differs_from_opencv_by_what_the_docstring_says():
    # OpenCV's COLORMAP_JET (GNU Octave's jet): clip(1.5 - |4 v - k|, 0, 1), k = 3, 2, 1 for r, g, b.
    v = np.arange(256) / 255.0
    opencv = np.clip(1.5 - np.abs(4 * v[:, None] - np.array([3.0, 2.0, 1.0])), 0, 1)   # (256, 3)
    diff = np.abs(jet(v) - opencv) * 255                                 # (256, 3)
    assert 33 <= diff.max() < 34 and np.unravel_index(diff.argmax(), diff.shape) == (223, 1)
    assert np.abs(JET.astype(int) - np.round(opencv * 255)).max() == 34


def test_jet_refuses_nan():
    with pytest.raises(ValueError, match="values must be finite; got 1 NaN"):
        jet([0.5, np.nan])


# -- apply_colormap -------------------------------------------------------------------------

def test_apply_colormap_ends():
    rgb = apply_colormap(np.array([[0.0, 1.0]]))
    assert rgb.shape == (1, 2, 3) and rgb.dtype == np.uint8
    assert rgb.tolist() == [[[0, 0, 128], [128, 0, 0]]]                  # dark blue, dark red


def test_apply_colormap_rounding_and_clipping():
    h = np.array([[-0.5, 0.4 / 255, 0.6 / 255, 0.5, 1.5, np.float32(1.0)]])
    expected = JET[[0, 0, 1, 128, 255, 255]][None]                       # 0.5 * 255 = 127.5 -> 128
    np.testing.assert_array_equal(apply_colormap(h), expected)
    grey = np.stack([np.arange(256, dtype=np.uint8)] * 3, axis=1)        # (256, 3) identity table
    np.testing.assert_array_equal(apply_colormap(np.array([[0.2]]), grey), [[[51, 51, 51]]])


def test_apply_colormap_hue_runs_from_blue_to_red():
    rgb = apply_colormap(np.linspace(0, 1, 1001)[None])[0] / 255.0        # (1001, 3)
    hue = np.array([colorsys.rgb_to_hsv(*c)[0] for c in rgb])           # blue 2/3 ... red 0
    assert hue[0] == pytest.approx(2 / 3) and hue[-1] == 0
    assert np.all(np.diff(hue) <= 1e-12)                                 # never turns back
    assert hue[500] == pytest.approx(1 / 3, abs=0.02)                    # green in the middle


@pytest.mark.parametrize("bad, match", [(np.nan, "1 NaN and 0 infinite"), (np.inf, "0 NaN and 1 infinite")])
def test_apply_colormap_refuses_non_finite(bad, match):
    with pytest.raises(ValueError, match=f"heatmap must be finite; got {match}"):
        apply_colormap(np.array([[0.0, bad]]))


def test_apply_colormap_refuses_bad_table():
    with pytest.raises(ValueError, match=r"table must have shape \(256, 3\); got \(128, 3\)"):
        apply_colormap(np.zeros((2, 2)), JET[:128])
    with pytest.raises(TypeError, match=r"table must have dtype uint8; got float64"):
        overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2)), table=JET / 255.0)


# -- overlay --------------------------------------------------------------------------------

def test_overlay_hand_built():
    image = np.array([[[0, 0, 0], [255, 255, 255], [1, 1, 1]]], np.uint8)   # (1, 3, 3)
    heatmap = np.array([[1.0, 0.0, 0.0]])                                # JET[255], JET[0], JET[0]
    # 0.5 * (128, 0, 0) = (64, 0, 0); 0.5 * 255 + 0.5 * (0, 0, 128) = (127.5, 127.5, 191.5);
    # 0.5 * 1 + 0.5 * (0, 0, 128) = (0.5, 0.5, 64.5): ties round half to even
    assert overlay(image, heatmap).tolist() == [[[64, 0, 0], [128, 128, 192], [0, 0, 64]]]
    # 0.25 * (128, 0, 0) = (32, 0, 0); 0.75 * 255 + 0.25 * (0, 0, 128) = (191.25, 191.25, 223.25)
    assert overlay(image, heatmap, alpha=0.25).tolist() == [[[32, 0, 0], [191, 191, 223], [1, 1, 33]]]


def test_overlay_alpha_ends_and_no_mutation():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    heatmap = rng.uniform(0, 1, size=(5, 7))
    image_before, heatmap_before = image.copy(), heatmap.copy()
    out0 = overlay(image, heatmap, alpha=0)
    np.testing.assert_array_equal(out0, image)
    assert out0 is not image and out0.dtype == np.uint8
    np.testing.assert_array_equal(overlay(image, heatmap, alpha=1.0), apply_colormap(heatmap))
    overlay(image, heatmap, alpha=0.3)
    np.testing.assert_array_equal(image, image_before)
    np.testing.assert_array_equal(heatmap, heatmap_before)


def test_overlay_shape_mismatch():
    with pytest.raises(ValueError, match=r"got heatmap of shape \(3, 4\) for an image of shape \(4, 3, 3\)"):
        overlay(np.zeros((4, 3, 3), np.uint8), np.zeros((3, 4)))


@pytest.mark.parametrize("alpha, error", [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                                          ("0.5", TypeError), (None, TypeError), (True, TypeError)])
def test_overlay_bad_alpha(alpha, error):
    with pytest.raises(error, match=r"alpha must be (a number )?between 0 and 1; got " + repr(alpha)[:3]):
        overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2)), alpha=alpha)


def test_overlay_bad_image():
    with pytest.raises(TypeError, match=r"\(H, W, 3\) and dtype uint8.*got shape \(2, 2, 3\) and dtype float64"):
        overlay(np.zeros((2, 2, 3)), np.zeros((2, 2)))
    with pytest.raises(TypeError, match=r"image must be an array of shape \(H, W, 3\) .*got shape list and dtype None"):
        overlay([[[0, 0, 0]]], np.zeros((1, 1)))
    with pytest.raises(ValueError, match=r"got shape \(1, 2, 2, 3\) and dtype uint8"):
        draw_box(np.zeros((1, 2, 2, 3), np.uint8), None)


# -- draw_box -------------------------------------------------------------------------------

def outline(height, width, x0, y0, x1, y1):
    """The expected (H, W) bool mask of a width-1 outline, written out with a loop."""
    mask = np.zeros((height, width), bool)
    for y in range(height):
        for x in range(width):
            on_edge = x in (x0, x1) or y in (y0, y1)
            mask[y, x] = on_edge and x0 <= x <= x1 and y0 <= y <= y1
    return mask


def test_draw_box_width_1_is_pixel_exact():
    image = np.zeros((6, 7, 3), np.uint8)
    out = draw_box(image, (1, 1, 4, 3), color=(255, 0, 7), width=1)    # columns 1..4, rows 1..3
    expected = np.array([[0, 0, 0, 0, 0, 0, 0],
                         [0, 1, 1, 1, 1, 0, 0],
                         [0, 1, 0, 0, 1, 0, 0],
                         [0, 1, 1, 1, 1, 0, 0],
                         [0, 0, 0, 0, 0, 0, 0],
                         [0, 0, 0, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(expected, outline(6, 7, 1, 1, 4, 3))
    np.testing.assert_array_equal(out.any(axis=2), expected)
    assert out[expected].tolist() == [[255, 0, 7]] * expected.sum()
    assert out.dtype == np.uint8 and not image.any()                    # input untouched


def test_draw_box_width_2_grows_inwards():
    out = draw_box(np.zeros((6, 6, 3), np.uint8), (0, 0, 5, 5))       # default: white, width 2
    expected = np.ones((6, 6), bool)
    expected[2:4, 2:4] = False
    np.testing.assert_array_equal(out.all(axis=2), expected)
    np.testing.assert_array_equal(out.any(axis=2), expected)
    assert out.max() == 255


def test_draw_box_single_pixel_and_numpy_ints():
    out = draw_box(np.zeros((3, 3, 3), np.uint8), np.array([2, 0, 2, 0]), width=1)
    np.testing.assert_array_equal(out.any(axis=2), outline(3, 3, 2, 0, 2, 0))


@pytest.mark.parametrize("bbox, width", [((1, 1, 4, 1), 1), ((2, 1, 2, 3), 1), ((1, 1, 3, 3), 3),
                                          ((0, 0, 4, 1), 2), ((2, 2, 2, 2), 5)])
def test_draw_box_never_spills_outside_the_box(bbox, width):
    # Pillow alone draws a second row under a one-row box and past a box thinner than 2 * width.
    x0, y0, x1, y1 = bbox
    inside = np.zeros((6, 7), bool)
    inside[y0:y1 + 1, x0:x1 + 1] = True
    out = draw_box(np.zeros((6, 7, 3), np.uint8), bbox, width=width)
    expected = outline(6, 7, *bbox) if width == 1 else inside          # thick enough: filled
    np.testing.assert_array_equal(out.any(axis=2), expected)


def test_draw_box_none_returns_a_copy():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = draw_box(image, None)
    np.testing.assert_array_equal(out, image)
    assert out is not image and not np.shares_memory(out, image)


def test_draw_box_clips_to_the_image():
    out = draw_box(np.zeros((6, 7, 3), np.uint8), (-3, 2, 10, 20), width=1)
    np.testing.assert_array_equal(out.any(axis=2), outline(6, 7, 0, 2, 6, 5))


@pytest.mark.parametrize("bbox, error, match", [
    ((1, 2, 3), ValueError, r"bbox must be 4 integers \(x0, y0, x1, y1\); got \(1, 2, 3\)"),
    ((0.0, 0, 1, 1), TypeError, "bbox must be 4 integers"),
    ("abcd", TypeError, "bbox must be 4 integers"),
    ((3, 0, 1, 2), ValueError, "x0 <= x1 and y0 <= y1"),
    ((0, 3, 2, 1), ValueError, "x0 <= x1 and y0 <= y1"),
    ((7, 0, 9, 2), ValueError, r"bbox must overlap the image of 7x6 pixels; got \(7, 0, 9, 2\)"),
    ((-5, -5, -1, 3), ValueError, "bbox must overlap the image"),
])
def test_draw_box_bad_bbox(bbox, error, match):
    with pytest.raises(error, match=match):
        draw_box(np.zeros((6, 7, 3), np.uint8), bbox)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"width": 0}, ValueError, "width must be >= 1; got 0"),
    ({"width": 1.5}, TypeError, "width must be an integer; got 1.5"),
    ({"color": (256, 0, 0)}, ValueError, r"color must be 3 ints in 0..255; got \(256, 0, 0\)"),
    ({"color": (1, 2)}, ValueError, "color must be 3 ints"),
    ({"color": (1.0, 2, 3)}, TypeError, r"color must be 3 ints in 0..255; got \(1.0, 2, 3\)"),
])
def test_draw_box_bad_style(kwargs, error, match):
    with pytest.raises(error, match=match):
        draw_box(np.zeros((6, 7, 3), np.uint8), (1, 1, 3, 3), **kwargs)
    with pytest.raises(error, match=match):                             # checked with no box too
        draw_box(np.zeros((6, 7, 3), np.uint8), None, **kwargs)


# -- save_png -------------------------------------------------------------------------------

def test_save_png_round_trip(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, size=(5, 9, 3), dtype=np.uint8)
    path = tmp_path / "cam.png"
    path.write_bytes(b"old")                                             # replaced, not appended to
    save_png(path, rgb)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), rgb)
    assert os.listdir(tmp_path) == ["cam.png"]                         # no temporary file left
    save_png(str(tmp_path / "again.png"), rgb)                          # str paths too
    assert sorted(os.listdir(tmp_path)) == ["again.png", "cam.png"]


def test_save_png_leaves_nothing_when_writing_fails(tmp_path, monkeypatch):
    def half_then_fail(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG\r\n\x1a\n half a file")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(Image.Image, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_png(tmp_path / "cam.png", np.zeros((2, 2, 3), np.uint8))
    assert os.listdir(tmp_path) == []
    (tmp_path / "keep.png").write_bytes(b"previous")                   # an existing file survives
    with pytest.raises(OSError, match="disk full"):
        save_png(tmp_path / "keep.png", np.zeros((2, 2, 3), np.uint8))
    assert os.listdir(tmp_path) == ["keep.png"]
    assert (tmp_path / "keep.png").read_bytes() == b"previous"


def test_save_png_missing_folder(tmp_path):
    folder = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match=f"the folder '{folder}' does not exist"):
        save_png(folder / "cam.png", np.zeros((2, 2, 3), np.uint8))
    assert os.listdir(tmp_path) == []


def test_save_png_unwritable_folder(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):                                         # as root, chmod would not stop us
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(image_io.os, "open", refuse)
    with pytest.raises(PermissionError, match=f"the folder '{tmp_path}' is not writable"):
        save_png(tmp_path / "cam.png", np.zeros((2, 2, 3), np.uint8))


def test_save_png_bad_array(tmp_path):
    with pytest.raises(ValueError, match=r"rgb must be an array of shape \(H, W, 3\)"):
        save_png(tmp_path / "cam.png", np.zeros((2, 2), np.uint8))
    assert os.listdir(tmp_path) == []


# -- OPENCV_JET, gray, montage --------------------------------------------------------------

def test_opencv_jet_is_octaves_curve_rounded_half_up():
    v = np.arange(256) / 255.0
    curve = np.clip(1.5 - np.abs(4 * v[:, None] - np.array([3.0, 2.0, 1.0])), 0, 1) * 255   # (256, 3)
    assert visualize.OPENCV_JET.dtype == np.uint8 and not visualize.OPENCV_JET.flags.writeable
    assert np.abs(visualize.OPENCV_JET - curve).max() <= 0.5 + 1e-9
    assert visualize.OPENCV_JET[0].tolist() == [0, 0, 128] and visualize.OPENCV_JET[255].tolist() == [128, 0, 0]
    assert np.abs(JET.astype(int) - visualize.OPENCV_JET).max() == 33


def test_gray_levels():
    rgb = visualize.gray(np.array([[0.0, 1.0], [0.5, 2.0]]))            # 127.5 -> 128 (half to even)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[:, :, 0].tolist() == [[0, 255], [128, 255]] and np.all(rgb == rgb[:, :, :1])
    np.testing.assert_array_equal(visualize.gray(np.eye(2, dtype=bool))[:, :, 1], [[255, 0], [0, 255]])
    with pytest.raises(ValueError, match=r"values must have shape \(H, W\); got \(2, 2, 3\)"):
        visualize.gray(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="values must be finite; got 1 NaN"):
        visualize.gray(np.array([[np.nan, 0.0]]))


def test_montage_places_each_tile_under_its_title():
    a = np.full((10, 10, 3), 200, np.uint8)
    b = np.zeros((20, 10, 3), np.uint8)
    b[0, 0] = (255, 0, 0)
    figure = visualize.montage([a, b])
    assert figure.mode == "RGB" and figure.size == (8 + 2 * 18, 8 + 28)   # pad 8; cells 10 + 8 wide
    pixels = np.asarray(figure)
    np.testing.assert_array_equal(pixels[8:18, 8:18], a)
    np.testing.assert_array_equal(pixels[8:28, 26:36], b)
    assert np.all(pixels[:8] == 255)                                        # white padding
    stacked = np.asarray(visualize.montage([a, b, a], columns=2))           # rows of 10 and 20 px
    assert stacked.shape == (8 + 28 + 18, 8 + 2 * 18, 3)
    np.testing.assert_array_equal(stacked[8 + 28:8 + 28 + 10, 8:18], a)     # row 2 starts after row 1


def test_montage_resizes_with_nearest_neighbour():
    tile = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)               # (1, 2, 3): black, white
    pixels = np.asarray(visualize.montage([tile], side=40))                 # -> (20, 40, 3)
    assert pixels.shape == (8 + 20 + 8, 8 + 40 + 8, 3)
    assert np.all(pixels[8:28, 8:28] == 0) and np.all(pixels[8:28, 28:48] == 255)


def test_montage_shrinks_by_the_mean_over_each_area():
    tile = np.zeros((4, 4, 3), np.uint8)
    tile[:, ::2] = 200                                                       # columns 200, 0, 200, 0
    pixels = np.asarray(visualize.montage([tile], side=2))                  # -> (2, 2, 3): no aliasing
    assert np.all(pixels[8:10, 8:10] == 100)                                 # nearest would give 200 or 0


def test_montage_titles_fit():
    tile = np.zeros((4, 4, 3), np.uint8)
    narrow, wide = visualize.montage([tile], ["a"]), visualize.montage([tile], ["a much longer title"])
    assert wide.size[0] > narrow.size[0] > 4 + 8 and wide.size[1] == narrow.size[1] == 8 + 19 + 4 + 8
    assert (np.asarray(wide)[8:27] != 255).any()                             # the title is drawn


@pytest.mark.parametrize("tiles, kwargs, error, message", [
    ([], {}, ValueError, "tiles must hold at least one image; got none"),
    ([np.zeros((4, 4), np.uint8)], {}, ValueError, r"tiles\[0\] must be an array of shape \(H, W, 3\) and dtype uint8"),
    ([np.zeros((4, 4, 3))], {}, TypeError, r"tiles\[0\] must be an array .* got shape \(4, 4, 3\) and dtype float64"),
    ([np.zeros((4, 4, 3), np.uint8)], {"titles": ["a", "b"]}, ValueError, r"one entry per tile \(1\); got 2"),
    ([np.zeros((4, 4, 3), np.uint8)], {"columns": 0}, ValueError, "columns must be >= 1; got 0"),
    ([np.zeros((4, 4, 3), np.uint8)], {"side": 0}, ValueError, "side must be >= 1; got 0"),
    ([np.zeros((4, 4, 3), np.uint8)], {"side": 2.5}, TypeError, "side must be an integer; got 2.5"),
])
def test_montage_refuses_bad_input(tiles, kwargs, error, message):
    with pytest.raises(error, match=message):
        visualize.montage(tiles, **kwargs)


def test_weighted_sum_figure_draws_eq2_term_by_term():
    """Fig. 2: the largest terms' f_k with their weights, the rest, and M_c, each tile normalised."""
    f = np.array([[[[1, 0], [0, 0]], [[0, 2], [2, 0]], [[1, 1], [1, 1]]]], np.float32)   # (1, K=3, 2, 2)
    w = np.array([[1.0, -1.0, 0.5]], np.float32)             # terms w_k F_k = (0.25, -1, 0.5): k = 2, 0 first
    figure = visualize.weighted_sum_figure(f, w, 0, top=2, side=2)
    tiles = [JET[np.array([[0, 0], [0, 0]])],                # f_2 is constant: normalised to zeros
             JET[np.array([[255, 0], [0, 0]])],              # f_0
             JET[np.array([[255, 0], [0, 255]])],            # the rest: -f_1 = [[0, -2], [-2, 0]]
             JET[np.array([[255, 0], [0, 170]])]]            # M_c = [[1.5, -1.5], [-1.5, 0.5]]: 2/3 -> 170
    titles = ["0.500 x f_2", "+ 1.000 x f_0", "+ the other 1 term [-2.0, 0.0]", "= M_c, c = 0 [-1.5, 1.5]"]
    assert figure.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(figure), np.asarray(visualize.montage(tiles, titles, side=2)))
    every = visualize.weighted_sum_figure(f, w, 0, top=3, side=2)      # no rest tile when top = K
    expected = visualize.montage(tiles[:2] + [JET[np.array([[0, 255], [255, 0]])], tiles[3]],
                                 titles[:2] + ["- 1.000 x f_1", titles[3]], side=2)
    np.testing.assert_array_equal(np.asarray(every), np.asarray(expected))
    with pytest.raises(ValueError, match="side must be >= 1; got 0"):
        visualize.weighted_sum_figure(f, w, 0, top=2, side=0)
