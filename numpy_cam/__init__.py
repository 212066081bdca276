"""numpy-cam: Class Activation Maps (Zhou et al., CVPR 2016) in plain NumPy.

The package by role (each module's docstring cites the paper's section or equation):

The paper, in order
    models/         the networks: x -> f_k, the last conv maps (Sec. 2) -> F_k -> S_c
    cam.py          Eq. 2: M_c(x, y) = sum_k w_k^c f_k(x, y); its terms (``cam_terms``, Fig. 2);
                    a class by index or name (``resolve_class``); top-k; normalisation; to_heatmap
    upsample.py     bilinear upsampling of M_c to the image, written out
    localize.py     Sec. 3: threshold, largest connected component, bounding box, IoU
    metrics/        localisation scored: the paper's top-1 / GT-known and Choe et al.'s MaxBoxAcc,
                    MaxBoxAccV2 and a calibrated threshold (``boxes``), PxAP against masks
                    (``pixels``); OpenCV's contour rule written out (``contours``)
    visualize.py    jet colormap, overlay, box, figures (``montage``, ``weighted_sum_figure``: Fig. 2)
    explain.py      all of it on one photo, every step kept (``explain_image``); its figure
Its neighbours
    family/         the CAM family on the same head, gradients written out: ``gradients``,
                    ``gradcam`` (Grad-CAM, XGrad-CAM, HiResCAM, LayerCAM), ``gradcam_pp``,
                    ``scorecam``, ``eigencam``; which coincide with CAM and why (``method_map``)
    presets.py      each peer's post-processing of a raw map as a named preset (``postprocess``)
    compare.py      the cross-library table: each method through each peer's preset
                    (``cross_library_table``, ``python -m numpy_cam.compare``)
    released_code.py  the authors' released box generator (dt_box), for comparison
    authors/        the paper's own GoogLeNet-GAP on the authors' data (data/authors_cam/): ``demo``
                    (their MATLAB demo.m: ten crops, mergeTenCrop.m, map2jpg.m, MATLAB's jet) and
                    ``imresize`` (MATLAB's bicubic imresize, antialiased when shrinking)
The engine
    layers/         the layers as pure NCHW functions (``layers``), their loop twins
                    (``layers.loop``) and the speed kernels behind them (``layers._kernels``)
    models/         ``load_model`` and the registry (``__init__``), ``Model`` (``model.py``), one
                    file per architecture (``efficientnet_lite``: Lite0/1/2, ``resnet``,
                    ``keras_resnet``, ``small``) and the conv + batch-norm unit (``conv_bn``);
                    ``load_model(..., layers={"conv2d": f})`` / ``Model.with_layers``: the same
                    network with other layer functions (``models.Layers``)
Input and output
    io/             ``io.checkpoint`` (the .npz format, weights checked at load, the memory
                    bound), ``io.torch_pickle`` (zip checks, PyTorch's layouts read without torch
                    or running code), ``io.export`` (PyTorch and Keras -> .npz), ``io.image``
                    (loading, preprocessing, PNG writing)
The experiment
    gap_gmp/        GAP vs GMP on synthetic data with exact boxes: ``synthetic`` (and its regimes),
                    ``evaluate``, ``rescore`` (calibrated thresholds, MaxBoxAcc(V2), PxAP,
                    baselines), ``report`` (``python -m numpy_cam.gap_gmp rescore``),
                    ``python -m numpy_cam.gap_gmp``
The tools
    cli.py          the ``numpy-cam`` command (``__main__.py``: ``python -m numpy_cam``)
    _outputs.py     what the command may read and write: regular files in, only its own files out
    _opencv_resize.py  cv2.resize's uint8 bilinear fixed point, level for level (the authors'
                    PyTorch demo's preset)
    _checks.py      the one validation policy (TypeError / ValueError, checked once at the boundary)
    testing/        checkers for exercises: ``check_conv2d`` ... ``check_localize`` run the
                    project's cases, golden stages (a golden.npz subset) and identities against a
                    student's function and name the likely mistake (``layer_checks``,
                    ``map_checks``, ``box_checks``; ``cases``: ``CheckFailed``); ``report``
    data/           the bundled photos, the ImageNet class names, the small GAP / GMP nets and
                    their results, the authors' GoogLeNet-GAP data (package data)

Start with ``model = load_model()`` and ``explain_image(model, "photo.jpg")``.
"""
import pathlib

from .cam import class_activation_map, normalize, resolve_class, to_heatmap, top_classes
from .explain import CamResult, explain_image
from .io.checkpoint import CheckpointError
from .io.image import load_image
from .layers import softmax
from .localize import iou
from .models import DEFAULT_MODEL, Model, export_model, load_model
from .upsample import upsample_bilinear
from .visualize import apply_colormap, draw_box, overlay

__version__ = "0.2.0"

DATA = pathlib.Path(__file__).parent / "data"      # the bundled photos: DATA / "coffee.png"

__all__ = ["load_model", "Model", "DEFAULT_MODEL", "export_model", "explain_image", "CamResult",
           "class_activation_map", "resolve_class", "top_classes", "normalize", "to_heatmap", "upsample_bilinear",
           "iou", "apply_colormap", "overlay", "draw_box", "load_image", "softmax",
           "CheckpointError", "DATA", "__version__"]
