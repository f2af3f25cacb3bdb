"""The statistics behind the tables, against hand-computed answers and scipy/statsmodels-style references."""

import math

import numpy as np
import pytest
from scipy import stats as st

from orchestrator.stats.intervals import mean_ci, paired, tost_p
from orchestrator.stats.multiplicity import bh, holm, priority_weights
from orchestrator.stats import estimands
from orchestrator.stats.estimands import EQUIVALENT, SUPPORTED, TOO_FEW, UNDECIDED, Mean


def family_verdicts(mean, std, n, expect, margin):
    """A family of mean claims decided from summaries: Gaussian units with these means and spreads, read by the
    mean estimand's t-test and TOST, Holm over the family (what the fixed evaluator does)."""
    mean, std, n, margin = (np.atleast_1d(np.asarray(x, float)) for x in (mean, std, n, margin))
    tests = []
    for m, s, k, mg in zip(mean, std, n, margin):
        base = np.linspace(-1, 1, int(k))  # k values with mean m and standard deviation s exactly
        base = (base - base.mean()) / (base.std(ddof=1) if k > 1 and base.std(ddof=1) > 0 else 1)
        tests.append(Mean.fixed(m + s * base, mg))
    fields = estimands.Tested.__dataclass_fields__
    tested = estimands.Tested(*(np.array([float(getattr(t, f)) for t in tests]) for f in fields))
    got = estimands.decide(tested, np.asarray(expect, float))
    return got | {"p_holm": got["p_adj"]}


def test_mean_ci_matches_the_t_interval_by_hand():
    est = mean_ci([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, s = sqrt(5/3) = 1.290994, t_{0.975, 3} = 3.182446, half = t s / 2
    assert est.mean == pytest.approx(2.5)
    assert est.std == pytest.approx(math.sqrt(5 / 3))
    assert est.half == pytest.approx(3.182446305 * math.sqrt(5 / 3) / 2, rel=1e-7)
    lo, hi = st.t.interval(0.95, 3, loc=2.5, scale=st.sem([1, 2, 3, 4]))
    assert (est.low, est.high) == (pytest.approx(lo), pytest.approx(hi))


def test_below_three_units_there_is_no_interval_only_the_values():
    two = mean_ci([28.0, 28.3])
    assert (two.low, two.high, two.values, two.n) == (None, None, (28.0, 28.3), 2)
    one = mean_ci([7.0, float("nan"), None, float("inf")])
    assert (one.mean, one.low, one.n) == (7.0, None, 1)
    assert mean_ci([]) is None and mean_ci([float("nan")]) is None


def test_an_interval_never_leaves_the_metrics_range():
    est = mean_ci([0.1, 0.95, 0.99], bounds=(-1.0, 1.0))
    assert est.high == 1.0 and est.low > -1.0 and not est.centred


def test_paired_difference_ci_and_p_value_by_hand():
    a = [11.0, 12.0, 13.0, 14.0]
    b = [10.0, 10.0, 10.0, 10.0]  # differences 1, 2, 3, 4
    res = paired(a, b)
    assert res.diff.mean == pytest.approx(2.5) and res.diff.n == 4
    t = 2.5 / (math.sqrt(5 / 3) / 2)  # 3.872983
    assert res.p == pytest.approx(2 * st.t.sf(t, 3))
    assert res.p == pytest.approx(0.030466, abs=1e-6)
    assert res.p == pytest.approx(st.ttest_rel(a, b).pvalue)
    assert (res.mean_a, res.mean_b, res.wins) == (12.5, 10.0, 4)


def test_paired_on_random_data_equals_scipy_ttest_rel():
    rng = np.random.default_rng(3)
    a = rng.normal(25, 1, 12)
    b = a - rng.normal(0.3, 0.5, 12)
    res = paired(list(a), list(b))
    ref = st.ttest_rel(a, b)
    assert res.p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (res.diff.low, res.diff.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_a_constant_difference_of_two_units_is_no_finding():
    res = paired([5.0, 6.0], [4.0, 5.0])  # the old bug: p = 0 and half-width 0 -> "supported"
    assert res.p is None and res.diff.low is None
    got = family_verdicts([1.0], [0.0], [2], [1], [math.nan])
    assert got["code"][0] == TOO_FEW
    with pytest.raises(ValueError):
        paired([1.0], [1.0, 2.0])


def test_holm_and_bh_against_hand_computed_values():
    p = [0.01, 0.04, 0.03, 0.005, math.nan]
    # Holm (m = 4): sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert np.allclose(holm(p)[:4], [0.03, 0.06, 0.06, 0.02]) and math.isnan(holm(p)[4])
    # BH (m = 4): 0.005*4/1=0.02, 0.01*4/2=0.02, 0.03*4/3=0.04, 0.04*4/4=0.04
    assert np.allclose(bh(p)[:4], [0.02, 0.04, 0.04, 0.02])
    rows = np.array([p[:4], [0.5, 0.2, 0.9, 0.01]])  # vectorised over families
    assert np.allclose(holm(rows)[1], [1.0, 0.6, 1.0, 0.04])  # 0.01*4, 0.2*3, max(0.5*2, .), 0.9*1 -> 1


def test_tost_against_two_one_sided_t_tests_by_hand():
    d = np.array([0.1, -0.2, 0.15, 0.05, -0.1, 0.0])
    m, s, n = d.mean(), d.std(ddof=1), len(d)
    lower = st.ttest_1samp(d, -0.5, alternative="greater").pvalue
    upper = st.ttest_1samp(d, 0.5, alternative="less").pvalue
    assert float(tost_p(m, s, n, 0.5)) == pytest.approx(max(lower, upper))
    got = family_verdicts([m], [s], [n], [1], [0.5])
    assert got["code"][0] == EQUIVALENT  # within ±0.5, and it is the family's only hypothesis pair
    assert family_verdicts([m], [s], [n], [1], [math.nan])["code"][0] == UNDECIDED


def test_family_verdicts_adjust_by_holm_over_every_hypothesis():
    # three claims at p ~ 0.02 each: raw 0.05 would support all three; Holm over three supports none
    t = st.t.isf(0.01, 9)  # two-sided p = 0.02 at n = 10
    mean, std, n = np.full(3, t * 1 / math.sqrt(10)), np.ones(3), np.full(3, 10)
    got = family_verdicts(mean, std, n, np.ones(3), np.full(3, math.nan))
    assert np.allclose(got["p"], 0.02) and np.allclose(got["p_holm"], 0.06)
    assert (got["code"] == UNDECIDED).all()
    alone = family_verdicts(mean[:1], std[:1], n[:1], [1], [math.nan])
    assert alone["code"][0] == SUPPORTED


def _closed_weighted_bonferroni(p, w, alpha):
    """Rejections of closed testing with weighted Bonferroni local tests, by brute force over every
    intersection: H_i is rejected when every subset holding i has some j with p_j <= alpha w_j / sum(w)."""
    from itertools import combinations

    k = len(p)
    out = []
    for i in range(k):
        ok = True
        for size in range(1, k + 1):
            for sub in combinations(range(k), size):
                if i in sub and not any(p[j] <= alpha * w[j] / sum(w[m] for m in sub) for j in sub):
                    ok = False
        out.append(ok)
    return np.array(out)


def test_weighted_holm_is_closed_testing_with_weighted_bonferroni():
    rng = np.random.default_rng(4)
    for _ in range(300):
        k = int(rng.integers(2, 6))
        p = rng.uniform(0, 0.1, k) ** rng.uniform(0.5, 2)
        w = rng.uniform(0.1, 1, k)
        alpha = 0.05
        assert np.array_equal(holm(p, w) <= alpha, _closed_weighted_bonferroni(p, w, alpha)), (p, w)
    # equal weights are Holm's plain step-down; a NaN is not counted
    p = np.array([0.01, 0.04, 0.03, np.nan])
    assert np.allclose(holm(p, np.full(4, 0.3))[:3], holm(p)[:3]) and math.isnan(holm(p, np.ones(4))[3])


def test_priority_weights_give_the_questions_half_of_alpha():
    assert np.allclose(priority_weights([2, 2, 2]), 1)
    assert np.allclose(priority_weights([1, 1]), 1)
    w = priority_weights([1, 1, 2, 2, 2, 3, 2])
    first = np.array([1, 1, 2, 2, 2, 3, 2]) == 1
    assert math.isclose(w[first].sum(), w[~first].sum()) and len(set(w[first])) == len(set(w[~first])) == 1
