"""Exporters: a PyTorch checkpoint or a Keras model -> the project's ``.npz`` weights format.

    numpy-cam export SOURCE --arch NAME --out FILE.npz [--classes imagenet|FILE]

A PyTorch checkpoint (a state dict, legacy or zip format) is read with the safe reader
(``checkpoint.read_torch_checkpoint``: no torch, no code from the file is run), its keys and
shapes are checked against the architecture, and it is written with the architecture's
preprocessing and the source's SHA-256. A Keras model file (``.keras``) needs keras
(``pip install "numpy-cam[keras]"``) and goes through ``keras_export``. No network access.

Networks whose head is not conv maps -> global pooling -> FC (VGG16's flatten and dense
layers) are refused, at export and at load, with the reason: CAM cannot explain them.
"""
import os

from . import checkpoint
from .models import ARCHITECTURES, NOT_A_CAM_HEAD, REFUSED_ARCHITECTURES, checked_num_classes


def export_checkpoint(source, out_path, architecture, class_names="imagenet", description=None):
    """Convert ``source`` (a PyTorch state dict file, or a ``.keras`` model) to ``out_path``.

    Parameters
    ----------
    source : path of a PyTorch checkpoint (.pth / .pt) or a Keras model (.keras)
    out_path : path of the .npz to write (atomically)
    architecture : str, one of ``ARCHITECTURES`` (e.g. "resnet50", "keras_resnet50")
    class_names : "imagenet", or a list of names, one per class
    description : the metadata's "source" text (default: the checkpoint's file name)
    """
    source = os.fspath(source)
    if architecture in REFUSED_ARCHITECTURES:
        raise checkpoint.CheckpointError(NOT_A_CAM_HEAD.format(name=architecture))
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}: expected one of {', '.join(sorted(ARCHITECTURES))}")
    if source.endswith((".keras", ".h5")):
        from .keras_export import export_keras
        return export_keras(source, out_path, architecture=architecture, class_names=class_names)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"{source}: no such file")
    arrays = checkpoint.read_torch_checkpoint(source)
    if _looks_like_vgg(arrays):
        raise checkpoint.CheckpointError(NOT_A_CAM_HEAD.format(name=os.path.basename(source)))
    arch = ARCHITECTURES[architecture].module
    num_classes = checked_num_classes(arch, arrays, source)
    metadata = {"architecture": architecture, "num_classes": num_classes,
                "class_names": class_names, "preprocessing": arch.PREPROCESSING,
                "source": description or f"PyTorch checkpoint {os.path.basename(source)}",
                "source_sha256": checkpoint.sha256_of_file(source)}
    checkpoint.save_weights(out_path, arrays, metadata)


def _looks_like_vgg(arrays):
    """torchvision's VGG: a classifier whose first layer takes the flattened conv maps."""
    first = arrays.get("classifier.0.weight")
    return first is not None and first.ndim == 2 and first.shape[1] % 49 == 0 and "features.0.weight" in arrays
