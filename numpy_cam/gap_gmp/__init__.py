"""The paper's GAP-vs-GMP experiment (Sec. 3, Table 2) at laptop scale, in NumPy.

    synthetic.py  the seeded localisation data with exact boxes and masks, and its data regimes
    evaluate.py   the evaluation: error counts, the threshold sweep, where the maps peak, the figure
    rescore.py    the re-scoring: calibrated thresholds, MaxBoxAcc(V2), PxAP, the baselines
    report.py     ``python -m numpy_cam.gap_gmp rescore``: every re-scored table, the regime sweep
    __main__.py   ``python -m numpy_cam.gap_gmp``: the table, the results file and the figure

The small nets themselves are ``numpy_cam.models.small`` (``load_model("small_gap")``).
"""
from . import report, rescore, synthetic
from .evaluate import (TEST_SEED, TEST_SIZE, THRESHOLDS, area, evaluate, examples_figure, images_to_x,
                       stored_results, table, weight_files, where_maps_peak)

__all__ = ["synthetic", "rescore", "report", "evaluate", "where_maps_peak", "stored_results", "weight_files", "table",
           "examples_figure", "images_to_x", "area", "THRESHOLDS", "TEST_SEED", "TEST_SIZE"]
