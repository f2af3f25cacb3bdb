"""What a claim estimates, and how each estimand is tested (docs/design.md: "Estimands").

A claim's value per unit is a paired difference d = A − B (or log A/B). The data a
DIP sweep makes are not Gaussian: diverged runs give rare large losses, iteration
counts are discrete and censored at the run's end, identical compute gives ties,
and a failed trial has no value at all. Units therefore carry what is known:

    d finite    the difference;
    d = +inf    A won without a value to subtract: B's trial failed, or A's value is
                censored ("at least") above B's;
    d = −inf    the same, the other way round;
    d = nan     the order is unknown (both failed, both censored): a tie.

Two estimands read these units:

- `Median` (the default): "A beats B on more than half of the units". Supported
  asserts P(d > 0) > 1/2 and contradicted P(d < 0) > 1/2; ties count against
  both, so zero spread or a pile of zeros is never certainty; equivalent within
  ±m asserts P(d ≥ m) < 1/2 and P(d ≤ −m) < 1/2. Tested by the sign of each unit
  only, so skew, rare large losses, censoring and failures (a loss of the failed
  arm) cannot fool it: under its null the count of wins is at most Bin(n, 1/2)
  whatever the units' distribution, independent but not identical. Fixed grid:
  the exact binomial test. Sequential: a mixture of likelihood-ratio
  martingales on the running count, E_n(S) = Σ_j w_j (2p_j)^S (2(1 − p_j))^(n−S),
  whose running minimum of 1/E is a p-value valid at every look at once (Ville).
  It cannot decide below ~9 units at a family's level (2^−n must beat α/2K).
- `Mean` (opt-in): the mean paired difference, under a Gaussian model: t-test and
  TOST on a fixed grid; the scale-invariant t-mixture Bayes factor sequentially.
  Assumes roughly normal unit differences: no rare large losses, little skew,
  few ties. Units without a value (failed, censored) are left out and counted,
  and the row says its verdict is then biased; zero spread is no evidence.

Every function is vectorised over leading axes (simulations decide thousands of
families at once); the last axis holds one claim's units in seed order.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats as _st

LEVEL = 0.95


@dataclass(frozen=True)
class Tested:
    """One claim's test, at a fixed n or at the latest look of a sequence (arrays broadcast alike)."""

    n: np.ndarray  # units read
    p_dir: np.ndarray  # two-sided p of "no difference" (NaN: not tested)
    side: np.ndarray  # +1: A > B is the side the data favour; −1: A < B
    p_eq: np.ndarray  # p of "outside ±margin" (NaN: no margin)
    estimate: np.ndarray  # the estimand's point estimate (median or mean of d)
    low: np.ndarray  # its interval (fixed: 95%; sequential: the confidence sequence at the row's level)
    high: np.ndarray
    used: np.ndarray  # units the test read (a mean leaves out units without a value)


# ---------------------------------------------------------------- the median: signs only

# The sign e-process's alternatives p_j = P(d > 0) and their weights: mass near p = 1 lets an all-wins run decide at
# the first n its level allows (9 units at α/14 per side); the rest keep power at p ≈ 0.75-0.85. Chosen by exact
# first-passage computations over K = 6-12 claims and 1 or 3 units per seed (tests/test_estimands.py checks the
# validity, `make bench ARGS='--only decisions'` the cost).
SIGN_P = np.array([0.75, 0.85, 0.95, 0.99])
SIGN_W = np.array([0.25, 0.15, 0.15, 0.45])
_LA, _LB, _LW = np.log(2 * SIGN_P), np.log(2 * (1 - SIGN_P)), np.log(SIGN_W / SIGN_W.sum())


def sign_log_e(s, n):
    """log E_n(S): the evidence that P(d > 0) > 1/2 in S wins out of n units (vectorised; S, n floats)."""
    s, n = np.broadcast_arrays(np.asarray(s, float), np.asarray(n, float))
    terms = _LW.reshape((-1,) + (1,) * s.ndim) + s[None] * _LA.reshape((-1,) + (1,) * s.ndim) \
        + (n - s)[None] * _LB.reshape((-1,) + (1,) * s.ndim)
    return np.logaddexp.reduce(terms, axis=0)


def binom_p(s, n):
    """P(Bin(n, 1/2) ≥ s): the exact one-sided sign test (1 where s ≤ 0)."""
    s, n = np.broadcast_arrays(np.asarray(s, float), np.asarray(n, float))
    return np.where(s <= 0, 1.0, _st.binom.sf(s - 1, n, 0.5))


def _counts(d, m):
    """(wins, losses, below +m, above −m) along the last axis; nan (unknown order) counts as none."""
    with np.errstate(invalid="ignore"):
        return ((d > 0).sum(-1), (d < 0).sum(-1), (d < m).sum(-1), (d > -m).sum(-1))


class SignRunning:
    """One claim's sign e-processes, updated in O(1) per unit (the tracker's incremental form of
    `Median.sequential`): wins, losses, and the counts inside ±margin, with the most evidence each reached."""

    def __init__(self, margin: float = math.nan):
        self.margin = margin
        self.n = 0
        self.counts = [0, 0, 0, 0]  # d > 0, d < 0, d < m, d > −m
        self.best = [-math.inf] * 4  # the largest log E each count reached at any look

    def add(self, d: float) -> None:
        self.n += 1
        m = self.margin
        for i, hit in enumerate((d > 0, d < 0, d < m, d > -m)):  # nan compares False: a tie for every count
            self.counts[i] += bool(hit)
            self.best[i] = max(self.best[i], _log_e_scalar(self.counts[i], self.n))

    def p(self, i: int) -> float:
        return min(1.0, math.exp(-self.best[i]))

    @property
    def p_dir(self) -> float:
        return min(1.0, 2 * min(self.p(0), self.p(1)))

    @property
    def side(self) -> int:
        return 1 if self.p(0) <= self.p(1) else -1

    @property
    def p_eq(self) -> float:
        return max(self.p(2), self.p(3)) if math.isfinite(self.margin) else math.nan


def _log_e_scalar(s: int, n: int) -> float:
    terms = [lw + s * la + (n - s) * lb for lw, la, lb in zip(_LW.tolist(), _LA.tolist(), _LB.tolist())]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


class Median:
    name = "median"
    running = SignRunning
    says = "median Δ (A beats B on more than half of the units; ties count against both)"
    assumes = "independent units; nothing about their distribution (skew, outliers, ties, censoring, failures)"

    @staticmethod
    def fixed(d, margin=math.nan) -> Tested:
        """The exact sign test at the units' n, and the order-statistic interval of the median."""
        d = np.asarray(d, float)
        n = np.full(d.shape[:-1], d.shape[-1], float)
        wins, losses, below, above = _counts(d, margin)
        p_plus, p_minus = binom_p(wins, n), binom_p(losses, n)
        p_eq = np.where(np.isfinite(margin), np.maximum(binom_p(below, n), binom_p(above, n)), np.nan)
        low, high = _median_interval(d, LEVEL)
        return Tested(n, np.minimum(1.0, 2 * np.minimum(p_plus, p_minus)), np.where(p_plus <= p_minus, 1, -1),
                      p_eq, _median(d), low, high, n)

    @staticmethod
    def sequential(d, margin=math.nan, level_side: float = 0.05 / 2) -> Tested:
        """The running anytime p-values after the last unit (a look after every unit, in the order given),
        and the median's confidence sequence at `level_side` per side (its running intersection)."""
        d = np.asarray(d, float)
        n_units = d.shape[-1]
        ns = np.arange(1, n_units + 1, dtype=float)
        with np.errstate(invalid="ignore"):
            runs = [np.cumsum(x, axis=-1) for x in (d > 0, d < 0, d < margin, d > -margin)]
        p_plus, p_minus, p_below, p_above = (_running_p(sign_log_e(s, ns)) for s in runs)
        p_eq = np.where(np.isfinite(margin), np.maximum(p_below, p_above), np.nan)
        low, high = _median_sequence(d, level_side)
        n = np.full(d.shape[:-1], n_units, float)
        return Tested(n, np.minimum(1.0, 2 * np.minimum(p_plus, p_minus)), np.where(p_plus <= p_minus, 1, -1),
                      p_eq, _median(d), low, high, n)

    @staticmethod
    def units_to_decide(d, level_side: float, horizon: int, step: int = 1) -> float:
        """Projected total units at which the claim's leading side would be decided at `level_side`, if the
        units go on as they went: the median first-passage time of the running count under the observed win
        fraction (exact), looked at every `step` units up to `horizon`. inf: not within the horizon."""
        s, n = _leading(d)
        if n == 0 or s / n <= 0.5:
            return math.inf
        return first_passage(s, n, s / n, level_side, horizon, step)[0]

    @staticmethod
    def chance(d, level_side: float, horizon: int, step: int = 1) -> float:
        """The predictive chance that the leading side is decided by `horizon` units: the first passage
        averaged over a uniform prior on the win probability updated by the units so far (Laplace's rule of
        succession step by step, exact). Small: more seeds are unlikely to decide it (futility)."""
        s, n = _leading(d)
        if n == 0:
            return 1.0
        return first_passage(s, n, None, level_side, horizon, step)[1]


def _running_p(log_e) -> np.ndarray:
    """min(1, running minimum of 1/E) along the last axis: the anytime p-value after the last look."""
    return np.minimum(1.0, np.exp(-np.maximum.accumulate(log_e, axis=-1)[..., -1]))


def _median(d) -> np.ndarray:
    """The median of d, a unit of unknown order (nan) read as a tie (0)."""
    with np.errstate(invalid="ignore"):  # a +inf and a −inf in the middle: no median (nan)
        return np.median(np.where(np.isnan(d), 0.0, d), axis=-1)


def _median_interval(d, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Distribution-free interval for the median: (x_(k), x_(n−k+1)) with P(Bin(n, 1/2) < k) ≤ (1 − level)/2;
    none (nan) below 6 units."""
    x = np.sort(np.where(np.isnan(d), 0.0, d), axis=-1)
    n = x.shape[-1]
    k = int(_st.binom.ppf((1 - level) / 2, n, 0.5))  # P(X ≤ k−1) ≤ (1−level)/2 ⟺ k ≤ ppf
    if _st.binom.cdf(k, n, 0.5) <= (1 - level) / 2:
        k += 1
    if k < 1:
        nan = np.full(x.shape[:-1], np.nan)
        return nan, nan
    return x[..., k - 1], x[..., n - k]


def _median_sequence(d, a: float) -> tuple[np.ndarray, np.ndarray]:
    """The median's confidence sequence from the sign e-process at level a per side, its running intersection
    over looks: at n units, c is excluded above once #{d < c} reaches the count the e-process needs."""
    n_units = d.shape[-1]
    low = np.full(d.shape[:-1], -np.inf)
    high = np.full(d.shape[:-1], np.inf)
    target = math.log(1 / a)
    for n in range(1, n_units + 1):
        k = _needed(n, target)
        if k > n:
            continue
        x = np.sort(np.where(np.isnan(d[..., :n]), 0.0, d[..., :n]), axis=-1)
        high = np.minimum(high, x[..., k - 1])
        low = np.maximum(low, x[..., n - k])
    return low, high


@lru_cache(maxsize=4096)
def _needed(n: int, target: float) -> int:
    """The fewest wins out of n with log E ≥ target (n + 1 when none)."""
    s = np.arange(n + 1)
    ok = np.nonzero(sign_log_e(s, n) >= target - 1e-12)[0]
    return int(ok[0]) if len(ok) else n + 1


def _leading(d) -> tuple[int, int]:
    """(wins of the side the units favour, units)."""
    d = np.asarray(d, float)
    wins, losses, _, _ = _counts(d, math.nan)
    return int(max(wins, losses)), len(d)


def first_passage(s0: int, n0: int, p: float | None, a: float, horizon: int, step: int = 1) -> tuple[float, float]:
    """(the median n at which the running count first reaches the e-process's boundary at level a, the chance it
    does by `horizon`), from s0 wins out of n0, each further unit a win w.p. p — or, with p None, w.p. (s + 1) /
    (n + 2) given the s wins of n so far (the predictive of a uniform prior). Looks every `step` units; the
    median is inf when the chance is below one half."""
    target = math.log(1 / a)
    mass = np.zeros(horizon + 2)
    mass[s0] = 1.0  # over the number of wins so far
    wins = np.arange(horizon + 2)
    crossed, median = 0.0, math.inf
    for n in range(n0 + 1, horizon + 1):
        q = np.full_like(mass, p) if p is not None else (wins + 1) / (n - 1 + 2)  # the win chance of unit n
        moved = mass * q
        mass = mass - moved
        mass[1:] += moved[:-1]
        if (n - n0) % step:
            continue
        k = _needed(n, target)
        if k <= n:
            crossed += mass[k:].sum()
            mass[k:] = 0.0
        if crossed >= 0.5 and median == math.inf:
            median = float(n)
            if p is not None:
                break
    return median, crossed


# ---------------------------------------------------------------- the mean: a Gaussian model

# Prior variances g of the standardised effect and their weights (the t-mixture Bayes factor): components near
# g ≈ δ² serve effects of 1-3 σ, the wide one lets an overwhelming effect decide from 4-5 units on.
MIXTURE_G = (1.0, 4.0, 10.0, 100.0)
MIXTURE_W = (0.25, 0.45, 0.20, 0.10)


def t_log_bf(t2, n, g=MIXTURE_G, w=MIXTURE_W):
    """log of the scale-invariant t-mixture Bayes factor at t² with n units (vectorised; n ≥ 2):
    BF = Σ_j w_j (1 + n g_j)^(−1/2) [(1 + t²/ν) / (1 + t²/(ν(1 + n g_j)))]^(n/2), ν = n − 1.
    Under μ = μ0 it is a nonnegative martingale in n for Gaussian units, whatever σ (Lai 1976;
    Pérez-Ortiz et al. 2022): P(∃n: BF ≥ 1/a) ≤ a, two-sided (BF grows with t²)."""
    t2, n = np.broadcast_arrays(np.asarray(t2, float), np.asarray(n, float))
    nu = n - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = [math.log(wj) - 0.5 * np.log1p(n * gj)
                 + 0.5 * n * (np.log1p(t2 / nu) - np.log1p(t2 / (nu * (1 + n * gj)))) for gj, wj in zip(g, w)]
    return np.logaddexp.reduce(np.stack(terms), axis=0)


def t_star(n, a, iters: int = 60):
    """The t multiplier at which the mixture reaches 1/a at n units (inf where no t can)."""
    n = np.atleast_1d(np.asarray(n, float))
    if n.size == 1:
        return np.array([_t_star_one(float(n[0]), float(a), iters)])
    return _t_star(n, a, iters)


@lru_cache(maxsize=4096)
def _t_star_one(n: float, a: float, iters: int) -> float:
    return float(_t_star(np.array([n]), a, iters)[0])


def _t_star(n, a, iters: int):
    target = math.log(1 / a)
    lo, hi = np.full(n.shape, -30.0), np.full(n.shape, 60.0)  # bisection on log t²
    for _ in range(iters):
        mid = (lo + hi) / 2
        above = t_log_bf(np.exp(mid), np.maximum(n, 2)) >= target
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    top = t_log_bf(np.exp(59.0), np.maximum(n, 2))
    return np.where((n >= 2) & (top > target), np.sqrt(np.exp(hi)), np.inf)


class TRunning:
    """One claim's t-mixture sequences, updated in O(1) per unit with a value (Welford): the most evidence any
    look gave against Δ = 0, and against Δ = ∓margin from inside the margin. Units without a value are counted."""

    def __init__(self, margin: float = math.nan):
        self.margin = margin
        self.n = self.excluded = 0
        self.mean = self.m2 = 0.0
        self.best0 = self.best_lo = self.best_hi = -math.inf
        self._side = 1

    def add(self, d: float) -> None:
        if not math.isfinite(d):
            self.excluded += 1
            return
        self.n += 1
        delta = d - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (d - self.mean)
        sd = math.sqrt(max(self.m2, 0.0) / (self.n - 1)) if self.n > 1 else 0.0
        if not _spread(sd, self.mean):  # zero spread is no evidence, however many units agree
            return
        m = self.margin
        e0 = float(_lbf_at(self.mean, sd, self.n, 0.0))
        if e0 > self.best0:
            self.best0, self._side = e0, 1 if self.mean >= 0 else -1
        if math.isfinite(m) and self.mean > -m:
            self.best_lo = max(self.best_lo, float(_lbf_at(self.mean, sd, self.n, -m)))
        if math.isfinite(m) and self.mean < m:
            self.best_hi = max(self.best_hi, float(_lbf_at(self.mean, sd, self.n, m)))

    @property
    def p_dir(self) -> float:
        return min(1.0, math.exp(-self.best0))

    @property
    def side(self) -> int:
        return self._side

    @property
    def p_eq(self) -> float:
        if not math.isfinite(self.margin):
            return math.nan
        return min(1.0, max(math.exp(-self.best_lo), math.exp(-self.best_hi)))


class Mean:
    name = "mean"
    running = TRunning
    says = "mean Δ"
    assumes = ("roughly normal unit differences: no rare large losses, little skew, few ties; units of failed or "
               "censored trials are left out (biased when there are any)")

    @staticmethod
    def fixed(d, margin=math.nan) -> Tested:
        """t-test of Δ = 0 and TOST against ±margin on the units with a value; zero spread is no evidence."""
        x, used = _valued(d)
        n = used
        mean, sd = _nanmean_sd(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            se = sd / np.sqrt(n)
            t = mean / se
            df = np.maximum(n - 1, 1)
            p_dir = 2 * _st.t.sf(np.abs(t), df)
            p_eq = np.maximum(_st.t.sf((mean + margin) / se, df), _st.t.cdf((mean - margin) / se, df))
            half = _st.t.ppf(0.5 + LEVEL / 2, df) * se
        spread = _spread(sd, mean) & (n >= 2)
        p_dir = np.where(spread, p_dir, np.where(n >= 2, 1.0, np.nan))
        p_eq = np.where(np.isfinite(margin) & spread, p_eq, np.where(np.isfinite(margin) & (n >= 2), 1.0, np.nan))
        low, high = np.where(spread, mean - half, np.nan), np.where(spread, mean + half, np.nan)
        return Tested(n, p_dir, np.where(mean >= 0, 1, -1), p_eq, mean, low, high, used)

    @staticmethod
    def sequential(d, margin=math.nan, level_side: float = 0.05 / 2) -> Tested:
        """Running anytime p-values of Δ = 0 (two-sided) and of Δ = ∓margin from inside, looking after every
        unit with a value; the confidence sequence at 2·level_side (two-sided), its running intersection."""
        x, used = _valued(d)
        n_units = x.shape[-1]
        order = np.argsort(np.isnan(x), axis=-1, kind="stable")  # valued units first, in their order
        x = np.take_along_axis(x, order, -1)
        lbf0 = lbf_lo = lbf_hi = np.full(x.shape[:-1], -np.inf)
        low, high = np.full(x.shape[:-1], -np.inf), np.full(x.shape[:-1], np.inf)
        side = np.ones(x.shape[:-1])
        best = np.full(x.shape[:-1], -np.inf)
        for n in range(2, n_units + 1):
            mean, sd = _nanmean_sd(x[..., :n])
            ok = (n <= used) & _spread(sd, mean)
            e0 = np.where(ok, _lbf_at(mean, sd, n, 0.0), -np.inf)
            side = np.where(e0 > best, np.where(mean >= 0, 1, -1), side)
            best = np.maximum(best, e0)
            lbf0 = np.maximum(lbf0, e0)
            if math.isfinite(margin):
                lbf_lo = np.maximum(lbf_lo, np.where(ok & (mean > -margin), _lbf_at(mean, sd, n, -margin), -np.inf))
                lbf_hi = np.maximum(lbf_hi, np.where(ok & (mean < margin), _lbf_at(mean, sd, n, margin), -np.inf))
            ts = float(t_star(n, 2 * level_side)[0])
            with np.errstate(invalid="ignore"):
                half = np.where(ok, ts * sd / math.sqrt(n), np.inf)
            low, high = np.maximum(low, np.where(ok, mean - half, -np.inf)), \
                np.minimum(high, np.where(ok, mean + half, np.inf))
        mean, _ = _nanmean_sd(x)
        p_eq = np.maximum(np.exp(-lbf_lo), np.exp(-lbf_hi)) if math.isfinite(margin) else np.full(x.shape[:-1], np.nan)
        return Tested(used, np.minimum(1.0, np.exp(-lbf0)), side, np.minimum(1.0, p_eq), mean, low, high, used)

    @staticmethod
    def chance(d, level_side: float, horizon: int, step: int = 1) -> float:
        """The chance that the mixture decides by `horizon` units: the effect size it needs there, against the
        normal posterior of the effect size (mean/sd, spread 1/√n) from the units so far."""
        x, _ = _valued(d)
        x = x[~np.isnan(x)]
        if len(x) < 2 or not _spread(np.std(x), np.mean(x)):
            return 1.0
        need = float(t_star(horizon, 2 * level_side)[0]) / math.sqrt(horizon)
        effect = abs(float(np.mean(x))) / float(np.std(x, ddof=1))
        return float(_st.norm.cdf((effect - need) * math.sqrt(len(x))))

    @staticmethod
    def units_to_decide(d, level_side: float, horizon: int, step: int = 1) -> float:
        """The n at which the mixture would reach its level if the mean and spread stay as they are."""
        x, used = _valued(d)
        x = x[~np.isnan(x)]
        if len(x) < 2 or not _spread(np.std(x), np.mean(x)):
            return math.inf
        mean, sd = float(np.mean(x)), float(np.std(x, ddof=1))
        for n in range(len(x) + step, horizon + 1, step):
            if float(t_log_bf((mean / sd) ** 2 * n, n)) >= math.log(1 / (2 * level_side)):
                return float(n)
        return math.inf


def _spread(sd, mean):
    """Whether units spread at all: equal values (up to rounding) carry no evidence about a mean."""
    return np.asarray(sd) > 1e-9 * np.maximum(1.0, np.abs(mean))


def _valued(d):
    """d with units that have no value (±inf, nan) set to nan, and how many have one."""
    d = np.asarray(d, float)
    x = np.where(np.isfinite(d), d, np.nan)
    return x, (~np.isnan(x)).sum(-1).astype(float)


def _nanmean_sd(x):
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a claim with no valued unit: nan, said elsewhere
        mean = np.nanmean(x, axis=-1)
        sd = np.nanstd(x, axis=-1, ddof=1)
    return mean, np.where(np.isnan(sd), 0.0, sd)


def _lbf_at(mean, sd, n, mu0):
    with np.errstate(divide="ignore", invalid="ignore"):
        t2 = (mean - mu0) ** 2 * n / (sd * sd)
    return t_log_bf(np.where(np.isfinite(t2), t2, 0.0), n)


def running_interval(estimand, d, level_side: float) -> tuple[np.ndarray, np.ndarray]:
    """The estimand's confidence sequence after each unit (its running intersection), for a figure of a claim
    closing in: (lows, highs), ±inf where no bound exists yet."""
    d = np.asarray(d, float)
    lows, highs = np.full(len(d), -np.inf), np.full(len(d), np.inf)
    for n in range(1, len(d) + 1):
        t = estimand.sequential(d[:n], math.nan, level_side)
        lo, hi = float(t.low), float(t.high)
        lows[n - 1] = lo if not math.isnan(lo) else -np.inf
        highs[n - 1] = hi if not math.isnan(hi) else np.inf
    return np.maximum.accumulate(lows), np.minimum.accumulate(highs)


def fewest_units(level_side: float, sequential: bool, limit: int = 1000) -> int:
    """The fewest units at which the median's test can decide at all (every unit a win) at `level_side`."""
    for n in range(1, limit):
        if (sequential and _log_e_scalar(n, n) >= math.log(1 / level_side)) or \
                (not sequential and 0.5 ** n <= level_side):
            return n
    return limit


ESTIMANDS = {"median": Median, "mean": Mean}
DEFAULT = "median"


def get(name: str | None):
    return ESTIMANDS[name or DEFAULT]


# ---------------------------------------------------------------- a family, decided at once

NO_PAIRS, TOO_FEW, UNDECIDED, SUPPORTED, CONTRADICTED, EQUIVALENT = range(6)
MIN_UNITS = 3  # below this no verdict, whatever the numbers


def holm(p, w=None):
    """Holm's step-down adjusted p-values along the last axis (NaN: not tested, not counted; `w`: weights)."""
    from .multiplicity import holm as _holm

    return _holm(p, w)


def decide(tested: Tested, expect, alpha: float = 0.05, weights=None, whole_family: bool = False) -> dict:
    """Verdict codes for a family (the last axis of every array) from its tests: Holm over every claim's
    direction test and, where a claim has a margin, its equivalence test (weighted by `weights`, each row's
    share of α, when given). `whole_family`: a sequential family, fixed in advance: a row not yet read far
    enough is in it at its p-value as given (1 before any unit; the caller passes NaN only for a test the
    row does not have), so Holm's rejections only grow as p-values shrink and decisions are final.
    Returns codes, adjusted p-values (NaN where a row has too few units) and `open_weight`: the weight of
    the hypotheses not rejected (the next decision needs α × its own weight / this)."""
    n = tested.n
    enough = n >= MIN_UNITS
    p_dir = np.where(enough, tested.p_dir, np.nan)
    p_eq = np.where(enough, tested.p_eq, np.nan)
    if whole_family:
        h_dir = np.where(enough, tested.p_dir, np.where(np.isnan(tested.p_dir), np.nan, 1.0))
        h_eq = np.where(enough, tested.p_eq, np.where(np.isnan(tested.p_eq), np.nan, 1.0))
    else:
        h_dir, h_eq = p_dir, p_eq
    k = p_dir.shape[-1]
    w = np.ones(k) if weights is None else np.asarray(weights, float)
    h = np.concatenate([h_dir, h_eq], axis=-1)
    adj = holm(h, np.concatenate([w, w], axis=-1))
    open_weight = np.sum(np.where(np.isnan(h) | (adj <= alpha), 0.0, np.concatenate([w, w], axis=-1)), axis=-1)
    adj = np.where(np.concatenate([enough, enough], axis=-1), adj, np.nan)
    adj_dir, adj_eq = adj[..., :k], adj[..., k:]
    code = np.full(p_dir.shape, UNDECIDED)
    differs = adj_dir <= alpha
    code = np.where(differs & (tested.side == expect), SUPPORTED, code)
    code = np.where(differs & (tested.side == -np.asarray(expect)), CONTRADICTED, code)
    code = np.where(adj_eq <= alpha, EQUIVALENT, code)
    code = np.where(enough, code, np.where(n == 0, NO_PAIRS, TOO_FEW))
    return {"code": code, "p": p_dir, "p_adj": adj_dir, "p_equiv": p_eq, "p_equiv_adj": adj_eq,
            "open_weight": open_weight}
