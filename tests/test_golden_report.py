"""The report of two fixed, committed run folders is the report as it was built when they were made.

tests/golden/<run>/results.jsonl and sweep.json were written by the real planner and store
(tests/golden/make_golden.py); expected_report.json (every table: title, note, columns, rows) and
expected_report.md (the summary and the tables) are what the report code built from them. A change
that moves code without meaning to change an answer must leave both the same; a change that means
to (a new estimand) regenerates them and says why in its commit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orchestrator.report.build import build_report, render

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize("name", ["staged_adaptive", "hybrid_fixed"])
def test_the_report_of_a_committed_run_is_unchanged(name, tmp_path):
    run = tmp_path / name
    run.mkdir()
    for f in ("results.jsonl", "sweep.json"):
        shutil.copy(GOLDEN / name / f, run / f)
    report = build_report(run)
    got = json.loads(render(report, "json"))["sections"]
    want = json.loads((GOLDEN / name / "expected_report.json").read_text())
    assert [list(s["tables"]) for s in got] == [list(s["tables"]) for s in want]
    for s_got, s_want in zip(got, want):
        for tname, tab in s_want["tables"].items():
            assert s_got["tables"][tname] == tab, tname
    assert render(report, "markdown").split("\n", 3)[3] == (GOLDEN / name / "expected_report.md").read_text()
