"""Each vectorised layer against its loop twin, every speed kernel path forced, exact hand-built cases, properties."""
import inspect
import re

import numpy as np
import pytest

from numpy_cam import layers
from numpy_cam.layers import _kernels
from numpy_cam.layers import loop as layers_loop

RNG = np.random.default_rng(12345)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def channels_last(x):
    """The same NCHW values in channels-last memory (what the layers return)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


CONV_CASES = [
    # (N, C, H, W), (O, k), stride, padding, groups
    ((2, 3, 7, 9), (4, 3), 1, 0, 1),
    ((1, 3, 11, 8), (5, 3), 2, "same", 1),
    ((1, 3, 10, 10), (2, 3), 2, "same", 1),
    ((2, 4, 9, 13), (6, 1), 1, 0, 1),
    ((1, 4, 9, 13), (6, 1), 2, 0, 1),
    ((1, 5, 6, 7), (5, 3), 1, 1, 5),
    ((2, 6, 13, 11), (6, 5), 2, "same", 6),
    ((1, 6, 14, 14), (6, 5), 2, "same", 6),
    ((1, 4, 8, 9), (4, 3), 1, ((0, 2), (1, 0)), 4),
    ((1, 4, 9, 7), (6, 3), 2, (1, 2), 2),
    ((1, 2, 1, 1), (3, 3), 1, 1, 1),
    ((3, 8, 5, 5), (8, 3), 1, "same", 8),
    ((2, 8, 37, 9), (8, 3), 1, 1, 8),           # depthwise tap loop: several 16-row blocks
    ((1, 64, 9, 8), (64, 5), 1, "same", 64),    # depthwise einsum (C >= 64), stride 1
    ((1, 70, 9, 11), (70, 3), 2, "same", 70),   # depthwise einsum, stride 2
]


@pytest.mark.parametrize("x_shape, o_k, stride, padding, groups", CONV_CASES)
@pytest.mark.parametrize("memory", ["nchw", "channels_last"])
def test_conv2d_matches_loop_twin(x_shape, o_k, stride, padding, groups, memory):
    x = rand(*x_shape)
    o, k = o_k
    w, b = rand(o, x_shape[1] // groups, k, k), rand(o)
    x_in = channels_last(x) if memory == "channels_last" else x
    x_before = x_in.copy()
    y = layers.conv2d(x_in, w, b, stride, padding, groups)
    ref = layers_loop.conv2d(x, w, b, stride, padding, groups)
    assert y.shape == ref.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(x_in, x_before)                       # input untouched


@pytest.mark.parametrize("x_shape, o_k, stride, padding", [
    ((2, 5, 9, 7), (6, 3), 1, 1), ((2, 3, 13, 11), (4, 7), 2, 3), ((3, 4, 7, 9), (5, 1), 2, 0),
])
@pytest.mark.parametrize("block_rows, few_rows", [(2, 0), (3, 1 << 30), (None, 1 << 30)])
def test_conv2d_blocked_im2col_and_few_rows_match_loop_twin(monkeypatch, x_shape, o_k, stride, padding,
                                                           block_rows, few_rows):
    """The paths that only large inputs (im2col in row blocks) or small ones (the transposed
    product) take at their real thresholds, forced on small shapes (odd last block included)."""
    x = rand(*x_shape)
    o, k = o_k
    w, b = rand(o, x_shape[1], k, k), rand(o)
    ref = layers_loop.conv2d(x, w, b, stride, padding)                  # (N, O, Ho, Wo)
    if block_rows is not None:                 # blocks of block_rows output rows of one image
        monkeypatch.setattr(_kernels, "IM2COL_BLOCK_BYTES", 0)
        monkeypatch.setattr(_kernels, "IM2COL_MIN_BLOCK_ROWS", block_rows * ref.shape[3])
    monkeypatch.setattr(_kernels, "FEW_ROWS", few_rows)
    for x_in in (x, channels_last(x)):
        y = layers.conv2d(x_in, w, b, stride, padding)
        assert y.shape == ref.shape and y.dtype == np.float32
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def spy(monkeypatch, name):
    """Count the calls of the kernel ``_kernels.<name>`` (still computing what it computes)."""
    calls = []
    kernel = getattr(_kernels, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return kernel(*args, **kwargs)
    monkeypatch.setattr(_kernels, name, counted)
    return calls


@pytest.mark.parametrize("path, x_shape, o_k, stride, padding, groups", [
    ("im2col_blocks", (2, 3, 11, 7), (4, 3), 1, 1, 1),
    ("im2col_blocks", (1, 4, 9, 7), (6, 3), 2, (1, 2), 2),            # grouped, each group in blocks
    ("few_rows", (1, 5, 7, 7), (8, 3), 1, "same", 1),                   # 49 rows, the layer4 case
    ("few_rows", (1, 6, 7, 7), (9, 1), 1, 0, 3),                        # grouped 1x1
    ("many_rows", (2, 5, 9, 13), (7, 3), 1, 1, 1),
    ("many_rows", (2, 4, 10, 9), (6, 1), 1, 0, 2),                      # grouped 1x1
    ("depthwise_einsum", (2, 6, 13, 11), (6, 3), 1, "same", 6),         # few channels, einsum forced
    ("depthwise_einsum", (1, 5, 12, 9), (5, 5), 2, "same", 5),          # stride 2: einsum, tap loop not forced
    ("depthwise_tap_loop", (2, 7, 17, 9), (7, 3), 1, 1, 7),             # blocks of 4 rows, odd last one
    ("depthwise_tap_loop", (1, 66, 8, 6), (66, 5), 1, "same", 66),      # many channels, tap loop forced
])
def test_conv2d_every_kernel_path_matches_loop_twin(monkeypatch, path, x_shape, o_k, stride, padding, groups):
    """Each path of ``_kernels`` forced by its constant, checked to be taken, against the loop twin."""
    x = rand(*x_shape)
    o, k = o_k
    w, b = rand(o, x_shape[1] // groups, k, k), rand(o)
    ref = layers_loop.conv2d(x, w, b, stride, padding, groups)          # (N, O, Ho, Wo)
    blocked, einsum, taps = (spy(monkeypatch, name) for name in
                             ("conv_dense_blocked", "depthwise_einsum", "depthwise_tap_loop"))
    grouped = spy(monkeypatch, "conv_grouped")
    if path == "im2col_blocks":                # blocks of 2 output rows of one image
        monkeypatch.setattr(_kernels, "IM2COL_BLOCK_BYTES", 0)
        monkeypatch.setattr(_kernels, "IM2COL_MIN_BLOCK_ROWS", 2 * ref.shape[3])
    monkeypatch.setattr(_kernels, "FEW_ROWS", {"few_rows": 1 << 30, "many_rows": 0}.get(path, _kernels.FEW_ROWS))
    einsum_forced = path == "depthwise_einsum" and stride == 1   # at stride != 1 einsum whatever C is
    monkeypatch.setattr(_kernels, "DEPTHWISE_EINSUM_MIN_CHANNELS", 0 if einsum_forced else 1 << 30)
    monkeypatch.setattr(_kernels, "DEPTHWISE_ROW_BLOCK", 4)
    y = layers.conv2d(x, w, b, stride, padding, groups)
    assert y.shape == ref.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    assert bool(blocked) == (path == "im2col_blocks")
    assert bool(einsum) == (path == "depthwise_einsum") and bool(taps) == (path == "depthwise_tap_loop")
    assert bool(grouped) == (1 < groups < x_shape[1])


def test_conv2d_few_rows_switch(monkeypatch):
    """The threshold picks the product: (W @ cols^T)^T below FEW_ROWS rows, cols @ W^T from there on."""
    products = []
    real_ascontiguousarray = np.ascontiguousarray

    class CountingNumpy:                       # _kernels' np, noting each transposed product
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def ascontiguousarray(a, *args, **kwargs):
            products.append(a.shape)
            return real_ascontiguousarray(a, *args, **kwargs)
    monkeypatch.setattr(_kernels, "np", CountingNumpy())
    x, w = rand(1, 3, 5, 5), rand(4, 3, 1, 1)                          # 25 rows, 4 output channels
    for few_rows, transposed in ((26, True), (25, False)):
        products.clear()
        monkeypatch.setattr(_kernels, "FEW_ROWS", few_rows)
        np.testing.assert_allclose(layers.conv2d(x, w), layers_loop.conv2d(x, w), rtol=1e-5, atol=1e-5)
        assert ((25, 4) in products) == transposed


def test_every_layer_has_a_loop_twin_named_in_its_docstring():
    """Same name and signature in ``layers.loop``; the docstring names the twin and only kernels that exist."""
    for name in layers.__all__:
        fn, twin = getattr(layers, name), getattr(layers_loop, name, None)
        assert callable(twin), f"layers.loop has no {name}"
        assert inspect.signature(twin) == inspect.signature(fn), name
        assert f"``layers.loop.{name}``" in fn.__doc__, name
        assert twin.__doc__, name
        for kernel in re.findall(r"``_kernels\.(\w+)``", fn.__doc__):
            assert callable(getattr(_kernels, kernel, None)), f"{name} names a missing _kernels.{kernel}"


def test_same_padding_matches_loop_twin():
    for size in range(1, 40):
        for kernel in (1, 2, 3, 5, 7):
            for stride in (1, 2, 3):
                assert layers.same_padding(size, kernel, stride) == layers_loop.same_padding(size, kernel, stride)


def test_conv2d_hand_built():
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)             # [[0 1 2] [3 4 5] [6 7 8]]
    w = np.ones((1, 1, 2, 2), np.float32)
    np.testing.assert_array_equal(layers.conv2d(x, w)[0, 0], [[8, 12], [20, 24]])
    # TF "SAME", stride 2 on 3x3: output 2x2, total padding 1, all of it after (bottom/right)
    np.testing.assert_array_equal(layers.conv2d(x, w, stride=2, padding="same")[0, 0], [[8, 7], [13, 8]])
    # a depthwise 1x1 kernel only scales each channel
    x2 = np.stack([x[0, 0], -x[0, 0]])[None]                          # (1, 2, 3, 3)
    y = layers.conv2d(x2, np.array([2, 3], np.float32).reshape(2, 1, 1, 1), groups=2)
    np.testing.assert_array_equal(y[0, 1], -3 * x[0, 0])


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (224, 3, 2, (0, 1)), (224, 5, 2, (1, 2)), (112, 3, 1, (1, 1)), (14, 5, 1, (2, 2)),
    (225, 3, 2, (1, 1)), (225, 5, 2, (2, 2)), (7, 3, 2, (1, 1)), (1, 5, 2, (2, 2)), (8, 1, 1, (0, 0)),
])
def test_same_padding_table(size, kernel, stride, expected):
    assert layers.same_padding(size, kernel, stride) == expected


def test_batch_norm_and_folding_match_loop_twins():
    x, w = rand(2, 5, 4, 3), rand(5, 3, 3, 3)
    gamma, beta, mean = rand(5), rand(5), rand(5)
    var = RNG.uniform(0.1, 2.0, 5).astype(np.float32)
    np.testing.assert_allclose(layers.batch_norm(x, gamma, beta, mean, var, 1e-3),
                               layers_loop.batch_norm(x, gamma, beta, mean, var, 1e-3), rtol=1e-5, atol=1e-6)
    for bias in (None, rand(5)):
        fw, fb = layers.fold_batch_norm(w, bias, gamma, beta, mean, var, 1e-3)
        lw, lb = layers_loop.fold_batch_norm(w, bias, gamma, beta, mean, var, 1e-3)
        np.testing.assert_allclose(fw, lw, rtol=1e-6)
        np.testing.assert_allclose(fb, lb, rtol=1e-6, atol=1e-7)
        # the identity folding relies on: BN(conv(x, w, b)) == conv(x, w', b')
        xi = rand(1, 3, 6, 6)
        lhs = layers.batch_norm(layers.conv2d(xi, w, bias, padding=1), gamma, beta, mean, var, 1e-3)
        np.testing.assert_allclose(layers.conv2d(xi, fw, fb, padding=1), lhs, rtol=1e-4, atol=1e-5)


def test_batch_norm_hand_built():
    x = np.full((1, 1, 1, 2), 3.0, np.float32)
    y = layers.batch_norm(x, np.array([2.0]), np.array([1.0]), np.array([1.0]), np.array([4.0]), 0.0)
    np.testing.assert_array_equal(y, [[[[3.0, 3.0]]]])                 # 2 * (3 - 1) / 2 + 1


@pytest.mark.parametrize("fn", ["relu", "relu6"])
def test_activations_match_loop_twins_and_work_in_place(fn):
    x = rand(2, 3, 5, 7) * 5
    ref = getattr(layers_loop, fn)(x)
    np.testing.assert_array_equal(getattr(layers, fn)(x), ref)
    y = x.copy()
    assert getattr(layers, fn)(y, out=y) is y
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(layers.relu6(np.array([-1, 0, 3, 6, 7], np.float32)), [0, 0, 3, 6, 6])


@pytest.mark.parametrize("x_shape, k, stride, padding", [
    ((2, 3, 8, 8), 2, None, 0), ((1, 4, 9, 11), 3, 2, 1), ((1, 2, 7, 6), 3, 2, "same"), ((1, 1, 5, 5), 3, 1, 1),
])
def test_max_pool_matches_loop_twin(x_shape, k, stride, padding):
    x = rand(*x_shape)
    np.testing.assert_array_equal(layers.max_pool2d(x, k, stride, padding),
                                  layers_loop.max_pool2d(x, k, stride, padding))


def test_max_pool_padding_never_wins():
    x = -np.ones((1, 1, 2, 2), np.float32)
    np.testing.assert_array_equal(layers.max_pool2d(x, 3, 1, 1), -np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("memory", ["nchw", "channels_last"])
def test_global_pools_match_loop_twins(memory):
    x = rand(3, 5, 7, 6)
    x_in = channels_last(x) if memory == "channels_last" else x
    np.testing.assert_allclose(layers.global_avg_pool(x_in), layers_loop.global_avg_pool(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(layers.global_max_pool(x_in), layers_loop.global_max_pool(x))
    assert layers.global_avg_pool(x_in).dtype == np.float32
    two = np.array([[[[1, 2], [3, 6]]]], np.float32)
    assert layers.global_avg_pool(two)[0, 0] == 3.0 and layers.global_max_pool(two)[0, 0] == 6.0


def test_linear_matches_loop_twin():
    x, w, b = rand(4, 7), rand(3, 7), rand(3)
    np.testing.assert_allclose(layers.linear(x, w, b), layers_loop.linear(x, w, b), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(layers.linear(np.array([[1, 2]], np.float32), np.array([[3, 4]], np.float32),
                                                np.array([0.5], np.float32)), [[11.5]])
    with pytest.raises(ValueError, match=r"x must have shape \(N, 7\)"):
        layers.linear(rand(4, 6), w, b)


def test_softmax_matches_loop_twin_and_is_stable():
    s = rand(4, 10) * 10
    np.testing.assert_allclose(layers.softmax(s), layers_loop.softmax(s), rtol=1e-5)
    big = np.array([[1000.0, 1000.0, -1000.0]], np.float32)
    p = layers.softmax(big)
    assert np.all(np.isfinite(p)) and p.dtype == np.float32
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0]])
    scipy_special = pytest.importorskip("scipy.special")
    np.testing.assert_allclose(layers.softmax(s), scipy_special.softmax(s, axis=-1), rtol=1e-5)


def test_float32_is_kept():
    x = rand(1, 3, 8, 8)
    y = layers.conv2d(x, rand(4, 3, 3, 3), rand(4).astype(np.float64), padding="same")
    assert y.dtype == np.float32
    assert layers.batch_norm(x, *(np.ones(3),) * 2, np.zeros(3), np.ones(3), 1e-3).dtype == np.float32


@pytest.mark.parametrize("bad, match", [
    (np.zeros((3, 8, 8), np.float32), r"x must be an array of shape \(N, C, H, W\); got \(3, 8, 8\)"),
    (np.zeros((1, 4, 8, 8), np.float32), r"expects 3 input channels"),
    (np.zeros((1, 3, 1, 1), np.float32), r"a 3x3 window does not fit a padded input of 1x1"),
])
def test_conv2d_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        layers.conv2d(bad, np.zeros((2, 3, 3, 3), np.float32))


def test_conv2d_bad_padding():
    with pytest.raises(ValueError, match="padding must be"):
        layers.conv2d(rand(1, 3, 5, 5), rand(2, 3, 3, 3), padding="valid-ish")


def test_layers_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, b = rand(2, 6, 15, 12), rand(6, 1, 5, 5), rand(6)
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=2, padding=2, groups=6)
    np.testing.assert_allclose(layers.conv2d(x, w, b, 2, 2, 6), ref.numpy(), rtol=1e-5, atol=1e-5)
    w2 = rand(4, 6, 3, 3)
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w2), stride=1, padding=1)
    np.testing.assert_allclose(layers.conv2d(x, w2, None, 1, 1), ref.numpy(), rtol=1e-5, atol=1e-5)
    ref = F.max_pool2d(torch.from_numpy(x), 3, 2, 1)
    np.testing.assert_array_equal(layers.max_pool2d(x, 3, 2, 1), ref.numpy())
