"""Claims from run folders with known paired differences: every verdict, where it shows, and bad claims."""

import json
import math
import re

import numpy as np
import pytest
from scipy import stats as st

from dipddpm.errors import ConfigError
from orchestrator.cli import main
from orchestrator.common.claims import parse_claims
from orchestrator.report.build import build_report
from report_helpers import planned_run

SEEDS = (0, 1, 2, 3)
IMAGES = ("astronaut", "coffee")
RNG = np.random.default_rng(7)
NOISE = {(lr, s, i): RNG.normal() for lr in (0.01, 0.1, 0.008) for s in SEEDS for i in IMAGES}

CLAIMS = """
claims:
  - text: plain DIP beats staged DIP at lr 0.1
    a: {staged.variant: baseline}
    b: {staged.variant: staged}
    where: {dip.lr: 0.1}
    expect: greater
  - text: staged DIP beats plain DIP at lr 0.1
    a: {staged.variant: staged}
    b: {staged.variant: baseline}
    where: {dip.lr: 0.1}
    expect: greater
  - text: the variant does not matter at lr 0.008
    a: {staged.variant: baseline}
    b: {staged.variant: staged}
    where: {dip.lr: 0.008}
    margin: 1.0
  - text: plain DIP beats staged DIP at lr 0.01
    a: {staged.variant: baseline}
    b: {staged.variant: staged}
    where: {dip.lr: 0.01}
  - text: staged DIP costs the same time
    a: {staged.variant: staged}
    b: {staged.variant: baseline}
    where: {dip.lr: 0.01}
    metric: time_s
    margin: 5%
    estimand: mean
  - text: a learning rate the sweep never ran
    a: {dip.lr: 0.5}
    b: {dip.lr: 0.01}
"""
SWEEP = """
name: claimed
method: staged
base: {data: {images: [astronaut, coffee]}}
grid:
  - staged.variant: [staged, baseline]
    dip.lr: [0.01, 0.1, 0.008]
seeds: SEEDS
""" + CLAIMS


def staged_gap(lr, seed, image) -> float:
    """staged − baseline psnr_es: −2 ± 0.3 at lr 0.1, 0 ± 0.1 at 0.008, +0.3 ± 1 at 0.01."""
    mean, sd = {0.1: (-2.0, 0.3), 0.008: (0.0, 0.1), 0.01: (0.3, 1.0)}[lr]
    return mean + sd * NOISE[(lr, seed, image)]


def value(trial, image):
    cfg = trial.config
    return 25.0 + trial.seed + (staged_gap(cfg.dip.lr, trial.seed, image) if cfg.staged.variant == "staged" else 0.0)


def time_of(run, seed, variant) -> float:
    from orchestrator.common.store import ResultsStore

    return next(r.metrics["time_s"] for r in ResultsStore(run).records()
                if r.seed == seed and r.config["staged"]["variant"] == variant and r.config["dip"]["lr"] == 0.01)


@pytest.fixture(scope="module")
def claims_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "claimed" / "cpu"
    planned_run(run, SWEEP.replace("SEEDS", str(list(SEEDS))), value)
    return run


def claims_rows(run):
    tab = next(t for t in build_report(run).sections[0].tables if t.name == "claims")
    return [dict(zip(tab.columns, r)) for r in tab.rows]


def test_each_verdict_from_known_differences(claims_run):
    rows = claims_rows(claims_run)
    verdicts = [r["verdict"] for r in rows]
    assert verdicts[:2] == ["supported", "contradicted"]
    assert verdicts[2] == "equivalent within ±1"
    assert verdicts[3] == "not distinguishable at this n"
    assert verdicts[4] == "equivalent within ±5%"  # equal times (a staged trial 1.5 s + seed beside 58 s of DIP)
    assert verdicts[5].startswith("no pairs")
    first = rows[0]
    units = [-staged_gap(0.1, s, i) for s in SEEDS for i in IMAGES]  # (seed, image) units: 8
    assert first["n"] == 8 and first["unit"] == "(seed, image)" and first["trial pairs"] == 4
    assert first["estimand"] == "median" and first["Δ = A − B"].mean == pytest.approx(np.median(units))
    wins = sum(u > 0 for u in units)  # the exact sign test, two-sided
    assert first["p"] == pytest.approx(min(1, 2 * st.binomtest(wins, 8, 0.5, alternative="greater").pvalue))
    assert all(r["p (Holm)"] >= r["p"] for r in rows if r["p"] is not None)
    assert rows[1]["Δ = A − B"].mean == pytest.approx(-np.median(units))  # the same pairs, the other way round
    time_units = [math.log(time_of(claims_run, s, "staged") / time_of(claims_run, s, "baseline")) for s in SEEDS]
    assert rows[4]["estimand"] == "mean" and rows[4]["p"] == pytest.approx(st.ttest_1samp(time_units, 0).pvalue)
    assert rows[5]["n"] == 0


def test_a_relative_margin_reads_a_ratio(claims_run):
    row = claims_rows(claims_run)[4]
    assert row["margin"] == "±5%" and row["Δ = A − B"].endswith("]") and "%" in row["Δ = A − B"]
    assert row["unit"] == "seed (one value per trial)" and row["n"] == 4


def test_below_three_units_there_is_no_verdict(tmp_path):
    run = tmp_path / "few"
    planned_run(run, SWEEP.replace("SEEDS", "[0]").replace("name: claimed", "name: few"),
                lambda t, i: 25.0 + (5.0 if t.config.staged.variant == "staged" else 0.0))
    rows = claims_rows(run)
    assert rows[1]["n"] == 2 and rows[1]["verdict"].startswith("too few replicates")  # a +5 dB gap on 2 units


def test_claims_show_first_in_files_and_last_in_the_terminal(claims_run, tmp_path, capsys):
    assert main(["report", str(claims_run), "--out", str(tmp_path)]) == 0
    terminal = capsys.readouterr().out
    assert "Claims" in terminal and terminal.rstrip().rfind("Claims") > terminal.find("Grid cells")  # last
    for name in ("report.md", "report.html"):
        text = (tmp_path / name).read_text()
        assert "plain DIP beats staged DIP at lr 0.1" in text and "supported" in text and "contradicted" in text
        assert text.find("Claims") < text.find("Grid cells")  # first
    body = json.loads((tmp_path / "report.json").read_text())
    claims = body["sections"][0]["tables"]["claims"]
    verdict, holm = claims["columns"].index("verdict"), claims["columns"].index("p (Holm)")
    assert [r[verdict] for r in claims["rows"]][:2] == ["supported", "contradicted"]
    assert all(r[holm] is None or 0 <= r[holm] <= 1 for r in claims["rows"])


@pytest.mark.parametrize("raw,key", [
    ({"text": "x", "a": {"dip.lr": 0.1}}, "claims[0].b"),
    ({"text": "x", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.1}}, "claims[0].b"),
    ({"text": "x", "a": {"dip.lr": 0.1}, "b": {"staged.variant": "staged"}}, "claims[0].b"),
    ({"text": "x", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.2}, "expect": "bigger"}, "claims[0].expect"),
    ({"text": "", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.2}}, "claims[0].text"),
    ({"text": "x", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.2}, "sign": "+"}, "claims[0].sign"),
    ({"text": "x", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.2}, "margin": -1}, "claims[0].margin"),
    ({"text": "x", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.2}, "margin": "150%"}, "claims[0].margin"),
    ({"text": "x", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.2}, "margin": "lots"}, "claims[0].margin"),
])
def test_a_bad_claim_is_one_line_naming_its_key(raw, key):
    with pytest.raises(ConfigError, match="^" + re.escape(key)) as info:
        parse_claims([raw], "s.yaml")
    assert "\n" not in str(info.value)


def test_margins_parse_absolute_and_relative():
    a, b = parse_claims([{"text": "x", "a": {"k": 1}, "b": {"k": 2}, "margin": 0.5},
                         {"text": "y", "a": {"k": 1}, "b": {"k": 2}, "margin": "10%"}], "s")
    assert (a.margin, a.relative, b.margin, b.relative) == (0.5, False, 0.1, True)
    assert math.isclose(math.log1p(b.margin), 0.09531, rel_tol=1e-4)
