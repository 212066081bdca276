"""The gradient-weighted maps: Grad-CAM, XGrad-CAM, HiResCAM and LayerCAM, written out.

Each is a function of the feature maps f_k (N, K, h, w), the FC weights w_k^c and a class c
per image, through g_k(x, y) = dS_c / df_k(x, y) (``gradients.score_gradient``):

    Grad-CAM   (Selvaraju et al., ICCV 2017: its weights alpha_k^c and its map L^c_Grad-CAM)
               alpha_k = mean_{x,y} g_k(x, y);          map = ReLU(sum_k alpha_k f_k)
    XGrad-CAM  (Fu et al., BMVC 2020, arXiv:2008.02312: the weights it derives from its two axioms)
               alpha_k = sum_{x,y} f_k(x, y) / (sum_{a,b} f_k(a, b)) g_k(x, y);
               map = ReLU(sum_k alpha_k f_k)    (alpha_k = 0 where sum f_k = 0: f_k is then 0)
    HiResCAM   (Draelos & Carin, arXiv:2011.08891: its definition of the map)
               map = sum_k g_k ⊙ f_k           (elementwise; signed here, ``relu=True`` clips it)
    LayerCAM   (Jiang et al., IEEE TIP 2021: its class activation map of one layer)
               map = ReLU(sum_k ReLU(g_k) ⊙ f_k)

On a GAP head g_k = w_k^c / (h w) everywhere, so with M_c the CAM of Eq. 2 (Zhou et al. 2016)

    Grad-CAM = XGrad-CAM = ReLU(M_c) / (h w),   HiResCAM = M_c / (h w)   (the same
    products: in float64 equal to rounding); without their ReLU, Grad-CAM and XGrad-CAM
    are M_c / (h w) too, and with one HiResCAM is ReLU(M_c) / (h w);
    LayerCAM = M_c^+ / (h w), with M_c^+ = sum_k max(w_k^c, 0) f_k the CAM of the positive
    weights only (its outer ReLU does nothing when f >= 0, as on every shipped model,
    whose features follow a ReLU or ReLU6).

On a GMP head g_k is w_k^c at each map's maximum: Grad-CAM is still ReLU(M_c) / (h w), but
XGrad-CAM weighs w_k^c by max f_k / sum f_k, and HiResCAM and LayerCAM keep one position
per map (``tests/test_family.py`` pins how far apart they are).
"""
import numpy as np

from .._checks import check_choice
from ..cam import _check_head
from .gradients import POOLINGS, _score_gradient


def _checked(features, fc_weight, class_idx, pooling):
    """The shared checks: classes (N,) ints and the pooling."""
    classes = _check_head(features, fc_weight, class_idx, several=False)[:, 0]  # (N,)
    return classes, check_choice("pooling", pooling, POOLINGS)


def grad_cam(features, fc_weight, class_idx, pooling="avg", relu=True):
    """Grad-CAM (Selvaraju et al. 2017): L^c = ReLU(sum_k alpha_k f_k), alpha_k = mean g_k.

    Parameters
    ----------
    features : ndarray of shape (N, K, h, w), float -- f_k (``Model.features``)
    fc_weight : ndarray of shape (classes, K), float -- w_k^c (``Model.fc_weight``)
    class_idx : int or N ints
    pooling : "avg" (GAP) or "max" (GMP), the model's ``pooling``
    relu : bool, the ReLU of L^c (False: the signed map sum_k alpha_k f_k)

    Returns
    -------
    map : ndarray of shape (N, h, w), the dtype of features
    """
    classes, pooling = _checked(features, fc_weight, class_idx, pooling)
    return _grad_cam(features, fc_weight, classes, pooling, relu)


def _grad_cam(features, fc_weight, classes, pooling, relu=True):
    alpha = _score_gradient(features, fc_weight, classes, pooling).mean(axis=(2, 3))  # (N, K): alpha_k^c
    return _weighted_sum(alpha, features, relu)                             # (N, h, w): L^c


def _weighted_sum(alpha, features, relu):
    """sum_k alpha_k f_k, ReLU'd if asked: alpha (N, K), features (N, K, h, w) -> (N, h, w)."""
    m = np.einsum("nk,nkhw->nhw", alpha.astype(features.dtype, copy=False), features)  # (N, h, w)
    return np.maximum(m, 0) if relu else m


def xgrad_cam(features, fc_weight, class_idx, pooling="avg", relu=True):
    """XGrad-CAM (Fu et al. 2020): alpha_k = sum_{x,y} (f_k / sum f_k) g_k. -> (N, h, w).

    Arguments and result as in ``grad_cam``. A map with sum f_k = 0 gets alpha_k = 0 (for
    f >= 0 it is zero everywhere, so it adds nothing whatever its weight).
    """
    classes, pooling = _checked(features, fc_weight, class_idx, pooling)
    grad = _score_gradient(features, fc_weight, classes, pooling)          # (N, K, h, w)
    total = features.sum(axis=(2, 3))                                       # (N, K): sum f_k
    share = (features * grad).sum(axis=(2, 3))                              # (N, K): sum f_k g_k
    alpha = np.where(total != 0, share / np.where(total != 0, total, 1), 0)  # (N, K)
    return _weighted_sum(alpha, features, relu)                             # (N, h, w)


def hires_cam(features, fc_weight, class_idx, pooling="avg", relu=False):
    """HiResCAM (Draelos & Carin 2020): sum_k g_k ⊙ f_k, elementwise. -> (N, h, w).

    Arguments and result as in ``grad_cam``; ``relu`` defaults to False, the signed map
    (True clips it, as pytorch-grad-cam does for every method).
    """
    classes, pooling = _checked(features, fc_weight, class_idx, pooling)
    grad = _score_gradient(features, fc_weight, classes, pooling)          # (N, K, h, w)
    m = (grad * features).sum(axis=1)                                       # (N, h, w)
    return np.maximum(m, 0) if relu else m


def layer_cam(features, fc_weight, class_idx, pooling="avg"):
    """LayerCAM (Jiang et al. 2021): ReLU(sum_k ReLU(g_k) ⊙ f_k). -> (N, h, w).

    Arguments and result as in ``grad_cam`` (the ReLU is part of the definition).
    """
    classes, pooling = _checked(features, fc_weight, class_idx, pooling)
    grad = _score_gradient(features, fc_weight, classes, pooling)          # (N, K, h, w)
    return np.maximum((np.maximum(grad, 0) * features).sum(axis=1), 0)     # (N, h, w)
