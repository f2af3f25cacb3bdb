"""Adaptive spending on a sweep unlike the shipped ones (docs/design.md: "Adaptive replication").

Two claims, three photos per seed, min_seeds 2, max_seeds 20, run through the real
AdaptiveSearcher and ClaimTracker (no Ray): trials are proposed as slots free, finish in
random order, and their records are fed back one at a time. One claim has an overwhelming
effect (+5 dB, noise 0.3 dB); the other has none, so max_seeds cannot decide it. The
searcher must decide the first within min_seeds + 2 seeds, stop giving the second seeds
well before max_seeds with its projection shown, and spend fewer trials than round-robin
(which gives every undecided claim seeds until max_seeds).
"""

import hashlib

import numpy as np
import pytest

import verdict_sims as vs
from orchestrator.common.record import Record
from orchestrator.stats.estimands import SUPPORTED
from orchestrator.sweep.searcher import AdaptiveSearcher
from orchestrator.sweep.spec import Replicate

IMAGES = ("astronaut", "coffee", "chelsea")
MIN_SEEDS, MAX_SEEDS, SLOTS = 2, 20, 2
EFFECTS = (5.0, 0.0)  # claim 0 overwhelming, claim 1 none
REPEATS = 12


def _key(claim: int, arm: str, seed: int) -> str:
    return hashlib.sha256(f"{claim}{arm}{seed}".encode()).hexdigest()[:16]


def _record(claim: int, arm: str, seed: int, rng) -> Record:
    per = {img: {"psnr": float(25 + (EFFECTS[claim] if arm == "a" else 0) + rng.normal(0, 0.3 if claim == 0 else 1))}
           for img in IMAGES}
    return Record(trial_key=_key(claim, arm, seed), status="ok", method="staged", seed=seed, config={}, cell_key=f"c{claim}{arm}",
                  per_image=per, metrics={"psnr": float(np.mean([m["psnr"] for m in per.values()]))})


def _run(rng):
    claims = vs.claims_for(2, "median")
    design = vs.design_for(claims, 2, MAX_SEEDS)
    trials = [vs.SimTrial(_key(i, arm, s), f"c{i}{arm}", s)
              for s in range(MAX_SEEDS) for i in range(2) for arm in ("a", "b")]
    plan = vs.SimPlan(trials, 0, design, Replicate(min_seeds=MIN_SEEDS, max_seeds=MAX_SEEDS))
    searcher = AdaptiveSearcher(plan, [], set(), "psnr", lambda t: t, lambda ts: ts)
    seeds, decided_at_seeds = {0: 0, 1: 0}, [None]

    def after(trial):
        claim = int(trial.cell_key[1])
        seeds[claim] = max(seeds[claim], trial.seed + 1)
        row = searcher.tracker.rows[0]
        if decided_at_seeds[0] is None and row.decided:
            decided_at_seeds[0] = -(-row.decision.n // len(IMAGES))

    counter = vs.drive(searcher, lambda t: [_record(int(t.cell_key[1]), t.cell_key[2], t.seed, rng)], rng, SLOTS,
                       after)
    rows = searcher.tracker.finish().rows
    return rows, counter, seeds, decided_at_seeds[0]


@pytest.fixture(scope="module")
def runs():
    return [_run(np.random.default_rng(100 + r)) for r in range(REPEATS)]


def test_the_overwhelming_effect_is_decided_within_min_seeds_plus_two(runs):
    for rows, _, _, decided_at_seeds in runs:
        assert vs._code(rows[0].verdict) == SUPPORTED, rows[0].verdict
        assert decided_at_seeds <= MIN_SEEDS + 2, decided_at_seeds


def test_the_hopeless_claim_stops_well_before_max_seeds_and_shows_its_projection(runs):
    given, wrong = [], 0
    for rows, _, seeds, _ in runs:
        hopeless = rows[1]
        if hopeless.decided:  # a false verdict, which the family-wise error allows at 5%: fixed draws, one here
            wrong += 1
            continue
        assert hopeless.projection is not None and hopeless.projection.futile, hopeless.projection
        assert hopeless.projection.units > 0 and hopeless.projection.chance < 0.1
        assert "stopped taking seeds" in hopeless.verdict
        given.append(seeds[1])
    assert wrong <= 2, wrong  # P(>= 3 of 12) = 2% at a 5% error rate
    assert np.median(given) <= MAX_SEEDS / 2, given
    assert max(given) < MAX_SEEDS, given


def test_fewer_trials_than_round_robin(runs):
    ratios = []
    for _, trials, seeds, decided_at_seeds in runs:
        # round-robin: both claims' cells each seed while undecided, the hopeless one to max_seeds
        round_robin = 2 * decided_at_seeds + 2 * MAX_SEEDS
        assert trials < round_robin, (trials, round_robin, seeds)
        ratios.append(trials / round_robin)
    assert np.mean(ratios) < 0.6, ratios
