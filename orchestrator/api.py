"""The Python API: run a sweep, load its results, read its tables and verdicts as DataFrames.

    import orchestrator

    res = orchestrator.sweep("sweeps/staged.yaml", profile="cpu")    # runs (or resumes) it
    res.verdicts                        # one row per claim: verdict, n units, Δ and its interval
    res.table("comparisons")            # any report table: cells, comparisons, effects, best, cost, ...
    df = orchestrator.load_results("runs/staged/cpu")   # one row per trial × test image (results.csv's)

The command line (`python -m orchestrator sweep | report | publish`) is a thin layer over these functions:
every check of its input is made here. Nothing here imports torch or Ray until it is called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dipddpm.errors import ConfigError


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
    def records(self) -> list:
        return self.report.records

    def frame(self):
        """One row per (trial, test image): ids, grid axes, metrics, trial figures, config (results.csv)."""
        return load_results(self.run_dir)

    @property
    def tables(self) -> dict:
        """Every report table by name, as a DataFrame (an interval column becomes value, low, high, n)."""
        import pandas as pd

        from .report.text import flat_columns, flat_rows

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


def sweep_options(profile: str = "auto", **options):
    """SweepOptions from keyword arguments, every value checked (one-line ConfigError naming the flag)."""
    from .sweep.runner import SweepOptions

    opts = SweepOptions(profile=profile, **options)
    for flag, value, low in (("--max-concurrent", opts.max_concurrent, 1), ("--max-failures", opts.max_failures, 0),
                             ("--max-trials", opts.max_trials, 1), ("--wandb-timeout", opts.wandb_timeout, 1)):
        if value is not None and value < low:
            raise ConfigError(f"{flag}: expected an integer >= {low}, got {value}")
    if opts.trial_timeout is not None and not opts.trial_timeout >= 0:
        raise ConfigError(f"--trial-timeout: expected a number of seconds >= 0 (0: none), got {opts.trial_timeout}")
    for name, value in (opts.replicate or {}).items():
        if value is not None and not value > 0:
            raise ConfigError(f"--{name.replace('_', '-')}: expected a number > 0, got {value}")
    if opts.profile not in ("auto", "cpu", "gpu"):
        raise ConfigError(f"--profile: expected one of auto | cpu | gpu, got {opts.profile!r}")
    return opts


def local_profile(requested: str) -> str:
    """auto -> gpu when this machine has a CUDA GPU (an embedded cluster's GPUs are this machine's)."""
    if requested != "auto":
        return requested
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def plan_sweep(path: str | Path, profile: str = "auto", max_trials: int | None = None,
               replicate: dict | None = None):
    """(spec, profile, plan) of a sweep file as this machine would run it, starting nothing (--dry-run)."""
    from .sweep.plan import MAX_TRIALS, plan
    from .sweep.spec import load_spec

    spec = load_spec(path)
    chosen = local_profile(profile)
    return spec, chosen, plan(spec, chosen, max_trials=max_trials or MAX_TRIALS, replicate=replicate)


def sweep(path: str | Path, profile: str = "auto", *, console=None, **options) -> Results:
    """Run (or resume) the sweep file at `path`; options are SweepOptions' fields (runs_dir, address,
    max_concurrent, fresh, retry_failed, replicate={...}, live, ...). Bad input raises ConfigError, before
    anything starts. Progress goes to `console` (a rich Console; default stdout, a line per finished trial
    unless `live=True` in a terminal)."""
    from rich.console import Console

    from dipddpm.record import writable_dir

    from .sweep.plan import plan
    from .sweep.runner import run_sweep
    from .sweep.spec import load_spec

    options.setdefault("live", False)
    opts = sweep_options(profile, **options)
    spec = load_spec(path)
    # Every input error before anything starts: the trials of the profile this machine decides (an existing
    # cluster's, with profile auto, is checked once joined, before any trial), and the folders.
    if opts.profile != "auto" or not (opts.address or os.environ.get("RAY_ADDRESS")):
        plan(spec, local_profile(opts.profile), max_trials=opts.max_trials, replicate=opts.replicate)
    writable_dir(opts.runs_dir, "--runs-dir")
    if opts.cache_dir and opts.use_cache:
        writable_dir(opts.cache_dir, "--cache-dir")
    outcome = run_sweep(spec, opts, console or Console())
    return Results(outcome.run_dir, outcome.code)


def load_results(run_dir: str | Path):
    """results.csv's table as a pandas DataFrame, from results.jsonl and the sweep's design."""
    import pandas as pd

    from .common import design as design_mod
    from .report.build import load_records
    from .report.text import result_columns, result_rows

    run_dir = _run_dir(run_dir)
    records = load_records(run_dir)
    design = design_mod.load(run_dir) or design_mod.from_records(records)
    rows = result_rows(records, design)
    return pd.DataFrame(rows, columns=result_columns(rows))


def open_run(run_dir: str | Path, metric: str | None = None) -> Results:
    """An existing run folder's results and report (no Ray). (Not `report`: that name is the
    `orchestrator.report` subpackage.)"""
    from .report.build import build_report

    run_dir = _run_dir(run_dir)
    return Results(run_dir, 0, build_report(run_dir, metric=metric))


def publish(run_dir: str | Path, *, dry_run: bool = False, out: str | None = None, project: str | None = None,
            entity: str | None = None, console=None) -> int:
    """Sync the run folder's offline W&B runs and save its W&B Report (needs a key); `dry_run`: write the
    report's spec only. Returns the exit code."""
    from .wandb_io.publish import publish as publish_run

    return publish_run(_run_dir(run_dir), dry_run=dry_run, out=out, project=project, entity=entity, console=console)


def _run_dir(run_dir) -> Path:
    if not isinstance(run_dir, (str, Path)) or not str(run_dir):
        raise ConfigError(f"run_dir: expected a run folder's path (e.g. runs/staged/cpu), got {run_dir!r}")
    return Path(run_dir)
