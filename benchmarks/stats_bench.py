"""`make bench` sections on the statistics: report time at scale, and adaptive replication against a fixed grid.

report: `build_report` + every file (tables, Markdown, CSV, JSON, HTML with its figures) on 500, 1,000 and
  5,000 records: copies of a real run (runs/hybrid/cpu when it holds a sweep's records and sweep.json; else
  the records of sweeps/hybrid.yaml's cpu plan with synthetic values) under new seeds.
adaptive: a synthetic method whose trials take microseconds (per-image values with known effects), run
  through the real searcher (AdaptiveSearcher), the real store and report for one sweep, then through the
  searcher and its claim tracker for many, against the fixed-n design that reaches the same power on every
  claim: trials spent and error rates of both. It also times one claim update at 100 and 5,000 records.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import statistics
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------- report at scale

def _source_run() -> tuple[list[dict], object, Path | None, str]:
    """Records, design and trial folder of a run to copy, and what it is."""
    from orchestrator.common import design as design_mod
    from orchestrator.common.store import ResultsStore

    real = HERE.parent / "runs" / "hybrid" / "cpu"
    if (real / "sweep.json").is_file() and (real / "results.jsonl").is_file():
        records = ResultsStore(real).records()
        design = design_mod.load(real)
        keys = {p.cell_key for p in design.points}
        records = [r for r in records if r.get("cell_key") in keys]
        if records:
            return records, design, real / "trials", f"copies of {real}"
    return _planned_records(), _plan().design, None, "sweeps/hybrid.yaml's cpu plan, synthetic values"


_PLAN = {}


def _plan():
    if "p" not in _PLAN:
        from dipddpm.yamlio import load_file
        from orchestrator.sweep.plan import plan
        from orchestrator.sweep.spec import parse_spec

        _PLAN["p"] = plan(parse_spec(load_file(HERE.parent / "sweeps" / "hybrid.yaml"), "hybrid.yaml"), "cpu")
    return _PLAN["p"]


def _planned_records() -> list[dict]:
    import sys

    sys.path.insert(0, str(HERE.parent / "tests"))
    from report_helpers import record_for

    rng = random.Random(0)
    return [record_for(t, lambda t, i: 25.0 + rng.gauss(0, 1), "ok", "cpu", "hybrid") for t in _plan().initial()]


def copies(records: list[dict], n: int) -> list[dict]:
    """`n` records: the run's, then copies under new seeds (new trial keys, values jittered)."""
    rng = random.Random(1)
    span = max(r.get("seed", 0) for r in records) + 1
    out = []
    for j in range(math.ceil(n / len(records))):
        for r in records:
            c = json.loads(json.dumps(r))
            c["seed"] = r.get("seed", 0) + j * span
            c["trial_key"] = hashlib.sha256(f"{r['trial_key']}{j}".encode()).hexdigest()[:16] if j else r["trial_key"]
            for m in (c.get("per_image") or {}).values():
                for k, v in m.items():
                    if isinstance(v, float) and k.startswith(("psnr", "ssim")):
                        m[k] = v + rng.gauss(0, 0.01 if k.startswith("ssim") else 0.3)
            out.append(c)
    return out[:n]


def report_scale(sizes=(500, 1000, 5000)) -> dict:
    from orchestrator.common.store import ResultsStore
    from orchestrator.report.build import build_report, write_files

    records, design, trials_dir, source = _source_run()
    out = {"source": source, "cells": len(design.points), "target": "<= 15 s at 5000 records", "runs": []}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / design.name / design.profile
            store = ResultsStore(run)
            batch = copies(records, n)
            with store.path.open("w") as f:  # one write: the store's per-record fsync is not what is timed
                f.writelines(json.dumps(r) + "\n" for r in batch)
            design.save(run)
            if trials_dir is not None:  # each copy shows its original's curves and images
                (run / "trials").mkdir()
                originals = {r["trial_key"] for r in records}
                for r, c in zip(records * math.ceil(n / len(records)), batch):
                    src = trials_dir / r["trial_key"]
                    if src.is_dir() and c["trial_key"] not in originals:
                        (run / "trials" / c["trial_key"]).symlink_to(src)
                    elif src.is_dir():
                        shutil.copytree(src, run / "trials" / c["trial_key"])
            t0 = time.perf_counter()
            report = build_report(run)
            t1 = time.perf_counter()
            write_files(report, run)
            t2 = time.perf_counter()
            out["runs"].append({"records": n, "tables_s": t1 - t0, "files_s": t2 - t1, "total_s": t2 - t0})
    return out


# ---------------------------------------------------------------- adaptive against fixed

# (true Δ, expected sign, margin or None), in units of σ, the standard deviation of one unit's paired
# difference: what the synthetic method does
FAMILY = [(2.0, 1, None), (1.5, 1, None), (1.0, 1, None), (0.5, 1, None), (0.0, 1, 1.0), (0.0, 1, 1.0)]
SIGMA = 1 / math.sqrt(2)  # each arm's per-image noise: a difference of two has standard deviation 1
IMAGES = 3  # (seed, image) units: a staged-like method


def _adaptive_spec(min_seeds: int, max_seeds: int) -> dict:
    claims = [{"text": f"claim {k}: Δ = {d:g}σ", "a": {"dip.lr": 0.02 + k / 1000}, "b": {"dip.lr": 0.01 + k / 1000},
               "where": {}, "metric": "psnr", "expect": "greater" if s > 0 else "less",
               **({"margin": m} if m else {})} for k, (d, s, m) in enumerate(FAMILY)]
    grid = [{"dip.lr": [0.02 + k / 1000, 0.01 + k / 1000]} for k in range(len(FAMILY))]
    return {"name": "adaptive_bench", "method": "staged", "grid": grid, "claims": claims,
            "base": {"data": {"images": ["astronaut", "coffee", "chelsea"]}},
            "replicate": {"min_seeds": min_seeds, "max_seeds": max_seeds}}


def _synthetic_record(trial, rng: np.random.Generator, truth: dict) -> dict:
    """One trial of the synthetic method: per-image PSNR = image offset + arm effect + N(0, σ²)."""
    from dipddpm.config import config_dict

    effect = truth.get(trial.cell_key, 0.0)
    per = {img.id: {"psnr": 25.0 + j + effect + float(rng.normal(0, SIGMA))} for j, img in enumerate(trial.images.test)}
    return {"trial_key": trial.key, "method": "staged", "seed": trial.seed, "profile": "cpu", "status": "ok",
            "error": None, "config": config_dict(trial.config), "metrics": {"psnr": statistics.mean(
                m["psnr"] for m in per.values()), "time_s": 0.001}, "per_image": per, "sweep": "adaptive_bench",
            "cell": trial.cell, "cell_key": trial.cell_key, "images": trial.described_images()}


def _truth(p) -> dict:
    """cell key -> the arm's true effect: each claim's A cell sits Δ above its B cell."""
    out = {}
    for k, (d, _, _) in enumerate(FAMILY):
        for pt in p.design.points:
            if abs(pt.cell.get("dip.lr", 0) - (0.02 + k / 1000)) < 1e-9:
                out[pt.cell_key] = d
    return out


def simulate_adaptive(p, rng, slots: int = 2, store=None):
    """One adaptive sweep of the synthetic method through the real searcher: `slots` trials run at once,
    each finishing in proposal order. Returns the searcher."""
    from ray.tune.search import Searcher

    from orchestrator.sweep.searcher import AdaptiveSearcher

    from orchestrator.common.record import Record

    searcher = AdaptiveSearcher(p, [], set(), "psnr", lambda t: t, lambda ts: ts)
    truth, live, n = _truth(p), deque(), 0
    while True:
        while len(live) < slots:
            n += 1
            got = searcher.suggest(str(n))
            if got is None or got == Searcher.FINISHED:  # None: waiting for the running trials
                break
            live.append((str(n), got))
        if not live:
            return searcher
        tid, trial = live.popleft()
        record = _synthetic_record(trial, rng, truth)
        if store is not None:
            store.append(record)
        searcher.feed(Record.from_dict(record))
        searcher.on_trial_complete(tid)


def _verdict_ok(verdict: str, d: float, margin) -> bool | None:
    """True: a right decision; False: a false verdict; None: undecided."""
    if verdict.startswith("undecided") or verdict.startswith("no pairs"):
        return None
    if verdict.startswith("equivalent"):
        return abs(d) < margin
    if verdict.startswith("supported"):
        return d > 0
    return d < 0 if verdict.startswith("contradicted") else None


def fixed_power(n_units: int, sims: int, rng) -> tuple[np.ndarray, float]:
    """Per-claim power and the family's false-verdict rate of the fixed design at n units per claim
    (the claims' default estimand, the median: the exact sign test, Holm over the family)."""
    from orchestrator.stats import estimands
    from orchestrator.stats.estimands import CONTRADICTED, EQUIVALENT, SUPPORTED, Tested

    d = np.array([f[0] for f in FAMILY])
    margin = np.array([f[2] if f[2] else np.nan for f in FAMILY])
    x = rng.normal(d[None, :, None], SIGMA * math.sqrt(2), (sims, len(FAMILY), n_units))  # A − B: sd 1
    per = [estimands.get("median").fixed(x[:, k], margin[k]) for k in range(len(FAMILY))]
    tested = Tested(*(np.stack([getattr(t, f) for t in per], -1) for f in Tested.__dataclass_fields__))
    code = estimands.decide(tested, np.ones(len(FAMILY)), 0.05)["code"]
    right = np.where(np.isnan(margin), code == SUPPORTED, code == EQUIVALENT)
    wrong = (np.where(d > 0, code == CONTRADICTED, np.isin(code, (SUPPORTED, CONTRADICTED)))
             | ((code == EQUIVALENT) & (np.abs(d) >= np.nan_to_num(margin, nan=np.inf))))
    return right.mean(0), float(wrong.any(-1).mean())


def adaptive(sweeps: int = 300, min_seeds: int = 2, max_seeds: int = 20) -> dict:
    from orchestrator.common.store import ResultsStore
    from orchestrator.report.build import build_report
    from orchestrator.sweep.plan import plan
    from orchestrator.sweep.spec import parse_spec

    spec = parse_spec(_adaptive_spec(min_seeds, max_seeds), "adaptive_bench")
    p = plan(spec, "cpu")
    rng = np.random.default_rng(0)
    # one sweep through the store and the report, as a user runs it
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "adaptive_bench" / "cpu"
        store = ResultsStore(run)
        p.design.save(run)
        t0 = time.perf_counter()
        s = simulate_adaptive(p, rng, store=store)
        one = {"trials": s.spent(), "stopped": s.reason, "sweep_s": time.perf_counter() - t0}
        tab = next(t for t in build_report(run).sections[0].tables if t.name == "claims")
        one["verdicts"] = [dict(zip(tab.columns, r))["verdict"] for r in tab.rows]
    # many sweeps through the searcher and its tracker: trials, power and false verdicts
    spent, right, wrong_family = [], np.zeros(len(FAMILY)), 0
    for _ in range(sweeps):
        s = simulate_adaptive(p, rng)
        spent.append(s.spent())
        oks = [_verdict_ok(row.verdict, d, m or 0.0) for row, (d, _, m) in zip(s.tracker.finish().rows, FAMILY)]
        right += [o is True for o in oks]
        wrong_family += any(o is False for o in oks)
    power = right / sweeps
    # the fixed grid: every cell the same seeds; the fewest that reach the adaptive power on every claim
    fixed = None
    for seeds in range(2, 200):
        pw, fwer = fixed_power(seeds * IMAGES, 4000, rng)
        if np.all(pw >= power - 1e-9):
            fixed = {"seeds": seeds, "trials": seeds * len(p.design.points), "power": pw.round(3).tolist(),
                     "false_verdict_rate": fwer}
            break
    mean_spent = statistics.mean(spent)
    return {"family": [{"delta_sigma": d, "margin_sigma": m} for d, _, m in FAMILY], "units_per_seed": IMAGES,
            "min_seeds": min_seeds, "max_seeds": max_seeds, "sweeps": sweeps, "one_sweep": one,
            "adaptive": {"trials_mean": mean_spent, "trials_max": max(spent), "power": power.round(3).tolist(),
                         "false_verdict_rate": wrong_family / sweeps},
            "fixed": fixed, "ratio": mean_spent / fixed["trials"] if fixed else None, "target": "<= 0.6",
            "claim_update": claim_update_cost()}


def adaptive_both(sweeps: int = 200) -> dict:
    """The adaptive section at max_seeds 20 (the shipped gpu sweeps') and 30."""
    return {f"max_seeds_{m}": adaptive(sweeps, max_seeds=m) for m in (20, 30)}


def claim_update_cost(sizes=(100, 4000)) -> dict:
    """Seconds for the tracker to take one more record after 100 and after 4,000 (its cost must not grow)."""
    from orchestrator.common.record import Record
    from orchestrator.stats.verdicts import ClaimTracker
    from orchestrator.sweep.plan import plan
    from orchestrator.sweep.spec import parse_spec

    cells = 2 * len(FAMILY)
    p = plan(parse_spec(_adaptive_spec(2, (sizes[-1] + 200) // cells + 1), "adaptive_bench"), "cpu")  # seeds enough

    rng = np.random.default_rng(3)
    truth, out = {}, {}  # no effects: every row stays open and read, its most costly state
    by_cell = {}
    for t in p.trials:
        by_cell.setdefault(t.cell_key, []).append(t)
    for n in sizes:
        tracker = ClaimTracker(p.design, "psnr")
        made = []
        seed = 0
        while len(made) < n + 200:  # records of every cell seed by seed, past the plan's seeds: copies
            for ck, trials in by_cell.items():
                t = trials[0]
                r = _synthetic_record(t, rng, truth)
                r["seed"], r["trial_key"] = seed, hashlib.sha256(f"{ck}{seed}".encode()).hexdigest()[:16]
                made.append(r)
            seed += 1
        made = [Record.from_dict(r) for r in made]
        for r in made[:n]:
            tracker.add(r)
        t0 = time.perf_counter()
        for r in made[n:n + 200]:
            tracker.add(r)
        out[f"at_{n}_records_us"] = 1e6 * (time.perf_counter() - t0) / 200
    out["ratio"] = out[f"at_{sizes[1]}_records_us"] / out[f"at_{sizes[0]}_records_us"]
    out["target"] = "<= 2"
    return out
