"""Claims (docs/design.md, "Claims"): hypotheses a sweep file states as data, parsed and checked here;
`orchestrator.stats.verdicts` tests them on the pairs the sweep ran.

    claims:
      - text: plain DIP beats staged DIP at lr 0.01 (the seed's clean targets t = 30 -> 5)
        a: {staged.variant: baseline}        # arm A: grid-cell selector (dotted key -> value)
        b: {staged.variant: staged}          # arm B: what A's trials are compared with
        where: {dip.lr: 0.01, degradation.t_obs: 30}   # optional: only these trials
        metric: psnr_es                      # optional: the sweep's headline metric
        b_metric: psnr_dip                   # optional: read arm B through another metric of its trials
        expect: greater                      # A − B > 0 (greater) or < 0 (less)
        margin: 0.5                          # optional: equivalence margin, in the metric's units
                                             #   or relative ("5%": then Δ is read as log(A/B))
        estimand: median                     # optional: median (default: A beats B on most units) or mean
                                             #   (a Gaussian model; see orchestrator/stats/estimands.py)
        priority: 1                          # optional: adaptive seeds go to the lowest number first (default 2)

Each cell of arm A (that `where` admits) is paired with the cell the sweep ran
with B's values instead and every other setting the same, seed by seed. With
`b_metric`, A and B may select the same cells: B is then A's own trials read
through another metric (DIP alone is start=dip's psnr_dip).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dipddpm.errors import ConfigError, shown
from dipddpm.schema import from_dict
from dipddpm.schema import spec as fld

FILE = "claims.json"  # older run folders kept their claims here (newer ones in sweep.json)
EXPECT = ("greater", "less")


@dataclass(frozen=True)
class ClaimFields:
    """A claim as the sweep file writes it (parsed by the project's schema: unknown keys, wrong types)."""

    text: str | None = fld(None, (lambda v: bool(v.strip()), "the hypothesis in words"), "the hypothesis in words")
    a: dict | None = fld(None, (bool, "a mapping of dotted config key -> value"), "arm A: a grid-cell selector")
    b: dict | None = fld(None, (bool, "a mapping of dotted config key -> value"), "arm B: what A is compared with")
    where: dict | None = fld(None, doc="only the cells this selector admits")
    metric: str | None = fld(None, doc="the metric compared (default: the sweep's headline)")
    b_metric: str | None = fld(None, doc="arm B read through this metric of its trials (default: metric)")
    expect: Literal["greater", "less"] = fld("greater", doc="the sign of A − B the claim expects")
    margin: Any = fld(None, doc="equivalence margin: a number in the metric's units, or a percentage")
    estimand: Literal["median", "mean"] = fld("median", doc="what the verdict estimates: median Δ or mean Δ")
    priority: int = fld(2, (lambda v: v >= 1, "an integer >= 1"), "adaptive seeds go to the lowest number first "
                        "(1: the questions the sweep exists for)")


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
    b_metric: str | None = None  # None: arm B is read through `metric` too
    estimand: str = "median"  # median Δ (robust, the default) or mean Δ (a Gaussian model)
    priority: int = 2  # adaptive replication serves the lowest number first

    @property
    def sign(self) -> int:
        return 1 if self.expect == "greater" else -1

    def margin_text(self) -> str:
        if self.margin is None:
            return "—"
        return f"±{100 * self.margin:g}%" if self.relative else f"±{self.margin:g}"

    def as_dict(self) -> dict:
        margin = None if self.margin is None else (f"{100 * self.margin:g}%" if self.relative else self.margin)
        out = {"text": self.text, "a": self.a, "b": self.b, "where": self.where, "metric": self.metric,
               "expect": self.expect, "margin": margin}
        return out | ({"b_metric": self.b_metric} if self.b_metric else {}) | {"estimand": self.estimand,
                                                                               "priority": self.priority}


def parse_claims(raw: Any, src: str, method: str | None = None) -> tuple[Claim, ...]:
    """The sweep file's `claims:` list, checked (metrics against `method`'s when given); one-line errors
    naming claims[i].key."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"claims: expected a list of claims (text, a, b, metric, expect), got {shown(raw)} ({src})")
    try:
        return tuple(_claim(item, f"claims[{i}]", method) for i, item in enumerate(raw))
    except ConfigError as exc:
        raise ConfigError(f"{exc} ({src})") from None


def _claim(item: Any, where: str, method: str | None) -> Claim:
    f = from_dict(ClaimFields, item, where)
    for arm in ("text", "a", "b"):
        if getattr(f, arm) is None:
            expected = "the hypothesis in words" if arm == "text" else "a mapping of dotted config key -> value"
            raise ConfigError(f"{where}.{arm}: expected {expected}, got null")
    a, b = f.a, f.b
    same_cells = set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if set(a) != set(b) or (same_cells and f.b_metric is None):
        raise ConfigError(f"{where}.b: expected the same keys as {where}.a with other values (or b_metric to "
                          f"read the same trials through another metric), got a={a} b={b}")
    for key in ("metric", "b_metric"):
        name = getattr(f, key)
        if name is not None and method is not None:
            from dipddpm.methods import check_metric_name, get

            check_metric_name(name, method, f"{where}.{key}")
            if f.estimand == "mean" and name in dict(get(method).censored):
                raise ConfigError(f"{where}.estimand: expected median for {name} (censored at the run's end: a "
                                  f"value there is 'at least', so it has no mean), got mean")
    margin, relative = _margin(f.margin, f"{where}.margin")
    return Claim(f.text.strip(), a, b, f.where or {}, f.metric, f.expect, margin, relative, f.b_metric, f.estimand,
                 f.priority)


def _margin(raw: Any, where: str) -> tuple[float | None, bool]:
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
                      f"got {shown(raw)}")


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
