"""The one tolerance rule of tests/golden_check.py: what it measures, and the real bugs it catches.

Each bug below is injected into the NumPy port (monkeypatch), the port is run on a golden
input, and the golden check must pass every stage before the bug and fail at the stage where
it happens. The bugs are the smallest plausible ones measured (CONTRIBUTING.md, "Tolerance"):
another framework's BN epsilon, TF "SAME" padding where PyTorch pads symmetrically and back,
the odd padding pixel on the wrong side. Padding bugs need an even input size: at an odd one
"SAME" pads symmetrically anyway.
"""
import functools
import re
from collections import namedtuple

import numpy as np
import pytest
import test_efficientnet_lite
import test_keras_resnet
import test_resnet
import test_small_models
from golden_check import TAU, assert_matches_golden, assert_within_tau, relative_error, stage_errors

import numpy_cam
from numpy_cam import layers
from numpy_cam.models import efficientnet_lite, keras_resnet, resnet, small

Bug = namedtuple("Bug", "model input what inject stage")


def lite(name, input_name):
    """The golden of EfficientNet-Lite ``name``, the key prefix of ``input_name``, and the port's stages."""
    t = test_efficientnet_lite
    if not t.installed(name):
        pytest.skip(f"{t.BUILTIN[name]['package']} is not installed ({t.BUILTIN[name]['install']})")
    model = numpy_cam.load_model(name)                                # BN folded now, with the current eps
    x = t.golden_input(name, input_name) if input_name in t.UNIFORM_INPUTS else model.preprocess(
        t.DATA / f"{input_name}.png")
    return t.golden(name)[0], input_name, model.stages(x)


def lite0(input_name):
    return lite("efficientnet_lite0", input_name)


def lite1(input_name):
    return lite("efficientnet_lite1", input_name)


def resnet18(input_name):
    t = test_resnet
    return t.GOLDEN, f"resnet18/{input_name}", t.run_stages(18, t.state_dict(18), t.golden_input(input_name))


@functools.cache
def keras_state():
    t = test_keras_resnet
    return t.make_golden_keras.random_keras_resnet50_state(t.make_golden_keras.WEIGHTS_SEED)


def keras_resnet50(input_name):
    t = test_keras_resnet
    model = t.numpy_model(t.convert_keras_weights(keras_state()))     # BN folded now, with the current eps
    return t.GOLDEN, input_name, t.numpy_stages(model, t.make_golden_keras.make_input(input_name))


def small_gap(input_name):
    x = test_small_models.golden_inputs()[input_name]
    return test_small_models.GOLDEN, f"small_gap_seed0/{input_name}", numpy_cam.load_model("small_gap").stages(x)


def wrong_eps(module, eps, where=""):
    """Fold the BNs of the convs whose name starts with ``where`` with ``eps``."""
    real = module.folded_conv

    def folded_conv(state_dict, conv, bn, right_eps, **kwargs):
        return real(state_dict, conv, bn, eps if conv.startswith(where) else right_eps, **kwargs)
    return lambda monkeypatch: monkeypatch.setattr(module, "folded_conv", folded_conv)


def lite_stage_prefix(stage):
    """The conv-name prefixes of Lite0's blocks of ``stage`` (1-based)."""
    blocks = efficientnet_lite.EFFICIENTNET_LITE["efficientnet_lite0"].blocks
    return tuple(f"_blocks.{i}." for i, block in enumerate(blocks) if block.stage == stage - 1)


def same_at_stride_2(module, kernel=None):
    """TF "SAME" padding instead of the given one in ``module``'s stride-2 convs (of this kernel size)."""
    real = module.conv2d

    def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
        if stride == 2 and kernel in (None, weight.shape[-1]):
            padding = "same"
        return real(x, weight, bias, stride=stride, padding=padding, groups=groups)
    return lambda monkeypatch: monkeypatch.setattr(module, "conv2d", conv2d)


def tf_same_changed(pads):
    """Replace TF "SAME" padding (the odd pixel after) by ``pads(total)`` -> (before, after)."""
    real = layers.same_padding

    def same_padding(size, kernel, stride):
        before, after = real(size, kernel, stride)
        return pads(before + after, kernel)
    return lambda monkeypatch: monkeypatch.setattr(layers, "same_padding", same_padding)


BUGS = [
    Bug(lite0, "uniform225x301", "BN eps 1e-5 (PyTorch's) for 1e-3", wrong_eps(efficientnet_lite, 1e-5), "stem"),
    Bug(lite1, "chelsea", "BN eps 1e-5 (PyTorch's) for 1e-3", wrong_eps(efficientnet_lite, 1e-5), "stem"),  # smallest
    Bug(lite0, "uniform225x301", "BN eps 1e-5 in stage4 only",
        wrong_eps(efficientnet_lite, 1e-5, lite_stage_prefix(4)), "stage4"),
    Bug(lite0, "uniform224", "symmetric k // 2 padding for TF SAME", tf_same_changed(lambda t, k: (k // 2, k // 2)),
        "stem"),
    Bug(lite0, "uniform224", "the odd SAME pixel before, not after", tf_same_changed(lambda t, k: (t - t // 2, t // 2)),
        "stem"),
    Bug(resnet18, "uniform97x131", "BN eps 1e-3 (Keras') for 1e-5", wrong_eps(resnet, 1e-3), "stem"),
    Bug(resnet18, "uniform97x131", "BN eps 1e-3 in layer3 only", wrong_eps(resnet, 1e-3, "layer3."), "layer3"),
    Bug(resnet18, "uniform224", "TF SAME padding in the stride-2 stem", same_at_stride_2(resnet, 7), "stem"),
    Bug(resnet18, "uniform224", "TF SAME padding in the stride-2 3x3 convs", same_at_stride_2(resnet, 3), "layer2"),
    Bug(keras_resnet50, "uniform97x131", "BN eps 1e-3 (Keras' default) for 1.001e-5", wrong_eps(keras_resnet, 1e-3),
        "conv2"),                                   # the stem's BN variances are ~1e4: eps does not matter there
    Bug(keras_resnet50, "uniform224", "TF SAME padding in the stride-2 stem", same_at_stride_2(keras_resnet), "stem"),
    Bug(small_gap, "uniform64x80", "BN eps 1e-3 for 1e-5", wrong_eps(small, 1e-3), "conv1"),
    Bug(small_gap, "synthetic", "TF SAME padding in the stride-2 convs", same_at_stride_2(small), "conv2"),
]


def worst_errors(golden, prefix, stages):
    """stage -> the largest relative error of its golden arrays; logits and unstored stages left out."""
    return {s: max(stage_errors(golden, f"{prefix}/{s}", y).values()) for s, y in stages.items()
            if f"{prefix}/{s}/idx" in golden}


@pytest.mark.parametrize("bug", BUGS, ids=[f"{b.model.__name__}-{b.what}" for b in BUGS])
def test_a_real_bug_fails_the_golden_check_where_it_happens(monkeypatch, bug):
    bug.inject(monkeypatch)
    golden, prefix, stages = bug.model(bug.input)
    errors = worst_errors(golden, prefix, stages)
    first = next(s for s, e in errors.items() if e > TAU)
    assert first == bug.stage, errors
    assert errors[bug.stage] > 2 * TAU, errors           # caught with a margin, not by a hair
    with pytest.raises(AssertionError, match=f"{prefix}/{bug.stage}/"):
        assert_matches_golden(golden, f"{prefix}/{bug.stage}", stages[bug.stage])


def test_each_golden_array_has_its_own_scale():
    golden = {"k/shape": np.array([1, 2, 1, 2]), "k/idx": np.array([0, 3]),
              "k/val": np.array([100.0, -50.0], np.float32), "k/channel_mean": np.array([0.5, 0.25])}
    y = np.array([100.0, 0.0, 0.0, -50.0], np.float32).reshape(1, 2, 1, 2)   # means 50, -25: far off
    assert stage_errors(golden, "k", y) == {"val": 0.0, "channel_mean": pytest.approx(49.5 / 0.5)}
    golden["k/channel_mean"] = y.mean(axis=(0, 2, 3), dtype=np.float64)
    golden["k/val"] = np.array([100.0, -50.0 + 99 * TAU], np.float32)       # an error of 0.99 TAU * 100
    assert_matches_golden(golden, "k", y)
    golden["k/val"] = np.array([100.0, -50.0 + 101 * TAU], np.float32)      # 1.01 TAU * 100
    with pytest.raises(AssertionError, match=re.escape(f"k/val: max |port - golden| = {1.01 * TAU:.3g} * S > TAU")):
        assert_matches_golden(golden, "k", y)


def test_relative_error_and_its_edge_cases():
    assert relative_error([1.0, -4.0], [1.0, -4.0]) == 0.0
    assert relative_error([1.0, -4.002], [1.0, -4.0]) == pytest.approx(5e-4)
    assert relative_error([0.0, 1e-30], [0.0, 0.0]) == np.inf        # an all-zero golden is matched exactly
    assert_within_tau(np.zeros(3), np.zeros(3), "zeros")
    with pytest.raises(AssertionError, match="logits: max"):
        assert_within_tau([2.0, 10.0], [2.0, 10.0 - 20 * TAU], "logits")


def test_the_port_dtype_and_shape_are_compared_exactly():
    golden = {"k/shape": np.array([1, 1, 1, 2]), "k/idx": np.array([0]), "k/val": np.array([1.0], np.float32),
              "k/channel_mean": np.array([1.0])}
    with pytest.raises(AssertionError, match="k: dtype float64, expected float32"):
        assert_matches_golden(golden, "k", np.ones((1, 1, 1, 2)))
    with pytest.raises(AssertionError, match=r"k: shape \(1, 1, 2, 1\), golden \(1, 1, 1, 2\)"):
        assert_matches_golden(golden, "k", np.ones((1, 1, 2, 1), np.float32))
