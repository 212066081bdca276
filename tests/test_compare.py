"""numpy_cam.compare: the cross-library table, on hand-built values and on the README's case
(EfficientNet-Lite0, chelsea.png, class 282). The README test fails until the README holds
the table ``python -m numpy_cam.compare`` prints."""
import pathlib

import numpy as np
import pytest

import numpy_cam
from numpy_cam import compare
from numpy_cam.compare import CLASS_IDX, PHOTO, cross_library_table, format_table
from numpy_cam.family import METHODS
from numpy_cam.localize import localize
from numpy_cam.presets import PRESETS

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def lite0():
    model = numpy_cam.load_model("efficientnet_lite0")
    x = model.preprocess(numpy_cam.DATA / PHOTO)                           # (1, 3, 224, 224)
    return model, x, cross_library_table(model, x, CLASS_IDX, x.shape[2:])


def row(rows, method, preset):
    (r,) = [r for r in rows if (r["method"], r["preset"]) == (method, preset)]
    return r


def test_one_row_per_method_and_preset_in_order(lite0):
    _, _, rows = lite0
    assert [(r["method"], r["preset"]) for r in rows] == [(m, p) for m in METHODS for p in PRESETS]
    assert all(set(r) == {"method", "preset", "raw", "peak", "box", "difference"} for r in rows)


def test_the_default_row_is_to_heatmap_of_cam(lite0):
    model, x, rows = lite0
    m = numpy_cam.class_activation_map(model.features(x), model.fc_weight, CLASS_IDX)   # (1, 7, 7)
    heatmap = numpy_cam.to_heatmap(m[0], (224, 224))                       # (224, 224)
    r = row(rows, "cam", "numpy-cam")
    assert r["difference"] == 0 and r["raw"] == "method_map"
    assert r["peak"] == np.unravel_index(np.argmax(heatmap), heatmap.shape) and r["box"] == localize(heatmap)


def test_gradcam_xgradcam_hirescam_rows_are_cams_on_this_head(lite0):
    """The identities, as the table shows them: every preset, the same peak, box and distance."""
    _, _, rows = lite0
    for preset in PRESETS:
        expected = row(rows, "cam", preset)
        for method in ("gradcam", "xgradcam", "hirescam"):
            r = row(rows, method, preset)
            assert (r["peak"], r["box"]) == (expected["peak"], expected["box"]), (method, preset)
            assert abs(r["difference"] - expected["difference"]) < 1e-5, (method, preset)


def test_the_peers_own_forms_go_in(lite0):
    _, _, rows = lite0
    torchcam, exact = row(rows, "gradcam++", "torchcam"), row(rows, "gradcam++", "torchcam-cam")
    assert torchcam["raw"] == "no denominator (GradCAMpp)" and exact["raw"] == "method_map"
    assert torchcam["difference"] - exact["difference"] > 0.02                 # 0.155 vs 0.123 (measured)
    assert row(rows, "gradcam", "captum")["raw"] == "M_c / (h w), signed (LayerGradCam)"


def test_presets_without_a_resize_stay_at_the_feature_grid(lite0):
    _, _, rows = lite0
    for preset in ("torchcam", "torchcam-cam"):
        r = row(rows, "cam", preset)
        assert max(r["peak"]) < 7 and max(r["box"][2:]) <= 6              # x1 and y1 on the 7 x 7 grid


def test_a_class_name_is_its_index():
    model = numpy_cam.load_model("small_gap")                              # 6 classes: fast
    x = model.preprocess(numpy_cam.DATA / PHOTO)                           # (1, 3, 64, 64)
    by_name = cross_library_table(model, x, "checks-plus", (64, 64))
    assert by_name == cross_library_table(model, x, 1, (64, 64))
    with pytest.raises(ValueError, match="unknown class name 'no such class'"):
        cross_library_table(model, x, "no such class", (64, 64))
    with pytest.raises(TypeError, match="class_idx must be one class"):
        cross_library_table(model, x, [0, 1], (64, 64))


def test_unit_scale():
    demo = np.array([[[0, 51, 255]]], np.uint8)
    np.testing.assert_allclose(compare._unit_scale(demo, "cam-pytorch-demo"), [[[0, 0.2, 1]]], rtol=1e-6)
    captum = np.array([[[-2.0, 0.0, 2.0]]])
    np.testing.assert_array_equal(compare._unit_scale(captum, "captum"), [[[0, 0.5, 1]]])    # no min-max step
    np.testing.assert_array_equal(compare._unit_scale(captum, "numpy-cam"), captum)          # normalised already


def test_format_table():
    rows = [{"method": "cam", "preset": "numpy-cam", "raw": "method_map", "peak": (1, 2), "box": (0, 1, 5, 6),
             "difference": 0.0}, {"method": "gradcam", "preset": "captum", "raw": "signed", "peak": (3, 4),
                                  "box": None, "difference": 0.12345}]
    assert format_table(rows).splitlines()[2:] == ["| cam | numpy-cam | method_map | (1, 2) | (0, 1, 5, 6) | 0.000 |",
                                                   "| gradcam | captum | signed | (3, 4) | none | 0.123 |"]
    assert format_table(rows).splitlines()[0].count("|") == 7 and format_table(rows).endswith("|\n")


def test_bad_input(lite0):
    model, x, _ = lite0
    with pytest.raises(ValueError, match=r"x must have shape \(1, 3, H, W\); got \(2, 3, 224, 224\)"):
        cross_library_table(model, np.concatenate([x, x]), CLASS_IDX, (224, 224))
    with pytest.raises(TypeError, match=r"x must be a NumPy array of shape \(1, 3, H, W\); got list"):
        cross_library_table(model, x.tolist(), CLASS_IDX, (224, 224))
    with pytest.raises(ValueError, match=r"class_idx must be between 0 and 999; got 1000"):
        cross_library_table(model, x, 1000, (224, 224))
    with pytest.raises(TypeError, match=r"size must be \(H, W\)"):
        cross_library_table(model, x, CLASS_IDX, 224)


def test_main_prints_the_caption_and_the_table(lite0, monkeypatch, capsys):
    _, _, rows = lite0
    monkeypatch.setattr(compare, "cross_library_table", lambda *args: rows)
    compare.main()
    out = capsys.readouterr().out
    assert out.startswith("efficientnet_lite0, bundled chelsea.png, class 282 ('tiger cat')")
    assert "Score-CAM on all the maps" in out and out.endswith(format_table(rows))


def test_readme_holds_the_table(lite0):
    """The README's cross-library table is this one (paste ``python -m numpy_cam.compare``)."""
    _, _, rows = lite0
    assert format_table(rows) in README.read_text(encoding="utf-8")
