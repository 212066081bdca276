"""numpy-cam explain: one figure of every step, for both bundled photos."""
import numpy as np
import pytest
from PIL import Image

import numpy_cam
from numpy_cam.cli import main
from numpy_cam.explain import explain_figure


@pytest.mark.parametrize("photo, top1", [("coffee.png", {967}), ("chelsea.png", {281, 282, 285})])
def test_explain_writes_the_figure_for_both_photos(tmp_path, capsys, photo, top1):
    out = tmp_path / "fig.png"
    assert main(["explain", str(numpy_cam.DATA / photo), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: class ") and "mean(M_c) + b_c" in printed
    assert int(printed[len(f"wrote {out}: class "):].split()[0]) in top1
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.width > 1000 and im.height > 500


def test_the_figure_shows_the_identity_and_the_largest_terms():
    model = numpy_cam.load_model()
    figure, numbers = explain_figure(model, numpy_cam.DATA / "coffee.png")
    assert figure.dtype == np.uint8 and figure.ndim == 3
    assert numbers["class"] == 967 and abs(numbers["logit"] - numbers["mean_cam_plus_bias"]) < 1e-4
    terms = [t for _, _, t in numbers["weights"]]
    assert terms == sorted(terms, reverse=True) and len(terms) == 6


@pytest.mark.parametrize("argv, message", [
    (["missing.png"], "missing.png: no such file"),
    ([str(numpy_cam.DATA / "coffee.png"), "--class", "unicorn"], "unknown class name 'unicorn'"),
])
def test_explain_bad_input(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["explain"] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("numpy-cam: error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
