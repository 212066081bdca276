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

from ._checks import check_choice
from .cam import _check_head


def score_gradient(features, fc_weight, class_idx, pooling="avg"):
    """dS_c / df_k(x, y) for one class per image, written out for a pooling -> FC head.

    features : (N, K, h, w) float; fc_weight : (classes, K) float; class_idx : int or N ints;
    pooling : "avg" (GAP) or "max" (GMP; ties: the first maximum in row-major order).
    Returns an array of shape (N, K, h, w), the dtype of features.
    """
    classes = _check_head(features, fc_weight, class_idx, several=False)[:, 0]  # (N,)
    return _score_gradient(features, fc_weight, classes, check_choice("pooling", pooling, ("avg", "max")))


def _score_gradient(features, fc_weight, classes, pooling):
    """Unchecked ``score_gradient``; classes: (N,) ints, one per image."""
    num_images, num_maps, h, w = features.shape
    weights = fc_weight[classes].astype(features.dtype, copy=False)         # (N, K): w_k^c
    if pooling == "avg":
        return np.broadcast_to(weights[:, :, None, None] / (h * w), features.shape).copy()
    grad = np.zeros_like(features)                                          # (N, K, h, w)
    where = features.reshape(num_images, num_maps, h * w).argmax(axis=2)    # (N, K) first maximum
    grad.reshape(num_images, num_maps, h * w)[
        np.arange(num_images)[:, None], np.arange(num_maps)[None, :], where] = weights
    return grad


def grad_cam(features, fc_weight, class_idx, pooling="avg"):
    """Grad-CAM: ReLU(sum_k alpha_k^c f_k), alpha_k^c = mean_{x,y} dS_c / df_k(x, y). -> (N, h, w).

    Arguments as in ``score_gradient``.
    """
    classes = _check_head(features, fc_weight, class_idx, several=False)[:, 0]  # (N,)
    pooling = check_choice("pooling", pooling, ("avg", "max"))
    alpha = _score_gradient(features, fc_weight, classes, pooling).mean(axis=(2, 3))  # (N, K)
    return np.maximum(np.einsum("nk,nkhw->nhw", alpha, features), 0)        # (N, h, w)
