"""Render report tables: rich (terminal), Markdown, JSON, CSV, and flat rows for W&B Tables."""

from __future__ import annotations

import json
import math

from .analysis import Section, Tab
from .stats import Estimate


P_COLUMNS = ("p", "p (Holm)", "q (BH)", "TOST p (Holm)", "p (anytime)", "p (×K)", "equiv. p (×K)")


def _digits(column: str) -> int:
    col = column.lower()
    if "ssim" in col:
        return 3
    if "time" in col or "_s " in col or col.endswith("_s") or "ms_per" in col or "iter" in col:
        return 1
    return 2


def fmt(value, column: str = "") -> str:
    d = _digits(column)
    if value is None:
        return "—"
    if isinstance(value, Estimate):
        return fmt_estimate(value, d, "+" if column.startswith("Δ") else "")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if column in P_COLUMNS:
            return "<0.001" if value < 1e-3 else f"{value:.3f}"
        return f"{value:.{d}f}" if math.isfinite(value) else str(value)
    return str(value)


def fmt_estimate(est: Estimate, d: int, sign: str = "") -> str:
    """mean ± half; mean [low, high] when the interval meets the metric's range; below 3 units the values."""
    text = f"{est.mean:{sign}.{d}f}"
    if est.low is None:
        if est.n == 1:
            return f"{text} (n=1)"
        if est.values:
            return f"{text} ({min(est.values):.{d}f}–{max(est.values):.{d}f}, n={est.n})"
        return f"{text} (n={est.n}, no interval)"
    if est.centred:
        return f"{text} ± {est.half:.{d}f}"
    return f"{text} [{est.low:{sign}.{d}f}, {est.high:{sign}.{d}f}]"


def rich_table(tab: Tab, width: int | None = None):
    """The table for a terminal of `width` columns: all columns, or the table's terminal set when the
    whole table would not fit (the files keep every column)."""
    from rich.table import Table
    from rich.text import Text

    keep = list(range(len(tab.columns)))
    if tab.terminal and width is not None and _natural_width(tab) > width:
        keep = [i for i, c in enumerate(tab.columns) if c in tab.terminal]
    t = Table(title=tab.title, caption=tab.note or None, caption_justify="left")
    for i in keep:
        col = tab.columns[i]
        t.add_column(col, justify="left" if col in ("grid cell", "comparison", "axis", "error", "claim", "A", "B",
                                                    "verdict") else "right",
                     overflow="fold", min_width=30 if col == "claim" else None)
    for row in tab.rows:  # Text: a cell such as "images=[astronaut,coffee]" is not rich markup
        t.add_row(*(Text(fmt(row[i], tab.columns[i])) for i in keep))
    return t


def _natural_width(tab: Tab) -> int:
    """Characters a row needs unfolded: the widest cell of each column, plus borders."""
    widths = [max([len(c)] + [len(fmt(r[i], c)) for r in tab.rows]) for i, c in enumerate(tab.columns)]
    return sum(widths) + 3 * len(widths) + 1


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(tab: Tab) -> str:
    lines = [f"### {tab.title}", ""]
    if not tab.rows:
        return "\n".join(lines + ["(none)", ""])
    lines.append("| " + " | ".join(_md_cell(c) for c in tab.columns) + " |")
    lines.append("|" + "|".join("---" for _ in tab.columns) + "|")
    for row in tab.rows:
        lines.append("| " + " | ".join(_md_cell(fmt(v, c)) for v, c in zip(row, tab.columns)) + " |")
    if tab.note:
        lines += ["", f"_{tab.note}_"]
    return "\n".join(lines + [""])


def flat_columns(tab: Tab) -> list[str]:
    """Column names with each interval column split into value, its 95% interval's ends and n."""
    out = []
    for i, col in enumerate(tab.columns):
        if any(isinstance(row[i], Estimate) for row in tab.rows):
            out += [col, f"{col} low", f"{col} high", f"{col} n"]
        else:
            out.append(col)
    return out


def flat_rows(tab: Tab) -> list[list]:
    """Rows of plain numbers and strings (None for missing), matching flat_columns."""
    split = [any(isinstance(row[i], Estimate) for row in tab.rows) for i in range(len(tab.columns))]
    out = []
    for row in tab.rows:
        flat = []
        for v, is_est in zip(row, split):
            if is_est:
                flat += [v.mean, v.low, v.high, v.n] if isinstance(v, Estimate) else [v, None, None, None]
            else:
                flat.append(v)
        out.append(flat)
    return out


def report_json(sections: list[Section], meta: dict) -> str:
    body = {"meta": meta, "sections": []}
    for s in sections:
        tables = {t.name: {"title": t.title, "note": t.note, "columns": flat_columns(t), "rows": _json_safe(flat_rows(t))}
                  for t in s.tables}
        body["sections"].append({"method": s.method, "headline": s.headline, "tables": tables})
    return json.dumps(body, indent=1, allow_nan=False, default=str)


def _json_safe(rows: list[list]) -> list[list]:
    return [[None if isinstance(v, float) and not math.isfinite(v) else v for v in row] for row in rows]


def report_markdown(sections: list[Section], meta: dict, head: str = "") -> str:
    """The report as Markdown; `head`: what comes before the tables (the summary)."""
    out = [f"# {meta['title']}", "", _meta_line(meta), "", head]
    for s in sections:
        out += [f"## {s.method} · ranked by {s.headline}", ""]
        out += [markdown_table(t) for t in s.tables]
    return "\n".join(out)


def _meta_line(meta: dict) -> str:
    return (f"{meta['records']} records ({meta['status']}) · profile {meta['profile']} · "
            f"from `{meta['results']}` · code {meta.get('code', '?')} · generated {meta['generated']}")
