"""`python -m orchestrator report RUN_DIR`: the report of a run folder, built from results.jsonl alone, and the
files it is written as (Markdown, CSV, JSON, HTML).

No Ray: the records and the per-trial files (curves.json, PNGs) beside them are
all it reads. Writing never touches results.jsonl.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

from dipddpm.atomic import atomic_write_text
from dipddpm.errors import ConfigError
from dipddpm.method import ORACLE

from ..common.design import Design
from ..common.metrics import default_metric, is_oracle_metric
from ..common.record import Record
from ..stats.pairing import Index
from .claims_table import claim_rows, claims_table
from .formats import FILES, FORMATS
from .tables import (Section, best_table, cells_of, cells_table, comparisons_table, cost_table, early_stopping_table,
                     effects_table, problems_table, references_table, status_text)
from .text import report_json, report_markdown, rich_table

log = logging.getLogger(__name__)
TERMINAL_TABLES = ("cells", "comparisons", "effects", "best", "early_stopping", "problems", "claims")


@dataclass
class Report:
    run_dir: Path
    records: list[Record]
    sections: list[Section]
    meta: dict
    design: object = None  # the sweep's Design
    _figures: dict | None = None

    def figures(self) -> dict[str, dict[str, tuple[str, bytes | None]]]:
        """method -> {figure name: (caption, PNG)}; drawn once, shared by the HTML page and W&B."""
        if self._figures is None:
            from .figures import section_figures

            self._figures = {s.method: section_figures(s, self.run_dir) for s in self.sections}
        return self._figures


def load_records(run_dir: str | Path) -> list[Record]:
    from ..common.store import ResultsStore

    path = Path(run_dir)
    if not (path / "results.jsonl").is_file():
        raise ConfigError(f"{path}: no results.jsonl here (expected a sweep's run folder, e.g. runs/staged/cpu)")
    records = ResultsStore(path).records()
    if not records:
        raise ConfigError(f"{path / 'results.jsonl'}: no complete records yet (run the sweep first)")
    return records


def build_report(run_dir: str | Path, records: list | None = None, metric: str | None = None,
                 mode: str | None = None, design=None) -> Report:
    """The report of a run folder. `records` (Records or their dicts): default results.jsonl's, the last terminal
    record of each trial (every table, claim and `best` reads that one); `design`: the sweep's (default: the
    sweep.json its last run kept, else one rebuilt from the records)."""
    from ..common import claims as claims_mod
    from ..common import design as design_mod

    run_dir = Path(run_dir).resolve()
    records = load_records(run_dir) if records is None else [_record(r) for r in records]
    if design is None:
        design = design_mod.load(run_dir) or design_mod.from_records(records, claims_mod.load(run_dir))
    records = _one_sweep(records, design, run_dir)
    sections = build_sections(records, design, metric or design.metric or None, mode or design.mode)
    code = records[-1].versions.get("dipddpm_code", "?")
    meta = {"title": f"dipddpm report · {design.name} · {design.profile}", "sweep": design.name,
            "profile": design.profile, "records": len(records), "status": status_text(records),
            "results": str(run_dir / "results.jsonl"), "code": code,
            "generated": datetime.datetime.now().isoformat(timespec="seconds")}
    return Report(run_dir, records, sections, meta, design)


def _record(r) -> Record:
    return r if isinstance(r, Record) else Record.from_dict(r)


def _one_sweep(records: list[Record], design, run_dir: Path) -> list[Record]:
    """The records of the design's sweep and profile; others are counted in a warning, never mixed in."""
    mine = [r for r in records if (r.sweep or design.name) == design.name
            and (r.profile or design.profile) == design.profile and (r.method or design.method) == design.method]
    stale = [r for r in mine if not design.in_design(r)] if design.points else []
    if stale:
        log.warning("%s: %d records of an earlier design of sweep %s (cells it no longer has) are left out of every "
                    "table, claim and best", run_dir / "results.jsonl", len(stale), design.name)
        keep = {id(r) for r in stale}
        mine = [r for r in mine if id(r) not in keep]
    if len(mine) + len(stale) < len(records):
        others: dict[str, int] = {}
        keep = {id(r) for r in mine} | {id(r) for r in stale}
        for r in records:
            if id(r) not in keep:
                label = f"{r.sweep}/{r.profile} ({r.method})"
                others[label] = others.get(label, 0) + 1
        log.warning("%s: %d of %d records belong to other sweeps or profiles (%s); reporting %s/%s only",
                    run_dir / "results.jsonl", len(records) - len(mine) - len(stale), len(records),
                    ", ".join(f"{k}: {v}" for k, v in others.items()), design.name, design.profile)
    if not mine:
        raise ConfigError(f"{run_dir / 'results.jsonl'}: no records of sweep {design.name} ({design.profile}) here")
    return mine


def headline_for(method: str, metric: str | None) -> str:
    from dipddpm.methods import check_metric_name

    name = check_metric_name(metric, method, "--metric") if metric else default_metric(method)
    if is_oracle_metric(name):
        raise ConfigError(f"--metric: {name} is an {ORACLE} figure (it needs the clean image); "
                          f"choose one reachable without ground truth, e.g. {default_metric(method)}")
    return name


def build_section(records: list[Record], design: Design, metric: str | None = None, mode: str = "max") -> Section:
    from dipddpm.methods import get

    method = design.method
    headline = headline_for(method, metric)
    index = Index(records, design)
    cells = cells_of(records, design, headline, mode)
    own = [r for r in records if not r.fault]  # a trial the orchestrator failed is no loss of its arm
    rows = claim_rows(design, Index(own, design), headline, own)
    tables = [claims_table(rows, design)] if design.claims else []
    tables += [cells_table(cells, method, headline), comparisons_table(index, method),
               effects_table(index, method, headline), best_table(cells, method, headline, mode)]
    if get(method).report.figure == "stage_curves":  # a method with an early-stopping point per fit
        tables.append(early_stopping_table(cells, method))
    tables += [cost_table(cells, method, headline), references_table(records, method), problems_table(records)]
    return Section(method, headline, records, cells, index, tables, design, rows)


def build_sections(records: list[Record], design: Design, metric: str | None = None,
                   mode: str = "max") -> list[Section]:
    from dipddpm.methods import names

    methods = list(dict.fromkeys(r.method for r in records))
    unknown = [m for m in methods if m not in names()]
    if unknown:
        raise ConfigError(f"results.jsonl: method {unknown[0]!r} is not one of {' | '.join(names())}")
    mine = [r for r in records if r.method == design.method]
    return [build_section(mine, design, metric, mode)] if mine else []


def link_root(report: Report, out_dir: Path | None) -> str:
    """The run folder as the page in `out_dir` links to it ('' beside it)."""
    import os

    if out_dir is None:
        return ""
    rel = os.path.relpath(report.run_dir, Path(out_dir).resolve())
    return "" if rel == "." else rel.rstrip("/") + "/"


def render(report: Report, fmt: str, out_dir: Path | None = None) -> str:
    if fmt == "markdown":
        from .summary import summary_markdown

        return report_markdown(report.sections, report.meta, summary_markdown(report.sections))
    if fmt == "csv":
        from .text import results_csv

        return results_csv(report.records, report.design)
    if fmt == "curves":
        from .text import curves_csv

        return curves_csv(report.run_dir, report.records)
    if fmt == "json":
        return report_json(report.sections, report.meta)
    if fmt == "html":
        from .html import report_html

        return report_html(report.sections, report.meta, report.run_dir, report.figures(), link_root(report, out_dir))
    raise ConfigError(f"--format: expected one of {' | '.join(FORMATS)}, got {fmt!r}")


def print_tables(report: Report, console, names: tuple[str, ...] = TERMINAL_TABLES) -> None:
    """The named tables, in the order named (a sweep ends with its claims' verdicts)."""
    from .summary import summary_rich

    for s in report.sections:
        by_name = {t.name: t for t in s.tables}
        for name in names:
            tab = by_name.get(name)
            if tab is not None and (tab.rows or tab.name != "problems"):
                console.print(rich_table(tab, console.width))
    if report.sections:
        console.print(summary_rich(report.sections))  # last: a terminal shows the end of what was printed


def write_files(report: Report, out_dir: Path, formats=("markdown", "csv", "curves", "json", "html")) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out_dir / FILES[fmt]
        atomic_write_text(path, render(report, fmt, out_dir))
        written.append(path)
    return written
