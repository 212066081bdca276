"""Running the peer libraries (pytorch-grad-cam, torchcam, captum) on the plain-torch reference nets.

Like ``torch_models.py`` this imports nothing from ``numpy_cam``: it is the peers' side of
``test_presets.py``. Import it after ``pytest.importorskip("torch")``.

Two things stand between the peers and ``torch_models.EfficientNetLite``:

- the peers hook a module's output, and the reference net applies one ``nn.ReLU6`` module
  (``_relu6``) both after the stem and after the head, so a hook on it fires twice.
  ``HookableLite`` runs the same layers with the head's ReLU6 as a module of its own,
  ``head_relu``, whose output is the CAM features f_k.
- pytorch-grad-cam 1.5.7 imports torchvision at import time (for helpers a CAM computation does
  not call), and PyPI's torchvision does not load beside the CPU torch wheel.
  ``import_pytorch_grad_cam`` imports it with a stand-in torchvision that raises when used.
"""
import contextlib
import importlib
import importlib.util
import sys
import types

import torch
from torch import nn


class HookableLite(nn.Module):
    """An ``EfficientNetLite`` run layer by layer, the head's ReLU6 a module of its own (``head_relu``)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.head_relu = nn.ReLU6()

    def forward(self, x):
        net = self.net
        h = net._relu6(net._bn0(net._conv_stem(x)))                    # (N, 32, H/2, W/2)
        for block in net._blocks:
            h = block(h)
        features = self.head_relu(net._bn1(net._conv_head(h)))         # (N, 1280, h, w): f_k
        return net._fc(net._dropout(features.mean(dim=(2, 3))))        # (N, 1000)


class _Unavailable(types.ModuleType):
    """A stand-in module: every attribute is a callable that raises, so an import succeeds and a use fails."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError(f"torchvision is not installed; {self.__name__}.{name} was called")
        return unavailable


@contextlib.contextmanager
def _stand_in_torchvision():
    names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
    if importlib.util.find_spec("torchvision") is not None:
        yield
        return
    sys.modules.update({name: _Unavailable(name) for name in names})
    try:
        yield
    finally:                                                            # nothing else sees the stand-in
        for name in names:
            sys.modules.pop(name, None)


def import_pytorch_grad_cam():
    """``pytorch_grad_cam``, imported (with a stand-in torchvision when torchvision is absent)."""
    with _stand_in_torchvision():
        return importlib.import_module("pytorch_grad_cam")


def grad_cam_pytorch_grad_cam(model, x, classes):
    """pytorch-grad-cam's GradCAM on ``model.head_relu`` for class ``classes[n]`` of image n: its
    final map, (N, H, W) float32."""
    pgc = import_pytorch_grad_cam()
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    with pgc.GradCAM(model=model, target_layers=[model.head_relu]) as method:
        return method(input_tensor=torch.from_numpy(x), targets=[ClassifierOutputTarget(c) for c in classes])


def torchcam_map(model, x, classes, method="GradCAM"):
    """torchcam's ``method`` ("GradCAM" or "CAM") on ``model.head_relu``, class ``classes[n]`` for
    image n: its map, (N, h, w) float32."""
    from torchcam import methods
    kwargs = {"fc_layer": model.net._fc} if method == "CAM" else {}
    with getattr(methods, method)(model, target_layer=model.head_relu, **kwargs) as extractor:
        scores = model(torch.from_numpy(x))
        (cam,) = extractor(list(classes), scores)
    return cam.detach().numpy()


def torchcam_overlay(rgb, cam):
    """torchcam's ``overlay_mask`` of one (h, w) float32 map on an (H, W, 3) uint8 photo: (H, W, 3) uint8."""
    from PIL import Image
    from torchcam.utils import overlay_mask
    return overlay_mask(Image.fromarray(rgb), Image.fromarray(cam), alpha=0.5)


def captum_grad_cam(model, x, classes, size):
    """captum's LayerGradCam on ``model.head_relu`` (its defaults), then LayerAttribution.interpolate
    (its default mode) to ``size``: (N, H, W) float32."""
    from captum.attr import LayerAttribution, LayerGradCam
    t = torch.from_numpy(x)
    attribution = LayerGradCam(model, model.head_relu).attribute(t, target=list(classes))   # (N, 1, h, w)
    return LayerAttribution.interpolate(attribution, size)[:, 0].detach().numpy()
