"""A sweep through `--address` on a separately started Ray head (loopback only).

The head is started without WANDB_MODE in its environment, so the offline W&B
runs only complete if the driver passes it to the workers in runtime_env.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from sweep_helpers import check_wandb_matches_records, read_lines, write_sweep

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path, monkeypatch):
    import ray

    assert not ray.is_initialized()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with open(tmp_path / "head.log", "w") as log:
        subprocess.run([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                        "--include-dashboard=false", "--disable-usage-stats"], env=env, check=True, timeout=180,
                       stdout=log, stderr=log)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, timeout=120, capture_output=True)


def test_sweep_on_an_existing_head_logs_complete_wandb_runs(ray_head, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    path = write_sweep(tmp_path, "head", seeds=(0,))
    runs = tmp_path / "runs"
    assert main(["sweep", str(path), "--profile", "cpu", "--runs-dir", str(runs), "--no-live",
                 "--address", ray_head]) == 0
    run_dir = runs / "head" / "cpu"
    records = read_lines(run_dir)
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    # The head never had WANDB_MODE: the workers got it from the driver's runtime_env.
    assert all(r["wandb_mode_seen_by_worker"] == "offline" for r in records)
    check_wandb_matches_records(run_dir, records)
