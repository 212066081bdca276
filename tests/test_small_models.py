"""The small GAP/GMP nets of the experiment: NumPy against the PyTorch net that trained them.

Golden values (tests/golden/small_nets.npz, from tests/golden/make_golden_small.py) at every
stage, conv1..conv5 and the logits; with torch installed, a live comparison as well. Tolerance:
tests/golden_check.py's one rule, |numpy - golden| <= TAU * S with S the largest |golden| of
each array (stored positions, channel means, logits).
"""
import json
import pathlib

import numpy as np
import pytest
from golden_check import assert_matches_golden, assert_within_tau

import numpy_cam
from numpy_cam.gap_gmp.synthetic import CLASS_NAMES

HERE = pathlib.Path(__file__).parent
GOLDEN = np.load(HERE / "golden" / "small_nets.npz", allow_pickle=False)
INFO = json.loads(str(GOLDEN["__info__"]))
NAMES = {"small_gap_seed0": "small_gap", "small_gmp_seed0": "small_gmp"}


def golden_inputs():
    from numpy_cam.gap_gmp.synthetic import TEST_SEED, make_dataset
    images = make_dataset(4, TEST_SEED)[0]
    synthetic = ((images.astype(np.float32) - np.float32(127.5)) / np.float32(127.5)).transpose(0, 3, 1, 2)
    uniform = np.random.default_rng(5).uniform(-1, 1, (1, 3, 64, 80)).astype(np.float32)
    return {"synthetic": np.ascontiguousarray(synthetic), "uniform64x80": uniform}


@pytest.fixture(scope="module")
def outputs():
    inputs = golden_inputs()
    return {net: {name: numpy_cam.load_model(NAMES[net]).stages(x) for name, x in inputs.items()}
            for net in INFO["nets"]}


@pytest.mark.parametrize("net", INFO["nets"])
@pytest.mark.parametrize("input_name", INFO["inputs"])
@pytest.mark.parametrize("stage", INFO["stages"])
def test_every_stage_matches_the_torch_net(outputs, net, input_name, stage):
    assert_matches_golden(GOLDEN, f"{net}/{input_name}/{stage}", outputs[net][input_name][stage])


@pytest.mark.parametrize("net", INFO["nets"])
@pytest.mark.parametrize("input_name", INFO["inputs"])
def test_logits_match_the_torch_net(outputs, net, input_name):
    assert_within_tau(outputs[net][input_name]["logits"], GOLDEN[f"{net}/{input_name}/logits"],
                      f"{net} {input_name} logits")


def test_small_models_by_name():
    gap, gmp = numpy_cam.load_model("small_gap"), numpy_cam.load_model("small_gmp")
    assert (gap.pooling, gmp.pooling) == ("avg", "max")
    assert gap.class_names == CLASS_NAMES and gap.fc_weight.shape == (len(CLASS_NAMES), 96)
    assert gap.preprocessing["size"] == 64 and gap.preprocessing["crop_fraction"] == 1.0


def test_weight_files_are_small():
    for name in ("small_gap_seed0", "small_gmp_seed0", "small_gap_seed1", "small_gmp_seed1"):
        assert (HERE.parent / "numpy_cam" / "data" / f"{name}.npz").stat().st_size < 700_000


def test_live_parity_with_torch():
    torch = pytest.importorskip("torch")
    import sys
    sys.path.insert(0, str(HERE.parent / "weights"))
    from train_small import SmallNet
    from numpy_cam.io.checkpoint import load_weights
    x = np.random.default_rng(11).uniform(-1, 1, (3, 3, 41, 57)).astype(np.float32)
    for net_name, name in NAMES.items():
        arrays, metadata = load_weights(HERE.parent / "numpy_cam" / "data" / f"{net_name}.npz")
        net = SmallNet("avg" if "gap" in name else "max", metadata["num_classes"], tuple(metadata["channels"]))
        net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
        net.eval()
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        model = numpy_cam.load_model(name)
        assert_within_tau(model.classify(model.features(x)), ref, f"{name} logits")
