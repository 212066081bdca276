"""The ``numpy-cam`` command.

    numpy-cam IMAGE [IMAGE ...] [--model NAME|PATH] [--top-k K]

prints the top-k classes of each image. Bad input gets one line on stderr and exit code 2,
never a traceback.
"""
import argparse
import os
import sys

from .checkpoint import CheckpointError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"numpy-cam: error: {message}\n")


def build_parser():
    p = _Parser(prog="numpy-cam", description="Class Activation Maps in plain NumPy: classify images.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--model", default="efficientnet_lite0", help="a model name or an exported .npz file")
    p.add_argument("--top-k", type=int, default=5, help="how many classes to print (default 5)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        from .models import load_model
        model = load_model(args.model)
        if not 1 <= args.top_k <= model.num_classes:
            raise ValueError(f"--top-k must be between 1 and {model.num_classes}; got {args.top_k}")
        for path in args.images:
            if not os.path.isfile(path):
                raise ValueError(f"{path}: no such file")
            print(path)
            for index, name, prob in model.predict(path, top_k=args.top_k):
                print(f"  {prob:7.2%}  {index:4d}  {name}")
    except (ValueError, TypeError, CheckpointError, OSError) as err:
        print(f"numpy-cam: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
