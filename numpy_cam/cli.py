"""The ``numpy-cam`` command: top-k classes, and a CAM overlay with its box, for each image.

    numpy-cam IMAGE [IMAGE | DIR ...] [--model NAME|PATH] [--class INDEX|NAME] [--top-k K]
              [--method NAME] [--out DIR] [--json] [--alpha A] [--threshold T]
    numpy-cam export SOURCE --arch NAME --out FILE.npz [--classes FILE] [--num-classes N]
    numpy-cam explain IMAGE [--class INDEX|NAME] [--top-k K] [--model NAME|PATH] [--out FILE.png]
    numpy-cam --version

Writes ``<out>/<image name>_cam.png`` for the chosen class (default: the top-1);
``--method gradcam`` (any of ``numpy_cam.family.METHODS``) maps it with another member of the
family instead and writes ``<image name>_gradcam.png``. With
``--json`` stdout carries one JSON record per image and nothing else (never NaN or Infinity:
an image whose class scores are not finite is an error of that image). ``--top-k`` defaults
to min(5, classes). Bad input: one line on stderr, exit code 2, no traceback, no partial file
(PNG files are written atomically). A file whose name starts with "-" goes after ``--``
(``numpy-cam -- -x.png``). Stopped by Ctrl-C (SIGINT) or SIGTERM: one line on stderr, exit
code 130 or 143 (128 + the signal, the shell's convention), and the temporary file of a PNG
being written is removed. A closed stdout (``numpy-cam ... | head``) ends the command quietly
with exit code 141 (128 + SIGPIPE, what a Unix tool killed by the closed pipe returns).

What may be read and written is checked before the model loads (``_outputs``): inputs are
regular files; the tool replaces only files it wrote (its PNGs carry the text chunk
``_outputs.MARK``), never an input, a folder, a device, a FIFO or a link; a folder scan skips
the PNGs numpy-cam wrote and says how many on stderr.

Each option is checked once (the policy of ``_checks``). argparse ``type=`` functions convert
and check what needs nothing else: ``--alpha`` and ``--threshold`` (``unit_interval``), and
``--top-k`` as an int. What needs the model is checked once it is loaded: ``--top-k``'s upper
bound (the number of classes; its lower bound is checked there too, so that 0 and 1001 get the
same message) and ``--class`` (``cam.resolve_class``, the API's resolver: an index or a name).
Then the command calls the unchecked ``explain._explain_image`` / ``explain._explain_figure``,
so nothing is checked a second time.
"""
import argparse
import json
import os
import signal
import sys
import warnings

import numpy as np
from PIL import Image

from . import __version__
from ._checks import check_unit_interval
from ._outputs import (MARK, BadInput, check_input, check_output_file, collect_images, make_output_folder,
                       plan_outputs)
from .cam import resolve_class
from .family import METHODS
from .io.checkpoint import CheckpointError

EXIT_BAD_INPUT = 2
ERRORS = (BadInput, ValueError, TypeError, CheckpointError, OSError)     # what a bad input raises


class _Parser(argparse.ArgumentParser):
    """argparse with the command's error line; a file named like an option gets a hint."""

    def parse(self, argv):
        self._argv = list(argv)
        return self.parse_args(self._argv)

    def error(self, message):
        dashed = self._dashed_file(message)
        if dashed is not None:
            message = (f"{dashed} is read as an option; to give the file {dashed}, put it after --: "
                       f"{self.prog} [options] -- {dashed}")
        self.exit(EXIT_BAD_INPUT, f"numpy-cam: error: {message}\n")

    def _dashed_file(self, message):
        """An argument before "--" that starts with "-", is none of our options, names an existing
        file and is what argparse complains about (or the missing IMAGE it was meant to be)."""
        argv = getattr(self, "_argv", [])
        for arg in argv[:argv.index("--")] if "--" in argv else argv:
            if (arg.startswith("-") and arg != "-" and arg.split("=", 1)[0] not in self._option_string_actions
                    and os.path.lexists(arg) and (arg in message or "arguments are required" in message)):
                return arg
        return None


def unit_interval(option):
    """An argparse ``type=`` for ``option``: a float in [0, 1], else "--alpha must be between 0 and 1; got 1.5"."""
    def convert(text):
        try:
            value = float(text)
        except ValueError:
            value = text                        # not a number: check_unit_interval says so
        try:
            return check_unit_interval(option, value)
        except (TypeError, ValueError) as err:  # the message as it is, not "argument --alpha: ..."
            raise argparse.ArgumentError(None, str(err)) from None
    return convert


SUBCOMMANDS = """subcommands (numpy-cam explain -h, numpy-cam export -h for their options):
  numpy-cam explain IMAGE  one figure that shows every step of CAM on one image
  numpy-cam export SOURCE  a PyTorch or Keras checkpoint -> a numpy-cam .npz weights file"""


def build_parser():
    p = _Parser(prog="numpy-cam", description="Class Activation Maps (Zhou et al., CVPR 2016) in plain NumPy:\n"
                "classify images and show which region made the network say so.",
                epilog=SUBCOMMANDS, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"numpy-cam {__version__}")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    p.add_argument("--model", default="efficientnet_lite0", help="a model name or an exported .npz file "
                   "(default: efficientnet_lite0)")
    p.add_argument("--class", dest="class_", metavar="INDEX|NAME",
                   help="the class to map (default: each image's top-1 class)")
    p.add_argument("--top-k", type=int, help="how many classes to print (default: 5, or all if fewer)")
    p.add_argument("--method", default="cam", choices=METHODS, help="the map: CAM (Eq. 2, the default) or another "
                   "member of the family (scorecam runs a forward pass per feature map: about 50 s per image)")
    p.add_argument("--out", default=".", help="folder for the <name>_cam.png files (default: .)")
    p.add_argument("--json", action="store_true", help="print one JSON record per image")
    p.add_argument("--alpha", type=unit_interval("--alpha"), default=0.5,
                   help="heatmap weight in the overlay, 0..1 (default 0.5)")
    p.add_argument("--threshold", type=unit_interval("--threshold"), default=0.2,
                   help="box threshold, 0..1, on the map min-max normalised to [0, 1] (default 0.2: the "
                   "paper's 20%% of the max)")
    return p


def run_one(model, image_path, out_path, class_idx, args):
    """Explain one image and write its picture; returns the JSON record. args: checked by ``main``."""
    from .explain import _explain_image
    from .io.image import save_png
    size = os.path.getsize(image_path)
    if size == 0:
        raise BadInput(f"{image_path}: empty file (0 bytes), expected an image")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            result = _explain_image(model, image_path, class_idx, args.top_k, args.threshold, args.alpha,
                                    connectivity=8, method=args.method)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
            raise BadInput(f"{image_path}: refusing an image over Pillow's decompression-bomb limit of "
                           f"{Image.MAX_IMAGE_PIXELS} pixels ({err})") from err
    check_finite(image_path, result.logits)
    save_png(out_path, result.picture, text=MARK)
    c = result.class_idx
    return {"image": image_path, "size": [int(result.image.shape[1]), int(result.image.shape[0])],
            "crop": list(result.crop),
            "classes": [{"index": i, "name": n, "probability": p} for i, n, p in result.top],
            "class": {"index": c, "name": model.class_names[c], "probability": float(result.probs[c])},
            "bbox": None if result.bbox is None else [int(v) for v in result.bbox], "output": out_path,
            "method": result.method}


def check_finite(image_path, scores):
    """Non-finite class scores (NaN or infinity) give no probabilities: an error of that image."""
    if not np.all(np.isfinite(scores)):
        raise BadInput(f"{image_path}: the model's class scores are not finite (NaN or infinity) for this "
                       "image, so there are no probabilities to report; check the weights file")


def _top_k(top_k, num_classes):
    """--top-k as given, checked against the number of classes; not given: min(5, classes)."""
    from .cam import checked_top_k
    return checked_top_k(top_k, num_classes, "--top-k")


def _stats(paths):
    """[(path, os.stat_result)] of files this run reads, for ``check_output_file``."""
    return [(path, os.stat(path)) for path in paths]


def _model_inputs(model):
    """--model as an input of the run when it names a file; a model name or a missing path: none
    (``load_model`` then says "unknown model ...")."""
    from .models import BUILTIN, PACKAGED_WEIGHTS
    if model in BUILTIN or model in PACKAGED_WEIGHTS or not os.path.lexists(model):
        return []
    return [(model, check_input(model, "--model"))]


def _print_record(record):
    print(record["image"])
    for cls in record["classes"]:
        print(f"  {cls['probability']:7.2%}  {cls['index']:4d}  {cls['name']}")
    c, box = record["class"], record["bbox"]
    where = "no box (the map is constant)" if box is None else "box x0,y0,x1,y1 = " + ",".join(map(str, box))
    label = "CAM" if record["method"] == "cam" else record["method"]
    print(f"  wrote {record['output']}: {label} of {c['index']} {c['name']}, {where}")


def _one_line(err):
    return " ".join(str(err).split())


def _fail(message):
    """Report bad input the one way the command does: one line on stderr, exit code 2."""
    print(f"numpy-cam: error: {_one_line(message)}", file=sys.stderr)
    return EXIT_BAD_INPUT


def export_main(argv):
    """numpy-cam export SOURCE --arch NAME --out FILE.npz: a checkpoint -> the project's format."""
    p = _Parser(prog="numpy-cam export", description="Convert a PyTorch checkpoint (state dict) or a "
                "Keras model file to numpy-cam's .npz weights format. No torch needed for PyTorch files.")
    p.add_argument("source", help="a PyTorch checkpoint (.pth, .pt) or a Keras model (.keras)")
    p.add_argument("--arch", required=True, help="the architecture, e.g. resnet50, keras_resnet50")
    p.add_argument("--out", required=True, help="the .npz file to write")
    p.add_argument("--classes", metavar="FILE", help="the class names, one a line, one per output of the FC "
                   "head (default: ImageNet's for a 1000-class head, else 'class 0', 'class 1', ...)")
    p.add_argument("--num-classes", type=int, metavar="N", help="the number of classes, checked against the "
                   "FC head (default: the head's)")
    try:
        args = p.parse(argv)
    except SystemExit as stop:
        return stop.code
    try:
        from .io.export import export_checkpoint, read_class_names
        inputs = [(args.source, check_input(args.source, "SOURCE"))]
        if args.classes is not None:
            inputs.append((args.classes, check_input(args.classes, "--classes")))
        check_output_file(args.out, "--out", inputs)
        class_names = None if args.classes is None else read_class_names(args.classes)
        metadata = export_checkpoint(args.source, args.out, args.arch, class_names=class_names,
                                     num_classes=args.num_classes)
    except (*ERRORS, ImportError) as err:
        return _fail(err)
    print(f"wrote {args.out} ({args.arch}, {metadata['num_classes']} classes)")
    return 0


def explain_main(argv):
    """numpy-cam explain IMAGE [--class INDEX|NAME] [--top-k K] [--out FILE]: one figure of every step."""
    p = _Parser(prog="numpy-cam explain", description="One PNG showing every step of CAM on one image.")
    p.add_argument("image")
    p.add_argument("--class", dest="class_", metavar="INDEX|NAME", help="default: the top-1 class")
    p.add_argument("--top-k", type=int, help="how many classes to print (default: 5, or all if fewer)")
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--out", help="the PNG to write (default: <image name>_explain.png here)")
    try:
        args = p.parse(argv)
    except SystemExit as stop:
        return stop.code
    out = os.path.splitext(os.path.basename(args.image))[0] + "_explain.png" if args.out is None else args.out
    try:
        inputs = [(args.image, check_input(args.image))] + _model_inputs(args.model)
        check_output_file(out, "--out", inputs)
        from .explain import _explain_figure
        from .io.image import save_png
        from .models import load_model
        model = load_model(args.model)
        top_k = _top_k(args.top_k, model.num_classes)
        figure, numbers = _explain_figure(model, args.image, resolve_class(model, args.class_, "--class"),
                                          threshold=0.2, top_weights=6, top_k=top_k)
        check_finite(args.image, [numbers["logit"], numbers["probability"], numbers["mean_cam_plus_bias"]])
        save_png(out, figure, text=MARK)
    except ERRORS as err:
        return _fail(err)
    print(f"wrote {out}: class {numbers['class']} {numbers['name']}, S_c = {numbers['logit']:.4f}, "
          f"mean(M_c) + b_c = {numbers['mean_cam_plus_bias']:.4f}")
    for index, name, probability in numbers["top"]:
        print(f"  {probability:7.2%}  {index:4d}  {name}")
    return 0


EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_BROKEN_PIPE = 130, 143, 141   # 128 + SIGINT, SIGTERM, SIGPIPE


class _Terminated(BaseException):
    """SIGTERM, raised where the program is, so that cleanup (``save_png``'s) runs as for Ctrl-C."""


def _raise_terminated(signum, frame):
    raise _Terminated


def main(argv=None):
    """The command; returns its exit code. SIGINT, SIGTERM and a closed stdout end it cleanly."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:                          # not the main thread: leave SIGTERM alone
        previous = None
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("numpy-cam: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print("numpy-cam: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except BrokenPipeError:                     # the reader of stdout has gone: say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())   # so that the flush at exit cannot fail again
        return EXIT_BROKEN_PIPE
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        return export_main(argv[1:])
    if argv[:1] == ["explain"]:
        return explain_main(argv[1:])
    try:
        args = build_parser().parse(argv)
    except SystemExit as stop:                  # --help, or a usage error already printed
        return stop.code
    try:                                        # every path first, then the model, then the options
        images, skipped = collect_images(args.images)
        outputs = plan_outputs(images, args.out, _stats(images) + _model_inputs(args.model), f"_{args.method}.png")
        from .models import load_model
        model = load_model(args.model)
        args.top_k = _top_k(args.top_k, model.num_classes)
        class_idx = resolve_class(model, args.class_, "--class")
        make_output_folder(args.out)
    except ERRORS as err:
        return _fail(err)
    for folder, count in skipped.items():       # a note, not an error: the run goes on
        print(f"numpy-cam: {folder}: skipped {count} PNG file{'s' * (count > 1)} that numpy-cam wrote "
              "(its own outputs)", file=sys.stderr)
    failed = 0
    for i, (image, out) in enumerate(zip(images, outputs), 1):
        if len(images) > 1:
            print(f"[{i}/{len(images)}] {image}", file=sys.stderr)
        try:
            record = run_one(model, image, out, class_idx, args)
            line = json.dumps(record, allow_nan=False) if args.json else None
        except (BadInput, ValueError, TypeError, OSError) as err:
            message = _one_line(err)
            print(f"numpy-cam: error: {message if image in message else f'{image}: {message}'}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(line)
        else:
            _print_record(record)
    return EXIT_BAD_INPUT if failed else 0


if __name__ == "__main__":
    sys.exit(main())
