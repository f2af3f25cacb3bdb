"""What runs next, through Ray Tune's own extension point: a `Searcher` (docs/design.md, "Adaptive replication").

Tune asks `suggest()` for a trial whenever a slot frees (a ConcurrencyLimiter of
the cluster's slots in front of it), so the cluster never idles between
rounds. The searcher proposes
1. every cell at seeds 0 … min_seeds−1 (seed by seed, so pairs complete early;
   a hybrid sweep's trials spread over the models they train);
2. then, for the undecided claim that has the fewest seeds started, the trials
   of its cells at its next seed — only cells that some undecided claim pairs
   ever gain seeds;
until every claim is decided (`orchestrator.stats.verdicts.ClaimTracker`),
no undecided claim can gain a unit below max_seeds, or the budget (trials,
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
import time
from collections import deque

from ray.tune.search import Searcher

from ..common.record import Record
from ..stats.verdicts import ClaimRow, ClaimTracker
from .plan import Plan, Trial

log = logging.getLogger(__name__)

ALL_DECIDED = "every claim is decided"
NO_GAIN = "no undecided claim can gain a unit below max_seeds"
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
        if trial is None:
            return Searcher.FINISHED
        self.live[trial_id] = trial
        self.proposed.add(trial.key)
        return self.payload(trial)

    def _next(self) -> Trial | None:
        return self.queue.popleft() if self.queue else None

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

    def __init__(self, plan: Plan, history: list[Record], done: set[str], headline: str, payload, order,
                 clock=time.monotonic):
        """`history`: the store's records in arrival order; `done`: trial keys not to run again;
        `payload(trial)`: the config Tune's trainable receives; `order(trials)`: the order a batch runs in."""
        initial = [t for t in plan.initial() if t.key not in done]
        super().__init__([t for s in sorted({t.seed for t in initial})
                          for t in order([t for t in initial if t.seed == s])], payload)
        self.rule = plan.replicate
        self.order, self.clock = order, clock
        self.trials = {(t.cell_key, t.seed): t for t in plan.trials}
        self.keys = {t.key for t in plan.trials}
        self.tracker = ClaimTracker(plan.design, headline).replay(history)
        self.done = set(done) & self.keys
        self.recorded = {r.trial_key for r in history if r.trial_key in self.keys}
        self.t0 = clock()
        self.reason: str | None = None

    # ------------------------------------------------------------------ records and decisions

    def pending(self) -> int:
        return len([t for t in self.queue if not self._started(t.key)])

    def feed(self, record: Record) -> None:
        """A record the driver has just written (in the order it wrote them)."""
        if record.trial_key in self.keys:
            self.recorded.add(record.trial_key)
            self.tracker.add(record)

    def spent(self) -> int:
        """Trials of this plan recorded (earlier runs included) or running now."""
        return len(self.recorded | self.proposed)

    def _started(self, key: str) -> bool:
        return key in self.done or key in self.proposed

    def _next(self) -> Trial | None:
        if self.reason in (BUDGET_TRIALS, BUDGET_HOURS):
            return None
        budget = self._budget()
        if budget:
            self.reason = budget
            return None
        while self.queue:
            t = self.queue.popleft()
            if not self._started(t.key):
                return t
        batch = self._next_seed()
        if not batch:
            self.reason = ALL_DECIDED if not self.tracker.undecided() else NO_GAIN
            return None
        self.queue.extend(self.order(batch))
        return self.queue.popleft()

    def _budget(self) -> str | None:
        if self.rule.budget_trials is not None and self.spent() >= self.rule.budget_trials:
            return BUDGET_TRIALS
        if self.rule.budget_hours is not None and self.clock() - self.t0 >= 3600 * self.rule.budget_hours:
            return BUDGET_HOURS
        return None

    def _seeds_started(self, st: ClaimRow) -> int:
        """How many seeds, from 0 up, have every trial of this claim's cells started."""
        s = 0
        while s < self.rule.max_seeds and all(self._started(self.trials[(ck, s)].key) for ck in st.cells
                                              if (ck, s) in self.trials):
            s += 1
        return s

    def _next_seed(self) -> list[Trial]:
        """The not yet started trials of the next seed of the undecided claim with the fewest seeds started."""
        options = [(self._seeds_started(st), st.n, i, st) for i, st in enumerate(self.tracker.undecided())]
        options = [o for o in options if o[0] < self.rule.max_seeds]
        if not options:
            return []
        seed, *_, st = min(options, key=lambda o: o[:3])
        return [self.trials[(ck, seed)] for ck in sorted(st.cells) if (ck, seed) in self.trials
                and not self._started(self.trials[(ck, seed)].key)]

    def has_work(self) -> bool:
        """Whether a run would propose anything (without proposing it)."""
        if self._budget():
            return False
        return any(not self._started(t.key) for t in self.queue) or bool(self._next_seed())

    def all_trials(self) -> list[Trial]:
        return list(self.trials.values())

    # ------------------------------------------------------------------ what the live view and summary show

    def claims(self) -> list[ClaimRow]:
        return self.tracker.tested()

    def status(self) -> str:
        decided = sum(st.decided for st in self.claims())
        why = self.reason
        if why == NO_GAIN and not self.tracker.undecided():  # the last ones were decided by trials running then
            why = ALL_DECIDED
        reason = f"; stopped proposing: {why}" if why else ""
        return f"{decided}/{len(self.claims())} claims decided · {self.spent()} trials{reason}"
