"""Checkers of the map: Eq. 2 (``check_cam``, with the identity mean(M_c) + b_c = S_c) and the
bilinear upsampling to the image (``check_source_coordinates``, ``check_upsample_bilinear``),
paper Sec. 2. Each runs hand-built cases, cases against the loop twins and, for Eq. 2, the
identity on a real network's maps (the small GAP net on the golden input of ``layer_checks``).
"""
import numpy as np

from ..cam import _normalize, class_activation_map, class_activation_map_loop
from ..upsample import _source_coordinates, upsample_bilinear, upsample_bilinear_loop
from .cases import Checker, Mistake, same, show

CONSTANT_MAP = "a constant added to the map (the bias b_c?)"


def cam_mistakes(features, fc_weight, class_idx, ref):
    """The typical mistakes of Eq. 2 on this case: (name, hint, answer) as ``Mistake``s."""
    num_maps, (h, w) = features.shape[1], features.shape[2:]
    first = np.atleast_1d(class_idx)[0]
    mistakes = [
        Mistake("the map normalised", "Eq. 2 is the raw weighted sum; min-max normalisation (cam.normalize) "
                "is a separate step, for drawing.", lambda: _normalize(ref)),
        Mistake("a ReLU on the map", "Eq. 2 has no ReLU (Grad-CAM clips; CAM keeps the negative evidence).",
                np.maximum(ref, 0)),
        Mistake("mean over k instead of the sum", "M_c = sum_k w_k^c f_k: a sum over the K maps.", ref / num_maps),
        Mistake("the map divided by h w", "M_c(x, y) = sum_k w_k^c f_k(x, y), not divided by the number of "
                "positions: mean(M_c) + b_c is S_c.", ref / (h * w)),
        Mistake("shape (N, 1, h, w)", "One class per image gives a map of shape (N, h, w).", ref[:, None]),
        Mistake("class_idx ignored (class 0)", "Use the weights of class class_idx: fc_weight[class_idx].",
                lambda: class_activation_map(features, fc_weight, 0) if np.any(np.asarray(class_idx) != 0) else None),
        Mistake("the first image's class for every image", "class_idx[n] is the class of image n.",
                lambda: class_activation_map(features, fc_weight, int(first)) if np.ndim(class_idx) else None),
    ]
    if fc_weight.shape[0] == fc_weight.shape[1]:
        mistakes.append(Mistake("w_k^c read from column c (fc_weight[:, c])", "fc_weight is (classes, K): "
                                "w_k^c = fc_weight[c, k], row c.",
                                lambda: class_activation_map(features, np.ascontiguousarray(fc_weight.T), class_idx)))
    if h != w:
        mistakes.append(Mistake("x and y swapped: shape (N, w, h)", "The map has the layout of f_k: (N, h, w).",
                                ref.transpose(0, 2, 1)))
    return mistakes


def _constant_offset(got, ref):
    """Whether got - ref is one nonzero constant on each map (a bias added to M_c)."""
    got = np.asarray(got, np.float64) if isinstance(got, np.ndarray) else None
    if got is None or got.shape != ref.shape:
        return False
    diff = got - ref                                                          # (N, h, w)
    spread = diff.max(axis=(-2, -1)) - diff.min(axis=(-2, -1))
    return bool(np.all(spread <= 1e-4 * max(1.0, np.abs(ref).max())) and np.any(np.abs(diff) > 1e-3))


def _cam_case(checker, case, features, fc_weight, class_idx):
    ref = class_activation_map_loop(features, fc_weight, class_idx)           # (N, h, w)
    got = checker.call(case, features, fc_weight, class_idx)
    if not same(got, ref) and _constant_offset(got, ref):
        checker.fail(case, f"Likely mistake: {CONSTANT_MAP}. Eq. 2 has no bias: b_c stays in S_c, and "
                           f"mean(M_c) + b_c = S_c.\nexpected {show(ref)}\ngot {show(got)}", CONSTANT_MAP)
    checker.expect(case, got, ref, cam_mistakes(features, fc_weight, class_idx, ref), dtype=features.dtype)
    return got


def check_cam(fn, network="small_gap"):
    """Check ``fn(features, fc_weight, class_idx) -> cam`` (Eq. 2, one class per image: an int or N ints).

    Hand-built cases, then the identity on ``network``'s maps: mean over (x, y) of the
    candidate's M_c, plus b_c, equals the logit S_c, for the top class of the golden input.
    """
    from .. import load_model
    from .layer_checks import _golden_input
    checker, rng = Checker("check_cam", fn), np.random.default_rng(4)
    f = np.array([[[[1, 0, 2], [0, 3, 1]], [[2, 1, 0], [1, 0, 4]]]], np.float32)    # (1, K=2, h=2, w=3)
    w = np.array([[1, 1], [2, -1], [0, 3]], np.float32)                                # (classes=3, K=2)
    _cam_case(checker, "K = 2 maps of 2x3, class 1 (by hand: 2 f_0 - f_1)", f, w, 1)
    _cam_case(checker, "3 classes, K = 3 (a square fc_weight), class 2", rng.integers(-2, 3, (1, 3, 3, 4)).astype(
        np.float32), rng.integers(-2, 3, (3, 3)).astype(np.float32), 2)
    _cam_case(checker, "2 images, class_idx = [2, 0]", rng.integers(-2, 3, (2, 3, 2, 2)).astype(np.float32),
              rng.integers(-2, 3, (4, 3)).astype(np.float32), [2, 0])
    _cam_case(checker, "random (2, 8, 5, 6), 10 classes, class 7", rng.standard_normal((2, 8, 5, 6)).astype(
        np.float32), rng.standard_normal((10, 8)).astype(np.float32), 7)
    model = load_model(network)
    features = model.features(_golden_input(network))                          # (1, K, h, w)
    logits = model.classify(features)                                          # (1, classes)
    c = int(np.argmax(logits[0]))
    case = f"{network}'s maps, its top class {c}: the identity mean(M_c) + b_c = S_c"
    cam = _cam_case(checker, case, features, model.fc_weight, c)
    checker.expect(case, np.array([cam[0].mean(dtype=np.float64) + model.fc_bias[c]]), logits[:, c].astype(np.float64))
    return checker.passed


def _from_src(src, n_in):
    """(src, i0, i1, w1) of a source coordinate array, with the reference's neighbours and weight."""
    i0 = np.floor(src).astype(np.int64)
    return src, i0, np.minimum(i0 + 1, n_in - 1), src - i0


def _grid_mistakes(n_in, n_out, align_corners):
    """Source coordinates with the typical mistakes, name -> (hint, (src, i0, i1, w1))."""
    o = np.arange(n_out, dtype=np.float64)                                  # (n_out,)
    half = (o + 0.5) * (n_in / n_out) - 0.5                                 # (n_out,), not clamped
    src, i0, i1, w1 = _source_coordinates(n_in, n_out, align_corners)
    if align_corners:
        out = {"the half-pixel grid for align_corners=True": (
            "align_corners=True aligns the corner pixels' centres: src = o (n_in - 1) / (n_out - 1) (0 when "
            "n_out == 1).", _source_coordinates(n_in, n_out, False))}
    else:
        out = {
            "corner-aligned grid (align_corners=True)": (
                "The default is half-pixel centres, as PyTorch, OpenCV and Pillow: src = (o + 0.5) n_in / n_out "
                "- 0.5, clamped to [0, n_in - 1].", _source_coordinates(n_in, n_out, True)),
            "no half-pixel offset (src = o n_in / n_out)": (
                "Pixel o's centre is at o + 0.5 on both axes: src = (o + 0.5) n_in / n_out - 0.5.",
                _from_src(np.clip(o * (n_in / n_out), 0, n_in - 1), n_in)),
            "src not clamped to [0, n_in - 1]": (
                "Near the edges (o + 0.5) n_in / n_out - 0.5 leaves the input: clamp it (the edge pixel's value).",
                _from_src(half, n_in)),
        }
    out["i1 not clamped (i0 + 1 past the last pixel)"] = ("i1 = min(i0 + 1, n_in - 1).", (src, i0, i0 + 1, w1))
    out["weights swapped (w1 given to i0)"] = ("w1 = src - i0 is the weight of i1; i0 gets 1 - w1.",
                                               (src, i0, i1, 1 - w1))
    return out


def check_source_coordinates(fn):
    """Check ``fn(n_in, n_out, align_corners=False) -> (src, i0, i1, w1)`` against ``upsample.source_coordinates``."""
    checker = Checker("check_source_coordinates", fn)
    for n_in, n_out, align in ((2, 4, False), (3, 7, False), (4, 2, False), (1, 5, False), (5, 1, False),
                               (7, 224, False), (2, 3, True), (3, 7, True), (5, 1, True), (7, 224, True)):
        case = f"n_in = {n_in}, n_out = {n_out}, align_corners = {align}"
        mistakes = [Mistake(name, hint, answer) for name, (hint, answer) in _grid_mistakes(n_in, n_out, align).items()]
        got = checker.call(case, n_in, n_out, align_corners=align)
        got = tuple(got) if isinstance(got, (tuple, list)) else got
        checker.expect(case, got, _source_coordinates(n_in, n_out, align), mistakes)
    return checker.passed


def _resample(maps, size, grids):
    """Separable bilinear resampling of maps (..., h, w) with the given (src, i0, i1, w1) per axis."""
    matrices = []
    for n_in, n_out, (_, i0, i1, w1) in zip(maps.shape[-2:], size, grids):
        a = np.zeros((n_out, n_in))                                          # (n_out, n_in)
        np.add.at(a, (np.arange(n_out), i0 % n_in), 1 - w1)                  # -1 wraps, as m[-1] would
        np.add.at(a, (np.arange(n_out), i1 % n_in), w1)
        matrices.append(a)
    return matrices[0] @ maps.astype(np.float64) @ matrices[1].T             # (..., H, W)


def upsample_mistakes(maps, size, align_corners):
    h, w = maps.shape[-2:]
    grids = [_grid_mistakes(h, size[0], align_corners), _grid_mistakes(w, size[1], align_corners)]
    mistakes = [Mistake(name, hint, lambda name=name: _resample(maps, size, (grids[0][name][1], grids[1][name][1])))
                for name, (hint, _) in grids[0].items() if not name.startswith("i1 not clamped")]  # an IndexError
    nearest = [_from_src(np.floor(_source_coordinates(n, m, align_corners)[0] + 0.5), n) for n, m in ((h, size[0]),
                                                                                                      (w, size[1]))]
    mistakes.append(Mistake("nearest neighbour instead of bilinear", "Bilinear mixes the 4 neighbours: (1 - a)(1 - b) "
                            "m[y0, x0] + (1 - a) b m[y0, x1] + a (1 - b) m[y1, x0] + a b m[y1, x1].",
                            lambda: _resample(maps, size, nearest)))
    if size[0] != size[1]:
        mistakes.append(Mistake("size read as (W, H)", "size is (H, W): rows first, like the array's shape.",
                                lambda: upsample_bilinear(maps, (size[1], size[0]), align_corners)))
    return mistakes


def check_upsample_bilinear(fn):
    """Check ``fn(maps, size, align_corners=False) -> (..., H, W)`` against ``upsample.upsample_bilinear``."""
    checker, rng = Checker("check_upsample_bilinear", fn), np.random.default_rng(5)
    two = np.array([[[0, 1], [2, 3]]], np.float32)                           # (1, 2, 2)
    cases = (("(1, 2, 2) -> 4 x 4", two, (4, 4), False), ("(1, 2, 2) -> 4 x 4, align_corners", two, (4, 4), True),
             ("(1, 2, 3) -> 3 x 5", rng.integers(0, 5, (1, 2, 3)).astype(np.float32), (3, 5), False),
             ("(1, 3, 3) -> 7 x 6, align_corners", rng.integers(0, 5, (1, 3, 3)).astype(np.float32), (7, 6), True),
             ("(1, 6, 6) -> 3 x 4 (shrinking)", rng.standard_normal((1, 6, 6)).astype(np.float32), (3, 4), False),
             ("(2, 7, 7) -> 224 x 224", rng.standard_normal((2, 7, 7)).astype(np.float32), (224, 224), False),
             ("(1, 1, 1) -> 2 x 3", np.array([[[2.5]]], np.float32), (2, 3), False))
    for case, maps, size, align in cases:
        expected = (upsample_bilinear_loop if maps.size * size[0] * size[1] < 20000 else upsample_bilinear)(
            maps, size, align)
        got = checker.call(case, maps, size, align_corners=align)
        checker.expect(case, got, expected, upsample_mistakes(maps, size, align), dtype=maps.dtype)
    return checker.passed
