"""numpy-cam export: PyTorch checkpoints (through the safe reader) -> the project's .npz."""
import numpy as np
import pytest

import numpy_cam
from numpy_cam.io import checkpoint
from numpy_cam.cli import main
from numpy_cam.io.export import _looks_like_vgg, export_checkpoint
from numpy_cam.models import builtin_checkpoint_path

LITE0 = builtin_checkpoint_path("efficientnet_lite0")


def test_export_a_real_checkpoint_and_run_it(tmp_path, capsys):
    out = tmp_path / "lite0.npz"
    assert main(["export", LITE0, "--arch", "efficientnet_lite0", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    arrays, metadata = checkpoint.load_weights(out)
    assert len(arrays) == 296 and metadata["source_sha256"].startswith("579344248a93e230")
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
        scale = max(1.0, float(np.abs(ref[stage]).max()))
        np.testing.assert_allclose(ours[stage], ref[stage], rtol=0, atol=1e-4 * scale, err_msg=stage)
