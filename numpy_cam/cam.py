"""Class activation maps: the paper's Eq. 2, and the normalisation used to draw them.

Zhou et al., CVPR 2016, Sec. 2. With f_k(x, y) the k-th map of the last conv layer and w_k^c
the weight of unit k for class c in the layer after global average pooling,

    S_c = sum_k w_k^c F_k + b_c,  F_k = mean_{x,y} f_k(x, y)          (the logit)
    M_c(x, y) = sum_k w_k^c f_k(x, y)                                  (Eq. 2)

so mean_{x,y} M_c(x, y) + b_c = S_c: the map spreads the class score over the image. Eq. 2
has no bias, no ReLU and no normalisation, and neither has ``class_activation_map``. (The
paper sums where global average pooling takes a mean; a constant factor 1 / (h w).)

Drawing a map needs it in [0, 1]. This project's default order is: upsample the raw M_c to
the image size (``upsample.upsample_bilinear``), then min-max normalise it (``normalize``);
``heatmap(..., order="normalize-first")`` gives the other order (the two differ by ~0.01).
A constant map normalises to zeros, never NaN. The paper applies no ReLU; ``relu=True``
clips negative evidence to 0 before normalising (what Grad-CAM does).
"""
import numpy as np

from .upsample import upsample_bilinear

ORDERS = ("upsample-first", "normalize-first")


def class_activation_map(features, fc_weight, class_idx):
    """M_c(x, y) = sum_k w_k^c f_k(x, y) (Eq. 2), for one or several classes per image.

    Parameters
    ----------
    features : ndarray of shape (N, K, h, w)
        f_k, the last conv maps (``Model.features``).
    fc_weight : ndarray of shape (classes, K)
        w_k^c (``Model.fc_weight``).
    class_idx : int, sequence of N ints, or array of shape (N, k)
        An int: the same class c for every image. N ints: class ``class_idx[n]`` for image n.
        An (N, k) array: k classes for each image (e.g. its top-k).

    Returns
    -------
    cam : ndarray of shape (N, h, w), or (N, k, h, w) for an (N, k) class_idx; float32 for float32 input
    """
    if not isinstance(features, np.ndarray) or features.ndim != 4:
        raise ValueError(f"features must have shape (N, K, h, w); got {getattr(features, 'shape', type(features).__name__)}")
    n, k = features.shape[:2]
    if fc_weight.ndim != 2 or fc_weight.shape[1] != k:
        raise ValueError(f"fc_weight must have shape (classes, {k}) for features with K = {k}; got {fc_weight.shape}")
    idx = _class_indices(class_idx, n, fc_weight.shape[0])            # (N, k')
    w = fc_weight[idx].astype(features.dtype, copy=False)             # (N, k', K): w_k^c per image
    cam = np.einsum("nck,nkhw->nchw", w, features)                    # (N, k', h, w)
    return cam if np.ndim(class_idx) == 2 else cam[:, 0]              # (N, h, w) for one class each


def class_activation_map_loop(features, fc_weight, class_idx):
    """Loop twin of ``class_activation_map`` for one class per image (int or N ints):
    M[n, y, x] = sum_k w[c_n, k] f[n, k, y, x], one value at a time, in float64."""
    n, k, h, w = features.shape
    classes = [int(class_idx)] * n if np.ndim(class_idx) == 0 else [int(c) for c in class_idx]
    cam = np.zeros((n, h, w))
    for b in range(n):
        for y in range(h):
            for x in range(w):
                cam[b, y, x] = sum(float(fc_weight[classes[b], j]) * float(features[b, j, y, x]) for j in range(k))
    return cam.astype(features.dtype)


def _class_indices(class_idx, n, classes):
    idx = np.asarray(class_idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"class_idx must be integers; got {idx.dtype} ({class_idx!r})")
    if idx.ndim == 0:
        idx = np.full((n, 1), int(idx))
    elif idx.ndim == 1:
        if idx.shape[0] != n:
            raise ValueError(f"class_idx must hold one class per image ({n}); got {idx.shape[0]}")
        idx = idx[:, None]
    elif idx.ndim != 2 or idx.shape[0] != n:
        raise ValueError(f"class_idx must be an int, N = {n} ints or an (N, k) array; got shape {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= classes):
        bad = idx[(idx < 0) | (idx >= classes)][0]
        raise ValueError(f"class index {bad} is out of range: the model has classes 0..{classes - 1}")
    return idx.astype(np.intp)


def top_classes(logits, k=5):
    """The k highest-scoring classes of each image, best first: (N, classes) -> (N, k) ints.

    Ties keep the lower class index first (a stable sort), so the order is reproducible.
    """
    if not 1 <= int(k) <= logits.shape[-1]:
        raise ValueError(f"k must be between 1 and {logits.shape[-1]}; got {k}")
    return np.argsort(-logits, axis=-1, kind="stable")[..., :int(k)]


def normalize(maps):
    """Min-max normalise each map to [0, 1]: (M - min M) / (max M - min M) over its last two axes.

    maps : (..., H, W) -> same shape, same float dtype. A constant map (max == min) gives zeros.
    """
    maps = np.asarray(maps)
    dtype = maps.dtype if maps.dtype.kind == "f" else np.float32
    lo = maps.min(axis=(-2, -1), keepdims=True)                       # (..., 1, 1)
    span = maps.max(axis=(-2, -1), keepdims=True) - lo                # (..., 1, 1)
    safe = np.where(span > 0, span, 1)                                # constant map: divide by 1
    return ((maps - lo) / safe).astype(dtype, copy=False)


def heatmap(cam, size, order="upsample-first", relu=False, align_corners=False):
    """The map to draw: M_c upsampled to ``size`` = (H, W) and normalised to [0, 1].

    Parameters
    ----------
    cam : ndarray of shape (..., h, w), raw M_c from ``class_activation_map``
    size : (H, W), the image size
    order : "upsample-first" (default: upsample the raw map, then min-max normalise) or
        "normalize-first" (normalise the h x w map, then upsample)
    relu : bool, clip negative values to 0 first (not in the paper)
    align_corners : bool, the upsampling grid (see ``upsample.upsample_bilinear``)

    Returns
    -------
    heatmap : ndarray of shape (..., H, W), values in [0, 1]
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}; got {order!r}")
    m = np.maximum(cam, 0) if relu else cam
    if order == "upsample-first":
        return normalize(upsample_bilinear(m, size, align_corners=align_corners))
    return np.clip(upsample_bilinear(normalize(m), size, align_corners=align_corners), 0, 1)
