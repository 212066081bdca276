"""A user's own models end to end: a fine-tuned 10-class ResNet-18 and a 2-class small net go
checkpoint -> export -> ``--model`` -> overlay, with the class count taken from the FC head.

The 2-class small net is built in NumPy and written with ``checkpoint.save_weights``, so its
tests run without torch; with torch it also goes through a ``.pth`` and ``numpy-cam export``.
Logits are compared with torch's under the golden rule (``golden_check.assert_within_tau``).
"""
import json
import re

import numpy as np
import pytest
from golden_check import assert_within_tau
from PIL import Image

import numpy_cam
from numpy_cam.cli import main
from numpy_cam.explain import explain_figure
from numpy_cam.io import checkpoint
from numpy_cam.io.export import export_checkpoint
from numpy_cam.models import small

PHOTO = numpy_cam.DATA / "coffee.png"
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CLASS_LINE = re.compile(r"^ +\d+\.\d\d% +(\d+)  (.+)$")               # "   12.34%     3  cat"


def small_state_dict(num_classes, seed=0):
    """Seeded weights for the small net with ``num_classes`` outputs, in NumPy (torch's names)."""
    rng, sd = np.random.default_rng(seed), {}
    for name, shape in small.expected_shapes(num_classes).items():
        if name.endswith("num_batches_tracked"):
            sd[name] = np.array(0, np.int64)
        elif name.endswith("running_var") or name.endswith("bn.weight"):
            sd[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif len(shape) == 4:                                              # He-normal conv weights
            sd[name] = rng.normal(0, np.sqrt(2 / np.prod(shape[1:])), shape).astype(np.float32)
        else:
            sd[name] = rng.normal(0, 0.1, shape).astype(np.float32)
    return sd


def save_small(path, num_classes, class_names, seed=0):
    """A small-net weights file as ``numpy-cam export`` writes one, without torch."""
    metadata = {"architecture": "small_gap", "num_classes": num_classes, "class_names": class_names,
                "preprocessing": small.PREPROCESSING, "source": "tests/test_finetuned.py"}
    checkpoint.save_weights(path, small_state_dict(num_classes, seed), metadata)
    return path


def printed_classes(stdout):
    """[(index, name)] of the class lines ``numpy-cam IMAGE`` printed, in order."""
    return [(int(m[1]), m[2]) for m in map(CLASS_LINE.match, stdout.splitlines()) if m]


def assert_overlay(out_dir, stem="coffee"):
    with Image.open(out_dir / f"{stem}_cam.png") as overlay, Image.open(PHOTO) as photo:
        assert overlay.mode == "RGB" and overlay.size == photo.size


# ----- the 2-class small net, no torch -------------------------------------------------------------

@pytest.fixture
def two_classes(tmp_path):
    return save_small(tmp_path / "two.npz", 2, ["cat", "dog"])


def test_a_2_class_model_loads_with_its_names(two_classes):
    model = numpy_cam.load_model(two_classes)
    assert model.num_classes == 2 and model.class_names == ("cat", "dog")
    assert [name for _, name, _ in model.predict(PHOTO)] in (["cat", "dog"], ["dog", "cat"])


def test_a_2_class_model_through_the_command_with_the_default_top_k(two_classes, tmp_path, capsys):
    """Needs the command's --top-k default of min(5, classes) (numpy_cam/cli.py)."""
    out = tmp_path / "out"
    assert main([str(PHOTO), "--model", str(two_classes), "--out", str(out)]) == 0
    shown = printed_classes(capsys.readouterr().out)
    assert sorted(shown) == [(0, "cat"), (1, "dog")]
    assert_overlay(out)


def test_a_2_class_model_explained_with_the_default_top_k(two_classes, tmp_path, capsys):
    model = numpy_cam.load_model(two_classes)
    assert len(numpy_cam.explain_image(model, PHOTO).top) == 2
    figure, numbers = explain_figure(model, PHOTO)
    assert figure.dtype == np.uint8 and [i for i, _, _ in numbers["top"]] in ([0, 1], [1, 0])
    assert [name for _, name, _ in explain_figure(model, PHOTO, top_k=1)[1]["top"]] == [numbers["name"]]
    assert main(["explain", str(PHOTO), "--model", str(two_classes), "--out", str(tmp_path / "fig.png")]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / 'fig.png'}: class ")
    with Image.open(tmp_path / "fig.png") as im:
        assert im.mode == "RGB"


@pytest.mark.parametrize("call", [
    lambda m: numpy_cam.explain_image(m, PHOTO, top_k=3),
    lambda m: explain_figure(m, PHOTO, top_k=3),
    lambda m: m.predict(PHOTO, top_k=3),
])
def test_an_explicit_top_k_above_the_classes_is_still_refused(two_classes, call):
    with pytest.raises(ValueError, match=r"^top_k must be between 1 and 2; got 3$"):
        call(numpy_cam.load_model(two_classes))


def test_an_explicit_top_k_above_the_classes_is_refused_by_the_command(two_classes, tmp_path, capsys):
    assert main([str(PHOTO), "--model", str(two_classes), "--top-k", "3", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("numpy-cam: error: ") and err.count("\n") == 1 and "between 1 and 2; got 3" in err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("stored, names", [("imagenet", "'imagenet' (1000 names)"), (["a", "b", "c"], "3 names")])
def test_an_old_export_whose_names_do_not_fit_the_head_says_how_to_re_export(tmp_path, capsys, stored, names):
    """Exports made before the class count came from the head said "imagenet" for any head."""
    old = save_small(tmp_path / "old.npz", 2, stored)
    expected = (f"{old}: its metadata gives class_names {names} but its FC head has 2 outputs; re-export it "
                "with numpy-cam export ... --classes FILE (one name a line) or --num-classes 2")
    with pytest.raises(checkpoint.CheckpointError) as info:
        numpy_cam.load_model(old)
    assert str(info.value) == expected
    assert main([str(PHOTO), "--model", str(old), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"numpy-cam: error: {expected}\n"


def test_a_model_without_names_gets_generic_ones(tmp_path):
    model = numpy_cam.load_model(save_small(tmp_path / "anon.npz", 3, None))
    assert model.class_names == ("class 0", "class 1", "class 2")


# ----- with torch: .pth -> export -> --model ---------------------------------------------------------

@pytest.fixture(scope="module")
def resnet18_10(tmp_path_factory):
    """A ResNet-18 with a 10-output fc after one SGD step (weights and BN statistics moved), saved as .pth."""
    torch = pytest.importorskip("torch")
    from torch_resnet import build_resnet, random_state_dict
    torch.manual_seed(0)
    net = build_resnet(18, random_state_dict(18, num_classes=10, seed=7), num_classes=10).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    loss = torch.nn.functional.cross_entropy(net(torch.randn(4, 3, 64, 64)), torch.tensor([0, 3, 5, 9]))
    loss.backward()
    optimizer.step()
    path = tmp_path_factory.mktemp("finetuned") / "resnet18_cifar.pth"
    torch.save(net.eval().state_dict(), path)
    return path, net


def assert_logits_match_torch(model, net):
    import torch
    x = model.preprocess(PHOTO)                                            # (1, 3, 224, 224)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()                             # (1, 10)
    assert_within_tau(model.classify(model.features(x)), ref, "fine-tuned ResNet-18 logits")


def test_a_fine_tuned_resnet18_exports_with_generic_names_and_matches_torch(resnet18_10, tmp_path):
    pth, net = resnet18_10
    metadata = export_checkpoint(pth, tmp_path / "ft.npz", "resnet18")
    assert metadata["num_classes"] == 10 and metadata["class_names"] == [f"class {i}" for i in range(10)]
    model = numpy_cam.load_model(tmp_path / "ft.npz")
    assert model.class_names == tuple(f"class {i}" for i in range(10))
    assert_logits_match_torch(model, net)


def test_a_fine_tuned_resnet18_through_the_command_with_num_classes(resnet18_10, tmp_path, capsys):
    """Needs ``numpy-cam export --num-classes`` (numpy_cam/cli.py)."""
    pth, net = resnet18_10
    npz, out = tmp_path / "ft.npz", tmp_path / "out"
    assert main(["export", str(pth), "--arch", "resnet18", "--out", str(npz), "--num-classes", "10"]) == 0
    assert_logits_match_torch(numpy_cam.load_model(npz), net)
    capsys.readouterr()
    assert main([str(PHOTO), "--model", str(npz), "--out", str(out)]) == 0
    shown = printed_classes(capsys.readouterr().out)
    assert len(shown) == 5 and all(name == f"class {i}" for i, name in shown)
    assert_overlay(out)


def test_a_fine_tuned_resnet18_through_the_command_with_a_names_file(resnet18_10, tmp_path, capsys):
    """Needs ``numpy-cam export --classes FILE`` (numpy_cam/cli.py)."""
    pth, _ = resnet18_10
    names, npz, out = tmp_path / "names.txt", tmp_path / "ft.npz", tmp_path / "out"
    names.write_text("\r\n".join(f" {n} " for n in CIFAR10) + "\r\n", encoding="utf-8")   # CRLF, padded
    assert main(["export", str(pth), "--arch", "resnet18", "--out", str(npz), "--classes", str(names)]) == 0
    assert checkpoint.load_weights(npz)[1]["class_names"] == CIFAR10
    capsys.readouterr()
    assert main([str(PHOTO), "--model", str(npz), "--out", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["classes"]) == 5 and all(CIFAR10[c["index"]] == c["name"] for c in record["classes"])
    assert_overlay(out)


@pytest.mark.parametrize("option, value, message", [
    ("--num-classes", "12", "12"),
    ("--classes", "nine", "9 class names"),
])
def test_a_class_count_that_does_not_fit_the_head_is_refused_by_the_command(resnet18_10, tmp_path, capsys,
                                                                            option, value, message):
    """Needs ``numpy-cam export --classes / --num-classes`` (numpy_cam/cli.py)."""
    if value == "nine":
        value = tmp_path / "nine.txt"
        value.write_text("\n".join(CIFAR10[:9]) + "\n", encoding="utf-8")
    pth, _ = resnet18_10
    argv = ["export", str(pth), "--arch", "resnet18", "--out", str(tmp_path / "ft.npz"), option, str(value)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("numpy-cam: error: ") and err.count("\n") == 1
    assert message in err and "10 outputs" in err and "resnet18_cifar.pth" in err
    assert not (tmp_path / "ft.npz").exists()


def test_a_2_class_small_net_through_a_pth_and_export(tmp_path, capsys):
    """The small net as torch trains it (weights/train_small.py) -> .pth -> export -> --model."""
    torch = pytest.importorskip("torch")
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "weights"))
    from train_small import SmallNet
    net = SmallNet("avg", num_classes=2)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in small_state_dict(2, seed=3).items()})
    torch.save(net.eval().state_dict(), tmp_path / "two.pth")
    metadata = export_checkpoint(tmp_path / "two.pth", tmp_path / "two.npz", "small_gap")
    assert metadata["num_classes"] == 2 and metadata["class_names"] == ["class 0", "class 1"]
    model = numpy_cam.load_model(tmp_path / "two.npz")
    x = model.preprocess(PHOTO)                                            # (1, 3, 64, 64)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()                             # (1, 2)
    assert_within_tau(model.classify(model.features(x)), ref, "2-class small net logits")
    assert main([str(PHOTO), "--model", str(tmp_path / "two.npz"), "--out", str(tmp_path / "out")]) == 0
    assert sorted(printed_classes(capsys.readouterr().out)) == [(0, "class 0"), (1, "class 1")]
    assert_overlay(tmp_path / "out")


def test_a_fine_tuned_keras_head_exports_with_generic_names(tmp_path, monkeypatch):
    import sys
    if "keras" not in sys.modules:                        # the backend is fixed at keras' first import
        monkeypatch.setenv("KERAS_BACKEND", "torch")
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was imported earlier with the {keras.backend.backend()} backend")
    from numpy_cam.io.export import export_keras
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    model = keras.Sequential([keras.Input((32, 32, 3)), base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")], name="ft")
    metadata = export_keras(model, tmp_path / "ft.npz")
    assert metadata["num_classes"] == 3 and metadata["class_names"] == ["class 0", "class 1", "class 2"]
    assert numpy_cam.load_model(tmp_path / "ft.npz").class_names == ("class 0", "class 1", "class 2")
    with pytest.raises(ValueError, match=r"^num_classes is 4 but the FC head of the Keras model 'ft' has 3 outputs$"):
        export_keras(model, tmp_path / "bad.npz", num_classes=4)
    named = export_keras(model, tmp_path / "ft.npz", class_names=["a", "b", "c"], num_classes=3)
    assert named["class_names"] == ["a", "b", "c"]
    assert not (tmp_path / "bad.npz").exists()
