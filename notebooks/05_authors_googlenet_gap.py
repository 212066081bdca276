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
# # The paper's own network on the authors' own data
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/05_authors_googlenet_gap.ipynb)
#
# Zhou et al. released, with the CAM paper, the softmax weights w_k^c of their GoogLeNet-GAP
# and the last-conv maps f_k of the ten crops of their demo photo, so that their MATLAB
# `demo.m` runs without Caffe (github.com/zhoubolei/CAM, MIT; bundled in
# `numpy_cam/data/authors_cam/`). This notebook redoes that demo with the package: Eq. 2 per
# crop with `class_activation_map`, the identity with the network's stored scores, the ten
# crops merged as `mergeTenCrop.m` does, the overlay as `map2jpg.m` draws it, and the same
# maps in this project's default convention. Along the way it measures two things the
# demo's code does that its authors probably did not mean.

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
from numpy_cam import authors, presets, visualize
from numpy_cam.authors import demo as authors_demo

data = authors.load_demo_data()                       # every file checked by size and SHA-256 first
f, w, scores = data.features, data.fc_weight, data.scores
print(f"f_k: features {f.shape} {f.dtype} (crop, K, y, x); w_k^c: fc_weight {w.shape}; "
      f"stored softmax scores {scores.shape}; photo {data.image.shape}")
for name, (size, sha256) in authors_demo.FILES.items():
    print(f"  {name}: {size:,} bytes, SHA-256 {sha256[:16]}...")

# %% [markdown]
# ## 1. The layout: which axis is x
#
# Caffe's MATLAB wrapper hands blobs over as width x height x channels x num, so the cached
# `activation_lastconv` (14, 14, 1024, 10) is f[x, y, k, crop], and `features` is its
# transpose (3, 2, 1, 0). Two checks on the maps themselves, either of which would fail if
# rows and columns were swapped: crop n + 5 is crop n mirrored left-right (Caffe's ten crops),
# so it must match crop n flipped along the columns; and crop 2 must be crop 1 seen 32 pixels
# (2 cells) further along one axis, crop 3 along the other.

# %%
mirror_cols = np.abs(f[5] - f[0][..., ::-1]).mean()
mirror_rows = np.abs(f[5] - f[0][..., ::-1, :]).mean()
right = np.abs(f[0][..., 2:] - f[1][..., :-2]).mean()      # crop 2 = crop 1 shifted right?
down = np.abs(f[0][..., 2:, :] - f[1][..., :-2, :]).mean()  # ... or shifted down?
print(f"crop 6 vs crop 1 mirrored along the columns: mean |difference| {mirror_cols:.3f}; "
      f"along the rows {mirror_rows:.3f}")
print(f"crop 2 vs crop 1 shifted 2 cells right: {right:.3f}; shifted 2 cells down: {down:.3f}")
assert mirror_cols < 0.5 * mirror_rows and right < 0.5 * down
print("(top, left, mirrored) of each crop, as measured:", authors_demo.CROPS[:5])
print("where mergeTenCrop.m puts them:               ", authors_demo.MERGE_TEN_CROP[:5])

# %% [markdown]
# Crop 2 is the top-RIGHT crop: the order of Caffe's old `matcaffe_demo.m`, which cut the
# crops from the (H, W) photo before transposing it. The `prepare_image.m` and
# `mergeTenCrop.m` in the authors' repository take crop 2 as the bottom-left one, so the demo
# merges crops 2 and 3 (and 7 and 8) at each other's places. Section 4 shows what that does.
#
# ## 2. The classes, and the identity with the stored scores
#
# With F_k = mean_{x,y} f_k(x, y), the logit is S_c = sum_k w_k^c F_k + b_c = mean_{x,y} M_c + b_c.
# The released weights have no bias (b_c = 0, as Eq. 2 uses none); the stored scores are
# Caffe's softmax outputs.

# %%
all_maps = numpy_cam.class_activation_map(f, w, np.broadcast_to(np.arange(1000), (10, 1000)))  # (10, 1000, 14, 14)
logits = all_maps.mean(axis=(2, 3))                                              # (10, 1000): S_c per crop
ours = numpy_cam.softmax(logits)                                                 # (10, 1000)
error = np.abs(ours - scores).max()
result = authors.run_demo(data)                                                   # demo.m, top 5
top = result.class_idx
print(f"max |softmax(mean M_c) - stored scores| over 10 crops x 1000 classes: {error:.2e}")
for c, s in zip(top, result.mean_scores):
    print(f"  {c:4d} {data.class_names[c]:55.55s} mean score {s:.4f}, ours {ours[:, c].mean():.4f}")
assert top.tolist() == [968, 967, 969, 550, 809]
assert numpy_cam.top_classes(ours.mean(axis=0), 5).tolist() == top.tolist()
assert 8.8e-4 < error < 9.0e-4

# %% [markdown]
# 8.9e-4 is not float32 noise (that would be ~1e-7). The residual log(score) - S_c is the same
# for every crop up to a per-crop constant (log Z): it is the bias of Caffe's `CAM_fc` layer,
# which the stored scores include and the released weights do not. With the bias the scores
# imply (`fc_bias_from_scores`; fitted on the same scores, so a consistency check), the
# identity holds to float32 precision.

# %%
bias = authors.fc_bias_from_scores(data)                                          # (1000,), up to a constant
pooled = f.astype(np.float64).mean(axis=(2, 3)) @ w.astype(np.float64).T         # (10, 1000)
with_bias = np.abs(numpy_cam.softmax(pooled + bias) - scores).max()
print(f"implied b_c: std {bias.std():.4f}, range [{bias.min():.4f}, {bias.max():.4f}]; "
      f"max |softmax(S_c + b_c) - scores| = {with_bias:.1e}")
assert with_bias < 5e-6
first = authors.run_demo(data, ranking="first-crop").class_idx
print(f"demo.m on the cached scores ranks crop 1 only (mean over a singleton axis): {first.tolist()}: "
      f"{', '.join(data.class_names[c].split(' ', 1)[1].split(',')[0] for c in first)}")

# %% [markdown]
# The demo's line 39, `mean(scores, 2)`, is written for the (1000, 10) scores the network
# returns; the cached scores are (1, 1, 1000, 10), so it averages over a singleton axis and
# the demo draws crop 1's top 5 (soup bowl third, beer glass fifth). `run_demo` ranks by the
# crop mean, as the line means (`ranking="first-crop"` gives what it computes).
#
# ## 3. One crop's maps, and MATLAB's bicubic
#
# M_c of the ten crops for the top class (cup), each 14 x 14 with stride 16 on the 224 crop;
# the demo resizes each to 224 x 224 with MATLAB's `imresize` (bicubic, a = -0.5, mirrored
# edges), where this project upsamples bilinearly.

# %%
cams = result.cams[:, 0]                                                          # (10, 14, 14): cup, per crop
peak = tuple(int(i) for i in np.unravel_index(cams[0].argmax(), cams[0].shape))   # (row, col)
print(f"M_c per crop: {cams.shape}, range [{cams.min():.2f}, {cams.max():.2f}]; crop 1 peaks at "
      f"{peak} (row, col) with {cams[0].max():.3f}")
bicubic = authors.imresize(cams.astype(np.float64), (224, 224))                   # (10, 224, 224)
bilinear = numpy_cam.upsample_bilinear(cams.astype(np.float64), (224, 224))       # (10, 224, 224)
print(f"MATLAB bicubic vs bilinear: largest difference {np.abs(bicubic - bilinear).max():.3f} "
      f"({np.abs(bicubic - bilinear).max() / cams.max():.1%} of the max); bicubic overshoots to "
      f"[{bicubic.min():.2f}, {bicubic.max():.2f}]")
assert peak == (7, 9)
visualize.montage([numpy_cam.apply_colormap(numpy_cam.normalize(m)) for m in cams],
                  [f"crop {n + 1}" + (" (mirrored)" if n >= 5 else "") for n in range(10)], columns=5, side=112)

# %% [markdown]
# ## 4. The ten crops merged, coloured and blended, as the demo draws them
#
# `mergeTenCrop.m` puts each 224 x 224 map at its crop's place on the 256 x 256 photo,
# mirrors the mirrored ones back and sums the absolute values; `map2jpg.m` min-max
# normalises the sum, takes 256 levels of MATLAB's jet; the demo blends photo * 0.2 +
# heatmap * 0.7. Top row: as the demo does it; bottom row: each crop where it was cut.

# %%
cropped = authors.run_demo(data, placement="cropped")
for j, c in enumerate(top):
    peak = tuple(int(i) for i in np.unravel_index(result.merged[j].argmax(), (256, 256)))
    peak_cut = tuple(int(i) for i in np.unravel_index(cropped.merged[j].argmax(), (256, 256)))
    print(f"{data.class_names[c].split(' ', 1)[1][:20]:20s} peak {peak} ({result.merged[j].max():7.1f}) as merged, "
          f"{peak_cut} ({cropped.merged[j].max():7.1f}) as cut")
assert np.unravel_index(result.merged[0].argmax(), (256, 256)) == (117, 150)       # on the cup
assert (cropped.merged.max(axis=(1, 2)) > 1.25 * result.merged.max(axis=(1, 2))).all()
visualize.montage([authors.demo_strip(data.image, result.overlays), authors.demo_strip(data.image, cropped.overlays)],
                  ["demo.m (mergeTenCrop.m's placement)", "each crop where it was cut"], columns=1)

# %% [markdown]
# Placed as cut, the crops agree: the same total mass piles up 1.3 to 1.5 times higher at the
# peak, and the seams of the misplaced crops (visible in the top row) are gone.
#
# ## 5. The authors' convention beside this project's
#
# This project's default (`to_heatmap`: bilinear upsampling, then min-max; matplotlib's jet;
# 0.5 * photo + 0.5 * colour) on the centre crop, the one a single-crop pipeline sees, beside
# the demo's drawing of the same class (cropped to the same window).

# %%
window = data.image[16:240, 16:240]                                                # crop 5: the centre
tiles, titles = [], []
for j, c in enumerate(top[:3]):
    ours_heat = numpy_cam.to_heatmap(result.cams[4, j], (224, 224))                 # (224, 224)
    tiles += [result.overlays[j][16:240, 16:240], numpy_cam.overlay(window, ours_heat)]
    titles += [f"{data.class_names[c].split(' ', 1)[1][:14]}: demo.m", "numpy-cam default"]
demo_index = presets.postprocess(result.cams[4, :1], (224, 224), "cam-matlab-demo")[0]   # (224, 224) uint8
ours_index = np.rint(numpy_cam.to_heatmap(result.cams[4, 0], (224, 224)) * 255)
print(f"cup, centre crop: demo's preset vs this project's default differ by up to "
      f"{np.abs(demo_index.astype(int) - ours_index).max():.0f} of 255 levels")
visualize.montage(tiles, titles, columns=2, side=224)

# %% [markdown]
# The one-crop recipe of the demo (the preset `"cam-matlab-demo"`): MATLAB bicubic to the crop,
# absolute value, min-max, round(255 m) into jet(256). Where M_c has no negative cells the
# absolute value does nothing; where it has, the demo draws negative evidence as positive.
