"""Regenerate tests/golden/jet_matplotlib.csv: matplotlib's ``jet`` colormap at 256 levels.

One command, from the repository root::

    pip install matplotlib && python tests/golden/make_jet_reference.py

matplotlib is NOT a dependency of numpy-cam (not of the package, not of its tests): it is
needed only to rerun this script, and may be uninstalled afterwards. The tests read the csv.

What is written: 256 lines ``r,g,b``, line i (0-based) holding matplotlib's
``colormaps["jet"](i / 255)`` as float64 in [0, 1], each number written with ``repr`` (the
shortest string that reads back to the same float64). No header. ``numpy_cam.visualize.JET``
is built from jet's piecewise-linear definition without matplotlib and is tested against
this file in tests/test_visualize.py.

The committed file was generated with matplotlib 3.11.2 (a rerun reproduces it byte for byte);
jet's control points are long-standing, so other versions should give the same numbers.
"""

import argparse
from pathlib import Path

import numpy as np
import matplotlib


def jet_reference():
    """matplotlib's jet at i / 255, i = 0..255, as an ndarray of shape (256, 3), float64."""
    cmap = matplotlib.colormaps["jet"]
    rgba = np.asarray(cmap(np.arange(256) / 255.0), dtype=np.float64)   # (256, 4)
    return rgba[:, :3]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("jet_matplotlib.csv"))
    args = parser.parse_args()
    rgb = jet_reference()
    lines = [",".join(repr(float(v)) for v in row) for row in rgb]
    args.out.write_text("\n".join(lines) + "\n", encoding="ascii")
    print(f"wrote {args.out} ({len(lines)} lines) with matplotlib {matplotlib.__version__}")


if __name__ == "__main__":
    main()
