"""Regenerate the golden run folders (a provenance note, not part of the suite).

Each folder holds a results.jsonl and sweep.json written by the real planner and store,
with values drawn from a fixed hash of (trial key, image): some trials failed or
diverged, some cells short of seeds. `report.json` / `report.md` beside them are the
report as the code of the day built it; tests/test_golden_report.py rebuilds the report
from the two input files and compares.

    python tests/golden/make_golden.py                  # from the repository root: records and reports
    python tests/golden/make_golden.py --reports-only   # the expected reports of the committed records
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import yaml  # noqa: E402

from report_helpers import record_for  # noqa: E402

from orchestrator.common.store import ResultsStore  # noqa: E402
from orchestrator.sweep.plan import plan  # noqa: E402
from orchestrator.sweep.spec import parse_spec  # noqa: E402


def _u(*parts) -> float:
    """A fixed number in [0, 1) from its parts."""
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:12], 16) / 16**12


def value(trial, image: str) -> float:
    cfg = trial.config
    v = 24.0 + 3.0 * _u(trial.key, image)
    if cfg.method == "staged":
        v += 0.8 if cfg.staged.variant == "baseline" else 0.0
        v -= 3.0 if cfg.dip.lr >= 0.1 else 0.0
    else:
        v += {"dip": 0.5, "observation": 1.5, "noise": -12.0}[cfg.hybrid.start]
    return round(v, 4)


def status(trial) -> str:
    u = _u("status", trial.key)
    return "failed" if u < 0.06 else "diverged" if u < 0.12 else "ok"


def make(name: str, sweep_file: Path, edit, keep) -> None:
    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    data = yaml.safe_load(sweep_file.read_text())
    edit(data)
    spec = parse_spec(data, sweep_file.name)
    p = plan(spec, "cpu")
    p.design.save(out)
    store = ResultsStore(out)
    for t in p.trials:
        if keep(t):
            store.append(record_for(t, value, status(t), "cpu", spec.name))
    print(f"{out}: {sum(1 for _ in open(out / 'results.jsonl'))} records")


def staged_edit(d):
    d["profiles"]["cpu"]["replicate"] = {"min_seeds": 3, "max_seeds": 6}


def hybrid_edit(d):
    d.pop("replicate")
    d["profiles"]["cpu"].pop("replicate")
    d["seeds"] = [0, 1, 2, 3]


def expected_reports() -> None:
    """expected_report.json and expected_report.md of each folder, as today's report code builds them."""
    import json

    from orchestrator.report.build import build_report, render

    for name in ("staged_adaptive", "hybrid_fixed"):
        report = build_report(HERE / name)
        body = json.loads(render(report, "json"))
        (HERE / name / "expected_report.json").write_text(json.dumps(body["sections"], indent=1, ensure_ascii=False)
                                                          + "\n")
        (HERE / name / "expected_report.md").write_text(render(report, "markdown").split("\n", 3)[3])


if __name__ == "__main__":
    root = HERE.parent.parent
    if "--reports-only" not in sys.argv:
        make("staged_adaptive", root / "sweeps" / "staged.yaml", staged_edit, lambda t: t.seed < 3 + (_u(t.key) < 0.5))
        make("hybrid_fixed", root / "sweeps" / "hybrid.yaml", hybrid_edit, lambda t: _u("keep", t.key) > 0.05)
    expected_reports()
