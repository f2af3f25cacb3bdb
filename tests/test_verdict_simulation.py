"""The verdicts' error rates by simulation (docs/design.md: "Statistics"): many synthetic sweeps with a known truth.

- Null families (no true effect anywhere) give a false supported/contradicted verdict in ≤ 5% of families
  (+ Monte-Carlo error), through the real records -> units -> Holm path, with images that share a
  trained model (intraclass correlation 0.5). Read with images as units (pseudo-replication), the same
  records give false verdicts far more often: the test can fail.
- One true effect of 1 σ over 20 units, among 9 null claims, is found in ≥ 80% of families.
- An effect exactly at the margin reads "equivalent" in ≤ 5% of families.
"""

import math

import numpy as np
import pytest

from orchestrator.common.claims import parse_claims
from orchestrator.stats.verdicts import evaluate_fixed, family
from orchestrator.stats.pairing import Index
from orchestrator.stats.verdicts import CONTRADICTED, EQUIVALENT, SUPPORTED, family_verdicts
from report_helpers import synthetic_design, synthetic_records

K = 10  # claims per family
ALPHA = 0.05
CLAIMS = parse_claims([{"text": f"claim {k}", "a": {"arm": "a"}, "b": {"arm": "b"}, "where": {"claim": k},
                        "metric": "psnr"} for k in range(K)], "sim", None)


def mc_ceiling(p: float, n: int) -> float:
    """p plus three Monte-Carlo standard errors of a rate estimated from n families."""
    return p + 3 * math.sqrt(p * (1 - p) / n)


def shared_model_values(rng, seeds: int, images: int, effect=None, icc: float = 0.5):
    """values[(k, arm)][seed][image]: a per-trial model effect shared by its images (variance icc) plus
    per-image noise (1 − icc), an image offset common to both arms, and arm A's true effect per claim."""
    offsets = rng.normal(0, 2, images)
    effect = effect if effect is not None else np.zeros(K)
    out = {}
    for k in range(K):
        for arm in ("a", "b"):
            model = rng.normal(0, math.sqrt(icc), (seeds, 1))
            noise = rng.normal(0, math.sqrt(1 - icc), (seeds, images))
            out[(k, arm)] = 25 + offsets + model + noise + (effect[k] if arm == "a" else 0.0)
    return out


def false_rate(method: str, read_as: str, families: int, seeds: int, images: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    design = synthetic_design(method, CLAIMS)
    bad = 0
    for _ in range(families):
        records = synthetic_records(shared_model_values(rng, seeds, images), images)
        rows = evaluate_fixed(family(design, CLAIMS, "psnr"), Index(records, design), read_as)
        bad += any(r.verdict in ("supported", "contradicted") for r in rows)
    return bad / families


@pytest.mark.parametrize("seeds,images", [(3, 8), (12, 2)])
def test_null_families_rarely_give_a_false_verdict_when_a_unit_is_a_training_seed(seeds, images):
    n = 1000
    rate = false_rate("hybrid", "hybrid", n, seeds, images)
    assert rate <= mc_ceiling(ALPHA, n), rate


def test_reading_images_of_one_model_as_units_would_fail_this_test():
    rate = false_rate("hybrid", "staged", 300, 3, 8, seed=1)  # the pseudo-replicated reading
    assert rate > 0.5, rate


def test_one_model_with_eight_images_is_one_unit():
    design = synthetic_design("hybrid", CLAIMS[:1], n_claims=1)
    records = synthetic_records({(0, "a"): [[26.0 + j for j in range(8)]], (0, "b"): [[25.0 + j for j in range(8)]]},
                                8)
    row = evaluate_fixed(family(design, CLAIMS[:1], "psnr"), Index(records, design), "hybrid")[0]
    assert row.units.n == 1 and row.units.d == [pytest.approx(1.0)]
    assert row.verdict.startswith("too few replicates")


def test_independent_units_null_family_error_rate_vectorised():
    rng = np.random.default_rng(2)
    n_fam, n = 20000, 6
    d = rng.normal(0, 1, (n_fam, K, n))
    got = family_verdicts(d.mean(-1), d.std(-1, ddof=1), np.full((n_fam, K), n), np.ones((n_fam, K)),
                          np.full((n_fam, K), np.nan))
    rate = np.isin(got["code"], (SUPPORTED, CONTRADICTED)).any(-1).mean()
    assert rate <= mc_ceiling(ALPHA, n_fam), rate
    raw = (got["p"] <= ALPHA).any(-1).mean()  # unadjusted p over 10 claims: the old behaviour
    assert raw > 0.3, raw


def test_a_one_sigma_effect_over_twenty_units_is_found_among_nine_nulls():
    rng = np.random.default_rng(3)
    n_fam, n = 4000, 20
    d = rng.normal(0, 1, (n_fam, K, n))
    d[:, 0] += 1.0
    got = family_verdicts(d.mean(-1), d.std(-1, ddof=1), np.full((n_fam, K), n), np.ones((n_fam, K)),
                          np.full((n_fam, K), np.nan))
    power = (got["code"][:, 0] == SUPPORTED).mean()
    assert power >= 0.80, power  # Holm over 10 claims at 0.05: about 0.88
    others = np.isin(got["code"][:, 1:], (SUPPORTED, CONTRADICTED)).any(-1).mean()
    assert others <= mc_ceiling(ALPHA, n_fam), others


def test_an_effect_at_the_margin_is_rarely_called_equivalent():
    rng = np.random.default_rng(4)
    n_fam, n, margin = 20000, 12, 0.5
    d = rng.normal(margin, 1, (n_fam, K, n))  # every claim's true Δ sits exactly on +margin
    got = family_verdicts(d.mean(-1), d.std(-1, ddof=1), np.full((n_fam, K), n), np.ones((n_fam, K)),
                          np.full((n_fam, K), margin))
    rate = (got["code"] == EQUIVALENT).any(-1).mean()
    assert rate <= mc_ceiling(ALPHA, n_fam), rate
    inside = rng.normal(0, 1, (n_fam, K, 60))  # a true zero over 60 units: equivalence is found
    got = family_verdicts(inside.mean(-1), inside.std(-1, ddof=1), np.full((n_fam, K), 60), np.ones((n_fam, K)),
                          np.full((n_fam, K), margin))
    assert (got["code"] == EQUIVALENT).mean() > 0.5
