"""Inputs made to break the report or to make it lie: damaged and duplicate records, an edited sweep, text
that reorders or injects, an image folder with things that are not files, a claim that selects nothing, the
Python API called twice. Each gives one answer everywhere and says what it did."""

import json
import logging
import os

import pytest

from dipddpm.errors import ConfigError
from orchestrator.cli import main
from orchestrator.common.store import ResultsStore
from orchestrator.report.build import build_report, render
from report_helpers import planned_run

SWEEP = """
name: damaged
method: staged
base: {data: {images: [astronaut, coffee]}}
grid: {staged.variant: [staged, baseline]}
seeds: [0, 1, 2, 3]
claims:
  - text: "CLAIM"
    a: {staged.variant: staged}
    b: {staged.variant: baseline}
"""


def value(trial, image):
    return 25.0 + trial.seed + (1.0 if trial.config.staged.variant == "staged" else 0.0)


@pytest.fixture
def run(tmp_path):
    run = tmp_path / "damaged" / "cpu"
    planned_run(run, SWEEP.replace("CLAIM", "staged beats plain"), value)
    return run


def lines(run):
    return [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]


def rewrite(run, records):
    (run / "results.jsonl").write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in records))


def table(report, name):
    tab = next(t for t in report.sections[0].tables if t.name == name)
    return tab.dicts()


def test_a_string_and_a_nan_metric_are_named_once_and_left_out_never_a_crash(run, caplog):
    recs = lines(run)
    recs[0]["per_image"]["astronaut"]["psnr_es"] = "25.1"  # a crafted string
    recs[1]["metrics"]["psnr_es"] = float("nan")  # a damaged number
    rewrite(run, recs)
    with caplog.at_level(logging.WARNING, logger="orchestrator.common.store"):
        report = build_report(run)
        for fmt in ("markdown", "csv", "json", "html"):
            assert render(report, fmt)  # every file builds (the old crash: a format code on a string)
    said = [m for m in caplog.messages if "not finite numbers" in m]
    assert len(said) == 1 and "psnr_es" in said[0]
    problems = table(report, "problems")
    assert any("damaged" in p["status"] and "psnr_es" in p["error"] for p in problems)


def test_a_duplicate_trial_key_gives_one_answer_everywhere(run, caplog):
    recs = lines(run)
    dup = json.loads(json.dumps(recs[0]))
    for m in dup["per_image"].values():
        m["psnr_es"] += 100.0  # the same trial, other figures, written last
    dup["metrics"]["psnr_es"] += 100.0
    rewrite(run, recs + [dup])
    with caplog.at_level(logging.WARNING, logger="orchestrator.common.store"):
        report = build_report(run)
        build_report(run)
    assert sum("several terminal records" in m for m in caplog.messages) == 1  # warned once
    last = ResultsStore(run).records()
    assert len(last) == len(recs) and any(r.metrics["psnr_es"] > 100 for r in last)
    cell = next(c for c in report.sections[0].cells if c.key == recs[0]["cell_key"])
    assert any(r.metrics["psnr_es"] > 100 for r in cell.records)  # the cells read the last record
    row = report.sections[0].claim_rows[0]  # and so does the claim: the +100 unit is there
    assert max(abs(d) for d in row.units.d) > 50


def test_an_edited_sweep_leaves_the_earlier_designs_records_out(run, tmp_path, caplog):
    """The same folder, the base edited: the old records stay in results.jsonl, out of every table."""
    edited = SWEEP.replace("CLAIM", "staged beats plain").replace("base: {data: {images: [astronaut, coffee]}}",
                                                                  "base: {data: {images: [astronaut, coffee]}, "
                                                                  "staged: {iters_per_stage: 100}}")
    before = len(lines(run))
    planned_run(run, edited, value)
    assert len(lines(run)) == 2 * before
    with caplog.at_level(logging.WARNING, logger="orchestrator.report.build"):
        report = build_report(run)
    assert report.meta["records"] == before
    assert any("earlier design" in m for m in caplog.messages)
    from orchestrator.api import load_results

    frame = load_results(run)
    assert frame["in_design"].sum() == frame["in_design"].size / 2


def test_text_cannot_reorder_the_page_or_inject_markup(tmp_path):
    run = tmp_path / "text" / "cpu"
    evil = "staged wins \u202edetcidartnoc <script>alert(1)</script> <img src=x onerror=alert(2)>"
    planned_run(run, SWEEP.replace('"CLAIM"', json.dumps(evil)).replace("name: damaged", "name: text"), value)
    report = build_report(run)
    for fmt in ("markdown", "html"):
        text = render(report, fmt)
        assert "\u202e" not in text and "U+202E" in text  # shown as a visible escape, not obeyed
        assert "<script>alert" not in text and "<img src=x" not in text and "&lt;script&gt;alert" in text


def test_a_claim_arm_that_selects_no_cell_is_warned_at_dry_run(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.replace('"CLAIM"', "x").replace("a: {staged.variant: staged}",
                                                          "a: {staged.variant: nonexist}"))
    assert main(["sweep", str(path), "--dry-run", "--profile", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "claims[0].a: staged.variant=\"nonexist\" selects no grid cell" in err and len(err.splitlines()) == 1


def test_non_regular_files_in_an_image_folder_are_named_once(tmp_path, caplog):
    from dipddpm.images import resolve_images
    from PIL import Image
    import numpy as np

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray((np.random.default_rng(0).random((80, 80, 3)) * 255).astype("uint8")).save(folder / "a.png")
    os.mkfifo(folder / "b.png")
    with caplog.at_level(logging.WARNING, logger="dipddpm.images"):
        got = resolve_images((str(folder),), None, "*", "data.images")
        resolve_images((str(folder),), None, "*", "data.images")
    assert len(got) == 1 and got[0].id.startswith("a")
    said = [m for m in caplog.messages if "not regular files" in m]
    assert len(said) == 1 and "b.png" in said[0]


def test_a_line_cut_short_is_warned_once_however_often_the_store_is_read(run, caplog):
    with (run / "results.jsonl").open("a") as f:
        f.write('{"trial_key": "0123')
    with caplog.at_level(logging.WARNING, logger="orchestrator.common.store"):
        for _ in range(3):
            ResultsStore(run).records()
    assert sum("unreadable line" in m for m in caplog.messages) == 1


def test_the_api_stays_callable_after_its_subpackage_is_imported():
    import orchestrator
    import orchestrator.sweep.runner  # noqa: F401  (what the first call of orchestrator.sweep imports)

    assert callable(orchestrator.sweep)
    for _ in range(2):  # a second call finds the function, not the subpackage
        with pytest.raises(ConfigError, match="no-such.yaml"):
            orchestrator.sweep("no-such.yaml")
    with pytest.raises(ConfigError, match="^run_dir: expected a run folder"):
        orchestrator.open_run(None)
