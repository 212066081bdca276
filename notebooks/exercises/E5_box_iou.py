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
# # Exercise 5: the paper's box and the IoU of the localisation metric
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/exercises/E5_box_iou.ipynb)
#
# Zhou et al., CVPR 2016, Sec. 3: to get a box from a map, the paper keeps the regions whose
# value is above 20% of the map's max, then takes the bounding box of the largest connected
# component. ILSVRC counts a guess right when its class is right and its box overlaps a
# ground-truth box with IoU >= 0.5.
#
# The package's conventions (`numpy_cam.localize`): a map is indexed heatmap[y, x] (row y,
# column x); a box is (x0, y0, x1, y1) with *inclusive* ends, so a one-pixel box is
# (x, y, x, y) and a box's area is (x1 - x0 + 1) * (y1 - y0 + 1) pixels (as the released
# evaluation code counts); no box is None; components are 8-connected (pixels touching by a
# corner belong together, as in the OpenCV contours of the authors' code); the threshold is
# strict, heatmap > threshold * max(heatmap), on the map as given.

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
from numpy_cam import testing
from numpy_cam.localize import largest_component

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. The box of a mask

# %%
def bbox_of_mask(mask):
    """The tightest box around the True pixels of mask (H, W): (x0, y0, x1, y1) inclusive ints, or None."""
    raise NotImplementedError("your code here")


# %%
bbox_done = testing.report(testing.check_bbox, bbox_of_mask)

# %% [markdown]
# ## 2. Intersection over union, counted in pixels

# %%
def iou(box_a, box_b):
    """IoU of two inclusive boxes (x0, y0, x1, y1): a float in [0, 1]."""
    raise NotImplementedError("your code here")


# %%
iou_done = testing.report(testing.check_iou, iou)

# %% [markdown]
# ## 3. The paper's box
#
# Threshold, largest component (you may use `largest_component(mask, connectivity)` from
# `numpy_cam.localize`, imported above), box.

# %%
def localize(heatmap, threshold=0.2, connectivity=8):
    """The box of the largest `connectivity`-connected component of heatmap > threshold * max, or None."""
    raise NotImplementedError("your code here")


# %%
localize_done = testing.report(testing.check_localize, localize)

# %% [markdown]
# ## 4. The box on the coffee photo: on the normalised map and on the raw map
#
# The package thresholds the *min-max-normalised* heat map (`to_heatmap`), as the released
# code and most peers do. On the raw upsampled map, 20% of the max is another threshold.
# (Boxes are in the pixels of the 224 x 224 crop the network saw.)

# %%
model = numpy_cam.load_model()
f = model.features(model.preprocess(numpy_cam.DATA / "coffee.png"))       # (1, 1280, 7, 7)
cam = numpy_cam.class_activation_map(f, model.fc_weight, 967)[0]          # (7, 7): espresso
heatmap = numpy_cam.to_heatmap(cam, (224, 224))                          # (224, 224), min-max normalised
raw = numpy_cam.upsample_bilinear(cam, (224, 224))                        # (224, 224), the raw M_c
box_normalised = numpy_cam.localize.localize(heatmap)
box_raw = numpy_cam.localize.localize(raw)
print("box on the normalised map:", box_normalised, " on the raw map:", box_raw)
print(f"raw map from {raw.min():.2f} to {raw.max():.2f}; the normalised threshold 0.2 is raw "
      f"{raw.min() + 0.2 * (raw.max() - raw.min()):.2f}, the raw threshold {0.2 * raw.max():.2f}")
pixels = [int(largest_component(m > 0.2 * m.max()).sum()) for m in (heatmap, raw)]
print(f"IoU of the two: {numpy_cam.iou(box_normalised, box_raw):.3f}; the largest component has {pixels[0]} "
      f"pixels on the normalised map, {pixels[1]} on the raw map")
assert box_normalised != box_raw and pixels[0] < pixels[1]
assert all(r <= n for r, n in zip(box_raw[:2], box_normalised[:2]))                  # the normalised box is
assert all(n <= r for n, r in zip(box_normalised[2:], box_raw[2:]))                  # inside the raw one
if bbox_done and iou_done and localize_done:
    assert localize(heatmap) == box_normalised and localize(raw) == box_raw
    assert abs(iou(box_normalised, box_raw) - numpy_cam.iou(box_normalised, box_raw)) < 1e-12

# %% [markdown]
# ## Questions
#
# 1. What does "20% of the max" mean on a min-max-normalised map, in terms of the raw map?
#
# *Your answer:*
#
# 2. Predict, before running the cell above: does thresholding the normalised map give a
#    larger or a smaller box than thresholding the raw map, when the raw map's min is above 0?
#
# *Your answer:*
#
# 3. Predict how `to_heatmap(..., order="normalize-first")` (normalise the 7 x 7 map, then
#    upsample) moves the box on the normalised map, then run the cell below.
#
# *Your answer:*

# %%
box_other = numpy_cam.localize.localize(numpy_cam.to_heatmap(cam, (224, 224), order="normalize-first"))
print("upsample-first:", box_normalised, " normalize-first:", box_other)
assert box_other == box_normalised

# %% [markdown]
# 4. Why does the IoU count (x1 - x0 + 1) pixels, and what goes wrong for one-pixel boxes
#    without the + 1?
#
# *Your answer:*
#
# 5. The checker's "diagonal chain" case: why does the connectivity decide which component
#    is the largest?
#
# *Your answer:*
