"""Shared pieces of the end-to-end sweep tests: a tiny sweep and W&B checks."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from orchestrator.wandb_io.run_file import summarize

RAY = str(Path(sys.executable).parent / "ray")
REPO = Path(__file__).resolve().parents[1]

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


def sweep_cli(path, runs, *extra) -> int:
    """`python -m orchestrator sweep PATH` on the cpu profile, in this process (its Ray session if any)."""
    from orchestrator.cli import main

    return main(["sweep", str(path), "--profile", "cpu", "--runs-dir", str(runs), "--no-live", *extra])


def write_sweep(tmp: Path, name: str, seeds=(0, 1), extra: str = "") -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(TINY_SWEEP.format(name=name, seeds=list(seeds), extra=extra))
    return path


def read_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines() if line.strip()]


def wandb_runs(run_dir: Path) -> dict:
    """trial key -> summary of its offline .wandb file (exactly one run folder per key expected)."""
    out: dict = {}
    for f in sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb")):
        s = summarize(f)
        if s["run_id"].startswith("summary-"):
            continue
        key = s["run_id"].split("-")[0]  # <trial key>-<sweep/profile/run folder scope>
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
        for image in r["per_image"]:  # each image's curve under its own keys, on its own iteration axis
            logged = [h[f"{image}/psnr"] for h in run["history"] if f"{image}/psnr" in h]
            iters = [h[f"{image}/iter"] for h in run["history"] if f"{image}/psnr" in h]
            assert logged == curves[image]["eval"]["psnr"] and iters == sorted(iters), (r["trial_key"], image)
        assert run["summary"]["psnr_es"] == r["metrics"]["psnr_es"]
        assert run["config"]["seed"] == r["seed"]
        # as a W&B user finds runs: named by cell and seed, grouped by cell, typed by method, tagged
        cfg = run["config"]
        assert (cfg["sweep"], cfg["profile"], cfg["trial_key"], cfg["cell_key"]) == (r["sweep"], "cpu", r["trial_key"],
                                                                                     r["cell_key"])
        assert cfg["cell"] == r["cell"] and run["name"].endswith(f"seed {r['seed']}")
        assert run["group"].startswith(f"{r['sweep']}/cpu@") and r["cell_key"][:8] in run["group"]
        assert run["job_type"] == r["method"] and {"cpu", r["method"]} <= set(run["tags"])
        for image in r["per_image"]:
            if any(f"{image}/psnr" in h for h in run["history"]):  # a fit that logged (not one diverged at once)
                assert run["metrics"].get(f"{image}/*") == f"{image}/iter"  # define_metric: its own x axis
        logged_images = {k.split("/")[1] for h in run["history"] for k in h if k.startswith("images/")}
        assert logged_images == set(r["per_image"])  # images of every test image


def check_report_and_summary_run(run_dir: Path, sweep: str) -> None:
    """The sweep's end wrote the report files, and its W&B summary run holds every table as a wandb.Table."""
    from orchestrator.report.text import flat_columns
    from orchestrator.report.build import build_report

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


class Blackhole:
    """A proxy that accepts connections and never answers: the worst a dead network does."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_session(sid: int, timeout: float = 30) -> None:
    """SIGKILL every process of session `sid` (a driver, a `ray start`, and what they started: Ray
    workers sit in process groups of their own, but stay in the session)."""
    deadline = time.time() + timeout
    left: list[int] = []
    while time.time() < deadline:
        left = [int(p) for p in os.listdir("/proc") if p.isdigit() and _sid(int(p)) == sid and not _zombie(p)]
        if not left:
            return
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    raise AssertionError(f"processes of session {sid} survive: {left}")


def _zombie(pid: str) -> bool:
    """Killed but not yet reaped by its parent: nothing left to stop."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def cluster_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_ADDRESS"))}
    return env | {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


class Cluster:
    """`ray start` processes in sessions of their own: the head, then worker nodes in private mount namespaces."""

    def __init__(self, base: Path, private: list[Path]):
        self.base, self.private, self.procs = base, private, []
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"

    def _spawn(self, argv: list[str], log: str, env: dict | None = None) -> None:
        with open(self.base / log, "w") as out:
            self.procs.append(subprocess.Popen(argv, stdout=out, stderr=out, env=env or cluster_env(),
                                               start_new_session=True))

    def start(self, head_cpus: int, workers: int) -> None:
        self._spawn([RAY, "start", "--head", f"--port={self.port}", "--node-ip-address=127.0.0.1",
                     f"--num-cpus={head_cpus}", "--include-dashboard=false", "--disable-usage-stats", "--block"],
                    "head.log")
        self._wait_nodes(1)
        tmp = Path(tempfile.gettempdir()).resolve()
        for i in range(workers):
            mounts = list(self.private)
            env = cluster_env()
            if any(_under(p, tmp) for p in (REPO, Path(sys.prefix).resolve())):
                # The code lives in the temp folder: give the node a private temp folder of its own instead.
                node_tmp = self.base / f"node{i}-tmp"
                node_tmp.mkdir()
                mounts.append(node_tmp)
                env["TMPDIR"] = str(node_tmp)
            else:
                mounts.append(tmp)
            mount = " && ".join(f"mount -t tmpfs tmpfs {m}" for m in mounts)
            start = f"exec {RAY} start --address={self.address} --node-ip-address=127.0.0.1 --num-cpus=1 --block"
            self._spawn(["unshare", "-m", "bash", "-c", f"{mount} && {start}"], f"worker{i}.log", env)
            self._wait_nodes(2 + i)

    def _wait_nodes(self, n: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = subprocess.run([RAY, "status", f"--address={self.address}"], capture_output=True, text=True,
                                 env=cluster_env())
            if got.returncode == 0 and got.stdout.count("node_") >= n:
                return
            time.sleep(1)
        logs = "\n".join((self.base / f).read_text()[-1500:] for f in os.listdir(self.base) if f.endswith(".log"))
        raise AssertionError(f"the cluster did not reach {n} nodes:\n{logs}")

    def stop(self) -> None:
        errors = []
        for proc in reversed(self.procs):  # each `ray start` leads a session of its own
            try:
                kill_session(proc.pid)
                proc.wait(timeout=30)
            except Exception as exc:  # noqa: BLE001 - stop the others all the same
                errors.append(exc)
        assert not errors, errors
