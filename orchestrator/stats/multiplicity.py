"""Multiplicity: family-wise (Holm 1979) and false-discovery-rate (Benjamini–Hochberg 1995) adjustments,
vectorised along the last axis so that simulations adjust thousands of families at once."""

from __future__ import annotations

import numpy as np


def _sorted_finite(p):
    p = np.asarray(p, float)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), axis=-1, kind="stable")
    return p, order, np.take_along_axis(p, order, -1), np.sum(~np.isnan(p), axis=-1, keepdims=True)


def holm(p):
    """Holm's step-down adjusted p-values along the last axis (NaN: not tested, not counted)."""
    p, order, ps, m = _sorted_finite(p)
    k = np.arange(p.shape[-1])
    adj = np.fmax.accumulate(np.minimum(1.0, (m - k) * ps), axis=-1)
    out = np.empty_like(p)
    np.put_along_axis(out, order, adj, -1)
    return np.where(np.isnan(p), np.nan, out)


def bh(p):
    """Benjamini–Hochberg q-values along the last axis (NaN: not tested, not counted)."""
    p, order, ps, m = _sorted_finite(p)
    k = np.arange(1, p.shape[-1] + 1)
    q = np.minimum(1.0, m * ps / k)
    q = np.flip(np.fmin.accumulate(np.flip(q, -1), axis=-1), -1)
    out = np.empty_like(p)
    np.put_along_axis(out, order, q, -1)
    return np.where(np.isnan(p), np.nan, out)


