"""Checkers for exercises: run the project's checks against a student's function.

Each ``check_<name>(fn)`` takes any function with the signature of the reference of that name
and runs, against it: small hand-built cases with exact answers, random cases against the
project's loop twins, identities of the paper (mean(M_c) + b_c = S_c), and, for the layers,
the golden stages of a real network run with ``fn`` in it. It returns the number of cases
passed, or raises ``CheckFailed`` (an ``AssertionError``) at the first failing case, with a
message that names the case, shows the expected and the returned values and, when the answer
is that of a typical mistake (the kernel flipped, a sum for a mean, the corner-aligned grid,
the bias in the map, exclusive box ends, ...), names the mistake and the right rule.

The layers (``layer_checks``, paper Sec. 2)
    ``check_conv2d``, ``check_same_padding``, ``check_relu6``, ``check_global_avg_pool``,
    ``check_linear``
Eq. 2 and the upsampling (``map_checks``, Sec. 2)
    ``check_cam``, ``check_source_coordinates``, ``check_upsample_bilinear``
The box and the IoU (``box_checks``, Sec. 3)
    ``check_bbox``, ``check_iou``, ``check_localize``
How a case is run and explained: ``cases`` (``CheckFailed``, ``Mistake``).

A student's layer in the real network is one call, with no checker at all:
``numpy_cam.load_model(layers={"conv2d": my_conv2d}).predict(numpy_cam.DATA / "coffee.png")``
(or ``model.with_layers(conv2d=my_conv2d)``; ``numpy_cam.models.Layers`` lists the names).

In a notebook, ``report(check_conv2d, conv2d)`` runs a checker and prints the outcome; a
skeleton that still raises NotImplementedError is reported as "not implemented yet" instead
of failing, so a notebook handed out unsolved runs from top to bottom.
"""
from .box_checks import check_bbox, check_iou, check_localize
from .cases import CheckFailed, Mistake
from .layer_checks import check_conv2d, check_global_avg_pool, check_linear, check_relu6, check_same_padding
from .map_checks import check_cam, check_source_coordinates, check_upsample_bilinear

__all__ = ["CheckFailed", "Mistake", "report", "check_conv2d", "check_same_padding", "check_relu6",
           "check_global_avg_pool", "check_linear", "check_cam", "check_source_coordinates",
           "check_upsample_bilinear", "check_bbox", "check_iou", "check_localize"]


def report(check, fn, **kwargs):
    """Run ``check(fn, **kwargs)`` and print the outcome; True when every case passes.

    A ``fn`` that raises NotImplementedError (an unsolved skeleton) prints "not implemented
    yet" and gives False; a failing case raises ``CheckFailed`` as the checker does.
    """
    name = getattr(fn, "__name__", repr(fn))
    try:
        passed = check(fn, **kwargs)
    except NotImplementedError:
        print(f"{name}: not implemented yet ({check.__name__} not run: the function still raises "
              "NotImplementedError)")
        return False
    print(f"{name}: {check.__name__} passed, all {passed} cases")
    return True
