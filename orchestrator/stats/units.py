"""Units of replication (docs/design.md, "Units"): what one value of an interval is.

A unit is the smallest set of values that shares no random draw with another; the
method says which (`dipddpm.methods`, `Method.unit`):
- "image": one (seed, image) fit (staged DIP: each image has its own observation,
  DIP input and init draws, so the images of one trial are independent fits);
- "seed": one seed (hybrid: its trained DDPM serves every test image, and every
  sampling cell of that seed, so its images are not independent);
- a trial-level figure (time_s, ddpm_fit_s, …) has one value per trial: its unit
  is the seed.
Values of one unit are averaged (per image first, across the cell pairs that
share the unit), and the interval is taken over units. Test images are fixed
effects: a verdict speaks of these photos.

Diverged trials count with their last good estimate (what a user would have
had); images a diverged trial never reached, and failed trials, are left out
and counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..common.metrics import trial_level
from ..common.record import Record

UNIT_WORDS = {"image": "(seed, image)", "seed": "training seed"}
SEED_WORDS = "seed (one value per trial)"


def unit_of_method(method: str) -> str:
    from dipddpm.methods import get

    return get(method).unit


def unit_kind(method: str, metric: str) -> str:
    return SEED_WORDS if trial_level(metric) else UNIT_WORDS[unit_of_method(method)]


def values(record: Record, metric: str) -> dict[str, float]:
    """image -> value of `metric` in one record ('' for a trial-level value); finite numbers only."""
    per = record.per_image
    if not trial_level(metric) and any(metric in m for m in per.values()):
        out = {img: m.get(metric) for img, m in per.items()}
    else:
        out = {"": record.metrics.get(metric)}
    return {k: float(v) for k, v in out.items() if _number(v)}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def unit_of(per_image: bool, seed, image: str) -> tuple:
    return (seed, image) if per_image and image else (seed,)


class _Acc:
    """unit -> image -> values, averaged per image first, then over the unit's images."""

    def __init__(self):
        self.data: dict[tuple, dict[str, list[float]]] = {}

    def add(self, unit: tuple, image: str, v: float) -> None:
        self.data.setdefault(unit, {}).setdefault(image, []).append(v)

    def means(self) -> dict[tuple, float]:
        return {u: math.fsum(math.fsum(v) / len(v) for v in imgs.values()) / len(imgs) for u, imgs in self.data.items()}


@dataclass
class Units:
    """Per-unit values of a paired comparison: d (A − B, or log A/B), and each arm's unit means."""

    kind: str
    keys: list = field(default_factory=list)
    d: list = field(default_factory=list)
    a: list = field(default_factory=list)
    b: list = field(default_factory=list)
    trial_pairs: int = 0
    problems: dict = field(default_factory=lambda: {"a": {"diverged": 0, "failed": 0},
                                                    "b": {"diverged": 0, "failed": 0}})

    @property
    def n(self) -> int:
        return len(self.d)


def problem_text(problems: dict) -> str:
    """'A diverged/failed · B diverged/failed', or '—' when every trial was ok."""
    pa, pb = problems["a"], problems["b"]
    if not any(pa.values()) and not any(pb.values()):
        return "—"
    return f"A {pa['diverged']}/{pa['failed']} · B {pb['diverged']}/{pb['failed']}"


def pair_units(method: str, record_pairs: list[tuple[Record, Record]], ma: str, mb: str | None = None,
               relative: bool = False) -> Units:
    """The per-unit paired differences of metric `ma` (arm A) against `mb` (arm B, default the same)
    over (A record, B record) pairs; `relative`: log(A/B) instead of A − B (positive values only)."""
    mb = mb or ma
    out = Units(unit_kind(method, ma))
    per_image = unit_of_method(method) == "image"
    acc_d, acc_a, acc_b = _Acc(), _Acc(), _Acc()
    counted: set = set()
    for ra, rb in record_pairs:
        skip = False
        for arm, r in (("a", ra), ("b", rb)):
            if r.status in ("diverged", "failed") and (arm, r.trial_key) not in counted:
                counted.add((arm, r.trial_key))
                out.problems[arm][r.status] += 1
            skip |= r.status == "failed"
        if skip:
            continue
        va, vb = values(ra, ma), values(rb, mb)
        used = False
        for image in va.keys() & vb.keys():
            x, y = va[image], vb[image]
            if relative and (x <= 0 or y <= 0):
                continue
            unit = unit_of(per_image, ra.seed, image)
            acc_d.add(unit, image, math.log(x / y) if relative else x - y)
            acc_a.add(unit, image, x)
            acc_b.add(unit, image, y)
            used = True
        out.trial_pairs += used
    d, a, b = acc_d.means(), acc_a.means(), acc_b.means()
    out.keys = sorted(d, key=str)
    out.d, out.a, out.b = ([m[k] for k in out.keys] for m in (d, a, b))
    return out


def cell_units(method: str, records: list[Record], metric: str) -> list[float]:
    """One value per unit of a grid cell's ok and diverged trials (a cell's interval is over these)."""
    acc = _Acc()
    per_image = unit_of_method(method) == "image"
    for r in records:
        if r.status == "failed":
            continue
        for image, v in values(r, metric).items():
            acc.add(unit_of(per_image, r.seed, image), image, v)
    means = acc.means()
    return [means[k] for k in sorted(means, key=str)]
