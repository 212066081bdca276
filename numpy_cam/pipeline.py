"""The whole method on one photo: classify (Sec. 2), map (Eq. 2), upsample, box (Sec. 3), draw.

    image -> centre crop -> x -> f_k -> S_c, P_c -> M_c -> upsampled heatmap -> box -> overlay

The network sees the centre crop of the official preprocessing (``Model.preprocess``), so
the map covers that crop: it is upsampled to the crop's size in the photo's own pixels and
drawn there; the part of the photo outside the crop is shown darkened. Boxes are in the
photo's pixel coordinates, (x0, y0, x1, y1) inclusive (``localize``).
"""
from dataclasses import dataclass

import numpy as np

from .cam import class_activation_map, heatmap as make_heatmap, top_classes
from .image import centre_crop_box, load_image
from .layers import softmax
from .localize import localize
from .visualize import draw_box, overlay

OUTSIDE_CROP = 0.4          # brightness of the photo outside the crop the network saw


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
    cam: np.ndarray          # (h, w) M_c, raw (Eq. 2)
    heatmap: np.ndarray      # (side, side) in [0, 1], M_c upsampled to the crop and normalised
    bbox: tuple              # (x0, y0, x1, y1) inclusive in the photo, or None
    picture: np.ndarray      # (H, W, 3) uint8: overlay + box


def explain_image(model, image, class_idx=None, top_k=5, threshold=0.2, alpha=0.5, connectivity=8):
    """Run the CAM method on one image and keep every step.

    Parameters
    ----------
    model : numpy_cam.Model
    image : path, PIL image or (H, W, 3) uint8 array
    class_idx : int or None -- the class to map; None: the top-1 class
    top_k : int -- how many classes to report
    threshold : float in [0, 1] -- the box threshold, a fraction of the map's max (paper: 0.2)
    alpha : float in [0, 1] -- the heatmap's weight in the overlay
    connectivity : 4 or 8 -- of the connected components (see ``localize``)

    Returns
    -------
    CamResult
    """
    for name, value in (("threshold", threshold), ("alpha", alpha)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1; got {value}")
    if not 1 <= int(top_k) <= model.num_classes:
        raise ValueError(f"top_k must be between 1 and {model.num_classes}; got {top_k}")
    rgb = load_image(image)                                                  # (H, W, 3) uint8
    top, left, side = centre_crop_box(rgb.shape[0], rgb.shape[1], model.preprocessing["crop_fraction"])
    x = model.preprocess(rgb)                                                # (1, 3, S, S)
    f = model.features(x)                                                    # (1, K, h, w)
    logits = model.classify(f)[0]                                            # (classes,)
    probs = softmax(logits)                                                  # (classes,)
    ranked = top_classes(logits, top_k)                                      # (top_k,)
    c = int(ranked[0]) if class_idx is None else int(class_idx)
    cam = class_activation_map(f, model.fc_weight, c)[0]                     # (h, w) M_c
    heat = make_heatmap(cam, (side, side))                                   # (side, side) in [0, 1]
    box = localize(heat, threshold=threshold, connectivity=connectivity)
    if box is not None:
        box = (box[0] + left, box[1] + top, box[2] + left, box[3] + top)     # crop -> photo pixels
    picture = (rgb * np.float32(OUTSIDE_CROP)).round().astype(np.uint8)      # (H, W, 3) darkened
    picture[top:top + side, left:left + side] = overlay(rgb[top:top + side, left:left + side], heat, alpha)
    picture = draw_box(picture, box)
    return CamResult(image=rgb, crop=(left, top, left + side - 1, top + side - 1), x=x, features=f,
                     logits=logits, probs=probs,
                     top=[(int(i), model.class_names[i], float(probs[i])) for i in ranked],
                     class_idx=c, cam=cam, heatmap=heat, bbox=box, picture=picture)
