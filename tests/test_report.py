"""Reports from a results file with known answers, failed and diverged trials, and an ORACLE cell."""

import json
import statistics

import pytest
from scipy import stats as st

from dipddpm.config import config_dict, trial_key
from dipddpm.trial import resolve
from orchestrator.report.analysis import ORACLE
from orchestrator.cli import main
from orchestrator.report.build import build_report
from orchestrator.sweep.spec import cell_key_of
from orchestrator.common.store import ResultsStore

IMAGES = ("astronaut", "coffee")
SEEDS = (0, 1, 2)
LRS = (0.01, 0.1)
# staged − baseline on psnr_es, per (lr, seed, image): the known paired differences
DELTA = {(lr, s, i): d for (lr, s, i), d in zip([(lr, s, i) for lr in LRS for s in SEEDS for i in IMAGES],
                                                 [-0.4, -0.1, 0.2, -0.6, -0.3, 0.1, -0.2, -0.5, 0.0, -0.7, -0.1, -0.3])}


def base_psnr(lr: float, seed: int, image: str) -> float:
    return 25.0 + 0.5 * seed + (1.0 if image == "coffee" else 0.0) + (0.3 if lr == 0.1 else 0.0)


def psnr_es(variant: str, lr: float, seed: int, image: str) -> float:
    return base_psnr(lr, seed, image) + (DELTA[(lr, seed, image)] if variant == "staged" else 0.0)


def make_record(cell: dict, seed: int, status: str = "ok", value=None) -> dict:
    layer = {"data": {"images": list(IMAGES)}, "seed": seed}
    for k, v in cell.items():
        sec, name = k.split(".")
        layer.setdefault(sec, {})[name] = v
    cfg = resolve([("test", layer)], "cpu")
    per_image = {}
    for image in IMAGES:
        v = value(image) if value else 20.0
        per_image[image] = {"psnr": v, "ssim": 0.8 + v / 1000, "psnr_es": v, "ssim_es": 0.8 + v / 1000,
                            "psnr_peak": v + 0.5, "iter_es": 50, "iter_peak": 40, "es_fired": image == "coffee",
                            "es_gap_db": 0.5, "psnr_observation": 20.7, "psnr_tv": 23.9, "psnr_nlm": 25.5,
                            "ssim_observation": 0.75, "ssim_tv": 0.85, "ssim_nlm": 0.88, "noise_std_255": 25.0}
    if status == "failed":
        per_image = {}
    metrics = {k: statistics.mean(m[k] for m in per_image.values()) for k in ("psnr", "ssim", "psnr_es")} \
        if per_image else {}
    if per_image:
        metrics |= {"time_s": 60.0 + seed, "dip_s": 59.0, "ms_per_iter": 40.0, "wall_s": 60.0 + seed}
    return {"trial_key": trial_key(cfg), "method": "staged", "seed": seed, "profile": "cpu", "status": status,
            "error": None if status == "ok" else f"{status} on purpose", "config": config_dict(cfg),
            "metrics": metrics, "per_image": per_image, "sweep": "synthetic", "cell": cell,
            "cell_key": cell_key_of(cfg), "versions": {"dipddpm_code": "test"}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "synthetic" / "cpu"
    store = ResultsStore(run)
    for variant in ("staged", "baseline"):
        for lr in LRS:
            for seed in SEEDS:
                cell = {"staged.variant": variant, "dip.lr": lr}
                store.append(make_record(cell, seed, value=lambda i, v=variant, l=lr, s=seed: psnr_es(v, l, s, i)))
    # lr 1.0: one diverged, one failed trial (excluded from statistics, listed as problems)
    store.append(make_record({"staged.variant": "baseline", "dip.lr": 1.0}, 0, "diverged", value=lambda i: 9.0))
    store.append(make_record({"staged.variant": "staged", "dip.lr": 1.0}, 0, "failed"))
    # an ORACLE cell that beats everything: never the best configuration
    for seed in SEEDS:
        store.append(make_record({"staged.targets": "clean", "staged.timesteps": [30, 20, 10, 5]}, seed,
                                 value=lambda i: 35.0))
    return run


def table(report, name):
    return next(t for t in report.sections[0].tables if t.name == name)


def column(tab, name):
    return tab.columns.index(name)


def test_staged_vs_baseline_paired_by_seed_image_and_lr(run_dir):
    rep = build_report(run_dir)
    comp = table(rep, "comparisons")
    row = next(r for r in comp.rows if r[column(comp, "metric")] == "psnr_es")
    a = [psnr_es("staged", lr, s, i) for lr in LRS for s in SEEDS for i in IMAGES]
    b = [psnr_es("baseline", lr, s, i) for lr in LRS for s in SEEDS for i in IMAGES]
    diff = row[column(comp, "Δ = A − B")]
    assert row[column(comp, "trial pairs")] == 6 and diff.n == 12
    assert diff.mean == pytest.approx(statistics.mean(DELTA.values()))
    ci = st.ttest_rel(a, b).confidence_interval(0.95)
    assert (diff.low, diff.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert row[column(comp, "p")] == pytest.approx(st.ttest_rel(a, b).pvalue)
    assert row[column(comp, "also differs")] == "—"
    peak = next(r for r in comp.rows if r[column(comp, "metric")] == f"psnr_peak [{ORACLE}]")
    assert ORACLE in peak[0]


def test_cell_means_and_intervals_over_seeds_and_images(run_dir):
    rep = build_report(run_dir)
    cells = table(rep, "cells")
    row = next(r for r in cells.rows if r[1] == "variant=staged, lr=0.01")
    values = [psnr_es("staged", 0.01, s, i) for s in SEEDS for i in IMAGES]
    est = row[column(cells, "psnr_es")]
    assert est.mean == pytest.approx(statistics.mean(values)) and est.n == 6
    assert est.half == pytest.approx(st.t.ppf(0.975, 5) * statistics.stdev(values) / 6 ** 0.5)
    assert row[column(cells, "trials")] == "3 ok"
    problem_cells = [r for r in cells.rows if "lr=1" in r[1]]
    assert {r[column(cells, "trials")] for r in problem_cells} == {"1 diverged", "1 failed"}
    assert all(r[column(cells, "psnr_es")] is None for r in problem_cells)  # no ok trial, no statistic


def test_axis_effect_holds_the_other_axes_fixed(run_dir):
    eff = table(build_report(run_dir), "effects")
    row = next(r for r in eff.rows if r[0] == "dip.lr" and r[1] == "0.1")
    expected = [psnr_es(v, 0.1, s, i) - psnr_es(v, 0.01, s, i)
                for v in ("staged", "baseline") for s in SEEDS for i in IMAGES]
    assert row[column(eff, "Δ psnr_es")].mean == pytest.approx(statistics.mean(expected))
    assert row[column(eff, "trial pairs")] == 6 and row[column(eff, "also differs")] == "—"
    assert not any(r[0] == "dip.lr" and r[1] == "1" for r in eff.rows)  # no ok trial at lr 1.0


def test_best_is_chosen_without_ground_truth_and_problems_are_listed(run_dir):
    rep = build_report(run_dir)
    best = table(rep, "best")
    assert best.rows[0][3] == "variant=baseline, lr=0.1"  # the ORACLE clean-target cell scores higher
    cells = table(rep, "cells")
    assert cells.rows[0][1].endswith(f"[{ORACLE}: clean targets]")
    probs = table(rep, "problems")
    assert sorted(r[3] for r in probs.rows) == ["diverged", "failed"]
    es = table(rep, "early_stopping")
    assert all(r[column(es, "ES fired")] == "3/6" for r in es.rows if "lr=0.01" in r[1])
    assert any(f"[{ORACLE}]" in c for c in es.columns)


def test_every_format_builds_and_the_cli_writes_the_report_files(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "Each variant against its baseline" in out and "Best configurations" in out
    md = (run_dir / "report.md").read_text()
    assert "| variant=staged vs variant=baseline |" in md and f"psnr_peak [{ORACLE}]" in md
    rows = (run_dir / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 16 + 1  # header, 15 ok + 1 diverged trials x 2 images, 1 failed trial (no images)
    page = (run_dir / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("data:image/png;base64,") >= 2
    body = json.loads((run_dir / "report.json").read_text())
    assert set(body["sections"][0]["tables"]) >= {"cells", "comparisons", "effects", "best", "early_stopping"}
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
    from orchestrator.report.publish import spec_objects

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
