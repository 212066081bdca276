"""Turning a class activation map into a picture: jet colormap, overlay, box, figures.

The last step of the paper (Zhou et al., CVPR 2016, Fig. 3, Sec. 3): the upsampled, min-max
normalised CAM (``heatmap``, (H, W) float in [0, 1], computed elsewhere) is coloured with jet
and blended over the photo, and the localisation box is drawn on top. Images are (H, W, 3)
uint8 RGB; a ``bbox`` is (x0, y0, x1, y1), inclusive, x = column, y = row, origin top-left.
Every function returns a new array; inputs are never mutated.

Colormap (a convention peers disagree on): ``JET`` is matplotlib's ``jet``. The authors'
PyTorch code (``pytorch_CAM.py``) used OpenCV's COLORMAP_JET, another piecewise-linear curve
(GNU Octave's, clip(1.5 - |4 v - k|, 0, 1)): the two differ by up to 33/255 per channel
(green at i = 223: 0.131 vs 0.002), 33 or 34 levels in uint8 depending on rounding. That code
also blends differently (0.3 * colour + 0.5 * image); here it is (1 - alpha) * image + alpha * colour.
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .cam import _normalize, cam_terms
from ._checks import (check_array, check_box, check_color, check_finite, check_int_range, check_rgb_image,
                      check_unit_interval)

__all__ = ["JET_CONTROL_POINTS", "jet", "JET", "OPENCV_JET", "apply_colormap", "overlay", "draw_box", "gray", "montage",
           "weighted_sum_figure"]

# matplotlib's jet as (x, value) control points per channel; linear in between.
JET_CONTROL_POINTS = {
    "red": ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
    "green": ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
    "blue": ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
}


def jet(values):
    """matplotlib's jet colormap as floats: dark blue at 0, green at ~0.5, dark red at 1.

    Parameters
    ----------
    values : array_like of shape (...), finite; clipped to [0, 1]

    Returns
    -------
    rgb : ndarray of shape (..., 3), dtype float64, in [0, 1]

    At v = i / 255 this equals matplotlib's ``colormaps["jet"](i / 255)[:3]`` to float rounding
    (tests/golden/jet_matplotlib.csv); between those points matplotlib steps, this interpolates.

    >>> jet([0.0, 1.0]).tolist()
    [[0.0, 0.0, 0.5], [0.5, 0.0, 0.0]]
    """
    v = np.asarray(values, dtype=np.float64)                               # (...)
    check_finite("values", v)
    channels = [np.interp(np.clip(v, 0, 1), *zip(*JET_CONTROL_POINTS[c])) for c in ("red", "green", "blue")]
    return np.stack(channels, axis=-1)                                    # (..., 3)


# JET[i] = 255 * jet(i / 255) rounded half up: matplotlib's cm.jet(i / 255) as uint8. 26 values
# are exact ties (x.5) on paper; the 1e-9 sends them all up whatever float error they carry.
# (matplotlib's own ``bytes=True`` truncates instead: one lower somewhere in 181 entries.)
JET = np.floor(jet(np.arange(256) / 255.0) * 255.0 + 0.5 + 1e-9).astype(np.uint8)   # (256, 3)
JET.flags.writeable = False

# OpenCV's COLORMAP_JET, for comparison only (the authors' PyTorch code drew with it): GNU
# Octave's jet, clip(1.5 - |4 v - k|, 0, 1) with k = 3, 2, 1 for red, green, blue, as uint8.
_V = np.arange(256) / 255.0                                                         # (256,)
OPENCV_JET = np.floor(np.clip(1.5 - np.abs(4 * _V[:, None] - np.array([3.0, 2.0, 1.0])), 0, 1) * 255.0
                      + 0.5 + 1e-9).astype(np.uint8)                                # (256, 3)
OPENCV_JET.flags.writeable = False


def apply_colormap(heatmap, table=JET):
    """Colour a heatmap: pixel value v becomes ``table[round(clip(v, 0, 1) * 255)]``.

    Parameters
    ----------
    heatmap : array_like of shape (H, W), float in [0, 1]
        Values outside [0, 1] are clipped; NaN or infinite values raise ValueError (a NaN
        usually comes from normalising a constant map, 0 / 0). Rounding is half to even,
        computed in float32 for a float32 heatmap (the forward pass's dtype), else float64.
    table : ndarray of shape (256, 3), dtype uint8, the colormap

    Returns
    -------
    rgb : ndarray of shape (H, W, 3), dtype uint8
    """
    table = check_array("table", np.asarray(table), "(256, 3)", kinds="", dtypes=(np.uint8,))
    return _apply_colormap(check_finite("heatmap", np.asarray(heatmap)), table)


def _apply_colormap(heatmap, table):
    """Unchecked: heatmap a finite (H, W) array, table a (256, 3) uint8 array."""
    h = heatmap if heatmap.dtype == np.float32 else heatmap.astype(np.float64)  # (H, W)
    scaled = np.clip(h, 0.0, 1.0)                                         # (H, W), a new array
    scaled *= h.dtype.type(255.0)
    index = np.rint(scaled, out=scaled).astype(np.intp)                   # (H, W) in 0..255
    return np.take(table, index, axis=0)                                  # (H, W, 3); 4x faster than table[index]


def overlay(image, heatmap, alpha=0.5, table=JET):
    """Blend the coloured heatmap over the image: round((1 - alpha) * image + alpha * colour).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), dtype uint8
    heatmap : ndarray of shape (H, W), float in [0, 1] (see ``apply_colormap``)
    alpha : float in [0, 1]
        Weight of the colour: 0 returns the image, 1 the coloured heatmap.
    table : ndarray of shape (256, 3), dtype uint8

    Returns
    -------
    rgb : ndarray of shape (H, W, 3), dtype uint8 (computed in float32, rounded half to even)
    """
    check_rgb_image("image", image)
    alpha = check_unit_interval("alpha", alpha)
    heatmap = check_finite("heatmap", np.asarray(heatmap))
    if heatmap.shape != image.shape[:2]:
        raise ValueError(f"heatmap must have the image's height and width {image.shape[:2]}; got "
                         f"heatmap of shape {heatmap.shape} for an image of shape {image.shape}")
    table = check_array("table", np.asarray(table), "(256, 3)", kinds="", dtypes=(np.uint8,))
    return _overlay(image, heatmap, alpha, table)


def _overlay(image, heatmap, alpha, table=JET):
    """Unchecked: image (H, W, 3) uint8, heatmap a finite (H, W) array, alpha in [0, 1]."""
    colour = _apply_colormap(heatmap, table)                              # (H, W, 3) uint8
    blend = image * np.float32(1.0 - alpha)                               # (H, W, 3) float32
    blend += colour * np.float32(alpha)
    return np.rint(blend, out=blend).astype(np.uint8)                     # a convex blend stays in 0..255


def draw_box(image, bbox, color=(255, 255, 255), width=2):
    """The image with the outline of ``bbox`` drawn on it (four slices of the array).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), dtype uint8
    bbox : (x0, y0, x1, y1) ints, inclusive, x = column, y = row; or None
        The outline covers columns x0..x1 and rows y0..y1 and grows inwards with ``width``.
        A box partly outside the image is clipped to it (all four sides stay visible); None
        returns a copy. TypeError: not integers; ValueError: not 4, x1 < x0 or y1 < y0, or
        entirely outside.
    color : (r, g, b) ints in 0..255
    width : int >= 1, the line width in pixels

    Returns
    -------
    rgb : ndarray of shape (H, W, 3), dtype uint8, a new array
    """
    check_rgb_image("image", image)
    if bbox is not None:
        box = check_box("bbox", bbox)
        height, width_px = image.shape[:2]
        if box[0] >= width_px or box[1] >= height or box[2] < 0 or box[3] < 0:
            raise ValueError(f"bbox must overlap the image of {width_px}x{height} pixels; got {bbox!r}")
        bbox = box
    return _draw_box(image, bbox, check_color("color", color), check_int_range("width", width, 1))


def _draw_box(image, bbox, color=(255, 255, 255), width=2):
    """Unchecked: bbox None or 4 ints (x0 <= x1, y0 <= y1) overlapping the image, color 3 ints, width >= 1."""
    if bbox is None:
        return image.copy()
    x0, y0, x1, y1 = bbox
    height, width_px = image.shape[:2]
    left, top = max(x0, 0), max(y0, 0)                                   # clipped to the image
    right, bottom = min(x1, width_px - 1), min(y1, height - 1)
    out = image.copy()                                                   # (H, W, 3)
    box = out[top:bottom + 1, left:right + 1]                            # a view: (h, w, 3)
    box[:width] = color                                                  # top edge, growing down
    box[-width:] = color                                                 # bottom edge, growing up
    box[:, :width] = color                                               # left edge
    box[:, -width:] = color                                              # right edge
    return out


def gray(values):
    """A (H, W) map as a gray image: 0 black, 1 white. -> (H, W, 3) uint8.

    values : ndarray of shape (H, W), bool or float in [0, 1] (clipped), finite.
    """
    v = check_array("values", np.asarray(values), "(H, W)", kinds="fiub").astype(np.float64)  # (H, W)
    check_finite("values", v)
    level = np.rint(np.clip(v, 0.0, 1.0) * 255.0).astype(np.uint8)        # (H, W)
    return np.repeat(level[:, :, None], 3, axis=2)                        # (H, W, 3)


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:                                # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def montage(tiles, titles=None, columns=None, side=None, font_size=13):
    """Images side by side, each with a title above it: a figure for a notebook or a slide.

    Parameters
    ----------
    tiles : sequence of ndarray of shape (H, W, 3), dtype uint8 (e.g. ``overlay`` or
        ``apply_colormap`` of a map); they may differ in size
    titles : sequence of str, one per tile, or None
    columns : int >= 1, tiles per row (default: all in one row)
    side : int >= 1 or None -- resize each tile so its longer side is ``side`` pixels: an
        enlarged tile by nearest neighbour, so that a 7 x 7 map still shows its 49 cells; a
        shrunk one by the mean over each output pixel's area (PIL's BOX filter), so that a photo
        does not alias; None: as is
    font_size : int, of the titles

    Returns
    -------
    figure : PIL.Image.Image, RGB -- a notebook shows it; ``np.asarray(figure)`` is the
        (H, W, 3) uint8 array and ``save_png`` writes it.
    """
    tiles = list(tiles)
    if not tiles:
        raise ValueError("tiles must hold at least one image; got none")
    for i, tile in enumerate(tiles):
        check_rgb_image(f"tiles[{i}]", tile)
    titles = [""] * len(tiles) if titles is None else [str(t) for t in titles]
    if len(titles) != len(tiles):
        raise ValueError(f"titles must have one entry per tile ({len(tiles)}); got {len(titles)}")
    columns = len(tiles) if columns is None else check_int_range("columns", columns, 1)
    side = None if side is None else check_int_range("side", side, 1)
    images = [Image.fromarray(tile) for tile in tiles]
    if side is not None:
        scales = [side / max(im.size) for im in images]
        images = [im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))),
                            Image.Resampling.NEAREST if s >= 1 else Image.Resampling.BOX)
                  for im, s in zip(images, scales)]
    font, pad = _font(font_size), 8
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    cell_w = max(max(im.width for im in images), *(measure.textlength(t, font=font) for t in titles))
    cell_w, title_h = int(cell_w) + pad, (font_size + 6 if any(titles) else 0)
    row_h = [max(im.height for im in images[r:r + columns]) + title_h + pad     # each row as tall as
             for r in range(0, len(images), columns)]                            # its tallest tile
    row_y = np.cumsum([pad] + row_h)                                              # (rows + 1,)
    figure = Image.new("RGB", (pad + min(columns, len(images)) * cell_w, int(row_y[-1])), "white")
    draw = ImageDraw.Draw(figure)
    for i, (im, title) in enumerate(zip(images, titles)):
        x, y = pad + (i % columns) * cell_w, int(row_y[i // columns])
        draw.text((x, y), title, fill="black", font=font)
        figure.paste(im, (x, y + title_h))
    return figure


def weighted_sum_figure(features, fc_weight, class_idx, top=4, side=112):
    """The paper's Fig. 2 drawn from real maps: M_c = w_1^c f_1 + ... + w_K^c f_K (Eq. 2), as a row
    of tiles: the ``top`` maps f_k that add most to the class score (``cam.cam_terms``), each
    titled with its weight w_k^c; the sum of the other K - top terms; and M_c itself.

    Parameters
    ----------
    features : ndarray of shape (1, K, h, w), f_k of one image; fc_weight : (classes, K), w_k^c
    class_idx : int, the class c; top : int in 1..K; side : int, the side of each tile in pixels

    Returns
    -------
    figure : PIL.Image.Image, RGB. Each tile is jet-coloured and min-max normalised on its own
        (its title gives its range where it is not an f_k), so the tiles show where each term is
        high, not how large it is.
    """
    t = cam_terms(features, fc_weight, class_idx, top)
    tiles = [_apply_colormap(_normalize(m), JET) for m in t["maps"]]          # (h, w, 3) each
    titles = [(f"{w:.3f}" if i == 0 else f"{'-' if w < 0 else '+'} {abs(w):.3f}") + f" x f_{k}"
              for i, (k, w) in enumerate(zip(t["units"], t["weights"]))]
    others = features.shape[1] - len(t["units"])
    if others:
        tiles.append(_apply_colormap(_normalize(t["rest"]), JET))
        titles.append(f"+ the other {others} term{'s' * (others > 1)} [{t['rest'].min():.1f}, {t['rest'].max():.1f}]")
    tiles.append(_apply_colormap(_normalize(t["cam"]), JET))
    titles.append(f"= M_c, c = {int(class_idx)} [{t['cam'].min():.1f}, {t['cam'].max():.1f}]")
    return montage(tiles, titles, side=check_int_range("side", side, 1))
