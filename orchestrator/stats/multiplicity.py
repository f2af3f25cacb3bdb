"""Multiplicity: family-wise (Holm 1979, weighted) and false-discovery-rate (Benjamini–Hochberg 1995)
adjustments, vectorised along the last axis so that simulations adjust thousands of families at once."""

from __future__ import annotations

import numpy as np


def _sorted_finite(p):
    p = np.asarray(p, float)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), axis=-1, kind="stable")
    return p, order, np.take_along_axis(p, order, -1), np.sum(~np.isnan(p), axis=-1, keepdims=True)


def holm(p, w=None):
    """Holm's step-down adjusted p-values along the last axis (NaN: not tested, not counted). With weights
    `w` (> 0, broadcast to p), the weighted Holm procedure (Holm 1979, §3): hypotheses in the order of p / w,
    the j-th adjusted to p_j / w_j times the weight of those not yet passed; hypothesis i is rejected at level
    α when p_i <= α w_i / (the weight still open). Equal weights give Holm's plain step-down."""
    p = np.asarray(p, float)
    w = np.ones_like(p) if w is None else np.broadcast_to(np.asarray(w, float), p.shape)
    order = np.argsort(np.where(np.isnan(p), np.inf, p / w), axis=-1, kind="stable")
    ps, ws = np.take_along_axis(p, order, -1), np.take_along_axis(w, order, -1)
    counted = np.where(np.isnan(ps), 0.0, ws)
    still_open = np.flip(np.cumsum(np.flip(counted, -1), axis=-1), -1)  # weight of this one and those after it
    adj = np.fmax.accumulate(np.minimum(1.0, ps / ws * still_open), axis=-1)
    out = np.empty_like(p)
    np.put_along_axis(out, order, adj, -1)
    return np.where(np.isnan(p), np.nan, out)


def priority_weights(priorities) -> np.ndarray:
    """Each claim row's share of α: equal when every row has one priority; else the rows of priority 1 (the
    questions the sweep exists for) share half of α and the rest share the other half, each row within its half
    equal. Stated in the sweep file before any data, so the weighted Holm procedure stays valid."""
    pr = np.asarray(priorities, int)
    first = pr == 1
    if pr.size == 0 or first.all() or not first.any():
        return np.ones(pr.shape)
    return np.where(first, 1.0 / first.sum(), 1.0 / (~first).sum())


def bh(p):
    """Benjamini–Hochberg q-values along the last axis (NaN: not tested, not counted)."""
    p, order, ps, m = _sorted_finite(p)
    k = np.arange(1, p.shape[-1] + 1)
    q = np.minimum(1.0, m * ps / k)
    q = np.flip(np.fmin.accumulate(np.flip(q, -1), axis=-1), -1)
    out = np.empty_like(p)
    np.put_along_axis(out, order, q, -1)
    return np.where(np.isnan(p), np.nan, out)


