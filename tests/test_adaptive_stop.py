"""The adaptive searcher's closing reason (docs/design.md: "Adaptive replication"), without Ray: when every seed up to max_seeds has
been proposed while a claim is still undecided, the searcher waits for the trials running (they may decide it,
or lift a claim above futility) instead of ending; when they decide it, the sweep ends because every claim is
decided — not because no claim could gain a unit."""

import numpy as np
import yaml
from ray.tune.search import Searcher

from orchestrator.common.record import Record
from orchestrator.sweep.searcher import ALL_DECIDED, NO_GAIN, AdaptiveSearcher
from orchestrator.sweep.plan import plan
from orchestrator.sweep.spec import parse_spec
from report_helpers import record_for

SPEC = """
name: stop
method: staged
base: {data: {images: [astronaut, coffee, chelsea]}}
grid: {staged.variant: [staged, baseline]}
replicate: {min_seeds: 1, max_seeds: 4}
claims:
  - {text: staged is better, a: {staged.variant: staged}, b: {staged.variant: baseline}, metric: psnr,
     expect: greater}
"""


def _sweep(effect: float):
    p = plan(parse_spec(yaml.safe_load(SPEC), "stop.yaml"), "cpu")
    searcher = AdaptiveSearcher(p, [], set(), "psnr", lambda t: t, lambda ts: ts)
    proposed = []
    while (got := searcher.suggest(str(len(proposed)))) not in (None, Searcher.FINISHED):  # slots for all
        proposed.append(got)
    assert got is None and searcher.reason is None  # waiting on the running trials, not finished
    assert {t.seed for t in proposed} == {0, 1, 2, 3}
    rng = np.random.default_rng(0)
    for i, t in enumerate(proposed):  # only now do the running trials finish
        searcher.feed(Record.from_dict(record_for(t, lambda t, img: 25.0 + rng.normal(0, 0.1) + (
            effect if t.cell.get("staged.variant") == "staged" else 0.0), "ok", "cpu", "stop")))
        searcher.on_trial_complete(str(i))
    assert searcher.suggest("last") == Searcher.FINISHED
    return searcher


def test_claims_decided_by_the_last_running_trials_end_the_sweep_as_all_decided():
    searcher = _sweep(effect=3.0)
    assert searcher.tracker.undecided() == []
    assert searcher.status().endswith(f"stopped proposing: {ALL_DECIDED}")


def test_a_claim_left_undecided_at_max_seeds_ends_it_as_no_gain():
    searcher = _sweep(effect=0.0)
    assert len(searcher.tracker.undecided()) == 1
    assert searcher.status().endswith(f"stopped proposing: {NO_GAIN}")
