# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Global average pooling vs global max pooling (Sec. 3, Table 2)
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/02_gap_vs_gmp.ipynb)
#
# The paper argues that GAP "encourages the network to identify the extent of the object"
# while GMP "encourages it to identify just one discriminative part": the average gains
# from every part of the object, the max only from the single strongest position (Sec. 2). Its
# ILSVRC numbers (localisation error, top-1 / top-5, Table 2): GoogLeNet-GAP 56.40 / 43.00,
# GoogLeNet-GMP 57.78 / 45.26, with similar classification errors (Table 1).
#
# Here the experiment runs at laptop scale: small nets that differ only in the pooling,
# trained (`weights/train_small.py`, torch) on synthetic "creatures" built so that the
# difference matters: a weakly textured body and a strongly marked head. The weights are in
# `numpy_cam/data/`; everything below is NumPy.

# %%
# numpy-cam, installed only where it is missing (Colab, a fresh environment): a no-op here otherwise.
# NUMPY_CAM_SOURCE names another source for pip, e.g. file:///path/to/a/clone or git+https://.../fork
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("numpy_cam") is None:
    source = os.environ.get("NUMPY_CAM_SOURCE", "git+https://github.com/numpy-cam/numpy-cam")
    print(f"installing numpy-cam from {source}")
    subprocess.run([sys.executable, "-m", "pip", "install", f"numpy-cam @ {source}"], check=True)
    importlib.invalidate_caches()

# %%
import numpy as np

import numpy_cam
from numpy_cam import gap_gmp, visualize
from numpy_cam.gap_gmp import synthetic
from numpy_cam.family import grad_cam

gap = numpy_cam.load_model("small_gap")        # numpy_cam/data/small_gap_seed0.npz
gmp = numpy_cam.load_model("small_gmp")        # numpy_cam/data/small_gmp_seed0.npz: the same net, max pooling
print(gap, gap.pooling)
print(gmp, gmp.pooling)
print("classes:", synthetic.CLASS_NAMES)

# %% [markdown]
# ## The test set
#
# 2000 images of 64 x 64, six classes, with the exact box of each object (and its mask:
# 0 background, 1 body, 2 head). The same images for the same seed, on every machine.

# %%
images, labels, boxes, masks = synthetic.make_dataset(gap_gmp.TEST_SIZE, gap_gmp.TEST_SEED, return_masks=True)
print("images", images.shape, images.dtype, " labels", labels.shape, " boxes", boxes.shape, " masks", masks.shape)
visualize.montage([numpy_cam.draw_box(images[i], tuple(boxes[i]), color=(0, 255, 0), width=1) for i in range(6)],
                  [synthetic.CLASS_NAMES[labels[i]] for i in range(6)], side=128)

# %% [markdown]
# ## The table
#
# Metrics as the paper's ILSVRC evaluation, one object per image: classification error
# (top-1 wrong); localisation error (top-1 wrong, or the box of its CAM has IoU < 0.5 with
# the true box); the same with the true class's map (localisation alone); the median ratio
# of the box's area to the true box's. Boxes: 20% of the map's maximum AFTER min-max
# normalisation (`to_heatmap`, then `localize`), the largest 8-connected component: on the raw
# map, the paper's own words, the numbers differ a lot (the re-scoring below gives both).
# First the seed-0 pair, evaluated here (about 20 s):

# %%
measured = {"small_gap_seed0": gap_gmp.evaluate(gap, images, labels, boxes),
            "small_gmp_seed0": gap_gmp.evaluate(gmp, images, labels, boxes)}
print(gap_gmp.table(measured))

# %% [markdown]
# They are the numbers `python -m numpy_cam.gap_gmp` stored for all six nets (three seeds
# per pooling); the second table is the localisation error (true class) for other box
# thresholds than the paper's 20%:

# %%
stored = gap_gmp.stored_results()
for name, counts in measured.items():
    assert counts == stored[name], name                      # the same counts, image for image
print(gap_gmp.table(stored))

# %% [markdown]
# Both poolings classify well, and GAP localises far better. The paper's numbers (ILSVRC
# validation, error in %, top-1 / top-5): classification (Table 1) GoogLeNet-GAP 35.0 / 13.2,
# GoogLeNet-GMP 35.6 / 13.9; localisation (Table 2) GoogLeNet-GAP 56.40 / 43.00,
# GoogLeNet-GMP 57.78 / 45.26. Its gap in top-1 localisation error is 1.38 points (2.26 in
# top-5); this one is 58 to 65 points (over the three seeds), because these objects were made
# so that one part (the head) is enough to classify them and the rest is weak, spread-out
# evidence: the case the paper's argument (the end of Sec. 2, on GAP vs GMP) is about,
# pushed to the extreme.
#
# ## The maps side by side
#
# Each row: the image, the GAP net's CAM with its box, the GMP net's CAM with its box, the
# true box.

# %%
visualize.montage([gap_gmp.examples_figure(gap, gmp, images, boxes, count=6)])

# %% [markdown]
# ## Where the maps put their weight
#
# With the masks, we can say what the pictures suggest, over the first 400 test images
# (map of the true class): where each map peaks, and how much of the region above the
# paper's threshold lies outside the object.

# %%
for model in (gap, gmp):
    where = gap_gmp.where_maps_peak(model, images[:400], labels[:400], masks[:400])
    print(f"{model.pooling} pooling: peak on the head {where['peak_on_head']:.1%}, on the body "
          f"{where['peak_on_body']:.1%}, off the object {where['peak_off_object']:.1%}; "
          f"{where['above_threshold_off_object']:.1%} of the pixels above 0.2 max are off the object")

# %% [markdown]
# The GMP map peaks on the head, the one strongest piece of evidence: its box is the head,
# or the head joined to clutter. The GAP map covers the body, because every part of the
# object adds to the average; its boxes are too large rather than too small (median 1.5
# times the true area), as a 16 x 16 map upsampled to 64 x 64 bleeds past the object's edge.
#
# ## Re-scored: a threshold chosen on held-out data, MaxBoxAcc, PxAP
#
# One fixed threshold and IoU >= 0.5 let the threshold do much of the work (Choe et al.,
# "Evaluating Weakly Supervised Object Localization Methods Right", CVPR 2020). Here a
# CALIBRATION split, generated with its own seed (2020), chooses every threshold; the test
# split reports; the ORACLE (the best threshold on the test split itself) sits beside it.
# Metrics (`numpy_cam.metrics`, percent, higher is better; the paper's errors are 100 minus
# these): top-1 and GT-known localisation (the paper's, at tau = 0.2 and at the calibrated
# tau), MaxBoxAcc (IoU 0.5, the largest component), MaxBoxAccV2 (IoU 0.3 / 0.5 / 0.7, every
# component's box), PxAP (pixel average precision against the exact masks). Two threshold
# conventions: tau times the RAW map's maximum (the paper's words) and tau on the map
# min-max normalised to [0, 1] (what `to_heatmap` + `localize` did in the table above).
# Baselines on the same splits: a fixed centred square (its size chosen on the calibration
# split), the whole image, and the exact head and body boxes.
#
# `python -m numpy_cam.gap_gmp rescore --regime-nets weights/regimes` wrote the stored
# results; here the seed-0 pair is re-scored on the first images of both splits (the json's
# "check" part, a few seconds) and must give the same numbers:

# %%
stored_rescore = gap_gmp.report.stored_rescore()
calibration, test = gap_gmp.rescore.splits(*gap_gmp.report.CHECK_SIZES)
for name, model in (("small_gap_seed0", gap), ("small_gmp_seed0", gmp)):
    again = gap_gmp.rescore.score_net(model, calibration, test)
    for convention in gap_gmp.rescore.CONVENTIONS:
        record = stored_rescore["check"]["nets"][name][convention]
        assert abs(again[convention].pop("pxap") - record["pxap"]) < 1e-4, name   # pixels on a threshold edge
        assert again[convention] == {k: v for k, v in record.items() if k != "pxap"}, (name, convention)
print("the check part reproduces:", list(stored_rescore["check"]["nets"]))
print(gap_gmp.report.tables(stored_rescore))

# %% [markdown]
# What the re-scoring shows:
#
# - The convention matters more than the calibration. At the paper's 20% of the RAW map's
#   maximum, GAP's GT-known localisation is 91-94% (error 6-9%, not the 22-27% of the
#   min-max table above); GMP's raw maps are mostly negative around one hot spot, so 20% of
#   their max keeps almost nothing: about 1%.
# - A threshold chosen on the calibration split lands within a point of the oracle
#   (GAP 92.0 vs 92.8, max convention): here the threshold is not doing the work.
# - GMP loses to a content-free box. A fixed centred square (its size chosen on the
#   calibration split) localises 32.4% of the test objects; GMP, at its calibrated
#   threshold, 16-24% (either convention). The exact head box never passes IoU 0.5 (0 of 2,000): a map that found
#   only the head would fail by construction; the exact body box always passes.
# - The regime sweep (smaller nets, one seed each: fine-tuned from the seed-0 pair on 4,000
#   images of each regime, 3 epochs) moves the gap: small objects (GAP 65, GMP 8) and large
#   heads (81 vs 43, where the head box alone scores 67.5) keep it; a strong texture on the body
#   keeps it too (96 vs 37); a fully textured object without a head narrows it (91 vs 79) but
#   does NOT invert it, from scratch either (92 vs 76). Trained from scratch on the default
#   data with the same small budget, neither net classifies (GAP 47.5%, GMP 68.1%) and both
#   localise at the centred box's level: the sweep's nets are fine-tuned for that reason.

# %%
headline = stored_rescore["headline"]
for convention in gap_gmp.rescore.CONVENTIONS:
    best = {}
    for name, record in headline["nets"].items():
        best.setdefault(name.split("_")[1], []).append(record[convention]["gt_known_loc"]["calibrated"][0] / 2000)
    centred = headline["baselines"]["centred_box"]["gt_known_loc"]["calibrated"][0] / 2000
    print(f"{convention}: MaxBoxAcc (calibrated) GAP {min(best['gap']):.1%}-{max(best['gap']):.1%}, "
          f"GMP {min(best['gmp']):.1%}-{max(best['gmp']):.1%}, centred box {centred:.1%}")
    assert min(best["gap"]) > 0.85 and max(best["gmp"]) < centred < min(best["gap"])
raw_paper = [r["max"]["gt_known_loc"]["paper"] / 2000 for r in headline["nets"].values()]
assert min(raw_paper[:3]) > 0.9 and max(raw_paper[3:]) < 0.02          # GAP seeds first, then GMP
assert headline["baselines"]["head_box"]["box_acc"]["0.5"] == 0                      # 0 of 2,000
assert headline["baselines"]["body_box"]["box_acc"]["0.5"] == 2000
for regime, part in stored_rescore["regimes"].items():
    gap_acc, gmp_acc = (part["nets"][f"small_{p}_seed0"]["max"]["gt_known_loc"]["calibrated"][0] / 1000
                        for p in ("gap", "gmp"))
    print(f"{regime:17s} MaxBoxAcc (max, calibrated): GAP {gap_acc:.1%}  GMP {gmp_acc:.1%}")
    assert gap_acc > gmp_acc, regime                                    # no regime inverts the result

# %% [markdown]
# ## The identity holds for GAP only
#
# mean(M_c) + b_c = S_c is a property of average pooling. With max pooling the score is
# S_c = sum_k w_k^c max f_k + b_c, and the mean of the map says little about it.

# %%
x = gap_gmp.images_to_x(images[:1], gap.preprocessing)            # (1, 3, 64, 64)
for model in (gap, gmp):
    f = model.features(x)                                         # (1, K, 16, 16)
    S = model.classify(f)[0]                                      # (6,)
    c = int(S.argmax())
    M_c = numpy_cam.class_activation_map(f, model.fc_weight, c)[0]   # (16, 16)
    print(f"{model.pooling}: f {f.shape}, S_c = {S[c]:.4f}, mean(M_c) + b_c = {M_c.mean() + model.fc_bias[c]:.4f}")

# %% [markdown]
# ## And Grad-CAM on a GMP head
#
# The gradient of a max is w_k^c at the position of each map's maximum and 0 elsewhere;
# its average over (x, y) is w_k^c / (h w), as for GAP. So Grad-CAM on either head is
# ReLU(M_c) / (h w): for the GMP net too, Grad-CAM and CAM draw the same map (notebook 03).

# %%
f = gmp.features(x)                                               # (1, K, 16, 16)
c = int(gmp.classify(f)[0].argmax())
difference = grad_cam(f, gmp.fc_weight, c, pooling="max")[0] - np.maximum(
    numpy_cam.class_activation_map(f, gmp.fc_weight, c)[0], 0) / (16 * 16)
print("largest |Grad-CAM - ReLU(M_c) / (h w)| on the GMP net:", np.abs(difference).max())
assert np.abs(difference).max() < 1e-6
