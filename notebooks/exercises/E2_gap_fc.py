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
# # Exercise 2: from the last maps to the class scores: ReLU6, global average pooling, the FC layer
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/exercises/E2_gap_fc.ipynb)
#
# Zhou et al., CVPR 2016, Sec. 2. The network's last convolution gives K maps f_k(x, y).
# Global average pooling (GAP) turns each into one number F_k, and one fully connected layer
# turns those into the class scores S_c = sum_k w_k^c F_k (+ b_c), the softmax into P_c.
# The paper writes F_k as a sum over (x, y); every network here takes the mean, which differs
# by the constant 1 / (h w). The paper also leaves out the bias b_c (it sets the softmax's
# input bias to 0); real checkpoints have one, and the package keeps it in S_c.
#
# In EfficientNet-Lite0 the maps f_k come out of a ReLU6, min(max(x, 0), 6): so every f_k is
# in [0, 6]. You write the three functions, then run the real network with them.

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
from numpy_cam import layers, testing

# %% [markdown]
# ## 1. ReLU6

# %%
def relu6(x):
    """min(max(x, 0), 6), elementwise; a new array of x's shape and dtype (x unchanged)."""
    raise NotImplementedError("your code here")


# %%
relu6_done = testing.report(testing.check_relu6, relu6)

# %% [markdown]
# ## 2. Global average pooling: F_k = mean over (x, y) of f_k(x, y)

# %%
def global_avg_pool(features):
    """features : ndarray of shape (N, K, h, w) -> F : ndarray of shape (N, K), the same dtype."""
    raise NotImplementedError("your code here")


# %%
gap_done = testing.report(testing.check_global_avg_pool, global_avg_pool)

# %% [markdown]
# ## 3. The FC layer: S_c = sum_k w_k^c F_k + b_c
#
# `weight` has shape (classes, K): row c holds w_k^c for every k (PyTorch's layout).

# %%
def linear(x, weight, bias=None):
    """x (N, K), weight (classes, K), bias (classes,) or None -> S (N, classes), x's dtype."""
    raise NotImplementedError("your code here")


# %%
linear_done = testing.report(testing.check_linear, linear)

# %% [markdown]
# ## 4. Your three layers in EfficientNet-Lite0
#
# One call gives the network with your functions in place of the reference ones; the
# reference gives espresso with P = 0.951.

# %%
if relu6_done and gap_done and linear_done:
    yours = numpy_cam.load_model(layers={"relu6": relu6, "global_avg_pool": global_avg_pool, "linear": linear})
    top = yours.predict(numpy_cam.DATA / "coffee.png", top_k=3)
    for index, name, p in top:
        print(f"  class {index:4d}  P = {p:.4f}  {name}")
    assert top[0][1] == "espresso" and abs(top[0][2] - 0.951) < 1e-3

# %% [markdown]
# ## 5. What the sum would have done (reference functions)
#
# The paper's F_k is a sum. Pooling by the sum instead of the mean multiplies every
# w_k^c F_k by h w = 49 here, with the same weights:

# %%
model = numpy_cam.load_model()
f = model.features(model.preprocess(numpy_cam.DATA / "coffee.png"))      # (1, 1280, 7, 7)
h, w = f.shape[2:]
for pooling, F in (("mean", layers.global_avg_pool(f)), ("sum", f.sum(axis=(2, 3)))):
    P = layers.softmax(layers.linear(F, model.fc_weight, model.fc_bias))     # (1, 1000)
    c = int(np.argmax(P[0]))
    print(f"{pooling:4s}: top class {c} {model.class_names[c]!r}, P = {P[0, c]:.4f}")
assert np.allclose(f.sum(axis=(2, 3)), h * w * layers.global_avg_pool(f), rtol=1e-5)

# %% [markdown]
# ## Questions
#
# 1. The sum and the mean differ by a constant factor. Why does P(espresso) change at all
#    (0.951 -> 1.000 in the cell above)? Would it change for a network trained with the sum?
#
# *Your answer:*
#
# 2. Why does CAM need global *average* pooling right before the FC layer, and not, say, a
#    flatten and two FC layers (VGG's head)?
#
# *Your answer:*
#
# 3. Every f_k of Lite0 is in [0, 6] (ReLU6). What does that say about the sign of the
#    evidence a map can carry, and where can a negative value of M_c come from?
#
# *Your answer:*
