"""weights/train_small.py --regime: the regime nets of the GAP-vs-GMP sweep train on their own data.

Needs torch (skips without it); one tiny run (64 images, one epoch) in tmp_path.
"""
import pathlib
import sys

import pytest

from numpy_cam.gap_gmp import synthetic

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "weights" / "train_small.py"


@pytest.fixture(scope="module")
def train_small():
    pytest.importorskip("torch")
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import train_small
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return train_small


def test_the_regime_option(train_small):
    assert train_small.parse_args([]).regime == "default"
    assert train_small.parse_args(["--regime", "textured"]).regime == "textured"
    with pytest.raises(SystemExit):
        train_small.parse_args(["--regime", "huge_head"])


def test_the_training_data_is_the_regime(train_small):
    images, labels = train_small.dataset(6, 3, "textured")
    expected = synthetic.make_dataset(6, 3, regime="textured")
    assert images.numpy().tobytes() == expected[0].tobytes() and labels.tolist() == expected[1].tolist()


def test_a_regime_net_records_its_regime(train_small, tmp_path):
    from numpy_cam import load_model
    from numpy_cam.io.checkpoint import load_weights
    args = train_small.parse_args(["--regime", "small_object", "--seeds", "0", "--poolings", "max", "--epochs", "1",
                                   "--train-size", "64", "--test-size", "32", "--batch", "32", "--jobs", "1",
                                   "--precision", "fp32", "--out", str(tmp_path)])
    row = train_small.train("max", 0, args)
    _, metadata = load_weights(row["path"])
    assert metadata["regime"] == "small_object" and "--regime small_object" in metadata["source"]
    assert load_model(row["path"]).pooling == "max"
    default = train_small.parse_args(["--out", str(tmp_path)])
    assert default.regime == "default"                                    # the headline nets' record has no key


def test_init_fine_tunes_a_trained_net(train_small, tmp_path):
    from numpy_cam.io.checkpoint import load_weights, sha256_of_file
    from numpy_cam.models import DATA
    args = train_small.parse_args(["--init", str(DATA / "<arch>_seed0.npz"), "--seeds", "0", "--poolings", "avg",
                                   "--epochs", "1", "--train-size", "64", "--test-size", "64", "--batch", "32",
                                   "--jobs", "1", "--precision", "fp32", "--out", str(tmp_path)])
    row = train_small.train("avg", 0, args)
    _, metadata = load_weights(row["path"])
    assert metadata["init"] == {"path": "small_gap_seed0.npz", "sha256": sha256_of_file(DATA / "small_gap_seed0.npz")}
    assert row["test_accuracy"] > 0.5                     # it starts from a net that classifies; chance is 1/6
