"""What a crash leaves behind never aborts a sweep, loses a record or duplicates one.

A driver killed halfway through writing a record, a worker process killed
mid-trial, and an exception in the record-writing path, each on a real local
Ray cluster (one per module) with W&B offline.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.common.store import ResultsStore
from sweep_helpers import kill_session, sweep_cli, write_sweep

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent


def _parsed_lines(run_dir: Path) -> list:
    """Every line of results.jsonl: a record, or None where it is not valid JSON."""
    out = []
    for line in (run_dir / "results.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            out.append(None)
    return out


def test_a_driver_killed_mid_append_resumes_with_one_record_per_trial(ray_session, tmp_path, caplog):
    path = write_sweep(tmp_path, "torn", seeds=(0, 1))
    runs = tmp_path / "runs"
    run_dir = runs / "torn" / "cpu"
    env = dict(os.environ, WANDB_MODE="offline", PYTHONPATH=f"{HERE.parent}{os.pathsep}{HERE}")
    argv = [sys.executable, str(HERE / "kill_mid_append.py"), "2", "--", "sweep", str(path), "--profile", "cpu",
            "--runs-dir", str(runs), "--no-live"]
    with open(tmp_path / "driver.log", "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env, start_new_session=True)
    try:
        assert proc.wait(timeout=300) == -signal.SIGKILL, (tmp_path / "driver.log").read_text()[-3000:]
    finally:
        kill_session(proc.pid)  # its embedded cluster and workers
    lines = _parsed_lines(run_dir)
    assert len(lines) == 2 and lines[0] is not None and lines[1] is None  # one record, then half of one
    assert not (run_dir / "results.jsonl").read_bytes().endswith(b"\n")

    with caplog.at_level(logging.WARNING, logger="orchestrator.common.store"):
        assert sweep_cli(path, runs) == 0
    assert any("results.jsonl:2: skipping an unreadable line" in m for m in caplog.messages)
    records = [r for r in _parsed_lines(run_dir) if r is not None]
    keys = [r["trial_key"] for r in records]
    assert len(keys) == 4 and len(set(keys)) == 4 and all(r["status"] == "ok" for r in records)
    assert len(ResultsStore(run_dir).records()) == 4


def _own_raylets() -> set[bytes]:
    """Pids (as /proc shows them in RAY_RAYLET_PID) of this process's Ray session's raylets."""
    import ray

    sockets = {f"--raylet_socket_name={n['RayletSocketName']}".encode() for n in ray.nodes() if n["Alive"]}
    out = set()
    for pid in _pids():
        if any(arg in sockets for arg in _read(pid, "cmdline").split(b"\0")):
            out.add(str(pid).encode())
    assert out, f"no raylet of this Ray session ({sockets}) among this machine's processes"
    return out


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _read(pid: int, what: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{what}").read_bytes()
    except OSError:  # gone, or not ours to read
        return b""


def _is_own_trial(pid: int, raylets: set[bytes], job: bytes) -> bool:
    """A Ray worker running a trial (its `train` call) for this session's raylet and this driver's job."""
    if not _read(pid, "cmdline").startswith(b"ray::ImplicitFunc.train"):
        return False
    env = dict(v.partition(b"=")[::2] for v in _read(pid, "environ").split(b"\0") if v)
    return env.get(b"RAY_RAYLET_PID") in raylets and env.get(b"RAY_JOB_ID") == job


def _kill_a_running_trial(stop: threading.Event, killed: list, raylets: set[bytes], job: bytes) -> None:
    """SIGKILL the first worker of this test's own Ray session seen running a trial for half a second:
    other sweeps on the machine (their workers have other raylets or jobs) are left alone."""
    seen: dict[int, float] = {}
    while not stop.is_set() and not killed:
        for pid in _pids():
            if pid in seen or _is_own_trial(pid, raylets, job):
                first = seen.setdefault(pid, time.time())
                if time.time() - first > 0.5:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
        time.sleep(0.1)


def test_only_a_trial_worker_of_this_session_is_a_target():
    """Processes titled like a trial worker: one of another Ray session (another raylet), one of
    another job on ours, one of ours; only the last may be signalled."""
    ours, job = b"4242", b"01000000"
    procs = [subprocess.Popen(["bash", "-c", 'exec -a "ray::ImplicitFunc.train" sleep 30'],
                              env={"PATH": os.environ["PATH"], "RAY_RAYLET_PID": raylet, "RAY_JOB_ID": j})
             for raylet, j in (("999999", job.decode()), (ours.decode(), "02000000"), (ours.decode(), job.decode()))]
    try:
        deadline = time.time() + 10  # until each has exec'd into its title
        while time.time() < deadline and not all(_read(p.pid, "cmdline").startswith(b"ray::") for p in procs):
            time.sleep(0.05)
        assert [_is_own_trial(p.pid, {ours}, job) for p in procs] == [False, False, True]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_worker_killed_mid_trial_fails_that_trial_alone_and_resume_reruns_it(ray_session, tmp_path):
    long_trials = "  - staged.iters_per_stage: [250]\n    staged.variant: [staged, baseline]"
    path = write_sweep(tmp_path, "workerkill", seeds=(0, 1), extra=long_trials)
    runs = tmp_path / "runs"
    run_dir = runs / "workerkill" / "cpu"
    import ray

    stop, killed = threading.Event(), []
    job = ray.get_runtime_context().get_job_id().encode()
    killer = threading.Thread(target=_kill_a_running_trial, args=(stop, killed, _own_raylets(), job), daemon=True)
    killer.start()
    try:
        code = sweep_cli(path, runs, "--max-failures", "0")  # no retry: the killed trial is recorded failed
    finally:
        stop.set()
        killer.join()
    assert killed, "no trial was running to kill"
    records = ResultsStore(run_dir).records()
    failed = [r for r in records if r.status == "failed"]
    assert code == 1 and len(records) == 8 and len(failed) == 1
    assert all(r.status == "ok" and (run_dir / "trials" / r.trial_key / "curves.json").exists()
               for r in records if r is not failed[0])
    # --retry-failed reruns just that trial; with a retry allowed, a kill is survived.
    assert sweep_cli(path, runs, "--retry-failed") == 0
    again = ResultsStore(run_dir).records()
    assert len(again) == 8 and all(r.status == "ok" for r in again)
    assert {r.trial_key for r in again} == {r.trial_key for r in records}
    lines = _parsed_lines(run_dir)
    assert len(lines) == 9 and sum(r["trial_key"] == failed[0].trial_key for r in lines) == 2


def test_an_exception_writing_a_record_does_not_stop_thesweep_cli(ray_session, tmp_path, monkeypatch, capsys):
    path = write_sweep(tmp_path, "flaky", seeds=(0, 1))
    runs = tmp_path / "runs"
    original, calls = ResultsStore.append, []

    def flaky(self, record):
        calls.append(record.trial_key)
        if len(calls) == 1:
            raise OSError("disk full, for a moment")
        return original(self, record)

    monkeypatch.setattr(ResultsStore, "append", flaky)
    assert sweep_cli(path, runs) == 0
    records = ResultsStore(runs / "flaky" / "cpu").records()
    assert len(records) == 4 and all(r.status == "ok" for r in records)
    assert calls[0] in {r.trial_key for r in records}  # a moment later it was written
    assert calls.count(calls[0]) == 2
    assert "error:" not in capsys.readouterr().err  # a hiccup is no full disk: the sweep went on


def test_a_config_error_inside_a_trial_is_recorded_failed_not_retried(ray_session, tmp_path, monkeypatch):
    """The trials find that their node runs other code than the driver (here: the driver is told so)."""
    from orchestrator.sweep import cluster

    monkeypatch.setattr(cluster, "code_fingerprint", lambda: "000000000000")
    path = write_sweep(tmp_path, "cfgerror", seeds=(0,))
    assert sweep_cli(path, tmp_path / "runs", "--max-failures", "3") == 1
    records = ResultsStore(tmp_path / "runs" / "cfgerror" / "cpu").records()
    assert len(records) == 2 and all(r.status == "failed" for r in records)
    assert all(r.error.startswith("config error: node ") and "the driver's is 000000000000" in r.error
               for r in records)
    # the trial ended normally with its failed record (nothing for Tune to retry); its result.json says so
    for r in records:
        saved = json.loads((tmp_path / "runs" / "cfgerror" / "cpu" / "trials" / r.trial_key / "result.json")
                           .read_text())
        assert saved["status"] == "failed" and saved["error"] == r.error
