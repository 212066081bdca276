"""What the ``numpy-cam`` command may read and write, checked before any work (``cli``).

Inputs are regular files (or symbolic links to them). A pipe, a device or a socket is refused
with one line rather than read: Pillow seeks in what it decodes, a pipe cannot be read twice,
and opening a FIFO that has no writer would wait forever. So ``/dev/stdin`` redirected from a
file (``numpy-cam /dev/stdin < photo.jpg``) works, and ``cat photo.jpg | numpy-cam /dev/stdin``
is refused with a line that says to save the stream to a file first.

Outputs: the command writes only files it created. An output path that exists is replaced
only when it is a regular file numpy-cam wrote (``written_by_numpy_cam``): a PNG carrying the
text chunk ``MARK``, or a weights ``.npz`` holding ``__metadata__.npy``. Refused with one line
that names the paths: an output that is an input of the same run (the same file, compared by
device and inode, so symbolic links, hard links and ``./x`` vs ``x`` are caught), a folder, a
device, a FIFO, a socket, a symbolic link (even one to a file numpy-cam wrote: ``os.replace``
would replace the link, not its target), an empty name, a name over the file-name limit.

Folders are scanned for the extensions Pillow decodes here (``image_suffixes``). Files
numpy-cam wrote (its ``_cam.png`` overlays, ``_explain.png`` figures) are skipped, so that a
second run with ``--out`` equal to the input folder does not take its own outputs for photos;
named one by one on the command line they are processed.
"""
import functools
import os
import stat
import zipfile

from PIL import EpsImagePlugin, Image, ImageFile

from . import __version__
from .io.image import file_kind as kind
from .io import name_limit

MARK = {"Software": f"numpy-cam {__version__}"}   # the text chunk of every PNG numpy-cam writes
WEIGHTS_MEMBER = "__metadata__.npy"                  # in every .npz that ``save_weights`` writes
COMMON_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")     # named first in messages


class BadInput(Exception):
    """Anything the user can fix: reported as one line, exit code 2."""


@functools.cache
def image_suffixes():
    """The extensions (lower case, with the dot) that a folder scan takes as images.

    Pillow's registered extensions whose format it can open (``Image.OPEN``; MPO files open
    through the JPEG opener), except the formats Pillow only identifies and cannot decode
    here: its stub plugins (BUFR, GRIB, HDF5, WMF: the data need a handler Pillow lacks),
    MPEG (a header reader) and EPS without Ghostscript. So a folder of Keras ``.h5`` files or
    videos is not taken for a folder of images, and a ``.qoi`` or ``.jp2`` photo is.
    """
    Image.init()

    def decodable(fmt):
        factory = Image.OPEN.get("JPEG" if fmt == "MPO" else fmt, (None,))[0]
        if factory is None or isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile):
            return False
        return fmt != "MPEG" and (fmt != "EPS" or bool(EpsImagePlugin.has_ghostscript()))

    found = {ext.lower() for ext, fmt in Image.registered_extensions().items() if decodable(fmt)}
    first = {ext: i for i, ext in enumerate(COMMON_SUFFIXES)}
    return tuple(sorted(found, key=lambda ext: (first.get(ext, len(first)), ext)))


def png_written_by_numpy_cam(path):
    """Whether ``path`` is a PNG carrying ``MARK`` (reads only its text chunks)."""
    from .io.image import read_png_text
    return str(read_png_text(path).get("Software", "")).startswith("numpy-cam ")


def weights_written_by_numpy_cam(path):
    """Whether ``path`` is a zip whose directory lists ``__metadata__.npy`` (reads only the directory)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return WEIGHTS_MEMBER in archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError):
        return False


def written_by_numpy_cam(path):
    return png_written_by_numpy_cam(path) or weights_written_by_numpy_cam(path)


def check_input(path, what="IMAGE", folders=False):
    """The ``os.stat_result`` of an input that is a regular file (or a folder, if allowed); else BadInput."""
    if path == "":
        raise BadInput(f"{what} is an empty string; expected a file name")
    if not os.path.lexists(path):
        raise BadInput(f"{path}: no such file" + (" or folder" if folders else ""))
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise BadInput(f"{path}: a symbolic link to {os.readlink(path)!r}, which does not exist") from None
    except OSError as err:
        raise BadInput(f"{path}: cannot read it ({err.strerror})") from err
    if stat.S_ISREG(info.st_mode) or folders and stat.S_ISDIR(info.st_mode):
        return info
    expected = "a regular file or a folder" if folders else "a regular file"
    hint = "" if stat.S_ISDIR(info.st_mode) else "; numpy-cam reads only regular files (save a stream to a file first)"
    raise BadInput(f"{path}: {kind(info.st_mode)}, not {expected}{hint}")


def collect_images(paths):
    """Image files from the arguments: files as given, folders' image files in sorted order.

    Returns the image paths and {folder: how many files numpy-cam wrote were skipped there}.
    In a folder, only regular files with an ``image_suffixes`` extension are taken: pipes,
    devices and sub-folders are never opened.
    """
    found, skipped = [], {}
    for path in paths:
        if stat.S_ISREG(check_input(path, folders=True).st_mode):
            found.append(path)
            continue
        try:
            names = sorted(os.listdir(path))
        except OSError as err:
            raise BadInput(f"{path}: cannot list the folder ({err.strerror})") from err
        inside = [os.path.join(path, name) for name in names
                  if name.lower().endswith(image_suffixes()) and os.path.isfile(os.path.join(path, name))]
        ours = {file for file in inside if png_written_by_numpy_cam(file)}
        if ours:
            skipped[path] = len(ours)
            inside = [file for file in inside if file not in ours]
        if not inside and ours:
            raise BadInput(f"{path}: folder holds no image files but {len(ours)} that numpy-cam wrote "
                           "(skipped: they are its outputs); name a file to process it")
        if not inside:
            raise BadInput(f"{path}: folder holds no image files (expected {', '.join(COMMON_SUFFIXES)} or "
                           f"another of the {len(image_suffixes())} extensions Pillow decodes here)")
        found.extend(inside)
    return found, skipped


def check_output_file(path, role, inputs, folder_made_later=False):
    """Refuse (BadInput) to write ``path`` unless it is new or a regular file numpy-cam wrote.

    role : how the message names the output ("--out", "the output of d/x.png")
    inputs : list of (path, os.stat_result), every file this run reads
    folder_made_later : whether a missing folder of ``path`` is made before writing (``--out DIR``)
    """
    if path == "":
        raise BadInput("--out is an empty string; expected a file name")
    folder = os.path.dirname(path)
    if not folder_made_later and not os.path.isdir(folder or "."):
        raise BadInput(f"{path} ({role}): the folder {folder} does not exist")
    name_bytes, limit = len(os.fsencode(os.path.basename(path))), name_limit(folder or ".")
    if name_bytes > limit:
        raise BadInput(f"{path} ({role}): the name is {name_bytes} bytes, over the file-name limit of "
                       f"{limit} bytes; choose a shorter name")
    try:
        link = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return                                  # a new file: its folder is checked when it is written
    except OSError as err:
        raise BadInput(f"cannot check {path} ({role}): {err.strerror}") from err
    try:
        info = os.stat(path)
    except OSError:
        info = None                             # a broken symbolic link
    for name, seen in inputs if info is not None else ():
        if os.path.samestat(info, seen):
            same = ("also an input of this run" if os.path.normpath(name) == os.path.normpath(path)
                    else f"the input {name} (the same file)")
            raise BadInput(f"{path} ({role}) is {same}; numpy-cam never replaces an input: choose another --out")
    if stat.S_ISLNK(link.st_mode):
        broken = "" if info is not None else ", which does not exist"
        raise BadInput(f"{path} ({role}) is a symbolic link to {os.readlink(path)!r}{broken}; numpy-cam "
                       "writes only regular files: remove it or choose another --out")
    if not stat.S_ISREG(link.st_mode):
        raise BadInput(f"{path} ({role}) is {kind(link.st_mode)}; numpy-cam writes only regular files: "
                       "choose another --out")
    if not written_by_numpy_cam(path):
        raise BadInput(f"{path} exists and was not written by numpy-cam; move it or choose another --out")


def check_output_folder(out):
    """``--out`` of the overlays: an existing writable folder, or a path where one can be made."""
    if out == "":
        raise BadInput("--out is an empty string; expected a folder (default: the current folder)")
    if os.path.islink(out) and not os.path.exists(out):
        raise BadInput(f"--out {out} is a symbolic link to {os.readlink(out)!r}, which does not exist; "
                       "expected a folder")
    if os.path.exists(out) and not os.path.isdir(out):
        raise BadInput(f"--out {out} is {kind(os.stat(out).st_mode)}, not a folder")
    if os.path.isdir(out) and not os.access(out, os.W_OK | os.X_OK):
        raise BadInput(f"the output folder {out} is not writable")


def make_output_folder(out):
    if not os.path.isdir(out):
        try:
            os.makedirs(out)
        except OSError as err:
            raise BadInput(f"cannot create the output folder {out}: {err.strerror}") from err


def plan_outputs(images, out, inputs, suffix="_cam.png"):
    """<out>/<stem><suffix> for each image, each checked; two inputs may not write the same file."""
    check_output_folder(out)
    paths = [os.path.join(out, os.path.splitext(os.path.basename(p))[0] + suffix) for p in images]
    seen = {}
    for image, path in zip(images, paths):
        if path in seen:
            raise BadInput(f"{seen[path]} and {image} would both write {path}; process them separately")
        seen[path] = image
        check_output_file(path, f"the output of {image}", inputs, folder_made_later=True)
    return paths
