"""numpy-cam: Class Activation Maps (Zhou et al., CVPR 2016) in plain NumPy.

The package, in the order of the paper:

    models/       the networks: x -> f_k (Sec. 2) -> global average pooling F_k -> S_c
    layers.py     the layers as pure NCHW functions (loop twins in layers_loop.py)
    cam.py        Eq. 2: M_c(x, y) = sum_k w_k^c f_k(x, y); normalisation
    upsample.py   bilinear upsampling of M_c to the image, written out
    localize.py   Sec. 3: threshold, largest connected component, bounding box, IoU
    released_code the authors' released box generator (dt_box), for comparison
    visualize.py  jet colormap, overlay, box
    pipeline.py   all of it on one photo, every intermediate kept
    gradcam.py    Grad-CAM on the same head, and why it equals ReLU(M_c) / (h w)
    checkpoint    reading PyTorch checkpoints safely, the project's .npz weights format
    image.py      loading and preprocessing photos

Start with ``model = load_model()`` and ``explain_image(model, "photo.jpg")``.
"""
import pathlib

from .cam import class_activation_map, heatmap, normalize, top_classes
from .checkpoint import CheckpointError
from .image import load_image
from .layers import softmax
from .localize import iou
from .models import DEFAULT_MODEL, Model, export_model, load_model
from .pipeline import CamResult, explain_image
from .upsample import upsample_bilinear
from .visualize import apply_colormap, draw_box, overlay

__version__ = "0.1.0"

DATA = pathlib.Path(__file__).parent / "data"      # the bundled photos: DATA / "coffee.png"

__all__ = ["load_model", "Model", "DEFAULT_MODEL", "export_model", "explain_image", "CamResult",
           "class_activation_map", "top_classes", "normalize", "heatmap", "upsample_bilinear",
           "iou", "apply_colormap", "overlay", "draw_box", "load_image", "softmax",
           "CheckpointError", "DATA", "__version__"]
