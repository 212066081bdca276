"""Eigen-CAM (Muhammad & Yeasin, IJCNN 2020): the first principal component of the feature maps.

The paper's method (arXiv:2008.00299): with O the (h w, K) matrix of the maps (one row per position, one
column per map f_k) and O = U Sigma V^T its singular value decomposition, the map is the
projection of every position on the first right singular vector, O v_1, reshaped to (h, w).
It needs no class and no gradient: it is the same for every class c.

Centring. The paper factorises O itself; ``center=True`` subtracts each column's mean over
the positions first (principal components in the statistical sense; pytorch-grad-cam's
projection does this), which changes the map.

Sign. A singular vector is defined up to its sign, and LAPACK's choice is arbitrary. Here
v_1 is flipped so that the map sums to >= 0. For f >= 0 (every shipped model: the features
follow a ReLU or ReLU6) and no centring, v_1 can be taken >= 0 (Perron-Frobenius for O^T O),
so the map is >= 0 everywhere.
"""
import numpy as np

from .._checks import check_array


def eigen_cam(features, center=False):
    """Eigen-CAM: O v_1 per image, O the (h w, K) matrix of f, v_1 its first right singular vector.

    Parameters
    ----------
    features : ndarray of shape (N, K, h, w), float -- f_k (``Model.features``)
    center : bool, subtract each map's mean over the positions before the decomposition

    Returns
    -------
    map : ndarray of shape (N, h, w), the dtype of features; its sign makes sum(map) >= 0
    """
    check_array("features", features, "(N, K, h, w)", nonempty=True)
    return _eigen_cam(features, bool(center))


def _eigen_cam(features, center):
    num_images, num_maps, h, w = features.shape
    o = features.reshape(num_images, num_maps, h * w).transpose(0, 2, 1)   # (N, hw, K): O
    if center:
        o = o - o.mean(axis=1, keepdims=True)                              # (N, hw, K)
    v1 = np.linalg.svd(o, full_matrices=False)[2][:, 0]                     # (N, K): first right singular vector
    m = np.einsum("npk,nk->np", o, v1)                                      # (N, hw): O v_1
    m = m * np.where(m.sum(axis=1, keepdims=True) < 0, -1, 1).astype(m.dtype)  # (N, hw): the sign
    return m.reshape(num_images, h, w)                                      # (N, h, w)
