"""numpy-cam: Class Activation Maps (Zhou et al., CVPR 2016) in plain NumPy.

The package, in the order of the paper:

    models/      the networks: x -> f_k (Sec. 2) -> global average pooling F_k -> S_c
    layers.py    the layers as pure NCHW functions (loop twins in layers_loop.py)
    checkpoint   reading PyTorch checkpoints safely, the project's .npz weights format
    image.py     loading and preprocessing photos

Start with ``model = load_model()`` and ``model.predict("photo.jpg")``.
"""
from .checkpoint import CheckpointError
from .image import load_image
from .layers import softmax
from .models import DEFAULT_MODEL, Model, export_model, load_model

__version__ = "0.1.0"

__all__ = ["load_model", "Model", "DEFAULT_MODEL", "export_model", "load_image", "softmax",
           "CheckpointError", "__version__"]
