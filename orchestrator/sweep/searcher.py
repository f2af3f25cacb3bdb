"""What runs next, through Ray Tune's own extension point: a `Searcher` (docs/design.md, "Adaptive replication").

Tune asks `suggest()` for a trial whenever a slot frees (a ConcurrencyLimiter of
the cluster's slots in front of it), so the cluster never idles between
rounds. The searcher proposes
1. every cell at seeds 0 … min_seeds−1 (seed by seed, so pairs complete early;
   a hybrid sweep's trials spread over the models they train);
2. then, for the claim where a seed buys the most (the sweep's questions first,
   then the projected CPU-seconds to its decision, `_next_seed`), the trials of
   its cells at its next seed — only cells that some undecided claim pairs ever
   gain seeds, and a claim max_seeds cannot decide takes none;
until every claim is decided (`orchestrator.stats.verdicts.ClaimTracker`),
no undecided claim can be decided below max_seeds, or the budget (trials,
hours) is spent. Each proposal is an ordinary trial of the plan: same trial key,
record, W&B run and files.

The results store is the state: the tracker replays results.jsonl at start
(arrival order), finished trials are never proposed again, and each new record
reaches the tracker from the driver's callback right after it is written. So
killing the driver and running again continues deciding from what was
recorded, with the same decisions.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque

from ray.tune.search import Searcher

from ..common.record import Record
from ..stats.verdicts import ClaimRow, ClaimTracker
from .plan import Plan, Trial

log = logging.getLogger(__name__)

ALL_DECIDED = "every claim is decided"
NO_GAIN = "no undecided claim can be decided by more seeds below max_seeds"
BUDGET_TRIALS = "the trials budget is spent"
BUDGET_HOURS = "the hours budget is spent"


class PlanSearcher(Searcher):
    """A fixed grid through the same door: the plan's trials not yet done, in order, then FINISHED. Tune
    sees each trial's grid axes as hyperparameters of its own (a grid_search over the trials would show
    one: the whole trial)."""

    adaptive = False  # proposes only the trials it was given; decides nothing while they run

    def __init__(self, trials: list[Trial], payload):
        super().__init__()
        self.payload = payload
        self.trials_given = list(trials)
        self.queue: deque[Trial] = deque(trials)
        self.proposed: set[str] = set()
        self.live: dict[str, Trial] = {}

    def suggest(self, trial_id: str):
        trial = self._next()
        if trial is None:  # None asks Tune to come back later; FINISHED ends the proposals
            return None if self.waiting() else Searcher.FINISHED
        self.live[trial_id] = trial
        self.proposed.add(trial.key)
        return self.payload(trial)

    def _next(self) -> Trial | None:
        return self.queue.popleft() if self.queue else None

    def waiting(self) -> bool:
        """Whether nothing is to run now but the trials running may call for more (never, on a fixed grid)."""
        return False

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.live.pop(trial_id, None)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: results.jsonl is the sweep's state (a rerun skips what it holds)."""

    def restore(self, checkpoint_path: str) -> None:
        """See `save`."""

    def feed(self, record: Record) -> None:
        """A record the driver has just written (a fixed grid decides nothing while it runs)."""

    def pending(self) -> int:
        return len(self.queue)

    def all_trials(self) -> list[Trial]:
        """Every trial it may propose (their images are shipped before the first runs)."""
        return self.trials_given


class AdaptiveSearcher(PlanSearcher):
    adaptive = True  # any (cell, seed) of the plan, while claims are undecided

    def __init__(self, plan: Plan, records: list[Record], done: set[str], headline: str, payload, order,
                 clock=time.monotonic, parallel: int = 1):
        """`records`: the store's records (the last terminal one of each trial); `done`: trial keys not to run
        again; `payload(trial)`: the config Tune's trainable receives; `order(trials)`: the order a batch runs
        in; `parallel`: trials at once (projections in minutes)."""
        self.rule = plan.replicate
        self.order, self.clock = order, clock
        self.trials = {(t.cell_key, t.seed): t for t in plan.trials}
        self.keys = {t.key for t in plan.trials}
        mine = [r for r in records if r.trial_key in self.keys and not r.fault]
        self.cell_costs: dict[str, list[float]] = {}
        for r in mine:
            r.add_cost(self.cell_costs)
        self.tracker = ClaimTracker(plan.design, headline, costs=self.costs(), parallel=parallel).replay(mine)
        # The sweep's questions first: the first seeds of the cells its priority-1 claims pair, then their added
        # seeds; the rest of the grid's first seeds after (or while the questions wait on trials running).
        first = {c for row in self.tracker.tested() if row.claim.priority == 1 for c in row.cells}
        initial = [t for t in plan.initial() if t.key not in done]

        def by_seed(ts):
            return deque(t for s in sorted({t.seed for t in ts}) for t in order([t for t in ts if t.seed == s]))

        super().__init__([], payload)
        self.queue = by_seed([t for t in initial if t.cell_key in first])
        self.later = by_seed([t for t in initial if t.cell_key not in first])
        self.trials_given = list(self.queue) + list(self.later)
        self.done = set(done) & self.keys
        self.recorded = {r.trial_key for r in mine}
        self.faulted: set[str] = set()  # trials the orchestrator failed: no budget counts them
        self.t0 = clock()
        self.reason: str | None = None

    # ------------------------------------------------------------------ records and decisions

    def waiting(self) -> bool:
        """Nothing to run now, but the trials running may call for more: their seeds are projected to decide a
        claim, or their results may lift a claim's chance above futility."""
        return bool(self.live) and self.reason is None

    def pending(self) -> int:
        return len([t for t in (*self.queue, *self.later) if not self._started(t.key)])

    def feed(self, record: Record) -> None:
        """A record the driver has just written (in the order it wrote them); a trial the orchestrator failed
        counts for no claim and no budget."""
        if record.fault:
            self.faulted.add(record.trial_key)
        if record.trial_key in self.keys and not record.fault:
            self.recorded.add(record.trial_key)
            record.add_cost(self.cell_costs)
            self.tracker.costs = self.costs()
            self.tracker.add(record)

    def costs(self) -> dict[str, float]:
        """cell key -> mean measured cost of its trials so far (Record.cost_s: what a new seed will take)."""
        return {k: sum(v) / len(v) for k, v in self.cell_costs.items()}

    def spent(self) -> int:
        """Trials of this plan recorded (earlier runs included) or running now, less those the orchestrator
        failed."""
        return len((self.recorded | self.proposed) - self.faulted)

    def _started(self, key: str) -> bool:
        return key in self.done or key in self.proposed

    def _next(self) -> Trial | None:
        if self.reason in (BUDGET_TRIALS, BUDGET_HOURS):
            return None
        budget = self._budget()
        if budget:
            self.reason = budget
            return None
        for source in (self.queue, 1, self.later, None):  # questions' first seeds, their seeds, the rest
            if isinstance(source, deque):
                while source:
                    t = source.popleft()
                    if not self._started(t.key):
                        return t
                continue
            batch = self._next_seed(priority=source)
            if batch:
                self.queue.extend(self.order(batch))
                return self.queue.popleft()
        if not self.live:  # nothing running can change the answer (a running trial may lift a futile claim)
            self.reason = ALL_DECIDED if not self.tracker.undecided() else NO_GAIN
        return None

    def _budget(self) -> str | None:
        if self.rule.budget_trials is not None and self.spent() >= self.rule.budget_trials:
            return BUDGET_TRIALS
        if self.rule.budget_hours is not None and self.clock() - self.t0 >= 3600 * self.rule.budget_hours:
            return BUDGET_HOURS
        return None

    def _seeds_started(self, row: ClaimRow) -> int:
        """How many seeds, from 0 up, have every trial of this claim's cells started."""
        s = 0
        while s < self.rule.max_seeds and all(self._started(self.trials[(ck, s)].key) for ck in row.cells
                                              if (ck, s) in self.trials):
            s += 1
        return s

    def _next_seed(self, priority: int | None = None) -> list[Trial]:
        """The not yet started trials of the next seed of the claim where a seed buys the most: the lowest
        priority number first (the sweep's questions before the seeds' claims); within it, a claim still short
        of the units a projection needs, else the one whose projected decision costs the fewest CPU-seconds.
        A claim that max_seeds cannot decide (futile), or whose seeds running now already cover its projection,
        takes none."""
        best, best_key = None, None
        for i, row in enumerate(self.tracker.open()):
            if priority is not None and row.claim.priority != priority:
                continue
            started = self._seeds_started(row)
            if started >= self.rule.max_seeds:
                continue
            seq = self.tracker.sequence(row)
            in_flight = started - len(seq.seeds)
            proj = self.tracker.projection(row)
            cost = self._seed_cost(row, started)
            if proj is None:  # too few units to project: get it there, fewest seeds first
                key = (row.claim.priority, 0, started, i)
            else:
                if in_flight >= proj.seeds:
                    continue  # the seeds running now are projected to decide it
                # expected decisions per CPU-second: its chance of a decision over the seconds that would take
                seeds = min(proj.seeds, self.rule.max_seeds - started) if math.isfinite(proj.seeds) else \
                    self.rule.max_seeds - started
                key = (row.claim.priority, 1, -proj.chance / max((seeds - in_flight) * cost, 1e-9), i)
            if best_key is None or key < best_key:
                best, best_key = (row, started), key
        if best is None:
            return []
        row, seed = best
        return [self.trials[(ck, seed)] for ck in sorted(row.cells) if (ck, seed) in self.trials
                and not self._started(self.trials[(ck, seed)].key)]

    def _seed_cost(self, row: ClaimRow, seed: int) -> float:
        """Measured seconds of the trials of the row's cells at `seed` not started yet (a cell shared with a
        claim that already runs that seed costs nothing more); an unmeasured cell costs the measured mean."""
        costs = self.costs()
        mean = sum(costs.values()) / len(costs) if costs else 1.0
        return sum(costs.get(ck, mean) for ck in row.cells
                   if (ck, seed) in self.trials and not self._started(self.trials[(ck, seed)].key))

    def has_work(self) -> bool:
        """Whether a run would propose anything (without proposing it)."""
        if self._budget():
            return False
        return any(not self._started(t.key) for t in (*self.queue, *self.later)) or bool(self._next_seed())

    def all_trials(self) -> list[Trial]:
        return list(self.trials.values())

    # ------------------------------------------------------------------ what the live view and summary show

    def claims(self) -> list[ClaimRow]:
        return self.tracker.tested()

    def status(self) -> str:
        rows = self.claims()
        decided = sum(r.decided for r in rows)
        futile = sum(self.tracker.futile(r) for r in rows)
        why = self.reason
        if why == NO_GAIN and not self.tracker.undecided():  # the last ones were decided by trials running then
            why = ALL_DECIDED
        reason = f"; stopped proposing: {why}" if why else ""
        futile_text = f", {futile} cannot be decided by max_seeds" if futile else ""
        return f"{decided}/{len(rows)} claims decided{futile_text} · {self.spent()} trials{reason}"
