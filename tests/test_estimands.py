"""The estimands' tests against exact answers: the sign test is the exact binomial, its e-process is valid at
every level exactly, the t-test is scipy's, and the crafted cases that fooled the old verdicts do not."""

import math

import numpy as np
import pytest
from scipy import stats as st

from orchestrator.stats import estimands
from orchestrator.stats.estimands import (EQUIVALENT, SUPPORTED, UNDECIDED, Mean, Median, SignRunning, TRunning,
                                          first_passage, sign_log_e, t_log_bf)


def one(t, field):
    return float(np.asarray(getattr(t, field)).ravel()[0])


# ---------------------------------------------------------------- the median

def test_the_sign_test_is_the_exact_binomial_with_ties_counted_against():
    d = np.array([0.3, 1.2, -0.4, 0.0, 0.0, 2.0, 0.7, 0.1, -0.2, 0.9])  # 6 wins, 2 losses, 2 ties
    t = Median.fixed(d)
    p_plus = st.binomtest(6, 10, 0.5, alternative="greater").pvalue  # ties are units that did not win
    p_minus = st.binomtest(2, 10, 0.5, alternative="greater").pvalue
    assert one(t, "p_dir") == pytest.approx(min(1, 2 * min(p_plus, p_minus)))
    assert one(t, "side") == 1 and one(t, "estimate") == pytest.approx(np.median(d))


def test_the_median_interval_is_the_order_statistic_interval():
    rng = np.random.default_rng(0)
    d = rng.normal(0.5, 1, 25)
    t = Median.fixed(d)
    x = np.sort(d)
    k = 8  # P(Bin(25, 1/2) ≤ 7) = 0.0216 ≤ 0.025 < P(≤ 8): the 8th smallest and 8th largest
    assert st.binom.cdf(k - 1, 25, 0.5) <= 0.025 < st.binom.cdf(k, 25, 0.5)
    assert (one(t, "low"), one(t, "high")) == (x[k - 1], x[25 - k])
    assert math.isnan(one(Median.fixed(d[:5]), "low"))  # below 6 units no interval reaches 95%


def test_the_sign_e_process_is_valid_at_every_level_exactly():
    """P(∃ n ≤ 400: E_n ≥ 1/a) under wins w.p. 1/2, by exact dynamic programming over the running count."""
    for a in (0.05 / 24, 0.0025, 0.05 / 14, 0.01, 0.05):
        _, crossed = first_passage(0, 0, 0.5, a, 400)
        assert crossed <= a, (a, crossed)
    # with ties the wins are rarer still: 70% ties and P(d > 0) = 0.15
    assert first_passage(0, 0, 0.15, 0.0025, 400)[1] < 1e-6


def test_the_running_sign_tests_equal_the_vectorised_ones():
    rng = np.random.default_rng(1)
    d = np.where(rng.random((200, 30)) < 0.2, 0.0, rng.normal(0.3, 1, (200, 30)))
    vec = Median.sequential(d, 0.5)
    for i in range(0, 200, 17):
        run = SignRunning(0.5)
        for x in d[i]:
            run.add(x)
        assert run.p_dir == pytest.approx(vec.p_dir[i]) and run.p_eq == pytest.approx(vec.p_eq[i])


def test_an_all_wins_run_decides_at_the_fewest_units_its_level_allows():
    a = 0.05 / 14  # seven claims, two sides
    assert estimands.fewest_units(a, sequential=False) == 9  # 2^-9 ≤ a < 2^-8: no valid test does better
    assert estimands.fewest_units(a, sequential=True) == 9  # the e-process matches it here
    assert sign_log_e(9, 9) >= math.log(1 / a) > sign_log_e(8, 8)


# ---------------------------------------------------------------- the mean

def test_the_t_test_and_tost_are_scipys():
    rng = np.random.default_rng(3)
    d = rng.normal(0.3, 0.5, 12)
    t = Mean.fixed(d, 0.5)
    assert one(t, "p_dir") == pytest.approx(st.ttest_1samp(d, 0).pvalue)
    lower = st.ttest_1samp(d, -0.5, alternative="greater").pvalue
    upper = st.ttest_1samp(d, 0.5, alternative="less").pvalue
    assert one(t, "p_eq") == pytest.approx(max(lower, upper))
    ci = st.ttest_1samp(d, 0).confidence_interval(0.95)
    assert (one(t, "low"), one(t, "high")) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_the_bayes_factor_is_one_at_one_unit_and_grows_with_t():
    assert float(t_log_bf(3.0, 1.0000001)) == pytest.approx(0.0, abs=1e-5)
    grid = t_log_bf(np.array([0.0, 1.0, 4.0, 16.0]), 10)
    assert np.all(np.diff(grid) > 0) and float(t_log_bf(0.0, 10)) < 0


def test_mean_sequences_looked_at_every_unit_are_valid_and_naive_t_tests_are_not():
    rng = np.random.default_rng(4)
    d = rng.normal(0, 1, (3000, 20))
    a = 0.05 / 5
    seq = Mean.sequential(d, level_side=a / 2)
    assert (seq.p_dir <= a).mean() <= a + 3 * math.sqrt(a / 3000)
    n = np.arange(1, 21)
    mean = np.cumsum(d, -1) / n
    sd = np.sqrt(np.maximum(np.cumsum(d * d, -1) - n * mean ** 2, 0) / np.maximum(n - 1, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * st.t.sf(np.abs(mean / (sd / np.sqrt(n))), np.maximum(n - 1, 1))
    naive = ((p <= a) & (n >= 3)).any(-1).mean()  # a t-test read after every unit: the trap
    assert naive > 3 * a, naive


def test_the_running_mean_test_equals_the_vectorised_one():
    rng = np.random.default_rng(5)
    d = rng.normal(0.4, 1, (40, 15))
    d[::7, 3] = -np.inf  # units without a value are left out and counted
    vec = Mean.sequential(d, 0.5)
    for i in range(40):
        run = TRunning(0.5)
        for x in d[i]:
            run.add(x)
        assert run.p_dir == pytest.approx(vec.p_dir[i]) and run.p_eq == pytest.approx(vec.p_eq[i])
        assert run.n == vec.used[i] and run.excluded == 15 - vec.used[i]


# ---------------------------------------------------------------- the crafted cases

@pytest.mark.parametrize("estimand", [Median, Mean])
def test_three_equal_differences_are_not_supported(estimand):
    for t in (estimand.fixed(np.full(3, 0.2)), estimand.sequential(np.full(3, 0.2), level_side=0.025)):
        got = estimands.decide(t.__class__(*(np.atleast_1d(getattr(t, f)) for f in t.__dataclass_fields__)),
                               np.ones(1))
        assert got["code"][0] != SUPPORTED


@pytest.mark.parametrize("estimand", [Median, Mean])
def test_three_zeros_are_not_equivalent(estimand):
    for t in (estimand.fixed(np.zeros(3), 0.5), estimand.sequential(np.zeros(3), 0.5, level_side=0.025)):
        got = estimands.decide(t.__class__(*(np.atleast_1d(getattr(t, f)) for f in t.__dataclass_fields__)),
                               np.ones(1))
        assert got["code"][0] != EQUIVALENT


@pytest.mark.parametrize("estimand,n", [(Mean, 20), (Median, 30)])
def test_four_tied_zeros_then_a_large_effect_get_decided(estimand, n):
    """The old running intersection latched at the zeros' zero-width interval; a running p-value does not. (The
    median counts the ties against it: it needs 30 units here, as the exact sign test would at 20.)"""
    rng = np.random.default_rng(6)
    d = np.concatenate([np.zeros(4), rng.normal(3, 1, n - 4)])
    run = estimand.running(0.5)
    for x in d:
        run.add(x)
    a = 0.05 / 7
    assert run.p_dir <= a, run.p_dir  # decided, as one claim of seven would be at Holm's first step
    assert run.p_eq > 0.05  # and never called equivalent within ±0.5 when the truth is +3
    early = estimand.running(0.5)
    for x in d[:4]:
        early.add(x)
    assert early.p_eq > 0.05 and early.p_dir == 1.0  # four ties decide nothing, no direction at all


def test_a_censored_value_is_at_least_and_ties_another():
    from orchestrator.stats.units import difference

    cap = 1440
    assert difference((1439, cap), (500, None), False) == math.inf  # stuck at the end beats a peak at 500
    assert difference((500, None), (1439, cap), False) == -math.inf
    assert math.isnan(difference((1439, cap), (1439, cap), False))  # both stuck: order unknown, a tie
    assert difference(None, (3.0, None), False) == -math.inf  # A failed: a loss of A
    assert math.isnan(difference(None, None, False))


def test_a_mean_claim_on_a_censored_metric_is_refused():
    from dipddpm.errors import ConfigError
    from orchestrator.common.claims import parse_claims

    with pytest.raises(ConfigError, match=r"^claims\[0\]\.estimand: expected median for iter_peak"):
        parse_claims([{"text": "x", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.01}, "metric": "iter_peak",
                       "estimand": "mean"}], "s", "staged")


def test_the_projection_is_calibrated():
    """The median ratio of projected to actual remaining units, from the first look with ≥ 3 units, over
    simulated claims with a true win chance of 0.7, 0.85, 0.95 (the issue asks 0.7-1.4)."""
    rng = np.random.default_rng(7)
    a = 0.05 / 14
    for p in (0.7, 0.85, 0.95):
        ratios = []
        for _ in range(300):
            wins = rng.random(400) < p
            s = np.cumsum(wins)
            hit = np.nonzero([sign_log_e(s[i], i + 1) >= math.log(1 / a) for i in range(400)])[0]
            if not len(hit) or hit[0] + 1 <= 3:
                continue
            projected = first_passage(int(s[2]), 3, s[2] / 3, a, 1000)[0] if s[2] / 3 > 0.5 else math.inf
            if math.isfinite(projected):
                ratios.append((projected - 3) / (hit[0] + 1 - 3))
        assert 0.7 <= np.median(ratios) <= 1.4, (p, np.median(ratios))
