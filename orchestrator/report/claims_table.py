"""The claims table: each hypothesis the sweep states and its family-wise verdict, from the rows an evaluator
filled (`stats.verdicts`), on fixed grids and adaptive sweeps alike."""

from __future__ import annotations

import math

from ..common.design import Design
from ..common.labels import metric_title, short, tag_text
from ..stats.intervals import MIN_UNITS, Estimate
from ..stats.pairing import Index
from ..stats.sequential import first_interval_n
from ..stats.units import problem_text
from ..stats.verdicts import ALPHA, ClaimRow, ClaimTracker, evaluate_fixed, family
from .tables import Tab, fired_pair


def claim_rows(design: Design, index: Index, headline: str, history: list) -> list[ClaimRow]:
    """Fixed grid: rows with Holm-adjusted verdicts. Under replicate: the tracker's rows, from the records in
    arrival order (the first terminal record of each trial)."""
    if not design.claims:
        return []
    if design.replicate:
        return ClaimTracker(design, headline).replay(history).rows
    return evaluate_fixed(family(design, design.claims, headline), index, design.method)


def _arm(selector: dict) -> str:
    return ", ".join(f"{k.split('.')[-1]}={short(v)}" for k, v in selector.items())


def _percent(est: Estimate | None) -> str | Estimate | None:
    """A log-ratio estimate shown as a relative difference (exp(Δ) − 1)."""
    if est is None:
        return None
    pct = lambda x: f"{100 * math.expm1(x):+.1f}%"  # noqa: E731
    if est.low is None:
        return pct(est.mean) + f" (n={est.n}, no interval)"
    return f"{pct(est.mean)} [{pct(est.low)}, {pct(est.high)}]"


def _label(row: ClaimRow) -> str:
    """The claim's words with its arms' tags (an ORACLE metric is tagged in the metric column)."""
    return row.claim.text + tag_text(row.tags)


FIXED_COLS = ["claim", "task", "metric", "unit", "A", "B", "trial pairs", "n", "mean A", "mean B",
              ("delta", "Δ = A − B"), "p", ("p_adj", "p (Holm)"), "margin", ("p_equiv_adj", "TOST p (Holm)"),
              "expected", "verdict", "diverged/failed", "ES fired (A vs B)"]
SEQ_COLS = ["claim", "task", "metric", "unit", "A", "B", "trials", "n", "mean A", "mean B", ("delta", "Δ = A − B"),
            ("p", "p (anytime)"), ("p_adj", "p (×K)"), "margin", ("p_equiv_adj", "equiv. p (×K)"),
            ("decided", "decided at"), "expected", "verdict", "diverged/failed"]


def claims_table(rows: list[ClaimRow], design: Design) -> Tab:
    if design.replicate:
        return _sequential_table(rows)
    tab = Tab("claims", "Claims: each hypothesis the sweep states, tested on the pairs it ran (one family)",
              FIXED_COLS, terminal=("claim", "task", "metric", "n", "Δ = A − B", "p", "p (Holm)", "verdict",
                                    "ES fired (A vs B)"))
    for row in rows:
        diff = _percent(row.diff) if row.claim.relative else row.diff
        tab.rows.append([_label(row), row.task, metric_title(row.metric), row.kind, _arm(row.claim.a),
                         _arm(row.claim.b), row.units.trial_pairs if row.units else 0, row.n, row.mean_a,
                         row.mean_b, diff, row.p.get("p"), row.p.get("p_adj"), row.claim.margin_text(),
                         row.p.get("p_equiv_adj"), _expected(row), row.verdict,
                         problem_text(row.problems), fired_pair(row.metric, row.record_pairs)])
    tab.note = ("One family: Holm adjusts every claim's two-sided t-test (and the two one-sided tests against "
                f"±margin where a claim has one) together, so the chance of any false verdict stays ≤ {ALPHA:g}. "
                "Δ's 95% interval is unadjusted. n counts independent units (the unit column); below 3 there is no "
                "verdict. A relative margin reads Δ as a ratio A/B − 1.")
    return tab


def _expected(row: ClaimRow) -> str:
    return f"A {'>' if row.claim.expect == 'greater' else '<'} B"


def _sequential_table(rows: list[ClaimRow]) -> Tab:
    tab = Tab("claims", "Claims, decided sequentially as units arrived (anytime-valid confidence sequences, one "
                        "family)", SEQ_COLS, terminal=("claim", "trials", "n", "Δ = A − B", "p (anytime)", "p (×K)",
                                                       "equiv. p (×K)", "decided at", "verdict"))
    k = max(sum(1 for r in rows if r.pairs), 1)
    first = first_interval_n(ALPHA / k)
    for row in rows:
        dec = row.decision
        est = row.diff
        if dec is not None:
            bounded = math.isfinite(dec.low) and math.isfinite(dec.high)
            est = Estimate(dec.mean, dec.low if bounded else None, dec.high if bounded else None, dec.n)
        diff = _percent(est) if row.claim.relative else est
        decided = f"{dec.n} units, {dec.trials} trials" if dec else f"undecided ({row.n} units)"
        n = dec.n if dec else row.n
        ps = (dec.p if dec else row.p) if row.pairs and n >= MIN_UNITS else {}  # at the decision, else now
        tab.rows.append([_label(row), row.task, metric_title(row.metric), row.kind, _arm(row.claim.a),
                         _arm(row.claim.b), row.trials, row.n, row.mean_a, row.mean_b, diff, ps.get("p"),
                         ps.get("p_adj"), row.claim.margin_text(), ps.get("p_equiv_adj"), decided, _expected(row),
                         row.verdict + (" (sequential)" if dec else ""), problem_text(row.problems)])
    tab.note = (f"Each claim's interval is a confidence sequence at level 1 − {ALPHA:g}/{k} (α split over the family's "
                f"{k} claims), valid at every number of units at once, so reading it after every unit is allowed; "
                "a claim is decided when it excludes 0 (supported / contradicted) or lies inside ±margin "
                f"(equivalent), from {MIN_UNITS} units on, and keeps that verdict; at this level no n below {first} "
                "can carry enough evidence for an interval at all. p (anytime): the anytime-valid p-value of Δ = 0 "
                "(the smallest level whose sequence ever excluded 0), valid however often it was read; p (×K): "
                f"times the family's {k} claims (Bonferroni, the split the verdicts use), so p (×K) ≤ {ALPHA:g} "
                "exactly when the claim is supported or contradicted; equiv. p (×K): the same for Δ outside "
                "±margin. Δ, n, p: at the decision (or now, when undecided); trials: the records of the claim's "
                "cells.")
    return tab
