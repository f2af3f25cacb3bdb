"""The verdicts of a sweep's claims (docs/design.md, "Claims", "Statistics"): one row type, two evaluators.

A claim becomes one `ClaimRow` per task its pairs touch (rows never pool tasks);
the rows of a sweep are one family. Each row's value per unit is the paired
difference Δ = A − B (or log A/B for a relative margin), averaged within the unit
(`units.py`). Two evaluators fill the same rows:

- `evaluate_fixed` (a fixed grid, read once): a t interval and two-sided p per
  row, TOST against ±margin where the claim has one, Holm over every hypothesis
  of the family (`family_verdicts`), so the chance of any false verdict in the
  family stays ≤ α;
- `ClaimTracker` (adaptive replication): anytime-valid confidence sequences
  (`sequential.py`), α split over the family's rows, updated as units arrive;
  a row keeps the verdict it reached when it was decided.

The verdict words and the minimum number of units are defined here, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..common.claims import Claim
from ..common.design import Design
from ..common.record import Record
from .intervals import MIN_UNITS, Estimate, one_sample, t_p_value, tost_p
from .multiplicity import holm
from .pairing import CellPair, Index, by_task, selected_pairs
from .sequential import RunningMean, log_bf_at
from .units import Units, pair_units, unit_kind

ALPHA = 0.05  # the family-wise error every sweep's claims are held to

# Verdicts, as codes for vectorised decisions and as the words the tables print.
NO_PAIRS, TOO_FEW, UNDECIDED, SUPPORTED, CONTRADICTED, EQUIVALENT = range(6)
WORDS = {NO_PAIRS: "no pairs ran", TOO_FEW: "too few replicates", UNDECIDED: "not distinguishable at this n",
         SUPPORTED: "supported", CONTRADICTED: "contradicted", EQUIVALENT: "equivalent"}
NO_PAIRS_TEXT = "no pairs: no cell of arm A (where it applies) has a counterpart with B's values"
SEQ_UNDECIDED = "undecided"  # a sequential row that may still be decided by more units


def too_few_text(n: int) -> str:
    return f"{n} units; {MIN_UNITS} needed"


@dataclass
class Decision:
    """What a sequential row read when it was decided: final, since its sequence holds at every n."""

    verdict: str
    n: int
    trials: int
    mean: float
    low: float
    high: float
    p: dict


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
    trials: int = 0  # records of the row's cells (sequential)
    diff: Estimate | None = None  # Δ now (its interval: the t interval, or the running sequence's)
    mean_a: float | None = None
    mean_b: float | None = None
    p: dict = field(default_factory=dict)  # p, p_adj and, with a margin, p_equiv, p_equiv_adj
    verdict: str = WORDS[NO_PAIRS]
    decision: Decision | None = None
    problems: dict = field(default_factory=lambda: {"a": {"diverged": 0, "failed": 0},
                                                    "b": {"diverged": 0, "failed": 0}})
    units: Units | None = None  # fixed: the units read
    record_pairs: list = field(default_factory=list)  # fixed: (A record, B record) pairs

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


def family(design: Design, claims, headline: str) -> list[ClaimRow]:
    """Every (claim, task) row of the sweep's family, with its cell pairs (a claim with none: one row)."""
    rows = []
    for claim in claims:
        metric = claim.metric or headline
        same_cells = claim.b_metric is not None
        pairs = selected_pairs(design, claim.a, claim.b, claim.where, same_cells)
        groups = by_task(pairs) or {("—", (), ()): []}
        for (task, tags, _), group in groups.items():
            rows.append(ClaimRow(claim, metric, task, tags, group, unit_kind(design.method, metric)))
    return rows


# ---------------------------------------------------------------- a fixed grid

def evaluate_fixed(rows: list[ClaimRow], index: Index, method: str, alpha: float = ALPHA) -> list[ClaimRow]:
    """Units, intervals and Holm-adjusted verdicts for a fixed grid's family."""
    for row in rows:
        row.record_pairs = index.record_pairs(row.pairs)
        row.units = pair_units(method, row.record_pairs, row.metric, row.b_metric, relative=row.claim.relative)
        row.n, row.problems = row.units.n, row.units.problems
        res = one_sample(row.units.d, row.units.a, row.units.b)
        if res is not None:
            row.diff, row.mean_a, row.mean_b = res.diff, res.mean_a, res.mean_b
    if not rows:
        return rows
    mean = [r.diff.mean if r.diff else 0.0 for r in rows]
    std = [r.diff.std if r.diff and r.diff.std is not None else math.nan for r in rows]
    got = family_verdicts(mean, std, [r.n for r in rows], [r.claim.sign for r in rows], [r.margin for r in rows],
                          alpha)
    for i, row in enumerate(rows):
        row.verdict = verdict_text(int(got["code"][i]), row)
        row.p = {"p": _num(got["p"][i]), "p_adj": _num(got["p_holm"][i]), "p_equiv": _num(got["p_tost"][i]),
                 "p_equiv_adj": _num(got["p_tost_holm"][i])}
    return rows


def family_verdicts(mean, std, n, expect, margin, alpha: float = ALPHA) -> dict:
    """Decide a family of claims (the last axis) at once.

    mean, std, n: each claim's unit differences summarised; expect: +1 (A > B) or −1;
    margin: the equivalence margin in the same units (NaN: none). The family's
    hypotheses are every claim's "Δ = 0" (two-sided t) and, for claims with a
    margin, "|Δ| ≥ margin" (TOST); Holm adjusts them together, so the chance of
    any false verdict in the family stays ≤ alpha. Returns codes and p-values.
    """
    mean, std, n, expect, margin = np.broadcast_arrays(*(np.asarray(x, float)
                                                         for x in (mean, std, n, expect, margin)))
    enough = n >= MIN_UNITS
    p_diff = np.where(enough, t_p_value(mean, std, n), np.nan)
    p_eq = np.where(enough, tost_p(mean, std, n, margin), np.nan)
    adj = holm(np.concatenate([p_diff, p_eq], axis=-1))
    k = mean.shape[-1]
    adj_diff, adj_eq = adj[..., :k], adj[..., k:]
    code = np.full(mean.shape, UNDECIDED)
    differs = adj_diff <= alpha
    code = np.where(differs & (np.sign(mean) == expect), SUPPORTED, code)
    code = np.where(differs & (np.sign(mean) == -expect), CONTRADICTED, code)
    code = np.where(adj_eq <= alpha, EQUIVALENT, code)
    code = np.where(enough, code, np.where(n == 0, NO_PAIRS, TOO_FEW))
    return {"code": code, "p": p_diff, "p_holm": adj_diff, "p_tost": p_eq, "p_tost_holm": adj_eq}


def verdict_text(code: int, row: ClaimRow) -> str:
    word = WORDS[code]
    if code == NO_PAIRS and not row.pairs:
        return NO_PAIRS_TEXT
    if code == EQUIVALENT:
        return f"{word} within {row.claim.margin_text()}"
    if code == TOO_FEW:
        return f"{word} ({too_few_text(row.n)})"
    return word


def _num(x) -> float | None:
    x = float(np.asarray(x))
    return None if math.isnan(x) else x


# ---------------------------------------------------------------- adaptive replication: one record at a time

@dataclass
class _Sequence:
    """A row's running state: records waiting for their seed to complete, the running means of its units'
    Δ and arms (Welford, O(1) per unit), the running intersection of its confidence sequence, and the most
    evidence any look gave against Δ = 0 and against Δ = ∓margin (the anytime-valid p-values: exp(−those))."""

    level: float  # this row's share of α
    family_size: int
    waiting: dict = field(default_factory=dict)  # seed -> cell key -> record
    d: RunningMean = field(default_factory=RunningMean)
    a: RunningMean = field(default_factory=RunningMean)
    b: RunningMean = field(default_factory=RunningMean)
    low: float = -math.inf
    high: float = math.inf
    seeds_done: set = field(default_factory=set)
    lbf_zero: float = -math.inf
    lbf_below: float = -math.inf  # against Δ = −margin, at looks whose mean lies above −margin
    lbf_above: float = -math.inf  # against Δ = +margin, at looks whose mean lies below +margin

    def p_values(self, margin: float) -> dict:
        """Anytime-valid p-values: raw, and ×K (Bonferroni over the family, the α split the verdicts use);
        p (×K) ≤ α exactly when the claim is (or would be) decided supported or contradicted, and the
        equivalence p (×K) ≤ α exactly when its sequence lies inside ±margin."""
        p = min(1.0, math.exp(-self.lbf_zero))
        out = {"p": p, "p_adj": min(1.0, self.family_size * p)}
        if math.isfinite(margin):
            pe = max(min(1.0, math.exp(-self.lbf_below)), min(1.0, math.exp(-self.lbf_above)))
            out |= {"p_equiv": pe, "p_equiv_adj": min(1.0, self.family_size * pe)}
        return out


class ClaimTracker:
    """Every row of a sweep's family, fed one record at a time (`add`), cost O(rows the record feeds).
    Records are taken in arrival order, the first terminal record of a trial only, so replaying
    results.jsonl gives the decisions the live sweep made."""

    def __init__(self, design: Design, headline: str, alpha: float = ALPHA):
        self.design = design
        self.rows = family(design, design.claims, headline)
        tested = [r for r in self.rows if r.pairs]
        k = max(len(tested), 1)
        self.seq = {id(r): _Sequence(alpha / k, k) for r in self.rows}  # Bonferroni over the rows that can err
        self.by_cell: dict[str, list[ClaimRow]] = {}
        for row in self.rows:
            for ck in row.cells:
                self.by_cell.setdefault(ck, []).append(row)
            self._show(row)
        self.seen: set[str] = set()
        self.records = 0

    def add(self, record: Record) -> list[ClaimRow]:
        """Take one terminal record (its trial's first); returns the rows it completed a seed of."""
        if record.trial_key in self.seen:
            return []
        self.seen.add(record.trial_key)
        self.records += 1
        touched = []
        for row in self.by_cell.get(record.cell_key, []):
            row.trials += 1
            got = self.seq[id(row)].waiting.setdefault(record.seed, {})
            got[record.cell_key] = record
            if row.cells <= got.keys():
                self._complete(row, record.seed)
                touched.append(row)
        return touched

    def replay(self, records) -> "ClaimTracker":
        for r in records:
            self.add(r)
        return self

    def undecided(self) -> list[ClaimRow]:
        return [r for r in self.rows if r.pairs and not r.decided]

    def tested(self) -> list[ClaimRow]:
        return [r for r in self.rows if r.pairs]

    def summary(self) -> str:
        """One line: how many rows are decided."""
        tested = self.tested()
        return f"{sum(r.decided for r in tested)}/{len(tested)} claims decided"

    def sequence(self, row: ClaimRow) -> _Sequence:
        return self.seq[id(row)]

    # ------------------------------------------------------------------ one seed, one unit, one look

    def _complete(self, row: ClaimRow, seed) -> None:
        """Form the units of a complete seed and look after each."""
        sq = self.seq[id(row)]
        got = sq.waiting.pop(seed)
        sq.seeds_done.add(seed)
        pairs = [(got[cp.a.cell_key], got[cp.b.cell_key]) for cp in row.pairs]
        units = pair_units(self.design.method, pairs, row.metric, row.b_metric, relative=row.claim.relative)
        for arm in ("a", "b"):
            for k, v in units.problems[arm].items():
                row.problems[arm][k] += v
        for d, a, b in zip(units.d, units.a, units.b):
            sq.d.add(d)
            sq.a.add(a)
            sq.b.add(b)
            self._look(row, sq)
        self._show(row)

    def _look(self, row: ClaimRow, sq: _Sequence) -> None:
        """After each unit: narrow the running interval and decide when it allows."""
        low, high = sq.d.bounds(sq.level)
        sq.low, sq.high = max(sq.low, low), min(sq.high, high)
        m, claim, d = row.margin, row.claim, sq.d
        if d.n >= MIN_UNITS:
            sq.lbf_zero = max(sq.lbf_zero, log_bf_at(d.mean, d.std, d.n, 0.0))
            if math.isfinite(m) and d.mean > -m:
                sq.lbf_below = max(sq.lbf_below, log_bf_at(d.mean, d.std, d.n, -m))
            if math.isfinite(m) and d.mean < m:
                sq.lbf_above = max(sq.lbf_above, log_bf_at(d.mean, d.std, d.n, m))
        if row.decided or d.n < MIN_UNITS or sq.low > sq.high:
            return
        verdict = None
        if math.isfinite(m) and -m < sq.low and sq.high < m:
            verdict = f"{WORDS[EQUIVALENT]} within {claim.margin_text()}"
        elif sq.low > 0 or sq.high < 0:
            verdict = WORDS[SUPPORTED] if (1 if sq.low > 0 else -1) == claim.sign else WORDS[CONTRADICTED]
        if verdict:
            row.decision = Decision(verdict, d.n, row.trials, d.mean, sq.low, sq.high, sq.p_values(m))

    def _show(self, row: ClaimRow) -> None:
        """The row's fields as a table reads them: now, and the decision when there is one."""
        sq = self.seq[id(row)]
        row.n = sq.d.n
        row.mean_a = sq.a.mean if sq.a.n else None
        row.mean_b = sq.b.mean if sq.b.n else None
        bounded = math.isfinite(sq.low) and math.isfinite(sq.high)
        row.diff = Estimate(sq.d.mean, sq.low if bounded else None, sq.high if bounded else None, sq.d.n) \
            if sq.d.n else None
        row.p = sq.p_values(row.margin) if row.pairs and sq.d.n >= MIN_UNITS else {}
        if row.decision is not None:
            row.verdict = row.decision.verdict
        elif not row.pairs:
            row.verdict = NO_PAIRS_TEXT
        else:
            row.verdict = SEQ_UNDECIDED if sq.d.n >= MIN_UNITS else f"{SEQ_UNDECIDED} ({too_few_text(sq.d.n)})"
