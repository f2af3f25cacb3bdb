"""What the user sees while a sweep runs: it shows, and writes nothing.

In a terminal, a rich live view (trials done / running / pending / failed, ETA,
best so far and, under adaptive replication, each claim's state). Without one
(`--no-live`, CI logs, `nohup`, `| tee`), one line per finished trial: status,
cell, headline metric, done/total, ETA — what a log reader expects. The
recorder (`recorder.py`) tells it what happened.
"""

from __future__ import annotations

import math
import time

from rich.console import Group
from rich.table import Table

from ..common.labels import cell_text
from ..common.record import Record


class SweepView:
    """Counts trials, keeps the best headline value, and shows them."""

    def __init__(self, total: int, metric: str, mode: str, concurrency: int, searcher=None, console=None):
        """`searcher`: says how many trials are pending and, when adaptive, how the claims stand; `console`:
        print a line per finished trial there (no live view)."""
        self.total, self.metric, self.mode = total, metric, mode
        self.searcher, self.console = searcher, console
        self.concurrency = max(1, concurrency)
        self.running: dict[str, float] = {}
        self.done = self.failed = 0
        self.durations: list[float] = []
        self.best: tuple[float, str] | None = None
        self.t0 = time.time()
        self.live = None  # a rich Live, set by the runner when the terminal shows one

    # ------------------------------------------------------------------ what the recorder says

    def started(self, trial_id: str) -> None:
        self.running[trial_id] = time.time()
        self.refresh()

    def finished(self, trial_id: str) -> None:
        self.durations.append(time.time() - self.running.pop(trial_id, time.time()))
        self.done += 1
        self.refresh()

    def errored(self, trial_id: str) -> None:
        self.running.pop(trial_id, None)
        self.failed += 1
        self.refresh()

    def recorded(self, record: Record, written: bool) -> None:
        value = record.metrics.get(self.metric)
        if isinstance(value, (int, float)) and record.status == "ok":
            better = self.best is None or (value > self.best[0] if self.mode == "max" else value < self.best[0])
            if better:
                self.best = (value, record.trial_key + self._fired(record))
        if written:
            self._line(record, value)
            for warning in record.extra.get("warnings") or []:  # what went wrong beside the result (a cache
                if self.console is not None:                    # entry made again, a W&B failure)
                    self.console.print(f"  warning ({record.trial_key}): {str(warning)[:300]}", markup=False,
                                       highlight=False, soft_wrap=True)

    def note(self, text: str) -> None:
        """Something the user should see at once (a trial stopped at its timeout)."""
        if self.console is not None:
            self.console.print(f"  {text}", markup=False, highlight=False, soft_wrap=True)
        elif self.live is not None:
            self.live.console.print(f"  {text}", markup=False, highlight=False, soft_wrap=True)

    def refresh(self) -> None:
        if self.live is not None:
            self.live.update(self.render())

    # ------------------------------------------------------------------ what it shows

    def _fired(self, record: Record) -> str:
        fired = record.metrics.get("es_fired")  # the fraction of images where ES-WMV fired
        return f", ES fired {fired:.0%}" if self.metric == "psnr_es" and isinstance(fired, (int, float)) else ""

    def pending(self) -> int:
        return self.searcher.pending() if self.searcher is not None else \
            max(self.total - self.done - self.failed - len(self.running), 0)

    def eta(self) -> str:
        if not self.durations:
            return "—"
        per = sum(self.durations) / len(self.durations)
        return f"{per * (self.pending() + len(self.running) / 2) / self.concurrency / 60:.1f} min"

    def _line(self, record: Record, value) -> None:
        """One line per finished trial when there is no live view."""
        if self.console is None:
            return
        n = self.done + self.failed + 1
        adaptive = self.searcher is not None and self.searcher.adaptive
        total = "" if adaptive else f"/{self.total}"
        shown = f"{self.metric} {value:.2f}{self._fired(record)}" if isinstance(value, (int, float)) and \
            math.isfinite(value) else (record.error or "no value")[:120]
        wall = record.metrics.get("wall_s")
        claims = f" · {self.searcher.status()}" if adaptive else ""
        self.console.print(f"[{n}{total}] {record.status:<8} {cell_text(record.cell)} · seed "
                           f"{record.seed} · {shown}" + (f" · {wall:.0f} s" if wall else "")
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


def claims_view(searcher) -> Table:
    """Each claim's state while the sweep runs: decided or not, n units, the interval, the trials it cost."""
    from ..report.text import fmt

    from ..report.claims_table import minutes_text, units_text

    t = Table(title=searcher.status(), show_header=True)
    for col in ("claim", "state", "n", "p (Holm)", "to decide (units)", "to decide (min)", "trials"):
        t.add_column(col, justify="left" if col in ("claim", "state") else "right", overflow="fold")
    tracker = searcher.tracker
    for row in searcher.claims():
        proj = None if row.decided else tracker.projection(row, display=True)
        t.add_row(row.claim.text[:70], row.verdict, str(row.n), fmt(row.p.get("p_adj"), "p (Holm)"),
                  units_text(proj), minutes_text(proj), str(row.trials))
    return t
