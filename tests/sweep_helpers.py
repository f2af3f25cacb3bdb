"""Shared pieces of the end-to-end sweep tests: a tiny sweep and W&B checks."""

import json
from pathlib import Path

from orchestrator.wandb_file import summarize

TINY_SWEEP = """
name: {name}
method: staged
base:
  data: {{size: 32}}
  dip: {{channels: 8, scales: 3}}
  staged: {{levels: [2, 1], iters_per_stage: 30}}
  es: {{window: 5, patience: 20}}
  eval_every: 10
grid:
  - staged.variant: [staged, baseline]
{extra}
seeds: {seeds}
"""


def write_sweep(tmp: Path, name: str, seeds=(0, 1), extra: str = "") -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(TINY_SWEEP.format(name=name, seeds=list(seeds), extra=extra))
    return path


def read_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines() if line.strip()]


def wandb_runs(run_dir: Path) -> dict:
    """trial key -> summary of its offline .wandb file (exactly one run folder per key expected)."""
    out: dict = {}
    for f in sorted((run_dir / "wandb").glob("offline-run-*-t-*/run-*.wandb")):  # trial runs, not the summary
        s = summarize(f)
        key = s["run_id"].removeprefix("t-")
        assert key not in out, f"two W&B runs for trial {key}"
        out[key] = s
    return out


def check_wandb_matches_records(run_dir: Path, records: list[dict]) -> None:
    runs = wandb_runs(run_dir)
    assert set(runs) == {r["trial_key"] for r in records}
    for r in records:
        run = runs[r["trial_key"]]
        assert run["exit"] == 0, r["trial_key"]
        curves = json.loads((run_dir / "trials" / r["trial_key"] / "curves.json").read_text())
        logged = [h["psnr"] for h in run["history"] if "psnr" in h]
        assert logged == curves["astronaut"]["eval"]["psnr"]
        assert run["summary"]["psnr_es"] == r["metrics"]["psnr_es"]
        assert run["config"]["seed"] == r["seed"]


def check_report_and_summary_run(run_dir: Path, sweep: str) -> None:
    """The sweep's end wrote the report files, and its W&B summary run holds every table as a wandb.Table."""
    from orchestrator.render import flat_columns
    from orchestrator.report import build_report

    for name in ("report.md", "results.csv", "report.html", "report.json"):
        assert (run_dir / name).stat().st_size > 0, name
    runs = sorted((run_dir / "wandb").glob(f"offline-run-*-summary-{sweep}-cpu"))
    assert len(runs) == 1, runs  # a rerun replaces the summary run
    run = summarize(next(runs[0].glob("run-*.wandb")))
    assert run["exit"] == 0
    logged = {k: v for h in run["history"] for k, v in h.items()}
    tables = [t for s in build_report(run_dir).sections for t in s.tables]
    assert tables
    for tab in tables:
        key = f"tables/staged/{tab.name}"
        assert logged[f"{key}/_type"] == "table-file", key
        assert logged[f"{key}/nrows"] == len(tab.rows), key
        body = json.loads((runs[0] / "files" / logged[f"{key}/path"]).read_text())
        assert body["columns"] == flat_columns(tab) and len(body["data"]) == len(tab.rows)
