"""The family against the peers that compute it: torchcam 0.5.0's GradCAMpp, whose alpha keeps
no denominator (numpy_cam/family/gradcam_pp.py says why), on the reference EfficientNet-Lite0.

The peer runs on the plain-torch reference net (tests/torch_models.py, tests/peers.py); this
project's side is ``grad_cam_pp_torchcam`` on the NumPy engine's f_k of the same input, then the
"torchcam" preset (ReLU, min-max with eps 1e-8), as torchcam normalises its maps.
"""
import numpy as np
import pytest

from numpy_cam.family import grad_cam_pp_peers, grad_cam_pp_torchcam
from numpy_cam.presets import postprocess

CLASSES = (504, 282)                        # coffee mug, tiger cat (the photos of conftest.lite0_features)
TOLERANCE = 1e-5                            # relative to the map's max (torchcam's maps have max 1)


def test_torchcam_form_on_a_gap_head_is_the_cam_of_the_cubed_positive_weights(lite0_features):
    model, _, f = lite0_features
    f = f.astype(np.float64)
    hw = f.shape[2] * f.shape[3]
    weights = np.maximum(model.fc_weight[list(CLASSES)].astype(np.float64), 0) ** 3 / hw ** 2   # (2, K)
    expected = np.maximum(np.einsum("nk,nkhw->nhw", weights, f), 0)
    np.testing.assert_allclose(grad_cam_pp_torchcam(f, model.fc_weight, list(CLASSES)), expected,
                               rtol=0, atol=1e-12 * expected.max())


def test_torchcam_form_hand_built():
    """h w = 4, w = (2, -1): weights (2^3 / 16, 0) = (0.5, 0); GMP: g = 2 at f_0's maximum only: 8."""
    f = np.stack([np.array([[1.0, 2.0], [3.0, 0.0]]), np.full((2, 2), 2.0)])[None]  # (1, 2, 2, 2)
    w = np.array([[2.0, -1.0]])
    np.testing.assert_allclose(grad_cam_pp_torchcam(f, w, 0), 0.5 * f[:, 0], rtol=1e-15)
    np.testing.assert_allclose(grad_cam_pp_torchcam(f, w, 0, pooling="max"), 8 * f[:, 0], rtol=1e-15)


def test_torchcam_form_differs_from_eq_19_on_lite0(lite0_features):
    """Not the exact form: after torchcam's min-max, 0.121 and 0.072 apart on the two photos (measured)."""
    model, _, f = lite0_features
    ours = postprocess(grad_cam_pp_torchcam(f, model.fc_weight, list(CLASSES)), (224, 224), "torchcam")
    exact = postprocess(grad_cam_pp_peers(f, model.fc_weight, list(CLASSES)), (224, 224), "torchcam")
    np.testing.assert_allclose(np.abs(ours - exact).max(axis=(1, 2)), (0.1213, 0.0717), atol=1e-3)


def test_torchcam_gradcampp(lite0_features):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchcam")
    torch_models = pytest.importorskip("torch_models")
    peers = pytest.importorskip("peers")
    model, x, f = lite0_features
    name = "efficientnet_lite0"
    net = peers.HookableLite(torch_models.build_efficientnet_lite(
        name, torch.load(torch_models.checkpoint_path(name), weights_only=True)))
    theirs = peers.torchcam_map(net, x, CLASSES, "GradCAMpp")                        # (2, 7, 7), max 1
    ours = postprocess(grad_cam_pp_torchcam(f, model.fc_weight, list(CLASSES)), (224, 224), "torchcam")
    assert np.abs(ours - theirs).max() <= TOLERANCE * np.abs(theirs).max()
    exact = postprocess(grad_cam_pp_peers(f, model.fc_weight, list(CLASSES)), (224, 224), "torchcam")
    assert np.abs(exact - theirs).max() > 100 * TOLERANCE                            # Eq. 19 is not it
