"""The Pillow <-> NumPy boundary: load an image, crop, resize, normalise to the network's x;
write a picture as a PNG file, atomically.

Images are (H, W, 3) uint8 RGB arrays, row 0 at the top, only at the edges of the package
(loading here, drawing in ``visualize``); the network sees x of shape (N, 3, H, W) float32.
"""
import os
import uuid

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .._checks import check_rgb_image

RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def load_image(image):
    """An image as an (H, W, 3) uint8 RGB array.

    Parameters
    ----------
    image : str or os.PathLike, PIL.Image.Image, or ndarray of shape (H, W, 3) and dtype uint8
        A file is decoded by Pillow and turned upright by its EXIF orientation; any Pillow
        mode (grayscale, palette, RGBA, CMYK, 16-bit) is converted to 8-bit RGB (transparent
        pixels are composited over white). An array is checked and returned as is
        (TypeError: not uint8; ValueError: not (H, W, 3)).

    Returns
    -------
    rgb : ndarray of shape (H, W, 3), dtype uint8
    """
    if isinstance(image, np.ndarray):
        return check_rgb_image("image", image)
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        try:
            with Image.open(path) as im:
                im.load()
                return pil_to_rgb(im)
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            if isinstance(err, FileNotFoundError):
                raise
            raise ValueError(f"cannot read {path!r} as an image: {err}") from err
    if isinstance(image, Image.Image):
        return pil_to_rgb(image)
    raise TypeError("image must be a path, a PIL image or an (H, W, 3) uint8 array; "
                    f"got {type(image).__name__}")


def pil_to_rgb(im):
    """An upright (H, W, 3) uint8 RGB array from any PIL image."""
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):              # 16-bit / 32-bit integer gray
        a = np.asarray(im, dtype=np.float64)
        scale = 257.0 if a.max() > 255 else 1.0                  # 16-bit data: 65535 -> 255
        im = Image.fromarray(np.clip(np.round(a / scale), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()   # (H, W, 3)


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


def save_png(path, rgb):
    """Write an RGB array as a PNG file, atomically.

    The PNG goes to a hidden temporary file in the destination folder, then ``os.replace``
    moves it onto ``path``: readers see the old file or the new one, never half of one. On
    any error the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        Written as PNG whatever its extension. Its folder must exist (else FileNotFoundError)
        and be writable (else PermissionError); both messages name the folder.
    rgb : ndarray of shape (H, W, 3), dtype uint8
    """
    check_rgb_image("rgb", rgb)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save {path!r}: the folder {folder!r} does not exist")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except PermissionError as err:
        raise PermissionError(f"cannot save {path!r}: the folder {folder!r} is not writable") from err
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(rgb).save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):                                           # also on KeyboardInterrupt
            os.remove(tmp)
        raise
