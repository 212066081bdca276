"""ResNet-18/34/50 in NumPy against an independent plain-torch implementation, stage by stage.

Weights: ``random_state_dict(depth, seed=0)`` from tests/torch_resnet.py (NumPy only, so these
tests need no torch). Golden values: tests/golden/resnet.npz (tests/golden/
make_golden_resnet.py): per stage 256 seeded positions plus the border of one channel, the
channel means, and the logits in full, for a (2, 3, 224, 224) and a (1, 3, 97, 131) input.

Tolerance: tests/golden_check.py's one rule, |numpy - golden| <= TAU * S with S the largest
|golden| of each array (stored positions, channel means, logits), for the goldens and the
live torch comparison alike. The float32 reference itself is within 1.1e-6 of a float64 run.
What TAU catches (tests/test_tolerance.py): BN eps 1e-3 instead of 1e-5 at the stem, TF
"SAME" padding at the stage where it happens; the bottleneck stride on the first 1x1 conv
(Keras / v1) is off by 3e-2 of the scale from layer2 on.
"""
import functools
import json
import pathlib

import numpy as np
import pytest
from golden_check import assert_matches_golden, assert_within_tau

from numpy_cam.cam import class_activation_map
from numpy_cam.io.checkpoint import CheckpointError, check_state_dict
from numpy_cam.models import ARCHITECTURES, Model, resnet
from torch_resnet import make_golden_input, random_state_dict, sha256_arrays

HERE = pathlib.Path(__file__).parent
GOLDEN = np.load(HERE / "golden" / "resnet.npz", allow_pickle=False)
INFO = json.loads(str(GOLDEN["__info__"]))
DEPTHS = (18, 34, 50)
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4", "features")
KEYS = {18: 122, 34: 218, 50: 320}          # state-dict entries, num_batches_tracked included
PARAMETERS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032}


def architecture(depth):
    """The architecture object numpy_cam.models registers for ResNet-``depth``."""
    return ARCHITECTURES[f"resnet{depth}"].module


@functools.cache
def state_dict(depth):
    return random_state_dict(depth, seed=0)


def golden_input(name):
    x = make_golden_input(name)
    assert sha256_arrays([x]) == INFO["inputs"][name]["sha256"]
    return x


def run_stages(depth, sd, x):
    """Every stage and the logits, through ``Model``."""
    name = f"resnet{depth}"
    return Model(name, name, sd, {"architecture": name}).stages(x)


@pytest.fixture(scope="module")
def outputs():
    return {depth: {name: run_stages(depth, state_dict(depth), golden_input(name)) for name in INFO["inputs"]}
            for depth in DEPTHS}


@pytest.mark.parametrize("depth", DEPTHS)
def test_weights_are_the_golden_files(depth):
    assert sha256_arrays(list(state_dict(depth).values())) == INFO["weights_sha256"][f"resnet{depth}"]


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("name", list(INFO["inputs"]))
@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_matches_golden(outputs, depth, name, stage):
    assert_matches_golden(GOLDEN, f"resnet{depth}/{name}/{stage}", outputs[depth][name][stage])


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("name", list(INFO["inputs"]))
def test_logits_match_golden(outputs, depth, name):
    logits = outputs[depth][name]["logits"]
    assert logits.dtype == np.float32
    assert_within_tau(logits, GOLDEN[f"resnet{depth}/{name}/logits"], f"resnet{depth} {name} logits")


@pytest.mark.parametrize("depth", DEPTHS)
def test_features_are_layer4_at_a_32nd_of_the_size(outputs, depth):
    out = outputs[depth]["uniform97x131"]
    assert out["features"] is out["layer4"]
    assert out["features"].shape == (1, architecture(depth).num_features, 4, 5)   # 97 -> 49, 25, 13, 7, 4
    assert out["stem"].shape == (1, 64, 25, 33)


@pytest.mark.parametrize("depth", DEPTHS)
def test_cam_identity(outputs, depth):
    """mean_{x,y} M_c(x, y) + b_c == S_c (paper Sec. 2, Eq. 2) for each image's top class."""
    sd, out = state_dict(depth), outputs[depth]["uniform224"]
    top = np.argmax(out["logits"], axis=1)                                  # (N,)
    cam = class_activation_map(out["features"], sd["fc.weight"], top)       # (N, 7, 7)
    assert cam.shape == (2, 7, 7) and cam.dtype == np.float32
    scores = cam.mean(axis=(1, 2), dtype=np.float64) + sd["fc.bias"][top]
    np.testing.assert_allclose(scores, out["logits"][np.arange(2), top], rtol=0, atol=1e-5)


@pytest.mark.parametrize("depth", DEPTHS)
def test_expected_shapes_key_count_and_parameters(depth):
    shapes = architecture(depth).expected_shapes(1000)
    assert len(shapes) == KEYS[depth]
    assert list(shapes.items()) == [(k, v.shape) for k, v in state_dict(depth).items()]  # names and order
    counted = sum(int(np.prod(s)) for k, s in shapes.items()
                  if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert counted == PARAMETERS[depth]
    assert architecture(depth).expected_shapes(10)["fc.weight"] == (10, 512 if depth < 50 else 2048)


def test_check_state_dict_names_missing_unexpected_and_misshaped():
    sd = dict(state_dict(18))
    del sd["layer3.1.bn2.running_var"]
    sd["layer5.0.conv1.weight"] = np.zeros((1,), np.float32)
    sd["layer2.0.downsample.0.weight"] = np.zeros((128, 64, 3, 3), np.float32)
    with pytest.raises(CheckpointError) as error:
        check_state_dict(sd, architecture(18).expected_shapes(1000), "broken.npz")
    message = str(error.value)
    assert "1 missing: layer3.1.bn2.running_var" in message
    assert "1 unexpected: layer5.0.conv1.weight" in message
    assert ("1 mis-shaped: layer2.0.downsample.0.weight (expected (128, 64, 1, 1), "
            "got (128, 64, 3, 3))") in message


def test_input_is_never_changed_and_preprocessing_is_torchvisions():
    x = golden_input("uniform97x131")
    before = x.copy()
    run_stages(18, state_dict(18), x)
    np.testing.assert_array_equal(x, before)
    p = architecture(50).PREPROCESSING
    assert p["size"] == 224 and p["crop_fraction"] == 224 / 256 and p["resample"] == "bilinear"
    np.testing.assert_allclose(p["mean"], np.array([0.485, 0.456, 0.406]) * 255)
    np.testing.assert_allclose(p["std"], np.array([0.229, 0.224, 0.225]) * 255)
    with pytest.raises(ValueError, match="depth must be one of"):
        resnet.ResNet(101)


@pytest.mark.parametrize("depth", DEPTHS)
def test_live_parity_with_torch_at_another_odd_size(depth):
    torch = pytest.importorskip("torch")
    from torch_resnet import build_resnet
    sd = state_dict(depth)
    net = build_resnet(depth, sd)
    torch_shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert list(torch_shapes.items()) == list(architecture(depth).expected_shapes(1000).items())
    x = np.random.default_rng(7).uniform(-2, 2, (2, 3, 75, 113)).astype(np.float32)
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in net.forward_stages(torch.from_numpy(x)).items()}
    ours = run_stages(depth, sd, x)
    assert list(ours) == list(ref)
    for stage in ref:
        assert_within_tau(ours[stage], ref[stage], f"resnet{depth} {stage}")
