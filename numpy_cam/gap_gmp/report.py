"""``python -m numpy_cam.gap_gmp rescore``: every re-scored GAP-vs-GMP table from the committed nets.

No training: the nets are read, the seeded splits regenerated, ``rescore`` applied. Two parts:

- headline: the package's nets (``numpy_cam/data/small_{gap,gmp}_seed*.npz``, 12,000 images,
  8 epochs), calibration split ``HEADLINE_SIZES[0]`` images, test split ``HEADLINE_SIZES[1]``
  (the old table's 2,000 test images);
- regimes: the smaller-budget nets of the data-regime sweep, read from ``--regime-nets DIR``
  (``DIR/<regime>/small_{gap,gmp}_seed*.npz``; a clone's ``weights/regimes``, not in the wheel:
  without it only the headline is scored), each on its own regime's splits (``REGIME_SIZES``);
- check: the seed-0 pair and the baselines on the first ``CHECK_SIZES`` images, the quick
  reproduction the default test run compares.

Writes ``gap_gmp_rescore.json`` into ``--out`` (the copy shipped in ``numpy_cam/data/`` is what
the tests pin) and prints the Markdown tables (``tables``). Each net's record carries the
SHA-256 of its file; ``--reuse FILE`` takes the records of unchanged files from an earlier json.
"""
import argparse
import functools
import json
import multiprocessing
import pathlib
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..io.checkpoint import sha256_of_file
from ..metrics import IOU_THRESHOLDS
from ..models import DATA, load_model
from . import rescore, synthetic
from .evaluate import weight_files

RESCORE_FILE = "gap_gmp_rescore.json"
HEADLINE_SIZES, REGIME_SIZES, CHECK_SIZES = (500, 2000), (300, 1000), (20, 40)   # (calibration, test)


def regime_files(root):
    """{folder name: [net files, GAP first]} of the regime folders under ``root``.

    A folder is named by its regime (``synthetic.REGIMES``), its seed-S nets fine-tuned from the
    headline seed-S nets, or ``<regime>-scratch``, nets trained from a random start; in the
    order of ``REGIMES``, the fine-tuned folder first. Other folders are ignored.
    """
    found = {}
    for name in synthetic.REGIMES:
        for folder in (pathlib.Path(root) / name, pathlib.Path(root) / f"{name}-scratch"):
            files = sorted(folder.glob("small_gap_seed*.npz")) + sorted(folder.glob("small_gmp_seed*.npz"))
            if files:
                found[folder.name] = files
    return found


def regime_of(folder):
    """The regime name of a regime folder's name: "textured-scratch" -> "textured"."""
    return folder.removesuffix("-scratch")


@functools.lru_cache(maxsize=2)
def _splits(sizes, regime):
    return rescore.splits(*sizes, regime=regime_of(regime))


def _score_file(path, sizes, regime):
    """(file stem, record) of one net; run in a worker process."""
    calibration, test = _splits(sizes, regime)
    record = {"sha256": sha256_of_file(path), **rescore.score_net(load_model(path), calibration, test)}
    return pathlib.Path(path).stem, record


def _protocol():
    return {"calibration_seed": rescore.CALIBRATION_SEED, "test_seed": synthetic.TEST_SEED,
            "thresholds": "k / 100, k = 0..99", "paper_threshold": rescore.PAPER_THRESHOLD,
            "iou_thresholds": list(IOU_THRESHOLDS), "conventions": list(rescore.CONVENTIONS),
            "sizes": {"headline": list(HEADLINE_SIZES), "regimes": list(REGIME_SIZES), "check": list(CHECK_SIZES)}}


def run(jobs=1, regime_nets=None, reuse=None, headline=True):
    """The whole results dict (see the module docstring).

    regime_nets : None or the folder of the regime nets (``regime_files``)
    reuse : None or an earlier results dict, whose records of unchanged files are kept
    headline : False skips the headline and check parts (a first look at new regime nets)
    """
    old = {}                                                          # (part, regime name, stem) -> record
    if reuse:
        for part in ("headline", "check"):
            old.update({(part, "default", k): v for k, v in reuse.get(part, {}).get("nets", {}).items()})
        for name, part in reuse.get("regimes", {}).items():
            old.update({("regimes", name, k): v for k, v in part["nets"].items()})
    tasks = []                                                        # (part, regime name, sizes, path)
    if headline:
        tasks += [("headline", "default", HEADLINE_SIZES, p) for p in weight_files()]
        tasks += [("check", "default", CHECK_SIZES, p) for p in weight_files() if p.stem.endswith("seed0")]
    if regime_nets is not None:
        tasks += [("regimes", name, REGIME_SIZES, p) for name, files in regime_files(regime_nets).items()
                  for p in files]
    results = {"protocol": _protocol()}
    todo, records = [], {}
    for part, name, sizes, path in tasks:
        cached = old.get((part, name, path.stem))
        if cached is not None and cached["sha256"] == sha256_of_file(path) and _same_sizes(reuse, part, sizes):
            records[part, name, path.stem] = cached
        else:
            todo.append((part, name, sizes, path))
    if todo:
        args = [str(t[3]) for t in todo], [t[2] for t in todo], [t[1] for t in todo]
        if jobs == 1:
            scored = list(map(_score_file, *args))
        else:
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                scored = list(pool.map(_score_file, *args))
        records.update({(t[0], t[1], stem): rec for t, (stem, rec) in zip(todo, scored)})
    for part, sizes in (("headline", HEADLINE_SIZES), ("check", CHECK_SIZES)):
        if any(key[0] == part for key in records):
            nets = {stem: rec for (p, _, stem), rec in sorted(records.items()) if p == part}
            results[part] = {"nets": _gap_first(nets), "baselines": rescore.baselines(*_splits(sizes, "default"))}
    order = list(regime_files(regime_nets)) if regime_nets is not None else []
    names = sorted({key[1] for key in records if key[0] == "regimes"}, key=order.index)
    if names:
        results["regimes"] = {}
    for name in names:
        nets = {stem: rec for (p, n, stem), rec in sorted(records.items()) if p == "regimes" and n == name}
        base = rescore.baselines(*_splits(REGIME_SIZES, name))
        regime = regime_of(name)
        results["regimes"][name] = {"regime_name": regime, "regime": synthetic.REGIMES[regime]._asdict(),
                                    "nets": _gap_first(nets), "baselines": base}
    return results


def _same_sizes(reuse, part, sizes):
    return list(reuse["protocol"]["sizes"][part]) == list(sizes)


def _gap_first(nets):
    return dict(sorted(nets.items(), key=lambda item: (item[0].split("_")[1] != "gap", item[0])))


# ------------------------------------------------------------------------------------ tables

def _pct(count, n):
    return 100.0 * count / n


def _spread(values):
    """'mean (min-max)' of percentages, or the one value."""
    values = np.asarray(values)
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{values.mean():.1f} ({values.min():.1f}-{values.max():.1f})"


def net_columns(record):
    """The table's numbers (percent) of one net on one convention, in ``NET_HEADER``'s order."""
    n = record["n"]
    v2 = {kind: np.mean([_pct(c, n) for c, _ in record["max_box_acc_v2"][kind].values()])
          for kind in ("calibrated", "oracle")}
    return [_pct(record["classification"], n), _pct(record["top1_loc"]["paper"], n),
            _pct(record["top1_loc"]["calibrated"], n), _pct(record["gt_known_loc"]["paper"], n),
            _pct(record["gt_known_loc"]["calibrated"][0], n), _pct(record["gt_known_loc"]["oracle"][0], n),
            v2["calibrated"], v2["oracle"], 100.0 * record["pxap"]]


NET_HEADER = ("classification", "top-1 loc. @0.2", "top-1 loc. @cal.", "GT-known @0.2", "MaxBoxAcc cal.",
              "MaxBoxAcc oracle", "MaxBoxAccV2 cal.", "MaxBoxAccV2 oracle", "PxAP")


def baseline_columns(base):
    """Rows (name, numbers in ``NET_HEADER``'s order, None where it does not apply) of the baselines."""
    centred = {**base["centred_box"], "classification": 0, "top1_loc": {"paper": 0, "calibrated": 0}}
    rows = [("centred box", [None, None, None, None] + net_columns(centred)[4:])]      # no class, no fixed tau
    for key, name in (("whole_image", "whole image"), ("head_box", "exact head box"), ("body_box", "exact body box")):
        b = base[key]
        if b.get("present", 1) == 0:
            continue
        acc = {d: _pct(c, b["n"]) for d, c in b["box_acc"].items()}
        v2 = float(np.mean(list(acc.values())))
        pixel_ap = 100.0 * b["pxap"] if "pxap" in b else None
        rows.append((name, [None, None, None, acc["0.5"], acc["0.5"], acc["0.5"], v2, v2, pixel_ap]))
    return rows


def _line(name, cells):
    return "| " + name + " | " + " | ".join("-" if c is None else c if isinstance(c, str) else f"{c:.1f}"
                                          for c in cells) + " |"


def _by_pooling(nets, convention):
    groups = {}
    for stem, record in nets.items():
        groups.setdefault(stem.split("_")[1].upper(), []).append(net_columns(record[convention]))
    return groups


def headline_table(part, convention):
    """Markdown: GAP and GMP (mean and range over seeds) and the baselines, one convention."""
    lines = ["| " + f"test split, % ({convention})" + " | " + " | ".join(NET_HEADER) + " |",
             "|---" * (len(NET_HEADER) + 1) + "|"]
    for pooling, rows in _by_pooling(part["nets"], convention).items():
        columns = np.array(rows)                                       # (seeds, 9)
        lines.append(_line(f"{pooling} ({len(rows)} seeds)", [_spread(columns[:, j]) for j in range(columns.shape[1])]))
    lines += [_line(name, cells) for name, cells in baseline_columns(part["baselines"])]
    return "\n".join(lines)


def thresholds_table(part):
    """Markdown: the thresholds each net's MaxBoxAcc picked, calibrated and oracle, both conventions."""
    lines = ["| net | " + " | ".join(f"{c} cal. | {c} oracle" for c in rescore.CONVENTIONS) + " |",
             "|---" * (2 * len(rescore.CONVENTIONS) + 1) + "|"]
    for stem, record in part["nets"].items():
        cells = [f"{record[c]['gt_known_loc'][k][1]:.2f}" for c in rescore.CONVENTIONS
                 for k in ("calibrated", "oracle")]
        lines.append(f"| {stem} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


REGIME_HEADER = ("classification", "GT-known @0.2", "MaxBoxAcc cal.", "MaxBoxAcc oracle", "MaxBoxAccV2 cal.", "PxAP")
_REGIME_COLUMNS = (0, 3, 4, 5, 6, 8)


def regimes_table(regimes, convention):
    """Markdown: each regime's GAP and GMP nets and its baselines' MaxBoxAcc (one convention)."""
    lines = [f"| regime ({convention}) | net | " + " | ".join(REGIME_HEADER) + " | centred box | head box | body box |",
             "|---" * (len(REGIME_HEADER) + 5) + "|"]
    for name, part in regimes.items():
        base = {row: cells for row, cells in baseline_columns(part["baselines"])}
        extra = [base[k][4] if k in base else None for k in ("centred box", "exact head box", "exact body box")]
        for pooling, rows in _by_pooling(part["nets"], convention).items():
            columns = np.array(rows)
            cells = [_spread(columns[:, j]) for j in _REGIME_COLUMNS]
            lines.append(_line(f"{name} | {pooling}", cells + extra))
    return "\n".join(lines)


def tables(results):
    """Every Markdown table of a results dict, with a title line each."""
    out = []
    if "headline" in results:
        for convention in rescore.CONVENTIONS:
            out += [f"Headline nets, threshold on the map {_CONVENTION_WORDS[convention]}:", "",
                    headline_table(results["headline"], convention), ""]
        out += ["Thresholds chosen by MaxBoxAcc (IoU 0.5):", "", thresholds_table(results["headline"]), ""]
    if "regimes" in results:
        for convention in rescore.CONVENTIONS:
            out += [f"Regime sweep (smaller-budget nets), threshold on the map {_CONVENTION_WORDS[convention]}:", "",
                    regimes_table(results["regimes"], convention), ""]
    return "\n".join(out)


_CONVENTION_WORDS = {"max": "relative to its maximum (raw M_c)", "minmax": "min-max normalised to [0, 1]"}


def stored_rescore():
    """The re-scored results shipped with the package (data/gap_gmp_rescore.json)."""
    return json.loads((DATA / RESCORE_FILE).read_text())


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m numpy_cam.gap_gmp rescore", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=".", help="folder for gap_gmp_rescore.json (default: .)")
    p.add_argument("--jobs", type=int, default=1, help="nets scored side by side (processes)")
    p.add_argument("--reuse", help="an earlier gap_gmp_rescore.json: keep the records of unchanged nets")
    p.add_argument("--regime-nets", metavar="DIR",
                   help="the regime sweep's nets, DIR/<regime>/*.npz (a clone's weights/regimes); none: headline only")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    if not weight_files():
        raise SystemExit("no small_gap_seed*.npz / small_gmp_seed*.npz in the package (weights/train_small.py)")
    reuse = json.loads(pathlib.Path(args.reuse).read_text()) if args.reuse else None
    results = run(args.jobs, args.regime_nets, reuse)
    if "regimes" not in results:
        print(f"(no regime nets{' under ' + args.regime_nets if args.regime_nets else ''}: only the headline; "
              "--regime-nets weights/regimes in a clone)\n")
    print(tables(results))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESCORE_FILE).write_text(json.dumps(results, indent=1) + "\n")
