"""numpy_cam.gap_gmp.rescore and report: the re-scored GAP-vs-GMP tables.

The shipped numpy_cam/data/gap_gmp_rescore.json is what ``python -m numpy_cam.gap_gmp rescore``
wrote; the default run recomputes its "check" part (the seed-0 pair on the first images of both
splits), the slow set all of it. Hand-built cases pin the scoring and the baselines.
"""
import json
import pathlib

import numpy as np
import pytest

from numpy_cam import gap_gmp
from numpy_cam.gap_gmp import report, rescore, synthetic
from numpy_cam.io.checkpoint import sha256_of_file
from numpy_cam.metrics import THRESHOLDS
from numpy_cam.models import DATA, load_model

STORED = json.loads((DATA / report.RESCORE_FILE).read_text())
REGIME_NETS = pathlib.Path(__file__).resolve().parents[1] / "weights" / "regimes"   # the clone's


PXAP_TOLERANCE = 1e-4          # about 100 pixels of the pooled check split at a threshold edge


def _close(a, b):
    """Equal, but PxAP to PXAP_TOLERANCE: a pixel whose map value sits on a threshold may fall
    either side under another BLAS or thread count (one pixel moved it by 1.1e-6 under NumPy 1.22
    with 2 threads), while the counts stayed equal."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(
            _close(a[k], b[k]) if k != "pxap" else a[k] == pytest.approx(b[k], abs=PXAP_TOLERANCE) for k in a)
    return a == b


# ------------------------------------------------------------------------- the shipped json

def test_the_check_part_reproduces():
    calibration, test = rescore.splits(*report.CHECK_SIZES)
    for stem, record in STORED["check"]["nets"].items():
        path = DATA / f"{stem}.npz"
        got = {"sha256": sha256_of_file(path), **rescore.score_net(load_model(path), calibration, test)}
        assert _close(got, record), stem
    assert _close(json.loads(json.dumps(rescore.baselines(calibration, test))), STORED["check"]["baselines"])


@pytest.mark.slow              # ~33 min on 2 cores: every net (52) on its calibration and test splits
def test_the_whole_json_reproduces():
    assert _close(json.loads(json.dumps(report.run(jobs=2, regime_nets=REGIME_NETS))), STORED)


def test_the_json_covers_three_seeds_per_pooling_and_the_regimes():
    assert sorted(STORED["headline"]["nets"]) == [f"small_{p}_seed{s}" for p in ("gap", "gmp") for s in range(3)]
    assert sorted(STORED["check"]["nets"]) == ["small_gap_seed0", "small_gmp_seed0"]
    if REGIME_NETS.exists():                                              # a clone
        assert list(STORED["regimes"]) == list(report.regime_files(REGIME_NETS))
    assert set(synthetic.REGIMES) <= set(STORED["regimes"])
    for part in STORED["regimes"].values():
        assert {stem.split("_")[1] for stem in part["nets"]} == {"gap", "gmp"}
        assert part["regime"] == json.loads(json.dumps(synthetic.REGIMES[part["regime_name"]]._asdict()))
    sizes = STORED["protocol"]["sizes"]
    assert sizes == {"headline": list(report.HEADLINE_SIZES), "regimes": list(report.REGIME_SIZES),
                     "check": list(report.CHECK_SIZES)}
    assert all(r[c]["n"] == report.HEADLINE_SIZES[1] for r in STORED["headline"]["nets"].values()
               for c in rescore.CONVENTIONS)


def test_the_nets_are_the_shipped_files():
    for stem, record in STORED["headline"]["nets"].items():
        assert record["sha256"] == sha256_of_file(DATA / f"{stem}.npz"), stem


def test_the_calibration_split_is_its_own():
    assert len({rescore.CALIBRATION_SEED, synthetic.TRAIN_SEED, synthetic.TEST_SEED}) == 3
    calibration, test = rescore.splits(3, 3)
    assert not np.array_equal(calibration["images"], test["images"])
    np.testing.assert_array_equal(test["images"], synthetic.make_dataset(3, synthetic.TEST_SEED)[0])


def test_the_minmax_paper_count_is_the_old_evaluation():
    """At tau = 0.2 on the min-max map, GT-known is ``evaluate``'s localisation with the true class."""
    calibration, test = rescore.splits(*report.CHECK_SIZES)
    for stem, record in STORED["check"]["nets"].items():
        old = gap_gmp.evaluate(load_model(DATA / f"{stem}.npz"), test["images"], test["labels"], test["boxes"])
        n = report.CHECK_SIZES[1]
        assert record["minmax"]["gt_known_loc"]["paper"] == n - old["localisation_errors_true_class"], stem
        assert record["minmax"]["top1_loc"]["paper"] == n - old["localisation_errors_top1"], stem
        assert record["minmax"]["classification"] == n - old["classification_errors"], stem


# --------------------------------------------------------------------------- hand-built cases

def _table(columns):
    """(N, T) IoUs: image i has IoU columns[i][t] at each threshold column t given, 0 elsewhere."""
    out = np.zeros((len(columns), len(THRESHOLDS)))
    for i, values in enumerate(columns):
        for t, v in values.items():
            out[i, t] = v
    return out


def test_score_maps_calibrates_on_one_split_and_reports_on_the_other():
    # calibration: best at column 30 (2 of 2 images); test: 1 of 3 there, its own best 40 (3 of 3)
    cal = _table([{30: 0.6, 40: 0.4}, {30: 0.9, 20: 0.6}])
    test = _table([{30: 0.55, 40: 0.8}, {40: 0.5, 20: 0.7}, {40: 0.75, 30: 0.2}])
    record = rescore.score_maps({"largest": cal, "all": cal}, {"largest": test, "all": test},
                                right=np.array([True, False, True]), pixel_ap=0.25)
    assert record["n"] == 3 and record["classification"] == 2 and record["pxap"] == 0.25
    assert record["gt_known_loc"] == {"paper": 1, "calibrated": [1, 0.3], "oracle": [3, 0.4]}
    assert record["top1_loc"] == {"paper": 0, "calibrated": 1}          # image 1 has the wrong class
    assert record["max_box_acc_v2"]["calibrated"] == {"0.3": [1, 0.3], "0.5": [1, 0.3], "0.7": [0, 0.3]}
    assert record["max_box_acc_v2"]["oracle"] == {"0.3": [3, 0.4], "0.5": [3, 0.4], "0.7": [2, 0.4]}


def test_centre_prior_gives_centred_squares():
    prior = rescore.centre_prior(4)
    np.testing.assert_array_equal(prior, -np.array([[1.5, 1.5, 1.5, 1.5], [1.5, 0.5, 0.5, 1.5],
                                                     [1.5, 0.5, 0.5, 1.5], [1.5, 1.5, 1.5, 1.5]]))
    from numpy_cam.metrics import boxes_at_thresholds
    assert boxes_at_thresholds(prior, [0.0, 0.5]) == [[(1, 1, 2, 2)], [(1, 1, 2, 2)]]
    assert boxes_at_thresholds(rescore.centre_prior(5), [0.0, 0.4, 0.7]) == [[(1, 1, 3, 3)], [(1, 1, 3, 3)],
                                                                             [(2, 2, 2, 2)]]


def test_part_boxes():
    masks = np.zeros((2, 5, 6), np.uint8)
    masks[0, 1:4, 2:5] = 1
    masks[0, 2, 5] = 2
    masks[1, 0, 0] = 1
    np.testing.assert_array_equal(rescore.part_boxes(masks, 1), [[2, 1, 4, 3], [0, 0, 0, 0]])
    np.testing.assert_array_equal(rescore.part_boxes(masks, 2), [[5, 2, 5, 2], [-1, -1, -1, -1]])


def test_baselines_on_hand_built_splits():
    # 8 x 8 images; image 0: the object fills the image (body) with a 2 x 2 head; image 1: a 4 x 4 body
    # in the centre, no head. The centred square of side 4 is (2, 2, 5, 5).
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[0] = 1
    masks[0, :2, :2] = 2
    masks[1, 2:6, 2:6] = 1
    boxes = np.array([[0, 0, 7, 7], [2, 2, 5, 5]])
    split = {"images": np.zeros((2, 8, 8, 3), np.uint8), "labels": np.array([0, 1]), "boxes": boxes, "masks": masks}
    base = rescore.baselines(split, split)
    assert base["whole_image"]["box_acc"] == {"0.3": 1, "0.5": 1, "0.7": 1}        # image 1: IoU 16 / 64
    assert base["whole_image"]["pxap"] == (64 + 16) / 128
    assert base["head_box"] == {"n": 2, "box_acc": {"0.3": 0, "0.5": 0, "0.7": 0}, "present": 1}
    assert base["body_box"]["box_acc"] == {"0.3": 2, "0.5": 2, "0.7": 2}   # the body's box is the object's here
    centred = base["centred_box"]
    assert centred["gt_known_loc"]["calibrated"][0] == 1 and centred["gt_known_loc"]["oracle"][0] == 1
    assert centred["max_box_acc_v2"]["oracle"]["0.3"][0] == 2               # side 6: IoU 36/64, 16/36


def test_tables_render_the_stored_numbers():
    text = report.tables(STORED)
    assert text.count("| GAP (3 seeds) |") == 2 and text.count("| GMP (3 seeds) |") == 2
    for name in STORED["regimes"]:
        assert f"| {name} | GAP |" in text and f"| {name} | GMP |" in text
    record = STORED["headline"]["nets"]["small_gap_seed0"]["max"]
    columns = report.net_columns(record)
    assert columns[0] == 100.0 * record["classification"] / record["n"]
    assert columns[4] == 100.0 * record["gt_known_loc"]["calibrated"][0] / record["n"]


def test_the_readme_shows_the_stored_tables():
    """Every table of the README's re-scoring section is the one the shipped json renders."""
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    shown = [report.headline_table(STORED["headline"], c) for c in rescore.CONVENTIONS]
    shown += [report.thresholds_table(STORED["headline"])]
    shown += [report.regimes_table(STORED["regimes"], c) for c in rescore.CONVENTIONS]
    for table in shown:
        assert table in readme, table.splitlines()[0]


def test_regime_files_reads_only_regime_folders(tmp_path):
    for folder in ("textured-scratch", "textured", "default", "not_a_regime", "default-other"):
        (tmp_path / folder).mkdir()
    for name in ("default/small_gmp_seed0.npz", "default/small_gap_seed0.npz", "textured/small_gap_seed3.npz",
                 "not_a_regime/small_gap_seed0.npz", "textured/other.npz", "textured-scratch/small_gmp_seed0.npz",
                 "default-other/small_gap_seed0.npz"):
        (tmp_path / name).write_bytes(b"")
    found = report.regime_files(tmp_path)
    assert {k: [p.name for p in v] for k, v in found.items()} == {
        "default": ["small_gap_seed0.npz", "small_gmp_seed0.npz"], "textured": ["small_gap_seed3.npz"],
        "textured-scratch": ["small_gmp_seed0.npz"]}
    assert list(found) == ["default", "textured", "textured-scratch"]
    assert report.regime_of("textured-scratch") == "textured" and report.regime_of("default") == "default"


def test_reuse_keeps_the_records_of_unchanged_files(monkeypatch):
    scored = []
    monkeypatch.setattr(report, "_score_file",
                        lambda path, sizes, regime: scored.append(path) or (pathlib.Path(path).stem, {}))
    monkeypatch.setattr(report, "CHECK_SIZES", (2, 3))
    monkeypatch.setattr(rescore, "baselines", lambda calibration, test: {})
    monkeypatch.setattr(report, "_splits", lambda sizes, regime: ({}, {}))
    results = report.run(jobs=1, reuse=STORED)
    assert sorted(pathlib.Path(p).name for p in scored) == ["small_gap_seed0.npz", "small_gmp_seed0.npz"]
    assert results["headline"]["nets"] == STORED["headline"]["nets"]              # the check part only rescored


def test_reuse_rescores_nothing_when_no_file_or_size_changed(monkeypatch):
    scored = []
    monkeypatch.setattr(report, "_score_file", lambda path, sizes, regime: scored.append(path))
    monkeypatch.setattr(rescore, "baselines", lambda calibration, test: {})
    monkeypatch.setattr(report, "_splits", lambda sizes, regime: ({}, {}))
    results = report.run(jobs=1, regime_nets=REGIME_NETS if REGIME_NETS.exists() else None, reuse=STORED)
    assert scored == []
    assert results["check"]["nets"] == STORED["check"]["nets"]


def test_the_command_refuses_bad_jobs():
    with pytest.raises(SystemExit):
        report.main(["--jobs", "0"])
