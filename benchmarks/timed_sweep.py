"""Run one of our sweeps silently and time it: the trial phase (to the last record written)
apart from the closing report. Shared by the orchestration, cache and gpu sections."""

from __future__ import annotations

import os
import time
from pathlib import Path


def timed_sweep(spec, opts) -> dict:
    """{trials_s, report_s, total_s, run_dir}, seconds from the call."""
    from rich.console import Console

    from orchestrator.sweep.runner import run_sweep

    with open(os.devnull, "w") as sink:
        t0 = time.time()
        run_sweep(spec, opts, Console(file=sink))
        end = time.time()
    run_dir = Path(opts.runs_dir) / spec.name / opts.profile
    last = (run_dir / "results.jsonl").stat().st_mtime
    return {"t0": t0, "trials_s": last - t0, "report_s": end - last, "total_s": end - t0, "run_dir": run_dir}
