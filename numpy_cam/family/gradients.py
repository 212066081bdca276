"""The class score's derivatives with respect to the feature maps, written out (no autograd).

On the head every shipped model has -- feature maps f_k (N, K, h, w) -> global pooling F_k ->
one linear layer -- the class score is

    S_c = sum_k w_k^c F_k + b_c,   F_k = mean_{x,y} f_k(x, y)  ("avg", GAP)
                                   F_k = max_{x,y} f_k(x, y)   ("max", GMP)

so its gradient g_k(x, y) = dS_c / df_k(x, y) is

    avg:  g_k(x, y) = w_k^c / (h w)                       at every (x, y)
    max:  g_k(x, y) = w_k^c at the first maximum of f_k (row-major), 0 elsewhere

S_c is linear in f (GAP) or piecewise linear (GMP, away from ties), so every second and
third derivative of S_c is 0. Grad-CAM++ (Chattopadhay et al., WACV 2018), in its
exponential-score case (the one that leads to its Eq. 19, arXiv:1710.11063), differentiates
Y_c = exp(S_c) instead; with S_c's higher derivatives 0,

    dY_c / df = exp(S_c) g,   d^2 Y_c / df^2 = exp(S_c) g^2,   d^3 Y_c / df^3 = exp(S_c) g^3

(elementwise: the derivatives of Y_c twice and three times by the same f_k(x, y)), which is
``exp_score_derivatives``. ``tests/test_family.py`` checks each against central finite
differences in float64 and, with torch, against autograd.
"""
import numpy as np

from .._checks import check_array, check_choice
from ..cam import _check_head
from ..models import POOLING

POOLINGS = ("avg", "max")


def score_gradient(features, fc_weight, class_idx, pooling="avg"):
    """g_k(x, y) = dS_c / df_k(x, y) for one class per image, on a pooling -> FC head.

    Parameters
    ----------
    features : ndarray of shape (N, K, h, w), float -- f_k (``Model.features``)
    fc_weight : ndarray of shape (classes, K), float -- w_k^c (``Model.fc_weight``)
    class_idx : int or N ints -- c, the same for every image or one per image
    pooling : "avg" (GAP) or "max" (GMP; ties: the first maximum in row-major order)

    Returns
    -------
    grad : ndarray of shape (N, K, h, w), the dtype of features
    """
    classes = _check_head(features, fc_weight, class_idx, several=False)[:, 0]  # (N,)
    return _score_gradient(features, fc_weight, classes, check_choice("pooling", pooling, POOLINGS))


def _score_gradient(features, fc_weight, classes, pooling):
    """Unchecked ``score_gradient``; classes: (N,) ints, one per image."""
    num_images, num_maps, h, w = features.shape
    weights = fc_weight[classes].astype(features.dtype, copy=False)         # (N, K): w_k^c
    if pooling == "avg":
        return np.broadcast_to(weights[:, :, None, None] / (h * w), features.shape).copy()  # (N, K, h, w)
    grad = np.zeros_like(features)                                          # (N, K, h, w)
    where = features.reshape(num_images, num_maps, h * w).argmax(axis=2)    # (N, K) first maximum
    grad.reshape(num_images, num_maps, h * w)[
        np.arange(num_images)[:, None], np.arange(num_maps)[None, :], where] = weights
    return grad


def class_score(features, fc_weight, fc_bias, class_idx, pooling="avg"):
    """S_c = sum_k w_k^c F_k + b_c for one class per image. -> (N,), the dtype of features.

    fc_bias : ndarray of shape (classes,), float, or None (b_c = 0, as the paper sets it);
    the other arguments as in ``score_gradient``.
    """
    classes = _check_head(features, fc_weight, class_idx, several=False)[:, 0]  # (N,)
    if fc_bias is not None:
        check_array("fc_bias", fc_bias, f"({fc_weight.shape[0]},)")
    return _class_score(features, fc_weight, fc_bias, classes, check_choice("pooling", pooling, POOLINGS))


def _class_score(features, fc_weight, fc_bias, classes, pooling):
    pooled = POOLING[pooling](features)                                     # (N, K): F_k
    weights = fc_weight[classes].astype(features.dtype, copy=False)         # (N, K): w_k^c
    score = np.einsum("nk,nk->n", weights, pooled)                          # (N,)
    return score if fc_bias is None else score + fc_bias[classes].astype(features.dtype, copy=False)


def exp_score_derivatives(features, fc_weight, fc_bias, class_idx, pooling="avg"):
    """dY_c/df, d^2 Y_c/df^2, d^3 Y_c/df^3 for Y_c = exp(S_c) (Grad-CAM++'s exponential score).

    Arguments as in ``class_score``. Returns three ndarrays of shape (N, K, h, w), the dtype
    of features: exp(S_c) g, exp(S_c) g^2, exp(S_c) g^3 with g = ``score_gradient``. In
    float32, exp(S_c) overflows to inf above S_c = 88.7.
    """
    classes = _check_head(features, fc_weight, class_idx, several=False)[:, 0]  # (N,)
    if fc_bias is not None:
        check_array("fc_bias", fc_bias, f"({fc_weight.shape[0]},)")
    return _exp_score_derivatives(features, fc_weight, fc_bias, classes, check_choice("pooling", pooling, POOLINGS))


def _exp_score_derivatives(features, fc_weight, fc_bias, classes, pooling):
    grad = _score_gradient(features, fc_weight, classes, pooling)          # (N, K, h, w): g
    scale = np.exp(_class_score(features, fc_weight, fc_bias, classes, pooling))[:, None, None, None]  # (N, 1, 1, 1)
    return scale * grad, scale * grad ** 2, scale * grad ** 3               # each (N, K, h, w)
