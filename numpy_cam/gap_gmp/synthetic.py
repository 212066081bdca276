"""A seeded localisation dataset with exact boxes: "creatures" on a cluttered background.

Each image holds one object, a "creature" of one of ``NUM_CLASSES`` classes, at a random
position, scale and angle. A class is two things at once:

- the *body*, a large ellipse covered with a LOW-contrast class texture (stripes, checks,
  dots, grid, chevrons or rings, drawn in the body's own frame so that it turns with it):
  weak evidence spread over the whole object;
- the *head*, one small HIGH-contrast class shape at one end of the body (ring, plus,
  triangle, T, X or diamond, upright): strong evidence in one spot.

  ====  ================  ===================  ======================
  label name              body texture         head
  ====  ================  ===================  ======================
  0     stripes-ring      stripes across body  ring
  1     checks-plus       checks               plus
  2     dots-triangle     dots                 triangle (apex up)
  3     grid-tee          grid lines           T
  4     chevrons-cross    chevrons             X
  5     rings-diamond     concentric rings     diamond
  ====  ================  ===================  ======================

Why this design: the paper's claim (GAP localises better than GMP at equal accuracy) is a
claim about *where the evidence is*. GAP rewards a unit for firing over the whole object, GMP
for firing at one place. A feasibility study made while designing this data (its notes are not
part of the repository; what it found is summarised here) found that the claim shows only when
much of the evidence is weak and spread out. Objects filled with a strong texture reversed it:
every part of them is equally telling, GMP loses nothing, and GAP's map bled into a halo
around small objects. Two small shapes on a plain bar were not learnt within the training
budget. Weak texture over a large body plus one strong head sits in between: there both
poolings classified about equally well and GAP's boxes were right about twice as often. So the
texture contrast is kept low and the head small; see the constants below. Colours carry no
class information: the body colour is drawn independently of the class (and kept apart from
the background behind it), the head colour is set against the body's and the background's, so
a network must read the texture or the head. Distractor blobs and strokes of random colours
lie *under* the object: they may overlap its footprint but never hide a pixel of it.

Conventions
-----------
- Images are (size, size, 3) uint8 RGB, indexed ``image[y, x]`` (row y, column x, origin at
  the top-left pixel). Geometry is computed at pixel centres (x, y integers).
- ``masks`` (optional) is (size, size) uint8 per image: 0 background, 1 body, 2 head.
- A box is (x0, y0, x1, y1), *inclusive*, the exact bounding box of the object's mask (body
  and head): columns x0..x1, rows y0..y1, width x1 - x0 + 1, as in ``localize``.
- Deterministic: image i is made from its own child seed, ``SeedSequence(seed).spawn``'s i-th,
  so it does not depend on ``n``; labels cycle 0, 1, ..., NUM_CLASSES - 1 (balanced). The
  pixels use only IEEE-exact float64 arithmetic (+, -, *, /, sqrt, floor: no sin, exp or
  BLAS, whose last bit varies between machines) and NumPy's PCG64 integers and uniforms, so
  the bytes are the same on every machine with the same NumPy random streams.
"""
import math
import operator
from typing import NamedTuple

import numpy as np

from ..localize import bbox_of_mask

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "MIN_SIZE", "Regime", "DEFAULT", "REGIMES", "make_dataset"]

CLASS_NAMES = ("stripes-ring", "checks-plus", "dots-triangle", "grid-tee", "chevrons-cross",
               "rings-diamond")
NUM_CLASSES = len(CLASS_NAMES)
TRAIN_SEED, TEST_SEED = 1512, 4150   # the experiment's dataset seeds (arXiv 1512.04150), not a net's seed
MIN_SIZE = 32                 # below this the heads are a pixel or two: unreadable

# Lengths marked "px" are pixels at size 64, scaled by size / 64.
OBJECT_SIZE = (0.45, 0.95)    # longer side of the object's box (body + head) / image side
BODY_ASPECT = (0.35, 0.6)     # minor / major axis of the body ellipse
# The head is small (radius 13-17% of the body's length, ~3-10 px at size 64, ~12% of the
# object's area): strong evidence in one spot that must not crowd out the weak evidence spread
# over the body. (In the study, objects reduced to a head gave no GAP/GMP contrast worth the
# name: GAP could not classify them and GMP's boxes shrank to the head.)
HEAD_RADIUS = (0.13, 0.17)
HEAD_OFFSET = 0.35            # head centre beyond the body's tip, in head radii (it overlaps the tip)
# The texture is weak on purpose: +-12 levels of 255 under +-10 of pixel noise. A strong
# texture makes every body pixel equally telling and reverses the GAP/GMP result.
TEXTURE_CONTRAST = 24.0       # peak-to-peak, in 0..255 levels, the same on R, G and B
TEXTURE_PERIOD = (4.0, 6.0)   # px
HEAD_CONTRAST = (90, 128)     # |head - body| on each channel, levels: unmissable
BODY_CONTRAST = (40, 100)     # |body - background behind its centre| on each channel, levels
NOISE = 10                    # pixel noise, uniform integers in [-NOISE, NOISE]
SMOOTH_NOISE = 30.0           # amplitude of the low-frequency colour noise, levels
SMOOTH_GRID = 5               # its control points per side (bilinear in between)
BLOBS, STROKES = (2, 4), (1, 3)  # how many distractors of each kind (inclusive ranges)


class Regime(NamedTuple):
    """The data parameters that move the GAP/GMP gap; ``Regime()`` is the constants above.

    object_size : (low, high), the object's longer side / the image side (``OBJECT_SIZE``)
    head_radius : (low, high), the head's radius / the body's length (``HEAD_RADIUS``), or None:
        no head, the object is its textured body alone (the feasibility study's counter-case)
    texture_contrast : peak-to-peak levels of the body texture (``TEXTURE_CONTRAST``)

    Only these values change between regimes, never the order of the random draws: the same
    seed gives every regime the same backgrounds, distractors, angles, positions and colours
    (a regime without a head still draws its radius and colour and paints nothing).
    """
    object_size: tuple = OBJECT_SIZE
    head_radius: tuple = HEAD_RADIUS
    texture_contrast: float = TEXTURE_CONTRAST


DEFAULT = Regime()
# The regimes of the GAP-vs-GMP sweep (``python -m numpy_cam.gap_gmp rescore``): one factor at a time
# from the default, then the study's counter-case, a strongly textured object without a head, at
# three object sizes (the halo of GAP's map matters most on small objects, not at all on large ones).
REGIMES = {
    "default": DEFAULT,
    "large_head": Regime(head_radius=(0.4, 0.5)),             # the head's box alone passes IoU 0.5 (~70%)
    "small_object": Regime(object_size=(0.25, 0.45)),         # the receptive field's halo matters
    "strong_texture": Regime(texture_contrast=96.0),          # the body as telling as the head
    "textured": Regime(object_size=(0.25, 0.6), head_radius=None, texture_contrast=96.0),
    "textured_small": Regime(object_size=(0.15, 0.3), head_radius=None, texture_contrast=96.0),   # ~10-19 px
    "textured_large": Regime(object_size=(0.6, 0.95), head_radius=None, texture_contrast=96.0),   # ~38-61 px
}


def _frac(t):
    return t - np.floor(t)


def _dots(u, v):
    """1.0 within 0.3 (in periods) of the lattice's cell centres, else 0.0."""
    du, dv = _frac(u) - 0.5, _frac(v) - 0.5
    return (du * du + dv * dv < 0.09) * 1.0


# Class textures p(u, v) in {0, 1}: u along the body's axis, v across it, h a half period.
_TEXTURES = (
    lambda u, v, h: np.floor(u / h) % 2,                                   # stripes across
    lambda u, v, h: (np.floor(u / h) + np.floor(v / h)) % 2,               # checks
    lambda u, v, h: _dots(u / (2 * h), v / (2 * h)),                        # dots
    lambda u, v, h: ((_frac(u / (2 * h)) < 0.3) | (_frac(v / (2 * h)) < 0.3)) * 1.0,  # grid
    lambda u, v, h: np.floor((u + np.abs(v)) / h) % 2,                     # chevrons
    lambda u, v, h: np.floor(np.sqrt(u * u + v * v) / h) % 2,              # concentric rings
)
# Class heads: bool masks from (dx, dy) to the head centre and its radius r; w a bar's half width.
_HEADS = (
    lambda dx, dy, r, w: (dx * dx + dy * dy <= r * r) & (dx * dx + dy * dy >= 0.25 * r * r),   # ring
    lambda dx, dy, r, w: ((np.abs(dx) <= w) & (np.abs(dy) <= r))
                         | ((np.abs(dy) <= w) & (np.abs(dx) <= r)),                             # plus
    lambda dx, dy, r, w: (dy <= r) & (2 * np.abs(dx) <= dy + r),                            # triangle
    lambda dx, dy, r, w: ((np.abs(dx) <= r) & (dy >= -r) & (dy <= 2 * w - r))
                         | ((np.abs(dx) <= w) & (np.abs(dy) <= r)),                             # T
    lambda dx, dy, r, w: (np.abs(dx) <= r) & (np.abs(dy) <= r)
                         & ((np.abs(dx - dy) <= 1.2 * w) | (np.abs(dx + dy) <= 1.2 * w)),       # X
    lambda dx, dy, r, w: np.abs(dx) + np.abs(dy) <= r,                                          # diamond
)


def _direction(rng):
    """A unit vector (cos, sin) of a uniform random angle, without sin/cos (rejection in a ring)."""
    while True:
        c, s = rng.random(2) * 2.0 - 1.0
        r2 = c * c + s * s
        if 0.0625 < r2 <= 1.0:
            norm = math.sqrt(r2)
            return c / norm, s / norm


def _away(rng, colour, contrast, avoid=None):
    """A colour differing from ``colour`` by contrast[0]..contrast[1] on each channel.

    Per channel, colour + step or colour - step: one inside 0..255 if there is one; then the
    one farther from ``avoid`` if given, else a random one. Clipped to 0..255.
    """
    step = rng.uniform(*contrast, size=3)                                     # (3,)
    up, down = colour + step, colour - step
    if avoid is None:
        pick_up = rng.random(3) < 0.5
    else:
        pick_up = np.abs(up - avoid) > np.abs(down - avoid)
    pick_up = np.where(up > 255, False, np.where(down < 0, True, pick_up))
    return np.clip(np.where(pick_up, up, down), 0, 255)                       # (3,)


def _background(rng, xs, ys, size):
    """(size, size, 3) float64: a colour gradient plus smooth colour noise."""
    c0, c1 = rng.integers(0, 256, size=(2, 3)).astype(np.float64)             # (3,) each
    gx, gy = _direction(rng)
    proj = xs * gx + ys * gy                                                  # (S, S)
    t = (proj - proj.min()) / (proj.max() - proj.min())                       # (S, S) in [0, 1]
    image = c0 + (c1 - c0) * t[..., None]                                     # (S, S, 3)
    grid = (rng.random((SMOOTH_GRID, SMOOTH_GRID, 3)) * 2.0 - 1.0) * SMOOTH_NOISE
    pos = np.arange(size) * ((SMOOTH_GRID - 1) / (size - 1))                  # (S,) in grid units
    i0 = np.minimum(np.floor(pos).astype(np.intp), SMOOTH_GRID - 2)
    f = (pos - i0)[:, None, None]                                             # (S, 1, 1)
    rows = grid[i0] * (1.0 - f) + grid[i0 + 1] * f                            # (S, G, 3): along y
    f = f.reshape(1, size, 1)
    return image + rows[:, i0] * (1.0 - f) + rows[:, i0 + 1] * f              # (S, S, 3): along x


def _distractors(rng, image, xs, ys, unit):
    """Paint plain blobs (ellipses) and strokes (thick segments) of random colours, in place."""
    size = image.shape[0]
    for _ in range(rng.integers(BLOBS[0], BLOBS[1] + 1)):
        cx, cy = rng.uniform(0, size - 1, size=2)
        a, b = rng.uniform(2.0, 7.0, size=2) * unit
        c, s = _direction(rng)
        u, v = (xs - cx) * c + (ys - cy) * s, (ys - cy) * c - (xs - cx) * s   # (S, S) each
        image[u * u / (a * a) + v * v / (b * b) <= 1.0] = rng.integers(0, 256, size=3)
    for _ in range(rng.integers(STROKES[0], STROKES[1] + 1)):
        x0, y0 = rng.uniform(0, size - 1, size=2)
        c, s = _direction(rng)
        length, half_width = rng.uniform(8.0, 24.0) * unit, rng.uniform(0.7, 1.3) * unit
        t = np.clip((xs - x0) * c + (ys - y0) * s, 0.0, length)              # (S, S): along the stroke
        dx, dy = xs - (x0 + t * c), ys - (y0 + t * s)
        image[dx * dx + dy * dy <= half_width * half_width] = rng.integers(0, 256, size=3)


def _creature(rng, label, size, regime=DEFAULT):
    """One image and its mask: (size, size, 3) uint8, (size, size) uint8 (0, 1 body, 2 head)."""
    unit = size / 64.0
    xs = np.arange(size, dtype=np.float64)[None, :]                           # (1, S): x = column
    ys = np.arange(size, dtype=np.float64)[:, None]                           # (S, 1): y = row
    image = _background(rng, xs, ys, size)                                    # (S, S, 3)

    # Shape at unit body half-length; then scaled so the object's longer side is OBJECT_SIZE.
    c, s = _direction(rng)                                                    # the body's axis, head end
    b = rng.uniform(*BODY_ASPECT)
    has_head = regime.head_radius is not None
    r = 2.0 * rng.uniform(*(regime.head_radius if has_head else HEAD_RADIUS))  # drawn either way
    reach = 1.0 + HEAD_OFFSET * r                                             # centre to head centre
    ex, ey = math.sqrt(c * c + b * b * s * s), math.sqrt(s * s + b * b * c * c)  # ellipse half-box
    if has_head:
        lo_x, hi_x = min(-ex, reach * c - r), max(ex, reach * c + r)
        lo_y, hi_y = min(-ey, reach * s - r), max(ey, reach * s + r)
    else:
        lo_x, hi_x, lo_y, hi_y = -ex, ex, -ey, ey
    scale = rng.uniform(*regime.object_size) * size / max(hi_x - lo_x, hi_y - lo_y)
    a, b, r, reach = scale, b * scale, r * scale, reach * scale
    cx = rng.uniform(-lo_x * scale, size - 1 - hi_x * scale)                  # the whole object inside
    cy = rng.uniform(-lo_y * scale, size - 1 - hi_y * scale)

    u, v = (xs - cx) * c + (ys - cy) * s, (ys - cy) * c - (xs - cx) * s       # (S, S): body frame
    body = u * u / (a * a) + v * v / (b * b) <= 1.0                           # (S, S) bool
    head = _HEADS[label](xs - (cx + reach * c), ys - (cy + reach * s), r, 0.3 * r) & has_head  # (S, S) bool

    behind = image[round(cy), round(cx)].copy()                               # (3,) background there
    head_at = (min(max(round(cy + reach * s), 0), size - 1), min(max(round(cx + reach * c), 0), size - 1))
    behind_head = image[head_at].copy()                                       # (3,)
    _distractors(rng, image, xs, ys, unit)                                    # under the object
    body_colour = _away(rng, behind, BODY_CONTRAST)
    head_colour = _away(rng, body_colour, HEAD_CONTRAST, avoid=behind_head)  # stands out from both
    half = rng.uniform(*TEXTURE_PERIOD) * unit / 2.0
    phase_u, phase_v = rng.uniform(0.0, 2.0 * half, size=2) * (label != 5)    # rings: centred
    texture = _TEXTURES[label](u + phase_u, v + phase_v, half) - 0.5          # (S, S) in {-0.5, 0.5}
    image[body] = body_colour + regime.texture_contrast * texture[body][:, None]  # (k, 3)
    image[head] = head_colour

    image += rng.integers(-NOISE, NOISE + 1, size=image.shape)
    mask = body.astype(np.uint8)
    mask[head] = 2
    return np.rint(np.clip(image, 0, 255)).astype(np.uint8), mask


def _check_int(value, name, low, why):
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}") from None
    if value < low:
        raise ValueError(f"{name} must be >= {low} ({why}); got {value}")
    return value


def _check_regime(regime):
    """A ``Regime`` (or the name of one in ``REGIMES``) with sensible values, as a Regime."""
    if isinstance(regime, str):
        if regime not in REGIMES:
            raise ValueError(f"regime must be one of {sorted(REGIMES)} or a Regime; got {regime!r}")
        return REGIMES[regime]
    if not isinstance(regime, Regime):
        raise TypeError(f"regime must be a Regime or a name in {sorted(REGIMES)}; got {type(regime).__name__}")
    ranges = [("object_size", regime.object_size, 0.1, 1.0), ("head_radius", regime.head_radius, 0.01, 1.0)]
    for name, pair, low, high in ranges:
        if name == "head_radius" and pair is None:
            continue
        if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
            raise ValueError(f"regime.{name} must be (low, high) with {low} <= low <= high <= {high}; got {pair!r}")
    if not 0 <= regime.texture_contrast <= 255:
        raise ValueError(f"regime.texture_contrast must be within [0, 255] levels; got {regime.texture_contrast!r}")
    return regime


def make_dataset(n, seed, size=64, return_masks=False, regime=DEFAULT):
    """``n`` creature images with their labels and exact boxes, the same for the same arguments.

    Parameters
    ----------
    n : int >= 1
        Number of images. Image i is the same whatever ``n`` (its own child seed).
    seed : int >= 0
        Seed of ``np.random.SeedSequence``.
    size : int >= MIN_SIZE
        Side of the square images, in pixels (the design is made at 64 and scales with it).
    return_masks : bool
        Also return the object masks.
    regime : Regime or str
        The data parameters (object size, head size, texture contrast), or the name of one of
        ``REGIMES``; the default regime is the constants of this module.

    Returns
    -------
    images : ndarray of shape (n, size, size, 3), uint8 RGB
    labels : ndarray of shape (n,), int64 -- ``i % NUM_CLASSES``, names in ``CLASS_NAMES``
    boxes : ndarray of shape (n, 4), int64 -- (x0, y0, x1, y1), inclusive, of the mask
    masks : ndarray of shape (n, size, size), uint8 -- only with ``return_masks``:
        0 background, 1 body, 2 head (no 2 in a regime without a head).

    Raises
    ------
    ValueError
        If ``n`` < 1, ``seed`` < 0 or ``size`` < MIN_SIZE, or one of them is not an integer;
        or ``regime`` is an unknown name or holds values out of range.
    TypeError
        If ``regime`` is neither a Regime nor a str.
    """
    n = _check_int(n, "n", 1, "the number of images")
    seed = _check_int(seed, "seed", 0, "a SeedSequence entropy")
    size = _check_int(size, "size", MIN_SIZE, "smaller images leave the heads unreadable")
    regime = _check_regime(regime)
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), np.uint8)
    labels = np.arange(n, dtype=np.int64) % NUM_CLASSES                      # (n,) balanced
    boxes = np.empty((n, 4), np.int64)
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        images[i], masks[i] = _creature(np.random.default_rng(child), labels[i], size, regime)
        boxes[i] = bbox_of_mask(masks[i])                                   # never empty: one creature
    return (images, labels, boxes, masks) if return_masks else (images, labels, boxes)
