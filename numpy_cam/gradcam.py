"""Grad-CAM for a global pooling -> FC head, with the gradient written out (no autograd).

Grad-CAM (Selvaraju et al., ICCV 2017) weighs the feature maps by the average gradient of the
class score: alpha_k^c = mean_{x,y} dS_c / df_k(x, y), map = ReLU(sum_k alpha_k^c f_k). On the
head CAM needs, S_c = sum_k w_k^c mean_{x,y} f_k(x, y) + b_c, so

    dS_c / df_k(x, y) = w_k^c / (h w)        at every (x, y)
    alpha_k^c         = w_k^c / (h w)
    Grad-CAM          = ReLU(M_c) / (h w)    with M_c the CAM of Eq. 2 (Zhou et al. 2016)

Grad-CAM's channel weights are CAM's over a constant: the two maps differ only by that
positive factor and Grad-CAM's ReLU. For global MAX pooling the gradient is w_k^c at the
position of each map's maximum and 0 elsewhere, whose average is again w_k^c / (h w): the
same map (``tests/test_gradcam.py`` checks both against finite differences and, with torch,
against autograd).
"""
import numpy as np

from .cam import _class_indices


def score_gradient(features, fc_weight, class_idx, pooling="avg"):
    """dS_c / df_k(x, y) for one class per image, written out for a pooling -> FC head.

    features : (N, K, h, w); fc_weight : (classes, K); class_idx : int or N ints;
    pooling : "avg" (GAP) or "max" (GMP; ties: the first maximum in row-major order).
    Returns an array of shape (N, K, h, w).
    """
    n, k, h, w = features.shape
    c = _class_indices(class_idx, n, fc_weight.shape[0])[:, 0]             # (N,)
    weights = fc_weight[c].astype(features.dtype, copy=False)               # (N, K): w_k^c
    if pooling == "avg":
        return np.broadcast_to(weights[:, :, None, None] / (h * w), features.shape).copy()
    if pooling != "max":
        raise ValueError(f"pooling must be 'avg' or 'max'; got {pooling!r}")
    grad = np.zeros_like(features)                                          # (N, K, h, w)
    where = features.reshape(n, k, h * w).argmax(axis=2)                    # (N, K) first maximum
    grad.reshape(n, k, h * w)[np.arange(n)[:, None], np.arange(k)[None, :], where] = weights
    return grad


def grad_cam(features, fc_weight, class_idx, pooling="avg"):
    """Grad-CAM: ReLU(sum_k alpha_k^c f_k), alpha_k^c = mean_{x,y} dS_c / df_k(x, y). -> (N, h, w)."""
    alpha = score_gradient(features, fc_weight, class_idx, pooling).mean(axis=(2, 3))  # (N, K)
    return np.maximum(np.einsum("nk,nkhw->nhw", alpha, features), 0)        # (N, h, w)
