"""EfficientNet-Lite0 in NumPy against an independent PyTorch implementation, stage by stage.

The golden file (tests/golden/efficientnet_lite0.npz, made by tests/golden/make_golden.py
from tests/torch_models.py) holds, for each input and each stage, 512 random positions plus
every border position of a few channels, the per-channel means, and the logits in full.
Tolerance: |numpy - golden| <= 1e-4 * max|stage| (the stage outputs range up to ~70; a
wrong BN eps is off by 3e-3 of that scale at the stem, a wrong padding by 1.0) and
<= 1e-4 absolute on the logits.
"""
import hashlib
import json
import pathlib

import numpy as np
import pytest
from golden_check import assert_matches_golden

import numpy_cam
from numpy_cam.models import efficientnet_lite

HERE = pathlib.Path(__file__).parent
DATA = HERE.parent / "numpy_cam" / "data"
GOLDEN = np.load(HERE / "golden" / "efficientnet_lite0.npz", allow_pickle=False)
INFO = json.loads(str(GOLDEN["__info__"]))
STAGES = INFO["stages"]                     # stem, stage1..stage7, features, logits
LOGITS_ATOL = 1e-4
STAGE_RTOL = 1e-4                           # of the stage's max |value|


@pytest.fixture(scope="module")
def model():
    return numpy_cam.load_model("efficientnet_lite0")


def golden_input(name):
    """Rebuild a golden input exactly as make_golden.py did, and check it is the same array."""
    if name == "uniform224":
        x = np.random.default_rng(0).uniform(-1, 1, size=(2, 3, 224, 224)).astype(np.float32)
    elif name == "uniform225x301":
        x = np.random.default_rng(1).uniform(-1, 1, size=(1, 3, 225, 301)).astype(np.float32)
    else:
        x = (GOLDEN[f"{name}/x_uint8"].astype(np.float32) - np.float32(127)) / np.float32(128)
    assert hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest() == str(GOLDEN[f"{name}/x_sha256"])
    return x


@pytest.fixture(scope="module")
def outputs(model):
    return {name: model.stages(golden_input(name)) for name in INFO["inputs"]}


@pytest.mark.parametrize("name", list(INFO["inputs"]))
@pytest.mark.parametrize("stage", [s for s in STAGES if s != "logits"])
def test_every_stage_matches_golden(outputs, name, stage):
    assert_matches_golden(GOLDEN, f"{name}/{stage}", outputs[name][stage], STAGE_RTOL * INFO["max_abs"][name][stage])


@pytest.mark.parametrize("name", list(INFO["inputs"]))
def test_logits_match_golden(outputs, name):
    logits = outputs[name]["logits"]
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, GOLDEN[f"{name}/logits/value"], rtol=0, atol=LOGITS_ATOL)
    np.testing.assert_allclose(outputs[name]["features"].mean(axis=(2, 3)), GOLDEN[f"{name}/features/gap"],
                               rtol=0, atol=STAGE_RTOL * INFO["max_abs"][name]["features"])


def test_features_at_225x301_have_the_rounded_up_size(outputs):
    assert outputs["uniform225x301"]["features"].shape == (1, 1280, 8, 10)  # ceil(225/32), ceil(301/32)


@pytest.mark.parametrize("photo, allowed", [("chelsea", {281, 282, 285}), ("coffee", {967})])
def test_preprocess_reproduces_golden_input_and_top1(model, photo, allowed):
    x = model.preprocess(DATA / f"{photo}.png")
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    np.testing.assert_array_equal(x, golden_input(photo))
    (top1, name, prob), *_ = model.predict(DATA / f"{photo}.png", top_k=5)
    assert top1 in allowed, (top1, name, prob)


def test_predict_coffee_is_confident_espresso(model):
    top = model.predict(DATA / "coffee.png", top_k=3)
    assert top[0][:2] == (967, "espresso") and top[0][2] > 0.9
    assert [p for _, _, p in top] == sorted((p for _, _, p in top), reverse=True)


def test_features_and_classify_compose(model, outputs):
    x = golden_input("uniform224")
    f = model.features(x)
    np.testing.assert_array_equal(f, outputs["uniform224"]["features"])
    np.testing.assert_array_equal(model.classify(f), outputs["uniform224"]["logits"])
    assert model.fc_weight.shape == (1000, 1280) and model.fc_bias.shape == (1000,)
    assert len(model.class_names) == 1000 and model.class_names[967] == "espresso"


def test_public_arrays_are_nchw_views(model):
    f = model.features(golden_input("uniform224"))
    assert f.shape == (2, 1280, 7, 7)
    np.testing.assert_array_equal(np.ascontiguousarray(f)[1, 5], f[1, 5])


def test_input_is_never_changed(model):
    x = golden_input("uniform225x301")
    before = x.copy()
    model.stages(x)
    np.testing.assert_array_equal(x, before)


def test_expected_shapes_cover_the_checkpoint():
    shapes = efficientnet_lite.expected_shapes()
    assert len(shapes) == 296 and sum(1 for k in shapes if k.endswith("num_batches_tracked")) == 49
    weights = sum(int(np.prod(s)) for k, s in shapes.items() if not k.endswith("num_batches_tracked"))
    bn_buffers = sum(int(np.prod(s)) for k, s in shapes.items() if k.endswith(("running_mean", "running_var")))
    assert weights - bn_buffers == 4_652_008                            # parameters


def test_live_parity_with_torch_at_an_odd_size(model):
    torch = pytest.importorskip("torch")
    torch_models = pytest.importorskip("torch_models")
    net = torch_models.build_efficientnet_lite0(
        torch.load(torch_models.EFFICIENTNET_LITE0_CHECKPOINT(), weights_only=True))
    x = np.random.default_rng(7).uniform(-1, 1, size=(2, 3, 97, 131)).astype(np.float32)
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in net.forward_stages(torch.from_numpy(x)).items()}
    ours = model.stages(x)
    assert list(ours) == list(ref)
    for stage in ref:
        scale = max(1.0, float(np.abs(ref[stage]).max()))
        np.testing.assert_allclose(ours[stage], ref[stage], rtol=0, atol=STAGE_RTOL * scale, err_msg=stage)
