"""The whole method on one photo, every step kept, and one figure that shows them all.

``explain_image``: classify (Sec. 2), map (Eq. 2), upsample, box (Sec. 3), draw:

    image -> centre crop -> x -> f_k -> S_c, P_c -> M_c -> upsampled heatmap -> box -> overlay

``method=`` replaces M_c by another raw map of the family (``numpy_cam.family``: "gradcam",
"scorecam", ...); every other step stays the same, so the methods can be compared on one photo.

The network sees the centre crop of the official preprocessing (``Model.preprocess``), so
the map covers that crop: it is upsampled to the crop's size in the photo's own pixels and
drawn there; the part of the photo outside the crop is shown darkened. Boxes are in the
photo's pixel coordinates, (x0, y0, x1, y1) inclusive (``localize``).

``explain_figure`` (``numpy-cam explain IMAGE [--class INDEX|NAME] [--out FILE]``), Pillow
only. Top row: the network's input (the crop it saw), the feature maps f_k that add most to
the class score (the largest w_k^c F_k; each titled with k, w_k^c and w_k^c F_k), the raw
M_c = sum_k w_k^c f_k (Eq. 2) with its range. Bottom row: M_c upsampled and normalised, the
overlay, the mask above the threshold with the box; and the identity mean(M_c) + b_c = S_c
checked in numbers.
"""
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ._checks import check_choice, check_int_range, check_unit_interval
from .cam import (_class_activation_map, _normalize, _to_heatmap, _top_classes, checked_top_k, default_top_k,
                  resolve_class)
from .family import METHODS
from .io.image import _preprocess, centre_crop_box, load_image
from .layers import softmax
from .localize import _localize, _threshold_mask
from .visualize import JET, _apply_colormap, _draw_box, _font, _overlay, gray

OUTSIDE_CROP = 0.4          # brightness of the photo outside the crop the network saw
TILE, SMALL, PAD, TITLE = 224, 96, 12, 34     # explain_figure: tile sides, padding, title height (px)


@dataclass
class CamResult:
    """Every intermediate of ``explain_image``, named as in the paper where it has a name."""

    image: np.ndarray        # (H, W, 3) uint8, the upright photo
    crop: tuple              # (x0, y0, x1, y1) inclusive: the region the network saw
    x: np.ndarray            # (1, 3, S, S) float32, the network input
    features: np.ndarray     # (1, K, h, w) f_k
    logits: np.ndarray       # (classes,) S_c
    probs: np.ndarray        # (classes,) P_c
    top: list                # [(index, name, probability)] best first
    class_idx: int           # c, the class mapped
    cam: np.ndarray          # (h, w) M_c, raw (Eq. 2); or the method's raw map
    heatmap: np.ndarray      # (side, side) in [0, 1], the raw map upsampled to the crop and normalised
    bbox: tuple              # (x0, y0, x1, y1) inclusive in the photo, or None
    picture: np.ndarray      # (H, W, 3) uint8: overlay + box
    method: str = "cam"      # the family member that made ``cam`` (``numpy_cam.family.METHODS``)


def explain_image(model, image, class_idx=None, top_k=None, threshold=0.2, alpha=0.5, connectivity=8,
                  method="cam"):
    """Run the CAM method on one image and keep every step.

    Parameters
    ----------
    model : numpy_cam.Model
    image : path, PIL image or (H, W, 3) uint8 array
    class_idx : int in 0..classes - 1, a class name ("espresso", "Egyptian cat"; see
        ``cam.resolve_class``), or None -- the class to map; None: the top-1 class
    top_k : int in 1..classes, or None: min(5, classes) -- how many classes to report
    threshold : float in [0, 1] -- the box threshold (paper: 0.2, "20% of the max value of the
        CAM"), applied to ``heatmap``, the min-max normalised map: a pixel is kept when heatmap >
        threshold, i.e. when the raw upsampled map M > min M + threshold (max M - min M). On the
        coffee photo that gives the box (153, 25, 439, 290); ``localize`` on the raw map, the
        paper's words taken literally, gives (125, 25, 442, 297) (notebook 01, section 10)
    alpha : float in [0, 1] -- the heatmap's weight in the overlay
    connectivity : 4 or 8 -- of the connected components (see ``localize``)
    method : one of ``numpy_cam.family.METHODS`` -- the raw map: "cam" (Eq. 2, the default),
        "gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "scorecam" (all the maps:
        about 50 s on Lite0 on 2 cores), "eigencam"

    Returns
    -------
    CamResult

    The arguments are checked here, once (``_checks``); the steps below are the unchecked
    twins (``_explain_image``, which ``numpy-cam`` calls with the values it checked itself).
    """
    class_idx = _one_class(model, class_idx)
    return _explain_image(model, image, class_idx, checked_top_k(top_k, model.num_classes),
                          check_unit_interval("threshold", threshold), check_unit_interval("alpha", alpha),
                          check_choice("connectivity", connectivity, (4, 8)),
                          check_choice("method", method, tuple(METHODS)))


def _one_class(model, class_idx):
    """class_idx (an index, a name or None) as one int or None; a sequence is refused."""
    c = resolve_class(model, class_idx)
    if isinstance(c, (list, np.ndarray)):
        raise TypeError(f"class_idx must be one class (an index or a name); got {class_idx!r}")
    return c


def _explain_image(model, image, class_idx, top_k, threshold, alpha, connectivity, method="cam"):
    """``explain_image`` without the checks of its arguments (the image is checked as it loads)."""
    rgb = load_image(image)                                                  # (H, W, 3) uint8
    crop_box = centre_crop_box(rgb.shape[0], rgb.shape[1], model.preprocessing["crop_fraction"])
    top, left, side = crop_box
    x = _preprocess(rgb, crop_box, model.preprocessing)                      # (1, 3, S, S)
    f = model.features(x)                                                    # (1, K, h, w)
    logits = model.classify(f)[0]                                            # (classes,)
    probs = softmax(logits)                                                  # (classes,)
    ranked = _top_classes(logits, top_k)                                     # (top_k,)
    c = int(ranked[0]) if class_idx is None else class_idx
    if method == "cam":
        cam = _class_activation_map(f, model.fc_weight, np.array([[c]]))[0, 0]   # (h, w) M_c
    else:                                                                # another member, on the same x
        cam = METHODS[method](model, x, c)[0]                                # (h, w)
    heatmap = _to_heatmap(cam, (side, side))                                 # (side, side) in [0, 1]
    box = _localize(heatmap, threshold, connectivity)
    if box is not None:
        box = (box[0] + left, box[1] + top, box[2] + left, box[3] + top)     # crop -> photo pixels
    picture = (rgb * np.float32(OUTSIDE_CROP)).round().astype(np.uint8)      # (H, W, 3) darkened
    picture[top:top + side, left:left + side] = _overlay(rgb[top:top + side, left:left + side], heatmap, alpha)
    picture = _draw_box(picture, box)                                        # (H, W, 3)
    return CamResult(image=rgb, crop=(left, top, left + side - 1, top + side - 1), x=x, features=f,
                     logits=logits, probs=probs,
                     top=[(int(i), model.class_names[i], float(probs[i])) for i in ranked],
                     class_idx=c, cam=cam, heatmap=heatmap, bbox=box, picture=picture, method=method)


def _tile(rgb, side):
    return Image.fromarray(rgb).resize((side, side), Image.Resampling.NEAREST)


def explain_figure(model, image, class_idx=None, threshold=0.2, top_weights=6, top_k=None):
    """The figure as an (H, W, 3) uint8 array, and the numbers it shows (a dict).

    image, class_idx, threshold and top_k as in ``explain_image`` (the numbers' "top" holds the
    top_k classes); top_weights : int in 1..K, how many feature maps f_k to show. Checked here
    once; ``_explain_figure`` is unchecked.
    """
    class_idx = _one_class(model, class_idx)
    return _explain_figure(model, image, class_idx, check_unit_interval("threshold", threshold),
                           check_int_range("top_weights", top_weights, 1, model.num_maps),
                           checked_top_k(top_k, model.num_classes))


def _explain_figure(model, image, class_idx, threshold, top_weights, top_k=None):
    """``explain_figure`` without the checks; top_k None: min(5, classes)."""
    top_k = default_top_k(model.num_classes) if top_k is None else top_k
    r = _explain_image(model, image, class_idx, top_k=top_k, threshold=threshold, alpha=0.5, connectivity=8)
    c, f = r.class_idx, r.features[0]                                        # f: (K, h, w)
    w = model.fc_weight[c]                                                   # (K,) w_k^c
    contribution = w * f.mean(axis=(1, 2))                                  # (K,) w_k^c F_k: sums to S_c - b_c
    strongest = np.argsort(-contribution, kind="stable")[:top_weights]      # the largest terms of S_c
    x0, y0, x1, y1 = r.crop
    crop = r.image[y0:y1 + 1, x0:x1 + 1]
    side = crop.shape[0]
    mask = gray(_threshold_mask(r.heatmap, threshold))                     # (side, side, 3): what the box came from
    box = None if r.bbox is None else (r.bbox[0] - x0, r.bbox[1] - y0, r.bbox[2] - x0, r.bbox[3] - y0)
    numbers = {"class": c, "name": model.class_names[c], "probability": float(r.probs[c]),
               "logit": float(r.logits[c]), "mean_cam_plus_bias": float(r.cam.mean() + model.fc_bias[c]),
               "cam_range": (float(r.cam.min()), float(r.cam.max())), "bbox": r.bbox,
               "weights": [(int(k), float(w[k]), float(contribution[k])) for k in strongest], "top": r.top}
    cols = max(3 + (top_weights + 1) // 2, 4)
    fig = Image.new("RGB", (PAD + cols * (TILE + PAD), 2 * (TILE + TITLE + PAD) + 3 * TITLE), "white")
    draw, font, big = ImageDraw.Draw(fig), _font(13), _font(17)

    def put(tile, col, row, title, x_offset=0, y_offset=0):
        x, y = PAD + col * (TILE + PAD) + x_offset, 2 * TITLE + row * (TILE + TITLE + PAD) + y_offset
        fig.paste(tile, (x, y + TITLE - 16))
        draw.text((x, y), title, fill="black", font=font)

    draw.text((PAD, 8), f"CAM of class {c} '{model.class_names[c]}' (P = {r.probs[c]:.3f}) "
              f"by {model.name}; top: " + ", ".join(f"{i} {p:.2f}" for i, _, p in r.top[:3]),
              fill="black", font=big)
    put(_tile(crop, TILE), 0, 0, f"x {tuple(r.x.shape)}")
    lo, hi = f[strongest].min(), f[strongest].max()                         # one gray scale for all
    for i, k in enumerate(strongest):
        level = np.uint8(np.clip((f[k] - lo) / max(hi - lo, 1e-12) * 255, 0, 255))
        put(_tile(np.stack([level] * 3, -1), SMALL), 1 + i // 2, 0,
            f"f_{k}: w {w[k]:+.3f}, wF {contribution[k]:+.2f}", y_offset=(i % 2) * (SMALL + 22))
    col = 1 + (top_weights + 1) // 2
    put(_tile(_apply_colormap(_normalize(r.cam), JET), TILE), col, 0,
        f"M_c {r.cam.shape}: [{r.cam.min():.2f}, {r.cam.max():.2f}]")
    put(_tile(_apply_colormap(r.heatmap, JET), TILE), 0, 1, f"upsampled {side}x{side}, to [0, 1]")
    put(_tile(r.picture[y0:y1 + 1, x0:x1 + 1], TILE), 1, 1, "overlay + box")
    put(_tile(_draw_box(mask, box, color=(255, 0, 0)), TILE), 2, 1,
        f"mask > {threshold:g} max, box")
    text_x, text_y = PAD + 3 * (TILE + PAD), 2 * TITLE + TILE + TITLE + PAD + 10
    lines = [f"S_c (logit)          = {numbers['logit']:.4f}",
             f"mean(M_c) + b_c      = {numbers['mean_cam_plus_bias']:.4f}",
             f"identity holds to {abs(numbers['logit'] - numbers['mean_cam_plus_bias']):.1e}",
             f"b_c = {model.fc_bias[c]:+.4f}, h x w = {r.cam.shape[0]} x {r.cam.shape[1]}",
             f"box (x0, y0, x1, y1) in the photo: {r.bbox}"]
    for i, line in enumerate(lines):
        draw.text((text_x, text_y + 24 * i), line, fill="black", font=big)
    return np.asarray(fig), numbers
