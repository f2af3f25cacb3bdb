"""The one small interface every method implements (the registry is `dipddpm.methods`).

A method is one module that defines `METHOD = Method(...)`: how it runs a trial, checks and
canonicalises its config, which metrics it reports, what one unit of replication is, and
the hints the orchestrator needs to schedule and report it (which shared artefact a trial
waits for, which cells compare against which, which figures suit it). The orchestrator asks
a method for these; it never tests a method's name or imports a method's private names.
Adding a method: its module, its config section (config.py), and one line in
`dipddpm.methods._registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

ORACLE, FLOOR = "ORACLE", "FLOOR"  # targets from the clean image; an unconditional sample scored against a photo


@dataclass(frozen=True)
class Comparison:
    """Cells with `axis == a` against their counterpart with `axis == b` (a report's paired rows). With
    `a == b` the two arms are one trial read through two metrics: `b_metrics` renames B's (psnr -> psnr_dip)."""

    axis: str
    a: str
    b: str
    anchor: str = "b"  # the arm whose cells are matched
    b_metrics: tuple[tuple[str, str], ...] = ()
    b_label: str = ""


@dataclass(frozen=True)
class ReportHints:
    """How a report shows the method: its variant axis, comparisons, metric columns and figures."""

    variant_axis: str
    comparisons: tuple[Comparison, ...]
    compared: tuple[str, ...]  # metrics of the comparison rows
    quality: tuple[str, ...]  # metric columns of the cells table
    cost_parts: tuple[str, ...]  # time_s = these + other_s
    cost_detail: tuple[str, ...]
    figure: str  # "stage_curves" | "restorations": the method's own figure
    image_kinds: tuple[str, ...]  # the PNG kinds a trial saves per image, as W&B panels show them
    # the arms its figures and image grid show along `variant_axis`: (value, other keys the arm's cell sets)
    figure_arms: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()
    # the image grid's columns after the observation: (title, arm value, image kind, per-image PSNR field)
    grid: tuple[tuple[str, str, str, str], ...] = ()
    grid_best: bool = False  # also show the best usable cell's restoration
    per_image_axis: bool = False  # W&B: each image's fit on its own iteration axis


@dataclass(frozen=True)
class Method:
    name: str
    doc: str
    unit: str  # "image": each (seed, image) fit is a unit; "seed": one unit per seed (a model serves every image)
    metric_names: tuple[str, ...]
    default_metric: str
    run: Callable  # (cfg, observations, images, device, reporter, cache) -> TrialResult
    check: Callable  # (cfg, schedule, level) -> None, or a ConfigError naming the key
    canonical: Callable  # cfg -> cfg with the fields that do not apply nulled
    tags: Callable  # config dict -> (ORACLE?, FLOOR?)
    report: ReportHints
    censored: tuple[tuple[str, str], ...] = ()  # (metric, figure holding its cap): iteration counts that stop
    # with the run are "at least" their value there
    artefact: Callable | None = None  # (cfg, images) -> the key of the shared artefact a trial needs first
    after_artefact_cost: Callable = field(default=lambda cfg: 0.0)  # work once that artefact exists
