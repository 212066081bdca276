"""The cross-library table: every method of the family through every peer's post-processing.

One photo, one class, one network input x (N = 1). For each method of ``family.METHODS`` and
each preset of ``presets.PRESETS``, the raw map goes through the preset's steps
(``presets.postprocess``) and the table gives, on the preset's output grid (the input size,
or h x w for the presets that do not resize):

- the peak: (row, col) of the largest value, the first in row-major order;
- the paper's box (Zhou et al. 2016, Sec. 3; ``localize``'s default): the largest component
  above 20% of the max, (x0, y0, x1, y1) inclusive, in that grid;
- the largest |difference| from this project's default map, CAM through "numpy-cam"
  (``cam.to_heatmap``: bilinear, min-max) on the same grid. Outputs are compared on [0, 1]:
  a uint8 output (the demo) is divided by 255, an output no step normalises (captum's) is
  min-max normalised first.

Which raw map goes in: this project's ``method_map``, except where the peer computes the method
its own way on this head (``PEER_FORMS``): captum's LayerGradCam keeps the sign, M_c / (h w);
pytorch-grad-cam's Grad-CAM++ adds eps = 1e-6 to Eq. 19's denominator; torchcam's GradCAMpp
has no denominator (``family.grad_cam_pp_torchcam``). The CAM presets (torchcam-cam, the
authors' demo) take M_c, CAM's own map.

Score-CAM runs on all the maps (``family.score_cam`` skips those that are 0 everywhere on the
photo, which add nothing: 837 of Lite0's 1280 on chelsea.png), so the table holds the exact
Score-CAM: about 443 forward passes, 20 to 30 s on 2 cores. A subset would not do: every 10th
map gives a map 0.36 away from the full one (min-max scale), the 128 largest w_k^c F_k 0.09.

``python -m numpy_cam.compare`` prints the table for the bundled chelsea.png, class 282
("tiger cat", the default model's top-1), on the default model (``main``).
"""
import numpy as np

from ._checks import check_array, check_size
from .cam import _normalize, _to_heatmap, resolve_class
from .family import METHODS, grad_cam, grad_cam_pp_peers, grad_cam_pp_torchcam, method_map
from .localize import _localize
from .presets import PRESETS, postprocess

__all__ = ["cross_library_table", "format_table", "caption", "main", "PEER_FORMS"]

PHOTO, CLASS_IDX = "chelsea.png", 282      # tiger cat: EfficientNet-Lite0's top-1 on the photo


def _signed_grad_cam(model, f, c):
    return grad_cam(f, model.fc_weight, c, pooling=model.pooling, relu=False)


def _pytorch_grad_cam_pp(model, f, c):
    return grad_cam_pp_peers(f, model.fc_weight, c, pooling=model.pooling, eps=1e-6)


def _torchcam_pp(model, f, c):
    return grad_cam_pp_torchcam(f, model.fc_weight, c, pooling=model.pooling)


# (method, preset) -> (what the peer computes, function(model, features, class_idx) -> (N, h, w))
PEER_FORMS = {
    ("gradcam", "captum"): ("M_c / (h w), signed (LayerGradCam)", _signed_grad_cam),
    ("gradcam++", "pytorch-grad-cam"): ("Eq. 19 + eps 1e-6", _pytorch_grad_cam_pp),
    ("gradcam++", "torchcam"): ("no denominator (GradCAMpp)", _torchcam_pp),
    ("gradcam++", "torchcam-overlay"): ("no denominator (GradCAMpp)", _torchcam_pp),
}


def cross_library_table(model, x, class_idx, size):
    """One row per method x preset: the peak, the 20% box and the distance from the default map.

    Parameters
    ----------
    model : Model (``numpy_cam.load_model``)
    x : ndarray of shape (1, 3, H, W), float32 or float64 (``Model.preprocess``)
    class_idx : int, or a class name (``cam.resolve_class``: "tiger cat", "egypt", ...): the
        class c mapped by every method
    size : (H, W), the target size of the presets that resize (usually x's)

    Returns
    -------
    rows : list of dicts, methods in ``METHODS`` order, presets in ``PRESETS`` order, with keys
        "method", "preset", "raw" (the peer's form from ``PEER_FORMS``, or "method_map"),
        "peak" (row, col), "box" (x0, y0, x1, y1) or None, "difference" (float)
    """
    check_array("x", x, "(1, 3, H, W)")
    class_idx = resolve_class(model, class_idx)
    if not isinstance(class_idx, int):
        raise TypeError(f"class_idx must be one class, an int or a name; got {class_idx!r}")
    size = check_size("size", size)
    f = model.features(x)                                                   # (1, K, h, w); checks x
    raw = {m: method_map(model, x, class_idx, m) for m in METHODS}         # each (1, h, w)
    rows = []
    for method in METHODS:
        for preset in PRESETS:
            name, function = PEER_FORMS.get((method, preset), ("method_map", None))
            m = raw[method] if function is None else function(model, f, class_idx)   # (1, h, w)
            out = _unit_scale(postprocess(m, size, preset), preset)[0]     # (H', W') in [0, 1]
            reference = _to_heatmap(raw["cam"][0], out.shape)               # (H', W'): the default map
            peak = np.unravel_index(np.argmax(out), out.shape)
            rows.append({"method": method, "preset": preset, "raw": name,
                         "peak": (int(peak[0]), int(peak[1])), "box": _localize(out, 0.2, 8),
                         "difference": float(np.abs(out - reference).max())})
    return rows


def _unit_scale(heatmap, preset):
    """A preset's output on [0, 1]: uint8 / 255; min-max where no step of the preset normalises."""
    if heatmap.dtype == np.uint8:
        return heatmap / np.float32(255)
    if not any(step[0] == "min-max" for step in PRESETS[preset].steps):
        return _normalize(heatmap)
    return heatmap


def format_table(rows):
    """The rows as a markdown table (str, one line per row, ending with a newline)."""
    lines = ["| method | preset | raw map | peak (row, col) | 20% box (x0, y0, x1, y1) | max abs diff from CAM |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        box = "none" if r["box"] is None else "({}, {}, {}, {})".format(*r["box"])
        lines.append(f"| {r['method']} | {r['preset']} | {r['raw']} | ({r['peak'][0]}, {r['peak'][1]}) | {box} "
                     f"| {r['difference']:.3f} |")
    return "\n".join(lines) + "\n"


def caption(model_name, class_idx, class_name, size):
    """The sentence above the table: what it was computed on."""
    return (f"{model_name}, bundled {PHOTO}, class {class_idx} ({class_name!r}), output grid {size[0]} x {size[1]} "
            f"(h x w for the presets that do not resize); differences on [0, 1] from CAM through "
            f"numpy-cam on the same grid; Score-CAM on all the maps.")


def main():
    """Print the caption and the table for chelsea.png, class 282, on the default model."""
    from . import DATA, load_model
    model = load_model()
    x = model.preprocess(DATA / PHOTO)                                      # (1, 3, 224, 224)
    size = x.shape[2:]
    print(caption(model.name, CLASS_IDX, model.class_names[CLASS_IDX], size))
    print()
    print(format_table(cross_library_table(model, x, CLASS_IDX, size)), end="")


if __name__ == "__main__":
    main()
