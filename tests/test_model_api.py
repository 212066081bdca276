"""The public API of load_model / Model: bad input gets a clear error, exported files load."""
import numpy as np
import pytest

import numpy_cam
from numpy_cam.io import checkpoint
from numpy_cam.models import efficientnet_lite


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


@pytest.mark.parametrize("x, error, match", [
    (np.zeros((224, 224, 3), np.float32), ValueError, r"x must have shape \(N, 3, H, W\); got \(224, 224, 3\) \(an image\?"),
    (np.zeros((1, 1, 32, 32), np.float32), ValueError, r"x must have shape \(N, 3, H, W\); got \(1, 1, 32, 32\)"),
    (np.zeros((1, 3, 32, 32), np.float64), ValueError, r"x must have dtype float32; got float64"),
    (np.zeros((1, 3, 32, 32), np.uint8), ValueError, r"x must have dtype float32; got uint8"),
    (np.full((1, 3, 32, 32), 255, np.float32), ValueError, r"x must be preprocessed .* got values in \[255, 255\]"),
    (np.full((1, 3, 32, 32), np.nan, np.float32), ValueError, r"x must be finite"),
    (np.zeros((0, 3, 32, 32), np.float32), ValueError, r"x must not be empty"),
    ([[1.0]], TypeError, r"x must be a NumPy array"),
])
def test_features_rejects_bad_x(model, x, error, match):
    with pytest.raises(error, match=match):
        model.features(x)


def test_classify_rejects_wrong_feature_shape(model):
    with pytest.raises(ValueError, match=r"features must have shape \(N, 1280, h, w\); got \(1, 320, 7, 7\)"):
        model.classify(np.zeros((1, 320, 7, 7), np.float32))


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                 np.zeros((10, 10, 4), np.uint8)])
def test_preprocess_rejects_bad_image_arrays(model, bad):
    with pytest.raises(ValueError, match=r"an image array must have shape \(H, W, 3\) and dtype uint8"):
        model.preprocess(bad)


def test_preprocess_accepts_array_and_pil(model):
    from PIL import Image
    rgb = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    a = model.preprocess(rgb)
    np.testing.assert_array_equal(a, model.preprocess(Image.fromarray(rgb)))
    assert a.shape == (1, 3, 224, 224) and a.dtype == np.float32
    assert a.min() >= -127 / 128 and a.max() <= 1.0


@pytest.mark.parametrize("top_k", [0, 1001, -1])
def test_predict_rejects_bad_top_k(model, top_k):
    with pytest.raises(ValueError, match=r"top_k must be between 1 and 1000"):
        model.predict(np.zeros((64, 64, 3), np.uint8), top_k=top_k)


def test_unknown_model_name():
    with pytest.raises(ValueError, match=r"unknown model 'resnet9000': expected a model name \(efficientnet_lite0, small_gap, small_gmp\)"):
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


def test_block_table_matches_the_paper_of_the_architecture():
    strides = [s for _, _, s, _, _, _ in efficientnet_lite.BLOCKS]
    assert len(efficientnet_lite.BLOCKS) == 16 and np.prod(strides) * 2 == 32   # 32x downsampling
    assert efficientnet_lite.BLOCKS[-1][-1] == 320
