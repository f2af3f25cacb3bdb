"""Driver-side Tune callback: writes each finished trial's record and shows the sweep's progress.

In a terminal, a rich live view (trials done / running / pending / failed, ETA,
best so far and, under adaptive replication, each claim's state). Without one
(`--no-live`, CI logs, `nohup`, `| tee`), one line per finished trial: status,
cell, headline metric, done/total, ETA — what a log reader expects.

Nothing raised here may reach Tune: an exception in a callback ends `fit()`
and with it the sweep. Each hook logs what went wrong and carries on; a
record that could not be written is written by the runner after `fit()`
(it is in the trial's final result).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time

from ray.tune import Callback, Stopper
from rich.console import Group
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

    def __init__(self, store: ResultsStore, total: int, metric: str, mode: str, concurrency: int, sync=None,
                 searcher=None, console=None):
        """`searcher`: an AdaptiveSearcher fed each record once written; `console`: print a line per finished
        trial there (no live view)."""
        self.store, self.total, self.metric, self.mode = store, total, metric, mode
        self.sync = sync  # uploads each trial's offline W&B run when the driver is online
        self.searcher, self.console = searcher, console
        self.concurrency = max(1, concurrency)
        self.running: dict[str, float] = {}
        self.done = self.failed = 0
        self.durations: list[float] = []
        self.best: tuple[float, str] | None = None
        self.t0 = time.time()
        self.live = None  # set by the runner
        self.errors: list[str] = []  # what the guarded hooks swallowed
        self.write_error: OSError | None = None  # results.jsonl refused a record: the sweep stops (see Stop)

    def __getstate__(self):
        state = dict(self.__dict__)
        # Tune pickles its callbacks with the experiment state: a rich Live holds locks and a terminal, the
        # sync a thread, the searcher the plan (results.jsonl is the state that matters)
        state.update(live=None, sync=None, searcher=None, console=None)
        return state

    @_guarded
    def on_trial_start(self, iteration, trials, trial, **info):
        self.running[trial.trial_id] = time.time()
        self._refresh()

    @_guarded
    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "write_error" in result:  # the hub could not write into the run folder: stop, say where and why
            got = json.loads(result["write_error"])
            self.write_error = self.write_error or OSError(28, got["error"], got["path"])
            return
        if "record" not in result:
            return
        record = json.loads(result["record"])
        written = self._append(record)
        if written is None:
            return
        if written and self.searcher is not None:
            self.searcher.feed(record)
        if self.sync is not None and record.get("wandb_folder"):
            self.sync.submit(self.store.dir / "wandb" / record["wandb_folder"])
        value = record["metrics"].get(self.metric)
        if isinstance(value, (int, float)) and record["status"] == "ok":
            better = self.best is None or (value > self.best[0] if self.mode == "max" else value < self.best[0])
            if better:
                self.best = (value, record["trial_key"] + self._fired(record))
        if written:
            self._line(record, value)
            for warning in record.get("warnings") or []:  # what went wrong beside the result (a cache entry
                if self.console is not None:              # made again, a W&B failure): said where the user looks
                    self.console.print(f"  warning ({record['trial_key']}): {str(warning)[:300]}", markup=False,
                                       highlight=False, soft_wrap=True)

    def _append(self, record: dict, tries: int = 3) -> bool | None:
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

    def _fired(self, record: dict) -> str:
        fired = record["metrics"].get("es_fired")  # the fraction of images where ES-WMV fired
        return f", ES fired {fired:.0%}" if self.metric == "psnr_es" and isinstance(fired, (int, float)) else ""

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

    # ------------------------------------------------------------------ what it shows

    def pending(self) -> int:
        return self.searcher.pending() if self.searcher is not None else \
            max(self.total - self.done - self.failed - len(self.running), 0)

    def eta(self) -> str:
        if not self.durations:
            return "—"
        per = sum(self.durations) / len(self.durations)
        return f"{per * (self.pending() + len(self.running) / 2) / self.concurrency / 60:.1f} min"

    def _line(self, record: dict, value) -> None:
        """One line per finished trial when there is no live view."""
        if self.console is None:
            return
        from ..report.tabs import cell_text

        n = self.done + self.failed + 1
        adaptive = self.searcher is not None and self.searcher.adaptive
        total = "" if adaptive else f"/{self.total}"
        shown = f"{self.metric} {value:.2f}{self._fired(record)}" if isinstance(value, (int, float)) and \
            math.isfinite(value) else (record.get("error") or "no value")[:120]
        wall = record["metrics"].get("wall_s")
        claims = f" · {self.searcher.status()}" if adaptive else ""
        self.console.print(f"[{n}{total}] {record['status']:<8} {cell_text(record.get('cell') or {})} · seed "
                           f"{record.get('seed')} · {shown}" + (f" · {wall:.0f} s" if wall else "")
                           + f" · ETA {self.eta()}{claims}", markup=False, highlight=False, soft_wrap=True)

    def render(self):
        best = f"{self.best[0]:.2f} ({self.best[1]})" if self.best else "—"
        t = Table(title=f"sweep · {time.time() - self.t0:.0f} s", show_header=True)
        for col in ("done", "running", "pending", "failed", "ETA", f"best {self.metric}"):
            t.add_column(col, justify="right")
        t.add_row(str(self.done), str(len(self.running)), str(self.pending()), str(self.failed), self.eta(), best)
        if self.searcher is None or not self.searcher.adaptive:
            return t
        return Group(t, claims_view(self.searcher))


class StopOnWriteError(Stopper):
    """A Tune stopper: the whole experiment stops once results.jsonl cannot take a record."""

    def __init__(self, progress: SweepProgress):
        self.progress = progress

    def __call__(self, trial_id, result) -> bool:
        return self.progress.write_error is not None

    def stop_all(self) -> bool:
        return self.progress.write_error is not None

    def __getstate__(self):
        return {"progress": None}


def claims_view(searcher) -> Table:
    """Each claim's state while the sweep runs: decided or not, n units, the interval, the trials it cost."""
    from ..report.render import fmt

    t = Table(title=searcher.status(), show_header=True)
    for col in ("claim", "state", "n", "interval (anytime-valid)", "trials"):
        t.add_column(col, justify="left" if col in ("claim", "state") else "right", overflow="fold")
    for st in searcher.claims():
        low, high = st.low, st.high
        interval = f"[{fmt(low, 'Δ')}, {fmt(high, 'Δ')}]" if math.isfinite(low) and math.isfinite(high) else "—"
        t.add_row(st.row.claim.text[:70], st.verdict(), str(st.d.n), interval, str(st.trials))
    return t
