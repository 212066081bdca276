"""Keras' ResNet50 in NumPy against Keras itself, stage by stage, and the Keras exporter.

Without keras: the seeded weights of tests/golden/make_golden_keras.py are rebuilt with NumPy
(``random_keras_resnet50_state``, Keras layout), converted by the exporter's own
``convert_keras_weights`` and run through every stage; the golden file holds Keras' outputs.
Tolerance: tests/golden_check.py's one rule, |numpy - golden| <= TAU * S with S the largest
|golden| of each array (stored positions, channel means, pooled features, logits), for the
golden and the live Keras comparison alike (tests/test_tolerance.py: it catches BN eps 1e-3 at
conv2 -- the stem's BN variances are ~1e4 -- and a TF "SAME" stem padding at the stem; the
stride on the 3x3 conv instead of the first 1x1 is off by 0.1 of the scale).

With keras (KERAS_BACKEND=torch, KERAS_HOME in a temporary folder, set before the import):
live parity of export -> load_weights -> NumPy with Keras, a ``.keras`` file round trip, a
fine-tuned GAP head, and the refusal of heads CAM cannot explain (VGG16's Flatten + Dense).
"""
import importlib.util
import json
import pathlib
import sys
import warnings

import numpy as np
import pytest
from conftest import load_module
from golden_check import assert_matches_golden, assert_within_tau

from numpy_cam.io import checkpoint
from numpy_cam.io import export as keras_export
from numpy_cam.io.export import KERAS_MISSING, convert_keras_weights, export_keras
from numpy_cam.models import CAM_HEAD_REASON as NOT_A_CAM_HEAD
from numpy_cam.models import Model, conv_bn, keras_resnet
from numpy_cam.models.keras_resnet import KERAS_RESNET50

HERE = pathlib.Path(__file__).parent
GOLDEN = np.load(HERE / "golden" / "keras_resnet50.npz", allow_pickle=False)
INFO = json.loads(str(GOLDEN["__info__"]))
make_golden_keras = load_module(HERE / "golden" / "make_golden_keras.py")  # NumPy only at import: keras in main()


def numpy_model(state_dict):
    """The NumPy port with these (converted) weights, as ``numpy_cam.models.Model``."""
    return Model("keras_resnet50", "keras_resnet50", state_dict, {})


def numpy_stages(model, x_nhwc):
    """Every stage of the NumPy port plus the logits, for an NHWC input as Keras takes it."""
    return model.stages(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))


@pytest.fixture(scope="module")
def state_dict():
    state = make_golden_keras.random_keras_resnet50_state(make_golden_keras.WEIGHTS_SEED)
    assert make_golden_keras.state_sha256(state) == INFO["weights"]["sha256"]   # same RNG stream
    return convert_keras_weights(state)


@pytest.fixture(scope="module")
def outputs(state_dict):
    model = numpy_model(state_dict)
    return {name: numpy_stages(model, make_golden_keras.make_input(name)) for name in INFO["inputs"]}


@pytest.mark.parametrize("name", list(INFO["inputs"]))
@pytest.mark.parametrize("stage", [s for s in INFO["stages"] if s != "logits"])
def test_every_stage_matches_keras_golden(outputs, name, stage):
    assert_matches_golden(GOLDEN, f"{name}/{stage}", outputs[name][stage])


@pytest.mark.parametrize("name", list(INFO["inputs"]))
def test_logits_match_keras_golden(outputs, name):
    assert_within_tau(outputs[name]["logits"], GOLDEN[f"{name}/logits/value"], f"{name} logits")


def test_stage_shapes_round_up_at_an_odd_size(outputs):
    shapes = {s: outputs["uniform97x131"][s].shape for s in ("stem", "conv3", "features")}
    assert shapes == {"stem": (1, 64, 25, 33), "conv3": (1, 512, 13, 17), "features": (1, 2048, 4, 5)}
    assert outputs["uniform224"]["features"] is outputs["uniform224"]["conv5"]


def test_expected_shapes_count_keras_parameters():
    shapes = KERAS_RESNET50.expected_shapes(1000)
    assert len(shapes) == 320 and len(KERAS_RESNET50.conv_layers()) == 53
    assert sum(int(np.prod(s)) for s in shapes.values()) == 25_636_712   # keras count_params()
    assert shapes["conv1_conv.weight"] == (64, 3, 7, 7) and shapes["predictions.weight"] == (1000, 2048)
    assert shapes["conv3_block1_0_conv.weight"] == (512, 256, 1, 1) and "conv3_block2_0_conv.weight" not in shapes


def test_convert_keras_weights_transposes_once():
    kernel = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)   # (kh, kw, in, out)
    dense = np.arange(6, dtype=np.float32).reshape(3, 2)                       # (in, out)
    bn = {"gamma": [1.0], "beta": [2.0], "moving_mean": [3.0], "moving_variance": [4.0]}
    sd = convert_keras_weights({"c": {"kernel": kernel, "bias": np.ones(5)}, "c_bn": bn,
                                "predictions": {"kernel": dense, "bias": np.zeros(2)}})
    assert sd["c.weight"].shape == (5, 4, 2, 3) and sd["c.weight"][4, 3, 1, 2] == kernel[1, 2, 3, 4]
    np.testing.assert_array_equal(sd["predictions.weight"], [[0, 2, 4], [1, 3, 5]])
    assert [sd[f"c_bn.{p}"][0] for p in conv_bn.BN_PARAMS] == [1.0, 2.0, 3.0, 4.0]
    assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in sd.values())
    with pytest.raises(ValueError, match="variable 'depthwise_kernel'"):
        convert_keras_weights({"dw": {"depthwise_kernel": np.zeros((3, 3, 8, 1))}})


def test_model_api_on_keras_resnet50(state_dict, outputs, tmp_path):
    from numpy_cam import models
    path = tmp_path / "keras_resnet50.npz"
    checkpoint.save_weights(path, state_dict, {"architecture": "keras_resnet50", "class_names": "imagenet",
                                               "preprocessing": keras_resnet.PREPROCESSING})
    model = models.load_model(str(path))
    x = np.ascontiguousarray(make_golden_keras.make_input("uniform97x131").transpose(0, 3, 1, 2))
    ours = model.stages(x)
    assert list(ours) == ["stem", "conv2", "conv3", "conv4", "conv5", "features", "logits"]
    np.testing.assert_allclose(ours["logits"], outputs["uniform97x131"]["logits"], rtol=0, atol=1e-5)
    assert model.fc_weight.shape == (1000, 2048) and model.preprocessing["channel_order"] == "BGR"


def test_image_preprocess_gives_keras_caffe_input():
    from numpy_cam.io.image import preprocess
    rgb = np.random.default_rng(3).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    caffe = rgb[..., ::-1].astype(np.float32) - np.array([103.939, 116.779, 123.68], np.float32)  # BGR
    x = preprocess(rgb, keras_resnet.PREPROCESSING)
    np.testing.assert_allclose(x[0], caffe.transpose(2, 0, 1), rtol=0, atol=1e-4)


def test_not_a_cam_head_states_the_papers_requirement():
    for words in ("Zhou et al., CVPR 2016, Sec. 2", "global average pooling", "softmax", "w_k^c",
                  "f_k", "VGGnet-GAP", "Grad-CAM"):
        assert words in NOT_A_CAM_HEAD
    from numpy_cam import models                     # the load-time refusal gives the same reason
    assert NOT_A_CAM_HEAD in models.NOT_A_CAM_HEAD.format(name="vgg16")


def test_missing_keras_gives_the_install_command(monkeypatch, tmp_path):
    real = importlib.import_module

    def import_module(name, *args):
        if name == "keras" or name.startswith("keras."):
            raise ModuleNotFoundError("No module named 'keras'", name="keras")
        return real(name, *args)

    monkeypatch.setattr(keras_export.importlib, "import_module", import_module)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "numpy-cam\[keras\]"') as info:
        export_keras(tmp_path / "model.keras", tmp_path / "out.npz")
    assert isinstance(info.value, ImportError) and str(info.value) == KERAS_MISSING
    with pytest.raises(ImportError, match="needs keras"):
        keras_export.check_cam_head_keras(object())
    assert not (tmp_path / "out.npz").exists()


def test_unknown_architecture_is_refused_before_keras_is_needed(tmp_path):
    with pytest.raises(ValueError,
                       match="unknown architecture 'vgg16'; a Keras model can be exported as keras_resnet50"):
        export_keras(tmp_path / "model.keras", tmp_path / "out.npz", architecture="vgg16")


# ----- with keras ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        if "keras" not in sys.modules:                # the backend is fixed at keras' first import
            mp.setenv("KERAS_BACKEND", "torch")
            mp.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))
        keras = pytest.importorskip("keras")
        if keras.backend.backend() != "torch":
            pytest.skip(f"keras was imported earlier with the {keras.backend.backend()} backend")
        yield keras


@pytest.fixture(scope="module")
def live(keras):
    """A Keras ResNet50 with seeded weights (another seed than the goldens) at an odd size."""
    state = make_golden_keras.random_keras_resnet50_state(1)
    return make_golden_keras.build_model(keras, state, "float32", (72, 99, 3)), state


def test_live_parity_export_load_numpy(keras, live, tmp_path):
    model, state = live
    metadata = export_keras(model, tmp_path / "r50.npz")
    arrays, stored = checkpoint.load_weights(tmp_path / "r50.npz")
    assert stored == metadata and stored["architecture"] == "keras_resnet50" and stored["num_classes"] == 1000
    assert stored["backend"] == "torch" and stored["keras_version"] == keras.__version__
    assert stored["preprocessing"] == keras_resnet.PREPROCESSING and stored["class_names"] == "imagenet"
    for name, array in convert_keras_weights(state).items():
        np.testing.assert_array_equal(arrays[name], array, err_msg=name)
    x = np.random.default_rng(5).uniform(-128, 128, size=(2, 72, 99, 3)).astype(np.float32)
    ref = make_golden_keras.run_stages(keras, model, x)
    ours = numpy_stages(numpy_model(arrays), x)
    for stage in INFO["stages"]:
        assert_within_tau(ours[stage], ref[stage], stage)


def test_export_from_a_keras_file_matches_the_model(keras, live, tmp_path):
    from numpy_cam.cli import main
    model, _ = live
    with warnings.catch_warnings():   # Keras' saving calls np.array on torch tensors (no copy=)
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy", DeprecationWarning)
        model.save(tmp_path / "r50.keras")
    export_keras(model, tmp_path / "a.npz")
    metadata = export_keras(str(tmp_path / "r50.keras"), tmp_path / "b.npz")
    assert str(tmp_path / "r50.keras") in metadata["source"]
    assert main(["export", str(tmp_path / "r50.keras"), "--arch", "keras_resnet50",
                 "--out", str(tmp_path / "c.npz")]) == 0
    a, b, c = (checkpoint.load_weights(tmp_path / f"{n}.npz")[0] for n in "abc")
    assert list(a) == list(b) == list(c) and all(np.array_equal(a[k], b[k]) and np.array_equal(a[k], c[k]) for k in a)


def test_export_a_fine_tuned_gap_head(keras, tmp_path):
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    model = keras.Sequential([keras.Input((64, 64, 3)), base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dropout(0.2), keras.layers.Dense(5, activation="softmax")])
    with pytest.raises(ValueError, match="'imagenet' needs 1000 classes; the model has 5"):
        export_keras(model, tmp_path / "ft.npz", class_names="imagenet")
    export_keras(model, tmp_path / "ft.npz", class_names=list("abcde"))
    arrays, metadata = checkpoint.load_weights(tmp_path / "ft.npz")
    assert metadata["num_classes"] == 5 and arrays["predictions.weight"].shape == (5, 2048)
    x = np.random.default_rng(6).uniform(-100, 100, size=(1, 64, 64, 3)).astype(np.float32)
    logits = numpy_stages(numpy_model(arrays), x)["logits"]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(probs, make_golden_keras.to_numpy(keras, model(x, training=False)), rtol=0, atol=1e-5)


def test_vgg16_is_refused_before_any_conversion(keras, monkeypatch, tmp_path):
    def convert(_):
        raise AssertionError("converted a model whose head CAM cannot explain")

    monkeypatch.setattr(keras_export, "convert_keras_weights", convert)
    vgg = keras.applications.VGG16(weights=None, input_shape=(32, 32, 3), classes=10)  # the 224 head is the same
    expected = ("cannot export 'vgg16' for CAM: its last conv maps go through Flatten and fully connected "
                "layers (Flatten -> Dense(4096, relu) -> Dense(4096, relu) -> Dense(10, softmax)), not global "
                "average pooling -> softmax. ")
    with pytest.raises(ValueError) as info:
        export_keras(vgg, tmp_path / "vgg.npz")
    assert str(info.value) == expected + NOT_A_CAM_HEAD
    assert not (tmp_path / "vgg.npz").exists()


@pytest.mark.parametrize("head, found", [
    ("gmp", "its last conv maps go through GlobalMaxPooling2D -> Dense(2, softmax), not global average"),
    ("relu", "its last conv maps go through GlobalAveragePooling2D -> Dense(2, relu), not"),
    ("maps", "its output is the conv maps themselves (include_top=False: no classifier), not global"),
])
def test_other_heads_are_refused(keras, head, found):
    L = keras.layers
    x = keras.Input((8, 8, 3))
    f = L.Conv2D(4, 3)(x)
    y = {"gmp": lambda: L.Dense(2, activation="softmax")(L.GlobalMaxPooling2D()(f)),
         "relu": lambda: L.Dense(2, activation="relu")(L.GlobalAveragePooling2D()(f)),
         "maps": lambda: f}[head]()
    with pytest.raises(ValueError, match=r"CAM \(Zhou et al") as info:
        keras_export.check_cam_head_keras(keras.Model(x, y, name=f"tiny_{head}"))
    assert f"cannot export 'tiny_{head}' for CAM: {found}" in str(info.value)


def test_a_gap_model_of_another_architecture_fails_the_shape_check(keras, tmp_path):
    x = keras.Input((8, 8, 3))
    y = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="c")(x)))
    with pytest.raises(checkpoint.CheckpointError, match="do not fit the model: 318 missing"):
        export_keras(keras.Model(x, y), tmp_path / "tiny.npz", class_names=None)
