"""The Python API: run a sweep, load its results, read its tables and verdicts as DataFrames.

    import orchestrator

    res = orchestrator.sweep("sweeps/staged.yaml", profile="cpu")    # runs (or resumes) it
    res.verdicts                        # one row per claim: verdict, n units, Δ and its interval
    res.table("comparisons")            # any report table: cells, comparisons, effects, best, cost, ...
    df = orchestrator.load_results("runs/staged/cpu")   # one row per trial × test image (results.csv's)

The command line (`python -m orchestrator sweep | report`) is a thin layer over these functions.
Nothing here imports torch or Ray until it is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Results:
    """A run folder's results: its records, its report's tables and its claims' verdicts."""

    run_dir: Path
    exit_code: int = 0  # the sweep's: 0 done, 1 trials missing or failed, 3 W&B uploads left
    _report: object = field(default=None, repr=False)

    @property
    def report(self):
        if self._report is None:
            from .report.build import build_report

            self._report = build_report(self.run_dir)
        return self._report

    @property
    def records(self) -> list[dict]:
        return self.report.records

    def frame(self):
        """One row per (trial, test image): ids, grid axes, metrics, trial figures, config (results.csv)."""
        return load_results(self.run_dir)

    @property
    def tables(self) -> dict:
        """Every report table by name, as a DataFrame (an interval column becomes value, low, high, n)."""
        import pandas as pd

        from .report.render import flat_columns, flat_rows

        return {t.name: pd.DataFrame(flat_rows(t), columns=flat_columns(t)) for s in self.report.sections
                for t in s.tables}

    def table(self, name: str):
        tables = self.tables
        if name not in tables:
            raise KeyError(f"no table {name!r}; the report has {', '.join(tables)}")
        return tables[name]

    @property
    def verdicts(self):
        """The claims table (empty when the sweep states no claims)."""
        import pandas as pd

        return self.tables.get("claims", pd.DataFrame())


def sweep(path: str | Path, profile: str = "auto", *, console=None, **options) -> Results:
    """Run (or resume) the sweep file at `path`; options are SweepOptions' fields (runs_dir, address,
    max_concurrent, fresh, retry_failed, replicate={...}, live, ...). Bad input raises ConfigError.
    Progress goes to `console` (a rich Console; default stdout, a line per finished trial unless
    `live=True` in a terminal)."""
    from rich.console import Console

    from .sweep.runner import SweepOptions, run_sweep
    from .sweep.spec import load_spec

    spec = load_spec(path)
    options.setdefault("live", False)
    outcome = run_sweep(spec, SweepOptions(profile=profile, **options), console or Console())
    return Results(outcome.run_dir, outcome.code)


def load_results(run_dir: str | Path):
    """results.csv's table as a pandas DataFrame, from results.jsonl and the sweep's design."""
    import pandas as pd

    from .common import design as design_mod
    from .report.build import load_records
    from .report.tidy import result_columns, result_rows

    run_dir = Path(run_dir)
    records = load_records(run_dir)
    design = design_mod.load(run_dir) or design_mod.from_records(records)
    rows = result_rows(records, design)
    return pd.DataFrame(rows, columns=result_columns(rows))


def open_run(run_dir: str | Path, metric: str | None = None) -> Results:
    """An existing run folder's results and report (no Ray). (Not `report`: that name is the
    `orchestrator.report` subpackage.)"""
    from .report.build import build_report

    return Results(Path(run_dir), 0, build_report(run_dir, metric=metric))
