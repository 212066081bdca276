"""The evaluation of the GAP-vs-GMP comparison (paper Sec. 3, Table 2), in NumPy.

Every small net shipped in the package's data/ (``small_gap_seed*.npz``,
``small_gmp_seed*.npz``) on the fixed synthetic test set
(``synthetic.make_dataset(TEST_SIZE, TEST_SEED)``, exact boxes); ``python -m
numpy_cam.gap_gmp`` prints the table and writes the results and the figure.

Metrics, as the paper's ILSVRC evaluation but on one object per image:
- classification error: the top-1 class is wrong;
- localisation error (top-1): the top-1 class is wrong OR the box of its CAM has IoU < 0.5
  with the true box;
- localisation error with the true class: the box of the true class's CAM has IoU < 0.5
  (separates localisation from classification);
- box / true area: the median ratio of the box's area to the true box's (with the true class);
- the same localisation error for a sweep of box thresholds.
Boxes: the paper's procedure (``localize.localize``, threshold 0.2 of the map's max, largest
8-connected component) on M_c upsampled to the image (``cam.to_heatmap``).
"""
import json

import numpy as np
from PIL import Image, ImageDraw

from ..cam import class_activation_map, to_heatmap
from ..io.image import pixels_to_x
from ..localize import iou, localize
from ..models import DATA
from ..visualize import draw_box, overlay
from . import synthetic

TEST_SEED, TEST_SIZE = synthetic.TEST_SEED, 2000
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
BATCH = 250
RESULTS_FILE = "gap_gmp_results.json"


def images_to_x(images, preprocessing):
    """(N, S, S, 3) uint8 -> x (N, 3, S, S) float32 for a net that takes whole S x S images."""
    if preprocessing["crop_fraction"] != 1.0 or preprocessing["size"] != images.shape[1]:
        raise ValueError("images_to_x is for nets that take the whole image at its own size")
    return pixels_to_x(images, preprocessing)                         # (N, 3, S, S)


def area(box):
    return (box[2] - box[0] + 1) * (box[3] - box[1] + 1)


def evaluate(model, images, labels, boxes, thresholds=THRESHOLDS):
    """Counts of errors of ``model`` on a labelled set with true boxes; see the module docstring."""
    n, size = len(images), images.shape[1]
    pred = np.empty(n, np.int64)
    iou_top1, iou_true = np.zeros(n), np.zeros((len(thresholds), n))
    ratio = np.zeros(n)
    k = thresholds.index(0.2)
    for start in range(0, n, BATCH):
        part = slice(start, start + BATCH)
        f = model.features(images_to_x(images[part], model.preprocessing))            # (B, K, h, w)
        pred[part] = model.classify(f).argmax(axis=1)
        top1 = to_heatmap(class_activation_map(f, model.fc_weight, pred[part]), (size, size))     # (B, S, S)
        true = to_heatmap(class_activation_map(f, model.fc_weight, labels[part]), (size, size))   # (B, S, S)
        for j, i in enumerate(range(start, min(start + BATCH, n))):
            gt = tuple(int(v) for v in boxes[i])
            box = localize(top1[j])
            iou_top1[i] = 0.0 if box is None else iou(box, gt)
            for t, threshold in enumerate(thresholds):
                box = localize(true[j], threshold=threshold)
                iou_true[t, i] = 0.0 if box is None else iou(box, gt)
                if t == k:
                    ratio[i] = 0.0 if box is None else area(box) / area(gt)
    right = pred == labels
    return {"n": n, "classification_errors": int((~right).sum()),
            "localisation_errors_top1": int((~(right & (iou_top1 >= 0.5))).sum()),
            "localisation_errors_true_class": int((iou_true[k] < 0.5).sum()),
            "median_box_to_true_area": float(np.median(ratio)),
            "sweep": {str(t): int((iou_true[i] < 0.5).sum()) for i, t in enumerate(thresholds)}}


def where_maps_peak(model, images, labels, masks, threshold=0.2):
    """Where the map of the true class puts its weight, against the object's parts.

    images : (N, S, S, 3) uint8; labels : (N,); masks : (N, S, S) uint8 from
    ``synthetic.make_dataset(..., return_masks=True)``: 0 background, 1 body, 2 head.

    Returns a dict of fractions: ``peak_on_head``, ``peak_on_body``, ``peak_off_object``
    (of the N images, where the upsampled map's maximum lies; ties: the first maximum in
    row-major order) and ``above_threshold_off_object`` (the share of a map's pixels above
    ``threshold`` x its max that lie outside the object, averaged over the N images).
    """
    n, size = len(images), images.shape[1]
    if masks.shape != images.shape[:3] or len(labels) != n:
        raise ValueError(f"labels (N,) and masks (N, S, S) must match images {images.shape}; "
                         f"got {np.shape(labels)} and {masks.shape}")
    peak_part, off_share = np.empty(n, np.uint8), np.empty(n)
    for start in range(0, n, BATCH):
        part = slice(start, start + BATCH)
        f = model.features(images_to_x(images[part], model.preprocessing))            # (B, K, h, w)
        heat = to_heatmap(class_activation_map(f, model.fc_weight, labels[part]), (size, size))  # (B, S, S)
        flat_heat, flat_mask = heat.reshape(len(heat), -1), masks[part].reshape(len(heat), -1)
        peak_part[part] = flat_mask[np.arange(len(heat)), flat_heat.argmax(axis=1)]  # (B,) 0, 1 or 2
        hot = heat > threshold * heat.max(axis=(1, 2), keepdims=True)                # (B, S, S)
        off = (hot & (masks[part] == 0)).sum(axis=(1, 2))                             # (B,)
        off_share[part] = off / np.maximum(hot.sum(axis=(1, 2)), 1)                  # (B,); a flat map: 0
    return {"peak_on_head": float(np.mean(peak_part == 2)), "peak_on_body": float(np.mean(peak_part == 1)),
            "peak_off_object": float(np.mean(peak_part == 0)),
            "above_threshold_off_object": float(off_share.mean())}


def stored_results():
    """The results shipped with the package (data/gap_gmp_results.json): net name -> counts."""
    return json.loads((DATA / RESULTS_FILE).read_text())


def weight_files():
    """The small nets shipped in the package's data/, GAP first, by seed."""
    return sorted(DATA.glob("small_gap_seed*.npz")) + sorted(DATA.glob("small_gmp_seed*.npz"))


def table(results):
    """The Markdown table of the results (errors as fractions of the test set)."""
    lines = ["| net | seed | classification error | localisation error (top-1) | "
             "localisation error (true class) | box / true area |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        pooling, seed = name.split("_")[1].upper(), name.rsplit("seed", 1)[1]
        lines.append(f"| {pooling} | {seed} | {r['classification_errors'] / r['n']:.3f} | "
                     f"{r['localisation_errors_top1'] / r['n']:.3f} | "
                     f"{r['localisation_errors_true_class'] / r['n']:.3f} | {r['median_box_to_true_area']:.2f} |")
    lines += ["", "| threshold | " + " | ".join(results) + " |", "|---" * (len(results) + 1) + "|"]
    for t in THRESHOLDS:
        lines.append(f"| {t} | " + " | ".join(f"{r['sweep'][str(t)] / r['n']:.3f}" for r in results.values()) + " |")
    return "\n".join(lines)


def examples_figure(gap, gmp, images, boxes, count, scale=2):
    """A grid, one row per image: the image | GAP CAM + box | GMP CAM + box | true box."""
    size = images.shape[1] * scale
    grid = Image.new("RGB", (4 * size + 5 * 4, count * (size + 4) + 18), "white")
    draw = ImageDraw.Draw(grid)
    for c, title in enumerate(("image", "GAP: CAM + box", "GMP: CAM + box", "true box")):
        draw.text((4 + c * (size + 4), 3), title, fill="black")
    for r in range(count):
        tiles = [images[r]]
        for model in (gap, gmp):
            f = model.features(images_to_x(images[r:r + 1], model.preprocessing))
            c = int(model.classify(f)[0].argmax())
            heat = to_heatmap(class_activation_map(f, model.fc_weight, c), images.shape[1:3])[0]
            tiles.append(draw_box(overlay(images[r], heat, 0.5), localize(heat), width=1))
        tiles.append(draw_box(images[r], tuple(int(v) for v in boxes[r]), color=(0, 255, 0), width=1))
        for c, tile in enumerate(tiles):
            big = Image.fromarray(tile).resize((size, size), Image.Resampling.NEAREST)
            grid.paste(big, (4 + c * (size + 4), 18 + r * (size + 4)))
    return np.asarray(grid)
