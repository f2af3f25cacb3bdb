"""Small-sample statistics for sweep tables: Student-t intervals and paired t-tests.

Seeds × images give a handful of values per cell, so intervals use the t
distribution (n − 1 degrees of freedom), not the normal approximation. With
one value there is no interval: `half` is None and the tables say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as _st

LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean with a two-sided `level` confidence interval mean ± half (half None when n < 2)."""

    mean: float
    half: float | None
    n: int
    std: float | None = None

    @property
    def low(self) -> float | None:
        return None if self.half is None else self.mean - self.half

    @property
    def high(self) -> float | None:
        return None if self.half is None else self.mean + self.half


@dataclass(frozen=True)
class Paired:
    """Mean of the differences a − b over matched pairs, its interval, and a paired t-test's p-value."""

    diff: Estimate
    p: float | None
    mean_a: float
    mean_b: float
    wins: int  # pairs with a > b


def _finite(values) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v):
            out.append(float(v))
    return out


def mean_ci(values, level: float = LEVEL) -> Estimate | None:
    """Mean ± t_{(1+level)/2, n−1} · s/√n over the finite numbers in `values`; None when there are none."""
    xs = _finite(values)
    n = len(xs)
    if n == 0:
        return None
    mean = math.fsum(xs) / n
    if n == 1:
        return Estimate(mean, None, 1)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))  # sample standard deviation
    half = float(_st.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return Estimate(mean, half, n, std)


def paired(a, b, level: float = LEVEL) -> Paired | None:
    """Paired comparison of equal-length sequences (pairs with a non-finite member are dropped).

    t = mean(d) / (s_d / √n) with n − 1 degrees of freedom, two-sided. When every
    difference is equal, s_d = 0: p is 1 for a zero difference, 0 otherwise.
    """
    if len(a) != len(b):
        raise ValueError(f"paired: {len(a)} values against {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b) if _finite([x]) and _finite([y])]
    if not pairs:
        return None
    d = mean_ci([x - y for x, y in pairs], level)
    p = None
    if d.n >= 2:
        if d.std == 0:
            p = 1.0 if d.mean == 0 else 0.0
        else:
            t = d.mean / (d.std / math.sqrt(d.n))
            p = float(2 * _st.t.sf(abs(t), d.n - 1))
    return Paired(d, p, math.fsum(x for x, _ in pairs) / len(pairs), math.fsum(y for _, y in pairs) / len(pairs),
                  sum(x > y for x, y in pairs))
