"""Claims (DESIGN §12): hypotheses a sweep file states as data (parsed and kept here; tested by
`orchestrator.report.claims` on the pairs the sweep ran).

    claims:
      - text: plain DIP beats staged DIP at lr 0.01 (the seed's clean targets t = 30 -> 5)
        a: {staged.variant: baseline}        # arm A: grid-cell selector (dotted key -> value)
        b: {staged.variant: staged}          # arm B: what A's trials are compared with
        where: {dip.lr: 0.01, degradation.t_obs: 30}   # optional: only these trials
        metric: psnr_es                      # optional: the sweep's headline metric
        expect: greater                      # A − B > 0 (greater) or < 0 (less)

Each trial of arm A (that `where` admits) is paired with the trial the sweep
ran with B's values instead and every other setting the same (seed, image,
other axes), as the comparison tables pair them. The verdict reads the 95%
interval of the paired difference Δ = A − B: entirely on the expected side:
supported; entirely on the other side: contradicted; across zero (or n < 2):
not distinguishable at this n.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dipddpm.errors import ConfigError

FILE = "claims.json"  # the sweep's claims, kept beside its records so `report` needs no sweep file
EXPECT = ("greater", "less")


@dataclass(frozen=True)
class Claim:
    text: str
    a: dict
    b: dict
    where: dict = field(default_factory=dict)
    metric: str | None = None  # None: the sweep's headline metric
    expect: str = "greater"

    def as_dict(self) -> dict:
        return {"text": self.text, "a": self.a, "b": self.b, "where": self.where, "metric": self.metric,
                "expect": self.expect}


def parse_claims(raw: Any, src: str, method: str | None = None) -> tuple[Claim, ...]:
    """The sweep file's `claims:` list, checked (metrics against `method`'s when given); one-line errors
    naming claims[i].key."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"claims: expected a list of claims (text, a, b, metric, expect), got {raw!r} ({src})")
    return tuple(_claim(item, f"claims[{i}]", src, method) for i, item in enumerate(raw))


def _claim(item: Any, where: str, src: str, method: str | None) -> Claim:
    keys = ("text", "a", "b", "where", "metric", "expect")
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping with {', '.join(keys)}, got {item!r} ({src})")
    for k in item:
        if k not in keys:
            raise ConfigError(f"{where}.{k}: unknown key; expected one of {', '.join(keys)} ({src})")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}.text: expected the hypothesis in words, got {text!r} ({src})")
    arms = {}
    for arm in ("a", "b", "where"):
        value = item.get(arm, {} if arm == "where" else None)
        if not isinstance(value, dict) or (arm != "where" and not value):
            raise ConfigError(f"{where}.{arm}: expected a mapping of dotted config key -> value, got {value!r} ({src})")
        arms[arm] = {str(k): v for k, v in value.items()}
    if set(arms["a"]) != set(arms["b"]) or all(_same(arms["a"][k], arms["b"][k]) for k in arms["a"]):
        raise ConfigError(f"{where}.b: expected the same keys as {where}.a with other values, got "
                          f"a={arms['a']} b={arms['b']} ({src})")
    metric = item.get("metric")
    if metric is not None and not isinstance(metric, str):
        raise ConfigError(f"{where}.metric: expected a metric name such as psnr, got {metric!r} ({src})")
    if metric is not None and method is not None:
        from dipddpm.metrics import check_metric_name

        try:
            check_metric_name(metric, method, f"{where}.metric")
        except ConfigError as exc:
            raise ConfigError(f"{exc} ({src})") from None
    expect = item.get("expect", "greater")
    if expect not in EXPECT:
        raise ConfigError(f"{where}.expect: expected one of greater | less (the sign of A − B), got {expect!r} ({src})")
    return Claim(text.strip(), arms["a"], arms["b"], arms["where"], metric, expect)


def save(claims: tuple[Claim, ...], run_dir: Path) -> None:
    from dipddpm.record import atomic_write_text

    atomic_write_text(run_dir / FILE, json.dumps([c.as_dict() for c in claims], indent=1))


def load(run_dir: Path) -> tuple[Claim, ...]:
    path = run_dir / FILE
    if not path.is_file():
        return ()
    try:
        return parse_claims(json.loads(path.read_text()), str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable claims ({exc}); run the sweep again to rewrite it") from None


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
