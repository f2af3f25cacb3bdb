"""Reports from run folders with known answers: units, tasks, tags, costs, the sweep's own base."""

import json
import math
import statistics

import pytest
from scipy import stats as st

from orchestrator.cli import main
from dipddpm.method import ORACLE
from orchestrator.report.build import build_report
from report_helpers import planned_run

IMAGES = ("astronaut", "coffee")
SEEDS = (0, 1, 2)
LRS = (0.01, 0.1)
# staged − baseline on psnr_es, per (lr, seed, image): the known paired differences
DELTA = {(lr, s, i): d for (lr, s, i), d in zip([(lr, s, i) for lr in LRS for s in SEEDS for i in IMAGES],
                                                 [-0.4, -0.1, 0.2, -0.6, -0.3, 0.1, -0.2, -0.5, 0.0, -0.7, -0.1, -0.3])}

SWEEP = """
name: synthetic
method: staged
base: {data: {images: [astronaut, coffee]}}
grid:
  - staged.variant: [staged, baseline]
    dip.lr: [0.01, 0.1]
  - staged.variant: [staged, baseline]
    dip.lr: [1.0]
  - staged.targets: [clean]
    staged.timesteps: [[30, 20, 10, 5]]
  - degradation.noise_std: [0.058823529411764705, 0.19607843137254902]
    staged.variant: [staged, baseline]
seeds: [0, 1, 2]
"""


def base_psnr(lr: float, seed: int, image: str) -> float:
    return 25.0 + 0.5 * seed + (1.0 if image == "coffee" else 0.0) + (0.3 if lr == 0.1 else 0.0)


def psnr_es(trial, image: str) -> float:
    cfg = trial.config
    if cfg.staged.targets == "clean":
        return 35.0  # an ORACLE cell that beats everything: never the best configuration
    if cfg.degradation.noise_std and abs(cfg.degradation.noise_std - 25 / 255) > 1e-6:
        # 15/255: staged gains 1 dB; 50/255: staged loses 3 dB (opposite effects, never pooled)
        return base_psnr(0.01, trial.seed, image) + ((1.0 if cfg.degradation.noise_std < 0.09 else -3.0)
                                                     if cfg.staged.variant == "staged" else 0.0)
    lr = cfg.dip.lr
    if lr == 1.0:
        return 9.0
    return base_psnr(lr, trial.seed, image) + (DELTA[(lr, trial.seed, image)] if cfg.staged.variant == "staged"
                                               else 0.0)


def status(trial) -> str:
    if trial.config.dip.lr == 1.0 and trial.seed == 0:
        return "diverged" if trial.config.staged.variant == "baseline" else "failed"
    return "ok"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "synthetic" / "cpu"
    planned_run(run, SWEEP, psnr_es, status)
    return run


@pytest.fixture(scope="module")
def report(run_dir):
    return build_report(run_dir)


def table(report, name):
    return next(t for t in report.sections[0].tables if t.name == name)


def rows_of(tab):
    return [dict(zip(tab.columns, r)) for r in tab.rows]


SIGMA25 = "σ 25/255 · astronaut,coffee · 64 px"


def test_staged_vs_baseline_is_paired_over_seed_image_units(report):
    comp = rows_of(table(report, "comparisons"))
    row = next(r for r in comp if r["metric"] == "psnr_es" and r["task"] == SIGMA25 and ORACLE not in r["comparison"])
    # one unit per (seed, image): its differences at every lr of this task averaged first (lr 1.0: 0, except
    # seed 0, whose staged trial failed and is left out)
    units = [statistics.mean([DELTA[(lr, s, i)] for lr in LRS] + ([0.0] if s else [])) for s in SEEDS for i in IMAGES]
    d = row["Δ = A − B"]
    assert row["unit"] == "(seed, image)" and d.n == 6 and row["trial pairs"] == 6 + 2
    assert d.mean == pytest.approx(statistics.mean(units))
    ci = st.ttest_1samp(units, 0).confidence_interval(0.95)
    assert (d.low, d.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert row["p"] == pytest.approx(st.ttest_1samp(units, 0).pvalue)
    assert row["also differs"] == "—"
    assert 0 < row["q (BH)"] <= 1 and row["q (BH)"] >= row["p"]


def test_opposite_effects_at_two_noise_levels_are_two_rows_never_one(report):
    comp = rows_of(table(report, "comparisons"))
    by_task = {r["task"]: r["Δ = A − B"].mean for r in comp if r["metric"] == "psnr_es" and r["Δ = A − B"]}
    assert by_task["σ 15/255 · astronaut,coffee · 64 px"] == pytest.approx(1.0)
    assert by_task["σ 50/255 · astronaut,coffee · 64 px"] == pytest.approx(-3.0)
    assert len({r["task"] for r in comp if r["metric"] == "psnr_es"}) == 3  # 15, 25 and 50 /255, apart


def test_cells_are_over_units_and_small_n_shows_values_not_an_interval(report):
    cells = rows_of(table(report, "cells"))
    row = next(r for r in cells if r["grid cell"] == "variant=staged, lr=0.01")
    values = [psnr_es_value("staged", 0.01, s, i) for s in SEEDS for i in IMAGES]
    est = row["psnr_es"]
    assert est.n == 6 and row["units"] == 6 and est.mean == pytest.approx(statistics.mean(values))
    assert est.half == pytest.approx(st.t.ppf(0.975, 5) * statistics.stdev(values) / 6 ** 0.5)
    lr1 = [r for r in cells if "lr=1" in r["grid cell"]]
    assert {r["trials"] for r in lr1} == {"1 diverged · 2 ok", "1 failed · 2 ok"}
    for r in cells:  # no interval leaves SSIM's range, and n < 3 has none
        s = r["ssim"]
        assert s is None or s.low is None or (-1 <= s.low and s.high <= 1)
        assert s is None or s.n >= 3 or s.low is None


def psnr_es_value(variant, lr, seed, image):
    return base_psnr(lr, seed, image) + (DELTA[(lr, seed, image)] if variant == "staged" else 0.0)


def test_survivors_are_not_silent(report):
    comp = rows_of(table(report, "comparisons"))
    eff = rows_of(table(report, "effects"))
    lr1 = next(r for r in eff if r["axis"] == "dip.lr" and r["value"] == "1")
    # seed 0 at lr 1.0: the baseline diverged (counted with its values), the staged trial failed (left out)
    assert lr1["diverged/failed"] == "A 1/1 · B 0/0"
    assert lr1["n"] == 6 and lr1["trial pairs"] == 5  # seed 0's staged pair is left out, its baseline pair kept
    assert all(r["diverged/failed"] in ("—",) or "/" in r["diverged/failed"] for r in comp)


def test_axis_effect_holds_the_other_axes_fixed(report):
    eff = rows_of(table(report, "effects"))
    row = next(r for r in eff if r["axis"] == "dip.lr" and r["value"] == "0.1")
    units = [statistics.mean(psnr_es_value(v, 0.1, s, i) - psnr_es_value(v, 0.01, s, i) for v in ("staged", "baseline"))
             for s in SEEDS for i in IMAGES]
    assert row["Δ psnr_es"].mean == pytest.approx(statistics.mean(units)) and row["n"] == 6
    assert row["trial pairs"] == 6 and row["also differs"] == "—" and row["vs"] == "0.01"


def test_best_excludes_oracle_cells_and_says_how_many_it_chose_among(report):
    best = table(report, "best")
    first = rows_of(best)[0]
    assert first["grid cell"] == "variant=baseline, lr=0.1"  # the ORACLE clean-target cell scores higher
    assert f"chosen among 6 cells (1 {ORACLE}/FLOOR cells excluded)" in best.note
    cells = table(report, "cells")
    assert cells.rows[0][1].endswith(f"[{ORACLE}]")
    probs = rows_of(table(report, "problems"))
    assert sorted(r["status"] for r in probs) == ["diverged", "failed"]
    es = table(report, "early_stopping")
    assert any(f"[{ORACLE}]" in c for c in es.columns)


def test_cost_table_parts_add_up_per_trial(report):
    cost = rows_of(table(report, "cost"))
    for r in cost:
        if r["time_s (attributed)"] is None:
            continue
        assert r["time_s (attributed)"].mean == pytest.approx(r["dip_s"].mean + r["other_s"].mean)
        assert r["dip_s"].mean == pytest.approx(29.0 * 2)  # both images' DIP seconds: one trial's


def test_every_format_builds_and_the_cli_writes_the_report_files(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "Each variant against its baseline" in out and "Best configurations" in out
    md = (run_dir / "report.md").read_text()
    assert "variant=staged vs variant=baseline" in md and f"psnr_peak [{ORACLE}]" in md
    rows = (run_dir / "results.csv").read_text().splitlines()
    n_trials = 3 * (4 + 2 + 1 + 4)
    assert len(rows) == 1 + 2 * (n_trials - 1) + 1  # header, 2 images per trial, the failed trial has no image
    page = (run_dir / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("data:image/png;base64,") >= 2
    body = json.loads((run_dir / "report.json").read_text())
    tables = body["sections"][0]["tables"]
    assert set(tables) >= {"cells", "comparisons", "effects", "best", "early_stopping"}
    assert {"Δ = A − B low", "Δ = A − B high", "q (BH)"} <= set(tables["comparisons"]["columns"])
    assert main(["report", str(run_dir), "--format", "csv", "--out", str(run_dir / "x.csv")]) == 0
    assert (run_dir / "x.csv").read_text() == (run_dir / "results.csv").read_text()


def test_report_input_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no results.jsonl" in err
    (tmp_path / "results.jsonl").write_text("")
    assert main(["report", str(tmp_path)]) == 2
    assert "no complete records" in capsys.readouterr().err


def test_oracle_metric_cannot_rank(run_dir, capsys):
    assert main(["report", str(run_dir), "--metric", "psnr_peak"]) == 2
    assert ORACLE in capsys.readouterr().err


def test_publish_dry_run_spec_names_every_table_and_panel(run_dir):
    from orchestrator.wandb_io.publish import spec_objects

    assert main(["publish", str(run_dir), "--dry-run", "--project", "p"]) == 0
    spec = json.loads((run_dir / "wandb_report_spec.json").read_text())
    names = {t.name for t in build_report(run_dir).sections[0].tables}
    assert set(spec["tables"]) == {f"tables/staged/{n}" for n in names}
    panels = [p for b in spec["blocks"] for p in b.get("panels", [])]
    assert {p["table"] for p in panels if p["type"] == "summary_table"} == set(spec["tables"])
    assert all(p.get("title") for p in panels if p["type"] != "summary_table")
    assert {"line", "bar", "scatter", "media"} <= {p["type"] for p in panels}
    report = spec_objects(spec, offline=True)  # wandb-workspaces accepts it
    assert report.title == spec["title"] and len(report.blocks) == len(spec["blocks"])


# ---------------------------------------------------------------- hybrid: models shared by images, FLOOR, the base

HYBRID = """
name: hyb
method: hybrid
base: {data: {images: [astronaut, coffee]}, ddpm: {train_steps: 10}, dip: {scales: 4}}
grid:
  - hybrid.start: [dip, observation]
  - hybrid.start: [noise]
    ddpm.t_max: [null]
    hybrid.train_on: [clean, dip]
    ddpm.epochs: [10, 20, 30]
seeds: [0, 1, 2]
"""


def hybrid_psnr(trial, image: str) -> float:
    start = trial.config.hybrid.start
    # a model's effect shared by both images (the seed), plus image offsets
    return {"dip": 28.0, "observation": 27.0, "noise": 9.0}[start] + 0.7 * trial.seed + (0.2 if image == "coffee" else 0)


@pytest.fixture(scope="module")
def hybrid_report(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "hyb" / "cpu"
    planned_run(run, HYBRID, hybrid_psnr)
    return build_report(run)


def test_the_sweeps_base_not_the_majority_block_decides_the_comparisons(hybrid_report):
    # 18 of 24 trials start from noise: a vote would make start=noise the base and lose dip vs observation
    comp = rows_of(table(hybrid_report, "comparisons"))
    dip_obs = next(r for r in comp if r["comparison"] == "start=dip vs start=observation" and r["metric"] == "psnr")
    assert dip_obs["Δ = A − B"].mean == pytest.approx(1.0) and dip_obs["n"] == 3
    assert any(r["comparison"].startswith("start=dip vs start=noise") for r in comp)
    eff = rows_of(table(hybrid_report, "effects"))
    assert {r["value"] for r in eff if r["axis"] == "hybrid.start"} >= {"observation", "noise [FLOOR]"}


def test_a_hybrid_unit_is_a_training_seed(hybrid_report):
    comp = rows_of(table(hybrid_report, "comparisons"))
    row = next(r for r in comp if r["comparison"] == "start=dip vs start=observation" and r["metric"] == "psnr")
    assert row["unit"] == "training seed" and row["n"] == 3 and row["trial pairs"] == 3  # 3 seeds, not 6 images


def test_floor_rows_are_tagged_and_never_best(hybrid_report):
    comp = rows_of(table(hybrid_report, "comparisons"))
    assert all("[FLOOR]" in r["comparison"] for r in comp if "noise" in r["comparison"])
    best = rows_of(table(hybrid_report, "best"))
    assert best and all("noise" not in r["grid cell"] for r in best)


def test_hybrid_cost_parts_add_up(hybrid_report):
    for r in rows_of(table(hybrid_report, "cost")):
        total = r["time_s (attributed)"].mean
        parts = r["train_s"].mean + r["dip_s"].mean + r["sample_s"].mean + r["other_s"].mean
        assert total == pytest.approx(parts) and math.isclose(r["other_s"].mean, 0, abs_tol=1e-9)
        assert r["train_s"].mean == pytest.approx(r["ddpm_fit_s"].mean + r["train_data_s"].mean)
