"""Regenerate tests/golden/keras_resnet50.npz: per-stage golden values of Keras' ResNet50.

One command, from the repository root (needs keras and torch)::

    python tests/golden/make_golden_keras.py          # or: --out other/path.npz

The values come from ``keras.applications.ResNet50(weights=None)`` itself (Keras 3,
``KERAS_BACKEND=torch``), run by Keras. No model hub is reachable, and untrained BN layers
(mean 0, variance 1, gamma 1) would leave BN folding untested, so every weight is replaced
by seeded random values made with NumPy alone: ``random_keras_resnet50_state(seed)``, in
Keras' layout (HWIO kernels, Dense (in, out)) and keyed by Keras layer and variable names.
The NumPy test rebuilds the same arrays without keras (their SHA-256 is in the file) and
converts them with ``numpy_cam.io.export.convert_keras_weights``. Nothing here is
imported from ``numpy_cam``.

Inputs (float32 NHWC, the values the network sees after preprocessing; not stored):

- ``uniform224``: ``np.random.default_rng(1).uniform(-128, 128, size=(2, 224, 224, 3))``
- ``uniform97x131`` (odd, non-square): ``np.random.default_rng(2).uniform(-128, 128,
  size=(1, 97, 131, 3))``, both ``.astype(np.float32)``

Stages: stem ("pool1_pool"), conv2 .. conv5 (the last "_out" of each stage), features
(= conv5), logits (the "predictions" Dense before its softmax: avg_pool @ kernel + bias).
Stored in NCHW with the key scheme of ``make_golden.py`` (its ``summarize``: shape, channel
means, 512 seeded positions plus border positions; the logits in full), plus
``<input>/features/gap``. One torch thread: reruns on one machine are bit-identical.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "keras_resnet50.npz"
WEIGHTS_SEED = 0
INPUTS = {"uniform224": (1, (2, 224, 224, 3)), "uniform97x131": (2, (1, 97, 131, 3))}
STAGE_LAYERS = {"stem": "pool1_pool", "conv2": "conv2_block3_out", "conv3": "conv3_block4_out",
                "conv4": "conv4_block6_out", "conv5": "conv5_block3_out", "features": "conv5_block3_out"}
STAGES = (*STAGE_LAYERS, "logits")
INPUT_MS = 128 ** 2 / 3                       # mean square of uniform(-128, 128)


def resnet50_layers():
    """Every Keras ResNet50 layer with weights as (name, kind, shape), in the model's order.

    kind "conv": kernel (kh, kw, in, out) + bias; "bn": 4 vectors of length shape[0];
    "dense": kernel (2048, 1000) + bias.
    """
    layers = [("conv1_conv", "conv", (7, 7, 3, 64)), ("conv1_bn", "bn", (64,))]
    c_in = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), start=2):
        for b in range(1, blocks + 1):
            p, c_out = f"conv{stage}_block{b}", 4 * width
            layers += [(f"{p}_1_conv", "conv", (1, 1, c_in, width)), (f"{p}_1_bn", "bn", (width,)),
                       (f"{p}_2_conv", "conv", (3, 3, width, width)), (f"{p}_2_bn", "bn", (width,))]
            if b == 1:
                layers += [(f"{p}_0_conv", "conv", (1, 1, c_in, c_out)),
                           (f"{p}_3_conv", "conv", (1, 1, width, c_out)),
                           (f"{p}_0_bn", "bn", (c_out,)), (f"{p}_3_bn", "bn", (c_out,))]
            else:
                layers += [(f"{p}_3_conv", "conv", (1, 1, width, c_out)), (f"{p}_3_bn", "bn", (c_out,))]
            c_in = c_out
    return layers + [("predictions", "dense", (2048, 1000))]


def random_keras_resnet50_state(seed=WEIGHTS_SEED):
    """Seeded random ResNet50 weights in Keras' layout: {layer: {variable: float32 array}}.

    Conv kernels He-normal (std sqrt(2 / fan_in)), biases N(0, 0.1); BN gamma U(0.5, 1.5),
    beta N(0, 0.1), moving mean N(0, 0.3 s), moving variance U(0.5, 2) s^2, where
    s^2 = 2 x (mean square of the conv's input) is the He estimate of the conv output's
    variance: a rough running estimate (image: 128^2 / 3; after a BN and a ReLU: 0.5; the
    residual stream: 1 after a projection block, + 0.8 per identity block). The BN layers
    then roughly normalise, and activations stay below about 20 through all 16 blocks.
    """
    rng = np.random.default_rng(seed)
    f32 = np.float32

    def normal(shape, std):
        return rng.standard_normal(shape, dtype=f32) * f32(std)

    def uniform(shape, lo, hi):
        return f32(lo) + rng.random(shape, dtype=f32) * f32(hi - lo)

    state, out_var, stream_ms = {}, {}, 1.0
    for name, kind, shape in resnet50_layers():
        if kind in ("conv", "dense"):
            fan_in = int(np.prod(shape[:-1]))
            std = (2 / fan_in) ** 0.5 if kind == "conv" else fan_in ** -0.5
            state[name] = {"kernel": normal(shape, std), "bias": normal(shape[-1:], 0.1)}
            in_ms = INPUT_MS if name == "conv1_conv" else (
                stream_ms if name.endswith(("_1_conv", "_0_conv")) else 0.5)
            out_var[name[:-len("conv")]] = 2 * in_ms
        else:
            s2 = out_var[name[:-len("bn")]]
            state[name] = {"gamma": uniform(shape, 0.5, 1.5), "beta": normal(shape, 0.1),
                           "moving_mean": normal(shape, 0.3 * s2 ** 0.5),
                           "moving_variance": uniform(shape, 0.5, 2.0) * f32(s2)}
            if name.endswith("_3_bn"):                            # the end of a block
                stream_ms = 1.0 if "_block1_" in name else stream_ms + 0.8
    return state


def state_sha256(state):
    """SHA-256 over the layer and variable names and the little-endian float32 bytes, in order."""
    digest = hashlib.sha256()
    for layer, variables in state.items():
        for variable, array in variables.items():
            digest.update(f"{layer}/{variable}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array, dtype="<f4").tobytes())
    return digest.hexdigest()


def make_input(name):
    seed, shape = INPUTS[name]
    return np.random.default_rng(seed).uniform(-128, 128, size=shape).astype(np.float32)


def keras_facts(model):
    """What the golden values depend on, read from the layer configs (recorded in __info__)."""
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    return {
        "bn_epsilon": sorted({layer.get_config()["epsilon"] for layer in model.layers
                              if type(layer).__name__ == "BatchNormalization"}),
        "conv_use_bias": sorted({layer.get_config()["use_bias"] for layer in convs}),
        "stride_2": [(layer.name, layer.get_config()["kernel_size"][0], layer.get_config()["padding"])
                     for layer in convs if tuple(layer.get_config()["strides"]) == (2, 2)],
        "padding_3x3": sorted({layer.get_config()["padding"] for layer in convs
                               if layer.get_config()["kernel_size"][0] == 3}),
        "zero_padding": {layer.name: layer.get_config()["padding"] for layer in model.layers
                         if type(layer).__name__ == "ZeroPadding2D"},
        "predictions_activation": model.get_layer("predictions").get_config()["activation"],
    }


def to_numpy(keras, y):
    """A Keras tensor as an ndarray (torch's Tensor.__array__ lacks NumPy 2's copy=: it warns)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy", DeprecationWarning)
        return np.array(keras.ops.convert_to_numpy(y))


def run_stages(keras, model, x):
    """{stage: NCHW float array} for one NHWC input, computed by Keras."""
    names = list(dict.fromkeys(STAGE_LAYERS.values())) + ["avg_pool", "predictions"]
    sub = keras.Model(model.input, [model.get_layer(n).output for n in names])
    outs = dict(zip(names, (to_numpy(keras, y) for y in sub(x, training=False))))
    dense = model.get_layer("predictions")
    logits = to_numpy(keras, keras.ops.add(keras.ops.matmul(outs["avg_pool"], dense.kernel), dense.bias))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    assert np.abs(probs / probs.sum(1, keepdims=True) - outs["predictions"]).max() < 1e-5
    stages = {s: outs[layer].transpose(0, 3, 1, 2) for s, layer in STAGE_LAYERS.items()}
    return stages | {"logits": logits, "gap": outs["avg_pool"]}


def build_model(keras, state, dtype, input_shape):
    """ResNet50(weights=None) for one static input size, with ``state`` set into it."""
    keras.config.set_dtype_policy(dtype)                  # (set_floatx alone does not change it)
    model = keras.applications.ResNet50(weights=None, input_shape=input_shape)
    weighted = [layer for layer in model.layers if layer.weights]
    assert [layer.name for layer in weighted] == list(state), "the layer list differs from Keras'"
    for layer in weighted:
        names = [w.name.split("/")[-1] for w in layer.weights]
        assert sorted(names) == sorted(state[layer.name]), (layer.name, names)
        layer.set_weights([state[layer.name][n].astype(dtype) for n in names])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT), help="output file (default tests/golden/keras_resnet50.npz)")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = "torch"
    os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="keras_home_"))
    import torch
    torch.set_num_threads(1)                                  # bit-identical reruns on one machine
    import keras
    sys.path.insert(0, str(HERE))
    from make_golden import sha256_f32, summarize, write_npz

    keras.utils.set_random_seed(0)
    state = random_keras_resnet50_state(WEIGHTS_SEED)
    arrays = {"__inputs__": np.array(list(INPUTS)), "__stages__": np.array(STAGES)}
    info_inputs, max_abs, f64_dev = {}, {}, {}
    for name in INPUTS:
        x = make_input(name)
        model, model64 = (build_model(keras, state, dtype, x.shape[1:]) for dtype in ("float32", "float64"))
        keras.config.set_dtype_policy("float32")
        arrays[f"{name}/x_shape"] = np.array(x.shape, dtype=np.int64)
        arrays[f"{name}/x_sha256"] = np.array(sha256_f32(x))
        stages, stages64 = run_stages(keras, model, x), run_stages(keras, model64, x.astype(np.float64))
        for stage in STAGES:
            arrays.update(summarize(name, stage, stages[stage]))
        arrays[f"{name}/features/gap"] = stages["gap"].astype(np.float32)
        max_abs[name] = {s: float(np.abs(stages[s]).max()) for s in STAGES}
        f64_dev[name] = {s: float(np.abs(stages[s] - stages64[s]).max()) for s in STAGES}
        info_inputs[name] = {"recipe": f"np.random.default_rng({INPUTS[name][0]}).uniform(-128, 128, "
                                       f"size={INPUTS[name][1]}).astype(np.float32)  # NHWC",
                             "sha256": sha256_f32(x),
                             "top5": np.argsort(-stages["logits"], axis=1)[:, :5].tolist()}
    info = {
        "what": "golden values for Keras' ResNet50 (numpy-cam), computed by Keras with seeded weights",
        "regenerate": "python tests/golden/make_golden_keras.py",
        "date": datetime.date.today().isoformat(),
        "versions": {"keras": keras.__version__, "backend": keras.backend.backend(), "torch": torch.__version__,
                     "numpy": np.__version__, "python": platform.python_version(), "torch_threads": 1},
        "weights": {"recipe": f"random_keras_resnet50_state({WEIGHTS_SEED}) in make_golden_keras.py",
                    "sha256": state_sha256(state)},
        "keras_facts": keras_facts(model),
        "inputs": info_inputs, "stages": list(STAGES), "stage_layers": STAGE_LAYERS,
        "max_abs": max_abs, "float32_vs_float64_max_abs_dev": f64_dev,
    }
    arrays["__info__"] = np.array(json.dumps(info, indent=1))
    write_npz(args.out, arrays)
    print(f"wrote {args.out}: {Path(args.out).stat().st_size} bytes, {len(arrays)} arrays")
    print(json.dumps({k: info[k] for k in ("keras_facts", "max_abs", "float32_vs_float64_max_abs_dev")}, indent=1))


if __name__ == "__main__":
    main()
