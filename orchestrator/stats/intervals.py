"""Intervals and tests at a fixed number of units, for sweep tables and claims (docs/design.md, "Statistics").

Every function here takes one value per unit of replication (`units.py` says
what a unit is: a staged (seed, image) fit, a hybrid training seed), never one
per image of a model that several images share.

- `mean_ci`: Student-t interval over units, from MIN_UNITS units on; below
  that there is no interval, only the values (shown as min–max). An interval
  never leaves the metric's range (`bounds`).
- `one_sample`: the mean paired difference, its t interval and two-sided p.
- `tost_p`: two one-sided tests against ±margin (Schuirmann 1987): a small p
  says the difference lies inside the margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

LEVEL = 0.95
MIN_UNITS = 3  # below this no interval and no verdict, whatever the numbers (docs/design.md, "Too few")


@dataclass(frozen=True)
class Estimate:
    """A mean over n units with its interval [low, high] (None below MIN_UNITS: `values` instead)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    std: float | None = None
    values: tuple[float, ...] = ()

    @property
    def half(self) -> float | None:
        """Half the interval's width (an interval cut at the metric's range is not centred: see low, high)."""
        return None if self.low is None else (self.high - self.low) / 2

    @property
    def centred(self) -> bool:
        return self.low is not None and math.isclose(self.mean - self.low, self.high - self.mean, rel_tol=1e-9,
                                                     abs_tol=1e-12)


@dataclass(frozen=True)
class Paired:
    """The mean over units of the paired differences a − b, its interval, p, and the arms' means."""

    diff: Estimate
    p: float | None
    mean_a: float
    mean_b: float
    wins: int  # units with a > b


def finite(values) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            continue
        if math.isfinite(v):
            out.append(float(v))
    return out


def t_multiplier(n: int, level: float = LEVEL) -> float:
    return float(_st.t.ppf(0.5 + level / 2, n - 1))


def mean_ci(values, level: float = LEVEL, bounds: tuple[float, float] | None = None) -> Estimate | None:
    """Mean ± t_{(1+level)/2, n−1} · s/√n over the finite values (one per unit), cut to `bounds`;
    below MIN_UNITS units the values themselves; None when there are none."""
    xs = finite(values)
    n = len(xs)
    if n == 0:
        return None
    mean = math.fsum(xs) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else None
    if n < MIN_UNITS:
        return Estimate(mean, None, None, n, std, tuple(xs))
    half = t_multiplier(n, level) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Estimate(mean, low, high, n, std)


def t_p_value(mean, std, n):
    """Two-sided p of a one-sample t-test of mean 0 (numpy-vectorised; NaN where n < 2).
    A zero standard deviation gives p = 1 for a zero mean and 0 otherwise."""
    mean, std, n = np.broadcast_arrays(*(np.asarray(x, float) for x in (mean, std, n)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (std / np.sqrt(n))
        p = 2 * _st.t.sf(np.abs(t), np.maximum(n - 1, 1))
    p = np.where(std == 0, np.where(mean == 0, 1.0, 0.0), p)
    return np.where(n >= 2, p, np.nan)


def tost_p(mean, std, n, margin):
    """Two one-sided t-tests of H0: |μ| ≥ margin (vectorised; NaN where n < 2 or no margin):
    max(P(T ≥ (d̄ + m)/se), P(T ≤ (d̄ − m)/se)). Small p: equivalent within ±margin."""
    mean, std, n, margin = np.broadcast_arrays(*(np.asarray(x, float) for x in (mean, std, n, margin)))
    with np.errstate(divide="ignore", invalid="ignore"):
        se = std / np.sqrt(n)
        df = np.maximum(n - 1, 1)
        p = np.maximum(_st.t.sf((mean + margin) / se, df), _st.t.cdf((mean - margin) / se, df))
    p = np.where(se == 0, np.where(np.abs(mean) < margin, 0.0, 1.0), p)
    return np.where((n >= 2) & np.isfinite(margin), p, np.nan)


def one_sample(d, a=None, b=None, level: float = LEVEL) -> Paired | None:
    """Paired comparison from one difference per unit (and the arms' unit means, for the table)."""
    est = mean_ci(d, level)
    if est is None:
        return None
    p = float(t_p_value(est.mean, est.std, est.n)) if est.n >= MIN_UNITS else None
    xs = finite(d)
    mean_a = math.fsum(finite(a)) / len(finite(a)) if a is not None and finite(a) else math.nan
    mean_b = math.fsum(finite(b)) / len(finite(b)) if b is not None and finite(b) else math.nan
    return Paired(est, p, mean_a, mean_b, sum(x > 0 for x in xs))


def paired(a, b, level: float = LEVEL) -> Paired | None:
    """Paired comparison of equal-length sequences of unit values (pairs with a non-finite member dropped)."""
    if len(a) != len(b):
        raise ValueError(f"paired: {len(a)} values against {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b) if finite([x]) and finite([y])]
    if not pairs:
        return None
    return one_sample([x - y for x, y in pairs], [x for x, _ in pairs], [y for _, y in pairs], level)
