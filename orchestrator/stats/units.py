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

In a paired comparison (`pair_units`) every image of every pair gives a value:
a diverged trial counts with its last good estimate (what a user would have
had); an image it never reached, or a failed trial, is a loss of its arm
(d = ∓inf; both arms without a value: nan, a tie); a censored value ("at least"
the run's last iteration) beats any smaller one and ties with another censored
one. What an estimand does with these is its own (`estimands.py`).
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
    """unit -> image -> values, averaged per image first, then over the unit's images (a ±inf, a loss, carries
    through the mean; +inf beside −inf, or a nan, makes the unit a tie: nan)."""

    def __init__(self):
        self.data: dict[tuple, dict[str, list[float]]] = {}

    def add(self, unit: tuple, image: str, v: float) -> None:
        self.data.setdefault(unit, {}).setdefault(image, []).append(v)

    def means(self) -> dict[tuple, float]:
        return {u: _mean([_mean(v) for v in imgs.values()]) for u, imgs in self.data.items()}


def _mean(xs: list[float]) -> float:
    if any(math.isnan(x) for x in xs) or (math.inf in xs and -math.inf in xs):
        return math.nan
    if math.inf in xs or -math.inf in xs:
        return math.inf if math.inf in xs else -math.inf
    return math.fsum(xs) / len(xs)


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

    @property
    def valued(self) -> list[float]:
        """The differences that are numbers (no failed arm, no censored value): what a mean reads."""
        return [x for x in self.d if math.isfinite(x)]


def problem_text(problems: dict) -> str:
    """'A diverged/failed · B diverged/failed', or '—' when every trial was ok."""
    pa, pb = problems["a"], problems["b"]
    if not any(pa.values()) and not any(pb.values()):
        return "—"
    return f"A {pa['diverged']}/{pa['failed']} · B {pb['diverged']}/{pb['failed']}"


def pair_units(method: str, record_pairs: list[tuple[Record, Record]], ma: str, mb: str | None = None,
               relative: bool = False, losses: bool = False) -> Units:
    """The per-unit paired differences of metric `ma` (arm A) against `mb` (arm B, default the same) over
    (A record, B record) pairs, units in a fixed order (seed, then image); `relative`: log(A/B). `losses`
    (a claim's units): a missing value is a loss of its arm and a censored one is "at least"; without it (the
    descriptive tables) pairs without both values are left out, as a mean needs."""
    mb = mb or ma
    out = Units(unit_kind(method, ma))
    per_image = unit_of_method(method) == "image"
    caps = dict(censoring(method)) if losses else {}
    acc_d, acc_a, acc_b = _Acc(), _Acc(), _Acc()
    counted: set = set()
    for ra, rb in record_pairs:
        for arm, r in (("a", ra), ("b", rb)):
            if r.status in ("diverged", "failed") and (arm, r.trial_key) not in counted:
                counted.add((arm, r.trial_key))
                out.problems[arm][r.status] += 1
        va, vb = _known(ra, ma, caps.get(ma)), _known(rb, mb, caps.get(mb))
        images = list(dict.fromkeys([*va, *vb])) or ([""] if trial_level(ma) else [])
        out.trial_pairs += any(i in va and i in vb for i in images)  # pairs with a value on both sides
        if not losses:
            images = [i for i in images if i in va and i in vb]
        for image in images:
            unit = unit_of(per_image, ra.seed, image)
            x, y = va.get(image), vb.get(image)
            acc_d.add(unit, image, difference(x, y, relative))
            if x is not None and x[1] is None:
                acc_a.add(unit, image, x[0])
            if y is not None and y[1] is None:
                acc_b.add(unit, image, y[0])
    d, a, b = acc_d.means(), acc_a.means(), acc_b.means()
    out.keys = sorted(d, key=lambda k: (k[0], str(k[1:])))
    out.d = [d[k] for k in out.keys]
    out.a = [a.get(k, math.nan) for k in out.keys]
    out.b = [b.get(k, math.nan) for k in out.keys]
    return out


def censoring(method: str) -> tuple:
    """(metric, the figure holding its cap) for the method's censored metrics: a value at cap − 1 or above is
    'at least' that (an iteration count that stopped with the run)."""
    from dipddpm.methods import get

    return get(method).censored


def _known(r: Record, metric: str, cap: str | None) -> dict:
    """image -> (value, cap when the value is censored else None) of a record; a failed trial, or an image a
    diverged trial never reached, has no entry. The images are the trial's own (its config's)."""
    found = values(r, metric)
    if r.status == "failed":
        return {}
    out = {}
    for image, v in found.items():
        limit = r.value(cap, image or None) if cap else None
        censored = isinstance(limit, (int, float)) and v >= limit - 1
        out[image] = (v, limit if censored else None)
    return out


def difference(x, y, relative: bool) -> float:
    """d of one image: x, y are (value, cap or None) or None (no value). A missing arm loses; a censored
    value beats an uncensored one below its cap and is a tie (nan) otherwise."""
    if x is None or y is None:
        return math.nan if x is None and y is None else (-math.inf if x is None else math.inf)
    (vx, cx), (vy, cy) = x, y
    if cx is not None or cy is not None:
        if cx is not None and cy is None and vy < cx - 1:
            return math.inf
        if cy is not None and cx is None and vx < cy - 1:
            return -math.inf
        return math.nan
    if relative:
        return math.log(vx / vy) if vx > 0 and vy > 0 else math.nan
    return vx - vy


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
