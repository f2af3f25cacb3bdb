"""A sweep YAML -> a validated SweepSpec (docs/design.md, "Sweeps"); `plan.py` expands it into trials.

A sweep holds: name, method, metric, base, grid (a mapping: cartesian product;
or a list of mappings: the union of their products), seeds or replicate,
resources, profiles (cpu | gpu: base, grid, seeds, resources, replicate) and
claims. Parsed by the project's one validator (`dipddpm.schema`): an unknown key,
a wrong type or an out-of-range value is one line naming its dotted path and
the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dipddpm.errors import ConfigError, shown as shown_value
from dipddpm.schema import from_dict
from dipddpm.schema import spec as fld
from dipddpm.yamlio import load_file

from ..common.claims import parse_claims
from ..common.metrics import default_metric, is_oracle_metric

NAME_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


# ---- the file's shape, as the schema reads it --------------------------------------------------

@dataclass(frozen=True)
class Resources:
    cpu: float = fld(1.0, (lambda v: v > 0, "a number > 0"), "CPUs per trial")
    gpu: float = fld(0.0, (lambda v: v >= 0 and (v <= 1 or v == int(v)),
                           "a number >= 0: a fraction <= 1 or a whole number of GPUs"), "GPUs per trial (0.25: four share one)")


@dataclass(frozen=True)
class BudgetFields:
    trials: int | None = fld(None, (lambda v: v >= 1, "an integer >= 1"), "records of this sweep's trials")
    hours: float | None = fld(None, (lambda v: v > 0, "a number of hours > 0"), "this run's wall time")


@dataclass(frozen=True)
class ReplicateFields:
    min_seeds: int | None = fld(None, (lambda v: v >= 1, "an integer >= 1"), "seeds every cell starts with")
    max_seeds: int | None = fld(None, (lambda v: v >= 1, "an integer >= 1"), "seeds a claimed cell may reach")
    budget: BudgetFields | None = fld(None, doc="when to stop proposing")


@dataclass(frozen=True)
class ProfileFields:
    base: dict | None = fld(None, doc="merged over the sweep's base")
    grid: Any = fld(None, doc="each axis it names replaces that axis' values")
    seeds: tuple[int, ...] | None = fld(None, (lambda v: v >= 0, "an integer >= 0"))
    resources: Resources | None = fld(None)
    replicate: ReplicateFields | None = fld(None)


@dataclass(frozen=True)
class ProfilesFields:
    cpu: ProfileFields | None = fld(None)
    gpu: ProfileFields | None = fld(None)


@dataclass(frozen=True)
class SweepFields:
    name: str | None = fld(None, (lambda v: re.fullmatch(NAME_RE, v) is not None, "a name of letters, digits, _ . -"))
    method: str | None = fld(None, doc="staged | hybrid")
    metric: Any = fld(None, doc="the headline: a name, or {name, mode}")
    base: dict | None = fld(None, doc="a full trial config's fields (dotted or nested)")
    grid: Any = fld(None, doc="dotted key -> list of values, or a list of such mappings")
    seeds: tuple[int, ...] | None = fld(None, (lambda v: v >= 0, "an integer >= 0"))
    resources: Resources | None = fld(None)
    profiles: ProfilesFields | None = fld(None)
    description: str | None = fld(None)
    claims: Any = fld(None, doc="hypotheses the report tests (common/claims.py)")
    replicate: ReplicateFields | None = fld(None)
    trial_timeout: float | None = fld(None, (lambda v: v >= 0, "a number of seconds >= 0 (0: none)"),
                                      "seconds a trial may run before it is stopped and retried")


# ---- what the planner reads --------------------------------------------------------------------

@dataclass(frozen=True)
class Replicate:
    """Adaptive replication (docs/design.md, "Adaptive replication"): every cell starts at seeds
    0 … min_seeds−1; cells that an undecided claim pairs gain seeds up to max_seeds − 1, within the budget."""

    min_seeds: int = 3
    max_seeds: int = 20
    budget_trials: int | None = None  # records of this sweep's trials, earlier runs included
    budget_hours: float | None = None  # this run's wall time before it stops proposing trials

    def as_dict(self) -> dict:
        return {"min_seeds": self.min_seeds, "max_seeds": self.max_seeds,
                "budget": {"trials": self.budget_trials, "hours": self.budget_hours}}


@dataclass(frozen=True)
class ProfileSpec:
    base: dict = field(default_factory=dict)
    grid: list | None = None  # list of {dotted key: [values]} replacing those axes
    seeds: list | None = None
    resources: Resources | None = None
    replicate: dict | None = None  # keys of `replicate` this profile replaces


@dataclass(frozen=True)
class SweepSpec:
    name: str
    method: str
    metric: str
    mode: str
    base: dict
    grid: list  # list of {dotted key: [values]}
    seeds: list
    resources: Resources
    profiles: dict  # name -> ProfileSpec
    source: str = "<sweep>"
    claims: tuple = ()  # common.claims.Claim: hypotheses the report tests
    replicate: dict | None = None  # the sweep's replicate: section, checked (see `replication`)
    trial_timeout: float | None = None  # seconds a trial may run (None: five times the median trial so far)


def load_spec(path: str | Path) -> SweepSpec:
    return parse_spec(load_file(path), str(path))


def parse_spec(data: Any, src: str = "<sweep>") -> SweepSpec:
    """The sweep file's mapping, checked; every error one line naming the dotted key and `src`."""
    if not isinstance(data, dict):
        raise ConfigError(f"sweep: expected a mapping with name, method, base, grid, seeds, got {shown(data)} ({src})")
    try:
        f = from_dict(SweepFields, data)
        spec = _spec(f, data, src)
    except ConfigError as exc:
        text = str(exc)
        raise ConfigError(text if text.endswith(f"({src})") else f"{text} ({src})") from None
    for pname in spec.profiles:
        replication(spec, pname)  # a profile's keys over the sweep's must make a valid rule too
    return spec


def _spec(f: SweepFields, data: dict, src: str) -> SweepSpec:
    from dipddpm.methods import names

    if f.name is None:
        raise ConfigError("name: expected a name of letters, digits, _ . -, got null")
    if f.method not in names():
        raise ConfigError(f"method: expected one of {' | '.join(names())}, got {shown(f.method)}")
    metric, mode = _metric(f.metric, f.method)
    _one_of_seeds_or_replicate(data, "")
    profiles, given = {}, data.get("profiles") or {}
    for pname in ("cpu", "gpu"):
        prof = getattr(f.profiles, pname) if f.profiles is not None else None
        raw = given.get(pname)
        if raw is not None:
            _one_of_seeds_or_replicate(raw, f"profiles.{pname}.")
            profiles[pname] = ProfileSpec(prof.base or {}, _grid(prof.grid, f"profiles.{pname}.grid")
                                          if prof.grid is not None else None, _seeds(prof.seeds, f"profiles.{pname}.seeds"),
                                          prof.resources, _replicate(prof.replicate))
        elif pname in given:
            profiles[pname] = ProfileSpec()
    return SweepSpec(f.name, f.method, metric, mode, f.base or {}, _grid(f.grid, "grid"),
                     _seeds(f.seeds, "seeds") or [0], f.resources or Resources(), profiles, src,
                     parse_claims(data.get("claims"), src, f.method), _replicate(f.replicate), f.trial_timeout)


def shown(value) -> str:
    return "null" if value is None else shown_value(value)


def _one_of_seeds_or_replicate(data: dict, prefix: str) -> None:
    if data.get("seeds") is not None and data.get("replicate") is not None:
        raise ConfigError(f"{prefix}replicate: set either {prefix}seeds (a fixed list) or {prefix}replicate "
                          f"(seeds 0, 1, … added while claims are undecided), not both")


def _replicate(f: ReplicateFields | None) -> dict | None:
    """The keys a replicate: section sets (the rule they make is checked by `replication`)."""
    if f is None:
        return None
    out = {k: getattr(f, k) for k in ("min_seeds", "max_seeds") if getattr(f, k) is not None}
    if f.budget is not None:
        out |= {f"budget_{k}": getattr(f.budget, k) for k in ("trials", "hours") if getattr(f.budget, k) is not None}
    return out


def replication(spec: SweepSpec, profile: str, overrides: dict | None = None) -> Replicate | None:
    """The replication rule for one profile: the profile's choice (its seeds or its replicate keys over
    the sweep's) where it makes one, else the sweep's; `overrides` (command-line flags) last. None: a
    fixed grid of the profile's seeds."""
    prof = spec.profiles.get(profile, ProfileSpec())
    keys = dict(spec.replicate or {}) if prof.seeds is None else {}
    active = (spec.replicate is not None and prof.seeds is None) or prof.replicate is not None
    keys |= prof.replicate or {}
    if overrides:
        keys |= {k: v for k, v in overrides.items() if v is not None}
        active = True
    if not active:
        return None
    rule = Replicate(**keys)
    if rule.max_seeds < rule.min_seeds:
        raise ConfigError(f"replicate.max_seeds: expected at least min_seeds={rule.min_seeds}, got {rule.max_seeds} "
                          f"(profile {profile}, {spec.source})")
    return rule


def _metric(raw: Any, method: str) -> tuple[str, str]:
    from dipddpm.methods import check_metric_name

    if raw is None:
        return default_metric(method), "max"
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or set(raw) - {"name", "mode"}:
        raise ConfigError(f"metric: expected a mapping with name and mode, got {shown(raw)}")
    name, mode = raw.get("name", default_metric(method)), raw.get("mode", "max")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name):
        raise ConfigError(f"metric.name: expected a metric name such as psnr_es, got {shown(name)}")
    check_metric_name(name, method, "metric.name")
    if is_oracle_metric(name):
        raise ConfigError(f"metric.name: expected a metric reachable without ground truth (not an ORACLE figure), "
                          f"got {shown(name)}")
    if mode not in ("max", "min"):
        raise ConfigError(f"metric.mode: expected one of max | min, got {shown(mode)}")
    return name, mode


def _grid(raw: Any, path: str) -> list:
    if raw is None:
        return [{}]
    blocks = raw if isinstance(raw, list) else [raw]
    if isinstance(raw, list) and not raw:
        raise ConfigError(f"{path}: expected a mapping of key -> list of values, or a non-empty list of them, got []")
    out = []
    for i, block in enumerate(blocks):
        where = f"{path}[{i}]" if isinstance(raw, list) else path
        if not isinstance(block, dict):
            raise ConfigError(f"{where}: expected a mapping of dotted key -> list of values, got {shown(block)}")
        for key, values in block.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}.{key}: expected a non-empty list of values, got {shown(values)}")
        out.append(dict(block))
    return out


def _seeds(seeds: tuple | None, path: str) -> list | None:
    if seeds is None:
        return None
    if not seeds:
        raise ConfigError(f"{path}: expected a non-empty list of integers >= 0, got []")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: expected distinct seeds, got {list(seeds)}")
    return list(seeds)
