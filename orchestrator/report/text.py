"""The report as text: rich tables for the terminal, Markdown, JSON, flat rows (W&B Tables, DataFrames), and
the tidy CSVs of a run (results.csv: one row per trial × test image; curves.csv: one row per point of a curve).

Columns of the results table, in this order:
- ids: sweep, profile, trial_key, cell_key, cell (its label), seed, image, status, error, wandb_run;
- flags: oracle (targets from the clean image), floor (an unconditional sample), in_design (False: a record
  of an earlier design of the sweep, which no table reads);
- the grid cell's axes, `cell.<axis>` (the cell's value, or the sweep's base where the cell is silent);
- the image's metrics (psnr, ssim, psnr_es, ...);
- trial-level figures, `trial.<metric>` (the trial's own value, the same on each of its image rows);
- the configuration, `config.<dotted key>` (a section a trial does not use is left empty, never a column
  of its own beside its fields).
Lists read as text ("30, 25, 20"), not JSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from dipddpm.method import FLOOR, ORACLE

from ..common.design import Design, flatten
from ..common.labels import cell_text, safe_text
from ..common.metrics import trial_level
from ..common.record import Record
from ..stats.intervals import Estimate
from .tables import Tab


P_COLUMNS = ("p", "p (Holm)", "q (BH)", "equiv. p (Holm)", "p (anytime)")


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
    return safe_text(str(value))


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


def md_text(text: str) -> str:
    """A string as Markdown shows it literally: HTML escaped (a claim's `<script>` is text, not markup),
    reordering characters made visible, one line."""
    import html

    return html.escape(safe_text(text), quote=False).replace("\n", " ")


def _md_cell(text: str) -> str:
    return md_text(text).replace("|", "\\|")


def markdown_table(tab: Tab) -> str:
    lines = [f"### {md_text(tab.title)}", ""]
    if not tab.rows:
        return "\n".join(lines + ["(none)", ""])
    lines.append("| " + " | ".join(_md_cell(c) for c in tab.columns) + " |")
    lines.append("|" + "|".join("---" for _ in tab.columns) + "|")
    for row in tab.rows:
        lines.append("| " + " | ".join(_md_cell(fmt(v, c)) for v, c in zip(row, tab.columns)) + " |")
    if tab.note:
        lines += ["", f"_{md_text(tab.note)}_"]
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


def report_json(sections: list, meta: dict) -> str:
    body = {"meta": meta, "sections": []}
    for s in sections:
        tables = {t.name: {"title": t.title, "note": t.note, "columns": flat_columns(t), "rows": _json_safe(flat_rows(t))}
                  for t in s.tables}
        body["sections"].append({"method": s.method, "headline": s.headline, "tables": tables})
    return json.dumps(body, indent=1, allow_nan=False, default=str)


def _json_safe(rows: list[list]) -> list[list]:
    return [[None if isinstance(v, float) and not math.isfinite(v) else v for v in row] for row in rows]


def report_markdown(sections: list, meta: dict, head: str = "") -> str:
    """The report as Markdown; `head`: what comes before the tables (the summary)."""
    out = [f"# {meta['title']}", "", _meta_line(meta), "", head]
    for s in sections:
        out += [f"## {s.method} · ranked by {s.headline}", ""]
        out += [markdown_table(t) for t in s.tables]
    return "\n".join(out)


def _meta_line(meta: dict) -> str:
    return (f"{meta['records']} records ({meta['status']}) · profile {meta['profile']} · "
            f"from `{meta['results']}` · code {meta.get('code', '?')} · generated {meta['generated']}")


# ---------------------------------------------------------------- tidy tables of a run

IDS = ("sweep", "profile", "trial_key", "cell_key", "cell", "seed", "image", "status", "error", "wandb_run",
       "oracle", "floor", "in_design")


def readable(v):
    if isinstance(v, (list, tuple)):
        return ", ".join(str(readable(x)) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return v


def result_rows(records: list[Record], design: Design | None) -> list[dict]:
    """One dict per (trial, test image); a trial with no image values (failed) gets one row, image empty."""
    axes = design.axes if design is not None else tuple(dict.fromkeys(k for r in records for k in r.cell))
    rows = []
    for r in records:
        cfg = flatten(r.config)
        point = design.point(r.cell_key) if design is not None else None
        tags = r.tags
        ids = {"sweep": r.sweep, "profile": r.profile, "trial_key": r.trial_key, "cell_key": r.cell_key,
               "cell": cell_text(r.cell), "seed": r.seed, "status": r.status, "error": r.error,
               "wandb_run": r.extra.get("wandb_run"), "oracle": ORACLE in tags, "floor": FLOOR in tags,
               "in_design": design.in_design(r) if design is not None and design.points else True}
        cell = {f"cell.{a}": readable(design.value(point, a) if point is not None else r.cell.get(a)) for a in axes}
        trial = {f"trial.{k}": readable(v) for k, v in r.metrics.items() if trial_level(k) or not r.per_image}
        config = {f"config.{k}": readable(v) for k, v in cfg.items() if v is not None}
        for image, m in (r.per_image or {None: {}}).items():
            per = {k: readable(v) for k, v in m.items() if not (trial_level(k) and f"trial.{k}" in trial)}
            rows.append(ids | {"image": image} | cell | per | trial | config)
    return rows


def result_columns(rows: list[dict]) -> list[str]:
    """The results table's columns in their order: ids, cell axes, image metrics, trial figures, config."""
    seen = dict.fromkeys(IDS)
    for row in rows:
        seen.update(dict.fromkeys(k for k in row if k.startswith("cell.")))
    for row in rows:
        seen.update(dict.fromkeys(k for k in row if not k.startswith(("cell.", "trial.", "config."))))
    for prefix in ("trial.", "config."):
        for row in rows:
            seen.update(dict.fromkeys(k for k in row if k.startswith(prefix)))
    return list(seen)


def to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns or result_columns(rows), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def results_csv(records: list[Record], design: Design | None) -> str:
    return to_csv(result_rows(records, design))


CURVE_COLUMNS = ["trial_key", "image", "iter", "metric", "value"]


def curve_rows(run_dir: Path, records: list[Record]):
    """(trial_key, image, iter, metric, value) from each trial's curves.json: PSNR against the clean image
    and ES-WMV's variance at every iteration, the evaluations (SSIM, PSNR against the target, loss) at
    theirs, a DDPM's training loss at its 1/20ths."""
    for r in records:
        path = run_dir / "trials" / r.trial_key / "curves.json"
        try:
            curves = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        key = r.trial_key
        for image, c in curves.items():
            if not isinstance(c, dict):
                continue
            for metric in ("psnr", "wmv_var"):
                for i, v in enumerate(c.get(metric) or []):
                    if v is not None:
                        yield {"trial_key": key, "image": image, "iter": i + 1, "metric": metric, "value": v}
            ev = c.get("eval") or {}
            for metric, vals in ev.items():
                if metric in ("iter", "psnr", "wmv_var"):
                    continue
                for it, v in zip(ev.get("iter") or [], vals or []):
                    if v is not None:
                        yield {"trial_key": key, "image": image, "iter": it, "metric": metric, "value": v}
            loss = c.get("train_loss") or []
            steps = r.metrics.get("train_steps") or len(loss)
            for i, v in enumerate(loss):  # one mean per 1/20 of the run, at the optimizer step it ends on
                yield {"trial_key": key, "image": image, "iter": round((i + 1) * steps / len(loss)),
                       "metric": "train_loss", "value": v}


def curves_csv(run_dir: Path, records: list[Record]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(curve_rows(run_dir, records))
    return buf.getvalue()
