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
# # Exercise 1: the convolution, with padding and stride
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/exercises/E1_conv2d.ipynb)
#
# Zhou et al., *Learning Deep Features for Discriminative Localization* (CVPR 2016), Sec. 2:
# CAM explains a network made of convolutions whose last layer gives the maps f_k(x, y).
# Every one of those maps comes out of the function you write here. In EfficientNet-Lite0,
# the package's default network, there are 49 convolutions (16 of them depthwise): a 3x3 stem at stride 2, 1x1
# "expand" and "project" convolutions, depthwise k x k convolutions (one filter per channel,
# `groups` = channels) and a 1x1 head that gives the K = 1280 maps f_k of 7 x 7.
#
# **The definition** (what deep-learning frameworks call convolution is cross-correlation:
# the kernel is *not* flipped):
#
#     y[n, o, i, j] = b[o] + sum_{c in group(o), u, v} w[o, c, u, v] x_pad[n, c, i*s + u, j*s + v]
#
# with s the stride and x_pad the input with `top` zero rows above, `bottom` below, `left` and
# `right` zero columns beside it; the output has Ho = (H + top + bottom - kh) // s + 1 rows.
# `padding` is an int p (p on every side), a pair (ph, pw) (ph above and below, pw left and
# right), explicit ((top, bottom), (left, right)), or "same": TensorFlow's rule, the one the
# EfficientNet checkpoints were trained with, where the output has ceil(H / s) rows, the total
# padding is max((ceil(H / s) - 1) * s + kh - H, 0) and the odd pixel goes after (bottom, right).
# With `groups` = G, the C input and O output channels are split into G consecutive blocks:
# output channel o sees only the C / G input channels of block o // (O / G).
#
# Write `same_padding` first, then `conv2d`; run each checker cell after it. A checker names the
# case that fails, shows what it expected and what you returned, and names the likely mistake.

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

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. TensorFlow's "SAME" padding of one axis

# %%
def same_padding(size, kernel, stride):
    """TF "SAME" padding of one axis: (before, after), the odd pixel after.

    The output has out = ceil(size / stride) samples; the total padding is
    max((out - 1) * stride + kernel - size, 0). Example: same_padding(224, 3, 2) == (0, 1).
    """
    raise NotImplementedError("your code here")


# %%
padding_done = testing.report(testing.check_same_padding, same_padding)

# %% [markdown]
# ## 2. conv2d
#
# Any correct way is fine (loops are fine: the checker's cases are small, and the small
# network it runs your function in has 64 x 80 inputs). You may call your `same_padding`.

# %%
def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """2-D cross-correlation, NCHW, as ``numpy_cam.layers.conv2d``.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), float32
    weight : ndarray of shape (O, C / groups, kh, kw)
    bias : ndarray of shape (O,) or None
    stride : int
    padding : int, (ph, pw), ((top, bottom), (left, right)) or "same"
    groups : int

    Returns
    -------
    y : ndarray of shape (N, O, Ho, Wo), float32 (the dtype of x)
    """
    raise NotImplementedError("your code here")


# %%
conv2d_done = testing.report(testing.check_conv2d, conv2d)

# %% [markdown]
# ## 3. Your conv2d in the real network
#
# `load_model(layers={"conv2d": conv2d})` gives EfficientNet-Lite0 with your function in all
# 49 convolutions (nothing else changes). The reference gives espresso with P = 0.951 on the
# bundled photo. (A conv2d that loops over every output pixel in Python is slow on 224 x 224
# inputs: loop over the kh x kw taps instead, each one array operation.)

# %%
if conv2d_done:
    yours = numpy_cam.load_model(layers={"conv2d": conv2d})
    top = yours.predict(numpy_cam.DATA / "coffee.png", top_k=3)
    for index, name, p in top:
        print(f"  class {index:4d}  P = {p:.4f}  {name}")
    assert top[0][1] == "espresso" and abs(top[0][2] - 0.951) < 1e-3
    testing.report(testing.check_conv2d, conv2d, networks=("efficientnet_lite0",))

# %% [markdown]
# ## Questions
#
# 1. `same_padding(224, 3, 2)` is (0, 1). Why does TensorFlow put the odd pixel after? The
#    network was trained that way: what would you expect if it were run with the pixel before
#    (top/left), or with PyTorch's symmetric `padding=1`?
#
# *Your answer:*
#
# 2. Deep-learning "convolution" does not flip the kernel. Would a network trained from
#    scratch with a flipped kernel be any worse? Would *these* checkpoints still work?
#
# *Your answer:*
#
# 3. A depthwise convolution has groups = C = O. How many multiplications does one 5 x 5
#    depthwise layer on 40 channels of 28 x 28 cost, against a dense 5 x 5 conv 40 -> 40?
#
# *Your answer:*
