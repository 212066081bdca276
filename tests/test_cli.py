"""The numpy-cam command: output, JSON, folders, and the bad-input table of the README.

Every bad input gets one line on stderr starting "numpy-cam: error:", exit code 2, no
traceback, and leaves no output file behind.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import numpy_cam
from numpy_cam.io import checkpoint
from numpy_cam.cli import main

COFFEE = numpy_cam.DATA / "coffee.png"
CHELSEA = numpy_cam.DATA / "chelsea.png"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad(capsys, argv, message, out_dir=None):
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("numpy-cam: error: ") and err.count("\n") == 1, err
    assert message in err, err
    if out_dir is not None:
        assert not [p for p in os.listdir(out_dir) if p.endswith(".png") or ".tmp" in p]


def test_prints_top_k_and_writes_the_overlay(capsys, tmp_path):
    code, out, err = run(capsys, COFFEE, "--top-k", "3", "--out", tmp_path)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].endswith("coffee.png") and "967  espresso" in lines[1]
    assert "wrote" in lines[4] and "CAM of 967 espresso" in lines[4] and "box x0,y0,x1,y1 = " in lines[4]
    with Image.open(tmp_path / "coffee_cam.png") as im:
        assert im.size == (600, 400) and im.mode == "RGB"


def test_json_record_and_class_by_name(capsys, tmp_path):
    code, out, _ = run(capsys, CHELSEA, "--json", "--class", "Egyptian cat", "--out", tmp_path,
                       "--threshold", "0.3", "--alpha", "0.6")
    assert code == 0
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["class"]["index"] == 285 and record["classes"][0]["index"] == 282
    assert record["size"] == [451, 300] and record["crop"] == [95, 19, 356, 280]
    x0, y0, x1, y1 = record["bbox"]
    assert 95 <= x0 <= x1 <= 356 and 19 <= y0 <= y1 <= 280
    assert record["output"] == str(tmp_path / "chelsea_cam.png") and os.path.exists(record["output"])
    assert abs(sum(c["probability"] for c in record["classes"]) - 0.93) < 0.02


def test_folder_with_progress_and_input_unchanged(capsys, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for src in (COFFEE, CHELSEA):
        (folder / src.name).write_bytes(src.read_bytes())
    (folder / "notes.txt").write_text("not an image")
    before = {p: hashlib.sha256((folder / p).read_bytes()).hexdigest() for p in os.listdir(folder)}
    code, out, err = run(capsys, folder, "--json", "--out", tmp_path / "out")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["image"] for r in records] == [str(folder / "chelsea.png"), str(folder / "coffee.png")]
    assert "[1/2]" in err and "[2/2]" in err
    assert sorted(os.listdir(tmp_path / "out")) == ["chelsea_cam.png", "coffee_cam.png"]
    assert before == {p: hashlib.sha256((folder / p).read_bytes()).hexdigest() for p in os.listdir(folder)}


# ---- the bad-input table --------------------------------------------------------------


@pytest.fixture
def images(tmp_path):
    """Awkward but valid images, and broken files, made from the bundled photo."""
    d = tmp_path / "images"
    d.mkdir()
    photo = Image.open(CHELSEA).convert("RGB")
    photo.convert("L").save(d / "gray.png")
    photo.convert("RGBA").save(d / "rgba.png")
    photo.convert("P").save(d / "palette.png")
    photo.convert("CMYK").save(d / "cmyk.jpg")
    sixteen = (np.asarray(photo.convert("L"), np.uint16) * 257)
    Image.fromarray(sixteen).save(d / "sixteen.png")
    exif = Image.Exif()
    exif[0x0112] = 6                                          # orientation: rotate 90 degrees clockwise
    photo.save(d / "rotated.jpg", exif=exif)
    Image.new("RGB", (1, 1)).save(d / "tiny.png")
    (d / "empty.png").write_bytes(b"")
    (d / "text.jpg").write_text("this is not a JPEG\n")
    data = CHELSEA.read_bytes()
    (d / "cut.png").write_bytes(data[:len(data) // 2])
    photo.save(d / "full.jpg")
    (d / "cut.jpg").write_bytes((d / "full.jpg").read_bytes()[:3000])
    return d


@pytest.mark.parametrize("name", ["gray.png", "rgba.png", "palette.png", "cmyk.jpg", "sixteen.png"])
def test_image_modes_are_converted_to_rgb(capsys, images, tmp_path, name):
    code, out, err = run(capsys, images / name, "--json", "--out", tmp_path)
    assert code == 0, err
    record = json.loads(out)
    assert record["size"] == [451, 300] and record["bbox"] is not None


def test_exif_orientation_is_respected(capsys, images, tmp_path):
    code, out, _ = run(capsys, images / "rotated.jpg", "--json", "--out", tmp_path)
    assert code == 0 and json.loads(out)["size"] == [300, 451]               # turned upright
    with Image.open(tmp_path / "rotated_cam.png") as im:
        assert im.size == (300, 451)


@pytest.mark.parametrize("name, message", [
    ("empty.png", "empty file (0 bytes)"),
    ("cut.png", "cannot read"),
    ("cut.jpg", "cannot read"),
    ("text.jpg", "cannot identify image file"),
    ("tiny.png", "too small to crop"),
])
def test_broken_images(capsys, images, tmp_path, name, message):
    assert_bad(capsys, [images / name, "--out", tmp_path], message, out_dir=tmp_path)


def test_decompression_bomb_is_refused(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)                   # 451 x 300 is over 2x this
    assert_bad(capsys, [CHELSEA, "--out", tmp_path], "decompression-bomb limit", out_dir=tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)                  # over 1x: a warning, made an error
    assert_bad(capsys, [CHELSEA, "--out", tmp_path], "decompression-bomb limit", out_dir=tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["missing.png"], "missing.png: no such file or folder"),
    ([COFFEE, "--class", "unicorn"], "unknown class name 'unicorn'"),
    ([COFFEE, "--class", "crane"], "ambiguous: it names classes 134 (crane), 517 (crane)"),
    ([COFFEE, "--class", "1000"], "--class must be between 0 and 999; got 1000"),
    ([COFFEE, "--class", "-1"], "--class must be between 0 and 999; got -1"),
    ([COFFEE, "--class", "cran"], "class name 'cran' is ambiguous: it names classes 134 (crane), 517 (crane)"),
    ([COFFEE, "--top-k", "0"], "--top-k must be between 1 and 1000; got 0"),
    ([COFFEE, "--top-k", "1001"], "--top-k must be between 1 and 1000; got 1001"),
    ([COFFEE, "--threshold", "1.5"], "--threshold must be between 0 and 1; got 1.5"),
    ([COFFEE, "--threshold", "-0.1"], "--threshold must be between 0 and 1"),
    ([COFFEE, "--alpha", "2"], "--alpha must be between 0 and 1; got 2.0"),
    ([COFFEE, "--alpha", "nan"], "--alpha must be between 0 and 1; got nan"),
    ([COFFEE, "--alpha", "half"], "--alpha must be a number between 0 and 1; got 'half'"),
    ([COFFEE, "--top-k", "-1"], "--top-k must be between 1 and 1000; got -1"),
    ([COFFEE, "--model", "resnet9000"], "unknown model 'resnet9000'"),
    ([COFFEE, "--top-k", "x"], "invalid int value: 'x'"),
])
def test_bad_arguments(capsys, tmp_path, argv, message):
    assert_bad(capsys, argv + ["--out", tmp_path], message, out_dir=tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["--threshold", "1.5"], "numpy-cam: error: --threshold must be between 0 and 1; got 1.5\n"),
    (["--alpha", "2"], "numpy-cam: error: --alpha must be between 0 and 1; got 2.0\n"),
    (["--top-k", "0"], "numpy-cam: error: --top-k must be between 1 and 1000; got 0\n"),
])
def test_option_messages_are_exactly_the_readme_table(capsys, tmp_path, argv, message):
    """The whole line, not a part: no "argument --alpha: " prefix, no second check's wording."""
    code, out, err = run(capsys, COFFEE, *argv, "--out", tmp_path)
    assert (code, out, err) == (2, "", message)


def test_each_option_is_checked_once(capsys, tmp_path, monkeypatch):
    """--alpha and --threshold are checked by their argparse type, --top-k after the model loads;
    what the command calls below does not check them again."""
    from numpy_cam import _checks
    calls = []
    for name in ("check_unit_interval", "check_int_range"):
        real = getattr(_checks, name)
        def spy(option, value, *rest, real=real):
            calls.append(option)
            return real(option, value, *rest)
        for module in ("numpy_cam.cli", "numpy_cam.explain", "numpy_cam.localize", "numpy_cam.visualize",
                       "numpy_cam.cam", "numpy_cam.models.model"):
            if hasattr(sys.modules[module], name):
                monkeypatch.setattr(f"{module}.{name}", spy)
    code, _, err = run(capsys, COFFEE, "--alpha", "0.4", "--threshold", "0.3", "--top-k", "3", "--out", tmp_path)
    assert code == 0, err
    assert sorted(calls) == ["--alpha", "--threshold", "--top-k"]


def test_version(capsys):
    code, out, err = run(capsys, "--version")
    assert (code, out, err) == (0, f"numpy-cam {numpy_cam.__version__}\n", "")


def test_help_names_the_subcommands(capsys):
    code, out, err = run(capsys, "-h")
    assert code == 0 and err == "" and out.startswith("usage: numpy-cam ")
    lines = out.splitlines()
    for name in ("explain", "export"):
        (line,) = [line for line in lines if line.strip().startswith(f"numpy-cam {name} ")]
        assert len(line.split("  ")) > 1                                     # the command, then what it does
    assert "--version" in out


@pytest.mark.parametrize("subcommand, usage", [("explain", "usage: numpy-cam explain "),
                                               ("export", "usage: numpy-cam export ")])
def test_subcommand_help(capsys, subcommand, usage):
    code, out, err = run(capsys, subcommand, "-h")
    assert code == 0 and err == "" and out.startswith(usage)


def test_folder_without_images(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_bad(capsys, [tmp_path / "empty"], "folder holds no image files")


def test_unwritable_output_folder(capsys, tmp_path, monkeypatch):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert_bad(capsys, [COFFEE, "--out", a_file / "sub"], "cannot create the output folder")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    assert_bad(capsys, [COFFEE, "--out", tmp_path], f"the output folder {tmp_path} is not writable", out_dir=tmp_path)


def test_weights_for_another_architecture(capsys, tmp_path):
    other = tmp_path / "other.npz"
    checkpoint.save_weights(other, {"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)},
                            {"architecture": "inception_v3"})
    assert_bad(capsys, [COFFEE, "--model", other, "--out", tmp_path], "unknown architecture 'inception_v3'")
    wrong = tmp_path / "wrong.npz"
    checkpoint.save_weights(wrong, {"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)},
                            {"architecture": "efficientnet_lite0"})
    assert_bad(capsys, [COFFEE, "--model", wrong, "--out", tmp_path], "missing")


def test_a_failed_write_leaves_no_file(capsys, tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError("disk full")
    monkeypatch.setattr(Image.Image, "save", broken_save)
    assert_bad(capsys, [COFFEE, "--out", tmp_path], "disk full", out_dir=tmp_path)
    assert os.listdir(tmp_path) == []


def test_two_inputs_writing_the_same_file(capsys, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "coffee.png").write_bytes(COFFEE.read_bytes())
    assert_bad(capsys, [COFFEE, tmp_path / "a" / "coffee.png", "--out", tmp_path], "would both write")


def test_console_script_exits_2_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "numpy_cam", str(tmp_path / "nope.jpg")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr == f"numpy-cam: error: {tmp_path / 'nope.jpg'}: no such file or folder\n"


# -- stopping: Ctrl-C, SIGTERM, a closed stdout -------------------------------------------------

def _stop_while_writing(monkeypatch, stop):
    """Make the PNG writer call ``stop()`` halfway through writing its temporary file."""
    original = Image.Image.save

    def save(self, fp, *args, **kwargs):
        fp.write(b"half a PNG")
        stop()
        return original(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)


def _interrupt():
    raise KeyboardInterrupt


@pytest.mark.parametrize("stop, code, line", [
    (_interrupt, 130, "numpy-cam: interrupted\n"),
    (lambda: os.kill(os.getpid(), signal.SIGTERM), 143, "numpy-cam: terminated\n"),
], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_command_with_one_line_and_no_partial_file(capsys, monkeypatch, tmp_path, stop, code,
                                                                      line):
    def guard(signum, frame):                  # if main installed no handler, fail here, not kill pytest
        raise AssertionError("numpy-cam left SIGTERM to the default action")

    before = signal.signal(signal.SIGTERM, guard)
    try:
        _stop_while_writing(monkeypatch, stop)
        assert run(capsys, COFFEE, "--out", tmp_path) == (code, "", line)
        assert os.listdir(tmp_path) == []                                  # the temporary file is gone too
        assert signal.getsignal(signal.SIGTERM) is guard                   # and SIGTERM is as it was
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_closed_stdout_ends_the_command_quietly(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "numpy_cam", str(COFFEE), str(CHELSEA), "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                                                    # `| head -0`: nobody reads
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_method_maps_with_another_member_of_the_family(capsys, tmp_path):
    code, out, err = run(capsys, COFFEE, "--method", "gradcam", "--json", "--out", tmp_path)
    assert code == 0 and err == ""
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["method"] == "gradcam" and record["output"] == str(tmp_path / "coffee_gradcam.png")
    assert os.listdir(tmp_path) == ["coffee_gradcam.png"]
    code, out, _ = run(capsys, COFFEE, "--out", tmp_path)             # CAM, the default, beside it
    assert code == 0 and "CAM of 967 espresso" in out and sorted(os.listdir(tmp_path)) == [
        "coffee_cam.png", "coffee_gradcam.png"]
    code, out, _ = run(capsys, COFFEE, "--method", "gradcam", "--out", tmp_path)
    assert code == 0 and "gradcam of 967 espresso" in out             # its own output, replaced


def test_an_unknown_method_is_one_line(capsys, tmp_path):
    assert_bad(capsys, [COFFEE, "--method", "gradcampp", "--out", tmp_path],
               "argument --method: invalid choice: 'gradcampp' (choose from ", tmp_path)


def test_class_by_prefix_through_the_apis_resolver(capsys, tmp_path):
    """--class goes through numpy_cam.cam.resolve_class, the one resolver the API uses too."""
    import numpy_cam.cam
    import numpy_cam.cli
    assert numpy_cam.cli.resolve_class is numpy_cam.cam.resolve_class
    code, out, _ = run(capsys, CHELSEA, "--json", "--class", "egypt", "--out", tmp_path)
    assert code == 0 and json.loads(out)["class"]["index"] == 285
