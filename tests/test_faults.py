"""Faults that must not cost a result (docs/design.md: "Reliability", "The cluster data path"): each gives one line and a bounded wait, and running
again afterwards ends with exactly one ok record per trial."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.cli import main as orch_main
from orchestrator.common.store import ResultsStore
from sweep_helpers import Blackhole, kill_session, read_lines, sweep_cli, write_sweep

ROOT = os.geteuid() == 0


def one_ok_per_trial(run_dir: Path, n: int) -> list[dict]:
    records = read_lines(run_dir)
    by_key = {}
    for r in records:
        by_key.setdefault(r["trial_key"], []).append(r["status"])
    assert len(by_key) == n and all(s.count("ok") == 1 for s in by_key.values()), by_key
    return records


# ---------------------------------------------------------------- one driver per run folder

def test_a_second_driver_is_refused_and_a_dead_drivers_lock_is_taken_over(tmp_path, capsys):
    from orchestrator.common.store import DriverLock

    path = write_sweep(tmp_path, "locked", seeds=(0,))
    run_dir = tmp_path / "runs" / "locked" / "cpu"
    with DriverLock(run_dir):  # a live driver on the folder
        t0 = time.monotonic()
        assert sweep_cli(path, tmp_path / "runs") == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "another sweep driver is running on this folder" in err, err
        assert f"pid {os.getpid()}" in err and "since" in err and time.monotonic() - t0 < 60
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from orchestrator.common.store import "
                               f"DriverLock; l = DriverLock({str(run_dir)!r}).__enter__(); print('held', flush=True); "
                               "time.sleep(600)"], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # a driver killed while holding the folder
    holder.wait()
    with DriverLock(run_dir) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()  # taken over


def test_the_reader_prefers_an_ok_record_over_a_later_failed_one(tmp_path, caplog):
    from orchestrator.common.store import ResultsStore

    store = ResultsStore(tmp_path)
    base = {"trial_key": "0123456789abcdef", "config": {}, "metrics": {}}
    with store.path.open("w") as f:  # two drivers' lines for one trial, the failed one last
        f.write(json.dumps(base | {"status": "ok"}) + "\n" + json.dumps(base | {"status": "failed"}) + "\n")
    with caplog.at_level("WARNING", logger="orchestrator.common.store"):
        records = store.records()
    assert [r.status for r in records] == ["ok"] and store.done_keys() == {"0123456789abcdef"}
    assert any("the ok records count" in m for m in caplog.messages)


# ---------------------------------------------------------------- full disk

@pytest.mark.slow
@pytest.mark.skipif(not ROOT, reason="mounting a tmpfs needs root")
def test_a_full_disk_is_one_line_keeps_what_was_written_and_resumes(ray_session, tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(runs)], check=True)
    try:
        path = write_sweep(tmp_path, "full", seeds=(0, 1, 2))
        filler = runs / "filler"
        _fill(filler, room=250_000)  # room for a trial or two (each writes PNGs and a W&B run)
        t0 = time.monotonic()
        code = sweep_cli(path, runs)
        out = capsys.readouterr()
        assert code == 1 and time.monotonic() - t0 < 300, out
        lines = [x for x in out.err.strip().splitlines() if x.startswith("error:")]
        assert len(lines) == 1 and "No space left on device" in lines[0] and str(runs) in lines[0], out.err
        run_dir = runs / "full" / "cpu"
        before = read_lines(run_dir) if (run_dir / "results.jsonl").exists() else []
        assert all(r["status"] == "ok" for r in before)  # every line written is whole
        filler.unlink()  # space freed: the same command finishes the sweep
        assert sweep_cli(path, runs) == 0
        records = one_ok_per_trial(run_dir, 6)
        assert [r["trial_key"] for r in records[: len(before)]] == [r["trial_key"] for r in before]
    finally:
        subprocess.run(["umount", "-l", str(runs)], check=False)


def _fill(path: Path, room: int) -> None:
    st = os.statvfs(path.parent)
    path.write_bytes(b"\0" * max(st.f_bavail * st.f_frsize - room, 0))


# ---------------------------------------------------------------- online W&B with no network

@pytest.mark.slow
def test_online_wandb_without_a_network_costs_a_bounded_wait_and_names_the_runs(ray_session, tmp_path, capsys,
                                                                                 monkeypatch):
    hole = Blackhole()
    proxy = f"http://127.0.0.1:{hole.port}"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, proxy)
    for var in ("NO_PROXY", "no_proxy"):  # loopback is not the network (a sweep sets this for its own cluster)
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    monkeypatch.setenv("WANDB_API_KEY", "f" * 40)
    monkeypatch.setenv("WANDB_MODE", "online")
    path = write_sweep(tmp_path, "offnet", seeds=(0,))
    t0 = time.monotonic()
    code = sweep_cli(path, tmp_path / "runs", "--wandb-timeout", "15")
    took = time.monotonic() - t0
    out = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "offnet" / "cpu"
    one_ok_per_trial(run_dir, 2)  # the sweep's own trials and records are unaffected
    assert code == 3 and took < 150, (code, took, out[-2000:])
    line = next(x for x in out.splitlines() if x.startswith("W&B:"))
    assert "not uploaded" in line and f"python -m orchestrator publish {run_dir}" in line
    time.sleep(1)
    left = [p for p in os.listdir("/proc") if p.isdigit() and _is_wandb_sync(p, run_dir)]
    assert not left, "a wandb sync process outlived the sweep"


def _is_wandb_sync(pid: str, run_dir: Path) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "wandb sync" in cmd.replace("-m wandb", "wandb") and str(run_dir) in cmd


# ---------------------------------------------------------------- Ctrl-C

@pytest.mark.slow
def test_ctrl_c_says_how_to_resume_in_our_words(tmp_path):
    path = write_sweep(tmp_path, "sigint", seeds=(0, 1, 2))
    runs = tmp_path / "runs"
    env = dict(os.environ, WANDB_MODE="offline", RAY_USAGE_STATS_ENABLED="0")
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "sweep", str(path), "--profile", "cpu",
                             "--runs-dir", str(runs), "--no-live"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)
    try:
        lines = []
        for line in proc.stdout:  # the first finished trial's line, then Ctrl-C
            lines.append(line)
            if line.startswith("[1"):
                break
        proc.send_signal(signal.SIGINT)
        out = "".join(lines) + proc.communicate(timeout=180)[0]
    finally:
        kill_session(proc.pid)
    said = " ".join(out.split())
    assert "Tuner.restore" not in said and "run the same command again to resume" in said, out[:3000]
    assert sweep_cli(path, runs) == 0
    one_ok_per_trial(runs / "sigint" / "cpu", 6)


# ---------------------------------------------------------------- odd images that work

def test_a_long_odd_file_name_is_shortened_safely_and_the_trial_writes_its_files(tmp_path):
    from dipddpm.cli import main as run_main

    stem = "ä photo " + "x" * 240
    src = tmp_path / f"{stem}.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(src)
    out = tmp_path / "out"
    assert run_main(["run", "--profile", "cpu", "--out", str(out), "--set", f"data.images=[{src}]",
                     "--set", "data.size=32", "--set", "dip.channels=8", "--set", "dip.scales=3",
                     "--set", "staged.levels=[2, 1]", "--set", "staged.iters_per_stage=30", "--set", "es.window=5",
                     "--set", "es.patience=20"]) == 0
    name = next(iter(json.loads((out / "result.json").read_text())["per_image"]))
    assert len(name) <= 64 + 9 and "/" not in name and " " not in name
    assert (out / "images" / f"{name}_es.png").is_file()


def test_a_huge_photo_is_decoded_reduced_and_a_too_big_one_is_refused(tmp_path, monkeypatch):
    from dipddpm import images
    from dipddpm.errors import ConfigError

    big = tmp_path / "big.png"
    Image.new("RGB", (6000, 6000), (120, 60, 30)).save(big)  # 36 MP, a small file
    t0 = time.monotonic()
    img = images.file_image(big, "data.images[0]")
    arr = img.pixels()
    assert time.monotonic() - t0 < 30 and max(arr.shape[:2]) <= 2 * images.KEEP_SIDE
    assert np.allclose(arr[0, 0], np.array([120, 60, 30]) / 255)
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000_000)
    images._DECODED.clear()
    images._read_file.cache_clear()
    with pytest.raises(ConfigError, match=r"^data.images\[0\]: .*more than the 10,000,000 pixels allowed"):
        images.file_image(big, "data.images[0]")


def test_an_int32_tiff_of_16_bit_samples_keeps_its_brightness(tmp_path):
    import tifffile

    from dipddpm.images import file_image

    values = np.full((40, 40, 3), 30000, dtype=np.int32)  # 16-bit data stored in 32-bit samples
    tifffile.imwrite(tmp_path / "deep.tif", values, photometric="rgb")
    arr = file_image(tmp_path / "deep.tif", "data.images[0]").pixels()
    assert np.allclose(arr, 30000 / 65535, atol=1e-4)  # not 30000 / 2**31: nearly black


def test_a_fifo_in_an_image_folder_is_skipped_not_waited_on(tmp_path):
    from dipddpm.images import resolve_images

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8) + 90).save(folder / "a.png")
    os.mkfifo(folder / "b.png")
    t0 = time.monotonic()
    found = resolve_images((), str(folder), "*", "data.glob")
    assert [i.id.split("-")[0] for i in found] == ["a"] and time.monotonic() - t0 < 10


# ---------------------------------------------------------------- report inputs

def test_report_never_embeds_a_file_outside_the_run_folder(tmp_path, caplog):
    import yaml

    from orchestrator.common.store import ResultsStore
    from orchestrator.sweep.plan import plan
    from orchestrator.sweep.spec import parse_spec
    from report_helpers import record_for

    secret = tmp_path / "secret.png"
    Image.fromarray(np.full((8, 8, 3), 7, dtype=np.uint8)).save(secret)
    spec = parse_spec(yaml.safe_load("{name: crafted, method: staged, grid: {staged.variant: [staged, baseline]}}"), "s")
    p = plan(spec, "cpu")
    run = tmp_path / "runs" / "crafted" / "cpu"
    p.design.save(run)
    store = ResultsStore(run)
    evil = "../../../../secret"
    for t in p.trials:
        r = record_for(t, lambda t, i: 25.0, "ok", "cpu", "crafted")
        r["per_image"] = {evil: r["per_image"]["astronaut"]}
        store.append(r)
    with caplog.at_level(logging.WARNING):
        assert orch_main(["report", str(run), "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    import base64

    assert base64.b64encode(secret.read_bytes()).decode()[:40] not in page and "(refused" in page
    said = [m for m in caplog.messages if "which is no image name" in m]
    assert len(said) == len(p.trials)  # once per trial, not once per picture of it


def test_records_of_another_sweep_in_the_file_are_counted_and_left_out(tmp_path, caplog):
    from orchestrator.report.build import build_report
    from report_helpers import planned_run

    run = tmp_path / "mixed" / "cpu"
    planned_run(run, "{name: mixed, method: staged, grid: {staged.variant: [staged, baseline]}}", lambda t, i: 25.0)
    lines = (run / "results.jsonl").read_text().splitlines()
    other = json.loads(lines[0]) | {"sweep": "other", "trial_key": "fedcba9876543210"}
    with (run / "results.jsonl").open("a") as f:
        f.write(json.dumps(other) + "\n")
    with caplog.at_level("WARNING"):
        report = build_report(run)
    assert report.meta["records"] == 2 and report.meta["sweep"] == "mixed"
    assert any("1 of 3 records belong to other sweeps" in m and "other/cpu" in m for m in caplog.messages)


# ---------------------------------------------------------------- a hung trial, a dead hub

def _session_processes(sid: int, title: str) -> list[int]:
    """Processes of session `sid` (this test's own sweep) whose command line starts with `title`."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.getsid(int(p)) != sid:
                continue
            cmd = open(f"/proc/{p}/cmdline", "rb").read()
        except (OSError, ProcessLookupError):
            continue
        if cmd.startswith(title.encode()):
            out.append(int(p))
    return out


def _sweep_process(path, runs, *extra):
    env = dict(os.environ, WANDB_MODE="offline", RAY_USAGE_STATS_ENABLED="0")
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "sweep", str(path), "--profile", "cpu",
                             "--runs-dir", str(runs), "--no-live", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)


def _wait_for(sid: int, title: str, timeout: float = 120) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = _session_processes(sid, title)
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"no {title} process in session {sid}")


@pytest.mark.slow
def test_a_hung_trial_ends_at_its_timeout_is_retried_and_the_sweep_finishes(tmp_path):
    """One trial worker of this test's own sweep stopped (SIGSTOP): the driver kills it at the timeout, Tune
    retries the trial, every trial ends ok; nothing outside this test's session is touched."""
    path = write_sweep(tmp_path, "hung", seeds=(0, 1))
    runs = tmp_path / "runs"
    t0 = time.time()
    proc = _sweep_process(path, runs, "--trial-timeout", "25", "--max-failures", "1", "--max-concurrent", "2")
    try:
        worker = _wait_for(proc.pid, "ray::ImplicitFunc")
        time.sleep(2)  # inside its trial
        os.kill(worker, signal.SIGSTOP)
        out = proc.communicate(timeout=400)[0]
    finally:
        kill_session(proc.pid)
    said = " ".join(out.split())
    assert proc.returncode == 0, out[-3000:]
    assert "timed out after 25 s" in said, out[-3000:]
    assert "Traceback" not in out  # the stop is one line, not Tune's crash report
    assert time.time() - t0 < 400
    one_ok_per_trial(runs / "hung" / "cpu", 4)
    # the killed attempt's scratch folder went with its retry (a key's folders are prefixed by the run folder's id)
    uid = json.loads((runs / "hung" / "cpu" / "run.json").read_text())["uid"]
    assert not list(Path(tempfile.gettempdir()).glob(f"dipddpm-*-{uid}-*"))


@pytest.mark.slow
def test_a_killed_hub_costs_no_result(tmp_path):
    """The hub actor of this test's own sweep killed (SIGKILL) while trials run: Ray restarts it, the trials'
    calls go to the new one, and every trial ends with its record and files."""
    path = write_sweep(tmp_path, "hubkill", seeds=(0, 1, 2))
    runs = tmp_path / "runs"
    proc = _sweep_process(path, runs, "--max-concurrent", "2")
    try:
        hub = _wait_for(proc.pid, "ray::SweepHub")
        _wait_for(proc.pid, "ray::ImplicitFunc")
        time.sleep(3)
        os.kill(hub, signal.SIGKILL)
        out = proc.communicate(timeout=400)[0]
    finally:
        kill_session(proc.pid)
    run = runs / "hubkill" / "cpu"
    records = read_lines(run)
    assert proc.returncode in (0, 1), out[-3000:]
    if proc.returncode == 1:  # a trial the hub's death reached in the middle: the orchestrator's fault, rerun
        assert all(r["status"] == "ok" or r.get("fault") == "orchestrator" for r in records), records
        assert sweep_cli(path, runs) == 0
    one_ok_per_trial(run, 6)
    for r in ResultsStore(run).records():
        assert (run / "trials" / r.trial_key / "result.json").is_file()
