"""Run a sweep on Ray Tune: start or join a cluster, skip finished trials, run the rest.

No address: `ray.init(address="local")` starts an embedded cluster (a bare
ray.init() would silently join any cluster already running on the machine);
`--address` / RAY_ADDRESS joins an existing one. WANDB_MODE and the cache
location reach the workers through `runtime_env`.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from dipddpm.config import config_dict
from dipddpm.errors import ConfigError

from .spec import SweepSpec, Trial, expand, needs_gpu, resources_for
from .store import ResultsStore, fresh_dir

log = logging.getLogger(__name__)

# Tune's own CSV/JSON/TensorBoard loggers: we keep our own records.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Tune's own console tables would fight our live view; with the classic reporter, verbose=0 is silent.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# With those loggers off, Tune's end-of-run analysis warns that it found no per-trial files.
logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


@dataclass
class SweepOptions:
    profile: str = "auto"
    runs_dir: str = "runs"
    cache_dir: str | None = None
    use_cache: bool = True
    address: str | None = None
    max_concurrent: int | None = None
    fresh: bool = False
    retry_failed: bool = False
    max_failures: int = 1
    project: str | None = None
    live: bool = True


def worker_env(opts: SweepOptions) -> dict:
    from .wandb_log import wandb_mode

    env = {"WANDB_MODE": wandb_mode(), "WANDB_SILENT": "true", "RAY_USAGE_STATS_ENABLED": "0",
           "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    for name in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_BASE_URL"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def start_ray(opts: SweepOptions) -> bool:
    """Start or join Ray; False when this process already had a Ray session (reused, left running)."""
    import ray

    if ray.is_initialized():
        return False

    os.environ["WANDB_MODE"] = worker_env(opts)["WANDB_MODE"]  # the driver's environment too
    # A W&B service this process started earlier (a notebook's run) must not be inherited by the
    # workers: their runs would live in it, and outlive the workers if they are killed.
    os.environ.pop("WANDB_SERVICE", None)
    address = opts.address or os.environ.get("RAY_ADDRESS") or "local"
    if address == "local":  # an embedded, single-user cluster on this machine: no token to manage
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # Tune's import (~1.2 s on 2 cores) runs while ray.init waits on the cluster's processes.
    threading.Thread(target=_import_tune, name="import-ray-tune", daemon=True).start()
    ray.init(address=address, runtime_env={"env_vars": worker_env(opts)}, include_dashboard=False,
             log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    return True


def _import_tune() -> None:
    try:
        import ray.tune  # noqa: F401
    except Exception:  # noqa: BLE001  the sweep's own import raises it where it is needed
        pass


def choose_profile(requested: str, spec: SweepSpec) -> str:
    """auto -> gpu when the cluster has GPUs; a GPU profile on a GPU-less cluster is an error."""
    import ray

    gpus = float(ray.cluster_resources().get("GPU", 0))
    profile = ("gpu" if gpus > 0 else "cpu") if requested == "auto" else requested
    if needs_gpu(spec, profile) and gpus == 0:
        raise ConfigError(f"--profile {profile}: the Ray cluster has no GPUs (resources.gpu="
                          f"{resources_for(spec, profile).gpu:g}); use --profile cpu or join a GPU cluster with --address")
    return profile


def run_sweep(spec: SweepSpec, opts: SweepOptions, console) -> int:
    import ray

    owned = start_ray(opts)
    try:
        profile = choose_profile(opts.profile, spec)
        trials, merged = expand(spec, profile)
        run_dir = Path(opts.runs_dir).resolve() / spec.name / profile
        if opts.fresh:
            fresh_dir(run_dir)
        store = ResultsStore(run_dir)
        done = store.done_keys(opts.retry_failed)
        todo = interleave_by_artefact([t for t in trials if t.key not in done])
        console.print(f"sweep [bold]{spec.name}[/] · profile [bold]{profile}[/] · {len(trials)} trials "
                      f"({merged} merged cells) · {len(trials) - len(todo)} already done · {len(todo)} to run · {run_dir}")
        if todo:
            _fit(spec, opts, profile, todo, store, run_dir, console)
        keys = {t.key for t in trials}
        records = [r for r in store.records() if r["trial_key"] in keys]
        if records:
            final_report(spec, opts, records, run_dir, console)
        missing = len(keys) - len(records)
        failed = sum(r["status"] == "failed" for r in records)
        console.print(f"{len(records)} records in {store.path}" + (f" · {failed} failed" if failed else "")
                      + (f" · {missing} not finished (run again to resume)" if missing else ""))
        return 0 if not missing and not failed else 1
    finally:
        if owned:
            ray.shutdown()


def final_report(spec: SweepSpec, opts: SweepOptions, records: list[dict], run_dir: Path, console) -> None:
    """The sweep's closing summary: the report's own tables in the terminal, the report files, W&B's summary run.

    Records are already safe in results.jsonl: a failure here is a warning, never a lost result.
    """
    from .publish import log_summary_run
    from .report import build_report, print_tables, write_files

    try:
        report = build_report(run_dir, records, spec.metric, spec.mode)
        print_tables(report, console, ("cells", "comparisons", "best", "problems"))
        written = write_files(report, run_dir)
        console.print("report: " + " · ".join(str(p) for p in written))
        rid = log_summary_run(report, opts.project or os.environ.get("WANDB_PROJECT") or "dipddpm")
        if rid:
            console.print(f"W&B summary run {rid} (group {spec.name}) holds the comparison tables")
    except Exception as exc:  # noqa: BLE001
        log.warning("building the report failed: %s; results are in %s, retry with "
                    "`python -m orchestrator report %s`", exc, run_dir / "results.jsonl", run_dir)


def _fit(spec, opts, profile, todo: list[Trial], store, run_dir: Path, console) -> None:
    from ray import tune
    from rich.live import Live

    from .live import SweepProgress

    res = resources_for(spec, profile)
    ctx = {"sweep": spec.name, "profile": profile, "run_dir": str(run_dir), "cpus": res.cpu,
           "cache_dir": str(Path(opts.cache_dir).resolve()) if opts.cache_dir else None, "use_cache": opts.use_cache,
           "project": opts.project or os.environ.get("WANDB_PROJECT") or "dipddpm"}
    from .trainable import run_trial

    trainable = tune.with_resources(tune.with_parameters(run_trial, ctx=ctx), {"cpu": res.cpu, "gpu": res.gpu})
    space = {"trial": tune.grid_search([{"key": t.key, "config": config_dict(t.config), "cell": t.cell,
                                         "cell_key": t.cell_key} for t in todo])}
    concurrency = opts.max_concurrent or max(1, int(_cluster_cpus() // res.cpu))
    progress = SweepProgress(store, len(todo), spec.metric, spec.mode, concurrency)

    def name(trial) -> str:
        return trial.config["trial"]["key"]

    tuner = tune.Tuner(
        trainable, param_space=space,
        # reuse_actors: a trial runs in an actor that already imported torch (seconds per trial on 2 cores)
        tune_config=tune.TuneConfig(max_concurrent_trials=opts.max_concurrent, trial_name_creator=name, reuse_actors=True,
                                    trial_dirname_creator=name),
        run_config=tune.RunConfig(name="tune", storage_path=str(run_dir / "ray"), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=opts.max_failures),
                                  callbacks=[progress]))
    import contextlib

    live_view = Live(progress.render(), console=console, refresh_per_second=2) if opts.live else contextlib.nullcontext()
    with live_view as live:
        progress.live = live
        grid = tuner.fit()
    _record_failures(grid, todo, store, spec, profile)


def interleave_by_artefact(trials: list[Trial]) -> list[Trial]:
    """Order trials round-robin over the trained model they need, so the first trials to run
    train different models at once instead of one training while the others wait on its lock;
    within each model's trials, the longest work after training first (longest processing time
    first: the trial that trains also does the longest sampling, and short ones fill the gaps)."""
    import itertools

    if not any(t.config.method == "hybrid" for t in trials):
        return trials  # nothing shared to spread (and no diffusers import in the driver)
    from dipddpm.cache import cache_key
    from dipddpm.hybrid import ddpm_fields

    groups: dict[str, list[Trial]] = {}
    for t in trials:
        key = cache_key("ddpm", ddpm_fields(t.config), t.seed, "") if t.config.method == "hybrid" else t.key
        groups.setdefault(key, []).append(t)
    rounds = itertools.zip_longest(*(sorted(g, key=after_training_cost, reverse=True) for g in groups.values()))
    return [t for batch in rounds for t in batch if t is not None]


def after_training_cost(trial: Trial) -> float:
    """A hybrid trial's work once its model exists, in UNet calls: the reverse process from its
    start step (plus the start=dip fit, a DIP step counted as about a third of a UNet call)."""
    from dipddpm.degradation import noise_level, schedule_of
    from dipddpm.hybrid import NOISE_FLOOR_DDIM_STEPS, start_step
    from dipddpm.sampling import timesteps

    cfg = trial.config
    if cfg.method != "hybrid":
        return 0.0
    hy, schedule = cfg.hybrid, schedule_of(cfg)
    if hy.start == "noise":
        return float(NOISE_FLOOR_DDIM_STEPS * len(cfg.data.images))
    calls = len(timesteps(hy.sampler, start_step(cfg, schedule, noise_level(cfg, schedule)), hy.sample_steps))
    return len(cfg.data.images) * (calls + (hy.dip_iters or 0) / 3)


def _cluster_cpus() -> float:
    import ray

    return float(ray.cluster_resources().get("CPU", 1))


def _record_failures(grid, todo: list[Trial], store: ResultsStore, spec: SweepSpec, profile: str) -> None:
    """fit() does not raise on failed trials: turn each error in the grid into a `failed` record."""
    from dipddpm.record import versions

    by_key = {t.key: t for t in todo}
    for result in grid:
        if result.error is None:
            continue
        key = (result.config or {}).get("trial", {}).get("key")
        t = by_key.get(key)
        if t is None:
            continue
        msg = str(result.error).strip().splitlines()
        store.append({"trial_key": t.key, "sweep": spec.name, "method": t.config.method, "seed": t.seed,
                      "profile": profile, "status": "failed", "error": msg[-1] if msg else "error",
                      "config": config_dict(t.config), "cell": t.cell, "cell_key": t.cell_key, "metrics": {},
                      "per_image": {}, "versions": versions()})
