"""CAM vs Grad-CAM: on a pooling -> FC head, Grad-CAM == ReLU(M_c) / (h w), for every shipped model."""
import numpy as np
import pytest

import numpy_cam
from numpy_cam.cam import class_activation_map
from numpy_cam.family import grad_cam, score_gradient
from numpy_cam.models import POOLING

RNG = np.random.default_rng(2017)


def score(f, w, c, pooling):
    return float((POOLING[pooling](f.astype(np.float64)) @ w.T.astype(np.float64))[0, c])


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_gradient_against_finite_differences(pooling):
    f = RNG.standard_normal((1, 3, 4, 5))
    w = RNG.standard_normal((6, 3))
    grad = score_gradient(f, w, 2, pooling)
    numeric = np.zeros_like(f)
    eps = 1e-6
    for idx in np.ndindex(f.shape):
        up, down = f.copy(), f.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (score(up, w, 2, pooling) - score(down, w, 2, pooling)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


def test_hand_built_gap_gradient():
    f = np.ones((1, 2, 2, 2), np.float32)
    w = np.array([[4.0, -8.0]], np.float32)
    np.testing.assert_array_equal(score_gradient(f, w, 0)[0, :, 0, 0], [1.0, -2.0])   # w / (h w), h w = 4


@pytest.mark.parametrize("name", ["efficientnet_lite0", "small_gap", "small_gmp"])
def test_grad_cam_is_relu_cam_over_hw_for_every_shipped_model(name):
    model = numpy_cam.load_model(name)
    x = np.concatenate([model.preprocess(numpy_cam.DATA / "coffee.png"),
                        model.preprocess(numpy_cam.DATA / "chelsea.png")])
    f = model.features(x)                                                  # (2, K, h, w)
    h, w = f.shape[2:]
    for c in (0, 3, model.num_classes - 1):
        cam = class_activation_map(f, model.fc_weight, c)                  # (2, h, w)
        g = grad_cam(f, model.fc_weight, c, pooling=model.pooling)
        scale = max(1e-6, float(np.abs(cam).max()) / (h * w))
        np.testing.assert_allclose(g, np.maximum(cam, 0) / (h * w), rtol=0, atol=1e-5 * scale)


def test_gradient_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    f = RNG.standard_normal((2, 4, 3, 5)).astype(np.float32)
    w = RNG.standard_normal((5, 4)).astype(np.float32)
    for pooling in ("avg", "max"):
        t = torch.from_numpy(f.copy()).requires_grad_(True)
        pooled = t.mean(dim=(2, 3)) if pooling == "avg" else t.amax(dim=(2, 3))
        (pooled @ torch.from_numpy(w).T)[:, 1].sum().backward()
        np.testing.assert_allclose(score_gradient(f, w, 1, pooling), t.grad.numpy(), atol=1e-6)


@pytest.mark.parametrize("function", [score_gradient, grad_cam])
def test_bad_pooling(function):
    with pytest.raises(ValueError, match=r"pooling must be 'avg' or 'max'; got 'mean'"):
        function(np.zeros((1, 2, 2, 2)), np.zeros((3, 2)), 0, pooling="mean")


@pytest.mark.parametrize("args, error, match", [
    ((np.zeros((1, 2, 2, 2)), np.zeros((3, 2)), 3), ValueError, r"class_idx must be between 0 and 2; got 3"),
    ((np.zeros((2, 2, 2, 2)), np.zeros((3, 2)), [[0, 1], [1, 2]]), ValueError,
     r"class_idx must be an int or N ints \(N = 2\); got shape \(2, 2\)"),
    ((np.zeros((1, 2, 2)), np.zeros((3, 2)), 0), ValueError,
     r"features must have shape \(N, K, h, w\); got \(1, 2, 2\)"),
    ((np.zeros((1, 2, 2, 2)), np.zeros((3, 5)), 0), ValueError,
     r"fc_weight must have shape \(classes, 2\); got \(3, 5\)"),
])
@pytest.mark.parametrize("function", [score_gradient, grad_cam])
def test_bad_input(function, args, error, match):
    with pytest.raises(error, match=match):
        function(*args)
