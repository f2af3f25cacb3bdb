"""`python -m orchestrator report RUN_DIR`: tables, Markdown, CSV, JSON and HTML from results.jsonl alone.

No Ray: the records and the per-trial files (curves.json, PNGs) beside them
are all it reads. Writing never touches results.jsonl.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

from dipddpm.errors import ConfigError
from dipddpm.record import atomic_write_text

from .analysis import Section, build_sections, status_text
from .render import report_json, report_markdown, rich_table

log = logging.getLogger(__name__)
FORMATS = ("all", "table", "markdown", "csv", "curves", "json", "html")
FILES = {"markdown": "report.md", "csv": "results.csv", "curves": "curves.csv", "json": "report.json",
         "html": "report.html"}
TERMINAL_TABLES = ("cells", "comparisons", "effects", "best", "early_stopping", "problems", "claims")


@dataclass
class Report:
    run_dir: Path
    records: list[dict]
    sections: list[Section]
    meta: dict
    design: object = None  # the sweep's Design
    _figures: dict | None = None

    def figures(self) -> dict[str, dict[str, tuple[str, bytes | None]]]:
        """method -> {figure name: (caption, PNG)}; drawn once, shared by the HTML page and W&B."""
        if self._figures is None:
            from .plots import section_figures

            self._figures = {s.method: section_figures(s, self.run_dir) for s in self.sections}
        return self._figures


def load_records(run_dir: str | Path) -> list[dict]:
    from ..common.store import ResultsStore

    path = Path(run_dir)
    if not (path / "results.jsonl").is_file():
        raise ConfigError(f"{path}: no results.jsonl here (expected a sweep's run folder, e.g. runs/staged/cpu)")
    records = ResultsStore(path).records()
    if not records:
        raise ConfigError(f"{path / 'results.jsonl'}: no complete records yet (run the sweep first)")
    bad = next((r for r in records if not isinstance(r.get("config"), dict) or "status" not in r), None)
    if bad is not None:
        raise ConfigError(f"{path / 'results.jsonl'}: record {bad.get('trial_key')} has no config or status "
                          "(expected records written by `python -m orchestrator sweep`)")
    return records


def build_report(run_dir: str | Path, records: list[dict] | None = None, metric: str | None = None,
                 mode: str | None = None, design=None, history: list[dict] | None = None) -> Report:
    """The report of a run folder. `design`: the sweep's (default: the sweep.json its last run kept, else
    one rebuilt from the records); `history`: every record in arrival order (default: results.jsonl's), from
    which adaptive sweeps replay their claims' decisions."""
    from ..common import claims as claims_mod
    from ..common import design as design_mod
    from ..common.store import ResultsStore

    run_dir = Path(run_dir).resolve()
    records = load_records(run_dir) if records is None else records
    if design is None:
        design = design_mod.load(run_dir) or design_mod.from_records(records, claims_mod.load(run_dir))
    records = _one_sweep(records, design, run_dir)
    if history is None:
        history = ResultsStore(run_dir).history() if (run_dir / "results.jsonl").is_file() else records
    sections = build_sections(records, design, metric or design.metric or None, mode or design.mode, history)
    code = (records[-1].get("versions") or {}).get("dipddpm_code", "?")
    meta = {"title": f"dipddpm report · {design.name} · {design.profile}", "sweep": design.name,
            "profile": design.profile, "records": len(records), "status": status_text(records),
            "results": str(run_dir / "results.jsonl"), "code": code,
            "generated": datetime.datetime.now().isoformat(timespec="seconds")}
    return Report(run_dir, records, sections, meta, design)


def _one_sweep(records: list[dict], design, run_dir: Path) -> list[dict]:
    """The records of the design's sweep and profile; others are counted in a warning, never mixed in."""
    mine = [r for r in records if r.get("sweep", design.name) == design.name
            and r.get("profile", design.profile) == design.profile and r.get("method", design.method) == design.method]
    if len(mine) < len(records):
        others: dict[str, int] = {}
        for r in records:
            if r not in mine:
                label = f"{r.get('sweep')}/{r.get('profile')} ({r.get('method')})"
                others[label] = others.get(label, 0) + 1
        log.warning("%s: %d of %d records belong to other sweeps or profiles (%s); reporting %s/%s only",
                    run_dir / "results.jsonl", len(records) - len(mine), len(records),
                    ", ".join(f"{k}: {v}" for k, v in others.items()), design.name, design.profile)
    if not mine:
        raise ConfigError(f"{run_dir / 'results.jsonl'}: no records of sweep {design.name} ({design.profile}) here")
    return mine


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
        from .tidy import results_csv

        return results_csv(report.records, report.design)
    if fmt == "curves":
        from .tidy import curves_csv

        return curves_csv(report.run_dir, report.records)
    if fmt == "json":
        return report_json(report.sections, report.meta)
    if fmt == "html":
        from .html_report import report_html

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
