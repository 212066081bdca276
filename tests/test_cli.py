"""The numpy-cam command: top-k output, and one line on stderr with exit code 2 for bad input."""
import pathlib
import subprocess
import sys

import pytest

from numpy_cam.cli import main

DATA = pathlib.Path(__file__).parent.parent / "numpy_cam" / "data"


def test_prints_top_k(capsys):
    assert main([str(DATA / "coffee.png"), "--top-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("coffee.png") and len(out) == 4
    assert "967  espresso" in out[1] and out[1].strip().startswith("95.")


@pytest.mark.parametrize("argv, message", [
    (["missing.png"], "missing.png: no such file"),
    ([str(DATA / "coffee.png"), "--top-k", "0"], "--top-k must be between 1 and 1000; got 0"),
    ([str(DATA / "coffee.png"), "--model", "nope"], "unknown model 'nope'"),
    ([str(pathlib.Path(__file__))], "cannot read"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("numpy-cam: error: ") and message in err


def test_usage_error_exit_2_without_traceback():
    out = subprocess.run([sys.executable, "-m", "numpy_cam", "--top-k", "x", "a.png"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("numpy-cam: error:")
