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
# # Exercise 4: upsampling the map to the image: bilinear interpolation and its grid
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/exercises/E4_upsample.ipynb)
#
# Zhou et al., CVPR 2016, Sec. 2: the map M_c is upsampled to the size of the input image to
# see the regions most relevant to class c. The paper names no kernel; bilinear is the usual
# choice. What a kernel does not fix is the *grid*: where output pixel o sits on the input.
#
# - half-pixel centres (`align_corners=False`, the default here, in PyTorch, OpenCV and
#   Pillow): pixel i covers [i, i + 1), its value sits at i + 0.5, so
#   src = (o + 0.5) * n_in / n_out - 0.5, clamped to [0, n_in - 1];
# - corner-aligned (`align_corners=True`, scipy's default `zoom`): the first and last pixel
#   centres coincide, src = o * (n_in - 1) / (n_out - 1) (0 when n_out == 1).
#
# Then i0 = floor(src), i1 = min(i0 + 1, n_in - 1), w1 = src - i0, and along one axis the
# value is (1 - w1) m[i0] + w1 m[i1]; in 2-D, the same along the rows and the columns.

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
from numpy_cam import testing, upsample

# %% [markdown]
# ## 1. The source coordinates of one axis

# %%
def source_coordinates(n_in, n_out, align_corners=False):
    """Where each of n_out output pixels samples an axis of n_in input pixels.

    Returns (src, i0, i1, w1), each of shape (n_out,): src float64, i0 and i1 int64
    (0 <= i0 <= i1 <= n_in - 1), w1 float64 in [0, 1], the weight of i1 (i0 gets 1 - w1).
    Example: source_coordinates(2, 4)[0] is [0, 0.25, 0.75, 1].
    """
    raise NotImplementedError("your code here")


# %%
coordinates_done = testing.report(testing.check_source_coordinates, source_coordinates)

# %% [markdown]
# ## 2. Bilinear upsampling of the last two axes
#
# You may call your `source_coordinates`. One way: interpolate the rows, then the columns.

# %%
def upsample_bilinear(maps, size, align_corners=False):
    """maps (..., h, w) float -> (..., H, W) of the same dtype, size = (H, W)."""
    raise NotImplementedError("your code here")


# %%
upsample_done = testing.report(testing.check_upsample_bilinear, upsample_bilinear)

# %% [markdown]
# ## 3. The two grids on the coffee photo's map (reference functions)

# %%
model = numpy_cam.load_model()
f = model.features(model.preprocess(numpy_cam.DATA / "coffee.png"))        # (1, 1280, 7, 7)
cam = numpy_cam.class_activation_map(f, model.fc_weight, 967)              # (1, 7, 7): espresso
half = upsample.upsample_bilinear(cam, (224, 224))                         # (1, 224, 224)
corner = upsample.upsample_bilinear(cam, (224, 224), align_corners=True)
src = upsample.source_coordinates(7, 224)[0]
print("first source coordinates, half-pixel:", np.round(src[:4], 4), " corner:",
      np.round(upsample.source_coordinates(7, 224, align_corners=True)[0][:4], 4))
print(f"largest difference between the grids: {np.abs(half - corner).max():.3f} "
      f"(the map spans {cam.min():.2f} .. {cam.max():.2f})")
if upsample_done:
    assert np.allclose(upsample_bilinear(cam, (224, 224)), half, atol=1e-4)

# %% [markdown]
# ## Questions
#
# 1. On 7 -> 224 the half-pixel grid gives src = -0.484 for o = 0 before clamping. What does
#    that mean, and what does the clamp do to the first 16 output pixels?
#
# *Your answer:*
#
# 2. The two grids differ by up to several units on this map (cell above). Which one puts a
#    map drawn over the photo where PyTorch, OpenCV and Pillow would, and why does it matter
#    for comparing boxes with other libraries?
#
# *Your answer:*
#
# 3. Predict: the package upsamples the raw M_c, then min-max normalises ("upsample-first").
#    The other order normalises the 7 x 7 map, then upsamples. Are the two heat maps equal?
#    Then run the cell below.
#
# *Your answer:*

# %%
first = numpy_cam.to_heatmap(cam, (224, 224))                                      # upsample, then normalise
other = numpy_cam.to_heatmap(cam, (224, 224), order="normalize-first")
print(f"max of the upsampled map {half.max():.4f}, of the 7 x 7 map {cam.max():.4f}; "
      f"largest difference of the two heat maps {np.abs(first - other).max():.4f}")
assert 0 < np.abs(first - other).max() < 0.01
