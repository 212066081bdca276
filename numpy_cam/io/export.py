"""Exporters: a PyTorch checkpoint or a Keras model -> the project's ``.npz`` weights format.

    numpy-cam export SOURCE --arch NAME --out FILE.npz

PyTorch (``export_checkpoint``): a checkpoint (a state dict, legacy or zip format) is read
with the safe reader (``checkpoint.read_torch_checkpoint``: no torch, no code from the file
is run), its keys and shapes are checked against the architecture, and it is written with the
architecture's preprocessing and the source's SHA-256.

Keras (``export_keras``, needs keras: ``pip install "numpy-cam[keras]"``): Keras stores conv
kernels as HWIO (kh, kw, in, out) and Dense kernels as (in, out); the project uses OIHW and
(classes, K), the PyTorch layout. The transposes happen here, once
(``convert_keras_weights``, which needs no keras); nothing transposes at load time. Weights
are read from the built model layer by layer, under the Keras layer names (``conv1_conv``,
``conv2_block1_0_bn``, ``predictions``), never from the layout of a ``.weights.h5`` file,
whose entries carry generated names.

Class names (``class_names``, ``num_classes``): the class count is the FC head's number of
outputs, read from the weights. No names given: "imagenet" for a 1000-output head, else the
generic ``class 0``, ``class 1``, ... (``generic_class_names``); a list must have one name per
output, and ``num_classes``, if given, must be the head's count (a check of what the user
meant). ``read_class_names`` reads a text file of one name a line (``numpy-cam export
--classes FILE``). The file's metadata holds "imagenet" or the list of names.

Only a network whose head is conv maps -> global average pooling -> FC (softmax) can be
explained by CAM (paper Sec. 2). Others (VGG16's flatten and dense layers) are refused, at
export and at load, with the reason (``NOT_A_CAM_HEAD``). No network access.
"""
import codecs
import importlib
import os
import unicodedata
import warnings

import numpy as np

from .._checks import check_int_range
from ..models import (ARCHITECTURES, CAM_HEAD_REASON, NOT_A_CAM_HEAD, REFUSED_ARCHITECTURES,
                      checked_num_classes)
from ..models.keras_resnet import KERAS_RESNET50
from ..models.model import generic_class_names
from . import checkpoint

__all__ = ["export_checkpoint", "export_keras", "read_class_names", "generic_class_names", "check_cam_head_keras",
           "convert_keras_weights", "keras_layer_arrays", "KERAS_MISSING", "KERAS_ARCHITECTURES"]

KERAS_MISSING = 'exporting a Keras model needs keras: pip install "numpy-cam[keras]"'
KERAS_ARCHITECTURES = {"keras_resnet50": KERAS_RESNET50}     # what a Keras model can be exported as
# Keras variable name -> state-dict suffix (BN: gamma, beta, moving mean, moving variance)
VARIABLE_NAMES = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
                  "moving_mean": "running_mean", "moving_variance": "running_var"}
MAX_NAMES_BYTES = 16 << 20          # a file of class names is far smaller (ImageNet's 1000: 21 kB)


def export_checkpoint(source, out_path, architecture, class_names=None, description=None, num_classes=None):
    """Convert ``source`` (a PyTorch state dict file, or a ``.keras`` model) to ``out_path``.

    Parameters
    ----------
    source : path of a PyTorch checkpoint (.pth / .pt) or a Keras model (.keras)
    out_path : path of the .npz to write (atomically)
    architecture : str, one of ``ARCHITECTURES`` (e.g. "resnet50", "keras_resnet50")
    class_names : None, "imagenet", or a list of str, one per output of the FC head
        None: "imagenet" for a 1000-output head, else ``generic_class_names`` ("class 0", ...).
    description : the metadata's "source" text (default: the checkpoint's file name)
    num_classes : int or None -- if given, the number of outputs the FC head must have

    Returns
    -------
    metadata : dict, as written into the file

    Raises
    ------
    ValueError
        If the architecture is unknown, or the class names or num_classes do not fit the head.
    TypeError
        If class_names is not None, "imagenet" or a list of str, or num_classes not an int.
    numpy_cam.io.checkpoint.CheckpointError
        If the weights do not have the architecture's names and shapes.
    """
    source = os.fspath(source)
    if architecture in REFUSED_ARCHITECTURES:
        raise checkpoint.CheckpointError(NOT_A_CAM_HEAD.format(name=architecture))
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}: expected one of {', '.join(sorted(ARCHITECTURES))}")
    if source.endswith((".keras", ".h5")):
        return export_keras(source, out_path, architecture=architecture, class_names=class_names,
                            num_classes=num_classes)
    class_names, num_classes = _checked_names_arguments(class_names, num_classes)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"{source}: no such file")
    arrays = checkpoint.read_torch_checkpoint(source)
    if _looks_like_vgg(arrays):
        raise checkpoint.CheckpointError(NOT_A_CAM_HEAD.format(name=os.path.basename(source)))
    arch = ARCHITECTURES[architecture].module
    head = checked_num_classes(arch, arrays, source)
    metadata = {"architecture": architecture, "num_classes": head,
                "class_names": _class_names_for_head(class_names, num_classes, head, repr(source)),
                "preprocessing": arch.PREPROCESSING,
                "source": description or f"PyTorch checkpoint {os.path.basename(source)}",
                "source_sha256": checkpoint.sha256_of_file(source)}
    checkpoint.save_weights(out_path, arrays, metadata)
    return metadata


def read_class_names(path):
    """The class names in a text file, one a line (``numpy-cam export --classes FILE``).

    UTF-8 (a leading byte-order mark is dropped); each line's surrounding whitespace and the
    blank lines at the end (a trailing newline) are ignored. Line i + 1 names class i.

    Returns
    -------
    names : list of str

    Raises
    ------
    ValueError
        Naming the file and the line: an empty file, a blank line before the last name, a
        name repeated, a control character, bytes that are not UTF-8, a file over 16 MiB.
    FileNotFoundError, IsADirectoryError
        If there is no such file, or it is a folder.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a folder; expected a text file of class names, one a line")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as file:
        data = file.read(MAX_NAMES_BYTES + 1)
    if len(data) > MAX_NAMES_BYTES:
        raise ValueError(f"{path}: more than {MAX_NAMES_BYTES} bytes; expected a text file of class names, one a line")
    data = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[err.start]:02x}); "
                         "expected a UTF-8 file of class names, one a line") from None
    names = [line.strip() for line in text.split("\n")]
    while names and not names[-1]:                                    # the trailing newline(s)
        names.pop()
    if not names:
        raise ValueError(f"{path}: holds no class names (the file is empty or blank); expected one name a line")
    return _checked_names(names, f"{path}: ", lambda i: f"line {i + 1}")


def _checked_names(names, prefix, label):
    """``names`` (a list) if each is a non-blank str without control characters and none is
    repeated; else the error names the entry: ``prefix + label(i)``."""
    first = {}
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"{prefix}{label(i)} must be a str; got {type(name).__name__} {name!r}")
        if not name.strip():
            raise ValueError(f"{prefix}{label(i)} is blank; every class needs a name (class {i} has none)")
        control = next((ch for ch in name if unicodedata.category(ch) == "Cc" and ch != "\t"), None)
        if control is not None:
            raise ValueError(f"{prefix}{label(i)} holds the control character U+{ord(control):04X}; "
                             "expected a class name in plain text")
        if name in first:
            raise ValueError(f"{prefix}{label(i)} repeats the name {name!r} of {label(first[name])}; "
                             "class names must be unique")
        first[name] = i
    return names


def _checked_names_arguments(class_names, num_classes):
    """An exporter's class_names (None, "imagenet" or a list of str) and num_classes (None or
    an int >= 1), checked before any file is read."""
    if num_classes is not None:
        num_classes = check_int_range("num_classes", num_classes, 1)
    if isinstance(class_names, (list, tuple)):
        return _checked_names(list(class_names), "", lambda i: f"class_names[{i}]"), num_classes
    if isinstance(class_names, str) and class_names != "imagenet":
        raise ValueError(f"class_names must be None, 'imagenet' or a list of names; got the str {class_names!r} "
                         "(for a file of names, one a line: read_class_names(path))")
    if class_names is not None and not isinstance(class_names, str):
        raise TypeError(f"class_names must be None, 'imagenet' or a list of str; got {type(class_names).__name__}")
    return class_names, num_classes


def _class_names_for_head(class_names, num_classes, head, where):
    """The metadata's class_names for an FC head of ``head`` outputs in ``where`` (the file)."""
    if num_classes is not None and num_classes != head:
        raise ValueError(f"num_classes is {num_classes} but the FC head of {where} has {head} outputs")
    if class_names == "imagenet" and head != 1000:
        raise ValueError(f"class_names='imagenet' needs 1000 classes; the model has {head} (the FC head of {where} "
                         f"has {head} outputs): give {head} class names, or none for generic names")
    if class_names is None:
        return "imagenet" if head == 1000 else generic_class_names(head)
    if class_names != "imagenet" and len(class_names) != head:
        raise ValueError(f"{len(class_names)} class names were given but the FC head of {where} has {head} "
                         "outputs; expected one name per output")
    return class_names


def _looks_like_vgg(arrays):
    """torchvision's VGG: a classifier whose first layer takes the flattened conv maps."""
    first = arrays.get("classifier.0.weight")
    return first is not None and first.ndim == 2 and first.shape[1] % 49 == 0 and "features.0.weight" in arrays


def import_keras():
    """keras, imported on first use; ModuleNotFoundError with ``KERAS_MISSING`` when absent."""
    try:
        return importlib.import_module("keras")
    except ModuleNotFoundError as exc:
        if exc.name not in (None, "keras"):       # keras is there, one of its dependencies is not
            raise
        raise ModuleNotFoundError(KERAS_MISSING, name="keras") from exc


def convert_keras_weights(layer_arrays):
    """Keras-layout arrays -> a state dict in the project's layout (no keras needed).

    Parameters
    ----------
    layer_arrays : mapping of str to mapping of str to ndarray
        Layer name -> Keras variable name -> array: ``{"conv1_conv": {"kernel": (7, 7, 3, 64),
        "bias": (64,)}, "conv1_bn": {"gamma": ..., "beta": ..., "moving_mean": ...,
        "moving_variance": ...}, "predictions": {"kernel": (2048, 1000), "bias": (1000,)}}``.

    Returns
    -------
    state_dict : dict of str to ndarray, float32, C-contiguous
        ``<layer>.weight`` OIHW for a conv kernel (HWIO transposed), (out, in) for a Dense
        kernel; ``<layer>.bias``; BN as ``.weight .bias .running_mean .running_var``.
    """
    state_dict = {}
    for layer, variables in layer_arrays.items():
        for variable, array in variables.items():
            if variable not in VARIABLE_NAMES:
                raise ValueError(f"layer {layer!r} has a variable {variable!r}; this exporter knows "
                                 f"{', '.join(VARIABLE_NAMES)} (Conv2D, BatchNormalization, Dense)")
            array = np.asarray(array, dtype=np.float32)
            if variable == "kernel" and array.ndim == 4:
                array = array.transpose(3, 2, 0, 1)                       # (kh, kw, I, O) -> (O, I, kh, kw)
            elif variable == "kernel" and array.ndim == 2:
                array = array.T                                           # (in, out) -> (out, in)
            elif variable == "kernel" or array.ndim != 1:
                raise ValueError(f"{layer}/{variable} has shape {array.shape}; expected a 4-D conv "
                                 "kernel, a 2-D Dense kernel or a 1-D vector")
            state_dict[f"{layer}.{VARIABLE_NAMES[variable]}"] = np.ascontiguousarray(array)
    return state_dict


def keras_layer_arrays(model):
    """The weights of a built Keras model as {layer name: {variable name: ndarray}}.

    A model used as a layer (``Sequential([base, GlobalAveragePooling2D(), Dense(...)])``)
    contributes its own layers, under their names.
    """
    to_numpy, arrays = import_keras().ops.convert_to_numpy, {}
    for layer in model.layers:
        if hasattr(layer, "layers"):
            arrays.update(keras_layer_arrays(layer))
        elif layer.weights:
            with warnings.catch_warnings():   # torch's Tensor.__array__ lacks NumPy 2's copy=
                warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy",
                                        DeprecationWarning)
                arrays[layer.name] = {w.name.split("/")[-1]: np.array(to_numpy(w)) for w in layer.weights}
    return arrays


def _head_chain(model):
    """The layers from the model's output back to its last 4-D (conv map) tensor, output first."""
    producer = {}
    for layer in model.layers:
        try:
            producer[id(layer.output)] = layer
        except (AttributeError, ValueError):          # a layer used twice has no single output
            pass
    if len(model.outputs) != 1:
        return None, []
    tensor, chain = model.outputs[0], []
    while len(tensor.shape) != 4 and id(tensor) in producer and len(chain) < 20:
        chain.append(producer[id(tensor)])
        tensor = chain[-1].input
        if isinstance(tensor, (list, tuple)):         # a merge: not a plain head
            return None, chain
    return (tensor if len(tensor.shape) == 4 else None), chain


def check_cam_head_keras(model):
    """Refuse, with ValueError, a Keras model whose head is not conv maps -> GAP -> Dense (softmax).

    Dropout (identity at inference) may stand between the pooling and the Dense layer, and
    the softmax may be the Dense activation or a layer of its own. Returns the Dense layer
    (its kernel holds the class weights w_k^c).
    """
    layers = import_keras().layers
    maps, chain = _head_chain(model)                                      # chain: output first
    identity = (layers.Softmax, layers.Dropout)                           # at inference, for the maps
    core = [layer for layer in chain if not isinstance(layer, identity) and not (
        isinstance(layer, layers.Activation) and _activation(layer) in ("softmax", "linear"))]
    if (maps is not None and len(core) == 2 and isinstance(core[0], layers.Dense)
            and _activation(core[0]) in ("softmax", "linear")
            and isinstance(core[1], layers.GlobalAveragePooling2D)):
        return core[0]                                                    # maps -> GAP -> Dense
    path = " -> ".join(_describe(layer) for layer in reversed(chain))     # conv maps first
    if maps is None:
        found = f"its output is not one tensor computed from conv maps ({path or 'no layers'})"
    elif not chain:
        found = "its output is the conv maps themselves (include_top=False: no classifier)"
    elif "Flatten" in path or path.count("Dense") > 1:
        found = f"its last conv maps go through Flatten and fully connected layers ({path})"
    else:
        found = f"its last conv maps go through {path}"
    raise ValueError(f"cannot export {model.name!r} for CAM: {found}, not global average pooling "
                     f"-> softmax. {CAM_HEAD_REASON}")


def _describe(layer):
    kind = type(layer).__name__
    return f"{kind}({layer.get_config()['units']}, {_activation(layer)})" if kind == "Dense" else kind


def _activation(layer):
    activation = layer.get_config().get("activation", "linear")
    return activation if isinstance(activation, str) else getattr(activation, "__name__", "?")


def export_keras(model_or_path, out_path, architecture="keras_resnet50", class_names=None, num_classes=None):
    """Write a Keras model's weights as a numpy-cam ``.npz`` (``numpy_cam.load_model`` reads it).

    Parameters
    ----------
    model_or_path : keras.Model, or str / os.PathLike of a ``.keras`` file
    out_path : str or os.PathLike
    architecture : str
        One of ``KERAS_ARCHITECTURES`` (only "keras_resnet50" so far).
    class_names : None, "imagenet" or a list of str, one per output of the Dense head
        None: "imagenet" for a 1000-output head, else ``generic_class_names`` ("class 0", ...).
    num_classes : int or None -- if given, the number of outputs the head must have

    Raises
    ------
    ModuleNotFoundError
        If keras is not installed (message ``KERAS_MISSING``).
    ValueError
        If the head is not conv maps -> GAP -> softmax (``CAM_HEAD_REASON``), the architecture
        is unknown, or the class names or num_classes do not fit the head.
    TypeError
        If class_names is not None, "imagenet" or a list of str, or num_classes not an int.
    numpy_cam.io.checkpoint.CheckpointError
        If the weights do not have the architecture's names and shapes.

    Returns
    -------
    metadata : dict, as written into the file
    """
    if architecture not in KERAS_ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; a Keras model can be exported "
                         f"as {', '.join(sorted(KERAS_ARCHITECTURES))}")
    class_names, num_classes = _checked_names_arguments(class_names, num_classes)
    keras = import_keras()
    if isinstance(model_or_path, (str, os.PathLike)):
        source = os.fspath(model_or_path)
        model = keras.saving.load_model(source, compile=False)
    else:
        model, source = model_or_path, None
    head = check_cam_head_keras(model)
    arch = KERAS_ARCHITECTURES[architecture]
    layer_arrays = keras_layer_arrays(model)
    fc = arch.FC_WEIGHT.rsplit(".", 1)[0]                                 # "predictions"
    if head.name != fc and fc not in layer_arrays:                        # a new head, e.g. "dense"
        layer_arrays[fc] = layer_arrays.pop(head.name)
    state_dict = convert_keras_weights(layer_arrays)
    where = repr(source) if source else f"the Keras model {model.name!r}"
    head = checked_num_classes(arch, state_dict, source or f"the Keras model {model.name!r}")
    class_names = _class_names_for_head(class_names, num_classes, head, where)
    backend = keras.backend.backend()
    metadata = {"architecture": architecture, "num_classes": head, "class_names": class_names,
                "preprocessing": arch.PREPROCESSING,
                "source": f"Keras {keras.__version__} model {model.name!r} ({source or 'in memory'}), "
                          f"backend {backend}",
                "keras_version": keras.__version__, "keras_model": model.name, "backend": backend}
    checkpoint.save_weights(out_path, state_dict, metadata)
    return metadata
