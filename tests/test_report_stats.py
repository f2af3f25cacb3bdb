"""Statistics behind the report tables, against hand-computed answers and scipy's own routines."""

import math

import pytest
from scipy import stats as st

from orchestrator.report.stats import mean_ci, paired


def test_mean_ci_matches_the_t_interval_by_hand():
    est = mean_ci([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, s = sqrt(5/3) = 1.290994, t_{0.975, 3} = 3.182446, half = t s / 2
    assert est.mean == pytest.approx(2.5)
    assert est.std == pytest.approx(math.sqrt(5 / 3))
    assert est.half == pytest.approx(3.182446305 * math.sqrt(5 / 3) / 2, rel=1e-7)
    lo, hi = st.t.interval(0.95, 3, loc=2.5, scale=st.sem([1, 2, 3, 4]))
    assert (est.low, est.high) == (pytest.approx(lo), pytest.approx(hi))


def test_one_value_has_no_interval_and_non_finite_values_are_dropped():
    est = mean_ci([7.0, float("nan"), None, float("inf")])
    assert (est.mean, est.half, est.n) == (7.0, None, 1)
    assert mean_ci([]) is None and mean_ci([float("nan")]) is None


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
    import numpy as np

    rng = np.random.default_rng(3)
    a = rng.normal(25, 1, 12)
    b = a - rng.normal(0.3, 0.5, 12)
    res = paired(list(a), list(b))
    ref = st.ttest_rel(a, b)
    assert res.p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (res.diff.low, res.diff.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_paired_edge_cases():
    assert paired([1.0, 2.0], [1.0, 2.0]).p == 1.0  # all differences zero
    assert paired([2.0, 3.0], [1.0, 2.0]).p == 0.0  # a constant non-zero difference
    single = paired([2.0], [1.0])
    assert single.p is None and single.diff.half is None
    assert paired([1.0, float("nan")], [0.0, 1.0]).diff.n == 1  # a pair with a NaN is dropped
    with pytest.raises(ValueError):
        paired([1.0], [1.0, 2.0])
