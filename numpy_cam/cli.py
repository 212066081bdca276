"""The ``numpy-cam`` command: top-k classes, and a CAM overlay with its box, for each image.

    numpy-cam IMAGE [IMAGE | DIR ...] [--model NAME|PATH] [--class INDEX|NAME] [--top-k K]
              [--out DIR] [--json] [--alpha A] [--threshold T]
    numpy-cam export SOURCE --arch NAME --out FILE.npz
    numpy-cam explain IMAGE [--class INDEX|NAME] [--out FILE.png]
    numpy-cam --version

Writes ``<out>/<image name>_cam.png`` for the chosen class (default: the top-1). With
``--json`` stdout carries one JSON record per image and nothing else. Bad input: one line on
stderr, exit code 2, no traceback, no partial file (PNG files are written atomically).
Stopped by Ctrl-C (SIGINT) or SIGTERM: one line on stderr, exit code 130 or 143 (128 + the
signal, the shell's convention), and the temporary file of a PNG being written is removed. A
closed stdout (``numpy-cam ... | head``) ends the command quietly with exit code 141 (128 +
SIGPIPE, what a Unix tool killed by the closed pipe returns).

Each option is checked once (the policy of ``_checks``). argparse ``type=`` functions convert
and check what needs nothing else: ``--alpha`` and ``--threshold`` (``unit_interval``), and
``--top-k`` as an int. What needs the model is checked once it is loaded: ``--top-k``'s upper
bound (the number of classes; its lower bound is checked there too, so that 0 and 1001 get the
same message) and ``--class`` (``resolve_class``). Then the command calls the unchecked
``explain._explain_image`` / ``explain._explain_figure``, so nothing is checked a second time.
"""
import argparse
import difflib
import json
import os
import signal
import sys
import warnings

from PIL import Image

from . import __version__
from ._checks import check_int_range, check_unit_interval
from .io.checkpoint import CheckpointError

EXIT_BAD_INPUT = 2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class BadInput(Exception):
    """Anything the user can fix: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"numpy-cam: error: {message}\n")


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
    p.add_argument("--top-k", type=int, default=5, help="how many classes to print (default 5)")
    p.add_argument("--out", default=".", help="folder for the <name>_cam.png files (default: .)")
    p.add_argument("--json", action="store_true", help="print one JSON record per image")
    p.add_argument("--alpha", type=unit_interval("--alpha"), default=0.5,
                   help="heatmap weight in the overlay, 0..1 (default 0.5)")
    p.add_argument("--threshold", type=unit_interval("--threshold"), default=0.2,
                   help="box threshold as a fraction of the map's max, 0..1 (default 0.2, the paper's)")
    return p


def resolve_class(text, class_names):
    """A class given as an index or a name (any of its comma-separated synonyms, any case)."""
    if text is None:
        return None
    n = len(class_names)
    if text.strip().lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < n:
            raise BadInput(f"class index {index} is out of range: expected 0..{n - 1}")
        return index
    wanted = text.strip().lower()
    hits = [i for i, name in enumerate(class_names)
            if wanted == name.lower() or wanted in (s.strip().lower() for s in name.split(","))]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise BadInput(f"class name {text!r} is ambiguous: it names classes "
                       + ", ".join(f"{i} ({class_names[i]})" for i in hits) + "; give the index")
    close = difflib.get_close_matches(wanted, [n.lower() for n in class_names], n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise BadInput(f"unknown class name {text!r}: expected an index 0..{n - 1} or a class name{hint}")


def collect_images(paths):
    """Image files from the arguments: files as given, folders' image files in sorted order."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            inside = sorted(os.path.join(path, name) for name in os.listdir(path)
                            if name.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(path, name)))
            if not inside:
                raise BadInput(f"{path}: folder holds no image files (expected {', '.join(IMAGE_SUFFIXES)})")
            found.extend(inside)
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise BadInput(f"{path}: no such file or folder")
    return found


def output_paths(images, out):
    """<out>/<stem>_cam.png for each image; two inputs may not write the same file."""
    if not os.path.isdir(out):
        try:
            os.makedirs(out)
        except OSError as err:
            raise BadInput(f"cannot create the output folder {out}: {err.strerror}") from err
    if not os.access(out, os.W_OK | os.X_OK):
        raise BadInput(f"the output folder {out} is not writable")
    paths = [os.path.join(out, os.path.splitext(os.path.basename(p))[0] + "_cam.png") for p in images]
    seen = {}
    for image, path in zip(images, paths):
        if path in seen:
            raise BadInput(f"{seen[path]} and {image} would both write {path}; process them separately")
        seen[path] = image
    return paths


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
                                    connectivity=8)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
            raise BadInput(f"{image_path}: refusing an image over Pillow's decompression-bomb limit of "
                           f"{Image.MAX_IMAGE_PIXELS} pixels ({err})") from err
    save_png(out_path, result.picture)
    c = result.class_idx
    return {"image": image_path, "size": [int(result.image.shape[1]), int(result.image.shape[0])],
            "crop": list(result.crop),
            "classes": [{"index": i, "name": n, "probability": p} for i, n, p in result.top],
            "class": {"index": c, "name": model.class_names[c], "probability": float(result.probs[c])},
            "bbox": None if result.bbox is None else [int(v) for v in result.bbox], "output": out_path}


def _print_record(record):
    print(record["image"])
    for cls in record["classes"]:
        print(f"  {cls['probability']:7.2%}  {cls['index']:4d}  {cls['name']}")
    c, box = record["class"], record["bbox"]
    where = "no box (the map is constant)" if box is None else "box x0,y0,x1,y1 = " + ",".join(map(str, box))
    print(f"  wrote {record['output']}: CAM of {c['index']} {c['name']}, {where}")


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
    try:
        args = p.parse_args(argv)
    except SystemExit as stop:
        return stop.code
    try:
        from .io.export import export_checkpoint
        export_checkpoint(args.source, args.out, args.arch)
    except (ValueError, TypeError, CheckpointError, OSError, ImportError) as err:
        return _fail(err)
    print(f"wrote {args.out} ({args.arch})")
    return 0


def explain_main(argv):
    """numpy-cam explain IMAGE [--class INDEX|NAME] [--out FILE]: one figure of every step."""
    p = _Parser(prog="numpy-cam explain", description="One PNG showing every step of CAM on one image.")
    p.add_argument("image")
    p.add_argument("--class", dest="class_", metavar="INDEX|NAME", help="default: the top-1 class")
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--out", help="the PNG to write (default: <image name>_explain.png here)")
    try:
        args = p.parse_args(argv)
    except SystemExit as stop:
        return stop.code
    out = args.out or os.path.splitext(os.path.basename(args.image))[0] + "_explain.png"
    try:
        if not os.path.isfile(args.image):
            raise BadInput(f"{args.image}: no such file")
        from .explain import _explain_figure
        from .io.image import save_png
        from .models import load_model
        model = load_model(args.model)
        figure, numbers = _explain_figure(model, args.image, resolve_class(args.class_, model.class_names),
                                          threshold=0.2, top_weights=6)
        save_png(out, figure)
    except (BadInput, ValueError, TypeError, CheckpointError, OSError) as err:
        return _fail(err)
    print(f"wrote {out}: class {numbers['class']} {numbers['name']}, S_c = {numbers['logit']:.4f}, "
          f"mean(M_c) + b_c = {numbers['mean_cam_plus_bias']:.4f}")
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
        args = build_parser().parse_args(argv)
    except SystemExit as stop:                  # --help, or a usage error already printed
        return stop.code
    try:
        images = collect_images(args.images)
        from .models import load_model
        model = load_model(args.model)
        check_int_range("--top-k", args.top_k, 1, model.num_classes)
        class_idx = resolve_class(args.class_, model.class_names)
        outputs = output_paths(images, args.out)
    except (BadInput, ValueError, TypeError, CheckpointError, OSError) as err:
        return _fail(err)
    failed = 0
    for i, (image, out) in enumerate(zip(images, outputs), 1):
        if len(images) > 1:
            print(f"[{i}/{len(images)}] {image}", file=sys.stderr)
        try:
            record = run_one(model, image, out, class_idx, args)
        except (BadInput, ValueError, TypeError, OSError) as err:
            message = _one_line(err)
            print(f"numpy-cam: error: {message if image in message else f'{image}: {message}'}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps(record))
        else:
            _print_record(record)
    return EXIT_BAD_INPUT if failed else 0


if __name__ == "__main__":
    sys.exit(main())
