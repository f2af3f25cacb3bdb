"""The default trial timeout is per cell and reads a trial's cost, not its wall time: a cell whose trials found
their DDPM cached ran in a second, yet its next seed must train one (what stopped a fresh clone's hybrid
questions at their tenth seed when the limit was five times the median wall time of every trial)."""

import hashlib
import logging
import sys
import time
import types

from orchestrator.common.record import Record
from orchestrator.common.store import ResultsStore
from orchestrator.sweep.recorder import CELL_TIMES, NEW_CELL_TIMES, TIMEOUT_FLOOR_S, Recorder


class View:
    def __init__(self):
        self.notes = []

    def note(self, text):
        self.notes.append(text)


def record(name, cell_key, wall_s, time_s=None, status="ok"):
    key = hashlib.sha256(name.encode()).hexdigest()[:16]  # the store takes hashed keys only
    metrics = {"wall_s": wall_s} | ({"time_s": time_s} if time_s is not None else {})
    return Record.from_dict({"trial_key": key, "status": status, "method": "hybrid", "seed": 0,
                             "config": {"method": "hybrid", "seed": 0}, "cell_key": cell_key, "metrics": metrics})


def recorder(tmp_path, records, timeout=None):
    store = ResultsStore(tmp_path)
    for r in records:
        store.append(r)
    return Recorder(store, View(), timeout=timeout)


def test_a_cached_cell_keeps_the_limit_its_cold_trials_need(tmp_path):
    # cell "dip": three trials that found everything cached (1 s wall) but were charged 90 s for the artefacts
    rec = recorder(tmp_path, [record(f"d{i}", "dip", 1.2, 90.0) for i in range(3)]
                   + [record("o0", "obs", 1.0, 60.0), record("o1", "obs", 1.1, 70.0)])
    assert rec.limit("dip") == CELL_TIMES * 90.0
    assert rec.limit("obs") == CELL_TIMES * 65.0  # each cell its own median
    assert rec.limit("new") == NEW_CELL_TIMES * 90.0  # a cell with no trial yet: the costliest cell's
    # a trial that took longer than it was charged (no cache) counts its wall time
    rec2 = recorder(tmp_path / "b", [record("x", "slow", 200.0, 120.0)])
    assert rec2.limit("slow") == CELL_TIMES * 200.0


def test_the_floor_the_setting_and_no_records(tmp_path):
    assert recorder(tmp_path / "a", []).limit("any") is None  # nothing measured: no default limit
    fast = recorder(tmp_path / "b", [record("f", "fast", 0.5, 1.0)])
    assert fast.limit("fast") == TIMEOUT_FLOOR_S
    failed = recorder(tmp_path / "c", [record("x", "c", 500.0, status="failed")])
    assert failed.limit("c") is None  # a failed trial's time says nothing of a good one
    assert recorder(tmp_path / "d", [record("d", "dip", 1.0, 90.0)], timeout=25).limit("dip") == 25
    assert recorder(tmp_path / "e", [record("d", "dip", 1.0, 90.0)], timeout=0).limit("dip") is None


def test_only_a_trial_past_its_own_cells_limit_is_stopped(tmp_path, monkeypatch):
    killed = []
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(kill=lambda actor, no_restart: killed.append(actor)))
    rec = recorder(tmp_path, [record("d", "dip", 1.0, 90.0), record("o", "obs", 1.0, 20.0)])

    class Trial(types.SimpleNamespace):
        def __str__(self):  # as Tune's Trial prints itself
            return self.trial_id

    def trial(tid, cell_key):
        return Trial(trial_id=tid, status="RUNNING", config={"trial": {"key": tid, "cell_key": cell_key}},
                     temporary_state=types.SimpleNamespace(ray_actor=f"actor-{tid}"))

    trials = [trial("seed9-dip", "dip"), trial("seed9-obs", "obs"), trial("first-new", "new")]
    rec._watch(trials)  # first sight: each trial's clock starts
    now = time.monotonic()
    for t, age in zip(trials, (200.0, 200.0, 800.0)):  # dip: 200 s < 450 s; obs: 200 s > 100 s; new: < 900 s
        rec.started[t.trial_id] = (t.temporary_state.ray_actor, now - age)
    rec._watch(trials)
    assert killed == ["actor-seed9-obs"]
    assert rec.timed_out == {"seed9-obs": CELL_TIMES * 20.0}
    assert len(rec.view.notes) == 1 and "seed9-obs" in rec.view.notes[0]

    # Tune then logs the killed trial as a crash with Ray's traceback: the view said it in one line already,
    # so that entry is dropped; a real crash of another trial still prints
    def entry(tid):
        return logging.LogRecord("ray.tune.execution.tune_controller", logging.ERROR, "x", 1,
                                 f"Trial task failed for trial {tid}", None, (RuntimeError, RuntimeError(), None))

    tune_log = logging.getLogger("ray.tune.execution.tune_controller")
    assert not tune_log.filter(entry("seed9-obs")) and tune_log.filter(entry("seed9-dip"))
    rec.on_experiment_end([])
    assert tune_log.filter(entry("seed9-obs"))
