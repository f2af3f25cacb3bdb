"""Adaptive replication end to end on a real local Ray cluster (docs/design.md: "Adaptive replication"): a Searcher proposes seeds
while claims are undecided; killing the driver and running again continues from results.jsonl."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from orchestrator.report.build import build_report
from orchestrator.stats import estimands
from sweep_helpers import check_wandb_matches_records, kill_session, read_lines, sweep_cli

pytestmark = pytest.mark.slow

SWEEP = """
name: adaptive
method: staged
base:
  data: {size: 32, images: [astronaut, coffee]}
  dip: {channels: 8, scales: 3}
  staged: {levels: [3, 2, 1], iters_per_stage: 30}
  es: {window: 5, patience: 20}
  eval_every: 10
grid:
  - degradation.noise_std: [0.058823529411764705, 0.19607843137254902]
  - staged.noise: [chain, independent]
replicate: {min_seeds: 2, max_seeds: 6}
claims:
  - text: the observation at 15/255 is cleaner than at 50/255
    a: {degradation.noise_std: 0.058823529411764705}
    b: {degradation.noise_std: 0.19607843137254902}
    metric: psnr_observation
    expect: greater
  - text: chained targets do as well as independent ones
    a: {staged.noise: chain}
    b: {staged.noise: independent}
    metric: psnr_es
    margin: 0.5
"""


def claims_table(run_dir):
    tab = next(t for t in build_report(run_dir).sections[0].tables if t.name == "claims")
    return [dict(zip(tab.columns, r)) for r in tab.rows]


def test_claims_get_seeds_until_decided_and_a_killed_driver_resumes(ray_session, tmp_path):
    path = tmp_path / "adaptive.yaml"
    path.write_text(SWEEP)
    runs = tmp_path / "runs"
    run_dir = runs / "adaptive" / "cpu"
    env = dict(os.environ, WANDB_MODE="offline", RAY_USAGE_STATS_ENABLED="0")
    with open(tmp_path / "driver.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "sweep", str(path), "--profile", "cpu",
                                 "--runs-dir", str(runs), "--no-live"], stdout=log, stderr=log, env=env,
                                start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if (run_dir / "results.jsonl").exists() and len(read_lines(run_dir)) >= 3:
                break
            assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_session(proc.pid)
    before = (run_dir / "results.jsonl").read_text().splitlines()
    assert 3 <= len(before) < 8  # killed before the first seeds were done

    assert sweep_cli(path, runs) == 0
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert lines[: len(before)] == before  # nothing lost or rewritten
    records = [json.loads(x) for x in lines]
    assert len({r["trial_key"] for r in records}) == len(records) and all(r["status"] == "ok" for r in records)
    check_wandb_matches_records(run_dir, records)
    seeds = {}
    for r in records:
        seeds.setdefault(r["cell_key"], set()).add(r["seed"])
    assert all({0, 1} <= s for s in seeds.values())  # every cell at min_seeds

    large, null = claims_table(run_dir)
    assert large["verdict"] == "supported"
    units = int(large["decided at"].split()[0])
    # An all-wins claim decides at the first seed whose units (two photos a seed) reach the fewest its share
    # of the family's level allows (3 hypotheses; two-sided is the worst case): no seed later.
    assert units <= estimands.fewest_units(0.05 / 6, sequential=True) + 1
    null_trials = null["trials"]
    assert null_trials > 4  # it gained seeds beyond min_seeds
    assert null["verdict"] == "equivalent within ±0.5" or null_trials == 2 * 6
    # the large claim's cells gained no seed past its decision (one may have been started while its
    # last units were still running: two trials run at once)
    by_cell = {r["cell_key"]: r.get("cell") for r in records}
    for ck, s in seeds.items():
        if "degradation.noise_std" in (by_cell[ck] or {}):
            assert s <= set(range(units // 2 + 1)), (by_cell[ck], s, units)

    # Running again proposes nothing and decides the same.
    assert sweep_cli(path, runs) == 0
    assert (run_dir / "results.jsonl").read_text().splitlines() == lines
    assert claims_table(run_dir) == [large, null]
