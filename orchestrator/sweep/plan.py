"""A SweepSpec -> the list of distinct trials one profile runs, and the design kept beside them.

Precedence, lowest first: defaults -> built-in profile -> base -> profiles.<name>.base
-> grid cell -> seed. Cells that become equal once inapplicable fields are nulled run
once (`merged`). A grid larger than `max_trials` is refused before it is expanded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from dipddpm.config import TrialConfig, config_dict, merged_layers, nested, trial_key
from dipddpm.errors import ConfigError
from dipddpm.images import ImageSet, images_for
from dipddpm.trial import resolve

from ..common.design import Design, flatten, point_of
from .spec import ProfileSpec, Replicate, Resources, SweepSpec, replication


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


def seeds_for(spec: SweepSpec, profile: str, rule: Replicate | None = None) -> list[int]:
    """The seeds a profile's trials may use: the fixed list, or 0 … max_seeds−1 under replication."""
    if rule is not None:
        return list(range(rule.max_seeds))
    prof = spec.profiles.get(profile, ProfileSpec())
    return prof.seeds or spec.seeds


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
