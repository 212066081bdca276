"""Score-CAM (Wang et al., CVPR Workshops 2020): channel weights from forward passes, no gradient.

The paper's definition of the increase of confidence and its Score-CAM algorithm: each map
f_k (h, w) is upsampled to the input size and min-max normalised to [0, 1], H_k (H, W);
the input is masked by it, x ⊙ H_k (the preprocessed x, every colour channel); the masked
inputs go through the network, here the NumPy engine (``Model.features``, ``Model.classify``),
``batch_size`` at a time; the weight of f_k is the softmax score of class c,

    alpha_k = softmax(S(x ⊙ H_k))_c   [ - softmax(S(x_b))_c with ``baseline=True``]
    map = ReLU(sum_k alpha_k f_k)

The increase of confidence subtracts the score of a baseline input x_b; the authors' released code and
pytorch-grad-cam do not, and neither does the default here (``baseline=False``). With
``baseline=True`` x_b is the zero input, the mean image after preprocessing. Upsampling is
``upsample`` 's bilinear half-pixel grid, normalisation ``cam.normalize`` (a constant map
gives the zero mask).

Cost: one forward pass per channel and image, except for the maps that are 0 everywhere on
that image: they add alpha_k * 0 to the map, so they are skipped (the map is unchanged).
EfficientNet-Lite0 has K = 1280 channels, of which 443 are not all 0 on chelsea.png; the
``channels=`` option takes a subset (the docstring of ``score_cam`` says how many are used).
Measured on Lite0, float32, 224 x 224, batch_size 32, on 2 shared CPU cores: 50 to 84 s per
image for all 1280 masked inputs (39 to 65 ms each, with the cores idle or shared), so about
a third of that with the zero maps skipped; CAM is one pass (0.06 s).
"""
import numpy as np

from .._checks import check_int_range
from ..cam import _check_head, _normalize
from ..layers import softmax
from ..upsample import _upsample_bilinear


def score_cam(model, x, class_idx, channels=None, batch_size=32, baseline=False):
    """Score-CAM: ReLU(sum_k alpha_k f_k), alpha_k the class-c softmax score of x ⊙ H_k.

    Parameters
    ----------
    model : Model (``features``, ``classify``, ``fc_weight``)
    x : ndarray of shape (N, 3, H, W), float32 or float64 -- ``Model.preprocess`` output
    class_idx : int or N ints
    channels : None (all K maps) or a 1-D sequence of C distinct map indices in 0..K-1 (the
        map is then the sum over those C maps only); one forward pass per image and map,
        except for the maps that are 0 everywhere on that image (they add nothing)
    batch_size : int >= 1, the masked inputs per forward pass
    baseline : bool, subtract the class-c softmax score of the zero input (the baseline)

    Returns
    -------
    map : ndarray of shape (N, h, w), the dtype of x
    """
    batch_size = check_int_range("batch_size", batch_size, 1)
    f = model.features(x)                                                   # (N, K, h, w); checks x
    classes = _check_head(f, model.fc_weight, class_idx, several=False)[:, 0]  # (N,)
    channels = _checked_channels(channels, f.shape[1])                      # (C,)
    return _score_cam(model, x, f, classes, channels, batch_size, bool(baseline))


def _checked_channels(channels, num_maps):
    if channels is None:
        return np.arange(num_maps)
    idx = np.asarray(channels)
    if idx.ndim != 1 or idx.size == 0:
        raise ValueError(f"channels must be a non-empty sequence of map indices; got shape {idx.shape}")
    idx = check_int_range("channels", idx, 0, num_maps - 1)
    if np.unique(idx).size != idx.size:
        raise ValueError("channels must not repeat a map index")
    return idx.astype(np.intp)


def _score_cam(model, x, f, classes, channels, batch_size, baseline):
    size = x.shape[2:]
    f = f[:, channels]                                                      # (N, C, h, w)
    masks = _normalize(_upsample_bilinear(f, size, False))                  # (N, C, H, W): H_k
    alpha = np.zeros(f.shape[:2], f.dtype)                                  # (N, C)
    for n, c in enumerate(classes):
        # a map that is 0 everywhere adds alpha_k * 0 whatever alpha_k is: no forward pass for it
        live = np.flatnonzero(f[n].reshape(len(channels), -1).any(axis=1))  # (L,) indices into channels
        for start in range(0, len(live), batch_size):
            batch = live[start:start + batch_size]                          # (B,)
            masked = x[n] * masks[n, batch, None]                           # (B, 3, H, W): x ⊙ H_k
            alpha[n, batch] = softmax(model.classify(model.features(masked)))[:, c]   # (B,)
        if baseline:
            alpha[n] -= softmax(model.classify(model.features(np.zeros_like(x[n:n + 1]))))[0, c]
    return np.maximum(np.einsum("nk,nkhw->nhw", alpha, f), 0)               # (N, h, w)
