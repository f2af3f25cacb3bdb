"""Testing the sweep's claims (`orchestrator.common.claims`) on the pairs it ran.

Each trial of arm A (that `where` admits) is paired with the trial the sweep
ran with B's values instead and every other setting the same (seed, image,
other axes). The verdict reads the 95% interval of the paired difference
Δ = A − B: entirely on the expected side: supported; entirely on the other
side: contradicted; across zero (or n < 2): not distinguishable at this n.
"""

from __future__ import annotations

from ..common.claims import Claim
from .pairing import Index, flatten, paired_values, same
from .stats import Paired, paired

SUPPORTED, CONTRADICTED, UNDECIDED = "supported", "contradicted", "not distinguishable at this n"


def _selected(record: dict, selector: dict) -> bool:
    flat, cell = flatten(record["config"]), record.get("cell") or {}
    return all(same(flat.get(k) if flat.get(k) is not None else cell.get(k), v) for k, v in selector.items())


def claim_pairs(claim: Claim, records: list[dict], index: Index) -> list[tuple[dict, dict]]:
    """(A record, B record) for every ok trial of arm A that `where` admits and that has a B counterpart."""
    out, seen = [], set()
    for r in records:
        if r.get("status") != "ok" or not _selected(r, claim.where) or not _selected(r, claim.a):
            continue
        match = index.counterpart(r, claim.b)
        if match is None or match.also_moved or match.record.get("status") != "ok" or match.record is r:
            continue
        if (r["trial_key"], match.record["trial_key"]) not in seen:
            seen.add((r["trial_key"], match.record["trial_key"]))
            out.append((r, match.record))
    return out


def verdict(res: Paired | None, expect: str) -> str:
    if res is None or res.diff.half is None:
        return UNDECIDED
    low, high = res.diff.low, res.diff.high
    if low > 0 or high < 0:
        return SUPPORTED if (low > 0) == (expect == "greater") else CONTRADICTED
    return UNDECIDED


def evaluate(claim: Claim, records: list[dict], index: Index, headline: str) -> dict:
    metric = claim.metric or headline
    pairs = claim_pairs(claim, records, index)
    xs, ys = [], []
    for ra, rb in pairs:
        a, b = paired_values(ra, rb, metric, metric)
        xs += a
        ys += b
    res = paired(xs, ys) if xs else None
    return {"claim": claim, "metric": metric, "pairs": pairs, "result": res, "verdict": verdict(res, claim.expect)}
