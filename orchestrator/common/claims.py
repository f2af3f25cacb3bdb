"""Claims (DESIGN §12): hypotheses a sweep file states as data (parsed and kept here; tested by
`orchestrator.report.claims` on the pairs the sweep ran).

    claims:
      - text: plain DIP beats staged DIP at lr 0.01 (the seed's clean targets t = 30 -> 5)
        a: {staged.variant: baseline}        # arm A: grid-cell selector (dotted key -> value)
        b: {staged.variant: staged}          # arm B: what A's trials are compared with
        where: {dip.lr: 0.01, degradation.t_obs: 30}   # optional: only these trials
        metric: psnr_es                      # optional: the sweep's headline metric
        expect: greater                      # A − B > 0 (greater) or < 0 (less)
        margin: 0.5                          # optional: equivalence margin, in the metric's units
                                             #   or relative ("5%": then Δ is read as log(A/B))

Each cell of arm A (that `where` admits) is paired with the cell the sweep ran
with B's values instead and every other setting the same, seed by seed; the
report reads the paired differences over independent units (DESIGN §13) and
gives a verdict: supported, contradicted, equivalent within ±margin, not
distinguishable at this n, or too few replicates (`orchestrator.report.claims`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dipddpm.errors import ConfigError, shown

FILE = "claims.json"  # older run folders kept their claims here (newer ones in sweep.json)
EXPECT = ("greater", "less")
KEYS = ("text", "a", "b", "where", "metric", "expect", "margin")


@dataclass(frozen=True)
class Claim:
    text: str
    a: dict
    b: dict
    where: dict = field(default_factory=dict)
    metric: str | None = None  # None: the sweep's headline metric
    expect: str = "greater"
    margin: float | None = None  # equivalence margin: the metric's units, or a fraction when relative
    relative: bool = False  # margin given as a percentage: Δ is log(A/B), the margin log(1 + margin)

    @property
    def sign(self) -> int:
        return 1 if self.expect == "greater" else -1

    def margin_text(self) -> str:
        if self.margin is None:
            return "—"
        return f"±{100 * self.margin:g}%" if self.relative else f"±{self.margin:g}"

    def as_dict(self) -> dict:
        margin = None if self.margin is None else (f"{100 * self.margin:g}%" if self.relative else self.margin)
        return {"text": self.text, "a": self.a, "b": self.b, "where": self.where, "metric": self.metric,
                "expect": self.expect, "margin": margin}


def parse_claims(raw: Any, src: str, method: str | None = None) -> tuple[Claim, ...]:
    """The sweep file's `claims:` list, checked (metrics against `method`'s when given); one-line errors
    naming claims[i].key."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"claims: expected a list of claims (text, a, b, metric, expect), got {shown(raw)} ({src})")
    return tuple(_claim(item, f"claims[{i}]", src, method) for i, item in enumerate(raw))


def _claim(item: Any, where: str, src: str, method: str | None) -> Claim:
    keys = KEYS
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping with {', '.join(keys)}, got {shown(item)} ({src})")
    for k in item:
        if k not in keys:
            raise ConfigError(f"{where}.{k}: unknown key; expected one of {', '.join(keys)} ({src})")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}.text: expected the hypothesis in words, got {shown(text)} ({src})")
    arms = {}
    for arm in ("a", "b", "where"):
        value = item.get(arm, {} if arm == "where" else None)
        if not isinstance(value, dict) or (arm != "where" and not value):
            raise ConfigError(f"{where}.{arm}: expected a mapping of dotted config key -> value, got {shown(value)} ({src})")
        arms[arm] = {str(k): v for k, v in value.items()}
    if set(arms["a"]) != set(arms["b"]) or all(_same(arms["a"][k], arms["b"][k]) for k in arms["a"]):
        raise ConfigError(f"{where}.b: expected the same keys as {where}.a with other values, got "
                          f"a={arms['a']} b={arms['b']} ({src})")
    metric = item.get("metric")
    if metric is not None and not isinstance(metric, str):
        raise ConfigError(f"{where}.metric: expected a metric name such as psnr, got {shown(metric)} ({src})")
    if metric is not None and method is not None:
        from dipddpm.metrics import check_metric_name

        try:
            check_metric_name(metric, method, f"{where}.metric")
        except ConfigError as exc:
            raise ConfigError(f"{exc} ({src})") from None
    expect = item.get("expect", "greater")
    if expect not in EXPECT:
        raise ConfigError(f"{where}.expect: expected one of greater | less (the sign of A − B), got {shown(expect)} ({src})")
    margin, relative = _margin(item.get("margin"), f"{where}.margin", src)
    return Claim(text.strip(), arms["a"], arms["b"], arms["where"], metric, expect, margin, relative)


def _margin(raw: Any, where: str, src: str) -> tuple[float | None, bool]:
    """`margin: 0.5` (the metric's units) or `margin: 5%` (relative to B); None: no equivalence test."""
    if raw is None:
        return None, False
    if isinstance(raw, str) and raw.strip().endswith("%"):
        try:
            pct = float(raw.strip()[:-1])
        except ValueError:
            pct = math.nan
        if math.isfinite(pct) and 0 < pct < 100:
            return pct / 100, True
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw) and raw > 0:
        return float(raw), False
    raise ConfigError(f"{where}: expected a number > 0 in the metric's units or a percentage such as 5%, "
                      f"got {shown(raw)} ({src})")


def load(run_dir: Path) -> tuple[Claim, ...]:
    """The claims an older run folder kept in claims.json (newer folders keep them in sweep.json)."""
    path = run_dir / FILE
    if not path.is_file():
        return ()
    try:
        return parse_claims(json.loads(path.read_text()), str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable claims ({exc}); run the sweep again to rewrite it") from None


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
