"""The comparison every golden test makes: an NCHW stage output against its stored summary."""
import numpy as np


def assert_matches_golden(golden, key, y, atol):
    """``y`` at the golden's positions (``<key>/idx``, ``<key>/val``) and its per-channel means
    (``<key>/channel_mean``) within ``atol``; dtype float32 and shape ``<key>/shape``."""
    assert y.dtype == np.float32 and y.shape == tuple(golden[f"{key}/shape"])
    flat = np.ascontiguousarray(y).reshape(-1)
    np.testing.assert_allclose(flat[golden[f"{key}/idx"]], golden[f"{key}/val"], rtol=0, atol=atol)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3), dtype=np.float64), golden[f"{key}/channel_mean"],
                               rtol=0, atol=atol)
