"""Anytime-valid verdicts (docs/design.md: "Adaptive replication") by simulation: a look after every unit, up to max_seeds.

- Null families of claims, each read after every added unit with its confidence sequence (α split over
  the family), give a false verdict in ≤ α of families; naive t-tests read the same way do not — the
  test can fail.
- The claim tracker (one record at a time, through the real units path) decides exactly what the
  vectorised sequences decide on the same data, and never changes a decision.
"""

import math

import numpy as np
import pytest
from scipy import stats as st

from orchestrator.common.claims import parse_claims
from orchestrator.stats.verdicts import ClaimTracker
from orchestrator.stats.sequential import RunningMean, cs_bounds, log_bf, t_star
from report_helpers import synthetic_design, synthetic_records

ALPHA, K, MAX_UNITS, MIN_UNITS = 0.05, 5, 20, 3


def mc_ceiling(p: float, n: int) -> float:
    return p + 3 * math.sqrt(p * (1 - p) / n)


def running(d):
    """Running mean and sample standard deviation along the last axis."""
    n = np.arange(1, d.shape[-1] + 1)
    mean = np.cumsum(d, -1) / n
    ss = np.cumsum(d * d, -1) - n * mean ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return mean, np.sqrt(np.maximum(ss, 0) / (n - 1)), n


def test_the_bayes_factor_is_one_at_one_unit_and_grows_with_t():
    assert float(log_bf(3.0, 1.0000001)) == pytest.approx(0.0, abs=1e-5)
    grid = log_bf(np.array([0.0, 1.0, 4.0, 16.0]), 10)
    assert np.all(np.diff(grid) > 0) and float(log_bf(0.0, 10)) < 0
    ts = t_star(np.array([2, 3, 5, 10, 50]), ALPHA / K)
    assert math.isinf(ts[0]) and np.all(np.diff(ts[1:]) < 0) and ts[-1] > st.t.ppf(1 - ALPHA / K / 2, 49)


def test_null_sequences_looked_at_every_unit_keep_the_family_error_below_alpha():
    rng = np.random.default_rng(0)
    n_fam = 4000
    d = rng.normal(0, 1, (n_fam, K, MAX_UNITS))
    mean, sd, n = running(d)
    low, high = cs_bounds(mean, sd, np.broadcast_to(n, mean.shape), ALPHA / K)
    looked = n >= MIN_UNITS
    false = ((low > 0) | (high < 0)) & looked
    rate = false.any(-1).any(-1).mean()
    assert rate <= mc_ceiling(ALPHA, n_fam), rate
    # the trap: a Bonferroni t-test at every look inflates the family error far past alpha
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.abs(mean) / (sd / np.sqrt(n))
    naive = ((t > st.t.ppf(1 - ALPHA / K / 2, np.maximum(n - 1, 1))) & looked).any(-1).any(-1).mean()
    assert naive > 2 * ALPHA, naive
    # and looking only once, at the end, the t-test is fine: the inflation is the peeking
    once = (t[..., -1] > st.t.ppf(1 - ALPHA / K / 2, MAX_UNITS - 1)).any(-1).mean()
    assert once <= mc_ceiling(ALPHA, n_fam)


def test_the_anytime_p_value_is_below_a_level_exactly_when_that_levels_sequence_excluded_zero():
    """p̄_n = exp(−max_{m≤n} log BF_m(0)): on null and shifted sequences it is ≤ a exactly when some CS_m at level
    1 − a excluded 0, and on null ones it falls below a in ≤ a of sequences (anytime-valid)."""
    from orchestrator.stats.sequential import log_bf_at

    rng = np.random.default_rng(3)
    n_seq, a = 3000, ALPHA / K
    d = rng.normal(0, 1, (n_seq, MAX_UNITS)) + np.where(np.arange(n_seq) % 3 == 0, 1.2, 0.0)[:, None]
    mean, sd, n = running(d)
    low, high = cs_bounds(mean, sd, np.broadcast_to(n, mean.shape), a)
    looked = n >= MIN_UNITS
    excluded = (((low > 0) | (high < 0)) & looked).any(-1)
    lbf = np.array([[log_bf_at(mean[i, j], sd[i, j], int(n[j]), 0.0) if n[j] >= MIN_UNITS else -np.inf
                     for j in range(MAX_UNITS)] for i in range(n_seq)])
    p = np.minimum(1, np.exp(-lbf.max(-1)))
    assert np.array_equal(p <= a, excluded)
    null = np.arange(n_seq) % 3 != 0
    assert (p[null] <= a).mean() <= mc_ceiling(a, int(null.sum()))
    assert (p[~null] <= a).mean() > 0.5  # 1.2 σ over 20 units: found by most sequences


def test_an_effect_at_the_margin_is_rarely_called_equivalent_however_often_it_is_read():
    rng = np.random.default_rng(1)
    n_fam, margin = 4000, 0.5
    d = rng.normal(margin, 1, (n_fam, K, 60))
    mean, sd, n = running(d)
    low, high = cs_bounds(mean, sd, np.broadcast_to(n, mean.shape), ALPHA / K)
    false = ((low > -margin) & (high < margin) & (n >= MIN_UNITS)).any(-1).any(-1).mean()
    assert false <= mc_ceiling(ALPHA, n_fam), false


def test_running_mean_matches_numpy():
    rm, xs = RunningMean(), [3.0, 1.0, 4.0, 1.0, 5.0]
    for x in xs:
        rm.add(x)
    assert rm.mean == pytest.approx(np.mean(xs)) and rm.std == pytest.approx(np.std(xs, ddof=1))


CLAIMS = parse_claims([{"text": f"claim {k}", "a": {"arm": "a"}, "b": {"arm": "b"}, "where": {"claim": k},
                        "metric": "psnr", **({"margin": 1.5} if k % 2 else {})} for k in range(K)], "sim", None)


def test_the_tracker_decides_what_the_sequences_decide_one_record_at_a_time():
    """1000 null families through ClaimTracker: records of hybrid trials (2 images sharing a model) arrive
    seed by seed; each claim's decisions equal the vectorised sequence's on its per-seed unit values."""
    rng = np.random.default_rng(5)
    design = synthetic_design("hybrid", CLAIMS, n_claims=K)
    seeds, images, n_fam, false = 12, 2, 1000, 0
    ts = t_star(np.arange(1, seeds + 1), ALPHA / K)  # the sequence's multipliers, computed once
    for _ in range(n_fam):
        values = {(k, arm): rng.normal(0, 1, (seeds, 1)) + rng.normal(0, 1, (seeds, images))
                  for k in range(K) for arm in ("a", "b")}
        tracker = ClaimTracker(design, "psnr", ALPHA)
        records = sorted(synthetic_records(values, images), key=lambda r: r.seed)  # seed by seed
        decided_at = {}
        for r in records:
            for st_ in tracker.add(r):
                if st_.decided and st_.claim.text not in decided_at:
                    decided_at[st_.claim.text] = (st_.decision.n, st_.decision.verdict)
        for k, state in enumerate(tracker.rows):
            d = (values[(k, "a")] - values[(k, "b")]).mean(-1)  # one unit per seed: its images averaged
            mean, sd, n = running(d)
            with np.errstate(invalid="ignore"):
                half = np.where(np.isinf(ts), np.inf, ts * sd / np.sqrt(n))
            low, high = np.maximum.accumulate(mean - half), np.minimum.accumulate(mean + half)  # running intersection
            inside = (low > -1.5) & (high < 1.5) if k % 2 else np.zeros_like(low, bool)  # odd claims: margin 1.5
            hit = ((low > 0) | (high < 0) | inside) & (n >= MIN_UNITS)
            first = int(np.argmax(hit)) + 1 if hit.any() else None
            assert (state.decision.n if state.decided else None) == first
            ps = state.decision.p if state.decided else state.p  # the anytime p-values say the same
            if state.decided and state.decision.verdict.startswith("equivalent"):
                assert ps["p_equiv_adj"] <= ALPHA
            elif state.decided:
                assert ps["p_adj"] <= ALPHA
            else:
                assert ps["p_adj"] > ALPHA and ps.get("p_equiv_adj", 1.0) > ALPHA
            assert state.n == seeds
        false += any(v in ("supported", "contradicted") for _, v in decided_at.values())
    assert false / n_fam <= mc_ceiling(ALPHA, n_fam)


def test_replaying_the_records_gives_the_same_decisions_and_ignores_repeats():
    rng = np.random.default_rng(6)
    design = synthetic_design("hybrid", CLAIMS, n_claims=K)
    values = {(k, arm): rng.normal(3.0 if (k == 0 and arm == "a") else 0.0, 0.3, (10, 2))
              for k in range(K) for arm in ("a", "b")}
    records = sorted(synthetic_records(values, 2), key=lambda r: r.seed)
    live = ClaimTracker(design, "psnr").replay(records)
    again = ClaimTracker(design, "psnr").replay(records + records[:7])  # a record seen twice counts once
    assert [s.decision for s in live.rows] == [s.decision for s in again.rows]
    assert live.rows[0].decision.verdict == "supported" and live.rows[0].decision.n <= 6
