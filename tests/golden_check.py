"""The one tolerance rule of every golden comparison (CONTRIBUTING.md, "Tolerance").

A port's output ``y`` matches a golden ``g`` when ``|y - g| <= TAU * S`` everywhere, with ``S =
max |g|``: the largest magnitude of that golden array, for that stage and that input. The
stored positions of a stage, its per-channel means, the pooled features and the logits are
separate arrays, so each has its own ``S``. ``TAU`` is the same for every model.
"""
import numpy as np

from numpy_cam.testing.cases import TAU  # 5e-5, measured (CONTRIBUTING.md, "Tolerance"): see there


def relative_error(actual, golden):
    """max |actual - golden| / max |golden|: the error in units of the golden's scale ``S``.

    Parameters
    ----------
    actual, golden : ndarray of the same shape (any)

    Returns
    -------
    float
        0 when both are equal; ``inf`` when they differ and ``golden`` is all zeros.
    """
    actual, golden = np.asarray(actual, np.float64), np.asarray(golden, np.float64)
    assert actual.shape == golden.shape, f"shape {actual.shape}, golden {golden.shape}"
    error, scale = float(np.abs(actual - golden).max(initial=0.0)), float(np.abs(golden).max(initial=0.0))
    if error == 0.0:
        return 0.0
    return error / scale if scale > 0 else float("inf")


def stage_errors(golden, key, y):
    """The relative error of each golden array of stage ``key`` (``<key>/val`` at ``<key>/idx``,
    ``<key>/channel_mean``, ``<key>/gap`` when stored): ``{"val": e, "channel_mean": e, ...}``.

    ``y`` : ndarray of shape (N, C, H, W), the port's output of that stage.
    """
    flat = np.ascontiguousarray(y).reshape(-1)
    errors = {"val": relative_error(flat[golden[f"{key}/idx"]], golden[f"{key}/val"]),
              "channel_mean": relative_error(y.mean(axis=(0, 2, 3), dtype=np.float64), golden[f"{key}/channel_mean"])}
    if f"{key}/gap" in golden:                           # the pooled features, what the fc layer sees
        errors["gap"] = relative_error(y.mean(axis=(2, 3)), golden[f"{key}/gap"])
    return errors


def assert_within_tau(actual, golden, what):
    """``|actual - golden| <= TAU * max |golden|``; the message names ``what`` and the error."""
    error = relative_error(actual, golden)
    assert error <= TAU, f"{what}: max |port - golden| = {error:.3g} * S > TAU = {TAU:g} (S = max |golden|)"


def assert_matches_golden(golden, key, y):
    """Stage ``key``: dtype float32 and shape ``<key>/shape`` exactly, then every golden array of
    the stage (its stored positions, channel means and, if stored, pooled features) within TAU."""
    shape = tuple(int(n) for n in golden[f"{key}/shape"])
    assert y.dtype == np.float32, f"{key}: dtype {y.dtype}, expected float32"
    assert y.shape == shape, f"{key}: shape {y.shape}, golden {shape}"
    for part, error in stage_errors(golden, key, y).items():
        assert error <= TAU, f"{key}/{part}: max |port - golden| = {error:.3g} * S > TAU = {TAU:g} (S = max |golden|)"
