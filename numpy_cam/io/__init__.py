"""Input and output at the edges of the package: nothing here computes CAM.

    checkpoint.py    the project's .npz format; weights and metadata checked at load; the memory bound
    torch_pickle.py  zip checks; PyTorch's two checkpoint layouts, read without torch, each pickle
                     scanned before the whitelisting unpickler runs it
    export.py        PyTorch checkpoints and Keras models -> the .npz format (``numpy-cam export``)
    image.py         Pillow <-> NumPy: load (EXIF orientation, one rule per mode), crop, resize,
                     normalise; PNG writing and reading its text chunks

``name_limit`` is here because both writers (``save_png``, ``save_weights``) and the command's
checks keep their file names within it.
"""
import os


def name_limit(folder):
    """The longest file name the folder's file system takes, in bytes (255 where it cannot say)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):                        # Windows, or no such setting
        return 255
