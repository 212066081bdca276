"""The peers' post-processing presets: each step on hand-built maps with exact numbers, the
resizes against the libraries the peers call (scipy always, cv2 and torch where installed), and
each preset against its peer's own output on EfficientNet-Lite0 where that peer is installed
(the authors' demo run with cv2; tf-keras-vis in tests/test_presets_tf_keras_vis.py)
(``pip install -e ".[peers]"`` and ``pip install --no-deps grad-cam==1.5.7``; CI does both).

The peers run on the plain-torch reference net (tests/torch_models.py) through tests/peers.py;
the presets run on this project's raw map of the same input: M_c from the NumPy engine
(``cam.class_activation_map``), and, for Grad-CAM on this GAP head, ReLU(M_c) / (h w).
"""
import numpy as np
import pytest
import scipy.ndimage
from PIL import Image

import numpy_cam
from numpy_cam.cam import class_activation_map, normalize, to_heatmap
from numpy_cam.presets import PRESETS, _STEPS, postprocess

RNG = np.random.default_rng(12)
ODD_SIZES = [((7, 7), (224, 224)), ((5, 9), (37, 100)), ((7, 7), (300, 451)), ((13, 11), (6, 4))]
TOLERANCE = 1e-5                            # the bound for a peer's float output
PHOTOS = ("coffee.png", "chelsea.png")
CLASSES = (504, 282)                        # coffee mug (its M_c dips below 0), tiger cat


def test_every_preset_is_made_of_known_steps_and_cites_a_rule():
    for name, preset in PRESETS.items():
        assert all(step[0] in _STEPS for step in preset.steps), name
        assert "," in preset.rule and (".py" in preset.rule or ".m," in preset.rule), name   # repository, file, ...


def test_numpy_cam_is_to_heatmap():
    cam = RNG.standard_normal((2, 7, 7)).astype(np.float32)
    np.testing.assert_array_equal(postprocess(cam, (224, 224), "numpy-cam"), to_heatmap(cam, (224, 224)))


def test_relu_and_min_max_with_eps_in_order():
    cam = np.array([[[-1.0, 0.0], [1.0, 3.0]]])                      # (1, 2, 2), float64
    first = np.array([0, 0, 1, 3]) / (3 + 1e-7)                       # relu, then / (span + 1e-7)
    # the same size: the half-pixel resize is the identity; then min-max once more
    np.testing.assert_allclose(postprocess(cam, (2, 2), "pytorch-grad-cam").ravel(),
                               first / (first.max() + 1e-7), rtol=1e-15)
    np.testing.assert_allclose(postprocess(cam, (9, 9), "torchcam").ravel(), first * (3 + 1e-7) / (3 + 1e-8),
                               rtol=1e-15)                            # size unused: stays 2 x 2
    np.testing.assert_allclose(postprocess(cam, (9, 9), "torchcam-cam").ravel(),
                               np.array([0, 1, 2, 4]) / (4 + 1e-8), rtol=1e-15)   # no ReLU


def test_pytorch_grad_cam_normalises_again_after_resizing():
    cam = np.ones((1, 3, 3))
    cam[0, 1, 1] = 0                                                  # the minimum inside the map
    out = postprocess(cam, (6, 6), "pytorch-grad-cam")
    # half-pixel 3 -> 6 samples rows and columns 0, 0.25, 0.75, 1.25, ...: never the centre, so
    # the resized map's minimum is 1 - 0.75 * 0.75 = 0.4375 (at [2, 2]); the second min-max takes
    # it to 0, and the corners (1 / (1 + 1e-7) after the first) to (1 / (1 + 1e-7) - m) / (span + 1e-7)
    low = 0.4375 / (1 + 1e-7)
    np.testing.assert_allclose(out[0, [2, 0], [2, 0]], [0, (1 / (1 + 1e-7) - low) / (1 / (1 + 1e-7) - low + 1e-7)],
                               rtol=1e-12, atol=1e-15)


def test_min_max_of_a_constant_map():
    np.testing.assert_array_equal(postprocess(np.full((1, 3, 3), 5.0), (3, 3), "numpy-cam"), 0)   # eps 0: zeros
    np.testing.assert_array_equal(postprocess(np.full((1, 3, 3), 5.0), (3, 3), "pytorch-grad-cam"), 0)


def test_the_two_bilinear_grids():
    two = np.array([[[0.0, 1.0]]])                                    # (1, 1, 2)
    np.testing.assert_allclose(postprocess(two, (1, 4), "numpy-cam")[0, 0], [0, 0.25, 0.75, 1])   # half-pixel
    np.testing.assert_allclose(postprocess(two, (1, 3), "tf-keras-vis")[0, 0],
                               np.array([0, 0.5, 1]) / (1 + 1e-7), rtol=1e-15)                   # corners


def test_nearest_is_torch_legacy_nearest():
    np.testing.assert_array_equal(postprocess(np.array([[[1.0, 2.0, 3.0]]]), (1, 7), "captum")[0, 0],
                                  [1, 1, 1, 2, 2, 3, 3])                 # floor(o * 3 / 7)
    np.testing.assert_array_equal(postprocess(np.array([[[1.0, 2.0, 3.0]]]), (1, 2), "captum")[0, 0], [1, 2])


def test_the_demo_truncates_to_uint8_then_resizes_twice_in_cv2_fixed_point():
    out = postprocess(np.array([[[0.0, 1.0, 2.0]]]), (256, 256), "cam-pytorch-demo")
    assert out.dtype == np.uint8 and out.shape == (1, 256, 256)
    # 255 * 0.5 = 127.5 truncates to 127: levels [0, 127, 255]. Column 87 of 3 -> 256 samples
    # t = 87.5 * 3 / 256 - 0.5 = 0.525390625 between 0 and 127: 11-bit weights (972, 1076), row
    # sum r = 1076 * 127 = 136652, r >> 4 = 8540 (the float value 127 t = 66.72 would round to 67).
    # The rows 1 -> 256 read row 0 twice with weights that depend on the output row, and each
    # product is cut to its top 16 bits: row 0, weights (1020, 1028): (8710800 >> 16) + (8779120 >> 16)
    # = 132 + 133, (265 + 2) >> 2 = 66; row 127, weights (4, 2044): 0 + 266, (266 + 2) >> 2 = 67
    np.testing.assert_array_equal(out[0, [0, 127, 128, 255], 87], [66, 67, 67, 66])
    np.testing.assert_array_equal(out[0, :, [0, 255]], [[0] * 256, [255] * 256])
    assert postprocess(np.zeros((1, 7, 7)), (300, 451), "cam-pytorch-demo").shape == (1, 300, 451)


def test_the_overlay_squares_pillow_bicubic_so_its_undershoot_turns_positive():
    out = postprocess(np.array([[[0.0, 1.0]]], np.float32), (1, 4), "torchcam-overlay")
    # Pillow's cubic kernel (a = -0.5) at output 0 (centre 0.25): weights K(0.25) = 0.8671875 on
    # the 0 and K(1.25) = -0.0703125 on the 1, normalised by their sum 0.796875
    first = -0.0703125 / 0.796875
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0, [0, 3]], [first ** 2, (1 - first) ** 2], rtol=1e-6)


def test_tf_keras_vis_is_scipy_zoom_then_standardize():
    for (h, w), (H, W) in ODD_SIZES:
        cam = RNG.standard_normal((1, h, w)).astype(np.float32)
        zoomed = scipy.ndimage.zoom(np.maximum(cam, 0), (1, H / h, W / w), order=1)   # what Gradcam calls
        expected = (zoomed - zoomed.min()) / (zoomed.max() - zoomed.min() + 1e-7)
        np.testing.assert_allclose(postprocess(cam, (H, W), "tf-keras-vis"), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cam, size, preset, error, match", [
    (np.zeros((7, 7)), (4, 4), "numpy-cam", ValueError, r"cam must have shape \(N, h, w\); got \(7, 7\)"),
    (np.zeros((1, 7, 7), complex), (4, 4), "numpy-cam", TypeError, r"cam must"),
    (np.zeros((1, 7, 7)), (0, 4), "numpy-cam", ValueError, r"size must be \(H, W\) with positive integers"),
    (np.zeros((1, 7, 7)), (4, 4), "gradcam", ValueError,
     r"preset must be 'numpy-cam', .* or 'tf-keras-vis'; got 'gradcam'"),
])
def test_bad_input(cam, size, preset, error, match):
    with pytest.raises(error, match=match):
        postprocess(cam, size, preset)


# --- against the libraries the peers call ------------------------------------------------------

@pytest.mark.parametrize("sizes", ODD_SIZES, ids=str)
def test_half_pixel_bilinear_is_cv2_resize(sizes):
    cv2 = pytest.importorskip("cv2")
    (h, w), (H, W) = sizes
    cam = RNG.random((1, h, w)).astype(np.float32)
    np.testing.assert_allclose(postprocess(cam, (H, W), "numpy-cam"), normalize(cv2.resize(cam[0], (W, H)))[None],
                               rtol=0, atol=1e-6)
    # the demo: uint8 before both cv2.resize calls, which interpolate uint8 in fixed point (11-bit
    # weights); the preset does the same integer steps (numpy_cam/_opencv_resize.py): no level apart
    levels = (255 * normalize(cam[0])).astype(np.uint8)
    once = cv2.resize(levels, (256, 256))
    np.testing.assert_array_equal(postprocess(cam, (256, 256), "cam-pytorch-demo")[0], once)
    np.testing.assert_array_equal(postprocess(cam, (H, W), "cam-pytorch-demo")[0], cv2.resize(once, (W, H)))


@pytest.mark.parametrize("sizes", ODD_SIZES, ids=str)
def test_nearest_is_torch_interpolate(sizes):
    torch = pytest.importorskip("torch")
    (h, w), (H, W) = sizes
    cam = RNG.random((1, h, w)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(cam[None]), (H, W))[0].numpy()
    np.testing.assert_array_equal(postprocess(cam, (H, W), "captum"), expected)


# --- against the peers themselves, on EfficientNet-Lite0 -----------------------------------------

@pytest.fixture(scope="module")
def lite0(lite0_features):
    """This project's side: x of the two photos, M_c (N, h, w) for CLASSES, the input size."""
    model, x, features = lite0_features
    cam = class_activation_map(features, model.fc_weight, list(CLASSES))              # (2, 7, 7)
    return x, cam, x.shape[2:]


def authors_demo_map(features, fc_weight, class_idx, photo_size):
    """The authors' pytorch_CAM.py (zhoubolei/CAM c63f285) on one image's features (1, K, h, w):
    returnCAM (lines 42-54) for one class, then line 94's cv2.resize to the photo's (width, height),
    the map that cv2.applyColorMap then colours: (H, W) uint8. Their steps, with cv2, as they run."""
    import cv2
    _, k, h, w = features.shape
    cam = fc_weight[class_idx].dot(features.reshape((k, h * w))).reshape(h, w)         # (h, w), M_c
    cam = cam - np.min(cam)
    cam_img = np.uint8(255 * (cam / np.max(cam)))                                      # (h, w) uint8
    return cv2.resize(cv2.resize(cam_img, (256, 256)), photo_size[::-1])              # (H, W) uint8


def test_cam_pytorch_demo(lite0_features, lite0):
    """The whole preset against the authors' demo on the same Lite0 features: to the level."""
    pytest.importorskip("cv2")
    model, _, features = lite0_features
    cam = lite0[1]                                                                     # (2, 7, 7), M_c
    for n, (name, class_idx) in enumerate(zip(PHOTOS, CLASSES)):
        with Image.open(numpy_cam.DATA / name) as photo:
            photo_size = photo.size[::-1]                                              # (H, W)
        theirs = authors_demo_map(features[n:n + 1], model.fc_weight, class_idx, photo_size)
        np.testing.assert_array_equal(postprocess(cam[n:n + 1], photo_size, "cam-pytorch-demo")[0], theirs)


@pytest.fixture(scope="module")
def torch_lite0():
    """The peers' side: the torch reference Lite0 with a hookable head ReLU6."""
    torch = pytest.importorskip("torch")
    torch_models = pytest.importorskip("torch_models")
    peers = pytest.importorskip("peers")
    name = "efficientnet_lite0"
    net = torch_models.build_efficientnet_lite(name, torch.load(torch_models.checkpoint_path(name), weights_only=True))
    return peers.HookableLite(net)


def grad_cam_raw(cam):
    """Grad-CAM's raw map on a GAP head: ReLU(M_c) / (h w)."""
    return np.maximum(cam, 0) / (cam.shape[-2] * cam.shape[-1])


def test_hookable_lite_is_the_reference_net(torch_lite0, lite0):
    import torch
    x = torch.from_numpy(lite0[0])
    with torch.no_grad():
        assert torch.equal(torch_lite0(x), torch_lite0.net(x))


def test_pytorch_grad_cam(torch_lite0, lite0):
    import peers
    try:
        peers.import_pytorch_grad_cam()
    except ImportError as error:
        pytest.skip(f"could not import pytorch_grad_cam: {error}")
    x, cam, size = lite0
    theirs = peers.grad_cam_pytorch_grad_cam(torch_lite0, x, CLASSES)                # (2, 224, 224)
    assert np.abs(postprocess(grad_cam_raw(cam), size, "pytorch-grad-cam") - theirs).max() <= TOLERANCE


@pytest.mark.parametrize("method, preset, raw", [("GradCAM", "torchcam", grad_cam_raw),
                                                 ("CAM", "torchcam-cam", lambda cam: cam)])
def test_torchcam(torch_lite0, lite0, method, preset, raw):
    pytest.importorskip("torchcam")
    import peers
    x, cam, size = lite0
    theirs = peers.torchcam_map(torch_lite0, x, CLASSES, method)                      # (2, 7, 7)
    assert np.abs(postprocess(raw(cam), size, preset) - theirs).max() <= TOLERANCE


def test_torchcam_overlay(torch_lite0, lite0):
    """overlay_mask colours the preset's values with matplotlib's jet, then blends: to one level."""
    pytest.importorskip("torchcam")
    import matplotlib
    import peers
    x, cam, size = lite0
    mask = peers.torchcam_map(torch_lite0, x, CLASSES)[1]                             # (7, 7), chelsea
    rgb = np.asarray(Image.open(numpy_cam.DATA / PHOTOS[1]).convert("RGB"))           # (300, 451, 3)
    theirs = np.asarray(peers.torchcam_overlay(rgb, mask)).astype(int)
    values = postprocess(mask[None], rgb.shape[:2], "torchcam-overlay")[0]           # (300, 451)
    colours = matplotlib.colormaps["jet"](values, bytes=True)[:, :, :3]
    ours = np.asarray(Image.blend(Image.fromarray(colours), Image.fromarray(rgb), 0.5)).astype(int)
    assert np.abs(ours - theirs).max() <= 1


def test_captum(torch_lite0, lite0):
    pytest.importorskip("captum")
    import peers
    x, cam, size = lite0
    theirs = peers.captum_grad_cam(torch_lite0, x, CLASSES, size)                     # (2, 224, 224)
    h, w = cam.shape[1:]
    assert np.abs(postprocess(cam / (h * w), size, "captum") - theirs).max() <= TOLERANCE   # no ReLU
