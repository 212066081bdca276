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
# # The CAM family on a GAP head: which methods are CAM, and why
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/04_cam_family.ipynb)
#
# Grad-CAM, XGrad-CAM, HiResCAM, LayerCAM and Grad-CAM++ all start from the gradient of the
# class score with respect to the last conv maps. On CAM's head (conv maps f_k -> global
# average pooling -> one linear layer) that gradient is a constant, and each method's
# equation collapses to a CAM, M_c = sum_k w_k^c f_k (Eq. 2 of Zhou et al. 2016), with some
# channel weights. This notebook derives each identity from the method's own equation, one
# symbol at a time (its shape printed beside it), and checks it in float64 on the two bundled
# photos with the default model (EfficientNet-Lite0). Then it shows how far the methods that
# do *not* coincide are apart, and which identities a global max pooling (GMP) head breaks.
#
# If your Grad-CAM equals your XGrad-CAM (and your HiResCAM, where M_c >= 0) on such a
# network, that is correct: on this head they are the same map.

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
from numpy_cam import visualize
from numpy_cam.family import (closed_form_weights, grad_cam, grad_cam_pp, grad_cam_pp_peers,
                              grad_cam_pp_torchcam, hires_cam, layer_cam, method_map, score_gradient, xgrad_cam)

model = numpy_cam.load_model()
photos = ("coffee.png", "chelsea.png")
x = np.concatenate([model.preprocess(numpy_cam.DATA / p) for p in photos]).astype(np.float64)  # (2, 3, 224, 224)
f = model.features(x)                                          # (2, K, h, w): f_k, float64
S = model.classify(f)                                          # (2, 1000): S_c
c = S.argmax(axis=1)                                           # (2,): the top-1 class of each photo
W = model.fc_weight[c].astype(np.float64)                      # (2, K): w_k^c of each photo's class
N, K, h, w = f.shape
M_c = numpy_cam.class_activation_map(f, model.fc_weight, c[:, None])[:, 0]   # (2, h, w): Eq. 2
scale = np.abs(M_c).max()                                      # "equal" below: to 1e-12 of this
for n, photo in enumerate(photos):
    print(f"{photo}: class {c[n]} {model.class_names[c[n]]!r}, S_c = {S[n, c[n]]:.3f}, "
          f"M_c in [{M_c[n].min():.3f}, {M_c[n].max():.3f}]")
print(f"f_k {f.shape}, w_k^c {W.shape}, M_c {M_c.shape}; h w = {h * w}")

# %% [markdown]
# ## 1. The head and its gradient
#
# The score is S_c = sum_k w_k^c F_k + b_c with F_k = (1 / (h w)) sum_{x,y} f_k(x, y). It is
# linear in every f_k(x, y), so its gradient is the same at every position:
#
#     g_k(x, y) = dS_c / df_k(x, y) = w_k^c / (h w)
#
# and the mean of M_c is the score without its bias: mean_{x,y} M_c = S_c - b_c.

# %%
g = score_gradient(f, model.fc_weight, c)                      # (2, K, h, w): g_k(x, y), written out
print(f"g_k(x, y) {g.shape}; the same at every (x, y): {bool(np.all(g == g[:, :, :1, :1]))}")
assert np.allclose(g, W[:, :, None, None] / (h * w), rtol=1e-15, atol=0)
gap = M_c.mean(axis=(1, 2)) + model.fc_bias[c]                 # (2,): mean M_c + b_c
print("mean(M_c) + b_c - S_c:", gap - S[np.arange(N), c])
assert np.allclose(gap, S[np.arange(N), c], rtol=1e-12, atol=0)

# %% [markdown]
# ## 2. Grad-CAM = XGrad-CAM = ReLU(M_c) / (h w)
#
# Grad-CAM (Selvaraju et al., ICCV 2017) averages the gradient over the positions,
# alpha_k^c = (1 / (h w)) sum_{x,y} g_k(x, y), and maps L^c = **ReLU**(sum_k alpha_k^c f_k).
# With g_k = w_k^c / (h w) the average is that constant, alpha_k^c = w_k^c / (h w), so
#
#     L^c = ReLU(sum_k w_k^c f_k) / (h w) = ReLU(M_c) / (h w).
#
# XGrad-CAM (Fu et al., BMVC 2020) weighs the gradient by each map's share of its own sum,
# alpha_k^c = sum_{x,y} (f_k(x, y) / sum_{a,b} f_k(a, b)) g_k(x, y); with a constant g_k the
# shares sum to 1 and alpha_k^c = w_k^c / (h w) again (a map that sums to 0 is 0 everywhere,
# as f >= 0, and adds nothing). XGrad-CAM also applies the **ReLU**: the same map.

# %%
alpha = g.mean(axis=(2, 3))                                    # (2, K): Grad-CAM's alpha_k^c
share = (f / np.where(f.sum(axis=(2, 3), keepdims=True) > 0, f.sum(axis=(2, 3), keepdims=True), 1))  # (2, K, h, w)
alpha_x = (share * g).sum(axis=(2, 3))                         # (2, K): XGrad-CAM's alpha_k^c
used = f.sum(axis=(2, 3)) > 0                                  # (2, K): maps that are not all 0
print(f"alpha_k^c {alpha.shape}; XGrad-CAM's {alpha_x.shape}; maps all 0: {int((~used).sum())} of {N * K}")
assert np.allclose(alpha, W / (h * w), rtol=1e-14, atol=0)
assert np.allclose(alpha_x[used], (W / (h * w))[used], rtol=1e-12, atol=0)
for name, out in (("Grad-CAM", grad_cam(f, model.fc_weight, c)), ("XGrad-CAM", xgrad_cam(f, model.fc_weight, c))):
    error = np.abs(out - np.maximum(M_c, 0) / (h * w)).max()
    print(f"{name} {out.shape}: max |map - ReLU(M_c) / (h w)| = {error:.1e}")
    assert error <= 1e-12 * scale

# %% [markdown]
# ## 3. HiResCAM = M_c / (h w), signed
#
# HiResCAM (Draelos & Carin 2020) multiplies the gradient and the maps position by position
# and sums over k, sum_k g_k ⊙ f_k, with **no ReLU** in its definition. With the constant
# gradient that is sum_k (w_k^c / (h w)) f_k = M_c / (h w), the signed CAM. It equals
# Grad-CAM where M_c >= 0, and differs exactly where M_c < 0 (there Grad-CAM is 0).
# pytorch-grad-cam clips every method's map at 0, so its HiResCAM is ReLU(M_c) / (h w),
# Grad-CAM's.

# %%
hires = hires_cam(f, model.fc_weight, c)                       # (2, h, w)
print(f"HiResCAM {hires.shape}: max |map - M_c / (h w)| = {np.abs(hires - M_c / (h * w)).max():.1e}")
assert np.abs(hires - M_c / (h * w)).max() <= 1e-12 * scale
print(f"positions with M_c < 0 for the top-1 classes: {int((M_c < 0).sum())}: there HiResCAM = Grad-CAM")
assert (M_c >= 0).all() and np.abs(hires - grad_cam(f, model.fc_weight, c)).max() <= 1e-12 * scale
mug = 504                                                      # "coffee mug" on the coffee photo: M_c dips below 0
M_mug = numpy_cam.class_activation_map(f[:1], model.fc_weight, mug)[0]   # (h, w)
gap_mug = hires_cam(f[:1], model.fc_weight, mug)[0] - grad_cam(f[:1], model.fc_weight, mug)[0]   # (h, w)
differ = np.abs(gap_mug) > 1e-12 * scale                       # (h, w): beyond float64 rounding
print(f"class {mug} {model.class_names[mug]!r} on coffee.png: M_c in [{M_mug.min():.3f}, {M_mug.max():.3f}], "
      f"< 0 at {int((M_mug < 0).sum())} of {h * w} positions; HiResCAM and Grad-CAM differ at {int(differ.sum())}")
assert (M_mug < 0).any() and np.array_equal(differ, M_mug < 0)

# %% [markdown]
# ## 4. LayerCAM = M_c^+ / (h w): the CAM of the positive weights only
#
# LayerCAM (Jiang et al., IEEE TIP 2021) keeps only the positive gradients, position by
# position: ReLU(sum_k ReLU(g_k) ⊙ f_k). With g_k = w_k^c / (h w), ReLU(g_k) = max(w_k^c, 0) /
# (h w), so the map is ReLU(M_c^+) / (h w) with M_c^+ = sum_k max(w_k^c, 0) f_k; as f >= 0
# (the features follow a ReLU6), M_c^+ >= 0 and the outer ReLU does nothing. The negative
# weights are what LayerCAM drops, so it is *not* Grad-CAM on this head.

# %%
M_plus = np.einsum("nk,nkhw->nhw", np.maximum(W, 0), f)        # (2, h, w): M_c^+
layer = layer_cam(f, model.fc_weight, c)                       # (2, h, w)
print(f"f >= 0: {bool(f.min() >= 0)}; LayerCAM {layer.shape}: "
      f"max |map - M_c^+ / (h w)| = {np.abs(layer - M_plus / (h * w)).max():.1e}")
assert f.min() >= 0 and np.abs(layer - M_plus / (h * w)).max() <= 1e-12 * scale

# %% [markdown]
# ## 5. Grad-CAM++: a CAM with closed-form channel weights
#
# Grad-CAM++ (Chattopadhay et al., WACV 2018; equation numbers of arXiv:1710.11063) weighs
# the positive gradients by alpha_ij^k, w_k^++ = sum_{i,j} alpha_ij^k ReLU(g_k(i, j)), with
# (Eq. 19, for the exponential score Y_c = exp(S_c), whose exp(S_c) cancels in alpha)
#
#     alpha_ij^k = g^2 / (2 g^2 + sum_{a,b} f_k(a, b) g^3).
#
# With g = w_k^c / (h w) and sum_{a,b} f_k = h w F_k, for w_k^c > 0 this is
# alpha^k = 1 / (2 + w_k^c F_k), the same at every position, and
#
#     w_k^++ = h w * alpha^k * w_k^c / (h w) = max(w_k^c, 0) / (2 + w_k^c F_k):
#
# Grad-CAM++ is ReLU(sum_k w_k^++ f_k), a CAM with these weights. The paper's own weights
# use dY_c / df = exp(S_c) g, so its map is exp(S_c) times that: the same heatmap once
# normalised. torchcam 0.5.0 divides a copy of alpha, so it keeps alpha = g^2 and its weights
# are max(w_k^c, 0)^3 / (h w)^2: the CAM of the cubed positive weights, another map.

# %%
F = f.mean(axis=(2, 3))                                        # (2, K): F_k
w_pp = np.where(W > 0, W / (2 + W * F), 0)                     # (2, K): w_k^++ from the derivation
print(f"F_k {F.shape}, w_k^++ {w_pp.shape}: max |closed_form_weights - w_k^++| = "
      f"{np.abs(closed_form_weights(f, model.fc_weight, c) - w_pp).max():.1e}")
assert np.allclose(closed_form_weights(f, model.fc_weight, c), w_pp, rtol=1e-12, atol=0)
pp = grad_cam_pp_peers(f, model.fc_weight, c)                  # (2, h, w): Eq. 19 on g, written out
assert np.abs(pp - np.maximum(np.einsum("nk,nkhw->nhw", w_pp, f), 0)).max() <= 1e-11 * pp.max()
exp_score = np.exp(S[np.arange(N), c])[:, None, None]          # (2, 1, 1): exp(S_c)
paper = grad_cam_pp(f, model.fc_weight, c, fc_bias=model.fc_bias)
print(f"the paper's form / the peers' form = exp(S_c): {(paper.max(axis=(1, 2)) / pp.max(axis=(1, 2))).round(3)}"
      f" vs {exp_score.ravel().round(3)}")
assert np.allclose(paper, exp_score * pp, rtol=1e-11, atol=0)
cubed = np.maximum(np.einsum("nk,nkhw->nhw", np.maximum(W, 0) ** 3 / (h * w) ** 2, f), 0)   # (2, h, w)
assert np.allclose(grad_cam_pp_torchcam(f, model.fc_weight, c), cubed, rtol=1e-12, atol=0)

# %% [markdown]
# ## 6. How far apart the maps that differ are
#
# Heatmaps compared as this project draws them: each raw map min-max normalised on the h x w
# grid (`numpy_cam.normalize`), then the largest difference from CAM's, ReLU(M_c), on a
# [0, 1] scale. The first three are the identities above; LayerCAM drops the negative
# weights; Grad-CAM++ reweighs the positive ones; Eigen-CAM has no class at all.

# %%
reference = numpy_cam.normalize(np.maximum(M_c, 0))            # (2, h, w)
distance = {}
for method in ("gradcam", "xgradcam", "hirescam", "layercam", "gradcam++", "eigencam"):
    out = numpy_cam.normalize(np.maximum(method_map(model, x, c, method), 0))   # (2, h, w)
    distance[method] = np.abs(out - reference).max(axis=(1, 2))                # (2,): coffee, chelsea
    print(f"{method:10} max |normalised map - CAM's|: coffee {distance[method][0]:.4f}, "
          f"chelsea {distance[method][1]:.4f}")
assert max(distance[m].max() for m in ("gradcam", "xgradcam", "hirescam")) < 1e-12
assert min(distance[m].min() for m in ("layercam", "gradcam++", "eigencam")) > 0.05

# %%
side = 160
tiles, titles = [], []
for method in ("cam", "gradcam", "hirescam", "layercam", "gradcam++", "eigencam"):
    heatmap = numpy_cam.to_heatmap(np.maximum(method_map(model, x[1:], c[1:], method), 0)[0], (side, side))
    tiles.append(numpy_cam.apply_colormap(heatmap))
    titles.append(method)
visualize.montage(tiles, titles, side=side)

# %% [markdown]
# ## 7. Where a GMP head breaks them
#
# With global max pooling, S_c = sum_k w_k^c max_{x,y} f_k + b_c, and the gradient is w_k^c
# at each map's maximum and 0 elsewhere. Grad-CAM still averages it: alpha_k^c = w_k^c / (h w),
# so Grad-CAM is still ReLU(M_c) / (h w). But XGrad-CAM's share now picks the maximum,
# alpha_k^c = w_k^c max f_k / sum f_k, and HiResCAM and LayerCAM keep one position per map.
# The packaged `small_gmp` net shows it on the same photos.

# %%
gmp = numpy_cam.load_model("small_gmp")
xg = np.concatenate([gmp.preprocess(numpy_cam.DATA / p) for p in photos]).astype(np.float64)   # (2, 3, 64, 64)
fg = gmp.features(xg)                                          # (2, 96, 16, 16)
cg = gmp.classify(fg).argmax(axis=1)                           # (2,)
hg, wg = fg.shape[2:]
Mg = numpy_cam.class_activation_map(fg, gmp.fc_weight, cg[:, None])[:, 0]   # (2, 16, 16)
gg = score_gradient(fg, gmp.fc_weight, cg, pooling="max")      # (2, 96, 16, 16)
print(f"GMP gradient {gg.shape}: nonzero positions per map: {int((gg != 0).sum(axis=(2, 3)).max())}")
assert np.abs(grad_cam(fg, gmp.fc_weight, cg, pooling="max") - np.maximum(Mg, 0) / (hg * wg)).max() \
    <= 1e-12 * np.abs(Mg).max()
reference_g = numpy_cam.normalize(np.maximum(Mg, 0))           # (2, 16, 16)
apart = {}
for method in ("gradcam", "xgradcam", "hirescam", "layercam", "gradcam++"):
    out = numpy_cam.normalize(np.maximum(method_map(gmp, xg, cg, method), 0))   # (2, 16, 16)
    apart[method] = np.abs(out - reference_g).max(axis=(1, 2))
    print(f"small_gmp {method:10} max |normalised map - CAM's|: coffee {apart[method][0]:.4f}, "
          f"chelsea {apart[method][1]:.4f}")
assert apart["gradcam"].max() < 1e-12 and min(apart[m].min() for m in ("xgradcam", "hirescam", "layercam")) > 0.05

# %%
tiles = [numpy_cam.apply_colormap(numpy_cam.to_heatmap(np.maximum(method_map(gmp, xg[1:], cg[1:], m), 0)[0],
                                                       (side, side)))
         for m in ("cam", "gradcam", "xgradcam", "hirescam", "layercam")]
visualize.montage(tiles, ["GMP: cam", "gradcam", "xgradcam", "hirescam", "layercam"], side=side)

# %% [markdown]
# On a GAP head, then: Grad-CAM = XGrad-CAM = ReLU(M_c) / (h w) and HiResCAM = M_c / (h w)
# (the same where M_c >= 0), LayerCAM = M_c^+ / (h w), Grad-CAM++ = ReLU(sum_k w_k^++ f_k)
# with w_k^++ = max(w_k^c, 0) / (2 + w_k^c F_k). Score-CAM (forward passes of masked
# inputs) and Eigen-CAM (no class) coincide with none; on a GMP head only Grad-CAM keeps
# the identity. `tests/test_family.py` checks each on every shipped model.
