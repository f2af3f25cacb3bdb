"""Run a sweep on Ray Tune: start or join a cluster, skip finished trials, run the rest.

No address: `ray.init(address="local")` starts an embedded cluster (a bare
ray.init() would silently join any cluster already running on the machine);
`--address` / RAY_ADDRESS joins an existing one, after checking that every
node runs this package's code. Nothing travels as a path (docs/design.md,
"The cluster data path"): the images go to the trials through the object store,
their files come back through the hub on the driver's node (`hub.py`), which also
keeps the artefact cache. Only WANDB_MODE reaches the workers through
`runtime_env`; W&B credentials never leave the driver.

The sweep's state travels as one object (`SweepRun`); importing this module
changes nothing (Ray and Tune are quieted when a sweep starts).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dipddpm.config import config_dict
from dipddpm.errors import ConfigError

from ..common.store import DriverLock, ResultsStore, fresh_dir
from ..wandb_io.naming import project as project_name
from ..wandb_io.naming import wandb_mode, worker_mode
from .plan import Plan, Trial, needs_gpu, plan, resources_for
from .spec import SweepSpec

log = logging.getLogger(__name__)


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
    trial_timeout: float | None = None  # seconds a trial may run (None: the sweep file's, else 5× the median trial)


# Never passed to a worker, in runtime_env or in the environment an embedded cluster inherits.
CREDENTIALS = ("WANDB_API_KEY",)


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


_WORDS = _OurWords()


def quiet_tune() -> None:
    """Tune's own loggers, console tables and state saves are not this sweep's: our records, our live view,
    our one line on a full disk. Called when a sweep starts, not on import."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with the classic reporter, verbose=0 is silent
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    tune_log = logging.getLogger("ray.tune.tune")
    if _WORDS not in tune_log.filters:
        tune_log.addFilter(_WORDS)
    for name in ("ray.tune.execution.experiment_state", "ray.train._internal.syncer"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def worker_env() -> dict:
    """The environment every Ray worker gets: W&B's mode for the trials (offline unless off), no credentials."""
    return {"WANDB_MODE": worker_mode(wandb_mode()), "WANDB_SILENT": "true", "RAY_USAGE_STATS_ENABLED": "0",
            "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}


def ray_address(opts: SweepOptions) -> str:
    return opts.address or os.environ.get("RAY_ADDRESS") or "local"


def start_ray(opts: SweepOptions) -> bool:
    """Start or join Ray; False when this process already had a Ray session (reused, left running)."""
    import ray

    quiet_tune()
    if ray.is_initialized():
        return False
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
            return Outcome(SweepRun(spec, opts, profile, sweep_plan, run_dir, console).run(), run_dir)
    finally:
        if owned:
            ray.shutdown()


@dataclass
class SweepRun:
    """One sweep on one run folder, with this driver the only one on it: what every step of the run reads."""

    spec: SweepSpec
    opts: SweepOptions
    profile: str
    plan: Plan
    run_dir: Path
    console: object
    store: ResultsStore | None = None
    sync: object = None  # OnlineSync when the driver is online
    searcher: object = None
    expected: set = field(default_factory=set)  # the trial keys this run owes a record
    unstarted: int = 0  # first-seed trials the budget left unstarted

    @property
    def project(self) -> str:
        return project_name(self.opts.project)

    def concurrency(self) -> int:
        """Trials at once: --max-concurrent, else as many as the cluster's CPUs hold."""
        return self.opts.max_concurrent or max(1, int(_cluster_cpus() // resources_for(self.spec, self.profile).cpu))

    def run(self) -> int:
        if self.opts.fresh:
            fresh_dir(self.run_dir)
        self.store = ResultsStore(self.run_dir)
        self.plan.design.parallel = self.concurrency()
        self._name_earlier_design()
        self.plan.design.save(self.run_dir)  # `report` on this folder pairs against this sweep's own base
        done = self.store.done_keys(self.opts.retry_failed)
        if wandb_mode() == "online":
            from ..wandb_io.sync import OnlineSync

            self.sync = OnlineSync(self.project, timeout=self.opts.wandb_timeout)
        try:
            if self.plan.replicate is not None:
                self._adaptive(done)
            else:
                self._fixed(done)
            keys = {t.key for t in self.plan.trials}
            records = [r for r in self.store.records() if r.trial_key in keys]
            reported = self.final_report(records) if records else True
        finally:
            not_uploaded = self._close_sync()
        return self._closing(records, reported, not_uploaded)

    def _name_earlier_design(self) -> None:
        """Records of an earlier design of this sweep (an edited base or grid) stay in results.jsonl and are left
        out of every table, claim and best: said in one line, before anything runs."""
        from ..common import design as design_mod

        stale = design_mod.stale_records(self.store.records(), self.plan.design)
        if not stale:
            return
        try:
            old = design_mod.load(self.run_dir)
        except ConfigError:
            old = None
        what = design_mod.changes(old, self.plan.design) if old is not None else "its cells"
        self.console.print(f"{len(stale)} records of an earlier design of this sweep ({what}) stay in "
                           f"{self.store.path} and are left out of every table, claim and best; --fresh starts over",
                           markup=False, soft_wrap=True)

    def _fixed(self, done: set[str]) -> None:
        from .searcher import PlanSearcher

        trials = self.plan.trials
        todo = interleave_by_artefact([t for t in trials if t.key not in done])
        self.console.print(f"sweep [bold]{self.spec.name}[/] · profile [bold]{self.profile}[/] · {len(trials)} trials "
                           f"({self.plan.merged} merged cells) · {len(trials) - len(todo)} already done · {len(todo)} "
                           f"to run · {self.run_dir}")
        if todo:
            self._fit(todo, PlanSearcher(todo, payload_for(self.plan.design)))
        self.expected = {t.key for t in trials}

    def _adaptive(self, done: set[str]) -> None:
        """Run what the adaptive searcher proposes."""
        from .searcher import BUDGET_HOURS, BUDGET_TRIALS, AdaptiveSearcher

        self.searcher = AdaptiveSearcher(self.plan, self.store.records(), done, self.spec.metric,
                                         payload_for(self.plan.design), interleave_by_artefact,
                                         parallel=self.plan.design.parallel or 1)
        rule = self.plan.replicate
        initial = [t for t in self.plan.initial() if t.key not in done]
        self.console.print(f"sweep [bold]{self.spec.name}[/] · profile [bold]{self.profile}[/] · adaptive: every cell "
                           f"at seeds 0–{rule.min_seeds - 1}, claimed cells up to seed {rule.max_seeds - 1} · "
                           f"{len(initial)} first trials to run · {self.searcher.status()} · {self.store.dir}")
        if self.searcher.has_work():
            self._fit(initial, self.searcher)
        # what this run owes a record: what it started, and the first seeds unless the budget stopped it first
        initial = {t.key for t in self.plan.initial()}
        budget = self.searcher.reason in (BUDGET_TRIALS, BUDGET_HOURS)
        self.unstarted = len(initial - self.searcher.proposed - done) if budget else 0
        self.expected = (set() if budget else initial - done) | self.searcher.proposed

    def _closing(self, records, reported: bool, not_uploaded: list) -> int:
        missing = len(self.expected - {r.trial_key for r in records})
        failed = sum(r.status == "failed" for r in records)
        if self.searcher is not None:
            self.console.print(f"adaptive replication: {self.searcher.status()}")
            if self.unstarted:
                self.console.print(f"the budget was spent before {self.unstarted} first-seed trials of the grid "
                                   "started (the questions' cells came first); run the same command again, with a "
                                   "larger --budget-hours, to add them")
        self.console.print(f"{len(records)} records in {self.store.path}" + (f" · {failed} failed" if failed else "")
                           + (f" · {missing} not finished (run again to resume)" if missing else ""))
        if missing or failed or not reported:
            return 1
        return 3 if not_uploaded else 0

    def _close_sync(self) -> list[str]:
        """Wait (bounded) for the W&B uploads still queued; name the runs that did not make it."""
        if self.sync is None:
            return []
        queued = self.sync.pending.qsize()
        if queued:
            self.console.print(f"uploading {queued} W&B runs still queued (at most {self.sync.timeout:.0f} s)…")
        left = self.sync.close()
        if left:
            self.console.print(f"W&B: {len(left)} runs were not uploaded ({', '.join(Path(f).name for f in left[:3])}"
                               f"{', …' if len(left) > 3 else ''}); they are safe in {self.run_dir / 'wandb'}: upload "
                               f"them later with `python -m orchestrator publish {self.run_dir}`", soft_wrap=True,
                               markup=False)
        return left

    def final_report(self, records: list) -> bool:
        """The sweep's closing summary: the report's own tables in the terminal, the report files, W&B's summary
        run (offline, then uploaded with the trials' runs when the driver is online). False when the files could
        not be written (one line says why); records are already safe in results.jsonl either way."""
        from ..report.build import build_report, print_tables, write_files
        from ..wandb_io.naming import summary_run_id
        from ..wandb_io.publish import log_summary_run, offline_runs

        run_dir = self.run_dir
        try:
            report = build_report(run_dir, records, self.spec.metric, self.spec.mode, self.plan.design)
            print_tables(report, self.console, ("cells", "comparisons", "best", "problems", "claims"))
            written = write_files(report, run_dir)
            self.console.print("report: " + " · ".join(str(p) for p in written))
        except OSError as exc:
            self.console.print(f"error: {exc.filename or run_dir}: {exc.strerror or exc}; the report was not written "
                               f"(the records are safe in {run_dir / 'results.jsonl'}); free space and run "
                               f"`python -m orchestrator report {run_dir}`", markup=False)
            return False
        except Exception as exc:  # noqa: BLE001 - a report bug must not hide that the records are safe
            log.warning("building the report failed: %s; results are in %s, retry with "
                        "`python -m orchestrator report %s`", exc, run_dir / "results.jsonl", run_dir)
            return False
        rid = log_summary_run(report, self.project)
        if rid:
            self.console.print(f"W&B summary run {rid} (group {self.spec.name}/{report.meta['profile']}) holds the "
                               "comparison tables")
            if self.sync is not None:
                for folder in offline_runs(run_dir):
                    if folder.name.endswith(summary_run_id(self.spec.name, report.meta["profile"])):
                        self.sync.submit(folder)
        return True

    def _fit(self, todo: list[Trial], searcher) -> None:
        """Run what `searcher` proposes on Tune (a PlanSearcher: the grid's `todo`; an AdaptiveSearcher: the
        first trials `todo`, then seeds while claims are undecided), one slot per trial the cluster can hold."""
        import ray
        from ray import tune
        from rich.live import Live

        from dipddpm.cache import default_root

        from .cluster import code_fingerprint
        from .hub import start_hub
        from .live import SweepView
        from .recorder import Recorder, StopOnWriteError
        from .trainable import run_trial

        res = resources_for(self.spec, self.profile)
        ctx = {"sweep": self.spec.name, "profile": self.profile, "cpus": res.cpu, "use_cache": self.opts.use_cache,
               "project": self.project, "run_uid": self.store.run_uid(), "code": code_fingerprint(),
               "wandb_mode": worker_mode(wandb_mode())}
        hub = start_hub(self.run_dir, str(Path(self.opts.cache_dir or default_root()).resolve()))
        # Each file image once in the object store; a trial fetches only its own (bundled ones travel by name).
        files = {i.sha256: i for t in searcher.all_trials() for i in t.images.all() if not i.bundled}
        payloads = {sha: ray.put(img.payload) for sha, img in files.items()}
        trainable = tune.with_resources(tune.with_parameters(run_trial, ctx=ctx, payloads=payloads, hub=hub),
                                        {"cpu": res.cpu, "gpu": res.gpu})
        concurrency = self.concurrency()
        live = self.opts.live and self.console.is_terminal  # a log or a pipe gets one line per finished trial
        view = SweepView(len(todo), self.spec.metric, self.spec.mode, concurrency, searcher,
                         console=None if live else self.console)
        timeout = self.opts.trial_timeout if self.opts.trial_timeout is not None else self.spec.trial_timeout
        recorder = Recorder(self.store, view, searcher, self.sync, timeout)

        def name(trial) -> str:
            return trial.config["trial"]["key"]

        # Tune asks the searcher for the next trial whenever one of `concurrency` slots frees; reuse_actors: a
        # trial runs in an actor that already imported torch (seconds per trial on 2 cores)
        tune_config = tune.TuneConfig(search_alg=searcher, num_samples=-1, max_concurrent_trials=concurrency,
                                      trial_name_creator=name, trial_dirname_creator=name, reuse_actors=True)
        tuner = tune.Tuner(
            trainable, param_space={}, tune_config=tune_config,
            run_config=tune.RunConfig(name="tune", storage_path=str(self.run_dir / "ray"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=self.opts.max_failures),
                                      callbacks=[recorder], stop=StopOnWriteError(recorder)))
        live_view = Live(view.render(), console=self.console, refresh_per_second=2) if live else \
            contextlib.nullcontext()
        with live_view as shown:
            view.live = shown
            grid = tuner.fit()
        if recorder.write_error is not None:
            raise recorder.write_error  # the CLI prints it as one line; the records before it are whole
        if _OurWords.interrupted:
            self.console.print(f"interrupted: {len(self.store.done_keys())} finished trials are safe in "
                               f"{self.store.path}; run the same command again to resume (finished trials are "
                               "skipped)", soft_wrap=True, markup=False)
        late = recorder.reconcile(grid, [t for t in searcher.all_trials() if t.key in searcher.proposed],
                                  self.spec.name, self.profile)
        if late or recorder.errors:
            self.console.print(f"{late} records written after the trials ({len(recorder.errors)} callback errors: "
                               f"{recorder.errors[0] if recorder.errors else ''})")
        ray.kill(hub)


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


def interleave_by_artefact(trials: list[Trial]) -> list[Trial]:
    """Order trials round-robin over the shared artefact their method says they need first (a hybrid trial's
    trained model), so the first trials to run make different artefacts at once instead of one making while
    the others wait on its lease; within each artefact's trials, the longest work after it first (longest
    processing time first: the trial that makes it also does the longest sampling, and short ones fill gaps)."""
    import itertools

    from dipddpm.methods import get

    groups: dict[str, list[Trial]] = {}
    for t in trials:
        method = get(t.config.method)
        key = method.artefact(t.config, t.images) if method.artefact is not None else t.key
        groups.setdefault(key, []).append(t)
    if len(groups) == len(trials):
        return trials  # nothing shared to spread
    rounds = itertools.zip_longest(*(sorted(g, key=after_artefact_cost, reverse=True) for g in groups.values()))
    return [t for batch in rounds for t in batch if t is not None]


def after_artefact_cost(trial: Trial) -> float:
    """A trial's work once its shared artefact exists, as its method estimates it."""
    from dipddpm.methods import get

    return get(trial.config.method).after_artefact_cost(trial.config)


def _cluster_cpus() -> float:
    import ray

    return float(ray.cluster_resources().get("CPU", 1))
