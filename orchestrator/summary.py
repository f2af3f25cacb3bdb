"""The final terminal summary: one row per grid cell, mean ± std over seeds."""

from __future__ import annotations

import statistics

from rich.table import Table


def _mean_std(values: list) -> str:
    vals = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.2f}"
    return f"{statistics.mean(vals):.2f} ± {statistics.stdev(vals):.2f}"


def _label(record: dict) -> str:
    cell = record.get("cell") or {}
    label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in cell.items()) or "base"
    st = (record["config"].get("staged") or {})
    return label + (" [ORACLE targets]" if st.get("targets") == "clean" else "")


def summary_table(records: list[dict], metric: str, mode: str, title: str) -> Table:
    cells: dict[str, list[dict]] = {}
    for r in records:
        cells.setdefault(r.get("cell_key", r["trial_key"]), []).append(r)
    staged = any(r["method"] == "staged" for r in records)
    extra = ["psnr_peak"] if staged else ["psnr_dip"]
    cols = list(dict.fromkeys([metric, "psnr", "ssim", *extra, "psnr_observation", "psnr_nlm", "time_s"]))
    table = Table(title=title)
    table.add_column("grid cell")
    table.add_column("n", justify="right")
    table.add_column("status")
    for c in cols:
        head = f"{c} [ORACLE]" if c == "psnr_peak" else c
        table.add_column(head + (" ★" if c == metric else ""), justify="right")

    def key(rs):
        ok = [r["metrics"].get(metric) for r in rs if r["status"] == "ok" and r["metrics"].get(metric) is not None]
        m = statistics.mean(ok) if ok else float("-inf") if mode == "max" else float("inf")
        return -m if mode == "max" else m

    for rs in sorted(cells.values(), key=key):
        statuses = sorted({r["status"] for r in rs})
        oks = [r for r in rs if r["status"] != "failed"]
        table.add_row(_label(rs[0]), str(len(rs)), ",".join(statuses),
                      *(_mean_std([r["metrics"].get(c) for r in oks]) for c in cols))
    return table
