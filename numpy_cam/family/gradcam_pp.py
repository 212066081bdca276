"""Grad-CAM++ (Chattopadhay et al., WACV 2018), the paper's exp-score form and the peers' forms.

Equation numbers are those of arXiv:1710.11063 (the version the peers cite). The paper weighs
each map by a weighted sum of the positive gradients of a score Y_c (its Grad-CAM++ weights),

    w_k = sum_{i,j} alpha_ij^k ReLU(dY_c / dA_ij^k)                                  (the weights)
    alpha_ij^k = d2Y / (2 d2Y + sum_{a,b} A_ab^k d3Y)   (d2Y, d3Y at (i, j), Eq. 10)
    map = ReLU(sum_k w_k A^k)

and, in its exponential-score case, takes Y_c = exp(S_c), whose derivatives on a network
that is piecewise linear in A are exp(S_c) g, exp(S_c) g^2, exp(S_c) g^3 with g = dS_c / dA
(``gradients.exp_score_derivatives``). exp(S_c) cancels in alpha, which becomes

    alpha_ij^k = g_ij^2 / (2 g_ij^2 + sum_{a,b} A_ab^k g_ij^3)                        (Eq. 19)

but not in the weights: the paper's are exp(S_c) times those of the peers, who use
ReLU(g) there (``grad_cam_pp_peers``; pytorch-grad-cam also adds eps = 1e-6 to the
denominator of Eq. 19, and sets alpha to 0 where g = 0). The two maps differ by the positive
factor exp(S_c) per image only, so they normalise to the same heatmap.

Closed form on a GAP head. There g = w_k / (h w) at every (i, j) and sum_{a,b} A_ab^k =
h w F_k (F_k = mean A^k, the pooled feature), so for w_k > 0

    alpha^k = (w_k/hw)^2 / (2 (w_k/hw)^2 + h w F_k (w_k/hw)^3) = 1 / (2 + w_k F_k)
    w_k^++  = sum_{i,j} alpha^k ReLU(w_k / (h w)) = max(w_k, 0) / (2 + w_k F_k)

(a term with w_k <= 0 has ReLU(g) = 0 and adds nothing), and Grad-CAM++ is the CAM of these
channel weights, ReLU(sum_k w_k^++ A^k), times exp(S_c) in the paper's form. With the
peers' eps the denominator becomes 2 + w_k F_k + eps (h w)^2 / w_k^2 (``closed_form_weights``).
On a GMP head g is w_k at the maximum only: w_k^++ = max(w_k, 0) / (2 + w_k sum_{a,b} A_ab^k).

torchcam 0.5.0's GradCAMpp (torchcam/methods/gradient.py, GradCAMpp._get_weights) computes
alpha = g^2 and means to divide it by Eq. 19's denominator in place, but divides a copy
(``alpha[mask].div_(...)``: boolean indexing copies), so its weights are sum_ij g^2 ReLU(g)
with no denominator: on a GAP head max(w_k, 0)^3 / (h w)^2, the CAM of the cubed positive
weights (``grad_cam_pp_torchcam``; after torchcam's min-max it is that map normalised).
"""
import numpy as np

from .._checks import check_array
from .gradcam import _checked, _weighted_sum
from .gradients import _exp_score_derivatives, _score_gradient


def _alpha_weights(d1, d2, d3, features, eps):
    """The weights and Eq. 10: sum_ij alpha_ij ReLU(d1), alpha = d2 / (2 d2 + sum A d3 + eps) where d1 > 0.

    d1, d2, d3, features : (N, K, h, w) -> (N, K). Where d1 <= 0 the term is 0 (ReLU(d1) = 0),
    so alpha is not evaluated there (its denominator may be 0).
    """
    total = features.sum(axis=(2, 3), keepdims=True)                        # (N, K, 1, 1): sum_ab A_ab
    positive = d1 > 0                                                       # (N, K, h, w)
    denominator = np.where(positive, 2 * d2 + total * d3 + eps, 1)          # (N, K, h, w)
    alpha = np.where(positive, d2 / denominator, 0)                         # (N, K, h, w)
    return (alpha * np.maximum(d1, 0)).sum(axis=(2, 3))                     # (N, K)


def grad_cam_pp(features, fc_weight, class_idx, pooling="avg", fc_bias=None):
    """Grad-CAM++, the paper's form: its weights and Eq. 10 on Y_c = exp(S_c) (Eq. 19). -> (N, h, w).

    Parameters
    ----------
    features : ndarray of shape (N, K, h, w), float -- A^k = f_k (``Model.features``)
    fc_weight : ndarray of shape (classes, K), float -- w_k^c (``Model.fc_weight``)
    class_idx : int or N ints
    pooling : "avg" (GAP) or "max" (GMP), the model's ``pooling``
    fc_bias : ndarray of shape (classes,), float, or None (b_c = 0) -- enters S_c, so exp(S_c)

    Returns
    -------
    map : ndarray of shape (N, h, w), the dtype of features: exp(S_c) times
        ``grad_cam_pp_peers(..., eps=0)``. In float32 it overflows above S_c = 88.7.
    """
    classes, pooling = _checked(features, fc_weight, class_idx, pooling)
    if fc_bias is not None:
        check_array("fc_bias", fc_bias, f"({fc_weight.shape[0]},)")
    d1, d2, d3 = _exp_score_derivatives(features, fc_weight, fc_bias, classes, pooling)  # (N, K, h, w) each
    return _weighted_sum(_alpha_weights(d1, d2, d3, features, 0), features, relu=True)  # (N, h, w)


def grad_cam_pp_peers(features, fc_weight, class_idx, pooling="avg", eps=0.0):
    """Grad-CAM++ as the peers compute it: Eq. 19 with g = dS_c / dA and ReLU(g) in the weights.

    alpha = g^2 / (2 g^2 + sum_ab A_ab g^3 + eps), 0 where g <= 0; w_k = sum alpha ReLU(g);
    map = ReLU(sum_k w_k A^k). eps = 0 (default): the exact form; eps = 1e-6: pytorch-grad-cam's
    (on EfficientNet-Lite0 that eps moves the map by a few per cent). Other arguments as in
    ``grad_cam_pp``. Returns an ndarray of shape (N, h, w), the dtype of features.
    """
    classes, pooling = _checked(features, fc_weight, class_idx, pooling)
    eps = float(eps)
    if not eps >= 0:
        raise ValueError(f"eps must be a number >= 0; got {eps}")
    grad = _score_gradient(features, fc_weight, classes, pooling)          # (N, K, h, w): g
    weights = _alpha_weights(grad, grad ** 2, grad ** 3, features, eps)     # (N, K)
    return _weighted_sum(weights, features, relu=True)                      # (N, h, w)


def grad_cam_pp_torchcam(features, fc_weight, class_idx, pooling="avg"):
    """Grad-CAM++ as torchcam 0.5.0 computes it: w_k = sum_ij g^2 ReLU(g), Eq. 19 without its denominator.

    map = ReLU(sum_k w_k A^k), g = dS_c / dA; on a GAP head w_k = max(w_k^c, 0)^3 / (h w)^2.
    Arguments as in ``grad_cam``; returns an ndarray of shape (N, h, w), the dtype of features.
    """
    classes, pooling = _checked(features, fc_weight, class_idx, pooling)
    grad = _score_gradient(features, fc_weight, classes, pooling)          # (N, K, h, w): g
    weights = (grad ** 2 * np.maximum(grad, 0)).sum(axis=(2, 3))            # (N, K): alpha = g^2, undivided
    return _weighted_sum(weights, features, relu=True)                      # (N, h, w)


def closed_form_weights(features, fc_weight, class_idx, eps=0.0):
    """The GAP head's Grad-CAM++ channel weights: max(w_k, 0) / (2 + w_k F_k + eps (h w)^2 / w_k^2).

    features (N, K, h, w), fc_weight (classes, K), class_idx int or N ints -> (N, K), the
    dtype of features; F_k = mean_{x,y} f_k. ``_weighted_sum`` of them (a CAM with these
    weights, ReLU'd) is ``grad_cam_pp_peers(..., pooling="avg", eps=eps)``.
    """
    classes, _ = _checked(features, fc_weight, class_idx, "avg")
    h, w = features.shape[2:]
    weights = fc_weight[classes].astype(features.dtype, copy=False)         # (N, K): w_k^c
    pooled = features.mean(axis=(2, 3))                                     # (N, K): F_k
    positive = weights > 0                                                  # (N, K)
    safe = np.where(positive, weights, 1)                                   # (N, K): no 0 / 0 below
    denominator = 2 + safe * pooled + float(eps) * (h * w) ** 2 / safe ** 2  # (N, K)
    return np.where(positive, safe / denominator, 0).astype(features.dtype, copy=False)  # (N, K)
