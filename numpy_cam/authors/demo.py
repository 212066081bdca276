"""The authors' MATLAB demo, on their own data: the paper's GoogLeNet-GAP, ten crops, Eq. 2.

Zhou et al. released, with the paper, the softmax weights w_k^c of their GoogLeNet-GAP (the
``CAM_fc`` layer) and the last-conv maps f_k (``CAM_conv``, 1024 x 14 x 14) of the ten crops of
their demo photo (github.com/zhoubolei/CAM, commit c63f285, MIT; bundled in
``numpy_cam/data/authors_cam/``). ``demo.m`` (run with ``online = 0``) does, per top class:

- lines 39-41: mean of the softmax scores over the crops, the top 5 classes (on the cached
  scores, the first crop's: ``run_demo``'s ``ranking``), and M_c of every crop
  (``returnCAMmap.m``: the (196, 1024) maps times w^c; Eq. 2);
- line 48: each crop's 14 x 14 map to 224 x 224 with MATLAB's ``imresize`` (bicubic: ``imresize``);
- line 49: ``mergeTenCrop.m`` puts the ten maps back on the 256 x 256 photo, un-mirrors the
  mirrored ones and sums their absolute values (lines 21-37);
- lines 51-52: ``map2jpg.m`` (min-max to [0, 1], 256 levels, MATLAB's jet) and the blend
  photo * 0.2 + heatmap * 0.7.

The layout of the cached maps. Caffe's MATLAB wrapper hands blobs over as width x height x
channels x num, so ``activation_lastconv`` (14, 14, 1024, 10) is f[x, y, k, crop] (its first
axis the column) and ``features`` here is its transpose (3, 2, 1, 0): (crop, K, y, x), NCHW.
Crop n + 5 is crop n mirrored left-right (as every crop set of Caffe's demos). Measured on the
maps themselves (``tests/test_authors.py``), crop 2 (1-based) is crop 1 shifted 32 pixels to the
RIGHT and crop 3 is shifted 32 pixels DOWN: the order of Caffe's old ``matcaffe_demo.m``
(github.com/BVLC/caffe, ``matlab/caffe/matcaffe_demo.m`` at a14cacf, ``prepare_image``), which
cut crops from the (H, W) photo before transposing it. The ``prepare_image.m`` in the authors'
repository, and ``mergeTenCrop.m`` with it, take them the other way round, so the demo merges
crops 2 and 3 (and 7 and 8) at each other's places: ``placement="mergeTenCrop.m"`` (the
default) does what the demo does, ``placement="cropped"`` puts each crop where it was cut.
"""
import collections
import hashlib
import io
import pathlib

import numpy as np
from PIL import Image
from scipy import io as sio

from .._checks import check_array, check_choice, check_rgb_image
from ..cam import _top_classes, checked_top_k, class_activation_map
from ..io.image import load_image
from .imresize import imresize

__all__ = ["AUTHORS_DATA", "FILES", "CROP_SIZE", "IMAGE_SIZE", "CROPS", "MERGE_TEN_CROP", "PLACEMENTS",
           "DemoData", "DemoResult", "load_demo_data", "crop_cams", "merge_ten_crops", "matlab_jet", "map2jpg",
           "blend", "run_demo", "fc_bias_from_scores", "demo_strip"]

AUTHORS_DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "authors_cam"

# name: (bytes, SHA-256) of the files as in github.com/zhoubolei/CAM at commit c63f285
FILES = {
    "data_net.mat": (3831926, "6e03c2dc8f65479dd536f887a37e6b8907221944b2d5f4178aa0d18a6b30e91d"),
    "data_img1.mat": (2634423, "ae6a2a82497fa24eed73786c548cdc8c326628414995485cc6c17dbe3b9ce1fd"),
    "img1.jpg": (10012, "b7ca489c4bb039d1fb7fc0d34035227afa405a83f60e5f9b73cca34bd5154291"),
}

IMAGE_SIZE, CROP_SIZE = 256, 224
_FAR, _MID = IMAGE_SIZE - CROP_SIZE, (IMAGE_SIZE - CROP_SIZE) // 2              # 32, 16

# (top, left, mirrored) of each cached crop, 0-based, in the order of the maps (measured, above)
CROPS = tuple((top, left, mirrored) for mirrored in (False, True)
              for top, left in ((0, 0), (0, _FAR), (_FAR, 0), (_FAR, _FAR), (_MID, _MID)))
# where mergeTenCrop.m lines 17-36 put crop n: (j, i) of its loop, rows j, columns i
MERGE_TEN_CROP = tuple((top, left, mirrored) for mirrored in (False, True)
                       for top, left in ((0, 0), (_FAR, 0), (0, _FAR), (_FAR, _FAR), (_MID, _MID)))
PLACEMENTS = {"mergeTenCrop.m": MERGE_TEN_CROP, "cropped": CROPS}
RANKINGS = ("crop-mean", "first-crop")

DemoData = collections.namedtuple("DemoData", "features fc_weight scores class_names image")
DemoData.__doc__ = """The authors' cached data, in this package's layout.

features : ndarray of shape (10, 1024, 14, 14), float32: f_k of each crop (``activation_lastconv``)
fc_weight : ndarray of shape (1000, 1024), float32: w_k^c (``weights_LR`` transposed)
scores : ndarray of shape (10, 1000), float32: the network's softmax output per crop (Caffe's)
class_names : list of 1000 str, "n07930864 cup" (WordNet id, then the names), in the network's order
image : ndarray of shape (256, 256, 3), uint8: img1.jpg (already 256 x 256, so demo.m line 11's
    imresize leaves it as it is)
"""

DemoResult = collections.namedtuple("DemoResult", "class_idx mean_scores cams merged heatmaps overlays")
DemoResult.__doc__ = """What ``run_demo`` computes, J = top_k classes, best first.

class_idx : ndarray of shape (J,), int: the top classes of the crop-averaged scores
mean_scores : ndarray of shape (J,), float32: their mean score over the ten crops
cams : ndarray of shape (10, J, 14, 14), float32: M_c of each crop (Eq. 2, no bias)
merged : ndarray of shape (J, 256, 256), float32: ``merge_ten_crops`` of the 224 x 224 maps
heatmaps : ndarray of shape (J, 256, 256, 3), float64 in [0, 1]: ``map2jpg`` of ``merged``
overlays : ndarray of shape (J, 256, 256, 3), uint8: photo * 0.2 + heatmap * 0.7, as imwrite stores it
"""


def load_demo_data(folder=AUTHORS_DATA):
    """The authors' cached GoogLeNet-GAP data, checked byte for byte, as a ``DemoData``.

    Parameters
    ----------
    folder : path, holding ``FILES`` (default: the bundled copy). A clone of zhoubolei/CAM
        works too: the files are checked against the sizes and SHA-256 of ``FILES`` before
        they are parsed (ValueError otherwise), so at most 6.5 MB is read.

    scipy.io.loadmat parses MAT files without pickle; only the named variables are read.
    """
    folder = pathlib.Path(folder)
    raw = {name: io.BytesIO(_checked_bytes(folder / name, *FILES[name])) for name in FILES}  # parse what was checked
    net = sio.loadmat(raw["data_net.mat"], variable_names=("weights_LR", "categories"))
    img = sio.loadmat(raw["data_img1.mat"], variable_names=("activation_lastconv", "scores"))
    features = np.ascontiguousarray(img["activation_lastconv"].transpose(3, 2, 1, 0))   # (10, 1024, 14, 14)
    fc_weight = np.ascontiguousarray(net["weights_LR"].T)                              # (1000, 1024)
    scores = np.ascontiguousarray(img["scores"][0, 0].T)                               # (10, 1000)
    names = [str(cell[0]) for cell in net["categories"][:, 0]]
    image = load_image(Image.open(raw["img1.jpg"]))                                    # (256, 256, 3)
    return DemoData(features, fc_weight, scores, names, image)


def _checked_bytes(path, size, sha256):
    if not path.is_file() or path.stat().st_size != size:
        raise ValueError(f"{path} must be a file of {size} bytes (the authors' {path.name}); got "
                         f"{path.stat().st_size if path.is_file() else 'no such file'}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{path} must have SHA-256 {sha256} (the authors' {path.name}); it differs")
    return data


def crop_cams(data, class_idx):
    """M_c of every crop (``returnCAMmap.m``): ``class_activation_map`` on the ten crops' f_k.

    class_idx : sequence of J ints -> cams : ndarray of shape (10, J, 14, 14), float32
    """
    idx = np.broadcast_to(np.asarray(class_idx).reshape(1, -1), (len(data.features), np.size(class_idx)))
    return class_activation_map(data.features, data.fc_weight, idx)                   # (10, J, 14, 14)


def merge_ten_crops(maps, placement="mergeTenCrop.m"):
    """``mergeTenCrop.m``: the ten 224 x 224 maps back on the 256 x 256 photo, |.| summed.

    Parameters
    ----------
    maps : ndarray of shape (10, ..., 224, 224), float: crop n's map first (e.g. (10, J, 224, 224))
    placement : "mergeTenCrop.m" (crops 2 and 3, 7 and 8 at each other's places, as the demo
        merges the cached maps) or "cropped" (each crop where it was cut, ``CROPS``)

    Returns
    -------
    merged : ndarray of shape (..., 256, 256), float32: sum over the crops of |map| placed on
        the photo (zero outside a crop), times 3. mergeTenCrop.m keeps its maps in single
        precision and copies each into the three colour channels before summing them all
        (lines 5-8, 37); the 3 is kept so the numbers are the demo's. A mirrored crop is
        mirrored back first (lines 22, 34).
    """
    expected = f"(10, ..., {CROP_SIZE}, {CROP_SIZE})"
    check_array("maps", maps, f"(..., {CROP_SIZE}, {CROP_SIZE})", nonempty=True)
    if maps.ndim < 3 or maps.shape[0] != len(CROPS):
        raise ValueError(f"maps must have shape {expected}, one map per crop; got {maps.shape}")
    check_choice("placement", placement, tuple(PLACEMENTS))
    merged = np.zeros(maps.shape[1:-2] + (IMAGE_SIZE, IMAGE_SIZE), np.float32)         # (..., 256, 256)
    for crop, (top, left, mirrored) in zip(maps, PLACEMENTS[placement]):
        crop = np.abs(crop[..., ::-1] if mirrored else crop).astype(np.float32)      # (..., 224, 224)
        merged[..., top:top + CROP_SIZE, left:left + CROP_SIZE] += 3 * crop
    return merged


def matlab_jet(m=256):
    """MATLAB's ``jet(m)`` (graphics/jet.m), as a formula: (m, 3) float64.

    With n = ceil(m / 4), s = ceil(n / 2) - (1 if m mod 4 == 1 else 0) and the ramp
    u(p) = clip(min(p, 3n - p) / n, 0, 1), row i (1-based) is (u(i - s - n), u(i - s), u(i - s + n)):
    red, green and blue are the same trapezoid shifted by n. jet(256) starts at (0, 0, 33/64)
    and ends at (1/2, 0, 0); matplotlib's jet (``visualize.JET``) is another curve.
    """
    n = -(-m // 4)
    s = -(-n // 2) - (m % 4 == 1)
    p = np.arange(1, m + 1)[:, None] - s + np.array([-n, 0, n])                        # (m, 3)
    return np.clip(np.minimum(p, 3 * n - p) / n, 0, 1)


def map2jpg(imgmap):
    """``map2jpg.m`` with its default range and jet: (..., H, W) -> (..., H, W, 3) float64 in [0, 1].

    mat2gray over [min, max] (lines 3, 5; NaN left out of both), gray2ind(., 256): index
    round(255 g), MATLAB's round (half away from zero; line 6), index 0 where the map is NaN
    (line 7), then ind2rgb with jet(256) (line 12). A constant map gives index 0 (here;
    MATLAB's mat2gray of a constant is not relied on).
    """
    m = check_array("imgmap", np.asarray(imgmap), "(..., H, W)", kinds="fiu", nonempty=True).astype(np.float64)
    lo = np.nanmin(m, axis=(-2, -1), keepdims=True)                                    # (..., 1, 1)
    span = np.nanmax(m, axis=(-2, -1), keepdims=True) - lo
    gray = np.clip((m - lo) / np.where(span > 0, span, 1), 0, 1)                       # mat2gray
    return matlab_jet(256)[_gray2ind(np.nan_to_num(gray, nan=0.0))]                    # (..., H, W, 3)


def _gray2ind(gray):
    """gray2ind(gray, 256), map2jpg.m line 6: round(255 g), MATLAB's round (half away from zero), as
    uint8; gray in [0, 1], any shape (also ``presets``' "uint8-round" step)."""
    return np.floor(255 * gray + 0.5).astype(np.uint8)


def blend(image, heatmap):
    """demo.m line 52, then imwrite's conversion (line 58): round(255 (image / 255 * 0.2 + heatmap * 0.7)).

    image : (H, W, 3) uint8; heatmap : (..., H, W, 3) float in [0, 1] -> (..., H, W, 3) uint8.
    The blend stays <= 0.9, so nothing clips; the JPEG that imwrite then writes is not applied.
    """
    check_rgb_image("image", image)
    check_array("heatmap", heatmap, f"(..., {image.shape[0]}, {image.shape[1]}, 3)", finite=True)
    mixed = image / 255.0 * 0.2 + heatmap * 0.7                                        # (..., H, W, 3) float64
    return np.floor(mixed * 255 + 0.5).astype(np.uint8)


def run_demo(data, top_k=5, placement="mergeTenCrop.m", ranking="crop-mean"):
    """demo.m on ``data``: top classes, M_c per crop, resized, merged, coloured, blended.

    Parameters
    ----------
    data : DemoData (``load_demo_data``)
    top_k : int, demo.m's topNum (5)
    placement : see ``merge_ten_crops``
    ranking : "crop-mean" (the top classes of the mean score over the ten crops: what demo.m
        line 39 means, and computes when it runs the network, whose scores are (1000, 10)) or
        "first-crop" (what it computes on the cached scores: they are (1, 1, 1000, 10), so
        ``mean(scores, 2)`` averages over a singleton axis, ``sort`` ranks each crop and
        ``IDX_category(1:topNum)`` takes the first crop's top classes; Caffe's old
        ``matcaffe_demo.m`` squeezed the (1, 1, 1000, 10) scores before its ``mean(scores, 2)``)

    Returns a ``DemoResult``. The maps are resized in float64 (MATLAB keeps returnCAMmap's
    output as double), then merged in float32.
    """
    check_choice("ranking", ranking, RANKINGS)
    top_k = checked_top_k(top_k, len(data.class_names))
    mean_scores = data.scores.mean(axis=0)                                              # (1000,) line 39
    class_idx = _top_classes(mean_scores if ranking == "crop-mean" else data.scores[0], top_k)  # (J,) line 40
    cams = crop_cams(data, class_idx)                                                   # (10, J, 14, 14)
    large = imresize(cams.astype(np.float64), (CROP_SIZE, CROP_SIZE))                   # (10, J, 224, 224)
    merged = merge_ten_crops(large, placement)                                          # (J, 256, 256)
    heatmaps = map2jpg(merged)                                                          # (J, 256, 256, 3)
    return DemoResult(class_idx, mean_scores[class_idx], cams, merged, heatmaps, blend(data.image, heatmaps))


def fc_bias_from_scores(data):
    """The bias b_c of ``CAM_fc`` implied by the stored scores, up to a constant: (1000,) float64.

    The released weights have no bias and Eq. 2 uses none, but Caffe's scores include it:
    log(score[n, c]) - S_c(n) = b_c - log Z_n for every crop n, S_c = mean_{x,y} M_c. The mean
    over the crops of the left side, minus its mean over the classes, is b_c minus the mean
    bias (softmax ignores a constant). Fitted on the same scores it explains: a consistency
    check (1000 numbers from 10,000), not an independent measurement.
    """
    features = data.features.astype(np.float64).mean(axis=(2, 3))                      # (10, 1024) F_k
    logits = features @ data.fc_weight.astype(np.float64).T                            # (10, 1000) S_c
    residual = np.log(data.scores.astype(np.float64)) - logits                         # (10, 1000)
    residual -= residual.mean(axis=1, keepdims=True)                                   # removes log Z_n
    return residual.mean(axis=0)                                                       # (1000,)


def demo_strip(image, overlays):
    """demo.m line 53: the photo, then each overlay after 8 white columns: (256, 256 + J * 264, 3) uint8."""
    gap = np.full((image.shape[0], 8, 3), 255, np.uint8)                                # ones(., 8, 3)
    return np.concatenate([image] + [part for overlay in overlays for part in (gap, overlay)], axis=1)

