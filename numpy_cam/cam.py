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
``to_heatmap(..., order="normalize-first")`` gives the other order (the two differ by ~0.01).
A constant map normalises to zeros, never NaN. The paper applies no ReLU; ``relu=True``
clips negative evidence to 0 before normalising (what Grad-CAM does).

Names: K is the number of maps f_k (``num_maps``), "classes" the model's number of classes
(``num_classes``), J the number of classes asked for per image (e.g. ``top_k``). Each public
function checks its arguments (``_checks``) and calls its unchecked twin ``_<name>``.
``resolve_class`` turns a class given by name ("espresso") into its index c, for every
function that takes ``class_idx`` with a model (``explain_image``, the command's ``--class``).
``cam_terms`` splits M_c into its largest terms w_k^c f_k and the rest (the paper's Fig. 2).
"""
import difflib
import numbers

import numpy as np

from ._checks import check_array, check_choice, check_int_range, check_size
from .upsample import _upsample_bilinear

ORDERS = ("upsample-first", "normalize-first")
DEFAULT_TOP_K = 5               # classes reported by default, fewer if the model has fewer


def class_activation_map(features, fc_weight, class_idx):
    """M_c(x, y) = sum_k w_k^c f_k(x, y) (Eq. 2), for one or several classes per image.

    Parameters
    ----------
    features : ndarray of shape (N, K, h, w), float
        f_k, the last conv maps (``Model.features``).
    fc_weight : ndarray of shape (classes, K), float
        w_k^c (``Model.fc_weight``).
    class_idx : int, sequence of N ints, or array of shape (N, J)
        An int: the same class c for every image. N ints: class ``class_idx[n]`` for image n.
        An (N, J) array: J classes for each image (e.g. its top-k, ``top_classes``).

    Returns
    -------
    cam : ndarray of shape (N, h, w), or (N, J, h, w) for an (N, J) class_idx; the dtype of features
    """
    idx = _check_head(features, fc_weight, class_idx, several=True)  # (N, J)
    cam = _class_activation_map(features, fc_weight, idx)             # (N, J, h, w)
    return cam if np.ndim(class_idx) == 2 else cam[:, 0]              # (N, h, w) for one class each


def _class_activation_map(features, fc_weight, idx):
    """Unchecked: features (N, K, h, w), fc_weight (classes, K), idx (N, J) ints -> (N, J, h, w)."""
    w = fc_weight[idx].astype(features.dtype, copy=False)             # (N, J, K): w_k^c per image
    return np.einsum("njk,nkhw->njhw", w, features)                   # (N, J, h, w)


def class_activation_map_loop(features, fc_weight, class_idx):
    """Loop twin of ``class_activation_map`` for one class per image (int or N ints):
    M[n, y, x] = sum_k w[c_n, k] f[n, k, y, x], one value at a time, in float64."""
    classes = _check_head(features, fc_weight, class_idx, several=False)[:, 0].tolist()
    num_images, num_maps, h, w = features.shape
    cam = np.zeros((num_images, h, w))                                # (N, h, w)
    for b in range(num_images):
        for y in range(h):
            for x in range(w):
                cam[b, y, x] = sum(float(fc_weight[classes[b], k]) * float(features[b, k, y, x])
                                   for k in range(num_maps))
    return cam.astype(features.dtype)


def cam_terms(features, fc_weight, class_idx, top=4):
    """Eq. 2 as the paper's Fig. 2 draws it: M_c = w_1^c f_1 + w_2^c f_2 + ... for one image,
    split into the ``top`` terms that add most to the class score and the sum of all the others.

    Parameters
    ----------
    features : ndarray of shape (1, K, h, w), float -- f_k of one image
    fc_weight : ndarray of shape (classes, K), float -- w_k^c
    class_idx : int, the class c
    top : int in 1..K, how many terms to keep apart

    Returns
    -------
    dict with
        "units" : (top,) ints k, ordered by w_k^c F_k (the term's share of S_c - b_c), largest first;
            ties keep the lower k first
        "weights" : (top,) w_k^c;  "contributions" : (top,) w_k^c F_k, F_k = mean_{x,y} f_k
        "maps" : (top, h, w) f_k;  "terms" : (top, h, w) w_k^c f_k(x, y)
        "rest" : (h, w) the sum of the other K - top terms (zeros when top = K)
        "cam" : (h, w) M_c, equal to terms.sum(0) + rest up to float rounding
    """
    idx = _check_head(features, fc_weight, class_idx, several=False)
    if features.shape[0] != 1:
        raise ValueError(f"features must hold one image, shape (1, K, h, w); got {features.shape}")
    top = check_int_range("top", top, 1, features.shape[1])
    f = features[0]                                                   # (K, h, w)
    w = fc_weight[int(idx[0, 0])].astype(f.dtype, copy=False)         # (K,) w_k^c
    contribution = w * f.mean(axis=(1, 2))                            # (K,) w_k^c F_k
    order = np.argsort(-contribution, kind="stable")                  # (K,) largest term first
    units, others = order[:top], order[top:]
    terms = w[units, None, None] * f[units]                           # (top, h, w)
    rest = np.einsum("k,khw->hw", w[others], f[others])               # (h, w)
    return {"units": units, "weights": w[units], "contributions": contribution[units], "maps": f[units],
            "terms": terms, "rest": rest, "cam": _class_activation_map(features, fc_weight, idx)[0, 0]}


def _check_head(features, fc_weight, class_idx, several):
    """The checks of ``class_activation_map`` (and ``family``): class_idx as an (N, J) intp
    array; ``several`` False: one class per image only (an int or N ints), J = 1."""
    check_array("features", features, "(N, K, h, w)")
    num_images, num_maps = features.shape[:2]
    check_array("fc_weight", fc_weight, f"(classes, {num_maps})")
    idx = np.asarray(class_idx)
    idx = check_int_range("class_idx", idx if idx.ndim else class_idx, 0, fc_weight.shape[0] - 1)
    idx = np.asarray(idx)
    if idx.ndim == 1 and idx.shape[0] != num_images:
        raise ValueError(f"class_idx must hold one class per image ({num_images}); got {idx.shape[0]}")
    if idx.ndim > 2 or idx.ndim == 2 and (not several or idx.shape[0] != num_images):
        expected = "an int, N ints or an (N, J) array" if several else "an int or N ints"
        raise ValueError(f"class_idx must be {expected} (N = {num_images}); got shape {idx.shape}")
    if idx.ndim < 2:
        idx = np.broadcast_to(idx.reshape(-1, 1), (num_images, 1))  # (N, 1)
    return idx.astype(np.intp)


def resolve_class(model, class_idx, name="class_idx"):
    """A class given by index or by name, as its index c (an int), for ``model``'s classes.

    Parameters
    ----------
    model : numpy_cam.Model (its ``class_names``)
    class_idx : int or NumPy integer in 0..classes - 1; str: a class name, or digits (an index,
        as the command's ``--class`` takes it); a list, tuple or array of those -> a list of ints
        (an integer array is returned as it is, checked); None -> None (the caller's default)
    name : str, how messages call the argument ("--class" in the command)

    A name is looked up in three steps, the first that finds anything decides: the exact
    name; the name or one of its comma-separated synonyms in any case ("egyptian cat", "tabby");
    a prefix of a name or synonym in any case ("egypt"). TypeError: a float, a bool or another
    type. ValueError: an index out of range, a name that fits several classes (the message lists
    them: give the index) or none (the message lists close matches). On ImageNet's names:
    "Egyptian cat" -> 285, "egypt" -> 285, "967" -> 967, ["espresso", 968] -> [967, 968].
    """
    names = tuple(model.class_names)
    if isinstance(class_idx, np.ndarray) and class_idx.ndim == 0:
        class_idx = class_idx[()]                                         # a 0-d array: its one value
    if class_idx is None:
        return None
    if isinstance(class_idx, np.ndarray) and class_idx.ndim and class_idx.dtype.kind in "iub":
        return check_int_range(name, class_idx, 0, len(names) - 1)
    if isinstance(class_idx, (list, tuple, np.ndarray)):
        return [resolve_class(model, c, name) for c in class_idx]
    if isinstance(class_idx, (str, np.str_)):
        text = str(class_idx).strip()
        if text.lstrip("-").isdigit():
            return check_int_range(name, int(text), 0, len(names) - 1)
        return _class_by_name(text, names, name)
    if isinstance(class_idx, (bool, np.bool_)) or not isinstance(class_idx, numbers.Integral):
        raise TypeError(f"{name} must be a class index (an integer) or a class name; got {class_idx!r}")
    return check_int_range(name, class_idx, 0, len(names) - 1)


def _class_by_name(text, names, name="class_idx"):
    """The index of the one class ``text`` names (``resolve_class``'s three steps)."""
    wanted = text.lower()
    synonyms = [[s.strip().lower() for s in n.split(",")] for n in names]     # one list per class
    steps = ([i for i, n in enumerate(names) if n == text],
             [i for i, n in enumerate(names) if wanted == n.lower() or wanted in synonyms[i]],
             [i for i, n in enumerate(names) if n.lower().startswith(wanted)
              or any(s.startswith(wanted) for s in synonyms[i])])
    for hits in steps:
        if len(hits) == 1:
            return hits[0]
        if hits:
            listed = ", ".join(f"{i} ({names[i]})" for i in hits[:10]) + (", ..." if len(hits) > 10 else "")
            raise ValueError(f"class name {text!r} is ambiguous: it names classes {listed}; give the index")
    close = difflib.get_close_matches(wanted, [n.lower() for n in names], n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown class name {text!r}: expected an index 0..{len(names) - 1} or a class name{hint}")


def default_top_k(num_classes):
    """How many classes to report when top_k is not given: min(DEFAULT_TOP_K, num_classes),
    so that a 2-class model reports both and an ImageNet model its top 5."""
    return min(DEFAULT_TOP_K, num_classes)


def checked_top_k(top_k, num_classes, name="top_k"):
    """top_k as an int in 1..num_classes; None: ``default_top_k(num_classes)`` (always in range).
    ``name`` is how the message calls it ("--top-k" in the command)."""
    return default_top_k(num_classes) if top_k is None else check_int_range(name, top_k, 1, num_classes)


def top_classes(logits, top_k=None):
    """The top_k highest-scoring classes of each image, best first: (N, classes) -> (N, top_k) ints.

    logits : ndarray of shape (..., classes), e.g. (N, classes) or (classes,) -> (..., top_k).
    top_k : int in 1..classes, or None: min(5, classes).
    Ties keep the lower class index first (a stable sort), so the order is reproducible.
    """
    check_array("logits", logits, "(..., classes)", kinds="fiu", nonempty=True)
    return _top_classes(logits, checked_top_k(top_k, logits.shape[-1]))


def _top_classes(logits, top_k):
    return np.argsort(-logits, axis=-1, kind="stable")[..., :top_k]  # (..., top_k)


def normalize(maps):
    """Min-max normalise each map to [0, 1]: (M - min M) / (max M - min M) over its last two axes.

    maps : array_like of shape (..., H, W), non-empty -> the same shape, the same float dtype
    (float32 for int or bool maps). A constant map (max == min) gives zeros.
    """
    return _normalize(check_array("maps", np.asarray(maps), "(..., H, W)", kinds="fiub", nonempty=True))


def _normalize(maps):
    dtype = maps.dtype if maps.dtype.kind == "f" else np.float32
    lo = maps.min(axis=(-2, -1), keepdims=True)                       # (..., 1, 1)
    span = maps.max(axis=(-2, -1), keepdims=True) - lo                # (..., 1, 1)
    safe = np.where(span > 0, span, 1)                                # constant map: divide by 1
    return ((maps - lo) / safe).astype(dtype, copy=False)             # (..., H, W)


def to_heatmap(cam, size, order="upsample-first", relu=False, align_corners=False):
    """The map to draw: M_c upsampled to ``size`` = (H, W) and normalised to [0, 1].

    Parameters
    ----------
    cam : array_like of shape (..., h, w), raw M_c from ``class_activation_map``
    size : (H, W), the image size
    order : "upsample-first" (default: upsample the raw map, then min-max normalise) or
        "normalize-first" (normalise the h x w map, then upsample)
    relu : bool, clip negative values to 0 first (not in the paper)
    align_corners : bool, the upsampling grid (see ``upsample.upsample_bilinear``)

    Returns
    -------
    heatmap : ndarray of shape (..., H, W), values in [0, 1]
    """
    cam = check_array("cam", np.asarray(cam), "(..., h, w)", kinds="fiub", nonempty=True)
    check_choice("order", order, ORDERS)
    return _to_heatmap(cam, check_size("size", size), order, relu, align_corners)


def _to_heatmap(cam, size, order="upsample-first", relu=False, align_corners=False):
    m = np.maximum(cam, 0) if relu else cam                           # (..., h, w)
    if order == "upsample-first":
        return _normalize(_upsample_bilinear(m, size, bool(align_corners)))
    return np.clip(_upsample_bilinear(_normalize(m), size, bool(align_corners)), 0, 1)
