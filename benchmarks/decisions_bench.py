"""Decisions per CPU-hour, and the verdicts' error rates at full size (`make bench ARGS='--only decisions,verdicts'`).

decisions: a claim family drawn like the shipped sweeps — the questions' large effects
(staged from y against plain DIP: about −2.5 dB on psnr_es; start=dip against DIP alone
and the cost of a restoration: every unit the same way), a moderate one, and the seeds'
claims near zero — with their units per seed and measured trial costs, run by three
designs on the same draws:
  - new: this tree's AdaptiveSearcher (median estimand, anytime p-values, Holm, futility,
    allocation by expected decisions per CPU-second, the questions first);
  - today's: the searcher of main at 6258d91 (t-mixture sequences at α/K, round-robin), its
    own modules loaded from git under another package name;
  - fixed: every claim's cells at max_seeds seeds, read once (this tree's fixed evaluator).
It reports correct decisions per CPU-hour and the family-wise false-verdict rate of each,
for Gaussian noise and for the verdicts issue's scenarios (the nulls drawn skewed, with
rare large losses, ties). Also the projection's calibration.

verdicts: every scenario of tests/verdict_sims.py × {fixed grid, adaptive searcher} at
≥ 2,000 families of K = 6, family-wise false verdicts ± one Monte-Carlo standard error,
and the power at 1σ.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import math
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

TODAY = "6258d91"  # main before this round


# ---------------------------------------------------------------- the family

@dataclass(frozen=True)
class Cell:
    name: str
    per_seed: int  # units a seed adds (photos of a staged trial; 1 for a hybrid training seed)
    cost_s: float  # CPU seconds of one of its trials (measured on this machine's cpu profile)


@dataclass(frozen=True)
class ClaimSpec:
    name: str
    a: str  # cell of arm A
    b: str  # cell of arm B (the same cell: B is read through b_metric)
    metric: str
    effect: float  # true shift of A − B, in units of the unit noise sd (0: null)
    b_metric: str | None = None
    priority: int = 2


# As the shipped cpu sweeps have them: the staged question's two cells (three photos each, ~75 s a trial)
# serve both its claims; the hybrid question's two cells (one training seed each: the start=dip trial trains
# the model and fits DIP, ~75 s; start=observation reuses it, ~35 s) serve its three, DIP alone being the
# start=dip trial read through psnr_dip; then the seeds' claims on cells of their own.
CELLS = {c.name: c for c in (
    Cell("staged", 3, 75.0), Cell("plain", 3, 75.0), Cell("dip", 1, 75.0), Cell("obs", 1, 35.0),
    Cell("oracle_a", 3, 75.0), Cell("oracle_b", 3, 75.0), Cell("lr_a", 3, 75.0), Cell("lr_b", 3, 75.0),
    Cell("floor_a", 1, 60.0), Cell("floor_b", 1, 60.0), Cell("cos_a", 1, 60.0), Cell("cos_b", 1, 60.0))}
FAMILY = (
    ClaimSpec("staged question: psnr_es", "staged", "plain", "psnr_es", -2.0, priority=1),
    ClaimSpec("staged question: ES gap", "staged", "plain", "es_gap", -0.8, priority=1),
    ClaimSpec("hybrid question: dip vs observation", "dip", "obs", "psnr", -1.5, priority=1),
    ClaimSpec("hybrid question: dip vs DIP alone", "dip", "dip", "psnr", -5.0, "psnr_dip", priority=1),
    ClaimSpec("hybrid question: restoration cost", "dip", "obs", "restore", 8.0, priority=1),
    ClaimSpec("seed 000: plain beats staged (ORACLE)", "oracle_a", "oracle_b", "psnr_es", 0.3),
    ClaimSpec("seed 000: lr 0.1 peaks sooner (ORACLE)", "lr_a", "lr_b", "psnr_es", 0.0),
    ClaimSpec("seed 004: DIP data trains faster (FLOOR)", "floor_a", "floor_b", "fit_s", 0.0),
    ClaimSpec("seed 004: cosine beats linear (FLOOR)", "cos_a", "cos_b", "psnr", 0.0),
)
CELL_KEYS = {name: f"c{i:02d}" for i, name in enumerate(CELLS)}


def draw_family(scenario: str, rng, max_seeds: int) -> dict:
    """(cell, seed) -> {metric: per-unit values}: each claim's A − B drawn from the scenario's median-zero
    distribution plus its effect; a metric read by several claims of one cell is drawn once."""
    import verdict_sims as vs

    values: dict = {}
    for c in FAMILY:
        u = CELLS[c.a].per_seed
        d = vs.unit_differences(vs.draw(scenario, "median", rng, (1, 1, max_seeds * u)), "psnr")[0, 0]
        d = (d + c.effect).reshape(max_seeds, u)
        for seed in range(max_seeds):
            base = 25.0 + rng.normal(0, 1, u)
            b_metric = c.b_metric or c.metric
            values.setdefault((c.b, seed), {})[b_metric] = base
            values.setdefault((c.a, seed), {})[c.metric] = base + d[seed]
    return values


# ---------------------------------------------------------------- running a family through a searcher

def _record_dict(cell: str, seed: int, metrics: dict) -> dict:
    key = hashlib.sha256(f"{cell}{seed}".encode()).hexdigest()[:16]
    u = CELLS[cell].per_seed
    per = {f"img{j}": {m: float(v[j]) for m, v in metrics.items()} for j in range(u)}
    return {"trial_key": key, "status": "ok", "method": "staged", "seed": seed, "config": {"method": "staged"},
            "cell_key": CELL_KEYS[cell], "per_image": per,
            "metrics": {m: float(np.mean(v)) for m, v in metrics.items()} | {"wall_s": CELLS[cell].cost_s}}


def family_for(old: bool) -> tuple:
    """The claims a design can state: today's cannot read one trial through two metrics (DIP alone)."""
    return tuple(c for c in FAMILY if not (old and c.b_metric))


def _claims(claims_module, old: bool):
    raw = []
    for c in family_for(old):
        item = {"text": c.name, "a": {"cell": c.a}, "b": {"cell": c.b}, "metric": c.metric}
        if c.b_metric:
            item["b_metric"] = c.b_metric
        raw.append(item | ({} if old else {"priority": c.priority}))
    return claims_module.parse_claims(raw, "bench", None)


def _design(pkg: str, claims, max_seeds: int):
    design = importlib.import_module(f"{pkg}.common.design")
    base = {"cell": "staged"}
    points = [design.Point({"cell": name}, design.apply(base, {"cell": name}, base), frozenset(), CELL_KEYS[name],
                           "σ 25/255 · img · 64 px", ()) for name in CELLS]
    return design.Design("bench", "staged", "psnr", "max", "cpu", base, points, list(range(max_seeds)), tuple(claims),
                         {"min_seeds": 1, "max_seeds": max_seeds}, ("cell",))


@dataclass(frozen=True)
class _Trial:
    key: str
    cell_key: str
    seed: int
    cell: tuple = ()


@dataclass
class _Plan:
    trials: list
    merged: int
    design: object
    replicate: object

    def initial(self):
        return [t for t in self.trials if t.seed < self.replicate.min_seeds]


def run_adaptive(values: dict, max_seeds: int, rng, old: bool = False, slots: int = 2) -> dict:
    """One family through a real searcher (this tree's, or today's when `old`), trials finishing in random
    order; returns its verdicts, trials and CPU seconds."""
    from orchestrator.sweep.spec import Replicate

    pkg = old_package() if old else "orchestrator"
    claims_mod = importlib.import_module(f"{pkg}.common.claims")
    design = _design(pkg, _claims(claims_mod, old), max_seeds)
    names = {v: k for k, v in CELL_KEYS.items()}
    trials = [_Trial(_record_dict(name, s, {})["trial_key"], CELL_KEYS[name], s)
              for s in range(max_seeds) for name in CELLS]
    plan = _Plan(trials, 0, design, Replicate(min_seeds=1, max_seeds=max_seeds))
    if old:
        searcher = importlib.import_module(f"{pkg}.sweep.adaptive").AdaptiveSearcher(
            plan, [], set(), "psnr", lambda t: t, lambda ts: ts)
    else:
        searcher = importlib.import_module("orchestrator.sweep.searcher").AdaptiveSearcher(
            plan, [], set(), "psnr", lambda t: t, lambda ts: ts, parallel=slots)
    from verdict_sims import drive

    from orchestrator.common.record import Record

    cpu = [0.0]

    def records_of(trial):
        cell = names[trial.cell_key]
        rec = _record_dict(cell, trial.seed, values.get((cell, trial.seed), {}))
        cpu[0] += CELLS[cell].cost_s
        return [rec if old else Record.from_dict(rec)]  # main's searcher read dicts

    counter = drive(searcher, records_of, rng, slots)
    cpu = cpu[0]
    if old:
        verdicts = [st.verdict() for st in searcher.tracker.states]
    else:
        verdicts = [r.verdict for r in searcher.tracker.finish().rows]
    return {"verdicts": dict(zip((c.name for c in family_for(old)), verdicts)), "trials": counter, "cpu_s": cpu}


def run_fixed(values: dict, max_seeds: int) -> dict:
    """Every cell at max_seeds seeds, read once by the fixed evaluator (median)."""
    from orchestrator.stats import estimands

    tests = []
    for c in FAMILY:
        d = np.concatenate([values[(c.a, s)][c.metric] - values[(c.b, s)][c.b_metric or c.metric]
                            for s in range(max_seeds)])
        tests.append(estimands.Median.fixed(d))
    fields = estimands.Tested.__dataclass_fields__
    tested = estimands.Tested(*(np.array([float(getattr(t, f)) for t in tests]) for f in fields))
    codes = estimands.decide(tested, np.ones(len(FAMILY)))["code"]
    words = {estimands.SUPPORTED: "supported", estimands.CONTRADICTED: "contradicted"}
    return {"verdicts": {c.name: words.get(int(code), "undecided") for c, code in zip(FAMILY, codes)},
            "trials": len(CELLS) * max_seeds, "cpu_s": sum(max_seeds * c.cost_s for c in CELLS.values())}


def score(verdicts: dict, common: bool = False) -> tuple[int, int]:
    """(correct decisions, false ones) against the family's truth (claims expect A > B); `common`: only the
    claims every design can state."""
    right = wrong = 0
    for c in FAMILY:
        if c.name not in verdicts or (common and c.b_metric):
            continue
        v = verdicts[c.name]
        if not v.startswith(("supported", "contradicted")):
            continue
        says = 1 if v.startswith("supported") else -1
        truth = 0 if c.effect == 0 else (1 if c.effect > 0 else -1)
        right += says == truth
        wrong += says != truth
    return right, wrong


def decisions(families: int, max_seeds: int, scenarios=("gaussian", "diverged", "lognormal", "ties"),
              calibration_runs: int = 400) -> dict:
    """Correct decisions per CPU-hour and family-wise error of new, today's and the fixed grid, per scenario."""
    out = {}
    for scenario in scenarios:
        rng = np.random.default_rng(20)
        tallies = {k: {"right": 0, "families_wrong": 0, "cpu_s": 0.0, "trials": 0} for k in ("new", "today", "fixed")}
        t0 = time.perf_counter()
        for _ in range(families):
            values = draw_family(scenario, rng, max_seeds)
            for name, got in (("new", run_adaptive(values, max_seeds, rng)),
                              ("today", run_adaptive(values, max_seeds, rng, True)),
                              ("fixed", run_fixed(values, max_seeds))):
                right, wrong = score(got["verdicts"], common=True)
                t = tallies[name]
                t["right"] += right
                t["families_wrong"] += wrong > 0
                t["cpu_s"] += got["cpu_s"]
                t["trials"] += got["trials"]
        out[scenario] = {name: {"decisions_per_cpu_hour": t["right"] / (t["cpu_s"] / 3600),
                                "correct_per_family": t["right"] / families,
                                "fwer": t["families_wrong"] / families,
                                "fwer_se": math.sqrt(max(t["families_wrong"] / families * (1 - t["families_wrong"] / families),
                                                         1e-12) / families),
                                "trials_per_family": t["trials"] / families,
                                "cpu_hours_per_family": t["cpu_s"] / families / 3600}
                         for name, t in tallies.items()}
        out[scenario]["ratio_new_to_today"] = (out[scenario]["new"]["decisions_per_cpu_hour"]
                                               / max(out[scenario]["today"]["decisions_per_cpu_hour"], 1e-12))
        out[scenario]["seconds"] = time.perf_counter() - t0
    out["projection"] = projection_calibration(calibration_runs)
    out["families"], out["max_seeds"] = families, max_seeds
    return out


def projection_calibration(runs: int = 400) -> dict:
    """Median of (projected remaining units at the first look with ≥ 3 units) / (actual remaining units), for
    claims whose true win chance is 0.7, 0.85, 0.95 (level α/14 per side)."""
    from orchestrator.stats.estimands import first_passage, sign_log_e

    rng = np.random.default_rng(21)
    a, out = 0.05 / 14, {}
    for p in (0.7, 0.85, 0.95):
        ratios = []
        for _ in range(runs):
            s = np.cumsum(rng.random(600) < p)
            hit = next((i + 1 for i in range(600) if sign_log_e(s[i], i + 1) >= math.log(1 / a)), None)
            if hit is None or hit <= 3 or s[2] / 3 <= 0.5:
                continue
            projected = first_passage(int(s[2]), 3, s[2] / 3, a, 2000)[0]
            if math.isfinite(projected):
                ratios.append((projected - 3) / (hit - 3))
        out[str(p)] = {"median_ratio": float(np.median(ratios)), "claims": len(ratios)}
    return out


def old_package() -> str:
    """main at 6258d91's orchestrator package, extracted from git under its own name (imported once)."""
    name = f"orchestrator_{TODAY}"
    if name in sys.modules:
        return name
    import dipddpm.methods
    import dipddpm.metrics

    dipddpm.metrics.check_metric_name = dipddpm.methods.check_metric_name  # the one name it needs that moved
    blob = subprocess.run(["git", "archive", TODAY, "orchestrator"], cwd=ROOT, capture_output=True, check=True).stdout
    where = Path(tempfile.mkdtemp(prefix="dipddpm-today-"))
    atexit.register(shutil.rmtree, where, True)  # imported once per process; gone when it ends
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(where, filter="data")
    (where / "orchestrator").rename(where / name)
    sys.path.insert(0, str(where))
    importlib.import_module(name)
    return name


# ---------------------------------------------------------------- the verdicts at full size

def verdicts(families: int = 2000, adaptive_families: int = 2000, k: int = 6) -> dict:
    import verdict_sims as vs

    out = {"families_fixed": families, "families_adaptive": adaptive_families, "k": k, "scenarios": {}}
    for name, sc in vs.SCENARIOS.items():
        row = {}
        rng = np.random.default_rng(30)
        for e in sc.estimands:
            got = vs.fixed_path(name, e, families, k, 20, rng)
            row[f"fixed_{e}"] = {"fwer": got["false"], "se": vs.mc_se(got["false"], families)}
        t0 = time.perf_counter()
        got = vs.adaptive_path(name, "median", adaptive_families, k, 20, rng)
        row["adaptive_median"] = {"fwer": got["false"], "se": vs.mc_se(got["false"], adaptive_families),
                                  "trials_per_family": got["trials"], "seconds": time.perf_counter() - t0}
        out["scenarios"][name] = row
    rng = np.random.default_rng(31)
    power = {}
    for e in ("mean", "median"):
        got = vs.fixed_path("gaussian", e, families, 10, 20, rng, effect=1.0)
        power[f"fixed_{e}_1sigma_20units_k10"] = got["power"]
        got = vs.adaptive_path("gaussian", e, min(adaptive_families, 500), 10, 20, rng, effect=1.0)
        power[f"adaptive_{e}_1sigma_max20_k10"] = got["power"]
        power[f"adaptive_{e}_trials_per_family"] = got["trials"]
    out["power"] = power
    return out
