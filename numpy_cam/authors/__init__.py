"""The paper's own network on the authors' own data: their MATLAB demo, reproduced.

``demo``       the authors' ``demo.m`` with ``online = 0``: their GoogLeNet-GAP's w_k^c and the
               ten crops' f_k (bundled, ``numpy_cam/data/authors_cam/``), Eq. 2 per crop with
               ``cam.class_activation_map``, ``mergeTenCrop.m``, ``map2jpg.m`` and MATLAB's jet
``imresize``   MATLAB's ``imresize`` (bicubic, antialiased when shrinking), which the demo resizes with

Start with ``data = load_demo_data()`` and ``run_demo(data)``.
"""
from .demo import (AUTHORS_DATA, DemoData, DemoResult, blend, crop_cams, demo_strip, fc_bias_from_scores,
                   load_demo_data, map2jpg, matlab_jet, merge_ten_crops, run_demo)
from .imresize import imresize, resize_matrix

__all__ = ["AUTHORS_DATA", "DemoData", "DemoResult", "load_demo_data", "crop_cams", "merge_ten_crops",
           "matlab_jet", "map2jpg", "blend", "run_demo", "fc_bias_from_scores", "demo_strip",
           "imresize", "resize_matrix"]
