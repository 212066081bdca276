"""What the numpy-cam command reads and writes: whatever a user's disk holds.

The tool writes only files it created (its PNGs carry ``_outputs.MARK``), never an input and
never anything that is not a regular file; it reads only regular files; every refusal is one
line on stderr, exit code 2, before the model is loaded, and changes nothing on the disk.
Also: --top-k's default for small heads, non-finite scores, export's --classes, names that
start with a dash, and the extensions a folder scan takes.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import numpy_cam
import numpy_cam.models
from numpy_cam import _outputs
from numpy_cam.cli import main
from numpy_cam.io import checkpoint
from numpy_cam.io.image import read_png_text

COFFEE = numpy_cam.DATA / "coffee.png"
CHELSEA = numpy_cam.DATA / "chelsea.png"
SMALL = ["--model", "small_gap"]                            # 64 x 64 inputs: fast
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
needs_links = pytest.mark.skipif(os.name != "posix", reason="symbolic and hard links need a POSIX system")
needs_devnull = pytest.mark.skipif(not os.path.exists("/dev/null") or os.name != "posix", reason="no /dev/null")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder):
    """Every entry under ``folder``: name -> bytes (files), or its kind (anything else)."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            regular = os.path.isfile(path) and not os.path.islink(path)
            found[os.path.relpath(path, folder)] = Path(path).read_bytes() if regular else os.lstat(path).st_mode
    return found


@pytest.fixture
def no_model(monkeypatch):
    """Refusals come before any work: loading the model fails the test."""
    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the paths were checked")
    monkeypatch.setattr(numpy_cam.models, "load_model", load_model)


def assert_refused(capsys, tmp_path, argv, line):
    """Exit 2, exactly ``line`` on stderr, nothing on stdout, nothing under tmp_path changed."""
    before = snapshot(tmp_path)
    assert run(capsys, *argv) == (2, "", f"numpy-cam: error: {line}\n")
    assert snapshot(tmp_path) == before


@pytest.fixture
def photo(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "x.png").write_bytes(COFFEE.read_bytes())
    return d / "x.png"


# ---- the tool never replaces an input or a file it did not write ------------------------------

def test_a_users_photo_named_like_an_output_is_never_overwritten(capsys, tmp_path, photo, no_model):
    """The issue's case: d holds x.png and the user's own photo x_cam.png; numpy-cam d --out d."""
    d = photo.parent
    (d / "x_cam.png").write_bytes(CHELSEA.read_bytes())
    assert_refused(capsys, tmp_path, [d, "--out", d],
                   f"{d / 'x_cam.png'} (the output of {d / 'x.png'}) is also an input of this run; "
                   "numpy-cam never replaces an input: choose another --out")


def test_an_existing_file_numpy_cam_did_not_write_is_refused(capsys, tmp_path, photo, no_model):
    out = tmp_path / "out"
    out.mkdir()
    Image.open(CHELSEA).save(out / "x_cam.png")             # a PNG, but not one numpy-cam wrote
    assert_refused(capsys, tmp_path, [photo, "--out", out],
                   f"{out / 'x_cam.png'} exists and was not written by numpy-cam; move it or choose another --out")
    (out / "x_cam.png").write_text("my notes")              # nor any other file
    assert_refused(capsys, tmp_path, [photo, "--out", out],
                   f"{out / 'x_cam.png'} exists and was not written by numpy-cam; move it or choose another --out")


def test_a_second_run_into_the_input_folder_skips_its_own_outputs(capsys, photo):
    d = photo.parent
    code, out, err = run(capsys, d, "--out", d, "--json", *SMALL)
    assert code == 0 and err == "" and [json.loads(line)["image"] for line in out.splitlines()] == [str(photo)]
    assert read_png_text(d / "x_cam.png") == _outputs.MARK
    code, out, err = run(capsys, d, "--out", d, "--json", *SMALL)            # the overlay is ours: replaced
    assert code == 0 and [json.loads(line)["image"] for line in out.splitlines()] == [str(photo)]
    assert err == f"numpy-cam: {d}: skipped 1 PNG file that numpy-cam wrote (its own outputs)\n"
    assert sorted(os.listdir(d)) == ["x.png", "x_cam.png"]
    code, out, err = run(capsys, d / "x_cam.png", "--out", d / "again", *SMALL)   # named: processed
    assert code == 0 and os.path.exists(d / "again" / "x_cam_cam.png"), err


def test_a_folder_holding_only_numpy_cams_outputs(capsys, tmp_path, photo, no_model):
    d = photo.parent
    os.remove(photo)
    Image.open(COFFEE).save(d / "x_cam.png", pnginfo=_png_info(_outputs.MARK))
    assert_refused(capsys, tmp_path, [d], f"{d}: folder holds no image files but 1 that numpy-cam wrote "
                   "(skipped: they are its outputs); name a file to process it")


def _png_info(text):
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    return info


def test_explain_never_replaces_its_input(capsys, tmp_path, photo, no_model):
    assert_refused(capsys, tmp_path, ["explain", photo, "--out", photo],
                   f"{photo} (--out) is also an input of this run; numpy-cam never replaces an input: "
                   "choose another --out")


@needs_links
def test_the_same_file_under_another_name_is_an_input(capsys, tmp_path, photo, monkeypatch, no_model):
    monkeypatch.chdir(photo.parent)
    assert_refused(capsys, tmp_path, ["explain", "x.png", "--out", "./x.png"],
                   "./x.png (--out) is also an input of this run; numpy-cam never replaces an input: "
                   "choose another --out")
    os.link("x.png", "hard.png")
    assert_refused(capsys, tmp_path, ["explain", "x.png", "--out", "hard.png"],
                   "hard.png (--out) is the input x.png (the same file); numpy-cam never replaces an input: "
                   "choose another --out")
    os.symlink("x.png", "soft.png")
    assert_refused(capsys, tmp_path, ["explain", "x.png", "--out", "soft.png"],
                   "soft.png (--out) is the input x.png (the same file); numpy-cam never replaces an input: "
                   "choose another --out")
    Image.open(COFFEE).save("ours.png", pnginfo=_png_info(_outputs.MARK))   # even a link to numpy-cam's own PNG
    os.symlink("ours.png", "x_cam.png")
    assert_refused(capsys, tmp_path, ["x.png", "--out", "."],
                   "./x_cam.png (the output of x.png) is a symbolic link to 'ours.png'; numpy-cam writes only "
                   "regular files: remove it or choose another --out")


def test_export_never_replaces_its_input(capsys, tmp_path, monkeypatch, no_model):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.pt").write_bytes(b"a checkpoint")
    (tmp_path / "names.txt").write_text("cat\ndog\n")
    assert_refused(capsys, tmp_path, ["export", "a.pt", "--arch", "resnet18", "--out", "a.pt"],
                   "a.pt (--out) is also an input of this run; numpy-cam never replaces an input: choose another --out")
    assert_refused(capsys, tmp_path, ["export", "a.pt", "--arch", "resnet18", "--classes", "names.txt",
                                      "--out", "names.txt"],
                   "names.txt (--out) is also an input of this run; numpy-cam never replaces an input: "
                   "choose another --out")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))                          # an .npz, not ours
    assert_refused(capsys, tmp_path, ["export", "a.pt", "--arch", "resnet18", "--out", "other.npz"],
                   "other.npz exists and was not written by numpy-cam; move it or choose another --out")


@needs_links
def test_the_model_file_is_an_input(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(numpy_cam.DATA / "small_gap_seed0.npz", "x_cam.png")          # a weights file named x_cam.png
    (tmp_path / "x.png").write_bytes(COFFEE.read_bytes())
    assert_refused(capsys, tmp_path, ["x.png", "--model", "x_cam.png", "--out", "."],
                   "./x_cam.png (the output of x.png) is also an input of this run; numpy-cam never "
                   "replaces an input: choose another --out")


def test_replacing_what_numpy_cam_wrote(capsys, tmp_path, photo):
    out = tmp_path / "fig.png"
    for _ in range(2):                                       # the second run replaces the first's figure
        code, printed, err = run(capsys, "explain", photo, "--out", out, *SMALL)
        assert code == 0, err
    assert read_png_text(out) == _outputs.MARK


@needs_devnull
def test_a_device_is_never_replaced(capsys, tmp_path, photo, no_model):
    assert_refused(capsys, tmp_path, [photo, "--out", "/dev/null"],
                   "--out /dev/null is a character device, not a folder")
    line = "/dev/null (--out) is a character device; numpy-cam writes only regular files: choose another --out"
    assert_refused(capsys, tmp_path, ["explain", photo, "--out", "/dev/null"], line)
    (tmp_path / "a.pt").write_bytes(b"a checkpoint")
    assert_refused(capsys, tmp_path, ["export", tmp_path / "a.pt", "--arch", "resnet18", "--out", "/dev/null"], line)
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


@needs_fifo
def test_a_fifo_a_socket_or_a_folder_is_never_replaced(capsys, tmp_path, photo, monkeypatch, no_model):
    monkeypatch.chdir(tmp_path)
    os.mkfifo("fifo.png")
    assert_refused(capsys, tmp_path, ["explain", photo, "--out", "fifo.png"],
                   "fifo.png (--out) is a pipe (FIFO); numpy-cam writes only regular files: choose another --out")
    os.mkfifo("x_cam.png")
    assert_refused(capsys, tmp_path, [photo, "--out", "."],
                   f"./x_cam.png (the output of {photo}) is a pipe (FIFO); numpy-cam writes only regular files: "
                   "choose another --out")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("sock.png")
        assert_refused(capsys, tmp_path, ["explain", photo, "--out", "sock.png"],
                       "sock.png (--out) is a socket; numpy-cam writes only regular files: choose another --out")
    os.mkdir("folder.png")
    assert_refused(capsys, tmp_path, ["explain", photo, "--out", "folder.png"],
                   "folder.png (--out) is a folder; numpy-cam writes only regular files: choose another --out")


@needs_links
def test_a_broken_symlink_or_an_empty_out(capsys, tmp_path, photo, monkeypatch, no_model):
    monkeypatch.chdir(tmp_path)
    os.symlink("nowhere", "gone")
    assert_refused(capsys, tmp_path, [photo, "--out", "gone"],
                   "--out gone is a symbolic link to 'nowhere', which does not exist; expected a folder")
    assert_refused(capsys, tmp_path, ["explain", photo, "--out", "gone"],
                   "gone (--out) is a symbolic link to 'nowhere', which does not exist; numpy-cam writes only "
                   "regular files: remove it or choose another --out")
    assert_refused(capsys, tmp_path, [photo, "--out", photo], f"--out {photo} is a regular file, not a folder")
    assert_refused(capsys, tmp_path, ["explain", photo, "--out", "no/fig.png"],
                   "no/fig.png (--out): the folder no does not exist")
    assert_refused(capsys, tmp_path, ["export", photo, "--arch", "resnet18", "--out", "no/r.npz"],
                   "no/r.npz (--out): the folder no does not exist")
    assert_refused(capsys, tmp_path, [photo, "--out", ""],
                   "--out is an empty string; expected a folder (default: the current folder)")
    assert_refused(capsys, tmp_path, ["explain", photo, "--out", ""], "--out is an empty string; expected a file name")
    assert_refused(capsys, tmp_path, ["export", photo, "--arch", "resnet18", "--out", ""],
                   "--out is an empty string; expected a file name")


def test_an_output_name_over_the_file_name_limit(capsys, tmp_path, no_model):
    limit = _outputs.name_limit(str(tmp_path))
    long = tmp_path / ("a" * (limit - 4) + ".png")           # a legal input name, just within the limit
    long.write_bytes(COFFEE.read_bytes())
    out = tmp_path / ("a" * (limit - 4) + "_cam.png")
    assert_refused(capsys, tmp_path, [long, "--out", tmp_path],
                   f"{out} (the output of {long}): the name is {limit + 4} bytes, over the file-name limit of "
                   f"{limit} bytes; choose a shorter name")


# ---- inputs: only regular files are read -----------------------------------------------------

@needs_fifo
def test_a_fifo_as_input_is_refused_and_never_opened(capsys, tmp_path, photo, monkeypatch, no_model):
    monkeypatch.chdir(tmp_path)
    os.mkfifo("pipe.png")                                    # opening it would wait for a writer forever
    assert_refused(capsys, tmp_path, ["pipe.png"], "pipe.png: a pipe (FIFO), not a regular file or a folder; "
                   "numpy-cam reads only regular files (save a stream to a file first)")
    assert_refused(capsys, tmp_path, ["explain", "pipe.png"], "pipe.png: a pipe (FIFO), not a regular file; "
                   "numpy-cam reads only regular files (save a stream to a file first)")
    assert_refused(capsys, tmp_path, [photo, "--model", "pipe.png"], "pipe.png: a pipe (FIFO), not a regular file; "
                   "numpy-cam reads only regular files (save a stream to a file first)")
    assert_refused(capsys, tmp_path, ["export", "pipe.png", "--arch", "resnet18", "--out", "r.npz"],
                   "pipe.png: a pipe (FIFO), not a regular file; numpy-cam reads only regular files "
                   "(save a stream to a file first)")
    (tmp_path / "a.pt").write_bytes(b"a checkpoint")
    assert_refused(capsys, tmp_path, ["export", "a.pt", "--arch", "resnet18", "--classes", "pipe.png", "--out",
                                      "r.npz"], "pipe.png: a pipe (FIFO), not a regular file; numpy-cam reads only "
                   "regular files (save a stream to a file first)")


@needs_fifo
def test_a_folder_scan_skips_fifos_and_non_images(capsys, tmp_path, photo):
    d = photo.parent
    os.mkfifo(d / "pipe.png")
    (d / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n")       # Pillow identifies HDF5 but cannot decode it
    Image.open(CHELSEA).save(d / "y.jfif", format="JPEG")    # a JPEG extension the old fixed list missed
    code, out, err = run(capsys, d, "--json", "--out", tmp_path / "out", *SMALL)
    assert code == 0, err
    assert [json.loads(line)["image"] for line in out.splitlines()] == [str(d / "x.png"), str(d / "y.jfif")]


def test_the_folder_scan_takes_what_pillow_decodes():
    suffixes = _outputs.image_suffixes()
    assert suffixes[:len(_outputs.COMMON_SUFFIXES)] == _outputs.COMMON_SUFFIXES
    registered = Image.registered_extensions()                 # QOI came with Pillow 9.5: skip what is absent
    for ext in (".bmp", ".gif", ".tiff", ".ppm", ".pgm", ".jfif", ".qoi", ".tga", ".ico", ".apng"):
        assert ext in suffixes or ext not in registered, ext
    assert ".jfif" in suffixes and ".tiff" in suffixes
    for ext in (".h5", ".hdf", ".grib", ".bufr", ".wmf", ".mpg", ".pdf", ".npz", ".txt"):
        assert ext not in suffixes, ext                      # stubs, header readers, save-only, not images


@needs_devnull
def test_a_device_as_input(capsys, tmp_path, no_model):
    assert_refused(capsys, tmp_path, ["/dev/null"], "/dev/null: a character device, not a regular file or a folder; "
                   "numpy-cam reads only regular files (save a stream to a file first)")


@pytest.mark.skipif(not os.path.exists("/dev/stdin"), reason="no /dev/stdin")
def test_dev_stdin_redirected_from_a_file_works_and_a_pipe_gets_one_line(tmp_path):
    command = [sys.executable, "-m", "numpy_cam", "/dev/stdin", "--json", "--out", str(tmp_path), *SMALL]
    with open(COFFEE, "rb") as photo:
        done = subprocess.run(command, stdin=photo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == str(tmp_path / "stdin_cam.png")
    done = subprocess.run(command, input=COFFEE.read_bytes()[:1000], capture_output=True, timeout=300)
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode() == ("numpy-cam: error: /dev/stdin: a pipe (FIFO), not a regular file or a folder; "
                                    "numpy-cam reads only regular files (save a stream to a file first)\n")


@needs_links
def test_broken_symlink_empty_name_and_unlistable_folder(capsys, tmp_path, monkeypatch, no_model):
    monkeypatch.chdir(tmp_path)
    os.symlink("gone.png", "x.png")
    assert_refused(capsys, tmp_path, ["x.png"], "x.png: a symbolic link to 'gone.png', which does not exist")
    assert_refused(capsys, tmp_path, [""], "IMAGE is an empty string; expected a file name")
    os.mkdir("folder.png")
    assert_refused(capsys, tmp_path, ["explain", "folder.png"], "folder.png: a folder, not a regular file")
    os.mkdir("locked")
    real_listdir = os.listdir

    def listdir(path="."):                                   # as for a folder without read permission
        if os.fspath(path) == "locked":                      # (chmod would not stop root)
            raise PermissionError(13, "Permission denied", path)
        return real_listdir(path)
    monkeypatch.setattr(os, "listdir", listdir)
    assert_refused(capsys, tmp_path, ["locked"], "locked: cannot list the folder (Permission denied)")


def test_a_name_that_starts_with_a_dash(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-x.png").write_bytes(COFFEE.read_bytes())
    hint = "-x.png is read as an option; to give the file -x.png, put it after --: numpy-cam [options] -- -x.png"
    assert_refused(capsys, tmp_path, ["-x.png"], hint)
    assert_refused(capsys, tmp_path, [COFFEE, "-x.png"], hint)
    assert_refused(capsys, tmp_path, ["explain", "-x.png"], hint.replace("numpy-cam [", "numpy-cam explain ["))
    assert_refused(capsys, tmp_path, ["-y.png"], "the following arguments are required: IMAGE")   # no such file
    code, out, err = run(capsys, "--json", "--out", "o", *SMALL, "--", "-x.png")
    assert code == 0 and json.loads(out)["output"] == os.path.join("o", "-x_cam.png"), err
    code, out, err = run(capsys, "explain", *SMALL, "--out", "fig.png", "--", "-x.png")
    assert code == 0 and out.startswith("wrote fig.png: class "), err


# ---- --top-k for small heads, non-finite scores, export's class names ------------------------

def small_head(path, num_classes):
    """The small GAP net cut to its first ``num_classes`` classes, as a weights file."""
    arrays, metadata = checkpoint.load_weights(numpy_cam.DATA / "small_gap_seed0.npz")
    arrays["fc.weight"], arrays["fc.bias"] = arrays["fc.weight"][:num_classes], arrays["fc.bias"][:num_classes]
    metadata.update(num_classes=num_classes, class_names=metadata["class_names"][:num_classes])
    checkpoint.save_weights(path, arrays, metadata)
    return path


def test_top_k_defaults_to_the_number_of_classes_when_fewer_than_5(capsys, tmp_path):
    two = small_head(tmp_path / "two.npz", 2)
    code, out, err = run(capsys, COFFEE, "--model", two, "--json", "--out", tmp_path)
    assert code == 0, err
    assert [c["index"] for c in json.loads(out)["classes"]] in ([0, 1], [1, 0])
    code, out, err = run(capsys, COFFEE, "--json", "--out", tmp_path, *SMALL)    # 6 classes: the top 5
    assert code == 0 and len(json.loads(out)["classes"]) == 5
    code, out, err = run(capsys, "explain", COFFEE, "--model", two, "--out", tmp_path / "fig.png")
    assert code == 0 and len(out.splitlines()) == 3, err                       # "wrote ...", then 2 classes
    code, out, err = run(capsys, "explain", COFFEE, "--model", two, "--top-k", "1", "--out", tmp_path / "fig.png")
    assert code == 0 and len(out.splitlines()) == 2, err
    for argv in ([COFFEE, "--out", tmp_path], ["explain", COFFEE, "--out", tmp_path / "fig2.png"]):
        assert run(capsys, *argv, "--model", two, "--top-k", "3") == (
            2, "", "numpy-cam: error: --top-k must be between 1 and 2; got 3\n")
    assert not os.path.exists(tmp_path / "fig2.png")


@pytest.fixture
def nan_model(monkeypatch):
    """small_gap whose FC bias is NaN once loaded (the weight checks at load would refuse a file)."""
    real = numpy_cam.models.load_model

    def load_model(name):
        model = real(name)
        model.fc_bias = np.full_like(model.fc_bias, np.nan)
        return model
    monkeypatch.setattr(numpy_cam.models, "load_model", load_model)


@pytest.mark.parametrize("json_flag", [["--json"], []], ids=["json", "plain"])
def test_non_finite_scores_are_an_error_of_the_image(capsys, tmp_path, nan_model, json_flag):
    code, out, err = run(capsys, COFFEE, *json_flag, "--out", tmp_path, *SMALL)
    assert (code, out) == (2, "") and "nan%" not in err
    assert err == (f"numpy-cam: error: {COFFEE}: the model's class scores are not finite (NaN or infinity) for "
                   "this image, so there are no probabilities to report; check the weights file\n")
    code, out, err = run(capsys, "explain", COFFEE, "--out", tmp_path / "fig.png", *SMALL)
    assert (code, out) == (2, "") and "class scores are not finite" in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_export_with_class_names_from_a_file(capsys, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    arrays, _ = checkpoint.load_weights(small_head(tmp_path / "three.npz", 3))
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}, "three.pt")
    (tmp_path / "names.txt").write_text("red\ngreen\nblue\n")
    argv = ["export", "three.pt", "--arch", "small_gap", "--out", "three_export.npz"]
    assert run(capsys, *argv, "--classes", "names.txt", "--num-classes", "3") == (
        0, "wrote three_export.npz (small_gap, 3 classes)\n", "")
    assert run(capsys, *argv)[0] == 0                                          # replaces its own export
    code, out, err = run(capsys, COFFEE, "--model", "three_export.npz", "--json", "--out", ".")
    assert code == 0 and {c["name"] for c in json.loads(out)["classes"]} == {"class 0", "class 1", "class 2"}
    code, out, err = run(capsys, *argv, "--classes", "missing.txt")
    assert (code, out) == (2, "") and err == "numpy-cam: error: missing.txt: no such file\n"
    code, out, err = run(capsys, *argv, "--num-classes", "10")
    assert (code, out) == (2, "") and err.startswith("numpy-cam: error: ") and err.count("\n") == 1 and "10" in err
