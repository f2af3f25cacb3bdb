"""Synthetic sweeps with a known truth, for the verdicts' error rates and power (tests and `make bench`).

Each scenario draws the paired difference d = A − B of every unit of every claim of a
family, built so that the estimand the claims name is null (a mean-zero skewed
distribution for a mean claim, a median-zero one for a median claim), plus what
goes with it: failures (a value-dependent loss of arm A), censoring (an iteration
count stuck at the run's end), a retried failure. Two paths decide them:

- `fixed_path`: a fixed grid, read once. Vectorised through the same estimand and
  Holm functions the report's fixed evaluator calls, over thousands of families;
  `fixed_path_records` sends families through the real records -> units -> rows
  path (`stats.verdicts.evaluate_fixed`) to show it decides the same.
- `adaptive_path`: families run through the real `AdaptiveSearcher` and its
  `ClaimTracker` (no Ray): trials are proposed as slots free, finish in random
  order, and their records are fed back one at a time, as a live sweep does.

A verdict is false when the truth contradicts it: under a null estimand every
supported / contradicted / equivalent verdict is false, except where a scenario
makes one of them true (value-dependent failures make arm A truly worse: only
"supported" is false there).
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as st

from orchestrator.common.claims import parse_claims
from orchestrator.common.design import Design, Point, apply
from orchestrator.common.record import Record
from orchestrator.stats import estimands
from orchestrator.stats.estimands import CONTRADICTED, EQUIVALENT, SUPPORTED

CAP = 1440  # iterations of the censored scenario's runs: an iteration count of CAP − 1 is "at least"


@dataclass(frozen=True)
class Scenario:
    name: str
    estimands: tuple[str, ...]  # the estimands it is built null for
    false: tuple[int, ...] = (SUPPORTED, CONTRADICTED, EQUIVALENT)  # verdicts the truth contradicts
    metric: str = "psnr"
    margin: float | None = None


SCENARIOS = {
    "gaussian": Scenario("gaussian", ("median", "mean")),
    "t3": Scenario("t3", ("median", "mean")),
    "outliers": Scenario("outliers", ("median", "mean")),  # 5% of units ×10
    "lognormal": Scenario("lognormal", ("median", "mean")),  # σ 0.5, shifted so the estimand is 0
    "diverged": Scenario("diverged", ("median", "mean")),  # 10% of units at −8σ, the rest shifted
    "ties": Scenario("ties", ("median", "mean")),  # 70% of units exactly 0
    "censored": Scenario("censored", ("median",), metric="iter_peak"),  # iteration counts stuck at the run's end
    "failures": Scenario("failures", ("median",), false=(SUPPORTED, EQUIVALENT)),  # A fails below −1σ: A is worse
    "margin": Scenario("margin", ("median", "mean"), false=(SUPPORTED, EQUIVALENT), margin=1.0),  # Δ exactly −m
    "retried": Scenario("retried", ("median", "mean")),  # a fifth of the trials fail first, then are retried ok
}


# ---------------------------------------------------------------- drawing units

def draw(name: str, estimand: str, rng, shape) -> dict:
    """Per unit: a and b (values of the two arms), fail_a (arm A's trial failed), retried (its first record was
    a failure). For the censored scenario a and b are iteration counts (CAP − 1: censored)."""
    b = rng.normal(25.0, 1.0, shape)
    fail = np.zeros(shape, bool)
    retried = np.zeros(shape, bool)
    if name == "censored":
        def counts():
            stuck = rng.random(shape) < 0.5  # half the fits peak at the run's end: censored there
            return np.where(stuck, CAP - 1, np.clip(np.round(rng.normal(500, 150, shape)), 0, CAP - 2))
        return {"a": counts(), "b": counts(), "fail_a": fail, "retried": retried}
    if name == "failures":
        a = rng.normal(25.0, 1.0, shape)
        return {"a": a, "b": b, "fail_a": a < 24.0, "retried": retried}
    d = _difference(name, estimand, rng, shape)
    if name == "retried":
        retried = rng.random(shape) < 0.2
    return {"a": b + d, "b": b, "fail_a": fail, "retried": retried}


def _difference(name: str, estimand: str, rng, shape) -> np.ndarray:
    mean = estimand == "mean"
    if name in ("gaussian", "retried"):
        return rng.normal(0, 1, shape)
    if name == "t3":
        return rng.standard_t(3, shape)
    if name == "outliers":
        return rng.normal(0, 1, shape) * np.where(rng.random(shape) < 0.05, 10.0, 1.0)
    if name == "lognormal":
        return np.exp(0.5 * rng.normal(0, 1, shape)) - (math.exp(0.125) if mean else 1.0)
    if name == "diverged":
        bulk = 0.8 / 0.9 if mean else float(st.norm.ppf(0.5 / 0.9))  # so that the mean / median is 0
        return np.where(rng.random(shape) < 0.1, -8.0, rng.normal(bulk, 1, shape))
    if name == "ties":
        return np.where(rng.random(shape) < 0.7, 0.0, rng.normal(0, 1, shape))
    if name == "margin":  # skewed, its mean (mean claims: 90% at 0, 10% at −10) or median exactly −margin
        if mean:
            return np.where(rng.random(shape) < 0.1, -10.0, 0.0) + rng.normal(0, 0.05, shape)
        return -1.0 + np.exp(0.5 * rng.normal(0, 1, shape)) - 1.0
    raise ValueError(name)


def unit_differences(units: dict, metric: str) -> np.ndarray:
    """d as the units path forms it: a failed A loses (−inf); a censored count beats a smaller one, ties another."""
    a, b = units["a"], units["b"]
    if metric == "iter_peak":
        ca, cb = a >= CAP - 1, b >= CAP - 1
        d = np.where(ca & cb, np.nan, np.where(ca, np.inf, np.where(cb, -np.inf, a - b)))
        return d
    return np.where(units["fail_a"], -np.inf, a - b)


# ---------------------------------------------------------------- the fixed path

def claims_for(k: int, estimand: str, margin: float | None = None, metric: str = "psnr", effects=(),
               questions: int = 0):
    """K claims of arm a against b, one per cell pair; the first `questions` of them priority 1."""
    return parse_claims([{"text": f"claim {i}", "a": {"arm": "a"}, "b": {"arm": "b"}, "where": {"claim": i},
                          "metric": metric, "estimand": estimand, "priority": 1 if i < questions else 2,
                          **({"margin": margin} if margin else {})}
                         for i in range(k)], "sim", None)


def false_rate(codes, scenario: Scenario) -> np.ndarray:
    """Per family: any verdict the truth contradicts."""
    return np.isin(codes, scenario.false).any(-1)


def fixed_path(name: str, estimand: str, families: int, k: int, n: int, rng, effect: float = 0.0) -> dict:
    """Families of k claims read once at n units each, vectorised; `effect` shifts claim 0 (power)."""
    sc = SCENARIOS[name]
    units = draw(name, estimand, rng, (families, k, n))
    d = unit_differences(units, sc.metric)
    d[:, 0, :] += effect
    units["a"][:, 0, :] += effect
    margin = sc.margin if sc.margin is not None else math.nan
    tested = estimands.get(estimand).fixed(d, margin)
    got = estimands.decide(tested, np.ones(k), 0.05)
    nulls = got["code"][:, 1:] if effect else got["code"]
    return {"codes": got["code"], "false": false_rate(nulls, sc).mean(), "power": (got["code"][:, 0] == SUPPORTED).mean(),
            "d": d, "units": units}


# ---------------------------------------------------------------- records, designs, plans

def design_for(claims, k: int, max_seeds: int | None = None) -> Design:
    """Cells {claim: i, arm: a|b} of one task; a replication rule when max_seeds is given."""
    base = {"claim": 0, "arm": "a"}
    points = [Point(cell, apply(base, cell, base), frozenset(), f"c{i}{arm}", "σ 25/255 · img0 · 64 px", ())
              for i in range(k) for arm in ("a", "b") for cell in [{"claim": i, "arm": arm}]]
    replicate = None if max_seeds is None else {"min_seeds": 1, "max_seeds": max_seeds}
    return Design("sim", "staged", "psnr", "max", "cpu", base, points,
                  list(range(max_seeds or 1)), tuple(claims), replicate, ("claim", "arm"))


def record(k: int, arm: str, seed: int, value: float, metric: str, status: str = "ok", salt: str = "") -> Record:
    key = hashlib.sha256(f"{k}{arm}{seed}{salt}".encode()).hexdigest()[:16]
    per = {} if status == "failed" else {"img0": {metric: float(value), "iters": CAP}}
    return Record(trial_key=key, status=status, method="staged", seed=seed, config={}, cell_key=f"c{k}{arm}",
                  per_image=per, metrics={metric: float(value)} if per else {})


def records_of(units: dict, f: int, k: int, seed: int, metric: str) -> list[Record]:
    """The two trials (arms A and B) of claim k at one seed of family f (a failed A has no value)."""
    a, b = units["a"][f, k, seed], units["b"][f, k, seed]
    fail = units["fail_a"][f, k, seed]
    return [record(k, "a", seed, a, metric, "failed" if fail else "ok"), record(k, "b", seed, b, metric)]


def fixed_path_records(result: dict, name: str, estimand: str, families: int) -> np.ndarray:
    """The first `families` families of a fixed_path result through the real evaluator: their codes."""
    from orchestrator.stats.pairing import Index
    from orchestrator.stats.verdicts import evaluate_fixed, family

    sc = SCENARIOS[name]
    units = result["units"]
    _, k, n = units["a"].shape
    claims = claims_for(k, estimand, sc.margin, sc.metric)
    design = design_for(claims, k)
    out = []
    for f in range(families):
        recs = [r for i in range(k) for s in range(n) for r in records_of(units, f, i, s, sc.metric)]
        rows = evaluate_fixed(family(design, claims, "psnr"), Index(recs, design), "staged")
        out.append([_code(r.verdict) for r in rows])
    return np.array(out)


def _code(verdict: str) -> int:
    for code, word in ((SUPPORTED, "supported"), (CONTRADICTED, "contradicted"), (EQUIVALENT, "equivalent")):
        if verdict.startswith(word):
            return code
    return estimands.UNDECIDED


# ---------------------------------------------------------------- the adaptive path, through the real searcher

@dataclass(frozen=True)
class SimTrial:
    key: str
    cell_key: str
    seed: int
    cell: dict = field(default_factory=dict)


@dataclass
class SimPlan:
    trials: list
    merged: int
    design: Design
    replicate: object

    def initial(self):
        return [t for t in self.trials if t.seed < self.replicate.min_seeds]


def adaptive_path(name: str, estimand: str, families: int, k: int, max_seeds: int, rng, effect: float = 0.0,
                  slots: int = 4, min_seeds: int = 1, questions: int = 0) -> dict:
    """Families run through AdaptiveSearcher + ClaimTracker, one record at a time; claim 0 shifted by `effect`;
    the first `questions` claims priority 1 (run first, half of α between them). Returns the false-verdict rate,
    claim 0's decision rate (power), and trials spent per family."""
    from orchestrator.sweep.spec import Replicate

    sc = SCENARIOS[name]
    claims = claims_for(k, estimand, sc.margin, sc.metric, questions=questions)
    design = design_for(claims, k, max_seeds)
    rule = Replicate(min_seeds=min_seeds, max_seeds=max_seeds)
    trials = [SimTrial(record(i, arm, s, 0, sc.metric).trial_key, f"c{i}{arm}", s)
              for s in range(max_seeds) for i in range(k) for arm in ("a", "b")]
    false, found, spent, revoked = [], [], [], []
    for f in range(families):
        units = draw(name, estimand, rng, (1, k, max_seeds))
        units["a"][0, 0] += effect
        codes, n_trials, was_revoked = _run_family(design, SimPlan(trials, 0, design, rule), units, sc, rng, slots)
        false.append(np.isin(codes[1:] if effect else codes, sc.false).any())  # claim 0 is no null when shifted
        found.append(codes[0] == SUPPORTED)
        spent.append(n_trials)
        revoked.append(was_revoked)
    return {"false": float(np.mean(false)), "power": float(np.mean(found)), "trials": float(np.mean(spent)),
            "revoked": float(np.mean(revoked))}


def drive(searcher, records_of, rng, slots: int, after=None) -> int:
    """Run a searcher as Tune does, without Ray: ask for trials while `slots` are free (None: wait for the
    running ones; FINISHED: no more), finish a random running trial, feed its records (`records_of(trial)`)
    one at a time, calling `after(trial)` after each. Returns the trials proposed."""
    from ray.tune.search import Searcher

    running: deque = deque()
    counter, finished = 0, False
    while True:
        while not finished and len(running) < slots:
            got = searcher.suggest(str(counter))
            if got is None:
                break
            if got == Searcher.FINISHED:
                finished = True
                break
            running.append((str(counter), got))
            counter += 1
        if not running:
            return counter
        tid, trial = running[int(rng.integers(len(running)))]  # trials finish in no particular order
        running.remove((tid, trial))
        for r in records_of(trial):
            searcher.feed(r)
            if after is not None:
                after(trial)
        searcher.on_trial_complete(tid)


def _run_family(design, plan, units, sc: Scenario, rng, slots: int):
    from orchestrator.sweep.searcher import AdaptiveSearcher

    searcher = AdaptiveSearcher(plan, [], set(), "psnr", lambda t: t, lambda ts: ts)
    ever, revoked = set(), [False]  # rows decided at some point; whether one of them was undecided again

    def check(_trial):
        decided = {i for i, row in enumerate(searcher.tracker.rows) if row.decided}
        revoked[0] |= bool(ever - decided)  # a record that replaced one already read may change a unit
        ever.update(decided)

    counter = drive(searcher, lambda t: _trial_records(t, units, sc), rng, slots, check)
    rows = searcher.tracker.finish().rows
    return np.array([_code(r.verdict) for r in rows]), counter, revoked[0]


def _trial_records(trial: SimTrial, units: dict, sc: Scenario) -> list[Record]:
    k, arm = int(trial.cell_key[1:-1]), trial.cell_key[-1]
    s = trial.seed
    if arm == "b":
        return [record(k, "b", s, units["b"][0, k, s], sc.metric)]
    value = units["a"][0, k, s]
    if units["fail_a"][0, k, s]:
        return [record(k, "a", s, value, sc.metric, "failed")]
    if units["retried"][0, k, s]:  # the orchestrator's fault first, then the rerun's own record
        return [record(k, "a", s, value, sc.metric, "failed"), record(k, "a", s, value, sc.metric)]
    return [record(k, "a", s, value, sc.metric)]


def mc_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n)
