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
from .text import fmt


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
            decided = "decided" in c and not str(c["decided"]).startswith("undecided")
            # the p that carries the verdict: the equivalence test's for "equivalent", else the test of Δ = 0
            key = "p_equiv_adj" if str(c["verdict"]).startswith("equivalent") else "p_adj"
            title = claims.columns[claims.keys.index(key)]
            padj = f", {title} {fmt(c[key], title)}" if c.get(key) is not None else ""
            n = f"n = {c['n']} {_unit(c.get('unit'))}"
            if decided:  # Δ and p are read at the decision; later units do not change it
                n = f"decided at {c['decided']} ({c['n']} units now)"
            out["claims"].append(f"{c['claim']}: {c['verdict']} (Δ {fmt(c['delta'], 'Δ')}, {n}{padj})")
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
            parts += [f"**{TITLES[key]}**", ""] + [f"- {line}" for line in lines] + [""]
    return "\n".join(parts)


def summary_rich(sections):
    from rich.panel import Panel
    from rich.text import Text

    text = Text()
    for key, lines in summary_lines(sections).items():
        if lines:
            text.append(f"{TITLES[key]}\n", style="bold")
            for line in lines:
                text.append(f"  • {line}\n")
    return Panel(text, title="Summary", expand=False)
