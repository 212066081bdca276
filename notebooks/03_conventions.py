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
# # Conventions: what the paper leaves open, and what changes with it
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/03_conventions.ipynb)
#
# The paper fixes Eq. 2 and the 20% threshold; it does not say on which grid to upsample,
# when to normalise, in what precision to store the map, which colormap to use, or how
# pixels connect. Implementations (the authors' own released code among them) choose
# differently. This notebook measures how much each choice moves the map and the box, on
# the bundled coffee photo and the default model, then shows what the authors' released
# code does differently from the paper, and how CAM relates to Grad-CAM.

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
from numpy_cam import localize, upsample, visualize
from numpy_cam.family import grad_cam, score_gradient
from numpy_cam.released_code import localize_released_code, released_code_rects

model = numpy_cam.load_model()
result = numpy_cam.explain_image(model, numpy_cam.DATA / "coffee.png")   # every step kept
M_c, f, c = result.cam, result.features, result.class_idx                  # (7, 7), (1, 1280, 7, 7), int
side = result.heatmap.shape[0]                                             # the crop the network saw
x0, y0, x1, y1 = result.crop
crop = result.image[y0:y1 + 1, x0:x1 + 1]                                  # (side, side, 3)
print(f"class {c} {model.class_names[c]!r}; M_c {M_c.shape}; crop {side} x {side}")

# %% [markdown]
# ## 1. The upsampling grid: half-pixel centres or aligned corners
#
# Where does output pixel o sit on the 7-cell input axis?
#
# - half-pixel centres (the default here; PyTorch `align_corners=False`, OpenCV, Pillow,
#   `scipy.ndimage.zoom(grid_mode=True)`): every pixel is a square with its value at its
#   centre, src = (o + 0.5) * 7 / n - 0.5, clamped to [0, 6];
# - aligned corners (`align_corners=True`, scipy's default `zoom`): the centres of the first
#   and last pixels coincide, src = o * 6 / (n - 1).

# %%
for align_corners in (False, True):
    src = upsample.source_coordinates(7, 14, align_corners=align_corners)[0]   # (14,)
    print(f"align_corners={align_corners!s:5}: 7 -> 14 samples at {src.round(3)}")

half = numpy_cam.to_heatmap(M_c, (side, side))                                    # (side, side)
corners = numpy_cam.to_heatmap(M_c, (side, side), align_corners=True)             # (side, side)
box_half, box_corners = localize.localize(half), localize.localize(corners)
print(f"largest difference between the two heatmaps: {np.abs(half - corners).max():.3f} (on a [0, 1] scale)")
print(f"boxes: {box_half} vs {box_corners}, IoU {numpy_cam.iou(box_half, box_corners):.3f}")
visualize.montage([numpy_cam.apply_colormap(half), numpy_cam.apply_colormap(corners),
                   visualize.gray(np.abs(half - corners) / np.abs(half - corners).max())],
                  ["half-pixel", "aligned corners", "|difference|, scaled to its max"], side=224)

# %% [markdown]
# Aligned corners stretch the map outwards: its outer cells' centres land on the image's
# edge pixels instead of 1/14 of the image inside. A map drawn on the half-pixel grid lands
# where PyTorch, OpenCV and Pillow would put it.
#
# ## 2. Normalisation: before or after upsampling, with or without ReLU
#
# Min-max normalisation is affine, and bilinear interpolation commutes with affine maps, so
# the two orders differ only where the upsampled map does not reach the 7 x 7 map's extremes
# (on the half-pixel grid an interior extreme is never sampled exactly). Clipping negative
# values first (ReLU, as Grad-CAM does; not in the paper) changes the map only when M_c
# has negative cells.

# %%
after = numpy_cam.to_heatmap(M_c, (side, side), order="upsample-first")    # the default
before = numpy_cam.to_heatmap(M_c, (side, side), order="normalize-first")
print(f"M_c in [{M_c.min():.3f}, {M_c.max():.3f}]; upsampled in "
      f"[{numpy_cam.upsample_bilinear(M_c, (side, side)).min():.3f}, "
      f"{numpy_cam.upsample_bilinear(M_c, (side, side)).max():.3f}]")
print(f"upsample-first vs normalize-first: largest difference {np.abs(after - before).max():.4f}, "
      f"boxes {localize.localize(after)} vs {localize.localize(before)}")
worst = int(np.argmin(result.logits))                                       # a class with negative evidence
M_worst = numpy_cam.class_activation_map(f, model.fc_weight, worst)[0]     # (7, 7)
plain, clipped = numpy_cam.to_heatmap(M_worst, (side, side)), numpy_cam.to_heatmap(M_worst, (side, side), relu=True)
print(f"class {worst} ({model.class_names[worst]!r}): M_c in [{M_worst.min():.2f}, {M_worst.max():.2f}]; "
      f"with ReLU the map moves by up to {np.abs(plain - clipped).max():.3f}, "
      f"boxes {localize.localize(plain)} vs {localize.localize(clipped)}")

# %% [markdown]
# With ReLU, the threshold of 20% of the max becomes 20% of the *positive* range: a
# different segmentation whenever the map goes below zero.
#
# ## 3. uint8 quantisation
#
# Saving the map as an 8-bit image (the authors' MATLAB pipeline wrote it as a JPEG, then
# read it back to draw boxes) rounds it to 256 levels: an error of at most 1/510 on the
# [0, 1] scale, and pixels that were just above the threshold can fall to it.

# %%
levels = np.round(after * 255).astype(np.uint8)                            # (side, side) uint8
back = levels / np.float32(255)                                             # (side, side) float32
print(f"largest rounding error {np.abs(back - after).max():.5f} (1 / 510 = {1 / 510:.5f})")
print(f"pixels above 0.2 max: {localize.threshold_mask(after).sum()} float, "
      f"{localize.threshold_mask(back).sum()} after uint8; boxes {localize.localize(after)} vs "
      f"{localize.localize(back)}")

# %% [markdown]
# ## 4. Colormaps
#
# "jet" is two different curves: matplotlib's (used here, `visualize.JET`) and OpenCV's
# `COLORMAP_JET` (GNU Octave's, used by the authors' PyTorch demo; `visualize.OPENCV_JET`).
# Both run dark blue -> cyan -> yellow -> dark red; they differ by up to 33 of 255 levels
# (34 if the curves are rounded half to even), most in the yellow-orange range.

# %%
ramp = np.tile(np.linspace(0, 1, 256, dtype=np.float32), (24, 1))          # (24, 256)
gap = np.abs(visualize.JET.astype(int) - visualize.OPENCV_JET.astype(int))  # (256, 3)
index, channel = np.unravel_index(gap.argmax(), gap.shape)
print(f"largest difference: {gap.max()} levels, at value {index}/255 on the {'RGB'[channel]} channel")
visualize.montage([numpy_cam.apply_colormap(ramp), numpy_cam.apply_colormap(ramp, visualize.OPENCV_JET),
                   numpy_cam.overlay(crop, after), numpy_cam.overlay(crop, after, table=visualize.OPENCV_JET)],
                  ["matplotlib jet", "OpenCV jet", "overlay, matplotlib", "overlay, OpenCV"], columns=2, side=256)

# %% [markdown]
# ## 5. Connectivity: 4 or 8
#
# The paper says "the largest connected component" without defining connected. Here it is
# 8 (a corner counts), as in OpenCV's contour tracing that the authors' code used; scipy's
# own default is 4. On a smooth upsampled map the two rarely differ: when they do, two
# blobs touch only at a corner.

# %%
mask = np.array([[1, 0, 0, 0, 0],
                 [0, 1, 0, 0, 0],
                 [0, 0, 1, 0, 0],
                 [0, 0, 0, 0, 0],
                 [0, 0, 0, 1, 1]], bool)                   # a diagonal of 3 pixels and a bar of 2
for connectivity in (4, 8):
    box = localize.bbox_of_mask(localize.largest_component(mask, connectivity))
    print(f"connectivity {connectivity}: the largest component of the hand-made mask has box {box}")

all_maps = numpy_cam.class_activation_map(f, model.fc_weight, np.arange(model.num_classes)[None])[0]  # (1000, 7, 7)
all_heatmaps = numpy_cam.to_heatmap(all_maps, (side, side))                                         # (1000, side, side)
differ = sum(localize.localize(m, connectivity=4) != localize.localize(m, connectivity=8) for m in all_heatmaps)
print(f"maps of all {len(all_heatmaps)} classes on the coffee photo: {differ} boxes differ between 4 and 8")

# %% [markdown]
# ## 6. What the authors' released code does differently from the paper
#
# The paper (Sec. 3): threshold at 20% of the max, box the largest connected component.
# The authors' released box generator (`dt_box`, called from their MATLAB scripts; here
# `numpy_cam.released_code`) instead: reads the map as uint8, thresholds it at three levels
# (20, 100, 110 of 255, about 8%, 39% and 43% of the max), erodes each mask with a distance
# transform, makes a box of every contour (holes included) with a 5-pixel margin from the
# right and bottom edges, merges overlapping boxes, and scores the box of the largest
# *area* first, one pixel wider and taller than its pixels.

# %%
for photo in ("coffee.png", "chelsea.png"):
    r = numpy_cam.explain_image(model, numpy_cam.DATA / photo)
    paper, released = localize.localize(r.heatmap), localize_released_code(r.heatmap)
    print(f"{photo}: paper {paper}, released code {released} (of {len(released_code_rects(r.heatmap))} "
          f"rects), IoU {numpy_cam.iou(paper, released):.3f}")

# %%
on_map = numpy_cam.overlay(crop, result.heatmap)                            # coffee, (side, side, 3)
visualize.montage([numpy_cam.draw_box(on_map, localize.localize(result.heatmap)),
                   numpy_cam.draw_box(on_map, localize_released_code(result.heatmap), color=(255, 0, 255))],
                  ["paper: 20%, largest component", "released code: dt_box, first rect"], side=300)

# %% [markdown]
# On both photos the released code's first rect comes from its lowest threshold (20 of 255,
# about 8% of the max), which nearly the whole crop passes: it stops 5 pixels short of the
# right and bottom edges. Its second rect (from the threshold of 100; the one from 110
# overlapped it and was merged away) is the tight one; the ILSVRC script scored the first.
#
# ## 7. CAM and Grad-CAM
#
# Grad-CAM (Selvaraju et al., 2017) weighs each map by the average gradient of the class
# score, alpha_k^c = mean_{x,y} dS_c / df_k(x, y), and keeps the positive part:
# ReLU(sum_k alpha_k^c f_k). On CAM's head, S_c = sum_k w_k^c mean_{x,y} f_k(x, y) + b_c,
# the gradient is the same at every position: dS_c / df_k(x, y) = w_k^c / (h w). So
#
#     Grad-CAM = ReLU(M_c) / (h w),
#
# CAM up to a positive constant and the ReLU. `family.score_gradient` writes the gradient
# out (no autograd); the test suite checks it against finite differences and torch.

# %%
h, w = M_c.shape
grad = score_gradient(f, model.fc_weight, c)                               # (1, K, h, w): dS_c / df_k(x, y)
print("gradient", grad.shape, "; constant over (x, y):", bool(np.all(grad == grad[:, :, :1, :1])))
print("equal to w_k^c / (h w):", np.allclose(grad[0, :, 0, 0], model.fc_weight[c] / (h * w)))
for cls in (c, worst):
    cam_map = numpy_cam.class_activation_map(f, model.fc_weight, cls)[0]   # (h, w) M_c
    gc = grad_cam(f, model.fc_weight, cls)[0]                              # (h, w)
    gap_to_cam = np.abs(gc - np.maximum(cam_map, 0) / (h * w)).max()
    print(f"class {cls:4d}: |Grad-CAM - ReLU(M_c) / (h w)| <= {gap_to_cam:.1e}; "
          f"M_c has {int((cam_map < 0).sum())} negative cells of {h * w}")
    assert gap_to_cam < 1e-6

# %% [markdown]
# For the predicted class M_c is positive everywhere, and the normalised heatmaps of CAM and
# Grad-CAM are the same picture. For a class the image argues against, M_c has negative
# cells, which Grad-CAM's ReLU sets to zero, as `to_heatmap(..., relu=True)` does (section 2).

# %%
same = numpy_cam.to_heatmap(grad_cam(f, model.fc_weight, c)[0], (side, side))
print("predicted class, normalised heatmaps of CAM and Grad-CAM differ by at most",
      f"{np.abs(same - after).max():.1e}")
