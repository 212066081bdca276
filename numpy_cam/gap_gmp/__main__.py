"""python -m numpy_cam.gap_gmp [--out DIR] [--examples 6]: the GAP-vs-GMP table and figure.

``python -m numpy_cam.gap_gmp rescore [--out DIR] [--jobs 2]``: the re-scored tables instead
(calibrated thresholds, MaxBoxAcc, MaxBoxAccV2, PxAP, baselines, the regime sweep; ``report.py``).

Evaluates every small net shipped in the package on the fixed test set, prints the table,
and writes into DIR (default: the current folder) ``gap_gmp_results.json`` (the counts;
the copy shipped in ``numpy_cam/data/`` is what the tests check) and the figure
``gap_gmp_examples.png`` (image | GAP CAM + box | GMP CAM + box | ground truth). It
never writes into the installed package.
"""
import argparse
import json
import pathlib
import sys

from ..io.image import save_png
from ..models import load_model
from . import report, synthetic
from .evaluate import RESULTS_FILE, TEST_SEED, TEST_SIZE, evaluate, examples_figure, table, weight_files


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["rescore"]:
        return report.main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m numpy_cam.gap_gmp", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=".", help="folder for the results and the figure (default: .)")
    p.add_argument("--examples", type=int, default=6, help="rows of the figure")
    args = p.parse_args(argv)
    files = weight_files()
    if not files:
        raise SystemExit("no small_gap_seed*.npz / small_gmp_seed*.npz in the package (weights/train_small.py)")
    images, labels, boxes = synthetic.make_dataset(TEST_SIZE, TEST_SEED)
    results = {path.stem: evaluate(load_model(path), images, labels, boxes) for path in files}
    print(table(results))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_FILE).write_text(json.dumps(results, indent=1) + "\n")
    figure = examples_figure(load_model("small_gap"), load_model("small_gmp"), images, boxes, args.examples)
    save_png(out / "gap_gmp_examples.png", figure)


if __name__ == "__main__":
    main()
