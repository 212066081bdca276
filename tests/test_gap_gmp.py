"""The GAP-vs-GMP table: the bundled weights give exactly the numbers of numpy_cam/data/gap_gmp_results.json.

The test set is generated from a fixed seed, so the counts are exact; the command that wrote
the JSON (and the README's table) is ``python -m numpy_cam.gap_gmp``.
"""
import json
import pathlib

import numpy as np
import pytest

from numpy_cam import gap_gmp
from numpy_cam.gap_gmp import synthetic
from numpy_cam.models import DATA, load_model

RESULTS = json.loads((pathlib.Path(__file__).resolve().parents[1] / "numpy_cam" / "data" / "gap_gmp_results.json")
                     .read_text())


@pytest.fixture(scope="module")
def test_set():
    """images, labels, boxes, masks of the whole test set (image i is the same whatever n)."""
    return synthetic.make_dataset(gap_gmp.TEST_SIZE, gap_gmp.TEST_SEED, return_masks=True)


@pytest.mark.slow              # ~15 s a net; the default run checks the seed-0 pair in notebooks/02_gap_vs_gmp.py
@pytest.mark.parametrize("name", sorted(RESULTS))
def test_bundled_weights_give_the_table(test_set, name):
    images, labels, boxes, _ = test_set
    assert gap_gmp.evaluate(load_model(DATA / f"{name}.npz"), images, labels, boxes) == RESULTS[name]


def test_the_table_covers_three_seeds_per_pooling():
    assert sorted(RESULTS) == [f"small_{pooling}_seed{seed}" for pooling in ("gap", "gmp") for seed in range(3)]
    assert sorted(RESULTS) == sorted(path.stem for path in gap_gmp.weight_files())
    assert all(r["n"] == 2000 for r in RESULTS.values())


def test_area_and_images_to_x():
    assert gap_gmp.area((0, 0, 9, 4)) == 50
    images = np.full((2, 64, 64, 3), 255, np.uint8)
    x = gap_gmp.images_to_x(images, load_model("small_gap").preprocessing)
    assert x.shape == (2, 3, 64, 64) and x.dtype == np.float32 and np.all(x == 1.0)
    with pytest.raises(ValueError, match="whole image"):
        gap_gmp.images_to_x(images[:, :32], load_model("small_gap").preprocessing)


def test_stored_results_are_the_json():
    assert gap_gmp.stored_results() == RESULTS


@pytest.mark.parametrize("name, head, body, off, off_pixels", [
    ("small_gap", 70, 311, 19, 0.4913),          # counts of the first 400 test images
    ("small_gmp", 285, 16, 99, 0.6611),
])
def test_where_maps_peak_on_the_first_400_images(test_set, name, head, body, off, off_pixels):
    images, labels, _, masks = (a[:400] for a in test_set)
    where = gap_gmp.where_maps_peak(load_model(name), images, labels, masks)
    assert [round(where[k] * 400) for k in ("peak_on_head", "peak_on_body", "peak_off_object")] == [head, body, off]
    assert where["above_threshold_off_object"] == pytest.approx(off_pixels, abs=1e-4)


def test_where_maps_peak_refuses_masks_of_another_size():
    images, labels, _, masks = synthetic.make_dataset(2, gap_gmp.TEST_SEED, return_masks=True)
    with pytest.raises(ValueError, match=r"masks \(N, S, S\) must match images \(2, 64, 64, 3\)"):
        gap_gmp.where_maps_peak(load_model("small_gap"), images, labels, masks[:, :32])
