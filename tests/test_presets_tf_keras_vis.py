"""The "tf-keras-vis" preset against tf-keras-vis itself: its Gradcam on a tf.keras copy of the
shipped small_gap net, whose maps the preset must give from this project's raw Grad-CAM map,
ReLU(M_c) / (h w) (M_c from the NumPy engine).

tf-keras-vis needs TensorFlow's Keras, while the test session may have imported Keras on the
torch backend, so the peer runs in a subprocess of its own with ``KERAS_BACKEND=tensorflow``
(``run_gradcam``, which imports nothing from numpy_cam). Skipped unless ``tensorflow`` and
``tf_keras_vis`` are installed: ``pip install tensorflow-cpu==2.21.0 tf-keras-vis==0.8.7``.
"""
import importlib.util
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import numpy_cam
from numpy_cam.cam import class_activation_map
from numpy_cam.io.checkpoint import load_weights
from numpy_cam.models import small
from numpy_cam.presets import postprocess

TOLERANCE = 1e-5                     # the bound for a peer's float output
PHOTOS = ("coffee.png", "chelsea.png")
SIZE = (70, 90)                      # (H, W): features 18 x 23, so zoom factors 3.89 and 3.91


def run_gradcam(arrays_path, out_path):
    """The peer's side, run in a subprocess: build the tf.keras net from ``arrays_path`` (x NHWC,
    the folded conv weights, fc), run tf_keras_vis.gradcam.Gradcam with its defaults for class
    ``classes[n]`` of image n, save its (N, H, W) maps to ``out_path``."""
    import keras
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.scores import CategoricalScore

    arrays = np.load(arrays_path, allow_pickle=False)
    x, strides = arrays["x"], arrays["strides"]
    layers = [keras.Input(x.shape[1:])]
    for i, stride in enumerate(strides):                # PyTorch's padding 1 on both sides, then 'valid'
        layers += [keras.layers.ZeroPadding2D(1),
                   keras.layers.Conv2D(arrays[f"b{i}"].shape[0], 3, strides=int(stride), activation="relu")]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(arrays["fc_bias"].shape[0])]
    model = keras.Sequential(layers)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    for i, conv in enumerate(convs):
        conv.set_weights([arrays[f"w{i}"].transpose(2, 3, 1, 0), arrays[f"b{i}"]])   # OIHW -> HWIO
    model.layers[-1].set_weights([arrays["fc_weight"].T, arrays["fc_bias"]])
    cam = Gradcam(model)(CategoricalScore(arrays["classes"].tolist()), x)             # (N, H, W)
    np.save(out_path, np.asarray(cam))


@pytest.fixture(scope="module")
def small_gap_inputs():
    """x (2, 3, H, W) of the two photos at SIZE, as small_gap preprocesses (rgb - 127.5) / 127.5."""
    images = []
    for name in PHOTOS:
        with Image.open(numpy_cam.DATA / name) as photo:
            images.append(np.asarray(photo.convert("RGB").resize(SIZE[::-1], Image.Resampling.BILINEAR)))
    return ((np.stack(images).astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)  # (2, 3, H, W)


def test_tf_keras_vis_gradcam(small_gap_inputs, tmp_path):
    for module in ("tensorflow", "tf_keras_vis"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    arrays, _ = load_weights(numpy_cam.DATA / "small_gap_seed0.npz")
    params = small.fold_params(arrays)                                               # [(w, b)] * 5
    model = numpy_cam.load_model("small_gap")
    x = small_gap_inputs
    ranked = np.argsort(-model.classify(model.features(x)), axis=1)                  # (2, 6), best first
    classes = ranked[[0, 1], [0, 1]]                                                 # image 0's top-1, image 1's top-2
    cam = class_activation_map(model.features(x), model.fc_weight, classes.tolist())  # (2, 18, 23), M_c
    raw = np.maximum(cam, 0) / (cam.shape[1] * cam.shape[2])                          # Grad-CAM on GAP
    ours = postprocess(raw, SIZE, "tf-keras-vis")                                     # (2, 70, 90)

    inputs = {f"w{i}": w for i, (w, _) in enumerate(params)} | {f"b{i}": b for i, (_, b) in enumerate(params)}
    np.savez(tmp_path / "net.npz", x=x.transpose(0, 2, 3, 1), strides=np.array(small.STRIDES),
             fc_weight=model.fc_weight, fc_bias=model.fc_bias, classes=classes, **inputs)
    here = pathlib.Path(__file__).resolve().parent
    script = (f"import sys; sys.path.insert(0, {str(here)!r}); import test_presets_tf_keras_vis as t; "
              f"t.run_gradcam({str(tmp_path / 'net.npz')!r}, {str(tmp_path / 'theirs.npy')!r})")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = np.load(tmp_path / "theirs.npy")                                         # (2, 70, 90)
    assert theirs.shape == ours.shape
    assert np.abs(ours - theirs).max() <= TOLERANCE
