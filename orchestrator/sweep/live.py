"""Driver-side Tune callback: writes each finished trial's record and drives a rich live view.

Nothing raised here may reach Tune: an exception in a callback ends `fit()`
and with it the sweep. Each hook logs what went wrong and carries on; a
record that could not be written is written by the runner after `fit()`
(it is in the trial's final result).
"""

from __future__ import annotations

import functools
import json
import logging
import time

from ray.tune import Callback
from rich.table import Table

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


class SweepProgress(Callback):
    """Counts trials, keeps the best headline value and appends records as trials finish."""

    def __init__(self, store: ResultsStore, total: int, metric: str, mode: str, concurrency: int, sync=None):
        self.store, self.total, self.metric, self.mode = store, total, metric, mode
        self.sync = sync  # uploads each trial's offline W&B run when the driver is online
        self.concurrency = max(1, concurrency)
        self.running: dict[str, float] = {}
        self.done = self.failed = 0
        self.durations: list[float] = []
        self.best: tuple[float, str] | None = None
        self.t0 = time.time()
        self.live = None  # set by the runner
        self.errors: list[str] = []  # what the guarded hooks swallowed

    def __getstate__(self):
        state = dict(self.__dict__)
        state["live"] = None  # a rich Live holds locks and a terminal: not part of Tune's saved state
        state["sync"] = None  # a thread
        return state

    @_guarded
    def on_trial_start(self, iteration, trials, trial, **info):
        self.running[trial.trial_id] = time.time()
        self._refresh()

    @_guarded
    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "record" not in result:
            return
        record = json.loads(result["record"])
        self.store.append(record)
        if self.sync is not None and record.get("wandb_folder"):
            self.sync.submit(self.store.dir / "wandb" / record["wandb_folder"])
        value = record["metrics"].get(self.metric)
        if isinstance(value, (int, float)) and record["status"] == "ok":
            better = self.best is None or (value > self.best[0] if self.mode == "max" else value < self.best[0])
            if better:
                fired = record["metrics"].get("es_fired")  # the fraction of images where ES-WMV fired
                label = record["trial_key"] + (f", ES fired {fired:.0%}" if self.metric == "psnr_es" and
                                               isinstance(fired, (int, float)) else "")
                self.best = (value, label)

    @_guarded
    def on_trial_complete(self, iteration, trials, trial, **info):
        self.durations.append(time.time() - self.running.pop(trial.trial_id, time.time()))
        self.done += 1
        self._refresh()

    @_guarded
    def on_trial_error(self, iteration, trials, trial, **info):
        self.running.pop(trial.trial_id, None)
        self.failed += 1
        self._refresh()

    @_guarded
    def on_step_end(self, iteration, trials, **info):
        self._refresh()

    def _refresh(self):
        if self.live is not None:
            self.live.update(self.render())

    def render(self) -> Table:
        pending = self.total - self.done - self.failed - len(self.running)
        eta = "—"
        if self.durations:
            per = sum(self.durations) / len(self.durations)
            eta = f"{per * (pending + len(self.running) / 2) / self.concurrency / 60:.1f} min"
        best = f"{self.best[0]:.2f} ({self.best[1]})" if self.best else "—"
        t = Table(title=f"sweep · {time.time() - self.t0:.0f} s", show_header=True)
        for col in ("done", "running", "pending", "failed", "ETA", f"best {self.metric}"):
            t.add_column(col, justify="right")
        t.add_row(str(self.done), str(len(self.running)), str(max(pending, 0)), str(self.failed), eta, best)
        return t
