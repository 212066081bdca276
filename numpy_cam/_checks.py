"""The package's one validation policy: what is checked, where, and what the errors say.

What
    ``TypeError``: the wrong kind of thing -- not an array, not a number, a wrong dtype (a
    bool is neither a number nor an integer here). ``ValueError``: the right kind with a wrong
    shape or value -- out of range, NaN, empty. Every message names the argument, says what
    was expected and what came: ``x must have shape (N, 3, H, W); got (224, 224, 3)``. Array
    arguments are NumPy arrays, or array_like where the docstring says so (then ``np.asarray``
    comes first). Never ``assert`` on user input.

Where: once, at the public boundary
    A public function checks its arguments at its top, then calls a private twin that checks
    nothing (``localize`` = checks + ``_localize``). A public function that chains others
    (``explain.explain_image``, ``Model.predict``) checks its own arguments and calls the
    private twins below it, so each value is checked once on every path. The command line is
    a boundary of its own (``cli.py``): argparse ``type=`` functions built on these helpers
    convert and check its options, what needs the model is checked once it is loaded, and it
    then calls the private twins (``explain._explain_image``) so nothing is checked again.

The helpers return the value they checked, converted where that helps (a float, an int, a
tuple of ints), so a caller writes ``alpha = check_unit_interval("alpha", alpha)``.
"""
import numbers
import operator

import numpy as np

_KINDS = (("f", "float"), ("iu", "int"), ("b", "bool"))       # dtype kinds, as named in messages


def _either(texts):
    """'a', 'a or b', 'a, b or c'."""
    texts = list(texts)
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def _shape_matches(shape, pattern):
    """``pattern`` as written in messages: "(N, 3, H, W)", "(..., h, w)"; a number must match."""
    dims = [d.strip() for d in pattern.strip("()").split(",") if d.strip()]
    if dims[:1] == ["..."]:
        dims = dims[1:]
        if len(shape) < len(dims):
            return False
        shape = shape[len(shape) - len(dims):]
    elif len(shape) != len(dims):
        return False
    return all(not d.isdigit() or int(d) == n for d, n in zip(dims, shape))


def check_array(name, value, shape, kinds="f", dtypes=(), nonempty=False, finite=False):
    """``value``, an ndarray of the given shape and dtype.

    Parameters
    ----------
    name : str, the argument's name in messages
    value : anything
    shape : str, the expected shape as written in messages, "(N, 3, H, W)" or "(..., h, w)":
        a number must match, a letter matches any length, "..." any leading axes
    kinds : str, the accepted dtype kinds ("f" float, "iu" int, "b" bool), and / or
    dtypes : sequence of dtypes, accepted exactly (e.g. ``(np.uint8,)``)
    nonempty : bool, refuse an array with no element
    finite : bool, refuse NaN and infinity (``check_finite``)

    TypeError: not an ndarray, or another dtype. ValueError: another shape, empty, not finite.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array of shape {shape}; got {type(value).__name__}")
    dtypes = [np.dtype(d) for d in dtypes]
    if value.dtype.kind not in kinds and value.dtype not in dtypes:
        expected = [str(d) for d in dtypes] + [text for k, text in _KINDS if set(k) & set(kinds)]
        raise TypeError(f"{name} must have dtype {_either(expected)}; got {value.dtype}")
    if not _shape_matches(value.shape, shape):
        raise ValueError(f"{name} must have shape {shape}; got {value.shape}")
    if nonempty and value.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {value.shape}")
    return check_finite(name, value) if finite else value


def check_finite(name, values):
    """ValueError unless every value of the array ``values`` is finite (ints always are)."""
    if values.dtype.kind not in "fc" or not values.size:
        return values
    if np.isfinite(values.min()) and np.isfinite(values.max()):
        return values                                   # min and max propagate NaN: two cheap passes
    nan, inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
    raise ValueError(f"{name} must be finite; got {nan} NaN and {inf} infinite values")


def check_unit_interval(name, value):
    """``value`` as a float in [0, 1]. TypeError: not a real number (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number between 0 and 1; got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:                          # NaN fails too
        raise ValueError(f"{name} must be between 0 and 1; got {value}")
    return value


def check_fraction(name, value, note=""):
    """``value`` as a float in (0, 1]; ``note`` follows the range in messages, e.g. " (0.5, not 50)".

    TypeError: not a real number (a bool is not one). ValueError: outside (0, 1], or NaN.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in (0, 1]{note}; got {value!r}")
    if not 0 < value <= 1:                                # NaN fails too
        raise ValueError(f"{name} must be a number in (0, 1]{note}; got {value!r}")
    return float(value)


def check_flag(name, value):
    """``value`` as a bool: True or False (np.bool_ too). TypeError: anything else (1, "yes")."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_int_range(name, value, lo, hi=None):
    """``value`` as an int in lo..hi (hi None: no upper bound); an integer array: every element.

    TypeError: not an integer (a bool, a float such as 2.0) or an array of another dtype.
    ValueError: outside the range; the message shows the first value outside it.
    """
    expected = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
    if isinstance(value, np.ndarray) and value.ndim:
        if value.dtype.kind not in "iu":
            raise TypeError(f"{name} must be integers; got dtype {value.dtype}")
        outside = (value < lo) | (value > hi) if hi is not None else value < lo
        if outside.any():
            raise ValueError(f"{name} must be {expected}; got {value[outside][0]}")
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer; got {value!r}") from None
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name} must be {expected}; got {value}")
    return value


def check_choice(name, value, choices):
    """``value``, one of ``choices`` (compared with ==; a bool never matches)."""
    try:
        found = not isinstance(value, (bool, np.bool_)) and value in choices
    except (TypeError, ValueError):                      # e.g. an array: no single truth value
        found = False
    if not found:
        raise ValueError(f"{name} must be {_either(repr(c) for c in choices)}; got {value!r}")
    return value


def check_size(name, value):
    """``value`` as (H, W), two ints >= 1. TypeError: not a pair of ints; ValueError: < 1."""
    expected = f"{name} must be (H, W) with positive integers; got {value!r}"
    if not isinstance(value, (tuple, list)) or any(isinstance(v, (bool, np.bool_)) for v in value):
        raise TypeError(expected)
    try:
        size = tuple(operator.index(v) for v in value)
    except TypeError:
        raise TypeError(expected) from None
    if len(size) != 2 or min(size) < 1:
        raise ValueError(expected)
    return size


def check_rgb_image(name, value):
    """``value``, an (H, W, 3) uint8 RGB image. TypeError: not an array or not uint8."""
    if not (isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 3 and value.shape[2] == 3):
        shape, dtype = getattr(value, "shape", type(value).__name__), getattr(value, "dtype", None)
        error = ValueError if isinstance(value, np.ndarray) and value.dtype == np.uint8 else TypeError
        raise error(f"{name} must be an array of shape (H, W, 3) and dtype uint8 (RGB); "
                    f"got shape {shape} and dtype {dtype}")
    return value


def check_color(name, value):
    """``value`` as (r, g, b), 3 ints in 0..255. TypeError: not integers; ValueError: else."""
    expected = f"{name} must be 3 ints in 0..255; got {value!r}"
    try:
        rgb = tuple(operator.index(c) for c in value)
    except TypeError:
        raise TypeError(expected) from None
    if len(rgb) != 3 or min(rgb) < 0 or max(rgb) > 255:
        raise ValueError(expected)
    return rgb


def check_box(name, value):
    """``value`` as (x0, y0, x1, y1), 4 Python ints with x0 <= x1 and y0 <= y1 (inclusive).

    TypeError: not a sequence of integers; ValueError: not 4 of them, or x1 < x0 or y1 < y0.
    """
    expected = f"{name} must be 4 integers (x0, y0, x1, y1); got {value!r}"
    if isinstance(value, (str, bytes)):
        raise TypeError(expected)
    try:
        box = tuple(operator.index(v) for v in value)
    except TypeError:
        raise TypeError(expected) from None
    if len(box) != 4:
        raise ValueError(expected)
    x0, y0, x1, y1 = box
    if x1 < x0 or y1 < y0:
        raise ValueError(f"{name} (x0, y0, x1, y1) must have x0 <= x1 and y0 <= y1; got {value!r}")
    return box
