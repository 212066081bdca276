"""explain_image and numpy-cam explain: one figure of every step; each argument checked once."""
import numpy as np
import pytest
from PIL import Image

import numpy_cam
from numpy_cam.cli import main
from numpy_cam.explain import explain_figure


@pytest.fixture(scope="module")
def model():
    return numpy_cam.load_model()


@pytest.mark.parametrize("photo, top1", [("coffee.png", {967}), ("chelsea.png", {281, 282, 285})])
def test_explain_writes_the_figure_for_both_photos(tmp_path, capsys, photo, top1):
    out = tmp_path / "fig.png"
    assert main(["explain", str(numpy_cam.DATA / photo), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: class ") and "mean(M_c) + b_c" in printed
    assert int(printed[len(f"wrote {out}: class "):].split()[0]) in top1
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.width > 1000 and im.height > 500


def test_the_figure_shows_the_identity_and_the_largest_terms(model):
    figure, numbers = explain_figure(model, numpy_cam.DATA / "coffee.png")
    assert figure.dtype == np.uint8 and figure.ndim == 3
    assert numbers["class"] == 967 and abs(numbers["logit"] - numbers["mean_cam_plus_bias"]) < 1e-4
    terms = [t for _, _, t in numbers["weights"]]
    assert terms == sorted(terms, reverse=True) and len(terms) == 6


@pytest.mark.parametrize("argv, message", [
    (["missing.png"], "missing.png: no such file"),
    ([str(numpy_cam.DATA / "coffee.png"), "--class", "unicorn"], "unknown class name 'unicorn'"),
])
def test_explain_bad_input(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["explain"] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("numpy-cam: error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


CHECKED_MODULES = ("numpy_cam.cli", "numpy_cam.explain", "numpy_cam.cam", "numpy_cam.localize",
                   "numpy_cam.visualize", "numpy_cam.upsample", "numpy_cam.models.model")


@pytest.fixture
def checked(monkeypatch):
    """The names of the scalar arguments checked (by _checks' helpers) while the test runs."""
    import sys
    from numpy_cam import _checks
    calls = []
    for helper in ("check_unit_interval", "check_int_range", "check_choice"):
        real = getattr(_checks, helper)

        def spy(name, value, *rest, real=real):
            calls.append(name)
            return real(name, value, *rest)
        for module in CHECKED_MODULES:
            if hasattr(sys.modules[module], helper):
                monkeypatch.setattr(f"{module}.{helper}", spy)
    return calls


def test_explain_image_checks_each_argument_once(model, checked):
    result = numpy_cam.explain_image(model, numpy_cam.DATA / "coffee.png", class_idx=967, top_k=3,
                                     threshold=0.3, alpha=0.4, connectivity=4)
    assert result.class_idx == 967 and len(result.top) == 3
    assert sorted(checked) == ["alpha", "class_idx", "connectivity", "method", "threshold", "top_k"]


def test_explain_figure_checks_each_argument_once(model, checked):
    _, numbers = explain_figure(model, numpy_cam.DATA / "coffee.png", class_idx=967, threshold=0.3, top_weights=4,
                                top_k=2)
    assert numbers["class"] == 967 and [i for i, _, _ in numbers["top"]][:1] == [967] and len(numbers["top"]) == 2
    assert sorted(checked) == ["class_idx", "threshold", "top_k", "top_weights"]


def test_top_k_defaults_to_5_for_1000_classes(model):
    assert len(numpy_cam.explain_image(model, numpy_cam.DATA / "coffee.png").top) == 5
    assert len(explain_figure(model, numpy_cam.DATA / "coffee.png")[1]["top"]) == 5


def test_the_explain_command_checks_nothing_twice(tmp_path, capsys, checked):
    assert main(["explain", str(numpy_cam.DATA / "coffee.png"), "--out", str(tmp_path / "fig.png")]) == 0
    assert checked == []                        # its --class is resolved by the command itself


@pytest.mark.parametrize("kwargs, error, match", [
    ({"top_k": 0}, ValueError, r"top_k must be between 1 and 1000; got 0"),
    ({"top_k": 2.0}, TypeError, r"top_k must be an integer; got 2.0"),
    ({"class_idx": 1000}, ValueError, r"class_idx must be between 0 and 999; got 1000"),
    ({"class_idx": 967.0}, TypeError, r"class_idx must be a class index \(an integer\) or a class name; got 967.0"),
    ({"class_idx": True}, TypeError, r"class_idx must be a class index \(an integer\) or a class name; got True"),
    ({"class_idx": [967, 968]}, TypeError, r"class_idx must be one class \(an index or a name\); got \[967, 968\]"),
    ({"class_idx": "unicorn"}, ValueError, r"unknown class name 'unicorn': expected an index 0..999 or a class name; "
                                           r"did you mean 'corn', 'acorn'\?"),
    ({"class_idx": "crane"}, ValueError, r"class name 'crane' is ambiguous: it names classes 134 \(crane\), 517"),
    ({"threshold": 1.5}, ValueError, r"threshold must be between 0 and 1; got 1.5"),
    ({"alpha": -0.5}, ValueError, r"alpha must be between 0 and 1; got -0.5"),
    ({"alpha": "0.5"}, TypeError, r"alpha must be a number between 0 and 1; got '0.5'"),
    ({"connectivity": 6}, ValueError, r"connectivity must be 4 or 8; got 6"),
    ({"method": "gradcam-pp"}, ValueError, r"method must be 'cam', 'gradcam', .* or 'eigencam'; got 'gradcam-pp'"),
])
def test_explain_image_bad_arguments(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        numpy_cam.explain_image(model, numpy_cam.DATA / "coffee.png", **kwargs)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"top_weights": 0}, ValueError, r"top_weights must be between 1 and 1280; got 0"),
    ({"class_idx": -1}, ValueError, r"class_idx must be between 0 and 999; got -1"),
    ({"class_idx": "unicorn"}, ValueError, r"unknown class name 'unicorn'"),
    ({"class_idx": ["cup"]}, TypeError, r"class_idx must be one class \(an index or a name\); got \['cup'\]"),
    ({"threshold": float("nan")}, ValueError, r"threshold must be between 0 and 1; got nan"),
    ({"top_k": 1001}, ValueError, r"top_k must be between 1 and 1000; got 1001"),
    ({"top_k": "5"}, TypeError, r"top_k must be an integer; got '5'"),
])
def test_explain_figure_bad_arguments(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        explain_figure(model, numpy_cam.DATA / "coffee.png", **kwargs)


@pytest.mark.parametrize("method", ["gradcam", "hirescam", "eigencam"])
def test_explain_image_maps_with_another_method_and_keeps_every_other_step(model, method):
    """method= replaces M_c by that method's raw map of the same class on the same x; the rest is CAM's."""
    from numpy_cam.cam import to_heatmap
    from numpy_cam.family import method_map
    cam = numpy_cam.explain_image(model, numpy_cam.DATA / "chelsea.png")
    other = numpy_cam.explain_image(model, numpy_cam.DATA / "chelsea.png", method=method)
    assert other.method == method and cam.method == "cam"
    assert other.class_idx == cam.class_idx == 282 and other.top == cam.top
    np.testing.assert_array_equal(other.x, cam.x)
    np.testing.assert_array_equal(other.cam, method_map(model, cam.x, 282, method)[0])
    side = cam.heatmap.shape[0]
    np.testing.assert_array_equal(other.heatmap, to_heatmap(other.cam, (side, side)))
    if method == "eigencam":                     # no class: another map
        assert np.abs(other.heatmap - cam.heatmap).max() > 0.05
        return
    # Grad-CAM = ReLU(M_c) / (h w), HiResCAM = M_c / (h w) on this GAP head; M_c > 0 on this photo,
    # so both give CAM's heatmap and box (family's theorem, seen through the whole pipeline)
    assert cam.cam.min() > 0
    np.testing.assert_allclose(other.cam, cam.cam / cam.cam.size, rtol=0, atol=1e-6 * np.abs(cam.cam).max())
    np.testing.assert_allclose(other.heatmap, cam.heatmap, rtol=0, atol=1e-5)
    assert other.bbox == cam.bbox


@pytest.mark.parametrize("by_name", ["Egyptian cat", "egyptian CAT", "egypt", "285", np.int64(285)])
def test_explain_image_and_figure_take_the_class_by_name(model, by_name):
    """class_idx as the command's --class takes it: an index, a name (any case, a synonym, a prefix)."""
    by_index = numpy_cam.explain_image(model, numpy_cam.DATA / "chelsea.png", class_idx=285)
    result = numpy_cam.explain_image(model, numpy_cam.DATA / "chelsea.png", class_idx=by_name)
    assert result.class_idx == 285 and type(result.class_idx) is int and result.bbox == by_index.bbox
    np.testing.assert_array_equal(result.cam, by_index.cam)
    assert explain_figure(model, numpy_cam.DATA / "chelsea.png", class_idx=by_name)[1]["class"] == 285
