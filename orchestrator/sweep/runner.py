"""Run a sweep on Ray Tune: start or join a cluster, skip finished trials, run the rest.

No address: `ray.init(address="local")` starts an embedded cluster (a bare
ray.init() would silently join any cluster already running on the machine);
`--address` / RAY_ADDRESS joins an existing one, after checking that every
node runs this package's code. Nothing travels as a path (DESIGN §11): the
images go to the trials through the object store, their files come back
through the hub on the driver's node (`hub.py`), which also keeps the
artefact cache. Only WANDB_MODE reaches the workers through `runtime_env`;
W&B credentials never leave the driver.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from dipddpm.config import config_dict
from dipddpm.errors import ConfigError

from ..common.store import DriverLock, ResultsStore, fresh_dir
from .spec import SweepSpec, Trial, needs_gpu, plan, resources_for

log = logging.getLogger(__name__)

# Tune's own CSV/JSON/TensorBoard loggers: we keep our own records.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Tune's own console tables would fight our live view; with the classic reporter, verbose=0 is silent.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# With those loggers off, Tune's end-of-run analysis warns that it found no per-trial files.
logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


class _OurWords(logging.Filter):
    """Tune's Ctrl-C messages say to resume with Tuner.restore(...), which cannot add a trial: here the
    results store is the state and running the same command again resumes. Drop them, note the stop."""

    interrupted = False

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "Stop signal received" in text:
            _OurWords.interrupted = True
            return False
        return not ("Tuner.restore" in text or "Resume experiment with" in text or "Resume training with" in text)


logging.getLogger("ray.tune.tune").addFilter(_OurWords())
# Tune's own experiment state (under run_dir/ray) is not this sweep's state (results.jsonl is): when the
# disk is full its failed saves are noise beside our one line.
for _name in ("ray.tune.execution.experiment_state", "ray.train._internal.syncer"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


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
    max_trials: int = 5000
    replicate: dict | None = None  # command-line flags over the sweep's replicate: section
    wandb_timeout: float = 120.0  # seconds an upload batch, and the uploads left at the end, may take


# Never passed to a worker, in runtime_env or in the environment an embedded cluster inherits.
CREDENTIALS = ("WANDB_API_KEY",)


def worker_env() -> dict:
    """The environment every Ray worker gets: W&B's mode for the trials (offline unless off), no credentials."""
    from ..common.wandb_runs import wandb_mode, worker_mode

    return {"WANDB_MODE": worker_mode(wandb_mode()), "WANDB_SILENT": "true", "RAY_USAGE_STATS_ENABLED": "0",
            "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}


def ray_address(opts: SweepOptions) -> str:
    return opts.address or os.environ.get("RAY_ADDRESS") or "local"


def start_ray(opts: SweepOptions) -> bool:
    """Start or join Ray; False when this process already had a Ray session (reused, left running)."""
    import ray

    if ray.is_initialized():
        return False
    from ..common.wandb_runs import wandb_mode

    os.environ["WANDB_MODE"] = wandb_mode()  # decided once: the driver's own runs follow it
    # A W&B service this process started earlier (a notebook's run) must not be inherited by the
    # workers: their runs would live in it, and outlive the workers if they are killed.
    os.environ.pop("WANDB_SERVICE", None)
    address = ray_address(opts)
    if address == "local":  # an embedded, single-user cluster on this machine: no token to manage
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        # Ray's processes talk gRPC over loopback; an HTTP(S)_PROXY set for the outside world (or a dead
        # one) must not carry that traffic, or every call waits on the proxy.
        for var in ("NO_PROXY", "no_proxy"):
            have = [h for h in os.environ.get(var, "").split(",") if h]
            os.environ[var] = ",".join(have + [h for h in ("127.0.0.1", "localhost") if h not in have])
    # Tune's import (~1.2 s on 2 cores) runs while ray.init waits on the cluster's processes.
    threading.Thread(target=_import_tune, name="import-ray-tune", daemon=True).start()
    if address != "local":
        check_reachable(address)
    hidden = {k: os.environ.pop(k) for k in CREDENTIALS if k in os.environ}  # an embedded cluster inherits os.environ
    try:
        ray.init(address=address, runtime_env={"env_vars": worker_env()}, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    except ConnectionError as exc:
        raise ConfigError(f"--address {address}: no Ray cluster there ({str(exc).splitlines()[0][:200]}); start one "
                          "with `ray start --head` or check the address") from None
    finally:
        os.environ.update(hidden)
    return True


def check_reachable(address: str, within_s: float = 30.0) -> None:
    """A cluster address (host:port, ray://host:port) whose port answers within `within_s`, or a one-line
    ConfigError: Ray itself keeps retrying a dead address for many minutes."""
    import socket
    import time

    hostport = address.split("://", 1)[-1].rstrip("/")
    if address in ("auto",) or ":" not in hostport:
        return  # `auto` finds a local cluster by its files; Ray says so at once when there is none
    host, _, port = hostport.rpartition(":")
    if not port.isdigit():
        raise ConfigError(f"--address {address}: expected HOST:PORT (e.g. 10.0.0.5:6379), got port {port!r}")
    deadline, last, refused = time.monotonic() + within_s, None, 0
    while time.monotonic() < deadline and refused < 3:  # a head starting up may refuse for a moment
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=min(5.0, within_s)):
                return
        except OSError as exc:
            last = exc
            refused = refused + 1 if isinstance(exc, ConnectionRefusedError) else 0
            time.sleep(1.0)
    why = getattr(last, "strerror", None) or str(last) or "no answer"
    raise ConfigError(f"--address {address}: no Ray cluster answers there within {within_s:.0f} s ({why}); start "
                      "one with `ray start --head --port=PORT` or check the address")


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


@dataclass
class Outcome:
    code: int  # 0 done; 1 trials missing or failed, or the report not written; 3 W&B uploads left
    run_dir: Path


def run_sweep(spec: SweepSpec, opts: SweepOptions, console) -> Outcome:
    import ray

    owned = start_ray(opts)
    try:
        if ray_address(opts) != "local":
            from .cluster import check_nodes

            nodes = check_nodes()
            console.print(f"cluster: {len(nodes)} nodes, each running this package's code {nodes[0]['code']}")
        profile = choose_profile(opts.profile, spec)
        sweep_plan = plan(spec, profile, max_trials=opts.max_trials, replicate=opts.replicate)
        run_dir = Path(opts.runs_dir).resolve() / spec.name / profile
        with DriverLock(run_dir):
            return Outcome(_run_locked(spec, opts, profile, sweep_plan, run_dir, console), run_dir)
    finally:
        if owned:
            ray.shutdown()


def _run_locked(spec: SweepSpec, opts: SweepOptions, profile: str, sweep_plan, run_dir: Path, console) -> int:
    """The sweep, with this driver the only one on its run folder."""
    if opts.fresh:
        fresh_dir(run_dir)
    store = ResultsStore(run_dir)
    sweep_plan.design.save(run_dir)  # `report` on this folder pairs against this sweep's own base
    done = store.done_keys(opts.retry_failed)
    from ..common.wandb_runs import wandb_mode
    from .wandb_log import OnlineSync

    project = opts.project or os.environ.get("WANDB_PROJECT") or "dipddpm"
    sync = OnlineSync(project, timeout=opts.wandb_timeout) if wandb_mode() == "online" else None
    try:
        if sweep_plan.replicate is not None:
            searcher, expected = _adaptive(spec, opts, profile, sweep_plan, store, done, console, sync)
        else:
            searcher, trials = None, sweep_plan.trials
            todo = interleave_by_artefact([t for t in trials if t.key not in done])
            console.print(f"sweep [bold]{spec.name}[/] · profile [bold]{profile}[/] · {len(trials)} trials "
                          f"({sweep_plan.merged} merged cells) · {len(trials) - len(todo)} already done · {len(todo)} "
                          f"to run · {run_dir}")
            if todo:
                from .adaptive import PlanSearcher

                _fit(spec, opts, profile, todo, store, run_dir, console,
                     PlanSearcher(todo, payload_for(sweep_plan.design)), sync)
            expected = {t.key for t in trials}
        keys = {t.key for t in sweep_plan.trials}
        records = [r for r in store.records() if r["trial_key"] in keys]
        reported = final_report(spec, opts, records, run_dir, console, sweep_plan.design, sync) if records else True
    finally:
        not_uploaded = _close_sync(sync, run_dir, console)
    missing = len(expected - {r["trial_key"] for r in records})
    failed = sum(r["status"] == "failed" for r in records)
    if searcher is not None:
        console.print(f"adaptive replication: {searcher.status()}")
    console.print(f"{len(records)} records in {store.path}" + (f" · {failed} failed" if failed else "")
                  + (f" · {missing} not finished (run again to resume)" if missing else ""))
    if missing or failed or not reported:
        return 1
    return 3 if not_uploaded else 0


def _close_sync(sync, run_dir: Path, console) -> list[str]:
    """Wait (bounded) for the W&B uploads still queued; name the runs that did not make it."""
    if sync is None:
        return []
    queued = sync.pending.qsize()
    if queued:
        console.print(f"uploading {queued} W&B runs still queued (at most {sync.timeout:.0f} s)…")
    left = sync.close()
    if left:
        console.print(f"W&B: {len(left)} runs were not uploaded ({', '.join(Path(f).name for f in left[:3])}"
                      f"{', …' if len(left) > 3 else ''}); they are safe in {run_dir / 'wandb'}: upload them later "
                      f"with `python -m orchestrator publish {run_dir}`", soft_wrap=True, markup=False)
    return left


def _adaptive(spec, opts, profile, sweep_plan, store, done, console, sync=None):
    """Run what the adaptive searcher proposes; (the searcher, the trial keys this run owes a record)."""
    from .adaptive import AdaptiveSearcher

    searcher = AdaptiveSearcher(sweep_plan, store.history(), done, spec.metric, payload_for(sweep_plan.design),
                                interleave_by_artefact)
    rule = sweep_plan.replicate
    initial = [t for t in sweep_plan.initial() if t.key not in done]
    console.print(f"sweep [bold]{spec.name}[/] · profile [bold]{profile}[/] · adaptive: every cell at seeds "
                  f"0–{rule.min_seeds - 1}, claimed cells up to seed {rule.max_seeds - 1} · {len(initial)} first "
                  f"trials to run · {searcher.status()} · {store.dir}")
    if searcher.has_work():
        _fit(spec, opts, profile, initial, store, store.dir, console, searcher, sync)
    return searcher, {t.key for t in sweep_plan.initial()} | searcher.proposed


def final_report(spec: SweepSpec, opts: SweepOptions, records: list[dict], run_dir: Path, console, design,
                 sync=None) -> bool:
    """The sweep's closing summary: the report's own tables in the terminal, the report files, W&B's summary run
    (offline, then uploaded with the trials' runs when the driver is online). False when the files could not
    be written (one line says why); records are already safe in results.jsonl either way."""
    from ..common.wandb_runs import summary_run_id
    from ..report.build import build_report, print_tables, write_files
    from ..report.publish import log_summary_run, offline_runs

    try:
        report = build_report(run_dir, records, spec.metric, spec.mode, design)
        print_tables(report, console, ("cells", "comparisons", "best", "problems", "claims"))
        written = write_files(report, run_dir)
        console.print("report: " + " · ".join(str(p) for p in written))
    except OSError as exc:
        console.print(f"error: {exc.filename or run_dir}: {exc.strerror or exc}; the report was not written (the "
                      f"records are safe in {run_dir / 'results.jsonl'}); free space and run "
                      f"`python -m orchestrator report {run_dir}`", markup=False)
        return False
    except Exception as exc:  # noqa: BLE001 - a report bug must not hide that the records are safe
        log.warning("building the report failed: %s; results are in %s, retry with "
                    "`python -m orchestrator report %s`", exc, run_dir / "results.jsonl", run_dir)
        return False
    rid = log_summary_run(report, opts.project or os.environ.get("WANDB_PROJECT") or "dipddpm")
    if rid:
        console.print(f"W&B summary run {rid} (group {spec.name}/{report.meta['profile']}) holds the comparison tables")
        if sync is not None:
            for folder in offline_runs(run_dir):
                if folder.name.endswith(summary_run_id(spec.name, report.meta["profile"])):
                    sync.submit(folder)
    return True


def trial_payload(t: Trial) -> dict:
    """What Tune hands the trainable for one trial: its config, cell and images as data (no paths)."""
    return {"trial": {"key": t.key, "config": config_dict(t.config), "cell": t.cell, "cell_key": t.cell_key,
                      "images": t.described_images()}}


def payload_for(design):
    """trial -> its payload plus every grid axis (the cell's value or the base's) and the seed at the top
    level, so Tune (ExperimentAnalysis, ResultGrid) sees them as the trial's hyperparameters."""
    def payload(t: Trial) -> dict:
        point = design.point(t.cell_key)
        axes = {a: design.value(point, a) if point is not None else t.cell.get(a) for a in design.axes}
        return trial_payload(t) | axes | {"seed": t.seed}

    return payload


def _fit(spec, opts, profile, todo: list[Trial], store, run_dir: Path, console, searcher, sync=None) -> None:
    """Run what `searcher` proposes on Tune (a PlanSearcher: the grid's `todo`; an AdaptiveSearcher: the first
    trials `todo`, then seeds while claims are undecided), one slot per trial the cluster can hold."""
    import ray
    from ray import tune
    from rich.live import Live

    from dipddpm.cache import default_root

    from .cluster import code_fingerprint
    from .hub import start_hub
    from .live import StopOnWriteError, SweepProgress
    from .trainable import run_trial
    from ..common.wandb_runs import wandb_mode, worker_mode

    res = resources_for(spec, profile)
    project = opts.project or os.environ.get("WANDB_PROJECT") or "dipddpm"
    ctx = {"sweep": spec.name, "profile": profile, "cpus": res.cpu, "use_cache": opts.use_cache, "project": project,
           "run_uid": store.run_uid(), "code": code_fingerprint(), "wandb_mode": worker_mode(wandb_mode())}
    hub = start_hub(run_dir, str(Path(opts.cache_dir or default_root()).resolve()))
    # Each file image once in the object store; a trial fetches only its own (bundled ones travel by name).
    files = {i.sha256: i for t in searcher.all_trials() for i in t.images.all() if not i.bundled}
    payloads = {sha: ray.put(img.payload) for sha, img in files.items()}
    trainable = tune.with_resources(tune.with_parameters(run_trial, ctx=ctx, payloads=payloads, hub=hub),
                                    {"cpu": res.cpu, "gpu": res.gpu})
    concurrency = opts.max_concurrent or max(1, int(_cluster_cpus() // res.cpu))
    live = opts.live and console.is_terminal  # a log or a pipe gets one line per finished trial instead
    progress = SweepProgress(store, len(todo), spec.metric, spec.mode, concurrency, sync, searcher,
                             console=None if live else console)

    def name(trial) -> str:
        return trial.config["trial"]["key"]

    # Tune asks the searcher for the next trial whenever one of `concurrency` slots frees; reuse_actors: a
    # trial runs in an actor that already imported torch (seconds per trial on 2 cores)
    tune_config = tune.TuneConfig(search_alg=searcher, num_samples=-1, max_concurrent_trials=concurrency,
                                  trial_name_creator=name, trial_dirname_creator=name, reuse_actors=True)
    tuner = tune.Tuner(
        trainable, param_space={}, tune_config=tune_config,
        run_config=tune.RunConfig(name="tune", storage_path=str(run_dir / "ray"), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=opts.max_failures),
                                  callbacks=[progress], stop=StopOnWriteError(progress)))
    import contextlib

    live_view = Live(progress.render(), console=console, refresh_per_second=2) if live else contextlib.nullcontext()
    with live_view as live:
        progress.live = live
        grid = tuner.fit()
    if progress.write_error is not None:
        raise progress.write_error  # the CLI prints it as one line; the records before it are whole
    if _OurWords.interrupted:
        console.print(f"interrupted: {len(store.done_keys())} finished trials are safe in {store.path}; run the same "
                      "command again to resume (finished trials are skipped)", soft_wrap=True, markup=False)
    late = _reconcile(grid, [t for t in searcher.all_trials() if t.key in searcher.proposed], store, spec, profile)
    if late or progress.errors:
        console.print(f"{late} records written after the trials ({len(progress.errors)} callback errors: "
                      f"{progress.errors[0] if progress.errors else ''})")
    ray.kill(hub)


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
        hybrid = t.config.method == "hybrid"
        key = cache_key("ddpm", ddpm_fields(t.config, t.images.pool), t.seed, "") if hybrid else t.key
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


def _reconcile(grid, todo: list[Trial], store: ResultsStore, spec: SweepSpec, profile: str) -> int:
    """After fit(): every trial of this run gets its terminal record. A final result that carries a
    record the callback could not write is written now; a trial that ended in an error (fit() does not
    raise on those) becomes a `failed` record. Returns how many records this wrote."""
    import json

    from dipddpm.record import versions

    by_key, written = {t.key: t for t in todo}, 0
    for result in grid:
        key = (result.config or {}).get("trial", {}).get("key")
        t = by_key.get(key)
        if t is None or key in store.done_keys():
            continue
        final = (result.metrics or {}).get("record")
        if final is not None:
            record = json.loads(final)
        elif result.error is not None:
            msg = str(result.error).strip().splitlines()
            record = {"trial_key": t.key, "sweep": spec.name, "method": t.config.method, "seed": t.seed,
                      "profile": profile, "status": "failed", "error": msg[-1] if msg else "error",
                      "config": config_dict(t.config), "images": t.described_images(), "cell": t.cell,
                      "cell_key": t.cell_key, "metrics": {}, "per_image": {}, "versions": versions()}
        else:
            continue
        try:
            written += store.append(record)
        except Exception as exc:  # noqa: BLE001 - one bad record must not cost the others
            log.warning("trial %s: its record could not be written (%s); rerun the sweep to retry", key, exc)
    return written
