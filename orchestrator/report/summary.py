"""The answer first: a short summary that heads the HTML and Markdown reports and closes the terminal's.

Three parts, each a few lines:
- each claim's verdict in one line (Δ with its interval, n units);
- per task, the best configuration a user can reach (no ORACLE, no FLOOR) against the classical references
  scored on the same observations;
- what the sweep cost: trials and their statuses, attributed compute, wall time.
"""

from __future__ import annotations

import math

from .tables import Tab
from ..common.labels import safe_text
from .text import fmt, md_text


def _rows(tab: Tab | None) -> list[dict]:
    """A table's rows by column key (never by its display titles)."""
    return tab.dicts() if tab else []


def summary_lines(sections) -> dict[str, list[str]]:
    """{'claims': [...], 'best': [...], 'cost': [...]} as plain sentences."""
    out: dict[str, list[str]] = {"claims": [], "best": [], "cost": []}
    for s in sections:
        tabs = {t.name: t for t in s.tables}
        claims = tabs.get("claims")
        for c in _rows(claims):
            decided = c.get("decided") not in (None, "—")
            # the p that carries the verdict: the equivalence test's for "equivalent", else the test of Δ = 0
            key = "p_equiv_adj" if str(c["verdict"]).startswith("equivalent") else "p_adj"
            title = claims.columns[claims.keys.index(key)]
            padj = f", {title} {fmt(c[key], title)}" if c.get(key) is not None else ""
            n = f"n = {c['n']} {_unit(c.get('unit'))}"
            delta = f"{c['estimand']} Δ {fmt(c['delta'], 'Δ')}"
            if decided:  # Δ and p are read at the decision; later units do not change it
                delta = f"{c['estimand']} Δ {fmt(c['delta_decided'], 'Δ')} at the decision, {fmt(c['delta'], 'Δ')} now"
                n = f"decided at {c['decided']} ({c['n']} units now)"
            more = ""
            if c.get("to_units") not in (None, "—"):
                minutes = f", {c['to_min']} min" if c.get("to_min") not in (None, "—") else ""
                more = f"; to decide: {c['to_units']}{minutes}"
            out["claims"].append(f"{c['claim']}: {c['verdict']} ({delta}, {n}{padj}{more})")
        command = decide_command(s)
        if command:
            out["claims"].append(command)
        refs = {r["task"]: r for r in _rows(tabs.get("references"))}
        for b in _rows(tabs.get("best")):
            if b["rank"] != 1:
                continue
            ref = refs.get(b["task"], {})
            beside = "; ".join(f"{name} {fmt(ref[key], 'psnr')}" for name, key in
                               (("CBM3D", "psnr_cbm3d"), ("NL-means", "psnr_nlm"), ("TV", "psnr_tv"),
                                ("observation", "psnr_observation"))
                               if ref.get(key) is not None)
            out["best"].append(f"{b['task']}: #{b['#']} {b['grid cell']}, {s.headline} {fmt(b['headline'], s.headline)}"
                               + (f" (beside {beside})" if beside else ""))
        out["cost"].append(_cost(s))
    return out


def decide_command(section) -> str:
    """How to decide what an adaptive sweep left undecided: the max_seeds and hours its projections ask for."""
    rule = section.design.replicate
    rows = [r for r in section.claim_rows if r.projection is not None and math.isfinite(r.projection.units)]
    if not rule or not rows:
        return ""
    seeds = max(_seeds_read(r) + r.projection.seeds for r in rows)
    minutes = sum(r.projection.minutes or 0.0 for r in rows)
    hours = max(0.05, math.ceil(minutes / 60 / 0.05) * 0.05)
    return (f"to decide the {len(rows)} undecided claims that more seeds can decide: run the sweep again with "
            f"--max-seeds {max(int(seeds), rule.get('max_seeds') or 0)} --budget-hours {hours:.2f} "
            f"(about {minutes:.0f} min at this sweep's trial cost and parallelism)")


def _seeds_read(row) -> int:
    """Seeds a sequential row has read (its units over its units per seed)."""
    cells = {c for cp in row.pairs for c in (cp.a.cell_key, cp.b.cell_key)}
    return row.trials // max(len(cells), 1)


def _unit(kind) -> str:
    return {"(seed, image)": "(seed, image) units", "training seed": "training seeds"}.get(kind, "units")


def _cost(s) -> str:
    recs = s.records
    statuses: dict[str, int] = {}
    for r in recs:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    total = lambda k: math.fsum(v for r in recs for v in [r.metrics.get(k)]  # noqa: E731
                                if isinstance(v, (int, float)) and math.isfinite(v))
    return (f"{len(recs)} trials ({', '.join(f'{n} {k}' for k, n in sorted(statuses.items()))}) in "
            f"{len(s.cells)} grid cells; {total('time_s') / 3600:.2f} h of attributed compute, "
            f"{total('wall_s') / 3600:.2f} h of trial wall time")


TITLES = {"claims": "Claims", "best": "Best usable configuration per task", "cost": "Cost"}


def summary_markdown(sections) -> str:
    parts = ["## Summary", ""]
    for key, lines in summary_lines(sections).items():
        if lines:
            parts += [f"**{TITLES[key]}**", ""] + [f"- {md_text(line)}" for line in lines] + [""]
    return "\n".join(parts)


def summary_rich(sections):
    from rich.panel import Panel
    from rich.text import Text

    text = Text()
    for key, lines in summary_lines(sections).items():
        if lines:
            text.append(f"{TITLES[key]}\n", style="bold")
            for line in lines:
                text.append(f"  • {safe_text(line)}\n")
    return Panel(text, title="Summary", expand=False)
