"""Matching trials "with the other axes held fixed": a join of the records on the sweep's design.

Pairs are found among the design's cells first (`common/design.py`: each cell
with a change applied, matched on the grid axes against the sweep's own base),
once per comparison, then joined to the records by (cell key, seed): the cost
does not grow with the number of records beyond one dictionary lookup each.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..common.design import Design, Point, norm
from ..common.record import Record


def same(a, b) -> bool:
    return norm(a) == norm(b)


@dataclass(frozen=True)
class CellPair:
    """Arm A's cell, arm B's cell, and the grid keys of the anchor cell also returned to the base to find it."""

    a: Point
    b: Point
    also: tuple[str, ...] = ()

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.a.tags + self.b.tags))

    @property
    def task(self) -> str:
        return self.a.task if self.a.task == self.b.task else f"{self.a.task} vs {self.b.task}"


@dataclass(frozen=True)
class Match:
    record: Record
    also_moved: tuple[str, ...]


class Index:
    """The records of one run joined to its design: cell key -> seed -> record."""

    def __init__(self, records: list[Record], design: Design):
        self.design = design
        self.records = records
        self.cells: dict[str, dict[int, Record]] = {}
        for r in records:
            self.cells.setdefault(r.cell_key, {})[r.seed] = r

    def at(self, cell_key: str) -> dict[int, Record]:
        return self.cells.get(cell_key, {})

    def record_pairs(self, pairs: list[CellPair]) -> list[tuple[Record, Record]]:
        """(A record, B record) of every seed both cells of each pair ran, each pair of trials once."""
        out, seen = [], set()
        for cp in pairs:
            at_b = self.at(cp.b.cell_key)
            for seed, ra in self.at(cp.a.cell_key).items():
                rb = at_b.get(seed)
                if rb is not None and (ra.trial_key, rb.trial_key) not in seen:
                    seen.add((ra.trial_key, rb.trial_key))
                    out.append((ra, rb))
        return out

    def counterpart(self, record: Record, changes: dict) -> Match | None:
        """The record of `record`'s trial with `changes` applied (same seed); None when the sweep has none."""
        p = self.design.point(record.cell_key)
        if p is None:
            return None
        found = self.design.counterpart(p, changes)
        if found is None:
            return None
        q, also = found
        other = self.at(q.cell_key).get(record.seed)
        return Match(other, also) if other is not None else None


# ---------------------------------------------------------------- cell pairs of a design

def anchored_pairs(design: Design, axis: str, value_a, value_b, anchor: str = "b") -> list[CellPair]:
    """Cells with axis = value_a against their counterpart with value_b (or the other way round from the
    anchor arm's cells); value_a == value_b pairs each cell with itself (a metric of the same trial)."""
    if same(value_a, value_b):
        return [CellPair(p, p) for p in design.points if same(design.value(p, axis), value_a)]
    mine, other = (value_a, value_b) if anchor == "a" else (value_b, value_a)
    out, seen = [], set()
    for p in design.points:
        if not same(design.value(p, axis), mine) or p.cell_key in seen:
            continue
        seen.add(p.cell_key)
        found = design.counterpart(p, {axis: other})
        if found is not None:
            q, also = found
            out.append(CellPair(p, q, also) if anchor == "a" else CellPair(q, p, also))
    return _distinct(out)


def selected_pairs(design: Design, a: dict, b: dict, where: dict, same_cells: bool = False) -> list[CellPair]:
    """A claim's cell pairs: every cell that `where` and arm A select, with its counterpart under B's values
    (only pairs with every other setting equal: a claim never reads a pair that also moved other keys);
    `same_cells`: B may be A's own cell (a claim reading one trial through two metrics)."""
    out, seen = [], set()
    for p in design.points:
        if p.cell_key in seen or not design.selects(p, where) or not design.selects(p, a):
            continue
        seen.add(p.cell_key)
        found = design.counterpart(p, b, allow_self=same_cells)
        if found is not None and not found[1]:
            out.append(CellPair(p, found[0]))
    return _distinct(out)


def _distinct(pairs: list[CellPair]) -> list[CellPair]:
    seen, out = set(), []
    for cp in pairs:
        key = (cp.a.cell_key, cp.b.cell_key, cp.also)
        if key not in seen:
            seen.add(key)
            out.append(cp)
    return out


def by_task(pairs: list[CellPair]) -> dict[tuple, list[CellPair]]:
    """Pairs grouped by (the arms' tasks, ORACLE/FLOOR tags, keys also moved): rows never pool tasks."""
    groups: dict[tuple, list[CellPair]] = {}
    for cp in pairs:
        groups.setdefault((cp.task, cp.tags, cp.also), []).append(cp)
    return groups
