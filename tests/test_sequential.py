"""Adaptive replication's verdicts one record at a time (docs/design.md: "Adaptive replication"): the tracker
reads each claim's units in seed order and decides what the estimand's running tests and Holm decide on the
same units, whatever order the trials finished in, with each trial's final record."""

import math

import numpy as np
import pytest

import verdict_sims as vs
from orchestrator.common.record import Record
from orchestrator.stats import estimands
from orchestrator.stats.verdicts import ClaimTracker

K, SEEDS = 6, 12


def tracker_for(estimand="median", margin=None, k=K, seeds=SEEDS):
    claims = vs.claims_for(k, estimand, margin)
    return ClaimTracker(vs.design_for(claims, k, seeds), "psnr")


def family_records(units, k=K, seeds=SEEDS):
    return [r for s in range(seeds) for i in range(k) for r in vs.records_of(units, 0, i, s, "psnr")]


def codes(tracker):
    return [vs._code(r.verdict) for r in tracker.rows]


@pytest.mark.parametrize("estimand,margin", [("median", None), ("median", 0.8), ("mean", None), ("mean", 0.8)])
def test_the_tracker_decides_what_the_running_tests_and_holm_decide(estimand, margin):
    rng = np.random.default_rng(1)
    for _ in range(40):
        units = vs.draw("gaussian", estimand, rng, (1, K, SEEDS))
        units["a"][0, :2] += rng.choice([0.0, 1.5, -1.5], 2)[:, None]  # a few true effects among nulls
        tracker = tracker_for(estimand, margin).replay(family_records(units))
        d = units["a"][0] - units["b"][0]
        tested = estimands.get(estimand).sequential(d, margin if margin else math.nan)
        want = estimands.decide(tested, np.ones(K))["code"]
        assert codes(tracker) == list(want)


def test_trials_finishing_out_of_order_change_nothing():
    rng = np.random.default_rng(2)
    units = vs.draw("gaussian", "median", rng, (1, K, SEEDS))
    units["a"][0, 0] += 3.0
    records = family_records(units)
    in_order = tracker_for().replay(records)
    shuffled = tracker_for()
    for i in rng.permutation(len(records)):  # as trials of several seeds finish at once
        shuffled.add(records[i])
    shuffled.finish()
    assert [r.verdict for r in shuffled.rows] == [r.verdict for r in in_order.rows]
    assert [r.p for r in shuffled.rows] == [r.p for r in in_order.rows]
    assert in_order.rows[0].verdict == "supported" and in_order.rows[0].decision.n <= SEEDS


def test_a_retried_failure_counts_its_final_record_and_a_repeat_counts_once():
    rng = np.random.default_rng(3)
    units = vs.draw("gaussian", "median", rng, (1, K, SEEDS))
    units["a"][0, 0] += 3.0
    records = family_records(units)
    clean = tracker_for().replay(records)
    failed_first = [Record(**{**r.__dict__, "status": "failed", "per_image": {}, "metrics": {}})
                    for r in records if r.cell_key == "c0a" and r.seed % 2 == 0]
    retried = tracker_for()
    for r in failed_first + records + records[:9]:  # the failures arrive first, their reruns later, repeats
        retried.add(r)
    retried.finish()
    assert [r.verdict for r in retried.rows] == [r.verdict for r in clean.rows]
    assert retried.rows[0].verdict == "supported" and retried.rows[0].problems["a"]["failed"] == 0


def test_a_failed_arm_is_a_loss_and_an_ok_record_is_never_replaced_by_a_failed_one():
    rng = np.random.default_rng(4)
    units = vs.draw("gaussian", "median", rng, (1, K, SEEDS))
    units["a"][0, 0] += 3.0
    units["fail_a"][0, 0, ::2] = True  # arm A of claim 0 fails on every other seed: those units are its losses
    tracker = tracker_for().replay(family_records(units))
    assert tracker.rows[0].verdict != "supported" and tracker.rows[0].problems["a"]["failed"] == SEEDS // 2
    assert -math.inf in tracker.sequence(tracker.rows[0]).d
    ok = family_records(units)[0]
    before = tracker.rows[0].p
    tracker.add(Record(**{**ok.__dict__, "status": "failed", "per_image": {}, "metrics": {}}))
    assert tracker.rows[0].p == before  # the store's rule: a later failed record never replaces an ok one


def test_an_undecided_claim_says_what_deciding_it_would_take():
    rng = np.random.default_rng(5)
    units = vs.draw("gaussian", "median", rng, (1, K, 4))
    units["a"][0, 0] += 1.0  # a real effect, too few seeds yet
    tracker = tracker_for(seeds=20)
    for r in family_records(units, seeds=4):
        tracker.add(r)
    tracker.finish()
    proj = tracker.rows[0].projection
    assert proj is not None and proj.units > 0 and proj.seeds >= 1 and 0 < proj.chance <= 1
