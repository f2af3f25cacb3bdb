"""Testing the sweep's claims (`orchestrator.common.claims`) on the pairs it ran (DESIGN §12, §13).

A claim becomes one row per task its pairs touch (rows never pool tasks); the
rows of a sweep are one family. Each row's value per unit is the paired
difference Δ = A − B (or log A/B for a relative margin), averaged within the
unit (`units.py`).

- Fixed grid: a t interval and two-sided p per row, TOST against ±margin where
  the claim has one, Holm over every hypothesis of the family
  (`stats.family_verdicts`): the chance of any false verdict in the family
  stays ≤ 5%.
- Under `replicate:`: anytime-valid confidence sequences, α split over the
  family's rows (`claim_state.py`), read as units arrive; the verdict is the
  one reached when the row was decided.
Below 3 units: too few replicates, whatever the numbers; no pairs: said so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..common.claims import Claim
from ..common.design import Design
from .pairing import CellPair, Index, by_task, selected_pairs
from .stats import ALPHA, WORDS, Paired, family_verdicts, one_sample
from .units import Units, pair_units, unit_kind


@dataclass
class ClaimRow:
    """One claim on one task: its cell pairs, and what the records say."""

    claim: Claim
    metric: str
    task: str
    tags: tuple
    pairs: list[CellPair]
    kind: str = ""
    record_pairs: list = field(default_factory=list)
    units: Units | None = None
    result: Paired | None = None
    verdict: str = WORDS[0]
    stats: dict = field(default_factory=dict)  # p, p_holm, p_tost, p_tost_holm (fixed) or the sequence's state

    @property
    def margin(self) -> float:
        """The margin on Δ's scale (log(1 + m) when relative); NaN without one."""
        c = self.claim
        if c.margin is None:
            return math.nan
        return math.log1p(c.margin) if c.relative else c.margin


def family(design: Design, claims, headline: str) -> list[ClaimRow]:
    """Every (claim, task) row of the sweep's family, with its cell pairs (a claim with none: one row)."""
    rows = []
    for claim in claims:
        metric = claim.metric or headline
        pairs = selected_pairs(design, claim.a, claim.b, claim.where)
        groups = by_task(pairs) or {("—", (), ()): []}
        for (task, tags, _), group in groups.items():
            rows.append(ClaimRow(claim, metric, task, tags, group, unit_kind(design.method, metric)))
    return rows


def evaluate_fixed(rows: list[ClaimRow], index: Index, method: str, alpha: float = ALPHA) -> list[ClaimRow]:
    """Units, intervals and Holm-adjusted verdicts for a fixed grid's family."""
    for row in rows:
        row.record_pairs = index.record_pairs(row.pairs)
        row.units = pair_units(method, row.record_pairs, row.metric, relative=row.claim.relative)
        row.result = one_sample(row.units.d, row.units.a, row.units.b)
    if not rows:
        return rows
    res = [r.result for r in rows]
    mean = [x.diff.mean if x else 0.0 for x in res]
    std = [x.diff.std if x and x.diff.std is not None else math.nan for x in res]
    n = [r.units.n for r in rows]
    got = family_verdicts(mean, std, n, [r.claim.sign for r in rows], [r.margin for r in rows], alpha)
    for i, row in enumerate(rows):
        row.verdict = verdict_text(int(got["code"][i]), row)
        row.stats = {k: _num(got[k][i]) for k in ("p", "p_holm", "p_tost", "p_tost_holm")}
    return rows


def verdict_text(code: int, row: ClaimRow) -> str:
    word = WORDS[code]
    if word == "no pairs ran" and not row.pairs:
        return "no pairs: no cell of arm A (where it applies) has a counterpart with B's values"
    if word == "equivalent":
        return f"equivalent within {row.claim.margin_text()}"
    if word == "too few replicates":
        return f"too few replicates ({row.units.n if row.units else 0} units; 3 needed)"
    return word


def _num(x) -> float | None:
    x = float(np.asarray(x))
    return None if math.isnan(x) else x
