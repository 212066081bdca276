"""Eq. 2 and the normalisation: exact numbers, the CAM identity for every shipped model."""
import importlib.util

import numpy as np
import pytest

import numpy_cam
from numpy_cam import cam as C
from numpy_cam.models import ARCHITECTURES, BUILTIN, PACKAGED_WEIGHTS

RNG = np.random.default_rng(2016)


def test_eq2_hand_built():
    f = np.array([[[[1, 2], [3, 4]], [[0, 1], [0, 1]]]], np.float32)    # (1, K=2, 2, 2)
    w = np.array([[1, 0], [2, -3], [0.5, 0.5]], np.float32)            # (3 classes, K=2)
    np.testing.assert_array_equal(C.class_activation_map(f, w, 1), [[[2, 1], [6, 5]]])
    np.testing.assert_array_equal(C.class_activation_map(f, w, [[0, 2]]),
                                  [[[[1, 2], [3, 4]], [[0.5, 1.5], [1.5, 2.5]]]])


def test_eq2_matches_loop_twin_and_batches():
    f = RNG.standard_normal((3, 6, 4, 5)).astype(np.float32)
    w = RNG.standard_normal((10, 6)).astype(np.float32)
    per_image = C.class_activation_map(f, w, [7, 0, 3])
    assert per_image.shape == (3, 4, 5) and per_image.dtype == np.float32
    np.testing.assert_allclose(per_image, C.class_activation_map_loop(f, w, [7, 0, 3]), rtol=1e-5, atol=1e-6)
    several = C.class_activation_map(f, w, [[7, 1], [0, 2], [3, 9]])  # (N, k) classes
    assert several.shape == (3, 2, 4, 5)
    np.testing.assert_array_equal(several[:, 0], per_image)
    np.testing.assert_allclose(C.class_activation_map(f, w, 4), C.class_activation_map_loop(f, w, 4),
                               rtol=1e-5, atol=1e-6)


GAP_MODELS = [pytest.param(n, marks=pytest.mark.skipif(
                  importlib.util.find_spec(BUILTIN[n]["package"]) is None,
                  reason=f"the weights package {BUILTIN[n]['package']} is not installed")) for n in sorted(BUILTIN)
              ] + sorted(n for n in PACKAGED_WEIGHTS if ARCHITECTURES[n].pooling == "avg")


@pytest.mark.parametrize("name", GAP_MODELS)
def test_cam_identity_for_every_shipped_model(name):
    """mean_{x,y} M_c(x, y) + b_c == S_c for every class of every image (every GAP model)."""
    model = numpy_cam.load_model(name)
    x = np.concatenate([model.preprocess(numpy_cam.DATA / "coffee.png"),
                        model.preprocess(numpy_cam.DATA / "chelsea.png")])        # (2, 3, S, S)
    f = model.features(x)
    logits = model.classify(f)                                                      # (2, classes)
    every_class = np.tile(np.arange(model.num_classes), (2, 1))                     # (2, classes)
    cam = C.class_activation_map(f, model.fc_weight, every_class)                   # (2, classes, h, w)
    np.testing.assert_allclose(cam.mean(axis=(2, 3)) + model.fc_bias, logits, rtol=0, atol=2e-5)


def test_cam_identity_fails_for_the_gmp_net():
    """For global max pooling S_c = sum_k w_k^c max f_k: the mean of M_c is not S_c - b_c."""
    model = numpy_cam.load_model("small_gmp")
    f = model.features(model.preprocess(numpy_cam.DATA / "coffee.png"))
    cam = C.class_activation_map(f, model.fc_weight, np.arange(model.num_classes)[None])
    gap_guess = cam.mean(axis=(2, 3)) + model.fc_bias
    assert np.abs(gap_guess - model.classify(f)).max() > 0.1
    np.testing.assert_allclose(f.max(axis=(2, 3)) @ model.fc_weight.T + model.fc_bias, model.classify(f), atol=1e-5)


def test_top_classes_order_and_ties():
    logits = np.array([[0.1, 3.0, 3.0, -1.0]])
    np.testing.assert_array_equal(C.top_classes(logits, 3), [[1, 2, 0]])
    with pytest.raises(ValueError, match=r"top_k must be between 1 and 4; got 5"):
        C.top_classes(logits, 5)
    with pytest.raises(ValueError, match=r"top_k must be between 1 and 4; got 0"):
        C.top_classes(logits, top_k=0)
    with pytest.raises(TypeError, match=r"top_k must be an integer; got 2.0"):
        C.top_classes(logits, 2.0)
    with pytest.raises(TypeError, match=r"logits must be a NumPy array of shape \(\.\.\., classes\); got list"):
        C.top_classes([0.1, 3.0], 1)


def test_top_classes_reports_at_most_5_by_default():
    logits = np.random.default_rng(0).normal(size=(2, 7))
    np.testing.assert_array_equal(C.top_classes(logits), C.top_classes(logits, 5))
    assert C.top_classes(logits[:, :3]).shape == (2, 3)                  # fewer classes: all of them
    assert C.top_classes(np.array([0.5, 0.2])).tolist() == [0, 1]
    assert C.default_top_k(1000) == 5 and C.default_top_k(2) == 2


def test_normalize_exact_and_constant():
    m = np.array([[[2.0, 4.0], [6.0, 10.0]], [[3.0, 3.0], [3.0, 3.0]]], np.float32)
    out = C.normalize(m)
    np.testing.assert_array_equal(out[0], [[0, 0.25], [0.5, 1]])
    np.testing.assert_array_equal(out[1], np.zeros((2, 2)))                        # constant: zeros, no NaN
    assert out.dtype == np.float32
    np.testing.assert_array_equal(m[1], 3.0)                                        # input untouched


def test_to_heatmap_orders_differ_and_stay_in_range():
    cam = RNG.standard_normal((1, 7, 7)).astype(np.float32)
    a = C.to_heatmap(cam, (224, 224))
    b = C.to_heatmap(cam, (224, 224), order="normalize-first")
    for h in (a, b):
        assert h.shape == (1, 224, 224) and h.dtype == np.float32
        assert h.min() >= 0.0 and h.max() <= 1.0
    assert a.min() == 0.0 and a.max() == 1.0          # normalised last: the full range is reached
    assert 1e-4 < np.abs(a - b).max() < 0.1                                        # ~0.01 apart, not equal
    r = C.to_heatmap(cam, (224, 224), relu=True)       # ReLU on the h x w map, before upsampling
    np.testing.assert_array_equal(r, C.normalize(numpy_cam.upsample_bilinear(np.maximum(cam, 0), (224, 224))))
    assert np.abs(r - a).max() > 0.1


def test_to_heatmap_same_size_upsample_first_is_plain_normalisation():
    cam = RNG.standard_normal((2, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(C.to_heatmap(cam, (5, 6)), C.normalize(cam))


@pytest.mark.parametrize("args, error, match", [
    ((np.zeros((1, 4, 2, 2), np.float32), np.zeros((3, 5), np.float32), 0), ValueError,
     r"fc_weight must have shape \(classes, 4\)"),
    ((np.zeros((4, 2, 2), np.float32), np.zeros((3, 4), np.float32), 0), ValueError,
     r"features must have shape \(N, K, h, w\); got \(4, 2, 2\)"),
    ((np.zeros((1, 4, 2, 2), np.float32), np.zeros((3, 4), np.float32), 3), ValueError,
     r"class_idx must be between 0 and 2; got 3"),
    ((np.zeros((1, 4, 2, 2), np.float32), np.zeros((3, 4), np.float32), -1), ValueError,
     r"class_idx must be between 0 and 2; got -1"),
    ((np.zeros((2, 4, 2, 2), np.float32), np.zeros((3, 4), np.float32), [[0], [5]]), ValueError,
     r"class_idx must be between 0 and 2; got 5"),
    ((np.zeros((2, 4, 2, 2), np.float32), np.zeros((3, 4), np.float32), [0, 1, 2]), ValueError,
     r"one class per image \(2\); got 3"),
    ((np.zeros((2, 4, 2, 2), np.float32), np.zeros((3, 4), np.float32), np.zeros((3, 1), int)), ValueError,
     r"class_idx must be an int, N ints or an \(N, J\) array \(N = 2\); got shape \(3, 1\)"),
    ((np.zeros((1, 4, 2, 2), np.float32), np.zeros((3, 4), np.float32), 1.5), TypeError,
     r"class_idx must be an integer; got 1.5"),
    ((np.zeros((1, 4, 2, 2), np.float32), np.zeros((3, 4), np.float32), [0.0]), TypeError,
     r"class_idx must be integers; got dtype float64"),
    ((np.zeros((1, 4, 2, 2), np.int64), np.zeros((3, 4), np.float32), 0), TypeError,
     r"features must have dtype float; got int64"),
    (([[[[0.0]]]], np.zeros((3, 1), np.float32), 0), TypeError,
     r"features must be a NumPy array of shape \(N, K, h, w\); got list"),
])
def test_cam_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        C.class_activation_map(*args)


def test_cam_loop_twin_takes_one_class_per_image():
    f, w = np.zeros((2, 4, 2, 2), np.float32), np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"class_idx must be an int or N ints \(N = 2\); got shape \(2, 2\)"):
        C.class_activation_map_loop(f, w, [[0, 1], [1, 2]])
    with pytest.raises(ValueError, match=r"class_idx must be between 0 and 2; got 3"):
        C.class_activation_map_loop(f, w, 3)


def test_to_heatmap_bad_input():
    cam = np.zeros((1, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"order must be 'upsample-first' or 'normalize-first'; got 'sideways'"):
        C.to_heatmap(cam, (4, 4), order="sideways")
    with pytest.raises(ValueError, match=r"size must be \(H, W\) with positive integers; got \(0, 4\)"):
        C.to_heatmap(cam, (0, 4))
    with pytest.raises(ValueError, match=r"cam must have shape \(\.\.\., h, w\); got \(2,\)"):
        C.to_heatmap(np.zeros(2), (4, 4))


def test_normalize_bad_input():
    with pytest.raises(ValueError, match=r"maps must have shape \(\.\.\., H, W\); got \(3,\)"):
        C.normalize(np.zeros(3))
    with pytest.raises(ValueError, match=r"maps must not be empty; got shape \(0, 2\)"):
        C.normalize(np.zeros((0, 2)))
    with pytest.raises(TypeError, match=r"maps must have dtype float, int or bool; got complex128"):
        C.normalize(np.zeros((2, 2), complex))


class Names:
    """A model as resolve_class sees it: its class names only."""

    def __init__(self, *class_names):
        self.class_names = class_names


ANIMALS = Names("tabby, tabby cat", "tiger cat", "Egyptian cat", "crane", "crane", "tiger, Panthera tigris")


@pytest.mark.parametrize("given, index", [
    (2, 2), (np.int64(1), 1), (np.array(3), 3), ("2", 2), (" 0 ", 0),  # indices, a string of digits too
    (np.array("tabby"), 0),
    ("tiger cat", 1), ("Egyptian cat", 2),                             # exact names
    ("EGYPTIAN CAT", 2), ("tabby", 0), ("Panthera tigris", 5),        # any case, any synonym
    ("tiger", 5),                                                      # a synonym wins over prefixes
    ("egypt", 2), ("panth", 5),                                        # a unique prefix
    (None, None),
])
def test_resolve_class_by_index_or_name(given, index):
    assert C.resolve_class(ANIMALS, given) == index


def test_resolve_class_takes_sequences_and_arrays():
    assert C.resolve_class(ANIMALS, ["tabby", 1, "egypt"]) == [0, 1, 2]
    assert C.resolve_class(ANIMALS, [["tabby", 1], [2, "tiger"]]) == [[0, 1], [2, 5]]
    idx = np.array([[0, 5]])
    assert C.resolve_class(ANIMALS, idx) is idx                                     # checked, as it is
    assert C.resolve_class(ANIMALS, np.array(["tabby", "tiger cat"])) == [0, 1]


@pytest.mark.parametrize("given, error, match", [
    (1.0, TypeError, r"class_idx must be a class index \(an integer\) or a class name; got 1.0"),
    (True, TypeError, r"class_idx must be a class index \(an integer\) or a class name; got True"),
    (np.bool_(False), TypeError, r"got np.False_|got False"),
    ([0, 1.5], TypeError, r"got 1.5"),
    (np.array([0.0]), TypeError, r"got np.float64\(0.0\)|got 0.0"),
    (np.array([True]), TypeError, r"class_idx must be integers; got dtype bool"),
    (6, ValueError, r"class_idx must be between 0 and 5; got 6"),
    ("-1", ValueError, r"class_idx must be between 0 and 5; got -1"),
    (np.array([[0, 9]]), ValueError, r"class_idx must be between 0 and 5; got 9"),
    ("crane", ValueError, r"class name 'crane' is ambiguous: it names classes 3 \(crane\), 4 \(crane\); give the "
                          r"index"),
    ("ti", ValueError, r"'ti' is ambiguous: it names classes 1 \(tiger cat\), 5 \(tiger, Panthera tigris\)"),
    ("tigger cat", ValueError, r"unknown class name 'tigger cat': expected an index 0..5 or a class name; "
                               r"did you mean 'tiger cat'"),
    ("unicorn", ValueError, r"unknown class name 'unicorn': expected an index 0..5 or a class name$"),
])
def test_resolve_class_refuses(given, error, match):
    with pytest.raises(error, match=match):
        C.resolve_class(ANIMALS, given)


def test_resolve_class_names_the_option():
    with pytest.raises(ValueError, match=r"^--class must be between 0 and 5; got 7$"):
        C.resolve_class(ANIMALS, "7", name="--class")


def test_resolve_class_on_imagenet_names():
    model = Names(*numpy_cam.models.model.class_names_for("imagenet", 1000))
    assert C.resolve_class(model, "Egyptian cat") == 285 and C.resolve_class(model, "espresso") == 967
    assert C.resolve_class(model, ["tiger cat", "cup"]) == [282, 968]
    with pytest.raises(ValueError, match=r"did you mean 'corn', 'acorn'\?"):
        C.resolve_class(model, "unicorn")


def test_cam_terms_hand_built():
    """Fig. 2: M_c = sum_k w_k^c f_k, the largest terms w_k^c F_k apart, the others summed."""
    f = np.array([[[[1, 0], [0, 0]], [[0, 2], [2, 0]], [[1, 1], [1, 1]]]], np.float32)   # (1, K=3, 2, 2)
    w = np.array([[1.0, -1.0, 0.5], [0.0, 0.0, 0.0]], np.float32)                         # (2 classes, K)
    # F = (0.25, 1, 1): terms w F = (0.25, -1, 0.5) -> k = 2 first, then k = 0, then k = 1
    t = C.cam_terms(f, w, 0, top=2)
    assert t["units"].tolist() == [2, 0] and t["weights"].tolist() == [0.5, 1.0]
    assert t["contributions"].tolist() == [0.5, 0.25]
    np.testing.assert_array_equal(t["maps"], f[0, [2, 0]])
    np.testing.assert_array_equal(t["terms"], [[[0.5, 0.5], [0.5, 0.5]], [[1, 0], [0, 0]]])
    np.testing.assert_array_equal(t["rest"], [[0, -2], [-2, 0]])
    np.testing.assert_array_equal(t["cam"], [[1.5, -1.5], [-1.5, 0.5]])
    np.testing.assert_array_equal(t["terms"].sum(0) + t["rest"], t["cam"])
    every = C.cam_terms(f, w, 0, top=3)
    np.testing.assert_array_equal(every["rest"], np.zeros((2, 2)))
    assert C.cam_terms(f, w, 1, top=3)["units"].tolist() == [0, 1, 2]          # ties: lower k first


def test_cam_terms_bad_input():
    f, w = np.zeros((2, 3, 2, 2), np.float32), np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"features must hold one image, shape \(1, K, h, w\); got \(2, 3, 2, 2\)"):
        C.cam_terms(f, w, 0)
    with pytest.raises(ValueError, match=r"top must be between 1 and 3; got 4"):
        C.cam_terms(f[:1], w, 0, top=4)
    with pytest.raises(ValueError, match=r"class_idx must be between 0 and 1; got 2"):
        C.cam_terms(f[:1], w, 2)
