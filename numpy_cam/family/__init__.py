"""The CAM family on a GAP head: eight methods, each written out, and which of them coincide.

Every shipped model ends with feature maps f_k (N, K, h, w) -> global pooling F_k -> one
linear layer, S_c = sum_k w_k^c F_k + b_c. On that head with average pooling (GAP) the class
score is linear in f, its gradient is the constant g_k = w_k^c / (h w), and so (M_c the CAM
of Eq. 2, Zhou et al. 2016; M_c^+ the CAM of the positive weights max(w_k^c, 0) only):

    Grad-CAM = XGrad-CAM = ReLU(M_c) / (h w)    (= M_c / (h w) without their ReLU)
    HiResCAM = M_c / (h w)                       (its signed map; ReLU(M_c) / (h w) clipped)
    LayerCAM = M_c^+ / (h w)                     (ReLU'd; a no-op for f >= 0)
    Grad-CAM++ = ReLU(sum_k w_k^++ f_k),  w_k^++ = max(w_k^c, 0) / (2 + w_k^c F_k)
                 (times exp(S_c) in the paper's exp-score form; torchcam 0.5.0 drops the
                 denominator by accident: max(w_k^c, 0)^3 / (h w)^2, ``grad_cam_pp_torchcam``)

because each method averages or multiplies that constant gradient. Score-CAM (forward passes
of masked inputs) and Eigen-CAM (no class at all) coincide with none of them. On a GMP head
only Grad-CAM keeps the identity. ``tests/test_family.py`` proves each in float64 on every
shipped model and pins how far the others differ on the bundled photos.

Modules
    gradients.py    dS_c / df for GAP and GMP, and exp(S_c)'s derivatives (Grad-CAM++)
    gradcam.py      Grad-CAM, XGrad-CAM, HiResCAM, LayerCAM: the gradient-weighted maps
    gradcam_pp.py   Grad-CAM++: the paper's exp-score form, the peers' forms, the closed form
    scorecam.py     Score-CAM: masked inputs through the NumPy network, batched
    eigencam.py     Eigen-CAM: the first principal component of the maps

Call any of them as ``method_map(model, x, class_idx, method)``; ``METHODS`` names them.
"""
from .._checks import check_choice
from ..cam import _check_head, _class_activation_map, resolve_class
from .eigencam import eigen_cam
from .gradcam import grad_cam, hires_cam, layer_cam, xgrad_cam
from .gradcam_pp import closed_form_weights, grad_cam_pp, grad_cam_pp_peers, grad_cam_pp_torchcam
from .gradients import class_score, exp_score_derivatives, score_gradient
from .scorecam import score_cam

__all__ = ["METHODS", "method_map", "score_gradient", "class_score", "exp_score_derivatives", "grad_cam",
           "xgrad_cam", "hires_cam", "layer_cam", "grad_cam_pp", "grad_cam_pp_peers", "grad_cam_pp_torchcam",
           "closed_form_weights", "score_cam", "eigen_cam", "cam"]


def cam(features, fc_weight, class_idx):
    """CAM (Zhou et al. 2016, Eq. 2), M_c = sum_k w_k^c f_k, for one class per image. -> (N, h, w).

    ``cam.class_activation_map`` restricted to an int or N ints, as every method here.
    """
    idx = _check_head(features, fc_weight, class_idx, several=False)        # (N, 1)
    return _class_activation_map(features, fc_weight, idx)[:, 0]            # (N, h, w)


def _features_method(function, head):
    """A method of (features, fc_weight, class_idx, ...) as a method of (model, x, class_idx, ...)."""
    def run(model, x, class_idx, **options):
        f = model.features(x)                                               # (N, K, h, w)
        if head == "pooled":
            options = {"pooling": model.pooling, **options}
        if head == "biased":
            options = {"pooling": model.pooling, "fc_bias": model.fc_bias, **options}
        return function(f, model.fc_weight, class_idx, **options)
    run.__doc__ = function.__doc__
    return run


def _eigen_cam_method(model, x, class_idx, **options):
    """Eigen-CAM of model.features(x); class_idx is checked, and the map does not depend on it."""
    f = model.features(x)                                                   # (N, K, h, w)
    _check_head(f, model.fc_weight, class_idx, several=False)
    return eigen_cam(f, **options)


# name -> function(model, x, class_idx, **options) -> the raw map (N, h, w)
METHODS = {
    "cam": _features_method(cam, "plain"),
    "gradcam": _features_method(grad_cam, "pooled"),
    "gradcam++": _features_method(grad_cam_pp, "biased"),
    "xgradcam": _features_method(xgrad_cam, "pooled"),
    "hirescam": _features_method(hires_cam, "pooled"),
    "layercam": _features_method(layer_cam, "pooled"),
    "scorecam": score_cam,
    "eigencam": _eigen_cam_method,
}


def method_map(model, x, class_idx, method="cam", **options):
    """The raw map of one method of the family: the one way to call each.

    Parameters
    ----------
    model : Model (``numpy_cam.load_model``); its ``pooling`` ("avg" or "max") and, for
        Grad-CAM++, its ``fc_bias`` are used
    x : ndarray of shape (N, 3, H, W), float32 or float64 (``Model.preprocess``)
    class_idx : int or N ints, one class per image, or class names (``cam.resolve_class``:
        "espresso", "egypt", ...) (Eigen-CAM checks it and ignores it: its map has no class)
    method : one of ``METHODS``: "cam" (default), "gradcam", "gradcam++", "xgradcam",
        "hirescam", "layercam", "scorecam", "eigencam"
    **options : passed to the method's function, e.g. ``relu=False`` (Grad-CAM, XGrad-CAM,
        HiResCAM), ``channels=`` and ``batch_size=`` (Score-CAM), ``center=`` (Eigen-CAM)

    Returns
    -------
    map : ndarray of shape (N, h, w), the dtype of x; not upsampled, not normalised
        (``cam.to_heatmap`` draws it)
    """
    check_choice("method", method, tuple(METHODS))
    return METHODS[method](model, x, resolve_class(model, class_idx), **options)
