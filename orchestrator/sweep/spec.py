"""Sweep YAML -> validated SweepSpec -> the list of distinct trials (DESIGN §5).

A sweep holds: name, method, metric, base, grid (a mapping: cartesian product;
or a list of mappings: the union of their products), seeds, resources and
profiles (cpu | gpu: base, grid, seeds, resources). Precedence, lowest first:
defaults -> built-in profile -> base -> profiles.<name>.base -> grid cell -> seed.
Cells that become equal once inapplicable fields are nulled run once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dipddpm.config import TrialConfig, config_dict, nested, trial_key
from dipddpm.trial import resolve
from dipddpm.errors import ConfigError
from dipddpm.images import ImageSet, images_for
from dipddpm.metrics import check_metric_name
from dipddpm.yamlio import load_file

from ..common.claims import parse_claims
from ..common.metrics import DEFAULT_METRIC, ORACLE_METRICS

TOP_KEYS = ("name", "method", "metric", "base", "grid", "seeds", "resources", "profiles", "description", "claims")
PROFILE_KEYS = ("base", "grid", "seeds", "resources")


@dataclass(frozen=True)
class Resources:
    cpu: float = 1.0
    gpu: float = 0.0


@dataclass(frozen=True)
class ProfileSpec:
    base: dict = field(default_factory=dict)
    grid: list | None = None  # list of {dotted key: [values]} replacing those axes
    seeds: list | None = None
    resources: Resources | None = None


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
    shown = "null" if got is None else repr(got)
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
    return SweepSpec(name, method, metric, mode, _mapping(data.get("base"), "base", src),
                     _grid(data.get("grid"), "grid", src), _seeds(data.get("seeds", [0]), "seeds", src),
                     _resources(data.get("resources"), "resources", src) or Resources(), parsed_profiles, src,
                     parse_claims(data.get("claims"), src, method))


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
        raise _err(src, path, "a mapping with base, grid, seeds, resources", raw)
    for key in raw:
        if key not in PROFILE_KEYS:
            raise ConfigError(f"{path}.{key}: unknown key; expected one of {', '.join(PROFILE_KEYS)} ({src})")
    return ProfileSpec(_mapping(raw.get("base"), f"{path}.base", src),
                       _grid(raw["grid"], f"{path}.grid", src) if "grid" in raw else None,
                       _seeds(raw["seeds"], f"{path}.seeds", src) if "seeds" in raw else None,
                       _resources(raw.get("resources"), f"{path}.resources", src))


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


def trial_count(spec: SweepSpec, profile: str) -> int:
    """Cells × seeds, counted from the grid's shape without expanding it."""
    prof = spec.profiles.get(profile, ProfileSpec())
    cells = sum(math.prod(len(v) for v in block.values()) for block in effective_grid(spec, profile))
    return cells * len(prof.seeds or spec.seeds)


def expand(spec: SweepSpec, profile: str, base: Path | None = None,
           max_trials: int = MAX_TRIALS) -> tuple[list[Trial], int]:
    """Distinct trials for one profile, and how many cells merged into others. Image paths are
    read here, relative to `base` (default: the working directory), once per file. A grid of more
    than `max_trials` cells × seeds is refused before anything is expanded."""
    n = trial_count(spec, profile)
    if n > max_trials:
        raise ConfigError(f"grid: expected at most {max_trials} trials (cells × seeds) for profile {profile}, got {n} "
                          f"({spec.source}); narrow the grid (a list of blocks varies one factor at a time) or "
                          "raise the limit with --max-trials")
    prof = spec.profiles.get(profile, ProfileSpec())
    seeds = prof.seeds or spec.seeds
    layers = [("method", {"method": spec.method}), (f"base ({spec.source})", _nested(spec.base, "base", spec)),
              (f"profiles.{profile}.base", _nested(prof.base, f"profiles.{profile}.base", spec))]
    trials: dict[str, Trial] = {}
    total = 0
    for cell in _cells(effective_grid(spec, profile)):
        cell_layer = _nested(cell, "grid", spec)
        for seed in seeds:
            total += 1
            try:
                cfg = resolve(layers + [("grid cell", cell_layer), ("seed", {"seed": seed})], profile)
                images = images_for(cfg, base)
            except ConfigError as exc:
                label = ", ".join(f"{k}={v}" for k, v in cell.items()) or "base"
                raise ConfigError(f"{exc} ({spec.source}, grid cell {label})") from None
            key = trial_key(cfg, images)
            if key not in trials:
                trials[key] = Trial(key, cfg, cell, cell_key_of(cfg, images), images)
    return list(trials.values()), total - len(trials)


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
