"""The public API of load_model / Model: bad input gets a clear error, exported files load."""
import re

import numpy as np
import pytest
from PIL import Image

import numpy_cam
from golden_check import assert_within_tau
from numpy_cam.io import checkpoint


@pytest.fixture(scope="module")
def model():
    return numpy_cam.load_model()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "lite0.npz"
    numpy_cam.export_model("efficientnet_lite0", path)
    return path


def x_ok(*shape):
    return np.random.default_rng(3).uniform(-1, 1, shape).astype(np.float32)


HINT = r" \(an image\? use Model.preprocess\)"


@pytest.mark.parametrize("x, error, match", [
    (np.zeros((224, 224, 3), np.float32), ValueError, r"x must have shape \(N, 3, H, W\); got \(224, 224, 3\)" + HINT),
    (np.zeros((1, 224, 224, 3), np.float32), ValueError, r"got \(1, 224, 224, 3\)" + HINT),
    (np.zeros((2, 64, 64, 3), np.float64), ValueError, r"got \(2, 64, 64, 3\)" + HINT),
    (np.zeros((1, 1, 32, 32), np.float32), ValueError, r"x must have shape \(N, 3, H, W\); got \(1, 1, 32, 32\)$"),
    (np.zeros((1, 3, 32, 32), np.uint8), TypeError, r"x must have dtype float32 or float64; got uint8" + HINT),
    (np.zeros((224, 224, 3), np.uint8), TypeError, r"x must have dtype float32 or float64; got uint8" + HINT),
    (np.zeros((1, 3, 32, 32), np.int64), TypeError, r"got int64" + HINT),
    (np.zeros((1, 3, 32, 32), np.float16), TypeError, r"x must have dtype float32 or float64; got float16$"),
    (np.full((1, 3, 32, 32), np.nan, np.float32), ValueError, r"x must be finite; got 3072 NaN and 0 infinite values"),
    (np.full((1, 3, 32, 32), np.inf, np.float64), ValueError, r"x must be finite; got 0 NaN and 3072 infinite"),
    (np.zeros((0, 3, 32, 32), np.float32), ValueError, r"x must not be empty; got shape \(0, 3, 32, 32\)"),
    (np.zeros((1, 3, 0, 32), np.float32), ValueError, r"x must not be empty"),
    ([[1.0]], TypeError, r"x must be a NumPy array of shape \(N, 3, H, W\); got list"),
])
def test_features_rejects_bad_x(model, x, error, match):
    with pytest.raises(error, match=match):
        model.features(x)
    with pytest.raises(error, match=match):
        model.stages(x)


@pytest.fixture(scope="module")
def coffee_x(model):
    return model.preprocess(numpy_cam.DATA / "coffee.png")                 # (1, 3, 224, 224) float32


def test_features_accepts_any_finite_float_input(model, coffee_x):
    """Scaled, noisy and otherwise normalised inputs are computed as given (no range refusal)."""
    noise = np.random.default_rng(0).normal(0, 3, coffee_x.shape).astype(np.float32)
    for x in (1.5 * coffee_x, noise, coffee_x * 0.2 + 0.7, -coffee_x, x_ok(1, 3, 1, 1)):
        f = model.features(x)
        assert f.dtype == np.float32 and np.isfinite(f).all() and f.shape[:2] == (1, model.num_maps)
    assert model.features(x_ok(2, 3, 1, 1)).shape == (2, 1280, 1, 1)        # 1 x 1 fits: every conv pads
    assert not np.array_equal(model.features(1.5 * coffee_x), model.features(coffee_x))


def test_pixels_on_the_0_255_scale_warn(model, coffee_x):
    pixels = np.asarray(Image.open(numpy_cam.DATA / "coffee.png").convert("RGB").resize((224, 224)), np.float32)
    x = np.ascontiguousarray(pixels.transpose(2, 0, 1)[None])             # (1, 3, 224, 224), 0..255: not preprocessed
    with pytest.warns(UserWarning, match=r"x looks like pixels on the 0..255 scale: values in \[0, 255\], where "
                                         r"preprocessed values lie in \[-0.9922, 1\] .*\(use Model.preprocess\)"):
        f = model.features(x)
    assert f.dtype == np.float32                                            # a warning, not a refusal
    with pytest.warns(UserWarning, match="0..255 scale"):
        model.stages(np.full((1, 3, 32, 32), 2.01, np.float32))             # just above 2 x the max, 1.0
    model.features(np.full((1, 3, 32, 32), 2.0, np.float32))                # 2 x the max: no warning (error here)
    model.features(coffee_x * 2)


def test_float64_in_float64_out_agrees_with_float32(model, coffee_x):
    """Every stage in float64 agrees with float32 to float32's error: the golden rule, TAU x the stage's max |value|."""
    s32, s64 = model.stages(coffee_x), model.stages(coffee_x.astype(np.float64))
    assert list(s32) == list(s64)
    for name in s32:
        assert s32[name].dtype == np.float32 and s64[name].dtype == np.float64, name
        assert_within_tau(s32[name], s64[name], name)
    f64 = model.features(coffee_x.astype(np.float64))
    assert f64.dtype == np.float64 and model.classify(f64).dtype == np.float64
    np.testing.assert_array_equal(f64, s64["features"])


def test_classify_rejects_wrong_feature_shape(model):
    with pytest.raises(ValueError, match=r"features must have shape \(N, 1280, h, w\); got \(1, 320, 7, 7\)"):
        model.classify(np.zeros((1, 320, 7, 7), np.float32))
    with pytest.raises(TypeError, match=r"features must have dtype float; got int64"):
        model.classify(np.zeros((1, 1280, 7, 7), np.int64))


@pytest.mark.parametrize("bad, error", [(np.zeros((10, 10), np.uint8), ValueError),
                                        (np.zeros((10, 10, 3), np.float32), TypeError),
                                        (np.zeros((10, 10, 4), np.uint8), ValueError)])
def test_preprocess_rejects_bad_image_arrays(model, bad, error):
    with pytest.raises(error, match=r"image must be an array of shape \(H, W, 3\) and dtype uint8 \(RGB\); "
                                    + re.escape(f"got shape {bad.shape} and dtype {bad.dtype}")):
        model.preprocess(bad)


def test_preprocess_accepts_array_and_pil(model):
    from PIL import Image
    rgb = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    a = model.preprocess(rgb)
    np.testing.assert_array_equal(a, model.preprocess(Image.fromarray(rgb)))
    assert a.shape == (1, 3, 224, 224) and a.dtype == np.float32
    assert a.min() >= -127 / 128 and a.max() <= 1.0


@pytest.mark.parametrize("top_k, error", [(0, ValueError), (1001, ValueError), (-1, ValueError), (2.5, TypeError)])
def test_predict_rejects_bad_top_k(model, top_k, error):
    with pytest.raises(error, match=rf"top_k must be (between 1 and 1000|an integer); got {top_k}"):
        model.predict(np.zeros((64, 64, 3), np.uint8), top_k=top_k)


def test_predict_reports_5_classes_by_default(model):
    top = model.predict(numpy_cam.DATA / "coffee.png")
    assert len(top) == 5 and top[0][:2] == (967, model.class_names[967])


def test_unknown_model_name():
    with pytest.raises(ValueError, match=r"unknown model 'resnet9000': expected a model name "
                       r"\(efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, small_gap, small_gmp\)"):
        numpy_cam.load_model("resnet9000")


def test_exported_npz_loads_to_the_same_network(model, exported):
    again = numpy_cam.load_model(exported)
    x = x_ok(1, 3, 64, 80)
    np.testing.assert_array_equal(again.classify(again.features(x)), model.classify(model.features(x)))
    assert again.class_names == model.class_names
    assert again.metadata["source_sha256"].startswith("579344248a93e230")
    assert again.preprocessing == model.preprocessing


def _rewrite(src, dst, change):
    arrays, metadata = checkpoint.load_weights(src)
    change(arrays, metadata)
    checkpoint.save_weights(dst, arrays, metadata)
    return dst


def test_missing_unexpected_and_misshaped_keys_are_named(exported, tmp_path):
    def change(arrays, metadata):
        del arrays["_blocks.3._bn1.running_var"]
        arrays["_blocks.99.extra"] = np.zeros(3, np.float32)
        arrays["_conv_head.weight"] = arrays["_conv_head.weight"][:, :100]
    bad = _rewrite(exported, tmp_path / "bad.npz", change)
    with pytest.raises(checkpoint.CheckpointError) as info:
        numpy_cam.load_model(bad)
    message = str(info.value)
    for name in ("_blocks.3._bn1.running_var", "_blocks.99.extra", "_conv_head.weight"):
        assert name in message
    assert "(1280, 320, 1, 1)" in message and "(1280, 100, 1, 1)" in message


def test_unknown_architecture_in_metadata(exported, tmp_path):
    bad = _rewrite(exported, tmp_path / "arch.npz", lambda a, m: m.update(architecture="inception_v3"))
    with pytest.raises(checkpoint.CheckpointError, match=r"unknown architecture 'inception_v3'"):
        numpy_cam.load_model(bad)


def test_a_vgg_file_is_refused_with_the_reason(exported, tmp_path):
    bad = _rewrite(exported, tmp_path / "vgg.npz", lambda a, m: m.update(architecture="vgg16"))
    with pytest.raises(checkpoint.CheckpointError, match=r"cannot use 'vgg16' for CAM: .* needs conv feature "
                                                         r"maps -> global average pooling -> a softmax layer"):
        numpy_cam.load_model(bad)


def test_bgr_preprocessing_reverses_the_channels():
    from numpy_cam.io.image import preprocess
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 10                                  # red 200, blue 10
    spec = {"size": 4, "crop_fraction": 1.0, "resample": "bilinear", "mean": [1.0, 2.0, 3.0], "std": [1.0] * 3}
    np.testing.assert_array_equal(preprocess(rgb, spec)[0, :, 0, 0], [199, -2, 7])
    np.testing.assert_array_equal(preprocess(rgb, dict(spec, channel_order="BGR"))[0, :, 0, 0], [9, -2, 197])


def test_truncated_npz_is_a_clear_error(exported, tmp_path):
    bad = tmp_path / "cut.npz"
    bad.write_bytes(exported.read_bytes()[:100_000])
    with pytest.raises(checkpoint.CheckpointError, match="cut.npz"):
        numpy_cam.load_model(bad)


def test_builtin_checkpoint_is_checked_against_its_sha256(monkeypatch, tmp_path):
    fake = tmp_path / "fake.pth"
    fake.write_bytes(b"not the checkpoint")
    monkeypatch.setattr(numpy_cam.models, "builtin_checkpoint_path", lambda name: str(fake))
    with pytest.raises(checkpoint.CheckpointError, match=r"fake.pth has SHA-256 .* expected 579344248a93e230"):
        numpy_cam.load_model("efficientnet_lite0")
