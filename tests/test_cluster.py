"""Sweeps on a real multi-node Ray cluster whose nodes share no disk (docs/design.md: "The cluster data path").

On this one machine: a head with no CPUs (no trial can run beside the driver)
and two worker nodes, each started inside its own mount namespace with
private tmpfs mounts over the runs folder, the cache folder and the system
temp folder, so nothing a worker node writes is visible to the driver or to
the other worker. Images are given by a path relative to the driver's working
directory. Everything a report or `publish` reads must reach the driver
through Ray. The cluster is stopped by its own processes' session ids.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from orchestrator.cli import main
from sweep_helpers import Cluster, cluster_env, kill_session, read_lines, wandb_runs

pytestmark = pytest.mark.slow


def _unshare_refused() -> str | None:
    if shutil.which("unshare") is None:
        return "no unshare command on this machine"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -m with a tmpfs mount is refused here ({probe.stderr.strip() or probe.returncode})"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = _unshare_refused()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("cluster")
    runs, cache = base / "runs", base / "cache"
    runs.mkdir()
    cache.mkdir()
    c = Cluster(base, [runs, cache])
    try:
        c.start(head_cpus=0, workers=2)
        yield c, runs, cache
    finally:
        c.stop()


def _photos(folder: Path) -> list[str]:
    """Two photos as files (crops of bundled ones), and a third with the same file name in another folder."""
    from PIL import Image
    from skimage import data

    out = []
    for sub, name, arr in (("a", "photo.png", data.astronaut()[64:320, 96:352]),
                           ("b", "photo.png", data.coffee()[40:296, 200:456])):
        (folder / sub).mkdir(parents=True)
        Image.fromarray(np.ascontiguousarray(arr)).save(folder / sub / name)
        out.append(f"photos/{sub}/{name}")
    return out


STAGED = """
name: cluster-staged
method: staged
base:
  data: {{size: 32, images: {images}}}
  dip: {{channels: 8, scales: 3}}
  staged: {{levels: [2, 1], iters_per_stage: 40}}
  es: {{window: 5, patience: 20}}
  eval_every: 10
grid:
  staged.variant: [staged, baseline]
seeds: [0, 1, 2]
"""

HYBRID = """
name: cluster-hybrid
method: hybrid
base:
  data: {{size: 32, images: {images}}}
  dip: {{channels: 8, scales: 3}}
  ddpm: {{channels: [16, 32], layers_per_block: 1, norm_groups: 8, train_steps: 30, dataset_size: 32,
          batch_size: 8, crop: 16, t_max: null}}
  hybrid: {{dip_iters: 30, start: observation}}
  eval_every: 10
grid:
  diffusion.beta_schedule: [linear, squaredcos_cap_v2]
  hybrid.sampler: [onestep, ddim]
seeds: [0]
"""


def _driver(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    env = cluster_env() | {"WANDB_MODE": "offline"}
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "orchestrator", *argv], cwd=cwd, stdout=out, stderr=out,
                                env=env, start_new_session=True)


def _worker_sees(address: str, path: Path) -> list[bool]:
    """Whether each worker node sees `path` (runs a CPU task on each; the head has no CPUs)."""
    import ray

    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    try:
        probe = ray.remote(num_cpus=1)(lambda p: os.path.exists(p))
        return ray.get([probe.remote(str(path)) for _ in range(2)])
    finally:
        ray.shutdown()


def test_sweeps_on_nodes_that_share_no_disk(cluster, tmp_path, monkeypatch):
    c, runs, cache = cluster
    work = tmp_path / "work"
    images = _photos(work / "photos")
    (work / "staged.yaml").write_text(STAGED.format(images=json.dumps(images)))
    (work / "hybrid.yaml").write_text(HYBRID.format(images=json.dumps(images[:1])))
    (runs / "marker").write_text("driver only")
    assert _worker_sees(c.address, runs / "marker") == [False, False]  # the worker nodes share no disk with us
    common = ["--profile", "cpu", "--address", c.address, "--runs-dir", str(runs), "--cache-dir", str(cache),
              "--no-live"]

    # A staged sweep whose driver is killed mid-sweep, then resumed.
    run_dir = runs / "cluster-staged" / "cpu"
    proc = _driver(["sweep", "staged.yaml", *common], work, tmp_path / "driver.log")
    try:
        deadline = time.time() + 300
        while not ((run_dir / "results.jsonl").exists() and read_lines(run_dir)):
            assert proc.poll() is None and time.time() < deadline, (tmp_path / "driver.log").read_text()[-3000:]
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_session(proc.pid)
    assert 1 <= len(read_lines(run_dir)) < 6
    monkeypatch.chdir(work)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert main(["sweep", "staged.yaml", *common]) == 0
    _check_run(run_dir, trials=6, images=2)

    # A hybrid sweep: two trained models, each shared by two sampling configs, trained once in the cluster.
    assert main(["sweep", "hybrid.yaml", *common]) == 0
    hybrid_dir = runs / "cluster-hybrid" / "cpu"
    records = _check_run(hybrid_dir, trials=4, images=1)
    made = [r for r in records if r["metrics"]["cache_hit_ddpm"] is False]
    models = {r["config"]["diffusion"]["beta_schedule"] for r in records}
    assert len(made) == len(models) == 2, [(r["config"]["diffusion"], r["metrics"]["cache_hit_ddpm"]) for r in records]
    assert {r["node"] for r in records} and all(r["transfer"]["image_bytes_in"] > 0 for r in records)
    assert len(list((cache / "ddpm").glob("*.pt"))) == 2  # persisted on the driver's disk


def _check_run(run_dir: Path, trials: int, images: int) -> list[dict]:
    records = read_lines(run_dir)
    assert len(records) == trials and len({r["trial_key"] for r in records}) == trials
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    for r in records:
        folder = run_dir / "trials" / r["trial_key"]
        curves = json.loads((folder / "curves.json").read_text())
        assert len(r["per_image"]) == images and set(curves) >= set(r["per_image"])
        for name in r["per_image"]:
            assert name.startswith("photo-") and len(name) == len("photo-") + 8  # stem + content hash
            assert list(folder.glob(f"images/{name}_*.png")), name
        assert r["transfer"]["file_bytes_out"] > 0 and not r["warnings"]
    if images == 2:  # the same file name in two folders: two images
        assert len({n for r in records for n in r["per_image"]}) == 2
    html = (run_dir / "report.html").read_text()
    assert "(missing)" not in html and html.count("data:image/png") >= 3
    runs = wandb_runs(run_dir)  # one offline run per trial, under the driver's run folder
    assert set(runs) == {r["trial_key"] for r in records}
    for r in records:
        run = runs[r["trial_key"]]
        assert run["exit"] == 0 and run["history"] and run["summary"]["psnr"] == r["metrics"]["psnr"]
        if r["method"] == "staged":
            curves = json.loads((run_dir / "trials" / r["trial_key"] / "curves.json").read_text())
            for name in r["per_image"]:  # each image's fit under its own keys
                assert [h[f"{name}/psnr"] for h in run["history"] if f"{name}/psnr" in h] == \
                    curves[name]["eval"]["psnr"]
    return records
