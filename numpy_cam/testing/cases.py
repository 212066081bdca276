"""How a checker runs one case and says what went wrong: ``CheckFailed``, ``Mistake``, ``Checker``.

A case calls the candidate function with the reference's arguments and compares what it
returns with what the reference returns. When they differ, the checker also compares the
candidate's answer with the reference computed *with a typical mistake* (the kernel flipped,
a sum for a mean, the corner-aligned grid, ...): when the candidate matches one of these
variants and not the reference, the message names that mistake. The message always says
which case failed, and shows the expected and the returned values (whole when small, else
their shapes and the largest difference and where).

Tolerances: arrays match when |got - expected| <= ATOL_SCALE * max(1, max |expected|)
everywhere (float32 arithmetic in another order is far inside it; the planted mistakes are far
outside); a network's stages use the golden rule, |got - golden| <= TAU * max |golden| per
array (``TAU``, the project's one rule, which ``tests/golden_check.py`` imports).
"""
import numbers

import numpy as np

ATOL_SCALE = 1e-4           # arrays: |got - expected| <= ATOL_SCALE * max(1, max |expected|)
# goldens: |got - golden| <= TAU * max |golden|, the project's one rule (CONTRIBUTING.md, "Tolerance").
# Measured: a correct float32 run is within 4.6e-6 of S on every model, stage, input, BLAS kernel
# and SIMD setting tried; the smallest real bug, Lite1 with PyTorch's BN eps 1e-5 for 1e-3, is
# off by 3.0e-4 of S at the stem. TAU is 11x the one and a sixth of the other.
TAU = 5e-5
SHOW_MAX = 60               # arrays of at most this many numbers are printed whole


class CheckFailed(AssertionError):
    """A case of a checker failed. ``check``, ``case``: their names; ``mistake``: the likely
    mistake's name, or None when the answer matches none of the known ones; ``mistakes``: every
    known mistake the answer matches (a case cannot always tell two apart)."""

    def __init__(self, check, case, message, mistake=None):
        self.check, self.case = check, case
        self.mistakes = tuple(mistake) if isinstance(mistake, (tuple, list)) else (mistake,) if mistake else ()
        self.mistake = self.mistakes[0] if self.mistakes else None
        super().__init__(f"{check}: case {case!r} failed. {message}")


class Mistake:
    """A typical mistake: ``name`` (short), ``hint`` (what the right rule is), and ``answer``:
    what the reference gives with that mistake in this case (a value, or a function of no
    arguments computing it, called only when the candidate is wrong)."""

    def __init__(self, name, hint, answer):
        self.name, self.hint, self._answer = name, hint, answer

    def answer(self):
        return self._answer() if callable(self._answer) else self._answer


def show(value):
    """A value as the message prints it: small arrays whole, large ones by shape and dtype."""
    if isinstance(value, np.ndarray):
        if value.size <= SHOW_MAX:
            text = np.array2string(value, precision=4, suppress_small=True, max_line_width=100)
            return f"array of shape {value.shape}, {value.dtype}:\n{text}"
        return f"array of shape {value.shape}, {value.dtype} (too large to print)"
    if isinstance(value, tuple) and any(isinstance(v, np.ndarray) for v in value):
        return "(" + ",\n ".join(show(v) for v in value) + ")"
    return repr(value)


def _difference(got, expected):
    """Where two arrays of one shape differ most, as a sentence."""
    diff = np.abs(np.asarray(got, np.float64) - np.asarray(expected, np.float64))        # (shape)
    at = np.unravel_index(int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))), diff.shape)
    return (f"largest difference {float(diff[at]):.4g} at index {tuple(int(i) for i in at)} "
            f"(expected {float(np.asarray(expected)[at]):.6g}, got {float(np.asarray(got)[at]):.6g})")


def same(got, expected):
    """Whether ``got`` matches ``expected``: arrays (same shape, within the tolerance), tuples
    element by element, numbers within the tolerance, anything else by ==."""
    if isinstance(expected, tuple):
        return isinstance(got, (tuple, list)) and len(got) == len(expected) and all(
            same(g, e) for g, e in zip(got, expected))
    if isinstance(expected, np.ndarray):
        try:
            got = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        if got.shape != expected.shape:
            return False
        scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
        return bool(np.all(np.abs(got - expected) <= ATOL_SCALE * scale))
    if expected is None or got is None:
        return got is None and expected is None
    if isinstance(expected, numbers.Real) and not isinstance(expected, bool):
        return isinstance(got, numbers.Real) and abs(float(got) - expected) <= ATOL_SCALE * max(1.0, abs(expected))
    return got == expected


class Checker:
    """The cases of one checker against one candidate ``fn``; counts the cases that pass."""

    def __init__(self, check, fn):
        if not callable(fn):
            raise TypeError(f"{check} needs a function; got {type(fn).__name__}")
        self.check, self.fn, self.passed = check, fn, 0

    def fail(self, case, message, mistake=None):
        raise CheckFailed(self.check, case, message, mistake)

    def call(self, case, *args, **kwargs):
        """fn(*args, **kwargs). NotImplementedError goes through (the skeleton is not done);
        any other exception, or an array argument changed in place, fails the case."""
        before = [a.copy() for a in args if isinstance(a, np.ndarray)]
        try:
            got = self.fn(*args, **kwargs)
        except NotImplementedError:
            raise
        except Exception as err:                       # the student's error, reported as the case's failure
            self.fail(case, f"Calling it raised {type(err).__name__}: {err}")
        for old, new in zip(before, [a for a in args if isinstance(a, np.ndarray)]):
            if not np.array_equal(old, new, equal_nan=True):
                self.fail(case, "It changed its input array in place; the layers are pure functions: "
                                "work on a copy (or a new array) instead.", "input changed in place")
        return got

    def expect(self, case, got, expected, mistakes=(), dtype=None):
        """Pass when ``got`` matches ``expected`` (and has ``dtype`` if given); else fail,
        naming the first of ``mistakes`` whose answer ``got`` matches."""
        if not same(got, expected):
            self.fail(case, *self._explain(got, expected, mistakes))
        if dtype is not None and np.asarray(got).dtype != dtype:
            self.fail(case, f"It returned dtype {np.asarray(got).dtype} for {np.dtype(dtype)} input: the forward "
                            f"pass stays {np.dtype(dtype)} (cast constants and results with .astype(x.dtype)).",
                      "dtype changed")
        self.passed += 1

    def _explain(self, got, expected, mistakes):
        matched = [m for m in mistakes if (answer := m.answer()) is not None and same(got, answer)]
        if matched:
            likely = f"Likely mistake: {matched[0].name}. {matched[0].hint}"
            likely += "".join(f" (Or: {m.name}. {m.hint})" for m in matched[1:])
            return f"{likely}\nexpected {show(expected)}\ngot {show(got)}", [m.name for m in matched]
        text = f"expected {show(expected)}\ngot {show(got)}"
        if isinstance(expected, np.ndarray):
            got_shape = np.shape(got) if isinstance(got, np.ndarray) else None
            if got_shape != expected.shape:
                text = f"Wrong shape: expected {expected.shape}, got {got_shape or type(got).__name__}.\n" + text
            else:
                text += "\n" + _difference(got, expected)
        return text, None

    def expect_golden(self, case, got, golden):
        """The golden rule: |got - golden| <= TAU * max |golden| (shapes equal)."""
        got = np.asarray(got)
        if got.shape != golden.shape:
            self.fail(case, f"Wrong shape: expected {golden.shape}, got {got.shape}.")
        error = float(np.abs(got.astype(np.float64) - golden).max(initial=0.0))
        scale = float(np.abs(golden).max(initial=0.0))
        if error > TAU * scale:
            self.fail(case, f"max |got - golden| = {error:.3g} = {error / scale:.3g} * S > TAU * S "
                            f"(TAU = {TAU:g}, S = max |golden| = {scale:.4g}); " + _difference(got, golden))
        self.passed += 1
