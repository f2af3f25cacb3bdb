"""The driver's recorder: the one writer of results.jsonl while a sweep runs.

A Ray Tune callback on the driver. Each finished trial's record arrives in its
final `tune.report`; the recorder appends it to the store (trying again after an
I/O hiccup), feeds it to the searcher (adaptive replication decides on it), queues
its offline W&B run for upload when the driver is online, and tells the live view
(`live.py`), which only shows. It also keeps each trial's time: a trial running
past its timeout (a hung worker sends no result to stop on) has its actor killed,
which Tune retries like a crash. After `fit()`, `reconcile` writes what the
callbacks could not: the record a final result carries, or a failed record for a
trial that ended in an error (Tune does not raise on those); a failure that was the
orchestrator's own (its hub lost) is marked so that a plain rerun retries it.

Nothing raised here may reach Tune: an exception in a callback ends `fit()` and
with it the sweep. Each hook logs what went wrong and carries on.
"""

from __future__ import annotations

import functools
import json
import logging
import statistics
import time

from ray.tune import Callback, Stopper

from dipddpm.config import config_dict
from dipddpm.record import versions

from ..common.record import Record
from ..common.store import ResultsStore

log = logging.getLogger(__name__)


def _guarded(hook):
    @functools.wraps(hook)
    def run(self, *args, **kwargs):
        try:
            return hook(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            log.warning("sweep callback %s failed: %s (the sweep goes on)", hook.__name__, exc)
            self.errors.append(f"{hook.__name__}: {exc}")
    return run


class Recorder(Callback):
    """Appends records as trials finish, feeds the searcher and the uploads, and tells the view."""

    def __init__(self, store: ResultsStore, view, searcher=None, sync=None, timeout: float | None = None):
        """`view`: the live view (`live.SweepView`); `searcher`: fed each record once written; `sync`: uploads
        each trial's offline W&B run when the driver is online; `timeout`: seconds a trial may run (None: per
        cell, CELL_TIMES × the median cost of its finished trials, earlier runs' included; a cell with none yet,
        NEW_CELL_TIMES × the costliest cell's median; at least TIMEOUT_FLOOR_S, and none before any trial has a
        cost; 0: never)."""
        self.store, self.view, self.searcher, self.sync = store, view, searcher, sync
        self.timeout = timeout
        self.errors: list[str] = []  # what the guarded hooks swallowed
        self.write_error: OSError | None = None  # results.jsonl refused a record: the sweep stops (StopOnWriteError)
        self.started: dict[str, tuple[object, float]] = {}  # trial id -> (its actor, when that actor started it)
        self.costs: dict[str, list[float]] = {}  # cell key -> its finished trials' Record.cost_s
        for record in store.records():
            record.add_cost(self.costs)
        self.timed_out: dict[str, float] = {}  # trial id -> the limit it ran past
        self.stopped: set[str] = set()  # Tune's ids of the trials this recorder stopped
        logging.getLogger("ray.tune.execution.tune_controller").addFilter(self._quiet_stopped)

    def _quiet_stopped(self, entry: logging.LogRecord) -> bool:
        """Tune logs a trial whose actor the driver killed at its timeout as a crash, with a traceback of
        Ray's internals: the view has already said it timed out, in one line."""
        return not (entry.exc_info and any(f"trial {t}" in entry.getMessage() for t in self.stopped))

    def __getstate__(self):
        state = dict(self.__dict__)
        # Tune pickles its callbacks with the experiment state: the view holds a terminal, the sync a thread,
        # the searcher the plan (results.jsonl is the state that matters)
        state.update(view=None, sync=None, searcher=None)
        return state

    @_guarded
    def on_trial_start(self, iteration, trials, trial, **info):
        self.view.started(trial.trial_id)

    @_guarded
    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "write_error" in result:  # the hub could not write into the run folder: stop, say where and why
            got = json.loads(result["write_error"])
            self.write_error = self.write_error or OSError(28, got["error"], got["path"])
            return
        if "record" not in result:
            return
        record = Record.from_dict(json.loads(result["record"]))
        written = self._append(record)
        if written is None:
            return
        if written:
            record.add_cost(self.costs)
        if written and self.searcher is not None:
            self.searcher.feed(record)
        if self.sync is not None and record.extra.get("wandb_folder"):
            self.sync.submit(self.store.dir / "wandb" / record.extra["wandb_folder"])
        self.view.recorded(record, written)

    def _append(self, record: Record, tries: int = 3) -> bool | None:
        """Append the record, trying again after a moment (an I/O hiccup); None when the disk keeps refusing
        it (full): then nothing more can be recorded, so nothing more is run (StopOnWriteError)."""
        for attempt in range(tries):
            try:
                return self.store.append(record)
            except OSError as exc:
                if attempt == tries - 1:
                    self.write_error = self.write_error or exc
                    return None
                time.sleep(0.5 * (attempt + 1))
        return None

    @_guarded
    def on_trial_complete(self, iteration, trials, trial, **info):
        self.started.pop(trial.trial_id, None)
        self.view.finished(trial.trial_id)

    @_guarded
    def on_experiment_end(self, trials, **info):
        logging.getLogger("ray.tune.execution.tune_controller").removeFilter(self._quiet_stopped)

    @_guarded
    def on_trial_error(self, iteration, trials, trial, **info):
        self.view.errored(trial.trial_id)

    @_guarded
    def on_step_end(self, iteration, trials, **info):
        self._watch(trials)
        self.view.refresh()

    def limit(self, cell_key: str | None = None) -> float | None:
        """Seconds a trial of `cell_key` may run: the set timeout, else a multiple of what its cell's trials
        cost (a cached trial is charged what its artefacts took to make, so a warm cache does not shrink the
        limit of a new seed that must make them), else of the costliest cell's, else none."""
        if self.timeout is not None:
            return self.timeout or None
        if self.costs.get(cell_key):
            return max(TIMEOUT_FLOOR_S, CELL_TIMES * statistics.median(self.costs[cell_key]))
        if self.costs:
            return max(TIMEOUT_FLOOR_S, NEW_CELL_TIMES * max(statistics.median(v) for v in self.costs.values()))
        return None

    def _watch(self, trials) -> None:
        """Stop trials running past the limit: their actor is killed (a stopped or hung worker included), and
        Tune retries them like a crash, up to --max-failures."""
        now = time.monotonic()
        for trial in trials:
            actor = getattr(getattr(trial, "temporary_state", None), "ray_actor", None)
            if trial.status != "RUNNING" or actor is None:
                continue
            seen = self.started.get(trial.trial_id)
            if seen is None or seen[0] is not actor:  # started, or restarted on a new actor
                self.started[trial.trial_id] = (actor, now)
                continue
            about = trial.config.get("trial", {})
            limit = self.limit(about.get("cell_key"))
            if limit is not None and now - seen[1] > limit:
                import ray

                key = about.get("key", trial.trial_id)
                self.timed_out[key] = limit
                self.started.pop(trial.trial_id)
                self.stopped.add(str(trial))
                log.warning("trial %s ran past its timeout of %.0f s: stopped (retried up to --max-failures)",
                            key, limit)
                self.view.note(f"trial {key} timed out after {limit:.0f} s: stopped, retried up to --max-failures")
                ray.kill(actor, no_restart=True)

    def reconcile(self, grid, trials: list, sweep: str, profile: str) -> int:
        """After fit(): every trial of this run gets its terminal record. A final result that carries a
        record the callback could not write is written now; a trial that ended in an error becomes a
        `failed` record. Returns how many records this wrote."""
        by_key, written = {t.key: t for t in trials}, 0
        for result in grid:
            key = (result.config or {}).get("trial", {}).get("key")
            t = by_key.get(key)
            if t is None or key in self.store.done_keys():
                continue
            final = (result.metrics or {}).get("record")
            if final is not None:
                record = Record.from_dict(json.loads(final))
            elif result.error is not None:
                record = failed_record(t, sweep, profile, self._why(result))
            else:
                continue
            try:
                written += self.store.append(record)
            except Exception as exc:  # noqa: BLE001 - one bad record must not cost the others
                log.warning("trial %s: its record could not be written (%s); rerun the sweep to retry", key, exc)
        return written


    def _why(self, result) -> str:
        """A failed trial's error in one line: its timeout, the orchestrator's fault, or what it raised."""
        key = (result.config or {}).get("trial", {}).get("key")
        if key in self.timed_out:
            return f"timed out after {self.timed_out[key]:.0f} s (stopped by the driver)"
        return str(result.error)


TIMEOUT_FLOOR_S = 60.0  # a trial is never stopped before this, whatever the others took
CELL_TIMES = 5.0  # a trial may take this many times its cell's median cost
NEW_CELL_TIMES = 10.0  # a cell with no finished trial: this many times the costliest cell's median


def failed_record(trial, sweep: str, profile: str, error: str) -> Record:
    """The failed record of a planned trial (`Record.failed` with what the plan knows of it); a failure that was
    the orchestrator's own (`OrchestratorFault`: its hub lost mid-trial) is marked, so a plain rerun retries it
    and no budget counts it."""
    fault = "OrchestratorFault" in error
    return Record.failed(trial_key=trial.key, sweep=sweep, profile=profile, config=config_dict(trial.config),
                         cell=trial.cell, cell_key=trial.cell_key, images=trial.described_images(), error=error,
                         versions=versions(), **({"fault": "orchestrator"} if fault else {}))


class StopOnWriteError(Stopper):
    """A Tune stopper: the whole experiment stops once results.jsonl cannot take a record."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    def __call__(self, trial_id, result) -> bool:
        return self.recorder.write_error is not None

    def stop_all(self) -> bool:
        return self.recorder.write_error is not None

    def __getstate__(self):
        return {"recorder": None}
