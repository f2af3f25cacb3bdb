"""The verdicts' error rates by simulation (docs/design.md: "Statistics"): synthetic sweeps with a known truth.

Every scenario of tests/verdict_sims.py (Gaussian, t(3), 5% outliers ×10, lognormal σ 0.5,
10% of units at −8σ, 70% ties, a censored discrete iter_peak, value-dependent failures, an
effect exactly at the margin, retried failures) is built so that the estimand the claims name
is null. On both paths — a fixed grid read once, and adaptive replication through the real
searcher and tracker — the default estimand (the median) keeps the family-wise false-verdict
rate at or below 5% (+ 2 Monte-Carlo standard errors). The mean, an opt-in Gaussian model,
holds where its assumption holds and is fooled where it does not: the test can fail.
`make bench ARGS='--only verdicts'` runs the full sizes (≥ 2,000 families of K ≥ 6).
"""

import math
import zlib

import numpy as np
import pytest

import verdict_sims as vs

K = 6
FIXED_FAMILIES = 2000
ADAPTIVE_FAMILIES = 120


def ceiling(p: float, n: int) -> float:
    """p plus two Monte-Carlo standard errors of a rate estimated from n families."""
    return p + 2 * math.sqrt(p * (1 - p) / n)


CASES = [(name, e) for name, sc in vs.SCENARIOS.items() for e in sc.estimands]


@pytest.mark.parametrize("name", list(vs.SCENARIOS))
def test_the_median_keeps_the_family_error_on_a_fixed_grid(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    got = vs.fixed_path(name, "median", FIXED_FAMILIES, K, 20, rng)
    assert got["false"] <= ceiling(0.05, FIXED_FAMILIES), (name, got["false"])


@pytest.mark.parametrize("name", ["gaussian", "t3", "outliers", "ties", "retried"])
def test_the_mean_keeps_it_where_its_model_holds(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    got = vs.fixed_path(name, "mean", FIXED_FAMILIES, K, 20, rng)
    assert got["false"] <= ceiling(0.05, FIXED_FAMILIES), (name, got["false"])


@pytest.mark.parametrize("name", ["lognormal", "diverged", "margin"])
def test_the_mean_is_fooled_where_its_model_fails_so_it_is_no_default(name):
    """A mean-zero skewed distribution, rare large losses, an effect at the margin hidden by an outlier tail: a
    t-test reads them with confidence it does not have. (Why the median is the default.)"""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    got = vs.fixed_path(name, "mean", FIXED_FAMILIES, K, 20, rng)
    assert got["false"] > 0.08, (name, got["false"])


@pytest.mark.parametrize("name", ["gaussian", "diverged", "failures", "censored"])
def test_the_real_fixed_grid_code_decides_as_the_simulation(name):
    rng = np.random.default_rng(11)
    got = vs.fixed_path(name, "median", 40, K, 12, rng, effect=2.0)  # some decisions to compare
    assert (vs.fixed_path_records(got, name, "median", 40) == got["codes"]).all()


def test_a_one_sigma_effect_over_twenty_units_among_nine_nulls_is_found():
    """Gaussian data, fixed grid, Holm over ten claims: the mean (its model holds here) finds it ≥ 80% of the
    time; the median pays for its robustness (about 61%) and is checked not to lose more."""
    rng = np.random.default_rng(12)
    mean = vs.fixed_path("gaussian", "mean", FIXED_FAMILIES, 10, 20, rng, effect=1.0)
    median = vs.fixed_path("gaussian", "median", FIXED_FAMILIES, 10, 20, rng, effect=1.0)
    assert mean["power"] >= 0.80, mean["power"]
    assert median["power"] >= 0.55, median["power"]
    assert max(mean["false"], median["false"]) <= ceiling(0.05, FIXED_FAMILIES)


@pytest.mark.parametrize("name", ["gaussian", "lognormal", "diverged", "ties", "censored", "failures", "retried"])
def test_the_median_keeps_the_family_error_through_the_adaptive_searcher(name):
    """Through AdaptiveSearcher + ClaimTracker: a look after every record, four trials running at once,
    futility and cost-based allocation; the old running t-intervals failed 'diverged' at 25% and 'ties' at
    27% per claim."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    got = vs.adaptive_path(name, "median", ADAPTIVE_FAMILIES, K, 12, rng)
    assert got["false"] <= ceiling(0.05, ADAPTIVE_FAMILIES), (name, got)
    if name != "retried":  # a retried trial's record replaces a failure already read: its units may change
        assert got["revoked"] == 0, got


@pytest.mark.parametrize("name", ["gaussian", "diverged"])
def test_questions_first_keep_the_family_error_and_decisions_are_final(name):
    """Two of six claims priority 1: their cells run alone first and they hold half of α (weighted Holm); the
    other four join later. Every claim is in the family from the first record (a claim not read yet at p = 1),
    so a decision made while only the questions had units is never taken back when the rest arrive."""
    rng = np.random.default_rng(zlib.crc32(name.encode()) + 1)
    got = vs.adaptive_path(name, "median", ADAPTIVE_FAMILIES, K, 12, rng, questions=2)
    assert got["false"] <= ceiling(0.05, ADAPTIVE_FAMILIES), (name, got)
    assert got["revoked"] == 0, got


def test_an_overwhelming_effect_is_decided_early_and_a_hopeless_claim_stops_early():
    rng = np.random.default_rng(13)
    got = vs.adaptive_path("gaussian", "median", 40, K, 20, rng, effect=5.0)
    assert got["power"] >= 0.95
    # nulls stop long before 20 seeds each: the family spends far fewer than its 240 trials
    assert got["trials"] < 0.5 * K * 2 * 20, got
