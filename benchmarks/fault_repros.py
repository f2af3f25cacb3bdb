"""Each fault of docs/design.md ("Reliability", "The cluster data path") as a user meets it: the real CLI in a fresh process, timed to the line it
prints and its exit status, then (for sweeps) the same command again, checked for one ok record per trial.

    python benchmarks/fault_repros.py [--only zero-byte-cache,two-drivers,...] [--out PATH]

Writes benchmarks/fault_repros.json. The tests check each behaviour (tests/test_faults.py,
tests/test_bad_inputs.py); this script gives the figures: how long a user waits and what they read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from sweep_helpers import Blackhole  # noqa: E402  the tests' dead network: a proxy that never answers

ENV = os.environ | {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "WANDB_MODE": "offline",
                    "WANDB_SILENT": "true", "PYTHONPATH": str(REPO)}

STAGED = """name: {name}
method: staged
base:
  data: {{size: 32{images}}}
  dip: {{channels: 8, scales: 3}}
  staged: {{levels: [2, 1], iters_per_stage: {iters}}}
  es: {{window: 5, patience: 20}}
  eval_every: 10
grid:
  - staged.variant: [staged, baseline]
seeds: {seeds}
"""
HYBRID = """name: {name}
method: hybrid
base:
  data: {{size: 32, images: [astronaut, coffee]}}
  dip: {{channels: 8, scales: 3}}
  ddpm: {{channels: [16, 32], layers_per_block: 1, norm_groups: 8, train_steps: 40, dataset_size: 32,
          batch_size: 8, crop: 16}}
  hybrid: {{dip_iters: 30}}
  eval_every: 10
grid:
  - hybrid.start: [dip, observation]
seeds: [0]
"""


def cli(args: list[str], cwd: Path, wait_for: str | None = None, env: dict | None = None,
        timeout: float = 900) -> dict:
    """Run `python -m <args>`; the seconds to the first output line containing `wait_for` (else to exit)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env=env or ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: [lines.append((time.monotonic() - t0, x.rstrip())) for x in proc.stdout])
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        code = proc.wait()
    reader.join()
    took = time.monotonic() - t0
    hit = next(((t, x) for t, x in lines if wait_for and wait_for in x), None)
    return {"exit": code, "seconds_to_exit": round(took, 2), "seconds_to_line": round(hit[0], 2) if hit else None,
            "line": hit[1] if hit else (lines[-1][1] if lines else ""), "output_lines": len(lines),
            "times_said": sum(wait_for in x for _, x in lines) if wait_for else None,
            "tail": [x for _, x in lines[-12:]]}


def sweep(path: Path, runs: Path, *extra: str) -> list[str]:
    return ["orchestrator", "sweep", str(path), "--profile", "cpu", "--runs-dir", str(runs), "--no-live", *extra]


def one_ok_per_trial(run_dir: Path, n: int) -> bool:
    by_key: dict = {}
    for line in (run_dir / "results.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            by_key.setdefault(r["trial_key"], []).append(r["status"])
    return len(by_key) == n and all(s.count("ok") == 1 for s in by_key.values())


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def staged(work: Path, name: str, seeds=(0,), images: str = "", iters: int = 30) -> Path:
    return write(work / f"{name}.yaml", STAGED.format(name=name, seeds=list(seeds), images=images, iters=iters))


def png(path: Path, shape=(48, 48, 3)) -> Path:
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


# ---------------------------------------------------------------- the repros

def zero_byte_cache(work: Path) -> dict:
    cache = work / "cache"
    first = cli(sweep(write(work / "a.yaml", HYBRID.format(name="a")), work / "runs", "--cache-dir", str(cache)), work)
    entries = [p for p in cache.rglob("*.pt")]
    for p in entries:
        p.write_bytes(b"")  # a crash leftover: the file exists, its bytes never reached the disk
    out = cli(sweep(write(work / "b.yaml", HYBRID.format(name="b")), work / "runs", "--cache-dir", str(cache)), work,
              wait_for="made again")
    out["records_naming_it"] = sum("made again" in " ".join(json.loads(x).get("warnings") or [])
                                   for x in (work / "runs" / "b" / "cpu" / "results.jsonl").read_text().splitlines()
                                   if x.strip())
    out["emptied_entries"] = len(entries)
    out["first_run_exit"] = first["exit"]
    out["one_ok_per_trial"] = one_ok_per_trial(work / "runs" / "b" / "cpu", 2)
    out["entries_remade"] = all(p.stat().st_size > 0 for p in entries)
    return out


def two_drivers(work: Path) -> dict:
    path = staged(work, "two", seeds=(0, 1), iters=150)
    runs = work / "runs"
    proc = subprocess.Popen([sys.executable, "-m", *sweep(path, runs)], cwd=work, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    lock = runs / "two" / "cpu.driver.lock"
    deadline = time.monotonic() + 120
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    out = cli(sweep(path, runs), work, wait_for="another sweep driver")
    out["first_driver_exit"] = proc.wait(timeout=900)
    out["one_ok_per_trial_after_first"] = one_ok_per_trial(runs / "two" / "cpu", 4)
    again = cli(sweep(path, runs), work)
    out["rerun_exit"] = again["exit"]
    out["one_ok_per_trial"] = one_ok_per_trial(runs / "two" / "cpu", 4)
    return out


def closed_port_address(work: Path) -> dict:
    return cli(sweep(staged(work, "port"), work / "runs", "--address", "127.0.0.1:1"), work, wait_for="error:")


def online_wandb_no_network(work: Path) -> dict:
    hole = Blackhole()
    proxy = f"http://127.0.0.1:{hole.port}"
    env = ENV | {"WANDB_MODE": "online", "WANDB_API_KEY": "f" * 40, "NO_PROXY": "127.0.0.1,localhost",
                 "no_proxy": "127.0.0.1,localhost"} | {v: proxy for v in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                                                           "https_proxy")}
    path = staged(work, "offnet")
    out = cli(sweep(path, work / "runs", "--wandb-timeout", "15"), work, wait_for="W&B:", env=env)
    time.sleep(1)
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "wandb" in cmd and "sync" in cmd and str(work) in cmd:
            left.append(pid)
    out["sync_processes_left"] = len(left)
    out["one_ok_per_trial"] = one_ok_per_trial(work / "runs" / "offnet" / "cpu", 2)
    return out


def full_disk(work: Path) -> dict:
    if os.geteuid() != 0:
        return {"skipped": "mounting a tmpfs needs root"}
    runs = work / "runs"
    runs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(runs)], check=True)
    try:
        path = staged(work, "full", seeds=(0, 1, 2))
        filler = runs / "filler"
        st = os.statvfs(runs)
        filler.write_bytes(b"\0" * max(st.f_bavail * st.f_frsize - 250_000, 0))
        out = cli(sweep(path, runs), work, wait_for="error:")
        run_dir = runs / "full" / "cpu"
        lines = (run_dir / "results.jsonl").read_text().splitlines() if (run_dir / "results.jsonl").exists() else []
        out["records_kept"] = len(lines)
        out["every_kept_line_whole"] = all(json.loads(x)["status"] == "ok" for x in lines if x.strip())
        filler.unlink()
        again = cli(sweep(path, runs), work)
        out["rerun_exit"] = again["exit"]
        out["one_ok_per_trial"] = one_ok_per_trial(run_dir, 6)
        return out
    finally:
        subprocess.run(["umount", "-l", str(runs)], check=False)


def refused_image(make):
    def case(work: Path) -> dict:
        name = make(work)
        return cli(sweep(staged(work, "img", images=f", images: [{name}]"), work / "runs", "--dry-run"), work,
                   wait_for="error:")
    return case


def fifo(work: Path) -> str:
    os.mkfifo(work / "fifo.png")
    return "fifo.png"


def dev_zero(work: Path) -> str:
    (work / "zero.png").symlink_to("/dev/zero")
    return "zero.png"


def symlink_loop(work: Path) -> str:
    (work / "a.png").symlink_to(work / "b.png")
    (work / "b.png").symlink_to(work / "a.png")
    return "a.png"


def fifo_in_folder(work: Path) -> dict:
    photos = work / "photos"
    photos.mkdir()
    png(photos / "a.png")
    os.mkfifo(photos / "b.png")
    out = cli(sweep(staged(work, "folder", images=f", images: [], root: {photos}"), work / "runs", "--dry-run"), work)
    out["note"] = "the FIFO is skipped; the dry run lists the trials of the one photo"
    return out


def long_stem(work: Path) -> dict:
    src = png(work / ("ä photo " + "x" * 240 + ".png"))
    out = cli(sweep(staged(work, "long", images=f", images: ['{src}']"), work / "runs"), work)
    run_dir = work / "runs" / "long" / "cpu"
    out["one_ok_per_trial"] = one_ok_per_trial(run_dir, 2)
    names = {k for line in (run_dir / "results.jsonl").read_text().splitlines() if line.strip()
             for k in json.loads(line)["per_image"]}
    out["image_ids"] = sorted(names)
    again = cli(sweep(staged(work, "long", images=f", images: ['{src}']"), work / "runs"), work)
    out["rerun_exit"], out["still_one_ok_per_trial"] = again["exit"], one_ok_per_trial(run_dir, 2)
    return out


def big_image(work: Path) -> dict:
    from PIL import Image

    Image.new("RGB", (6000, 6000), (120, 60, 30)).save(work / "big.png")  # 36 MP in a small file
    out = cli(sweep(staged(work, "big", images=", images: [big.png]"), work / "runs"), work)
    out["file_mb"] = round((work / "big.png").stat().st_size / 1e6, 2)
    out["one_ok_per_trial"] = one_ok_per_trial(work / "runs" / "big" / "cpu", 2)
    png(work / "detail.png", (6000, 6000, 3))  # 36 MP of noise: a 100 MB file, over the byte cap
    out["too_big"] = cli(sweep(staged(work, "big2", images=", images: [detail.png]"), work / "runs", "--dry-run"),
                         work, wait_for="error:")
    return out


def int32_tiff(work: Path) -> dict:
    import tifffile

    tifffile.imwrite(work / "deep.tif", np.full((48, 48, 3), 30000, dtype=np.int32), photometric="rgb")
    out = cli(["dipddpm", "run", "--profile", "cpu", "--out", str(work / "out"), "--set", "data.images=[deep.tif]",
               "--set", "data.size=32", "--set", "dip.channels=8", "--set", "dip.scales=3", "--set",
               "staged.levels=[2, 1]", "--set", "staged.iters_per_stage=30", "--set", "es.window=5", "--set",
               "es.patience=20"], work)
    from PIL import Image

    clean = next((work / "out" / "images").glob("*clean*.png"), None)
    out["clean_png_mean_of_255"] = round(float(np.asarray(Image.open(clean)).mean()), 1) if clean else None
    out["expected_mean_of_255"] = round(30000 / 65535 * 255, 1)
    return out


def alias_bomb(work: Path) -> dict:
    text = STAGED.format(name="bomb", seeds=[0], images="", iters=30).replace("grid:\n  - staged.variant: [staged, "
                                                                                "baseline]\n", "")
    text += "".join(f"x{i}: &x{i} [{', '.join([f'*x{i - 1}' if i else 'lol'] * 9)}]\n" for i in range(9))
    text += "grid: {dip.lr: *x8}\n"
    return cli(sweep(write(work / "bomb.yaml", text), work / "runs", "--dry-run"), work, wait_for="error:")


def crafted_per_image_key(work: Path) -> dict:
    path = staged(work, "crafted")
    runs = work / "runs"
    first = cli(sweep(path, runs), work)
    run_dir = runs / "crafted" / "cpu"
    png(work / "secret.png", (8, 8, 3))
    lines = []
    for line in (run_dir / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        r["per_image"] = {"../../../../secret": v for v in r["per_image"].values()}
        lines.append(json.dumps(r))
    (run_dir / "results.jsonl").write_text("\n".join(lines) + "\n")
    out = cli(["orchestrator", "report", str(run_dir), "--out", str(work / "out")], work, wait_for="no image name")
    import base64

    page = (work / "out" / "report.html").read_text() if (work / "out" / "report.html").exists() else ""
    out["first_run_exit"] = first["exit"]
    out["secret_embedded"] = base64.b64encode((work / "secret.png").read_bytes()).decode()[:40] in page
    out["page_says_refused"] = "(refused" in page
    return out


# ---------------------------------------------------------------- round two (issue: hung trials, a dead hub, ...)

def _session(pid: int, title: str, timeout: float = 120) -> int | None:
    """The first process of session `pid` (the repro's own sweep) whose command line starts with `title`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in os.listdir("/proc"):
            try:
                if p.isdigit() and os.getsid(int(p)) == pid and \
                        open(f"/proc/{p}/cmdline", "rb").read().startswith(title.encode()):
                    return int(p)
            except OSError:
                continue
        time.sleep(0.3)
    return None


def _signal_then_wait(args: list[str], cwd: Path, title: str, sig: int, wait_for: str, after_s: float = 2.0) -> dict:
    """Start a sweep, signal one of its own processes (`title`) once it runs, and time the line it prints."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: [lines.append((time.monotonic() - t0, x.rstrip())) for x in proc.stdout])
    reader.start()
    target = _session(proc.pid, title)
    _session(proc.pid, "ray::ImplicitFunc")
    time.sleep(after_s)
    signalled = time.monotonic() - t0
    if target is not None:
        os.kill(target, sig)
    try:
        code = proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        code = proc.wait()
    reader.join()
    hit = next(((t, x) for t, x in lines if wait_for in x), None)
    return {"exit": code, "signalled_at_s": round(signalled, 2), "seconds_to_exit": round(time.monotonic() - t0, 2),
            "seconds_to_line": round(hit[0], 2) if hit else None, "line": hit[1] if hit else "",
            "found_process": target is not None, "tail": [x for _, x in lines[-6:]]}


def hung_trial(work: Path) -> dict:
    """A trial worker stopped (SIGSTOP): it ends at --trial-timeout, is retried, and the sweep finishes."""
    import signal

    path = staged(work, "hung", seeds=(0, 1), iters=60)
    out = _signal_then_wait(sweep(path, work / "runs", "--trial-timeout", "30", "--max-concurrent", "2"), work,
                            "ray::ImplicitFunc", signal.SIGSTOP, "timed out after")
    return out | _rerun_check(path, work / "runs" / "hung" / "cpu", 4, out["exit"], work)


def dead_hub(work: Path) -> dict:
    """The sweep's hub actor killed (SIGKILL) mid-sweep: Ray restarts it; nothing is lost."""
    import signal

    path = staged(work, "hub", seeds=(0, 1, 2), iters=60)
    out = _signal_then_wait(sweep(path, work / "runs", "--max-concurrent", "2"), work, "ray::SweepHub", signal.SIGKILL,
                            "records in")
    return out | _rerun_check(path, work / "runs" / "hub" / "cpu", 6, out["exit"], work)


def _rerun_check(path: Path, run_dir: Path, n: int, code: int, work: Path) -> dict:
    """Exactly one ok record per trial after at most one plain rerun."""
    out = {"one_ok_per_trial": one_ok_per_trial(run_dir, n), "reran": False}
    if not out["one_ok_per_trial"] or code != 0:
        again = cli(sweep(path, run_dir.parent.parent), work)
        out |= {"reran": True, "rerun_exit": again["exit"], "one_ok_per_trial": one_ok_per_trial(run_dir, n)}
    return out


def edited_sweep(work: Path) -> dict:
    """iters_per_stage 60 -> 40 and a new learning rate between runs on one folder: the earlier design's
    records are named at start, kept, and left out of every table."""
    path = staged(work, "edit", seeds=(0,), iters=60)
    runs = work / "runs"
    first = cli(sweep(path, runs), work)
    path.write_text(STAGED.format(name="edit", seeds=[0], images="", iters=40)
                    .replace("grid:\n  - staged.variant: [staged, baseline]",
                             "grid:\n  - staged.variant: [staged, baseline]\n    dip.lr: [0.01, 0.02]"))
    out = cli(sweep(path, runs), work, wait_for="earlier design")
    report = json.loads((runs / "edit" / "cpu" / "report.json").read_text())
    lines = (runs / "edit" / "cpu" / "results.jsonl").read_text().splitlines()
    return out | {"first_run_exit": first["exit"], "records_in_file": len(lines),
                  "records_reported": report["meta"]["records"]}


def _damaged_report(work: Path, damage, wait_for: str) -> dict:
    path = staged(work, "dmg", seeds=(0, 1))
    runs = work / "runs"
    first = cli(sweep(path, runs), work)
    run_dir = runs / "dmg" / "cpu"
    recs = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines() if x.strip()]
    damage(recs)
    (run_dir / "results.jsonl").write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in recs))
    out = cli(["orchestrator", "report", str(run_dir), "--out", str(work / "out")], work, wait_for=wait_for)
    return out | {"first_run_exit": first["exit"]}


def string_metric(work: Path) -> dict:
    def damage(recs):
        next(iter(recs[0]["per_image"].values()))["psnr_es"] = "25.1"
    return _damaged_report(work, damage, "not finite numbers")


def nan_metric(work: Path) -> dict:
    def damage(recs):
        recs[0]["metrics"]["psnr_es"] = float("nan")
    return _damaged_report(work, damage, "not finite numbers")


def duplicate_key(work: Path) -> dict:
    def damage(recs):
        dup = json.loads(json.dumps(recs[0]))
        dup["metrics"]["psnr_es"] += 100
        recs.append(dup)
    return _damaged_report(work, damage, "several terminal records")


def _claim_text_report(work: Path, text: str) -> dict:
    path = write(work / "text.yaml", STAGED.format(name="text", seeds=[0, 1, 2], images="", iters=30)
                 + f"claims:\n  - {{text: {json.dumps(text)}, a: {{staged.variant: staged}}, "
                   "b: {staged.variant: baseline}}\n")
    out = cli(sweep(path, work / "runs"), work)
    run_dir = work / "runs" / "text" / "cpu"
    page, md = ((run_dir / f).read_text() for f in ("report.html", "report.md"))
    return out | {"raw_in_html": text in page, "raw_in_markdown": text in md}


def bidi_claim(work: Path) -> dict:
    return _claim_text_report(work, "staged wins \u202edetcidartnoc")


def html_in_claim(work: Path) -> dict:
    return _claim_text_report(work, "<script>alert(1)</script><img src=x onerror=alert(2)>")


def api_twice(work: Path) -> dict:
    path = staged(work, "api", seeds=(0,))
    code = ("import orchestrator, sys; a = orchestrator.sweep(sys.argv[1], 'cpu', runs_dir=sys.argv[2]); "
            "b = orchestrator.sweep(sys.argv[1], 'cpu', runs_dir=sys.argv[2]); print('two calls', a.exit_code, "
            "b.exit_code)")
    return _python(code, [str(path), str(work / "runs")], work, "two calls")


def _python(code: str, argv: list[str], cwd: Path, wait_for: str) -> dict:
    t0 = time.monotonic()
    got = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, env=ENV, capture_output=True, text=True,
                         timeout=600)
    lines = (got.stdout + got.stderr).splitlines()
    hit = next((x for x in lines if wait_for in x), "")
    return {"exit": got.returncode, "seconds_to_exit": round(time.monotonic() - t0, 2), "line": hit,
            "tail": lines[-6:]}


def open_run_none(work: Path) -> dict:
    return _python("import orchestrator\ntry:\n    orchestrator.open_run(None)\nexcept Exception as e:\n"
                   "    print(type(e).__name__ + ': ' + str(e))", [], work, "run_dir")


def claim_selects_nothing(work: Path) -> dict:
    path = write(work / "c.yaml", STAGED.format(name="c", seeds=[0], images="", iters=30)
                 + "claims:\n  - {text: x, a: {staged.variant: nonexist}, b: {staged.variant: baseline}}\n")
    return cli(sweep(path, work / "runs", "--dry-run"), work, wait_for="selects no grid cell")


def truncated_line_once(work: Path) -> dict:
    path = staged(work, "cut", seeds=(0, 1))
    runs = work / "runs"
    cli(sweep(path, runs), work)
    with (runs / "cut" / "cpu" / "results.jsonl").open("a") as f:
        f.write('{"trial_key": "0123')
    return cli(sweep(path, runs), work, wait_for="unreadable line")


CASES = {
    "zero-byte-cache": zero_byte_cache,
    "two-drivers": two_drivers,
    "closed-port-address": closed_port_address,
    "online-wandb-no-network": online_wandb_no_network,
    "full-disk": full_disk,
    "fifo-image": refused_image(fifo),
    "fifo-in-folder": fifo_in_folder,
    "dev-zero-link": refused_image(dev_zero),
    "symlink-loop": refused_image(symlink_loop),
    "long-stem": long_stem,
    "big-image": big_image,
    "int32-tiff": int32_tiff,
    "alias-bomb": alias_bomb,
    "crafted-per-image-key": crafted_per_image_key,
    "hung-trial": hung_trial,
    "dead-hub": dead_hub,
    "edited-sweep": edited_sweep,
    "string-metric": string_metric,
    "nan-metric": nan_metric,
    "duplicate-key": duplicate_key,
    "bidi-claim": bidi_claim,
    "html-in-claim": html_in_claim,
    "api-twice": api_twice,
    "open-run-none": open_run_none,
    "claim-selects-nothing": claim_selects_nothing,
    "truncated-line-once": truncated_line_once,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(CASES), help="comma-separated cases")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "fault_repros.json"))
    args = ap.parse_args(argv)
    only = [c for c in args.only.split(",") if c]
    bad = [c for c in only if c not in CASES]
    if bad:
        print(f"error: --only: unknown case {bad[0]!r} (expected some of {', '.join(CASES)})", file=sys.stderr)
        return 2
    results = {}
    for name in only:
        with tempfile.TemporaryDirectory(prefix=f"repro-{name}-") as tmp:
            t0 = time.monotonic()
            try:
                results[name] = CASES[name](Path(tmp))
            except Exception as exc:  # a repro that breaks is a finding, not a reason to stop the others
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            results[name]["case_seconds"] = round(time.monotonic() - t0, 1)
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
