"""Sweep YAML -> validated SweepSpec -> the list of distinct trials (DESIGN §5).

A sweep holds: name, method, metric, base, grid (a mapping: cartesian product;
or a list of mappings: the union of their products), seeds, resources and
profiles (cpu | gpu: base, grid, seeds, resources). Precedence, lowest first:
defaults -> built-in profile -> base -> profiles.<name>.base -> grid cell -> seed.
Cells that become equal once inapplicable fields are nulled run once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dipddpm.config import TrialConfig, config_dict, merged_layers, nested, trial_key
from dipddpm.trial import resolve
from dipddpm.errors import ConfigError, shown as shown_value
from dipddpm.images import ImageSet, images_for
from dipddpm.metrics import check_metric_name
from dipddpm.yamlio import load_file

from ..common.claims import parse_claims
from ..common.design import Design, flatten, point_of
from ..common.metrics import DEFAULT_METRIC, ORACLE_METRICS

TOP_KEYS = ("name", "method", "metric", "base", "grid", "seeds", "resources", "profiles", "description", "claims",
            "replicate")
PROFILE_KEYS = ("base", "grid", "seeds", "resources", "replicate")
REPLICATE_KEYS = ("min_seeds", "max_seeds", "budget")
BUDGET_KEYS = ("trials", "hours")


@dataclass(frozen=True)
class Resources:
    cpu: float = 1.0
    gpu: float = 0.0


@dataclass(frozen=True)
class Replicate:
    """Adaptive replication (DESIGN §14): every cell starts at seeds 0 … min_seeds−1; cells that an
    undecided claim pairs gain seeds up to max_seeds − 1, within the budget."""

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
    claims: tuple = ()  # orchestrator.claims.Claim: hypotheses the report tests
    replicate: dict | None = None  # the sweep's replicate: section, checked (see `replication`)


@dataclass(frozen=True)
class Trial:
    key: str
    config: TrialConfig
    cell: dict  # the grid cell's axis values (dotted keys), for tables
    cell_key: str  # hash of the config without its seed: the seeds of one cell share it
    images: ImageSet  # resolved on the driver: what the trial receives as data

    def described_images(self) -> dict:
        return {part: [img.describe() for img in getattr(self.images, part)] for part in ("test", "pool")}

    @property
    def seed(self) -> int:
        return self.config.seed


def _err(src: str, path: str, expected: str, got: Any) -> ConfigError:
    shown = "null" if got is None else shown_value(got)
    return ConfigError(f"{path}: expected {expected}, got {shown} ({src})")


def load_spec(path: str | Path) -> SweepSpec:
    data = load_file(path)
    return parse_spec(data, str(path))


def parse_spec(data: Any, src: str = "<sweep>") -> SweepSpec:
    if not isinstance(data, dict):
        raise _err(src, "sweep", "a mapping with name, method, base, grid, seeds", data)
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(f"{key}: unknown key; expected one of {', '.join(TOP_KEYS)} ({src})")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise _err(src, "name", "a name of letters, digits, _ . -", name)
    method = data.get("method")
    if method not in ("staged", "hybrid"):
        raise _err(src, "method", "one of staged | hybrid", method)
    metric, mode = _metric(data.get("metric"), method, src)
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise _err(src, "profiles", "a mapping with cpu and/or gpu", profiles)
    parsed_profiles = {}
    for pname, body in profiles.items():
        if pname not in ("cpu", "gpu"):
            raise ConfigError(f"profiles.{pname}: unknown profile; expected cpu or gpu ({src})")
        parsed_profiles[pname] = _profile(body, f"profiles.{pname}", src)
    _one_of_seeds_or_replicate(data, "", src)
    spec = SweepSpec(name, method, metric, mode, _mapping(data.get("base"), "base", src),
                     _grid(data.get("grid"), "grid", src), _seeds(data.get("seeds", [0]), "seeds", src),
                     _resources(data.get("resources"), "resources", src) or Resources(), parsed_profiles, src,
                     parse_claims(data.get("claims"), src, method), _replicate(data.get("replicate"), "replicate", src))
    for pname in parsed_profiles:
        replication(spec, pname)  # a profile's keys over the sweep's must make a valid rule too
    return spec


def _one_of_seeds_or_replicate(data: dict, prefix: str, src: str) -> None:
    if data.get("seeds") is not None and data.get("replicate") is not None:
        raise ConfigError(f"{prefix}replicate: set either {prefix}seeds (a fixed list) or {prefix}replicate "
                          f"(seeds 0, 1, … added while claims are undecided), not both ({src})")


def _replicate(raw: Any, path: str, src: str) -> dict | None:
    """The keys of a replicate: section, each checked (the rule they make is checked by `replication`)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _err(src, path, "a mapping with min_seeds, max_seeds, budget", raw)
    out = {}
    for key, value in raw.items():
        if key not in REPLICATE_KEYS:
            raise ConfigError(f"{path}.{key}: unknown key; expected one of {', '.join(REPLICATE_KEYS)} ({src})")
        if key == "budget":
            out |= _budget(value, f"{path}.budget", src)
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _err(src, f"{path}.{key}", "an integer >= 1", value)
        else:
            out[key] = value
    return out


def _budget(raw: Any, path: str, src: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _err(src, path, "a mapping with trials and/or hours", raw)
    out = {}
    for key, value in raw.items():
        if key not in BUDGET_KEYS:
            raise ConfigError(f"{path}.{key}: unknown key; expected one of {', '.join(BUDGET_KEYS)} ({src})")
        if value is None:
            continue
        if key == "trials" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise _err(src, f"{path}.trials", "an integer >= 1", value)
        if key == "hours" and (isinstance(value, bool) or not isinstance(value, (int, float))
                               or not math.isfinite(value) or value <= 0):
            raise _err(src, f"{path}.hours", "a number of hours > 0", value)
        out[f"budget_{key}"] = value
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


def seeds_for(spec: SweepSpec, profile: str, rule: Replicate | None = None) -> list[int]:
    """The seeds a profile's trials may use: the fixed list, or 0 … max_seeds−1 under replication."""
    if rule is not None:
        return list(range(rule.max_seeds))
    prof = spec.profiles.get(profile, ProfileSpec())
    return prof.seeds or spec.seeds


def _metric(raw: Any, method: str, src: str) -> tuple[str, str]:
    if raw is None:
        return DEFAULT_METRIC[method], "max"
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or set(raw) - {"name", "mode"}:
        raise _err(src, "metric", "a mapping with name and mode", raw)
    name, mode = raw.get("name", DEFAULT_METRIC[method]), raw.get("mode", "max")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name):
        raise _err(src, "metric.name", "a metric name such as psnr_es", name)
    try:
        check_metric_name(name, method, "metric.name")
    except ConfigError as exc:
        raise ConfigError(f"{exc} ({src})") from None
    if name in ORACLE_METRICS:
        raise _err(src, "metric.name", "a metric reachable without ground truth (not an ORACLE figure)", name)
    if mode not in ("max", "min"):
        raise _err(src, "metric.mode", "one of max | min", mode)
    return name, mode


def _mapping(raw: Any, path: str, src: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _err(src, path, "a mapping of config keys", raw)
    return raw


def _grid(raw: Any, path: str, src: str) -> list:
    if raw is None:
        return [{}]
    blocks = raw if isinstance(raw, list) else [raw]
    if isinstance(raw, list) and not raw:
        raise _err(src, path, "a mapping of key -> list of values, or a non-empty list of them", raw)
    out = []
    for i, block in enumerate(blocks):
        where = f"{path}[{i}]" if isinstance(raw, list) else path
        if not isinstance(block, dict):
            raise _err(src, where, "a mapping of dotted key -> list of values", block)
        for key, values in block.items():
            if not isinstance(values, list) or not values:
                raise _err(src, f"{where}.{key}", "a non-empty list of values", values)
        out.append(dict(block))
    return out


def _seeds(raw: Any, path: str, src: str) -> list:
    if not isinstance(raw, list) or not raw or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                     for s in raw):
        raise _err(src, path, "a non-empty list of integers >= 0", raw)
    if len(set(raw)) != len(raw):
        raise _err(src, path, "distinct seeds", raw)
    return raw


def _resources(raw: Any, path: str, src: str) -> Resources | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _err(src, path, "a mapping with cpu and gpu", raw)
    for key, value in raw.items():
        if key not in ("cpu", "gpu"):
            raise ConfigError(f"{path}.{key}: unknown key; expected cpu or gpu ({src})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise _err(src, f"{path}.{key}", "a finite number >= 0", value)
    res = Resources(float(raw.get("cpu", 1)), float(raw.get("gpu", 0)))
    if res.cpu <= 0:
        raise _err(src, f"{path}.cpu", "a number > 0", raw.get("cpu"))
    if res.gpu > 1 and res.gpu != int(res.gpu):
        raise _err(src, f"{path}.gpu", "a fraction <= 1 or a whole number of GPUs", raw.get("gpu"))
    return res


def _profile(raw: Any, path: str, src: str) -> ProfileSpec:
    if raw is None:
        return ProfileSpec()
    if not isinstance(raw, dict):
        raise _err(src, path, "a mapping with base, grid, seeds, resources, replicate", raw)
    for key in raw:
        if key not in PROFILE_KEYS:
            raise ConfigError(f"{path}.{key}: unknown key; expected one of {', '.join(PROFILE_KEYS)} ({src})")
    _one_of_seeds_or_replicate(raw, f"{path}.", src)
    return ProfileSpec(_mapping(raw.get("base"), f"{path}.base", src),
                       _grid(raw["grid"], f"{path}.grid", src) if "grid" in raw else None,
                       _seeds(raw["seeds"], f"{path}.seeds", src) if "seeds" in raw else None,
                       _resources(raw.get("resources"), f"{path}.resources", src),
                       _replicate(raw.get("replicate"), f"{path}.replicate", src))


# ---- expansion ------------------------------------------------------------------------------

def effective_grid(spec: SweepSpec, profile: str) -> list:
    """The sweep's grid with each axis the profile names given the profile's values, wherever it appears."""
    prof = spec.profiles.get(profile, ProfileSpec())
    if not prof.grid:
        return spec.grid
    override = {k: v for block in prof.grid for k, v in block.items()}
    known = {k for block in spec.grid for k in block}
    for key in override:
        if key not in known:
            raise ConfigError(f"profiles.{profile}.grid.{key}: expected an axis of the sweep's grid "
                              f"({', '.join(sorted(known)) or 'none'}), got a new one ({spec.source})")
    return [{k: override.get(k, v) for k, v in block.items()} for block in spec.grid]


def _cells(grid: list) -> list[dict]:
    cells = []
    for block in grid:
        keys = list(block)
        for combo in itertools.product(*(block[k] for k in keys)):
            cells.append(dict(zip(keys, combo)))
    return cells


MAX_TRIALS = 5000  # a grid that expands to more is almost always a typo (4 values on 10 axes: 4^10 cells)


def trial_count(spec: SweepSpec, profile: str, rule: Replicate | None = None) -> int:
    """Cells × seeds (every seed replication may add), counted from the grid's shape without expanding it."""
    cells = sum(math.prod(len(v) for v in block.values()) for block in effective_grid(spec, profile))
    return cells * len(seeds_for(spec, profile, rule))


@dataclass
class Plan:
    """What a sweep may run on one profile: its distinct trials (every cell × every seed it may use),
    how many cells merged into equal ones, its design (kept as sweep.json) and its replication rule."""

    trials: list[Trial]
    merged: int
    design: Design
    replicate: Replicate | None

    def initial(self) -> list[Trial]:
        """The trials every cell runs: all of them on a fixed grid, seeds below min_seeds under replication."""
        if self.replicate is None:
            return self.trials
        return [t for t in self.trials if t.seed < self.replicate.min_seeds]


def plan(spec: SweepSpec, profile: str, base: Path | None = None, max_trials: int = MAX_TRIALS,
         replicate: dict | None = None) -> Plan:
    """Resolve every cell once (its seeds are the same config with another seed), read its images (paths
    relative to `base`, default the working directory, once per file) and build the design. A grid of more
    than `max_trials` cells × seeds is refused before anything is expanded. `replicate`: flags over the
    sweep's replicate: section."""
    rule = replication(spec, profile, replicate)
    seeds = seeds_for(spec, profile, rule)
    n = trial_count(spec, profile, rule)
    if n > max_trials:
        raise ConfigError(f"grid: expected at most {max_trials} trials (cells × seeds) for profile {profile}, got {n} "
                          f"({spec.source}); narrow the grid (a list of blocks varies one factor at a time) or "
                          "raise the limit with --max-trials")
    prof = spec.profiles.get(profile, ProfileSpec())
    layers = [("method", {"method": spec.method}), (f"base ({spec.source})", _nested(spec.base, "base", spec)),
              (f"profiles.{profile}.base", _nested(prof.base, f"profiles.{profile}.base", spec))]
    settings = flatten(merged_layers(layers, profile))
    settings.pop("seed", None)
    cells = _cells(effective_grid(spec, profile))
    axes = tuple(dict.fromkeys(k for cell in cells for k in cell))
    trials: dict[str, Trial] = {}
    points = []
    for cell in cells:
        try:
            cfg = resolve(layers + [("grid cell", _nested(cell, "grid", spec)), ("seed", {"seed": seeds[0]})], profile)
            images = images_for(cfg, base)
        except ConfigError as exc:
            label = ", ".join(f"{k}={v}" for k, v in cell.items()) or "base"
            raise ConfigError(f"{exc} ({spec.source}, grid cell {label})") from None
        ck = cell_key_of(cfg, images)
        points.append(point_of(cell, settings, config_dict(cfg), ck, [img.id for img in images.test], axes))
        for seed in seeds:
            seeded = dataclasses.replace(cfg, seed=seed)
            key = trial_key(seeded, images)
            trials.setdefault(key, Trial(key, seeded, cell, ck, images))
    design = Design(spec.name, spec.method, spec.metric, spec.mode, profile, settings, points, seeds, spec.claims,
                    rule.as_dict() if rule else None, axes)
    return Plan(list(trials.values()), len(cells) * len(seeds) - len(trials), design, rule)


def expand(spec: SweepSpec, profile: str, base: Path | None = None,
           max_trials: int = MAX_TRIALS) -> tuple[list[Trial], int]:
    """Distinct trials for one profile, and how many cells merged into others (see `plan`)."""
    p = plan(spec, profile, base, max_trials)
    return p.trials, p.merged


def _nested(dotted: dict, path: str, spec: SweepSpec) -> dict:
    try:
        return nested(dotted)
    except ConfigError as exc:
        raise ConfigError(f"{path}.{exc} ({spec.source})") from None


def cell_key_of(cfg: TrialConfig, images: ImageSet | None = None) -> str:
    d = config_dict(cfg)
    d.pop("seed")
    d["images"] = images.identity() if images is not None else None
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def needs_gpu(spec: SweepSpec, profile: str) -> bool:
    return profile == "gpu" or resources_for(spec, profile).gpu > 0


def resources_for(spec: SweepSpec, profile: str) -> Resources:
    prof = spec.profiles.get(profile, ProfileSpec())
    return prof.resources or spec.resources
