"""numpy-cam export: PyTorch checkpoints (through the safe reader) -> the project's .npz."""
import numpy as np
import pytest

import numpy_cam
from golden_check import assert_within_tau
from numpy_cam.io import checkpoint
from numpy_cam.cli import main
from numpy_cam.io.export import _looks_like_vgg, export_checkpoint, generic_class_names, read_class_names
from numpy_cam.models import builtin_checkpoint_path, checked_num_classes, small

LITE0 = builtin_checkpoint_path("efficientnet_lite0")


def test_export_a_real_checkpoint_and_run_it(tmp_path, capsys):
    out = tmp_path / "lite0.npz"
    assert main(["export", LITE0, "--arch", "efficientnet_lite0", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    arrays, metadata = checkpoint.load_weights(out)
    assert len(arrays) == 296 and metadata["source_sha256"].startswith("579344248a93e230")
    assert metadata["num_classes"] == 1000 and metadata["class_names"] == "imagenet"   # no names, 1000 outputs
    model, ref = numpy_cam.load_model(out), numpy_cam.load_model()
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(model.classify(model.features(x)), ref.classify(ref.features(x)))


@pytest.mark.parametrize("argv, message", [
    (["missing.pth", "--arch", "efficientnet_lite0", "--out", "x.npz"], "missing.pth: no such file"),
    ([LITE0, "--arch", "inception_v3", "--out", "x.npz"], "unknown architecture 'inception_v3': expected one of"),
    ([LITE0, "--arch", "vgg16", "--out", "x.npz"], "cannot use 'vgg16' for CAM"),
    ([LITE0, "--arch", "small_gap", "--out", "x.npz"], "do not fit the model: 32 missing: features.0.conv.weight"),
    ([LITE0, "--out", "x.npz"], "the following arguments are required: --arch"),
])
def test_export_bad_input(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["export"] + [str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("numpy-cam: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "x.npz").exists()


def test_a_torchvision_vgg_state_dict_is_recognised():
    vgg_like = {"features.0.weight": np.zeros((64, 3, 3, 3), np.float32),
                "classifier.0.weight": np.zeros((4096, 512 * 49), np.float32)}
    assert _looks_like_vgg(vgg_like)
    assert not _looks_like_vgg({"features.0.weight": np.zeros(1), "fc.weight": np.zeros((10, 512))})


def test_a_vgg_checkpoint_is_refused_at_export(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3), "classifier.0.weight": torch.zeros(16, 8 * 49),
                "classifier.0.bias": torch.zeros(16)}, path)
    with pytest.raises(checkpoint.CheckpointError, match=r"cannot use 'vgg.pth' for CAM"):
        export_checkpoint(path, tmp_path / "out.npz", "resnet50")
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_torchvision_layout_resnet50_checkpoint_export_numpy(tmp_path, legacy):
    """A torch.save'd ResNet-50 state dict -> numpy-cam export -> NumPy, stage by stage."""
    torch = pytest.importorskip("torch")
    from torch_resnet import build_resnet, random_state_dict
    net = build_resnet(50, random_state_dict(50, seed=3))
    path = tmp_path / "resnet50.pth"
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=not legacy)
    assert main(["export", str(path), "--arch", "resnet50", "--out", str(tmp_path / "r50.npz")]) == 0
    model = numpy_cam.load_model(tmp_path / "r50.npz")
    x = np.random.default_rng(4).uniform(-2, 2, (1, 3, 96, 128)).astype(np.float32)
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in net.forward_stages(torch.from_numpy(x)).items()}
    ours = model.stages(x)
    for stage in ref:
        assert_within_tau(ours[stage], ref[stage], stage)


# ----- class names: read_class_names, the count from the FC head ------------------------------------

def test_read_class_names_ignores_whitespace_a_bom_and_the_trailing_newlines(tmp_path):
    path = tmp_path / "names.txt"
    path.write_bytes(b"\xef\xbb\xbf cat \r\n\tdog\r\nsea lion\n\n \n")
    assert read_class_names(path) == ["cat", "dog", "sea lion"]
    path.write_bytes("caf\u00e9\nna\u00efve".encode())                  # UTF-8, no final newline
    assert read_class_names(str(path)) == ["caf\u00e9", "na\u00efve"]


@pytest.mark.parametrize("data, message", [
    (b"", "holds no class names (the file is empty or blank); expected one name a line"),
    (b"\n  \n\n", "holds no class names (the file is empty or blank)"),
    (b"cat\n\ndog\n", "line 2 is blank; every class needs a name (class 1 has none)"),
    (b"\ncat\n", "line 1 is blank; every class needs a name (class 0 has none)"),
    (b"cat\ndog\n cat\n", "line 3 repeats the name 'cat' of line 1; class names must be unique"),
    (b"cat\nd\xe9j\xe0 vu\n", "line 2 is not UTF-8 text (byte 0xe9); expected a UTF-8 file of class names"),
    (b"cat\ndog\x00\n", "line 2 holds the control character U+0000; expected a class name in plain text"),
    (b"cat\rdog\rbird", "line 1 holds the control character U+000D"),      # old Mac line ends
])
def test_read_class_names_refuses_bad_files_naming_file_and_line(tmp_path, data, message):
    path = tmp_path / "names.txt"
    path.write_bytes(data)
    with pytest.raises(ValueError) as info:
        read_class_names(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_read_class_names_refuses_a_folder_a_missing_file_and_a_huge_file(tmp_path, monkeypatch):
    with pytest.raises(IsADirectoryError, match=r"is a folder; expected a text file of class names, one a line"):
        read_class_names(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"missing.txt: no such file$"):
        read_class_names(tmp_path / "missing.txt")
    monkeypatch.setattr("numpy_cam.io.export.MAX_NAMES_BYTES", 8)
    (tmp_path / "big.txt").write_text("a\nb\nc\nd\ne\n")                  # 10 bytes
    with pytest.raises(ValueError, match=r"big.txt: more than 8 bytes; expected a text file of class names"):
        read_class_names(tmp_path / "big.txt")


def test_generic_class_names():
    assert generic_class_names(3) == ["class 0", "class 1", "class 2"]


def test_the_class_count_is_the_fc_heads_outputs():
    from test_finetuned import small_state_dict
    sd = small_state_dict(3)
    assert checked_num_classes(small, sd, "x.pth") == 3
    del sd["fc.bias"]                                                     # the count from the weight's rows
    with pytest.raises(checkpoint.CheckpointError, match=r"do not fit the model: 1 missing: fc.bias$"):
        checked_num_classes(small, sd, "x.pth")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"class_names": "names.txt"}, ValueError,
     "class_names must be None, 'imagenet' or a list of names; got the str 'names.txt' (for a file of names, "
     "one a line: read_class_names(path))"),
    ({"class_names": 3}, TypeError, "class_names must be None, 'imagenet' or a list of str; got int"),
    ({"class_names": ["cat", 3]}, TypeError, "class_names[1] must be a str; got int 3"),
    ({"class_names": ["cat", " "]}, ValueError, "class_names[1] is blank; every class needs a name (class 1 has none)"),
    ({"class_names": ("cat", "cat")}, ValueError, "class_names[1] repeats the name 'cat' of class_names[0]; "
                                                  "class names must be unique"),
    ({"class_names": ["a\nb"]}, ValueError, "class_names[0] holds the control character U+000A"),
    ({"num_classes": 0}, ValueError, "num_classes must be >= 1; got 0"),
    ({"num_classes": 10.0}, TypeError, "num_classes must be an integer; got 10.0"),
])
def test_bad_class_names_arguments_are_refused_before_the_file_is_read(tmp_path, kwargs, error, message):
    with pytest.raises(error) as info:
        export_checkpoint(tmp_path / "missing.pth", tmp_path / "x.npz", "small_gap", **kwargs)
    assert str(info.value).startswith(message)


@pytest.fixture
def three_class_pth(tmp_path):
    torch = pytest.importorskip("torch")
    from test_finetuned import small_state_dict
    path = tmp_path / "three.pth"
    torch.save({k: torch.from_numpy(v) for k, v in small_state_dict(3).items()}, path)
    return path


@pytest.mark.parametrize("kwargs, message", [
    ({"num_classes": 4}, "num_classes is 4 but the FC head of {src!r} has 3 outputs"),
    ({"class_names": ["a", "b"]}, "2 class names were given but the FC head of {src!r} has 3 outputs; "
                                  "expected one name per output"),
    ({"class_names": ["a", "b", "c"], "num_classes": 2}, "num_classes is 2 but the FC head of {src!r} has 3 outputs"),
    ({"class_names": "imagenet"}, "class_names='imagenet' needs 1000 classes; the model has 3 (the FC head of "
                                  "{src!r} has 3 outputs): give 3 class names, or none for generic names"),
])
def test_a_class_count_that_does_not_fit_the_head_is_refused(three_class_pth, tmp_path, kwargs, message):
    with pytest.raises(ValueError) as info:
        export_checkpoint(three_class_pth, tmp_path / "x.npz", "small_gap", **kwargs)
    assert str(info.value) == message.format(src=str(three_class_pth))
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("kwargs, names", [
    ({}, ["class 0", "class 1", "class 2"]),
    ({"num_classes": 3}, ["class 0", "class 1", "class 2"]),
    ({"class_names": ("cat", "dog", "bird"), "num_classes": 3}, ["cat", "dog", "bird"]),
])
def test_the_names_written_are_the_given_or_generic_ones(three_class_pth, tmp_path, kwargs, names):
    metadata = export_checkpoint(three_class_pth, tmp_path / "x.npz", "small_gap", **kwargs)
    assert metadata["class_names"] == names and metadata["num_classes"] == 3
    assert checkpoint.load_weights(tmp_path / "x.npz")[1] == metadata
    assert numpy_cam.load_model(tmp_path / "x.npz").class_names == tuple(names)
