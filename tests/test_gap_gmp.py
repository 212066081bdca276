"""The GAP-vs-GMP table: the bundled weights give exactly the numbers of weights/gap_gmp_results.json.

The test set is generated from a fixed seed, so the counts are exact; the command that wrote
the JSON (and the README's table) is ``python -m numpy_cam.gap_gmp``.
"""
import json

import numpy as np
import pytest

from numpy_cam import gap_gmp, synthetic
from numpy_cam.models import WEIGHTS, load_model

RESULTS = json.loads((WEIGHTS / "gap_gmp_results.json").read_text())


@pytest.fixture(scope="module")
def test_set():
    return synthetic.make_dataset(gap_gmp.TEST_SIZE, gap_gmp.TEST_SEED)


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_bundled_weights_give_the_table(test_set, name):
    images, labels, boxes = test_set
    assert gap_gmp.evaluate(load_model(WEIGHTS / f"{name}.npz"), images, labels, boxes) == RESULTS[name]


def test_the_table_covers_two_seeds_per_pooling():
    assert sorted(RESULTS) == ["small_gap_seed0", "small_gap_seed1", "small_gmp_seed0", "small_gmp_seed1"]
    assert all(r["n"] == 2000 for r in RESULTS.values())


def test_area_and_images_to_x():
    assert gap_gmp.area((0, 0, 9, 4)) == 50
    images = np.full((2, 64, 64, 3), 255, np.uint8)
    x = gap_gmp.images_to_x(images, load_model("small_gap").preprocessing)
    assert x.shape == (2, 3, 64, 64) and x.dtype == np.float32 and np.all(x == 1.0)
    with pytest.raises(ValueError, match="whole image"):
        gap_gmp.images_to_x(images[:, :32], load_model("small_gap").preprocessing)
