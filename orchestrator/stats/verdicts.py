"""The verdicts of a sweep's claims (docs/design.md: "Claims", "Statistics"): one row type, two evaluators.

A claim becomes one `ClaimRow` per task its pairs touch (rows never pool tasks); the
rows of a sweep are one family. Each row's value per unit is the paired difference
Δ = A − B (or log A/B for a relative margin), formed by `units.pair_units` (a failed
arm loses its pair, a censored value is "at least"), and read by the claim's
estimand (`estimands.py`: the median by default, the mean on request). Two
evaluators fill the same rows:

- `evaluate_fixed` (a fixed grid, read once): each estimand's fixed-n test (the
  exact sign test; a t-test), equivalence against ±margin where the claim has one,
  Holm over every hypothesis of the family, so the chance of any false verdict in
  the family stays ≤ α — for one read of a grid planned in advance;
- `ClaimTracker` (adaptive replication): each row's units in seed order feed the
  estimand's running test (anytime-valid p-values, the running minimum of 1/E),
  and Holm over those p-values decides: a p-value never grows, so a decision is
  final and α recycles from decided claims to the rest. Each row also carries its
  projection: how many more units, and seeds, would decide it at the current
  estimate, and whether max_seeds can (futility).

The verdict words and the minimum number of units are defined here, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..common.claims import Claim
from ..common.design import Design
from ..common.record import Record
from . import estimands
from .estimands import CONTRADICTED, EQUIVALENT, MIN_UNITS, NO_PAIRS, SUPPORTED, TOO_FEW, UNDECIDED, Tested
from .intervals import Estimate
from .multiplicity import priority_weights
from .pairing import CellPair, Index, by_task, selected_pairs
from .units import Units, pair_units, unit_kind

ALPHA = 0.05  # the family-wise error every sweep's claims are held to

WORDS = {NO_PAIRS: "no pairs ran", TOO_FEW: "too few replicates", UNDECIDED: "not distinguishable at this n",
         SUPPORTED: "supported", CONTRADICTED: "contradicted", EQUIVALENT: "equivalent"}
NO_PAIRS_TEXT = "no pairs: no cell of arm A (where it applies) has a counterpart with B's values"
SEQ_UNDECIDED = "undecided"  # a sequential row that more units may still decide
FUTILE = "undecided: more seeds are unlikely to decide it by max_seeds (stopped taking seeds)"


def too_few_text(n: int) -> str:
    return f"{n} units; {MIN_UNITS} needed"


@dataclass
class Moment:
    """What a row read at one moment: its units, the trials behind them, Δ's estimate and interval, p-values."""

    n: int
    trials: int
    estimate: float
    low: float | None
    high: float | None
    p: dict


FUTILITY = 0.1  # a claim whose chance of a decision by max_seeds is below this stops taking seeds


@dataclass
class Projection:
    """How much more would decide an undecided row at its current estimate (None: no estimate yet)."""

    units: float  # more units (inf: not within the horizon looked at)
    seeds: float  # more seeds of its cells
    minutes: float | None  # at the sweep's measured trial cost and parallelism (None: no cost measured yet)
    chance: float  # predictive chance of a decision by max_seeds
    futile: bool  # that chance is below FUTILITY: more seeds are unlikely to decide it
    within: float = math.inf  # more units looked at (units is inf when no decision comes within them)


@dataclass
class ClaimRow:
    """One claim on one task: its cell pairs, and what an evaluator read from the records."""

    claim: Claim
    metric: str
    task: str
    tags: tuple
    pairs: list[CellPair]
    kind: str = ""
    # filled by an evaluator
    n: int = 0  # units
    used: int = 0  # units the estimand read (a mean leaves out units without a value)
    trials: int = 0  # records of the row's cells (sequential) or trial pairs (fixed)
    diff: Estimate | None = None  # Δ now: the estimand's estimate and interval
    mean_a: float | None = None
    mean_b: float | None = None
    p: dict = field(default_factory=dict)  # p, p_adj, and with a margin p_equiv, p_equiv_adj
    verdict: str = WORDS[NO_PAIRS]
    decision: Moment | None = None  # sequential: the moment it was decided
    projection: Projection | None = None
    problems: dict = field(default_factory=lambda: {"a": {"diverged": 0, "failed": 0},
                                                    "b": {"diverged": 0, "failed": 0}})
    units: Units | None = None
    record_pairs: list = field(default_factory=list)
    values: list = field(default_factory=list)  # the units' Δ in the order read (seed, then image)
    level_side: float = 0.025  # the per-side level its interval and figure use

    @property
    def estimand(self):
        return estimands.get(self.claim.estimand)

    @property
    def b_metric(self) -> str:
        return self.claim.b_metric or self.metric

    @property
    def margin(self) -> float:
        """The margin on Δ's scale (log(1 + m) when relative); NaN without one."""
        c = self.claim
        if c.margin is None:
            return math.nan
        return math.log1p(c.margin) if c.relative else c.margin

    @property
    def cells(self) -> frozenset:
        return frozenset(c for cp in self.pairs for c in (cp.a.cell_key, cp.b.cell_key))

    @property
    def decided(self) -> bool:
        return self.decision is not None

    @property
    def photos(self) -> str:
        """The test images its verdict speaks of (fixed effects: these photos, not photos in general)."""
        return self.task.split(" · ")[1] if self.task.count(" · ") >= 2 else "—"


def family(design: Design, claims, headline: str) -> list[ClaimRow]:
    """Every (claim, task) row of the sweep's family, with its cell pairs (a claim with none: one row)."""
    rows = []
    for claim in claims:
        metric = claim.metric or headline
        pairs = selected_pairs(design, claim.a, claim.b, claim.where, claim.b_metric is not None)
        groups = by_task(pairs) or {("—", (), ()): []}
        for (task, tags, _), group in groups.items():
            rows.append(ClaimRow(claim, metric, task, tags, group, unit_kind(design.method, metric)))
    return rows


def verdict_text(code: int, row: ClaimRow) -> str:
    word = WORDS[code]
    if code == NO_PAIRS and not row.pairs:
        return NO_PAIRS_TEXT
    if code == TOO_FEW:
        return f"{word} ({too_few_text(row.n)})"
    if code == EQUIVALENT:
        word = f"{word} within {row.claim.margin_text()}"
    if code in (SUPPORTED, CONTRADICTED, EQUIVALENT) and row.used < row.n:
        word += f" (the {row.estimand.name} of {row.used} of {row.n} units: {row.n - row.used} without a value left " \
                "out, biased)"
    return word


def _family_weight(rows: list[ClaimRow], weights, counted) -> float:
    """The weight of the family's hypotheses: each counted row's direction test, and its equivalence test
    where it has a margin."""
    return float(sum(w * (1 + math.isfinite(r.margin)) for r, w in zip(rows, weights) if counted(r)))


def _tested(rows: list[ClaimRow], tests: list[Tested | None]) -> Tested:
    """The rows' tests as one family's arrays (a row without units: n = 0)."""
    def col(attr, missing=np.nan):
        return np.array([float(getattr(t, attr)) if t is not None else missing for t in tests])

    return Tested(col("n", 0.0), col("p_dir"), col("side", 1.0), col("p_eq"), col("estimate"), col("low"),
                  col("high"), col("used", 0.0))


def _estimate(t: Tested, n: int) -> Estimate | None:
    if n == 0:
        return None
    low, high = float(t.low), float(t.high)
    bounded = math.isfinite(low) and math.isfinite(high)
    return Estimate(float(t.estimate), low if bounded else None, high if bounded else None, n)


def _finite_mean(xs) -> float | None:
    vals = [x for x in xs if math.isfinite(x)]
    return math.fsum(vals) / len(vals) if vals else None


def _p(got: dict, i: int) -> dict:
    return {k: _num(got[k][i]) for k in ("p", "p_adj", "p_equiv", "p_equiv_adj")}


def _num(x) -> float | None:
    x = float(np.asarray(x))
    return None if math.isnan(x) else x


# ---------------------------------------------------------------- a fixed grid

def evaluate_fixed(rows: list[ClaimRow], index: Index, method: str, alpha: float = ALPHA, costs=None,
                   parallel: int = 1) -> list[ClaimRow]:
    """Units, each row's fixed-n test, and Holm-adjusted verdicts for a fixed grid's family; an undecided row's
    projection: what adaptive replication would need from here (`costs`, `parallel`: for its minutes)."""
    tests = []
    for row in rows:
        row.record_pairs = index.record_pairs(row.pairs)
        row.units = pair_units(method, row.record_pairs, row.metric, row.b_metric, relative=row.claim.relative,
                               losses=True)
        row.n, row.problems, row.trials = row.units.n, row.units.problems, row.units.trial_pairs
        t = row.estimand.fixed(np.array(row.units.d, float), row.margin) if row.n else None
        tests.append(t)
        row.values = list(row.units.d)
        if t is not None:
            row.used = int(t.used)
            row.diff = _estimate(t, row.n)
            row.mean_a, row.mean_b = _finite_mean(row.units.a), _finite_mean(row.units.b)
    if not rows:
        return rows
    weights = priority_weights([r.claim.priority for r in rows])
    got = estimands.decide(_tested(rows, tests), np.array([r.claim.sign for r in rows]), alpha, weights)
    open_weight = max(float(got["open_weight"]), 1e-12)
    total = _family_weight(rows, weights, lambda r: r.n >= estimands.MIN_UNITS)
    for i, row in enumerate(rows):
        code = int(got["code"][i])
        row.verdict = verdict_text(code, row)
        row.p = _p(got, i)
        row.level_side = alpha * weights[i] / max(total, 1e-12) / 2
        seeds = len({ra.seed for ra, _ in row.record_pairs})
        if code in (UNDECIDED, TOO_FEW) and row.n and seeds:
            row.projection = project(row, row.units.d, max(1, row.n // seeds), 10 * seeds,
                                     alpha * weights[i] / open_weight / 2, costs or {}, parallel)
    return rows


def project(row: ClaimRow, d: list, per_seed: int, max_seeds: int, level_side: float, costs: dict, parallel: int,
            display: bool = True) -> Projection:
    """What would decide `row` if its units go on as they went: more units and seeds, their minutes at the
    measured trial costs (`costs`: cell key -> seconds) and `parallel` trials at once, and the predictive chance
    of a decision by `max_seeds` (futile below FUTILITY). `display`: look past max_seeds too."""
    max_units = max_seeds * per_seed
    horizon = max(4 * max_units, 60) if display else max_units
    x = np.array(d, float)
    total = row.estimand.units_to_decide(x, level_side, horizon, per_seed)
    chance = row.estimand.chance(x, level_side, max_units, per_seed) if len(d) < max_units else 0.0
    more = max(total - len(d), 0.0)
    seeds = math.ceil(more / per_seed) if math.isfinite(more) else math.inf
    cost = [costs[c] for c in row.cells if c in costs]
    minutes = seeds * sum(cost) / max(parallel, 1) / 60 if cost and len(cost) == len(row.cells) and \
        math.isfinite(seeds) else None
    return Projection(more, seeds, minutes, chance, futile=chance < FUTILITY, within=horizon - len(d))


# ---------------------------------------------------------------- adaptive replication: records as they arrive

@dataclass
class _Sequence:
    """A row's state: its units in seed order, the estimand's running test over them, the seeds read."""

    running: object
    d: list = field(default_factory=list)
    a: list = field(default_factory=list)
    b: list = field(default_factory=list)
    seeds: list = field(default_factory=list)  # seeds read, in order
    per_seed: int = 0  # units a seed adds
    trials: int = 0  # records behind the units read


class ClaimTracker:
    """Every row of a sweep's family, fed one record at a time (`add`); each row reads its units seed by seed,
    in the design's seed order (a seed that completes early waits for the ones before it), so a row's sequence
    does not depend on which trial happened to finish first, and replaying the final records gives the same
    verdicts. A record that replaces one already read (a retried failure, a duplicate) rebuilds its rows."""

    def __init__(self, design: Design, headline: str, alpha: float = ALPHA, costs=None, parallel: int = 1):
        """`costs`: cell key -> measured seconds of one of its trials (for projections in minutes);
        `parallel`: trials at once."""
        self.design, self.alpha = design, alpha
        self.rows = family(design, design.claims, headline)
        self.seq = {id(r): self._fresh(r) for r in self.rows}
        self.by_cell: dict[str, list[ClaimRow]] = {}
        for row in self.rows:
            for ck in row.cells:
                self.by_cell.setdefault(ck, []).append(row)
        self.records: dict[tuple[str, int], Record] = {}
        self.order = {s: i for i, s in enumerate(sorted(design.seeds))}
        self.costs = costs if costs is not None else {}
        self.parallel = max(1, parallel)
        self.max_seeds = (design.replicate or {}).get("max_seeds") or len(design.seeds) or 1
        tested = self.tested()
        self.weights = {id(r): w for r, w in zip(tested, priority_weights([r.claim.priority for r in tested]))}
        self.total_weight = _family_weight(tested, [self.weights[id(r)] for r in tested], lambda r: True)
        self.open_weight = self.total_weight  # of the hypotheses Holm has not rejected: the next needs α w / this
        self._projections: dict[tuple, Projection | None] = {}
        self._decide()

    def _fresh(self, row: ClaimRow) -> _Sequence:
        return _Sequence(row.estimand.running(row.margin))

    # ------------------------------------------------------------------ records in

    def add(self, record: Record) -> list[ClaimRow]:
        """Take one terminal record (the store's rule: a later one replaces an earlier one of its trial, but a
        failed one never replaces an ok one); returns the rows whose state changed."""
        key = (record.cell_key, record.seed)
        old = self.records.get(key)
        if old is not None and (old.trial_key != record.trial_key or (old.status == "ok" and record.status != "ok")
                                or old == record):
            return []
        self.records[key] = record
        touched = []
        for row in self.by_cell.get(record.cell_key, []):
            if old is not None and record.seed in self.seq[id(row)].seeds:
                self.seq[id(row)] = self._fresh(row)  # a unit already read changed: read the row again
            if self._advance(row):
                touched.append(row)
        if touched:
            self._decide()
        return touched

    def replay(self, records) -> "ClaimTracker":
        for r in sorted(records, key=lambda r: self.order.get(r.seed, r.seed)):
            self.add(r)
        return self.finish()

    def finish(self) -> "ClaimTracker":
        """Fill what the tables show and the running decisions do not need: each row's estimate and
        confidence sequence now, and each undecided row's projection."""
        for row in self.tested():
            sq = self.seq[id(row)]
            row.values, row.level_side = list(sq.d), self.level_side(row)
            row.diff = _estimate(row.estimand.sequential(np.array(sq.d), row.margin, self.level_side(row)),
                                 row.n) if sq.d else None
            row.projection = None if row.decided else self.projection(row, display=True)
            if not row.decided and self.futile(row):
                row.verdict = FUTILE
        return self

    def futile(self, row: ClaimRow) -> bool:
        """Whether more seeds are unlikely to decide the row by max_seeds (its predictive chance is below
        FUTILITY), or max_seeds is reached."""
        if row.decided:
            return False
        sq = self.seq[id(row)]
        if sq.per_seed and len(sq.d) >= self.max_seeds * sq.per_seed:
            return True
        proj = self.projection(row)
        return proj is not None and proj.futile

    def _advance(self, row: ClaimRow) -> bool:
        """Read every seed that is complete and next in order; True if any was."""
        sq, read = self.seq[id(row)], False
        for seed in sorted(self.order, key=self.order.get)[len(sq.seeds):]:
            got = {ck: self.records.get((ck, seed)) for ck in row.cells}
            if any(r is None for r in got.values()):
                break
            pairs = [(got[cp.a.cell_key], got[cp.b.cell_key]) for cp in row.pairs]
            units = pair_units(self.design.method, pairs, row.metric, row.b_metric, relative=row.claim.relative,
                               losses=True)
            for d, a, b in zip(units.d, units.a, units.b):
                sq.running.add(d)
                sq.d.append(d)
                sq.a.append(a)
                sq.b.append(b)
            sq.seeds.append(seed)
            sq.per_seed = sq.per_seed or units.n
            sq.trials += len(row.cells)
            if len(sq.seeds) == 1:
                row.problems = {"a": {"diverged": 0, "failed": 0}, "b": {"diverged": 0, "failed": 0}}
            for arm in ("a", "b"):
                for k, v in units.problems[arm].items():
                    row.problems[arm][k] += v
            read = True
        return read

    # ------------------------------------------------------------------ the family's decisions

    def _decide(self) -> None:
        """Holm over the running p-values of every row; record the moment each row was first decided."""
        tested = [r for r in self.rows if r.pairs]
        if not tested:
            for row in self.rows:
                row.verdict = NO_PAIRS_TEXT
            return
        runs = [self.seq[id(r)].running for r in tested]
        # the family is every row the design pairs, from the first record on: a row not read yet is in it at p = 1
        family_tests = Tested(np.array([float(len(self.seq[id(r)].d)) for r in tested]),
                              np.array([x.p_dir if x.n else 1.0 for x in runs]),
                              np.array([float(x.side) for x in runs]),
                              np.array([x.p_eq if x.n else (1.0 if math.isfinite(r.margin) else np.nan)
                                        for r, x in zip(tested, runs)]),
                              *(np.zeros(len(runs)) for _ in range(3)),
                              np.array([float(x.n) for x in runs]))
        got = estimands.decide(family_tests, np.array([r.claim.sign for r in tested]), self.alpha,
                               [self.weights[id(r)] for r in tested], whole_family=True)
        self.open_weight = max(float(got["open_weight"]), 1e-12)
        for i, row in enumerate(tested):
            code = int(got["code"][i])
            self._show(row, got, i)
            if code in (SUPPORTED, CONTRADICTED, EQUIVALENT):
                if row.decision is None:
                    sq = self.seq[id(row)]
                    row.diff = _estimate(row.estimand.sequential(np.array(sq.d), row.margin, self.level_side(row)),
                                         row.n)
                    row.decision = self._moment(row, row.p)
                row.verdict = verdict_text(code, row)
            else:
                row.decision = None
                row.verdict = f"{SEQ_UNDECIDED} ({too_few_text(row.n)})" if row.n < MIN_UNITS else SEQ_UNDECIDED
        for row in self.rows:
            if not row.pairs:
                row.verdict = NO_PAIRS_TEXT

    def _show(self, row: ClaimRow, got: dict, i: int) -> None:
        """The row's fields the decisions read: its units, the arms' means, the p-values."""
        sq = self.seq[id(row)]
        row.n, row.trials = len(sq.d), sq.trials
        row.used = int(getattr(sq.running, "n", row.n))
        row.mean_a, row.mean_b = _finite_mean(sq.a), _finite_mean(sq.b)
        row.p = _p(got, i)

    def level_side(self, row: ClaimRow) -> float:
        """The per-side level of the row's confidence sequence as the tables show it: α split over the family's
        hypotheses (Bonferroni; Holm's first step), two sides."""
        return self.alpha * self.weights.get(id(row), 1.0) / max(self.total_weight, 1e-12) / 2

    def next_level(self, row: ClaimRow) -> float:
        """The per-side level Holm would ask of the row's test next: α × its weight over the weight of the
        hypotheses still open, two sides."""
        return self.alpha * self.weights.get(id(row), 1.0) / self.open_weight / 2

    def _moment(self, row: ClaimRow, p: dict) -> Moment:
        d = row.diff
        return Moment(row.n, row.trials, d.mean if d else math.nan, d.low if d else None, d.high if d else None,
                      dict(p))

    def projection(self, row: ClaimRow, display: bool = False) -> Projection | None:
        """Units and seeds that would decide the row if its units go on as they went, at the level Holm would
        ask of it next (`next_level`), and the minutes that costs; `display`:
        look past max_seeds too (how far a decision is), else only as far as futility needs. Cached per state."""
        sq = self.seq[id(row)]
        if len(sq.d) < MIN_UNITS or not sq.per_seed:
            return None
        key = (id(row), len(sq.d), self.open_weight, display, tuple(sq.seeds))
        if key not in self._projections:
            self._projections[key] = self._project(row, sq, display)
        return self._projections[key]

    def _project(self, row: ClaimRow, sq: _Sequence, display: bool) -> Projection:
        return project(row, sq.d, sq.per_seed, self.max_seeds, self.next_level(row), self.costs,
                       self.parallel, display)

    def cost_per_seed(self, row: ClaimRow) -> float | None:
        """Measured seconds of one seed of the row's cells (None until each has a measured trial)."""
        cost = [self.costs.get(c) for c in row.cells]
        return None if any(c is None for c in cost) else sum(cost)

    # ------------------------------------------------------------------ what the searcher and views ask

    def undecided(self) -> list[ClaimRow]:
        return [r for r in self.rows if r.pairs and not r.decided]

    def open(self) -> list[ClaimRow]:
        """Undecided rows that more seeds may still decide: not futile (futility is judged from two seeds on)."""
        return [row for row in self.undecided() if not self.futile(row)]

    def tested(self) -> list[ClaimRow]:
        return [r for r in self.rows if r.pairs]

    def sequence(self, row: ClaimRow) -> _Sequence:
        return self.seq[id(row)]

    def summary(self) -> str:
        """One line: how many rows are decided."""
        tested = self.tested()
        return f"{sum(r.decided for r in tested)}/{len(tested)} claims decided"
