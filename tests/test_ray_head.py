"""A sweep through `--address` on a separately started Ray head (loopback only, no namespaces needed).

The head is started without WANDB_MODE or any credentials in its environment, so
the offline W&B runs only complete if the driver passes the mode to the workers
in runtime_env. The head is stopped by its own process's session id (`ray stop`
would stop every Ray on the machine).
"""

import pytest

from orchestrator.cli import main
from sweep_helpers import Cluster, check_wandb_matches_records, read_lines, write_sweep

pytestmark = pytest.mark.slow


@pytest.fixture
def ray_head(tmp_path, monkeypatch):
    import ray

    assert not ray.is_initialized()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    head = Cluster(tmp_path, private=[])
    try:
        head.start(head_cpus=2, workers=0)
        yield head.address
    finally:
        head.stop()


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
