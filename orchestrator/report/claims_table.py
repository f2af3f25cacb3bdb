"""The claims table: each hypothesis the sweep states and its family-wise verdict, from the rows an evaluator
filled (`stats.verdicts`), on fixed grids and adaptive sweeps alike. Each row names its estimand; each table
names the photos its verdicts speak of."""

from __future__ import annotations

import math

from ..common.design import Design
from ..common.labels import metric_title, short, tag_text
from ..stats import estimands
from ..stats.intervals import Estimate
from ..stats.pairing import Index
from ..stats.units import problem_text
from ..stats.verdicts import ALPHA, ClaimRow, ClaimTracker, evaluate_fixed, family
from .tables import Tab, fired_pair


def claim_rows(design: Design, index: Index, headline: str, records: list) -> list[ClaimRow]:
    """Fixed grid: rows with Holm-adjusted verdicts of one read. Under replicate: the tracker's rows, from every
    trial's last terminal record read seed by seed (as the live sweep read them)."""
    if not design.claims:
        return []
    if design.replicate:
        return ClaimTracker(design, headline, costs=cell_costs(records), parallel=design.parallel or 1) \
            .replay(records).rows
    return evaluate_fixed(family(design, design.claims, headline), index, design.method,
                          costs=cell_costs(records), parallel=design.parallel or 1)


def cell_costs(records: list) -> dict[str, float]:
    """cell key -> the mean measured wall seconds of one of its trials (a projection's cost per seed)."""
    sums: dict[str, list[float]] = {}
    for r in records:
        wall = r.metrics.get("wall_s")
        if isinstance(wall, (int, float)) and not isinstance(wall, bool) and math.isfinite(wall):
            sums.setdefault(r.cell_key, []).append(float(wall))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def _arm(selector: dict, metric: str | None = None) -> str:
    text = ", ".join(f"{k.split('.')[-1]}={short(v)}" for k, v in selector.items())
    return f"{text} ({metric})" if metric else text


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


def _expected(row: ClaimRow) -> str:
    return f"A {'>' if row.claim.expect == 'greater' else '<'} B"


def _diff(row: ClaimRow, est: Estimate | None):
    return _percent(est) if row.claim.relative else est


def _b(row: ClaimRow) -> str:
    return _arm(row.claim.b, row.claim.b_metric)


FIXED_COLS = ["claim", "task", "metric", "estimand", "unit", "A", "B", "trial pairs", "n", "mean A", "mean B",
              ("delta", "Δ = A − B"), "p", ("p_adj", "p (Holm)"), "margin", ("p_equiv_adj", "equiv. p (Holm)"),
              ("to_units", "to decide (units)"), ("to_min", "to decide (min)"), "expected", "verdict",
              "diverged/failed", "ES fired (A vs B)"]
SEQ_COLS = ["claim", "task", "metric", "estimand", "unit", "A", "B", ("decided", "decided at"),
            ("delta_decided", "Δ at decision †"), "trials", "n", ("delta", "Δ now"), "mean A", "mean B",
            ("p", "p (anytime)"), ("p_adj", "p (Holm)"), "margin", ("p_equiv_adj", "equiv. p (Holm)"),
            ("to_units", "to decide (units)"), ("to_min", "to decide (min)"), "expected", "verdict",
            "diverged/failed"]


def claims_table(rows: list[ClaimRow], design: Design) -> Tab:
    if design.replicate:
        return _sequential_table(rows, design)
    tab = Tab("claims", "Claims: each hypothesis the sweep states, tested on the pairs it ran (one family)",
              FIXED_COLS, terminal=("claim", "task", "metric", "estimand", "n", "Δ = A − B", "p (Holm)", "verdict",
                                    "ES fired (A vs B)"))
    for row in rows:
        tab.rows.append([_label(row), row.task, metric_title(row.metric), row.claim.estimand, row.kind,
                         _arm(row.claim.a), _b(row), row.trials, row.n, row.mean_a, row.mean_b,
                         _diff(row, row.diff), row.p.get("p"), row.p.get("p_adj"), row.claim.margin_text(),
                         row.p.get("p_equiv_adj"), units_text(row.projection, False),
                         minutes_text(row.projection), _expected(row), row.verdict, problem_text(row.problems),
                         fired_pair(row.metric, row.record_pairs)])
    tab.note = (f"One family, read once: Holm adjusts every claim's test of Δ = 0 (and of |Δ| ≥ margin where a claim "
                f"has one) together{_weights_note(rows)}, so the chance of any false verdict stays ≤ {ALPHA:g} for one read of a grid "
                "planned in advance; reading the grid again after adding seeds spends that chance again (a sweep that "
                "grows should say replicate:, whose verdicts hold at every look). Δ's 95% interval is unadjusted. "
                "to decide: the units (and minutes, at the sweep's measured trial cost and parallelism) that "
                "adaptive replication from here would need at the current estimate ('not within +N': none within N more). "
                f"n counts independent units (the unit column); below {estimands.MIN_UNITS} there is no verdict. "
                + _estimand_note(rows, sequential=False) + _photos_note(rows)
                + " A relative margin reads Δ as a ratio A/B − 1.")
    return tab


def _sequential_table(rows: list[ClaimRow], design: Design) -> Tab:
    tab = Tab("claims", "Claims, decided as units arrived (anytime-valid, one family)", SEQ_COLS,
              terminal=("claim", "estimand", "decided at", "Δ at decision †", "n", "Δ now", "p (Holm)",
                        "to decide (units)", "to decide (min)", "verdict"))
    for row in rows:
        dec, proj = row.decision, row.projection
        at_decision = None
        if dec is not None:
            at_decision = _diff(row, Estimate(dec.estimate, dec.low, dec.high, dec.n))
        decided = f"{dec.n} units, {dec.trials} trials" if dec else "—"
        tab.rows.append([_label(row), row.task, metric_title(row.metric), row.claim.estimand, row.kind,
                         _arm(row.claim.a), _b(row), decided, at_decision, row.trials, row.n, _diff(row, row.diff),
                         row.mean_a, row.mean_b, row.p.get("p"), row.p.get("p_adj"), row.claim.margin_text(),
                         row.p.get("p_equiv_adj"), units_text(proj), minutes_text(proj), _expected(row),
                         row.verdict, problem_text(row.problems)])
    hyps = sum(1 for r in rows if r.pairs) + sum(1 for r in rows if r.pairs and math.isfinite(r.margin))
    tab.note = ("Every row's p-value is anytime-valid (the running minimum of 1/E over every look, valid however "
                f"often it was read); Holm over the family's {hyps} hypotheses{_weights_note(rows)} decides (a claim "
                "not read yet is in it at p = 1), so the chance of any false "
                f"verdict stays ≤ {ALPHA:g} whenever the sweep stops, and a decision is final (α freed by a decided "
                "claim goes to the rest). † Δ at decision is read at a stopping time: a claim stops when its evidence "
                "is strong, so there |Δ| tends to exceed the truth; Δ now is the estimate from every unit read since. "
                "Δ's interval is the confidence sequence at α over the hypotheses, per side. to decide: more units "
                "(and minutes, at the sweep's measured trial cost and parallelism) that would decide an undecided "
                "claim if its units go on as they went (the median first-passage of its running test; 'not within +N': "
                "no decision within N more units at its current win rate); beyond max_seeds the claim stopped taking "
                "seeds. " + _estimand_note(rows, sequential=True)
                + _photos_note(rows))
    return tab


def units_text(proj, adaptive: bool = True) -> str:
    if proj is None:
        return "—"
    if not math.isfinite(proj.units):  # at its current win rate no number of units looked at decides it
        return f"not within +{proj.within:.0f}" if math.isfinite(proj.within) else "not within reach"
    more = f"+{proj.units:.0f} (+{proj.seeds:.0f} seeds)"
    return more + (" beyond max_seeds" if proj.futile and adaptive else "")


def minutes_text(proj) -> str:
    if proj is None or proj.minutes is None or not math.isfinite(proj.units):
        return "—"
    return f"~{proj.minutes:.0f}" if proj.minutes >= 1 else "<1"


def _estimand_note(rows: list[ClaimRow], sequential: bool) -> str:
    """What each estimand in the table estimates and assumes, and below which n it cannot decide here."""
    used = list(dict.fromkeys(r.claim.estimand for r in rows))
    parts = []
    for name in used:
        e = estimands.get(name)
        text = f"{name}: {e.says}; assumes {e.assumes}"
        if name == "median":
            floors = {}
            for r in rows:
                if r.pairs and r.claim.estimand == name:
                    floors.setdefault(r.claim.priority == 1, estimands.fewest_units(r.level_side, sequential))
            if floors:
                said = (f"{floors[True]} units for the questions (priority 1), {floors[False]} for the rest"
                        if len(floors) == 2 else f"{next(iter(floors.values()))} units")
                text += f"; at this family's level it cannot decide below {said}"
        parts.append(text)
    return "Estimands — " + " · ".join(parts) + "."


def _weights_note(rows: list[ClaimRow]) -> str:
    priorities = {r.claim.priority == 1 for r in rows if r.pairs}
    return " (weighted: the questions, priority 1, hold half of α and the rest the other half)" \
        if len(priorities) == 2 else ""


def _photos_note(rows: list[ClaimRow]) -> str:
    photos = list(dict.fromkeys(r.photos for r in rows if r.pairs))
    return (" Test images are fixed effects: these verdicts speak of these photos only (" + "; ".join(photos) + ").") \
        if photos else ""
