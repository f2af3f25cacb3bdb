"""`make bench`: where a sweep's time goes, each figure measured in one run beside its baseline.

    python benchmarks/bench.py [--only dip,eval,orchestration,cache,gpu,report,adaptive,decisions,verdicts]
                               [--trial-s 8] [--families N] [--out PATH] [--gpu-smoke] [--smoke]

1. dip: our DIP training step (DipFitter) against the plain nn.Sequential
   version of the same network (benchmarks/plain_dip.py), same parameters and
   input, in this process, at the cpu and gpu profiles' sizes; ratio ours/plain.
2. eval: a staged run with its in-loop evaluation (oracle PSNR, ES-WMV, SSIM
   every eval_every) against the same DIP steps without it; overhead in %.
3. orchestration: the 8 trials on a bare pool of 2 warm processes (the
   machine's limit; in chunks of 2 spread between the sweeps, against drift)
   against our sweep, 2 at a time on the local cluster, without and with W&B,
   and against plain Ray Tune (+ WandbLoggerCallback); ratio reference/sweep.
   Cluster start-up is measured apart.
4. cache: a hybrid sweep of 2 training configs × 3 sampling configs with the
   artefact cache against the same with --no-cache; ratio.
5. gpu (benchmarks/gpu_bench.py): bf16 autocast and channels_last against fp32 on
   the staged and hybrid hot loops, and 1, 2, 4 trials sharing one GPU; on a GPU
   only (--gpu-smoke runs its code on the CPU at tiny sizes, as a check).
6. report (benchmarks/stats_bench.py): `report` on 500, 1,000 and 5,000 records (copies of a real run under
   new seeds), tables and every file with its figures; target <= 15 s at 5,000.
7. adaptive (benchmarks/stats_bench.py): a synthetic method with known effects through the real searcher,
   store and report, against the fixed grid that reaches the same power; trials and error rates of both,
   and one claim update's cost at 100 and 4,000 records.
8. decisions (benchmarks/decisions_bench.py): a claim family drawn like the shipped sweeps (their effect
   sizes, units per seed and trial costs), per scenario (Gaussian, diverged runs, lognormal, ties): correct
   decisions per CPU-hour and family-wise false verdicts of this searcher, main's at 6258d91 and a fixed
   grid on the same draws (--families, default 200, max_seeds 12); and the projection's calibration.
9. verdicts (benchmarks/decisions_bench.py; not in the default run, ~11 min): every scenario of
   tests/verdict_sims.py on a fixed grid (median and mean) and through the adaptive searcher (median), at
   --families families of K = 6 (default 2,000), family-wise false verdicts ± one Monte-Carlo SE, and the
   power at 1σ.

Writes JSON (default benchmarks/results.json) and prints a rich table. Measures; never asserts.

--smoke runs every section at its smallest size (32 px; a few DIP steps; 2 tiny trials per sweep with the
simple net; 2-step DDPM training; gpu as --gpu-smoke; report on 50 records): a check that each section
runs to the end and writes its figures (tests/test_bench.py), in a few minutes on 2 cores. Its times are
not figures. The adaptive section is run at its own size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from dipddpm.trial import resolve  # noqa: E402
from timed_sweep import SMOKE, stage_es  # noqa: E402

SECTIONS = ("dip", "eval", "orchestration", "cache", "gpu", "report", "adaptive", "decisions", "verdicts")
DEFAULT = tuple(s for s in SECTIONS if s != "verdicts")  # verdicts at full size is ~11 min: asked for by name
# --smoke's trial layer where a section does not time the network itself: the smoke size, the simple net
SMOKE_TRIAL = {"data": SMOKE["data"], "dip": {"net": "simple"}}


# ---------------------------------------------------------------- 1. DIP step

def interleaved(steps: dict, n: int, warm: int = 3) -> dict:
    """Median seconds per call of each step function, calls alternated one by one (drift hits all alike)."""
    for fn in steps.values():
        for _ in range(warm):
            fn()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(n):
        for k, fn in steps.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def dip_step(profile: str, threads: int, steps: int, layers: tuple = (), warm: int = 3) -> dict:
    """Seconds per training step of our DipFitter and of the plain reference, same network and input.
    `layers`: over the profile (--smoke shrinks the image and the skip net, which the reference copies)."""
    from plain_dip import PlainStep, plain_skip

    from dipddpm.loop import DipFitter

    cfg = resolve(list(layers), profile)
    d, size = cfg.dip, cfg.data.size
    torch.set_num_threads(threads)
    ours = DipFitter(d, "astronaut", 0, size, torch.device("cpu"))
    plain = plain_skip(d.input_channels, 3, d.scales, d.channels, d.skip_channels, d.kernel)
    n_ours, n_plain = (sum(p.numel() for p in m.parameters()) for m in (ours.net, plain))
    assert n_ours == n_plain, f"parameter counts differ: {n_ours} vs {n_plain}"
    target = torch.rand((1, 3, size, size), generator=torch.Generator().manual_seed(0))
    ref = PlainStep(plain, ours.z.clone(), target, d.lr, d.reg_noise_std, d.output_ema or 0.0)
    med = interleaved({"ours": lambda: ours.step(target), "plain": ref}, steps, warm)
    return {"profile": profile, "size_px": size, "channels": d.channels, "scales": d.scales, "params": n_ours,
            "threads": threads, "steps": steps, "ours_ms": 1000 * med["ours"], "plain_ms": 1000 * med["plain"],
            "ratio": med["ours"] / med["plain"], "target": "<= 0.8"}


# ---------------------------------------------------------------- 2. evaluation overhead

def eval_overhead(iters: int, layers: tuple = ()) -> dict:
    """The staged loop's evaluation work (oracle-peak tracking, each stage's ES-WMV, and every eval_every
    and at each stage's end: SSIM, target PSNR, loss, the divergence check) timed beside the DIP steps it
    follows, step by step, as dipddpm/staged.py: fit_image does it."""
    from dipddpm.degradation import noise_level, observe, schedule_of
    from dipddpm.early_stopping import PeakTracker, WmvDetector
    from dipddpm.images import load_image
    from dipddpm.loop import DipFitter, check_finite
    from dipddpm.staged import _evaluate, detector, stage_targets

    # the cpu profile's 5 stages, shortened to `iters` in all: its eval_every, and its stage detectors
    # (W = P = 25) where a stage holds them
    per_stage = iters // 5
    cfg = resolve([*layers, ("bench", {"staged": {"iters_per_stage": per_stage},
                                       "es": stage_es(per_stage, "cpu")})], "cpu")
    torch.set_num_threads(1)
    schedule = schedule_of(cfg)
    obs = observe("astronaut", load_image("astronaut", cfg.data.size), schedule, noise_level(cfg, schedule), 0)
    stages = stage_targets(obs, cfg.staged, schedule, cfg.seed)
    x0, total = obs.x0.unsqueeze(0), per_stage * len(stages)
    fitter = DipFitter(cfg.dip, obs.name, cfg.seed, cfg.data.size, torch.device("cpu"))
    peak, var_curve = PeakTracker(x0, total), torch.full((total,), float("nan"))
    losses, ev = torch.full((total,), float("nan")), {k: [] for k in ("iter", "ssim", "psnr", "psnr_target",
                                                                         "loss", "wmv_var")}
    step_s = eval_s = 0.0
    it = 0
    for stage in stages:
        target = stage.target01.unsqueeze(0)
        wmv = WmvDetector(*detector(cfg), x0, total, curve=var_curve)  # each stage's own, as in fit_image
        for j in range(per_stage):
            t = time.perf_counter()
            est, out, loss = fitter.step(target, it)
            t1 = time.perf_counter()
            losses[it] = loss
            peak.update(est, it)
            wmv.update(out, it, est)
            it += 1
            if it % cfg.eval_every == 0 or j == per_stage - 1:
                check_finite(losses, it)
                _evaluate(ev, it, est, target, x0, losses, peak, wmv, cfg.eval_every)
            step_s, eval_s = step_s + t1 - t, eval_s + time.perf_counter() - t1
    return {"iters": it, "eval_every": cfg.eval_every, "stage_detector": list(detector(cfg)),
            "with_eval_s": step_s + eval_s, "without_s": step_s, "eval_s": eval_s,
            "overhead_pct": 100 * eval_s / step_s, "target": "<= 5%"}


# ---------------------------------------------------------------- 3. orchestration

def orchestration_config(iters: int, smoke: bool = False) -> dict:
    """A real staged trial (cpu profile) of `iters` DIP iterations in its 5 stages, each stage's detector
    one that fits the stage; `smoke`: at the smoke size with the simple net."""
    per_stage = max(12, iters // 5)
    layer = {"staged": {"iters_per_stage": per_stage}, "es": stage_es(per_stage, "cpu")}
    return layer | (SMOKE_TRIAL if smoke else {})


def trial_iters(trial_s: float) -> dict:
    """Iterations for a whole trial (DIP, evaluation, references, set-up) of about `trial_s` seconds
    here and now: two short trials timed in this process give the per-iteration and fixed parts."""
    from dipddpm import trial

    def timed(iters: int) -> float:
        t = time.perf_counter()
        trial.run(resolve([("bench", orchestration_config(iters) | {"seed": 99})], "cpu"))
        return time.perf_counter() - t

    torch.set_num_threads(1)
    timed(60)  # first-use imports, outside the timing
    short, long_ = timed(60), timed(240)
    per = max((long_ - short) / 180, 1e-3)
    fixed = max(short - 60 * per, 0.0)
    return {"iters": max(20, round((trial_s - fixed) / per)), "s_per_iter": per, "fixed_s": fixed}


def _pool_init(ready, layer: dict) -> None:
    """A pool worker: 1 thread (as each sweep trial gets) and every first-use cost paid before it is timed."""
    from dipddpm import trial

    torch.set_num_threads(1)
    trial.run(resolve([("bench", layer | {"seed": 99})], "cpu"))
    ready.put(os.getpid())


def _pool_trial(job: tuple) -> float:
    from dipddpm import trial

    layer, seed = job
    t = time.perf_counter()
    trial.run(resolve([("bench", layer | {"seed": seed})], "cpu"))
    return time.perf_counter() - t


class BarePool:
    """The machine's limit (docs/design.md: "Speed"): the same trials on a bare pool of as many processes as the
    sweep runs at once, imports warm, no Ray, no files, no W&B."""

    def __init__(self, processes: int, layer: dict):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        ready = ctx.Queue()
        self.pool = ctx.Pool(processes, initializer=_pool_init, initargs=(ready, layer))
        for _ in range(processes):  # every worker warm before anything is timed
            ready.get(timeout=300)

    def run(self, layer: dict, seeds: list[int]) -> dict:
        t = time.perf_counter()
        trial_s = self.pool.map(_pool_trial, [(layer, s) for s in seeds], chunksize=1)
        return {"wall_s": time.perf_counter() - t, "trial_s": trial_s}

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


def our_sweep(layer: dict, seeds: list[int], runs: Path, name: str, wandb_mode: str) -> dict:
    """Our sweep, 2 trials at a time; the trial phase (to the last record) and the closing report apart."""
    from orchestrator.sweep.runner import SweepOptions
    from orchestrator.sweep.spec import parse_spec
    from timed_sweep import timed_sweep

    os.environ["WANDB_MODE"] = wandb_mode
    spec = parse_spec({"name": name, "method": "staged", "base": layer, "grid": {"staged.variant": ["staged"]},
                       "seeds": seeds, "resources": {"cpu": 1, "gpu": 0}}, name)
    r = timed_sweep(spec, SweepOptions(profile="cpu", runs_dir=str(runs), live=False, project="dipddpm-bench"))
    run_dir, t0 = r.pop("run_dir"), r.pop("t0")
    # where the time went: each trial's own wall time, and when the first one began its work
    walls, starts, shipped, failed = [], [], [], []
    for line in (run_dir / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("status") != "ok":  # no wall time (timed_sweep printed why): named in the figures
            failed.append(f"{rec.get('trial_key')}: {rec.get('status')} ({rec.get('error')})")
            continue
        wall = rec["metrics"]["wall_s"]
        walls.append(wall)
        starts.append((run_dir / "trials" / rec["trial_key"] / "result.json").stat().st_mtime - wall - t0)
        # what crossed Ray for the trial: its files to the driver's node, images and cache entries
        shipped.append(sum((rec.get("transfer") or {}).get(k, 0) for k in
                           ("file_bytes_out", "image_bytes_in", "cache_bytes_in", "cache_bytes_out")))
    return r | {"trial_wall_s": walls, "failed": failed, "first_trial_start_s": min(starts, default=float("nan")),
                "bytes_shipped_per_trial": statistics.mean(shipped) if shipped else 0}


def plain_tune(layer: dict, seeds: list[int], runs: Path, with_wandb: bool) -> dict:
    """The same trials through Ray Tune as a user would write them: defaults, tune.report per evaluation."""
    from ray import tune

    def trainable(config):
        import torch as _torch

        from dipddpm import trial

        _torch.set_num_threads(1)
        cfg = resolve([("bench", config["layer"])], "cpu")
        res = trial.run(cfg, report=lambda step, m: tune.report(
            {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}))
        tune.report({"psnr": res.metrics.get("psnr", float("nan")), "done": 1})

    callbacks = []
    if with_wandb:
        from ray.air.integrations.wandb import WandbLoggerCallback

        callbacks.append(WandbLoggerCallback(project="dipddpm-bench", mode="offline", upload_timeout=60,
                                             dir=str(runs / "plain-wandb")))
    space = {"layer": tune.grid_search([layer | {"seed": s} for s in seeds])}
    old = os.environ.pop("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", None)  # plain: Tune's default loggers on
    try:
        tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}), param_space=space,
                           run_config=tune.RunConfig(name="plain", storage_path=str(runs / "plain"), verbose=0,
                                                     callbacks=callbacks))
        t0 = time.time()
        grid = tuner.fit()
        total = time.time() - t0
    finally:
        if old is not None:
            os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = old
    return {"total_s": total, "errors": sum(r.error is not None for r in grid)}


def orchestration(trial_s: float, smoke: bool = False) -> dict:
    """The reference is a bare pool of 2 warm processes running the same 8 trials (the machine's
    limit: two busy processes already slow each other here). It runs in chunks of 2 trials, one
    before each sweep: this machine's speed drifts by ±10% over minutes, and spreading the
    reference over the run lets the drift hit both sides alike. Ratio = reference / sweep.
    `smoke`: 2 trials of 60 iterations at the smoke size, no calibration."""
    import ray

    from orchestrator.sweep.runner import SweepOptions, start_ray

    seeds, conc = list(range(2 if smoke else 8)), 2
    size = {"iters": 60, "smoke": True} if smoke else trial_iters(trial_s)
    layer = orchestration_config(size["iters"], smoke)
    out = {"trials": len(seeds), "concurrency": conc, "trial_s_asked": trial_s, "calibration": size, "config": layer}
    pool = BarePool(conc, orchestration_config(20, smoke))
    t = time.time()
    os.environ["WANDB_MODE"] = "disabled"
    start_ray(SweepOptions())
    out["cluster_start_s"] = time.time() - t
    sweeps = [("ours", lambda runs: our_sweep(layer, seeds, runs, "ours", "disabled")),
              ("ours_wandb", lambda runs: our_sweep(layer, seeds, runs, "ours-wandb", "offline")),
              ("plain_tune", lambda runs: plain_tune(layer, seeds, runs, False)),
              ("plain_tune_wandb", lambda runs: plain_tune(layer, seeds, runs, True))]
    chunks = [seeds[i::len(sweeps)] for i in range(len(sweeps))]
    ref = {"wall_s": 0.0, "trial_s": []}
    with tempfile.TemporaryDirectory() as tmp:
        for (key, sweep), chunk in zip(sweeps, chunks):
            part = pool.run(layer, chunk)  # (--smoke: the last chunks are empty)
            ref["wall_s"] += part["wall_s"]
            ref["trial_s"] += part["trial_s"]
            out[key] = sweep(Path(tmp))
    ray.shutdown()
    pool.close()
    out["reference"] = ref | {"what": f"bare pool of {conc} warm processes, same trials, no Ray/files/W&B"}
    for key, _ in sweeps:
        r = out[key]
        r["efficiency"] = ref["wall_s"] / r.get("trials_s", r["total_s"])
        if "trials_s" in r:
            r["efficiency_incl_report"] = ref["wall_s"] / r["total_s"]
    out["target"] = "ours >= 0.95 of the reference without W&B, >= 0.92 with, above plain Ray Tune's"
    return out


# ---------------------------------------------------------------- 4. hybrid cache

def cache(train_steps: int, smoke: bool = False) -> dict:
    """2 training configs × 3 sampling configs as a sweep, with the cache (fresh) and with --no-cache.
    The driver's first-use imports are paid before either is timed (the first sweep would carry
    them alone); the trial phase (to the last record) and the closing report are measured apart.
    `smoke`: at the smoke size (32 px, a 2-level UNet trained on 16 crops)."""
    import ray

    import orchestrator.report.figures  # noqa: F401  first-use imports (matplotlib), outside the timing
    import orchestrator.report.html  # noqa: F401
    import ray.tune  # noqa: F401
    from orchestrator.sweep.runner import SweepOptions, start_ray
    from orchestrator.sweep.spec import parse_spec
    from timed_sweep import timed_sweep

    os.environ["WANDB_MODE"] = "disabled"
    start_ray(SweepOptions())
    base = {"ddpm": {"train_steps": train_steps}, "hybrid": {"start": "observation"}}
    if smoke:
        base = {"data": SMOKE["data"], "ddpm": SMOKE["ddpm"] | base["ddpm"], "hybrid": base["hybrid"]}
    grid = {"diffusion.beta_schedule": ["linear", "squaredcos_cap_v2"],
            "hybrid.sampler": ["onestep", "ddim", "ddpm"]}
    out = {"train_configs": 2, "sampling_configs": 3, "train_steps": train_steps}
    with tempfile.TemporaryDirectory() as tmp:
        for key, use in (("with_cache", True), ("without_cache", False)):
            spec = parse_spec({"name": key, "method": "hybrid", "base": base, "grid": grid,
                               "seeds": [0], "resources": {"cpu": 1, "gpu": 0}}, "bench")
            r = timed_sweep(spec, SweepOptions(profile="cpu", runs_dir=f"{tmp}/runs", cache_dir=f"{tmp}/cache",
                                               use_cache=use, live=False))
            out[f"{key}_s"], out[f"{key}_total_s"] = r["trials_s"], r["total_s"]
            out[f"{key}_records_ok"] = r["records_ok"]
    ray.shutdown()
    out["ratio"] = out["with_cache_s"] / out["without_cache_s"]
    out["ratio_incl_report"] = out["with_cache_total_s"] / out["without_cache_total_s"]
    out["target"] = "<= 0.5"
    return out


# ---------------------------------------------------------------- main

def run_section(name: str, args) -> dict | list:
    """One section's figures, at its full size or (args.smoke) its smallest."""
    smoke = args.smoke
    if name == "dip":
        if smoke:  # the skip net shrunk (the plain reference copies it), a few steps
            tiny = (("smoke", {"data": SMOKE["data"], "dip": SMOKE["dip"]}),)
            return [dip_step("cpu", 1, 5, tiny, warm=1), dip_step("gpu", os.cpu_count() or 1, 3, tiny, warm=1)]
        return [dip_step("cpu", 1, 150), dip_step("gpu", os.cpu_count() or 1, 4)]
    if name == "eval":
        return eval_overhead(60, (("smoke", SMOKE_TRIAL),)) if smoke else eval_overhead(500)
    if name == "orchestration":
        return orchestration(args.trial_s, smoke)
    if name == "cache":
        return cache(2 if smoke else 20, smoke)
    if name == "gpu":
        from gpu_bench import gpu

        return gpu(smoke=args.gpu_smoke or smoke, trials=2 if smoke else 8)
    import stats_bench

    if name == "report":
        return stats_bench.report_scale((50,) if smoke else (500, 1000, 5000))
    if name == "adaptive":
        return stats_bench.adaptive_both()
    import decisions_bench

    if name == "decisions":
        return decisions_bench.decisions(4 if smoke else args.families or 200, 12,
                                         ("gaussian",) if smoke else ("gaussian", "diverged", "lognormal", "ties"),
                                         calibration_runs=40 if smoke else 400)
    n = 20 if smoke else args.families or 2000
    return decisions_bench.verdicts(n, n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(DEFAULT),
                    help=f"comma-separated sections (default all but verdicts; of {', '.join(SECTIONS)})")
    ap.add_argument("--families", type=int, default=None,
                    help="synthetic families of the decisions (default 200) and verdicts (default 2000) sections")
    ap.add_argument("--trial-s", type=float, default=8.0,
                    help="seconds per orchestration trial (8 keeps make bench under 10 min; 30 is the design size, ~14 min)")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument("--gpu-smoke", action="store_true",
                    help="without a GPU: run the gpu section's code on the CPU at tiny sizes (a check, not figures)")
    ap.add_argument("--smoke", action="store_true",
                    help="every section at its smallest size (implies --gpu-smoke): a check that each runs, not figures")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        print(f"error: --only: unknown section {bad[0]!r} (expected some of {', '.join(SECTIONS)})", file=sys.stderr)
        return 2
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                           "cuda": torch.cuda.is_available()}, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    results["smoke"] = args.smoke
    t0 = time.time()
    for name in only:
        t = time.time()
        results[name] = run_section(name, args)
        results.setdefault("section_s", {})[name] = time.time() - t
        print(f"{name}: {time.time() - t:.0f} s", file=sys.stderr)
    results["total_s"] = time.time() - t0
    Path(args.out).write_text(json.dumps(results, indent=1))
    from summary_table import print_results

    print_results(results)
    print(f"wrote {args.out} in {results['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
