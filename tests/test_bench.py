"""`make bench` at its smoke size: every section (adaptive aside: its size is its own) runs to the end in
one process and writes the figures it promises, so a config rule or a renamed module cannot break the
bench unseen (issue 29: its configs broke on the stages' ES-WMV rule and nothing ran them)."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SECTIONS = ("dip", "eval", "orchestration", "cache", "gpu", "report", "decisions", "verdicts")
SWEEPS = ("ours", "ours_wandb", "plain_tune", "plain_tune_wandb")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> dict:
    """`bench.py --smoke --only <the sections>` called in this process (imports paid once); its JSON."""
    import importlib

    import torch

    out = tmp_path_factory.mktemp("bench") / "results.json"
    env, path, threads = dict(os.environ), list(sys.path), torch.get_num_threads()
    sys.path.insert(0, str(BENCH))
    try:
        os.environ["WANDB_MODE"] = "disabled"
        rc = importlib.import_module("bench").main(["--smoke", "--only", ",".join(SECTIONS), "--out", str(out)])
    finally:  # the bench sets W&B's mode, Ray's variables and torch's threads for its own run
        os.environ.clear()
        os.environ.update(env)
        sys.path[:] = path
        torch.set_num_threads(threads)
    assert rc == 0
    return json.loads(out.read_text())


def times(row: dict, *keys: str) -> None:
    """Each key a measured duration (or rate): a finite number > 0."""
    for k in keys:
        v = row[k]
        assert isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0, (k, v)


def finite(row: dict, *keys: str) -> None:
    """Each key a finite number (a difference or a ratio of differences may have either sign)."""
    for k in keys:
        assert isinstance(row[k], (int, float)) and math.isfinite(row[k]), (k, row[k])


@pytest.mark.slow
def test_every_section_ran_and_was_timed(smoke):
    assert smoke["smoke"] is True
    assert set(smoke["section_s"]) == set(SECTIONS)
    times(smoke["section_s"], *SECTIONS)
    times(smoke, "total_s")


@pytest.mark.slow
def test_dip_step_against_the_plain_network(smoke):
    assert [r["profile"] for r in smoke["dip"]] == ["cpu", "gpu"]
    for r in smoke["dip"]:
        assert r["size_px"] == 32 and r["params"] > 0
        times(r, "ours_ms", "plain_ms", "ratio")


@pytest.mark.slow
def test_eval_overhead_over_the_staged_loop(smoke):
    e = smoke["eval"]
    assert e["iters"] == 60
    w, p = e["stage_detector"]
    assert w - 1 + p < e["iters"] // 5  # each stage's detector can fire inside its stage
    times(e, "with_eval_s", "without_s", "eval_s", "overhead_pct")
    assert e["with_eval_s"] == pytest.approx(e["without_s"] + e["eval_s"])


@pytest.mark.slow
def test_orchestration_ran_every_sweep_against_the_pool(smoke):
    o = smoke["orchestration"]
    assert o["trials"] == 2
    times(o, "cluster_start_s")
    times(o["reference"], "wall_s")
    assert len(o["reference"]["trial_s"]) == o["trials"]
    for key in SWEEPS:
        times(o[key], "total_s", "efficiency")
    for key in SWEEPS[:2]:  # ours: one record per trial, each timed
        times(o[key], "trials_s", "efficiency_incl_report", "bytes_shipped_per_trial")
        finite(o[key], "report_s", "first_trial_start_s")
        assert o[key]["failed"] == [] and o[key]["records_ok"] == o["trials"]
        assert len(o[key]["trial_wall_s"]) == o["trials"]
        assert all(math.isfinite(w) and w > 0 for w in o[key]["trial_wall_s"])
    for key in SWEEPS[2:]:
        assert o[key]["errors"] == 0


@pytest.mark.slow
def test_cache_with_and_without(smoke):
    c = smoke["cache"]
    assert (c["train_configs"], c["sampling_configs"]) == (2, 3)
    assert c["with_cache_records_ok"] == c["without_cache_records_ok"] == 6
    times(c, "with_cache_s", "without_cache_s", "with_cache_total_s", "without_cache_total_s", "ratio",
          "ratio_incl_report")


@pytest.mark.slow
def test_gpu_precision_and_sharing(smoke):
    g = smoke["gpu"]
    assert g["smoke"] is True
    assert [(r["precision"], r["channels_last"]) for r in g["precision"]] == [
        ("fp32", False), ("bf16", False), ("fp32", True), ("bf16", True)]
    for r in g["precision"]:
        times(r, "dip_step_ms", "unet_call_ms", "dip_step_speedup", "unet_call_speedup")
        finite(r, "ddpm_train_step_ms", "ddpm_train_step_speedup")  # from two run lengths' difference
    assert [s["trials_per_gpu"] for s in g["trials_per_gpu"]] == [1, 2, 4]
    for s in g["trials_per_gpu"]:
        assert s["trials"] == s["records_ok"] == 2
        times(s, "wall_s", "trials_per_min", "throughput_vs_1")


@pytest.mark.slow
def test_report_on_copied_records(smoke):
    runs = smoke["report"]["runs"]
    assert [r["records"] for r in runs] == [50]
    for r in runs:
        times(r, "tables_s", "files_s", "total_s")


@pytest.mark.slow
def test_decisions_of_three_designs_on_the_same_draws(smoke):
    d = smoke["decisions"]
    assert d["families"] == 4 and list(k for k in d if isinstance(d[k], dict) and "new" in d[k]) == ["gaussian"]
    got = d["gaussian"]
    for design in ("new", "today", "fixed"):
        times(got[design], "trials_per_family", "cpu_hours_per_family")
        assert got[design]["decisions_per_cpu_hour"] >= 0 and 0 <= got[design]["fwer"] <= 1
    finite(got, "ratio_new_to_today")
    for p in ("0.7", "0.85", "0.95"):
        assert d["projection"][p]["claims"] > 0
        times(d["projection"][p], "median_ratio")


@pytest.mark.slow
def test_verdicts_for_every_scenario_and_path(smoke):
    import verdict_sims as vs

    v = smoke["verdicts"]
    assert set(v["scenarios"]) == set(vs.SCENARIOS)
    for name, row in v["scenarios"].items():
        assert set(row) == {f"fixed_{e}" for e in vs.SCENARIOS[name].estimands} | {"adaptive_median"}
        for cell in row.values():
            assert 0 <= cell["fwer"] <= 1 and cell["se"] >= 0
    assert all(0 <= x <= 1 for k, x in v["power"].items() if "trials" not in k)
