"""Claims from a results file with known paired differences: each verdict, and where it shows."""

import json
import re
import statistics

import pytest
from scipy import stats as st

from dipddpm.errors import ConfigError
from orchestrator.common.claims import parse_claims, save
from orchestrator.report.claims import CONTRADICTED, SUPPORTED, UNDECIDED
from orchestrator.cli import main
from orchestrator.report.build import build_report
from test_report import DELTA, IMAGES, SEEDS, run_dir  # noqa: F401  (the fixture)

CLAIMS = [
    {"text": "plain DIP beats staged DIP at lr 0.1", "a": {"staged.variant": "baseline"},
     "b": {"staged.variant": "staged"}, "where": {"dip.lr": 0.1}, "metric": "psnr_es", "expect": "greater"},
    {"text": "staged DIP beats plain DIP at lr 0.1", "a": {"staged.variant": "staged"},
     "b": {"staged.variant": "baseline"}, "where": {"dip.lr": 0.1}, "expect": "greater"},
    {"text": "plain DIP beats staged DIP at lr 0.01", "a": {"staged.variant": "baseline"},
     "b": {"staged.variant": "staged"}, "where": {"dip.lr": 0.01}, "expect": "greater"},
    {"text": "a larger lr changes nothing it should not", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.01},
     "where": {"staged.variant": "baseline"}, "metric": "iter_peak", "expect": "less"},
]


@pytest.fixture(scope="module")
def claims_run(run_dir):  # noqa: F811
    save(parse_claims(CLAIMS, "test"), run_dir)
    return run_dir


def _claims_table(report):
    return next(t for t in report.sections[0].tables if t.name == "claims")


def test_each_verdict_from_known_differences(claims_run):
    rows = _claims_table(build_report(claims_run)).rows
    assert [r[11] for r in rows] == [SUPPORTED, CONTRADICTED, UNDECIDED, UNDECIDED]
    # plain − staged at lr 0.1: minus the known staged − plain differences, over 3 seeds × 2 images
    d = [-DELTA[(0.1, s, i)] for s in SEEDS for i in IMAGES]
    half = st.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / len(d) ** 0.5
    first = rows[0]
    assert first[4] == 3 and first[5] == 6  # trial pairs, samples
    assert first[8].mean == pytest.approx(statistics.mean(d)) and first[8].half == pytest.approx(half)
    assert first[8].low > 0 and first[9] == pytest.approx(st.ttest_rel(d, [0] * len(d)).pvalue)
    assert rows[1][8].mean == pytest.approx(-statistics.mean(d))  # the same pairs, the other way round
    assert rows[2][8].low < 0 < rows[2][8].high
    assert rows[3][5] == 6 and rows[3][8].mean == 0 and rows[3][9] == 1.0  # equal iter_peak everywhere
    assert "[ORACLE]" in rows[3][1]  # iter_peak needs the clean image


def test_claims_show_in_every_format(claims_run, tmp_path, capsys):
    assert main(["report", str(claims_run), "--out", str(tmp_path)]) == 0
    terminal = capsys.readouterr().out
    assert "Claims" in terminal and terminal.rstrip().rfind("Claims") > terminal.find("Grid cells")  # last
    for name in ("report.md", "report.html"):
        text = (tmp_path / name).read_text()
        assert "plain DIP beats staged DIP at lr 0.1" in text and SUPPORTED in text and CONTRADICTED in text
    body = json.loads((tmp_path / "report.json").read_text())
    claims = body["sections"][0]["tables"]["claims"]
    verdict = claims["columns"].index("verdict")
    assert [r[verdict] for r in claims["rows"]] == [SUPPORTED, CONTRADICTED, UNDECIDED, UNDECIDED]


@pytest.mark.parametrize("raw,key", [
    ({"text": "x", "a": {"dip.lr": 0.1}}, "claims[0].b"),
    ({"text": "x", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.1}}, "claims[0].b"),
    ({"text": "x", "a": {"dip.lr": 0.1}, "b": {"staged.variant": "staged"}}, "claims[0].b"),
    ({"text": "x", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.2}, "expect": "bigger"}, "claims[0].expect"),
    ({"text": "", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.2}}, "claims[0].text"),
    ({"text": "x", "a": {"dip.lr": 0.1}, "b": {"dip.lr": 0.2}, "sign": "+"}, "claims[0].sign"),
])
def test_a_bad_claim_is_one_line_naming_its_key(raw, key):
    with pytest.raises(ConfigError, match="^" + re.escape(key)) as info:
        parse_claims([raw], "s.yaml")
    assert "\n" not in str(info.value)
