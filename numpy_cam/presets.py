"""The peers' post-processing of a raw map, written out as data: one named preset per peer.

Libraries that compute the same raw map (on a GAP head, Grad-CAM's is ReLU(M_c) / (h w), Eq. 2
of the CAM paper divided by the map's area) still hand back different pictures, because each
post-processes it its own way: ReLU or not, min-max normalisation with its own epsilon, uint8
quantisation, a resize with its own kernel and grid, in its own order. A preset is that recipe
as a sequence of steps, applied in order by ``postprocess(cam, size, preset)``; each cites the
peer's rule by repository (and version), file, function and lines (``PRESETS[name].rule``).
Nothing here imports torch or cv2: the resizes are NumPy (``upsample``) or Pillow.

The steps (a step is a tuple: its name, then its parameters)
    ("relu",)                    max(m, 0)
    ("min-max", eps)             (m - min m) / (max m - min m + eps) per map; eps = 0 is this
                                 project's rule, a constant map giving zeros rather than NaN
    ("resize", kernel)           to ``size``; ("resize", kernel, (H, W)) to a fixed size. kernel:
                                 "bilinear"          half-pixel centres, edges clamped (OpenCV,
                                                     PyTorch align_corners=False, this project)
                                 "bilinear-corners"  corner pixels' centres aligned (scipy.ndimage.zoom)
                                 "nearest"           PyTorch's default "nearest": source floor(o * n_in / n_out)
                                 "bicubic"           Pillow's BICUBIC, in float32 (Pillow's mode "F")
                                 "matlab-bicubic"    MATLAB's imresize (Keys a = -0.5, mirrored edges,
                                                     antialiased when shrinking): ``authors.imresize``
                                 A uint8 map stays uint8 under "bilinear", resized in cv2's 11-bit fixed
                                 point, level for level (``_opencv_resize``): the demo's two cv2.resize calls.
    ("uint8",)                   the integer part of 255 m, as ``np.uint8(255 * m)`` truncates
    ("square",)                  m ** 2
    ("abs",)                     |m|
    ("uint8-round",)             floor(255 m + 0.5), MATLAB's round, as gray2ind

The presets (what each peer returns, or draws)
    numpy-cam          resize bilinear, min-max (eps 0): ``cam.to_heatmap``'s default
    pytorch-grad-cam   relu, min-max 1e-7, resize bilinear, min-max 1e-7 (every method of grad-cam)
    torchcam           relu, min-max 1e-8, no resize: its gradient methods (GradCAM, ...) at feature size
    torchcam-cam       min-max 1e-8, no resize: its CAM class (no ReLU)
    torchcam-overlay   torchcam, then resize bicubic, square: the values ``overlay_mask`` colours
    captum             resize nearest: LayerGradCam (no ReLU by default, no normalisation), then
                       ``LayerAttribution.interpolate`` with its default mode
    cam-pytorch-demo   min-max (eps 0), uint8, resize bilinear to 256 x 256, resize bilinear: the
                       authors' ``pytorch_CAM.py`` (uint8 before both cv2.resize calls)
    cam-matlab-demo    resize matlab-bicubic, abs, min-max (eps 0), uint8-round: the authors' demo.m
                       per crop (coloured with ``authors.matlab_jet``); the ten-crop merge is
                       ``authors.merge_ten_crops``
    tf-keras-vis       relu, resize bilinear-corners, min-max 1e-7 (tf-keras-vis Gradcam)

Which raw map goes in: the peer's own. For Grad-CAM on this GAP head (pytorch-grad-cam,
torchcam, tf-keras-vis) that is ReLU(M_c) / (h w); for torchcam's CAM and the demos, M_c; for
captum's LayerGradCam, M_c / (h w) (it applies no ReLU unless asked). One fact follows from the
steps: min-max undoes any positive scale and shift, and a bilinear resize commutes with both, so
min-max, resize, min-max is resize, min-max: given the same ReLU'd map, "pytorch-grad-cam" equals
"numpy-cam" up to its eps (1e-6 on the bundled photos). Without its second min-max it would not:
a minimum inside the map is never sampled exactly by the half-pixel grid, and the resized map
stops above 0 (by 0.004 to 0.009 on the bundled photos).

Presets without a resize to ``size`` (torchcam, torchcam-cam) return the map at its own size and
leave ``size`` unused. The colormaps (matplotlib's jet in torchcam's overlay, cv2.COLORMAP_JET in
the demo) come after, and are not part of a preset.
"""
import collections

import numpy as np
from PIL import Image

from ._checks import check_array, check_choice, check_size
from ._opencv_resize import resize_linear_uint8
from .authors.demo import _gray2ind
from .authors.imresize import imresize
from .cam import _normalize
from .upsample import _upsample_bilinear

__all__ = ["PRESETS", "postprocess"]

Preset = collections.namedtuple("Preset", "steps rule")

GRAD_CAM = "jacobgil/pytorch-grad-cam (grad-cam 1.5.7), pytorch_grad_cam/"
TORCHCAM = "frgfm/torch-cam (torchcam 0.5.0), torchcam/"

PRESETS = {
    "numpy-cam": Preset(
        (("resize", "bilinear"), ("min-max", 0.0)),
        "numpy_cam/cam.py, to_heatmap (order='upsample-first')"),
    "pytorch-grad-cam": Preset(
        (("relu",), ("min-max", 1e-7), ("resize", "bilinear"), ("min-max", 1e-7)),
        GRAD_CAM + "base_cam.py, BaseCAM.compute_cam_per_layer, lines 171-172 (np.maximum(cam, 0), then "
        "scale_cam_image(cam, target_size)), and BaseCAM.aggregate_multi_layers, lines 177-181 "
        "(scale_cam_image again, without a size); utils/image.py, scale_cam_image, lines 161-176 "
        "(img - min, / (1e-7 + max), cv2.resize with its default INTER_LINEAR to the input's (W, H))"),
    "torchcam": Preset(
        (("relu",), ("min-max", 1e-8)),
        TORCHCAM + "methods/core.py, _CAM.compute_cams, lines 298-303 (F.relu when self._relu, set "
        "by methods/gradient.py's _GradCAM at line 40), and _CAM._normalize, lines 193-199 (sub_ amin, "
        "div_ amax + eps, eps = 1e-8)"),
    "torchcam-cam": Preset(
        (("min-max", 1e-8),),
        TORCHCAM + "methods/activation.py, CAM (self._relu stays False, methods/core.py line 126, "
        "though its docstring, line 29, writes a ReLU); methods/core.py, _CAM._normalize, lines 193-199"),
    "torchcam-overlay": Preset(
        (("relu",), ("min-max", 1e-8), ("resize", "bicubic"), ("square",)),
        TORCHCAM + "utils.py, overlay_mask, lines 49-50 (mask.resize(img.size, resample=BICUBIC), "
        "then cmap(np.asarray(overlay) ** 2)), given the torchcam map as a mode 'F' image"),
    "captum": Preset(
        (("resize", "nearest"),),
        "pytorch/captum (captum 0.9.0), captum/attr/_core/layer/grad_cam.py, LayerGradCam.attribute "
        "(relu_attributions=False by default, line 86; no normalisation); captum/attr/_utils/attribution.py, "
        "LayerAttribution.interpolate, lines 436-469 (interpolate_mode='nearest', F.interpolate)"),
    "cam-pytorch-demo": Preset(
        (("min-max", 0.0), ("uint8",), ("resize", "bilinear", (256, 256)), ("resize", "bilinear")),
        "zhoubolei/CAM (commit c63f285), pytorch_CAM.py, returnCAM, lines 50-53 (cam - min, / max, "
        "np.uint8(255 * cam_img), cv2.resize to size_upsample = (256, 256)), and line 94 (cv2.resize "
        "to the photo's (width, height), then cv2.applyColorMap); cv2.resize's uint8 fixed point as "
        "numpy_cam/_opencv_resize.py writes it out (opencv/opencv, modules/imgproc/src/resize.cpp)"),
    "cam-matlab-demo": Preset(
        (("resize", "matlab-bicubic"), ("abs",), ("min-max", 0.0), ("uint8-round",)),
        "zhoubolei/CAM (commit c63f285), demo.m, line 48 (imresize(curCAMmap_crops, [224 224]): MATLAB's default "
        "bicubic, numpy_cam.authors.imresize); mergeTenCrop.m, line 37 (sum of abs over the crops: one crop's "
        "share); map2jpg.m, lines 3-6 (mat2gray over [min max], gray2ind(., 256): round(255 m), half away from "
        "zero). The ten-crop merge itself: numpy_cam.authors.merge_ten_crops"),
    "tf-keras-vis": Preset(
        (("relu",), ("resize", "bilinear-corners"), ("min-max", 1e-7)),
        "keisen/tf-keras-vis (v0.8.7), tf_keras_vis/gradcam.py, Gradcam.__call__, lines 27, 113-116 "
        "(activation_modifier K.relu, zoom(cam, factor, order=1): scipy's corner-aligned grid, normalize), "
        "Gradcam._calculate_cam, lines 124-127 (mean of the gradients, weighted sum, the ReLU); "
        "tf_keras_vis/utils/__init__.py, zoom_factor, lines 106-107 ((1, H / h, W / w)), and normalize, "
        "lines 73-86 ((a - min) / (max - min + K.epsilon()), epsilon 1e-7)"),
}


def postprocess(cam, size, preset):
    """Apply a peer's post-processing to a raw map: the steps of ``PRESETS[preset]``, in order.

    Parameters
    ----------
    cam : array_like of shape (N, h, w), float, int or bool: a raw map, e.g. M_c from
        ``cam.class_activation_map`` or Grad-CAM's ReLU(M_c) / (h w)
    size : (H, W), the target size, usually the input image's (unused by the presets that
        keep the feature size: torchcam, torchcam-cam)
    preset : str, a key of ``PRESETS``

    Returns
    -------
    heatmap : ndarray of shape (N, H, W), or (N, h, w) for a preset without a resize to ``size``.
        float64 for a float64 cam, else float32; uint8 for "cam-pytorch-demo" and "cam-matlab-demo";
        float32 after a bicubic resize (Pillow's float mode).
    """
    cam = check_array("cam", np.asarray(cam), "(N, h, w)", kinds="fiub", nonempty=True)
    size = check_size("size", size)
    check_choice("preset", preset, tuple(PRESETS))
    m = cam.astype(np.promote_types(cam.dtype, np.float32), copy=False)   # (N, h, w), float32 or float64
    for name, *parameters in PRESETS[preset].steps:
        m = _STEPS[name](m, size, *parameters)
    return m


def _relu(m, size):
    return np.maximum(m, 0)                                            # (N, h, w)


def _min_max(m, size, eps):
    """(m - min) / (max - min + eps), in m's dtype: the peers add eps in float32 too."""
    if eps == 0:
        return _normalize(m)                                           # a constant map gives zeros
    lo = m.min(axis=(-2, -1), keepdims=True)                           # (N, 1, 1)
    span = m.max(axis=(-2, -1), keepdims=True) - lo                    # (N, 1, 1)
    return (m - lo) / (span + m.dtype.type(eps))                       # (N, h, w)


def _uint8(m, size):
    return (255 * m).astype(np.uint8)                                  # truncation, as np.uint8(x)


def _abs(m, size):
    return np.abs(m)


def _uint8_round(m, size):
    return _gray2ind(m)                                                # MATLAB's round, as gray2ind


def _square(m, size):
    return m ** 2


def _resize(m, size, kernel, fixed_size=None):
    size = fixed_size or size
    if kernel == "matlab-bicubic":
        return imresize(m, size)                                       # (N, H, W), MATLAB's imresize
    if kernel == "bicubic":
        return _resize_bicubic(m, size)
    if kernel == "nearest":
        return _resize_nearest(m, size)
    if m.dtype == np.uint8 and kernel == "bilinear":                   # cv2: a uint8 image stays uint8,
        return resize_linear_uint8(m, size)                            # in its fixed-point arithmetic
    return _upsample_bilinear(m, size, kernel == "bilinear-corners")    # (N, H, W), float


def _resize_nearest(m, size):
    """PyTorch's legacy "nearest": source index floor(o * scale), scale = n_in / n_out in float32."""
    rows, cols = (np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * np.float32(n_in / n_out)), n_in - 1)
                  .astype(np.int64) for n_in, n_out in zip(m.shape[-2:], size))
    return m[:, rows[:, None], cols[None, :]]                          # (N, H, W)


def _resize_bicubic(m, size):
    """Pillow's BICUBIC on each map as a float32 ("F") image; Pillow takes (width, height)."""
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(one, np.float32))
                                .resize(size[::-1], Image.Resampling.BICUBIC)) for one in m])


_STEPS = {"relu": _relu, "min-max": _min_max, "resize": _resize, "uint8": _uint8, "square": _square,
          "abs": _abs, "uint8-round": _uint8_round}
