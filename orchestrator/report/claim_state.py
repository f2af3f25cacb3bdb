"""Claims under adaptive replication (DESIGN §14): their state, updated from one record at a time.

Each (claim, task) row of the family (`claims.family`) keeps
- the records of its cells, per seed, until the seed is complete (every cell of
  the row has its record for that seed; a failed trial completes it without its
  pair), when the seed's units are formed (`units.pair_units`);
- a running mean and variance of its units' Δ (Welford), so its confidence
  sequence (`sequential.py`, level 1 − α/K over the family's K rows) is updated
  in O(1) per unit, whatever the number of records;
- the running intersection of the sequence's intervals (as valid as each one);
- its decision, once reached: the verdict, the units and the trials it had
  cost. A decision is final: the sequence holds at every n at once, so the
  interval read at the deciding unit is as valid as any later one.
Records are taken in arrival order, the first terminal record of a trial only,
so replaying results.jsonl gives the decisions the live sweep made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..common.design import Design
from .claims import ClaimRow, family
from .sequential import RunningMean, log_bf_at
from .stats import ALPHA, MIN_UNITS
from .units import pair_units


@dataclass
class RowState:
    row: ClaimRow
    level: float  # this row's share of α
    cells: frozenset
    waiting: dict = field(default_factory=dict)  # seed -> cell key -> record
    d: RunningMean = field(default_factory=RunningMean)
    a: RunningMean = field(default_factory=RunningMean)
    b: RunningMean = field(default_factory=RunningMean)
    low: float = -math.inf
    high: float = math.inf
    trials: int = 0  # records of this row's cells so far
    seeds_done: set = field(default_factory=set)
    problems: dict = field(default_factory=lambda: {"a": {"diverged": 0, "failed": 0},
                                                    "b": {"diverged": 0, "failed": 0}})
    decision: dict | None = None
    # the most evidence any look (from MIN_UNITS units on) gave against Δ = 0, and against Δ = ∓margin
    # from inside the margin: the anytime-valid p-values are exp(−these)
    lbf_zero: float = -math.inf
    lbf_below: float = -math.inf  # against Δ = −margin, at looks whose mean lies above −margin
    lbf_above: float = -math.inf  # against Δ = +margin, at looks whose mean lies below +margin
    family_size: int = 1

    @property
    def decided(self) -> bool:
        return self.decision is not None

    def verdict(self) -> str:
        if self.decision:
            return self.decision["verdict"]
        if not self.row.pairs:
            return "no pairs: no cell of arm A (where it applies) has a counterpart with B's values"
        return "undecided" if self.d.n >= MIN_UNITS else f"undecided ({self.d.n} units; 3 needed)"

    def p_values(self) -> dict:
        """Anytime-valid p-values: raw, and ×K (Bonferroni over the family, the α split the verdicts use);
        p (×K) ≤ α exactly when the claim is (or would be) decided supported or contradicted, and the
        equivalence p (×K) ≤ α exactly when its sequence lies inside ±margin."""
        p = min(1.0, math.exp(-self.lbf_zero))
        out = {"p": p, "p_adj": min(1.0, self.family_size * p)}
        if math.isfinite(self.row.margin):
            pe = max(min(1.0, math.exp(-self.lbf_below)), min(1.0, math.exp(-self.lbf_above)))
            out |= {"p_equiv": pe, "p_equiv_adj": min(1.0, self.family_size * pe)}
        return out

    def complete(self, seed, method: str) -> list[float]:
        """Form the units of a complete seed; returns their Δ in unit order."""
        got = self.waiting.pop(seed)
        self.seeds_done.add(seed)
        pairs = [(got[cp.a.cell_key], got[cp.b.cell_key]) for cp in self.row.pairs]
        units = pair_units(method, pairs, self.row.metric, relative=self.row.claim.relative)
        for arm in ("a", "b"):
            for k, v in units.problems[arm].items():
                self.problems[arm][k] += v
        for d, a, b in zip(units.d, units.a, units.b):
            self.d.add(d)
            self.a.add(a)
            self.b.add(b)
            self._look()
        return units.d

    def _look(self) -> None:
        """After each unit: narrow the running interval and decide when it allows."""
        low, high = self.d.bounds(self.level)
        self.low, self.high = max(self.low, low), min(self.high, high)
        m, claim = self.row.margin, self.row.claim
        d = self.d
        if d.n >= MIN_UNITS:
            self.lbf_zero = max(self.lbf_zero, log_bf_at(d.mean, d.std, d.n, 0.0))
            if math.isfinite(m) and d.mean > -m:
                self.lbf_below = max(self.lbf_below, log_bf_at(d.mean, d.std, d.n, -m))
            if math.isfinite(m) and d.mean < m:
                self.lbf_above = max(self.lbf_above, log_bf_at(d.mean, d.std, d.n, m))
        if self.decided or self.d.n < MIN_UNITS or self.low > self.high:
            return
        verdict = None
        if math.isfinite(m) and -m < self.low and self.high < m:
            verdict = f"equivalent within {claim.margin_text()}"
        elif self.low > 0 or self.high < 0:
            verdict = "supported" if (1 if self.low > 0 else -1) == claim.sign else "contradicted"
        if verdict:
            self.decision = {"verdict": verdict, "n": self.d.n, "trials": self.trials, "mean": self.d.mean,
                             "low": self.low, "high": self.high, **self.p_values()}


class ClaimTracker:
    """Every row of a sweep's family, fed one record at a time (`add`), cost O(rows the record feeds)."""

    def __init__(self, design: Design, headline: str, alpha: float = ALPHA):
        self.design = design
        rows = family(design, design.claims, headline)
        tested = [r for r in rows if r.pairs]
        level = alpha / max(len(tested), 1)  # Bonferroni over the rows that can err
        self.states = [RowState(r, level, frozenset(c for cp in r.pairs for c in (cp.a.cell_key, cp.b.cell_key)),
                                family_size=max(len(tested), 1)) for r in rows]
        self.by_cell: dict[str, list[RowState]] = {}
        for st in self.states:
            for ck in st.cells:
                self.by_cell.setdefault(ck, []).append(st)
        self.seen: set[str] = set()
        self.records = 0

    def add(self, record: dict) -> list[RowState]:
        """Take one terminal record (its trial's first); returns the rows it completed a seed of."""
        key = record.get("trial_key")
        if key in self.seen or record.get("status") not in ("ok", "diverged", "failed"):
            return []
        self.seen.add(key)
        self.records += 1
        seed, touched = record.get("seed", 0), []
        for st in self.by_cell.get(record.get("cell_key") or "", []):
            st.trials += 1
            got = st.waiting.setdefault(seed, {})
            got[record["cell_key"]] = record
            if st.cells <= got.keys():
                st.complete(seed, self.design.method)
                touched.append(st)
        return touched

    def replay(self, records) -> "ClaimTracker":
        for r in records:
            self.add(r)
        return self

    def undecided(self) -> list[RowState]:
        return [st for st in self.states if st.row.pairs and not st.decided]

    def summary(self) -> str:
        """One line: how many rows are decided, and how."""
        tested = [st for st in self.states if st.row.pairs]
        decided = [st for st in tested if st.decided]
        return f"{len(decided)}/{len(tested)} claims decided"
