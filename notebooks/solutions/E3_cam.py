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
# # Exercise 3: the class activation map, Eq. 2, and the identity behind it
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/solutions/E3_cam.ipynb)
#
# Zhou et al., CVPR 2016, Sec. 2, Eq. 2: the class activation map of class c is
#
#     M_c(x, y) = sum_k w_k^c f_k(x, y)
#
# the FC weights of class c applied at every position (x, y) of the last maps f_k, with no
# bias, no ReLU and no normalisation. Because GAP takes the mean over (x, y), and the FC
# layer is linear,
#
#     S_c = sum_k w_k^c mean_{x,y} f_k(x, y) + b_c = mean_{x,y} M_c(x, y) + b_c,
#
# so the map spreads the class score over the image. You write Eq. 2, check it, then check
# the identity on the real network's maps, and see it fail for a GMP network.

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

# %% [markdown]
# ## 1. Eq. 2

# %%
def class_activation_map(features, fc_weight, class_idx):
    """M_c(x, y) = sum_k w_k^c f_k(x, y), one class per image.

    Parameters
    ----------
    features : ndarray of shape (N, K, h, w), the maps f_k
    fc_weight : ndarray of shape (classes, K), w_k^c = fc_weight[c, k]
    class_idx : int (the same class for every image) or a sequence of N ints

    Returns
    -------
    cam : ndarray of shape (N, h, w), the dtype of features
    """
    # BEGIN SOLUTION
    classes = np.broadcast_to(np.asarray(class_idx), (features.shape[0],))   # (N,)
    w = fc_weight[classes].astype(features.dtype)                           # (N, K): w_k^c of each image
    return np.einsum("nk,nkhw->nhw", w, features)                           # (N, h, w)
    # END SOLUTION


# %%
cam_done = testing.report(testing.check_cam, class_activation_map)

# %% [markdown]
# ## 2. The identity on EfficientNet-Lite0's maps of the coffee photo

# %%
model = numpy_cam.load_model()
f = model.features(model.preprocess(numpy_cam.DATA / "coffee.png"))     # (1, 1280, 7, 7): f_k
S = model.classify(f)                                                    # (1, 1000): S_c
c = int(np.argmax(S[0]))
print("c =", c, model.class_names[c], f"S_c = {S[0, c]:.4f}, b_c = {model.fc_bias[c]:.4f}")
if cam_done:
    M = class_activation_map(f, model.fc_weight, c)                      # (1, 7, 7): M_c
    print(f"mean(M_c) + b_c = {M.mean() + model.fc_bias[c]:.4f}")
    print("M_c =\n", np.round(M[0], 2))
    assert abs(M.mean() + model.fc_bias[c] - S[0, c]) < 1e-3 * abs(S[0, c])
    assert 0.8 < M.min() < 0.85                                          # positive everywhere

# %% [markdown]
# ## 3. The same identity on the GMP network (reference functions)
#
# `small_gmp` is the paper's baseline: the same small network as `small_gap` with global
# *max* pooling. M_c is still sum_k w_k^c f_k(x, y), but S_c = sum_k w_k^c max f_k + b_c:

# %%
x = np.random.default_rng(5).uniform(-1, 1, (1, 3, 64, 80)).astype(np.float32)
for name in ("small_gap", "small_gmp"):
    net = numpy_cam.load_model(name)
    f_net = net.features(x)                                              # (1, 96, 16, 20)
    S_net = net.classify(f_net)                                          # (1, classes)
    c_net = int(np.argmax(S_net[0]))
    M_net = numpy_cam.class_activation_map(f_net, net.fc_weight, c_net)  # (1, 16, 20)
    print(f"{name}: S_c = {S_net[0, c_net]:8.4f}   mean(M_c) + b_c = {M_net.mean() + net.fc_bias[c_net]:8.4f}")
    if name == "small_gap":
        assert np.isclose(M_net.mean() + net.fc_bias[c_net], S_net[0, c_net], rtol=1e-4)
    else:
        assert not np.isclose(M_net.mean() + net.fc_bias[c_net], S_net[0, c_net], rtol=1e-2)

# %% [markdown]
# ## Questions
#
# 1. Why does the identity fail for GMP? What would the right "map" of a GMP network's score
#    be, and why is it a poor localiser?
#
# <!-- BEGIN SOLUTION -->
# *Answer.* Max does not commute with the weighted sum: sum_k w_k^c max f_k is not
# max (or mean) of sum_k w_k^c f_k, because each f_k peaks at its own position. The score
# of a GMP net depends only on each map's single strongest position, so the positions that
# make the score are K points; GAP rewards every position of a map, so all of an object's
# discriminative parts count (the paper's argument in Sec. 2 and 3).
# <!-- END SOLUTION -->
#
# 2. Someone adds the bias b_c to the map, M_c + b_c. What changes in the heat map drawn
#    after min-max normalisation, and what in the identity?
#
# <!-- BEGIN SOLUTION -->
# *Answer.* Nothing in the drawn map: a constant moves the min and the max equally. The
# identity breaks: mean(M_c + b_c) + b_c counts the bias twice. (The checker calls this
# mistake "a constant added to the map".)
# <!-- END SOLUTION -->
#
# 3. Eq. 2 has no ReLU (the checker calls one a mistake). Where can M_c be negative, and what
#    would clipping it at 0 do to mean(M_c) + b_c = S_c? Why does it not matter for the
#    espresso map above?
#
# <!-- BEGIN SOLUTION -->
# *Answer.* M_c(x, y) < 0 where the maps with negative weights w_k^c dominate: evidence
# against class c. Clipping raises the mean (mean(max(M, 0)) >= mean(M)), so the identity no
# longer holds, unless M_c >= 0 everywhere, as for espresso on this photo (its smallest value
# is 0.82).
# <!-- END SOLUTION -->
