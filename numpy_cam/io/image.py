"""The Pillow <-> NumPy boundary: load an image, crop, resize, normalise to the network's x;
write a picture as a PNG file, atomically.

Images are (H, W, 3) uint8 RGB arrays, row 0 at the top, only at the edges of the package
(loading here, drawing in ``visualize``); the network sees x of shape (N, 3, H, W) float32.
"""
import contextlib
import os
import stat
import struct
import sys
import uuid
import zlib
from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .._checks import check_rgb_image
from . import name_limit

RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def load_image(image):
    """An image as an (H, W, 3) uint8 RGB array, by one rule per Pillow mode.

    Parameters
    ----------
    image : str or os.PathLike, PIL.Image.Image, or ndarray of shape (H, W, 3) and dtype uint8
        A file is decoded by Pillow and turned upright by its EXIF orientation, then its mode
        decides the conversion, never its pixel values (ICC profiles are not applied):

        ============================  ===============================================================
        mode (as Pillow opens it)     8-bit RGB
        ============================  ===============================================================
        RGB, RGBX, L, 1               as is; gray copied to R, G and B; 1 -> 0 or 255
        RGBA, RGBa, LA, La, PA, P     alpha (or a palette's transparency) composited over white
        L, RGB with a tRNS colour     the pixels of that colour are transparent: white
        CMYK, YCbCr, HSV              Pillow's conversion (CMYK: R = (255 - C)(255 - K) / 255)
        I;16, I;16B, I;16L, I;16N     16-bit gray: round(v / 257); 12-bit TIFF: round(v * 255 / 4095)
        I from a 16-bit file          the same: a 16-bit gray PNG (Pillow 9 opens it as I, 13 as
                                      I;16), a PGM (Pillow scales a maxval over 255 to 0..65535)
        I (32-bit or signed 16-bit)   refused (ValueError): expected 8- or 16-bit unsigned samples
        F (32-bit float)              values in [0, 1]: floor(255 v + 0.5); anything else refused
                                      (ValueError naming the range found; NaN, infinity too)
        LAB                           refused (ValueError): convert it to RGB first
        ============================  ===============================================================

        16-bit colour files (RGB, RGBA, gray + alpha) never reach these rules: Pillow opens them
        as RGB / RGBA, keeping the high byte of each sample (PNG, TIFF, SGI) or rounding
        v * 255 / maxval (PPM). A 16-bit image is recognised by the sample format the file
        declares (``im.tile``'s raw mode, or the format: PNG and PPM have no 32-bit gray), so
        pass a PIL image before ``.load()`` or ``.copy()`` drops that. An array is checked and
        returned as is (TypeError: not uint8; ValueError: not (H, W, 3)).

    Returns
    -------
    rgb : ndarray of shape (H, W, 3), dtype uint8

    ValueError: a file Pillow cannot decode ("cannot read 'x.png' as an image: ..."), or a mode
    refused above ("'x.tif' is a 32-bit float image (mode F) with values in [0, 3.5]; ...").
    """
    if isinstance(image, np.ndarray):
        return check_rgb_image("image", image)
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        try:
            # From a file object: Pillow maps a named file into memory as it is stored (size, not
            # tile size: a TIFF rotated by its Orientation tag comes out garbled in Pillow 13).
            with open(path, "rb") as f, Image.open(f) as im:
                source = _source(im)                              # before decoding, which drops im.tile
                upright = _upright(im)
        except _DECODE_ERRORS as err:
            if isinstance(err, FileNotFoundError):
                raise
            reason = f"cannot identify image file {path!r}" if isinstance(err, UnidentifiedImageError) else err
            raise ValueError(f"cannot read {path!r} as an image: {reason}") from err
        return _to_rgb(upright, _white_level(source, repr(path)), repr(path))
    if isinstance(image, Image.Image):
        return pil_to_rgb(image)
    raise TypeError("image must be a path, a PIL image or an (H, W, 3) uint8 array; "
                    f"got {type(image).__name__}")


# What Pillow raises on a damaged file, while opening or decoding: OSError ("image file is
# truncated"), SyntaxError (bad PNG chunks), and, from some plugins, the others.
# DecompressionBombError is none of these: the command reports it on its own.
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, IndexError,
                  EOFError, struct.error, zlib.error)
_UNSIGNED_16 = ("I;16", "I;16B", "I;16L", "I;16N")                # raw modes of unsigned 16-bit samples


def pil_to_rgb(im, name="the image"):
    """An upright (H, W, 3) uint8 RGB array from a PIL image, by ``load_image``'s rules.

    ``name`` names the image in messages.
    """
    source = _source(im)
    return _to_rgb(_upright(im), _white_level(source, name), name)


def _upright(im):
    """``im`` decoded and turned upright by its EXIF orientation."""
    im.load()
    if im.format == "TIFF":          # Pillow's TIFF decoder applies the Orientation tag itself; Pillow 9
        return im                    # keeps the tag, and exif_transpose would turn the image twice
    return ImageOps.exif_transpose(im)


def _source(im):
    """(mode, format, raw mode): the raw mode says how the file stores its samples, as Pillow's
    decoder reads them ("I;16B", "I;32S", ...); None once the image is decoded."""
    tile = getattr(im, "tile", None) or [(None, None, None, None)]
    args = tile[0][3]
    raw = args[0] if isinstance(args, tuple) and args else args if isinstance(args, str) else None
    return im.mode, im.format, raw


def _white_level(source, name):
    """The sample value of white in a gray image of mode I or I;16*, from what its file declares.

    65535 for 16-bit samples, 4095 for a 12-bit TIFF (Pillow unpacks it to 0..4095 in an I;16
    image); None for any other mode. ValueError for signed or 32-bit integer samples.
    """
    mode, fmt, raw = source
    if mode not in _UNSIGNED_16 + ("I",):
        return None
    if raw == "I;12":
        return 4095
    if mode != "I" or raw in _UNSIGNED_16 or fmt in ("PNG", "PPM"):
        return 65535
    kind = "16-bit signed" if raw in ("I;16S", "I;16BS") else "32-bit"
    raise ValueError(f"{name} is a {kind} integer image (mode I); expected 8- or 16-bit unsigned samples: "
                     "convert it to 8-bit first")


def _to_rgb(im, white, name):
    """(H, W, 3) uint8 from an upright PIL image; ``white``: see ``_white_level``."""
    if white is not None:
        v = np.asarray(im).astype(np.int64)                              # (H, W), 0..white
        gray = np.minimum((255 * v + white // 2) // white, 255)          # round(255 v / white): white is odd, no ties
        key = im.info.get("transparency")
        if isinstance(key, int):                                         # a tRNS gray: transparent, over white
            gray[v == key] = 255
        return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)   # (H, W, 3)
    if im.mode == "F":
        return np.repeat(_unit_to_uint8(np.asarray(im), name)[..., None], 3, axis=2)
    if im.mode == "LAB":
        raise ValueError(f"{name} is a CIELAB image (mode LAB); expected RGB, gray, palette or CMYK: "
                         "convert it to RGB first")
    if im.mode == "La":
        im = im.convert("LA")                                            # Pillow has no La -> RGBA
    if im.mode in ("P", "PA", "LA", "RGBA", "RGBa") or "transparency" in im.info:
        white_page = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white_page, im.convert("RGBA"))
    try:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()    # (H, W, 3)
    except ValueError as err:                                            # a mode Pillow cannot convert
        raise ValueError(f"{name} has mode {im.mode}, which Pillow cannot convert to RGB ({err}); "
                         "convert it to RGB first") from err


def _unit_to_uint8(values, name):
    """Float gray values in [0, 1] -> uint8 floor(255 v + 0.5); ValueError for anything else."""
    where = f"{name} is a 32-bit float image (mode F)"
    if not np.isfinite(values).all():
        raise ValueError(f"{where} holding NaN or infinity; expected finite values in [0, 1]")
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if lo < 0 or hi > 1:
        raise ValueError(f"{where} with values in [{lo:.6g}, {hi:.6g}]; expected values in [0, 1] "
                         "(0 black, 1 white): rescale it to [0, 1] or convert it to 8-bit first")
    return np.floor(values.astype(np.float64) * 255 + 0.5).astype(np.uint8)   # (H, W)


def centre_crop_box(height, width, crop_fraction):
    """The square centre crop (top, left, side) of Google's EfficientNet evaluation.

    side = int(crop_fraction * min(height, width)); the odd pixel of the margin goes to the
    top / left: top = (height - side + 1) // 2.
    """
    side = int(crop_fraction * min(height, width))
    if side < 1:
        raise ValueError(f"an image of {width}x{height} pixels is too small to crop "
                         f"(crop fraction {crop_fraction})")
    return (height - side + 1) // 2, (width - side + 1) // 2, side


def preprocess(image, preprocessing):
    """x for the network: crop, resize, (rgb - mean) / std, NCHW float32.

    Parameters
    ----------
    image : path, PIL image or (H, W, 3) uint8 array (see ``load_image``)
    preprocessing : dict
        "size" (output side), "crop_fraction" (centre crop side / short side), "resample"
        ("bicubic" or "bilinear"), "mean" and "std" (3 values each, on the 0..255 scale, in
        the network's channel order), and optionally "channel_order": "RGB" (default) or
        "BGR" (Caffe-style networks such as Keras' ResNet50: the channels are reversed
        before the mean and std are applied).

    Returns
    -------
    x : ndarray of shape (1, 3, size, size), dtype float32
    """
    rgb = load_image(image)                                          # (H, W, 3) uint8
    crop_box = centre_crop_box(rgb.shape[0], rgb.shape[1], preprocessing["crop_fraction"])
    return _preprocess(rgb, crop_box, preprocessing)


def _preprocess(rgb, crop_box, preprocessing):
    """``preprocess`` of a loaded (H, W, 3) uint8 image and its ``centre_crop_box``, unchecked."""
    top, left, side = crop_box
    size = int(preprocessing["size"])
    crop = Image.fromarray(rgb[top:top + side, left:left + side])
    resized = np.asarray(crop.resize((size, size), RESAMPLE[preprocessing["resample"]]))  # (size, size, 3)
    return pixels_to_x(resized[None], preprocessing)                 # (1, 3, size, size)


def pixels_to_x(pixels, preprocessing):
    """The last step of ``preprocess``: (N, H, W, 3) uint8 RGB -> x (N, 3, H, W) float32.

    The channels are reversed first when ``preprocessing["channel_order"]`` is "BGR", then
    (value - mean) / std on each channel.
    """
    mean = np.asarray(preprocessing["mean"], np.float32)             # (3,)
    std = np.asarray(preprocessing["std"], np.float32)               # (3,)
    if preprocessing.get("channel_order", "RGB") == "BGR":
        pixels = pixels[..., ::-1]                                   # (N, H, W, 3) BGR
    x = (pixels.astype(np.float32) - mean) / std                     # (N, H, W, 3)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))             # (N, 3, H, W)


def input_range(preprocessing):
    """The interval that preprocessed values lie in: ((0 - mean) / std, (255 - mean) / std)."""
    mean = np.asarray(preprocessing["mean"], np.float64)
    std = np.asarray(preprocessing["std"], np.float64)
    return float(np.min((0 - mean) / std)), float(np.max((255 - mean) / std))


def save_png(path, rgb, text=None):
    """Write an RGB array as a PNG file, atomically, replacing only a regular file.

    The PNG goes to a hidden temporary file in the destination folder, then ``os.replace``
    moves it onto ``path``: readers see the old file or the new one, never half of one. On
    any error, and on KeyboardInterrupt or any other BaseException (the command raises one
    on SIGTERM), the temporary file is removed and ``path`` is left as it was. Its name is
    ``.<name>.<12 hex digits>.tmp``, ``<name>`` shortened to keep it within the folder's
    file-name limit.

    Parameters
    ----------
    path : str or os.PathLike
        Written as PNG whatever its extension. Its folder must exist (else FileNotFoundError)
        and be writable (else PermissionError); both messages name the folder. An existing
        folder is refused (IsADirectoryError), and so is a pipe, a device or a socket
        (ValueError), before anything is written; so is a name over the file-name limit
        (ValueError). A symbolic link is written through: its target is replaced and the link
        kept, so that a link keeps pointing at the new picture (replacing the link would cut
        it off and leave its target stale).
    rgb : ndarray of shape (H, W, 3), dtype uint8
    text : mapping of str to str, optional
        PNG text chunks (tEXt; iTXt for a value that is not Latin-1), read back by
        ``read_png_text``. Keys are PNG keywords: 1 to 79 printable Latin-1 characters, no
        leading, trailing or double space (ValueError); keys and values must be str (TypeError).
    """
    check_rgb_image("rgb", rgb)
    info = _png_info(text)
    target, folder = _save_target(os.fspath(path))
    tmp = os.path.join(folder, _temporary_name(os.path.basename(target), name_limit(folder)))
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except PermissionError as err:
            raise PermissionError(f"cannot save {path!r}: the folder {folder!r} is not writable") from err
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(rgb).save(f, format="PNG", pnginfo=info)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:                                                # also KeyboardInterrupt, SIGTERM
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


# What an st_mode is, in the words of every message about files (here and in the command's _outputs).
FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
              (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"),
              (stat.S_ISREG, "a regular file"))


def file_kind(mode):
    """What an ``st_mode`` is, in words: "a folder", "a pipe (FIFO)", "a character device", ..."""
    return next((name for is_kind, name in FILE_KINDS if is_kind(mode)), "a special file")


def _save_target(path):
    """The file ``save_png`` replaces (a link's target) and its folder, checked; nothing written."""
    if os.path.basename(path) == "":
        raise ValueError(f"cannot save {path!r}: expected a file name")
    target = os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)
    it = "it" if target == os.path.abspath(path) else f"its target {target!r}"
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save {path!r}: the folder {folder!r} does not exist")
    size, limit = len(os.fsencode(os.path.basename(target))), name_limit(folder)
    if size > limit:
        raise ValueError(f"cannot save {path!r}: the name is {size} bytes, over the file-name limit "
                         f"of {limit} bytes")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None                                                      # a new file
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(f"cannot save {path!r}: {it} is a folder; expected a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise ValueError(f"cannot save {path!r}: {it} is {file_kind(mode)}, not a regular file; "
                         "save_png replaces only regular files")
    return target, folder


def _temporary_name(name, limit):
    """``.<name>.<12 hex digits>.tmp`` in at most ``limit`` bytes, ``name`` cut if need be."""
    suffix = f".{uuid.uuid4().hex[:12]}.tmp"
    room = max(limit - 1 - len(suffix), 0)
    encoding = sys.getfilesystemencoding()
    return "." + os.fsencode(name)[:room].decode(encoding, "ignore") + suffix   # "ignore": a cut character


def _png_info(text):
    """``PngInfo`` holding ``text`` (see ``save_png``), checked; None for no text."""
    if text is None:
        return None
    if not isinstance(text, Mapping):
        raise TypeError(f"text must be a mapping of str to str; got {type(text).__name__}")
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        if not isinstance(key, str):
            raise TypeError(f"text keys must be str; got {type(key).__name__}")
        if not isinstance(value, str):
            raise TypeError(f"text[{key!r}] must be a str; got {type(value).__name__}")
        if not _is_png_keyword(key):
            raise ValueError(f"text key {key!r} is not a PNG keyword: expected 1 to 79 printable Latin-1 "
                             "characters, no leading, trailing or double space")
        info.add_text(key, value)                                        # tEXt, or iTXt beyond Latin-1
    return info


def _is_png_keyword(key):
    printable = all(32 <= ord(c) <= 126 or 161 <= ord(c) <= 255 for c in key)
    return 1 <= len(key) <= 79 and printable and key == key.strip(" ") and "  " not in key


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png_text(path):
    """The text chunks (tEXt, zTXt, iTXt) of a PNG file, {keyword: text}; {} if it is not a PNG.

    Reads chunk headers and text chunks only, never the pixels (one 8-byte read and a seek per
    other chunk). Bounded: a chunk declaring more bytes than the file holds ends the reading,
    a chunk with a wrong CRC is skipped, and compressed text is inflated only while all text
    stays within the file's size: a hostile file costs a few times its size in memory at most
    (measured: 4.1x for a 0.5 MB file holding a 512 MiB zTXt bomb, zlib's state included).
    A later chunk with the same keyword wins, as in Pillow. A missing or unreadable path, a
    folder, a pipe or a device gives {} (a pipe is never waited on).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (OSError, TypeError, ValueError):
        return {}
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return {}
    with os.fdopen(fd, "rb") as f:
        try:
            return _read_text_chunks(f, info.st_size) if f.read(8) == _PNG_SIGNATURE else {}
        except OSError:
            return {}


def _read_text_chunks(f, file_size):
    texts, room, at = {}, file_size, 8                                   # room: bytes of text still allowed
    while at + 12 <= file_size:
        length, kind = struct.unpack(">I4s", f.read(8))
        if length > file_size - at - 12 or kind == b"IEND":
            break
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            data, crc = f.read(length), int.from_bytes(f.read(4), "big")
            entry = _text_chunk(kind, data, room) if zlib.crc32(data, zlib.crc32(kind)) == crc else None
            if entry is not None:
                texts[entry[0]] = entry[1]
                room -= len(entry[1])
        else:
            f.seek(length + 4, os.SEEK_CUR)                              # the data and its CRC, unread
        at += 12 + length
    return texts


def _text_chunk(kind, data, room):
    """(keyword, text) of one text chunk's data; None if it is malformed or inflates past ``room``."""
    nul = data.find(b"\0")
    if nul < 1:
        return None
    rest, encoding = memoryview(data)[nul + 1:], "latin-1"                # views: the data is not copied
    if kind == b"zTXt":                                                  # compression method 0, then zlib
        rest = _inflate(rest[1:], room) if rest[:1] == b"\0" else None
    elif kind == b"iTXt":                                                # flag, method, language \0 keyword \0 text
        language_end = data.find(b"\0", nul + 3)
        keyword_end = data.find(b"\0", language_end + 1) if language_end > 0 else -1
        compressed, rest, encoding = rest[:2].tobytes(), memoryview(data)[keyword_end + 1:], "utf-8"
        if keyword_end < 0 or compressed[:1] not in (b"\0", b"\1"):
            return None
        if compressed[:1] == b"\1":
            rest = _inflate(rest, room) if compressed == b"\1\0" else None
    try:
        return None if rest is None else (data[:nul].decode("latin-1"), str(rest, encoding))
    except UnicodeDecodeError:
        return None


def _inflate(data, room):
    """zlib-decompressed ``data`` if it is a whole stream of at most ``room`` bytes, else None."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max(room, 0) + 1)                # max_length 0 would mean unlimited
    except zlib.error:
        return None
    return out if len(out) <= room and inflater.eof else None
