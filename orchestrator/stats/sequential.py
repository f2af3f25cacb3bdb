"""Anytime-valid intervals (docs/design.md: "Adaptive replication"): a confidence sequence for a claim's mean paired difference.

An adaptive sweep looks at a claim after every unit it gains. A fixed-n t
interval read at every look would be wrong far more often than 5% (optional
stopping); a confidence sequence (CS) is right at every n at once:
P(∃ n: μ ∉ CS_n) ≤ a.

The sequence is the scale-invariant t-mixture (Lai 1976; the "safe t-test" of
Pérez-Ortiz, Lardy, de Heide & Grünwald 2022). For Gaussian unit values with
unknown σ, a normal prior N(0, g) on the standardised effect δ = (μ − μ0)/σ
and the right-Haar prior dσ/σ give the Bayes factor

    BF_n(μ0) = (1 + n g)^(−1/2) · [(1 + t²/ν) / (1 + t²/(ν(1 + n g)))]^(n/2),
    t = (x̄_n − μ0)·√n / s_n,   ν = n − 1,

the likelihood ratio of the data's scale-free part; under μ = μ0 it is a
nonnegative martingale with BF_1 = 1, whatever σ, and so is a mixture
Σ_j w_j BF_j over several g. Ville's inequality gives P(∃n: BF_n(μ) ≥ 1/a) ≤ a.
BF grows with t², so CS_n = x̄_n ± t*_n · s_n/√n, where BF(t*_n) = 1/a.

A family of K claims splits α: each claim's CS has level 1 − α/K, so the
chance that any claim's CS ever misses its true Δ is ≤ α (union bound), and
every verdict read from them (supported, contradicted, equivalent) is then
right at whatever unit the sweep stopped.
"""

from __future__ import annotations

import math
import numpy as np

# Prior variances g of the standardised effect δ and their weights. Components near g ≈ δ² serve the
# effects claims usually have (0.3 to 3 σ); the wide one lets an overwhelming effect be decided from
# 4 units on (the bound log_bf_max). Chosen on the adaptive benchmark's family (bench.py --only adaptive):
# it spent ~10% fewer trials than (0.5, 4, 32, 256) at equal weights for the same decisions.
MIXTURE_G = (0.1, 0.5, 2.0, 10.0, 200.0)
MIXTURE_W = (0.24, 0.24, 0.24, 0.24, 0.04)


def log_bf(t2, n, g=MIXTURE_G, w=MIXTURE_W):
    """log of the mixture Bayes factor at t² (vectorised over t2 and n; n ≥ 2)."""
    t2, n = np.broadcast_arrays(np.asarray(t2, float), np.asarray(n, float))
    nu = n - 1
    terms = []
    for gj, wj in zip(g, w):
        r = 1 + n * gj
        terms.append(math.log(wj) - 0.5 * np.log(r) + 0.5 * n * (np.log1p(t2 / nu) - np.log1p(t2 / (nu * r))))
    return np.logaddexp.reduce(np.stack(terms), axis=0)


def log_bf_max(n, g=MIXTURE_G, w=MIXTURE_W):
    """The Bayes factor's bound as t² → ∞: no data of n units can give more evidence than this."""
    n = np.asarray(n, float)
    return np.logaddexp.reduce(np.stack([math.log(wj) + 0.5 * (n - 1) * np.log1p(n * gj)
                                         for gj, wj in zip(g, w)]), axis=0)


def log_bf_at(mean: float, std: float, n: int, mu0: float) -> float:
    """log BF_n(μ0) from a running mean and standard deviation: the evidence n units carry against μ = μ0.

    The anytime-valid p-value of μ = μ0 is exp(−max over looks of this): by Ville's inequality,
    P(∃n: BF_n(μ0) ≥ 1/a) ≤ a, and the CS at level 1 − a excludes μ0 exactly when BF_n(μ0) ≥ 1/a."""
    if n < 2 or not math.isfinite(mean):
        return 0.0
    gap = mean - mu0
    if not std > 0:  # every unit the same value: no evidence when it is μ0, the most n units can carry if not
        return 0.0 if gap == 0 else float(log_bf_max(n))
    return float(log_bf(gap * gap * n / (std * std), n))


def t_star(n, a, iters: int = 80):
    """The CS's t multiplier at n units and level 1 − a (vectorised over n; inf where no t can reach 1/a)."""
    n = np.atleast_1d(np.asarray(n, float))
    target = math.log(1 / a)
    lo, hi = np.full(n.shape, -30.0), np.full(n.shape, 60.0)  # bisection on log t²
    for _ in range(iters):
        mid = (lo + hi) / 2
        above = log_bf(np.exp(mid), np.maximum(n, 2)) >= target
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    out = np.sqrt(np.exp(hi))
    return np.where((n >= 2) & (log_bf_max(np.maximum(n, 2)) > target), out, np.inf)


def first_interval_n(a: float, limit: int = 10_000) -> int:
    """The fewest units whose sequence at level 1 − a can be finite (below it no data can exclude anything)."""
    n = 2
    while n < limit and not log_bf_max(n) > math.log(1 / a):
        n += 1
    return n


_TABLES: dict[float, np.ndarray] = {}


def t_star_at(n: int, a: float) -> float:
    """t*_n from a table per level, computed for every n at once and doubled when outgrown: a claim's
    update costs a lookup, however many units it has."""
    table = _TABLES.get(a)
    if table is None or n >= len(table):
        size = max(64, 2 * (n + 1), 0 if table is None else 2 * len(table))
        table = _TABLES[a] = t_star(np.arange(size), a)
    return float(table[n])


def cs_bounds(mean, std, n, a):
    """CS_n = mean ± t*_n · std/√n (vectorised): (low, high); the whole line where no interval exists yet."""
    mean, std, n = np.broadcast_arrays(*(np.asarray(x, float) for x in (mean, std, n)))
    sizes, where = np.unique(n, return_inverse=True)  # t* depends on n alone: one bisection per distinct n
    ts = t_star(sizes, a)[where].reshape(n.shape)
    with np.errstate(invalid="ignore"):
        half = np.where(np.isinf(ts), np.inf, ts * std / np.sqrt(np.maximum(n, 1)))
    return mean - half, mean + half


class RunningMean:
    """Count, mean and sum of squared deviations (Welford), updated in O(1) per unit."""

    __slots__ = ("n", "mean", "m2")

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(max(self.m2, 0.0) / (self.n - 1)) if self.n > 1 else math.nan

    def bounds(self, a: float) -> tuple[float, float]:
        if self.n < 2:
            return -math.inf, math.inf
        ts = t_star_at(self.n, a)
        half = math.inf if math.isinf(ts) else ts * self.std / math.sqrt(self.n)
        return self.mean - half, self.mean + half
