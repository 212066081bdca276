"""numpy_cam.authors: the authors' GoogLeNet-GAP on their data (demo.m), and MATLAB's imresize.

The numbers pinned here were measured with numpy 2.4.6 / scipy 1.17.1 on the bundled files
(the authors' own, checked by SHA-256 at load). No MATLAB ran: MATLAB's rules are checked on
hand-computed cases (derived in the comments) and, where the files are at hand, against
images MATLAB wrote (``test_imresize_matches_images_matlab_wrote``).
"""
import hashlib
import os
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

import numpy_cam
from numpy_cam.authors import (AUTHORS_DATA, blend, crop_cams, demo_strip, fc_bias_from_scores, imresize,
                               load_demo_data, map2jpg, matlab_jet, merge_ten_crops,
                               resize_matrix, run_demo)
from numpy_cam.authors.demo import CROPS, FILES, MERGE_TEN_CROP
from numpy_cam.presets import postprocess

TOP5 = [968, 967, 969, 550, 809]
TOP5_NAMES = ["cup", "espresso", "eggnog", "espresso maker", "soup bowl"]
TOP5_MEAN_SCORES = [0.23370197, 0.14982793, 0.09896109, 0.08792819, 0.07912968]


@pytest.fixture(scope="module")
def data():
    return load_demo_data()


@pytest.fixture(scope="module")
def demo(data):
    return run_demo(data)


# ---- the data: what is read, and its layout


def test_the_bundled_files_are_the_authors_with_their_licence():
    for name, (size, sha256) in FILES.items():
        blob = (AUTHORS_DATA / name).read_bytes()
        assert len(blob) == size and hashlib.sha256(blob).hexdigest() == sha256, name
    assert "Copyright (c) 2017 Bolei Zhou" in (AUTHORS_DATA / "LICENSE").read_text(encoding="utf-8")


def test_load_checks_every_byte_before_parsing(tmp_path):
    for name in FILES:
        shutil.copy(AUTHORS_DATA / name, tmp_path / name)
    assert load_demo_data(tmp_path).features.shape == (10, 1024, 14, 14)
    blob = bytearray((tmp_path / "data_img1.mat").read_bytes())
    blob[-1] ^= 1                                                     # same size, one bit off
    (tmp_path / "data_img1.mat").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="must have SHA-256"):
        load_demo_data(tmp_path)
    (tmp_path / "data_img1.mat").write_bytes(bytes(blob[:100]))
    with pytest.raises(ValueError, match="must be a file of 2634423 bytes"):
        load_demo_data(tmp_path)
    shutil.copy(AUTHORS_DATA / "data_img1.mat", tmp_path / "data_img1.mat")
    (tmp_path / "img1.jpg").unlink()
    with pytest.raises(ValueError, match="no such file"):
        load_demo_data(tmp_path)


def test_layout(data):
    assert data.features.shape == (10, 1024, 14, 14) and data.features.dtype == np.float32
    assert data.fc_weight.shape == (1000, 1024) and data.scores.shape == (10, 1000)
    assert data.image.shape == (256, 256, 3) and data.image.dtype == np.uint8
    assert data.class_names[968] == "n07930864 cup"
    assert np.allclose(data.scores.sum(axis=1), 1, atol=1e-5)          # softmax rows


def _mean_abs(a, b):
    return float(np.abs(a - b).mean())


def test_mirrored_crops_are_mirrored_along_the_columns(data):
    """Crop n + 5 is crop n mirrored left-right; with (crop, K, y, x) that is the LAST axis. Read
    as (crop, K, x, y) (the transpose (3, 2, 0, 1)), the mirror would be along the rows."""
    cams = crop_cams(data, TOP5)                                       # (10, 5, 14, 14)
    for n in range(5):
        along_columns = _mean_abs(cams[n + 5], cams[n][..., ::-1])
        along_rows = _mean_abs(cams[n + 5], cams[n][..., ::-1, :])
        assert along_columns < 0.5 * along_rows, n
        assert _mean_abs(data.features[n + 5], data.features[n][..., ::-1]) < 0.5 * _mean_abs(
            data.features[n + 5], data.features[n][..., ::-1, :])


def test_crop_order_is_measured_from_the_maps(data):
    """Crop 2 (1-based) sees the photo 32 pixels (2 cells) further right than crop 1, crop 3
    32 pixels further down: ``CROPS``. mergeTenCrop.m places them the other way round."""
    f = data.features                                                  # (10, K, 14, 14)
    right = _mean_abs(f[0][..., 2:], f[1][..., :-2])
    down = _mean_abs(f[0][..., 2:, :], f[1][..., :-2, :])
    assert right < 0.5 * down                                          # 0.70 vs 2.98
    assert _mean_abs(f[0][..., 2:, :], f[2][..., :-2, :]) < 0.5 * _mean_abs(f[0][..., 2:], f[2][..., :-2])
    assert CROPS[1][:2] == (0, 32) and CROPS[2][:2] == (32, 0)
    assert MERGE_TEN_CROP[1][:2] == (32, 0) and MERGE_TEN_CROP[2][:2] == (0, 32)


def test_the_cup_map_peaks_on_the_cup(demo):
    """The cup in img1.jpg spans rows 103-135, columns 122-178 (read off the photo by eye); the
    transposed layout would put the peak at row 150, column 117, on the plate."""
    for merged in (demo.merged[0], run_demo(load_demo_data(), placement="cropped").merged[0]):
        row, col = np.unravel_index(merged.argmax(), merged.shape)
        assert (row, col) == (117, 150)                                # on the cup


# ---- the classes and the identity with the stored scores


def test_top5_of_the_crop_averaged_scores(data, demo):
    assert demo.class_idx.tolist() == TOP5
    assert [data.class_names[c].split(" ", 1)[1].split(",")[0] for c in TOP5] == TOP5_NAMES
    np.testing.assert_allclose(demo.mean_scores, TOP5_MEAN_SCORES, rtol=1e-6)
    logits = numpy_cam.class_activation_map(data.features, data.fc_weight,
                                            np.broadcast_to(np.arange(1000), (10, 1000))).mean(axis=(2, 3))
    ours = numpy_cam.softmax(logits).mean(axis=0)                       # (1000,) from mean_{x,y} M_c
    assert numpy_cam.top_classes(ours, 5).tolist() == TOP5


def test_the_offline_demo_ranks_the_first_crop(data):
    """demo.m's mean(scores, 2) on the cached (1, 1, 1000, 10) scores averages nothing."""
    first = run_demo(data, ranking="first-crop")
    assert first.class_idx.tolist() == [968, 967, 809, 969, 441]        # ... soup bowl, eggnog, beer glass
    assert first.class_idx.tolist() == numpy_cam.top_classes(data.scores[0], 5).tolist()


def test_identity_mean_of_the_map_is_the_logit_and_its_softmax_the_stored_scores(data):
    """S_c = mean_{x,y} M_c (b_c = 0); softmax(S_c) vs Caffe's scores: 8.9e-4 at most, all of it
    the bias of CAM_fc: with the bias the scores imply, 2e-6 (float32)."""
    cams = numpy_cam.class_activation_map(data.features, data.fc_weight, np.broadcast_to(np.arange(1000), (10, 1000)))
    logits = cams.mean(axis=(2, 3))                                     # (10, 1000)
    pooled = data.features.astype(np.float64).mean(axis=(2, 3)) @ data.fc_weight.astype(np.float64).T
    assert np.abs(logits - pooled).max() <= 1e-6 * np.abs(pooled).max()   # float32 rounding: 3e-7
    error = np.abs(numpy_cam.softmax(logits) - data.scores).max()
    assert 8.8e-4 < error < 9.0e-4                                      # 8.908e-4
    bias = fc_bias_from_scores(data)                                    # (1000,)
    assert 4.7e-3 < bias.std() < 4.9e-3 and np.abs(bias).max() < 0.017
    with_bias = numpy_cam.softmax(pooled + bias)
    assert np.abs(with_bias - data.scores).max() < 5e-6                 # 1.9e-6


def test_crop_cams_are_eq2_on_the_stored_data(data, demo):
    """M_c(x, y) = sum_k w_k^c f_k(x, y) of every crop, written as an einsum in float64."""
    expected = np.einsum("ck,nkyx->ncyx", data.fc_weight[TOP5].astype(np.float64), data.features.astype(np.float64))
    assert demo.cams.shape == (10, 5, 14, 14) and demo.cams.dtype == np.float32
    np.testing.assert_allclose(demo.cams, expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose([demo.cams[0, 0].max(), demo.cams[0, 0].min(), demo.cams[4, 0, 7, 9],
                                demo.cams[0, 0, 0, 0], demo.cams[9, 4, 13, 13]],
                               [113.75268, -9.1125345, 63.641815, 0.1932551, 1.5388944], rtol=1e-5)
    assert np.unravel_index(demo.cams[0, 0].argmax(), (14, 14)) == (7, 9)


def test_demo_checks_its_arguments(data):
    with pytest.raises(ValueError, match="class_idx must be between 0 and 999; got 1000"):
        crop_cams(data, [968, 1000])
    with pytest.raises(ValueError, match="top_k must be between 1 and 1000; got 0"):
        run_demo(data, top_k=0)
    with pytest.raises(ValueError, match="ranking"):
        run_demo(data, ranking="mean")


# ---- merge, colour, blend


def test_merged_maps_peaks_and_placements(data, demo):
    cropped = run_demo(data, placement="cropped")
    peaks = [(117, 150), (122, 144), (122, 143), (123, 149), (122, 139)]
    assert [np.unravel_index(m.argmax(), m.shape) for m in demo.merged] == peaks
    np.testing.assert_allclose(demo.merged.max(axis=(1, 2)), [2254.6125, 1893.9427, 1265.8547, 1823.5129, 1645.4558],
                               rtol=1e-5)
    np.testing.assert_allclose(cropped.merged.max(axis=(1, 2)), [3453.0479, 2818.5483, 1747.3914, 2633.9104, 2136.7815],
                               rtol=1e-5)
    # the same mass placed differently: the crops as cut pile up higher (they agree)
    np.testing.assert_allclose(cropped.merged.sum(axis=(1, 2)), demo.merged.sum(axis=(1, 2)), rtol=1e-6)
    assert (cropped.merged.max(axis=(1, 2)) > 1.25 * demo.merged.max(axis=(1, 2))).all()   # 1.30 to 1.53x


def test_merge_ten_crops_by_hand():
    maps = np.arange(1, 11, dtype=np.float64)[:, None, None] * np.ones((10, 224, 224))   # crop n is n + 1
    maps[5:, :, 0] = 100.0                                             # mirrored crops: their first column
    merged = merge_ten_crops(maps)                                     # (256, 256)
    assert merged.dtype == np.float32 and merged.shape == (256, 256)
    assert merged[0, 0] == 3 * (1 + 6)                                 # crops 1, 6 only; 6's column 0 went right
    assert merged[0, 223] == 3 * (1 + 100 + 3 + 8)                     # 6's mirrored-back last column; 3, 8 at (0, 32)
    assert merged[0, 255] == 3 * (3 + 100)                             # mergeTenCrop.m: crops 3 and 8 top right
    assert merge_ten_crops(maps, placement="cropped")[0, 255] == 3 * (2 + 100)   # as cut: crops 2 and 7
    assert merged[255, 0] == 3 * (2 + 7)                               # crops 2, 7 bottom left (crop 7 mirrored:
    assert merged[128, 128] == 3 * sum(range(1, 11))                   #  its column 0 lands at column 223)
    assert merge_ten_crops(-maps)[0, 0] == 3 * (1 + 6)                 # absolute values
    with pytest.raises(ValueError, match=r"maps must have shape \(10, \.\.\., 224, 224\)"):
        merge_ten_crops(np.ones((9, 224, 224)))
    with pytest.raises(ValueError, match="placement"):
        merge_ten_crops(maps, placement="centre")


def _jet_by_index_rule(m):
    """MATLAB jet.m's assignments, step by step (the rule, not the closed form)."""
    n = int(np.ceil(m / 4))
    u = np.concatenate([np.arange(1, n + 1) / n, np.ones(n - 1), np.arange(n, 0, -1) / n])
    g = int(np.ceil(n / 2)) - (m % 4 == 1) + np.arange(1, len(u) + 1)
    r, b = g + n, g - n
    g, r, b = g[g <= m], r[r <= m], b[b >= 1]
    out = np.zeros((m, 3))
    out[r - 1, 0] = u[:len(r)]
    out[g - 1, 1] = u[:len(g)]
    out[b - 1, 2] = u[len(u) - len(b):]
    return out


def test_matlab_jet():
    for m in list(range(1, 70)) + [128, 255, 256]:
        np.testing.assert_allclose(matlab_jet(m), _jet_by_index_rule(m), atol=1e-15, err_msg=str(m))
    jet = matlab_jet(256)
    assert jet[0].tolist() == [0, 0, 33 / 64] and jet[-1].tolist() == [0.5, 0, 0]
    assert matlab_jet(64)[8].tolist() == [0, 1 / 16, 1]                # jet(64) row 9: [0 0.0625 1]


def test_map2jpg_by_hand():
    heat = map2jpg(np.array([[0.0, 1.0], [2.0, 3.0]]))                 # gray 0, 1/3, 2/3, 1
    jet = matlab_jet(256)
    np.testing.assert_array_equal(heat.reshape(4, 3), jet[[0, 85, 170, 255]])
    tie = map2jpg(np.array([[0.0, 1.0, 510.0]]))                       # 255 * 1/510 = 0.5: MATLAB rounds up
    np.testing.assert_array_equal(tie[0, 1], jet[1])
    assert (map2jpg(np.ones((2, 2))) == jet[0]).all()
    with_nan = map2jpg(np.array([[np.nan, 1.0, 3.0]]))                 # map2jpg.m line 7: NaN -> index 0
    np.testing.assert_array_equal(with_nan[0], jet[[0, 0, 255]])


def test_blend_and_strip(data, demo):
    out = blend(np.array([[[255, 0, 100]]], np.uint8), np.array([[[0.0, 1.0, 0.5]]]))
    assert out.tolist() == [[[51, int(np.floor(0.7 * 255 + 0.5)), int(np.floor((100 / 255 * 0.2 + 0.35) * 255 + 0.5))]]]
    assert demo.overlays.shape == (5, 256, 256, 3) and demo.overlays.dtype == np.uint8
    with pytest.raises(ValueError, match=r"heatmap must have shape \(\.\.\., 256, 256, 3\)"):
        blend(data.image, demo.heatmaps[:, :224])
    assert demo.overlays[0, 117, 150].tolist() == [132, 40, 39]         # jet(256)'s last row, 0.5 red, on the cup
    strip = demo_strip(data.image, demo.overlays)
    assert strip.shape == (256, 256 + 5 * 264, 3) and (strip[:, 256:264] == 255).all()


def test_the_preset_is_the_demo(demo):
    """The preset's index into jet(256), coloured, is map2jpg of |imresize(M_c)|, in float32 and float64."""
    cams = demo.cams[4]                                                # (5, 14, 14): the centre crop, top 5
    heat = map2jpg(np.abs(imresize(cams.astype(np.float64), (224, 224))))   # (5, 224, 224, 3)
    for cam in (cams, cams.astype(np.float64)):
        index = postprocess(cam, (224, 224), "cam-matlab-demo")         # (5, 224, 224) uint8
        assert index.dtype == np.uint8 and index.min() == 0 and index.max() == 255
        np.testing.assert_array_equal(matlab_jet(256)[index], heat)


# ---- MATLAB's imresize


def test_imresize_shrinks_with_antialiasing_by_hand():
    """4 x 4 ramp 0..15 to 2 x 2. Along an axis, x = 1 samples u = 1.5. Without antialiasing the
    taps are 0..3 (index 0 reflected to 1) with weights -1/16, 9/16, 9/16, -1/16: on 0, 1, 2, 3
    that is 0.4375. With it, h(t) = cubic(t / 2) / 2 over 8 taps, -2..5 reflected to 3, 2, 1,
    1, 2, 3, 4, 4, weights (-3, -9, 29, 111, 111, 29, -9, -3) / 256: 0.4609375 (and 3 - that
    for x = 2). The ramp is 4 r + c, so the corner is 5 times the 1-D value."""
    ramp = np.arange(16, dtype=np.float64).reshape(4, 4)
    np.testing.assert_allclose(imresize(ramp, (2, 2), antialias=False), [[2.1875, 4.3125], [10.6875, 12.8125]],
                               atol=1e-12)
    np.testing.assert_allclose(imresize(ramp, (2, 2)), [[2.3046875, 4.3828125], [10.6171875, 12.6953125]], atol=1e-12)
    np.testing.assert_allclose(imresize(np.full((7, 9), 3.0), (3, 4)), 3.0, atol=1e-12)


def test_imresize_enlarges_and_reflects_by_hand():
    """[0, 1] to 4: x = 1 samples u = 0.75, taps -1, 0, 1, 2 (reflected: 2, 1, 1, 2) with weights
    -3/128, 29/128, 111/128, -9/128: -0.09375; x = 2: 0.203125. Pillow and OpenCV clamp instead."""
    np.testing.assert_allclose(imresize(np.array([[0.0, 1.0]]), (1, 4)), [[-0.09375, 0.203125, 0.796875, 1.09375]],
                               atol=1e-12)
    assert imresize(np.array([[0, 255]], np.uint8), (1, 4)).tolist() == [[0, 52, 203, 255]]   # clipped, rounded
    a = resize_matrix(14, 224)                                         # (224, 14), the demo's 16x
    assert a.shape == (224, 14) and np.allclose(a.sum(axis=1), 1, atol=1e-12)
    np.testing.assert_array_equal(resize_matrix(5, 5), np.eye(5))


def test_imresize_dtypes_and_errors():
    assert imresize(np.ones((2, 3, 4), np.float32), (5, 6)).dtype == np.float32
    assert imresize(np.ones((3, 4)), (5, 6)).shape == (5, 6)
    with pytest.raises(TypeError, match="image must have dtype"):
        imresize(np.ones((3, 4), np.int16), (5, 6))
    with pytest.raises(ValueError, match="size"):
        imresize(np.ones((3, 4)), (0, 6))


MATLAB_IMAGES = os.environ.get("NUMPY_CAM_MATLAB_IMAGES")


@pytest.mark.skipif(not MATLAB_IMAGES, reason="set NUMPY_CAM_MATLAB_IMAGES to a folder with the files named below")
def test_imresize_matches_images_matlab_wrote():
    """Images MATLAB wrote, from two public repositories (their licences do not let us bundle
    them): github.com/fatheral/matlab_imresize ``test/`` (MATLAB R2015b: lena_512x512.png to
    123 x 234 as uint8 and as double), github.com/xinntao/matlab_functions_verification
    ``imresize_bicubic/`` (MATLAB R2017b: baboon.png, double, by 1/2, 1/3, 1/4, 2, 3). Measured:
    lena 0 pixels differ; baboon 0, 0, 0 and 0 except 2 (of 177,120) at 1/2 and 44 (of 2,833,920)
    at 2, each one uint8 step on an exact tie (255 v within 3e-14 of k + 0.5)."""
    folder = pathlib.Path(MATLAB_IMAGES)

    def rgb(name):
        return np.moveaxis(np.asarray(Image.open(folder / name).convert("RGB")), -1, 0)   # (3, H, W)

    def to_uint8(v):                                                   # imwrite of a double image
        return np.floor(np.clip(v, 0, 1) * 255 + 0.5).astype(np.uint8)

    lena = rgb("lena_512x512.png")
    np.testing.assert_array_equal(imresize(lena, (123, 234)), rgb("lena_123x234_uint8.png"))
    np.testing.assert_array_equal(to_uint8(imresize(lena / 255.0, (123, 234))), rgb("lena_123x234_double.png"))
    baboon = rgb("baboon.png") / 255.0
    for name, ties in (("down_x2", 2), ("down_x3", 0), ("down_x4", 0), ("up_x2", 44), ("up_x3", 0)):
        matlab = rgb(f"baboon_{name}_matlab.png").astype(int)
        ours = to_uint8(imresize(baboon, matlab.shape[1:])).astype(int)
        assert np.abs(ours - matlab).max() <= 1 and (ours != matlab).sum() == ties, name
