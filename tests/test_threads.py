"""The single trial's intra-op thread count: the candidates, the rule that picks one, the measurement
on a fake clock (no wall-clock assertions), and the explicit choices that skip it."""

import json

import pytest
import torch

from dipddpm import threads
from dipddpm.cli import main
from dipddpm.config import nested
from dipddpm.errors import ConfigError
from dipddpm.trial import resolve


@pytest.fixture(autouse=True)
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("cores,expected", [(1, [1]), (2, [1, 2]), (3, [1, 2, 3]), (6, [1, 2, 4, 6]),
                                            (8, [1, 2, 4, 8])])
def test_candidates_double_up_to_the_usable_cores(cores, expected):
    assert threads.candidates(cores) == expected


@pytest.mark.parametrize("ms,expected", [
    ({1: 21.0, 2: 53.0}, 1),  # beside a busy process: more threads collapse
    ({1: 17.0, 2: 17.0}, 1),  # a tie: the fewest threads
    ({1: 20.0, 2: 18.0}, 1),  # 10 % faster is within the margin: not worth the risk
    ({1: 50.0, 2: 30.0}, 2),  # clearly faster
    ({1: 100.0, 2: 60.0, 4: 55.0}, 2),  # 4 is fastest, but 2 is within 15 % of it
    ({1: 100.0, 2: 80.0, 4: 40.0}, 4),
])
def test_pick_takes_the_fewest_threads_within_the_margin_of_the_fastest(ms, expected):
    assert threads.pick(ms) == expected


class FakeClock:
    """perf_counter for threads.py: each step advances it by the time its thread count costs."""

    def __init__(self, ms_by_threads: dict[int, float]):
        self.now, self.ms, self.calls = 0.0, ms_by_threads, {n: 0 for n in ms_by_threads}

    def perf_counter(self) -> float:
        return self.now

    def step(self) -> None:
        n = torch.get_num_threads()
        self.calls[n] += 1
        self.now += self.ms[n] / 1000


@pytest.fixture
def clock(monkeypatch):
    """A fake perf_counter, ROUNDS and STEPS_PER_ROUND pinned at 3 and 3, and 1 thread to start."""
    monkeypatch.setattr(threads, "ROUNDS", 3)
    monkeypatch.setattr(threads, "STEPS_PER_ROUND", 3)
    torch.set_num_threads(1)

    def make(ms_by_threads):
        c = FakeClock(ms_by_threads)
        monkeypatch.setattr(threads.time, "perf_counter", c.perf_counter)
        return c

    return make


@pytest.mark.parametrize("slow_ms,calls_of_2", [
    (30.0, (1 + 3) + (1 + 2)),  # over the bar (20 × 1.2 ms): cut at its 5th timed step, over half of 9
    (60.0, 1 + 1),  # over twice the bar: a collapse, cut at its switch step and 1st timed step
    (200.0, 1),  # over 4 times the bar: cut at its switch step
])
def test_measure_times_each_candidate_and_cuts_a_losing_one_short(clock, slow_ms, calls_of_2):
    c = clock({1: 20.0, 2: slow_ms})
    choice = threads.measure(c.step, [1, 2])
    assert choice.threads == 1 and choice.how == "measured"
    assert choice.ms_per_step == pytest.approx({1: 20.0, 2: slow_ms}) and choice.cut_short == {2}
    assert c.calls == {1: 2 + 3 * (1 + 3), 2: calls_of_2}  # 1: 2 warm-up steps, 3 rounds of a switch + 3
    assert choice.describe() == f"threads 1 (measured in {choice.seconds:.1f} s, ms/step: 1 → 20, 2 → >{slow_ms:.0f})"
    assert choice.seconds == pytest.approx(sum(n * c.ms[k] for k, n in c.calls.items()) / 1000)


def test_measure_keeps_more_threads_when_they_pay(clock):
    c = clock({1: 40.0, 2: 22.0})
    choice = threads.measure(c.step, [1, 2])
    assert choice.threads == 2 and choice.cut_short == {1}  # 1 thread, timed first, is cut once 2 is known
    assert choice.describe().endswith("ms/step: 1 → >40, 2 → 22)")


def test_an_explicit_count_is_set_without_measuring(monkeypatch):
    monkeypatch.setattr(threads, "measure", lambda *a: pytest.fail("measured despite an explicit count"))
    cfg = resolve([("t", nested({"method": "staged"}))], "cpu")
    choice = threads.choose(cfg, torch.device("cpu"), 1)
    assert (choice.threads, choice.how, torch.get_num_threads()) == (1, "--threads", 1)
    assert choice.describe() == "threads 1 (--threads)"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose(cfg, torch.device("cpu")).how == "OMP_NUM_THREADS"
    with pytest.raises(ConfigError, match="--threads: expected an integer >= 1, got 0"):
        threads.choose(cfg, torch.device("cpu"), 0)


@pytest.mark.parametrize("sets", [{"method": "staged", "data.size": 32, "dip.channels": 8, "dip.scales": 3},
                                  {"method": "hybrid", "hybrid.start": "observation", "data.size": 32}])
def test_the_workload_is_a_step_of_the_trials_own_network(sets, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cfg = resolve([("t", nested(sets))], "cpu")
    assert (cfg.dip is None) == (sets["method"] == "hybrid")  # the hybrid one times its UNet
    threads.workload(cfg, torch.device("cpu"))()  # runs
    choice = threads.choose(cfg, torch.device("cpu"))
    assert choice.how == "measured" and set(choice.ms_per_step) == set(threads.candidates(threads.usable_cores()))
    assert torch.get_num_threads() == choice.threads


def test_the_cli_refuses_a_thread_count_below_one(capsys):
    assert main(["run", "--method", "staged", "--profile", "cpu", "--threads", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --threads: expected an integer >= 1, got 0"


def test_a_rerun_takes_its_records_thread_count_and_a_bad_one_is_one_line(tmp_path, capsys):
    from dipddpm.cli import load_config_file

    record = tmp_path / "result.json"
    record.write_text(json.dumps({"trial_key": "k", "profile": "cpu", "config": {"method": "staged"}, "threads": 2}))
    assert load_config_file(str(record)) == ({"method": "staged"}, "cpu", 2)
    record.write_text(json.dumps({"trial_key": "k", "config": {"method": "staged"}}))  # older records: measured
    assert load_config_file(str(record))[2] is None
    record.write_text(json.dumps({"trial_key": "k", "config": {"method": "staged"}, "threads": "two"}))
    assert main(["run", "--config", str(record)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --config {record}: threads: expected an integer >= 1, got 'two'"
