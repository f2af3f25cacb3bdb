"""End-to-end sweeps on a real local Ray cluster (one per module) with W&B offline."""

import math
import os
import signal
import subprocess
import sys
import time

import pytest

from sweep_helpers import (check_report_and_summary_run, check_wandb_matches_records, kill_session, read_lines,
                           sweep_cli, wandb_runs, write_sweep)

pytestmark = pytest.mark.slow


def test_a_sweep_records_every_trial_and_logs_it_to_wandb(ray_session, tmp_path):
    diverging = "  - dip.lr: [1.0e10]\n    dip.output_ema: [null]\n    staged.variant: [baseline]"
    path = write_sweep(tmp_path, "e2e", seeds=(0, 1), extra=diverging)
    assert sweep_cli(path, tmp_path / "runs") == 0
    run_dir = tmp_path / "runs" / "e2e" / "cpu"
    records = read_lines(run_dir)
    assert len(records) == 6 and len({r["trial_key"] for r in records}) == 6
    assert sorted(r["status"] for r in records) == ["diverged"] * 2 + ["ok"] * 4
    for r in records:
        assert r["sweep"] == "e2e" and r["profile"] == "cpu" and r["versions"]["torch"]
        if r["status"] == "ok":
            assert all(math.isfinite(r["metrics"][k]) for k in ("psnr", "ssim", "psnr_es", "psnr_peak", "time_s"))
    check_wandb_matches_records(run_dir, records)  # one W&B run per trial, diverged ones too
    check_report_and_summary_run(run_dir, "e2e")
    # Tune's own tools: one row per trial, the grid axes as hyperparameters, the final metrics
    from ray.tune import ExperimentAnalysis

    df = ExperimentAnalysis(str(run_dir / "ray" / "tune")).dataframe()
    assert len(df) == 6 and {"config/staged.variant", "config/dip.lr", "config/seed", "psnr_es"} <= set(df.columns)
    by_key = {r["trial_key"]: r for r in records}
    for _, row in df.iterrows():
        r = by_key[row["trial_key"]]
        assert row["config/staged.variant"] == r["config"]["staged"]["variant"] and row["config/seed"] == r["seed"]
        assert row["psnr_es"] == pytest.approx(r["metrics"]["psnr_es"])
    # Running again runs nothing and adds nothing.
    stamps = {p: p.stat().st_mtime_ns for p in run_dir.glob("trials/*/result.json")}
    assert sweep_cli(path, tmp_path / "runs") == 0
    assert len(read_lines(run_dir)) == 6
    assert {p: p.stat().st_mtime_ns for p in run_dir.glob("trials/*/result.json")} == stamps
    check_report_and_summary_run(run_dir, "e2e")


def test_a_killed_driver_resumes_without_losing_or_duplicating(ray_session, tmp_path):
    path = write_sweep(tmp_path, "killed", seeds=(0, 1, 2))
    runs = tmp_path / "runs"
    run_dir = runs / "killed" / "cpu"
    env = dict(os.environ, WANDB_MODE="offline", RAY_USAGE_STATS_ENABLED="0")
    with open(tmp_path / "driver.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "sweep", str(path), "--profile", "cpu",
                                 "--runs-dir", str(runs), "--no-live"], stdout=log, stderr=log, env=env,
                                start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            if (run_dir / "results.jsonl").exists() and read_lines(run_dir):
                break
            assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-2000:]
            time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_session(proc.pid)  # its embedded cluster and Ray workers too: they would race the resume
    before = len(read_lines(run_dir))
    assert 1 <= before < 6
    assert sweep_cli(path, runs) == 0
    records = read_lines(run_dir)
    assert len(records) == 6 and len({r["trial_key"] for r in records}) == 6
    assert all(r["status"] == "ok" for r in records)
    assert len(wandb_runs(run_dir)) == 6
    check_wandb_matches_records(run_dir, records)


def test_a_gpu_profile_on_a_cluster_without_gpus_is_one_line_and_exit_2(ray_session, tmp_path, capsys):
    path = write_sweep(tmp_path, "gpu", seeds=(0,))
    assert sweep_cli(path, tmp_path / "runs", "--profile", "gpu") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --profile gpu: the Ray cluster has no GPUs") and len(err.splitlines()) == 1
    assert not (tmp_path / "runs" / "gpu").exists()
